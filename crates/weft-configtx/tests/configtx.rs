#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Channel configuration end to end: genesis blocks from profiles and configtx.yaml parse back
//! with every field, decode with the reference decoder, evaluate policies as Fabric does, and
//! refuse bad input with errors that name the file or config path. Mutated blocks and configs
//! never panic the parser.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use weft_configtx::testing::{mutate, two_org_network, Rng, TestNetwork};
use weft_configtx::{
    config_from_block, genesis_block, genesis_block_from_config, ChannelConfig, ConfigError,
    ConfigTxFile, OrgProfile, PolicyCheckError, Profile,
};
use weft_msp::policy::SignedData;
use weft_msp::{CertTime, SigningIdentity};
use weft_proto::common::{self, Block, Config, ConfigGroup};

fn network() -> (tempfile::TempDir, TestNetwork) {
    let dir = tempfile::tempdir().unwrap();
    let net = two_org_network(dir.path(), 7050).unwrap();
    (dir, net)
}

fn crypto(dir: &Path) {
    weft_msp::cryptogen::generate(
        &weft_msp::cryptogen::default_network_config(),
        &dir.join("crypto"),
        &weft_msp::cryptogen::GenerateOptions::default(),
    )
    .unwrap();
}

const CONFIGTX: &str = r#"
Organizations:
  - &OrdererOrg
    Name: OrdererOrg
    ID: OrdererMSP
    MSPDir: crypto/ordererOrganizations/example.com/msp
    Policies:
      Readers:
        Type: Signature
        Rule: "OR('OrdererMSP.member')"
      Writers:
        Type: Signature
        Rule: "OR('OrdererMSP.member')"
      Admins:
        Type: Signature
        Rule: "OR('OrdererMSP.admin')"
    OrdererEndpoints:
      - orderer.example.com:7050
  - &Org1
    Name: Org1MSP
    ID: Org1MSP
    MSPDir: crypto/peerOrganizations/org1.example.com/msp
    Policies:
      Readers:
        Type: Signature
        Rule: "OR('Org1MSP.admin', 'Org1MSP.peer', 'Org1MSP.client')"
      Writers:
        Type: Signature
        Rule: "OR('Org1MSP.admin', 'Org1MSP.client')"
      Admins:
        Type: Signature
        Rule: "OR('Org1MSP.admin')"
      Endorsement:
        Type: Signature
        Rule: "OR('Org1MSP.peer')"
    AnchorPeers:
      - Host: peer0.org1.example.com
        Port: 7051
  - &Org2
    Name: Org2MSP
    ID: Org2MSP
    MSPDir: crypto/peerOrganizations/org2.example.com/msp
    Policies:
      Readers:
        Type: Signature
        Rule: "OR('Org2MSP.admin', 'Org2MSP.peer', 'Org2MSP.client')"
      Writers:
        Type: Signature
        Rule: "OR('Org2MSP.admin', 'Org2MSP.client')"
      Admins:
        Type: Signature
        Rule: "OR('Org2MSP.admin')"
      Endorsement:
        Type: Signature
        Rule: "OR('Org2MSP.peer')"
    AnchorPeers:
      - Host: peer0.org2.example.com
        Port: 9051

Capabilities:
  Channel: &ChannelCapabilities
    V2_0: true
  Orderer: &OrdererCapabilities
    V2_0: true
  Application: &ApplicationCapabilities
    V2_5: true
    V2_0: false

Application: &ApplicationDefaults
  Organizations:
  Policies:
    Readers:
      Type: ImplicitMeta
      Rule: "ANY Readers"
    Writers:
      Type: ImplicitMeta
      Rule: "ANY Writers"
    Admins:
      Type: ImplicitMeta
      Rule: "MAJORITY Admins"
    LifecycleEndorsement:
      Type: ImplicitMeta
      Rule: "MAJORITY Endorsement"
    Endorsement:
      Type: ImplicitMeta
      Rule: "MAJORITY Endorsement"
  Capabilities:
    <<: *ApplicationCapabilities
  ACLs:
    peer/Propose: /Channel/Application/Writers
    event/Block: /Channel/Application/Readers

Orderer: &OrdererDefaults
  OrdererType: etcdraft
  Addresses:
    - orderer.example.com:7050
  EtcdRaft:
    Consenters:
      - Host: orderer.example.com
        Port: 7050
        ClientTLSCert: crypto/ordererOrganizations/example.com/orderers/orderer.example.com/tls/server.crt
        ServerTLSCert: crypto/ordererOrganizations/example.com/orderers/orderer.example.com/tls/server.crt
  BatchTimeout: 2s
  BatchSize:
    MaxMessageCount: 10
    AbsoluteMaxBytes: 99 MB
    PreferredMaxBytes: 512 KB
  Organizations:
  Policies:
    Readers:
      Type: ImplicitMeta
      Rule: "ANY Readers"
    Writers:
      Type: ImplicitMeta
      Rule: "ANY Writers"
    Admins:
      Type: ImplicitMeta
      Rule: "MAJORITY Admins"
    BlockValidation:
      Type: ImplicitMeta
      Rule: "ANY Writers"

Channel: &ChannelDefaults
  Policies:
    Readers:
      Type: ImplicitMeta
      Rule: "ANY Readers"
    Writers:
      Type: ImplicitMeta
      Rule: "ANY Writers"
    Admins:
      Type: ImplicitMeta
      Rule: "MAJORITY Admins"
  Capabilities:
    <<: *ChannelCapabilities

Profiles:
  TwoOrgsApplicationGenesis:
    <<: *ChannelDefaults
    Orderer:
      <<: *OrdererDefaults
      Organizations:
        - *OrdererOrg
      Capabilities: *OrdererCapabilities
    Application:
      <<: *ApplicationDefaults
      Organizations:
        - *Org1
        - *Org2
      Capabilities: *ApplicationCapabilities
  SoloOneOrg:
    <<: *ChannelDefaults
    Orderer:
      <<: *OrdererDefaults
      OrdererType: solo
      Organizations:
        - *OrdererOrg
    Application:
      <<: *ApplicationDefaults
      Organizations:
        - *Org1
"#;

/// A directory with cryptogen material under crypto/ and CONFIGTX (edited by `edit`).
fn configtx_dir(edit: impl Fn(&str) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    crypto(dir.path());
    std::fs::write(dir.path().join("configtx.yaml"), edit(CONFIGTX)).unwrap();
    dir
}

fn sign<'a>(signer: &SigningIdentity, data: &'a [u8]) -> (Vec<u8>, &'a [u8], Vec<u8>) {
    (signer.serialize(), data, signer.sign(data).unwrap())
}

fn signed<'a>(sigs: &'a [(Vec<u8>, &'a [u8], Vec<u8>)]) -> Vec<SignedData<'a>> {
    sigs.iter()
        .map(|(id, data, sig)| SignedData {
            identity: id,
            data,
            signature: sig,
        })
        .collect()
}

/// Signatures read from blocks (config updates in config blocks, orderer signatures on
/// blocks) count as of their certificates' issuance ([`CertTime::Issuance`]), so every node
/// judges a block alike at any time; requests as they arrive are judged now. An admin whose
/// certificate expired a minute ago: refused now, counted at issuance.
#[test]
fn expired_signers_count_at_issuance_not_now() {
    let (_dir, net) = network();
    let cfg = ChannelConfig::from_block(&net.genesis).unwrap();
    let data = b"a config update".as_slice();
    let admin1 = net.orgs[0].admin.signer().unwrap();
    let expired = weft_configtx::testing::expired_leaf(
        &net.orgs[1].signing_ca().unwrap(),
        "admin",
        "Admin@org2.example.com",
    )
    .unwrap();
    let sigs = [
        sign(&admin1, data),
        (
            weft_msp::serialize_identity("Org2MSP", expired.der.as_ref()),
            data,
            expired.key.sign(data).unwrap(),
        ),
    ];
    let err = cfg
        .evaluate_policy("/Channel/Application/Admins", &signed(&sigs))
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    cfg.evaluate_policy_at(
        "/Channel/Application/Admins",
        &signed(&sigs),
        CertTime::Issuance,
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Genesis and parsing

#[test]
fn two_org_genesis_parses_back_with_every_field() {
    let (_dir, net) = network();
    let block = &net.genesis;
    let header = block.header.as_ref().unwrap();
    assert_eq!(header.number, 0);
    assert!(header.previous_hash.is_empty());
    assert_eq!(
        weft_ledger::block::last_config_index(block),
        Some(0),
        "SIGNATURES metadata records config index 0"
    );

    let cfg = ChannelConfig::from_block(block).unwrap();
    assert_eq!(cfg.channel_id(), "mychannel");
    assert_eq!(cfg.sequence(), 0);
    assert_eq!(
        cfg.application_orgs().keys().collect::<Vec<_>>(),
        ["Org1MSP", "Org2MSP"]
    );
    assert_eq!(
        cfg.orderer_orgs().keys().collect::<Vec<_>>(),
        ["OrdererOrg"]
    );
    let org1 = &cfg.application_orgs()["Org1MSP"];
    assert_eq!(org1.msp_id, "Org1MSP");
    assert!(org1.msp.node_ous_enabled());
    assert!(org1.anchor_peers.is_empty());
    assert_eq!(cfg.orderer_orgs()["OrdererOrg"].msp_id, "OrdererMSP");
    assert_eq!(
        cfg.msp_manager().msps.keys().collect::<Vec<_>>(),
        ["OrdererMSP", "Org1MSP", "Org2MSP"]
    );
    assert_eq!(cfg.consensus_type(), "solo");
    let b = cfg.batch();
    assert_eq!(b.timeout, Duration::from_millis(250));
    assert_eq!(b.max_message_count, 500);
    assert_eq!(b.absolute_max_bytes, 10 * 1024 * 1024);
    assert_eq!(b.preferred_max_bytes, 2 * 1024 * 1024);
    assert_eq!(
        cfg.orderer_endpoints(),
        vec![("OrdererMSP".to_owned(), "127.0.0.1:7050".to_owned())]
    );
    assert_eq!(cfg.application_tls_roots().len(), 2);
    assert_eq!(cfg.orderer_tls_roots().len(), 1);
    assert_eq!(cfg.all_tls_roots().len(), 3);
    // The TLS roots are the orgs' TLS CA certificates, DER.
    let tls_ca = std::fs::read(&net.orgs[0].tls_ca_cert).unwrap();
    let der = weft_crypto::pem::certificates(&tls_ca, "ca").unwrap();
    assert!(cfg.application_tls_roots().contains(&der[0].to_vec()));
    let caps = cfg.capabilities();
    assert!(caps.channel.contains("V2_0") && caps.orderer.contains("V2_0"));
    assert!(caps.application.contains("V2_5"));
    assert_eq!(cfg.acls()["peer/Propose"], "/Channel/Application/Writers");
    assert_eq!(
        cfg.acl_policy("event/Block", "/Channel/Application/Readers"),
        "/Channel/Application/Readers"
    );
    let policies: Vec<String> = cfg.policies().into_iter().map(|p| p.path).collect();
    for p in [
        "/Channel/Readers",
        "/Channel/Writers",
        "/Channel/Admins",
        "/Channel/Application/Endorsement",
        "/Channel/Application/LifecycleEndorsement",
        "/Channel/Application/Org1MSP/Endorsement",
        "/Channel/Orderer/BlockValidation",
        "/Channel/Orderer/OrdererOrg/Admins",
    ] {
        assert!(
            policies.contains(&p.to_owned()),
            "{p} missing from {policies:?}"
        );
    }
    let summary = weft_configtx::inspect::describe(&cfg);
    assert!(summary.contains("Org1MSP (MSP ID Org1MSP)"), "{summary}");
    assert!(
        summary.contains("/Channel/Application/Endorsement: ImplicitMeta: MAJORITY Endorsement"),
        "{summary}"
    );
    assert!(
        summary
            .contains("/Channel/Application/Org1MSP/Endorsement: Signature: AND('Org1MSP.peer')"),
        "{summary}"
    );
    assert!(summary.contains("timeout 250ms"), "{summary}");

    // The block round-trips through its encoding.
    let again = Block::decode(Bytes::from(block.encode_to_vec())).unwrap();
    ChannelConfig::from_block(&again).unwrap();
}

#[test]
fn configtx_yaml_profile_with_anchors_and_merge_keys() {
    let dir = configtx_dir(|s| s.to_owned());
    let file = ConfigTxFile::from_dir(dir.path()).unwrap();
    assert_eq!(
        file.profile_names(),
        ["SoloOneOrg", "TwoOrgsApplicationGenesis"]
    );
    let profile = file.profile("TwoOrgsApplicationGenesis").unwrap();
    assert_eq!(
        profile.application.organizations[0].msp_dir,
        dir.path()
            .join("crypto/peerOrganizations/org1.example.com/msp"),
        "MSPDir is relative to configtx.yaml's folder"
    );
    let block = genesis_block("appchannel", &profile).unwrap();
    let cfg = ChannelConfig::from_block(&block).unwrap();
    assert_eq!(cfg.channel_id(), "appchannel");
    assert_eq!(cfg.consensus_type(), "etcdraft");
    let raft = cfg.orderer().etcdraft.as_ref().unwrap();
    assert_eq!(raft.consenters.len(), 1);
    assert_eq!(raft.consenters[0].host, "orderer.example.com");
    assert_eq!(raft.options.as_ref().unwrap().tick_interval, "500ms");
    let b = cfg.batch();
    assert_eq!(b.timeout, Duration::from_secs(2));
    assert_eq!(b.max_message_count, 10);
    assert_eq!(b.absolute_max_bytes, 99 * 1024 * 1024);
    assert_eq!(b.preferred_max_bytes, 512 * 1024);
    assert_eq!(
        cfg.application_orgs()["Org2MSP"].anchor_peers,
        vec![("peer0.org2.example.com".to_owned(), 9051)]
    );
    assert_eq!(cfg.orderer_addresses(), ["orderer.example.com:7050"]);
    assert_eq!(
        cfg.orderer_endpoints(),
        vec![(
            "OrdererMSP".to_owned(),
            "orderer.example.com:7050".to_owned()
        )]
    );
    assert_eq!(
        cfg.capabilities().application.iter().collect::<Vec<_>>(),
        ["V2_5"],
        "a capability set to false is left out"
    );
    assert_eq!(cfg.acls().len(), 2);
    assert!(cfg.has_policy("/Channel/Application/LifecycleEndorsement"));

    let solo = file.profile("SoloOneOrg").unwrap();
    let cfg = ChannelConfig::from_block(&genesis_block("solo", &solo).unwrap()).unwrap();
    assert_eq!(cfg.consensus_type(), "solo");
    assert_eq!(cfg.application_orgs().len(), 1);
    assert_eq!(cfg.orderer().etcdraft, None);
}

/// The paths of every group, value and policy of a config, as the node script prints them.
fn tree_lines(group: &ConfigGroup, path: &str, out: &mut BTreeSet<String>) {
    out.insert(format!("group {path}"));
    for k in group.values.keys() {
        out.insert(format!("value {path}/{k}"));
    }
    for k in group.policies.keys() {
        out.insert(format!("policy {path}/{k}"));
    }
    for (k, g) in &group.groups {
        tree_lines(g, &format!("{path}/{k}"), out);
    }
}

fn node_modules() -> Option<PathBuf> {
    let modules =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../weft-proto/conformance/node_modules");
    let have_node = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_node || !modules.join("@hyperledger/fabric-protos").is_dir() {
        eprintln!(
            "SKIPPED: node or @hyperledger/fabric-protos is missing (run `npm ci` in crates/weft-proto/conformance)"
        );
        return None;
    }
    Some(modules)
}

#[test]
fn genesis_block_decodes_with_fabric_protos() {
    let Some(modules) = node_modules() else {
        return;
    };
    let dir = configtx_dir(|s| s.to_owned());
    let profile = ConfigTxFile::from_dir(dir.path())
        .unwrap()
        .profile("TwoOrgsApplicationGenesis")
        .unwrap();
    let block = genesis_block("appchannel", &profile).unwrap();
    let file = dir.path().join("genesis.block");
    std::fs::write(&file, block.encode_to_vec()).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode_block.js"))
        .arg(&modules)
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    for want in [
        "block number=0 data=1 metadata=5",
        "header type=1 channel=appchannel version=1 txid=64",
        "last_config index=0",
        "sequence 0",
        "group /Channel mod_policy=Admins",
        "value /Channel/HashingAlgorithm mod_policy=Admins = SHA256",
        "value /Channel/BlockDataHashingStructure mod_policy=Admins = 4294967295",
        "value /Channel/OrdererAddresses mod_policy=/Channel/Orderer/Admins = orderer.example.com:7050",
        "value /Channel/Capabilities mod_policy=Admins = V2_0",
        "value /Channel/Orderer/BatchSize mod_policy=Admins = 10,103809024,524288",
        "value /Channel/Orderer/BatchTimeout mod_policy=Admins = 2s",
        "value /Channel/Orderer/ChannelRestrictions mod_policy=Admins = 0",
        "value /Channel/Orderer/ConsensusType mod_policy=Admins = etcdraft state=0 orderer.example.com:7050",
        "value /Channel/Orderer/OrdererOrg/Endpoints mod_policy=Admins = orderer.example.com:7050",
        "value /Channel/Orderer/OrdererOrg/MSP mod_policy=Admins = type=0 name=OrdererMSP roots=1 tls_roots=1 node_ous=true hash=SHA2",
        "value /Channel/Application/Org1MSP/AnchorPeers mod_policy=Admins = peer0.org1.example.com:7051",
        "value /Channel/Application/ACLs mod_policy=Admins = 2 peer/Propose=/Channel/Application/Writers",
        "value /Channel/Application/Capabilities mod_policy=Admins = V2_5",
        "policy /Channel/Application/Endorsement mod_policy=Admins = IMPLICIT_META MAJORITY Endorsement",
        "policy /Channel/Orderer/BlockValidation mod_policy=Admins = IMPLICIT_META ANY Writers",
        "policy /Channel/Application/Org2MSP/Writers mod_policy=Admins = SIGNATURE identities=2",
        "group /Channel/Application/Org2MSP mod_policy=Admins",
    ] {
        assert!(lines.contains(&want), "missing line {want:?} in:\n{stdout}");
    }
    // Same tree on both sides.
    let (_, config) = config_from_block(&block).unwrap();
    let mut ours = BTreeSet::new();
    tree_lines(
        config.channel_group.as_ref().unwrap(),
        "/Channel",
        &mut ours,
    );
    let theirs: BTreeSet<String> = lines
        .iter()
        .filter(|l| l.starts_with("group ") || l.starts_with("value ") || l.starts_with("policy "))
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(ours, theirs);
}

// ---------------------------------------------------------------------------------------------
// Policies

#[test]
fn policy_evaluation_by_path() {
    let (_dir, net) = network();
    let cfg = ChannelConfig::from_block(&net.genesis).unwrap();
    let data = b"a transaction".as_slice();
    let peer1 = net.orgs[0].node.signer().unwrap();
    let peer2 = net.orgs[1].node.signer().unwrap();
    let user1 = net.orgs[0].user.signer().unwrap();
    let admin1 = net.orgs[0].admin.signer().unwrap();
    let admin2 = net.orgs[1].admin.signer().unwrap();

    // MAJORITY Endorsement of two orgs needs both.
    let one = [sign(&peer1, data)];
    let err = cfg
        .evaluate_policy("/Channel/Application/Endorsement", &signed(&one))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, PolicyCheckError::NotSatisfied { .. }),
        "{err}"
    );
    assert!(text.contains("MAJORITY Endorsement needs 2"), "{text}");
    assert!(text.contains("Org2MSP/Endorsement"), "{text}");
    let both = [sign(&peer1, data), sign(&peer2, data)];
    cfg.evaluate_policy("/Channel/Application/Endorsement", &signed(&both))
        .unwrap();
    // The same signer twice is one signer.
    let twice = [sign(&peer1, data), sign(&peer1, data)];
    assert!(cfg
        .evaluate_policy("/Channel/Application/Endorsement", &signed(&twice))
        .is_err());

    // ANY Writers: one org's client suffices, at every level; relative paths are under /Channel.
    let user = [sign(&user1, data)];
    cfg.evaluate_policy("/Channel/Application/Writers", &signed(&user))
        .unwrap();
    cfg.evaluate_policy("/Channel/Writers", &signed(&user))
        .unwrap();
    cfg.evaluate_policy("Application/Writers", &signed(&user))
        .unwrap();
    // A peer is a reader of its org but not a writer.
    let peer = [sign(&peer1, data)];
    cfg.evaluate_policy("/Channel/Application/Readers", &signed(&peer))
        .unwrap();
    let err = cfg
        .evaluate_policy("/Channel/Application/Org1MSP/Writers", &signed(&peer))
        .unwrap_err();
    assert!(err.to_string().contains("Org1MSP"), "{err}");
    // MAJORITY Admins.
    assert!(cfg
        .evaluate_policy(
            "/Channel/Application/Admins",
            &signed(&[sign(&admin1, data)])
        )
        .is_err());
    cfg.evaluate_policy(
        "/Channel/Application/Admins",
        &signed(&[sign(&admin1, data), sign(&admin2, data)]),
    )
    .unwrap();
    // BlockValidation: ANY Writers of the orderer org.
    let orderer = net.orderer_org.node.signer().unwrap();
    cfg.evaluate_policy(
        "/Channel/Orderer/BlockValidation",
        &signed(&[sign(&orderer, data)]),
    )
    .unwrap();
    assert!(cfg
        .evaluate_policy(
            "/Channel/Orderer/BlockValidation",
            &signed(&[sign(&peer1, data)])
        )
        .is_err());

    // The quick check agrees with the explaining evaluator on every policy of the channel and
    // every subset of these signers (duplicates included).
    let signers = [&peer1, &peer2, &user1, &admin1, &admin2, &orderer];
    let all: Vec<_> = signers
        .iter()
        .map(|s| cfg.msp_manager().deserialize(&s.serialize()).unwrap())
        .collect();
    let paths: Vec<String> = cfg.policies().into_iter().map(|p| p.path).collect();
    assert!(paths.len() > 10, "{paths:?}");
    for mask in 0u32..(1 << all.len()) {
        let mut subset: Vec<_> = (0..all.len())
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| all[i].clone())
            .collect();
        if let Some(first) = subset.first().cloned() {
            subset.push(first);
        }
        for path in &paths {
            let quick = cfg.policy_satisfied(path, &subset);
            let explained = cfg.evaluate_policy_explained(path, &subset);
            assert_eq!(
                quick,
                explained.is_ok(),
                "{path} with signer mask {mask:#b}: quick {quick}, explained {explained:?}"
            );
            assert_eq!(
                cfg.evaluate_policy_identities(path, &subset).is_ok(),
                quick,
                "{path}"
            );
        }
    }
    assert!(!cfg.policy_satisfied("/Channel/NoSuchPolicy", &all));

    // Pre-validated identities.
    let ids: Vec<_> = [&peer1, &peer2]
        .iter()
        .map(|s| cfg.msp_manager().deserialize(&s.serialize()).unwrap())
        .collect();
    cfg.evaluate_policy_identities("/Channel/Application/Endorsement", &ids)
        .unwrap();
    assert!(cfg
        .evaluate_policy_identities("/Channel/Application/Endorsement", &ids[..1])
        .is_err());

    // A missing policy is named.
    let err = cfg
        .evaluate_policy("/Channel/Application/Nope", &signed(&user))
        .unwrap_err();
    assert!(matches!(err, PolicyCheckError::NotFound { .. }));
    let text = err.to_string();
    assert!(text.contains("/Channel/Application/Nope"), "{text}");
    assert!(text.contains("/Channel/Application/Writers"), "{text}");
}

#[test]
fn attack_signers_outside_the_channel_do_not_count() {
    let (_dir, net) = network();
    let cfg = ChannelConfig::from_block(&net.genesis).unwrap();
    let data = b"a transaction".as_slice();
    // Another network's Org1: same MSP ID, a different CA.
    let other = tempfile::tempdir().unwrap();
    crypto(other.path());
    let user_dir = other
        .path()
        .join("crypto/peerOrganizations/org1.example.com/users/User1@org1.example.com/msp");
    let impostor = SigningIdentity::from_local_msp_dir(&user_dir, "Org1MSP").unwrap();
    let err = cfg
        .evaluate_policy(
            "/Channel/Application/Writers",
            &signed(&[sign(&impostor, data)]),
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("signatures that did not count"), "{text}");
    assert!(text.contains("Org1MSP"), "{text}");

    // An MSP the channel does not know.
    let stranger = SigningIdentity::from_local_msp_dir(&user_dir, "Org3MSP").unwrap();
    let err = cfg
        .evaluate_policy(
            "/Channel/Application/Writers",
            &signed(&[sign(&stranger, data)]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("Org3MSP"), "{err}");

    // A member's identity with a signature over other bytes.
    let user1 = net.orgs[0].user.signer().unwrap();
    let forged = [(
        user1.serialize(),
        data,
        user1.sign(b"something else").unwrap(),
    )];
    let err = cfg
        .evaluate_policy("/Channel/Application/Writers", &signed(&forged))
        .unwrap_err();
    assert!(
        err.to_string().contains("signatures that did not count"),
        "{err}"
    );
}

/// An ACL written as a bare policy name (`Readers`, as configtx.yaml files often do) names the
/// Application group's policy, as Fabric reads it. Taken as `/Channel/Readers`, it let orderer
/// orgs' members pass every such ACL (blocks, events, commit status, proposals).
#[test]
fn attack_bare_acl_names_are_application_policies_not_channel_ones() {
    use weft_proto::protos::{AcLs, ApiResource};
    let (_dir, net) = network();
    let (_, mut config) = config_from_block(&net.genesis).unwrap();
    let app = group(config.channel_group.as_mut().unwrap(), &["Application"]);
    let acls = |pairs: &[(&str, &str)]| AcLs {
        acls: pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    ApiResource {
                        policy_ref: v.to_string(),
                    },
                )
            })
            .collect(),
    };
    app.values.get_mut("ACLs").unwrap().value = acls(&[
        ("event/Block", "Readers"),
        ("peer/Propose", "Writers"),
        ("qscc/GetChainInfo", ""),
        ("cscc/GetConfigBlock", "/Channel/Readers"),
    ])
    .encode_to_vec()
    .into();
    let cfg = ChannelConfig::from_config("mychannel", &config).unwrap();
    let default = "/Channel/Application/Readers";
    assert_eq!(
        cfg.acl_policy("event/Block", "x"),
        "/Channel/Application/Readers"
    );
    assert_eq!(
        cfg.acl_policy("peer/Propose", "x"),
        "/Channel/Application/Writers"
    );
    // Empty: the resource keeps its default. A path stays as written.
    assert_eq!(cfg.acl_policy("qscc/GetChainInfo", default), default);
    assert_eq!(
        cfg.acl_policy("cscc/GetConfigBlock", "x"),
        "/Channel/Readers"
    );

    // The orderer org's member reads the channel (/Channel/Readers) but not the blocks the
    // ACL guards.
    let orderer = net.orderer_org.node.signer().unwrap();
    let data = b"a deliver request".as_slice();
    let sigs = [sign(&orderer, data)];
    cfg.evaluate_policy("/Channel/Readers", &signed(&sigs))
        .unwrap();
    let err = cfg
        .evaluate_policy(cfg.acl_policy("event/Block", "x"), &signed(&sigs))
        .unwrap_err();
    assert!(err.to_string().contains("OrdererMSP"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Bad inputs

fn profile_error(edit: impl Fn(&str) -> String, profile: &str) -> String {
    let dir = configtx_dir(edit);
    match ConfigTxFile::from_dir(dir.path()).and_then(|f| {
        let p = f.profile(profile)?;
        genesis_block("mychannel", &p)
    }) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_configtx_inputs_are_named() {
    let e = profile_error(|s| s.to_owned(), "NoSuchProfile");
    assert!(
        e.contains("'NoSuchProfile'") && e.contains("SoloOneOrg, TwoOrgsApplicationGenesis"),
        "{e}"
    );

    let e = profile_error(
        |s| s.replace("99 MB", "99 MiB"),
        "TwoOrgsApplicationGenesis",
    );
    assert!(e.contains("AbsoluteMaxBytes") && e.contains("MiB"), "{e}");

    let e = profile_error(
        |s| s.replace("BatchTimeout: 2s", "BatchTimeout: 2 seconds"),
        "SoloOneOrg",
    );
    assert!(e.contains("BatchTimeout") && e.contains("2 seconds"), "{e}");

    let e = profile_error(
        |s| {
            s.replace(
                "crypto/peerOrganizations/org1.example.com/msp",
                "crypto/nowhere/msp",
            )
        },
        "SoloOneOrg",
    );
    assert!(
        e.contains("crypto/nowhere/msp") && e.contains("Org1MSP") && e.contains("MSPDir"),
        "{e}"
    );

    let e = profile_error(
        |s| {
            s.replace(
                "    AnchorPeers:\n      - Host: peer0.org1",
                "    AnchorPeerz:\n      - Host: peer0.org1",
            )
        },
        "SoloOneOrg",
    );
    assert!(e.contains("AnchorPeerz"), "{e}");

    let e = profile_error(
        |s| {
            s.replace(
                "Rule: \"OR('Org1MSP.admin')\"",
                "Rule: \"OR('Org1MSP.admin'\"",
            )
        },
        "SoloOneOrg",
    );
    assert!(e.contains("/Channel/Application/Org1MSP/Admins"), "{e}");

    let e = profile_error(
        |s| s.replace("V2_5: true", "V9_9: true"),
        "TwoOrgsApplicationGenesis",
    );
    assert!(
        e.contains("V9_9") && e.contains("/Channel/Application/Capabilities"),
        "{e}"
    );

    let e = profile_error(
        |s| {
            s.replace(
                "Orderer: &OrdererDefaults\n",
                "Orderer: &OrdererDefaults\n  <<: 3\n",
            )
        },
        "SoloOneOrg",
    );
    assert!(e.contains("merge"), "{e}");

    // A broken certificate in an MSP directory: the file is named.
    let dir = configtx_dir(|s| s.to_owned());
    let cacerts = dir
        .path()
        .join("crypto/peerOrganizations/org1.example.com/msp/cacerts");
    let ca = std::fs::read_dir(&cacerts)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(
        &ca,
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = ConfigTxFile::from_dir(dir.path())
        .and_then(|f| genesis_block("mychannel", &f.profile("SoloOneOrg")?))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&ca.display().to_string()), "{e}");

    // No configtx.yaml.
    let empty = tempfile::tempdir().unwrap();
    let e = ConfigTxFile::from_dir(empty.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("configtx.yaml") && e.contains("FABRIC_CFG_PATH"),
        "{e}"
    );

    // A bad channel name.
    let (_d, net) = network();
    let e = genesis_block("MyChannel", &net.profile)
        .unwrap_err()
        .to_string();
    assert!(e.contains("MyChannel"), "{e}");
    // A profile whose org has no MSP directory.
    let mut p: Profile = net.profile.clone();
    p.application.organizations.push(OrgProfile::application(
        "Org3MSP",
        "Org3MSP",
        "/nonexistent/msp",
    ));
    let e = genesis_block("mychannel", &p).unwrap_err().to_string();
    assert!(
        e.contains("/nonexistent/msp") && e.contains("Org3MSP"),
        "{e}"
    );
}

/// `f` applied to a copy of the genesis config; the parse error must name `path`.
fn config_error(net: &TestNetwork, path: &str, f: impl Fn(&mut ConfigGroup)) -> ConfigError {
    let (_, mut config) = config_from_block(&net.genesis).unwrap();
    f(config.channel_group.as_mut().unwrap());
    let err = ChannelConfig::from_config("mychannel", &config).unwrap_err();
    assert!(err.to_string().contains(path), "expected {path} in: {err}");
    err
}

fn group<'a>(root: &'a mut ConfigGroup, path: &[&str]) -> &'a mut ConfigGroup {
    path.iter()
        .fold(root, |g, name| g.groups.get_mut(*name).unwrap())
}

#[test]
fn bad_config_trees_name_their_path() {
    let (_dir, net) = network();
    config_error(&net, "/Channel/Application/Org1MSP/MSP", |g| {
        group(g, &["Application", "Org1MSP"]).values.remove("MSP");
    });
    config_error(&net, "/Channel/Application/Org1MSP/MSP", |g| {
        let v = group(g, &["Application", "Org1MSP"])
            .values
            .get_mut("MSP")
            .unwrap();
        let mut mc = weft_proto::msp::MspConfig::decode(v.value.clone()).unwrap();
        let mut fc = weft_proto::msp::FabricMspConfig::decode(mc.config.clone()).unwrap();
        fc.root_certs = vec![Bytes::from_static(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )];
        mc.config = Bytes::from(fc.encode_to_vec());
        v.value = Bytes::from(mc.encode_to_vec());
    });
    config_error(&net, "/Channel/Application/Org2MSP/MSP", |g| {
        let v = group(g, &["Application", "Org2MSP"])
            .values
            .get_mut("MSP")
            .unwrap();
        v.value = Bytes::from_static(b"\xff\xff\xff");
    });
    config_error(&net, "/Channel/Application/Org1MSP/Mystery", |g| {
        group(g, &["Application", "Org1MSP"])
            .values
            .insert("Mystery".into(), Default::default());
    });
    config_error(&net, "/Channel/Consortiums", |g| {
        g.groups.insert("Consortiums".into(), Default::default());
    });
    config_error(&net, "/Channel/Application", |g| {
        g.groups.remove("Application");
    });
    config_error(&net, "/Channel/Orderer/BlockValidation", |g| {
        group(g, &["Orderer"]).policies.remove("BlockValidation");
    });
    config_error(&net, "/Channel/Application/Org1MSP/Writers", |g| {
        let p = group(g, &["Application", "Org1MSP"])
            .policies
            .get_mut("Writers")
            .unwrap();
        p.policy.as_mut().unwrap().value = Bytes::from_static(b"\x12\x02\x10\x05");
    });
    config_error(&net, "/Channel/Orderer/BatchSize", |g| {
        let v = group(g, &["Orderer"]).values.get_mut("BatchSize").unwrap();
        v.value = Bytes::from(
            weft_proto::orderer::BatchSize {
                max_message_count: 10,
                absolute_max_bytes: 100,
                preferred_max_bytes: 1000,
            }
            .encode_to_vec(),
        );
    });
    config_error(&net, "/Channel/Orderer/BatchTimeout", |g| {
        let v = group(g, &["Orderer"])
            .values
            .get_mut("BatchTimeout")
            .unwrap();
        v.value = Bytes::from(
            weft_proto::orderer::BatchTimeout {
                timeout: "soon".into(),
            }
            .encode_to_vec(),
        );
    });
    config_error(&net, "/Channel/HashingAlgorithm", |g| {
        g.values.insert(
            "HashingAlgorithm".into(),
            common::ConfigValue {
                value: Bytes::from(common::HashingAlgorithm { name: "MD5".into() }.encode_to_vec()),
                ..Default::default()
            },
        );
    });
    // An altered block fails its data hash check.
    let mut block = net.genesis.clone();
    let mut data = block.data.as_ref().unwrap().data[0].to_vec();
    let at = data.len() / 2;
    data[at] ^= 1;
    block.data.as_mut().unwrap().data[0] = Bytes::from(data);
    let e = ChannelConfig::from_block(&block).unwrap_err().to_string();
    assert!(e.contains("data hash"), "{e}");
    // A block that is not a config block.
    let b = weft_ledger::block::new_block(3, &[1; 32], vec![Bytes::from_static(b"x")]);
    assert!(ChannelConfig::from_block(&b).is_err());
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[test]
fn mutated_blocks_and_configs_never_panic() {
    let (_dir, net) = network();
    let block_bytes = net.genesis.encode_to_vec();
    let (_, config) = config_from_block(&net.genesis).unwrap();
    let config_bytes = config.encode_to_vec();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut decoded, mut parsed) = (0, 0);
    for _ in 0..2000 {
        // Whole blocks (mostly stopped by decoding or the data hash)...
        if let Ok(b) = Block::decode(mutate(&mut rng, &block_bytes).as_slice()) {
            decoded += 1;
            let _ = ChannelConfig::from_block(&b);
        }
        // ...and config trees, re-wrapped so the hash matches and the parser sees them.
        if let Ok(c) = Config::decode(mutate(&mut rng, &config_bytes).as_slice()) {
            let b = genesis_block_from_config("mychannel", &c).unwrap();
            if ChannelConfig::from_block(&b).is_ok() {
                parsed += 1;
            }
        }
    }
    assert!(decoded > 0, "some mutated blocks decode");
    assert!(
        parsed > 0,
        "some mutations keep a valid config (e.g. in certificate padding)"
    );
}
