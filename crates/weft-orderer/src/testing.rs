//! A whole orderer in one process, for tests of every crate: the two-org test network of
//! `weft_configtx::testing`, an `orderer.yaml` with mutual TLS on both listeners, started
//! through [`OrdererNode::start`] (the same path as `weft orderer start`), and `mychannel`
//! joined through the channel participation API over HTTPS, as `osnadmin` would.
//!
//! ```no_run
//! # async fn f() -> Result<(), String> {
//! let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
//! let orderer = weft_orderer::testing::TestOrderer::start(dir.path()).await?;
//! let address = orderer.address();             // 127.0.0.1:<port>
//! let ca = orderer.tls_ca_file();              // the orderer org's TLS CA (PEM)
//! orderer.shutdown().await;
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use prost::Message;
use weft_configtx::testing::{two_org_network, TestNetwork};

use crate::admin_client::AdminClient;
use crate::config::OrdererConfig;
use crate::node::OrdererNode;

pub use weft_configtx::testing::CHANNEL;

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// A started orderer and the network around it (see the module documentation).
#[derive(Debug)]
pub struct TestOrderer {
    pub dir: PathBuf,
    pub network: TestNetwork,
    pub config_path: PathBuf,
    pub node: OrdererNode,
}

/// Write `orderer.yaml` for `network`'s orderer under `dir`, listening on `port`.
pub fn write_config(dir: &Path, network: &TestNetwork, port: u16) -> Result<PathBuf, String> {
    let node = &network.orderer_org.node;
    let tls_ca = network.orderer_org.tls_ca_cert.display().to_string();
    let yaml = format!(
        "General:\n  ListenAddress: 127.0.0.1\n  ListenPort: {port}\n  TLS:\n    Enabled: true\n    \
         PrivateKey: {key}\n    Certificate: {cert}\n    RootCAs: [{tls_ca}]\n    ClientAuthRequired: true\n  \
         LocalMSPDir: {msp}\n  LocalMSPID: {mspid}\n  BootstrapMethod: none\n\
         FileLedger:\n  Location: {ledger}\n\
         Consensus:\n  WALDir: {wal}\n\
         Admin:\n  ListenAddress: 127.0.0.1:0\n  TLS:\n    Enabled: true\n    PrivateKey: {key}\n    \
         Certificate: {cert}\n    ClientAuthRequired: true\n    ClientRootCAs: [{tls_ca}]\n\
         ChannelParticipation:\n  Enabled: true\n\
         Operations:\n  ListenAddress: 127.0.0.1:0\n",
        key = node.tls_key.display(),
        cert = node.tls_cert.display(),
        msp = node.msp_dir.display(),
        mspid = node.msp_id,
        ledger = dir.join("orderer/ledger").display(),
        wal = dir.join("orderer/wal").display(),
    );
    let path = dir.join("orderer.yaml");
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

impl TestOrderer {
    /// Generate the network under `dir` (empty or absent), start the orderer on a free port
    /// and join `mychannel`.
    pub async fn start(dir: &Path) -> Result<TestOrderer, String> {
        let port = free_port()?;
        let network = two_org_network(dir, port).map_err(|e| e.to_string())?;
        Self::start_for(dir, network, port).await
    }

    /// Start an orderer for a network made by the caller (its orderer endpoint's port is
    /// `port`), and join the network's channel.
    pub async fn start_for(
        dir: &Path,
        network: TestNetwork,
        port: u16,
    ) -> Result<TestOrderer, String> {
        let config_path = write_config(dir, &network, port)?;
        let cfg = OrdererConfig::load(Some(&config_path), |_| None).map_err(|e| e.to_string())?;
        let node = OrdererNode::start(&cfg).await.map_err(|e| e.to_string())?;
        let o = TestOrderer {
            dir: dir.to_owned(),
            network,
            config_path,
            node,
        };
        let r = o.admin()?.join(&o.network.genesis.encode_to_vec()).await?;
        if r.status != 201 {
            return Err(format!("join failed: {} {}", r.status, r.body));
        }
        Ok(o)
    }

    /// A channel participation client authenticated as the orderer org's Admin.
    pub fn admin(&self) -> Result<AdminClient, String> {
        let admin = &self.network.orderer_org.admin;
        let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
        let addr = self
            .node
            .admin_address
            .ok_or("the admin API is not enabled")?;
        AdminClient::new(
            &addr.to_string(),
            &read(&self.network.orderer_org.tls_ca_cert)?,
            &read(&admin.tls_cert)?,
            &read(&admin.tls_key)?,
        )
    }

    /// `127.0.0.1:<port>` of AtomicBroadcast.
    pub fn address(&self) -> String {
        self.node.address.to_string()
    }

    /// The orderer org's TLS CA certificate (PEM file): what clients trust.
    pub fn tls_ca_file(&self) -> PathBuf {
        self.network.orderer_org.tls_ca_cert.clone()
    }

    /// Stop and start again on the same port and directories (no new join).
    pub async fn restart(self) -> Result<TestOrderer, String> {
        let TestOrderer {
            dir,
            network,
            config_path,
            node,
        } = self;
        node.shutdown().await;
        let cfg = OrdererConfig::load(Some(&config_path), |_| None).map_err(|e| e.to_string())?;
        let mut last = String::new();
        // The port may take a moment to be free again.
        for _ in 0..50 {
            match OrdererNode::start(&cfg).await {
                Ok(node) => {
                    return Ok(TestOrderer {
                        dir,
                        network,
                        config_path,
                        node,
                    })
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Err(last)
    }

    pub async fn shutdown(self) {
        self.node.shutdown().await;
    }
}
