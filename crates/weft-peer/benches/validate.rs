#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Validation + commit of blocks of 500 two-endorsement transactions (MAJORITY of two orgs),
//! each writing one new key, through `weft_peer::committer::commit_block` on a RocksDB ledger.
//!
//! - `validate::commit/cache=cold`: every signature verified (creator + 2 endorsements).
//! - `validate::commit/cache=own-endorsement`: this peer endorsed the transactions (its
//!   endorsements are in the signature cache, as the endorser leaves them): 2 verifications.
//!
//! Each without and with the commit pipeline (`pipelined=true`: phase 1 of the next block
//! overlaps the commit of this one, as in the deliver client).
//!
//! Throughput is in transactions; signature verifications/s = tx/s x 3 (cold) or x 2.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weft_configtx::testing::{two_org_network, CHANNEL};
use weft_msp::SigningIdentity;
use weft_peer::testing::{endorsed_transaction, kv_rwset, open_channel_from_genesis};
use weft_peer::verifycache::SignatureCache;

const TXS: usize = 500;

fn block_txs(
    user: &SigningIdentity,
    endorsers: &[&SigningIdentity],
    seq: &mut u64,
    cache: Option<(&SignatureCache, &SigningIdentity)>,
) -> Vec<Bytes> {
    (0..TXS)
        .map(|_| {
            *seq += 1;
            let key = format!("key{:010}", *seq);
            let rw = kv_rwset(
                "basic",
                &[(&key, None)],
                &[(&key, Some(b"value-0123456789"))],
                vec![],
            );
            let (env, _) = endorsed_transaction(user, CHANNEL, "basic", &rw, endorsers).unwrap();
            if let Some((cache, me)) = cache {
                remember_own_endorsement(&env, cache, me);
            }
            env
        })
        .collect()
}

/// What the endorser does when it signs: remember its own endorsement signature.
fn remember_own_endorsement(env: &Bytes, cache: &SignatureCache, me: &SigningIdentity) {
    use prost::Message;
    let e = weft_proto::common::Envelope::decode(env.clone()).unwrap();
    let p = weft_proto::common::Payload::decode(e.payload).unwrap();
    let tx = weft_proto::protos::Transaction::decode(p.data).unwrap();
    let cap =
        weft_proto::protos::ChaincodeActionPayload::decode(tx.actions[0].payload.clone()).unwrap();
    let action = cap.action.unwrap();
    let mine = me.serialize();
    for en in &action.endorsements {
        if en.endorser.as_ref() == mine.as_slice() {
            let msg = [
                action.proposal_response_payload.as_ref(),
                en.endorser.as_ref(),
            ]
            .concat();
            let digest =
                weft_crypto::sign::MessageDigest::of(me.identity().public_key.algorithm(), &msg);
            cache.insert(&me.identity().public_key, &digest, &en.signature);
        }
    }
}

fn bench(c: &mut Criterion) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let net = two_org_network(&dir.path().join("net"), 7050).unwrap();
    let user = net.orgs[0].user.signer().unwrap();
    let peer1 = net.orgs[0].node.signer().unwrap();
    let peer2 = net.orgs[1].node.signer().unwrap();
    let mut group = c.benchmark_group("validate::commit");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    eprintln!("validate bench: {cores} cores, blocks of {TXS} two-endorsement transactions");
    for (name, own) in [("cache=cold", false), ("cache=own-endorsement", true)] {
        let cache = Arc::new(SignatureCache::default());
        let channel = rt
            .block_on(open_channel_from_genesis(
                &dir.path().join(format!("ledger-{own}")),
                &net.genesis,
                cache.clone(),
            ))
            .unwrap();
        channel.define_chaincode("basic", "basic_1.0:abc");
        let mut seq = 0u64;
        group.bench_function(format!("{name}/pipelined=false"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let txs = block_txs(
                        &user,
                        &[&peer1, &peer2],
                        &mut seq,
                        own.then_some((&*cache, &peer1)),
                    );
                    let h = channel.blocks().height();
                    let block = weft_ledger::block::new_block(h, &[0u8; 32], txs);
                    let start = Instant::now();
                    let committed = rt
                        .block_on(weft_peer::committer::commit_block(&channel, block))
                        .unwrap();
                    total += start.elapsed();
                    assert!(committed.txs.iter().all(|t| t.code == 0));
                }
                total
            })
        });
        // Through the commit pipeline, as the deliver client commits: phase 1 of block n+1
        // overlaps the commit of block n. Blocks go in groups of 4.
        group.bench_function(format!("{name}/pipelined=true"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(4);
                    left -= n;
                    let h = channel.blocks().height();
                    let blocks: Vec<_> = (0..n)
                        .map(|i| {
                            let txs = block_txs(
                                &user,
                                &[&peer1, &peer2],
                                &mut seq,
                                own.then_some((&*cache, &peer1)),
                            );
                            weft_ledger::block::new_block(h + i, &[0u8; 32], txs)
                        })
                        .collect();
                    let start = Instant::now();
                    rt.block_on(async {
                        let p = weft_peer::committer::Pipeline::start(channel.clone(), |c| {
                            assert!(c.txs.iter().all(|t| t.code == 0));
                        });
                        for b in blocks {
                            assert!(p.push(b).await);
                        }
                        p.finish().await.unwrap();
                    });
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
