//! Seed 000's attacks on the chaincode service, each tried for real: a weft-shim chaincode (or a
//! raw TLS client) against the peer's `ChaincodeSupport` on 127.0.0.1, with the per-launch
//! certificates of `LaunchAuthority`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use weft_peer::chaincode_service::{serve, ChaincodeRegistry, ChaincodeSupportService};
use weft_peer::launchcerts::{LaunchAuthority, LaunchCredentials, DEFAULT_WINDOW};
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::chaincode_support_client::ChaincodeSupportClient;
use weft_proto::protos::{ChaincodeId, ChaincodeMessage};
use weft_shim::contract::{Contract, Ctx};
use weft_shim::{LaunchConfig, LaunchTls, ShimError};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

const WAIT: Duration = Duration::from_secs(10);

struct Peer {
    addr: String,
    authority: Arc<LaunchAuthority>,
    registry: Arc<ChaincodeRegistry>,
    stop: Option<oneshot::Sender<()>>,
}

impl Peer {
    async fn start(window: time::Duration) -> Peer {
        Self::start_mode(window, false).await
    }

    async fn start_mode(window: time::Duration, dev_mode: bool) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let authority = Arc::new(LaunchAuthority::new("127.0.0.1", window).unwrap());
        let registry = Arc::new(ChaincodeRegistry::default());
        let service = ChaincodeSupportService::new(authority.clone(), registry.clone(), dev_mode);
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, service, async {
            let _ = stopped.await;
        }));
        Peer {
            addr,
            authority,
            registry,
            stop: Some(stop),
        }
    }

    fn refused(&self, code: &str) -> u64 {
        self.authority
            .counters()
            .0
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, n)| *n)
            .unwrap()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn chaincode() -> Contract {
    Contract::new("t").evaluate("Ping", |_ctx: Ctx, (): ()| async move {
        Ok::<_, weft_shim::ChaincodeError>("pong")
    })
}

fn launch(
    addr: &str,
    id: &str,
    creds: &LaunchCredentials,
) -> tokio::task::JoinHandle<Result<(), ShimError>> {
    let config = LaunchConfig {
        chaincode_id: id.to_owned(),
        peer_address: addr.to_owned(),
        tls: Some(LaunchTls {
            root_pem: creds.root_pem.clone().into_bytes(),
            client_cert_pem: creds.cert_pem.clone().into_bytes(),
            client_key_pem: creds.key_pem.clone().into_bytes(),
            server_name_override: None,
        }),
        mspid: Some("Org1MSP".into()),
    };
    tokio::spawn(weft_shim::start_with(chaincode(), config))
}

/// Launch and expect the chaincode to be refused; returns its error text.
async fn refused(addr: &str, id: &str, creds: &LaunchCredentials) -> String {
    let result = tokio::time::timeout(WAIT, launch(addr, id, creds))
        .await
        .expect("the refusal must come promptly")
        .unwrap();
    result
        .expect_err("the chaincode must be refused")
        .to_string()
}

#[tokio::test]
async fn a_genuine_launch_registers_and_its_stream_is_tracked() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    let creds = peer.authority.issue("asset:0a1b").unwrap();
    let running = launch(&peer.addr, "asset:0a1b", &creds);
    let connected = peer
        .registry
        .wait_registered("asset:0a1b", WAIT)
        .await
        .expect("registered");
    assert!(!connected.dev_mode());
    assert_eq!(peer.registry.package_ids(), ["asset:0a1b"]);
    running.abort();
    // The stream ends with the chaincode; the registry forgets it.
    for _ in 0..100 {
        if peer.registry.get("asset:0a1b").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(peer.registry.get("asset:0a1b").is_none());
}

#[tokio::test]
async fn plaintext_client_on_the_chaincode_port_is_refused() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    let e = weft_tls::plaintext::probe_plaintext(
        &peer.addr,
        Arc::new(weft_tls::Settings::peer()),
        WAIT,
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "plaintext_to_tls_port");
    assert!(e.to_string().contains("requires TLS"), "{e}");
}

#[tokio::test]
async fn chaincode_without_a_certificate_is_refused_at_the_handshake() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    let root =
        weft_crypto::pem::certificates(peer.authority.root_pem().as_bytes(), "root").unwrap();
    let client = TlsClient::new(
        Trust::Roots(root),
        ClientIdentity::Anonymous,
        Profile::Fabric,
    )
    .unwrap();
    let e = client
        .connect_tcp(&Endpoint::parse(&peer.addr).unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "client_cert_required");
    assert!(
        e.to_string().contains("requires a client certificate"),
        "{e}"
    );
}

#[tokio::test]
async fn self_signed_and_foreign_ca_certificates_are_refused() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    // A certificate from another peer's ephemeral CA.
    let other = LaunchAuthority::new("127.0.0.1", DEFAULT_WINDOW).unwrap();
    let mut foreign = other.issue("asset:0a1b").unwrap();
    foreign.root_pem = peer.authority.root_pem();
    let e = refused(&peer.addr, "asset:0a1b", &foreign).await;
    assert!(
        e.contains("rejected this client's certificate") && e.contains("unknown_ca"),
        "{e}"
    );

    // A self-signed certificate.
    let me = weft_crypto::CertificateAuthority::new_root(
        &weft_crypto::Subject::cn("asset:0a1b"),
        weft_crypto::Validity::ten_years(),
        weft_crypto::KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let selfsigned = LaunchCredentials {
        cert_pem: me.certificate_pem(),
        key_pem: me.key().to_pkcs8_pem(),
        root_pem: peer.authority.root_pem(),
        not_after: time::OffsetDateTime::now_utc(),
    };
    let e = refused(&peer.addr, "asset:0a1b", &selfsigned).await;
    assert!(e.contains("rejected this client's certificate"), "{e}");
    assert!(peer.registry.package_ids().is_empty());
}

#[tokio::test]
async fn a_certificate_for_another_package_is_refused() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    let creds = peer.authority.issue("other:ffff").unwrap();
    let e = refused(&peer.addr, "asset:0a1b", &creds).await;
    assert!(
        e.contains("issued for other:ffff") && e.contains("registers as asset:0a1b"),
        "{e}"
    );
    assert_eq!(peer.refused("wrong_package"), 1);
}

#[tokio::test]
async fn a_certificate_cannot_register_twice() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    let creds = peer.authority.issue("asset:0a1b").unwrap();
    let first = launch(&peer.addr, "asset:0a1b", &creds);
    peer.registry
        .wait_registered("asset:0a1b", WAIT)
        .await
        .expect("registered");

    // A stolen copy while the chaincode runs.
    let e = refused(&peer.addr, "asset:0a1b", &creds).await;
    assert!(e.contains("already has a registered stream"), "{e}");

    // And after it stopped: the certificate stays used.
    first.abort();
    for _ in 0..100 {
        if peer.registry.get("asset:0a1b").is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e = refused(&peer.addr, "asset:0a1b", &creds).await;
    assert!(
        e.contains("already used by a successful registration"),
        "{e}"
    );
    assert_eq!(
        (
            peer.refused("already_running"),
            peer.refused("certificate_reused")
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn a_certificate_past_its_window_is_refused() {
    let peer = Peer::start(time::Duration::seconds(1)).await;
    let creds = peer.authority.issue("asset:0a1b").unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The window is the certificate's validity, so TLS itself refuses it.
    let e = refused(&peer.addr, "asset:0a1b", &creds).await;
    assert!(
        e.contains("rejected this client's certificate") && e.contains("certificate_expired"),
        "{e}"
    );
}

#[tokio::test]
async fn a_launched_chaincode_refuses_a_fake_peer() {
    let real = Peer::start(DEFAULT_WINDOW).await;
    let fake = Peer::start(DEFAULT_WINDOW).await;
    // The chaincode was given the real peer's CA but is lured to the fake peer's address.
    let creds = real.authority.issue("asset:0a1b").unwrap();
    let e = refused(&fake.addr, "asset:0a1b", &creds).await;
    assert!(
        e.contains("not a CA this client trusts") && e.contains("CORE_PEER_TLS_ROOTCERT_FILE"),
        "{e}"
    );
    assert!(fake.registry.package_ids().is_empty());
}

/// Open a Register stream with a raw client and send `first`; returns the peer's answers and,
/// while the stream is still open, the registry's record of `name` (its dev-mode flag).
async fn raw_register(
    peer: &Peer,
    identity: ClientIdentity,
    first: ChaincodeMessage,
    name: &str,
) -> Result<(Vec<ChaincodeMessage>, Option<bool>), String> {
    let root =
        weft_crypto::pem::certificates(peer.authority.root_pem().as_bytes(), "root").unwrap();
    let client = TlsClient::new(Trust::Roots(root), identity, Profile::Fabric).unwrap();
    let channel = weft_tls::grpc::channel(Some(client), Endpoint::parse(&peer.addr).unwrap())
        .await
        .map_err(|e| e.to_string())?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(first).await.unwrap();
    let mut stream = ChaincodeSupportClient::new(channel)
        .register(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    let mut answers = Vec::new();
    for _ in 0..2 {
        match tokio::time::timeout(WAIT, stream.message()).await {
            Ok(Ok(Some(m))) => answers.push(m),
            Ok(Err(s)) => return Err(s.message().to_owned()),
            _ => break,
        }
    }
    let record = peer
        .registry
        .wait_registered(name, WAIT)
        .await
        .map(|c| c.dev_mode());
    drop(tx);
    Ok((answers, record))
}

fn register(name: &str) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: MsgType::Register as i32,
        payload: ChaincodeId {
            name: name.to_owned(),
            ..Default::default()
        }
        .encode_to_vec()
        .into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn first_message_other_than_register_is_refused() {
    let peer = Peer::start(DEFAULT_WINDOW).await;
    let creds = peer.authority.issue("asset:0a1b").unwrap();
    let id = Identity::from_pem(
        creds.cert_pem.as_bytes(),
        creds.key_pem.as_bytes(),
        "launch",
    )
    .unwrap();
    let ready = ChaincodeMessage {
        r#type: MsgType::Ready as i32,
        ..Default::default()
    };
    let e = raw_register(&peer, ClientIdentity::Certificate(id), ready, "asset:0a1b")
        .await
        .unwrap_err();
    assert!(
        e.contains("the first message was READY, not REGISTER"),
        "{e}"
    );
    assert_eq!(peer.refused("not_register"), 1);
}

#[tokio::test]
async fn development_mode_admits_a_hand_started_chaincode_and_marks_it() {
    // Production: a chaincode without a launch certificate does not even get through TLS.
    let net = Peer::start(DEFAULT_WINDOW).await;
    let e = raw_register(&net, ClientIdentity::Anonymous, register("mycc"), "mycc")
        .await
        .unwrap_err();
    assert!(e.contains("requires a client certificate"), "{e}");

    // Development mode: the same registration is admitted, and recorded as dev mode.
    let dev = Peer::start_mode(DEFAULT_WINDOW, true).await;
    let (answers, record) = raw_register(&dev, ClientIdentity::Anonymous, register("mycc"), "mycc")
        .await
        .unwrap();
    let types: Vec<i32> = answers.iter().map(|m| m.r#type).collect();
    assert_eq!(types, [MsgType::Registered as i32, MsgType::Ready as i32]);
    assert_eq!(
        record,
        Some(true),
        "recorded as a development-mode registration"
    );
    // Launch certificates are still checked normally in dev mode.
    let creds = dev.authority.issue("other:1").unwrap();
    let e = refused(&dev.addr, "asset:0a1b", &creds).await;
    assert!(e.contains("issued for other:1"), "{e}");
}
