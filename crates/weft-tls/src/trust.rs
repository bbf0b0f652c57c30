//! Whom an endpoint trusts: CA roots, or exactly pinned certificates per node.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::ConfigError;

/// The trust an endpoint places in the other side's certificate.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Any certificate that chains to one of these CA certificates (Fabric's model).
    Roots(Vec<CertificateDer<'static>>),
    /// Exactly these leaf certificates, each bound to a node id (the replica network's model).
    Pinned(PinSet),
}

impl Trust {
    /// CA roots from PEM files (each may hold several certificates).
    pub fn roots_from_pem_files<P: AsRef<Path>>(
        paths: &[P],
        setting: &str,
    ) -> Result<Self, ConfigError> {
        let mut roots = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let pem = crate::identity::read(path, setting)?;
            roots.extend(weft_crypto::pem::certificates(
                &pem,
                &path.display().to_string(),
            )?);
        }
        if roots.is_empty() {
            return Err(ConfigError::NoRoots {
                setting: setting.to_owned(),
            });
        }
        Ok(Trust::Roots(roots))
    }

    pub(crate) fn root_store(
        roots: &[CertificateDer<'static>],
        setting: &str,
    ) -> Result<Arc<RootCertStore>, ConfigError> {
        if roots.is_empty() {
            return Err(ConfigError::NoRoots {
                setting: setting.to_owned(),
            });
        }
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone()).map_err(|e| ConfigError::BadRoot {
                setting: setting.to_owned(),
                detail: e.to_string(),
            })?;
        }
        Ok(Arc::new(store))
    }
}

/// Pinned certificates by node id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PinSet {
    by_node: BTreeMap<String, CertificateDer<'static>>,
}

impl PinSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Pin `cert` for `node`, replacing any earlier pin for that node.
    pub fn insert(&mut self, node: impl Into<String>, cert: CertificateDer<'static>) {
        self.by_node.insert(node.into(), cert);
    }

    pub fn with(mut self, node: impl Into<String>, cert: CertificateDer<'static>) -> Self {
        self.insert(node, cert);
        self
    }

    pub fn get(&self, node: &str) -> Option<&CertificateDer<'static>> {
        self.by_node.get(node)
    }

    /// The node whose pinned certificate is exactly `cert`.
    pub fn node_for(&self, cert: &CertificateDer<'_>) -> Option<&str> {
        self.by_node
            .iter()
            .find(|(_, c)| c.as_ref() == cert.as_ref())
            .map(|(n, _)| n.as_str())
    }

    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.by_node.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    pub fn len(&self) -> usize {
        self.by_node.len()
    }
}
