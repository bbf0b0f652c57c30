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
             key: {{ file: {tls}/server.key }}\n    rootcert: {{ file: {tls}/ca.crt }}\n\
             operations:\n  listenAddress: 127.0.0.1:0\n",
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
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
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

/// The two orgs of [`NETWORK_CONFIGTX`]: (org, MSP ID).
const ORGS: [(&str, &str); 2] = [("org1", "Org1MSP"), ("org2", "Org2MSP")];

/// A network started by hand with the CLI, as the README shows it: configtx genesis, an
/// orderer and one peer per org as separate `weft` processes with mutual TLS everywhere,
/// osnadmin join, and each peer joined by its org's admin (`peer channel join`).
struct HandNet {
    net: Network,
    oport: u16,
    admin_port: u16,
    ports: [u16; 2],
    block: PathBuf,
    orderer: Option<Proc>,
    peers: Vec<Option<Proc>>,
}

impl HandNet {
    fn dir(&self) -> &Path {
        self.net._dir.path()
    }

    fn org_dir(&self, i: usize) -> PathBuf {
        self.net
            .crypto
            .join(format!("peerOrganizations/{}.example.com", ORGS[i].0))
    }

    fn tlsca(&self, i: usize) -> PathBuf {
        let org = ORGS[i].0;
        self.org_dir(i)
            .join(format!("tlsca/tlsca.{org}.example.com-cert.pem"))
    }

    fn peer_fs(&self, i: usize) -> PathBuf {
        self.dir().join(format!("peer-{}", ORGS[i].0))
    }

    fn peer_address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    fn orderer_flags(&self) -> Vec<String> {
        vec![
            "-o".to_owned(),
            format!("127.0.0.1:{}", self.oport),
            "--cafile".to_owned(),
            s(&self.net.orderer_tlsca()).to_owned(),
        ]
    }

    fn logs(&self) -> String {
        let mut all: Vec<String> = self.peers.iter().flatten().map(Proc::log).collect();
        all.extend(self.orderer.iter().map(Proc::log));
        all.join("\n")
    }

    /// The CLI as org `i`'s admin, with Fabric's environment, against org `i`'s peer.
    fn as_admin(&self, i: usize, args: &[&str]) -> Output {
        self.admin_cmd(i, args).output().unwrap()
    }

    fn admin_cmd(&self, i: usize, args: &[&str]) -> Command {
        let (org, msp_id) = ORGS[i];
        let admin = self
            .org_dir(i)
            .join(format!("users/Admin@{org}.example.com"));
        let mut cmd = weft();
        cmd.env("CORE_PEER_ADDRESS", self.peer_address(i))
            .env("CORE_PEER_TLS_ROOTCERT_FILE", self.tlsca(i))
            .env("CORE_PEER_MSPCONFIGPATH", admin.join("msp"))
            .env("CORE_PEER_LOCALMSPID", msp_id)
            .env(
                "CORE_PEER_TLS_CLIENTCERT_FILE",
                admin.join("tls/client.crt"),
            )
            .env("CORE_PEER_TLS_CLIENTKEY_FILE", admin.join("tls/client.key"))
            .args(args);
        cmd
    }

    fn start() -> HandNet {
        let net = Network::generate();
        let dir = net._dir.path().to_owned();
        let (oport, admin_port) = (free_port(), free_port());
        let ports = [free_port(), free_port()];
        std::fs::write(
            dir.join("configtx.yaml"),
            NETWORK_CONFIGTX
                .replace("ORDERER_PORT", &oport.to_string())
                .replace("PEER1_PORT", &ports[0].to_string())
                .replace("PEER2_PORT", &ports[1].to_string()),
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
            s(&dir),
        ]);
        assert!(out.status.success(), "{}", text(&out));

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
                 ClientRootCAs: [{ca}]\nChannelParticipation:\n  Enabled: true\n\
                 Operations:\n  ListenAddress: 127.0.0.1:0\n",
                tls = ord.join("tls").display(),
                ca = ord_tlsca.display(),
                msp = ord.join("msp").display(),
                d = dir.display(),
            ),
        )
        .unwrap();
        let mut hn = HandNet {
            net,
            oport,
            admin_port,
            ports,
            block,
            orderer: None,
            peers: vec![None, None],
        };
        hn.start_orderer();
        let osn_admin = ord_org.join("users/Admin@example.com/tls");
        let out = run(&[
            "osnadmin",
            "channel",
            "join",
            "--channelID",
            "mychannel",
            "--config-block",
            s(&hn.block),
            "-o",
            &format!("127.0.0.1:{admin_port}"),
            "--ca-file",
            s(&ord_tlsca),
            "--client-cert",
            s(&osn_admin.join("client.crt")),
            "--client-key",
            s(&osn_admin.join("client.key")),
        ]);
        assert!(out.status.success(), "{}\n{}", text(&out), hn.logs());

        for (i, (org, msp_id)) in ORGS.into_iter().enumerate() {
            let peer = hn.org_dir(i).join(format!("peers/peer0.{org}.example.com"));
            let port = hn.ports[i];
            std::fs::write(
                dir.join(format!("core-{org}.yaml")),
                format!(
                    "peer:\n  id: peer0.{org}.example.com\n  listenAddress: 127.0.0.1:{port}\n  address: 127.0.0.1:{port}\n  \
                     chaincodeListenAddress: 127.0.0.1:0\n  fileSystemPath: {fs}\n  mspConfigPath: {msp}\n  localMspId: {msp_id}\n  \
                     tls:\n    enabled: true\n    clientAuthRequired: true\n    cert: {{ file: {tls}/server.crt }}\n    \
                     key: {{ file: {tls}/server.key }}\n    rootcert: {{ file: {tls}/ca.crt }}\n    \
                     clientRootCAs: {{ files: [ {tls}/ca.crt ] }}\noperations:\n  listenAddress: 127.0.0.1:0\n\
                     chaincode:\n  externalBuilders:\n    \
                     - {{ name: ccaas, path: {builders}/ccaas }}\n",
                    builders = Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../../builders")
                        .canonicalize()
                        .unwrap()
                        .display(),
                    fs = hn.peer_fs(i).display(),
                    msp = peer.join("msp").display(),
                    tls = peer.join("tls").display(),
                ),
            )
            .unwrap();
            hn.start_peer(i);
        }
        for i in 0..2 {
            let out = hn.as_admin(i, &["peer", "channel", "join", "-b", s(&hn.block)]);
            assert!(out.status.success(), "{}\n{}", text(&out), hn.logs());
            let out = hn.as_admin(i, &["peer", "channel", "list"]);
            assert!(text(&out).contains("mychannel"), "{}", text(&out));
        }
        hn
    }

    /// Start (or restart) a process, retrying while its port is still held by the last one.
    fn spawn_until_listening(args: &[&str], log: PathBuf, ports: &[u16]) -> Proc {
        for attempt in 0..50 {
            let mut p = Proc::spawn(args, log.with_extension(format!("{attempt}.log")));
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut exited = false;
            'ports: for port in ports {
                while std::net::TcpStream::connect(("127.0.0.1", *port)).is_err() {
                    if let Ok(Some(_)) = p.child.try_wait() {
                        exited = true;
                        break 'ports;
                    }
                    assert!(
                        std::time::Instant::now() < deadline,
                        "not listening on {port} after 60 s:\n{}",
                        p.log()
                    );
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            if !exited {
                return p;
            }
            assert!(
                p.log().contains("Address already in use") || p.log().contains("address in use"),
                "{args:?} exited:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{args:?}: the port stayed in use");
    }

    fn start_orderer(&mut self) {
        let cfg = self.dir().join("orderer.yaml");
        self.orderer = Some(HandNet::spawn_until_listening(
            &["orderer", "start", "--config", s(&cfg)],
            self.dir().join("orderer"),
            &[self.oport, self.admin_port],
        ));
    }

    fn start_peer(&mut self, i: usize) {
        let cfg = self.dir().join(format!("core-{}.yaml", ORGS[i].0));
        self.peers[i] = Some(HandNet::spawn_until_listening(
            &["peer", "node", "start", "--config", s(&cfg)],
            self.dir().join(format!("peer-{}", ORGS[i].0)),
            &[self.ports[i]],
        ));
    }

    /// SIGKILL: no shutdown, no flush.
    fn kill9(p: &mut Option<Proc>) {
        if let Some(mut p) = p.take() {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    fn ledger_height(&self, args: &[&str]) -> Option<u64> {
        let mut all = vec!["ledger", "height", "-C", "mychannel"];
        all.extend(args);
        let out = run(&all);
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    }
}

/// The network by hand, as the README shows it (see [`HandNet`]), then a chaincode package
/// installed and defined with approveformyorg (each org), checkcommitreadiness, commit and
/// querycommitted, and the ledger read back with `weft ledger`.
#[test]
fn network_by_hand_channel_join_and_lifecycle() {
    let hn = HandNet::start();
    let dir = hn.dir().to_owned();
    // The channel participation API also answers HTTP/1.1 clients (curl), with mutual TLS.
    let osn_admin = hn
        .net
        .crypto
        .join("ordererOrganizations/example.com/users/Admin@example.com/tls");
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--http1.1", "--cacert"])
        .arg(hn.net.orderer_tlsca())
        .arg("--cert")
        .arg(osn_admin.join("client.crt"))
        .arg("--key")
        .arg(osn_admin.join("client.key"))
        .arg(format!(
            "https://127.0.0.1:{}/participation/v1/channels",
            hn.admin_port
        ))
        .output()
        .expect("curl (scripts/deps installs it)");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("\"mychannel\""), "{}", text(&out));
    // A chaincode package (chaincode as a service: only connection.json), on both peers.
    let cc_port = free_port();
    let src = dir.join("basic-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("connection.json"),
        format!(r#"{{"address":"127.0.0.1:{cc_port}","dial_timeout":"5s","tls_required":false}}"#),
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
    // Installed over the network, as each org's admin (Fabric's environment).
    for i in 0..2 {
        let out = hn.as_admin(i, &["peer", "lifecycle", "chaincode", "install", s(&pkg)]);
        assert!(
            out.status.success(),
            "install {i}: {}\n{}",
            text(&out),
            hn.logs()
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("Chaincode code package identifier: {package_id}"),
            "{}",
            text(&out)
        );
        let out = hn.as_admin(i, &["peer", "lifecycle", "chaincode", "queryinstalled"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("Installed chaincodes on peer:\nPackage ID: {package_id}, Label: basic_1.0\n")
        );
    }
    let orderer_flags = hn.orderer_flags();
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
    for i in 0..2 {
        let mut args = vec!["peer", "lifecycle", "chaincode", "approveformyorg"];
        args.extend(orderer_flags.iter().map(String::as_str));
        args.extend(def);
        args.extend(["--package-id", &package_id]);
        let out = hn.as_admin(i, &args);
        assert!(
            out.status.success(),
            "approve {i}: {}\n{}",
            text(&out),
            hn.logs()
        );
        assert!(
            text(&out).contains("committed with status (VALID)"),
            "{}",
            text(&out)
        );
    }
    // Each approval was waited for on its own org's peer: let both peers see both (genesis +
    // two approvals) before asking one of them, and before both simulate the commit.
    for i in 0..2 {
        let fs = hn.peer_fs(i);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while hn.ledger_height(&["--peer-fs-path", s(&fs)]) != Some(3) {
            assert!(
                std::time::Instant::now() < deadline,
                "peer {i}:\n{}",
                hn.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
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
    let out = hn.as_admin(0, &args);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(v["approvals"]["Org1MSP"], true, "{v}");
    assert_eq!(v["approvals"]["Org2MSP"], true, "{v}");

    let (peer1, peer2) = (hn.peer_address(0), hn.peer_address(1));
    let mut args = vec!["peer", "lifecycle", "chaincode", "commit"];
    args.extend(orderer_flags.iter().map(String::as_str));
    args.extend(def);
    let (ca1, ca2) = (hn.tlsca(0), hn.tlsca(1));
    args.extend(["--peerAddresses", &peer1, "--tlsRootCertFiles", s(&ca1)]);
    args.extend(["--peerAddresses", &peer2, "--tlsRootCertFiles", s(&ca2)]);
    let out = hn.as_admin(0, &args);
    assert!(
        out.status.success(),
        "commit: {}\n{}",
        text(&out),
        hn.logs()
    );

    let out = hn.as_admin(
        1,
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
    let out = hn.as_admin(0, &args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("must be sequence 2"), "{}", text(&out));

    // Genesis, two approvals, one commit: four blocks on both peers.
    for i in 0..2 {
        let fs = hn.peer_fs(i);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while hn.ledger_height(&["--peer-fs-path", s(&fs)]) != Some(4) {
            assert!(
                std::time::Instant::now() < deadline,
                "peer {i}:\n{}",
                hn.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // queryinstalled names the committed definition that runs the package (Fabric's JSON).
    for i in 0..2 {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let out = hn.as_admin(
                i,
                &[
                    "peer",
                    "lifecycle",
                    "chaincode",
                    "queryinstalled",
                    "-O",
                    "json",
                ],
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
            let cc = &v["installed_chaincodes"][0];
            assert_eq!(cc["package_id"], package_id.as_str(), "{v}");
            if cc["references"]["mychannel"]["chaincodes"][0]
                == serde_json::json!({"name": "basic", "version": "1.0"})
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "peer {i}: {v}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // The definition runs: Fabric's Node contract (fabric-contract-api) as the chaincode
    // server the package names, and an application's calls through org1's Gateway.
    let node_cc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop/node-chaincode");
    assert!(
        node_cc
            .join("node_modules/.bin/fabric-chaincode-node")
            .exists(),
        "interop/node-chaincode needs its npm packages (scripts/test runs npm ci there)"
    );
    let mut server = Command::new(node_cc.join("node_modules/.bin/fabric-chaincode-node"));
    server
        .args(["server", "--chaincode-address"])
        .arg(format!("127.0.0.1:{cc_port}"))
        .args(["--chaincode-id", &package_id])
        .current_dir(&node_cc)
        .stdout(std::fs::File::create(dir.join("cc.log")).unwrap())
        .stderr(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("CORE_") {
            server.env_remove(k);
        }
    }
    let server = Proc {
        child: server.spawn().unwrap(),
        log: dir.join("cc.log"),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", cc_port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = hn.as_admin(
        0,
        &[
            "chaincode",
            "invoke",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["CreateAsset","asset9","blue","5","Tomoko","300"]}"#,
        ],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), hn.logs());
    assert!(
        text(&out).contains("committed with status (VALID)"),
        "{}",
        text(&out)
    );
    let out = hn.as_admin(
        1,
        &[
            "chaincode",
            "query",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["ReadAsset","asset9"]}"#,
        ],
    );
    assert!(out.status.success(), "{}\n{}", text(&out), hn.logs());
    let asset: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(asset["Owner"], "Tomoko", "{asset}");
    let out = hn.as_admin(
        0,
        &[
            "chaincode",
            "query",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-c",
            r#"{"Args":["ReadAsset","nope"]}"#,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    drop(server);
}

/// Crash safety with SIGKILL: a stream of transactions (Org1 re-approving sequence 1 of a
/// chaincode with a new package id each time, through the CLI) while Org1's peer, and once the
/// orderer, are killed at a random moment during a transaction and restarted. Afterwards every
/// transaction the CLI reported committed is VALID on both peers, both peers and the orderer
/// hold the same blocks (header hashes), and the restarted peer's state answers with the last
/// approval.
#[test]
fn kill_9_during_commits_loses_nothing_reported() {
    let mut hn = HandNet::start();
    // WEFT_CRASH_SEED replays a run (the seed is printed).
    let mut seed = std::env::var("WEFT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
        })
        | 1;
    eprintln!("crash test seed: {seed} (WEFT_CRASH_SEED={seed} replays it)");
    let mut random = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    let approve_args = |n: usize, flags: &[String]| -> Vec<String> {
        let mut args: Vec<String> = ["peer", "lifecycle", "chaincode", "approveformyorg"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.extend(flags.iter().cloned());
        for a in [
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-v",
            "1.0",
            "--sequence",
            "1",
            "--waitForEventTimeout",
            "15s",
            "--package-id",
        ] {
            args.push(a.to_owned());
        }
        args.push(format!("pkg-{n}"));
        args
    };
    let txid_of = |out: &Output| -> Option<String> {
        let t = text(out);
        let start = t.find("txid [")? + 6;
        let end = start + t[start..].find(']')?;
        Some(t[start..end].to_owned())
    };
    let flags = hn.orderer_flags();
    let mut reported: Vec<String> = Vec::new();
    let mut n = 0;
    for round in 0..6 {
        for _ in 0..2 {
            n += 1;
            let args = approve_args(n, &flags);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = hn.as_admin(0, &args);
            assert!(
                out.status.success(),
                "round {round}: {}\n{}",
                text(&out),
                hn.logs()
            );
            reported.push(txid_of(&out).expect("a committed approval names its tx id"));
        }
        // One transaction in flight when the crash comes.
        n += 1;
        let args = approve_args(n, &flags);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let child = hn
            .admin_cmd(0, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(random(500)));
        if round == 3 {
            HandNet::kill9(&mut hn.orderer);
            hn.start_orderer();
        } else {
            HandNet::kill9(&mut hn.peers[0]);
            hn.start_peer(0);
        }
        let out = child.wait_with_output().unwrap();
        if out.status.success() {
            reported.push(txid_of(&out).expect("a committed approval names its tx id"));
        }
    }
    // The network still works, and the restarted peer reports this last one itself.
    n += 1;
    let args = approve_args(n, &flags);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = hn.as_admin(0, &args);
        if out.status.success() {
            reported.push(txid_of(&out).unwrap());
            break;
        }
        // A peer just restarted may still be catching up with the orderer (deliver backoff).
        assert!(
            std::time::Instant::now() < deadline,
            "{}\n{}",
            text(&out),
            hn.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let last = format!("pkg-{n}");

    let orderer_ledger = hn.dir().join("orderer/ledger");
    let (fs0, fs1) = (hn.peer_fs(0), hn.peer_fs(1));
    let at = [
        vec!["--orderer-ledger", s(&orderer_ledger)],
        vec!["--peer-fs-path", s(&fs0)],
        vec!["--peer-fs-path", s(&fs1)],
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let height = loop {
        let h: Vec<Option<u64>> = at.iter().map(|a| hn.ledger_height(a)).collect();
        if h[0].is_some() && h.iter().all(|x| *x == h[0]) {
            break h[0].unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "heights {h:?}\n{}",
            hn.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(height as usize > reported.len() / 10, "height {height}");
    for number in 0..height {
        let hashes: Vec<String> = at
            .iter()
            .map(|a| {
                let mut args = vec!["ledger", "block", "-C", "mychannel"];
                let num = number.to_string();
                args.push(&num);
                args.extend(a.iter().copied());
                let out = run(&args);
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("block {number}: {e}: {}", text(&out)));
                v["header_hash"].as_str().unwrap().to_owned()
            })
            .collect();
        assert!(
            hashes.iter().all(|h| *h == hashes[0]),
            "block {number}: {hashes:?}"
        );
    }
    for tx in &reported {
        for fs in [&fs0, &fs1] {
            let out = run(&[
                "ledger",
                "tx",
                tx,
                "--peer-fs-path",
                s(fs),
                "-C",
                "mychannel",
            ]);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("tx {tx} on {}: {e}: {}", fs.display(), text(&out)));
            assert_eq!(v["validation_code"], "VALID", "tx {tx}: {v}");
        }
    }
    let out = hn.as_admin(
        0,
        &[
            "peer",
            "lifecycle",
            "chaincode",
            "queryapproved",
            "-C",
            "mychannel",
            "-n",
            "basic",
            "-O",
            "json",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(v["source"]["package_id"], last.as_str(), "{v}");
    eprintln!(
        "crash test: {} transactions reported committed, {height} blocks, all present after 5 peer and 1 orderer SIGKILLs",
        reported.len()
    );
}

/// `weft up --config` asking for any free ports, so tests' networks never meet.
const ANY_PORTS: &str =
    "ports: { orderer: 0, ordererAdmin: 0, ordererOperations: 0, peers: [0, 0], \
                         peerOperations: [0, 0], chaincodeServers: [0, 0] }\n";

/// An up.yaml with fixed free ports below the kernel's ephemeral range (32768 and up here):
/// a network that is stopped and resumed needs its ports again, and a port the kernel handed
/// out once (`0`) may meanwhile be another test's listener or outgoing connection.
fn resumable_ports() -> String {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
    let mut rng = weft_configtx::testing::Rng(seed | 1);
    for _ in 0..100 {
        let base = 20_000 + rng.below(12_000) as u16;
        if (base..base + 11).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            let p = |i: u16| base + i;
            return format!(
                "ports: {{ orderer: {}, ordererAdmin: {}, ordererOperations: {}, peers: [{}, {}], \
                 peerOperations: [{}, {}], chaincodeServers: [{}, {}] }}\n",
                p(0),
                p(1),
                p(2),
                p(3),
                p(5),
                p(7),
                p(8),
                p(9),
                p(10)
            );
        }
    }
    panic!("no 11 free consecutive ports below 32000");
}

/// Stops a `weft up --detach` network when the test ends, passed or not.
struct UpGuard(PathBuf);

impl Drop for UpGuard {
    fn drop(&mut self) {
        let _ = run(&["down", "--dir", s(&self.0)]);
    }
}

/// The README's main command: `weft up --detach` in a new directory brings up an orderer and
/// two orgs' peers as processes, deploys asset-transfer launched and as chaincode servers and
/// commits a smoke transaction; the link table shows mutual TLS on every link; an application
/// submits and queries with `weft chaincode`; `weft down` stops every process; a second
/// `weft up` on the directory resumes the same ledger.
#[test]
fn weft_up_detach_chaincode_down_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let cc = Path::new(env!("CARGO_BIN_EXE_weft")).with_file_name("asset-transfer");
    assert!(
        cc.is_file(),
        "{} is missing: `cargo test --workspace` builds it (or cargo build -p asset-transfer)",
        cc.display()
    );
    let _guard = UpGuard(dir.clone());
    // Free ports that stay ours across the restart: other tests start networks at the same
    // time.
    let cfg = tmp.path().join("up.yaml");
    std::fs::write(&cfg, resumable_ports()).unwrap();
    let up = |expect: &str| {
        let out = run(&[
            "up",
            "--detach",
            "--dir",
            s(&dir),
            "--chaincode-bin",
            s(&cc),
            "--config",
            s(&cfg),
        ]);
        let all = text(&out);
        let logs: String = std::fs::read_dir(dir.join("logs"))
            .map(|d| {
                d.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
        assert!(out.status.success(), "{all}\n{logs}");
        assert!(all.contains(expect), "{all}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stdout = up("joined the channel");

    // The link table: every link probed and mutual.
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Links"))
        .skip(2)
        .take_while(|l| !l.trim().is_empty())
        .collect();
    assert!(table.len() >= 10, "{stdout}");
    for row in &table {
        assert!(
            !row.trim_start().starts_with('!'),
            "a link failed its probe: {stdout}"
        );
        assert!(row.contains(" yes "), "not mutual: {row}\n{stdout}");
    }
    for link in [
        "-> orderer (Deliver blocks)",
        "(Gateway endorsement)",
        "chaincode service",
        "-> chaincode server basic-ccaas",
        "channel participation API",
    ] {
        assert!(
            table.iter().any(|r| r.contains(link)),
            "no {link}: {stdout}"
        );
    }

    let net: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("network.json")).unwrap()).unwrap();
    let peer = |i: usize| &net["peers"][i];
    let user = |msp: &str| {
        net["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["msp_id"] == msp && u["name"].as_str().unwrap().starts_with("User1@"))
            .unwrap()
            .clone()
    };
    let as_user = |i: usize, msp: &str, args: &[&str]| {
        let u = user(msp);
        let p = peer(i);
        weft()
            .env("CORE_PEER_ADDRESS", p["address"].as_str().unwrap())
            .env("CORE_PEER_LOCALMSPID", msp)
            .env("CORE_PEER_MSPCONFIGPATH", u["msp_dir"].as_str().unwrap())
            .env("CORE_PEER_TLS_ROOTCERT_FILE", p["tls_ca"].as_str().unwrap())
            .env(
                "CORE_PEER_TLS_CLIENTCERT_FILE",
                u["tls_cert"].as_str().unwrap(),
            )
            .env(
                "CORE_PEER_TLS_CLIENTKEY_FILE",
                u["tls_key"].as_str().unwrap(),
            )
            .args(args)
            .output()
            .unwrap()
    };
    for cc in ["basic", "basic-ccaas"] {
        let out = as_user(
            0,
            "Org1MSP",
            &[
                "chaincode",
                "invoke",
                "-C",
                "mychannel",
                "-n",
                cc,
                "-c",
                r#"{"Args":["CreateAsset","asset-t1","red","5","Ana","300"]}"#,
            ],
        );
        assert!(out.status.success(), "{cc}: {}", text(&out));
        assert!(
            text(&out).contains("committed with status (VALID)"),
            "{}",
            text(&out)
        );
    }
    // Org2's user reads through org2's peer (the commit reached it too).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = as_user(
            1,
            "Org2MSP",
            &[
                "chaincode",
                "query",
                "-C",
                "mychannel",
                "-n",
                "basic-ccaas",
                "-c",
                r#"{"Args":["ReadAsset","asset-t1"]}"#,
            ],
        );
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["Owner"], "Ana", "{v}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", text(&out));
        std::thread::sleep(Duration::from_millis(100));
    }

    // Every node's operations endpoint: /healthz, and /metrics (which wants a client
    // certificate from the org's TLS CA, as in Fabric).
    let u1 = user("Org1MSP");
    let scrape_as = |ops: &str, ca: &str, path: &str, cert: &str, key: &str| {
        let out = Command::new("curl")
            .args(["--silent", "--show-error", "--fail", "--cacert", ca])
            .args(["--cert", cert, "--key", key])
            .arg(format!("https://{ops}{path}"))
            .output()
            .expect("curl (scripts/deps installs it)");
        assert!(out.status.success(), "{ops}{path}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let scrape = |ops: &str, ca: &str, path: &str| {
        let (c, k) = (
            u1["tls_cert"].as_str().unwrap(),
            u1["tls_key"].as_str().unwrap(),
        );
        scrape_as(ops, ca, path, c, k)
    };
    let p0 = peer(0);
    let ca = p0["tls_ca"].as_str().unwrap();
    let ops = p0["operations_address"].as_str().unwrap();
    assert!(scrape(ops, ca, "/healthz").contains("\"OK\""));
    let metrics = scrape(ops, ca, "/metrics");
    for name in [
        "endorser_proposals_received",
        "ledger_blockchain_height",
        "ledger_transaction_count",
        "chaincode_registrations_refused_total",
    ] {
        assert!(metrics.contains(name), "no {name} in:\n{metrics}");
    }
    let o = &net["orderer"];
    let metrics = scrape_as(
        o["operations_address"].as_str().unwrap(),
        o["tls_ca"].as_str().unwrap(),
        "/metrics",
        o["admin_tls_cert"].as_str().unwrap(),
        o["admin_tls_key"].as_str().unwrap(),
    );
    assert!(metrics.contains("broadcast_processed_count"), "{metrics}");

    // `weft bench` finds everything it needs in network.json (smoke run: no timing checks).
    let out = run(&["bench", "--dir", s(&dir), "--count", "40", "--clients", "4"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("completed  40"), "{}", text(&out));

    let fs = peer(0)["fs_path"].as_str().unwrap().to_owned();
    let height = || {
        let out = run(&["ledger", "height", "-C", "mychannel", "--peer-fs-path", &fs]);
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = height();
    assert!(
        before >= 7,
        "genesis, 4 approvals in 1+ blocks, commits, 4 transactions: {before}"
    );

    let out = run(&["down", "--dir", s(&dir)]);
    assert!(out.status.success(), "{}", text(&out));
    for p in net["processes"].as_array().unwrap_or(&Vec::new()) {
        let pid = p["pid"].as_u64().unwrap();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty() || stat.contains(") Z"),
            "{} still runs after weft down",
            p["name"]
        );
    }
    assert_eq!(height(), before, "the ledger is kept");

    // Resume: same ledger, joins and definitions skipped, a new smoke transaction on top.
    up("already joined");
    assert!(height() > before);
    let out = run(&["down", "--dir", s(&dir), "--purge"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!dir.exists());
}

/// `weft bench --compare all` starts its own networks (plaintext, TLS, mutual TLS; launched and
/// chaincode server; commits from CommitStatus and from a filtered-block stream), drives each,
/// stops them, and prints the ratios: a smoke run with a small count, no timing assertions.
#[test]
fn weft_bench_compare_smoke_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cc = Path::new(env!("CARGO_BIN_EXE_weft")).with_file_name("asset-transfer");
    assert!(cc.is_file(), "{} is missing", cc.display());
    let json = tmp.path().join("bench.json");
    let cfg = tmp.path().join("up.yaml");
    std::fs::write(&cfg, ANY_PORTS).unwrap();
    let out = weft()
        .env("WEFT_CHAINCODE_BIN", &cc)
        .args([
            "bench",
            "--compare",
            "all",
            "--count",
            "30",
            "--clients",
            "3",
        ])
        .args([
            "--compare-dir",
            s(&tmp.path().join("nets")),
            "--json",
            s(&json),
        ])
        .args(["--up-config", s(&cfg)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    for want in [
        "tls=off",
        "tls=server",
        "tls=mutual",
        "basic-ccaas",
        "commit=blocks",
        "ratio",
    ] {
        assert!(all.contains(want), "no {want:?} in:\n{all}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let runs = report["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5, "{report}");
    for run in runs {
        assert_eq!(run["figures"]["errors"], 0, "{run}");
    }
    assert!(
        runs.iter().any(|r| r["config"]["commit"] == "blocks"),
        "{report}"
    );
    // Every network it started is stopped.
    let leftover = std::process::Command::new("pgrep")
        .args(["-f", s(&tmp.path().join("nets"))])
        .output()
        .unwrap();
    assert!(
        leftover.stdout.is_empty(),
        "still running: {}",
        String::from_utf8_lossy(&leftover.stdout)
    );
}
