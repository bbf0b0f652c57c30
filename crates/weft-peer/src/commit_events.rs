//! Commit notifications for one channel: the committer publishes every committed block here,
//! and the gateway (`CommitStatus`, `ChaincodeEvents`) and the deliver service listen.
//!
//! Design:
//! - a [`tokio::sync::broadcast`] channel carries `Arc<CommittedBlock>` to live subscribers;
//!   a slow subscriber that falls behind gets `Lagged` and must catch up from the block store;
//! - a bounded map of recent transaction results (the last [`RECENT_TXS`] tx ids) lets
//!   [`CommitEvents::wait_for_tx`] answer for a transaction that committed just before the call;
//! - waiting never misses a commit racing the call: the waiter subscribes first, then checks
//!   the recent map (and, with [`CommitEvents::wait_for_tx_or`], a ledger lookup the caller
//!   supplies), then listens. `publish` records results in the map before it broadcasts.
//!
//! `CommitEvents` is a handle: cloning it is cheap and every clone sees the same stream.
//!
//! [`parse_tx`] and [`CommittedBlock::from_block`] read the same facts back from a stored
//! block (tx id, header type, chaincode event, the TRANSACTIONS_FILTER code), for listeners
//! that replay history from the block store.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use tokio::sync::broadcast;
use weft_proto::common::{Block, ChannelHeader, Envelope, HeaderType, Payload};
use weft_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent, ProposalResponsePayload, Transaction,
};

use crate::sync::lock;

/// How many recent transaction results are kept for late waiters.
pub const RECENT_TXS: usize = 50_000;

/// How many blocks a live subscriber may fall behind before it gets `Lagged`.
pub const BROADCAST_CAPACITY: usize = 256;

/// One transaction of a committed block, with its validation result.
#[derive(Debug, Clone, PartialEq)]
pub struct CommittedTx {
    pub tx_id: String,
    /// `protos::TxValidationCode` as i32 (0 = VALID).
    pub code: i32,
    /// The chaincode event the transaction set, if any (kept for valid and invalid
    /// transactions alike; listeners filter on `code`).
    pub chaincode_event: Option<ChaincodeEvent>,
}

/// A block as committed to the ledger, with per-transaction results in block order.
#[derive(Debug, Clone)]
pub struct CommittedBlock {
    pub number: u64,
    pub block: Arc<Block>,
    pub txs: Vec<CommittedTx>,
}

/// `TxValidationCode.NOT_VALIDATED`, for a transaction the block's filter does not cover.
pub const NOT_VALIDATED: i32 = 254;

impl CommittedBlock {
    /// The committed view of a stored block: each envelope's tx id and chaincode event, with
    /// its code from the block's TRANSACTIONS_FILTER ([`NOT_VALIDATED`] where it has none).
    /// Envelopes that do not parse get an empty tx id and no event.
    pub fn from_block(block: Arc<Block>) -> CommittedBlock {
        let number = block.header.as_ref().map_or(0, |h| h.number);
        let filter = weft_ledger::block::transactions_filter(&block);
        let txs = block
            .data
            .as_ref()
            .map(|d| d.data.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, env)| {
                let parsed = parse_tx(env).unwrap_or_default();
                CommittedTx {
                    tx_id: parsed.tx_id,
                    code: filter
                        .and_then(|f| f.get(i))
                        .map_or(NOT_VALIDATED, |c| i32::from(*c)),
                    chaincode_event: parsed.chaincode_event,
                }
            })
            .collect();
        CommittedBlock { number, block, txs }
    }
}

/// What listeners need from one transaction envelope of a block.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedTx {
    pub tx_id: String,
    /// `common.HeaderType` as i32.
    pub tx_type: i32,
    /// The chaincode event of an endorser transaction's (first) action, if it set one.
    pub chaincode_event: Option<ChaincodeEvent>,
}

/// Read tx id, header type and chaincode event from an envelope's bytes. Only an endorser
/// transaction has an event; a malformed action yields no event rather than an error (the
/// validator has judged the transaction already).
pub fn parse_tx(envelope: &Bytes) -> Result<ParsedTx, prost::DecodeError> {
    let env = Envelope::decode(envelope.clone())?;
    let payload = Payload::decode(env.payload)?;
    let header = payload.header.unwrap_or_default();
    let chdr = ChannelHeader::decode(header.channel_header)?;
    let mut out = ParsedTx {
        tx_id: chdr.tx_id,
        tx_type: chdr.r#type,
        chaincode_event: None,
    };
    if chdr.r#type == HeaderType::EndorserTransaction as i32 {
        out.chaincode_event = chaincode_event(&payload.data);
    }
    Ok(out)
}

fn chaincode_event(tx_bytes: &Bytes) -> Option<ChaincodeEvent> {
    let tx = Transaction::decode(tx_bytes.clone()).ok()?;
    let action = tx.actions.into_iter().next()?;
    let cap = ChaincodeActionPayload::decode(action.payload).ok()?;
    let prp = ProposalResponsePayload::decode(cap.action?.proposal_response_payload).ok()?;
    let cca = ChaincodeAction::decode(prp.extension).ok()?;
    if cca.events.is_empty() {
        return None;
    }
    let ev = ChaincodeEvent::decode(cca.events).ok()?;
    (!ev.chaincode_id.is_empty() || !ev.event_name.is_empty()).then_some(ev)
}

/// Why a [`Follower`] stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FollowError {
    #[error("the channel's commit notifications stopped (the channel was closed)")]
    Closed,
    #[error("cannot read block {number} from the block store: {detail}")]
    Store { number: u64, detail: String },
}

/// Follows a channel's blocks in order from a given number: stored blocks first, then live
/// commits, without gaps or repeats. Create it *before* reading the ledger height to decide
/// where to start, so no commit falls between the two.
#[derive(Debug)]
pub struct Follower {
    rx: broadcast::Receiver<Arc<CommittedBlock>>,
    next: u64,
}

impl Follower {
    pub fn new(events: &CommitEvents, next: u64) -> Self {
        Follower {
            rx: events.subscribe(),
            next,
        }
    }

    /// The number of the block [`Follower::next`] returns next.
    pub fn position(&self) -> u64 {
        self.next
    }

    pub fn set_position(&mut self, next: u64) {
        self.next = next;
    }

    /// The next block, waiting for it to be committed if needed.
    pub async fn next(
        &mut self,
        store: &weft_ledger::BlockStore,
    ) -> Result<Arc<CommittedBlock>, FollowError> {
        loop {
            if self.next < store.height() {
                let number = self.next;
                let block = store
                    .block(number)
                    .map_err(|e| FollowError::Store {
                        number,
                        detail: e.to_string(),
                    })?
                    .ok_or_else(|| FollowError::Store {
                        number,
                        detail: "the block is missing below the ledger height".to_owned(),
                    })?;
                self.next += 1;
                return Ok(Arc::new(CommittedBlock::from_block(Arc::new(block))));
            }
            match self.rx.recv().await {
                Ok(b) if b.number == self.next => {
                    self.next += 1;
                    return Ok(b);
                }
                // Older: already seen; newer: the store has the gap (checked above).
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Err(FollowError::Closed),
            }
        }
    }
}

/// Why a wait ended without a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("the channel's commit notifications stopped (the channel was closed) before transaction {tx_id} committed")]
    Closed { tx_id: String },
}

#[derive(Debug, Default)]
struct Recent {
    order: VecDeque<String>,
    results: HashMap<String, (u64, i32)>,
}

impl Recent {
    fn record(&mut self, tx_id: &str, number: u64, code: i32) {
        // Fabric keeps the first result for a duplicated tx id (later ones are
        // DUPLICATE_TXID): do not overwrite.
        if self.results.contains_key(tx_id) {
            return;
        }
        self.results.insert(tx_id.to_owned(), (number, code));
        self.order.push_back(tx_id.to_owned());
        while self.order.len() > RECENT_TXS {
            if let Some(old) = self.order.pop_front() {
                self.results.remove(&old);
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    sender: broadcast::Sender<Arc<CommittedBlock>>,
    recent: Mutex<Recent>,
    /// Number of the last published block, if any.
    last: Mutex<Option<u64>>,
}

/// Commit notifications of one channel (cheap to clone and share).
#[derive(Debug, Clone)]
pub struct CommitEvents {
    inner: Arc<Inner>,
}

impl Default for CommitEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl CommitEvents {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(BROADCAST_CAPACITY);
        CommitEvents {
            inner: Arc::new(Inner {
                sender,
                recent: Mutex::new(Recent::default()),
                last: Mutex::new(None),
            }),
        }
    }

    /// Announce a committed block (called by the committer after the block, state and history
    /// are durable). Never blocks; having no subscribers is fine.
    pub fn publish(&self, block: Arc<CommittedBlock>) {
        {
            let mut recent = lock(&self.inner.recent);
            for tx in &block.txs {
                if !tx.tx_id.is_empty() {
                    recent.record(&tx.tx_id, block.number, tx.code);
                }
            }
        }
        {
            let mut last = lock(&self.inner.last);
            *last = Some(last.map_or(block.number, |l| l.max(block.number)));
        }
        tracing::debug!(
            block = block.number,
            txs = block.txs.len(),
            "commit published"
        );
        // An error only means nobody listens right now.
        let _ = self.inner.sender.send(block);
    }

    /// Live committed blocks from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBlock>> {
        self.inner.sender.subscribe()
    }

    /// Number of the last block published through this handle (None before the first).
    pub fn last_published(&self) -> Option<u64> {
        *lock(&self.inner.last)
    }

    /// The result of `tx_id` if it is among the recent commits: `(block number, code)`.
    pub fn recent_result(&self, tx_id: &str) -> Option<(u64, i32)> {
        lock(&self.inner.recent).results.get(tx_id).copied()
    }

    /// Wait until `tx_id` is committed: `(block number, validation code)`. Answers at once if
    /// it committed recently. For transactions that may be older than the recent window use
    /// [`CommitEvents::wait_for_tx_or`] with a ledger lookup.
    pub fn wait_for_tx(
        &self,
        tx_id: &str,
    ) -> impl Future<Output = Result<(u64, i32), WaitError>> + Send + 'static {
        self.wait_for_tx_or(tx_id, |_: &str| None)
    }

    /// Like [`CommitEvents::wait_for_tx`], and also asks `lookup` (e.g. the channel's
    /// `tx_status`, which reads the block store index) after subscribing and whenever the
    /// subscription lagged behind.
    pub fn wait_for_tx_or<F>(
        &self,
        tx_id: &str,
        lookup: F,
    ) -> impl Future<Output = Result<(u64, i32), WaitError>> + Send + 'static
    where
        F: Fn(&str) -> Option<(u64, i32)> + Send + 'static,
    {
        // Subscribe before looking anything up, so a commit racing this call is seen either
        // in the map / ledger or on the receiver.
        let mut rx = self.subscribe();
        let this = self.clone();
        let tx_id = tx_id.to_owned();
        async move {
            if let Some(found) = this.recent_result(&tx_id).or_else(|| lookup(&tx_id)) {
                return Ok(found);
            }
            loop {
                match rx.recv().await {
                    Ok(block) => {
                        if let Some(tx) = block.txs.iter().find(|t| t.tx_id == tx_id) {
                            return Ok(this
                                .recent_result(&tx_id)
                                .unwrap_or((block.number, tx.code)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::debug!(%tx_id, skipped, "commit waiter lagged; checking recent results");
                        if let Some(found) = this.recent_result(&tx_id).or_else(|| lookup(&tx_id)) {
                            return Ok(found);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(WaitError::Closed { tx_id });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn block(number: u64, txs: &[(&str, i32)]) -> Arc<CommittedBlock> {
        Arc::new(CommittedBlock {
            number,
            block: Arc::new(Block::default()),
            txs: txs
                .iter()
                .map(|(id, code)| CommittedTx {
                    tx_id: (*id).to_owned(),
                    code: *code,
                    chaincode_event: None,
                })
                .collect(),
        })
    }

    #[tokio::test]
    async fn waiter_sees_commit_before_and_after_the_call() {
        let events = CommitEvents::new();
        events.publish(block(1, &[("a", 0)]));
        assert_eq!(events.wait_for_tx("a").await, Ok((1, 0)));

        let wait = events.wait_for_tx("b");
        events.publish(block(2, &[("x", 0), ("b", 11)]));
        assert_eq!(wait.await, Ok((2, 11)));
        assert_eq!(events.last_published(), Some(2));
    }

    #[tokio::test]
    async fn duplicate_keeps_first_result_and_lookup_is_used() {
        let events = CommitEvents::new();
        events.publish(block(1, &[("a", 0)]));
        events.publish(block(2, &[("a", 9)]));
        assert_eq!(events.recent_result("a"), Some((1, 0)));
        let found = events
            .wait_for_tx_or("old", |id| (id == "old").then_some((0, 0)))
            .await;
        assert_eq!(found, Ok((0, 0)));
    }
}
