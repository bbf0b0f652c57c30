//! Interoperability on a whole weft peer ([`TestPeer`]): the same asset contract written twice,
//! in Rust on weft-shim (this package's binary) and in JavaScript on Fabric's own
//! `fabric-contract-api`/`fabric-shim` 2.5.8 (`interop/node-chaincode`), each run both ways a
//! Fabric peer runs chaincode:
//!
//! - launched by the peer through an external builder (`builders/binary`, `builders/node`),
//!   dialing the peer's chaincode service with mutual TLS and a per-launch client certificate;
//! - as a chaincode server (`asset-transfer` in server mode, `fabric-chaincode-node server`)
//!   with a TLS server certificate and a client CA, dialed by the peer from `connection.json`
//!   with `client_auth_required`.
//!
//! Proposals go to the endorser; every successful response's signature is verified against
//! the org's MSP, its proposal hash checked, and its read/write set decoded. The last tests
//! compare what the two contracts answer for the same state and arguments (and pin the
//! differences), and check that a Node chaincode server requiring client certificates refuses
//! a peer that has none, or one from another CA.
//!
//! The Node tests need `node` and `npm` (Node 18 or later); `interop/node-chaincode`'s
//! dependencies are installed with `npm ci` once if `node_modules` is missing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use weft_crypto::{CertificateAuthority, LeafProfile};
use weft_msp::msp::{Msp, MspManager};
use weft_peer::node::PeerNode;
use weft_peer::testing::{TestPeer, TestPeerOptions};
use weft_proto::kvrwset::KvrwSet;
use weft_proto::protos::{ChaincodeAction, ProposalResponse, ProposalResponsePayload};
use weft_proto::rwset::TxReadWriteSet;

#[path = "support/network.rs"]
mod network;
use network::{first_file, FullNet};

// ---------------------------------------------------------------------------------------------
// The network
// ---------------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A peer in this process, in a temporary directory, and the channel's MSP to verify its
/// endorsements with.
struct Net {
    tmp: tempfile::TempDir,
    peer: Option<TestPeer>,
    msps: MspManager,
}

impl Net {
    async fn start() -> Net {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = TestPeerOptions::with_shipped_builders(&repo());
        // Room for a loaded 2-core machine; a Node transaction takes milliseconds.
        opts.execute_timeout = "15s".into();
        let peer = TestPeer::start(&tmp.path().join("net"), &opts)
            .await
            .unwrap();
        let msp = Msp::from_dir(&peer.org("org1").join("msp"), "Org1MSP").unwrap();
        Net {
            tmp,
            peer: Some(peer),
            msps: MspManager::new([msp]),
        }
    }

    fn peer(&self) -> &TestPeer {
        self.peer.as_ref().unwrap()
    }

    fn node(&self) -> &PeerNode {
        &self.peer().node
    }

    /// A scratch directory of the test (outside the peer's file system).
    fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Endorse `args` on chaincode `cc` as org1's User1. A successful response is checked:
    /// the endorsement verifies against Org1MSP, is the peer's own, and is over a payload
    /// that carries this proposal's hash.
    async fn invoke(&self, cc: &str, args: &[&str]) -> ProposalResponse {
        let user = self.peer().user("org1").unwrap();
        let (sp, _txid) = self.peer().proposal(&user, cc, args).unwrap();
        let resp = self.node().endorser.process(&sp).await;
        if status(&resp).0 == 200 {
            self.verify_endorsement(&resp);
            let hash = weft_peer::endorser::unpack(&sp).unwrap().proposal_hash;
            let prp = ProposalResponsePayload::decode(resp.payload.clone()).unwrap();
            assert_eq!(prp.proposal_hash.as_ref(), hash.as_slice());
            assert_eq!(action(&resp).chaincode_id.unwrap().name, cc);
        }
        resp
    }

    /// The endorsement is the peer's signature over `payload || endorser`, by an identity
    /// Org1MSP validates; a changed payload does not verify.
    fn verify_endorsement(&self, resp: &ProposalResponse) {
        let e = resp
            .endorsement
            .as_ref()
            .expect("a successful response is endorsed");
        assert_eq!(
            e.endorser.as_ref(),
            self.node().identity.serialize().as_slice(),
            "the endorser is the peer's identity"
        );
        let signed = [resp.payload.as_ref(), e.endorser.as_ref()].concat();
        let who = self
            .msps
            .verify_signature(&e.endorser, &signed, &e.signature)
            .unwrap_or_else(|err| panic!("endorsement signature does not verify: {err}"));
        assert_eq!(who.msp_id, "Org1MSP");
        let mut tampered = signed;
        tampered[0] ^= 1;
        assert!(self
            .msps
            .verify_signature(&e.endorser, &tampered, &e.signature)
            .is_err());
    }

    async fn seed(&self, ns: &str, entries: &[(&str, &str)]) {
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.peer().seed(ns, &entries, 1).await.unwrap();
    }

    /// Registrations on the chaincode service admitted with a launch certificate, after
    /// checking that none was refused.
    fn admitted(&self) -> u64 {
        let (refused, admitted) = self.node().authority.counters();
        let refused: Vec<_> = refused.into_iter().filter(|(_, n)| *n > 0).collect();
        assert!(refused.is_empty(), "refused registrations: {refused:?}");
        admitted
    }

    async fn stop(mut self) {
        if let Some(peer) = self.peer.take() {
            peer.stop().await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

fn action(resp: &ProposalResponse) -> ChaincodeAction {
    let prp = ProposalResponsePayload::decode(resp.payload.clone()).unwrap();
    ChaincodeAction::decode(prp.extension).unwrap()
}

fn kv_rwset(resp: &ProposalResponse, ns: &str) -> KvrwSet {
    let rw = TxReadWriteSet::decode(action(resp).results).unwrap();
    let ns = rw
        .ns_rwset
        .iter()
        .find(|n| n.namespace == ns)
        .unwrap_or_else(|| panic!("no namespace {ns} in {rw:?}"));
    KvrwSet::decode(ns.rwset.clone()).unwrap()
}

/// (status, message, payload as text).
fn status(resp: &ProposalResponse) -> (i32, String, String) {
    let r = resp.response.clone().unwrap_or_default();
    (
        r.status,
        r.message,
        String::from_utf8_lossy(&r.payload).into_owned(),
    )
}

/// The payload of a successful, endorsed response.
fn ok(resp: &ProposalResponse, what: &str) -> String {
    let (code, msg, payload) = status(resp);
    assert_eq!(code, 200, "{what}: {msg}");
    assert!(resp.endorsement.is_some(), "{what}: not endorsed");
    payload
}

/// The message of a failed response, which is not endorsed.
fn failed(resp: &ProposalResponse, what: &str) -> String {
    let (code, msg, payload) = status(resp);
    assert_eq!(
        code, 500,
        "{what}: expected a failure, got payload {payload:?}"
    );
    assert!(
        resp.endorsement.is_none() && resp.payload.is_empty(),
        "{what}: endorsed a failure"
    );
    msg
}

/// The writes of a response in namespace `ns`: (key, is_delete, value as text).
fn writes(resp: &ProposalResponse, ns: &str) -> Vec<(String, bool, String)> {
    kv_rwset(resp, ns)
        .writes
        .iter()
        .map(|w| {
            (
                w.key.clone(),
                w.is_delete,
                String::from_utf8(w.value.to_vec()).unwrap(),
            )
        })
        .collect()
}

/// The reads of a response in namespace `ns`: (key, committed version if any).
fn reads(resp: &ProposalResponse, ns: &str) -> Vec<(String, Option<(u64, u64)>)> {
    kv_rwset(resp, ns)
        .reads
        .iter()
        .map(|r| (r.key.clone(), r.version.map(|v| (v.block_num, v.tx_num))))
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

// ---------------------------------------------------------------------------------------------
// The contract, exercised the same way whatever runs it
// ---------------------------------------------------------------------------------------------

/// An asset as the sample stores it: keys sorted, no spaces.
fn asset_json(id: &str, color: &str, size: i64, owner: &str, value: i64) -> String {
    format!(
        r#"{{"AppraisedValue":{value},"Color":"{color}","ID":"{id}","Owner":"{owner}","Size":{size}}}"#
    )
}

fn asset_value(id: &str, color: &str, size: i64, owner: &str, value: i64) -> Value {
    json!({"AppraisedValue": value, "Color": color, "ID": id, "Owner": owner, "Size": size})
}

const SAMPLE: [(&str, &str, i64, &str, i64); 6] = [
    ("asset1", "blue", 5, "Tomoko", 300),
    ("asset2", "red", 5, "Brad", 400),
    ("asset3", "green", 10, "Jin Soo", 500),
    ("asset4", "yellow", 10, "Max", 600),
    ("asset5", "black", 15, "Adriana", 700),
    ("asset6", "white", 15, "Michel", 800),
];

/// Stored with its keys in declaration order, not sorted, as a client or another chaincode
/// might have written it.
const UNSORTED: &str =
    r#"{"ID":"asset9","Color":"red","Size":3,"Owner":"Ana","AppraisedValue":90}"#;

/// What a contract answered, for comparing the two implementations.
#[derive(Debug)]
struct Observed {
    init_writes: Vec<(String, bool, String)>,
    read_sorted: String,
    read_unsorted: String,
    all: String,
    exists: (String, String),
    create_payload: String,
    create_writes: Vec<(String, bool, String)>,
    update_writes: Vec<(String, bool, String)>,
    transfer_payload: String,
    transfer_writes: Vec<(String, bool, String)>,
    delete_writes: Vec<(String, bool, String)>,
    errors: Vec<String>,
}

/// Run every transaction of the asset contract defined as `cc` and check what any correct
/// implementation answers: payloads as JSON values, write sets key by key.
async fn exercise(net: &Net, cc: &str) -> Observed {
    net.seed(
        cc,
        &[
            ("asset1", &asset_json("asset1", "blue", 5, "Tomoko", 300)),
            ("asset2", &asset_json("asset2", "red", 5, "Brad", 400)),
            ("asset9", UNSORTED),
        ],
    )
    .await;

    // InitLedger writes the six sample assets (endorsement only: state stays as seeded).
    let resp = net.invoke(cc, &["InitLedger"]).await;
    ok(&resp, "InitLedger");
    let init_writes = writes(&resp, cc);
    assert_eq!(init_writes.len(), 6, "{init_writes:?}");
    for ((key, del, value), (id, color, size, owner, v)) in init_writes.iter().zip(SAMPLE) {
        assert_eq!((key.as_str(), *del), (id, false));
        assert_eq!(parse(value), asset_value(id, color, size, owner, v));
    }

    // Reads of committed state, with the versions the seed gave them.
    let resp = net.invoke(cc, &["ReadAsset", "asset1"]).await;
    let read_sorted = ok(&resp, "ReadAsset asset1");
    assert_eq!(
        parse(&read_sorted),
        asset_value("asset1", "blue", 5, "Tomoko", 300)
    );
    assert_eq!(reads(&resp, cc), [("asset1".to_owned(), Some((1, 0)))]);
    assert!(writes(&resp, cc).is_empty());

    let resp = net.invoke(cc, &["ReadAsset", "asset9"]).await;
    let read_unsorted = ok(&resp, "ReadAsset asset9");
    assert_eq!(parse(&read_unsorted), parse(UNSORTED));

    let resp = net.invoke(cc, &["GetAllAssets"]).await;
    let all = ok(&resp, "GetAllAssets");
    assert_eq!(
        parse(&all),
        json!([
            asset_value("asset1", "blue", 5, "Tomoko", 300),
            asset_value("asset2", "red", 5, "Brad", 400),
            parse(UNSORTED),
        ])
    );
    let rq = &kv_rwset(&resp, cc).range_queries_info;
    assert_eq!(rq.len(), 1, "one range query recorded");
    assert!(rq[0].itr_exhausted);

    let yes = ok(
        &net.invoke(cc, &["AssetExists", "asset2"]).await,
        "AssetExists",
    );
    let no = ok(
        &net.invoke(cc, &["AssetExists", "asset7"]).await,
        "AssetExists",
    );
    assert_eq!((parse(&yes), parse(&no)), (json!(true), json!(false)));

    // Writes: each transaction's write set carries the asset as JSON.
    let resp = net
        .invoke(
            cc,
            &["CreateAsset", "asset7", "purple", "20", "Ana", "1000"],
        )
        .await;
    let create_payload = ok(&resp, "CreateAsset");
    let create_writes = writes(&resp, cc);
    assert_eq!(create_writes.len(), 1, "{create_writes:?}");
    assert_eq!(
        (create_writes[0].0.as_str(), create_writes[0].1),
        ("asset7", false)
    );
    assert_eq!(
        parse(&create_writes[0].2),
        asset_value("asset7", "purple", 20, "Ana", 1000)
    );
    assert_eq!(reads(&resp, cc), [("asset7".to_owned(), None)]);

    let resp = net
        .invoke(cc, &["UpdateAsset", "asset1", "blue", "6", "Tomoko", "350"])
        .await;
    ok(&resp, "UpdateAsset");
    let update_writes = writes(&resp, cc);
    assert_eq!(update_writes.len(), 1);
    assert_eq!(
        parse(&update_writes[0].2),
        asset_value("asset1", "blue", 6, "Tomoko", 350)
    );

    let resp = net.invoke(cc, &["TransferAsset", "asset2", "Max"]).await;
    let transfer_payload = ok(&resp, "TransferAsset");
    let transfer_writes = writes(&resp, cc);
    assert_eq!(transfer_writes.len(), 1);
    assert_eq!(
        parse(&transfer_writes[0].2),
        asset_value("asset2", "red", 5, "Max", 400)
    );

    let resp = net.invoke(cc, &["DeleteAsset", "asset9"]).await;
    ok(&resp, "DeleteAsset");
    let delete_writes = writes(&resp, cc);
    assert_eq!(
        delete_writes,
        [("asset9".to_owned(), true, String::new())],
        "a delete"
    );

    // Failures are not endorsed and say why, in the sample's words.
    let mut errors = Vec::new();
    for (args, expect) in [
        (
            &["CreateAsset", "asset1", "blue", "5", "Tomoko", "300"][..],
            "the asset asset1 already exists",
        ),
        (
            &["ReadAsset", "asset7"][..],
            "the asset asset7 does not exist",
        ),
        (
            &["UpdateAsset", "asset7", "blue", "5", "X", "1"][..],
            "the asset asset7 does not exist",
        ),
        (
            &["DeleteAsset", "asset7"][..],
            "the asset asset7 does not exist",
        ),
    ] {
        let msg = failed(&net.invoke(cc, args).await, args[0]);
        assert!(msg.contains(expect), "{args:?}: {msg}");
        errors.push(msg);
    }

    Observed {
        init_writes,
        read_sorted,
        read_unsorted,
        all,
        exists: (yes, no),
        create_payload,
        create_writes,
        update_writes,
        transfer_payload,
        transfer_writes,
        delete_writes,
        errors,
    }
}

// ---------------------------------------------------------------------------------------------
// TLS material and processes
// ---------------------------------------------------------------------------------------------

fn ca(name: &str) -> CertificateAuthority {
    weft_peer::testing::test_ca(name).unwrap()
}

/// (certificate PEM, PKCS#8 key PEM).
fn leaf(
    ca: &CertificateAuthority,
    cn: &str,
    sans: &[&str],
    profile: LeafProfile,
) -> (String, String) {
    weft_peer::testing::test_leaf(ca, cn, sans, profile).unwrap()
}

/// TLS material for a chaincode server on 127.0.0.1 that requires client certificates:
/// files for the server, and the PEM the peer's connection.json carries.
struct ServerTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    client_ca_file: PathBuf,
    /// CA of the server certificate: connection.json's root_cert.
    root_pem: String,
    /// A client certificate from the client CA, and its key.
    client_cert: String,
    client_key: String,
}

fn server_tls(dir: &Path) -> ServerTls {
    let server_ca = ca("chaincode server CA");
    let (cert, key) = leaf(
        &server_ca,
        "chaincode",
        &["127.0.0.1", "localhost"],
        LeafProfile::TlsServer,
    );
    let client_ca = ca("peer client CA");
    let (client_cert, client_key) = leaf(&client_ca, "peer0", &[], LeafProfile::TlsClient);
    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    ServerTls {
        cert_file: write("server.crt", &cert),
        key_file: write("server.key", &key),
        client_ca_file: write("client-ca.crt", &client_ca.certificate_pem()),
        root_pem: server_ca.certificate_pem(),
        client_cert,
        client_key,
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// connection.json for a server on `port` that requires a client certificate.
fn connection(port: u16, tls: &ServerTls, with_client_cert: bool) -> Value {
    let mut conn = json!({
        "address": format!("127.0.0.1:{port}"),
        "dial_timeout": "5s",
        "tls_required": true,
        "client_auth_required": with_client_cert,
        "root_cert": tls.root_pem,
    });
    if with_client_cert {
        conn["client_cert"] = json!(tls.client_cert);
        conn["client_key"] = json!(tls.client_key);
    }
    conn
}

/// A chaincode server process, killed when dropped; its output goes to `log`.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(mut cmd: Command, log: PathBuf) -> Server {
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Server { child, log }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (at most 30 s) until the server accepts TCP connections on `port`.
    async fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "the chaincode server exited ({st}) before listening:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the chaincode server is not listening on 127.0.0.1:{port} after 30 s:\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// `asset-transfer` as a chaincode server on `port` with mutual TLS, registering as `id`.
fn rust_server(port: u16, id: &str, tls: &ServerTls, log: PathBuf) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asset-transfer"));
    cmd.env("CHAINCODE_SERVER_ADDRESS", format!("127.0.0.1:{port}"))
        .env("CHAINCODE_ID", id)
        .env("CHAINCODE_TLS_CERT", &tls.cert_file)
        .env("CHAINCODE_TLS_KEY", &tls.key_file)
        .env("CHAINCODE_CLIENT_CA_CERT", &tls.client_ca_file)
        .env_remove("CHAINCODE_TLS_DISABLED")
        .env_remove("CORE_CHAINCODE_LOGGING_LEVEL")
        .env("RUST_LOG", "info");
    Server::spawn(cmd, log)
}

/// `fabric-chaincode-node server` serving interop/node-chaincode on `port` with TLS and a
/// client CA, registering as `id`.
fn node_server(port: u16, id: &str, tls: &ServerTls, log: PathBuf) -> Server {
    let dir = node_chaincode();
    let mut cmd = Command::new(dir.join("node_modules/.bin/fabric-chaincode-node"));
    cmd.arg("server")
        .arg("--chaincode-address")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--chaincode-id")
        .arg(id)
        .arg("--chaincode-tls-cert-file")
        .arg(&tls.cert_file)
        .arg("--chaincode-tls-key-file")
        .arg(&tls.key_file)
        .arg("--chaincode-tls-client-cacert-file")
        .arg(&tls.client_ca_file)
        .current_dir(&dir);
    // fabric-chaincode-node also reads its options from CORE_* variables; none may leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("CORE_") {
            cmd.env_remove(k);
        }
    }
    Server::spawn(cmd, log)
}

/// interop/node-chaincode with its dependencies installed (`npm ci`, once, if missing).
fn node_chaincode() -> PathBuf {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY
        .get_or_init(|| {
            let dir = repo().join("interop/node-chaincode");
            match std::process::Command::new("node").arg("--version").output() {
                Ok(o) if o.status.success() => {}
                other => panic!(
                    "the Node interop tests need node (18 or later) in PATH: {other:?}; install \
                     Node.js and npm"
                ),
            }
            if !dir.join("node_modules/.bin/fabric-chaincode-node").exists() {
                let st = std::process::Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&dir)
                    .status()
                    .unwrap_or_else(|e| {
                        panic!(
                            "the Node interop tests need npm to install {}'s dependencies \
                             (npm ci): cannot run npm: {e}",
                            dir.display()
                        )
                    });
                assert!(
                    st.success(),
                    "npm ci in {} failed ({st}); run it by hand to see why (it needs the npm \
                     registry or a filled npm cache)",
                    dir.display()
                );
            }
            dir
        })
        .clone()
}

/// A copy of the Node contract's sources, without node_modules: what a node package holds.
fn node_sources(dest: &Path) {
    let src = node_chaincode();
    std::fs::create_dir_all(dest.join("lib")).unwrap();
    for f in [
        "package.json",
        "package-lock.json",
        "index.js",
        "lib/assetTransfer.js",
    ] {
        std::fs::copy(src.join(f), dest.join(f)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// The four ways to run a contract
// ---------------------------------------------------------------------------------------------

/// Package the asset-transfer binary with the binary builder, install it as `cc`, and build.
async fn install_rust_launched(net: &Net, cc: &str) -> String {
    let src = net.scratch(&format!("src-{cc}"));
    // The binary builder takes the only file of the package as the executable.
    std::fs::copy(
        env!("CARGO_BIN_EXE_asset-transfer"),
        src.join("asset-transfer"),
    )
    .unwrap();
    let id = net
        .peer()
        .install_dir(&src, &format!("{cc}_1"), "binary", cc)
        .unwrap();
    let report = net.node().runtime.deploy(&id).await.unwrap();
    assert_eq!(report.builder, "binary");
    assert_eq!(report.server, None);
    id
}

/// Package interop/node-chaincode as type node, install it as `cc`, and build it (npm ci).
async fn install_node_launched(net: &Net, cc: &str) -> String {
    let src = net.scratch(&format!("src-{cc}"));
    node_sources(&src);
    let id = net
        .peer()
        .install_dir(&src, &format!("{cc}_1"), "node", cc)
        .unwrap();
    let report = net.node().runtime.deploy(&id).await.unwrap();
    assert_eq!(report.builder, "node");
    assert_eq!(report.server, None);
    id
}

#[derive(Clone, Copy, Debug)]
enum Lang {
    Rust,
    Node,
}

/// Install a ccaas package for `cc` with mutual TLS and start its server: (package id, server).
async fn ccaas(net: &Net, cc: &str, lang: Lang) -> (String, Server) {
    let dir = net.scratch(&format!("server-{cc}"));
    let tls = server_tls(&dir);
    // The package id depends on connection.json, which holds the address: pick the port
    // first, install, then start the server as that package.
    let port = free_port();
    let id = net
        .peer()
        .install_ccaas(&format!("{cc}_1"), cc, &connection(port, &tls, true))
        .unwrap();
    let log = dir.join("server.log");
    let mut server = match lang {
        Lang::Rust => rust_server(port, &id, &tls, log),
        Lang::Node => node_server(port, &id, &tls, log),
    };
    server.wait_listening(port).await;
    let report = net.node().runtime.deploy(&id).await.unwrap();
    assert_eq!(report.builder, "ccaas");
    assert_eq!(report.server, Some((format!("127.0.0.1:{port}"), true)));
    (id, server)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_launched() {
    let t = Instant::now();
    let net = Net::start().await;
    install_rust_launched(&net, "assetrs").await;
    assert_eq!(net.admitted(), 0);
    let seen = exercise(&net, "assetrs").await;
    // One launch, one per-launch certificate, consumed by the one registration.
    assert_eq!(net.admitted(), 1);
    // The Rust contract returns nothing for CreateAsset.
    assert_eq!(seen.create_payload, "");
    net.stop().await;
    eprintln!("rust_launched: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_ccaas() {
    let t = Instant::now();
    let net = Net::start().await;
    let (_id, server) = ccaas(&net, "assetrs", Lang::Rust).await;
    let seen = exercise(&net, "assetrs").await;
    assert_eq!(seen.create_payload, "");
    // The peer dialed the server: no launch certificate was issued or used.
    assert_eq!(net.admitted(), 0);
    net.stop().await;
    server.stop().await;
    eprintln!("rust_ccaas: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_launched() {
    let t = Instant::now();
    let net = Net::start().await;
    install_node_launched(&net, "assetjs").await;
    eprintln!("node_launched: built in {:?}", t.elapsed());
    assert_eq!(net.admitted(), 0);
    let seen = exercise(&net, "assetjs").await;
    assert_eq!(net.admitted(), 1);
    assert_eq!(parse(&seen.create_payload), parse(&seen.create_writes[0].2));
    net.stop().await;
    eprintln!("node_launched: {:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ccaas() {
    let t = Instant::now();
    let net = Net::start().await;
    let (_id, server) = ccaas(&net, "assetjs", Lang::Node).await;
    let seen = exercise(&net, "assetjs").await;
    assert_eq!(parse(&seen.create_payload), parse(&seen.create_writes[0].2));
    assert_eq!(net.admitted(), 0);
    net.stop().await;
    server.stop().await;
    eprintln!("node_ccaas: {:?}", t.elapsed());
}

/// The same state, the same arguments: what the Rust and the Node contract answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_and_node_contracts_compared() {
    let net = Net::start().await;
    let (_a, rust) = ccaas(&net, "assetrs", Lang::Rust).await;
    let (_b, node) = ccaas(&net, "assetjs", Lang::Node).await;
    let r = exercise(&net, "assetrs").await;
    let n = exercise(&net, "assetjs").await;

    // Equal byte for byte: every write set (both contracts store sorted keys without
    // spaces, so endorsements from peers running either one match), the error messages,
    // AssetExists, TransferAsset's previous owner, and a stored asset in the sample's form.
    assert_eq!(r.init_writes, n.init_writes);
    assert_eq!(r.create_writes, n.create_writes);
    assert_eq!(r.update_writes, n.update_writes);
    assert_eq!(r.transfer_writes, n.transfer_writes);
    assert_eq!(r.delete_writes, n.delete_writes);
    assert_eq!(r.errors, n.errors);
    assert_eq!(r.exists, n.exists);
    assert_eq!(r.transfer_payload, n.transfer_payload);
    assert_eq!(r.transfer_payload, "Brad");
    assert_eq!(r.read_sorted, n.read_sorted);
    assert!(r.all.contains(&r.read_sorted) && n.all.contains(&n.read_sorted));

    // Difference 1: a value stored in another form than the contract writes (keys not
    // sorted). The Rust contract decodes it and answers it re-encoded (sorted keys); the Node
    // contract answers ReadAsset with the stored bytes and GetAllAssets with JSON.parse +
    // JSON.stringify, which keeps the stored key order. Same values, different bytes.
    assert_eq!(parse(&r.read_unsorted), parse(&n.read_unsorted));
    assert_eq!(r.read_unsorted, asset_json("asset9", "red", 3, "Ana", 90));
    assert_eq!(n.read_unsorted, UNSORTED);
    assert_eq!(parse(&r.all), parse(&n.all));
    assert!(r
        .all
        .ends_with(&format!("{}]", asset_json("asset9", "red", 3, "Ana", 90))));
    assert!(n.all.ends_with(&format!("{UNSORTED}]")), "{}", n.all);

    // Difference 2: CreateAsset answers nothing in Rust (as the Go sample) and the asset's
    // JSON in the Node contract.
    assert_eq!(r.create_payload, "");
    assert_eq!(n.create_payload, n.create_writes[0].2);

    // Difference 3: the contract names, for qualified calls: SmartContract (Rust, as the Go
    // sample) and AssetTransfer (Node).
    for (cc, own, other) in [
        ("assetrs", "SmartContract", "AssetTransfer"),
        ("assetjs", "AssetTransfer", "SmartContract"),
    ] {
        let resp = net
            .invoke(cc, &[&format!("{own}:AssetExists"), "asset1"])
            .await;
        assert_eq!(ok(&resp, own), "true");
        let resp = net
            .invoke(cc, &[&format!("{other}:AssetExists"), "asset1"])
            .await;
        let msg = failed(&resp, other);
        let expect = match cc {
            "assetrs" => "contract SmartContract has no transaction function",
            _ => "Contract name is not known: SmartContract",
        };
        assert!(msg.contains(expect), "{cc}: {msg}");
    }

    // Difference 4: arguments that are not numbers are refused by both, in their own words.
    let bad = ["CreateAsset", "asset8", "red", "big", "Ana", "1"];
    let rmsg = failed(
        &net.invoke("assetrs", &bad).await,
        "Rust, size not a number",
    );
    let nmsg = failed(
        &net.invoke("assetjs", &bad).await,
        "Node, size not a number",
    );
    assert!(
        rmsg.contains(r#"argument 3 "big" is not a valid i64"#),
        "{rmsg}"
    );
    assert!(
        nmsg.contains(r#"size must be a number, got "big""#),
        "{nmsg}"
    );

    net.stop().await;
    rust.stop().await;
    node.stop().await;
}

/// A Node chaincode server started with a client CA refuses a peer whose connection.json
/// gives no client certificate, and the proposal's error says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_server_requires_a_client_certificate() {
    let net = Net::start().await;
    let dir = net.scratch("server-noclient");
    let tls = server_tls(&dir);
    let port = free_port();
    let id = net
        .peer()
        .install_ccaas("noclient_1", "noclient", &connection(port, &tls, false))
        .unwrap();
    let mut server = node_server(port, &id, &tls, dir.join("server.log"));
    server.wait_listening(port).await;
    let msg = failed(
        &net.invoke("noclient", &["ReadAsset", "asset1"]).await,
        "no client certificate",
    );
    assert!(
        msg.contains("requires a client certificate") && msg.contains("client_cert/client_key"),
        "{msg}\nserver output:\n{}",
        server.output()
    );

    // A client certificate from a CA the server does not trust is refused too.
    let port = free_port();
    let stranger = ca("some other CA");
    let (cert, key) = leaf(&stranger, "peer0", &[], LeafProfile::TlsClient);
    let mut conn = connection(port, &tls, true);
    conn["client_cert"] = json!(cert);
    conn["client_key"] = json!(key);
    let id = net
        .peer()
        .install_ccaas("wrongclient_1", "wrongclient", &conn)
        .unwrap();
    let mut other = node_server(port, &id, &tls, dir.join("server2.log"));
    other.wait_listening(port).await;
    let msg = failed(
        &net.invoke("wrongclient", &["ReadAsset", "asset1"]).await,
        "client certificate from another CA",
    );
    // Node's TLS server drops such a connection without an alert; the peer knows it sent a
    // certificate the server asked for, and says the server most likely does not trust it.
    assert!(
        msg.contains(&format!("TLS to 127.0.0.1:{port} failed"))
            && msg.contains("does not trust that certificate's CA")
            && msg.contains("client_cert"),
        "{msg}\nserver output:\n{}",
        other.output()
    );
    net.stop().await;
    server.stop().await;
    other.stop().await;
}

// ---------------------------------------------------------------------------------------------
// A whole network: orderer, two orgs' peers, _lifecycle, and Fabric's Gateway SDK
// ---------------------------------------------------------------------------------------------

/// Run `interop/gateway-client/app.js <scenario>` (Fabric's `@hyperledger/fabric-gateway`
/// on grpc-js) against org1's peer as org1's User1, with or without a TLS client certificate.
async fn gateway_app(net: &FullNet, scenario: &str, chaincode: &str, asset: &str) -> Value {
    let app = repo().join("interop/gateway-client");
    assert!(
        app.join("node_modules/@hyperledger/fabric-gateway")
            .is_dir(),
        "interop/gateway-client needs its npm packages: run `npm ci` there (scripts/test does)"
    );
    let user = &net.org(0).user;
    let cfg = json!({
        "endpoint": net.peers[0].node.peer_address.to_string(),
        "serverName": "localhost",
        "tlsRootCert": net.org(0).tls_ca_cert,
        "clientCert": user.tls_cert,
        "clientKey": user.tls_key,
        "mspId": "Org1MSP",
        "identityCert": first_file(&user.msp_dir.join("signcerts")),
        "identityKey": first_file(&user.msp_dir.join("keystore")),
        "channel": "mychannel",
        "chaincode": chaincode,
        "assetId": asset,
    });
    let cfg_path = net
        ._tmp
        .path()
        .join(format!("client-{chaincode}-{scenario}.json"));
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        Command::new("node")
            .arg(app.join("app.js"))
            .arg(scenario)
            .arg(&cfg_path)
            .output(),
    )
    .await
    .expect("the gateway client finished within 120 s")
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{scenario}: {e}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check_asset_transfer(r: &Value, asset: &str) {
    assert!(r.get("failed").is_none(), "{r:#}");
    assert_eq!(r["createStatus"]["successful"], true, "{r:#}");
    assert_eq!(r["read"]["ID"], asset, "{r:#}");
    assert_eq!(r["read"]["Owner"], "Tomoko", "{r:#}");
    assert_eq!(r["previousOwner"], "Tomoko", "{r:#}");
    assert_eq!(r["readAfterTransfer"]["Owner"], "Mark", "{r:#}");
    let missing = &r["missing"]["error"];
    assert!(
        missing["details"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("does not exist"),
        "{r:#}"
    );
    let names: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CreateAsset", "TransferAsset"], "{r:#}");
    assert_eq!(r["events"][0]["txId"], r["createTxId"], "{r:#}");
    assert_eq!(r["events"][1]["payload"]["Owner"], "Mark", "{r:#}");
}

/// Fabric's Gateway SDK against a two-org weft network with mutual TLS everywhere: chaincode
/// defined through `_lifecycle` transactions (approved by each org, committed with MAJORITY),
/// the Rust contract launched by each peer and the Node (fabric-contract-api) contract as a
/// chaincode server; submit, commit status, evaluate and chaincode events for both; and a
/// client without a TLS certificate is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_gateway_sdk_on_a_two_org_network() {
    node_chaincode();
    let net = FullNet::start(&repo()).await;

    // The Rust contract, launched by each peer through the binary builder.
    let src = net._tmp.path().join("src-basic");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(
        env!("CARGO_BIN_EXE_asset-transfer"),
        src.join("asset-transfer"),
    )
    .unwrap();
    let code = weft_peer::package::code_archive_from_directory(&src, "binary").unwrap();
    let pkg =
        weft_peer::package::ChaincodePackage::build("basic_1.0", "binary", "", &code).unwrap();
    let id = net.install(&pkg);
    net.define("basic", &id).await;
    for p in &net.peers {
        let ch = p.node.channels.get("mychannel").unwrap();
        assert_eq!(ch.package_for("basic").as_deref(), Some(id.as_str()));
    }
    let r = gateway_app(&net, "asset-transfer", "basic", "asset-rust").await;
    check_asset_transfer(&r, "asset-rust");

    // The Node contract (fabric-contract-api) as one chaincode server both peers dial with
    // mutual TLS, from the same ccaas package installed on each.
    let dir = net._tmp.path().join("server-basic-node");
    std::fs::create_dir_all(&dir).unwrap();
    let tls = server_tls(&dir);
    let port = free_port();
    std::fs::write(
        dir.join("connection.json"),
        connection(port, &tls, true).to_string(),
    )
    .unwrap();
    let src = net._tmp.path().join("src-basic-node");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(dir.join("connection.json"), src.join("connection.json")).unwrap();
    let code = weft_peer::package::code_archive_from_directory(&src, "ccaas").unwrap();
    let pkg =
        weft_peer::package::ChaincodePackage::build("basic-node_1.0", "ccaas", "", &code).unwrap();
    let id = net.install(&pkg);
    let mut server = node_server(port, &id, &tls, dir.join("server.log"));
    server.wait_listening(port).await;
    net.define("basic-node", &id).await;
    let r = gateway_app(&net, "asset-transfer", "basic-node", "asset-node").await;
    check_asset_transfer(&r, "asset-node");

    let r = gateway_app(&net, "no-client-cert", "basic", "asset-rust").await;
    assert_eq!(r["refused"], true, "{r:#}");
    let msg = r["error"].to_string();
    assert!(msg.to_lowercase().contains("certificate"), "{r:#}");

    server.stop().await;
    net.stop().await;
}
