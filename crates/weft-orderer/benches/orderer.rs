#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Orderer hot paths.
//!
//! - `blockcutter::ordered/count=500`: 500 envelopes of 3 KB through the block cutter
//!   (MaxMessageCount 500): the pure cutting cost.
//! - `broadcast::process/envelopes=500`: 500 envelopes signed by Org1's User1 through every
//!   Broadcast check (decode, size, cached creator, signature verification, /Channel/Writers)
//!   and into the single-node consenter of a joined channel (WAL + block store on disk), in
//!   process, without gRPC. Throughput is in envelopes; one ECDSA P-256 verification each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use prost::Message;
use weft_configtx::testing::{two_org_network, CHANNEL};
use weft_orderer::blockcutter::{BatchLimits, BlockCutter};
use weft_orderer::chain::ChainPaths;
use weft_orderer::consensus::BlockSigner;
use weft_orderer::registrar::Registrar;
use weft_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};

const N: usize = 500;

fn blockcutter(c: &mut Criterion) {
    let limits = BatchLimits {
        max_message_count: N as u32,
        absolute_max_bytes: 10 * 1024 * 1024,
        preferred_max_bytes: 2 * 1024 * 1024,
        timeout: Duration::from_millis(250),
    };
    let env = Bytes::from(vec![1u8; 3000]);
    let mut g = c.benchmark_group("blockcutter");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function(format!("ordered/count={N}"), |b| {
        let mut cutter = BlockCutter::new(limits);
        b.iter(|| {
            let mut batches = 0;
            for _ in 0..N {
                batches += cutter.ordered(env.clone(), 3000).batches.len();
            }
            assert_eq!(batches, 1);
        })
    });
    g.finish();
}

fn signed(user: &weft_msp::SigningIdentity, i: u64) -> Envelope {
    let ch = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        channel_id: CHANNEL.into(),
        tx_id: format!("tx{i}"),
        ..Default::default()
    };
    let sh = SignatureHeader {
        creator: user.serialize().into(),
        nonce: Bytes::from(i.to_be_bytes().to_vec()),
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec().into(),
            signature_header: sh.encode_to_vec().into(),
        }),
        data: Bytes::from(vec![7u8; 2500]),
    }
    .encode_to_vec();
    let signature = user.sign(&payload).unwrap();
    Envelope {
        payload: payload.into(),
        signature: signature.into(),
    }
}

fn broadcast(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let net = two_org_network(dir.path(), 7050).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let signer = BlockSigner::new(Arc::new(net.orderer_org.node.signer().unwrap()));
    let paths = ChainPaths {
        ledger_dir: dir.path().join("ledger"),
        wal_dir: dir.path().join("wal"),
    };
    let registrar = rt.block_on(async {
        let r = Registrar::open(paths, signer);
        r.join(net.genesis.clone()).await.unwrap();
        Arc::new(r)
    });
    let user = net.orgs[0].user.signer().unwrap();
    let envs: Vec<Envelope> = (0..N as u64).map(|i| signed(&user, i)).collect();
    let mut g = c.benchmark_group("broadcast");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function(format!("process/envelopes={N}"), |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    for e in &envs {
                        weft_orderer::broadcast::process(&registrar, e)
                            .await
                            .unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    rt.block_on(registrar.halt_all());
}

criterion_group!(benches, blockcutter, broadcast);
criterion_main!(benches);
