//! End-to-end throughput and latency through the Gateway, everything on this machine: an
//! orderer and two orgs' peers (in this process), the Rust asset-transfer contract launched
//! by each peer, mutual TLS on every link, MAJORITY endorsement (both orgs), BatchTimeout
//! 250 ms and MaxMessageCount 500. `WEFT_BENCH_CLIENTS` clients (default 50) submit
//! CreateAsset through org1's gateway, each waiting for its commit status before the next,
//! for `WEFT_BENCH_SECS` seconds (default 10); the run prints transactions per second and
//! latency percentiles.
//!
//! `cargo bench -p asset-transfer --bench gateway` (release build). The client here is the
//! same process as the nodes, so it shares the cores with them, as a client on the same
//! machine would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/network.rs"]
mod network;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use network::FullNet;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    // `cargo bench` passes --bench (and filters); this harness takes its settings from the
    // environment instead.
    let clients = env_number("WEFT_BENCH_CLIENTS", 50) as usize;
    let secs = env_number("WEFT_BENCH_SECS", 10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .canonicalize()
            .unwrap();
        let net = FullNet::start(&repo).await;
        let src = net._tmp.path().join("src-basic");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::copy(
            env!("CARGO_BIN_EXE_asset-transfer"),
            src.join("asset-transfer"),
        )
        .unwrap();
        let code = weft_peer::package::code_archive_from_directory(&src, "binary").unwrap();
        let pkg =
            weft_peer::package::ChaincodePackage::build("basic_1.0", "binary", "", &code).unwrap();
        let id = net.install(&pkg);
        net.define("basic", &id).await;

        let user = net.network.orgs[0].user.clone();
        let signer = Arc::new(user.signer().unwrap());
        let addr = net.peers[0].node.peer_address.to_string();
        let mut conns = Vec::new();
        // A few HTTP/2 connections shared by the clients, as an application would.
        for _ in 0..4 {
            conns.push(FullNet::conn(&addr, &net.network.orgs[0].tls_ca_cert, &user).await);
        }
        let timeout = Duration::from_secs(60);
        let submit = move |conn: weft_peer::client::Conn, id: String| {
            let signer = signer.clone();
            async move {
                let args: [&[u8]; 6] = [
                    b"CreateAsset",
                    id.as_bytes(),
                    b"blue",
                    b"5",
                    b"Tomoko",
                    b"300",
                ];
                weft_peer::client::gateway_submit(
                    &conn,
                    &signer,
                    "mychannel",
                    "basic",
                    &args,
                    timeout,
                )
                .await
            }
        };
        // Warm up: chaincode launched on both peers, connections open.
        submit(conns[0].clone(), "warmup".into()).await.unwrap();

        let start = Instant::now();
        let deadline = start + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let conn = conns[c % conns.len()].clone();
            let submit = submit.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match submit(conn.clone(), format!("asset-{c}-{n}")).await {
                        Ok(_) => latencies.push(t.elapsed()),
                        Err(e) => {
                            errors += 1;
                            if errors == 1 {
                                eprintln!("client {c}: {e}");
                            }
                        }
                    }
                    n += 1;
                }
                (latencies, errors)
            }));
        }
        let mut latencies = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.unwrap();
            latencies.extend(l);
            errors += e;
        }
        let elapsed = start.elapsed();
        latencies.sort();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!(
            "gateway::submit/clients={clients}: {} committed in {:.1} s = {:.0} tx/s; latency \
             p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; {errors} errors; {cores} cores; orderer + \
             2 peers + 2 chaincode processes + client on this machine, mutual TLS everywhere, \
             MAJORITY of 2 orgs, BatchTimeout 250 ms, MaxMessageCount 500",
            latencies.len(),
            elapsed.as_secs_f64(),
            latencies.len() as f64 / elapsed.as_secs_f64(),
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.95).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
        net.stop().await;
    });
}
