//! Everything `weft up` writes before starting a process: crypto material (cryptogen's
//! layout), `configtx.yaml` and the channel's genesis block, `orderer.yaml`, one `core.yaml`
//! per peer, the external builders the peers run, and the chaincode packages with the
//! certificates of the chaincode servers. The files are the ones a person would write to run
//! the same network by hand (README, "A network by hand"), so they can be read and reused.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use prost::Message as _;
use weft_crypto::ca::{CertificateAuthority, LeafProfile, LeafRequest, Subject};

use super::state::{
    ChaincodeEntry, ChaincodeMode, NetworkFile, OrdererEntry, PeerEntry, TlsMode, UserEntry, FORMAT,
};

/// `MaxMessageCount` of a `weft up` channel. With BatchTimeout 250 ms, 500 left most blocks to
/// the timer below ~2,000 tx/s, so a transaction waited ~250 ms for its block; 100 cuts blocks
/// by count from ~400 tx/s on (docs/PERFORMANCE.md has both measured).
pub const DEFAULT_MAX_MESSAGE_COUNT: u32 = 100;

/// `weft up --config FILE`: settings beyond the defaults. Unknown keys are refused.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpConfig {
    /// Channel name (default `mychannel`).
    pub channel: Option<String>,
    /// Orderer `BatchTimeout` (Go duration, default `250ms`).
    pub batch_timeout: Option<String>,
    /// Orderer `BatchSize.MaxMessageCount` (default [`DEFAULT_MAX_MESSAGE_COUNT`]).
    pub max_message_count: Option<u32>,
    /// Ports to use instead of the defaults (taken ones fall back to free ports; 0 means any
    /// free port).
    #[serde(default)]
    pub ports: PortsConfig,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortsConfig {
    pub orderer: Option<u16>,
    pub orderer_admin: Option<u16>,
    pub orderer_operations: Option<u16>,
    /// peer0.org1 and peer0.org2 listen ports; each peer's chaincode service is on the next
    /// port.
    pub peers: Option<[u16; 2]>,
    pub peer_operations: Option<[u16; 2]>,
    pub chaincode_servers: Option<[u16; 2]>,
}

impl UpConfig {
    pub fn load(path: &Path) -> Result<UpConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read --config {}: {e}", path.display()))?;
        let cfg: UpConfig = serde_norway::from_str(&text)
            .map_err(|e| format!("--config {}: {e}", path.display()))?;
        if let Some(t) = &cfg.batch_timeout {
            weft_configtx::units::parse_go_duration(t)
                .map_err(|e| format!("--config {}: batchTimeout: {e}", path.display()))?;
        }
        if cfg.max_message_count == Some(0) {
            return Err(format!(
                "--config {}: maxMessageCount must be at least 1",
                path.display()
            ));
        }
        Ok(cfg)
    }
}

/// The two peer orgs: (short name, MSP id).
pub const ORGS: [(&str, &str); 2] = [("org1", "Org1MSP"), ("org2", "Org2MSP")];
/// The chaincode launched by the peers, and the one run as chaincode servers.
pub const LAUNCHED: &str = "basic";
pub const SERVER: &str = "basic-ccaas";

/// A port the system picks as free now.
fn system_port() -> Result<u16, String> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?
        .port())
}

/// Ports already handed out in this run, so two defaults that fall back never collide.
#[derive(Debug, Default)]
struct PortPicker(HashSet<u16>);

impl PortPicker {
    /// `preferred` when it is free, else a port the system picks.
    fn pick(&mut self, preferred: u16) -> Result<u16, String> {
        if preferred != 0
            && !self.0.contains(&preferred)
            && std::net::TcpListener::bind(("127.0.0.1", preferred)).is_ok()
        {
            self.0.insert(preferred);
            return Ok(preferred);
        }
        for _ in 0..100 {
            let port = system_port()?;
            if self.0.insert(port) {
                return Ok(port);
            }
        }
        Err("cannot find a free port on 127.0.0.1".into())
    }

    /// Two consecutive free ports starting at `preferred` (a peer and its chaincode service).
    fn pick_pair(&mut self, preferred: u16) -> Result<u16, String> {
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        let mut candidate = preferred;
        for _ in 0..200 {
            if candidate != 0
                && candidate < u16::MAX
                && !self.0.contains(&candidate)
                && !self.0.contains(&(candidate + 1))
                && free(candidate)
                && free(candidate + 1)
            {
                self.0.insert(candidate);
                self.0.insert(candidate + 1);
                return Ok(candidate);
            }
            candidate = system_port()?;
        }
        Err("cannot find two consecutive free ports on 127.0.0.1".into())
    }
}

fn write(path: &Path, text: impl AsRef<[u8]>) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// A private key: readable by its owner only.
fn write_secret(path: &Path, text: impl AsRef<[u8]>) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    write(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

const CONFIGTX: &str = r#"# Written by `weft up`: the channel of this network, in configtxgen's format.
# `weft configtx genesis --profile TwoOrgsChannel --channelID CHANNEL --configPath .` builds
# the genesis block from it.
Organizations:
  - &OrdererOrg
    Name: OrdererOrg
    ID: OrdererMSP
    MSPDir: crypto/ordererOrganizations/example.com/msp
    Policies:
      Readers: { Type: Signature, Rule: "OR('OrdererMSP.member')" }
      Writers: { Type: Signature, Rule: "OR('OrdererMSP.member')" }
      Admins: { Type: Signature, Rule: "OR('OrdererMSP.admin')" }
    OrdererEndpoints: [ "ORDERER_ADDRESS" ]
  - &Org1
    Name: Org1MSP
    ID: Org1MSP
    MSPDir: crypto/peerOrganizations/org1.example.com/msp
    Policies:
      Readers: { Type: Signature, Rule: "OR('Org1MSP.admin', 'Org1MSP.peer', 'Org1MSP.client')" }
      Writers: { Type: Signature, Rule: "OR('Org1MSP.admin', 'Org1MSP.client')" }
      Admins: { Type: Signature, Rule: "OR('Org1MSP.admin')" }
      Endorsement: { Type: Signature, Rule: "OR('Org1MSP.peer')" }
    AnchorPeers: [ { Host: 127.0.0.1, Port: PEER1_PORT } ]
  - &Org2
    Name: Org2MSP
    ID: Org2MSP
    MSPDir: crypto/peerOrganizations/org2.example.com/msp
    Policies:
      Readers: { Type: Signature, Rule: "OR('Org2MSP.admin', 'Org2MSP.peer', 'Org2MSP.client')" }
      Writers: { Type: Signature, Rule: "OR('Org2MSP.admin', 'Org2MSP.client')" }
      Admins: { Type: Signature, Rule: "OR('Org2MSP.admin')" }
      Endorsement: { Type: Signature, Rule: "OR('Org2MSP.peer')" }
    AnchorPeers: [ { Host: 127.0.0.1, Port: PEER2_PORT } ]
Profiles:
  TwoOrgsChannel:
    Policies:
      Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
      Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
      Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
    Capabilities: { V2_0: true }
    Orderer:
      OrdererType: solo
      BatchTimeout: BATCH_TIMEOUT
      BatchSize: { MaxMessageCount: MAX_MESSAGES, AbsoluteMaxBytes: 10 MB, PreferredMaxBytes: 2 MB }
      Organizations: [ *OrdererOrg ]
      Policies:
        Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
        Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
        Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
        BlockValidation: { Type: ImplicitMeta, Rule: "ANY Writers" }
      Capabilities: { V2_0: true }
    Application:
      Organizations: [ *Org1, *Org2 ]
      Policies:
        Readers: { Type: ImplicitMeta, Rule: "ANY Readers" }
        Writers: { Type: ImplicitMeta, Rule: "ANY Writers" }
        Admins: { Type: ImplicitMeta, Rule: "MAJORITY Admins" }
        LifecycleEndorsement: { Type: ImplicitMeta, Rule: "MAJORITY Endorsement" }
        Endorsement: { Type: ImplicitMeta, Rule: "MAJORITY Endorsement" }
      Capabilities: { V2_0: true }
"#;

/// The builders shipped in the repository's `builders/`, written under the network directory
/// so the peers find them wherever this binary runs from.
const BUILDERS: &[(&str, &str, bool)] = &[
    (
        "binary/bin/build",
        include_str!("../../../../builders/binary/bin/build"),
        true,
    ),
    (
        "binary/bin/detect",
        include_str!("../../../../builders/binary/bin/detect"),
        true,
    ),
    (
        "binary/bin/release",
        include_str!("../../../../builders/binary/bin/release"),
        true,
    ),
    (
        "binary/bin/run",
        include_str!("../../../../builders/binary/bin/run"),
        true,
    ),
    (
        "binary/lib/json.awk",
        include_str!("../../../../builders/binary/lib/json.awk"),
        false,
    ),
    (
        "ccaas/bin/build",
        include_str!("../../../../builders/ccaas/bin/build"),
        true,
    ),
    (
        "ccaas/bin/detect",
        include_str!("../../../../builders/ccaas/bin/detect"),
        true,
    ),
    (
        "ccaas/bin/release",
        include_str!("../../../../builders/ccaas/bin/release"),
        true,
    ),
    (
        "ccaas/lib/json.awk",
        include_str!("../../../../builders/ccaas/lib/json.awk"),
        false,
    ),
];

fn write_builders(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    for (path, text, exec) in BUILDERS {
        let p = dir.join("builders").join(path);
        write(&p, text)?;
        let mode = if *exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of {}: {e}", p.display()))?;
    }
    Ok(())
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Create a new network's files under `dir` (which holds no `network.json`) and answer its
/// state (no processes yet).
pub fn create(dir: &Path, tls: TlsMode, cfg: &UpConfig) -> Result<NetworkFile, String> {
    let channel = cfg.channel.clone().unwrap_or_else(|| "mychannel".into());
    let mut ports = PortPicker::default();
    let p = &cfg.ports;
    let orderer_port = ports.pick(p.orderer.unwrap_or(7050))?;
    let admin_port = ports.pick(p.orderer_admin.unwrap_or(7053))?;
    let orderer_ops = ports.pick(p.orderer_operations.unwrap_or(9443))?;
    let peer_ports = [
        ports.pick_pair(p.peers.map_or(7051, |p| p[0]))?,
        ports.pick_pair(p.peers.map_or(9051, |p| p[1]))?,
    ];
    let peer_ops = [
        ports.pick(p.peer_operations.map_or(9444, |p| p[0]))?,
        ports.pick(p.peer_operations.map_or(9445, |p| p[1]))?,
    ];
    let cc_ports = [
        ports.pick(p.chaincode_servers.map_or(9999, |p| p[0]))?,
        ports.pick(p.chaincode_servers.map_or(9998, |p| p[1]))?,
    ];

    // Crypto material: cryptogen's sample network (an orderer org, two peer orgs with one
    // peer and one user each, NodeOUs, TLS SANs localhost and 127.0.0.1).
    let crypto = dir.join("crypto");
    let report = weft_msp::cryptogen::generate(
        &weft_msp::cryptogen::default_network_config(),
        &crypto,
        &weft_msp::cryptogen::GenerateOptions::default(),
    )
    .map_err(|e| {
        format!(
            "generating the crypto material in {}: {e}",
            crypto.display()
        )
    })?;
    let ord_org = report
        .orgs
        .iter()
        .find(|o| o.domain == "example.com")
        .ok_or("the crypto material has no orderer org example.com")?;
    let ord = ord_org
        .nodes
        .first()
        .ok_or("the orderer org has no orderer")?;
    let ord_admin = ord_org
        .users
        .first()
        .ok_or("the orderer org has no admin")?;

    // The channel.
    write(
        &dir.join("configtx.yaml"),
        CONFIGTX
            .replace("ORDERER_ADDRESS", &addr(orderer_port))
            .replace("PEER1_PORT", &peer_ports[0].to_string())
            .replace("PEER2_PORT", &peer_ports[1].to_string())
            .replace(
                "BATCH_TIMEOUT",
                cfg.batch_timeout.as_deref().unwrap_or("250ms"),
            )
            .replace(
                "MAX_MESSAGES",
                &cfg.max_message_count
                    .unwrap_or(DEFAULT_MAX_MESSAGE_COUNT)
                    .to_string(),
            ),
    )?;
    let file = weft_configtx::ConfigTxFile::from_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.join("configtx.yaml").display()))?;
    let profile = file
        .profile("TwoOrgsChannel")
        .map_err(|e| format!("{}: {e}", dir.join("configtx.yaml").display()))?;
    let block = weft_configtx::genesis_block(&channel, &profile)
        .map_err(|e| format!("building the genesis block of {channel}: {e}"))?;
    write(&dir.join(format!("{channel}.block")), block.encode_to_vec())?;
    write_builders(dir)?;

    // The orderer.
    let on = tls.enabled();
    let mutual = tls.mutual();
    let orderer_yaml = dir.join("orderer/orderer.yaml");
    write(
        &orderer_yaml,
        format!(
            "# Written by `weft up`. ORDERER_* variables override these keys.\n\
             General:\n  ListenAddress: 127.0.0.1\n  ListenPort: {orderer_port}\n  TLS:\n    \
             Enabled: {on}\n    PrivateKey: {key}\n    Certificate: {cert}\n    RootCAs: [{ca}]\n    \
             ClientAuthRequired: {mutual}\n  LocalMSPDir: {msp}\n  LocalMSPID: OrdererMSP\n  \
             BootstrapMethod: none\nFileLedger:\n  Location: {d}/orderer/ledger\n\
             Consensus:\n  WALDir: {d}/orderer/wal\n\
             Admin:\n  ListenAddress: 127.0.0.1:{admin_port}\n  TLS:\n    Enabled: true\n    \
             PrivateKey: {key}\n    Certificate: {cert}\n    ClientAuthRequired: true\n    \
             ClientRootCAs: [{ca}]\nChannelParticipation:\n  Enabled: true\n\
             Operations:\n  ListenAddress: 127.0.0.1:{orderer_ops}\n  TLS:\n    Enabled: {on}\n    \
             PrivateKey: {key}\n    Certificate: {cert}\n    RootCAs: [{ca}]\n    \
             ClientAuthRequired: false\n    ClientRootCAs: [{ca}]\n\
             Metrics:\n  Provider: prometheus\n",
            key = ord.tls_key.display(),
            cert = ord.tls_cert.display(),
            ca = ord.tls_ca_cert.display(),
            msp = ord.msp_dir.display(),
            d = dir.display(),
        ),
    )?;
    let orderer = OrdererEntry {
        name: ord.name.clone(),
        msp_id: "OrdererMSP".into(),
        address: addr(orderer_port),
        admin_address: addr(admin_port),
        operations_address: addr(orderer_ops),
        tls_ca: ord_org.tls_ca_cert.clone(),
        tls_cert: ord.tls_cert.clone(),
        tls_key: ord.tls_key.clone(),
        msp_dir: ord.msp_dir.clone(),
        admin_tls_cert: ord_admin.tls_cert.clone(),
        admin_tls_key: ord_admin.tls_key.clone(),
        config: orderer_yaml,
    };

    // The peers, and the users of their orgs.
    let mut peers = Vec::new();
    let mut users = Vec::new();
    for (i, (org, msp_id)) in ORGS.into_iter().enumerate() {
        let o = report
            .orgs
            .iter()
            .find(|o| o.domain == format!("{org}.example.com"))
            .ok_or_else(|| format!("the crypto material has no {org}.example.com"))?;
        let node = o
            .nodes
            .first()
            .ok_or_else(|| format!("{org} has no peer"))?;
        let (port, ops) = (peer_ports[i], peer_ops[i]);
        let fs_path = dir.join(format!("{}/data", node.name));
        let core = dir.join(format!("{}/core.yaml", node.name));
        write(
            &core,
            format!(
                "# Written by `weft up`. CORE_* variables override these keys.\n\
                 peer:\n  id: {name}\n  listenAddress: 127.0.0.1:{port}\n  address: 127.0.0.1:{port}\n  \
                 chaincodeListenAddress: 127.0.0.1:{cc}\n  chaincodeAddress: 127.0.0.1:{cc}\n  \
                 fileSystemPath: {fs}\n  mspConfigPath: {msp}\n  localMspId: {msp_id}\n  \
                 tls:\n    enabled: {on}\n    clientAuthRequired: {mutual}\n    \
                 cert: {{ file: {cert} }}\n    key: {{ file: {key} }}\n    rootcert: {{ file: {ca} }}\n    \
                 clientRootCAs: {{ files: [ {ca} ] }}\n\
                 chaincode:\n  externalBuilders:\n    - {{ name: binary, path: {b}/binary }}\n    \
                 - {{ name: ccaas, path: {b}/ccaas }}\n\
                 operations:\n  listenAddress: 127.0.0.1:{ops}\n  tls:\n    enabled: {on}\n    \
                 cert: {{ file: {cert} }}\n    key: {{ file: {key} }}\n    clientAuthRequired: false\n    \
                 clientRootCAs: {{ files: [ {ca} ] }}\n\
                 metrics:\n  provider: prometheus\n",
                name = node.name,
                cc = port + 1,
                fs = fs_path.display(),
                msp = node.msp_dir.display(),
                cert = node.tls_cert.display(),
                key = node.tls_key.display(),
                ca = node.tls_ca_cert.display(),
                b = dir.join("builders").display(),
            ),
        )?;
        peers.push(PeerEntry {
            name: node.name.clone(),
            msp_id: msp_id.into(),
            org: org.into(),
            address: addr(port),
            chaincode_address: addr(port + 1),
            operations_address: addr(ops),
            tls_ca: o.tls_ca_cert.clone(),
            tls_cert: node.tls_cert.clone(),
            tls_key: node.tls_key.clone(),
            fs_path,
            config: core,
        });
        for u in &o.users {
            users.push(UserEntry {
                msp_id: msp_id.into(),
                name: u.name.clone(),
                msp_dir: u.msp_dir.clone(),
                tls_cert: u.tls_cert.clone(),
                tls_key: u.tls_key.clone(),
            });
        }
    }
    let server_addresses: BTreeMap<String, String> = ORGS
        .iter()
        .zip(cc_ports)
        .map(|((_, msp), port)| ((*msp).to_owned(), addr(port)))
        .collect();
    Ok(NetworkFile {
        format: FORMAT,
        channel,
        tls,
        orderer,
        peers,
        users,
        chaincodes: vec![
            ChaincodeEntry {
                name: LAUNCHED.into(),
                mode: ChaincodeMode::Launched,
                package_ids: BTreeMap::new(),
                server_addresses: BTreeMap::new(),
            },
            ChaincodeEntry {
                name: SERVER.into(),
                mode: ChaincodeMode::Server,
                package_ids: BTreeMap::new(),
                server_addresses,
            },
        ],
        processes: Vec::new(),
    })
}

/// The chaincode package of the launched chaincode: the asset-transfer executable for the
/// binary builder. Answers the package file.
pub fn package_launched(dir: &Path, executable: &Path) -> Result<PathBuf, String> {
    let src = dir.join("chaincode/basic-src");
    let _ = std::fs::remove_dir_all(&src);
    std::fs::create_dir_all(&src).map_err(|e| format!("cannot create {}: {e}", src.display()))?;
    let exe = src.join("asset-transfer");
    if std::fs::hard_link(executable, &exe).is_err() {
        std::fs::copy(executable, &exe).map_err(|e| {
            format!(
                "cannot copy the chaincode executable {} to {}: {e}",
                executable.display(),
                exe.display()
            )
        })?;
    }
    let bytes = weft_peer::package::package_directory_with_path(
        &src,
        &format!("{LAUNCHED}_1.0"),
        "binary",
        "asset-transfer",
    )
    .map_err(|e| format!("packaging {}: {e}", executable.display()))?;
    let _ = std::fs::remove_dir_all(&src);
    let out = dir.join(format!("chaincode/{LAUNCHED}.tar.gz"));
    write(&out, bytes)?;
    Ok(out)
}

/// Material of one org's chaincode server: its TLS certificate (issued by the org's TLS CA
/// for 127.0.0.1), the client certificate its peer presents when dialing it, and the package
/// whose `connection.json` tells the peer how to dial and what to trust. Answers the package.
pub fn server_material(
    dir: &Path,
    net: &NetworkFile,
    peer: &PeerEntry,
    address: &str,
) -> Result<PathBuf, String> {
    let org_dir = dir.join(format!("crypto/peerOrganizations/{}.example.com", peer.org));
    let ca_cert = org_dir.join(format!("tlsca/tlsca.{}.example.com-cert.pem", peer.org));
    let ca_key = org_dir.join("tlsca/priv_sk");
    let ca = CertificateAuthority::from_pem(&read(&ca_cert)?, &read(&ca_key)?, "org TLS CA")
        .map_err(|e| format!("{}: {e}", ca_cert.display()))?;
    let out = dir.join(format!("chaincode/{SERVER}-{}", peer.org));
    let issue = |cn: String, profile| {
        ca.issue(&LeafRequest::new(Subject::cn(cn), profile).sans(["127.0.0.1", "localhost"]))
            .map_err(|e| format!("issuing a chaincode certificate: {e}"))
    };
    let server = issue(
        format!("{SERVER}.{}.example.com", peer.org),
        LeafProfile::TlsServer,
    )?;
    let client = issue(
        format!("{}-chaincode-client", peer.name),
        LeafProfile::TlsClient,
    )?;
    let (cert, key) = (out.join("server.crt"), out.join("server.key"));
    write(&cert, server.pem())?;
    write_secret(&key, server.key.to_pkcs8_pem())?;
    // The peer's client certificate is inside the package (connection.json); a copy here
    // lets `weft doctor tls` and the link table present it.
    write(&out.join("client.crt"), client.pem())?;
    write_secret(&out.join("client.key"), client.key.to_pkcs8_pem())?;
    let ca_pem = String::from_utf8_lossy(&read(&ca_cert)?).into_owned();
    let conn = serde_json::json!({
        "address": address,
        "dial_timeout": "10s",
        "tls_required": net.tls.enabled(),
        "client_auth_required": net.tls.mutual(),
        "client_key": if net.tls.mutual() { client.key.to_pkcs8_pem() } else { String::new() },
        "client_cert": if net.tls.mutual() { client.pem() } else { String::new() },
        "root_cert": if net.tls.enabled() { ca_pem } else { String::new() },
    });
    let src = out.join("src");
    write(
        &src.join("connection.json"),
        serde_json::to_vec_pretty(&conn).map_err(|e| e.to_string())?,
    )?;
    let bytes = weft_peer::package::package_directory_with_path(
        &src,
        &format!("{SERVER}_1.0"),
        "ccaas",
        SERVER,
    )
    .map_err(|e| format!("packaging {}: {e}", src.display()))?;
    let package = out.join(format!("{SERVER}.tar.gz"));
    write(&package, bytes)?;
    Ok(package)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_taken_port_falls_back_and_pairs_stay_consecutive() {
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = held.local_addr().unwrap().port();
        let mut p = PortPicker::default();
        let got = p.pick(taken).unwrap();
        assert_ne!(got, taken);
        let pair = p.pick_pair(taken).unwrap();
        assert!(pair != taken && pair + 1 != taken);
        assert!(!p.0.contains(&taken));
        // Never the same port twice in one run.
        let again = p.pick(got).unwrap();
        assert_ne!(again, got);
        // 0: any free port.
        assert_ne!(p.pick(0).unwrap(), 0);
        assert_ne!(p.pick_pair(0).unwrap(), 0);
    }

    #[test]
    fn a_config_file_with_a_typo_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("up.yaml");
        std::fs::write(&f, "channel: c1\nbatchTimeOut: 1s\n").unwrap();
        let e = UpConfig::load(&f).unwrap_err();
        assert!(e.contains("batchTimeOut"), "{e}");
        std::fs::write(&f, "batchTimeout: soon\n").unwrap();
        let e = UpConfig::load(&f).unwrap_err();
        assert!(e.contains("batchTimeout"), "{e}");
        std::fs::write(&f, "channel: c1\nports: { peers: [7151, 9151] }\n").unwrap();
        let c = UpConfig::load(&f).unwrap();
        assert_eq!(c.channel.as_deref(), Some("c1"));
        assert_eq!(c.ports.peers, Some([7151, 9151]));
    }
}
