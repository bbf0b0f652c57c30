//! The single-node consenter: one orderer orders everything itself.
//!
//! One task per channel reads [`OrderRequest`]s, feeds them to the [`BlockCutter`], arms the
//! batch timer, and for each cut batch:
//!
//! 1. appends `(block number, envelopes)` to the write-ahead log ([`crate::wal`]) and fsyncs it;
//! 2. assembles and signs the block ([`BlockSigner::decide`]);
//! 3. sends the [`Decision`] to the chain, which writes it to the block store and reports the
//!    height back ([`Consenter::committed`]), releasing the log.
//!
//! On start, log records at or above the block store's height (a crash after step 1, before
//! the block reached the store) are turned into blocks again, before anything new is ordered;
//! records below it are released. The log must continue the store exactly: a record for a
//! block beyond the next one, with nothing for the next one, stops the start with an error
//! rather than leave a hole in the chain.
//!
//! A config request (`is_config`) cuts the pending envelopes into a block, then goes into a
//! block of its own; right after that block is handed over, the chain installs its config
//! ([`ChainHooks::config_block`]) and the cutter takes the new batch limits, before the next
//! request is read. A normal request validated against an older config sequence is checked
//! again ([`ChainHooks::revalidate`]) and dropped, with a warning, if it no longer passes (its
//! client already had SUCCESS, as with Fabric). A config request validated against an older
//! sequence is dropped: its chain serializes config updates, so that does not happen.
//! Recovered blocks holding a config envelope update LAST_CONFIG and the chain's config too.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use weft_ledger::block::header_hash;

use crate::blockcutter::{Batch, BatchLimits, BlockCutter};
use crate::consensus::{
    is_config_envelope, BlockSigner, BoxFuture, ChainHooks, ConsensusError, Consenter,
    ConsenterInfo, Decision, OrderRequest,
};
use crate::wal::{Wal, WalEntry};

/// Requests waiting for the ordering task; senders wait when it is full.
const QUEUE: usize = 4096;
/// Decisions waiting for the block writer.
const DECISIONS: usize = 64;

/// Where a [`SingleNode`] starts.
#[derive(Debug, Clone)]
pub struct SingleNodeParams {
    pub channel: String,
    /// This channel's log directory (`Consensus.WALDir/<channel>`).
    pub wal_dir: PathBuf,
    /// The block store's height.
    pub height: u64,
    /// Header hash of block `height - 1`.
    pub previous_hash: [u8; 32],
    /// Number of the last config block.
    pub last_config: u64,
    pub config_seq: u64,
    pub limits: BatchLimits,
    pub signer: BlockSigner,
    /// The chain's config hooks (config blocks, re-validation); `None` orders without them.
    pub hooks: Option<Arc<dyn ChainHooks>>,
}

#[derive(Debug)]
struct Startup {
    requests: mpsc::Receiver<OrderRequest>,
    replay: Vec<WalEntry>,
}

/// The single-node consenter (see the module documentation).
#[derive(Debug)]
pub struct SingleNode {
    params: SingleNodeParams,
    requests: mpsc::Sender<OrderRequest>,
    startup: Mutex<Option<Startup>>,
    wal: Arc<Mutex<Wal>>,
    halt: watch::Sender<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SingleNode {
    /// Open the log and check it against the block store's height.
    pub fn open(params: SingleNodeParams) -> Result<SingleNode, ConsensusError> {
        let start_err = |detail: String| ConsensusError::Start {
            channel: params.channel.clone(),
            detail,
        };
        let (mut wal, entries) =
            Wal::open(&params.wal_dir).map_err(|e| start_err(e.to_string()))?;
        let replay: Vec<WalEntry> = entries
            .into_iter()
            .filter(|e| e.number >= params.height)
            .collect();
        for (i, e) in replay.iter().enumerate() {
            let expected = params.height + i as u64;
            if e.number != expected {
                return Err(start_err(format!(
                    "the write-ahead log in {} holds block {} where block {expected} was expected \
                     (block store height {}); the log does not belong to this block store — \
                     move it away if the block store is the one to keep",
                    params.wal_dir.display(),
                    e.number,
                    params.height
                )));
            }
        }
        if !replay.is_empty() {
            tracing::warn!(
                channel = %params.channel,
                blocks = replay.len(),
                from = params.height,
                "recovering blocks ordered before a crash from the write-ahead log"
            );
        }
        wal.release(params.height)
            .map_err(|e| start_err(e.to_string()))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (halt, _) = watch::channel(false);
        Ok(SingleNode {
            params,
            requests: tx,
            startup: Mutex::new(Some(Startup {
                requests: rx,
                replay,
            })),
            wal: Arc::new(Mutex::new(wal)),
            halt,
        })
    }
}

struct Orderer {
    channel: String,
    signer: BlockSigner,
    last_config: u64,
    next: u64,
    previous_hash: [u8; 32],
    wal: Arc<Mutex<Wal>>,
    decisions: mpsc::Sender<Decision>,
    hooks: Option<Arc<dyn ChainHooks>>,
    config_seq: u64,
    limits: BatchLimits,
}

impl Orderer {
    /// Log, assemble, sign and hand over one batch. An error stops the chain.
    async fn emit(&mut self, batch: Batch, log: bool) -> Result<(), String> {
        let number = self.next;
        let config = match batch.as_slice() {
            [only] if is_config_envelope(only) => Some(only.clone()),
            _ => None,
        };
        if config.is_some() {
            self.last_config = number;
        }
        if log {
            let wal = self.wal.clone();
            let logged = batch.clone();
            tokio::task::spawn_blocking(move || lock(&wal).append(number, &logged))
                .await
                .map_err(|e| format!("write-ahead log task failed: {e}"))?
                .map_err(|e| e.to_string())?;
        }
        let decision = self
            .signer
            .decide(number, &self.previous_hash, batch, self.last_config)
            .map_err(|e| e.to_string())?;
        if let Some(h) = decision.block.header.as_ref() {
            self.previous_hash = header_hash(h);
        }
        self.next += 1;
        tracing::debug!(channel = %self.channel, block = number, "block cut");
        // The new config is in force before its block is written, as Fabric's block writer
        // updates the channel's bundle first: whoever sees the config block (Deliver checking
        // a reader's access again, for one) already sees the config it carries.
        if let (Some(envelope), Some(hooks)) = (config, &self.hooks) {
            let (seq, limits) = hooks
                .config_block(number, &envelope)
                .map_err(|e| format!("config block {number} cannot take effect: {e}"))?;
            tracing::info!(channel = %self.channel, block = number, sequence = seq, "config block cut; the new config is in force");
            self.config_seq = seq;
            self.limits = limits;
        }
        self.decisions
            .send(decision)
            .await
            .map_err(|_| "the block writer stopped".to_owned())?;
        Ok(())
    }
}

impl Consenter for SingleNode {
    fn start(&self) -> Result<mpsc::Receiver<Decision>, ConsensusError> {
        let Some(Startup {
            mut requests,
            replay,
        }) = lock(&self.startup).take()
        else {
            return Err(ConsensusError::Start {
                channel: self.params.channel.clone(),
                detail: "already started".into(),
            });
        };
        let (dtx, drx) = mpsc::channel(DECISIONS);
        let p = &self.params;
        let mut orderer = Orderer {
            channel: p.channel.clone(),
            signer: p.signer.clone(),
            last_config: p.last_config,
            next: p.height,
            previous_hash: p.previous_hash,
            wal: self.wal.clone(),
            decisions: dtx,
            hooks: p.hooks.clone(),
            config_seq: p.config_seq,
            limits: p.limits,
        };
        let mut halt = self.halt.subscribe();
        tokio::spawn(async move {
            for entry in replay {
                if let Err(e) = orderer.emit(entry.envelopes, false).await {
                    tracing::error!(channel = %orderer.channel, "recovery stopped: {e}");
                    return;
                }
            }
            let mut cutter = BlockCutter::new(orderer.limits);
            let mut deadline: Option<Instant> = None;
            loop {
                let far = Instant::now() + std::time::Duration::from_secs(3600);
                tokio::select! {
                    changed = halt.changed() => {
                        if changed.is_err() || *halt.borrow_and_update() {
                            break;
                        }
                    }
                    req = requests.recv() => {
                        let Some(req) = req else { break };
                        if req.is_config {
                            if req.config_seq != orderer.config_seq {
                                tracing::warn!(channel = %orderer.channel, validated = req.config_seq, current = orderer.config_seq,
                                    "dropping a config transaction validated against another config sequence");
                                continue;
                            }
                            deadline = None;
                            let pending = cutter.cut();
                            for batch in [pending, vec![req.envelope]] {
                                if batch.is_empty() {
                                    continue;
                                }
                                if let Err(e) = orderer.emit(batch, true).await {
                                    tracing::error!(channel = %orderer.channel, "ordering stopped: {e}");
                                    return;
                                }
                            }
                            cutter.set_limits(orderer.limits);
                            continue;
                        }
                        if req.config_seq < orderer.config_seq {
                            if let Some(hooks) = &orderer.hooks {
                                if let Err(e) = hooks.revalidate(&req.envelope) {
                                    tracing::warn!(channel = %orderer.channel, validated = req.config_seq, current = orderer.config_seq,
                                        "dropping an envelope that no longer passes under the new config: {e}");
                                    continue;
                                }
                            }
                        }
                        let o = cutter.ordered(req.envelope, req.size);
                        if !o.batches.is_empty() && !o.pending {
                            deadline = None;
                        }
                        if o.timer {
                            deadline = Some(Instant::now() + orderer.limits.timeout);
                        }
                        for batch in o.batches {
                            if let Err(e) = orderer.emit(batch, true).await {
                                tracing::error!(channel = %orderer.channel, "ordering stopped: {e}");
                                return;
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                        deadline = None;
                        let batch = cutter.cut();
                        if !batch.is_empty() {
                            if let Err(e) = orderer.emit(batch, true).await {
                                tracing::error!(channel = %orderer.channel, "ordering stopped: {e}");
                                return;
                            }
                        }
                    }
                }
            }
            tracing::info!(channel = %orderer.channel, "single-node consenter halted");
        });
        Ok(drx)
    }

    fn order(&self, request: OrderRequest) -> BoxFuture<'_, Result<(), ConsensusError>> {
        Box::pin(async move {
            if *self.halt.borrow() {
                return Err(self.unavailable("halted"));
            }
            self.requests
                .send(request)
                .await
                .map_err(|_| self.unavailable("the ordering task stopped"))
        })
    }

    fn committed(&self, height: u64) {
        if let Err(e) = lock(&self.wal).release(height) {
            tracing::warn!(channel = %self.params.channel, "{e}");
        }
    }

    fn consenters(&self) -> Vec<ConsenterInfo> {
        let id = self.params.signer.identity();
        vec![ConsenterInfo {
            id: 1,
            msp_id: id.msp_id().to_owned(),
            identity: self.params.signer.creator().clone(),
        }]
    }

    fn halt(&self) {
        self.halt.send_replace(true);
    }
}

impl SingleNode {
    fn unavailable(&self, detail: &str) -> ConsensusError {
        ConsensusError::Unavailable {
            channel: self.params.channel.clone(),
            detail: detail.to_owned(),
        }
    }

    /// Append a batch to the log without ordering it: what a crash right after the log write
    /// leaves behind. For recovery tests.
    #[doc(hidden)]
    pub fn log_only(&self, number: u64, envelopes: &[bytes::Bytes]) -> Result<(), String> {
        lock(&self.wal)
            .append(number, envelopes)
            .map_err(|e| e.to_string())
    }
}
