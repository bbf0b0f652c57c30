//! The peer's side of a chaincode stream, after registration.
//!
//! One [`ChaincodeStream`] per connected chaincode, whichever side dialed (launched chaincode
//! calls `ChaincodeSupport.Register`; for chaincode as a service the peer calls
//! `Chaincode.Connect`). The peer sends TRANSACTION or INIT for each execution and serves the
//! chaincode's requests (GET_STATE, PUT_STATE, range and history queries, INVOKE_CHAINCODE,
//! ...) from that transaction's [`TxSimulator`], matched by channel id and tx id, until the
//! chaincode answers COMPLETED or ERROR or the execute timeout passes.
//!
//! State requests are answered inline on the stream's task (they are short, synchronous
//! RocksDB reads); INVOKE_CHAINCODE waits for another execution, so it runs in its own task.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::{Stream, StreamExt};
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{
    ChaincodeEvent, ChaincodeMessage, ChaincodeSpec, DelState, GetHistoryForKey, GetQueryResult,
    GetState, GetStateByRange, GetStateMetadata, PutState, PutStateMetadata, QueryStateClose,
    QueryStateNext, Response, SignedProposal, StateMetadata, StateMetadataResult,
};

use crate::simulator::{SimError, TxSimulator};

/// A transaction's simulator, shared by the chaincodes it calls.
pub type SharedSim = Arc<Mutex<TxSimulator>>;

/// Lock a simulator; a poisoned lock (a panic elsewhere) still yields the data.
pub fn lock_sim(sim: &SharedSim) -> MutexGuard<'_, TxSimulator> {
    match sim.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// One execution of a chaincode.
#[derive(Debug, Clone)]
pub struct TxRequest {
    pub channel_id: String,
    pub txid: String,
    /// The chaincode's name on the channel: the namespace its state lives in.
    pub chaincode_name: String,
    /// INIT instead of TRANSACTION (`ChaincodeInput.is_init`).
    pub is_init: bool,
    /// The encoded `ChaincodeInput`.
    pub input: Bytes,
    pub signed_proposal: Option<SignedProposal>,
}

/// What the chaincode returned.
#[derive(Debug, Clone)]
pub struct TxOutcome {
    pub response: Response,
    pub event: Option<ChaincodeEvent>,
}

/// Why an execution produced no response.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    #[error("chaincode {package_id} did not answer transaction {txid} within {timeout:?} (chaincode.executetimeout)")]
    Timeout {
        package_id: String,
        txid: String,
        timeout: Duration,
    },
    #[error("chaincode {package_id} failed transaction {txid}: {message}")]
    Failed {
        package_id: String,
        txid: String,
        message: String,
    },
    #[error("chaincode {package_id} disconnected while running transaction {txid}")]
    Disconnected { package_id: String, txid: String },
    #[error("transaction {txid} is already executing on chaincode {package_id} (a chaincode cannot be re-entered by the transaction it is running)")]
    Duplicate { package_id: String, txid: String },
    #[error("chaincode {package_id} sent a malformed COMPLETED message for transaction {txid}: {detail}")]
    Malformed {
        package_id: String,
        txid: String,
        detail: String,
    },
    #[error("{0}")]
    Unavailable(String),
}

/// Runs a chaincode inside a transaction that is already executing (INVOKE_CHAINCODE).
#[tonic::async_trait]
pub trait Invoker: Send + Sync + std::fmt::Debug {
    async fn invoke(&self, req: TxRequest, sim: SharedSim) -> Result<TxOutcome, ExecError>;
}

struct Inflight {
    sim: SharedSim,
    namespace: String,
    /// The request of a call made by this transaction, for INVOKE_CHAINCODE.
    request: TxRequest,
    done: oneshot::Sender<ChaincodeMessage>,
}

struct Shared {
    package_id: String,
    out: mpsc::Sender<ChaincodeMessage>,
    inflight: Mutex<HashMap<(String, String), Inflight>>,
    invoker: Option<Arc<dyn Invoker>>,
    closed: watch::Sender<bool>,
    dev_mode: bool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaincodeStream")
            .field("package_id", &self.package_id)
            .field("dev_mode", &self.dev_mode)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn inflight(&self) -> MutexGuard<'_, HashMap<(String, String), Inflight>> {
        match self.inflight.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// A registered chaincode: execute transactions on it.
#[derive(Debug, Clone)]
pub struct ChaincodeStream {
    shared: Arc<Shared>,
}

/// Messages from the chaincode.
pub type Inbound = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, tonic::Status>> + Send>>;

/// Options of a stream.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Send KEEPALIVE this often (`chaincode.keepalive`; `None`: never).
    pub keepalive: Option<Duration>,
    /// Registered without a launch certificate (development mode).
    pub dev_mode: bool,
}

fn reply(ty: MsgType, req: &ChaincodeMessage, payload: Bytes) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: ty as i32,
        payload,
        txid: req.txid.clone(),
        channel_id: req.channel_id.clone(),
        ..Default::default()
    }
}

fn type_name(t: i32) -> String {
    MsgType::try_from(t)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("unknown type {t}"))
}

fn decode<M: Message + Default>(payload: &Bytes, what: &str) -> Result<M, SimError> {
    M::decode(payload.clone())
        .map_err(|e| SimError::Refused(format!("malformed {what} payload: {e}")))
}

impl ChaincodeStream {
    /// Take over a registered stream: `inbound` are the chaincode's messages after its
    /// REGISTER, `out` feeds the chaincode. `on_end` runs once when the stream ends.
    pub fn start(
        package_id: impl Into<String>,
        inbound: Inbound,
        out: mpsc::Sender<ChaincodeMessage>,
        invoker: Option<Arc<dyn Invoker>>,
        options: StreamOptions,
        on_end: impl FnOnce() + Send + 'static,
    ) -> ChaincodeStream {
        let (closed, _) = watch::channel(false);
        let stream = ChaincodeStream {
            shared: Arc::new(Shared {
                package_id: package_id.into(),
                out,
                inflight: Mutex::new(HashMap::new()),
                invoker,
                closed,
                dev_mode: options.dev_mode,
            }),
        };
        let task = stream.clone();
        tokio::spawn(async move {
            task.run(inbound, options.keepalive).await;
            task.shared.closed.send_replace(true);
            // Fail every execution still waiting.
            task.shared.inflight().clear();
            on_end();
        });
        stream
    }

    pub fn package_id(&self) -> &str {
        &self.shared.package_id
    }

    pub fn dev_mode(&self) -> bool {
        self.shared.dev_mode
    }

    /// Whether the chaincode's stream has ended.
    pub fn is_closed(&self) -> bool {
        *self.shared.closed.borrow()
    }

    /// Executions in flight on this stream.
    pub fn in_flight(&self) -> usize {
        self.shared.inflight().len()
    }

    /// Run one execution and wait for the chaincode's answer, up to `timeout`.
    pub async fn execute(
        &self,
        req: TxRequest,
        sim: SharedSim,
        timeout: Duration,
    ) -> Result<TxOutcome, ExecError> {
        let package_id = self.shared.package_id.clone();
        let key = (req.channel_id.clone(), req.txid.clone());
        let (done, answer) = oneshot::channel();
        {
            let mut inflight = self.shared.inflight();
            if inflight.contains_key(&key) {
                return Err(ExecError::Duplicate {
                    package_id,
                    txid: req.txid,
                });
            }
            inflight.insert(
                key.clone(),
                Inflight {
                    sim,
                    namespace: req.chaincode_name.clone(),
                    request: req.clone(),
                    done,
                },
            );
        }
        let msg = ChaincodeMessage {
            r#type: if req.is_init {
                MsgType::Init
            } else {
                MsgType::Transaction
            } as i32,
            payload: req.input.clone(),
            txid: req.txid.clone(),
            proposal: req.signed_proposal.clone(),
            channel_id: req.channel_id.clone(),
            ..Default::default()
        };
        let disconnected = || ExecError::Disconnected {
            package_id: package_id.clone(),
            txid: req.txid.clone(),
        };
        if self.is_closed() || self.shared.out.send(msg).await.is_err() {
            self.shared.inflight().remove(&key);
            return Err(disconnected());
        }
        let answer = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(m)) => m,
            Ok(Err(_)) => return Err(disconnected()),
            Err(_) => {
                self.shared.inflight().remove(&key);
                tracing::warn!(package_id = %package_id, txid = %req.txid, ?timeout, "chaincode execution timed out");
                return Err(ExecError::Timeout {
                    package_id,
                    txid: req.txid,
                    timeout,
                });
            }
        };
        match MsgType::try_from(answer.r#type) {
            Ok(MsgType::Completed) => {
                let response =
                    Response::decode(answer.payload.clone()).map_err(|e| ExecError::Malformed {
                        package_id: package_id.clone(),
                        txid: req.txid.clone(),
                        detail: format!("payload is not a Response: {e}"),
                    })?;
                // As Fabric's peer does, the event is stamped with the chaincode and tx id.
                let event = answer.chaincode_event.map(|mut ev| {
                    ev.chaincode_id = req.chaincode_name.clone();
                    ev.tx_id = req.txid.clone();
                    ev
                });
                Ok(TxOutcome { response, event })
            }
            _ => Err(ExecError::Failed {
                package_id,
                txid: req.txid,
                message: String::from_utf8_lossy(&answer.payload).into_owned(),
            }),
        }
    }

    async fn run(&self, mut inbound: Inbound, keepalive: Option<Duration>) {
        let mut ticker = keepalive.map(|period| {
            let mut t = tokio::time::interval(period);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        loop {
            let next = match ticker.as_mut() {
                Some(t) => tokio::select! {
                    m = inbound.next() => m,
                    _ = t.tick() => {
                        let ka = ChaincodeMessage { r#type: MsgType::Keepalive as i32, ..Default::default() };
                        if self.shared.out.send(ka).await.is_err() {
                            return;
                        }
                        continue;
                    }
                },
                None => inbound.next().await,
            };
            match next {
                Some(Ok(msg)) => self.handle(msg).await,
                Some(Err(status)) => {
                    tracing::debug!(package_id = %self.shared.package_id, "chaincode stream error: {}", status.message());
                    return;
                }
                None => return,
            }
        }
    }

    async fn send(&self, msg: ChaincodeMessage) {
        let _ = self.shared.out.send(msg).await;
    }

    async fn handle(&self, msg: ChaincodeMessage) {
        let ty = MsgType::try_from(msg.r#type).ok();
        match ty {
            Some(MsgType::Keepalive) => {}
            Some(MsgType::Completed | MsgType::Error) => {
                let key = (msg.channel_id.clone(), msg.txid.clone());
                let removed = self.shared.inflight().remove(&key);
                match removed {
                    Some(Inflight { done, sim, .. }) => {
                        // Release this stream's hold on the simulator before waking the
                        // endorser, which takes the simulator's results.
                        drop(sim);
                        let _ = done.send(msg);
                    }
                    None => tracing::debug!(
                        package_id = %self.shared.package_id, txid = %msg.txid,
                        "answer for a transaction that is no longer waiting (timed out?)"
                    ),
                }
            }
            Some(MsgType::InvokeChaincode) => {
                let this = self.clone();
                tokio::spawn(async move {
                    let answer = this.invoke_chaincode(&msg).await;
                    let out = match answer {
                        Ok(payload) => reply(MsgType::Response, &msg, payload),
                        Err(e) => reply(MsgType::Error, &msg, e.into()),
                    };
                    this.send(out).await;
                });
            }
            _ => {
                let answer = self.state_request(&msg);
                let out = match answer {
                    Ok(payload) => reply(MsgType::Response, &msg, payload),
                    Err(e) => {
                        tracing::debug!(package_id = %self.shared.package_id, txid = %msg.txid, request = %type_name(msg.r#type), "refused: {e}");
                        reply(MsgType::Error, &msg, e.to_string().into())
                    }
                };
                self.send(out).await;
            }
        }
    }

    fn context(&self, msg: &ChaincodeMessage) -> Result<(SharedSim, String), SimError> {
        let key = (msg.channel_id.clone(), msg.txid.clone());
        self.shared
            .inflight()
            .get(&key)
            .map(|i| (i.sim.clone(), i.namespace.clone()))
            .ok_or_else(|| {
                SimError::Refused(format!(
                    "{} for transaction {:?} on channel {:?}: no such transaction is executing on this chaincode",
                    type_name(msg.r#type),
                    msg.txid,
                    msg.channel_id
                ))
            })
    }

    fn state_request(&self, msg: &ChaincodeMessage) -> Result<Bytes, SimError> {
        let ty = MsgType::try_from(msg.r#type)
            .map_err(|_| SimError::Refused(format!("unknown message type {}", msg.r#type)))?;
        let (sim, ns) = self.context(msg)?;
        let mut sim = lock_sim(&sim);
        let p = &msg.payload;
        let empty = Ok(Bytes::new());
        match ty {
            MsgType::GetState => {
                let r: GetState = decode(p, "GET_STATE")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                sim.get_state(&ns, &r.key)
            }
            MsgType::GetPrivateDataHash => {
                let r: GetState = decode(p, "GET_PRIVATE_DATA_HASH")?;
                Err(sim.private_data(&ns, &r.collection))
            }
            MsgType::GetStateMetadata => {
                let r: GetStateMetadata = decode(p, "GET_STATE_METADATA")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                let entries = sim.get_state_metadata(&ns, &r.key)?;
                Ok(StateMetadataResult {
                    entries: entries
                        .into_iter()
                        .map(|(metakey, value)| StateMetadata { metakey, value })
                        .collect(),
                }
                .encode_to_vec()
                .into())
            }
            MsgType::PutState => {
                let r: PutState = decode(p, "PUT_STATE")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                sim.put_state(&ns, &r.key, r.value)?;
                empty
            }
            MsgType::PutStateMetadata => {
                let r: PutStateMetadata = decode(p, "PUT_STATE_METADATA")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                let m = r.metadata.unwrap_or_default();
                sim.put_state_metadata(&ns, &r.key, &m.metakey, m.value)?;
                empty
            }
            MsgType::DelState => {
                let r: DelState = decode(p, "DEL_STATE")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                sim.delete_state(&ns, &r.key)?;
                empty
            }
            MsgType::PurgePrivateData => {
                let r: DelState = decode(p, "PURGE_PRIVATE_DATA")?;
                Err(sim.private_data(&ns, &r.collection))
            }
            MsgType::GetStateByRange => {
                let r: GetStateByRange = decode(p, "GET_STATE_BY_RANGE")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                let resp = sim.range_query(&ns, &r.start_key, &r.end_key, &r.metadata)?;
                Ok(resp.encode_to_vec().into())
            }
            MsgType::GetQueryResult => {
                let r: GetQueryResult = decode(p, "GET_QUERY_RESULT")?;
                if !r.collection.is_empty() {
                    return Err(sim.private_data(&ns, &r.collection));
                }
                Err(sim.rich_query(&ns))
            }
            MsgType::GetHistoryForKey => {
                let r: GetHistoryForKey = decode(p, "GET_HISTORY_FOR_KEY")?;
                let resp = sim.history_query(&ns, &r.key)?;
                Ok(resp.encode_to_vec().into())
            }
            MsgType::QueryStateNext => {
                let r: QueryStateNext = decode(p, "QUERY_STATE_NEXT")?;
                Ok(sim.query_next(&r.id)?.encode_to_vec().into())
            }
            MsgType::QueryStateClose => {
                let r: QueryStateClose = decode(p, "QUERY_STATE_CLOSE")?;
                Ok(sim.query_close(&r.id)?.encode_to_vec().into())
            }
            other => Err(SimError::Refused(format!(
                "the peer does not accept {} from a registered chaincode",
                other.as_str_name()
            ))),
        }
    }

    async fn invoke_chaincode(&self, msg: &ChaincodeMessage) -> Result<Bytes, String> {
        let spec: ChaincodeSpec = ChaincodeSpec::decode(msg.payload.clone())
            .map_err(|e| format!("malformed INVOKE_CHAINCODE payload (ChaincodeSpec): {e}"))?;
        let target = spec
            .chaincode_id
            .as_ref()
            .map(|id| id.name.clone())
            .unwrap_or_default();
        let (name, channel) = match target.split_once('/') {
            Some((n, c)) => (n.to_owned(), c.to_owned()),
            None => (target.clone(), String::new()),
        };
        if name.is_empty() {
            return Err("INVOKE_CHAINCODE names no chaincode".into());
        }
        if !channel.is_empty() && channel != msg.channel_id {
            return Err(format!(
                "calling chaincode {name:?} on channel {channel:?} from channel {:?}: weft runs \
                 chaincode-to-chaincode calls on the same channel only",
                msg.channel_id
            ));
        }
        let (sim, parent) = {
            let key = (msg.channel_id.clone(), msg.txid.clone());
            let inflight = self.shared.inflight();
            let i = inflight.get(&key).ok_or_else(|| {
                format!(
                    "INVOKE_CHAINCODE for transaction {:?}: no such transaction is executing",
                    msg.txid
                )
            })?;
            (i.sim.clone(), i.request.clone())
        };
        let invoker = self
            .shared
            .invoker
            .clone()
            .ok_or("this peer cannot run chaincode-to-chaincode calls here")?;
        let mut input = spec.input.unwrap_or_default();
        input.is_init = false;
        let req = TxRequest {
            channel_id: msg.channel_id.clone(),
            txid: msg.txid.clone(),
            chaincode_name: name,
            is_init: false,
            input: input.encode_to_vec().into(),
            signed_proposal: parent.signed_proposal,
        };
        let outcome = invoker.invoke(req, sim).await.map_err(|e| e.to_string())?;
        // The caller gets the callee's whole COMPLETED message.
        let completed = ChaincodeMessage {
            r#type: MsgType::Completed as i32,
            payload: outcome.response.encode_to_vec().into(),
            txid: msg.txid.clone(),
            channel_id: msg.channel_id.clone(),
            chaincode_event: outcome.event,
            ..Default::default()
        };
        Ok(completed.encode_to_vec().into())
    }
}

impl ChaincodeStream {
    /// Wait until the chaincode's stream has ended.
    pub async fn closed(&self) {
        let mut rx = self.shared.closed.subscribe();
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::wrappers::ReceiverStream;

    fn stream(
        keepalive: Option<Duration>,
    ) -> (
        ChaincodeStream,
        mpsc::Sender<Result<ChaincodeMessage, tonic::Status>>,
        mpsc::Receiver<ChaincodeMessage>,
    ) {
        let (to_peer, inbound) = mpsc::channel(8);
        let (out, from_peer) = mpsc::channel(8);
        let s = ChaincodeStream::start(
            "cc:1",
            Box::pin(ReceiverStream::new(inbound)),
            out,
            None,
            StreamOptions {
                keepalive,
                dev_mode: false,
            },
            || {},
        );
        (s, to_peer, from_peer)
    }

    #[tokio::test]
    async fn sends_keepalives_when_configured() {
        let (_s, _to_peer, mut from_peer) = stream(Some(Duration::from_millis(20)));
        let m = tokio::time::timeout(Duration::from_secs(2), from_peer.recv())
            .await
            .ok()
            .flatten()
            .map(|m| m.r#type);
        assert_eq!(m, Some(MsgType::Keepalive as i32));
    }

    #[tokio::test]
    async fn requests_for_unknown_transactions_get_an_error_and_the_stream_lives_on() {
        let (s, to_peer, mut from_peer) = stream(None);
        let req = ChaincodeMessage {
            r#type: MsgType::GetState as i32,
            payload: GetState {
                key: "k".into(),
                collection: String::new(),
            }
            .encode_to_vec()
            .into(),
            txid: "nope".into(),
            channel_id: "ch".into(),
            ..Default::default()
        };
        to_peer.send(Ok(req)).await.ok();
        let answer = tokio::time::timeout(Duration::from_secs(2), from_peer.recv())
            .await
            .ok()
            .flatten();
        let answer = answer.map(|m| (m.r#type, String::from_utf8_lossy(&m.payload).into_owned()));
        assert!(
            matches!(&answer, Some((t, msg)) if *t == MsgType::Error as i32 && msg.contains("no such transaction")),
            "{answer:?}"
        );
        // Garbage payloads and unknown answers do not end the stream.
        let junk = ChaincodeMessage {
            r#type: MsgType::PutState as i32,
            payload: Bytes::from_static(b"\xff\xff"),
            txid: "nope".into(),
            ..Default::default()
        };
        to_peer.send(Ok(junk)).await.ok();
        let stray = ChaincodeMessage {
            r#type: MsgType::Completed as i32,
            txid: "never-sent".into(),
            ..Default::default()
        };
        to_peer.send(Ok(stray)).await.ok();
        assert!(from_peer.recv().await.is_some());
        assert!(!s.is_closed());
        drop(to_peer);
        tokio::time::timeout(Duration::from_secs(2), s.closed())
            .await
            .ok();
        assert!(s.is_closed());
    }

    /// Every request type with mutated payloads, inside a running transaction: each gets an
    /// answer (RESPONSE or ERROR), nothing panics, and the transaction still completes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mutated_requests_are_answered_not_fatal() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let db = weft_ledger::StateDb::open(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
        let (s, to_peer, mut from_peer) = stream(None);
        let sim: SharedSim = Arc::new(Mutex::new(TxSimulator::new(
            "tx1",
            db.read().await,
            crate::simulator::QueryLimits::default(),
        )));
        let exec = {
            let s = s.clone();
            tokio::spawn(async move {
                s.execute(
                    TxRequest {
                        channel_id: "ch".into(),
                        txid: "tx1".into(),
                        chaincode_name: "cc".into(),
                        is_init: false,
                        input: Bytes::new(),
                        signed_proposal: None,
                    },
                    sim,
                    Duration::from_secs(20),
                )
                .await
            })
        };
        let first = from_peer.recv().await.map(|m| m.r#type);
        assert_eq!(first, Some(MsgType::Transaction as i32));
        let seeds: Vec<Vec<u8>> = vec![
            GetState {
                key: "k".into(),
                collection: String::new(),
            }
            .encode_to_vec(),
            GetStateByRange {
                start_key: "a".into(),
                end_key: "z".into(),
                collection: String::new(),
                metadata: Bytes::new(),
            }
            .encode_to_vec(),
            PutStateMetadata {
                key: "k".into(),
                collection: String::new(),
                metadata: Some(StateMetadata {
                    metakey: "m".into(),
                    value: Bytes::from_static(b"v"),
                }),
            }
            .encode_to_vec(),
            ChaincodeSpec::default().encode_to_vec(),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut sent = 0;
        for ty in 8..=23i32 {
            if ty == MsgType::InvokeChaincode as i32 || ty == MsgType::Keepalive as i32 {
                continue;
            }
            for seed in &seeds {
                for _ in 0..8 {
                    let mut p = seed.clone();
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if !p.is_empty() {
                        let i = (x as usize) % p.len();
                        p[i] ^= (x >> 32) as u8;
                        p.truncate(((x >> 8) as usize) % (p.len() + 1));
                    }
                    let m = ChaincodeMessage {
                        r#type: ty,
                        payload: p.into(),
                        txid: "tx1".into(),
                        channel_id: "ch".into(),
                        ..Default::default()
                    };
                    to_peer.send(Ok(m)).await.ok();
                    // One request at a time, as a shim sends them.
                    let m = tokio::time::timeout(Duration::from_secs(5), from_peer.recv())
                        .await
                        .ok()
                        .flatten()
                        .map(|m| m.r#type);
                    assert!(
                        m == Some(MsgType::Response as i32) || m == Some(MsgType::Error as i32),
                        "type {ty}: {m:?}"
                    );
                    sent += 1;
                }
            }
        }
        assert!(sent > 400);
        let done = ChaincodeMessage {
            r#type: MsgType::Completed as i32,
            payload: Response {
                status: 200,
                message: String::new(),
                payload: Bytes::new(),
            }
            .encode_to_vec()
            .into(),
            txid: "tx1".into(),
            channel_id: "ch".into(),
            ..Default::default()
        };
        to_peer.send(Ok(done)).await.ok();
        let outcome = exec
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|o| o.response.status);
        assert_eq!(outcome, Some(200));
    }
}
