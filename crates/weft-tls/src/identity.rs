//! The certificate chain and key an endpoint presents.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use weft_crypto::{CertSummary, PrivateKey};

use crate::ConfigError;

/// A certificate chain (leaf first) and the leaf's private key.
#[derive(Debug)]
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKey,
    leaf: CertSummary,
}

impl Identity {
    /// Pair a chain with its key; refuses a key that does not belong to the leaf.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKey,
        what: &str,
    ) -> Result<Self, ConfigError> {
        let first = chain
            .first()
            .ok_or_else(|| weft_crypto::Error::PemMissing {
                what: what.to_owned(),
                expected: "CERTIFICATE",
            })?;
        let leaf = CertSummary::parse(first)?;
        if leaf.public_key_der != key.public_key_der() {
            return Err(ConfigError::KeyMismatch {
                what: what.to_owned(),
                subject: leaf.subject,
            });
        }
        Ok(Identity { chain, key, leaf })
    }

    /// From PEM bytes; `what` names the source in errors.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], what: &str) -> Result<Self, ConfigError> {
        let chain = weft_crypto::pem::certificates(cert_pem, what)?;
        let key = PrivateKey::from_pem(key_pem, what)?;
        Self::new(chain, key, what)
    }

    /// From a certificate file and a key file. `setting` names the configuration keys in
    /// errors (e.g. `peer.tls.cert.file`).
    pub fn from_pem_files(cert: &Path, key: &Path, setting: &str) -> Result<Self, ConfigError> {
        let cert_pem = read(cert, setting)?;
        let key_pem = read(key, setting)?;
        let chain = weft_crypto::pem::certificates(&cert_pem, &cert.display().to_string())?;
        let key_obj = PrivateKey::from_pem(&key_pem, &key.display().to_string())?;
        Self::new(
            chain,
            key_obj,
            &format!("{} / {}", cert.display(), key.display()),
        )
    }

    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    pub fn leaf(&self) -> &CertSummary {
        &self.leaf
    }

    pub(crate) fn certified_key(
        &self,
        provider: &CryptoProvider,
    ) -> Result<Arc<CertifiedKey>, ConfigError> {
        let signing = provider
            .key_provider
            .load_private_key(self.key.to_rustls())?;
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), signing)))
    }
}

pub(crate) fn read(path: &Path, setting: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        setting: setting.to_owned(),
        path: path.to_owned(),
        source,
    })
}
