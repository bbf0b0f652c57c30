//! The cost of one GET_STATE round trip between a chaincode and its peer over a real
//! 127.0.0.1 gRPC stream, in plaintext, with TLS and with mutual TLS.
//!
//! `cargo bench -p weft-shim --bench roundtrip`. The chaincode runs as a chaincode server
//! (`ChaincodeServer`); the benchmark dials it as the peer does, registers it, then sends
//! transactions that each make [`READS`] GET_STATE calls, answering each one. The figure is
//! the time per round trip (the transaction's own TRANSACTION/COMPLETED exchange amortized over
//! its reads). Connections are set up once per transport: handshakes are not measured. The
//! ratios tls/plaintext and mtls/plaintext are printed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use prost::Message;
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_proto::protos::chaincode_client::ChaincodeClient;
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{ChaincodeInput, ChaincodeMessage, GetState};
use weft_shim::{Chaincode, ChaincodeServer, Response, ServerConfig, ServerTls, ShimError, Stub};
use weft_tls::grpc;
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

/// GET_STATE calls per transaction.
const READS: u64 = 50;
const CHANNEL: &str = "benchchannel";

/// Reads `READS` keys, one after the other, as most chaincode does.
struct Reader;

impl Chaincode for Reader {
    async fn init(&self, _stub: Stub) -> Response {
        Response::success(Bytes::new())
    }

    async fn invoke(&self, stub: Stub) -> Response {
        for i in 0..READS {
            if let Err(e) = stub.get_state(&format!("key{i}")).await {
                return Response::error(e.to_string());
            }
        }
        Response::success(Bytes::new())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Transport {
    Plaintext,
    Tls,
    Mtls,
}

impl Transport {
    fn name(self) -> &'static str {
        match self {
            Transport::Plaintext => "plaintext",
            Transport::Tls => "tls",
            Transport::Mtls => "mtls",
        }
    }
}

/// The benchmark's side: the peer, on an open, registered stream.
struct Peer {
    inbound: Streaming<ChaincodeMessage>,
    out: mpsc::Sender<ChaincodeMessage>,
    value: Bytes,
    next_tx: u64,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), ShimError>>,
}

impl Peer {
    async fn recv(&mut self) -> ChaincodeMessage {
        tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
            .await
            .expect("the chaincode did not answer in 10 s")
            .expect("stream failed")
            .expect("stream closed")
    }

    async fn send(&self, msg: ChaincodeMessage) {
        self.out.send(msg).await.expect("stream closed");
    }

    /// One transaction; returns the GET_STATE round trips it made.
    async fn transaction(&mut self) -> u64 {
        self.next_tx += 1;
        let txid = format!("tx{}", self.next_tx);
        self.send(ChaincodeMessage {
            r#type: MsgType::Transaction as i32,
            payload: ChaincodeInput {
                args: vec![Bytes::from_static(b"read")],
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
            txid: txid.clone(),
            channel_id: CHANNEL.into(),
            ..Default::default()
        })
        .await;
        let mut rounds = 0;
        loop {
            let m = self.recv().await;
            match MsgType::try_from(m.r#type) {
                Ok(MsgType::GetState) => {
                    debug_assert!(GetState::decode(m.payload.clone()).is_ok());
                    self.send(ChaincodeMessage {
                        r#type: MsgType::Response as i32,
                        payload: self.value.clone(),
                        txid: m.txid,
                        channel_id: m.channel_id,
                        ..Default::default()
                    })
                    .await;
                    rounds += 1;
                }
                Ok(MsgType::Completed) => {
                    assert_eq!(m.txid, txid);
                    return rounds;
                }
                other => panic!(
                    "unexpected {other:?}: {:?}",
                    String::from_utf8_lossy(&m.payload)
                ),
            }
        }
    }

    async fn close(self) {
        drop(self.out);
        drop(self.inbound);
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server).await;
    }
}

/// Start a chaincode server with `transport` and connect to it as the peer.
async fn setup(transport: Transport) -> Peer {
    let ca = CertificateAuthority::new_root(
        &Subject::cn("bench TLS CA"),
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let server_cert = ca
        .issue(
            &LeafRequest::new(Subject::cn("chaincode.bench"), LeafProfile::TlsServer)
                .sans(["127.0.0.1"]),
        )
        .unwrap();
    let peer_cert = ca
        .issue(&LeafRequest::new(
            Subject::cn("peer0.bench"),
            LeafProfile::TlsClient,
        ))
        .unwrap();
    let tls = (transport != Transport::Plaintext).then(|| ServerTls {
        cert_pem: server_cert.pem().into_bytes(),
        key_pem: server_cert.key.to_pkcs8_pem().into_bytes(),
        client_ca_pem: (transport == Transport::Mtls).then(|| ca.certificate_pem().into_bytes()),
    });
    let server = ChaincodeServer::bind(ServerConfig {
        address: "127.0.0.1:0".into(),
        chaincode_id: "bench:1".into(),
        tls,
    })
    .await
    .unwrap();
    let addr = server.local_addr();
    let (stop, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(server.run_until(Reader, async {
        let _ = stop_rx.await;
    }));

    let roots = Trust::Roots(vec![ca.certificate().clone()]);
    let client = match transport {
        Transport::Plaintext => None,
        Transport::Tls => {
            Some(TlsClient::new(roots, ClientIdentity::Anonymous, Profile::Fabric).unwrap())
        }
        Transport::Mtls => {
            let id = Identity::from_pem(
                peer_cert.pem().as_bytes(),
                peer_cert.key.to_pkcs8_pem().as_bytes(),
                "bench peer",
            )
            .unwrap();
            Some(TlsClient::new(roots, ClientIdentity::Certificate(id), Profile::Fabric).unwrap())
        }
    };
    let ch = grpc::channel(client, Endpoint::parse(&addr.to_string()).unwrap())
        .await
        .unwrap();
    let (out, rx) = mpsc::channel(64);
    let inbound = ChaincodeClient::new(ch)
        .connect(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut peer = Peer {
        inbound,
        out,
        value: Bytes::from(vec![b'v'; 64]),
        next_tx: 0,
        stop,
        server,
    };
    let register = peer.recv().await;
    assert_eq!(register.r#type, MsgType::Register as i32);
    for ty in [MsgType::Registered, MsgType::Ready] {
        peer.send(ChaincodeMessage {
            r#type: ty as i32,
            ..Default::default()
        })
        .await;
    }
    assert_eq!(peer.transaction().await, READS);
    peer
}

/// Total measured time and round trips per transport, for the ratios.
static TOTALS: Mutex<BTreeMap<Transport, (Duration, u64)>> = Mutex::new(BTreeMap::new());

fn get_state(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let mut group = c.benchmark_group("shim::get_state");
    for transport in [Transport::Plaintext, Transport::Tls, Transport::Mtls] {
        let mut peer = rt.block_on(setup(transport));
        group.bench_function(format!("transport={}", transport.name()), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let txs = iters.div_ceil(READS).max(1);
                    let start = Instant::now();
                    let mut rounds = 0;
                    for _ in 0..txs {
                        rounds += peer.transaction().await;
                    }
                    let elapsed = start.elapsed();
                    let mut totals = TOTALS.lock().unwrap();
                    let t = totals.entry(transport).or_default();
                    t.0 += elapsed;
                    t.1 += rounds;
                    // Per round trip, times the iterations criterion asked for.
                    elapsed.div_f64(rounds as f64).mul_f64(iters as f64)
                })
            })
        });
        rt.block_on(peer.close());
    }
    group.finish();

    let totals = TOTALS.lock().unwrap();
    let per = |t: Transport| {
        totals
            .get(&t)
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| d.as_secs_f64() / *n as f64)
    };
    if let (Some(plain), Some(tls), Some(mtls)) = (
        per(Transport::Plaintext),
        per(Transport::Tls),
        per(Transport::Mtls),
    ) {
        eprintln!(
            "shim::get_state per round trip (mean over all timed runs): plaintext {:.1} us, tls {:.1} us, mtls {:.1} us",
            plain * 1e6,
            tls * 1e6,
            mtls * 1e6
        );
        eprintln!(
            "shim::get_state ratios: tls/plaintext = {:.2}, mtls/plaintext = {:.2}",
            tls / plain,
            mtls / plain
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = get_state
}
criterion_main!(benches);
