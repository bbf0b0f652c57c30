//! The handshake matrix: real rustls servers on 127.0.0.1, real clients over TCP, every
//! combination that matters, each side's outcome asserted (success or the exact diagnosis).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_tls::probe::{probe, ClientCertPolicy, ProbeOptions};
use weft_tls::{
    ClientAuth, ClientIdentity, Diagnosis, Endpoint, HandshakeError, HandshakeInfo, Identity,
    PinSet, Profile, Settings, Side, TlsClient, TlsServer, Trust,
};

const WAIT: Duration = Duration::from_secs(10);

struct Pki {
    ca: CertificateAuthority,
    other_ca: CertificateAuthority,
}

fn ca(name: &str, alg: KeyAlgorithm) -> CertificateAuthority {
    let subject = Subject {
        organization: Some(format!("{name}.example.com")),
        common_name: format!("tlsca.{name}.example.com"),
        ..Subject::default()
    };
    CertificateAuthority::new_root(&subject, Validity::ten_years(), alg).unwrap()
}

impl Pki {
    fn new() -> Self {
        Pki {
            ca: ca("org1", KeyAlgorithm::EcdsaP256),
            other_ca: ca("evil", KeyAlgorithm::EcdsaP256),
        }
    }
}

fn issue(
    ca: &CertificateAuthority,
    cn: &str,
    profile: LeafProfile,
    sans: &[&str],
    validity: Validity,
    alg: KeyAlgorithm,
) -> Identity {
    let cert = ca
        .issue(
            &LeafRequest::new(Subject::cn(cn), profile)
                .sans(sans.iter().copied())
                .validity(validity)
                .algorithm(alg),
        )
        .unwrap();
    Identity::new(vec![cert.der.clone()], cert.key, cn).unwrap()
}

fn server_id(ca: &CertificateAuthority) -> Identity {
    issue(
        ca,
        "peer0.org1.example.com",
        LeafProfile::TlsServer,
        &["peer0.org1.example.com", "localhost", "127.0.0.1"],
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
}

fn client_id(ca: &CertificateAuthority, cn: &str) -> Identity {
    issue(
        ca,
        cn,
        LeafProfile::TlsClient,
        &[],
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
}

fn roots(ca: &CertificateAuthority) -> Trust {
    Trust::Roots(vec![ca.certificate().clone()])
}

type Outcome = Result<HandshakeInfo, HandshakeError>;

/// A TLS server on 127.0.0.1 that reports every handshake's outcome. After a successful
/// handshake it answers "ok\n" to any read, then closes.
struct Running {
    addr: SocketAddr,
    server: Arc<TlsServer>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(server: TlsServer) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Arc::new(
            server
                .with_endpoint(addr.to_string())
                .with_settings(Settings::peer())
                .with_handshake_timeout(Duration::from_secs(5)),
        );
        let (tx, outcomes) = mpsc::unbounded_channel();
        let srv = server.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, peer)) = listener.accept().await else {
                    return;
                };
                let srv = srv.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match srv.accept(tcp, Some(peer.to_string())).await {
                        Ok(mut accepted) => {
                            let _ = tx.send(Ok(accepted.info.clone()));
                            let mut buf = [0u8; 64];
                            if let Ok(Ok(n)) =
                                tokio::time::timeout(WAIT, accepted.stream.read(&mut buf)).await
                            {
                                if n > 0 {
                                    let _ = accepted.stream.write_all(b"ok\n").await;
                                    let _ = accepted.stream.flush().await;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            }
        });
        Running {
            addr,
            server,
            outcomes,
            task,
        }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint::parse(&self.addr.to_string()).unwrap()
    }

    async fn outcome(&mut self) -> Outcome {
        tokio::time::timeout(WAIT, self.outcomes.recv())
            .await
            .expect("server outcome")
            .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn client(trust: Trust, identity: Option<Identity>, profile: Profile) -> TlsClient {
    let identity = match identity {
        Some(id) => ClientIdentity::Certificate(id),
        None => ClientIdentity::Anonymous,
    };
    TlsClient::new(trust, identity, profile)
        .unwrap()
        .with_settings(Settings::peer())
        .with_handshake_timeout(Duration::from_secs(5))
}

/// Connect, and on success do one request/response so a late refusal cannot hide.
async fn dial(client: &TlsClient, endpoint: &Endpoint) -> Result<HandshakeInfo, HandshakeError> {
    let mut c = client.connect_tcp(endpoint).await?;
    c.stream.write_all(b"ping\n").await.unwrap();
    let mut buf = [0u8; 3];
    c.stream
        .read_exact(&mut buf)
        .await
        .expect("a successful handshake must carry data");
    assert_eq!(&buf, b"ok\n");
    Ok(c.info)
}

fn expect_err(r: Result<HandshakeInfo, HandshakeError>, code: &str) -> HandshakeError {
    match r {
        Ok(info) => panic!("expected failure {code}, got success: {info:?}"),
        Err(e) => {
            assert_eq!(e.code(), code, "unexpected diagnosis: {e}");
            e
        }
    }
}

fn has(e: &HandshakeError, needles: &[&str]) {
    let msg = e.to_string();
    for n in needles {
        assert!(msg.contains(n), "message lacks '{n}': {msg}");
    }
}

// ---- client authentication: none / request / require × certificate × trust ----

#[tokio::test]
async fn client_auth_none_accepts_anonymous_and_does_not_ask() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(&server_id(&pki.ca), ClientAuth::None, Profile::Fabric).unwrap(),
    )
    .await;
    let info = dial(
        &client(roots(&pki.ca), None, Profile::Fabric),
        &srv.endpoint(),
    )
    .await
    .unwrap();
    assert_eq!(info.protocol, "TLSv1.3");
    assert_eq!(info.alpn.as_deref(), Some("h2"));
    assert!(!info.client_cert_requested);
    let s = srv.outcome().await.unwrap();
    assert!(!s.client_cert_presented);
    assert_eq!(s.mode(), "server-authenticated TLS");
}

#[tokio::test]
async fn client_auth_request_accepts_anonymous_and_verifies_presented_certificates() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Request(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    // Without a certificate: accepted, but the server did ask.
    let info = dial(
        &client(roots(&pki.ca), None, Profile::Fabric),
        &srv.endpoint(),
    )
    .await
    .unwrap();
    assert!(info.client_cert_requested && !info.client_cert_presented);
    assert!(!srv.outcome().await.unwrap().client_cert_presented);

    // With a trusted certificate: mutual TLS.
    let c = client(
        roots(&pki.ca),
        Some(client_id(&pki.ca, "User1@org1.example.com")),
        Profile::Fabric,
    );
    assert!(
        dial(&c, &srv.endpoint())
            .await
            .unwrap()
            .client_cert_presented
    );
    let s = srv.outcome().await.unwrap();
    assert_eq!(s.mode(), "mutual TLS");

    // With an untrusted certificate: refused on both sides, even though optional.
    let c = client(
        roots(&pki.ca),
        Some(client_id(&pki.other_ca, "mallory")),
        Profile::Fabric,
    );
    let e = expect_err(dial(&c, &srv.endpoint()).await, "client_cert_rejected");
    has(
        &e,
        &[
            "rejected this client's certificate",
            "unknown_ca",
            "CORE_PEER_TLS_CLIENTCERT_FILE",
        ],
    );
    let e = expect_err(srv.outcome().await, "client_ca_untrusted");
    has(
        &e,
        &[
            "CN=mallory",
            "tlsca.evil.example.com",
            "CORE_PEER_TLS_CLIENTROOTCAS_FILES",
            "127.0.0.1:",
        ],
    );
}

#[tokio::test]
async fn client_auth_require_refuses_missing_and_untrusted_certificates() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Require(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let e = expect_err(
        dial(
            &client(roots(&pki.ca), None, Profile::Fabric),
            &srv.endpoint(),
        )
        .await,
        "client_cert_required",
    );
    has(
        &e,
        &[
            "requires a client certificate",
            "sent none",
            "CORE_PEER_TLS_CLIENTCERT_FILE",
        ],
    );
    assert_eq!(e.side, Side::Client);
    let e = expect_err(srv.outcome().await, "client_sent_no_cert");
    has(
        &e,
        &[
            "without a client certificate",
            "CORE_PEER_TLS_CLIENTAUTHREQUIRED",
        ],
    );
    assert_eq!(e.side, Side::Server);

    let good = client(
        roots(&pki.ca),
        Some(client_id(&pki.ca, "Admin@org1.example.com")),
        Profile::Fabric,
    );
    let info = dial(&good, &srv.endpoint()).await.unwrap();
    assert!(info.client_cert_presented);
    let s = srv.outcome().await.unwrap();
    assert!(s.client_cert_presented);
    assert_eq!(
        weft_crypto::CertSummary::parse(&s.peer_chain[0])
            .unwrap()
            .common_name
            .as_deref(),
        Some("Admin@org1.example.com")
    );

    let bad = client(
        roots(&pki.ca),
        Some(client_id(&pki.other_ca, "mallory")),
        Profile::Fabric,
    );
    expect_err(dial(&bad, &srv.endpoint()).await, "client_cert_rejected");
    expect_err(srv.outcome().await, "client_ca_untrusted");
}

#[tokio::test]
async fn expired_client_certificate_is_refused_with_its_dates() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Require(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let now = OffsetDateTime::now_utc();
    let expired = issue(
        &pki.ca,
        "old-client",
        LeafProfile::TlsClient,
        &[],
        Validity::between(
            now - time::Duration::days(30),
            now - time::Duration::days(1),
        ),
        KeyAlgorithm::EcdsaP256,
    );
    let e = expect_err(
        dial(
            &client(roots(&pki.ca), Some(expired), Profile::Fabric),
            &srv.endpoint(),
        )
        .await,
        "client_cert_rejected",
    );
    has(&e, &["certificate_expired"]);
    let e = expect_err(srv.outcome().await, "client_cert_expired");
    has(&e, &["CN=old-client", "expired at", "renewed certificate"]);
}

// ---- the server's certificate: trust, dates, names ----

#[tokio::test]
async fn untrusted_server_ca_is_named_on_both_sides() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(&server_id(&pki.ca), ClientAuth::None, Profile::Fabric).unwrap(),
    )
    .await;
    let e = expect_err(
        dial(
            &client(roots(&pki.other_ca), None, Profile::Fabric),
            &srv.endpoint(),
        )
        .await,
        "server_ca_untrusted",
    );
    has(
        &e,
        &[
            "CN=peer0.org1.example.com",
            "CN=tlsca.org1.example.com",
            "CORE_PEER_TLS_ROOTCERT_FILE",
        ],
    );
    assert_eq!(
        e.presented_chain.len(),
        1,
        "the presented chain is kept for reports"
    );
    let e = expect_err(srv.outcome().await, "peer_rejected_our_cert");
    has(&e, &["unknown_ca", "rejected this server's certificate"]);
}

#[tokio::test]
async fn expired_and_not_yet_valid_server_certificates_report_dates() {
    let pki = Pki::new();
    let now = OffsetDateTime::now_utc();
    let expired = issue(
        &pki.ca,
        "peer0.org1.example.com",
        LeafProfile::TlsServer,
        &["127.0.0.1"],
        Validity::between(
            now - time::Duration::days(400),
            now - time::Duration::days(35),
        ),
        KeyAlgorithm::EcdsaP256,
    );
    let mut srv =
        Running::start(TlsServer::new(&expired, ClientAuth::None, Profile::Fabric).unwrap()).await;
    let e = expect_err(
        dial(
            &client(roots(&pki.ca), None, Profile::Fabric),
            &srv.endpoint(),
        )
        .await,
        "server_cert_expired",
    );
    let Diagnosis::ServerCertExpired {
        not_after, now: at, ..
    } = &e.diagnosis
    else {
        unreachable!()
    };
    assert!(
        (*not_after - (now - time::Duration::days(35)))
            .whole_seconds()
            .abs()
            <= 1
    );
    assert!(*at > *not_after);
    has(&e, &["expired at", "CORE_PEER_TLS_CERT_FILE"]);
    has(
        &expect_err(srv.outcome().await, "peer_rejected_our_cert"),
        &["certificate_expired"],
    );

    let future = issue(
        &pki.ca,
        "peer0.org1.example.com",
        LeafProfile::TlsServer,
        &["127.0.0.1"],
        Validity::between(
            now + time::Duration::days(2),
            now + time::Duration::days(30),
        ),
        KeyAlgorithm::EcdsaP256,
    );
    let srv =
        Running::start(TlsServer::new(&future, ClientAuth::None, Profile::Fabric).unwrap()).await;
    let e = expect_err(
        dial(
            &client(roots(&pki.ca), None, Profile::Fabric),
            &srv.endpoint(),
        )
        .await,
        "server_cert_not_yet_valid",
    );
    has(&e, &["not valid before", "clocks"]);
}

#[tokio::test]
async fn wrong_host_lists_the_names_the_certificate_has_and_override_fixes_it() {
    let pki = Pki::new();
    let other = issue(
        &pki.ca,
        "orderer.example.com",
        LeafProfile::TlsServer,
        &["orderer.example.com", "orderer"],
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    );
    let mut srv =
        Running::start(TlsServer::new(&other, ClientAuth::None, Profile::Fabric).unwrap()).await;
    let c = client(roots(&pki.ca), None, Profile::Fabric);
    let e = expect_err(dial(&c, &srv.endpoint()).await, "server_name_mismatch");
    has(
        &e,
        &[
            "expected the name '127.0.0.1'",
            "orderer.example.com",
            "orderer",
        ],
    );
    expect_err(srv.outcome().await, "peer_rejected_our_cert");

    let ep = srv
        .endpoint()
        .with_server_name("orderer.example.com")
        .unwrap();
    dial(&c, &ep).await.unwrap();
    srv.outcome().await.unwrap();
}

// ---- pinned certificates (replica network) ----

fn p384(ca: &CertificateAuthority, cn: &str) -> Identity {
    issue(
        ca,
        cn,
        LeafProfile::TlsServer,
        &[cn],
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP384,
    )
}

#[tokio::test]
async fn pinned_tls13_p384_links_authenticate_both_nodes() {
    let ca = ca("replicas", KeyAlgorithm::EcdsaP384);
    let (r1, r2, r3) = (
        p384(&ca, "replica1"),
        p384(&ca, "replica2"),
        p384(&ca, "replica3"),
    );
    let pins = PinSet::new()
        .with("replica1", r1.chain()[0].clone())
        .with("replica2", r2.chain()[0].clone());
    let mut srv = Running::start(
        TlsServer::new(
            &r1,
            ClientAuth::Require(Trust::Pinned(pins.clone())),
            Profile::Tls13P384,
        )
        .unwrap(),
    )
    .await;
    let c = client(Trust::Pinned(pins.clone()), Some(r2), Profile::Tls13P384);
    let info = dial(&c, &srv.endpoint().with_node("replica1"))
        .await
        .unwrap();
    assert_eq!(info.protocol, "TLSv1.3");
    assert_eq!(info.key_exchange.as_deref(), Some("secp384r1"));
    assert_eq!(info.pinned_node.as_deref(), Some("replica1"));
    let s = srv.outcome().await.unwrap();
    assert_eq!(s.pinned_node.as_deref(), Some("replica2"));

    // Dialing replica1's address while expecting replica2: replica1's cert is not replica2's pin.
    let e = expect_err(
        dial(&c, &srv.endpoint().with_node("replica2")).await,
        "server_pin_mismatch",
    );
    has(
        &e,
        &["CN=replica1", "not the certificate pinned for replica2"],
    );
    expect_err(srv.outcome().await, "peer_rejected_our_cert");

    // A client whose certificate is not pinned (same CA!) is refused.
    let c3 = client(Trust::Pinned(pins), Some(r3), Profile::Tls13P384);
    let e = expect_err(
        dial(&c3, &srv.endpoint().with_node("replica1")).await,
        "client_cert_rejected",
    );
    has(&e, &["certificate_unknown"]);
    let e = expect_err(srv.outcome().await, "client_pin_mismatch");
    has(&e, &["CN=replica3", "replica1, replica2"]);
}

#[tokio::test]
async fn p384_profile_refuses_p256_certificates() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(&server_id(&pki.ca), ClientAuth::None, Profile::Tls13P384).unwrap(),
    )
    .await;
    let e = client(roots(&pki.ca), None, Profile::Tls13P384)
        .connect_tcp(&srv.endpoint())
        .await
        .unwrap_err();
    // The server cannot sign with a scheme the strict client accepts.
    assert!(
        matches!(e.diagnosis, Diagnosis::NoCommonParameters { .. }),
        "unexpected: {e}"
    );
    let s = srv.outcome().await.unwrap_err();
    assert!(
        matches!(s.diagnosis, Diagnosis::NoCommonParameters { .. }),
        "unexpected: {s}"
    );
}

// ---- protocol versions ----

#[tokio::test]
async fn tls12_client_against_tls13_only_server_is_a_version_mismatch() {
    let ca = ca("replicas", KeyAlgorithm::EcdsaP384);
    let id = p384(&ca, "127.0.0.1");
    let mut srv =
        Running::start(TlsServer::new(&id, ClientAuth::None, Profile::Tls13P384).unwrap()).await;
    let c = client(
        Trust::Roots(vec![ca.certificate().clone()]),
        None,
        Profile::Tls12Only,
    );
    let e = expect_err(dial(&c, &srv.endpoint()).await, "protocol_version");
    has(&e, &["no TLS version in common", "TLS 1.2 only"]);
    let e = expect_err(srv.outcome().await, "protocol_version");
    has(
        &e,
        &["offered no TLS version", "TLS 1.3 only with secp384r1"],
    );
}

#[tokio::test]
async fn tls12_links_diagnose_client_certificate_problems_too() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Require(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let anon = client(roots(&pki.ca), None, Profile::Tls12Only);
    expect_err(dial(&anon, &srv.endpoint()).await, "client_cert_required");
    expect_err(srv.outcome().await, "client_sent_no_cert");

    let bad = client(
        roots(&pki.ca),
        Some(client_id(&pki.other_ca, "mallory")),
        Profile::Tls12Only,
    );
    expect_err(dial(&bad, &srv.endpoint()).await, "client_cert_rejected");
    expect_err(srv.outcome().await, "client_ca_untrusted");

    let good = client(
        roots(&pki.ca),
        Some(client_id(&pki.ca, "User1@org1.example.com")),
        Profile::Tls12Only,
    );
    assert_eq!(
        dial(&good, &srv.endpoint()).await.unwrap().protocol,
        "TLSv1.2"
    );
    srv.outcome().await.unwrap();
}

// ---- plaintext / TLS mismatches ----

#[tokio::test]
async fn plaintext_client_at_a_tls_port_is_explained_on_both_sides() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(&server_id(&pki.ca), ClientAuth::None, Profile::Fabric).unwrap(),
    )
    .await;
    let e = weft_tls::plaintext::probe_plaintext(
        &srv.addr.to_string(),
        Arc::new(Settings::peer()),
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), "plaintext_to_tls_port");
    has(&e, &["requires TLS", "CORE_PEER_TLS_ENABLED"]);
    let e = expect_err(srv.outcome().await, "plaintext_to_tls_port");
    has(&e, &["HTTP/2 connection preface", "must connect with TLS"]);
}

#[tokio::test]
async fn tls_client_at_a_weft_plaintext_port_is_explained_on_both_sides() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        weft_tls::plaintext::accept_plaintext(
            tcp,
            &addr.to_string(),
            Some(peer.to_string()),
            Arc::new(Settings::peer()),
            Duration::from_secs(5),
        )
        .await
        .map(|_| ())
    });
    let ep = Endpoint::parse(&addr.to_string()).unwrap();
    let e = expect_err(
        dial(&client(roots(&pki.ca), None, Profile::Fabric), &ep).await,
        "tls_to_plaintext_port",
    );
    has(
        &e,
        &[
            "does not have TLS enabled",
            "weft: this port does not speak TLS",
            "CORE_PEER_TLS_ENABLED",
        ],
    );
    let e = server.await.unwrap().unwrap_err();
    assert_eq!(e.code(), "tls_to_plaintext_port");
    has(&e, &["started a TLS handshake", "TLS is not enabled here"]);
}

#[tokio::test]
async fn tls_client_at_a_plain_http2_server_is_recognised() {
    let pki = Pki::new();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        // What an HTTP/2 server writes first: an empty SETTINGS frame.
        tcp.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
        let mut buf = [0u8; 512];
        let _ = tcp.read(&mut buf).await;
    });
    let ep = Endpoint::parse(&addr.to_string()).unwrap();
    let e = expect_err(
        dial(&client(roots(&pki.ca), None, Profile::Fabric), &ep).await,
        "tls_to_plaintext_port",
    );
    has(&e, &["HTTP/2 frame (gRPC without TLS)"]);
    server.abort();
}

#[tokio::test]
async fn garbage_at_a_tls_port_is_refused_and_the_server_keeps_serving() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Require(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let attacks: [&[u8]; 4] = [
        &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02],
        // A TLS record header announcing an absurd length.
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00, 0x00],
        // A ClientHello cut short.
        &[
            0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03,
        ],
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for bytes in attacks {
        let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        let _ = tcp.shutdown().await;
        let e = srv.outcome().await.unwrap_err();
        assert!(
            matches!(
                e.diagnosis,
                Diagnosis::PlaintextToTlsPort { .. }
                    | Diagnosis::ClosedDuringHandshake
                    | Diagnosis::Other { .. }
            ),
            "{e}"
        );
    }
    // Still serving.
    let c = client(
        roots(&pki.ca),
        Some(client_id(&pki.ca, "User1@org1.example.com")),
        Profile::Fabric,
    );
    dial(&c, &srv.endpoint()).await.unwrap();
    srv.outcome().await.unwrap();
}

#[tokio::test]
async fn nothing_listening_is_a_connect_failure_not_a_tls_one() {
    let pki = Pki::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ep = Endpoint::parse(&addr.to_string()).unwrap();
    let e = expect_err(
        dial(&client(roots(&pki.ca), None, Profile::Fabric), &ep).await,
        "connect_failed",
    );
    has(&e, &["cannot connect to", "is running"]);
}

// ---- live replacement of trusted client CAs ----

#[tokio::test]
async fn client_roots_are_replaced_on_a_running_server() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Require(roots(&pki.other_ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let c = client(
        roots(&pki.ca),
        Some(client_id(&pki.ca, "User1@org1.example.com")),
        Profile::Fabric,
    );
    expect_err(dial(&c, &srv.endpoint()).await, "client_cert_rejected");
    expect_err(srv.outcome().await, "client_ca_untrusted");

    srv.server.set_client_trust(roots(&pki.ca)).unwrap();
    dial(&c, &srv.endpoint()).await.unwrap();
    srv.outcome().await.unwrap();

    // And back: the removed CA no longer gets in, resumption included.
    srv.server.set_client_trust(roots(&pki.other_ca)).unwrap();
    expect_err(dial(&c, &srv.endpoint()).await, "client_cert_rejected");
    expect_err(srv.outcome().await, "client_ca_untrusted");
}

#[tokio::test]
async fn replacing_client_roots_without_client_auth_is_refused() {
    let pki = Pki::new();
    let srv = TlsServer::new(&server_id(&pki.ca), ClientAuth::None, Profile::Fabric).unwrap();
    let e = srv.set_client_trust(roots(&pki.ca)).unwrap_err();
    assert!(
        e.to_string().contains("client authentication is off"),
        "{e}"
    );
}

// ---- the doctor, against the same servers ----

#[tokio::test]
async fn doctor_reports_a_working_mutual_tls_endpoint() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Require(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let report = probe(
        &srv.addr.to_string(),
        ProbeOptions {
            ca: Some(vec![pki.ca.certificate().clone()]),
            identity: Some(client_id(&pki.ca, "User1@org1.example.com")),
            ..ProbeOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.ok(), "{}", report.render());
    assert_eq!(report.client_cert, ClientCertPolicy::Required);
    let text = report.render();
    for needle in [
        "handshake:    OK, TLSv1.3",
        "required (clients without one are refused)",
        "[0] subject: CN=peer0.org1.example.com",
        "SANs:    DNS:peer0.org1.example.com, DNS:localhost, IP:127.0.0.1",
        "verdict:      OK",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    srv.outcome().await.unwrap();
    expect_err(srv.outcome().await, "client_sent_no_cert");
}

#[tokio::test]
async fn doctor_without_material_shows_the_chain_and_what_is_missing() {
    let pki = Pki::new();
    let mut srv = Running::start(
        TlsServer::new(
            &server_id(&pki.ca),
            ClientAuth::Request(roots(&pki.ca)),
            Profile::Fabric,
        )
        .unwrap(),
    )
    .await;
    let report = probe(&srv.addr.to_string(), ProbeOptions::default())
        .await
        .unwrap();
    assert!(!report.ok());
    let text = report.render();
    for needle in [
        "FAILED (server_ca_untrusted)",
        "issuer:  O=org1.example.com, CN=tlsca.org1.example.com",
        "requested by the server",
        "--cafile",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    let _ = srv.outcome().await;

    let report = probe(
        &srv.addr.to_string(),
        ProbeOptions {
            ca: Some(vec![pki.ca.certificate().clone()]),
            ..ProbeOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(report.ok(), "{}", report.render());
    assert_eq!(report.client_cert, ClientCertPolicy::Optional);
}
