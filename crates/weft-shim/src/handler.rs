//! The chaincode side of the chaincode stream: registration, then many transactions at once.
//!
//! The same engine runs whoever dialed: in launched mode the chaincode opened
//! `ChaincodeSupport.Register`; in server mode the peer opened `Chaincode.Connect`. Either way
//! the chaincode speaks first (REGISTER), the peer answers REGISTERED then READY, and from then
//! on TRANSACTION/INIT messages arrive, each handled in its own task. Requests a transaction
//! makes (GET_STATE, PUT_STATE, ...) are matched to their RESPONSE/ERROR by channel id + tx id.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, StreamExt};
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{ChaincodeId, ChaincodeMessage};

use crate::stub::{Stub, TxInner};
use crate::{Chaincode, ChaincodeError, ShimError};

pub(crate) type Inbound =
    Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send>>;

/// Requests waiting for their answer; `None` once the stream has ended, so a transaction
/// still running then fails its next request at once instead of waiting forever.
type Pending = Arc<Mutex<Option<HashMap<(String, String), oneshot::Sender<ChaincodeMessage>>>>>;

/// What a transaction's stub uses to reach the peer.
#[derive(Debug, Clone)]
pub(crate) struct PeerLink {
    out: mpsc::Sender<ChaincodeMessage>,
    pending: Pending,
}

impl PeerLink {
    /// Send a request for transaction (`channel_id`, `txid`) and wait for its answer.
    pub(crate) async fn request(
        &self,
        channel_id: &str,
        txid: &str,
        ty: MsgType,
        payload: Vec<u8>,
        what: &'static str,
    ) -> Result<Bytes, ChaincodeError> {
        let key = (channel_id.to_owned(), txid.to_owned());
        let (tx, rx) = oneshot::channel();
        {
            let mut guard = self
                .pending
                .lock()
                .map_err(|_| ChaincodeError::Disconnected(what))?;
            let pending = guard.as_mut().ok_or(ChaincodeError::Disconnected(what))?;
            if pending.contains_key(&key) {
                return Err(ChaincodeError::InvalidArgument(format!(
                    "transaction {txid} already has a request in flight; requests of one transaction are serialized"
                )));
            }
            pending.insert(key.clone(), tx);
        }
        let msg = ChaincodeMessage {
            r#type: ty as i32,
            payload: payload.into(),
            txid: txid.to_owned(),
            channel_id: channel_id.to_owned(),
            ..Default::default()
        };
        if self.out.send(msg).await.is_err() {
            if let Some(p) = self.pending.lock().ok().as_mut().and_then(|p| p.as_mut()) {
                p.remove(&key);
            }
            return Err(ChaincodeError::Disconnected(what));
        }
        let answer = rx.await.map_err(|_| ChaincodeError::Disconnected(what))?;
        match MsgType::try_from(answer.r#type) {
            Ok(MsgType::Response) => Ok(answer.payload),
            Ok(MsgType::Error) => Err(ChaincodeError::Peer(
                String::from_utf8_lossy(&answer.payload).into_owned(),
            )),
            other => Err(ChaincodeError::Decode {
                what,
                detail: format!("unexpected answer type {other:?}"),
            }),
        }
    }
}

fn type_name(t: i32) -> String {
    MsgType::try_from(t)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("unknown type {t}"))
}

/// Register `chaincode_id` over the stream and serve transactions until the stream ends.
pub(crate) async fn run<C: Chaincode>(
    cc: Arc<C>,
    chaincode_id: String,
    mspid: Option<String>,
    mut inbound: Inbound,
    out: mpsc::Sender<ChaincodeMessage>,
) -> Result<(), ShimError> {
    let register = ChaincodeMessage {
        r#type: MsgType::Register as i32,
        payload: ChaincodeId {
            name: chaincode_id.clone(),
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
        ..Default::default()
    };
    out.send(register).await.map_err(|_| {
        ShimError::Protocol("the stream closed before REGISTER could be sent".into())
    })?;

    let mut registered = false;
    loop {
        let msg = match inbound.next().await {
            Some(Ok(m)) => m,
            Some(Err(status)) => {
                return Err(ShimError::Protocol(format!("stream failed during registration: {}", status.message())))
            }
            None => {
                return Err(ShimError::Protocol(format!(
                    "the peer closed the stream during registration of '{chaincode_id}' \
                     (it may not know this chaincode id, or refused this client certificate; see the peer's log)"
                )))
            }
        };
        match (registered, MsgType::try_from(msg.r#type)) {
            (false, Ok(MsgType::Registered)) => registered = true,
            (true, Ok(MsgType::Ready)) => break,
            (_, Ok(MsgType::Keepalive)) => {
                let _ = out.send(msg).await;
            }
            (_, Ok(MsgType::Error)) => {
                return Err(ShimError::Protocol(format!(
                    "the peer refused to register '{chaincode_id}': {}",
                    String::from_utf8_lossy(&msg.payload)
                )))
            }
            _ => {
                return Err(ShimError::Protocol(format!(
                    "unexpected {} while {}",
                    type_name(msg.r#type),
                    if registered {
                        "waiting for READY"
                    } else {
                        "waiting for REGISTERED"
                    }
                )))
            }
        }
    }
    tracing::info!(chaincode = %chaincode_id, "registered with the peer; ready for transactions");

    let link = PeerLink {
        out: out.clone(),
        pending: Arc::new(Mutex::new(Some(HashMap::new()))),
    };
    let result = loop {
        let msg = match inbound.next().await {
            Some(Ok(m)) => m,
            Some(Err(status)) => {
                break Err(ShimError::Protocol(format!(
                    "stream failed: {}",
                    status.message()
                )))
            }
            None => break Ok(()),
        };
        match MsgType::try_from(msg.r#type) {
            Ok(MsgType::Keepalive) => {
                let _ = out.send(msg).await;
            }
            Ok(t @ (MsgType::Transaction | MsgType::Init)) => {
                let (cc, link, mspid) = (cc.clone(), link.clone(), mspid.clone());
                tokio::spawn(transaction(cc, link, mspid, msg, t == MsgType::Init));
            }
            Ok(MsgType::Response | MsgType::Error) => {
                let waiter = link.pending.lock().ok().and_then(|mut p| {
                    p.as_mut()
                        .and_then(|p| p.remove(&(msg.channel_id.clone(), msg.txid.clone())))
                });
                match waiter {
                    Some(w) => {
                        let _ = w.send(msg);
                    }
                    None => {
                        tracing::warn!(txid = %msg.txid, channel = %msg.channel_id, "answer for a request nobody is waiting for; dropped")
                    }
                }
            }
            _ => {
                tracing::warn!(txid = %msg.txid, "unexpected {} from the peer", type_name(msg.r#type));
                let _ = out
                    .send(ChaincodeMessage {
                        r#type: MsgType::Error as i32,
                        payload: format!("chaincode cannot handle {} here", type_name(msg.r#type))
                            .into_bytes()
                            .into(),
                        txid: msg.txid,
                        channel_id: msg.channel_id,
                        ..Default::default()
                    })
                    .await;
            }
        }
    };
    // Wake every waiting request and refuse new ones: their stubs report a disconnection.
    if let Ok(mut p) = link.pending.lock() {
        *p = None;
    }
    match &result {
        Ok(()) => {
            tracing::info!(chaincode = %chaincode_id, "the peer closed the stream; chaincode stopping")
        }
        Err(e) => tracing::warn!(chaincode = %chaincode_id, "{e}"),
    }
    result
}

/// Run one TRANSACTION or INIT and answer COMPLETED (or ERROR if it could not run).
async fn transaction<C: Chaincode>(
    cc: Arc<C>,
    link: PeerLink,
    mspid: Option<String>,
    msg: ChaincodeMessage,
    init: bool,
) {
    let (txid, channel_id) = (msg.txid.clone(), msg.channel_id.clone());
    let out = link.out.clone();
    let error = |text: String| ChaincodeMessage {
        r#type: MsgType::Error as i32,
        payload: text.into_bytes().into(),
        txid: txid.clone(),
        channel_id: channel_id.clone(),
        ..Default::default()
    };
    let reply = match TxInner::from_message(&msg, link, mspid) {
        Err(e) => error(format!("transaction {txid}: {e}")),
        Ok(inner) => {
            let stub = Stub::new(inner);
            let run = {
                let stub = stub.clone();
                tokio::spawn(async move {
                    if init {
                        cc.init(stub).await
                    } else {
                        cc.invoke(stub).await
                    }
                })
            };
            match run.await {
                Ok(response) => ChaincodeMessage {
                    r#type: MsgType::Completed as i32,
                    payload: response.to_proto().encode_to_vec().into(),
                    txid: txid.clone(),
                    channel_id: channel_id.clone(),
                    chaincode_event: stub.take_event(),
                    ..Default::default()
                },
                Err(e) => {
                    tracing::error!(txid = %txid, "chaincode panicked: {e}");
                    error(format!(
                        "chaincode panicked while handling transaction {txid}"
                    ))
                }
            }
        }
    };
    let _ = out.send(reply).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_request_after_the_stream_ended_fails_at_once() {
        let (out, _keep_receiver_alive) = mpsc::channel(1);
        let link = PeerLink {
            out,
            pending: Arc::new(Mutex::new(None)),
        };
        let answer = tokio::time::timeout(
            Duration::from_secs(5),
            link.request("ch", "tx1", MsgType::GetState, Vec::new(), "GET_STATE"),
        )
        .await
        .expect("a request on an ended stream must not wait");
        assert_eq!(answer, Err(ChaincodeError::Disconnected("GET_STATE")));
    }
}
