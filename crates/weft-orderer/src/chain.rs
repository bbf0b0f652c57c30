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
//! The channel config is read at open from the last config block (the LAST_CONFIG index
//! recorded in the newest block's SIGNATURES metadata, block 0 otherwise).
//!
//! A config update ([`Chain::configure`], for a CONFIG_UPDATE envelope that passed
//! Broadcast's checks) is validated and applied to the current config by
//! [`weft_configtx::update::propose`] (read set, versions, mod_policies), wrapped with the
//! submitted envelope as `last_update` in a `ConfigEnvelope`, put in a CONFIG envelope signed
//! by this orderer, and handed to the consenter, which cuts it into a block of its own. When
//! the consenter has cut it, it calls [`ChainHooks::config_block`]: the chain parses the
//! config from the envelope and swaps it in (config, identity cache, batch limits), then tells
//! its listener (the node's TLS client roots). Config updates of one chain run one at a time:
//! [`Chain::configure`] returns once the block is stored, so the next update is validated
//! against the config it produced.
//!
//! # Writing
//!
//! A dedicated thread receives the consenter's [`Decision`]s, stores each block (fsynced by
//! the block store), publishes the new height on a `watch` channel that Deliver streams wait
//! on, and reports it to the consenter ([`Consenter::committed`]) so its log can be released.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::watch;
use weft_configtx::ChannelConfig;
use weft_ledger::block::{header_hash, last_config_index};
use weft_ledger::{BlockStore, BlockStoreConfig};
use weft_proto::common::{
    Block, ChannelHeader, ConfigEnvelope, Envelope, HeaderType, Payload, SignatureHeader, Status,
};

use crate::authn::IdentityCache;
use crate::blockcutter::{message_size, BatchLimits};
use crate::broadcast::Refusal;
use crate::consensus::{BlockSigner, ChainHooks, ConsensusError, Consenter, OrderRequest};
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

/// How long [`Chain::configure`] waits for its config block to be cut and stored.
pub const CONFIG_BLOCK_WAIT: Duration = Duration::from_secs(30);

/// A joined channel (see the module documentation).
#[derive(Debug)]
pub struct Chain {
    id: String,
    store: Arc<BlockStore>,
    state: Arc<ConfigState>,
    consenter: Arc<dyn Consenter>,
    height: watch::Sender<u64>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    stopped: watch::Sender<bool>,
    signer: BlockSigner,
    /// Serializes config updates.
    update_lock: tokio::sync::Mutex<()>,
    /// When the first envelope not yet in a stored block was ordered
    /// (`blockcutter_block_fill_duration`).
    first_pending: Arc<Mutex<Option<std::time::Instant>>>,
}

type ConfigListener = Arc<dyn Fn() + Send + Sync>;

/// The config in force, shared by the chain and its consenter (through [`ChainHooks`]).
struct ConfigState {
    channel: String,
    config: RwLock<Arc<ChannelConfig>>,
    /// Validated creators of the config in force (a new config starts a new cache).
    identities: RwLock<Arc<IdentityCache>>,
    limits: RwLock<BatchLimits>,
    /// (config sequence, number of the block holding it; 0 if not known).
    sequence: watch::Sender<(u64, u64)>,
    listener: RwLock<Option<ConfigListener>>,
}

impl std::fmt::Debug for ConfigState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigState")
            .field("channel", &self.channel)
            .field("sequence", &*self.sequence.borrow())
            .finish()
    }
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn write<T>(l: &RwLock<T>, v: T) {
    *l.write().unwrap_or_else(|p| p.into_inner()) = v;
}

impl ConfigState {
    fn install(&self, config: ChannelConfig, number: u64) -> (u64, BatchLimits) {
        let seq = config.sequence();
        let limits = limits_of(&config);
        write(&self.config, Arc::new(config));
        write(&self.identities, Arc::new(IdentityCache::for_sequence(seq)));
        write(&self.limits, limits);
        if let Some(l) = read(&self.listener) {
            l();
        }
        self.sequence.send_replace((seq, number));
        (seq, limits)
    }
}

/// The config carried by a CONFIG envelope (marshalled `common.Envelope`).
fn config_of_envelope(channel: &str, envelope: &Bytes) -> Result<ChannelConfig, String> {
    let env = Envelope::decode(envelope.clone()).map_err(|e| format!("envelope: {e}"))?;
    let payload = Payload::decode(env.payload).map_err(|e| format!("payload: {e}"))?;
    let ce = ConfigEnvelope::decode(payload.data).map_err(|e| format!("config envelope: {e}"))?;
    let config = ce.config.ok_or("the config envelope holds no config")?;
    ChannelConfig::from_config(channel, &config).map_err(|e| e.to_string())
}

impl ChainHooks for ConfigState {
    fn config_block(&self, number: u64, envelope: &Bytes) -> Result<(u64, BatchLimits), String> {
        let config = config_of_envelope(&self.channel, envelope)?;
        Ok(self.install(config, number))
    }

    fn revalidate(&self, envelope: &Bytes) -> Result<(), String> {
        let env = Envelope::decode(envelope.clone()).map_err(|e| e.to_string())?;
        let i = crate::broadcast::headers(&env).map_err(|r| r.info)?;
        let size = message_size(env.payload.len(), env.signature.len());
        let max = read(&self.limits).absolute_max_bytes;
        if size > max {
            return Err(format!(
                "{size} bytes, over the new AbsoluteMaxBytes of {max}"
            ));
        }
        let creator = crate::broadcast::creator(&i.signature_header).map_err(|r| r.info)?;
        let config = read(&self.config);
        if config.orderer().maintenance {
            return Err(
                "the channel entered maintenance mode: transactions wait until it ends".into(),
            );
        }
        read(&self.identities)
            .check(
                &config,
                "/Channel/Writers",
                &creator,
                &env.payload,
                &env.signature,
            )
            .map(|_| ())
    }
}

/// An orderer's block store indexes block numbers only, as Fabric's orderer ledger does:
/// nothing on the orderer looks a transaction up by id, and indexing each one cost a read and
/// a write per transaction.
fn store_config() -> BlockStoreConfig {
    BlockStoreConfig {
        index_tx_ids: false,
        ..BlockStoreConfig::default()
    }
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
            let store = BlockStore::open(&pending, store_config())
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
        let store =
            Arc::new(BlockStore::open(&dir, store_config()).map_err(|e| storage(id, &dir, e))?);
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
        let config_seq = config.sequence();
        let state = Arc::new(ConfigState {
            channel: id.to_owned(),
            config: RwLock::new(config),
            identities: RwLock::new(Arc::new(IdentityCache::for_sequence(config_seq))),
            limits: RwLock::new(limits),
            sequence: watch::channel((config_seq, last_config)).0,
            listener: RwLock::new(None),
        });
        let consenter: Arc<dyn Consenter> = Arc::new(SingleNode::open(SingleNodeParams {
            channel: id.to_owned(),
            wal_dir: paths.channel_wal_dir(id),
            height,
            previous_hash,
            last_config,
            config_seq,
            limits,
            signer: signer.clone(),
            hooks: Some(state.clone() as Arc<dyn ChainHooks>),
        })?);
        let mut decisions = consenter.start()?;
        let (height_tx, _) = watch::channel(height);
        let first_pending = Arc::new(Mutex::new(None::<std::time::Instant>));
        let chain = Arc::new(Chain {
            id: id.to_owned(),
            store: store.clone(),
            state,
            consenter: consenter.clone(),
            height: height_tx.clone(),
            writer: Mutex::new(None),
            stopped: watch::channel(false).0,
            signer: signer.clone(),
            update_lock: tokio::sync::Mutex::new(()),
            first_pending: first_pending.clone(),
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
                    let first = first_pending.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(first) = first {
                        weft_ops::orderer::global()
                            .block_fill_duration
                            .with(&[&channel])
                            .observe_duration(first.elapsed());
                    }
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

    /// The config in force.
    pub fn config(&self) -> Arc<ChannelConfig> {
        read(&self.state.config)
    }

    pub fn limits(&self) -> BatchLimits {
        read(&self.state.limits)
    }

    /// The validated creators of the config in force.
    pub fn identities(&self) -> Arc<IdentityCache> {
        read(&self.state.identities)
    }

    /// Call `f` after each config change (once the new config is in force).
    pub fn on_config_change(&self, f: impl Fn() + Send + Sync + 'static) {
        write(&self.state.listener, Some(Arc::new(f) as ConfigListener));
    }

    /// Follow the config sequence.
    pub fn config_sequence(&self) -> watch::Receiver<(u64, u64)> {
        self.state.sequence.subscribe()
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
        {
            let mut first = self.first_pending.lock().unwrap_or_else(|p| p.into_inner());
            if first.is_none() {
                *first = Some(std::time::Instant::now());
            }
        }
        self.consenter
            .order(OrderRequest {
                envelope,
                size,
                config_seq: self.config().sequence(),
                is_config: false,
            })
            .await
    }

    /// Order a CONFIG_UPDATE envelope that passed Broadcast's checks (see the module
    /// documentation); returns once its config block is stored and the config in force.
    pub async fn configure(&self, env: &Envelope) -> Result<(), Refusal> {
        let _serial = self.update_lock.lock().await;
        let id = &self.id;
        let current = self.config();
        let (_, cue) = weft_configtx::update::update_from_envelope(env).map_err(|e| {
            Refusal::new(
                Status::BadRequest,
                format!("config update for channel '{id}' refused: {e}"),
            )
        })?;
        let (config, _) = weft_configtx::update::propose(&current, &cue).map_err(|e| {
            let status = if e.is_forbidden() {
                Status::Forbidden
            } else {
                Status::BadRequest
            };
            Refusal::new(
                status,
                format!("config update for channel '{id}' refused: {e}"),
            )
        })?;
        let target = config.sequence;
        let ce = ConfigEnvelope {
            config: Some(config),
            last_update: Some(env.clone()),
        };
        let envelope = self.config_envelope(&ce).map_err(|e| {
            Refusal::new(
                Status::InternalServerError,
                format!("channel '{id}': cannot sign the config transaction: {e}"),
            )
        })?;
        let size = message_size(envelope.payload.len(), envelope.signature.len());
        let max = self.limits().absolute_max_bytes;
        if size > max {
            return Err(Refusal::new(
                Status::RequestEntityTooLarge,
                format!("the config transaction would be {size} bytes, over channel '{id}''s AbsoluteMaxBytes of {max}"),
            ));
        }
        let mut seq = self.config_sequence();
        self.consenter
            .order(OrderRequest {
                envelope: Bytes::from(envelope.encode_to_vec()),
                size,
                config_seq: current.sequence(),
                is_config: true,
            })
            .await
            .map_err(|e| Refusal::new(Status::ServiceUnavailable, e.to_string()))?;
        let unavailable = |what: &str| {
            Refusal::new(
                Status::ServiceUnavailable,
                format!("channel '{id}': the config block for sequence {target} {what}; fetch the config block to see whether it took effect"),
            )
        };
        let number = tokio::time::timeout(CONFIG_BLOCK_WAIT, seq.wait_for(|(s, _)| *s >= target))
            .await
            .map_err(|_| unavailable("was not cut in time"))?
            .map_err(|_| unavailable("was not cut: the channel stopped"))?
            .1;
        let mut height = self.subscribe();
        tokio::time::timeout(CONFIG_BLOCK_WAIT, height.wait_for(|h| *h > number))
            .await
            .map_err(|_| unavailable("was not stored in time"))?
            .map_err(|_| unavailable("was not stored: the channel stopped"))?;
        tracing::info!(channel = %id, sequence = target, block = number, "channel config updated");
        Ok(())
    }

    /// A CONFIG envelope carrying `ce`, signed by this orderer.
    fn config_envelope(&self, ce: &ConfigEnvelope) -> Result<Envelope, String> {
        let nonce = weft_crypto::random_bytes(24).map_err(|e| e.to_string())?;
        let creator = self.signer.creator().clone();
        let tx_id = weft_crypto::hex(&weft_crypto::sha256(
            &[nonce.as_slice(), creator.as_ref()].concat(),
        ));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ch = ChannelHeader {
            r#type: HeaderType::Config as i32,
            channel_id: self.id.clone(),
            timestamp: Some(prost_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: 0,
            }),
            tx_id,
            ..ChannelHeader::default()
        };
        let sh = SignatureHeader {
            creator,
            nonce: Bytes::from(nonce),
        };
        let payload = Bytes::from(
            Payload {
                header: Some(weft_proto::common::Header {
                    channel_header: Bytes::from(ch.encode_to_vec()),
                    signature_header: Bytes::from(sh.encode_to_vec()),
                }),
                data: Bytes::from(ce.encode_to_vec()),
            }
            .encode_to_vec(),
        );
        let signature = self
            .signer
            .identity()
            .sign(&payload)
            .map_err(|e| e.to_string())?;
        Ok(Envelope {
            payload,
            signature: Bytes::from(signature),
        })
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
