#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The orderer end to end over real mutual TLS on 127.0.0.1: join through the admin API,
//! Broadcast, Deliver, attacks, restart, and crash recovery from the write-ahead log.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio_stream::StreamExt;
use weft_ledger::block::{header_hash, last_config_index, signature_message, signatures};
use weft_msp::SigningIdentity;
use weft_orderer::chain::{Chain, ChainPaths};
use weft_orderer::consensus::BlockSigner;
use weft_orderer::testing::{TestOrderer, CHANNEL};
use weft_proto::common::{
    Block, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader, Status,
};
use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use weft_proto::orderer::seek_info::SeekBehavior;
use weft_proto::orderer::seek_position::Type as Pos;
use weft_proto::orderer::{
    deliver_response, BroadcastResponse, SeekInfo, SeekNewest, SeekOldest, SeekPosition,
    SeekSpecified,
};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

type Client = AtomicBroadcastClient<tonic::transport::Channel>;

fn tls_client(o: &TestOrderer, with_cert: bool) -> (TlsClient, Option<Vec<u8>>) {
    let ca = std::fs::read(o.tls_ca_file()).unwrap();
    let roots = weft_crypto::pem::certificates(&ca, "ca").unwrap();
    let user = &o.network.orgs[0].user;
    let (identity, cert_der) = if with_cert {
        let id = Identity::from_pem_files(&user.tls_cert, &user.tls_key, "user tls").unwrap();
        let der = id.chain()[0].as_ref().to_vec();
        (ClientIdentity::Certificate(id), Some(der))
    } else {
        (ClientIdentity::Anonymous, None)
    };
    (
        TlsClient::new(Trust::Roots(roots), identity, Profile::Fabric).unwrap(),
        cert_der,
    )
}

async fn client(o: &TestOrderer) -> (Client, Vec<u8>) {
    let (tls, der) = tls_client(o, true);
    let ch = weft_tls::grpc::channel(Some(tls), Endpoint::parse(&o.address()).unwrap())
        .await
        .unwrap();
    (
        AtomicBroadcastClient::new(ch).max_decoding_message_size(100 * 1024 * 1024),
        der.unwrap(),
    )
}

fn user(o: &TestOrderer) -> SigningIdentity {
    o.network.orgs[0].user.signer().unwrap()
}

fn envelope_with(
    creator: Bytes,
    sign: impl Fn(&[u8]) -> Vec<u8>,
    channel: &str,
    t: HeaderType,
    data: Bytes,
    tls_cert_hash: &[u8],
) -> Envelope {
    let nonce = weft_crypto::random_bytes(24).unwrap();
    let tx_id = weft_crypto::hex(&weft_crypto::sha256(&[&nonce[..], &creator[..]].concat()));
    let ch = ChannelHeader {
        r#type: t as i32,
        channel_id: channel.into(),
        tx_id,
        timestamp: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        tls_cert_hash: Bytes::copy_from_slice(tls_cert_hash),
        ..Default::default()
    };
    let sh = SignatureHeader {
        creator,
        nonce: nonce.into(),
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec().into(),
            signature_header: sh.encode_to_vec().into(),
        }),
        data,
    }
    .encode_to_vec();
    let signature = sign(&payload);
    Envelope {
        payload: payload.into(),
        signature: signature.into(),
    }
}

fn envelope(signer: &SigningIdentity, channel: &str, t: HeaderType, data: &[u8]) -> Envelope {
    envelope_with(
        signer.serialize().into(),
        |m| signer.sign(m).unwrap(),
        channel,
        t,
        Bytes::copy_from_slice(data),
        &[],
    )
}

async fn broadcast(c: &mut Client, envs: Vec<Envelope>) -> Vec<BroadcastResponse> {
    let n = envs.len();
    let mut responses = c
        .broadcast(tokio_stream::iter(envs))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(30), responses.next()).await {
            Ok(Some(Ok(r))) => out.push(r),
            other => panic!("broadcast stream ended early: {other:?}"),
        }
    }
    out
}

fn seek_env(
    signer: &SigningIdentity,
    start: Pos,
    stop: Pos,
    behavior: SeekBehavior,
    tls_hash: &[u8],
) -> Envelope {
    let seek = SeekInfo {
        start: Some(SeekPosition {
            r#type: Some(start),
        }),
        stop: Some(SeekPosition { r#type: Some(stop) }),
        behavior: behavior as i32,
        ..Default::default()
    };
    envelope_with(
        signer.serialize().into(),
        |m| signer.sign(m).unwrap(),
        CHANNEL,
        HeaderType::DeliverSeekInfo,
        seek.encode_to_vec().into(),
        tls_hash,
    )
}

/// Blocks, then the final status.
async fn deliver(c: &mut Client, env: Envelope) -> (Vec<Block>, Status) {
    let mut stream = c
        .deliver(tokio_stream::iter(vec![env]))
        .await
        .unwrap()
        .into_inner();
    let mut blocks = Vec::new();
    loop {
        let item = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("deliver timed out")
            .expect("deliver stream ended without a status")
            .unwrap();
        match item.r#type {
            Some(deliver_response::Type::Block(b)) => blocks.push(b),
            Some(deliver_response::Type::Status(s)) => {
                return (blocks, Status::try_from(s).unwrap())
            }
            None => panic!("empty deliver response"),
        }
    }
}

fn specified(n: u64) -> Pos {
    Pos::Specified(SeekSpecified { number: n })
}

fn check_chain(o: &TestOrderer, blocks: &[Block]) {
    let orderer_key = &o.node.identity.identity().public_key;
    for (i, b) in blocks.iter().enumerate() {
        let h = b.header.as_ref().unwrap();
        assert_eq!(h.number, i as u64);
        if i > 0 {
            let prev = blocks[i - 1].header.as_ref().unwrap();
            assert_eq!(h.previous_hash.as_ref(), header_hash(prev).as_slice());
            assert_eq!(
                h.data_hash.as_ref(),
                weft_ledger::block::data_hash(b.data.as_ref().unwrap()).as_slice()
            );
            let md = signatures(b).unwrap().expect("signed");
            assert_eq!(md.signatures.len(), 1);
            let sig = &md.signatures[0];
            let shdr = SignatureHeader::decode(sig.signature_header.clone()).unwrap();
            assert_eq!(
                shdr.creator.as_ref(),
                o.node.identity.serialize().as_slice()
            );
            let msg = signature_message(&md.value, &sig.signature_header, h);
            weft_crypto::sign::verify(orderer_key, &msg, &sig.signature)
                .expect("orderer signature verifies");
            assert_eq!(last_config_index(b), Some(0));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_broadcast_deliver_attack_restart() {
    let dir = tempfile::tempdir().unwrap();
    let o = TestOrderer::start(dir.path()).await.unwrap();

    // The admin API as osnadmin sees it.
    let admin = o.admin().unwrap();
    let list = admin.list().await.unwrap();
    assert_eq!(list.status, 200);
    let v: serde_json::Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(v["channels"][0]["name"], CHANNEL);
    assert!(v["systemChannel"].is_null());
    let info = admin.info(CHANNEL).await.unwrap();
    assert_eq!(info.status, 200);
    let v: serde_json::Value = serde_json::from_str(&info.body).unwrap();
    assert_eq!(v["height"], 1);
    assert_eq!(v["consensusRelation"], "consenter");
    let again = admin
        .join(&o.network.genesis.encode_to_vec())
        .await
        .unwrap();
    assert_eq!(again.status, 405, "{}", again.body);
    assert!(again.body.contains("already exists"), "{}", again.body);
    let bad = admin.join(b"not a block").await.unwrap();
    assert_eq!(bad.status, 400, "{}", bad.body);
    // Attack: a body over ChannelParticipation.MaxRequestBodySize (1 MB by default, as in
    // Fabric) is refused before it is parsed; it was read up to 100 MiB.
    let huge = admin.join(&vec![0u8; 2 * 1024 * 1024]).await.unwrap();
    assert_eq!(huge.status, 413, "{}", huge.body);
    assert!(
        huge.body
            .contains("ChannelParticipation.MaxRequestBodySize"),
        "{}",
        huge.body
    );
    assert_eq!(admin.info("nochannel").await.unwrap().status, 404);

    let (mut c, cert_der) = client(&o).await;
    let u = user(&o);

    // Cut by count: MaxMessageCount is 500.
    let envs: Vec<Envelope> = (0..500)
        .map(|i| {
            envelope(
                &u,
                CHANNEL,
                HeaderType::EndorserTransaction,
                format!("tx{i}").as_bytes(),
            )
        })
        .collect();
    let first_tx = envs[0].clone();
    let rs = broadcast(&mut c, envs).await;
    assert!(
        rs.iter().all(|r| r.status == Status::Success as i32),
        "{:?}",
        rs.iter().find(|r| r.status != 200)
    );
    // Cut by timeout (250 ms): 3 more.
    let envs: Vec<Envelope> = (0..3)
        .map(|i| envelope(&u, CHANNEL, HeaderType::Message, format!("m{i}").as_bytes()))
        .collect();
    let rs = broadcast(&mut c, envs).await;
    assert!(rs.iter().all(|r| r.status == Status::Success as i32));

    // Deliver oldest..specified(2), blocking until block 2 exists.
    let (blocks, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            specified(2),
            SeekBehavior::BlockUntilReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!(status, Status::Success);
    assert_eq!(blocks.len(), 3);
    assert_eq!(blocks[1].data.as_ref().unwrap().data.len(), 500);
    assert_eq!(blocks[2].data.as_ref().unwrap().data.len(), 3);
    assert_eq!(
        blocks[1].data.as_ref().unwrap().data[0].as_ref(),
        first_tx.encode_to_vec().as_slice(),
        "envelopes are stored as submitted"
    );
    check_chain(&o, &blocks);

    // Newest, and FAIL_IF_NOT_READY past the end.
    let (b, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Newest(SeekNewest {}),
            Pos::Newest(SeekNewest {}),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!((b.len(), status), (1, Status::Success));
    assert_eq!(b[0].header.as_ref().unwrap().number, 2);
    let (b, status) = deliver(
        &mut c,
        seek_env(
            &u,
            specified(10),
            specified(10),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!((b.len(), status), (0, Status::NotFound));

    // Blocking for a future block.
    let waiter = {
        let mut c2 = c.clone();
        let env = seek_env(
            &u,
            specified(3),
            specified(3),
            SeekBehavior::BlockUntilReady,
            &cert_der_hash(&cert_der),
        );
        tokio::spawn(async move { deliver(&mut c2, env).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished());
    let rs = broadcast(
        &mut c,
        vec![envelope(
            &u,
            CHANNEL,
            HeaderType::EndorserTransaction,
            b"later",
        )],
    )
    .await;
    assert_eq!(rs[0].status, Status::Success as i32);
    let (b, status) = waiter.await.unwrap();
    assert_eq!(status, Status::Success);
    assert_eq!(b[0].header.as_ref().unwrap().number, 3);

    // --- attacks ---
    let refused = |r: &BroadcastResponse, s: Status, needle: &str| {
        assert_eq!(r.status, s as i32, "{r:?}");
        assert!(
            r.info.contains(needle),
            "expected {needle:?} in {:?}",
            r.info
        );
    };
    let mut unsigned = envelope(&u, CHANNEL, HeaderType::EndorserTransaction, b"x");
    unsigned.signature = Bytes::new();
    let mut tampered = envelope(&u, CHANNEL, HeaderType::EndorserTransaction, b"y");
    let mut sig = tampered.signature.to_vec();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    tampered.signature = sig.into();
    // Org2's user signing while claiming to be Org1's user: the signature does not verify.
    let org2 = o.network.orgs[1].user.signer().unwrap();
    let impostor = envelope_with(
        u.serialize().into(),
        |m| org2.sign(m).unwrap(),
        CHANNEL,
        HeaderType::EndorserTransaction,
        Bytes::from_static(b"z"),
        &[],
    );
    let unknown_msp = envelope_with(
        weft_msp::serialize_identity("EvilMSP", u.certificate_der()).into(),
        |m| u.sign(m).unwrap(),
        CHANNEL,
        HeaderType::EndorserTransaction,
        Bytes::from_static(b"w"),
        &[],
    );
    let oversized = envelope(
        &u,
        CHANNEL,
        HeaderType::EndorserTransaction,
        &vec![7u8; 10 * 1024 * 1024 + 1],
    );
    let garbage = Envelope {
        payload: Bytes::from_static(b"\x0a\xff\xff\xff garbage"),
        signature: Bytes::from_static(b"sig"),
    };
    let wrong_channel = envelope(&u, "otherchannel", HeaderType::EndorserTransaction, b"c");
    let config_update = envelope(&u, CHANNEL, HeaderType::ConfigUpdate, b"cu");
    let config = envelope(&u, CHANNEL, HeaderType::Config, b"cfg");
    let rs = broadcast(
        &mut c,
        vec![
            unsigned,
            tampered,
            impostor,
            unknown_msp,
            oversized,
            garbage,
            wrong_channel,
            config_update,
            config,
        ],
    )
    .await;
    refused(&rs[0], Status::Forbidden, "not signed");
    refused(&rs[1], Status::Forbidden, "Org1MSP");
    refused(&rs[1], Status::Forbidden, "does not verify");
    refused(&rs[2], Status::Forbidden, "does not verify");
    refused(&rs[3], Status::Forbidden, "EvilMSP");
    refused(&rs[4], Status::RequestEntityTooLarge, "AbsoluteMaxBytes");
    refused(&rs[5], Status::BadRequest, "payload");
    refused(&rs[6], Status::NotFound, "otherchannel");
    refused(&rs[7], Status::BadRequest, "not a ConfigUpdateEnvelope");
    refused(&rs[8], Status::BadRequest, "CONFIG");
    // None of them was ordered.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let chain = o.node.registrar.get(CHANNEL).unwrap();
    assert_eq!(chain.height(), 4);

    // Deliver bound to another TLS session, and without the binding under mutual TLS.
    let (b, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            Pos::Newest(SeekNewest {}),
            SeekBehavior::BlockUntilReady,
            &[9u8; 32],
        ),
    )
    .await;
    assert_eq!((b.len(), status), (0, Status::Forbidden));
    let (b, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            Pos::Newest(SeekNewest {}),
            SeekBehavior::BlockUntilReady,
            &[],
        ),
    )
    .await;
    assert_eq!((b.len(), status), (0, Status::Forbidden));

    // A signed request captured an hour ago and replayed: outside the time window.
    let stale = {
        let fresh = seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            Pos::Newest(SeekNewest {}),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        );
        let mut p = Payload::decode(fresh.payload).unwrap();
        let h = p.header.as_mut().unwrap();
        let mut ch = ChannelHeader::decode(h.channel_header.clone()).unwrap();
        let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        ch.timestamp = Some(prost_types::Timestamp::from(hour_ago));
        h.channel_header = ch.encode_to_vec().into();
        let payload = p.encode_to_vec();
        Envelope {
            signature: u.sign(&payload).unwrap().into(),
            payload: payload.into(),
        }
    };
    let (b, status) = deliver(&mut c, stale).await;
    assert_eq!((b.len(), status), (0, Status::BadRequest));

    // A client without a TLS certificate is refused at the handshake.
    let (anon, _) = tls_client(&o, false);
    let e = weft_tls::grpc::channel(Some(anon), Endpoint::parse(&o.address()).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // Restart: height and blocks survive, ordering continues.
    drop(c);
    drop(chain);
    let o = o.restart().await.unwrap();
    let chain = o.node.registrar.get(CHANNEL).unwrap();
    assert_eq!(chain.height(), 4);
    let (mut c, cert_der) = client(&o).await;
    let rs = broadcast(
        &mut c,
        vec![envelope(
            &u,
            CHANNEL,
            HeaderType::EndorserTransaction,
            b"after restart",
        )],
    )
    .await;
    assert_eq!(rs[0].status, Status::Success as i32, "{rs:?}");
    let (blocks, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            specified(4),
            SeekBehavior::BlockUntilReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!((blocks.len(), status), (5, Status::Success));
    check_chain(&o, &blocks);

    // Remove the channel through the admin API.
    drop(c);
    drop(chain);
    let admin = o.admin().unwrap();
    assert_eq!(admin.remove(CHANNEL).await.unwrap().status, 204);
    assert_eq!(admin.info(CHANNEL).await.unwrap().status, 404);
    assert_eq!(admin.remove(CHANNEL).await.unwrap().status, 404);
    o.shutdown().await;
}

fn cert_der_hash(der: &[u8]) -> Vec<u8> {
    weft_crypto::sha256(der).to_vec()
}

/// A crash after the write-ahead log write, before the block store write: the block is
/// produced on restart, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_record_without_block_is_recovered_once() {
    let dir = tempfile::tempdir().unwrap();
    let net = weft_configtx::testing::two_org_network(dir.path(), 7050).unwrap();
    let signer = BlockSigner::new(std::sync::Arc::new(net.orderer_org.node.signer().unwrap()));
    let paths = ChainPaths {
        ledger_dir: dir.path().join("ledger"),
        wal_dir: dir.path().join("wal"),
    };
    let chain = Chain::join(&paths, &net.genesis, &signer).unwrap();
    assert_eq!(chain.height(), 1);
    chain.halt().await;
    drop(chain);

    // What a crash leaves: the batch for block 1 in the log, nothing in the store.
    let u = net.orgs[0].user.signer().unwrap();
    let env = envelope_with(
        u.serialize().into(),
        |m| u.sign(m).unwrap(),
        CHANNEL,
        HeaderType::EndorserTransaction,
        Bytes::from_static(b"logged"),
        &[],
    );
    {
        let (mut wal, _) = weft_orderer::wal::Wal::open(&paths.channel_wal_dir(CHANNEL)).unwrap();
        wal.append(1, &[Bytes::from(env.encode_to_vec())]).unwrap();
    }

    let chain = Chain::open(&paths, CHANNEL, &signer).unwrap();
    let mut heights = chain.subscribe();
    tokio::time::timeout(Duration::from_secs(10), heights.wait_for(|h| *h >= 2))
        .await
        .unwrap()
        .unwrap();
    let b1 = chain.block(1).unwrap().unwrap();
    assert_eq!(
        b1.data.as_ref().unwrap().data[0].as_ref(),
        env.encode_to_vec().as_slice()
    );
    let genesis_hash = header_hash(net.genesis.header.as_ref().unwrap());
    assert_eq!(
        b1.header.as_ref().unwrap().previous_hash.as_ref(),
        genesis_hash.as_slice()
    );
    chain.halt().await;
    drop(chain);

    // Restart again: the log was released; nothing is produced twice.
    let chain = Chain::open(&paths, CHANNEL, &signer).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chain.height(), 2);
    chain.halt().await;

    // A log that does not continue the store is refused, not silently skipped.
    drop(chain);
    {
        let (mut wal, _) = weft_orderer::wal::Wal::open(&paths.channel_wal_dir(CHANNEL)).unwrap();
        wal.append(5, &[Bytes::from_static(b"x")]).unwrap();
    }
    let e = Chain::open(&paths, CHANNEL, &signer)
        .unwrap_err()
        .to_string();
    assert!(e.contains("block 5 where block 2 was expected"), "{e}");
}

/// A client presenting `org`'s user TLS certificate, and that certificate (DER).
async fn client_as(
    o: &TestOrderer,
    org: &weft_configtx::testing::TestOrg,
) -> Result<(Client, Vec<u8>), String> {
    let ca = std::fs::read(o.tls_ca_file()).unwrap();
    let roots = weft_crypto::pem::certificates(&ca, "ca").unwrap();
    let id = Identity::from_pem_files(&org.user.tls_cert, &org.user.tls_key, "tls").unwrap();
    let der = id.chain()[0].as_ref().to_vec();
    let tls = TlsClient::new(
        Trust::Roots(roots),
        ClientIdentity::Certificate(id),
        Profile::Fabric,
    )
    .unwrap();
    let ch = weft_tls::grpc::channel(Some(tls), Endpoint::parse(&o.address()).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    Ok((AtomicBroadcastClient::new(ch), der))
}

/// A mutual-TLS client presenting `org`'s user TLS certificate; `Err` when the orderer
/// refuses the connection or the Broadcast call.
async fn broadcast_as(
    o: &TestOrderer,
    org: &weft_configtx::testing::TestOrg,
    env: Envelope,
) -> Result<BroadcastResponse, String> {
    let (mut c, _) = client_as(o, org).await?;
    let mut rs = c
        .broadcast(tokio_stream::iter(vec![env]))
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    match tokio::time::timeout(Duration::from_secs(30), rs.next()).await {
        Ok(Some(Ok(r))) => Ok(r),
        other => Err(format!("{other:?}")),
    }
}

/// The CONFIG_UPDATE envelope turning `config` into `updated`, signed (ConfigSignatures) by
/// `signers`, the envelope itself by `submitter`.
fn update_to(
    config: &weft_configtx::ChannelConfig,
    updated: &weft_proto::common::Config,
    signers: &[&SigningIdentity],
    submitter: &SigningIdentity,
) -> Envelope {
    use weft_configtx::update;
    let cu = update::compute_update(CHANNEL, config.config(), updated).unwrap();
    let bytes = cu.encode_to_vec();
    let cue = weft_proto::common::ConfigUpdateEnvelope {
        signatures: signers
            .iter()
            .map(|s| update::signature(s, &bytes).unwrap())
            .collect(),
        config_update: bytes.into(),
    };
    update::update_envelope(CHANNEL, &cue, submitter).unwrap()
}

/// The CONFIG_UPDATE envelope adding `org3` to `config`, signed (ConfigSignatures) by
/// `signers`, the envelope itself by `submitter`.
fn add_org_update(
    config: &weft_configtx::ChannelConfig,
    org3: &weft_configtx::testing::TestOrg,
    signers: &[&SigningIdentity],
    submitter: &SigningIdentity,
) -> Envelope {
    let profile = weft_configtx::OrgProfile::application(&org3.name, &org3.msp_id, &org3.msp_dir);
    let updated = weft_configtx::update::add_application_org(config.config(), &profile).unwrap();
    update_to(config, &updated, signers, submitter)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_update_adds_an_org_and_its_tls_root() {
    let dir = tempfile::tempdir().unwrap();
    let o = TestOrderer::start(dir.path()).await.unwrap();
    let org3 = weft_configtx::update::test_org(dir.path(), 3).unwrap();
    let org3_user = org3.user.signer().unwrap();
    let admin1 = o.network.orgs[0].admin.signer().unwrap();
    let admin2 = o.network.orgs[1].admin.signer().unwrap();
    let (mut c, cert_der) = client(&o).await;
    let u = user(&o);

    // Attack: Org3's TLS certificate is not trusted yet.
    let tx3 = || envelope(&org3_user, CHANNEL, HeaderType::Message, b"from org3");
    let refused = broadcast_as(&o, &org3, tx3()).await;
    assert!(refused.is_err(), "{refused:?}");

    // Attack: the update signed by one of the two application admins (MAJORITY needs both).
    let config = o.node.registrar.get(CHANNEL).unwrap().config();
    let one = add_org_update(&config, &org3, &[&admin1], &admin1);
    let r = &broadcast(&mut c, vec![one]).await[0];
    assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
    assert!(r.info.contains("/Channel/Application/Admins"), "{}", r.info);
    assert!(r.info.contains("group /Channel/Application"), "{}", r.info);
    // Attack: a submitter outside /Channel/Writers (Org3 is not a member yet).
    let outsider = add_org_update(&config, &org3, &[&admin1, &admin2], &org3_user);
    let r = &broadcast(&mut c, vec![outsider]).await[0];
    assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);

    // A pending transaction, then the update signed by both admins: the transaction is cut
    // first, the config transaction alone in the next block.
    let pending = envelope(&u, CHANNEL, HeaderType::Message, b"before");
    let good = add_org_update(&config, &org3, &[&admin1, &admin2], &admin1);
    let rs = broadcast(&mut c, vec![pending, good.clone()]).await;
    assert!(
        rs.iter().all(|r| r.status == Status::Success as i32),
        "{rs:?}"
    );
    let chain = o.node.registrar.get(CHANNEL).unwrap();
    assert_eq!(chain.config().sequence(), 1);
    assert!(chain.config().application_orgs().contains_key("Org3MSP"));
    assert_eq!(chain.height(), 3);

    let (blocks, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            specified(2),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!(status, Status::Success);
    assert_eq!(blocks[1].data.as_ref().unwrap().data.len(), 1);
    assert_eq!(last_config_index(&blocks[1]), Some(0));
    let cb = &blocks[2];
    assert_eq!(
        cb.data.as_ref().unwrap().data.len(),
        1,
        "a config tx is alone"
    );
    assert_eq!(last_config_index(cb), Some(2));
    let parsed = weft_configtx::ChannelConfig::from_block(cb).unwrap();
    assert_eq!(parsed.sequence(), 1);
    assert!(parsed.application_orgs().contains_key("Org3MSP"));
    // The config envelope is the orderer's, and carries the submitted update.
    let env = Envelope::decode(cb.data.as_ref().unwrap().data[0].clone()).unwrap();
    let payload = Payload::decode(env.payload.clone()).unwrap();
    let shdr = SignatureHeader::decode(payload.header.unwrap().signature_header).unwrap();
    assert_eq!(
        shdr.creator.as_ref(),
        o.node.identity.serialize().as_slice()
    );
    weft_crypto::sign::verify(
        &o.node.identity.identity().public_key,
        &env.payload,
        &env.signature,
    )
    .unwrap();
    let ce = weft_proto::common::ConfigEnvelope::decode(payload.data).unwrap();
    assert_eq!(ce.last_update.unwrap(), good);

    // Org3 now connects with mutual TLS and may write.
    let r = broadcast_as(&o, &org3, tx3()).await.unwrap();
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);
    let (b, _) = deliver(
        &mut c,
        seek_env(
            &u,
            specified(3),
            specified(3),
            SeekBehavior::BlockUntilReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!(last_config_index(&b[0]), Some(2));

    // Replaying the same update: its read set is stale now.
    let r = &broadcast(&mut c, vec![good]).await[0];
    assert_eq!(r.status, Status::BadRequest as i32, "{}", r.info);
    assert!(r.info.contains("version"), "{}", r.info);

    // After a restart the new config is in force, from the config block.
    drop(chain);
    let o = o.restart().await.unwrap();
    let chain = o.node.registrar.get(CHANNEL).unwrap();
    assert_eq!(chain.config().sequence(), 1);
    let r = broadcast_as(&o, &org3, tx3()).await.unwrap();
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);

    // Org3 follows the chain on a stream with no end; then the other orgs remove it. Its
    // access is checked again once the config changes (Fabric's session access control), so
    // the open stream ends FORBIDDEN instead of carrying the blocks of a channel Org3 has
    // left.
    let (mut c3, tls3) = client_as(&o, &org3).await.unwrap();
    let mut follow = c3
        .deliver(tokio_stream::iter(vec![seek_env(
            &org3_user,
            specified(0),
            specified(u64::MAX),
            SeekBehavior::BlockUntilReady,
            &cert_der_hash(&tls3),
        )]))
        .await
        .unwrap()
        .into_inner();
    let config = chain.config();
    let without =
        weft_configtx::testing::without_application_org(config.config(), &org3.name).unwrap();
    let admin1 = o.network.orgs[0].admin.signer().unwrap();
    let admin2 = o.network.orgs[1].admin.signer().unwrap();
    let removal = update_to(&config, &without, &[&admin1, &admin2], &admin1);
    let (mut c, _) = client(&o).await;
    let r = &broadcast(&mut c, vec![removal]).await[0];
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while chain.config().sequence() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the removal was not ordered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let removal_block = chain.height() - 1;
    // Org3 gets the blocks from before its removal, then FORBIDDEN: never the block that
    // removed it, nor any after.
    let mut next = 0;
    let end = loop {
        let item = tokio::time::timeout(Duration::from_secs(30), follow.next())
            .await
            .expect("the open stream was not re-checked")
            .unwrap()
            .unwrap();
        match item.r#type {
            Some(deliver_response::Type::Block(b)) => {
                let n = b.header.unwrap().number;
                assert_eq!(n, next);
                assert!(
                    n < removal_block,
                    "Org3 received block {n}, after its removal"
                );
                next += 1;
            }
            Some(deliver_response::Type::Status(s)) => break s,
            None => panic!("empty deliver response"),
        }
    };
    assert_eq!(end, Status::Forbidden as i32);
    // Before this check, the stream kept delivering to Org3 until its certificate expired.
    let r = broadcast(
        &mut c,
        vec![envelope(&u, CHANNEL, HeaderType::Message, b"after")],
    )
    .await;
    assert_eq!(r[0].status, Status::Success as i32);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), follow.next())
            .await
            .map_or(true, |next| next.is_none()),
        "the stream goes on after FORBIDDEN"
    );
    o.shutdown().await;
}

/// Fuzzing Broadcast and Deliver with what a client can send: envelopes with a mutated payload,
/// with a mutated header or data signed again (so they pass the signature check and reach the
/// header checks), or with a mutated signature, of every header type. Each gets a status
/// on the stream, the refusals say why, the orderer orders exactly the envelopes it accepted,
/// in order, and keeps serving; mutated Deliver requests get a status or wait, never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_envelopes_get_a_status_and_the_orderer_keeps_serving() {
    use weft_configtx::testing::{mutate, Rng};
    let dir = tempfile::tempdir().unwrap();
    let o = TestOrderer::start(dir.path()).await.unwrap();
    let (mut c, cert_der) = client(&o).await;
    let u = user(&o);
    let mut rng = Rng(0x0bad_5eed_0dde_e001);
    let kinds = [
        HeaderType::EndorserTransaction,
        HeaderType::Message,
        HeaderType::ConfigUpdate,
        HeaderType::Config,
        HeaderType::DeliverSeekInfo,
    ];
    let envs: Vec<Envelope> = (0..300)
        .map(|i| {
            let base = envelope(&u, CHANNEL, kinds[i % kinds.len()], b"fuzz");
            match i % 3 {
                0 => Envelope {
                    payload: mutate(&mut rng, &base.payload).into(),
                    signature: base.signature,
                },
                1 => {
                    // One part of the payload mutated, and the whole signed again.
                    let mut p = Payload::decode(base.payload).unwrap();
                    let h = p.header.as_mut().unwrap();
                    match rng.below(3) {
                        0 => h.channel_header = mutate(&mut rng, &h.channel_header).into(),
                        1 => h.signature_header = mutate(&mut rng, &h.signature_header).into(),
                        _ => p.data = mutate(&mut rng, &p.data).into(),
                    }
                    let payload = p.encode_to_vec();
                    let signature = u.sign(&payload).unwrap();
                    Envelope {
                        payload: payload.into(),
                        signature: signature.into(),
                    }
                }
                _ => Envelope {
                    payload: base.payload,
                    signature: mutate(&mut rng, &base.signature).into(),
                },
            }
        })
        .collect();
    let rs = broadcast(&mut c, envs.clone()).await;
    assert_eq!(rs.len(), envs.len(), "one status per envelope");
    let mut accepted = Vec::new();
    for (env, r) in envs.iter().zip(&rs) {
        if r.status == Status::Success as i32 {
            accepted.push(env.encode_to_vec());
        } else {
            assert!(!r.info.is_empty(), "a refusal says why: {r:?}");
        }
    }
    assert!(
        !accepted.is_empty() && accepted.len() < envs.len() / 2,
        "some re-signed mutations keep good headers, most are refused: {} of {}",
        accepted.len(),
        envs.len()
    );
    // A good envelope afterwards is ordered too.
    let good = envelope(&u, CHANNEL, HeaderType::EndorserTransaction, b"after");
    let rs = broadcast(&mut c, vec![good.clone()]).await;
    assert_eq!(rs[0].status, Status::Success as i32, "{rs:?}");
    accepted.push(good.encode_to_vec());

    // Exactly the accepted envelopes, in order, in the blocks after the genesis block.
    let chain = o.node.registrar.get(CHANNEL).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut ordered = Vec::new();
    while ordered.len() < accepted.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let newest = chain.height() - 1;
        if newest == 0 {
            continue;
        }
        let (blocks, status) = deliver(
            &mut c,
            seek_env(
                &u,
                specified(1),
                specified(newest),
                SeekBehavior::FailIfNotReady,
                &cert_der_hash(&cert_der),
            ),
        )
        .await;
        assert_eq!(status, Status::Success);
        ordered = blocks
            .iter()
            .flat_map(|b| b.data.as_ref().unwrap().data.iter().map(|d| d.to_vec()))
            .collect();
    }
    assert_eq!(ordered, accepted);

    // Mutated Deliver requests, all at once: each ends with a status or is still waiting for
    // a block it asked for; none takes the orderer down.
    let mut waits = Vec::new();
    for i in 0..60 {
        let base = seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            Pos::Newest(SeekNewest {}),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        );
        let payload = mutate(&mut rng, &base.payload);
        let signature = if i % 2 == 0 {
            u.sign(&payload).unwrap().into()
        } else {
            base.signature
        };
        let env = Envelope {
            payload: payload.into(),
            signature,
        };
        let mut c = c.clone();
        waits.push(tokio::spawn(async move {
            let mut stream = c.deliver(tokio_stream::iter(vec![env])).await?.into_inner();
            let until = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(Some(item)) = tokio::time::timeout_at(until, stream.next()).await {
                if let Some(deliver_response::Type::Status(_)) = item?.r#type {
                    break;
                }
            }
            Ok::<(), tonic::Status>(())
        }));
    }
    for w in waits {
        w.await.unwrap().unwrap();
    }
    let (blocks, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            Pos::Newest(SeekNewest {}),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!(status, Status::Success);
    check_chain(&o, &blocks);
    drop(c);
    drop(chain);
    o.shutdown().await;
}

/// Maintenance mode (ConsensusType.state), as Fabric enforces it for a consensus-type
/// migration: once the orderer admins enter it, application writers and readers are refused,
/// orderer-org transactions wait, and only the orderer orgs may update the config; leaving it
/// restores everything. Before, the state was parsed and ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_mode_admits_only_the_orderer_orgs() {
    use weft_proto::orderer::consensus_type::State;
    let dir = tempfile::tempdir().unwrap();
    let o = TestOrderer::start(dir.path()).await.unwrap();
    let (mut c, cert_der) = client(&o).await;
    let u = user(&o);
    let orderer_admin = o.network.orderer_org.admin.signer().unwrap();
    let chain = o.node.registrar.get(CHANNEL).unwrap();
    let set_state = |state: State| {
        let config = chain.config();
        let next = weft_configtx::testing::with_consensus_type(config.config(), |ct| {
            ct.state = state as i32
        })
        .unwrap();
        update_to(&config, &next, &[&orderer_admin], &orderer_admin)
    };
    let wait_sequence = |seq: u64| {
        let chain = chain.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while chain.config().sequence() < seq {
                assert!(
                    std::time::Instant::now() < deadline,
                    "config {seq} not in force"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let r = &broadcast(&mut c, vec![set_state(State::Maintenance)]).await[0];
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);
    wait_sequence(1).await;
    assert!(chain.config().orderer().maintenance);

    // An application writer: refused, told why.
    let r = &broadcast(
        &mut c,
        vec![envelope(&u, CHANNEL, HeaderType::Message, b"x")],
    )
    .await[0];
    assert_eq!(r.status, Status::Forbidden as i32, "{}", r.info);
    assert!(r.info.contains("maintenance mode"), "{}", r.info);
    assert!(r.info.contains("/Channel/Orderer/Writers"), "{}", r.info);
    // An orderer org member's transaction waits for the end of maintenance.
    let r = &broadcast(
        &mut c,
        vec![envelope(&orderer_admin, CHANNEL, HeaderType::Message, b"y")],
    )
    .await[0];
    assert_eq!(r.status, Status::ServiceUnavailable as i32, "{}", r.info);
    assert!(r.info.contains("maintenance mode"), "{}", r.info);
    // An application reader: refused.
    let (_, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            specified(0),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!(status, Status::Forbidden);

    // The orderer admins end it; writers and readers are back.
    let r = &broadcast(&mut c, vec![set_state(State::Normal)]).await[0];
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);
    wait_sequence(2).await;
    let r = &broadcast(
        &mut c,
        vec![envelope(&u, CHANNEL, HeaderType::Message, b"z")],
    )
    .await[0];
    assert_eq!(r.status, Status::Success as i32, "{}", r.info);
    let (blocks, status) = deliver(
        &mut c,
        seek_env(
            &u,
            Pos::Oldest(SeekOldest {}),
            specified(0),
            SeekBehavior::FailIfNotReady,
            &cert_der_hash(&cert_der),
        ),
    )
    .await;
    assert_eq!((blocks.len(), status), (1, Status::Success));
    o.shutdown().await;
}
