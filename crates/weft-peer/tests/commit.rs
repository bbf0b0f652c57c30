#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The commit path: validation codes of real signed transactions, what they leave in the
//! state, crash recovery, and delivered-block checks.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use weft_configtx::testing::{two_org_network, TestNetwork, CHANNEL};
use weft_msp::SigningIdentity;
use weft_peer::channel::{ChaincodeDefinition, Channel, EndorsementPolicy};
use weft_peer::committer::{commit_block, recover};
use weft_peer::deliverclient::check_block;
use weft_peer::testing::{
    endorsed_transaction, kv_rwset, next_block, open_channel_from_genesis, sign_block,
};
use weft_peer::verifycache::SignatureCache;
use weft_proto::common::{Block, Envelope};
use weft_proto::kvrwset::range_query_info::ReadsInfo;
use weft_proto::kvrwset::{KvRead, QueryReads, RangeQueryInfo, Version as KvVersion};
use weft_proto::protos::TxValidationCode as C;

const CC: &str = "basic";

struct Net {
    _dir: tempfile::TempDir,
    net: TestNetwork,
    channel: Arc<Channel>,
    user1: SigningIdentity,
    peer1: SigningIdentity,
    peer2: SigningIdentity,
    orderer: SigningIdentity,
}

async fn setup() -> Net {
    let dir = tempfile::tempdir().unwrap();
    let net = two_org_network(&dir.path().join("net"), 7050).unwrap();
    let channel = open_channel_from_genesis(
        &dir.path().join("ledger"),
        &net.genesis,
        Arc::new(SignatureCache::default()),
    )
    .await
    .unwrap();
    channel.define_chaincode(CC, "basic_1.0:abc");
    let user1 = net.orgs[0].user.signer().unwrap();
    let peer1 = net.orgs[0].node.signer().unwrap();
    let peer2 = net.orgs[1].node.signer().unwrap();
    let orderer = net.orderer_org.node.signer().unwrap();
    Net {
        _dir: dir,
        net,
        channel,
        user1,
        peer1,
        peer2,
        orderer,
    }
}

impl Net {
    fn tx(&self, rwset: &weft_proto::rwset::TxReadWriteSet) -> (Bytes, String) {
        endorsed_transaction(&self.user1, CHANNEL, CC, rwset, &[&self.peer1, &self.peer2]).unwrap()
    }

    fn block(&self, envelopes: Vec<Bytes>) -> Block {
        let h = self.channel.blocks().height();
        let prev = self.channel.blocks().block(h - 1).unwrap().unwrap();
        let mut b = next_block(prev.header.as_ref().unwrap(), envelopes);
        sign_block(&mut b, &self.orderer, 0).unwrap();
        b
    }

    async fn commit(&self, envelopes: Vec<Bytes>) -> Vec<C> {
        let b = self.block(envelopes);
        let committed = commit_block(&self.channel, b).await.unwrap();
        committed
            .txs
            .iter()
            .map(|t| C::try_from(t.code).unwrap())
            .collect()
    }

    async fn get(&self, key: &str) -> Option<(Vec<u8>, u64, u64)> {
        let view = self.channel.state().read().await;
        view.get(CC, key)
            .unwrap()
            .map(|v| (v.value.to_vec(), v.version.block_num, v.version.tx_num))
    }

    /// Seed `key` = `value` in block n; returns its version.
    async fn seed(&self, key: &str, value: &[u8]) -> (u64, u64) {
        let (env, _) = self.tx(&kv_rwset(CC, &[], &[(key, Some(value))], vec![]));
        assert_eq!(self.commit(vec![env]).await, vec![C::Valid]);
        let (_, b, t) = self.get(key).await.unwrap();
        (b, t)
    }
}

#[tokio::test]
async fn valid_transaction_commits_state_history_and_status() {
    let n = setup().await;
    let (env, tx_id) = n.tx(&kv_rwset(CC, &[("k", None)], &[("k", Some(b"v1"))], vec![]));
    assert_eq!(n.commit(vec![env]).await, vec![C::Valid]);
    assert_eq!(n.get("k").await, Some((b"v1".to_vec(), 1, 0)));
    assert_eq!(n.channel.tx_status(&tx_id), Some((1, C::Valid as i32)));
    assert!(n.channel.is_committed(&tx_id));
    let view = n.channel.state().read().await;
    let hist = view.history(CC, "k", None, 100).unwrap();
    assert_eq!(hist.len(), 1);
    assert_eq!(hist[0].1.tx_id, tx_id);
    drop(view);
    // The stored block carries the codes.
    let stored = n.channel.blocks().block(1).unwrap().unwrap();
    assert_eq!(
        weft_ledger::block::transactions_filter(&stored),
        Some(&[0u8][..])
    );
    assert_eq!(n.channel.state().savepoint().unwrap().unwrap().block_num, 1);
}

#[tokio::test]
async fn endorsement_policy_not_met() {
    let n = setup().await;
    // MAJORITY Endorsement of two orgs needs both; Org1 alone is not enough.
    let (env, _) = endorsed_transaction(
        &n.user1,
        CHANNEL,
        CC,
        &kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]),
        &[&n.peer1],
    )
    .unwrap();
    assert_eq!(n.commit(vec![env]).await, vec![C::EndorsementPolicyFailure]);
    assert_eq!(n.get("k").await, None);
    // Two endorsements by the same peer count once.
    let (env, _) = endorsed_transaction(
        &n.user1,
        CHANNEL,
        CC,
        &kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]),
        &[&n.peer1, &n.peer1],
    )
    .unwrap();
    assert_eq!(n.commit(vec![env]).await, vec![C::EndorsementPolicyFailure]);
    // A client is not a peer: User1 of Org2 does not satisfy Org2's Endorsement.
    let user2 = n.net.orgs[1].user.signer().unwrap();
    let (env, _) = endorsed_transaction(
        &n.user1,
        CHANNEL,
        CC,
        &kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]),
        &[&n.peer1, &user2],
    )
    .unwrap();
    assert_eq!(n.commit(vec![env]).await, vec![C::EndorsementPolicyFailure]);
    assert_eq!(n.get("k").await, None);
}

#[tokio::test]
async fn chaincode_policy_of_its_own_and_undefined_chaincode() {
    let n = setup().await;
    let org1_only = weft_msp::policy::parse("OR('Org1MSP.peer')").unwrap();
    n.channel.define(
        "org1cc",
        ChaincodeDefinition {
            package_id: "org1cc:1".into(),
            version: "1".into(),
            endorsement_policy: Some(EndorsementPolicy::Signature(Arc::new(
                weft_msp::policy::CompiledPolicy::new(&org1_only).unwrap(),
            ))),
        },
    );
    let rw = kv_rwset("org1cc", &[], &[("x", Some(b"1"))], vec![]);
    let (env, _) = endorsed_transaction(&n.user1, CHANNEL, "org1cc", &rw, &[&n.peer1]).unwrap();
    let rw2 = kv_rwset("nocc", &[], &[("x", Some(b"1"))], vec![]);
    let (env2, _) =
        endorsed_transaction(&n.user1, CHANNEL, "nocc", &rw2, &[&n.peer1, &n.peer2]).unwrap();
    assert_eq!(
        n.commit(vec![env, env2]).await,
        vec![C::Valid, C::EndorsementPolicyFailure]
    );
}

#[tokio::test]
async fn bad_creator_signature() {
    let n = setup().await;
    let (env, tx_id) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]));
    let mut e = Envelope::decode(env).unwrap();
    let mut sig = e.signature.to_vec();
    let last = sig.len() - 1;
    sig[last] ^= 0x01;
    e.signature = sig.into();
    // A signature by another identity over the same payload is just as bad.
    let (env2, _) = n.tx(&kv_rwset(CC, &[], &[("k2", Some(b"v"))], vec![]));
    let mut e2 = Envelope::decode(env2).unwrap();
    e2.signature = n.peer1.sign(&e2.payload).unwrap().into();
    let codes = n
        .commit(vec![e.encode_to_vec().into(), e2.encode_to_vec().into()])
        .await;
    assert_eq!(codes, vec![C::BadCreatorSignature, C::BadCreatorSignature]);
    assert_eq!(n.get("k").await, None);
    assert_eq!(n.get("k2").await, None);
    assert_eq!(
        n.channel.tx_status(&tx_id),
        Some((1, C::BadCreatorSignature as i32))
    );
}

#[tokio::test]
async fn bad_endorsement_signature() {
    let n = setup().await;
    // Org2's endorser signs something else: its endorsement does not count.
    let rw = kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]);
    let (env, _) = n.tx(&rw);
    let mut e = Envelope::decode(env).unwrap();
    let mut payload = weft_proto::common::Payload::decode(e.payload.clone()).unwrap();
    let mut tx = weft_proto::protos::Transaction::decode(payload.data.clone()).unwrap();
    let mut cap =
        weft_proto::protos::ChaincodeActionPayload::decode(tx.actions[0].payload.clone()).unwrap();
    let action = cap.action.as_mut().unwrap();
    action.endorsements[1].signature = n.peer2.sign(b"something else").unwrap().into();
    tx.actions[0].payload = cap.encode_to_vec().into();
    payload.data = tx.encode_to_vec().into();
    e.payload = payload.encode_to_vec().into();
    e.signature = n.user1.sign(&e.payload).unwrap().into();
    assert_eq!(
        n.commit(vec![e.encode_to_vec().into()]).await,
        vec![C::EndorsementPolicyFailure]
    );
    assert_eq!(n.get("k").await, None);
}

#[tokio::test]
async fn mvcc_conflict_in_one_block() {
    let n = setup().await;
    let v = n.seed("k", b"0").await;
    let rw = kv_rwset(CC, &[("k", Some(v))], &[("k", Some(b"1"))], vec![]);
    let rw2 = kv_rwset(CC, &[("k", Some(v))], &[("k", Some(b"2"))], vec![]);
    let (a, _) = n.tx(&rw);
    let (b, _) = n.tx(&rw2);
    assert_eq!(
        n.commit(vec![a, b]).await,
        vec![C::Valid, C::MvccReadConflict]
    );
    assert_eq!(n.get("k").await, Some((b"1".to_vec(), 2, 0)));
    // A stale read in a later block conflicts too.
    let (c, _) = n.tx(&kv_rwset(
        CC,
        &[("k", Some(v))],
        &[("k", Some(b"3"))],
        vec![],
    ));
    assert_eq!(n.commit(vec![c]).await, vec![C::MvccReadConflict]);
    assert_eq!(n.get("k").await.unwrap().0, b"1".to_vec());
}

#[tokio::test]
async fn phantom_read_on_a_range_query() {
    let n = setup().await;
    let va = n.seed("a", b"0").await;
    // tx1 adds "b" into [a, c); tx2 ranged over [a, c) and saw only "a".
    let (t1, _) = n.tx(&kv_rwset(CC, &[], &[("b", Some(b"new"))], vec![]));
    let rq = RangeQueryInfo {
        start_key: "a".into(),
        end_key: "c".into(),
        itr_exhausted: true,
        reads_info: Some(ReadsInfo::RawReads(QueryReads {
            kv_reads: vec![KvRead {
                key: "a".into(),
                version: Some(KvVersion {
                    block_num: va.0,
                    tx_num: va.1,
                }),
            }],
        })),
    };
    let (t2, _) = n.tx(&kv_rwset(CC, &[], &[("z", Some(b"1"))], vec![rq]));
    assert_eq!(
        n.commit(vec![t1, t2]).await,
        vec![C::Valid, C::PhantomReadConflict]
    );
    assert!(n.get("b").await.is_some());
    assert_eq!(n.get("z").await, None);
}

#[tokio::test]
async fn duplicate_tx_id_in_a_block_and_across_blocks() {
    let n = setup().await;
    let (env, tx_id) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]));
    assert_eq!(
        n.commit(vec![env.clone(), env.clone()]).await,
        vec![C::Valid, C::DuplicateTxid]
    );
    assert_eq!(n.commit(vec![env]).await, vec![C::DuplicateTxid]);
    // The first occurrence is the one the ledger reports.
    assert_eq!(n.channel.tx_status(&tx_id), Some((1, C::Valid as i32)));
    let view = n.channel.state().read().await;
    assert_eq!(view.history(CC, "k", None, 100).unwrap().len(), 1);
}

#[tokio::test]
async fn malformed_and_foreign_transactions_get_codes_not_panics() {
    let n = setup().await;
    let (env, _) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]));
    // Another channel's transaction.
    let (other, _) = endorsed_transaction(
        &n.user1,
        "otherchannel",
        CC,
        &kv_rwset(CC, &[], &[("k", Some(b"x"))], vec![]),
        &[&n.peer1, &n.peer2],
    )
    .unwrap();
    // A user chaincode writing the _lifecycle namespace.
    let (illegal, _) = n.tx(&kv_rwset("_lifecycle", &[], &[("x", Some(b"1"))], vec![]));
    let codes = n
        .commit(vec![
            Bytes::new(),
            Bytes::from_static(b"\xff\xff garbage"),
            other,
            illegal,
            env.slice(..env.len() / 2),
        ])
        .await;
    assert_eq!(
        codes,
        vec![
            C::NilEnvelope,
            C::BadPayload,
            C::TargetChainNotFound,
            C::IllegalWriteset,
            C::BadPayload
        ]
    );
    assert_eq!(n.get("k").await, None);
}

/// `env` re-issued by `attacker` as a new transaction: a fresh nonce and tx id, the attacker as
/// creator, its own envelope signature, and the endorsed action copied as it is. With
/// `new_action_header`, the action's signature header is replaced by the new one too.
fn replay_as(env: &Bytes, attacker: &SigningIdentity, new_action_header: bool) -> (Bytes, String) {
    use weft_proto::common::{ChannelHeader, Header, Payload, SignatureHeader};
    use weft_proto::protos::Transaction;
    let env = Envelope::decode(env.clone()).unwrap();
    let payload = Payload::decode(env.payload).unwrap();
    let header = payload.header.unwrap();
    let creator = attacker.serialize();
    let nonce = b"a fresh nonce of the attacker's".to_vec();
    let tx_id = weft_crypto::hex(&weft_crypto::sha256(&[&nonce[..], &creator[..]].concat()));
    let mut chdr = ChannelHeader::decode(header.channel_header).unwrap();
    chdr.tx_id = tx_id.clone();
    let shdr: Bytes = SignatureHeader {
        creator: creator.into(),
        nonce: nonce.into(),
    }
    .encode_to_vec()
    .into();
    let mut tx = Transaction::decode(payload.data).unwrap();
    if new_action_header {
        tx.actions[0].header = shdr.clone();
    }
    let payload = Payload {
        header: Some(Header {
            channel_header: chdr.encode_to_vec().into(),
            signature_header: shdr,
        }),
        data: tx.encode_to_vec().into(),
    }
    .encode_to_vec();
    let signature = attacker.sign(&payload).unwrap();
    let env = Envelope {
        payload: payload.into(),
        signature: signature.into(),
    };
    (env.encode_to_vec().into(), tx_id)
}

/// Attack: endorsements are public once their transaction is in a block. Another org's user
/// copies the endorsed action of a committed blind write (no reads, so MVCC cannot stop it)
/// into a transaction of its own, with a fresh tx id and a good envelope signature, to set
/// the key back to the old value. The endorsers signed a hash of the original header, so the
/// copy is refused and the state keeps the later value.
#[tokio::test]
async fn endorsements_replayed_under_another_header_are_refused() {
    let n = setup().await;
    let (old, _) = n.tx(&kv_rwset(CC, &[], &[("balance", Some(b"100"))], vec![]));
    assert_eq!(n.commit(vec![old.clone()]).await, vec![C::Valid]);
    n.seed("balance", b"5").await;
    let attacker = n.net.orgs[1].user.signer().unwrap();
    let (kept_header, _) = replay_as(&old, &attacker, false);
    let (new_header, _) = replay_as(&old, &attacker, true);
    // The original creator replaying its own transaction under a new tx id fares no better.
    let (own, _) = replay_as(&old, &n.user1, true);
    let replays = vec![kept_header, new_header, own];
    for env in &replays {
        match weft_peer::validator::check_envelope(&*n.channel, env) {
            weft_peer::validator::Checked::Invalid { code, reason, .. } => {
                assert_eq!(code, C::InvalidEndorserTransaction, "{reason}");
                assert!(
                    reason.contains("proposal hash does not match"),
                    "the reason names the check: {reason}"
                );
            }
            other => panic!("replay {} passed the checks", other.tx_id()),
        }
    }
    assert_eq!(
        n.commit(replays).await,
        vec![C::InvalidEndorserTransaction; 3]
    );
    assert_eq!(n.get("balance").await.unwrap().0, b"5");
}

/// A read/write set of chaincode `CC` writing `writes` and setting `key`'s key-level
/// endorsement policy (`VALIDATION_PARAMETER`) to `policy` (signature policy text).
fn with_key_policy(
    writes: &[(&str, Option<&[u8]>)],
    key: &str,
    policy: &str,
) -> weft_proto::rwset::TxReadWriteSet {
    use weft_proto::kvrwset::{KvMetadataEntry, KvMetadataWrite, KvrwSet};
    let param = weft_msp::policy::parse(policy).unwrap().encode_to_vec();
    let mut rw = kv_rwset(CC, &[], writes, vec![]);
    let mut kv = KvrwSet::decode(rw.ns_rwset[0].rwset.clone()).unwrap();
    kv.metadata_writes.push(KvMetadataWrite {
        key: key.into(),
        entries: vec![KvMetadataEntry {
            name: "VALIDATION_PARAMETER".into(),
            value: param.into(),
        }],
    });
    rw.ns_rwset[0].rwset = kv.encode_to_vec().into();
    rw
}

#[tokio::test]
async fn key_level_endorsement_policy_replaces_the_chaincode_policy() {
    let n = setup().await;
    // Set key "sbe" with a key-level policy: Org2's peer alone.
    let rw = with_key_policy(&[("sbe", Some(b"0"))], "sbe", "OR('Org2MSP.peer')");
    let (env, _) = n.tx(&rw);
    assert_eq!(n.commit(vec![env]).await, vec![C::Valid]);
    // Org2 alone may now write it; Org1 alone may not.
    let w = kv_rwset(CC, &[], &[("sbe", Some(b"1"))], vec![]);
    let (by2, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &w, &[&n.peer2]).unwrap();
    let w = kv_rwset(CC, &[], &[("sbe", Some(b"2"))], vec![]);
    let (by1, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &w, &[&n.peer1]).unwrap();
    // The invoked chaincode's own policy still applies to keys without one.
    let w = kv_rwset(
        CC,
        &[],
        &[("sbe", Some(b"3")), ("plain", Some(b"x"))],
        vec![],
    );
    let (mixed, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &w, &[&n.peer2]).unwrap();
    assert_eq!(
        n.commit(vec![by2, by1, mixed]).await,
        vec![
            C::Valid,
            C::EndorsementPolicyFailure,
            C::EndorsementPolicyFailure
        ]
    );
    assert_eq!(n.get("sbe").await.unwrap().0, b"1".to_vec());

    // Within one block, as in Fabric: once a valid transaction changed a key's policy (here
    // Org2 hands "sbe" over to Org1), a later transaction of the block cannot write the key,
    // whichever policy its endorsers meet: it was endorsed against the replaced one.
    let handover = with_key_policy(&[], "sbe", "OR('Org1MSP.peer')");
    let (handover, _) =
        endorsed_transaction(&n.user1, CHANNEL, CC, &handover, &[&n.peer2]).unwrap();
    let w = kv_rwset(CC, &[], &[("sbe", Some(b"4"))], vec![]);
    let (after_by1, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &w, &[&n.peer1]).unwrap();
    let w = kv_rwset(CC, &[], &[("sbe", Some(b"5"))], vec![]);
    let (after_by2, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &w, &[&n.peer2]).unwrap();
    assert_eq!(
        n.commit(vec![handover, after_by1, after_by2]).await,
        vec![
            C::Valid,
            C::EndorsementPolicyFailure,
            C::EndorsementPolicyFailure
        ]
    );
    // The next block writes under the new policy.
    let w = kv_rwset(CC, &[], &[("sbe", Some(b"6"))], vec![]);
    let (by1, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &w, &[&n.peer1]).unwrap();
    assert_eq!(n.commit(vec![by1]).await, vec![C::Valid]);

    // Attack: the owner deletes a key guarded by Org1's peer AND admin; in the same block,
    // endorsers who meet only the chaincode's policy (both orgs' peers) recreate it. The
    // delete does not lift the key's policy for the rest of the block (before, the chaincode
    // policy applied to the recreation), so it is refused and the key stays deleted.
    let admin1 = n.net.orgs[0].admin.signer().unwrap();
    let create = with_key_policy(
        &[("owned", Some(b"v"))],
        "owned",
        "AND('Org1MSP.peer', 'Org1MSP.admin')",
    );
    let (create, _) = n.tx(&create);
    assert_eq!(n.commit(vec![create]).await, vec![C::Valid]);
    let del = kv_rwset(CC, &[], &[("owned", None)], vec![]);
    let (del, _) = endorsed_transaction(&n.user1, CHANNEL, CC, &del, &[&n.peer1, &admin1]).unwrap();
    let (recreate, _) = n.tx(&kv_rwset(CC, &[], &[("owned", Some(b"mine"))], vec![]));
    assert_eq!(
        n.commit(vec![del, recreate]).await,
        vec![C::Valid, C::EndorsementPolicyFailure]
    );
    assert!(n.get("owned").await.is_none());
}

#[tokio::test]
async fn crash_after_block_append_before_state_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let net = two_org_network(&dir.path().join("net"), 7050).unwrap();
    let ledger = dir.path().join("ledger");
    let n = {
        let channel =
            open_channel_from_genesis(&ledger, &net.genesis, Arc::new(SignatureCache::default()))
                .await
                .unwrap();
        channel.define_chaincode(CC, "basic_1.0:abc");
        Net {
            user1: net.orgs[0].user.signer().unwrap(),
            peer1: net.orgs[0].node.signer().unwrap(),
            peer2: net.orgs[1].node.signer().unwrap(),
            orderer: net.orderer_org.node.signer().unwrap(),
            _dir: tempfile::tempdir().unwrap(),
            net: net.clone(),
            channel,
        }
    };
    n.seed("a", b"1").await;
    // Block 2: validated, codes set, appended to the block store — then the "crash" before
    // its state is written.
    let (t1, tx1) = n.tx(&kv_rwset(
        CC,
        &[],
        &[("a", Some(b"2")), ("b", Some(b"x"))],
        vec![],
    ));
    let (t2, _) = n.tx(&kv_rwset(CC, &[], &[("a", None)], vec![]));
    let (bad, _) = endorsed_transaction(
        &n.user1,
        CHANNEL,
        CC,
        &kv_rwset(CC, &[], &[("c", Some(b"no"))], vec![]),
        &[&n.peer1],
    )
    .unwrap();
    let mut block = n.block(vec![t1, bad, t2]);
    weft_ledger::block::set_transactions_filter(
        &mut block,
        &[
            C::Valid as u8,
            C::EndorsementPolicyFailure as u8,
            C::Valid as u8,
        ],
    );
    n.channel
        .blocks()
        .append(2, &block.encode_to_vec())
        .unwrap();
    assert_eq!(n.channel.state().savepoint().unwrap().unwrap().block_num, 1);
    // Stored but not committed: the transaction's writes are not readable yet, so its status
    // must not say committed (a client would read the old state right after CommitStatus).
    assert!(n.channel.blocks().tx_location(&tx1).unwrap().is_some());
    assert_eq!(n.channel.state().applied_height(), 2);
    assert_eq!(n.channel.tx_status(&tx1), None);
    drop(n);

    // Reopen: the state catches up with the block store.
    let (blocks, state) = weft_peer::channel::open_ledger(&ledger).unwrap();
    let config = weft_configtx::ChannelConfig::from_block(&net.genesis).unwrap();
    let channel = Channel::from_config(Arc::new(config), blocks, state, Default::default());
    assert_eq!(channel.state().applied_height(), 2, "from the savepoint");
    assert_eq!(channel.tx_status(&tx1), None);
    assert_eq!(recover(&channel).await.unwrap(), 1);
    assert_eq!(channel.state().savepoint().unwrap().unwrap().block_num, 2);
    assert_eq!(channel.state().applied_height(), 3);
    assert_eq!(channel.tx_status(&tx1), Some((2, C::Valid as i32)));
    let view = channel.state().read().await;
    assert!(view.get(CC, "a").unwrap().is_none(), "deleted by tx 2");
    let b = view.get(CC, "b").unwrap().unwrap();
    assert_eq!((b.version.block_num, b.version.tx_num), (2, 0));
    assert!(
        view.get(CC, "c").unwrap().is_none(),
        "invalid tx not applied"
    );
    let hist = view.history(CC, "a", None, 100).unwrap();
    assert_eq!(
        hist.len(),
        3,
        "tx 2 delete, tx 0 write, seed (newest first)"
    );
    assert!(hist[0].1.is_delete);
    assert_eq!(hist[1].1.tx_id, tx1);
    drop(view);
    // Recovering again is a no-op.
    assert_eq!(recover(&channel).await.unwrap(), 0);
}

#[tokio::test]
async fn delivered_blocks_are_checked_before_commit() {
    let n = setup().await;
    let config = n.channel.config().unwrap();
    let genesis = n.channel.blocks().block(0).unwrap().unwrap();
    let gh = genesis.header.clone().unwrap();
    let (env, _) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]));
    let good = n.block(vec![env.clone()]);
    check_block(&config, 1, Some(&gh), &good).unwrap();

    // Wrong number, wrong previous hash, tampered data.
    let e = check_block(&config, 2, Some(&gh), &good).unwrap_err();
    assert!(e.detail.contains("expected block 2"), "{e}");
    let mut other_prev = good.clone();
    other_prev.header.as_mut().unwrap().previous_hash = Bytes::from_static(&[0u8; 32]);
    let e = check_block(&config, 1, Some(&gh), &other_prev).unwrap_err();
    assert!(e.detail.contains("previous hash"), "{e}");
    let mut tampered = good.clone();
    let (env2, _) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"evil"))], vec![]));
    tampered.data.as_mut().unwrap().data[0] = env2;
    let e = check_block(&config, 1, Some(&gh), &tampered).unwrap_err();
    assert!(e.detail.contains("data hash"), "{e}");

    // Unsigned, or signed by a peer instead of the orderer.
    let unsigned = next_block(&gh, vec![env.clone()]);
    let e = check_block(&config, 1, Some(&gh), &unsigned).unwrap_err();
    assert!(e.detail.contains("no orderer signatures"), "{e}");
    let mut by_peer = next_block(&gh, vec![env.clone()]);
    sign_block(&mut by_peer, &n.peer1, 0).unwrap();
    let e = check_block(&config, 1, Some(&gh), &by_peer).unwrap_err();
    assert!(e.detail.contains("policy"), "{e}");
    // A signature of another header does not carry over.
    let mut moved = next_block(&gh, vec![env]);
    moved.metadata = good.metadata.clone();
    moved.header.as_mut().unwrap().data_hash = Bytes::copy_from_slice(&[1u8; 32]);
    assert!(check_block(&config, 1, Some(&gh), &moved).is_err());
}

#[tokio::test]
async fn own_endorsement_signatures_are_not_verified_twice() {
    let n = setup().await;
    let cache = n.channel.signature_cache().clone();
    let before = cache.len();
    let (env, _) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]));
    assert_eq!(n.commit(vec![env.clone()]).await, vec![C::Valid]);
    // Creator + two endorsements were verified once and remembered.
    assert_eq!(cache.len(), before + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_joins_from_genesis_and_commits_what_the_orderer_delivers() {
    use weft_peer::testing::{TestPeer, TestPeerOptions};
    use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
    let dir = tempfile::tempdir().unwrap();
    let orderer = weft_orderer::testing::TestOrderer::start(dir.path())
        .await
        .unwrap();
    let net = orderer.network.clone();
    let opts = TestPeerOptions {
        builders: vec![],
        extra_yaml: String::new(),
        execute_timeout: "3s".into(),
        dev_mode: false,
        listen_port: None,
    };
    let peer = TestPeer::start_in_network(dir.path(), "org1", &opts)
        .await
        .unwrap();
    // Not block 0: refused.
    let mut not_genesis = net.genesis.clone();
    not_genesis.header.as_mut().unwrap().number = 3;
    let e = peer.node.join_channel(not_genesis).await.unwrap_err();
    assert!(e.to_string().contains("genesis block"), "{e}");
    // Before the join, the peer trusts only its own org's TLS CA: Org2's client is refused.
    let org2_client = || {
        let ca = std::fs::read(&net.orgs[0].tls_ca_cert).unwrap();
        weft_tls::TlsClient::new(
            weft_tls::Trust::Roots(weft_crypto::pem::certificates(&ca, "ca").unwrap()),
            weft_tls::ClientIdentity::Certificate(
                weft_tls::Identity::from_pem_files(
                    &net.orgs[1].user.tls_cert,
                    &net.orgs[1].user.tls_key,
                    "org2 user",
                )
                .unwrap(),
            ),
            weft_tls::Profile::Fabric,
        )
        .unwrap()
    };
    let peer_ep = || {
        weft_tls::Endpoint::parse(&peer.node.peer_address.to_string())
            .unwrap()
            .with_server_name("localhost")
            .unwrap()
    };
    let refused = weft_tls::grpc::channel(Some(org2_client()), peer_ep()).await;
    assert!(refused.is_err(), "org2 client accepted before the join");
    let channel = peer.node.join_channel(net.genesis.clone()).await.unwrap();
    assert_eq!(channel.blocks().height(), 1);
    // The join made the channel's orgs' TLS CAs trusted, live.
    weft_tls::grpc::channel(Some(org2_client()), peer_ep())
        .await
        .expect("org2 client accepted after the join");
    channel.define_chaincode(CC, "basic_1.0:abc");
    let e = peer
        .node
        .join_channel(net.genesis.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already joined"), "{e}");

    // A client submits an endorsed transaction to the orderer over mutual TLS.
    let user1 = net.orgs[0].user.signer().unwrap();
    let peer1 = net.orgs[0].node.signer().unwrap();
    let peer2 = net.orgs[1].node.signer().unwrap();
    let (env, tx_id) = endorsed_transaction(
        &user1,
        CHANNEL,
        CC,
        &kv_rwset(CC, &[], &[("k", Some(b"from the orderer"))], vec![]),
        &[&peer1, &peer2],
    )
    .unwrap();
    let ca = std::fs::read(&net.orderer_org.tls_ca_cert).unwrap();
    let tls = weft_tls::TlsClient::new(
        weft_tls::Trust::Roots(weft_crypto::pem::certificates(&ca, "ca").unwrap()),
        weft_tls::ClientIdentity::Certificate(
            weft_tls::Identity::from_pem_files(
                &net.orgs[0].user.tls_cert,
                &net.orgs[0].user.tls_key,
                "user",
            )
            .unwrap(),
        ),
        weft_tls::Profile::Fabric,
    )
    .unwrap();
    let grpc = weft_tls::grpc::channel(
        Some(tls),
        weft_tls::Endpoint::parse(&orderer.address()).unwrap(),
    )
    .await
    .unwrap();
    let mut client = AtomicBroadcastClient::new(grpc);
    let envelope = Envelope::decode(env).unwrap();
    let mut responses = client
        .broadcast(tokio_stream::iter(vec![envelope]))
        .await
        .unwrap()
        .into_inner();
    let r = responses.message().await.unwrap().unwrap();
    assert_eq!(r.status, 200, "{}", r.info);

    // The peer's deliver client pulls the block and commits it.
    let mut status = None;
    for _ in 0..200 {
        status = channel.tx_status(&tx_id);
        if status.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, Some((1, C::Valid as i32)));
    {
        let view = channel.state().read().await;
        assert_eq!(
            view.get(CC, "k").unwrap().unwrap().value.as_ref(),
            b"from the orderer"
        );
    }
    drop(channel);
    peer.stop().await;

    // After a restart the joined channel is back, with its ledger.
    let peer = TestPeer::start_in_network(dir.path(), "org1", &opts)
        .await
        .unwrap();
    let channel = peer.node.channels.get(CHANNEL).expect("channel reopened");
    assert_eq!(channel.blocks().height(), 2);
    assert!(channel.config().is_some());
    assert_eq!(channel.tx_status(&tx_id), Some((1, C::Valid as i32)));
    drop(channel);
    peer.stop().await;
    orderer.shutdown().await;
}

/// The CONFIG_UPDATE envelope taking the channel's `config` to one with `org3`, its
/// ConfigSignatures by `signers`, submitted by `signers[0]`.
fn add_org3_update(
    config: &weft_configtx::ChannelConfig,
    org3: &weft_configtx::testing::TestOrg,
    signers: &[&SigningIdentity],
) -> Envelope {
    use weft_configtx::update;
    let mut profile =
        weft_configtx::OrgProfile::application(&org3.name, &org3.msp_id, &org3.msp_dir);
    profile.anchor_peers = vec![("peer0.org3.example.com".into(), 11051)];
    let updated = update::add_application_org(config.config(), &profile).unwrap();
    let cu = update::compute_update(CHANNEL, config.config(), &updated).unwrap();
    let bytes = cu.encode_to_vec();
    let cue = weft_proto::common::ConfigUpdateEnvelope {
        signatures: signers
            .iter()
            .map(|s| update::signature(s, &bytes).unwrap())
            .collect(),
        config_update: bytes.into(),
    };
    update::update_envelope(CHANNEL, &cue, signers[0]).unwrap()
}

/// A CONFIG envelope carrying `ce`, signed by `orderer` (what the orderer makes of an update).
fn config_tx(orderer: &SigningIdentity, ce: &weft_proto::common::ConfigEnvelope) -> Bytes {
    use weft_proto::common::{ChannelHeader, Header, HeaderType, Payload, SignatureHeader};
    let nonce = weft_crypto::random_bytes(24).unwrap();
    let creator = orderer.serialize();
    let ch = ChannelHeader {
        r#type: HeaderType::Config as i32,
        channel_id: CHANNEL.into(),
        tx_id: weft_crypto::hex(&weft_crypto::sha256(&[&nonce[..], &creator[..]].concat())),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec().into(),
            signature_header: SignatureHeader {
                creator: creator.into(),
                nonce: nonce.into(),
            }
            .encode_to_vec()
            .into(),
        }),
        data: ce.encode_to_vec().into(),
    }
    .encode_to_vec();
    let signature = orderer.sign(&payload).unwrap();
    Envelope {
        payload: payload.into(),
        signature: signature.into(),
    }
    .encode_to_vec()
    .into()
}

#[tokio::test]
async fn config_block_replaces_the_channel_config() {
    let n = setup().await;
    let org3 = weft_configtx::update::test_org(n._dir.path(), 3).unwrap();
    let user3 = org3.user.signer().unwrap();
    let admin1 = n.net.orgs[0].admin.signer().unwrap();
    let admin2 = n.net.orgs[1].admin.signer().unwrap();
    let org3_tx = || {
        endorsed_transaction(
            &user3,
            CHANNEL,
            CC,
            &kv_rwset(CC, &[], &[("k3", Some(b"org3"))], vec![]),
            &[&n.peer1, &n.peer2],
        )
        .unwrap()
        .0
    };
    // Org3 is not a member yet.
    assert_eq!(
        n.commit(vec![org3_tx()]).await,
        vec![C::BadCreatorSignature]
    );
    let current = n.channel.config().unwrap();

    // Attack: a config the update does not produce (Org3 added, but signed by Org1's admin
    // alone, so the update is not authorized): not committed, the config unchanged.
    let weak = add_org3_update(&current, &org3, &[&admin1]);
    let good = add_org3_update(&current, &org3, &[&admin1, &admin2]);
    let (_, cue) = weft_configtx::update::update_from_envelope(&good).unwrap();
    let (config, _) = weft_configtx::update::propose(&current, &cue).unwrap();
    let height = n.channel.blocks().height();
    for (last_update, config, needle) in [
        (weak.clone(), config.clone(), "/Channel/Application/Admins"),
        (
            good.clone(),
            weft_proto::common::Config {
                sequence: 2,
                ..config.clone()
            },
            "sequence 2",
        ),
        (
            good.clone(),
            weft_proto::common::Config {
                sequence: 1,
                channel_group: current.config().channel_group.clone(),
            },
            "does not produce",
        ),
    ] {
        let ce = weft_proto::common::ConfigEnvelope {
            config: Some(config),
            last_update: Some(last_update),
        };
        let e = commit_block(&n.channel, n.block(vec![config_tx(&n.orderer, &ce)]))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("config block refused"), "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
        assert_eq!(n.channel.blocks().height(), height);
        assert_eq!(n.channel.config().unwrap().sequence(), 0);
    }

    // The config block the orderer makes of the authorized update.
    let mut seq = n.channel.config_changes();
    let ce = weft_proto::common::ConfigEnvelope {
        config: Some(config),
        last_update: Some(good),
    };
    assert_eq!(
        n.commit(vec![config_tx(&n.orderer, &ce)]).await,
        vec![C::Valid]
    );
    assert!(seq.has_changed().unwrap());
    assert_eq!(*seq.borrow_and_update(), 1);
    let cfg = n.channel.config().unwrap();
    assert_eq!(cfg.sequence(), 1);
    assert_eq!(
        cfg.application_orgs()["Org3MSP"].anchor_peers,
        vec![("peer0.org3.example.com".to_owned(), 11051)]
    );
    assert!(n.channel.msps().get("Org3MSP").is_some());
    // Org3's transactions are valid now.
    assert_eq!(n.commit(vec![org3_tx()]).await, vec![C::Valid]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_commits_a_config_update_and_trusts_the_new_org() {
    use weft_peer::testing::{TestPeer, TestPeerOptions};
    use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
    let dir = tempfile::tempdir().unwrap();
    let orderer = weft_orderer::testing::TestOrderer::start(dir.path())
        .await
        .unwrap();
    let net = orderer.network.clone();
    let opts = TestPeerOptions {
        builders: vec![],
        extra_yaml: String::new(),
        execute_timeout: "3s".into(),
        dev_mode: false,
        listen_port: None,
    };
    let peer = TestPeer::start_in_network(dir.path(), "org1", &opts)
        .await
        .unwrap();
    let channel = peer.node.join_channel(net.genesis.clone()).await.unwrap();
    let org3 = weft_configtx::update::test_org(dir.path(), 3).unwrap();
    let org3_client = || {
        let ca = std::fs::read(&net.orgs[0].tls_ca_cert).unwrap();
        weft_tls::TlsClient::new(
            weft_tls::Trust::Roots(weft_crypto::pem::certificates(&ca, "ca").unwrap()),
            weft_tls::ClientIdentity::Certificate(
                weft_tls::Identity::from_pem_files(
                    &org3.user.tls_cert,
                    &org3.user.tls_key,
                    "org3 user",
                )
                .unwrap(),
            ),
            weft_tls::Profile::Fabric,
        )
        .unwrap()
    };
    let peer_ep = || {
        weft_tls::Endpoint::parse(&peer.node.peer_address.to_string())
            .unwrap()
            .with_server_name("localhost")
            .unwrap()
    };
    let refused = weft_tls::grpc::channel(Some(org3_client()), peer_ep()).await;
    assert!(refused.is_err(), "org3 client accepted before the update");
    let gateway = peer.node.gateway.clone().expect("the peer runs a gateway");
    let before = gateway.remote_peers(&channel);
    assert!(!before.contains_key("Org3MSP"), "{before:?}");
    assert!(
        Arc::ptr_eq(&before, &gateway.remote_peers(&channel)),
        "built again under the same config"
    );

    // Org1's admin submits the update, signed by both orgs' admins, to the orderer.
    let admin1 = net.orgs[0].admin.signer().unwrap();
    let admin2 = net.orgs[1].admin.signer().unwrap();
    let update = add_org3_update(&channel.config().unwrap(), &org3, &[&admin1, &admin2]);
    let ca = std::fs::read(&net.orderer_org.tls_ca_cert).unwrap();
    let tls = weft_tls::TlsClient::new(
        weft_tls::Trust::Roots(weft_crypto::pem::certificates(&ca, "ca").unwrap()),
        weft_tls::ClientIdentity::Certificate(
            weft_tls::Identity::from_pem_files(
                &net.orgs[0].admin.tls_cert,
                &net.orgs[0].admin.tls_key,
                "admin",
            )
            .unwrap(),
        ),
        weft_tls::Profile::Fabric,
    )
    .unwrap();
    let grpc = weft_tls::grpc::channel(
        Some(tls),
        weft_tls::Endpoint::parse(&orderer.address()).unwrap(),
    )
    .await
    .unwrap();
    let mut client = AtomicBroadcastClient::new(grpc);
    let r = client
        .broadcast(tokio_stream::iter(vec![update]))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.info);

    // The peer pulls the config block and commits it: Org3 is in the channel config and its
    // TLS CA is trusted by the peer's listener.
    let mut sequence = 0;
    for _ in 0..200 {
        sequence = channel.config().unwrap().sequence();
        if sequence == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sequence, 1);
    assert_eq!(channel.blocks().height(), 2);
    // The gateway's endorsing peers follow the config: org3's anchor peer, with its TLS CA.
    let after = gateway.remote_peers(&channel);
    let org3_peers = after
        .get("Org3MSP")
        .expect("org3's anchor peer after the update");
    assert_eq!(org3_peers[0].address, "peer0.org3.example.com:11051");
    assert!(!org3_peers[0].roots.is_empty());
    // The gateway holds the channels: let go of it before the peer restarts below.
    drop(gateway);
    assert!(channel
        .config()
        .unwrap()
        .application_orgs()
        .contains_key("Org3MSP"));
    let mut connected = Err(String::new());
    for _ in 0..100 {
        connected = weft_tls::grpc::channel(Some(org3_client()), peer_ep())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
        if connected.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    connected.expect("org3 client accepted after the config update");
    drop(channel);
    peer.stop().await;

    // After a restart, the channel opens with the updated config.
    let peer = TestPeer::start_in_network(dir.path(), "org1", &opts)
        .await
        .unwrap();
    let channel = peer.node.channels.get(CHANNEL).unwrap();
    assert_eq!(channel.config().unwrap().sequence(), 1);
    weft_tls::grpc::channel(Some(org3_client()), peer_ep2(&peer))
        .await
        .expect("org3 client accepted after a restart");
    drop(channel);
    peer.stop().await;
    orderer.shutdown().await;
}

fn peer_ep2(peer: &weft_peer::testing::TestPeer) -> weft_tls::Endpoint {
    weft_tls::Endpoint::parse(&peer.node.peer_address.to_string())
        .unwrap()
        .with_server_name("localhost")
        .unwrap()
}

/// The layers of an endorser transaction, for [`layered_transaction`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Layer {
    ChannelHeader,
    SignatureHeader,
    ActionHeader,
    ProposalPayload,
    KvrwSet,
    TxReadWriteSet,
    Events,
    ChaincodeAction,
    ResponsePayload,
    Endorser,
    EndorsementSignature,
    ActionPayload,
    Transaction,
    Payload,
    Envelope,
}

const LAYERS: [Layer; 15] = [
    Layer::ChannelHeader,
    Layer::SignatureHeader,
    Layer::ActionHeader,
    Layer::ProposalPayload,
    Layer::KvrwSet,
    Layer::TxReadWriteSet,
    Layer::Events,
    Layer::ChaincodeAction,
    Layer::ResponsePayload,
    Layer::Endorser,
    Layer::EndorsementSignature,
    Layer::ActionPayload,
    Layer::Transaction,
    Layer::Payload,
    Layer::Envelope,
];

/// A transaction by `n.user1` that reads `key` (absent) and writes it, endorsed by both peers,
/// with the bytes of `layer` passed through `edit`. Every hash and signature above the edited
/// layer is computed over the edited bytes (the proposal hash over the final headers and
/// input), as a client and endorsers would have made them; so the edit reaches that layer's
/// decoder and checks instead of stopping at the first signature. Only `EndorsementSignature`
/// and `Envelope` edits are not signed again.
fn layered_transaction(
    n: &Net,
    key: &str,
    layer: Layer,
    edit: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Bytes {
    let creator = Creator {
        serialized: n.user1.serialize(),
        sign: Box::new(|m| n.user1.sign(m).unwrap()),
    };
    transaction_by(n, &creator, key, layer, edit)
}

/// Signs a message with a transaction creator's key.
type SignFn<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;

/// Who makes a transaction: its serialized identity and how it signs.
struct Creator<'a> {
    serialized: Vec<u8>,
    sign: SignFn<'a>,
}

/// [`layered_transaction`] by `creator`.
fn transaction_by(
    n: &Net,
    creator: &Creator<'_>,
    key: &str,
    layer: Layer,
    edit: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Bytes {
    let signer = creator;
    use weft_proto::common::{ChannelHeader, Header, HeaderType, Payload, SignatureHeader};
    use weft_proto::protos::{
        ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeEvent,
        ChaincodeHeaderExtension, ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec,
        ChaincodeProposalPayload, ChaincodeSpec, Endorsement, ProposalResponsePayload, Response,
        Transaction, TransactionAction,
    };
    let mut at = |l: Layer, bytes: Vec<u8>| -> Bytes {
        if l == layer {
            edit(&bytes).into()
        } else {
            bytes.into()
        }
    };
    let creator = signer.serialized.clone();
    let nonce = weft_crypto::sha256(key.as_bytes()).to_vec();
    let tx_id = weft_crypto::hex(&weft_crypto::sha256(&[&nonce[..], &creator[..]].concat()));
    let chdr = at(
        Layer::ChannelHeader,
        ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            channel_id: CHANNEL.to_owned(),
            tx_id,
            extension: ChaincodeHeaderExtension {
                chaincode_id: Some(ChaincodeId {
                    name: CC.to_owned(),
                    ..Default::default()
                }),
            }
            .encode_to_vec()
            .into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let shdr = at(
        Layer::SignatureHeader,
        SignatureHeader {
            creator: creator.into(),
            nonce: nonce.into(),
        }
        .encode_to_vec(),
    );
    let action_header = at(Layer::ActionHeader, shdr.to_vec());
    let cpp = at(
        Layer::ProposalPayload,
        ChaincodeProposalPayload {
            input: ChaincodeInvocationSpec {
                chaincode_spec: Some(ChaincodeSpec {
                    chaincode_id: Some(ChaincodeId {
                        name: CC.to_owned(),
                        ..Default::default()
                    }),
                    input: Some(ChaincodeInput {
                        args: vec![Bytes::from_static(b"CreateAsset"), key.to_owned().into()],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }
            .encode_to_vec()
            .into(),
            transient_map: Default::default(),
        }
        .encode_to_vec(),
    );
    let mut rwset = kv_rwset(CC, &[(key, None)], &[(key, Some(b"fuzzed"))], vec![]);
    let kv = rwset.ns_rwset[0].rwset.to_vec();
    rwset.ns_rwset[0].rwset = at(Layer::KvrwSet, kv);
    let results = at(Layer::TxReadWriteSet, rwset.encode_to_vec());
    let events = at(
        Layer::Events,
        ChaincodeEvent {
            chaincode_id: CC.to_owned(),
            event_name: "Created".to_owned(),
            payload: key.to_owned().into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    let cca = at(
        Layer::ChaincodeAction,
        ChaincodeAction {
            results,
            events,
            response: Some(Response {
                status: 200,
                ..Default::default()
            }),
            chaincode_id: Some(ChaincodeId {
                name: CC.to_owned(),
                version: "1.0".to_owned(),
                ..Default::default()
            }),
        }
        .encode_to_vec(),
    );
    let proposal_hash = {
        let mut h = weft_crypto::Sha256::new();
        h.update(&chdr);
        h.update(&action_header);
        h.update(&cpp);
        h.finish()
    };
    let prp = at(
        Layer::ResponsePayload,
        ProposalResponsePayload {
            proposal_hash: proposal_hash.to_vec().into(),
            extension: cca,
        }
        .encode_to_vec(),
    );
    let endorsements = [&n.peer1, &n.peer2]
        .iter()
        .map(|e| {
            let endorser = at(Layer::Endorser, e.serialize());
            let signature = e.sign(&[&prp[..], &endorser[..]].concat()).unwrap();
            Endorsement {
                endorser,
                signature: at(Layer::EndorsementSignature, signature),
            }
        })
        .collect();
    let action_payload = at(
        Layer::ActionPayload,
        ChaincodeActionPayload {
            chaincode_proposal_payload: cpp,
            action: Some(ChaincodeEndorsedAction {
                proposal_response_payload: prp,
                endorsements,
            }),
        }
        .encode_to_vec(),
    );
    let data = at(
        Layer::Transaction,
        Transaction {
            actions: vec![TransactionAction {
                header: action_header,
                payload: action_payload,
            }],
        }
        .encode_to_vec(),
    );
    let payload = at(
        Layer::Payload,
        Payload {
            header: Some(Header {
                channel_header: chdr,
                signature_header: shdr,
            }),
            data,
        }
        .encode_to_vec(),
    );
    let signature = (signer.sign)(&payload);
    at(
        Layer::Envelope,
        Envelope {
            payload,
            signature: signature.into(),
        }
        .encode_to_vec(),
    )
}

/// An org's `_lifecycle` approval must satisfy that org's own Endorsement policy, as in
/// Fabric. With Org1's policy raised to its peer AND its admin, an approval endorsed by
/// Org1's peer alone (enough before: any one peer of the org) is refused; with both it
/// commits. Another org's peer cannot approve for Org1.
#[tokio::test]
async fn an_approval_satisfies_its_orgs_endorsement_policy() {
    let n = setup().await;
    let config = n.channel.config().unwrap();
    let mut stricter = config.config().clone();
    let org1 =
        weft_configtx::testing::group_mut(&mut stricter, &["Application", "Org1MSP"]).unwrap();
    let envelope = weft_msp::policy::parse("AND('Org1MSP.peer', 'Org1MSP.admin')").unwrap();
    org1.policies
        .get_mut("Endorsement")
        .unwrap()
        .policy
        .as_mut()
        .unwrap()
        .value = envelope.encode_to_vec().into();
    stricter.sequence += 1;
    n.channel.apply_config(Arc::new(
        weft_configtx::ChannelConfig::from_config(CHANNEL, &stricter).unwrap(),
    ));
    let admin1 = n.net.orgs[0].admin.signer().unwrap();
    let approval = |seq: u32, endorsers: &[&SigningIdentity]| {
        let key = format!("approvals/basic#{seq}/Org1MSP");
        endorsed_transaction(
            &n.user1,
            CHANNEL,
            "_lifecycle",
            &kv_rwset(
                "_lifecycle",
                &[],
                &[(key.as_str(), Some(b"approved"))],
                vec![],
            ),
            endorsers,
        )
        .unwrap()
        .0
    };
    let got = n
        .commit(vec![
            approval(1, &[&n.peer1]),
            approval(2, &[&n.peer2]),
            approval(3, &[&n.peer1, &admin1]),
        ])
        .await;
    assert_eq!(
        got,
        vec![
            C::EndorsementPolicyFailure,
            C::EndorsementPolicyFailure,
            C::Valid
        ]
    );
}

/// Endorsed actions that misstate what ran, each endorsed by both orgs (so the endorsement
/// policy holds) and signed by a channel member: an event under another chaincode's name (its
/// listeners would act on it), an action that names no chaincode or no version, a namespace
/// twice in the read/write set, and private data on a peer that has no collections. Each gets
/// Fabric's code and writes nothing; before these checks, all five committed VALID.
#[tokio::test]
async fn endorsed_actions_that_misstate_what_ran_are_refused() {
    use weft_proto::protos::{ChaincodeAction, ChaincodeEvent};
    use weft_proto::rwset::{CollectionHashedReadWriteSet, TxReadWriteSet};
    let n = setup().await;
    type Edit = Box<dyn FnMut(&[u8]) -> Vec<u8>>;
    let action = |f: fn(&mut ChaincodeAction)| -> Edit {
        Box::new(move |b: &[u8]| {
            let mut a = ChaincodeAction::decode(b).unwrap();
            f(&mut a);
            a.encode_to_vec()
        })
    };
    let rwset = |f: fn(&mut TxReadWriteSet)| -> Edit {
        Box::new(move |b: &[u8]| {
            let mut r = TxReadWriteSet::decode(b).unwrap();
            f(&mut r);
            r.encode_to_vec()
        })
    };
    let cases: Vec<(&str, Layer, Edit, C, &str)> = vec![
        (
            "forged-event",
            Layer::Events,
            Box::new(|b: &[u8]| {
                let mut e = ChaincodeEvent::decode(b).unwrap();
                e.chaincode_id = "othercc".into();
                e.event_name = "Transfer".into();
                e.encode_to_vec()
            }),
            C::InvalidOtherReason,
            "the chaincode event names chaincode \"othercc\"",
        ),
        (
            "no-chaincode-id",
            Layer::ChaincodeAction,
            action(|a| a.chaincode_id = None),
            C::InvalidOtherReason,
            "does not name its chaincode",
        ),
        (
            "no-version",
            Layer::ChaincodeAction,
            action(|a| a.chaincode_id.as_mut().unwrap().version.clear()),
            C::InvalidChaincode,
            "has no chaincode version",
        ),
        (
            "twice",
            Layer::TxReadWriteSet,
            rwset(|r| {
                let again = r.ns_rwset[0].clone();
                r.ns_rwset.push(again);
            }),
            C::IllegalWriteset,
            "appears twice",
        ),
        (
            "private",
            Layer::TxReadWriteSet,
            rwset(|r| {
                r.ns_rwset[0]
                    .collection_hashed_rwset
                    .push(CollectionHashedReadWriteSet {
                        collection_name: "secrets".into(),
                        ..Default::default()
                    })
            }),
            C::InvalidOtherReason,
            "no private data collections",
        ),
    ];
    let mut envelopes = Vec::new();
    let mut codes = Vec::new();
    for (key, layer, mut edit, code, reason) in cases {
        let env = layered_transaction(&n, key, layer, &mut *edit);
        // The committer's first phase says why.
        match weft_peer::validator::check_envelope(&*n.channel, &env) {
            weft_peer::validator::Checked::Invalid {
                code: got,
                reason: why,
                ..
            } => {
                assert_eq!(got, code, "{key}: {why}");
                assert!(why.contains(reason), "{key}: {why}");
            }
            _ => panic!("{key} passed the first phase"),
        }
        envelopes.push(env);
        codes.push(code);
    }
    assert_eq!(n.commit(envelopes).await, codes);
    for key in [
        "forged-event",
        "no-chaincode-id",
        "no-version",
        "twice",
        "private",
    ] {
        assert!(n.get(key).await.is_none(), "{key} was written");
    }
    // Unedited, the same builder commits.
    let good = layered_transaction(&n, "unedited", Layer::Envelope, &mut |b| b.to_vec());
    assert_eq!(n.commit(vec![good]).await, vec![C::Valid]);
}

/// Fuzzing the commit path with what any member of the channel's Writers can get into a
/// block: the orderer checks an envelope's signature and headers, not what is inside. Each
/// transaction has one layer mutated and everything above it hashed and signed again (see
/// [`layered_transaction`]). Every transaction gets a validation code, no invalid one writes
/// its key, nothing panics, and the channel commits a good transaction afterwards.
#[tokio::test]
async fn validly_signed_transactions_with_malformed_insides_get_codes_not_panics() {
    use std::collections::{BTreeMap, HashMap};
    use weft_configtx::testing::{mutate, Rng};
    let n = setup().await;
    // Unedited, the builder makes a valid transaction.
    let good = layered_transaction(&n, "fz-unedited", Layer::Envelope, &mut |b| b.to_vec());
    assert_eq!(n.commit(vec![good]).await, vec![C::Valid]);

    let mut rng = Rng(0xf022_5eed_c0de_0001);
    let mut codes: BTreeMap<i32, usize> = BTreeMap::new();
    let mut reached: HashMap<Layer, usize> = HashMap::new();
    for block in 0..8 {
        let mut envelopes = Vec::new();
        let mut txs = Vec::new();
        for i in 0..LAYERS.len() * 3 {
            let layer = LAYERS[i % LAYERS.len()];
            let key = format!("fz-{block}-{i}-{:016x}", rng.next_u64());
            let env = layered_transaction(&n, &key, layer, &mut |b| mutate(&mut rng, b));
            envelopes.push(env);
            txs.push((layer, key));
        }
        let got = n.commit(envelopes).await;
        assert_eq!(got.len(), txs.len(), "one code per transaction");
        for (code, (layer, key)) in got.into_iter().zip(txs) {
            *codes.entry(code as i32).or_default() += 1;
            if code != C::Valid {
                assert_eq!(n.get(&key).await, None, "{layer:?} {key}: {code:?}");
            }
            // A code past the envelope checks means the edit reached the inner layers.
            if !matches!(
                code,
                C::BadPayload | C::NilEnvelope | C::BadCreatorSignature
            ) {
                *reached.entry(layer).or_default() += 1;
            }
        }
    }
    let after = layered_transaction(&n, "fz-after", Layer::Envelope, &mut |b| b.to_vec());
    assert_eq!(n.commit(vec![after]).await, vec![C::Valid]);
    assert!(n.get("fz-after").await.is_some());
    // The edits were not all stopped at the door: many codes, from many layers.
    assert!(codes.len() >= 8, "codes seen: {codes:?}");
    assert!(reached.len() >= 10, "layers reached: {reached:?}");
}

/// Determinism: every peer must reach the same codes for a block whenever it validates it (a
/// peer catching up a year later, a new peer replaying the chain). A transaction ordered while
/// its creator's certificate was valid is judged as of that certificate's issuance, as Fabric's
/// MSP does, not by the validating peer's clock: a certificate that has expired since still
/// validates (the orderer and the endorsers refuse expired certificates when requests arrive).
/// A certificate that Org1's CA did not issue is still refused.
#[tokio::test]
async fn creators_judged_alike_at_any_time_even_after_their_certificates_expire() {
    use weft_configtx::testing::expired_leaf;
    let n = setup().await;
    let issue = |ca: &weft_crypto::CertificateAuthority| {
        expired_leaf(ca, "client", "Expired@org1.example.com").unwrap()
    };
    let expired = issue(&n.net.orgs[0].signing_ca().unwrap());
    let creator = Creator {
        serialized: weft_msp::serialize_identity("Org1MSP", expired.der.as_ref()),
        sign: Box::new(|m| expired.key.sign(m).unwrap()),
    };
    let env = transaction_by(
        &n,
        &creator,
        "by-an-expired-cert",
        Layer::Envelope,
        &mut |b| b.to_vec(),
    );
    // Checked at today's date, as a request arriving now is: expired.
    let msps = n.channel.msps();
    let e = msps
        .deserialize(&creator.serialized)
        .unwrap_err()
        .to_string();
    assert!(e.contains("expired"), "{e}");
    // In a block: valid, now and on any later day.
    assert_eq!(n.commit(vec![env]).await, vec![C::Valid]);
    assert!(n.get("by-an-expired-cert").await.is_some());

    // The same subject from another CA claiming Org1MSP: refused, at issuance as at any time.
    let rogue = weft_peer::testing::test_ca("not org1's CA").unwrap();
    let forged = issue(&rogue);
    let impostor = Creator {
        serialized: weft_msp::serialize_identity("Org1MSP", forged.der.as_ref()),
        sign: Box::new(|m| forged.key.sign(m).unwrap()),
    };
    let env = transaction_by(
        &n,
        &impostor,
        "by-a-rogue-cert",
        Layer::Envelope,
        &mut |b| b.to_vec(),
    );
    assert_eq!(n.commit(vec![env]).await, vec![C::BadCreatorSignature]);
    assert_eq!(n.get("by-a-rogue-cert").await, None);
}

/// Like creators, the orderer's block signatures are judged as of its certificate's issuance:
/// a peer catching up after the orderer's certificate expired accepts the blocks the others
/// accepted (Fabric's MSP does the same), while a signer from another CA is still refused.
#[tokio::test]
async fn block_signatures_judged_alike_after_the_orderers_certificate_expires() {
    use weft_configtx::testing::expired_leaf;
    let n = setup().await;
    let config = n.channel.config().unwrap();
    let gh = n
        .channel
        .blocks()
        .block(0)
        .unwrap()
        .unwrap()
        .header
        .unwrap();
    let issue = |ca: &weft_crypto::CertificateAuthority| {
        expired_leaf(ca, "orderer", "orderer.example.com").unwrap()
    };
    let (env, _) = n.tx(&kv_rwset(CC, &[], &[("k", Some(b"v"))], vec![]));
    let sign = |cert: &weft_crypto::IssuedCertificate, block: &mut Block| {
        weft_peer::testing::sign_block_as(
            block,
            &weft_msp::serialize_identity("OrdererMSP", cert.der.as_ref()),
            &|m| cert.key.sign(m).map_err(|e| e.to_string()),
            0,
        )
        .unwrap();
    };
    let expired = issue(&n.net.orderer_org.signing_ca().unwrap());
    let e = config
        .msp_manager()
        .deserialize(&weft_msp::serialize_identity(
            "OrdererMSP",
            expired.der.as_ref(),
        ))
        .unwrap_err()
        .to_string();
    assert!(e.contains("expired"), "{e}");
    let mut block = next_block(&gh, vec![env.clone()]);
    sign(&expired, &mut block);
    check_block(&config, 1, Some(&gh), &block).unwrap();

    let rogue = issue(&weft_peer::testing::test_ca("not the orderer org's CA").unwrap());
    let mut block = next_block(&gh, vec![env]);
    sign(&rogue, &mut block);
    let e = check_block(&config, 1, Some(&gh), &block).unwrap_err();
    assert!(e.detail.contains("policy"), "{e}");
}
