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
        }
    }
}

/// A started peer and the material around it (see the module docs).
#[derive(Debug)]
pub struct TestPeer {
    pub dir: PathBuf,
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
        let peer = org1.join("peers/peer0.org1.example.com");
        let mut builders = String::new();
        for (name, path, env) in &opts.builders {
            builders.push_str(&format!(
                "    - name: {name}\n      path: {}\n      propagateEnvironment: [{}]\n",
                path.display(),
                env.join(", ")
            ));
        }
        let core = format!(
            "peer:\n  id: peer0.org1.example.com\n  listenAddress: 127.0.0.1:0\n  address: 127.0.0.1:7051\n  \
             chaincodeListenAddress: 127.0.0.1:0\n  fileSystemPath: {fs}\n  mspConfigPath: {msp}\n  \
             localMspId: Org1MSP\n  tls:\n    enabled: true\n    clientAuthRequired: true\n    \
             cert: {{ file: {tls}/server.crt }}\n    key: {{ file: {tls}/server.key }}\n    \
             rootcert: {{ file: {tls}/ca.crt }}\nchaincode:\n  executetimeout: {timeout}\n  \
             startuptimeout: 60s\n  externalBuilders:\n{builders}{extra}\n",
            fs = dir.join("peer").display(),
            msp = peer.join("msp").display(),
            tls = peer.join("tls").display(),
            timeout = opts.execute_timeout,
            extra = opts.extra_yaml,
        );
        let core_path = dir.join("core.yaml");
        std::fs::write(&core_path, core).map_err(|e| e.to_string())?;
        let channels = dir.join("channels.yaml");
        std::fs::write(
            &channels,
            format!(
                "channels:\n  - name: {CHANNEL}\n    msps:\n      - id: Org1MSP\n        dir: {}\n",
                org1.join("msp").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let cfg = CoreConfig::load(Some(&core_path), |_| None).map_err(|e| e.to_string())?;
        let node = PeerNode::start(
            &cfg,
            StartOptions {
                channels_file: Some(channels),
                dev_mode: opts.dev_mode,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        Ok(TestPeer {
            dir: dir.to_owned(),
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
        let store = InstallStore::open(self.dir.join("peer")).map_err(|e| e.to_string())?;
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
