//! A whole weft network in one process, shared by the interop test and the Gateway
//! benchmark: an orderer and one peer per org with mutual TLS on every link, the peers joined
//! to `mychannel` (anchor peers in its genesis block) and pulling blocks from the orderer, and
//! chaincode defined through `_lifecycle` transactions.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prost::Message;
use weft_peer::testing::{TestPeer, TestPeerOptions};

/// An orderer and one peer per org, all in this process with mutual TLS on every link, the
/// peers joined to `mychannel` from its genesis block (with their anchor peers in it, so each
/// gateway finds the other org's peer) and pulling blocks from the orderer.
pub struct FullNet {
    pub _tmp: tempfile::TempDir,
    pub network: weft_configtx::testing::TestNetwork,
    pub orderer: Option<weft_orderer::testing::TestOrderer>,
    pub peers: Vec<TestPeer>,
}

impl FullNet {
    /// Start the network; `repo` is the repository root (for the shipped builders).
    pub async fn start(repo: &Path) -> FullNet {
        use weft_configtx::testing::{two_org_network, CHANNEL};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let port = || weft_orderer::testing::free_port().unwrap();
        let (orderer_port, ports) = (port(), [port(), port()]);
        let mut network = two_org_network(&dir, orderer_port).unwrap();
        for (org, p) in network
            .profile
            .application
            .organizations
            .iter_mut()
            .zip(ports)
        {
            org.anchor_peers = vec![("127.0.0.1".into(), p)];
        }
        network.genesis = weft_configtx::genesis_block(CHANNEL, &network.profile).unwrap();
        let orderer =
            weft_orderer::testing::TestOrderer::start_for(&dir, network.clone(), orderer_port)
                .await
                .unwrap();
        let mut peers = Vec::new();
        for (org, p) in ["org1", "org2"].into_iter().zip(ports) {
            let mut opts = TestPeerOptions::with_shipped_builders(repo);
            opts.execute_timeout = "15s".into();
            opts.listen_port = Some(p);
            let peer = TestPeer::start_in_network(&dir, org, &opts).await.unwrap();
            peer.node
                .join_channel(network.genesis.clone())
                .await
                .unwrap();
            peers.push(peer);
        }
        FullNet {
            _tmp: tmp,
            network,
            orderer: Some(orderer),
            peers,
        }
    }

    pub fn org(&self, i: usize) -> &weft_configtx::testing::TestOrg {
        &self.network.orgs[i]
    }

    /// A mutual-TLS connection to `address` trusting `ca`, presenting `who`'s TLS certificate.
    pub async fn conn(
        address: &str,
        ca: &Path,
        who: &weft_configtx::testing::TestIdentity,
    ) -> weft_peer::client::Conn {
        let trust = weft_tls::Trust::roots_from_pem_files(&[ca], "test CA").unwrap();
        let id = weft_tls::Identity::from_pem_files(&who.tls_cert, &who.tls_key, "test").unwrap();
        let client = weft_tls::TlsClient::new(
            trust,
            weft_tls::ClientIdentity::Certificate(id),
            weft_tls::Profile::Fabric,
        )
        .unwrap();
        let endpoint = weft_tls::Endpoint::parse(address).unwrap();
        weft_peer::client::Conn {
            address: address.to_owned(),
            channel: weft_tls::grpc::channel(Some(client), endpoint)
                .await
                .unwrap(),
        }
    }

    pub async fn peer_conn(&self, i: usize, as_org: usize) -> weft_peer::client::Conn {
        let addr = self.peers[i].node.peer_address.to_string();
        FullNet::conn(&addr, &self.org(i).tls_ca_cert, &self.org(as_org).admin).await
    }

    pub async fn orderer_conn(&self, as_org: usize) -> weft_peer::client::Conn {
        let o = self.orderer.as_ref().unwrap();
        FullNet::conn(&o.address(), &o.tls_ca_file(), &self.org(as_org).admin).await
    }

    /// Install the same package on both peers (no definition: that is `_lifecycle`'s job).
    pub fn install(&self, package: &[u8]) -> String {
        let mut id = String::new();
        for p in &self.peers {
            let store = weft_peer::package::InstallStore::open(&p.fs_path).unwrap();
            id = store.install(package).unwrap().chaincode.package_id;
        }
        id
    }

    /// Approve `name` sequence 1 for each org (its admin, its peer), then commit it through
    /// both peers, as `peer lifecycle chaincode approveformyorg / commit` do.
    pub async fn define(&self, name: &str, package_id: &str) {
        use weft_proto::lifecycle::{
            chaincode_source, ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeSource,
            CommitChaincodeDefinitionArgs,
        };
        let policy = weft_proto::common::ApplicationPolicy {
            r#type: Some(
                weft_proto::common::application_policy::Type::ChannelConfigPolicyReference(
                    "/Channel/Application/Endorsement".into(),
                ),
            ),
        }
        .encode_to_vec();
        let wait = Some(Duration::from_secs(30));
        for i in 0..2 {
            let approve = ApproveChaincodeDefinitionForMyOrgArgs {
                sequence: 1,
                name: name.into(),
                version: "1.0".into(),
                endorsement_plugin: "escc".into(),
                validation_plugin: "vscc".into(),
                validation_parameter: policy.clone().into(),
                collections: Default::default(),
                init_required: false,
                source: Some(ChaincodeSource {
                    r#type: Some(chaincode_source::Type::LocalPackage(
                        chaincode_source::Local {
                            package_id: package_id.into(),
                        },
                    )),
                }),
            }
            .encode_to_vec();
            let signer = self.org(i).admin.signer().unwrap();
            let (_, block) = weft_peer::client::submit(
                &[self.peer_conn(i, i).await],
                &self.orderer_conn(i).await,
                &signer,
                weft_configtx::testing::CHANNEL,
                "_lifecycle",
                &[b"ApproveChaincodeDefinitionForMyOrg", &approve],
                wait,
            )
            .await
            .unwrap_or_else(|e| panic!("approve for org{}: {e}", i + 1));
            // Each approval was waited for on its org's peer only: the commit's endorsers
            // must both have seen both approvals, or they simulate different results.
            self.wait_height(block.unwrap_or_default() + 1).await;
        }
        let commit = CommitChaincodeDefinitionArgs {
            sequence: 1,
            name: name.into(),
            version: "1.0".into(),
            endorsement_plugin: "escc".into(),
            validation_plugin: "vscc".into(),
            validation_parameter: policy.into(),
            collections: Default::default(),
            init_required: false,
        }
        .encode_to_vec();
        let signer = self.org(0).admin.signer().unwrap();
        let peers = [self.peer_conn(0, 0).await, self.peer_conn(1, 0).await];
        weft_peer::client::submit(
            &peers,
            &self.orderer_conn(0).await,
            &signer,
            weft_configtx::testing::CHANNEL,
            "_lifecycle",
            &[b"CommitChaincodeDefinition", &commit],
            wait,
        )
        .await
        .unwrap_or_else(|e| panic!("commit {name}: {e}"));
        // The commit was waited for on org1's peer; org2's peer commits the same block on its
        // own schedule.
        for p in &self.peers {
            let ch = p
                .node
                .channels
                .get(weft_configtx::testing::CHANNEL)
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while ch.package_for(name).as_deref() != Some(package_id) {
                assert!(
                    Instant::now() < deadline,
                    "{name} is not defined on {} after 30 s",
                    p.node.peer_address
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Wait (at most 30 s) until every peer's ledger holds `height` blocks.
    pub async fn wait_height(&self, height: u64) {
        for p in &self.peers {
            let ch = p
                .node
                .channels
                .get(weft_configtx::testing::CHANNEL)
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while ch.blocks().height() < height {
                assert!(
                    Instant::now() < deadline,
                    "{} has {} blocks after 30 s, not {height}",
                    p.node.peer_address,
                    ch.blocks().height()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    pub async fn stop(mut self) {
        for p in self.peers.drain(..) {
            p.stop().await;
        }
        if let Some(o) = self.orderer.take() {
            o.shutdown().await;
        }
    }
}

pub fn first_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no file in {}", dir.display()))
}
