//! The `weft` binary as a user runs it: generate material, then probe endpoints served with it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use weft_tls::{ClientAuth, Identity, Profile, TlsServer, Trust};

fn weft() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft"));
    cmd.env("WEFT_LOG", "warn");
    cmd
}

fn run(args: &[&str]) -> Output {
    weft().args(args).output().expect("run weft")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Network {
    _dir: tempfile::TempDir,
    crypto: PathBuf,
}

impl Network {
    fn generate() -> Network {
        let dir = tempfile::tempdir().unwrap();
        let crypto = dir.path().join("crypto");
        let out = run(&["crypto", "generate", "--output", crypto.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        Network { _dir: dir, crypto }
    }

    fn org1(&self) -> PathBuf {
        self.crypto.join("peerOrganizations/org1.example.com")
    }

    fn tlsca(&self) -> PathBuf {
        self.org1().join("tlsca/tlsca.org1.example.com-cert.pem")
    }

    fn user_tls(&self, file: &str) -> PathBuf {
        self.org1()
            .join("users/User1@org1.example.com/tls")
            .join(file)
    }

    fn peer_tls(&self, file: &str) -> PathBuf {
        self.org1()
            .join("peers/peer0.org1.example.com/tls")
            .join(file)
    }

    fn orderer_tlsca(&self) -> PathBuf {
        self.crypto
            .join("ordererOrganizations/example.com/tlsca/tlsca.example.com-cert.pem")
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn crypto_generate_refuses_to_overwrite_keys_unless_forced() {
    let net = Network::generate();
    let key = net
        .org1()
        .join("peers/peer0.org1.example.com/msp/keystore/priv_sk");
    let before = std::fs::read(&key).unwrap();

    let again = run(&["crypto", "generate", "--output", s(&net.crypto)]);
    assert_eq!(again.status.code(), Some(2));
    let msg = text(&again);
    assert!(
        msg.contains("refusing to overwrite") && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(&key).unwrap(),
        before,
        "a refused run must not touch keys"
    );

    let forced = run(&["crypto", "generate", "--output", s(&net.crypto), "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_ne!(
        std::fs::read(&key).unwrap(),
        before,
        "--force issues new keys"
    );
}

#[test]
fn crypto_generate_reads_a_config_file_and_names_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let sample = run(&["crypto", "sample-config"]);
    assert!(sample.status.success());
    let cfg = dir.path().join("crypto-config.yaml");
    let yaml = String::from_utf8(sample.stdout)
        .unwrap()
        .replace("Count: 1", "Count: 2");
    std::fs::write(&cfg, yaml).unwrap();
    let out_dir = dir.path().join("out");
    let out = run(&[
        "crypto",
        "generate",
        "--config",
        s(&cfg),
        "--output",
        s(&out_dir),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out_dir
        .join("peerOrganizations/org2.example.com/users/User2@org2.example.com/tls/client.key")
        .exists());

    std::fs::write(&cfg, "PeerOrgs:\n  - Name: Org1\n    Domain: ../../etc\n").unwrap();
    let out = run(&[
        "crypto",
        "generate",
        "--config",
        s(&cfg),
        "--output",
        s(&dir.path().join("x")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("../../etc"), "{}", text(&out));
    assert!(!dir.path().join("x").exists());

    let out = run(&[
        "crypto",
        "generate",
        "--config",
        "/nonexistent/crypto-config.yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("/nonexistent/crypto-config.yaml"),
        "{}",
        text(&out)
    );
}

/// Serve TLS with peer0.org1's generated material until the runtime stops.
async fn serve(net: &Network, auth: ClientAuth) -> String {
    let id = Identity::from_pem_files(
        &net.peer_tls("server.crt"),
        &net.peer_tls("server.key"),
        "peer.tls",
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = Arc::new(
        TlsServer::new(&id, auth, Profile::Fabric)
            .unwrap()
            .with_endpoint(addr.clone()),
    );
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            let server = server.clone();
            tokio::spawn(async move {
                if let Ok(mut ok) = server.accept(tcp, Some(peer.to_string())).await {
                    let mut buf = [0u8; 16];
                    let _ = tokio::io::AsyncReadExt::read(&mut ok.stream, &mut buf).await;
                }
            });
        }
    });
    addr
}

async fn doctor(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        weft().arg("doctor").arg("tls").args(args).output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_tls_verdicts_and_exit_codes_against_a_weft_server() {
    let net = Network::generate();
    let roots = Trust::roots_from_pem_files(&[net.tlsca()], "test").unwrap();
    let addr = serve(&net, ClientAuth::Require(roots)).await;
    let full = |extra: &[&str]| {
        let mut v = vec![
            addr.clone(),
            "--cafile".into(),
            s(&net.tlsca()).into(),
            "--certfile".into(),
            s(&net.user_tls("client.crt")).into(),
            "--keyfile".into(),
            s(&net.user_tls("client.key")).into(),
        ];
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };

    let ok = doctor(full(&["--servername", "peer0.org1.example.com"])).await;
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let out = text(&ok);
    for needle in [
        "handshake:    OK, TLSv1.3",
        "client cert:  required",
        "SANs:    DNS:peer0.org1.example.com, DNS:peer0, DNS:localhost, IP:127.0.0.1",
        "verdict:      OK",
    ] {
        assert!(out.contains(needle), "missing '{needle}':\n{out}");
    }

    let anon = doctor(vec![
        addr.clone(),
        "--cafile".into(),
        s(&net.tlsca()).into(),
    ])
    .await;
    assert_eq!(anon.status.code(), Some(1));
    assert!(
        text(&anon).contains("requires a client certificate and this client sent none"),
        "{}",
        text(&anon)
    );

    let mut wrong_ca = full(&[]);
    wrong_ca[2] = s(&net.orderer_tlsca()).into();
    let wrong = doctor(wrong_ca).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong).contains("CN=tlsca.org1.example.com', which is not a CA this client trusts"),
        "{}",
        text(&wrong)
    );

    let name = doctor(full(&["--servername", "peer1.org1.example.com"])).await;
    assert_eq!(name.status.code(), Some(1));
    assert!(
        text(&name).contains("expected the name 'peer1.org1.example.com'"),
        "{}",
        text(&name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_tls_usage_errors_name_the_problem() {
    let bad = doctor(vec!["no-port-here".into()]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad).contains("invalid endpoint 'no-port-here'"),
        "{}",
        text(&bad)
    );

    let missing = doctor(vec![
        "127.0.0.1:1".into(),
        "--cafile".into(),
        "/nonexistent/ca.pem".into(),
    ])
    .await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("cannot read --cafile file /nonexistent/ca.pem"),
        "{}",
        text(&missing)
    );

    let half = doctor(vec![
        "127.0.0.1:1".into(),
        "--certfile".into(),
        "x.pem".into(),
    ])
    .await;
    assert_eq!(half.status.code(), Some(2));
    assert!(text(&half).contains("--keyfile"), "{}", text(&half));
}

/// Interop: the doctor against OpenSSL's server (not rustls), with weft-generated material.
#[test]
fn doctor_tls_against_openssl_s_server() {
    if Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl not on PATH: skipping the OpenSSL interop check");
        return;
    }
    let net = Network::generate();
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut server = Command::new("openssl")
        .args([
            "s_server", "-quiet", "-accept", &addr, "-alpn", "h2", "-Verify", "1",
        ])
        .args([
            "-cert",
            s(&net.peer_tls("server.crt")),
            "-key",
            s(&net.peer_tls("server.key")),
        ])
        .args(["-CAfile", s(&net.tlsca())])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::net::TcpStream::connect(&addr).is_ok()
    });
    let ok = weft()
        .args(["doctor", "tls", &addr, "--cafile", s(&net.tlsca())])
        .args([
            "--certfile",
            s(&net.user_tls("client.crt")),
            "--keyfile",
            s(&net.user_tls("client.key")),
        ])
        .output()
        .unwrap();
    let anon = weft()
        .args(["doctor", "tls", &addr, "--cafile", s(&net.tlsca())])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "openssl s_server did not start");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(
        text(&ok).contains("client cert:  required"),
        "{}",
        text(&ok)
    );
    assert_eq!(anon.status.code(), Some(1), "{}", text(&anon));
    assert!(
        text(&anon).contains("requires a client certificate"),
        "{}",
        text(&anon)
    );
}

#[test]
fn lifecycle_package_install_query_get_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("connection.json"),
        r#"{"address":"127.0.0.1:9999","dial_timeout":"10s"}"#,
    )
    .unwrap();
    let pkg = dir.path().join("basic.tar.gz");
    let peer = dir.path().join("peer");
    let lc = |args: &[&str]| {
        let mut a = vec!["peer", "lifecycle", "chaincode"];
        a.extend_from_slice(args);
        run(&a)
    };
    let out = lc(&[
        "package",
        s(&pkg),
        "--path",
        s(&src),
        "--lang",
        "ccaas",
        "--label",
        "basic_1.0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = lc(&["install", s(&pkg), "--peer-fs-path", s(&peer)]);
    assert!(out.status.success(), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("Chaincode code package identifier: ")
        .expect("install prints the package id")
        .to_owned();
    assert!(
        id.starts_with("basic_1.0:") && id.len() == "basic_1.0:".len() + 64,
        "{id}"
    );
    // Reinstalling is fine and says so.
    let again = lc(&["install", s(&pkg), "--peer-fs-path", s(&peer)]);
    assert!(
        again.status.success() && text(&again).contains("already successfully installed"),
        "{}",
        text(&again)
    );
    let q = lc(&["queryinstalled", "--peer-fs-path", s(&peer)]);
    assert!(
        text(&q).contains(&format!("Package ID: {id}, Label: basic_1.0")),
        "{}",
        text(&q)
    );
    let out_dir = dir.path().join("fetched");
    let g = lc(&[
        "getinstalledpackage",
        "--package-id",
        &id,
        "--output-directory",
        s(&out_dir),
        "--peer-fs-path",
        s(&peer),
    ]);
    assert!(g.status.success(), "{}", text(&g));
    assert_eq!(
        std::fs::read(out_dir.join(format!("{id}.tar.gz"))).unwrap(),
        std::fs::read(&pkg).unwrap()
    );

    // An untrusted archive is refused with an explanation, and nothing is installed.
    let bad = dir.path().join("bad.tar.gz");
    std::fs::write(&bad, b"not a package").unwrap();
    let out = lc(&["install", s(&bad), "--peer-fs-path", s(&peer)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("not gzip-compressed"), "{}", text(&out));
    let q = lc(&[
        "queryinstalled",
        "--peer-fs-path",
        s(&peer),
        "--output",
        "json",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&q.stdout)
            .matches("package_id")
            .count(),
        1,
        "{}",
        text(&q)
    );
}

/// `weft peer node start`: serves until SIGTERM, with the peer's TLS, and refuses a
/// configuration Fabric refuses, naming the key.
#[test]
fn peer_node_start_serves_and_stops_on_sigterm() {
    let net = Network::generate();
    let dir = net._dir.path();
    let peer = net.org1().join("peers/peer0.org1.example.com");
    let core = dir.join("core.yaml");
    std::fs::write(
        &core,
        format!(
            "peer:\n  id: peer0.org1.example.com\n  listenAddress: 127.0.0.1:0\n  address: 127.0.0.1:7051\n  \
             chaincodeListenAddress: 127.0.0.1:0\n  fileSystemPath: {fs}\n  mspConfigPath: {msp}\n  localMspId: Org1MSP\n  \
             tls:\n    enabled: true\n    clientAuthRequired: true\n    cert: {{ file: {tls}/server.crt }}\n    \
             key: {{ file: {tls}/server.key }}\n    rootcert: {{ file: {tls}/ca.crt }}\n",
            fs = dir.join("peerdata").display(),
            msp = peer.join("msp").display(),
            tls = peer.join("tls").display(),
        ),
    )
    .unwrap();
    let channels = dir.join("channels.yaml");
    std::fs::write(
        &channels,
        format!(
            "channels:\n  - name: mychannel\n    msps:\n      - id: Org1MSP\n        dir: {}\n",
            net.org1().join("msp").display()
        ),
    )
    .unwrap();
    let mut child = weft()
        .args([
            "peer",
            "node",
            "start",
            "--config",
            s(&core),
            "--channels",
            s(&channels),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert!(
        line.starts_with("peer peer0.org1.example.com listening on 127.0.0.1:"),
        "{line}"
    );
    let peer_addr = line.split_whitespace().nth(4).unwrap().to_owned();

    // The peer's port speaks TLS with the peer's certificate and requires a client cert.
    let out = run(&[
        "doctor",
        "tls",
        &peer_addr,
        "--cafile",
        s(&net.tlsca()),
        "--servername",
        "peer0.org1.example.com",
    ]);
    assert!(
        text(&out).contains("client certificate required")
            || text(&out).contains("client_cert_required"),
        "{}",
        text(&out)
    );

    // A signed proposal through the CLI reaches the endorser over mutual TLS; the chaincode
    // is not defined on the channel, and the answer says so.
    let user_msp = net.org1().join("users/User1@org1.example.com/msp");
    let query = |with_cert: bool| {
        let mut cmd = weft();
        cmd.args([
            "peer",
            "chaincode",
            "query",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["ReadAsset","asset1"]}"#,
            "--peerAddresses",
            &peer_addr,
            "--tlsRootCertFiles",
            s(&net.tlsca()),
            "--servername",
            "peer0.org1.example.com",
            "--mspdir",
            s(&user_msp),
            "--mspid",
            "Org1MSP",
        ]);
        if with_cert {
            cmd.args([
                "--certfile",
                s(&net.user_tls("client.crt")),
                "--keyfile",
                s(&net.user_tls("client.key")),
            ]);
        }
        cmd.output().unwrap()
    };
    let out = query(true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("chaincode \"basic\" is not defined on channel \"mychannel\""),
        "{}",
        text(&out)
    );
    let out = query(false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("client certificate"), "{}", text(&out));

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");

    // The doctor calls this configuration fit for production, and development mode not.
    let out = run(&["doctor", "peer", "--config", s(&core)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("OK for production"), "{}", text(&out));
    let out = run(&[
        "doctor",
        "peer",
        "--config",
        s(&core),
        "--peer-chaincodedev",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("NOT FOR PRODUCTION: development mode"),
        "{}",
        text(&out)
    );

    // An unspecified chaincodeAddress is a start-up error naming the key and the variable.
    let out = weft()
        .args(["peer", "node", "start", "--config", s(&core)])
        .env("CORE_PEER_CHAINCODEADDRESS", "0.0.0.0:7052")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out).contains("peer.chaincodeAddress"),
        "{}",
        text(&out)
    );
}

/// An envelope whose channel header names `tx_id`, as a block stores it.
fn envelope_bytes(tx_id: &str) -> bytes::Bytes {
    use prost::Message;
    use weft_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload};
    let ch = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        channel_id: "mychannel".into(),
        tx_id: tx_id.into(),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: ch.encode_to_vec().into(),
            signature_header: Default::default(),
        }),
        data: Default::default(),
    };
    Envelope {
        payload: payload.encode_to_vec().into(),
        signature: Default::default(),
    }
    .encode_to_vec()
    .into()
}

#[test]
fn ledger_reads_height_blocks_and_transactions() {
    use weft_ledger::block::{header_hash, new_block, set_transactions_filter};
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("blocks");
    {
        let store =
            weft_ledger::BlockStore::open(&store_dir, weft_ledger::BlockStoreConfig::default())
                .unwrap();
        let b0 = new_block(0, &[], vec![envelope_bytes("genesis")]);
        store.append_block(&b0).unwrap();
        let mut b1 = new_block(
            1,
            &header_hash(b0.header.as_ref().unwrap()),
            vec![envelope_bytes("tx-a"), envelope_bytes("tx-b")],
        );
        set_transactions_filter(&mut b1, &[0, 11]);
        store.append_block(&b1).unwrap();
        // Still open: the command reads it read-only, as it would a running peer's.
        let ledger = s(&store_dir);
        let o = run(&["ledger", "height", "--ledger", ledger]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "2");

        let o = run(&["ledger", "block", "1", "--ledger", ledger]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["number"], 1);
        assert_eq!(v["transactions"][1]["tx_id"], "tx-b");
        assert_eq!(
            v["transactions"][1]["validation_code"],
            "MVCC_READ_CONFLICT"
        );

        let o = run(&["ledger", "tx", "tx-a", "--ledger", ledger]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (v["block"].as_u64(), v["index"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(v["validation_code"], "VALID");

        let o = run(&["ledger", "block", "7", "--ledger", ledger]);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o).contains("the ledger's height is 2"),
            "{}",
            text(&o)
        );
        let o = run(&["ledger", "tx", "nope", "--ledger", ledger]);
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o).contains("not in this ledger"), "{}", text(&o));
    }
    let o = run(&["ledger", "height", "--ledger", s(dir.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no block store here"), "{}", text(&o));
}

#[test]
fn configtx_genesis_and_inspect() {
    let net = Network::generate();
    let dir = net.crypto.parent().unwrap();
    std::fs::write(
        dir.join("configtx.yaml"),
        "Organizations:\n  - &OrdererOrg\n    Name: OrdererOrg\n    ID: OrdererMSP\n    \
         MSPDir: crypto/ordererOrganizations/example.com/msp\n    OrdererEndpoints: \
         [127.0.0.1:7050]\n  - &Org1\n    Name: Org1MSP\n    ID: Org1MSP\n    MSPDir: \
         crypto/peerOrganizations/org1.example.com/msp\nProfiles:\n  TwoOrgs:\n    Orderer:\n      \
         OrdererType: solo\n      Organizations: [*OrdererOrg]\n    Application:\n      \
         Organizations: [*Org1]\n",
    )
    .unwrap();
    let block = dir.join("mychannel.block");
    let genesis = |profile: &str| {
        run(&[
            "configtx",
            "genesis",
            "--profile",
            profile,
            "--channelID",
            "mychannel",
            "--outputBlock",
            s(&block),
            "--configPath",
            s(dir),
        ])
    };
    let out = genesis("TwoOrgs");
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["configtx", "inspect", s(&block)]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("channel: mychannel"), "{t}");
    assert!(t.contains("Org1MSP (MSP ID Org1MSP)"), "{t}");
    assert!(t.contains("endpoint: 127.0.0.1:7050 (OrdererMSP)"), "{t}");
    let out = genesis("Nope");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("its profiles are: TwoOrgs"),
        "{}",
        text(&out)
    );
}

/// A `weft` process with its output in a log file, stopped (SIGTERM, then killed) on drop.
struct Proc {
    child: std::process::Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(args: &[&str], log: PathBuf) -> Proc {
        let out = std::fs::File::create(&log).unwrap();
        let child = weft()
            .env("WEFT_LOG", "info")
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait (at most 60 s) until 127.0.0.1:`port` accepts connections.
    fn wait_port(&mut self, port: u16) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("exited ({st}) before listening on {port}:\n{}", self.log());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not listening on {port} after 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const NETWORK_CONFIGTX: &str = r#"
Organizations:
  - &OrdererOrg
    Name: OrdererOrg
    ID: OrdererMSP
    MSPDir: crypto/ordererOrganizations/example.com/msp
    Policies:
      Readers: { Type: Signature, Rule: "OR('OrdererMSP.member')" }
      Writers: { Type: Signature, Rule: "OR('OrdererMSP.member')" }
      Admins: { Type: Signature, Rule: "OR('OrdererMSP.admin')" }
    OrdererEndpoints: [ "127.0.0.1:ORDERER_PORT" ]
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
      BatchTimeout: 250ms
      BatchSize: { MaxMessageCount: 10, AbsoluteMaxBytes: 10 MB, PreferredMaxBytes: 2 MB }
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

/// The network by hand, as the README shows it: configtx genesis, an orderer and two peers as
/// separate processes with mutual TLS, osnadmin join, peer channel join/list, then a chaincode
/// package installed and defined with approveformyorg (each org), checkcommitreadiness,
/// commit and querycommitted, and the ledger read back with `weft ledger`.
#[test]
fn network_by_hand_channel_join_and_lifecycle() {
    let net = Network::generate();
    let dir = net._dir.path();
    let (oport, admin_port, p1, p2) = (free_port(), free_port(), free_port(), free_port());
    std::fs::write(
        dir.join("configtx.yaml"),
        NETWORK_CONFIGTX
            .replace("ORDERER_PORT", &oport.to_string())
            .replace("PEER1_PORT", &p1.to_string())
            .replace("PEER2_PORT", &p2.to_string()),
    )
    .unwrap();
    let block = dir.join("mychannel.block");
    let out = run(&[
        "configtx",
        "genesis",
        "--profile",
        "TwoOrgsChannel",
        "--channelID",
        "mychannel",
        "--outputBlock",
        s(&block),
        "--configPath",
        s(dir),
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // The orderer.
    let ord_org = net.crypto.join("ordererOrganizations/example.com");
    let ord = ord_org.join("orderers/orderer.example.com");
    let ord_tlsca = net.orderer_tlsca();
    std::fs::write(
        dir.join("orderer.yaml"),
        format!(
            "General:\n  ListenAddress: 127.0.0.1\n  ListenPort: {oport}\n  TLS:\n    Enabled: true\n    \
             PrivateKey: {tls}/server.key\n    Certificate: {tls}/server.crt\n    RootCAs: [{ca}]\n    \
             ClientAuthRequired: true\n  LocalMSPDir: {msp}\n  LocalMSPID: OrdererMSP\n  BootstrapMethod: none\n\
             FileLedger:\n  Location: {d}/orderer/ledger\nConsensus:\n  WALDir: {d}/orderer/wal\n\
             Admin:\n  ListenAddress: 127.0.0.1:{admin_port}\n  TLS:\n    Enabled: true\n    \
             PrivateKey: {tls}/server.key\n    Certificate: {tls}/server.crt\n    ClientAuthRequired: true\n    \
             ClientRootCAs: [{ca}]\nChannelParticipation:\n  Enabled: true\n",
            tls = ord.join("tls").display(),
            ca = ord_tlsca.display(),
            msp = ord.join("msp").display(),
            d = dir.display(),
        ),
    )
    .unwrap();
    let mut orderer = Proc::spawn(
        &["orderer", "start", "--config", s(&dir.join("orderer.yaml"))],
        dir.join("orderer.log"),
    );
    orderer.wait_port(oport);
    orderer.wait_port(admin_port);
    let osn_admin = ord_org.join("users/Admin@example.com/tls");
    let out = run(&[
        "osnadmin",
        "channel",
        "join",
        "--channelID",
        "mychannel",
        "--config-block",
        s(&block),
        "-o",
        &format!("127.0.0.1:{admin_port}"),
        "--ca-file",
        s(&ord_tlsca),
        "--client-cert",
        s(&osn_admin.join("client.crt")),
        "--client-key",
        s(&osn_admin.join("client.key")),
    ]);
    assert!(out.status.success(), "{}\n{}", text(&out), orderer.log());

    // Two peers, one per org.
    let org_dir = |org: &str| {
        net.crypto
            .join(format!("peerOrganizations/{org}.example.com"))
    };
    let tlsca = |org: &str| org_dir(org).join(format!("tlsca/tlsca.{org}.example.com-cert.pem"));
    let mut peers = Vec::new();
    for (org, msp_id, port) in [("org1", "Org1MSP", p1), ("org2", "Org2MSP", p2)] {
        let peer = org_dir(org).join(format!("peers/peer0.{org}.example.com"));
        let core = dir.join(format!("core-{org}.yaml"));
        std::fs::write(
            &core,
            format!(
                "peer:\n  id: peer0.{org}.example.com\n  listenAddress: 127.0.0.1:{port}\n  address: 127.0.0.1:{port}\n  \
                 chaincodeListenAddress: 127.0.0.1:0\n  fileSystemPath: {fs}\n  mspConfigPath: {msp}\n  localMspId: {msp_id}\n  \
                 tls:\n    enabled: true\n    clientAuthRequired: true\n    cert: {{ file: {tls}/server.crt }}\n    \
                 key: {{ file: {tls}/server.key }}\n    rootcert: {{ file: {tls}/ca.crt }}\n    \
                 clientRootCAs: {{ files: [ {tls}/ca.crt ] }}\n",
                fs = dir.join(format!("peer-{org}")).display(),
                msp = peer.join("msp").display(),
                tls = peer.join("tls").display(),
            ),
        )
        .unwrap();
        let mut p = Proc::spawn(
            &["peer", "node", "start", "--config", s(&core)],
            dir.join(format!("peer-{org}.log")),
        );
        p.wait_port(port);
        peers.push(p);
    }
    // The CLI as an org's admin, with Fabric's environment.
    let as_admin = |org: &str, msp_id: &str, port: u16, args: &[&str]| {
        let admin = org_dir(org).join(format!("users/Admin@{org}.example.com"));
        weft()
            .env("CORE_PEER_ADDRESS", format!("127.0.0.1:{port}"))
            .env("CORE_PEER_TLS_ROOTCERT_FILE", tlsca(org))
            .env("CORE_PEER_MSPCONFIGPATH", admin.join("msp"))
            .env("CORE_PEER_LOCALMSPID", msp_id)
            .env(
                "CORE_PEER_TLS_CLIENTCERT_FILE",
                admin.join("tls/client.crt"),
            )
            .env("CORE_PEER_TLS_CLIENTKEY_FILE", admin.join("tls/client.key"))
            .args(args)
            .output()
            .unwrap()
    };
    let logs = |peers: &[Proc]| peers.iter().map(Proc::log).collect::<Vec<_>>().join("\n");
    for (org, msp_id, port) in [("org1", "Org1MSP", p1), ("org2", "Org2MSP", p2)] {
        let out = as_admin(
            org,
            msp_id,
            port,
            &["peer", "channel", "join", "-b", s(&block)],
        );
        assert!(out.status.success(), "{}\n{}", text(&out), logs(&peers));
        let out = as_admin(org, msp_id, port, &["peer", "channel", "list"]);
        assert!(text(&out).contains("mychannel"), "{}", text(&out));
    }

    // A chaincode package (chaincode as a service: only connection.json), on both peers.
    let src = dir.join("basic-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("connection.json"),
        r#"{"address":"127.0.0.1:9999","dial_timeout":"2s","tls_required":false}"#,
    )
    .unwrap();
    let pkg = dir.join("basic.tar.gz");
    let out = run(&[
        "peer",
        "lifecycle",
        "chaincode",
        "package",
        s(&pkg),
        "-p",
        s(&src),
        "--lang",
        "ccaas",
        "--label",
        "basic_1.0",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&[
        "peer",
        "lifecycle",
        "chaincode",
        "calculatepackageid",
        s(&pkg),
    ]);
    let package_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    for org in ["org1", "org2"] {
        let fs = dir.join(format!("peer-{org}"));
        let out = run(&[
            "peer",
            "lifecycle",
            "chaincode",
            "install",
            s(&pkg),
            "--peer-fs-path",
            s(&fs),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let orderer_flags = [
        "-o".to_owned(),
        format!("127.0.0.1:{oport}"),
        "--cafile".to_owned(),
        s(&ord_tlsca).to_owned(),
    ];
    let def = [
        "-C",
        "mychannel",
        "-n",
        "basic",
        "-v",
        "1.0",
        "--sequence",
        "1",
    ];
    for (org, msp_id, port) in [("org1", "Org1MSP", p1), ("org2", "Org2MSP", p2)] {
        let mut args = vec!["peer", "lifecycle", "chaincode", "approveformyorg"];
        args.extend(orderer_flags.iter().map(String::as_str));
        args.extend(def);
        args.extend(["--package-id", &package_id]);
        let out = as_admin(org, msp_id, port, &args);
        assert!(
            out.status.success(),
            "approve {org}: {}\n{}",
            text(&out),
            logs(&peers)
        );
        assert!(
            text(&out).contains("committed with status (VALID)"),
            "{}",
            text(&out)
        );
    }
    let mut args = vec![
        "peer",
        "lifecycle",
        "chaincode",
        "checkcommitreadiness",
        "-O",
        "json",
    ];
    args.extend(def);
    let out = as_admin("org1", "Org1MSP", p1, &args);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(v["approvals"]["Org1MSP"], true, "{v}");
    assert_eq!(v["approvals"]["Org2MSP"], true, "{v}");

    let (peer1, peer2) = (format!("127.0.0.1:{p1}"), format!("127.0.0.1:{p2}"));
    let mut args = vec!["peer", "lifecycle", "chaincode", "commit"];
    args.extend(orderer_flags.iter().map(String::as_str));
    args.extend(def);
    let (ca1, ca2) = (tlsca("org1"), tlsca("org2"));
    args.extend(["--peerAddresses", &peer1, "--tlsRootCertFiles", s(&ca1)]);
    args.extend(["--peerAddresses", &peer2, "--tlsRootCertFiles", s(&ca2)]);
    let out = as_admin("org1", "Org1MSP", p1, &args);
    assert!(
        out.status.success(),
        "commit: {}\n{}",
        text(&out),
        logs(&peers)
    );

    let out = as_admin(
        "org2",
        "Org2MSP",
        p2,
        &[
            "peer",
            "lifecycle",
            "chaincode",
            "querycommitted",
            "-C",
            "mychannel",
            "-n",
            "basic",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Version: 1.0, Sequence: 1"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("Org1MSP: true, Org2MSP: true"),
        "{}",
        text(&out)
    );

    // Committing the same sequence again is refused by the peers, saying which to use.
    let out = as_admin("org1", "Org1MSP", p1, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("must be sequence 2"), "{}", text(&out));

    // Genesis, two approvals, one commit: four blocks on both peers.
    for org in ["org1", "org2"] {
        let fs = dir.join(format!("peer-{org}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let out = run(&[
                "ledger",
                "height",
                "--peer-fs-path",
                s(&fs),
                "-C",
                "mychannel",
            ]);
            if String::from_utf8_lossy(&out.stdout).trim() == "4" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{org}: {}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    drop(peers);
    drop(orderer);
}
