//! `Gateway.ChaincodeEvents`: the chaincode events of valid transactions, one response per
//! block that has any for the requested chaincode, replayed from the block store from the
//! start position and then live as blocks commit.
//!
//! Start: the block of `after_transaction_id` when it is on the ledger (events of that
//! transaction and those before it in the block are skipped); otherwise the start position:
//! next commit (also when none is given) = the ledger height, `specified` = that number,
//! `oldest` = 0, `newest` = the last block.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use weft_proto::gateway::{ChaincodeEventsRequest, ChaincodeEventsResponse};
use weft_proto::orderer::seek_position::Type as Seek;
use weft_proto::protos::ChaincodeEvent;

use crate::channel::Channel;
use crate::commit_events::{CommittedBlock, Follower};

/// `TxValidationCode.VALID`.
const VALID: i32 = 0;

/// Where a chaincode events stream starts: the block number, and the transaction through
/// which events of that block are skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub block: u64,
    pub skip_through: Option<String>,
}

/// Resolve the request's start against a ledger of `height` blocks; `locate` finds a
/// committed transaction's block.
pub fn start_of(
    req: &ChaincodeEventsRequest,
    height: u64,
    locate: impl Fn(&str) -> Option<u64>,
) -> Result<Start, Status> {
    if !req.after_transaction_id.is_empty() {
        if let Some(block) = locate(&req.after_transaction_id) {
            return Ok(Start {
                block,
                skip_through: Some(req.after_transaction_id.clone()),
            });
        }
    }
    let block = match req.start_position.as_ref().and_then(|p| p.r#type) {
        None | Some(Seek::NextCommit(_)) => height,
        Some(Seek::Specified(s)) => s.number,
        Some(Seek::Oldest(_)) => 0,
        Some(Seek::Newest(_)) => height.saturating_sub(1),
    };
    Ok(Start {
        block,
        skip_through: None,
    })
}

/// The events of `block` for `chaincode` from valid transactions, in block order; `skip`
/// drops transactions up to and including the named one (then clears itself).
pub fn matching_events(
    block: &CommittedBlock,
    chaincode: &str,
    skip: &mut Option<String>,
) -> Vec<ChaincodeEvent> {
    let mut out = Vec::new();
    for tx in &block.txs {
        if let Some(id) = skip.as_ref() {
            if *id == tx.tx_id {
                *skip = None;
            }
            continue;
        }
        if tx.code != VALID {
            continue;
        }
        if let Some(ev) = &tx.chaincode_event {
            if ev.chaincode_id == chaincode {
                out.push(ev.clone());
            }
        }
    }
    out
}

/// Stream the events for `req` on `channel` (the request is already authorized).
pub fn stream(
    channel: Arc<Channel>,
    req: ChaincodeEventsRequest,
) -> Result<ReceiverStream<Result<ChaincodeEventsResponse, Status>>, Status> {
    // Subscribe before reading the height, so no commit falls in between.
    let mut follower = Follower::new(channel.commit_events(), 0);
    let height = channel.blocks().height();
    let start = start_of(&req, height, |tx| {
        channel.tx_status(tx).map(|(block, _)| block)
    })?;
    follower.set_position(start.block);
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut skip = start.skip_through;
        let skip_block = start.block;
        loop {
            let block = tokio::select! {
                _ = tx.closed() => return,
                b = follower.next(channel.blocks()) => b,
            };
            let block = match block {
                Ok(b) => b,
                Err(e) => {
                    let _ = tx
                        .send(Err(Status::aborted(format!(
                            "chaincode events on channel {}: {e}",
                            channel.id()
                        ))))
                        .await;
                    return;
                }
            };
            if block.number != skip_block {
                skip = None;
            }
            let events = matching_events(&block, &req.chaincode_id, &mut skip);
            if events.is_empty() {
                continue;
            }
            let response = ChaincodeEventsResponse {
                events,
                block_number: block.number,
            };
            if tx.send(Ok(response)).await.is_err() {
                return; // the client went away
            }
        }
    });
    Ok(ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::commit_events::CommittedTx;
    use weft_proto::orderer::{SeekNewest, SeekPosition, SeekSpecified};

    fn tx(id: &str, code: i32, cc: &str) -> CommittedTx {
        CommittedTx {
            tx_id: id.into(),
            code,
            chaincode_event: Some(ChaincodeEvent {
                chaincode_id: cc.into(),
                tx_id: id.into(),
                event_name: "e".into(),
                payload: Default::default(),
            }),
        }
    }

    #[test]
    fn only_valid_events_of_the_chaincode_after_the_named_tx() {
        let block = CommittedBlock {
            number: 3,
            block: Arc::new(Default::default()),
            txs: vec![
                tx("a", 0, "cc"),
                tx("b", 0, "cc"),
                tx("c", 11, "cc"),
                tx("d", 0, "other"),
                tx("e", 0, "cc"),
            ],
        };
        let ids = |evs: Vec<ChaincodeEvent>| evs.into_iter().map(|e| e.tx_id).collect::<Vec<_>>();
        assert_eq!(
            ids(matching_events(&block, "cc", &mut None)),
            ["a", "b", "e"]
        );
        let mut skip = Some("b".to_owned());
        assert_eq!(ids(matching_events(&block, "cc", &mut skip)), ["e"]);
        assert_eq!(skip, None);
    }

    #[test]
    fn start_positions() {
        let req = |p: Option<Seek>, after: &str| ChaincodeEventsRequest {
            start_position: p.map(|t| SeekPosition { r#type: Some(t) }),
            after_transaction_id: after.into(),
            ..Default::default()
        };
        let none = |_: &str| None;
        assert_eq!(start_of(&req(None, ""), 5, none).unwrap().block, 5);
        let newest = Some(Seek::Newest(SeekNewest {}));
        assert_eq!(start_of(&req(newest, ""), 5, none).unwrap().block, 4);
        let at2 = Some(Seek::Specified(SeekSpecified { number: 2 }));
        assert_eq!(start_of(&req(at2, "gone"), 5, none).unwrap().block, 2);
        let found = start_of(&req(at2, "t"), 5, |_| Some(1)).unwrap();
        assert_eq!(
            found,
            Start {
                block: 1,
                skip_through: Some("t".into())
            }
        );
    }
}
