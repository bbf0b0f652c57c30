//! The chaincode SDK against a peer played by the test, over real gRPC streams on 127.0.0.1
//! with TLS (launched and server modes, the attacks on both), its configuration errors, and
//! the contract layer and `MemoryPeer` in memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use prost::Message;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Status, Streaming};
use weft_crypto::{
    CertificateAuthority, IssuedCertificate, KeyAlgorithm, LeafProfile, LeafRequest, Subject,
    Validity,
};
use weft_proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use weft_proto::msp::SerializedIdentity;
use weft_proto::protos::chaincode_client::ChaincodeClient;
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use weft_proto::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeProposalPayload,
    ChaincodeSpec, DelState, GetHistoryForKey, GetQueryResult, GetState, GetStateByRange,
    GetStateMetadata, Proposal, PutState, PutStateMetadata, QueryMetadata, QueryResponse,
    QueryResponseMetadata, QueryResultBytes, QueryStateClose, QueryStateNext, SignedProposal,
    StateMetadata, StateMetadataResult,
};
use weft_proto::queryresult::{KeyModification, Kv};
use weft_shim::contract::{Contract, Ctx, Json, GET_METADATA};
use weft_shim::testing::{MemoryPeer, QUERY_BATCH};
use weft_shim::{
    Chaincode, ChaincodeError, ChaincodeServer, LaunchConfig, LaunchTls, Response, ServerConfig,
    ServerTls, ShimError, Stub, VALIDATION_PARAMETER,
};
use weft_tls::grpc::{self, ConnInfo, Security};
use weft_tls::{
    ClientAuth, ClientIdentity, Endpoint, Identity, Profile, TlsClient, TlsServer, Trust,
};

const WAIT: Duration = Duration::from_secs(10);
const CHANNEL: &str = "mychannel";
const CC_ID: &str = "mycc:1.0";

async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn type_name(t: i32) -> String {
    MsgType::try_from(t)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("type {t}"))
}

// ---------------------------------------------------------------------------------------------
// PKI
// ---------------------------------------------------------------------------------------------

struct Pki {
    ca: CertificateAuthority,
    /// The peer's TLS server certificate, for 127.0.0.1.
    server: IssuedCertificate,
    /// A client certificate (the per-launch chaincode certificate, or the peer's client cert).
    client: IssuedCertificate,
}

impl Pki {
    fn new(ca_name: &str) -> Pki {
        let ca = CertificateAuthority::new_root(
            &Subject::cn(ca_name),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        let server = ca
            .issue(
                &LeafRequest::new(
                    Subject::cn("peer0.org1.example.com"),
                    LeafProfile::TlsServer,
                )
                .sans(["127.0.0.1", "peer0.org1.example.com"]),
            )
            .unwrap();
        let client = ca
            .issue(&LeafRequest::new(
                Subject::cn("mycc-launch-client"),
                LeafProfile::TlsClient,
            ))
            .unwrap();
        Pki { ca, server, client }
    }

    fn ca_pem(&self) -> Vec<u8> {
        self.ca.certificate_pem().into_bytes()
    }

    fn roots(&self) -> Trust {
        Trust::Roots(vec![self.ca.certificate().clone()])
    }
}

fn identity(cert: &IssuedCertificate) -> Identity {
    Identity::from_pem(
        cert.pem().as_bytes(),
        cert.key.to_pkcs8_pem().as_bytes(),
        "test identity",
    )
    .unwrap()
}

fn key_pem(cert: &IssuedCertificate) -> Vec<u8> {
    cert.key.to_pkcs8_pem().into_bytes()
}

// ---------------------------------------------------------------------------------------------
// The peer's end of a chaincode stream
// ---------------------------------------------------------------------------------------------

/// One chaincode stream seen from the peer.
struct PeerConn {
    first: Option<ChaincodeMessage>,
    inbound: Streaming<ChaincodeMessage>,
    out: Option<mpsc::Sender<ChaincodeMessage>>,
    info: Option<ConnInfo>,
}

impl PeerConn {
    async fn recv(&mut self) -> ChaincodeMessage {
        if let Some(m) = self.first.take() {
            return m;
        }
        within("a message from the chaincode", self.inbound.message())
            .await
            .expect("the chaincode stream failed")
            .expect("the chaincode closed its stream")
    }

    /// Nothing arrives from the chaincode for `d`.
    async fn quiet(&mut self, d: Duration) {
        assert!(self.first.is_none());
        if let Ok(m) = tokio::time::timeout(d, self.inbound.message()).await {
            panic!(
                "expected silence, got {:?}",
                m.map(|m| m.map(|m| type_name(m.r#type)))
            );
        }
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.out
            .as_ref()
            .expect("stream already closed")
            .send(msg)
            .await
            .expect("the peer's send stream is closed");
    }

    /// The next message, which must be `ty` for `txid`.
    async fn expect(&mut self, ty: MsgType, txid: &str) -> ChaincodeMessage {
        let m = self.recv().await;
        assert_eq!(
            (type_name(m.r#type), m.txid.as_str()),
            (ty.as_str_name().to_owned(), txid),
            "payload {:?}",
            utf8(&m.payload)
        );
        assert_eq!(m.channel_id, CHANNEL);
        m
    }

    async fn respond(&self, req: &ChaincodeMessage, payload: impl Into<Bytes>) {
        self.send(answer(MsgType::Response, req, payload.into()))
            .await;
    }

    async fn fail(&self, req: &ChaincodeMessage, text: &str) {
        self.send(answer(MsgType::Error, req, Bytes::from(text.to_owned())))
            .await;
    }

    /// COMPLETED for `txid`: the response and the message (for its event).
    async fn completed(&mut self, txid: &str) -> (Response, ChaincodeMessage) {
        let m = self.expect(MsgType::Completed, txid).await;
        let r = weft_proto::protos::Response::decode(m.payload.clone()).unwrap();
        (
            Response {
                status: r.status,
                message: r.message,
                payload: r.payload,
            },
            m,
        )
    }

    /// Send a transaction and expect one request of type `ty`, decoded as `M`.
    async fn request<M: Message + Default>(
        &mut self,
        ty: MsgType,
        txid: &str,
    ) -> (ChaincodeMessage, M) {
        let m = self.expect(ty, txid).await;
        let body = M::decode(m.payload.clone()).unwrap();
        (m, body)
    }

    /// The peer ends the stream.
    fn close(&mut self) {
        self.out = None;
    }

    /// Registration as a peer does it: REGISTER in, REGISTERED and READY out.
    async fn register(&mut self) {
        let m = self.recv().await;
        assert_eq!(type_name(m.r#type), "REGISTER");
        let id = ChaincodeId::decode(m.payload).unwrap();
        assert_eq!(id.name, CC_ID);
        self.send(msg(MsgType::Registered, "", Bytes::new())).await;
        self.send(msg(MsgType::Ready, "", Bytes::new())).await;
    }
}

fn msg(ty: MsgType, txid: &str, payload: impl Into<Bytes>) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: ty as i32,
        payload: payload.into(),
        txid: txid.to_owned(),
        channel_id: if txid.is_empty() {
            String::new()
        } else {
            CHANNEL.to_owned()
        },
        ..Default::default()
    }
}

fn answer(ty: MsgType, req: &ChaincodeMessage, payload: Bytes) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: ty as i32,
        payload,
        txid: req.txid.clone(),
        channel_id: req.channel_id.clone(),
        ..Default::default()
    }
}

/// A TRANSACTION (or INIT) message with `args`.
fn tx(ty: MsgType, txid: &str, args: &[&str]) -> ChaincodeMessage {
    let input = ChaincodeInput {
        args: args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect(),
        decorations: Default::default(),
        is_init: ty == MsgType::Init,
    };
    msg(ty, txid, input.encode_to_vec())
}

fn kv(key: &str, value: &str) -> QueryResultBytes {
    QueryResultBytes {
        result_bytes: Kv {
            namespace: "mycc".into(),
            key: key.into(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
        .encode_to_vec()
        .into(),
    }
}

fn query_response(results: Vec<QueryResultBytes>, has_more: bool, id: &str) -> Vec<u8> {
    QueryResponse {
        results,
        has_more,
        id: id.into(),
        metadata: Bytes::new(),
    }
    .encode_to_vec()
}

// ---------------------------------------------------------------------------------------------
// The peer's ChaincodeSupport service (launched mode)
// ---------------------------------------------------------------------------------------------

struct PeerService {
    conns: mpsc::UnboundedSender<PeerConn>,
}

type MsgStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ChaincodeSupport for PeerService {
    type RegisterStream = MsgStream;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<MsgStream>, Status> {
        let info = request.extensions().get::<ConnInfo>().cloned();
        let mut inbound = request.into_inner();
        // Like Fabric's peer (grpc-go), answer nothing, not even response headers, until the
        // chaincode's REGISTER has arrived.
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::cancelled("the chaincode closed before REGISTER"))?;
        let (out, rx) = mpsc::channel(64);
        let _ = self.conns.send(PeerConn {
            first: Some(first),
            inbound,
            out: Some(out),
            info,
        });
        Ok(tonic::Response::new(Box::pin(
            ReceiverStream::new(rx).map(Ok),
        )))
    }
}

/// A peer's chaincode service on 127.0.0.1 with TLS, requiring client certificates.
struct RunningPeer {
    addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<PeerConn>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl RunningPeer {
    async fn start(server: &IssuedCertificate, client_ca: &CertificateAuthority) -> RunningPeer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = TlsServer::new(
            &identity(server),
            ClientAuth::Require(Trust::Roots(vec![client_ca.certificate().clone()])),
            Profile::Fabric,
        )
        .unwrap()
        .with_endpoint(addr.to_string());
        let (conns_tx, conns) = mpsc::unbounded_channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(ChaincodeSupportServer::new(PeerService { conns: conns_tx }))
                .serve_with_incoming_shutdown(
                    grpc::incoming(listener, Security::Tls(Arc::new(tls))),
                    async {
                        let _ = stop_rx.await;
                    },
                )
                .await;
        });
        RunningPeer {
            addr,
            conns,
            stop: Some(stop),
            task,
        }
    }

    async fn accept(&mut self) -> PeerConn {
        within("the chaincode to dial the peer", self.conns.recv())
            .await
            .expect("peer service stopped")
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(WAIT, &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for RunningPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn launch_config(addr: SocketAddr, pki: &Pki) -> LaunchConfig {
    LaunchConfig {
        chaincode_id: CC_ID.into(),
        peer_address: addr.to_string(),
        tls: Some(LaunchTls {
            root_pem: pki.ca_pem(),
            client_cert_pem: pki.client.pem().into_bytes(),
            client_key_pem: key_pem(&pki.client),
            server_name_override: None,
        }),
        mspid: Some("Org1MSP".into()),
    }
}

/// A chaincode launched against a test peer, registered and ready.
struct Launched {
    pki: Pki,
    peer: RunningPeer,
    conn: PeerConn,
    chaincode: JoinHandle<Result<(), ShimError>>,
}

async fn launch<C: Chaincode>(cc: C) -> Launched {
    let pki = Pki::new("peer0 ephemeral chaincode CA");
    let mut peer = RunningPeer::start(&pki.server, &pki.ca).await;
    let chaincode = tokio::spawn(weft_shim::start_with(cc, launch_config(peer.addr, &pki)));
    let mut conn = peer.accept().await;
    conn.register().await;
    Launched {
        pki,
        peer,
        conn,
        chaincode,
    }
}

impl Launched {
    /// The peer ends the stream; the chaincode must stop cleanly.
    async fn finish(mut self) {
        self.conn.close();
        let result = within("start_with to return", &mut self.chaincode)
            .await
            .unwrap();
        assert!(result.is_ok(), "start_with: {result:?}");
        self.peer.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------------
// A chaincode that exercises every stub call
// ---------------------------------------------------------------------------------------------

struct Probe;

impl Chaincode for Probe {
    async fn init(&self, stub: Stub) -> Response {
        Response::success(format!(
            "init is_init={} args={}",
            stub.is_init(),
            stub.string_args().join(",")
        ))
    }

    async fn invoke(&self, stub: Stub) -> Response {
        match probe(&stub).await {
            Ok(payload) => Response::success(payload),
            Err(e) => Response::error(e.to_string()),
        }
    }
}

fn show(v: Option<Bytes>) -> String {
    v.map(|v| utf8(&v)).unwrap_or_else(|| "<none>".into())
}

fn kvs(items: Vec<Kv>) -> String {
    items
        .iter()
        .map(|k| format!("{}={}", k.key, utf8(&k.value)))
        .collect::<Vec<_>>()
        .join(",")
}

async fn probe(stub: &Stub) -> Result<String, ChaincodeError> {
    let (f, a) = stub.function_and_parameters();
    let arg = |i: usize| a.get(i).cloned().unwrap_or_default();
    let ok = || "ok".to_owned();
    Ok(match f.as_str() {
        "get" => show(stub.get_state(&arg(0)).await?),
        "put" => {
            stub.put_state(&arg(0), arg(1)).await?;
            ok()
        }
        "put_get" => {
            stub.put_state(&arg(0), arg(1)).await?;
            show(stub.get_state(&arg(0)).await?)
        }
        "put_fail" => {
            stub.put_state(&arg(0), arg(1)).await?;
            return Err(ChaincodeError::msg("failed after writing"));
        }
        "del" => {
            stub.del_state(&arg(0)).await?;
            ok()
        }
        "range" => kvs(stub.get_state_by_range(&arg(0), &arg(1)).await?.collect_all().await?),
        "range_first" => {
            let mut it = stub.get_state_by_range(&arg(0), &arg(1)).await?;
            let first = it.next().await?;
            it.close().await?;
            first.map(|k| k.key).unwrap_or_default()
        }
        "count" => {
            let mut it = stub.get_state_by_range(&arg(0), &arg(1)).await?;
            let mut n = 0;
            while it.next().await?.is_some() {
                n += 1;
            }
            it.close().await?;
            n.to_string()
        }
        "page" => {
            let (it, info) = stub
                .get_state_by_range_with_pagination(
                    &arg(0),
                    &arg(1),
                    arg(2).parse().unwrap_or(0),
                    &arg(3),
                )
                .await?;
            format!(
                "{}|{}|{}",
                kvs(it.collect_all().await?),
                info.fetched_records_count,
                info.bookmark
            )
        }
        "page_put" => {
            let (it, _) = stub
                .get_state_by_range_with_pagination("", "", 10, "")
                .await?;
            drop(it);
            stub.put_state(&arg(0), arg(1)).await?;
            ok()
        }
        "put_page" => {
            stub.put_state(&arg(0), arg(1)).await?;
            stub.get_state_by_range_with_pagination("", "", 10, "")
                .await?;
            ok()
        }
        "composite" => {
            let attrs: Vec<&str> = a[1..].iter().map(String::as_str).collect();
            let items = stub
                .get_state_by_partial_composite_key(&arg(0), &attrs)
                .await?
                .collect_all()
                .await?;
            items
                .iter()
                .map(|k| {
                    let (t, parts) = weft_shim::split_composite_key(&k.key).unwrap();
                    format!("{t}/{}", parts.join("/"))
                })
                .collect::<Vec<_>>()
                .join(",")
        }
        "rich" => kvs(stub.get_query_result(&arg(0)).await?.collect_all().await?),
        "history" => {
            let mods: Vec<KeyModification> =
                stub.get_history_for_key(&arg(0)).await?.collect_all().await?;
            mods.iter()
                .map(|m| format!("{}:{}:{}", m.tx_id, utf8(&m.value), m.is_delete))
                .collect::<Vec<_>>()
                .join(",")
        }
        "set_ep" => {
            stub.set_state_validation_parameter(&arg(0), arg(1)).await?;
            ok()
        }
        "get_ep" => show(stub.get_state_validation_parameter(&arg(0)).await?),
        "pput" => {
            stub.put_private_data(&arg(0), &arg(1), arg(2)).await?;
            ok()
        }
        "pget" => show(stub.get_private_data(&arg(0), &arg(1)).await?),
        "pdel" => {
            stub.del_private_data(&arg(0), &arg(1)).await?;
            ok()
        }
        "phash" => stub
            .get_private_data_hash(&arg(0), &arg(1))
            .await?
            .map(|h| weft_crypto::hex(&h))
            .unwrap_or_else(|| "<none>".into()),
        "ppurge" => {
            stub.purge_private_data(&arg(0), &arg(1)).await?;
            ok()
        }
        "prange" => kvs(stub
            .get_private_data_by_range(&arg(0), &arg(1), &arg(2))
            .await?
            .collect_all()
            .await?),
        "call" => {
            let rest: Vec<&[u8]> = a[2..].iter().map(|s| s.as_bytes()).collect();
            let r = stub.invoke_chaincode(&arg(0), &rest, &arg(1)).await?;
            format!("{}|{}|{}", r.status, r.message, utf8(&r.payload))
        }
        "event" => {
            stub.set_event(&arg(0), arg(1))?;
            ok()
        }
        "panic" => panic!("the probe was asked to panic"),
        "twice" => {
            let (x, y) = tokio::join!(stub.get_state("x"), stub.get_state("y"));
            format!("{},{}", show(x?), show(y?))
        }
        "facts" => serde_json::json!({
            "tx_id": stub.tx_id(),
            "channel": stub.channel_id(),
            "is_init": stub.is_init(),
            "mspid": stub.mspid(),
            "creator": stub.creator().map(|c| weft_crypto::hex(c)),
            "binding": stub.binding().map(weft_crypto::hex),
            "timestamp": stub.tx_timestamp().map(|t| (t.seconds, t.nanos)),
            "transient": stub.transient().iter().map(|(k, v)| (k.clone(), utf8(v))).collect::<BTreeMap<_, _>>(),
            "decorations": stub.decorations().iter().map(|(k, v)| (k.clone(), utf8(v))).collect::<BTreeMap<_, _>>(),
            "signed": stub.signed_proposal().is_some(),
        })
        .to_string(),
        other => return Err(ChaincodeError::msg(format!("unknown probe function {other:?}"))),
    })
}

// ---------------------------------------------------------------------------------------------
// Launched mode over mutual TLS
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn launched_chaincode_speaks_every_message_type_over_mutual_tls() {
    let Launched {
        pki,
        peer,
        mut conn,
        chaincode,
    } = launch(Probe).await;
    let c = &mut conn;

    // The chaincode presented its per-launch client certificate.
    let info = c.info.clone().expect("connection info");
    assert_eq!(
        info.client_certificate().map(|d| d.as_ref().to_vec()),
        Some(pki.client.der.as_ref().to_vec())
    );

    // KEEPALIVE is echoed, payload and all.
    c.send(msg(MsgType::Keepalive, "", "ka-1")).await;
    let echoed = c.recv().await;
    assert_eq!(
        (type_name(echoed.r#type), utf8(&echoed.payload)),
        ("KEEPALIVE".into(), "ka-1".into())
    );

    // INIT vs TRANSACTION.
    c.send(tx(MsgType::Init, "t-init", &["Init", "a", "b"]))
        .await;
    let (r, _) = c.completed("t-init").await;
    assert_eq!(utf8(&r.payload), "init is_init=true args=Init,a,b");

    // GET_STATE, present and absent.
    c.send(tx(MsgType::Transaction, "t-get", &["get", "k1"]))
        .await;
    let (req, body): (_, GetState) = c.request(MsgType::GetState, "t-get").await;
    assert_eq!((body.key.as_str(), body.collection.as_str()), ("k1", ""));
    c.respond(&req, "v1").await;
    let (r, _) = c.completed("t-get").await;
    assert_eq!((r.status, utf8(&r.payload)), (200, "v1".into()));

    c.send(tx(MsgType::Transaction, "t-get2", &["get", "nope"]))
        .await;
    let (req, _): (_, GetState) = c.request(MsgType::GetState, "t-get2").await;
    c.respond(&req, Bytes::new()).await;
    assert_eq!(utf8(&c.completed("t-get2").await.0.payload), "<none>");

    // PUT_STATE and DEL_STATE.
    c.send(tx(MsgType::Transaction, "t-put", &["put", "k2", "v2"]))
        .await;
    let (req, body): (_, PutState) = c.request(MsgType::PutState, "t-put").await;
    assert_eq!(
        (
            body.key.as_str(),
            utf8(&body.value),
            body.collection.as_str()
        ),
        ("k2", "v2".into(), "")
    );
    c.respond(&req, Bytes::new()).await;
    assert_eq!(c.completed("t-put").await.0.status, 200);

    c.send(tx(MsgType::Transaction, "t-del", &["del", "k2"]))
        .await;
    let (req, body): (_, DelState) = c.request(MsgType::DelState, "t-del").await;
    assert_eq!((body.key.as_str(), body.collection.as_str()), ("k2", ""));
    c.respond(&req, Bytes::new()).await;
    assert_eq!(c.completed("t-del").await.0.status, 200);

    // GET_STATE_BY_RANGE, then QUERY_STATE_NEXT while has_more, then QUERY_STATE_CLOSE.
    c.send(tx(MsgType::Transaction, "t-range", &["range", "", "k9"]))
        .await;
    let (req, body): (_, GetStateByRange) = c.request(MsgType::GetStateByRange, "t-range").await;
    // An empty start key travels as U+0001, as Fabric's shims send it.
    assert_eq!(
        (
            body.start_key.as_str(),
            body.end_key.as_str(),
            body.metadata.is_empty()
        ),
        ("\u{1}", "k9", true)
    );
    c.respond(
        &req,
        query_response(vec![kv("a", "1"), kv("b", "2")], true, "it-1"),
    )
    .await;
    let (req, body): (_, QueryStateNext) = c.request(MsgType::QueryStateNext, "t-range").await;
    assert_eq!(body.id, "it-1");
    c.respond(&req, query_response(vec![kv("c", "3")], false, "it-1"))
        .await;
    let (req, body): (_, QueryStateClose) = c.request(MsgType::QueryStateClose, "t-range").await;
    assert_eq!(body.id, "it-1");
    c.respond(&req, query_response(vec![], false, "it-1")).await;
    assert_eq!(utf8(&c.completed("t-range").await.0.payload), "a=1,b=2,c=3");

    // Closing an iterator early: QUERY_STATE_CLOSE while the peer still has results.
    c.send(tx(
        MsgType::Transaction,
        "t-first",
        &["range_first", "a", ""],
    ))
    .await;
    let (req, _): (_, GetStateByRange) = c.request(MsgType::GetStateByRange, "t-first").await;
    c.respond(&req, query_response(vec![kv("a", "1")], true, "it-2"))
        .await;
    let (req, body): (_, QueryStateClose) = c.request(MsgType::QueryStateClose, "t-first").await;
    assert_eq!(body.id, "it-2");
    c.respond(&req, query_response(vec![], false, "it-2")).await;
    assert_eq!(utf8(&c.completed("t-first").await.0.payload), "a");

    // Pagination metadata both ways.
    c.send(tx(
        MsgType::Transaction,
        "t-page",
        &["page", "", "", "2", "k2"],
    ))
    .await;
    let (req, body): (_, GetStateByRange) = c.request(MsgType::GetStateByRange, "t-page").await;
    let meta = QueryMetadata::decode(body.metadata).unwrap();
    assert_eq!((meta.page_size, meta.bookmark.as_str()), (2, "k2"));
    let page = QueryResponse {
        results: vec![kv("k2", "x"), kv("k3", "y")],
        has_more: false,
        id: "it-3".into(),
        metadata: QueryResponseMetadata {
            fetched_records_count: 2,
            bookmark: "k4".into(),
        }
        .encode_to_vec()
        .into(),
    };
    c.respond(&req, page.encode_to_vec()).await;
    let (req, _): (_, QueryStateClose) = c.request(MsgType::QueryStateClose, "t-page").await;
    c.respond(&req, query_response(vec![], false, "it-3")).await;
    assert_eq!(
        utf8(&c.completed("t-page").await.0.payload),
        "k2=x,k3=y|2|k4"
    );

    // GET_QUERY_RESULT.
    let selector = r#"{"selector":{"color":"blue"}}"#;
    c.send(tx(MsgType::Transaction, "t-rich", &["rich", selector]))
        .await;
    let (req, body): (_, GetQueryResult) = c.request(MsgType::GetQueryResult, "t-rich").await;
    assert_eq!(
        (body.query.as_str(), body.collection.as_str()),
        (selector, "")
    );
    c.respond(
        &req,
        query_response(vec![kv("asset1", "blue")], false, "it-4"),
    )
    .await;
    let (req, _): (_, QueryStateClose) = c.request(MsgType::QueryStateClose, "t-rich").await;
    c.respond(&req, query_response(vec![], false, "it-4")).await;
    assert_eq!(utf8(&c.completed("t-rich").await.0.payload), "asset1=blue");

    // GET_HISTORY_FOR_KEY.
    c.send(tx(MsgType::Transaction, "t-hist", &["history", "k1"]))
        .await;
    let (req, body): (_, GetHistoryForKey) = c.request(MsgType::GetHistoryForKey, "t-hist").await;
    assert_eq!(body.key, "k1");
    let m = |tx_id: &str, v: &str, del: bool| QueryResultBytes {
        result_bytes: KeyModification {
            tx_id: tx_id.into(),
            value: Bytes::copy_from_slice(v.as_bytes()),
            timestamp: Some(prost_types::Timestamp {
                seconds: 1,
                nanos: 0,
            }),
            is_delete: del,
        }
        .encode_to_vec()
        .into(),
    };
    c.respond(
        &req,
        query_response(
            vec![m("tx-b", "", true), m("tx-a", "v1", false)],
            false,
            "it-5",
        ),
    )
    .await;
    let (req, _): (_, QueryStateClose) = c.request(MsgType::QueryStateClose, "t-hist").await;
    c.respond(&req, query_response(vec![], false, "it-5")).await;
    assert_eq!(
        utf8(&c.completed("t-hist").await.0.payload),
        "tx-b::true,tx-a:v1:false"
    );

    // PUT_STATE_METADATA / GET_STATE_METADATA: the validation parameter.
    c.send(tx(
        MsgType::Transaction,
        "t-setep",
        &["set_ep", "k1", "policy-bytes"],
    ))
    .await;
    let (req, body): (_, PutStateMetadata) = c.request(MsgType::PutStateMetadata, "t-setep").await;
    let entry = body.metadata.clone().unwrap();
    assert_eq!(
        (
            body.key.as_str(),
            body.collection.as_str(),
            entry.metakey.as_str(),
            utf8(&entry.value)
        ),
        ("k1", "", VALIDATION_PARAMETER, "policy-bytes".into())
    );
    c.respond(&req, Bytes::new()).await;
    assert_eq!(c.completed("t-setep").await.0.status, 200);

    c.send(tx(MsgType::Transaction, "t-getep", &["get_ep", "k1"]))
        .await;
    let (req, body): (_, GetStateMetadata) = c.request(MsgType::GetStateMetadata, "t-getep").await;
    assert_eq!((body.key.as_str(), body.collection.as_str()), ("k1", ""));
    let entries = StateMetadataResult {
        entries: vec![
            StateMetadata {
                metakey: "other".into(),
                value: "x".into(),
            },
            StateMetadata {
                metakey: VALIDATION_PARAMETER.into(),
                value: "policy-bytes".into(),
            },
        ],
    };
    c.respond(&req, entries.encode_to_vec()).await;
    assert_eq!(
        utf8(&c.completed("t-getep").await.0.payload),
        "policy-bytes"
    );

    // Private data: put, get, del, hash, purge, each naming its collection.
    c.send(tx(
        MsgType::Transaction,
        "t-pput",
        &["pput", "secrets", "p1", "hidden"],
    ))
    .await;
    let (req, body): (_, PutState) = c.request(MsgType::PutState, "t-pput").await;
    assert_eq!(
        (
            body.collection.as_str(),
            body.key.as_str(),
            utf8(&body.value)
        ),
        ("secrets", "p1", "hidden".into())
    );
    c.respond(&req, Bytes::new()).await;
    assert_eq!(c.completed("t-pput").await.0.status, 200);

    c.send(tx(
        MsgType::Transaction,
        "t-pget",
        &["pget", "secrets", "p1"],
    ))
    .await;
    let (req, body): (_, GetState) = c.request(MsgType::GetState, "t-pget").await;
    assert_eq!(
        (body.collection.as_str(), body.key.as_str()),
        ("secrets", "p1")
    );
    c.respond(&req, "hidden").await;
    assert_eq!(utf8(&c.completed("t-pget").await.0.payload), "hidden");

    c.send(tx(
        MsgType::Transaction,
        "t-pdel",
        &["pdel", "secrets", "p1"],
    ))
    .await;
    let (req, body): (_, DelState) = c.request(MsgType::DelState, "t-pdel").await;
    assert_eq!(
        (body.collection.as_str(), body.key.as_str()),
        ("secrets", "p1")
    );
    c.respond(&req, Bytes::new()).await;
    assert_eq!(c.completed("t-pdel").await.0.status, 200);

    c.send(tx(
        MsgType::Transaction,
        "t-phash",
        &["phash", "secrets", "p1"],
    ))
    .await;
    let (req, body): (_, GetState) = c.request(MsgType::GetPrivateDataHash, "t-phash").await;
    assert_eq!(
        (body.collection.as_str(), body.key.as_str()),
        ("secrets", "p1")
    );
    let hash = weft_crypto::sha256(b"hidden");
    c.respond(&req, hash.to_vec()).await;
    assert_eq!(
        utf8(&c.completed("t-phash").await.0.payload),
        weft_crypto::hex(&hash)
    );

    c.send(tx(
        MsgType::Transaction,
        "t-purge",
        &["ppurge", "secrets", "p1"],
    ))
    .await;
    let (req, body): (_, DelState) = c.request(MsgType::PurgePrivateData, "t-purge").await;
    assert_eq!(
        (body.collection.as_str(), body.key.as_str()),
        ("secrets", "p1")
    );
    c.respond(&req, Bytes::new()).await;
    assert_eq!(c.completed("t-purge").await.0.status, 200);

    // INVOKE_CHAINCODE: the answer wraps a whole ChaincodeMessage, COMPLETED...
    c.send(tx(
        MsgType::Transaction,
        "t-call",
        &["call", "other", "ch2", "Fn", "x"],
    ))
    .await;
    let (req, spec): (_, ChaincodeSpec) = c.request(MsgType::InvokeChaincode, "t-call").await;
    assert_eq!(spec.chaincode_id.unwrap().name, "other/ch2");
    assert_eq!(
        spec.input.unwrap().args,
        vec![Bytes::from("Fn"), Bytes::from("x")]
    );
    let nested = ChaincodeMessage {
        r#type: MsgType::Completed as i32,
        payload: weft_proto::protos::Response {
            status: 201,
            message: "fine".into(),
            payload: "out".into(),
        }
        .encode_to_vec()
        .into(),
        txid: "t-call".into(),
        channel_id: CHANNEL.into(),
        ..Default::default()
    };
    c.respond(&req, nested.encode_to_vec()).await;
    assert_eq!(utf8(&c.completed("t-call").await.0.payload), "201|fine|out");

    // ... or ERROR, which the calling chaincode sees as an error.
    c.send(tx(
        MsgType::Transaction,
        "t-call2",
        &["call", "other", "", "Fn"],
    ))
    .await;
    let (req, spec): (_, ChaincodeSpec) = c.request(MsgType::InvokeChaincode, "t-call2").await;
    assert_eq!(spec.chaincode_id.unwrap().name, "other");
    let nested = msg(MsgType::Error, "t-call2", "other chaincode failed");
    c.respond(&req, nested.encode_to_vec()).await;
    let (r, _) = c.completed("t-call2").await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "peer error: other chaincode failed")
    );

    // COMPLETED carries the chaincode event.
    c.send(tx(
        MsgType::Transaction,
        "t-event",
        &["event", "AssetCreated", "asset1"],
    ))
    .await;
    let (r, m) = c.completed("t-event").await;
    assert_eq!(r.status, 200);
    let ChaincodeEvent {
        event_name,
        payload,
        ..
    } = m.chaincode_event.expect("event on COMPLETED");
    assert_eq!(
        (event_name.as_str(), utf8(&payload)),
        ("AssetCreated", "asset1".into())
    );

    // An ERROR from the peer surfaces as the chaincode's error: status 500 with the message.
    c.send(tx(MsgType::Transaction, "t-err", &["get", "k1"]))
        .await;
    let (req, _): (_, GetState) = c.request(MsgType::GetState, "t-err").await;
    c.fail(&req, "ledger is closing").await;
    let (r, _) = c.completed("t-err").await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "peer error: ledger is closing")
    );

    // A message the chaincode cannot handle is answered with ERROR for its tx.
    c.send(msg(MsgType::PutState, "t-odd", "junk")).await;
    let e = c.expect(MsgType::Error, "t-odd").await;
    assert!(
        utf8(&e.payload).contains("cannot handle PUT_STATE"),
        "{}",
        utf8(&e.payload)
    );
    let mut odd = msg(MsgType::Undefined, "t-odd2", Bytes::new());
    odd.r#type = 99;
    c.send(odd).await;
    let e = c.expect(MsgType::Error, "t-odd2").await;
    assert!(
        utf8(&e.payload).contains("unknown type 99"),
        "{}",
        utf8(&e.payload)
    );
    // An answer nobody waits for is dropped, and the chaincode keeps serving.
    c.send(msg(MsgType::Response, "t-nobody", "stray")).await;

    // A panic becomes ERROR for that transaction; the chaincode keeps serving.
    c.send(tx(MsgType::Transaction, "t-panic", &["panic"]))
        .await;
    let e = c.expect(MsgType::Error, "t-panic").await;
    assert_eq!(
        utf8(&e.payload),
        "chaincode panicked while handling transaction t-panic"
    );
    c.send(tx(MsgType::Transaction, "t-after", &["get", "k1"]))
        .await;
    let (req, _): (_, GetState) = c.request(MsgType::GetState, "t-after").await;
    c.respond(&req, "still-here").await;
    assert_eq!(utf8(&c.completed("t-after").await.0.payload), "still-here");

    // A transaction whose input does not decode is refused with ERROR.
    c.send(msg(
        MsgType::Transaction,
        "t-garbage",
        vec![0xff, 0xff, 0xff],
    ))
    .await;
    let e = c.expect(MsgType::Error, "t-garbage").await;
    assert!(
        utf8(&e.payload).contains("t-garbage"),
        "{}",
        utf8(&e.payload)
    );

    Launched {
        pki,
        peer,
        conn,
        chaincode,
    }
    .finish()
    .await;
}

#[tokio::test]
async fn launched_chaincode_runs_transactions_at_once_but_serializes_each() {
    let mut l = launch(Probe).await;
    let c = &mut l.conn;

    // A and B in flight together: hold A's GET_STATE while B completes.
    c.send(tx(MsgType::Transaction, "tx-a", &["get", "a"]))
        .await;
    c.send(tx(MsgType::Transaction, "tx-b", &["get", "b"]))
        .await;
    let mut held = HashMap::new();
    for _ in 0..2 {
        let m = c.recv().await;
        assert_eq!(type_name(m.r#type), "GET_STATE");
        held.insert(m.txid.clone(), m);
    }
    c.respond(&held["tx-b"], "value-b").await;
    let (r, _) = c.completed("tx-b").await;
    assert_eq!(utf8(&r.payload), "value-b");
    c.respond(&held["tx-a"], "value-a").await;
    assert_eq!(utf8(&c.completed("tx-a").await.0.payload), "value-a");

    // The same tx id on two channels is two transactions.
    let mut other = tx(MsgType::Transaction, "tx-same", &["get", "z"]);
    other.channel_id = "otherchannel".into();
    c.send(tx(MsgType::Transaction, "tx-same", &["get", "z"]))
        .await;
    c.send(other).await;
    let mut by_channel = HashMap::new();
    for _ in 0..2 {
        let m = c.recv().await;
        assert_eq!(
            (type_name(m.r#type), m.txid.as_str()),
            ("GET_STATE".into(), "tx-same")
        );
        by_channel.insert(m.channel_id.clone(), m);
    }
    c.respond(&by_channel["otherchannel"], "from-other").await;
    let m = c.recv().await;
    assert_eq!(
        (type_name(m.r#type), m.channel_id.as_str()),
        ("COMPLETED".into(), "otherchannel")
    );
    c.respond(&by_channel[CHANNEL], "from-mine").await;
    assert_eq!(utf8(&c.completed("tx-same").await.0.payload), "from-mine");

    // One transaction asking twice at once: its second request waits for the first answer.
    c.send(tx(MsgType::Transaction, "tx-twice", &["twice"]))
        .await;
    let (first, body): (_, GetState) = c.request(MsgType::GetState, "tx-twice").await;
    c.quiet(Duration::from_millis(300)).await;
    c.respond(&first, format!("v-{}", body.key)).await;
    let (second, body2): (_, GetState) = c.request(MsgType::GetState, "tx-twice").await;
    assert_ne!(body.key, body2.key);
    c.respond(&second, format!("v-{}", body2.key)).await;
    assert_eq!(utf8(&c.completed("tx-twice").await.0.payload), "v-x,v-y");

    // Keepalives are answered even while transactions wait.
    c.send(tx(MsgType::Transaction, "tx-wait", &["get", "w"]))
        .await;
    let (req, _): (_, GetState) = c.request(MsgType::GetState, "tx-wait").await;
    c.send(msg(MsgType::Keepalive, "", Bytes::new())).await;
    assert_eq!(type_name(c.recv().await.r#type), "KEEPALIVE");
    c.respond(&req, "w").await;
    assert_eq!(utf8(&c.completed("tx-wait").await.0.payload), "w");

    l.finish().await;
}

#[tokio::test]
async fn launched_chaincode_sees_the_proposal_the_peer_forwards() {
    let mut l = launch(Probe).await;
    let creator = SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: l.pki.client.pem().into(),
    }
    .encode_to_vec();
    let nonce = b"0123456789abcdefghijklmn".to_vec();
    let mut id_material = nonce.clone();
    id_material.extend_from_slice(&creator);
    let txid = weft_crypto::hex(&weft_crypto::sha256(&id_material));
    let timestamp = prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 42,
    };
    let channel_header = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        timestamp: Some(timestamp),
        channel_id: CHANNEL.into(),
        tx_id: txid.clone(),
        epoch: 0,
        ..Default::default()
    };
    let header = Header {
        channel_header: channel_header.encode_to_vec().into(),
        signature_header: SignatureHeader {
            creator: creator.clone().into(),
            nonce: nonce.clone().into(),
        }
        .encode_to_vec()
        .into(),
    };
    let mut transient = BTreeMap::new();
    transient.insert("price".to_owned(), Bytes::from("42"));
    transient.insert("secret".to_owned(), Bytes::from("s3cr3t"));
    let proposal = Proposal {
        header: header.encode_to_vec().into(),
        payload: ChaincodeProposalPayload {
            input: Bytes::new(),
            transient_map: transient,
        }
        .encode_to_vec()
        .into(),
        extension: Bytes::new(),
    };
    let mut decorations = BTreeMap::new();
    decorations.insert("deco".to_owned(), Bytes::from("rated"));
    let input = ChaincodeInput {
        args: vec![Bytes::from("facts")],
        decorations,
        is_init: false,
    };
    let mut m = msg(MsgType::Transaction, &txid, input.encode_to_vec());
    m.proposal = Some(SignedProposal {
        proposal_bytes: proposal.encode_to_vec().into(),
        signature: Bytes::from_static(b"not checked by the shim"),
    });
    l.conn.send(m).await;
    let (r, _) = l.conn.completed(&txid).await;
    let facts: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();

    let mut binding = nonce.clone();
    binding.extend_from_slice(&creator);
    binding.extend_from_slice(&0u64.to_le_bytes());
    assert_eq!(
        facts,
        serde_json::json!({
            "tx_id": txid,
            "channel": CHANNEL,
            "is_init": false,
            "mspid": "Org1MSP",
            "creator": weft_crypto::hex(&creator),
            "binding": weft_crypto::hex(&weft_crypto::sha256(&binding)),
            "timestamp": [1_700_000_000, 42],
            "transient": {"price": "42", "secret": "s3cr3t"},
            "decorations": {"deco": "rated"},
            "signed": true,
        })
    );
    // Without a proposal there is no creator, binding or timestamp.
    l.conn
        .send(tx(MsgType::Transaction, "t-bare", &["facts"]))
        .await;
    let (r, _) = l.conn.completed("t-bare").await;
    let facts: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(facts["creator"], serde_json::Value::Null);
    assert_eq!(facts["signed"], false);
    l.finish().await;
}

#[tokio::test]
async fn launched_chaincode_reports_a_refused_registration() {
    let pki = Pki::new("peer0 ephemeral chaincode CA");
    let mut peer = RunningPeer::start(&pki.server, &pki.ca).await;
    let chaincode = tokio::spawn(weft_shim::start_with(Probe, launch_config(peer.addr, &pki)));
    let mut conn = peer.accept().await;
    let reg = conn.recv().await;
    assert_eq!(type_name(reg.r#type), "REGISTER");
    conn.send(msg(
        MsgType::Error,
        "",
        "chaincode mycc:1.0 is not installed",
    ))
    .await;
    let err = within("start_with to fail", chaincode)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ShimError::Protocol(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "peer protocol error: the peer refused to register 'mycc:1.0': chaincode mycc:1.0 is not installed"
    );
    drop(conn);
    peer.shutdown().await;
}

#[tokio::test]
async fn launched_chaincode_reports_a_peer_that_closes_during_registration() {
    let pki = Pki::new("peer0 ephemeral chaincode CA");
    let mut peer = RunningPeer::start(&pki.server, &pki.ca).await;
    let chaincode = tokio::spawn(weft_shim::start_with(Probe, launch_config(peer.addr, &pki)));
    let mut conn = peer.accept().await;
    assert_eq!(type_name(conn.recv().await.r#type), "REGISTER");
    // A keepalive before REGISTERED is echoed; then the peer hangs up.
    conn.send(msg(MsgType::Keepalive, "", Bytes::new())).await;
    assert_eq!(type_name(conn.recv().await.r#type), "KEEPALIVE");
    conn.close();
    let err = within("start_with to fail", chaincode)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the peer closed the stream during registration of 'mycc:1.0'"),
        "{err}"
    );
    drop(conn);
    peer.shutdown().await;
}

#[tokio::test]
async fn launched_chaincode_pointed_at_something_else_than_a_peer_says_so() {
    // A chaincode server serves protos.Chaincode, not the peer's ChaincodeSupport.
    let server = RunningServer::start(None).await;
    let config = LaunchConfig {
        chaincode_id: CC_ID.into(),
        peer_address: server.addr.to_string(),
        tls: None,
        mspid: None,
    };
    let err = within("start_with to fail", weft_shim::start_with(Probe, config))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "ChaincodeSupport.Register at {} failed (Unimplemented)",
            server.addr
        )),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn launched_chaincode_refuses_a_peer_whose_certificate_is_from_another_ca() {
    let pki = Pki::new("peer0 ephemeral chaincode CA");
    let rogue = Pki::new("Rogue Root CA");
    // The "peer" presents a certificate from a CA other than CORE_PEER_TLS_ROOTCERT_FILE.
    let mut peer = RunningPeer::start(&rogue.server, &pki.ca).await;
    let err = within(
        "start_with to fail",
        weft_shim::start_with(Probe, launch_config(peer.addr, &pki)),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ShimError::Tls(_)), "{err:?}");
    let text = err.to_string();
    for needle in [
        "Rogue Root CA",
        "not a CA this client trusts",
        "CORE_PEER_TLS_ROOTCERT_FILE",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    // It never got as far as opening a stream.
    assert!(peer.conns.try_recv().is_err());
    peer.shutdown().await;
}

#[tokio::test]
async fn launched_chaincode_without_the_right_client_certificate_is_refused_by_the_peer() {
    let pki = Pki::new("peer0 ephemeral chaincode CA");
    let other = Pki::new("Some Other CA");
    let mut peer = RunningPeer::start(&pki.server, &pki.ca).await;
    let mut config = launch_config(peer.addr, &pki);
    let tls = config.tls.as_mut().unwrap();
    tls.client_cert_pem = other.client.pem().into_bytes();
    tls.client_key_pem = key_pem(&other.client);
    let err = within("start_with to fail", weft_shim::start_with(Probe, config))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("rejected this client's certificate"),
        "{text}"
    );
    assert!(text.contains("CORE_TLS_CLIENT_CERT_FILE"), "{text}");
    assert!(peer.conns.try_recv().is_err());
    peer.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Server mode (chaincode as a service)
// ---------------------------------------------------------------------------------------------

struct RunningServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ShimError>>,
}

impl RunningServer {
    async fn start(tls: Option<ServerTls>) -> RunningServer {
        let server = ChaincodeServer::bind(ServerConfig {
            address: "127.0.0.1:0".into(),
            chaincode_id: CC_ID.into(),
            tls,
        })
        .await
        .unwrap();
        let addr = server.local_addr();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(Probe, async {
            let _ = stop_rx.await;
        }));
        RunningServer {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = within("the chaincode server to stop", &mut self.task)
            .await
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn server_tls(pki: &Pki, mutual: bool) -> ServerTls {
    ServerTls {
        cert_pem: pki.server.pem().into_bytes(),
        key_pem: key_pem(&pki.server),
        client_ca_pem: mutual.then(|| pki.ca_pem()),
    }
}

/// Dial a chaincode server as the peer does and open `Chaincode.Connect`.
async fn dial_as_peer(addr: SocketAddr, client: Option<TlsClient>) -> Result<PeerConn, String> {
    let ch = within(
        "the channel",
        grpc::channel(client, Endpoint::parse(&addr.to_string()).unwrap()),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (out, rx) = mpsc::channel(64);
    let inbound = within(
        "Connect",
        ChaincodeClient::new(ch).connect(ReceiverStream::new(rx)),
    )
    .await
    .map_err(|s| s.to_string())?
    .into_inner();
    Ok(PeerConn {
        first: None,
        inbound,
        out: Some(out),
        info: None,
    })
}

fn peer_client(pki: &Pki, cert: Option<&IssuedCertificate>) -> TlsClient {
    let identity = match cert {
        Some(c) => ClientIdentity::Certificate(identity(c)),
        None => ClientIdentity::Anonymous,
    };
    TlsClient::new(pki.roots(), identity, Profile::Fabric)
        .unwrap()
        .with_failure_logging(false)
}

/// Register and run one PUT_STATE transaction over `conn`.
async fn drive_one_transaction(conn: &mut PeerConn) {
    conn.register().await;
    conn.send(tx(MsgType::Transaction, "s-put", &["put", "k", "v"]))
        .await;
    let (req, body): (_, PutState) = conn.request(MsgType::PutState, "s-put").await;
    assert_eq!((body.key.as_str(), utf8(&body.value)), ("k", "v".into()));
    conn.respond(&req, Bytes::new()).await;
    assert_eq!(conn.completed("s-put").await.0.status, 200);
}

#[tokio::test]
async fn chaincode_server_with_mutual_tls_serves_a_peer_and_refuses_impostors() {
    let pki = Pki::new("Org1 TLS CA");
    let rogue = Pki::new("Rogue Root CA");
    let server = RunningServer::start(Some(server_tls(&pki, true))).await;
    let peer_cert = pki
        .ca
        .issue(&LeafRequest::new(
            Subject::cn("peer0.org1.example.com"),
            LeafProfile::TlsClient,
        ))
        .unwrap();

    // The genuine peer.
    let mut conn = dial_as_peer(server.addr, Some(peer_client(&pki, Some(&peer_cert))))
        .await
        .unwrap();
    drive_one_transaction(&mut conn).await;

    // A peer without a client certificate.
    let e = dial_as_peer(server.addr, Some(peer_client(&pki, None)))
        .await
        .err()
        .expect("no client certificate must be refused");
    assert!(
        e.contains("the server requires a client certificate and this client sent none"),
        "{e}"
    );

    // A peer with a certificate from another CA.
    let e = dial_as_peer(server.addr, Some(peer_client(&pki, Some(&rogue.client))))
        .await
        .err()
        .expect("a certificate from another CA must be refused");
    assert!(
        e.contains("the server rejected this client's certificate"),
        "{e}"
    );
    assert!(e.contains("unknown_ca"), "{e}");

    // A plaintext client: the weft-tls probe explains, and gRPC without TLS gets nowhere.
    let e = weft_tls::plaintext::probe_plaintext(
        &server.addr.to_string(),
        Arc::new(weft_tls::Settings::peer()),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "plaintext_to_tls_port");
    assert!(e.to_string().contains("it requires TLS"), "{e}");
    assert!(dial_as_peer(server.addr, None).await.is_err());

    // The genuine peer's stream still works after the attacks.
    conn.send(tx(MsgType::Transaction, "s-get", &["get", "k"]))
        .await;
    let (req, _): (_, GetState) = conn.request(MsgType::GetState, "s-get").await;
    conn.respond(&req, "v").await;
    assert_eq!(utf8(&conn.completed("s-get").await.0.payload), "v");
    conn.close();
    drop(conn);
    server.shutdown().await;
}

#[tokio::test]
async fn chaincode_server_with_server_only_tls_and_explicit_plaintext() {
    // TLS without client authentication: any peer that trusts the server.
    let pki = Pki::new("Org1 TLS CA");
    let server = RunningServer::start(Some(server_tls(&pki, false))).await;
    let mut conn = dial_as_peer(server.addr, Some(peer_client(&pki, None)))
        .await
        .unwrap();
    drive_one_transaction(&mut conn).await;
    conn.close();
    drop(conn);
    server.shutdown().await;

    // Plaintext, chosen explicitly with tls: None.
    let server = RunningServer::start(None).await;
    let mut conn = dial_as_peer(server.addr, None).await.unwrap();
    drive_one_transaction(&mut conn).await;
    // A TLS client at the plaintext port is told so.
    let e = dial_as_peer(server.addr, Some(peer_client(&pki, None)))
        .await
        .err()
        .expect("TLS to a plaintext port must fail");
    assert!(e.contains("does not have TLS enabled"), "{e}");
    conn.close();
    drop(conn);
    server.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Configuration errors
// ---------------------------------------------------------------------------------------------

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn missing(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }
}

fn launch_from(args: &[&str], vars: &HashMap<&str, String>) -> Result<LaunchConfig, ShimError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    LaunchConfig::from_parts(&args, |k| vars.get(k).cloned())
}

fn server_from(args: &[&str], vars: &HashMap<&str, String>) -> Result<ServerConfig, ShimError> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    ServerConfig::from_parts(&args, |k| vars.get(k).cloned())
}

fn err_text<T: std::fmt::Debug>(r: Result<T, ShimError>) -> String {
    r.unwrap_err().to_string()
}

#[tokio::test]
async fn launch_configuration_errors_name_what_to_fix() {
    let pki = Pki::new("peer0 ephemeral chaincode CA");
    let files = Files::new();
    let root = files.write("root.pem", pki.ca_pem());
    let cert = files.write("client.crt", pki.client.pem());
    let key = files.write("client.key", key_pem(&pki.client));
    let b64 = base64::engine::general_purpose::STANDARD;
    // The peer writes the _PATH files as base64 of the PEM; wrap the lines to check whitespace.
    let wrapped = |pem: &[u8]| {
        b64.encode(pem)
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cert_b64 = files.write("client.crt.b64", wrapped(pki.client.pem().as_bytes()));
    let key_b64 = files.write("client.key.b64", wrapped(&key_pem(&pki.client)));
    let good: HashMap<&str, String> = [
        ("CORE_CHAINCODE_ID_NAME", CC_ID.to_owned()),
        ("CORE_PEER_ADDRESS", "127.0.0.1:7052".to_owned()),
        ("CORE_PEER_TLS_ENABLED", "true".to_owned()),
        ("CORE_PEER_TLS_ROOTCERT_FILE", root.clone()),
        ("CORE_TLS_CLIENT_CERT_FILE", cert.clone()),
        ("CORE_TLS_CLIENT_KEY_FILE", key.clone()),
        ("CORE_PEER_LOCALMSPID", "Org1MSP".to_owned()),
    ]
    .into_iter()
    .collect();
    let with = |changes: &[(&'static str, Option<&str>)]| {
        let mut v = good.clone();
        for (k, val) in changes {
            match val {
                Some(val) => v.insert(k, (*val).to_owned()),
                None => v.remove(k),
            };
        }
        v
    };

    let config = launch_from(&[], &good).unwrap();
    assert_eq!(config.chaincode_id, CC_ID);
    assert_eq!(config.peer_address, "127.0.0.1:7052");
    assert_eq!(config.mspid.as_deref(), Some("Org1MSP"));
    let tls = config.tls.unwrap();
    assert_eq!(tls.root_pem, pki.ca_pem());
    assert_eq!(tls.client_key_pem, key_pem(&pki.client));

    // Each missing variable.
    let e = err_text(launch_from(&[], &with(&[("CORE_CHAINCODE_ID_NAME", None)])));
    assert!(e.starts_with("CORE_CHAINCODE_ID_NAME is not set"), "{e}");
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_CHAINCODE_ID_NAME", Some(""))]),
    ));
    assert!(e.starts_with("CORE_CHAINCODE_ID_NAME is not set"), "{e}");
    let e = err_text(launch_from(&[], &with(&[("CORE_PEER_ADDRESS", None)])));
    assert!(e.starts_with("CORE_PEER_ADDRESS is not set"), "{e}");
    assert!(e.contains("-peer.address"), "{e}");
    let flagged = launch_from(
        &["-peer.address", "peer0:7052"],
        &with(&[("CORE_PEER_ADDRESS", None)]),
    )
    .unwrap();
    assert_eq!(flagged.peer_address, "peer0:7052");
    let e = err_text(launch_from(&[], &with(&[("CORE_PEER_TLS_ENABLED", None)])));
    assert!(e.starts_with("CORE_PEER_TLS_ENABLED is not set"), "{e}");
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_PEER_TLS_ENABLED", Some("yes"))]),
    ));
    assert_eq!(
        e,
        "CORE_PEER_TLS_ENABLED=\"yes\" is invalid: expected true or false"
    );
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_PEER_TLS_ROOTCERT_FILE", None)]),
    ));
    assert!(
        e.starts_with("CORE_PEER_TLS_ROOTCERT_FILE is not set"),
        "{e}"
    );
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_TLS_CLIENT_KEY_FILE", None)]),
    ));
    assert!(e.starts_with("CORE_TLS_CLIENT_KEY_FILE is not set"), "{e}");
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_TLS_CLIENT_CERT_FILE", None)]),
    ));
    assert!(e.starts_with("CORE_TLS_CLIENT_CERT_FILE is not set"), "{e}");

    // TLS off: no TLS material needed.
    let plain = launch_from(
        &[],
        &with(&[
            ("CORE_PEER_TLS_ENABLED", Some("false")),
            ("CORE_PEER_TLS_ROOTCERT_FILE", None),
        ]),
    )
    .unwrap();
    assert!(plain.tls.is_none());

    // An unreadable file names the variable and the path.
    let gone = files.missing("nowhere.pem");
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_PEER_TLS_ROOTCERT_FILE", Some(&gone))]),
    ));
    assert!(
        e.starts_with(&format!("CORE_PEER_TLS_ROOTCERT_FILE ({gone}): ")),
        "{e}"
    );
    let e = err_text(launch_from(
        &[],
        &with(&[("CORE_TLS_CLIENT_KEY_FILE", Some(&gone))]),
    ));
    assert!(
        e.starts_with(&format!("CORE_TLS_CLIENT_KEY_FILE ({gone}): ")),
        "{e}"
    );

    // The base64 _PATH forms decode to the PEM.
    let config = launch_from(
        &[],
        &with(&[
            ("CORE_TLS_CLIENT_CERT_FILE", None),
            ("CORE_TLS_CLIENT_KEY_FILE", None),
            ("CORE_TLS_CLIENT_CERT_PATH", Some(&cert_b64)),
            ("CORE_TLS_CLIENT_KEY_PATH", Some(&key_b64)),
        ]),
    )
    .unwrap();
    let tls = config.tls.unwrap();
    assert_eq!(tls.client_cert_pem, pki.client.pem().into_bytes());
    assert_eq!(tls.client_key_pem, key_pem(&pki.client));
    // ... and malformed base64 is rejected, naming the variable.
    let bad_b64 = files.write("bad.b64", "this is not base64!");
    let e = err_text(launch_from(
        &[],
        &with(&[
            ("CORE_TLS_CLIENT_KEY_FILE", None),
            ("CORE_TLS_CLIENT_KEY_PATH", Some(&bad_b64)),
        ]),
    ));
    assert!(
        e.starts_with(&format!("CORE_TLS_CLIENT_KEY_PATH ({bad_b64}): not base64")),
        "{e}"
    );

    // Malformed PEM is found when the chaincode starts, naming the variable.
    let garbage = files.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n",
    );
    let config = launch_from(
        &[],
        &with(&[
            ("CORE_PEER_TLS_ROOTCERT_FILE", Some(&garbage)),
            ("CORE_PEER_ADDRESS", Some("127.0.0.1:9")),
        ]),
    )
    .unwrap();
    let e = within("start_with to fail", weft_shim::start_with(Probe, config))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("CORE_PEER_TLS_ROOTCERT_FILE"), "{e}");
    let not_pem = files.write("not.pem", "hello");
    let config = launch_from(
        &[],
        &with(&[
            ("CORE_TLS_CLIENT_KEY_FILE", Some(&not_pem)),
            ("CORE_PEER_ADDRESS", Some("127.0.0.1:9")),
        ]),
    )
    .unwrap();
    let e = within("start_with to fail", weft_shim::start_with(Probe, config))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("CORE_TLS_CLIENT_CERT/KEY"), "{e}");
    // A peer address that is not host:port.
    let config = launch_from(&[], &with(&[("CORE_PEER_ADDRESS", Some("peer0"))])).unwrap();
    let e = within("start_with to fail", weft_shim::start_with(Probe, config))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("CORE_PEER_ADDRESS=\"peer0\" is invalid"),
        "{e}"
    );
}

#[tokio::test]
async fn server_configuration_errors_name_what_to_fix() {
    let pki = Pki::new("Org1 TLS CA");
    let files = Files::new();
    let cert = files.write("server.crt", pki.server.pem());
    let key = files.write("server.key", key_pem(&pki.server));
    let ca = files.write("client-ca.pem", pki.ca_pem());
    let base: HashMap<&str, String> = [
        ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:0".to_owned()),
        ("CHAINCODE_ID", CC_ID.to_owned()),
    ]
    .into_iter()
    .collect();
    let with = |changes: &[(&'static str, &str)]| {
        let mut v = base.clone();
        for (k, val) in changes {
            v.insert(k, (*val).to_owned());
        }
        v
    };

    let e = err_text(server_from(&[], &HashMap::new()));
    assert!(e.starts_with("CHAINCODE_SERVER_ADDRESS is not set"), "{e}");
    let e = err_text(server_from(
        &["--chaincode-address", "0.0.0.0:9999"],
        &HashMap::new(),
    ));
    assert!(e.starts_with("CHAINCODE_ID is not set"), "{e}");
    // No TLS material and no explicit plaintext: refused, pointing at both ways out.
    let e = err_text(server_from(&[], &base));
    assert!(e.starts_with("CHAINCODE_TLS_CERT is not set"), "{e}");
    assert!(e.contains("CHAINCODE_TLS_DISABLED=true"), "{e}");
    let e = err_text(server_from(&[], &with(&[("CHAINCODE_TLS_CERT", &cert)])));
    assert!(e.starts_with("CHAINCODE_TLS_KEY is not set"), "{e}");
    let e = err_text(server_from(
        &[],
        &with(&[("CHAINCODE_TLS_DISABLED", "maybe")]),
    ));
    assert_eq!(
        e,
        "CHAINCODE_TLS_DISABLED=\"maybe\" is invalid: expected true or false"
    );
    assert!(
        server_from(&[], &with(&[("CHAINCODE_TLS_DISABLED", "true")]))
            .unwrap()
            .tls
            .is_none()
    );
    assert!(server_from(&["--chaincode-tls-disabled"], &base)
        .unwrap()
        .tls
        .is_none());
    // CHAINCODE_TLS_DISABLED=false still needs the material.
    let e = err_text(server_from(
        &[],
        &with(&[("CHAINCODE_TLS_DISABLED", "false")]),
    ));
    assert!(e.starts_with("CHAINCODE_TLS_CERT is not set"), "{e}");

    // Complete, from variables and from flags.
    let config = server_from(
        &[],
        &with(&[
            ("CHAINCODE_TLS_CERT", &cert),
            ("CHAINCODE_TLS_KEY", &key),
            ("CHAINCODE_CLIENT_CA_CERT", &ca),
        ]),
    )
    .unwrap();
    let tls = config.tls.unwrap();
    assert_eq!(tls.client_ca_pem, Some(pki.ca_pem()));
    let config = server_from(
        &[
            "--chaincode-address=127.0.0.1:0",
            "--chaincode-id",
            "flagged:1",
            "--chaincode-tls-cert-file",
            &cert,
            "--chaincode-tls-key-file",
            &key,
        ],
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(config.chaincode_id, "flagged:1");
    assert!(config.tls.unwrap().client_ca_pem.is_none());

    // Unreadable files name the variable.
    let gone = files.missing("nowhere.pem");
    let e = err_text(server_from(
        &[],
        &with(&[
            ("CHAINCODE_TLS_CERT", &cert),
            ("CHAINCODE_TLS_KEY", &key),
            ("CHAINCODE_CLIENT_CA_CERT", &gone),
        ]),
    ));
    assert!(
        e.starts_with(&format!("CHAINCODE_CLIENT_CA_CERT ({gone}): ")),
        "{e}"
    );

    // Malformed PEM is refused at bind, naming what it was.
    let garbage = files.write("garbage.pem", "not a pem at all");
    let config = server_from(
        &[],
        &with(&[
            ("CHAINCODE_TLS_CERT", &garbage),
            ("CHAINCODE_TLS_KEY", &key),
        ]),
    )
    .unwrap();
    let e = ChaincodeServer::bind(config).await.unwrap_err().to_string();
    assert!(e.contains("CHAINCODE_TLS_CERT/CHAINCODE_TLS_KEY"), "{e}");
    let config = server_from(
        &[],
        &with(&[
            ("CHAINCODE_TLS_CERT", &cert),
            ("CHAINCODE_TLS_KEY", &key),
            ("CHAINCODE_CLIENT_CA_CERT", &garbage),
        ]),
    )
    .unwrap();
    let e = ChaincodeServer::bind(config).await.unwrap_err().to_string();
    assert!(e.contains("CHAINCODE_CLIENT_CA_CERT"), "{e}");
    // A key that does not belong to the certificate.
    let other_key = files.write("other.key", key_pem(&pki.client));
    let config = server_from(
        &[],
        &with(&[
            ("CHAINCODE_TLS_CERT", &cert),
            ("CHAINCODE_TLS_KEY", &other_key),
        ]),
    )
    .unwrap();
    let e = ChaincodeServer::bind(config).await.unwrap_err().to_string();
    assert!(e.contains("does not match the certificate"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The contract layer, on a MemoryPeer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Asset {
    id: String,
    owner: String,
    value: i64,
}

type Log = Arc<Mutex<Vec<String>>>;

async fn read_asset(ctx: &Ctx, id: &str) -> Result<Asset, ChaincodeError> {
    let bytes = ctx
        .stub()
        .get_state(id)
        .await?
        .ok_or_else(|| ChaincodeError::msg(format!("asset {id} does not exist")))?;
    serde_json::from_slice(&bytes).map_err(|e| ChaincodeError::msg(e.to_string()))
}

async fn write_asset(ctx: &Ctx, asset: &Asset) -> Result<(), ChaincodeError> {
    ctx.stub()
        .put_state(&asset.id, serde_json::to_vec(asset).unwrap())
        .await
}

fn asset_contract(log: Log) -> Contract {
    let (before_log, after_log) = (log.clone(), log.clone());
    Contract::new("assets")
        .submit("Create", |ctx: Ctx, (Json(asset),): (Json<Asset>,)| async move {
            write_asset(&ctx, &asset).await
        })
        .evaluate("Read", |ctx: Ctx, (id,): (String,)| async move {
            read_asset(&ctx, &id).await.map(Json)
        })
        .submit("Add", |ctx: Ctx, (id, amount): (String, i64)| async move {
            let mut asset = read_asset(&ctx, &id).await?;
            asset.value += amount;
            write_asset(&ctx, &asset).await?;
            Ok(asset.value)
        })
        .submit("Transfer", |ctx: Ctx, (id, owner): (String, String)| async move {
            let mut asset = read_asset(&ctx, &id).await?;
            asset.owner = owner;
            write_asset(&ctx, &asset).await
        })
        .submit("Forbidden", |ctx: Ctx, ()| async move {
            ctx.stub().put_state("forbidden", "ran").await
        })
        .submit("FailAfter", |ctx: Ctx, ()| async move {
            ctx.stub().put_state("fail-after", "written").await
        })
        .on_init(|ctx: Ctx, (count,): (u32,)| async move {
            for i in 0..count {
                let asset = Asset {
                    id: format!("asset{i}"),
                    owner: "org1".into(),
                    value: 10 * i64::from(i),
                };
                write_asset(&ctx, &asset).await?;
            }
            Ok(format!("created {count} by {}", ctx.function()))
        })
        .before(move |ctx: Ctx| {
            let log = before_log.clone();
            async move {
                log.lock().unwrap().push(format!("before:{}", ctx.function()));
                if ctx.function() == "Forbidden" {
                    return Err(ChaincodeError::msg("Forbidden is not allowed today"));
                }
                Ok(())
            }
        })
        .after(move |ctx: Ctx| {
            let log = after_log.clone();
            async move {
                log.lock().unwrap().push(format!("after:{}", ctx.function()));
                if ctx.function() == "FailAfter" {
                    return Err(ChaincodeError::msg("the after hook refused"));
                }
                Ok(())
            }
        })
}

fn asset(id: &str, owner: &str, value: i64) -> String {
    serde_json::to_string(&Asset {
        id: id.into(),
        owner: owner.into(),
        value,
    })
    .unwrap()
}

#[tokio::test]
async fn contract_functions_typed_arguments_and_hooks() {
    let log = Log::default();
    let peer = within(
        "registration",
        MemoryPeer::start(asset_contract(log.clone())),
    )
    .await;
    assert_eq!(peer.registered_as(), MemoryPeer::CHAINCODE);

    // on_init runs for INIT, with its own typed arguments.
    let r = within("init", peer.init(&["InitLedger", "3"])).await;
    assert_eq!(
        (r.status, utf8(&r.payload)),
        (200, "created 3 by InitLedger".into())
    );
    assert_eq!(peer.world_state().len(), 3);
    let r = within("init", peer.init(&["InitLedger", "three"])).await;
    assert_eq!(r.status, 500);
    assert!(
        r.message.contains("argument 1") && r.message.contains("not a valid u32"),
        "{}",
        r.message
    );

    // Json arguments and results, `contract:Function` addressing.
    let r = within("create", peer.invoke(&["Create", &asset("a1", "alice", 5)])).await;
    assert!(r.is_ok(), "{r:?}");
    let r = within("read", peer.query(&["assets:Read", "a1"])).await;
    let read: Asset = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(
        read,
        Asset {
            id: "a1".into(),
            owner: "alice".into(),
            value: 5
        }
    );
    let r = within("add", peer.invoke(&["Add", "a1", "7"])).await;
    assert_eq!(utf8(&r.payload), "12");
    let r = within("transfer", peer.invoke(&["assets:Transfer", "a1", "bob"])).await;
    assert!(r.is_ok(), "{r:?}");
    let stored: Asset = serde_json::from_slice(&peer.state("a1").unwrap()).unwrap();
    assert_eq!((stored.owner.as_str(), stored.value), ("bob", 12));

    // Wrong count, unparsable number, bad JSON: 500 naming the argument.
    let r = within("transfer", peer.invoke(&["Transfer", "a1"])).await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "Transfer expects 2 argument(s), got 1")
    );
    let r = within("add", peer.invoke(&["Add", "a1", "ten"])).await;
    assert_eq!(r.status, 500);
    assert!(
        r.message
            .starts_with("Add: argument 2 \"ten\" is not a valid i64"),
        "{}",
        r.message
    );
    let r = within("create", peer.invoke(&["Create", "{not json"])).await;
    assert_eq!(r.status, 500);
    assert!(
        r.message.starts_with("Create: argument 1 invalid JSON"),
        "{}",
        r.message
    );
    // A function's own error.
    let r = within("read", peer.query(&["Read", "ghost"])).await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "asset ghost does not exist")
    );

    // Unknown functions list the known ones; another contract's prefix is not this one.
    let r = within("unknown", peer.invoke(&["Burn", "a1"])).await;
    assert_eq!(r.status, 500);
    assert_eq!(
        r.message,
        "contract assets has no transaction function \"Burn\"; it has: Add, Create, FailAfter, Forbidden, Read, Transfer"
    );
    let r = within("other prefix", peer.query(&["other:Read", "a1"])).await;
    assert!(
        r.message.contains("no transaction function \"other:Read\""),
        "{}",
        r.message
    );

    // GetMetadata describes the contract.
    let r = within("metadata", peer.query(&[GET_METADATA])).await;
    let meta: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    let txs = meta["contracts"]["assets"]["transactions"]
        .as_array()
        .unwrap();
    let by_name: BTreeMap<&str, &serde_json::Value> = txs
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t))
        .collect();
    assert_eq!(by_name.len(), 6);
    assert_eq!(by_name["Read"]["tag"][0], "evaluate");
    assert_eq!(by_name["Add"]["tag"][0], "submit");
    assert_eq!(by_name["Add"]["parameters"].as_array().unwrap().len(), 2);

    // Hooks: before, function, after, in order; failures stop and discard.
    log.lock().unwrap().clear();
    within("transfer", peer.invoke(&["Transfer", "a1", "carol"])).await;
    assert_eq!(*log.lock().unwrap(), ["before:Transfer", "after:Transfer"]);
    log.lock().unwrap().clear();
    let r = within("forbidden", peer.invoke(&["Forbidden"])).await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "Forbidden is not allowed today")
    );
    assert_eq!(*log.lock().unwrap(), ["before:Forbidden"]);
    assert_eq!(peer.state("forbidden"), None);
    let r = within("fail after", peer.invoke(&["FailAfter"])).await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "the after hook refused")
    );
    assert_eq!(
        peer.state("fail-after"),
        None,
        "a failed transaction's writes are discarded"
    );

    within("stop", peer.stop()).await.unwrap();
}

#[tokio::test]
async fn contract_without_on_init_dispatches_init_by_name() {
    let contract = Contract::new("plain")
        .submit("Setup", |ctx: Ctx, (v,): (String,)| async move {
            ctx.stub().put_state("setup", v).await?;
            Ok(ctx.stub().is_init())
        })
        .evaluate("Ping", |_ctx: Ctx, ()| async move { Ok("pong") });
    let peer = within("registration", MemoryPeer::start(contract)).await;
    let r = within("init", peer.init(&["Setup", "done"])).await;
    assert_eq!(utf8(&r.payload), "true");
    assert_eq!(peer.state("setup").as_deref(), Some(&b"done"[..]));
    let r = within("init", peer.init(&["Ping"])).await;
    assert_eq!(utf8(&r.payload), "pong");
    let r = within("ping", peer.query(&["plain:Ping"])).await;
    assert_eq!(utf8(&r.payload), "pong");
}

// ---------------------------------------------------------------------------------------------
// MemoryPeer
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn memory_peer_commits_successes_and_discards_the_rest() {
    let peer = within("registration", MemoryPeer::start(Probe)).await;
    peer.put_state("k", "seeded");

    let r = within("put", peer.invoke(&["put", "k", "v1"])).await;
    assert!(r.is_ok());
    assert_eq!(peer.state("k").as_deref(), Some(&b"v1"[..]));
    let committed = peer.last_tx_id().unwrap();

    // Reads do not see the transaction's own writes, as in Fabric.
    let r = within("put_get", peer.invoke(&["put_get", "k", "v2"])).await;
    assert_eq!(utf8(&r.payload), "v1");
    assert_eq!(peer.state("k").as_deref(), Some(&b"v2"[..]));

    // Errors, panics and queries commit nothing.
    let r = within("put_fail", peer.invoke(&["put_fail", "k", "lost"])).await;
    assert_eq!(
        (r.status, r.message.as_str()),
        (500, "failed after writing")
    );
    let r = within("query", peer.query(&["put", "k", "lost"])).await;
    assert!(r.is_ok());
    let r = within("panic", peer.invoke(&["panic"])).await;
    assert_eq!(r.status, 500);
    assert!(r.message.contains("chaincode panicked"), "{}", r.message);
    assert_eq!(peer.state("k").as_deref(), Some(&b"v2"[..]));
    assert_ne!(peer.last_tx_id().unwrap(), committed);

    // An empty value deletes, as in Fabric.
    within("put empty", peer.invoke(&["put", "k", ""])).await;
    assert_eq!(peer.state("k"), None);

    // History, newest first, with tx ids and deletes.
    within("put", peer.invoke(&["put", "h", "one"])).await;
    let first = peer.last_tx_id().unwrap();
    within("put", peer.invoke(&["put", "h", "two"])).await;
    let second = peer.last_tx_id().unwrap();
    within("del", peer.invoke(&["del", "h"])).await;
    let third = peer.last_tx_id().unwrap();
    let r = within("history", peer.query(&["history", "h"])).await;
    assert_eq!(
        utf8(&r.payload),
        format!("{third}::true,{second}:two:false,{first}:one:false")
    );
    assert_eq!(peer.history("h").len(), 3);
    assert!(peer.history("h")[0].timestamp.is_some());

    // Events: kept for committed transactions only.
    within("event", peer.invoke(&["event", "Created", "e1"])).await;
    let event = peer.last_event().unwrap();
    assert_eq!(
        (event.name.as_str(), utf8(&event.payload)),
        ("Created", "e1".into())
    );
    assert_eq!(Some(event.tx_id), peer.last_tx_id());
    within("event", peer.query(&["event", "Queried", "e2"])).await;
    assert_eq!(peer.last_event().unwrap().name, "Created");

    assert!(within("keepalive", peer.keepalive()).await);
    within("stop", peer.stop()).await.unwrap();
}

#[tokio::test]
async fn memory_peer_range_queries_batch_and_paginate_like_fabric() {
    let peer = within("registration", MemoryPeer::start(Probe)).await;
    for i in 0..250 {
        peer.put_state(&format!("key{i:03}"), format!("v{i}"));
    }
    let composite = weft_shim::create_composite_key("color", &["blue", "a1"]).unwrap();
    peer.put_state(&composite, "x");
    peer.put_state(
        &weft_shim::create_composite_key("color", &["red", "a2"]).unwrap(),
        "y",
    );

    // 250 results: the first answer holds 100, two QUERY_STATE_NEXT bring the rest; composite
    // keys stay out of simple ranges.
    assert_eq!(peer.received("REGISTER"), 1);
    let r = within("count", peer.query(&["count", "", ""])).await;
    assert_eq!(utf8(&r.payload), "250");
    assert_eq!(QUERY_BATCH, 100);
    assert_eq!(peer.received("GET_STATE_BY_RANGE"), 1);
    assert_eq!(peer.received("QUERY_STATE_NEXT"), 2);
    assert_eq!(peer.received("QUERY_STATE_CLOSE"), 1);
    assert_eq!(peer.received("COMPLETED"), 1);
    let r = within("range", peer.query(&["range", "key010", "key013"])).await;
    assert_eq!(utf8(&r.payload), "key010=v10,key011=v11,key012=v12");
    let r = within("range", peer.query(&["range", "key300", "key100"])).await;
    assert_eq!(utf8(&r.payload), "");
    let r = within("composite", peer.query(&["composite", "color", "blue"])).await;
    assert_eq!(utf8(&r.payload), "color/blue/a1");

    // Pages: the bookmark is the next key, empty after the last page.
    let r = within("page", peer.query(&["page", "key000", "key005", "2", ""])).await;
    assert_eq!(utf8(&r.payload), "key000=v0,key001=v1|2|key002");
    let r = within(
        "page",
        peer.query(&["page", "key000", "key005", "2", "key002"]),
    )
    .await;
    assert_eq!(utf8(&r.payload), "key002=v2,key003=v3|2|key004");
    let r = within(
        "page",
        peer.query(&["page", "key000", "key005", "2", "key004"]),
    )
    .await;
    assert_eq!(utf8(&r.payload), "key004=v4|1|");
    // A page larger than a batch: two answers. Like Fabric's peer, MemoryPeer sends the
    // pagination metadata with the last batch, while shims (Fabric's and this one) read it from
    // the first: a page of more than 100 results comes back without a bookmark, on Fabric too.
    let next_before = peer.received("QUERY_STATE_NEXT");
    let r = within("page", peer.query(&["page", "", "", "150", ""])).await;
    assert_eq!(peer.received("QUERY_STATE_NEXT"), next_before + 1);
    let payload = utf8(&r.payload);
    let parts: Vec<&str> = payload.split('|').collect();
    assert_eq!(parts[0].split(',').count(), 150);
    assert_eq!(&parts[1..], ["0", ""]);
    // Page size 0 encodes to empty QueryMetadata, which is no pagination at all (in Fabric
    // too); a negative size is refused.
    let r = within("page", peer.query(&["page", "", "", "0", ""])).await;
    let payload = utf8(&r.payload);
    let parts: Vec<&str> = payload.split('|').collect();
    assert_eq!(parts[0].split(',').count(), 250);
    assert_eq!(&parts[1..], ["0", ""]);
    let r = within("page", peer.query(&["page", "", "", "-1", ""])).await;
    assert!(
        r.message.contains("page size must be greater than zero"),
        "{}",
        r.message
    );

    // Paginated queries only in read-only transactions, both ways round.
    let r = within("page_put", peer.invoke(&["page_put", "k", "v"])).await;
    assert!(
        r.message.contains("already run a paginated query"),
        "{}",
        r.message
    );
    let r = within("put_page", peer.invoke(&["put_page", "k", "v"])).await;
    assert!(
        r.message.contains("read-only transactions"),
        "{}",
        r.message
    );
    assert_eq!(peer.state("k"), None);

    // Rich queries need CouchDB.
    let r = within("rich", peer.query(&["rich", r#"{"selector":{}}"#])).await;
    assert_eq!(r.status, 500);
    assert!(
        r.message.contains("rich queries need CouchDB"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn memory_peer_private_data_metadata_and_other_chaincodes() {
    let peer = within("registration", MemoryPeer::start(Probe)).await;

    // Private data: committed at commit, hashed, purged.
    within("pput", peer.invoke(&["pput", "secrets", "p1", "hidden"])).await;
    assert_eq!(
        peer.private_data("secrets", "p1").as_deref(),
        Some(&b"hidden"[..])
    );
    assert_eq!(
        peer.state("p1"),
        None,
        "private data stays out of world state"
    );
    let r = within("pget", peer.query(&["pget", "secrets", "p1"])).await;
    assert_eq!(utf8(&r.payload), "hidden");
    let r = within("phash", peer.query(&["phash", "secrets", "p1"])).await;
    assert_eq!(
        utf8(&r.payload),
        weft_crypto::hex(&weft_crypto::sha256(b"hidden"))
    );
    let r = within("phash", peer.query(&["phash", "secrets", "nope"])).await;
    assert_eq!(utf8(&r.payload), "<none>");
    peer.put_private_data("secrets", "p2", "two");
    let r = within("prange", peer.query(&["prange", "secrets", "", ""])).await;
    assert_eq!(utf8(&r.payload), "p1=hidden,p2=two");
    within("ppurge", peer.invoke(&["ppurge", "secrets", "p1"])).await;
    assert_eq!(peer.private_data("secrets", "p1"), None);
    within("pdel", peer.invoke(&["pdel", "secrets", "p2"])).await;
    assert_eq!(peer.private_data("secrets", "p2"), None);

    // Key-level endorsement policy through state metadata.
    peer.put_state("guarded", "v");
    within("set_ep", peer.invoke(&["set_ep", "guarded", "policy"])).await;
    assert_eq!(
        peer.state_metadata("guarded")
            .get(VALIDATION_PARAMETER)
            .map(|v| utf8(v)),
        Some("policy".into())
    );
    let r = within("get_ep", peer.query(&["get_ep", "guarded"])).await;
    assert_eq!(utf8(&r.payload), "policy");
    within("set_ep", peer.invoke(&["set_ep", "absent", "policy"])).await;
    assert!(
        peer.state_metadata("absent").is_empty(),
        "metadata needs an existing key"
    );
    within("del", peer.invoke(&["del", "guarded"])).await;
    assert!(
        peer.state_metadata("guarded").is_empty(),
        "a delete drops the metadata"
    );

    // Other chaincodes: ERROR unless a stand-in is registered.
    let r = within("call", peer.invoke(&["call", "other", "", "Fn"])).await;
    assert_eq!(r.status, 500);
    assert!(r.message.contains("no chaincode 'other'"), "{}", r.message);
    peer.mock_chaincode("other", |args| {
        Response::success(format!("called with {}", args.len()))
    });
    let r = within("call", peer.invoke(&["call", "other", "ch2", "Fn", "x"])).await;
    assert_eq!(utf8(&r.payload), "200||called with 2");
}

#[tokio::test]
async fn memory_peer_forwards_creator_and_transient_data() {
    let peer = within(
        "registration",
        MemoryPeer::start_on(Probe, "trade", "assets"),
    )
    .await;
    assert_eq!(peer.registered_as(), "assets");
    let creator = MemoryPeer::serialized_identity("Org2MSP", b"-----BEGIN CERTIFICATE-----");
    let mut transient = BTreeMap::new();
    transient.insert("secret".to_owned(), Bytes::from("s3cr3t"));
    let r = within(
        "facts",
        peer.invoke_with(&["facts"], transient, creator.clone()),
    )
    .await;
    let facts: serde_json::Value = serde_json::from_slice(&r.payload).unwrap();
    assert_eq!(facts["channel"], "trade");
    assert_eq!(facts["creator"], weft_crypto::hex(&creator));
    assert_eq!(facts["transient"]["secret"], "s3cr3t");
    assert_eq!(facts["mspid"], MemoryPeer::MSPID);
    assert_eq!(facts["binding"].as_str().unwrap().len(), 64);
    assert!(facts["timestamp"][0].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(facts["tx_id"].as_str().unwrap().len(), 64);
    let r = within("init", peer.init(&["x"])).await;
    assert_eq!(utf8(&r.payload), "init is_init=true args=x");
}
