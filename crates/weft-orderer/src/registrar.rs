//! The channels this orderer serves: join, look up, list, remove; reopened from disk at start.
//!
//! Listeners (the node's TLS client-root updater) are told after every join and removal.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use weft_proto::common::Block;

use crate::chain::{Chain, ChainError, ChainPaths};
use crate::consensus::BlockSigner;

type Listener = Box<dyn Fn(&Registrar) + Send + Sync>;

/// The joined channels (see the module documentation).
pub struct Registrar {
    paths: ChainPaths,
    signer: BlockSigner,
    chains: RwLock<BTreeMap<String, Arc<Chain>>>,
    /// Serializes joins and removals (each touches the disk).
    admin: tokio::sync::Mutex<()>,
    listeners: RwLock<Vec<Listener>>,
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
        Registrar {
            paths,
            signer,
            chains: RwLock::new(chains),
            admin: tokio::sync::Mutex::new(()),
            listeners: RwLock::new(Vec::new()),
        }
    }

    pub fn paths(&self) -> &ChainPaths {
        &self.paths
    }

    pub fn signer(&self) -> &BlockSigner {
        &self.signer
    }

    /// Call `f` after each join and removal.
    pub fn on_change(&self, f: impl Fn(&Registrar) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(f));
    }

    fn notify(&self) {
        for l in self
            .listeners
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            l(self);
        }
    }

    pub fn get(&self, id: &str) -> Option<Arc<Chain>> {
        self.chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    pub fn ids(&self) -> Vec<String> {
        self.chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    pub fn chains(&self) -> Vec<Arc<Chain>> {
        self.chains
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Join the channel of `genesis`.
    pub async fn join(&self, genesis: Block) -> Result<Arc<Chain>, ChainError> {
        let _guard = self.admin.lock().await;
        if let Ok((id, _)) = Chain::inspect_genesis(&genesis) {
            if self.get(&id).is_some() {
                return Err(ChainError::Exists { channel: id });
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
        self.chains
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
        let chains = std::mem::take(&mut *self.chains.write().unwrap_or_else(|p| p.into_inner()));
        for c in chains.values() {
            c.halt().await;
        }
    }
}
