//! `--commit blocks`: the bench learns each transaction's commit from one filtered-block
//! stream (the peer's `Deliver.DeliverFiltered`) instead of one `CommitStatus` call per
//! transaction.
//!
//! This is how Fabric's SDKs before the Gateway learnt commits (the fabric-network commit
//! handlers listened to the peers' block events), and what an application does with
//! fabric-gateway's `submitAsync` plus `getFilteredBlockEvents`. The client still learns every
//! transaction's block and validation code from the peer; the stream's request is signed once
//! and checked against the channel's `event/FilteredBlock` ACL, and under mutual TLS it is
//! bound to the client's TLS certificate (`tls_cert_hash`).
//!
//! A transaction is registered ([`Commits::expect`]) before it is submitted, so its block
//! cannot pass unseen. The stream starts at the newest block; if it ends or fails, every
//! waiting transaction fails with the reason, and so does every later one: a bench run with a
//! broken stream is a failed run, not a slow one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use weft_msp::msp::SigningIdentity;
use weft_peer::client::Conn;
use weft_proto::common::Status;
use weft_proto::orderer::seek_position::Type as SeekType;
use weft_proto::orderer::{SeekNewest, SeekSpecified};
use weft_proto::protos::deliver_client::DeliverClient;
use weft_proto::protos::deliver_response::Type as Answer;
use weft_proto::protos::{DeliverResponse, FilteredBlock};

/// A transaction's commit: its block and validation code, or why it cannot be known.
pub type Outcome = Result<(u64, i32), String>;

/// How long the peer has to answer the stream's request with its newest block.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Waiting transactions, shared with the task that reads the stream.
#[derive(Default)]
struct State {
    waiting: HashMap<String, oneshot::Sender<Outcome>>,
    /// Set once the stream has ended: why.
    ended: Option<String>,
}

/// One filtered-block stream and the transactions waiting on it; see the module docs.
pub struct Commits {
    state: Arc<Mutex<State>>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Commits {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Commits {
    /// Open the stream on `conn` as `signer`, from the channel's newest block on; answers
    /// once the peer has sent that block, or the peer's refusal, explained.
    pub async fn open(
        conn: &Conn,
        signer: &SigningIdentity,
        channel: &str,
        tls_cert_hash: Option<[u8; 32]>,
    ) -> Result<Commits, String> {
        let what = format!(
            "the filtered-block stream of channel {channel} on peer {} (--commit blocks)",
            conn.address
        );
        let seek = weft_peer::deliverclient::seek_envelope(
            signer,
            channel,
            SeekType::Newest(SeekNewest {}),
            SeekType::Specified(SeekSpecified { number: u64::MAX }),
            tls_cert_hash,
        )
        .map_err(|e| format!("{what}: {e}"))?;
        let mut stream = DeliverClient::new(conn.channel.clone())
            .deliver_filtered(tokio_stream::once(seek))
            .await
            .map_err(|s| format!("{what}: the peer refused it: {}", s.message()))?
            .into_inner();
        let first = tokio::time::timeout(OPEN_TIMEOUT, stream.message())
            .await
            .map_err(|_| format!("{what}: no block within {OPEN_TIMEOUT:?}"))?;
        match first {
            Ok(Some(DeliverResponse {
                r#type: Some(Answer::FilteredBlock(_)),
            })) => {}
            other => return Err(format!("{what}: {}", ended(other))),
        }
        let state = Arc::new(Mutex::new(State::default()));
        let reader = tokio::spawn(read(stream, state.clone(), what));
        Ok(Commits { state, reader })
    }

    /// Register `tx_id` before submitting it; the receiver answers its commit.
    pub fn expect(&self, tx_id: &str) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        let mut state = lock(&self.state);
        match &state.ended {
            Some(why) => {
                let _ = tx.send(Err(why.clone()));
            }
            None => {
                state.waiting.insert(tx_id.to_owned(), tx);
            }
        }
        rx
    }

    /// Stop waiting for `tx_id` (its submit failed, or the wait timed out).
    pub fn forget(&self, tx_id: &str) {
        lock(&self.state).waiting.remove(tx_id);
    }
}

/// Why a stream ended, from its last answer.
fn ended(answer: Result<Option<DeliverResponse>, tonic::Status>) -> String {
    match answer {
        Ok(Some(DeliverResponse {
            r#type: Some(Answer::Status(code)),
        })) => {
            let name = Status::try_from(code)
                .map(|s| s.as_str_name())
                .unwrap_or("UNKNOWN");
            let hint = if code == Status::Forbidden as i32 {
                ": the signer does not satisfy the channel's event/FilteredBlock ACL, or the \
                 request is not bound to the client's TLS certificate"
            } else {
                ""
            };
            format!("the peer ended the stream with status {code} ({name}){hint}")
        }
        Ok(Some(_)) => {
            "the peer sent an answer that is neither a filtered block nor a status".to_owned()
        }
        Ok(None) => "the peer closed the stream".to_owned(),
        Err(s) => format!("the stream failed: {}", s.message()),
    }
}

/// Hand each filtered block's transactions to their waiters, until the stream ends.
async fn read(
    mut stream: tonic::Streaming<DeliverResponse>,
    state: Arc<Mutex<State>>,
    what: String,
) {
    loop {
        let answer = stream.message().await;
        if let Ok(Some(DeliverResponse {
            r#type: Some(Answer::FilteredBlock(block)),
        })) = &answer
        {
            deliver(&state, block);
            continue;
        }
        let why = format!("{what}: {}", ended(answer));
        tracing::warn!(reason = %why, "commit stream ended");
        let mut state = lock(&state);
        for (_, waiter) in state.waiting.drain() {
            let _ = waiter.send(Err(why.clone()));
        }
        state.ended = Some(why);
        return;
    }
}

fn deliver(state: &Mutex<State>, block: &FilteredBlock) {
    let mut state = lock(state);
    for tx in &block.filtered_transactions {
        if let Some(waiter) = state.waiting.remove(&tx.txid) {
            let _ = waiter.send(Ok((block.number, tx.tx_validation_code)));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_proto::protos::FilteredTransaction;

    fn block(number: u64, txs: &[(&str, i32)]) -> FilteredBlock {
        FilteredBlock {
            channel_id: "mychannel".into(),
            number,
            filtered_transactions: txs
                .iter()
                .map(|(id, code)| FilteredTransaction {
                    txid: (*id).to_owned(),
                    tx_validation_code: *code,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[tokio::test]
    async fn each_waiter_gets_its_own_block_and_code() {
        let state = Mutex::new(State::default());
        let (a, mut ra) = oneshot::channel();
        let (b, mut rb) = oneshot::channel();
        lock(&state).waiting.insert("a".into(), a);
        lock(&state).waiting.insert("b".into(), b);
        deliver(&state, &block(7, &[("x", 0), ("a", 0)]));
        assert_eq!(ra.try_recv().unwrap(), Ok((7, 0)));
        assert!(rb.try_recv().is_err(), "b is not in block 7");
        deliver(&state, &block(8, &[("b", 11)]));
        assert_eq!(rb.try_recv().unwrap(), Ok((8, 11)));
        assert!(lock(&state).waiting.is_empty());
    }

    #[test]
    fn an_ended_stream_is_explained() {
        let forbidden = ended(Ok(Some(DeliverResponse {
            r#type: Some(Answer::Status(Status::Forbidden as i32)),
        })));
        assert!(forbidden.contains("403 (FORBIDDEN)"), "{forbidden}");
        assert!(forbidden.contains("event/FilteredBlock ACL"), "{forbidden}");
        assert_eq!(ended(Ok(None)), "the peer closed the stream");
        let failed = ended(Err(tonic::Status::unavailable("connection reset")));
        assert!(failed.contains("connection reset"), "{failed}");
    }
}
