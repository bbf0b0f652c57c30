//! A whole peer in one process, for tests and benchmarks: crypto material from cryptogen's
//! sample network, a `core.yaml` with mutual TLS, one channel (`mychannel`, Org1MSP), and
//! [`PeerNode::start`] — the same start path as `weft peer node start`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use weft_ledger::{HistoryEntry, UpdateBatch, Version};
use weft_msp::msp::SigningIdentity;
use weft_proto::protos::{ProposalResponse, SignedProposal};

use crate::config::CoreConfig;
use crate::endorser::signed_proposal;
use crate::node::{PeerNode, StartOptions};
use crate::package::{code_archive_from_directory, ChaincodePackage, InstallStore};

/// The channel of a [`TestPeer`].
pub const CHANNEL: &str = "mychannel";

/// What to vary in a [`TestPeer`].
#[derive(Debug, Clone)]
pub struct TestPeerOptions {
    /// `chaincode.externalBuilders`: (name, path, propagated variables).
    pub builders: Vec<(String, PathBuf, Vec<String>)>,
    /// Extra `core.yaml` text appended at the top level.
    pub extra_yaml: String,
    pub execute_timeout: String,
    /// Development mode (`--peer-chaincodedev`).
    pub dev_mode: bool,
    /// The peer's port on 127.0.0.1 (`peer.listenAddress` and `peer.address`); none: a free
    /// one.
    pub listen_port: Option<u16>,
}

impl TestPeerOptions {
    /// The builders shipped in `repo/builders` (ccaas, binary, node).
    pub fn with_shipped_builders(repo: &Path) -> Self {
        let b = |name: &str| {
            (
                name.to_owned(),
                repo.join("builders").join(name),
                vec!["HOME".to_owned(), "npm_config_cache".to_owned()],
            )
        };
        TestPeerOptions {
            builders: vec![b("ccaas"), b("binary"), b("node")],
            extra_yaml: String::new(),
            execute_timeout: "3s".into(),
            dev_mode: false,
            listen_port: None,
        }
    }
}

/// A started peer and the material around it (see the module docs).
#[derive(Debug)]
pub struct TestPeer {
    pub dir: PathBuf,
    /// `peer.fileSystemPath`.
    pub fs_path: PathBuf,
    pub node: PeerNode,
}

impl TestPeer {
    /// Generate material under `dir` (which must be empty or absent) and start the peer.
    pub async fn start(dir: &Path, opts: &TestPeerOptions) -> Result<TestPeer, String> {
        weft_msp::cryptogen::generate(
            &weft_msp::cryptogen::default_network_config(),
            &dir.join("crypto"),
            &weft_msp::cryptogen::GenerateOptions::default(),
        )
        .map_err(|e| e.to_string())?;
        let org1 = dir.join("crypto/peerOrganizations/org1.example.com");
        let channels = dir.join("channels.yaml");
        std::fs::write(
            &channels,
            format!(
                "channels:\n  - name: {CHANNEL}\n    msps:\n      - id: Org1MSP\n        dir: {}\n",
                org1.join("msp").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        Self::start_peer(dir, "org1", "peer", Some(channels), opts).await
    }

    /// Start peer0 of `org` (`org1`, `org2`) of a network whose crypto material is already
    /// under `dir/crypto` (e.g. `weft_configtx::testing::two_org_network(dir, ..)`), with no
    /// channels: join them with [`PeerNode::join_channel`]. Its file system path is
    /// `dir/peer-<org>`.
    pub async fn start_in_network(
        dir: &Path,
        org: &str,
        opts: &TestPeerOptions,
    ) -> Result<TestPeer, String> {
        Self::start_peer(dir, org, &format!("peer-{org}"), None, opts).await
    }

    async fn start_peer(
        dir: &Path,
        org: &str,
        fs_name: &str,
        channels: Option<PathBuf>,
        opts: &TestPeerOptions,
    ) -> Result<TestPeer, String> {
        let msp_id = match org {
            "org1" => "Org1MSP",
            "org2" => "Org2MSP",
            other => return Err(format!("no org {other}")),
        };
        let org_dir = dir.join(format!("crypto/peerOrganizations/{org}.example.com"));
        let peer = org_dir.join(format!("peers/peer0.{org}.example.com"));
        let mut builders = String::new();
        for (name, path, env) in &opts.builders {
            builders.push_str(&format!(
                "    - name: {name}\n      path: {}\n      propagateEnvironment: [{}]\n",
                path.display(),
                env.join(", ")
            ));
        }
        let core = format!(
            "peer:\n  id: peer0.{org}.example.com\n  listenAddress: 127.0.0.1:{port}\n  address: 127.0.0.1:{address_port}\n  \
             chaincodeListenAddress: 127.0.0.1:0\n  fileSystemPath: {fs}\n  mspConfigPath: {msp}\n  \
             localMspId: {msp_id}\n  tls:\n    enabled: true\n    clientAuthRequired: true\n    \
             cert: {{ file: {tls}/server.crt }}\n    key: {{ file: {tls}/server.key }}\n    \
             rootcert: {{ file: {tls}/ca.crt }}\n{client_roots}operations:\n  listenAddress: 127.0.0.1:0\n\
             chaincode:\n  executetimeout: {timeout}\n  \
             startuptimeout: 60s\n  externalBuilders:\n{builders}{extra}\n",
            fs = dir.join(fs_name).display(),
            msp = peer.join("msp").display(),
            tls = peer.join("tls").display(),
            // A peer without channels yet trusts its own org's TLS CA for client certificates.
            client_roots = if channels.is_none() {
                format!(
                    "    clientRootCAs: {{ files: [ {} ] }}\n",
                    peer.join("tls/ca.crt").display()
                )
            } else {
                String::new()
            },
            timeout = opts.execute_timeout,
            extra = opts.extra_yaml,
            port = opts.listen_port.unwrap_or(0),
            address_port = opts.listen_port.unwrap_or(7051),
        );
        let core_path = if fs_name == "peer" {
            dir.join("core.yaml")
        } else {
            dir.join(format!("core-{fs_name}.yaml"))
        };
        std::fs::write(&core_path, core).map_err(|e| e.to_string())?;
        let cfg = CoreConfig::load(Some(&core_path), |_| None).map_err(|e| e.to_string())?;
        let node = PeerNode::start(
            &cfg,
            StartOptions {
                channels_file: channels,
                dev_mode: opts.dev_mode,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(TestPeer {
            dir: dir.to_owned(),
            fs_path: dir.join(fs_name),
            node,
        })
    }

    /// `crypto/peerOrganizations/<org>.example.com`.
    pub fn org(&self, org: &str) -> PathBuf {
        self.dir
            .join("crypto/peerOrganizations")
            .join(format!("{org}.example.com"))
    }

    /// User1 of org1 or org2.
    pub fn user(&self, org: &str) -> Result<SigningIdentity, String> {
        let msp_id = match org {
            "org1" => "Org1MSP",
            "org2" => "Org2MSP",
            other => return Err(format!("no org {other}")),
        };
        SigningIdentity::from_local_msp_dir(
            &self
                .org(org)
                .join(format!("users/User1@{org}.example.com/msp")),
            msp_id,
        )
        .map_err(|e| e.to_string())
    }

    /// Install a package file and define it as chaincode `name` on the channel.
    pub fn install(&self, package: &[u8], name: &str) -> Result<String, String> {
        let store = InstallStore::open(&self.fs_path).map_err(|e| e.to_string())?;
        let id = store
            .install(package)
            .map_err(|e| e.to_string())?
            .chaincode
            .package_id;
        let ch = self.node.channels.get(CHANNEL).ok_or("no channel")?;
        ch.define_chaincode(name, id.clone());
        Ok(id)
    }

    /// Package `src` as `chaincode_type` with `label`, install it and define it as `name`.
    pub fn install_dir(
        &self,
        src: &Path,
        label: &str,
        chaincode_type: &str,
        name: &str,
    ) -> Result<String, String> {
        let code = code_archive_from_directory(src, chaincode_type).map_err(|e| e.to_string())?;
        let pkg =
            ChaincodePackage::build(label, chaincode_type, "", &code).map_err(|e| e.to_string())?;
        self.install(&pkg, name)
    }

    /// Install a ccaas package whose connection.json is `conn`.
    pub fn install_ccaas(
        &self,
        label: &str,
        name: &str,
        conn: &serde_json::Value,
    ) -> Result<String, String> {
        let src = self.dir.join(format!("src-{label}"));
        std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
        std::fs::write(src.join("connection.json"), conn.to_string()).map_err(|e| e.to_string())?;
        self.install_dir(&src, label, "ccaas", name)
    }

    /// A proposal by `signer` for `chaincode` with string arguments.
    pub fn proposal(
        &self,
        signer: &SigningIdentity,
        chaincode: &str,
        args: &[&str],
    ) -> Result<(SignedProposal, String), String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        signed_proposal(signer, CHANNEL, chaincode, &args, &[]).map_err(|e| e.to_string())
    }

    /// Endorse a proposal by org1's User1 in process.
    pub async fn invoke(&self, chaincode: &str, args: &[&str]) -> Result<ProposalResponse, String> {
        let user = self.user("org1")?;
        let (sp, _) = self.proposal(&user, chaincode, args)?;
        Ok(self.node.endorser.process(&sp).await)
    }

    /// Write `entries` into namespace `ns` as block `block` (with history), as a commit would.
    pub async fn seed(
        &self,
        ns: &str,
        entries: &[(&str, &[u8])],
        block: u64,
    ) -> Result<(), String> {
        let ch = self.node.channels.get(CHANNEL).ok_or("no channel")?;
        let mut batch = UpdateBatch::new();
        for (i, (k, v)) in entries.iter().enumerate() {
            let version = Version::new(block, i as u64);
            batch.put(ns, k, Bytes::copy_from_slice(v), Bytes::new(), version);
            batch.add_history(
                ns,
                k,
                version,
                HistoryEntry {
                    tx_id: format!("seed-{block}-{i}"),
                    timestamp: Some((1_700_000_000 + i64::try_from(block).unwrap_or(0), 0)),
                    is_delete: false,
                    value: Bytes::copy_from_slice(v),
                },
            );
        }
        ch.state()
            .apply(batch, Version::new(block, 0), false)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn stop(self) {
        self.node.shutdown().await;
    }
}

/// A throwaway P-256 root CA for chaincode-server and client TLS material in tests.
pub fn test_ca(name: &str) -> Result<weft_crypto::CertificateAuthority, weft_crypto::Error> {
    weft_crypto::CertificateAuthority::new_root(
        &weft_crypto::Subject::cn(name),
        weft_crypto::Validity::from_now(time::Duration::days(1)),
        weft_crypto::KeyAlgorithm::EcdsaP256,
    )
}

/// A leaf from `ca` for `cn` with `sans`: (certificate PEM, PKCS#8 key PEM).
pub fn test_leaf(
    ca: &weft_crypto::CertificateAuthority,
    cn: &str,
    sans: &[&str],
    profile: weft_crypto::LeafProfile,
) -> Result<(String, String), weft_crypto::Error> {
    let issued = ca.issue(
        &weft_crypto::LeafRequest::new(weft_crypto::Subject::cn(cn), profile)
            .sans(sans.iter().copied()),
    )?;
    Ok((
        issued.pem(),
        weft_crypto::pem::encode("PRIVATE KEY", issued.key.pkcs8_der()),
    ))
}

/// A read/write set of one namespace: reads `(key, version (block, tx) or None for absent)`,
/// writes `(key, value)` (`None`: delete), and range queries.
pub fn kv_rwset(
    ns: &str,
    reads: &[(&str, Option<(u64, u64)>)],
    writes: &[(&str, Option<&[u8]>)],
    range_queries: Vec<weft_proto::kvrwset::RangeQueryInfo>,
) -> weft_proto::rwset::TxReadWriteSet {
    use prost::Message;
    use weft_proto::kvrwset::{KvRead, KvWrite, KvrwSet, Version as KvVersion};
    let kv = KvrwSet {
        reads: reads
            .iter()
            .map(|(k, v)| KvRead {
                key: (*k).to_owned(),
                version: v.map(|(b, t)| KvVersion {
                    block_num: b,
                    tx_num: t,
                }),
            })
            .collect(),
        range_queries_info: range_queries,
        writes: writes
            .iter()
            .map(|(k, v)| KvWrite {
                key: (*k).to_owned(),
                is_delete: v.is_none(),
                value: v.map(Bytes::copy_from_slice).unwrap_or_default(),
            })
            .collect(),
        metadata_writes: Vec::new(),
    };
    weft_proto::rwset::TxReadWriteSet {
        data_model: 0,
        ns_rwset: vec![weft_proto::rwset::NsReadWriteSet {
            namespace: ns.to_owned(),
            rwset: kv.encode_to_vec().into(),
            collection_hashed_rwset: Vec::new(),
        }],
    }
}

/// A transaction as a Fabric client assembles it: a proposal by `creator` for `chaincode` on
/// `channel`, the simulation result `rwset` endorsed (signed over
/// `proposal_response_payload || endorser`) by each of `endorsers`, all in an envelope signed
/// by `creator`. Returns the envelope bytes and the tx id.
pub fn endorsed_transaction(
    creator: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    rwset: &weft_proto::rwset::TxReadWriteSet,
    endorsers: &[&SigningIdentity],
) -> Result<(Bytes, String), String> {
    use prost::Message;
    use weft_proto::common::{Envelope, Header, Payload};
    use weft_proto::protos::{
        ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, ChaincodeId,
        ChaincodeProposalPayload, Endorsement, Proposal, ProposalResponsePayload, Response,
        Transaction, TransactionAction,
    };
    let (sp, tx_id) = signed_proposal(creator, channel, chaincode, &[b"invoke"], &[])
        .map_err(|e| e.to_string())?;
    let up = crate::endorser::unpack(&sp).map_err(|e| e.to_string())?;
    let proposal = Proposal::decode(sp.proposal_bytes.clone()).map_err(|e| e.to_string())?;
    let header = Header::decode(proposal.header.clone()).map_err(|e| e.to_string())?;
    let action = ChaincodeAction {
        results: rwset.encode_to_vec().into(),
        events: Bytes::new(),
        response: Some(Response {
            status: 200,
            message: String::new(),
            payload: Bytes::new(),
        }),
        chaincode_id: Some(ChaincodeId {
            name: chaincode.to_owned(),
            version: crate::channel::UNVERSIONED.to_owned(),
            ..Default::default()
        }),
    };
    let prp: Bytes = ProposalResponsePayload {
        proposal_hash: Bytes::copy_from_slice(&up.proposal_hash),
        extension: action.encode_to_vec().into(),
    }
    .encode_to_vec()
    .into();
    let mut endorsements = Vec::new();
    for e in endorsers {
        let endorser = e.serialize();
        let signature = e
            .sign(&[prp.as_ref(), endorser.as_slice()].concat())
            .map_err(|x| x.to_string())?;
        endorsements.push(Endorsement {
            endorser: endorser.into(),
            signature: signature.into(),
        });
    }
    let cpp =
        ChaincodeProposalPayload::decode(proposal.payload.clone()).map_err(|e| e.to_string())?;
    let cpp = ChaincodeProposalPayload {
        input: cpp.input,
        transient_map: Default::default(),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: header.signature_header.clone(),
            payload: ChaincodeActionPayload {
                chaincode_proposal_payload: cpp.encode_to_vec().into(),
                action: Some(ChaincodeEndorsedAction {
                    proposal_response_payload: prp,
                    endorsements,
                }),
            }
            .encode_to_vec()
            .into(),
        }],
    };
    let payload = Payload {
        header: Some(header),
        data: tx.encode_to_vec().into(),
    }
    .encode_to_vec();
    let signature = creator.sign(&payload).map_err(|e| e.to_string())?;
    Ok((
        Envelope {
            payload: payload.into(),
            signature: signature.into(),
        }
        .encode_to_vec()
        .into(),
        tx_id,
    ))
}

/// A channel from `genesis` with its ledger under `dir` (created), genesis block committed
/// when the ledger is new, recovered when it is not — as a peer opens a joined channel.
pub async fn open_channel_from_genesis(
    dir: &Path,
    genesis: &weft_proto::common::Block,
    signatures: std::sync::Arc<crate::verifycache::SignatureCache>,
) -> Result<std::sync::Arc<crate::channel::Channel>, String> {
    let config = weft_configtx::ChannelConfig::from_block(genesis).map_err(|e| e.to_string())?;
    let (blocks, state) = crate::channel::open_ledger(dir)?;
    let channel = crate::channel::Channel::from_config(
        std::sync::Arc::new(config),
        blocks,
        state,
        signatures,
    );
    if channel.blocks().height() == 0 {
        crate::committer::commit_genesis(&channel, genesis.clone())
            .await
            .map_err(|e| e.to_string())?;
    } else {
        crate::committer::recover(&channel)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(std::sync::Arc::new(channel))
}

/// The next block after `previous` (its header) holding `envelopes`, without orderer
/// signatures.
pub fn next_block(
    previous: &weft_proto::common::BlockHeader,
    envelopes: Vec<Bytes>,
) -> weft_proto::common::Block {
    weft_ledger::block::new_block(
        previous.number + 1,
        &weft_ledger::block::header_hash(previous),
        envelopes,
    )
}

/// Sign `block` as an orderer would: SIGNATURES metadata with `last_config`, one signature by
/// `signer` over `value || signature_header || header`.
pub fn sign_block(
    block: &mut weft_proto::common::Block,
    signer: &SigningIdentity,
    last_config: u64,
) -> Result<(), String> {
    sign_block_as(
        block,
        &signer.serialize(),
        &|m| signer.sign(m).map_err(|e| e.to_string()),
        last_config,
    )
}

/// Signs a message with some key; the error says why not.
pub type RawSigner<'a> = &'a dyn Fn(&[u8]) -> Result<Vec<u8>, String>;

/// [`sign_block`] by the serialized identity `creator` whose key signs with `sign` (for
/// identities a [`SigningIdentity`] would not load, e.g. with an expired certificate).
pub fn sign_block_as(
    block: &mut weft_proto::common::Block,
    creator: &[u8],
    sign: RawSigner<'_>,
    last_config: u64,
) -> Result<(), String> {
    use prost::Message;
    use weft_proto::common::{MetadataSignature, SignatureHeader};
    let value = weft_ledger::block::orderer_metadata_value(last_config, Bytes::new());
    let shdr: Bytes = SignatureHeader {
        creator: Bytes::copy_from_slice(creator),
        nonce: weft_crypto::random_bytes(24)
            .map_err(|e| e.to_string())?
            .into(),
    }
    .encode_to_vec()
    .into();
    let header = block.header.clone().ok_or("the block has no header")?;
    let msg = weft_ledger::block::signature_message(&value, &shdr, &header);
    let signature = sign(&msg)?;
    weft_ledger::block::set_signatures(
        block,
        value,
        vec![MetadataSignature {
            signature_header: shdr,
            signature: signature.into(),
            identifier_header: Bytes::new(),
        }],
    );
    Ok(())
}
