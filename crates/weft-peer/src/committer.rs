//! The committer: a validated block becomes the ledger.
//!
//! Per block, holding the channel's commit lock:
//! 1. [`prepare`]: phase 1 of validation ([`crate::validator::check_block`]) on blocking
//!    threads, in parallel across the block. It reads no state, so the next block can be
//!    prepared while this one commits ([`Pipeline`]).
//! 2. [`commit_prepared`]: phase 2 (duplicates, endorsement policies, MVCC) over a read view of
//!    the state, the codes written into the block's TRANSACTIONS_FILTER, the block appended to
//!    the block store (fsync'd), then the valid transactions' writes applied to state and
//!    history in one RocksDB batch that also moves the savepoint to the block. Then the
//!    results are published on the channel's [`crate::commit_events::CommitEvents`].
//!
//! A config block (one CONFIG transaction, made by the orderer from a config update) is
//! checked as Fabric's peer checks it before anything is stored ([`check_config_block`]):
//! its config must be at the channel's sequence + 1, and its `last_update`, applied to the
//! channel's current config (read set, versions, every changed element's mod_policy against
//! the update's signatures), must produce exactly that config. A block that fails is not
//! committed (the channel stops there, as a Fabric peer does). Once it is stored, the new
//! config is in force ([`Channel::apply_config`]): MSPs, policies, anchor peers, TLS roots.
//! Phase 1 of a block prepared before a config block committed is run again.
//!
//! Crash safety: the block is durable before any of its state is written, and the state batch
//! (with its savepoint) is atomic, so after a crash at any point the state is either at the
//! block or one block behind the block store — never ahead of it. The state batch needs no
//! fsync of its own: [`recover`] (run when a channel opens) re-applies every block above the
//! savepoint from the stored block and its stored codes.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use weft_ledger::block::{set_transactions_filter, transactions_filter};
use weft_ledger::mvcc::BlockValidator;
use weft_ledger::Version;
use weft_proto::common::{Block, ChannelHeader, Envelope, HeaderType, Payload};
use weft_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ProposalResponsePayload, Transaction, TxValidationCode,
};
use weft_proto::rwset::TxReadWriteSet;

use crate::channel::Channel;
use crate::commit_events::{CommittedBlock, CommittedTx};
use crate::validator::{self, Checked, TxResult, ValidatedBlock};

/// Why a block could not be committed. The ledger is unchanged unless said otherwise.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    #[error("channel {channel}: block {number} cannot be committed: the ledger height is {height} (blocks commit in order)")]
    OutOfOrder {
        channel: String,
        number: u64,
        height: u64,
    },
    #[error("channel {channel}: block {number} is malformed: {detail}")]
    BadBlock {
        channel: String,
        number: u64,
        detail: String,
    },
    #[error("channel {channel}: block {number}: {detail}")]
    Ledger {
        channel: String,
        number: u64,
        detail: String,
    },
}

/// A block after phase 1 of validation.
#[derive(Debug)]
pub struct Prepared {
    pub block: Block,
    pub number: u64,
    pub checked: Vec<Checked>,
    /// When phase 1 began (`ledger_block_processing_time`).
    pub started: std::time::Instant,
    /// The channel's config sequence phase 1 ran under.
    pub config_seq: Option<u64>,
}

/// How many threads phase 1 uses: the machine's cores, read once (the standard library reads
/// the cgroup files on every call, and this is asked for every block).
pub fn default_workers() -> usize {
    static WORKERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *WORKERS.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

fn number_of(channel: &Channel, block: &Block) -> Result<u64, CommitError> {
    block
        .header
        .as_ref()
        .map(|h| h.number)
        .ok_or_else(|| CommitError::BadBlock {
            channel: channel.id().to_owned(),
            number: channel.blocks().height(),
            detail: "the block has no header".into(),
        })
}

/// Phase 1 of validation for `block` (see the module docs).
pub async fn prepare(channel: Arc<Channel>, block: Block) -> Result<Prepared, CommitError> {
    let started = std::time::Instant::now();
    let config_seq = channel.config().map(|c| c.sequence());
    let number = number_of(&channel, &block)?;
    let envelopes: Vec<Bytes> = block
        .data
        .as_ref()
        .map(|d| d.data.clone())
        .unwrap_or_default();
    let workers = default_workers();
    let ch = channel.clone();
    let checked =
        tokio::task::spawn_blocking(move || validator::check_block(&*ch, &envelopes, workers))
            .await
            .map_err(|e| CommitError::Ledger {
                channel: channel.id().to_owned(),
                number,
                detail: format!("validation stopped: {e}"),
            })?;
    Ok(Prepared {
        block,
        number,
        checked,
        started,
        config_seq,
    })
}

/// Check a config block against the channel's current config (see the module docs) and
/// return the config it carries.
pub fn check_config_block(
    channel: &Channel,
    number: u64,
    block: &Block,
) -> Result<Arc<weft_configtx::ChannelConfig>, CommitError> {
    let bad = |detail: String| CommitError::BadBlock {
        channel: channel.id().to_owned(),
        number,
        detail: format!("config block refused: {detail}"),
    };
    let envelopes = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    let [env] = envelopes else {
        return Err(bad(format!(
            "a config transaction must be alone in its block; this one holds {}",
            envelopes.len()
        )));
    };
    let current = channel.config().ok_or_else(|| {
        bad("the channel comes from a channel file and has no config to update".into())
    })?;
    let ce = Envelope::decode(env.clone())
        .ok()
        .and_then(|e| Payload::decode(e.payload).ok())
        .and_then(|p| weft_proto::common::ConfigEnvelope::decode(p.data).ok())
        .ok_or_else(|| bad("the envelope does not hold a ConfigEnvelope".into()))?;
    let config = weft_configtx::update::validate_config_envelope(&current, &ce).map_err(|e| {
        bad(format!(
            "{e}; the channel stops committing here (the orderer ordered a config this peer cannot accept)"
        ))
    })?;
    Ok(Arc::new(config))
}

/// Validate and commit `block` (both phases).
pub async fn commit_block(
    channel: &Arc<Channel>,
    block: Block,
) -> Result<Arc<CommittedBlock>, CommitError> {
    let prepared = prepare(channel.clone(), block).await?;
    commit_prepared(channel, prepared).await
}

/// Phase 2 and the commit of a prepared block (see the module docs).
pub async fn commit_prepared(
    channel: &Arc<Channel>,
    prepared: Prepared,
) -> Result<Arc<CommittedBlock>, CommitError> {
    let _guard = channel.commit_lock().lock().await;
    let Prepared {
        mut block,
        number,
        checked,
        started,
        config_seq,
    } = prepared;
    let id = channel.id().to_owned();
    let ledger_err = |detail: String| CommitError::Ledger {
        channel: id.clone(),
        number,
        detail,
    };
    let height = channel.blocks().height();
    if number != height {
        return Err(CommitError::OutOfOrder {
            channel: id.clone(),
            number,
            height,
        });
    }
    let checked = if channel.config().map(|c| c.sequence()) != config_seq {
        // A config block committed since phase 1 ran: check again under the new config.
        let envelopes: Vec<Bytes> = block
            .data
            .as_ref()
            .map(|d| d.data.clone())
            .unwrap_or_default();
        let ch = channel.clone();
        tokio::task::spawn_blocking(move || {
            validator::check_block(&*ch, &envelopes, default_workers())
        })
        .await
        .map_err(|e| ledger_err(format!("validation stopped: {e}")))?
    } else {
        checked
    };
    let new_config = if checked.iter().any(|c| matches!(c, Checked::Config { .. })) {
        Some(check_config_block(channel, number, &block)?)
    } else {
        None
    };
    let view = channel.state().read().await;
    let ch = channel.clone();
    let validated: ValidatedBlock = tokio::task::spawn_blocking(move || {
        let on_ledger = |tx_id: &str| -> Result<bool, String> {
            ch.blocks()
                .tx_location(tx_id)
                .map(|l| l.is_some())
                .map_err(|e| e.to_string())
        };
        validator::finish_block(&*ch, &view, number, checked, &on_ledger)
    })
    .await
    .map_err(|e| ledger_err(format!("validation stopped: {e}")))?
    .map_err(|e| ledger_err(format!("validation could not read the state: {e}")))?;

    let codes = validated.codes();
    set_transactions_filter(&mut block, &codes);
    let bytes = block.encode_to_vec();
    // A config block's config is in force before the block is stored (as Fabric's orderer
    // updates its bundle before writing): whoever reads the block from the store (a Deliver
    // stream checking its reader's access again) already sees the config it carries.
    if let Some(config) = new_config {
        channel.apply_config(config);
    }
    let blocks = channel.blocks().clone();
    let block = tokio::task::spawn_blocking(move || {
        blocks
            .append_decoded(number, &block, &bytes)
            .map(|()| block)
    })
    .await
    .map_err(|e| ledger_err(format!("the block store append stopped: {e}")))?
    .map_err(|e| ledger_err(format!("cannot store the block: {e}")))?;
    let tx_count = validated.results.len() as u64;
    channel
        .state()
        .apply(validated.updates, Version::new(number, tx_count), false)
        .await
        .map_err(|e| {
            ledger_err(format!(
                "the block is stored but its state could not be written ({e}); the peer re-applies it when the channel is reopened"
            ))
        })?;
    let valid = validated
        .results
        .iter()
        .filter(|r| r.code == TxValidationCode::Valid)
        .count();
    let definitions_changed = validated.results.iter().any(|r| r.writes_lifecycle);
    tracing::info!(channel = %id, block = number, txs = tx_count, valid, "committed block");
    let committed = Arc::new(CommittedBlock {
        number,
        block: Arc::new(block),
        txs: validated.results.into_iter().map(committed_tx).collect(),
    });
    if definitions_changed {
        // Before publishing: a client that saw the commit can use the new definition.
        if let Err(e) = crate::lifecycle::load_definitions(channel, channel.local_msp()).await {
            tracing::error!(channel = %id, block = number, "cannot load the chaincode definitions: {e}");
        }
    }
    channel.commit_events().publish(committed.clone());
    count_block(&id, &committed, started.elapsed());
    Ok(committed)
}

/// `ledger_block_processing_time` and `ledger_transaction_count` for a committed block.
fn count_block(channel: &str, committed: &CommittedBlock, took: std::time::Duration) {
    let m = weft_ops::peer::ledger();
    m.block_processing_time
        .with(&[channel])
        .observe_duration(took);
    let envelopes = committed.block.data.as_ref().map(|d| d.data.as_slice());
    for (i, tx) in committed.txs.iter().enumerate() {
        let (tx_type, chaincode) = envelopes
            .and_then(|e| e.get(i))
            .map(type_and_chaincode)
            .unwrap_or_default();
        let code = TxValidationCode::try_from(tx.code)
            .map(|c| c.as_str_name().to_owned())
            .unwrap_or_else(|_| tx.code.to_string());
        m.transaction_count
            .with(&[channel, &tx_type, &chaincode, &code])
            .inc();
    }
}

/// The header type name and chaincode name of an envelope (empty when unreadable).
fn type_and_chaincode(env: &Bytes) -> (String, String) {
    let chdr = Envelope::decode(env.clone())
        .ok()
        .and_then(|e| Payload::decode(e.payload).ok())
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header).ok());
    let Some(chdr) = chdr else {
        return (String::new(), String::new());
    };
    let tx_type = HeaderType::try_from(chdr.r#type)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| chdr.r#type.to_string());
    let chaincode = weft_proto::protos::ChaincodeHeaderExtension::decode(chdr.extension)
        .ok()
        .and_then(|x| x.chaincode_id)
        .map(|c| c.name)
        .unwrap_or_default();
    (tx_type, chaincode)
}

fn committed_tx(r: TxResult) -> CommittedTx {
    CommittedTx {
        tx_id: r.tx_id,
        code: r.code as i32,
        chaincode_event: r.chaincode_event,
    }
}

/// The tx id, read/write set and timestamp of a stored endorser transaction (no signature
/// checks: the block's codes already say it is valid). `None` for anything else.
/// A stored transaction's tx id, read/write set and timestamp.
type StoredTx = (String, TxReadWriteSet, Option<(i64, i32)>);

fn stored_rwset(env: &Bytes) -> Option<StoredTx> {
    let env = Envelope::decode(env.clone()).ok()?;
    let payload = Payload::decode(env.payload).ok()?;
    let chdr = ChannelHeader::decode(payload.header?.channel_header).ok()?;
    if chdr.r#type != HeaderType::EndorserTransaction as i32 {
        return None;
    }
    let tx = Transaction::decode(payload.data).ok()?;
    let cap = ChaincodeActionPayload::decode(tx.actions.first()?.payload.clone()).ok()?;
    let prp = ProposalResponsePayload::decode(cap.action?.proposal_response_payload).ok()?;
    let cca = ChaincodeAction::decode(prp.extension).ok()?;
    let rwset = TxReadWriteSet::decode(cca.results).ok()?;
    Some((
        chdr.tx_id,
        rwset,
        chdr.timestamp.map(|t| (t.seconds, t.nanos)),
    ))
}

/// Bring the state up to the block store after a crash: re-apply, from the stored blocks and
/// their stored codes, every block above the state's savepoint. Returns how many blocks were
/// re-applied.
pub async fn recover(channel: &Channel) -> Result<u64, CommitError> {
    let _guard = channel.commit_lock().lock().await;
    let id = channel.id().to_owned();
    let height = channel.blocks().height();
    let savepoint = channel
        .state()
        .savepoint()
        .map_err(|e| CommitError::Ledger {
            channel: id.clone(),
            number: height,
            detail: format!("cannot read the state savepoint: {e}"),
        })?;
    let next = savepoint.map(|v| v.block_num + 1).unwrap_or(0);
    if next > height {
        if height > 0 {
            tracing::warn!(channel = %id, height, savepoint = next - 1, "the state is ahead of the block store (state written without blocks)");
        }
        return Ok(0);
    }
    let mut applied = 0;
    for number in next..height {
        let err = |detail: String| CommitError::Ledger {
            channel: id.clone(),
            number,
            detail,
        };
        let block = channel
            .blocks()
            .block(number)
            .map_err(|e| err(format!("cannot read the stored block: {e}")))?
            .ok_or_else(|| err("the stored block is missing".into()))?;
        let codes = transactions_filter(&block)
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let envelopes = block.data.map(|d| d.data).unwrap_or_default();
        let view = channel.state().read().await;
        let mut bv = BlockValidator::new(&view, number);
        for (i, env) in envelopes.iter().enumerate() {
            if codes.get(i).copied() != Some(TxValidationCode::Valid as i32 as u8) {
                continue;
            }
            if let Some((tx_id, rwset, ts)) = stored_rwset(env) {
                bv.apply(i as u64, &rwset, &tx_id, ts)
                    .map_err(|e| err(format!("cannot re-apply transaction {i}: {e}")))?;
            }
        }
        let updates = bv.finish();
        drop(view);
        channel
            .state()
            .apply(updates, Version::new(number, envelopes.len() as u64), true)
            .await
            .map_err(|e| err(format!("cannot write the recovered state: {e}")))?;
        applied += 1;
    }
    if applied > 0 {
        tracing::warn!(channel = %id, from = next, to = height - 1, "re-applied blocks whose state was not written before a crash");
    }
    Ok(applied)
}

/// A two-stage commit pipeline: phase 1 of block n+1 runs while block n commits.
#[derive(Debug)]
pub struct Pipeline {
    tx: tokio::sync::mpsc::Sender<Block>,
    task: tokio::task::JoinHandle<Result<(), CommitError>>,
}

impl Pipeline {
    /// Start a pipeline committing to `channel`; `on_commit` sees every committed block.
    pub fn start(
        channel: Arc<Channel>,
        on_commit: impl Fn(&CommittedBlock) + Send + Sync + 'static,
    ) -> Pipeline {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Block>(4);
        let (ptx, mut prx) = tokio::sync::mpsc::channel::<Prepared>(1);
        let ch = channel.clone();
        let preparer = tokio::spawn(async move {
            while let Some(block) = rx.recv().await {
                let p = prepare(ch.clone(), block).await?;
                if ptx.send(p).await.is_err() {
                    break;
                }
            }
            Ok::<(), CommitError>(())
        });
        let task = tokio::spawn(async move {
            while let Some(p) = prx.recv().await {
                let committed = commit_prepared(&channel, p).await?;
                on_commit(&committed);
            }
            match preparer.await {
                Ok(r) => r,
                Err(e) => Err(CommitError::Ledger {
                    channel: channel.id().to_owned(),
                    number: channel.blocks().height(),
                    detail: format!("the validation stage stopped: {e}"),
                }),
            }
        });
        Pipeline { tx, task }
    }

    /// Queue a block (waits while the pipeline is full). `false`: the pipeline stopped (see
    /// [`Pipeline::finish`] for why).
    pub async fn push(&self, block: Block) -> bool {
        self.tx.send(block).await.is_ok()
    }

    /// Stop taking blocks, commit the queued ones, and report the first failure.
    pub async fn finish(self) -> Result<(), CommitError> {
        drop(self.tx);
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(CommitError::Ledger {
                channel: String::new(),
                number: 0,
                detail: format!("the commit stage stopped: {e}"),
            }),
        }
    }
}

/// Store a channel's genesis block as block 0 (config transactions, marked valid: a genesis
/// block is trusted as the channel's definition, not validated) and move the savepoint to it.
pub async fn commit_genesis(channel: &Channel, mut block: Block) -> Result<(), CommitError> {
    let _guard = channel.commit_lock().lock().await;
    let id = channel.id().to_owned();
    let err = |detail: String| CommitError::Ledger {
        channel: id.clone(),
        number: 0,
        detail,
    };
    let number = number_of(channel, &block)?;
    if number != 0 || channel.blocks().height() != 0 {
        return Err(CommitError::OutOfOrder {
            channel: id.clone(),
            number,
            height: channel.blocks().height(),
        });
    }
    let n = block.data.as_ref().map(|d| d.data.len()).unwrap_or(0);
    let codes = vec![TxValidationCode::Valid as i32 as u8; n];
    set_transactions_filter(&mut block, &codes);
    channel
        .blocks()
        .append(0, &block.encode_to_vec())
        .map_err(|e| err(format!("cannot store the genesis block: {e}")))?;
    channel
        .state()
        .apply(
            weft_ledger::UpdateBatch::new(),
            Version::new(0, n as u64),
            true,
        )
        .await
        .map_err(|e| err(format!("cannot write the state savepoint: {e}")))?;
    let txs = block
        .data
        .as_ref()
        .map(|d| d.data.iter().map(tx_id_of).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|tx_id| CommittedTx {
            tx_id,
            code: TxValidationCode::Valid as i32,
            chaincode_event: None,
        })
        .collect();
    channel.commit_events().publish(Arc::new(CommittedBlock {
        number: 0,
        block: Arc::new(block),
        txs,
    }));
    Ok(())
}

fn tx_id_of(env: &Bytes) -> String {
    Envelope::decode(env.clone())
        .ok()
        .and_then(|e| Payload::decode(e.payload).ok())
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header).ok())
        .map(|c| c.tx_id)
        .unwrap_or_default()
}
