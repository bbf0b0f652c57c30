//! `network.json`: what `weft up` made and started, so that `weft down`, a second `weft up`
//! (resume), `weft bench` and people can find every endpoint, identity and process.
//!
//! All paths are absolute. The file is rewritten atomically (temporary file, then rename).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The version of this file's layout.
pub const FORMAT: u32 = 1;
/// The state file's name inside the network directory.
pub const FILE: &str = "network.json";

/// How the network's links are secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plaintext on every link (development only; the nodes log it loudly).
    Off,
    /// TLS, servers authenticated; clients present no certificate.
    Server,
    /// Mutual TLS on every link (the default).
    Mutual,
}

impl TlsMode {
    pub fn enabled(self) -> bool {
        self != TlsMode::Off
    }

    pub fn mutual(self) -> bool {
        self == TlsMode::Mutual
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Off => "off",
            TlsMode::Server => "server",
            TlsMode::Mutual => "mutual",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrdererEntry {
    pub name: String,
    pub msp_id: String,
    pub address: String,
    pub admin_address: String,
    pub operations_address: String,
    pub tls_ca: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub msp_dir: PathBuf,
    pub admin_tls_cert: PathBuf,
    pub admin_tls_key: PathBuf,
    pub config: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerEntry {
    pub name: String,
    pub msp_id: String,
    /// `org1`, `org2`: the short name used in file names.
    pub org: String,
    pub address: String,
    pub chaincode_address: String,
    pub operations_address: String,
    pub tls_ca: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub fs_path: PathBuf,
    pub config: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserEntry {
    pub msp_id: String,
    pub name: String,
    pub msp_dir: PathBuf,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
}

/// How a chaincode runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChaincodeMode {
    /// Launched by each peer through the binary builder, with a per-launch certificate.
    Launched,
    /// A chaincode server per org, dialed by its peer as `connection.json` says.
    Server,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChaincodeEntry {
    pub name: String,
    pub mode: ChaincodeMode,
    /// Installed package id, by MSP id.
    #[serde(default)]
    pub package_ids: BTreeMap<String, String>,
    /// Chaincode server addresses, by MSP id (mode `server`).
    #[serde(default)]
    pub server_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessEntry {
    pub name: String,
    pub pid: u32,
    /// The process's start time (field 22 of /proc/PID/stat), so that a recycled pid is
    /// never mistaken for it.
    #[serde(default)]
    pub started: u64,
    pub log: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkFile {
    pub format: u32,
    pub channel: String,
    pub tls: TlsMode,
    pub orderer: OrdererEntry,
    pub peers: Vec<PeerEntry>,
    pub users: Vec<UserEntry>,
    pub chaincodes: Vec<ChaincodeEntry>,
    #[serde(default)]
    pub processes: Vec<ProcessEntry>,
}

impl NetworkFile {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    pub fn load(dir: &Path) -> Result<NetworkFile, String> {
        let path = NetworkFile::path(dir);
        let bytes =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: NetworkFile = serde_json::from_slice(&bytes).map_err(|e| {
            format!(
                "{} is not a weft network state file: {e}; move the directory aside and run \
                 weft up again",
                path.display()
            )
        })?;
        if file.format != FORMAT {
            return Err(format!(
                "{} has format {} but this weft reads format {FORMAT}: use the weft that \
                 created it, or start a new network in another --dir",
                path.display(),
                file.format
            ));
        }
        Ok(file)
    }

    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = NetworkFile::path(dir);
        let tmp = dir.join(format!(".{FILE}.tmp"));
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| format!("cannot encode {}: {e}", path.display()))?;
        std::fs::write(&tmp, json)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn user(&self, msp_id: &str, prefix: &str) -> Option<&UserEntry> {
        self.users
            .iter()
            .find(|u| u.msp_id == msp_id && u.name.starts_with(prefix))
    }

    pub fn chaincode(&self, mode: ChaincodeMode) -> Option<&ChaincodeEntry> {
        self.chaincodes.iter().find(|c| c.mode == mode)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn sample(dir: &Path) -> NetworkFile {
        NetworkFile {
            format: FORMAT,
            channel: "mychannel".into(),
            tls: TlsMode::Mutual,
            orderer: OrdererEntry {
                name: "orderer.example.com".into(),
                msp_id: "OrdererMSP".into(),
                address: "127.0.0.1:7050".into(),
                admin_address: "127.0.0.1:7053".into(),
                operations_address: "127.0.0.1:9443".into(),
                tls_ca: dir.join("ca.pem"),
                tls_cert: dir.join("c"),
                tls_key: dir.join("k"),
                msp_dir: dir.join("msp"),
                admin_tls_cert: dir.join("ac"),
                admin_tls_key: dir.join("ak"),
                config: dir.join("orderer.yaml"),
            },
            peers: vec![],
            users: vec![UserEntry {
                msp_id: "Org1MSP".into(),
                name: "User1@org1.example.com".into(),
                msp_dir: dir.join("u"),
                tls_cert: dir.join("uc"),
                tls_key: dir.join("uk"),
            }],
            chaincodes: vec![ChaincodeEntry {
                name: "basic".into(),
                mode: ChaincodeMode::Launched,
                package_ids: BTreeMap::new(),
                server_addresses: BTreeMap::new(),
            }],
            processes: vec![],
        }
    }

    #[test]
    fn round_trips_and_names_a_bad_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = sample(tmp.path());
        f.save(tmp.path()).unwrap();
        let back = NetworkFile::load(tmp.path()).unwrap();
        assert_eq!(back.tls, TlsMode::Mutual);
        assert_eq!(back.user("Org1MSP", "User").unwrap().name, f.users[0].name);
        assert!(back.chaincode(ChaincodeMode::Launched).is_some());
        let text = std::fs::read_to_string(NetworkFile::path(tmp.path())).unwrap();
        assert!(text.contains("\"tls\": \"mutual\""), "{text}");
        assert!(text.contains("\"mode\": \"launched\""), "{text}");

        std::fs::write(NetworkFile::path(tmp.path()), b"{\"format\": 1}").unwrap();
        let e = NetworkFile::load(tmp.path()).unwrap_err();
        assert!(e.contains("not a weft network state file"), "{e}");
        std::fs::write(
            NetworkFile::path(tmp.path()),
            text.replace("\"format\": 1", "\"format\": 7"),
        )
        .unwrap();
        let e = NetworkFile::load(tmp.path()).unwrap_err();
        assert!(e.contains("format 7"), "{e}");
    }
}
