//! Endorsement throughput: signed proposals per second through the peer's `ProcessProposal`
//! for asset-transfer `CreateAsset` (one GET_STATE, one PUT_STATE), with the chaincode
//! launched (it dials the peer's chaincode service with a per-launch certificate: always
//! mutual TLS) or as a service dialed from connection.json in plaintext, TLS and mutual TLS.
//!
//! `cargo bench -p asset-transfer --bench endorse`. Each iteration endorses [`BATCH`]
//! proposals concurrently (clients send many at once); a proposal's cost includes decoding,
//! the creator's signature check (P-256), simulation on RocksDB, the chaincode round trips and
//! the peer's signature. Proposals are made and signed by the client before timing. The
//! chaincode runs in this process (a launched chaincode here is the same weft-shim code the
//! binary runs, started with the credentials the peer would hand it), so only the link
//! differs between configurations. `launched+grpc-mtls` also sends the proposals over gRPC
//! with mutual TLS from a client (one HTTP/2 connection, as a Gateway or SDK holds), so the
//! client link is included. Ratios against CCaaS plaintext are printed at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio::runtime::Runtime;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_peer::testing::{TestPeer, TestPeerOptions};
use weft_proto::protos::endorser_client::EndorserClient;
use weft_proto::protos::SignedProposal;
use weft_shim::{ChaincodeServer, LaunchConfig, LaunchTls, ServerConfig, ServerTls};

/// Proposals endorsed concurrently per iteration.
const BATCH: usize = 256;

struct Setup {
    _tmp: tempfile::TempDir,
    peer: TestPeer,
    proposals: Vec<SignedProposal>,
    /// Send proposals over gRPC with mutual TLS (User1's TLS certificate) instead of calling
    /// the endorser in process.
    grpc: Option<EndorserClient<tonic::transport::Channel>>,
}

fn pem_key(k: &weft_crypto::PrivateKey) -> String {
    weft_crypto::pem::encode("PRIVATE KEY", k.pkcs8_der())
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A peer with asset-transfer defined as `basic`, reached over `link`.
async fn setup(link: &str) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let peer = TestPeer::start(tmp.path(), &TestPeerOptions::with_shipped_builders(&repo))
        .await
        .unwrap();
    if link.starts_with("launched") {
        // Defined by name; the chaincode registers with a per-launch certificate.
        let package_id =
            "basic_1.0:0000000000000000000000000000000000000000000000000000000000000000";
        peer.node
            .channels
            .get(weft_peer::testing::CHANNEL)
            .unwrap()
            .define_chaincode("basic", package_id);
        let creds = peer.node.authority.issue(package_id).unwrap();
        let config = LaunchConfig {
            chaincode_id: package_id.into(),
            peer_address: peer.node.chaincode_advertised.clone(),
            tls: Some(LaunchTls {
                root_pem: creds.root_pem.into_bytes(),
                client_cert_pem: creds.cert_pem.into_bytes(),
                client_key_pem: creds.key_pem.into_bytes(),
                server_name_override: None,
            }),
            mspid: Some("Org1MSP".into()),
        };
        tokio::spawn(weft_shim::start_with(asset_transfer::contract(), config));
        let registered = peer
            .node
            .runtime
            .registry()
            .wait_registered(package_id, Duration::from_secs(10))
            .await;
        assert!(registered.is_some(), "launched chaincode did not register");
    } else {
        let port = free_port();
        let server_ca = CertificateAuthority::new_root(
            &Subject::cn("chaincode server CA"),
            Validity::from_now(time::Duration::days(1)),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        let server = server_ca
            .issue(
                &LeafRequest::new(Subject::cn("basic"), LeafProfile::TlsServer).sans(["127.0.0.1"]),
            )
            .unwrap();
        let client_ca = CertificateAuthority::new_root(
            &Subject::cn("peer client CA"),
            Validity::from_now(time::Duration::days(1)),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        let client = client_ca
            .issue(&LeafRequest::new(
                Subject::cn("peer0"),
                LeafProfile::TlsClient,
            ))
            .unwrap();
        let conn = match link {
            "ccaas-plaintext" => serde_json::json!({ "address": format!("127.0.0.1:{port}") }),
            "ccaas-tls" => serde_json::json!({
                "address": format!("127.0.0.1:{port}"),
                "tls_required": true,
                "root_cert": server_ca.certificate_pem(),
            }),
            _ => serde_json::json!({
                "address": format!("127.0.0.1:{port}"),
                "tls_required": true,
                "client_auth_required": true,
                "client_cert": client.pem(),
                "client_key": pem_key(&client.key),
                "root_cert": server_ca.certificate_pem(),
            }),
        };
        let id = peer.install_ccaas("basic_1.0", "basic", &conn).unwrap();
        let tls = (link != "ccaas-plaintext").then(|| ServerTls {
            cert_pem: server.pem().into_bytes(),
            key_pem: pem_key(&server.key).into_bytes(),
            client_ca_pem: (link == "ccaas-mtls").then(|| client_ca.certificate_pem().into_bytes()),
        });
        let srv = ChaincodeServer::bind(ServerConfig {
            address: format!("127.0.0.1:{port}"),
            chaincode_id: id,
            tls,
        })
        .await
        .unwrap();
        tokio::spawn(srv.run(asset_transfer::contract()));
    }
    let user = peer.user("org1").unwrap();
    let mut proposals = Vec::with_capacity(BATCH);
    for i in 0..BATCH {
        let id = format!("asset{i}");
        let (sp, _) = peer
            .proposal(
                &user,
                "basic",
                &["CreateAsset", &id, "blue", "5", "Tomoko", "300"],
            )
            .unwrap();
        proposals.push(sp);
    }
    // Warm up: connect, and check that CreateAsset is endorsed.
    let r = peer.node.endorser.process(&proposals[0]).await;
    let status = r.response.as_ref().map(|r| r.status).unwrap_or_default();
    assert_eq!(status, 200, "{r:?}");
    assert!(r.endorsement.is_some());
    let grpc = if link.ends_with("grpc-mtls") {
        let tls = peer.org("org1").join("users/User1@org1.example.com/tls");
        let client = weft_tls::TlsClient::new(
            weft_tls::Trust::roots_from_pem_files(&[tls.join("ca.crt")], "ca").unwrap(),
            weft_tls::ClientIdentity::Certificate(
                weft_tls::Identity::from_pem_files(
                    &tls.join("client.crt"),
                    &tls.join("client.key"),
                    "client",
                )
                .unwrap(),
            ),
            weft_tls::Profile::Fabric,
        )
        .unwrap();
        let endpoint = weft_tls::Endpoint::parse(&peer.node.peer_address.to_string()).unwrap();
        let ch = weft_tls::grpc::channel(Some(client), endpoint)
            .await
            .unwrap();
        Some(EndorserClient::new(ch))
    } else {
        None
    };
    Setup {
        _tmp: tmp,
        peer,
        proposals,
        grpc,
    }
}

async fn endorse_all(s: &Setup) {
    // One task per proposal, as the gRPC server would run them, so both cores work.
    let mut set = tokio::task::JoinSet::new();
    if let Some(client) = &s.grpc {
        for p in &s.proposals {
            let mut client = client.clone();
            let p = p.clone();
            set.spawn(async move {
                client
                    .process_proposal(p)
                    .await
                    .map(|r| r.into_inner().endorsement.is_some())
                    .unwrap_or(false)
            });
        }
        while let Some(ok) = set.join_next().await {
            debug_assert!(ok.unwrap_or(false));
        }
        return;
    }
    for p in &s.proposals {
        let endorser = s.peer.node.endorser.clone();
        let p = p.clone();
        set.spawn(async move { endorser.process(&p).await.endorsement.is_some() });
    }
    while let Some(ok) = set.join_next().await {
        debug_assert!(ok.unwrap_or(false));
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let links = [
        "ccaas-plaintext",
        "ccaas-tls",
        "ccaas-mtls",
        "launched",
        "launched+grpc-mtls",
    ];
    let setups: Vec<(&str, Setup)> = links.iter().map(|l| (*l, rt.block_on(setup(l)))).collect();
    let mut group = c.benchmark_group("endorse");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    for (link, s) in &setups {
        group.bench_function(*link, |b| {
            b.iter_custom(|iters| run(&rt, s, iters));
        });
    }
    group.finish();

    // The comparison: interleaved rounds, so every configuration sees the same machine
    // conditions; the median round of each.
    let mut rounds: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..7 {
        for (link, s) in &setups {
            rounds.entry(*link).or_default().push(measure(&rt, s));
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let base = median(&rounds["ccaas-plaintext"]);
    println!("\nsigned endorsements/s, CreateAsset, {BATCH} concurrent (median of 7 interleaved 1 s rounds):");
    for link in links {
        let v = median(&rounds[link]);
        println!("  {link:20} {v:8.0}/s   vs ccaas-plaintext {:.3}", v / base);
    }
    for (_, s) in setups {
        rt.block_on(s.peer.stop());
    }
}

fn run(rt: &Runtime, s: &Setup, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        rt.block_on(endorse_all(s));
    }
    start.elapsed()
}

/// Endorsements per second over 1 s of batches.
fn measure(rt: &Runtime, s: &Setup) -> f64 {
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed() < Duration::from_secs(1) {
        rt.block_on(endorse_all(s));
        n += BATCH;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

criterion_group!(benches, bench);
criterion_main!(benches);
