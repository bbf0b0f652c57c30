//! An org's MSP definition for a channel config, read from an MSP directory the way
//! configtxgen reads `MSPDir` (Fabric's verifying MSP config): `cacerts/` (at least one),
//! `intermediatecerts/`, `admincerts/`, `tlscacerts/`, `tlsintermediatecerts/`, and the NodeOUs
//! of `config.yaml` with each OU's CA certificate inlined. Certificates are carried as the PEM
//! files' bytes. `crls/` is refused (weft does not enforce CRLs yet), `signcerts/` and
//! `keystore/` are never read.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use weft_msp::MspConfig as NodeOuFile;
use weft_proto::msp::{
    FabricCryptoConfig, FabricMspConfig, FabricNodeOUs, FabricOuIdentifier, MspConfig,
};

use crate::error::ConfigError;

/// `FabricMSPConfig` for `msp_id` from the MSP directory `dir`, checked: every file holds a
/// certificate that parses, and the MSP builds (see [`crate::channel::msp_from_config`]).
pub fn fabric_msp_config(dir: &Path, msp_id: &str) -> Result<FabricMspConfig, ConfigError> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(ConfigError::file(
                dir.display(),
                format!("the MSP directory of {msp_id} is not a directory; MSPDir must name an MSP folder (with cacerts/)"),
            ))
        }
        Err(e) => {
            return Err(ConfigError::file(
                dir.display(),
                format!("cannot read the MSP directory of {msp_id}: {e}; check MSPDir (relative paths are relative to configtx.yaml's folder) or generate the material with `weft crypto generate`"),
            ))
        }
    }
    let root_certs = read_certs(&dir.join("cacerts"))?;
    if root_certs.is_empty() {
        return Err(ConfigError::file(
            dir.join("cacerts").display(),
            format!(
                "no CA certificate for {msp_id}; an MSP needs at least one root CA in cacerts/"
            ),
        ));
    }
    let crls = dir.join("crls");
    if crls.is_dir() && !list_files(&crls)?.is_empty() {
        return Err(ConfigError::file(
            crls.display(),
            "certificate revocation lists are not supported by weft yet; remove crls/ from the MSP directory",
        ));
    }
    let node_ous = node_ous(dir)?;
    let config = FabricMspConfig {
        name: msp_id.to_owned(),
        root_certs,
        intermediate_certs: read_certs(&dir.join("intermediatecerts"))?,
        admins: read_certs(&dir.join("admincerts"))?,
        revocation_list: Vec::new(),
        signing_identity: None,
        organizational_unit_identifiers: Vec::new(),
        crypto_config: Some(FabricCryptoConfig {
            signature_hash_family: "SHA2".to_owned(),
            identity_identifier_hash_function: "SHA256".to_owned(),
        }),
        tls_root_certs: read_certs(&dir.join("tlscacerts"))?,
        tls_intermediate_certs: read_certs(&dir.join("tlsintermediatecerts"))?,
        fabric_node_ous: node_ous,
    };
    // Build it once so that a problem is reported against the directory, not the channel.
    crate::channel::msp_from_config(&msp_value(&config), &format!("MSP {msp_id}"))
        .map_err(|e| ConfigError::file(dir.display(), e.to_string()))?;
    Ok(config)
}

/// The `MSP` config value: an `MSPConfig` of type FABRIC around `config`.
pub fn msp_value(config: &FabricMspConfig) -> MspConfig {
    MspConfig {
        r#type: 0,
        config: Bytes::from(config.encode_to_vec()),
    }
}

fn node_ous(dir: &Path) -> Result<Option<FabricNodeOUs>, ConfigError> {
    let path = dir.join("config.yaml");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::file(
                path.display(),
                format!("cannot read: {e}"),
            ))
        }
    };
    let file = NodeOuFile::from_yaml(&text, &path.display().to_string())
        .map_err(|e| ConfigError::file(path.display(), e.to_string()))?;
    let Some(n) = file.node_ous.filter(|n| n.enable) else {
        return Ok(None);
    };
    let id = |o: &Option<weft_msp::nodeou::OuIdentifier>| -> Result<Option<FabricOuIdentifier>, ConfigError> {
        let Some(o) = o else { return Ok(None) };
        let certificate = if o.certificate.is_empty() {
            Bytes::new()
        } else {
            let cert_path = dir.join(&o.certificate);
            let bytes = fs::read(&cert_path).map_err(|e| {
                ConfigError::file(
                    cert_path.display(),
                    format!("cannot read the NodeOU certificate named in {}: {e}", path.display()),
                )
            })?;
            check_cert(&bytes, &cert_path)?;
            Bytes::from(bytes)
        };
        Ok(Some(FabricOuIdentifier {
            certificate,
            organizational_unit_identifier: o.organizational_unit_identifier.clone(),
        }))
    };
    Ok(Some(FabricNodeOUs {
        enable: true,
        client_ou_identifier: id(&n.client)?,
        peer_ou_identifier: id(&n.peer)?,
        admin_ou_identifier: id(&n.admin)?,
        orderer_ou_identifier: id(&n.orderer)?,
    }))
}

fn check_cert(bytes: &[u8], path: &Path) -> Result<(), ConfigError> {
    weft_crypto::pem::certificates(bytes, &path.display().to_string())
        .map(|_| ())
        .map_err(|e| ConfigError::file(path.display(), format!("not a usable certificate: {e}")))
}

/// Regular, non-hidden files of `dir`, sorted; an absent directory has none.
fn list_files(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ConfigError::file(
                dir.display(),
                format!("cannot list: {e}"),
            ))
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|e| ConfigError::file(dir.display(), format!("cannot list: {e}")))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The PEM bytes of every certificate file in `dir`, checked.
fn read_certs(dir: &Path) -> Result<Vec<Bytes>, ConfigError> {
    let mut out = Vec::new();
    for path in list_files(dir)? {
        let bytes = fs::read(&path)
            .map_err(|e| ConfigError::file(path.display(), format!("cannot read: {e}")))?;
        check_cert(&bytes, &path)?;
        out.push(Bytes::from(bytes));
    }
    Ok(out)
}
