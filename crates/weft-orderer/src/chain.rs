//! One channel on the orderer: its block store, its config, its consenter, and the writer that
//! turns decisions into stored blocks.
//!
//! # Layout
//!
//! - `FileLedger.Location/chains/<channel>/`: the channel's [`BlockStore`]. Its existence with
//!   a genesis block in it is what "joined" means; the orderer reopens every channel found
//!   there at start. A join builds the store under `FileLedger.Location/pending/<channel>`
//!   and renames it into place, so a crash mid-join leaves no half-joined channel.
//! - `Consensus.WALDir/<channel>/`: the consenter's write-ahead log.
//!
//! # Config
//!
//! The channel config is read from the last config block (the LAST_CONFIG index recorded in
//! the newest block's SIGNATURES metadata, block 0 otherwise). Config updates are not ordered
//! yet (Broadcast refuses CONFIG_UPDATE), so the config and its sequence are fixed while the
//! chain runs.
//!
//! # Writing
//!
//! A dedicated thread receives the consenter's [`Decision`]s, stores each block (fsynced by
//! the block store), publishes the new height on a `watch` channel that Deliver streams wait
//! on, and reports it to the consenter ([`Consenter::committed`]) so its log can be released.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;
use weft_configtx::ChannelConfig;
use weft_ledger::block::{header_hash, last_config_index};
use weft_ledger::{BlockStore, BlockStoreConfig};
use weft_proto::common::Block;

use crate::authn::IdentityCache;
use crate::blockcutter::BatchLimits;
use crate::consensus::{BlockSigner, ConsensusError, Consenter, OrderRequest};
use crate::solo::{SingleNode, SingleNodeParams};

/// Why a channel could not be joined, opened or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("channel '{channel}': {detail}")]
    Invalid { channel: String, detail: String },
    #[error("channel '{channel}' already exists on this orderer")]
    Exists { channel: String },
    #[error("channel '{channel}': {path}: {detail}")]
    Storage {
        channel: String,
        path: PathBuf,
        detail: String,
    },
    #[error(transparent)]
    Consensus(#[from] ConsensusError),
}

/// Where chains live.
#[derive(Debug, Clone)]
pub struct ChainPaths {
    /// `FileLedger.Location`.
    pub ledger_dir: PathBuf,
    /// `Consensus.WALDir`.
    pub wal_dir: PathBuf,
}

impl ChainPaths {
    pub fn chains_dir(&self) -> PathBuf {
        self.ledger_dir.join("chains")
    }
    pub fn store_dir(&self, channel: &str) -> PathBuf {
        self.chains_dir().join(channel)
    }
    fn pending_dir(&self, channel: &str) -> PathBuf {
        self.ledger_dir.join("pending").join(channel)
    }
    pub fn channel_wal_dir(&self, channel: &str) -> PathBuf {
        self.wal_dir.join(channel)
    }

    /// Channels found on disk, sorted.
    pub fn joined(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(self.chains_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        out.sort();
        out
    }
}

/// Fabric's channel name rule: lower-case letters, digits, `.` and `-`, starting with a
/// letter, shorter than 250 characters.
pub fn check_channel_name(name: &str) -> Result<(), String> {
    let ok_first = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    let ok_rest = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if name.is_empty() || name.len() >= 250 || !ok_first || !ok_rest {
        return Err(format!(
            "invalid channel name {name:?}: it must match [a-z][a-z0-9.-]* and be shorter than 250 characters"
        ));
    }
    Ok(())
}

/// A joined channel (see the module documentation).
#[derive(Debug)]
pub struct Chain {
    id: String,
    store: Arc<BlockStore>,
    config: Arc<ChannelConfig>,
    limits: BatchLimits,
    consenter: Arc<dyn Consenter>,
    height: watch::Sender<u64>,
    identities: IdentityCache,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped: watch::Sender<bool>,
}

fn storage(channel: &str, path: &Path, detail: impl std::fmt::Display) -> ChainError {
    ChainError::Storage {
        channel: channel.to_owned(),
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

/// The batch limits a channel config sets.
pub fn limits_of(config: &ChannelConfig) -> BatchLimits {
    let b = config.batch();
    BatchLimits {
        max_message_count: b.max_message_count,
        absolute_max_bytes: b.absolute_max_bytes,
        preferred_max_bytes: b.preferred_max_bytes,
        timeout: b.timeout,
    }
}

impl Chain {
    /// The channel ID and config of a genesis block offered for a join.
    pub fn inspect_genesis(block: &Block) -> Result<(String, ChannelConfig), String> {
        let number = block.header.as_ref().map(|h| h.number);
        if number != Some(0) {
            return Err(format!(
                "the config block is block {}, not a genesis block (0); joining from a later config block is not supported yet",
                number.map_or("?".to_owned(), |n| n.to_string())
            ));
        }
        let config = ChannelConfig::from_block(block)
            .map_err(|e| format!("not a valid config block: {e}"))?;
        let id = config.channel_id().to_owned();
        check_channel_name(&id)?;
        Ok((id, config))
    }

    /// Join: create the channel's block store from its genesis block and start it.
    pub fn join(
        paths: &ChainPaths,
        genesis: &Block,
        signer: &BlockSigner,
    ) -> Result<Arc<Chain>, ChainError> {
        let (id, _) = Self::inspect_genesis(genesis).map_err(|detail| ChainError::Invalid {
            channel: "(genesis block)".into(),
            detail,
        })?;
        let target = paths.store_dir(&id);
        if target.exists() {
            return Err(ChainError::Exists { channel: id });
        }
        let pending = paths.pending_dir(&id);
        let _ = std::fs::remove_dir_all(&pending);
        std::fs::create_dir_all(&pending).map_err(|e| storage(&id, &pending, e))?;
        {
            let store = BlockStore::open(&pending, BlockStoreConfig::default())
                .map_err(|e| storage(&id, &pending, e))?;
            store
                .append_block(genesis)
                .map_err(|e| storage(&id, &pending, e))?;
        }
        std::fs::create_dir_all(paths.chains_dir())
            .map_err(|e| storage(&id, &paths.chains_dir(), e))?;
        // A log left by an earlier chain of the same name would not match the new store.
        let _ = std::fs::remove_dir_all(paths.channel_wal_dir(&id));
        std::fs::rename(&pending, &target).map_err(|e| storage(&id, &target, e))?;
        if let Ok(d) = std::fs::File::open(paths.chains_dir()) {
            let _ = d.sync_all();
        }
        tracing::info!(channel = %id, "joined channel from its genesis block");
        Self::open(paths, &id, signer)
    }

    /// Open a joined channel and start ordering on it.
    pub fn open(
        paths: &ChainPaths,
        id: &str,
        signer: &BlockSigner,
    ) -> Result<Arc<Chain>, ChainError> {
        let dir = paths.store_dir(id);
        let store = Arc::new(
            BlockStore::open(&dir, BlockStoreConfig::default())
                .map_err(|e| storage(id, &dir, e))?,
        );
        let height = store.height();
        let last = match height.checked_sub(1) {
            Some(n) => store
                .block(n)
                .map_err(|e| storage(id, &dir, e))?
                .ok_or_else(|| storage(id, &dir, format!("block {n} is missing")))?,
            None => return Err(storage(
                id,
                &dir,
                "the block store is empty (no genesis block); remove the channel and join again",
            )),
        };
        let last_config = last_config_index(&last).unwrap_or(0);
        let config_block = store
            .block(last_config)
            .map_err(|e| storage(id, &dir, e))?
            .ok_or_else(|| storage(id, &dir, format!("config block {last_config} is missing")))?;
        let config = Arc::new(ChannelConfig::from_block(&config_block).map_err(|e| {
            ChainError::Invalid {
                channel: id.to_owned(),
                detail: format!("config block {last_config}: {e}"),
            }
        })?);
        if config.channel_id() != id {
            return Err(ChainError::Invalid {
                channel: id.to_owned(),
                detail: format!("the stored config is for channel '{}'", config.channel_id()),
            });
        }
        let consensus = config.consensus_type().to_owned();
        if !matches!(consensus.as_str(), "solo" | "etcdraft" | "BFT" | "") {
            tracing::warn!(channel = %id, consensus = %consensus, "unknown consensus type; ordering with the single-node consenter");
        } else if consensus != "solo" {
            tracing::warn!(channel = %id, consensus = %consensus, "the channel asks for {consensus}; this orderer orders it alone with the single-node consenter");
        }
        let limits = limits_of(&config);
        let previous_hash = last.header.as_ref().map(header_hash).unwrap_or([0; 32]);
        let consenter: Arc<dyn Consenter> = Arc::new(SingleNode::open(SingleNodeParams {
            channel: id.to_owned(),
            wal_dir: paths.channel_wal_dir(id),
            height,
            previous_hash,
            last_config,
            config_seq: config.sequence(),
            limits,
            signer: signer.clone(),
        })?);
        let mut decisions = consenter.start()?;
        let (height_tx, _) = watch::channel(height);
        let chain = Arc::new(Chain {
            id: id.to_owned(),
            store: store.clone(),
            config,
            limits,
            consenter: consenter.clone(),
            height: height_tx.clone(),
            identities: IdentityCache::default(),
            writer: Mutex::new(None),
            stopped: watch::channel(false).0,
        });
        let channel = id.to_owned();
        let writer = std::thread::Builder::new()
            .name(format!("blockwriter-{id}"))
            .spawn(move || {
                while let Some(decision) = decisions.blocking_recv() {
                    let number = decision.number();
                    let block = decision.into_block();
                    if let Err(e) = store.append_block(&block) {
                        tracing::error!(channel = %channel, block = number, "cannot store an ordered block; the channel stops ordering: {e}");
                        consenter.halt();
                        break;
                    }
                    let h = store.height();
                    height_tx.send_replace(h);
                    consenter.committed(h);
                }
            })
            .map_err(|e| storage(id, &dir, format!("cannot start the block writer: {e}")))?;
        *chain.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
        tracing::info!(channel = %id, height, last_config, "channel open");
        Ok(chain)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn config(&self) -> &Arc<ChannelConfig> {
        &self.config
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    pub fn identities(&self) -> &IdentityCache {
        &self.identities
    }

    pub fn consenter(&self) -> &Arc<dyn Consenter> {
        &self.consenter
    }

    /// Blocks stored.
    pub fn height(&self) -> u64 {
        *self.height.borrow()
    }

    /// Follow the height as blocks are stored.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.height.subscribe()
    }

    /// Turns true when the chain halts (Deliver streams end).
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// The stored bytes of block `number`.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Bytes>, String> {
        self.store.block_bytes(number).map_err(|e| e.to_string())
    }

    pub fn block(&self, number: u64) -> Result<Option<Block>, String> {
        self.store.block(number).map_err(|e| e.to_string())
    }

    /// Hand a checked envelope to the consenter.
    pub async fn order(&self, envelope: Bytes, size: u32) -> Result<(), ConsensusError> {
        self.consenter
            .order(OrderRequest {
                envelope,
                size,
                config_seq: self.config.sequence(),
            })
            .await
    }

    /// Stop ordering and wait for the writer to store what was decided.
    pub async fn halt(&self) {
        self.consenter.halt();
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = writer {
            // The writer ends when the consenter's task drops its decision sender.
            let _ = tokio::task::spawn_blocking(move || w.join()).await;
        }
        self.stopped.send_replace(true);
    }
}
