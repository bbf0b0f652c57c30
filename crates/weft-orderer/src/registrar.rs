//! The channels this orderer serves: join, look up, list, remove; reopened from disk at start.
//!
//! Listeners (the node's TLS client-root updater) are told, with the joined chains, after
//! every join and removal and after a chain's config changes (a config block).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use weft_proto::common::Block;

use crate::chain::{Chain, ChainError, ChainPaths};
use crate::consensus::BlockSigner;

type Listener = Box<dyn Fn(&[Arc<Chain>]) + Send + Sync>;

/// The chains and listeners, shared with the chains' config-change callbacks (weakly).
#[derive(Default)]
struct Shared {
    chains: RwLock<BTreeMap<String, Arc<Chain>>>,
    listeners: RwLock<Vec<Listener>>,
}

impl Shared {
    fn chains(&self) -> Vec<Arc<Chain>> {
        self.chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    fn notify(&self) {
        let chains = self.chains();
        for l in self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            l(&chains);
        }
    }
}

/// Tell the registrar's listeners when `chain`'s config changes.
fn watch_config(shared: &Arc<Shared>, chain: &Chain) {
    let weak = Arc::downgrade(shared);
    chain.on_config_change(move || {
        if let Some(s) = weak.upgrade() {
            s.notify();
        }
    });
}

/// The joined channels (see the module documentation).
pub struct Registrar {
    paths: ChainPaths,
    signer: BlockSigner,
    shared: Arc<Shared>,
    /// Serializes joins and removals (each touches the disk).
    admin: tokio::sync::Mutex<()>,
    /// This node's TLS server certificate (DER), as a channel's consenter set names it.
    tls_certificate: std::sync::OnceLock<Vec<u8>>,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("paths", &self.paths)
            .field("channels", &self.ids())
            .finish()
    }
}

impl Registrar {
    /// Open every channel found under `paths`. A channel that fails to open is skipped with an
    /// error in the log (the others still run).
    pub fn open(paths: ChainPaths, signer: BlockSigner) -> Registrar {
        let mut chains = BTreeMap::new();
        for id in paths.joined() {
            match Chain::open(&paths, &id, &signer) {
                Ok(c) => {
                    chains.insert(id, c);
                }
                Err(e) => {
                    tracing::error!(channel = %id, "cannot open the channel; it is not served: {e}")
                }
            }
        }
        let shared = Arc::new(Shared {
            chains: RwLock::new(chains),
            listeners: RwLock::new(Vec::new()),
        });
        for c in shared.chains() {
            watch_config(&shared, &c);
        }
        Registrar {
            paths,
            signer,
            shared,
            admin: tokio::sync::Mutex::new(()),
            tls_certificate: std::sync::OnceLock::new(),
        }
    }

    pub fn paths(&self) -> &ChainPaths {
        &self.paths
    }

    pub fn signer(&self) -> &BlockSigner {
        &self.signer
    }

    /// Call `f`, with the joined chains, after each join and removal and after each config
    /// change of a chain.
    pub fn on_change(&self, f: impl Fn(&[Arc<Chain>]) + Send + Sync + 'static) {
        self.shared
            .listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    fn notify(&self) {
        self.shared.notify();
    }

    pub fn get(&self, id: &str) -> Option<Arc<Chain>> {
        self.shared
            .chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.shared
            .chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn chains(&self) -> Vec<Arc<Chain>> {
        self.shared.chains()
    }

    /// Record this node's TLS server certificate (DER): joins then check that a channel
    /// with a consenter set (etcdraft, BFT) names this node.
    pub fn set_tls_certificate(&self, der: Vec<u8>) {
        let _ = self.tls_certificate.set(der);
    }

    /// Join the channel of `genesis`.
    pub async fn join(&self, genesis: Block) -> Result<Arc<Chain>, ChainError> {
        let _guard = self.admin.lock().await;
        if let Ok((id, config)) = Chain::inspect_genesis(&genesis) {
            if self.get(&id).is_some() {
                return Err(ChainError::Exists { channel: id });
            }
            if let Some(me) = self.tls_certificate.get() {
                check_consenter(&config, me).map_err(|detail| ChainError::Invalid {
                    channel: id.clone(),
                    detail,
                })?;
            }
        }
        let paths = self.paths.clone();
        let signer = self.signer.clone();
        let chain = tokio::task::spawn_blocking(move || Chain::join(&paths, &genesis, &signer))
            .await
            .map_err(|e| ChainError::Invalid {
                channel: "(join)".into(),
                detail: format!("join task failed: {e}"),
            })??;
        watch_config(&self.shared, &chain);
        self.shared
            .chains
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(chain.id().to_owned(), chain.clone());
        self.notify();
        Ok(chain)
    }

    /// Stop serving a channel and delete its blocks and log. `Ok(false)` if not joined.
    pub async fn remove(&self, id: &str) -> Result<bool, ChainError> {
        let _guard = self.admin.lock().await;
        let Some(chain) = self
            .shared
            .chains
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        else {
            return Ok(false);
        };
        chain.halt().await;
        drop(chain);
        let store = self.paths.store_dir(id);
        let trash_dir = self.paths.ledger_dir.join("removing");
        let wal = self.paths.channel_wal_dir(id);
        let id_owned = id.to_owned();
        tokio::task::spawn_blocking(move || {
            // Rename first so a crash mid-delete does not leave a half channel to reopen.
            let trash = trash_dir.join(&id_owned);
            let _ = std::fs::remove_dir_all(&trash);
            std::fs::create_dir_all(&trash_dir)
                .and_then(|_| std::fs::rename(&store, &trash))
                .and_then(|_| std::fs::remove_dir_all(&trash))
                .map_err(|e| ChainError::Storage {
                    channel: id_owned.clone(),
                    path: store.clone(),
                    detail: format!("cannot delete: {e}"),
                })?;
            let _ = std::fs::remove_dir_all(&wal);
            Ok::<(), ChainError>(())
        })
        .await
        .map_err(|e| ChainError::Invalid {
            channel: id.to_owned(),
            detail: format!("remove task failed: {e}"),
        })??;
        tracing::info!(channel = %id, "channel removed");
        self.notify();
        Ok(true)
    }

    /// Halt every channel and let go of it (at shutdown): once the last stream using a chain
    /// ends, its block store is closed and can be opened again.
    pub async fn halt_all(&self) {
        let chains = std::mem::take(
            &mut *self
                .shared
                .chains
                .write()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for c in chains.values() {
            c.halt().await;
        }
    }
}

/// Whether this node (its TLS server certificate, DER) is in the channel's consenter set.
/// weft orders a channel alone; joining a channel whose consenters are other orderers would
/// make this node a second, independent source of blocks for it, where Fabric would join as
/// a follower. Channels without a consenter set (solo) are not checked.
pub fn check_consenter(config: &weft_configtx::ChannelConfig, me: &[u8]) -> Result<(), String> {
    let orderer = config.orderer();
    let named: Vec<&[u8]> = match config.consensus_type() {
        "etcdraft" => orderer
            .etcdraft
            .iter()
            .flat_map(|m| m.consenters.iter())
            .map(|c| c.server_tls_cert.as_ref())
            .collect(),
        "BFT" => orderer
            .consenters
            .iter()
            .map(|c| c.server_tls_cert.as_ref())
            .collect(),
        _ => return Ok(()),
    };
    if named.is_empty() {
        return Ok(());
    }
    let ours = named.iter().any(|pem| {
        weft_crypto::pem::certificates(pem, "consenter")
            .map(|certs| certs.iter().any(|c| c.as_ref() == me))
            .unwrap_or(false)
    });
    if ours {
        Ok(())
    } else {
        Err(format!(
            "this orderer's TLS certificate is not among the channel's {} {} consenters: \
             weft orders a channel alone and cannot follow other orderers' chain; join the \
             orderers the channel names, or add this one to its consenters first",
            named.len(),
            config.consensus_type()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use prost::Message;

    /// A channel whose etcdraft consenters are other orderers is refused at join (this node
    /// would otherwise order it alone, a second source of blocks); one that names this node,
    /// and a solo channel, are accepted.
    #[test]
    fn joins_need_this_node_in_the_consenter_set() {
        let dir = tempfile::tempdir().unwrap();
        let net = weft_configtx::testing::two_org_network(dir.path(), 7050).unwrap();
        let solo = weft_configtx::ChannelConfig::from_block(&net.genesis).unwrap();
        let pem = |path: &std::path::Path| std::fs::read(path).unwrap();
        let der = |path: &std::path::Path| {
            weft_crypto::pem::certificates(&pem(path), "cert").unwrap()[0].to_vec()
        };
        let me = der(&net.orderer_org.node.tls_cert);
        check_consenter(&solo, &me).unwrap();
        let raft = |consenter_pem: Vec<u8>| {
            let config = weft_configtx::testing::with_consensus_type(solo.config(), |ct| {
                ct.r#type = "etcdraft".into();
                ct.metadata = weft_proto::etcdraft::ConfigMetadata {
                    consenters: vec![weft_proto::etcdraft::Consenter {
                        host: "orderer.example.com".into(),
                        port: 7050,
                        client_tls_cert: consenter_pem.clone().into(),
                        server_tls_cert: consenter_pem.into(),
                    }],
                    ..Default::default()
                }
                .encode_to_vec()
                .into();
            })
            .unwrap();
            weft_configtx::ChannelConfig::from_config("mychannel", &config).unwrap()
        };
        check_consenter(&raft(pem(&net.orderer_org.node.tls_cert)), &me).unwrap();
        let other = raft(pem(&net.orgs[0].node.tls_cert));
        let e = check_consenter(&other, &me).unwrap_err();
        assert!(
            e.contains("not among the channel's 1 etcdraft consenters"),
            "{e}"
        );
    }
}
