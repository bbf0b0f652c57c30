#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The operations listener over real sockets: plain HTTP, TLS with and without required client
//! certificates (attack: no certificate), and a run-time log level change.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_ops::metrics::Registry;
use weft_ops::{Health, Ops, OpsServer, OpsTls, TlsKeys};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

async fn request<IO>(io: IO, method: Method, path: &str, body: &str) -> (StatusCode, String)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn plain(
    addr: std::net::SocketAddr,
    method: Method,
    path: &str,
    body: &str,
) -> (StatusCode, String) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    request(tcp, method, path, body).await
}

struct Pki {
    dir: tempfile::TempDir,
    ca: CertificateAuthority,
    /// The client certificate and key (PEM).
    client: (String, String),
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca = CertificateAuthority::new_root(
        &Subject::cn("ops test CA"),
        Validity::from_now(time::Duration::days(1)),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let server = ca
        .issue(
            &LeafRequest::new(Subject::cn("peer0"), LeafProfile::TlsServer)
                .sans(["localhost", "127.0.0.1"]),
        )
        .unwrap();
    std::fs::write(dir.path().join("server.crt"), server.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server.key.to_pkcs8_pem()).unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca.certificate_pem()).unwrap();
    let client = ca
        .issue(&LeafRequest::new(
            Subject::cn("prometheus"),
            LeafProfile::TlsClient,
        ))
        .unwrap();
    let client = (client.pem(), client.key.to_pkcs8_pem());
    Pki { dir, ca, client }
}

fn ops_tls(pki: &Pki, required: bool) -> OpsTls {
    OpsTls {
        cert: pki.dir.path().join("server.crt"),
        key: pki.dir.path().join("server.key"),
        client_auth_required: required,
        client_root_cas: vec![pki.dir.path().join("ca.crt")],
        keys: TlsKeys::peer(),
    }
}

async fn start_tls(pki: &Pki, required: bool) -> (OpsServer, Arc<Registry>) {
    let registry = Arc::new(Registry::new());
    let metrics = weft_ops::peer::PeerMetrics::new(registry.clone());
    metrics.proposals_received.inc();
    let server = ops_tls(pki, required)
        .server("127.0.0.1:0", Some(metrics.tls_observer("operations")))
        .unwrap();
    let mut ops = Ops::new(registry.clone(), Arc::new(Health::new()));
    ops.tls = true;
    ops.client_roots_setting = TlsKeys::peer().client_root_cas;
    let srv = OpsServer::start(
        "127.0.0.1:0",
        "operations.listenAddress",
        Some(Arc::new(server)),
        Arc::new(ops),
    )
    .await
    .unwrap();
    (srv, registry)
}

fn client(pki: &Pki, with_cert: bool) -> TlsClient {
    let identity = if with_cert {
        ClientIdentity::Certificate(
            Identity::from_pem(
                pki.client.0.as_bytes(),
                pki.client.1.as_bytes(),
                "test client",
            )
            .unwrap(),
        )
    } else {
        ClientIdentity::Anonymous
    };
    TlsClient::new(
        Trust::Roots(vec![pki.ca.certificate().clone()]),
        identity,
        Profile::Fabric,
    )
    .unwrap()
}

#[tokio::test]
async fn client_auth_required_refuses_clients_without_a_certificate() {
    let pki = pki();
    let (srv, registry) = start_tls(&pki, true).await;
    let ep = Endpoint::parse(&format!("localhost:{}", srv.address().port())).unwrap();

    // Attack: read the metrics without a client certificate.
    let e = client(&pki, false)
        .connect_tcp(&ep)
        .await
        .map(|_| ())
        .expect_err("the handshake must fail without a client certificate");
    let msg = e.to_string();
    assert!(
        msg.contains("certificate"),
        "the refusal should say a client certificate is needed: {msg}"
    );

    // With a certificate from the configured client CA it works.
    let c = client(&pki, true).connect_tcp(&ep).await.unwrap();
    let (status, body) = request(c.stream, Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("endorser_proposals_received 1\n"), "{body}");

    // The refused handshake was counted, by listener and reason.
    let text = registry.encode();
    let line = text
        .lines()
        .find(|l| l.starts_with("tls_handshake_failures_total{listener=\"operations\""))
        .unwrap_or_else(|| panic!("no handshake failure counted: {text}"));
    assert!(line.ends_with(" 1"), "{line}");
    srv.shutdown().await;
}

#[tokio::test]
async fn without_required_client_auth_healthz_is_open_and_metrics_need_a_certificate() {
    let pki = pki();
    let (srv, _) = start_tls(&pki, false).await;
    let ep = Endpoint::parse(&format!("localhost:{}", srv.address().port())).unwrap();

    let c = client(&pki, false).connect_tcp(&ep).await.unwrap();
    let (status, body) = request(c.stream, Method::GET, "/healthz", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""status":"OK""#), "{body}");

    // Attack: metrics and the log level without a certificate.
    for path in ["/metrics", "/logspec"] {
        let c = client(&pki, false).connect_tcp(&ep).await.unwrap();
        let (status, body) = request(c.stream, Method::GET, path, "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
        assert!(
            body.contains("operations.tls.clientRootCAs.files"),
            "{path}: the answer should name the setting: {body}"
        );
    }

    let c = client(&pki, true).connect_tcp(&ep).await.unwrap();
    let (status, body) = request(c.stream, Method::GET, "/metrics", "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    srv.shutdown().await;
}

#[tokio::test]
async fn plain_http_routes_and_a_run_time_log_level_change() {
    let log = weft_ops::logging::init("info");
    let registry = Arc::new(Registry::new());
    let health = Arc::new(Health::new());
    let mut ops = Ops::new(registry, health.clone());
    ops.log = Some(Arc::new(log));
    let srv = OpsServer::start(
        "127.0.0.1:0",
        "operations.listenAddress",
        None,
        Arc::new(ops),
    )
    .await
    .unwrap();
    let addr = srv.address();
    assert_ne!(addr.port(), 0, "the bound port is reported");

    let (status, body) = plain(addr, Method::GET, "/logspec", "").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"spec":"info"}"#)
    );
    let (status, body) = plain(
        addr,
        Method::PUT,
        "/logspec",
        r#"{"spec":"info,weft_ops=debug"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = plain(addr, Method::GET, "/logspec", "").await;
    assert_eq!(body, r#"{"spec":"info,weft_ops=debug"}"#);
    assert!(tracing::enabled!(target: "weft_ops", tracing::Level::DEBUG));

    let (status, body) = plain(addr, Method::PUT, "/logspec", r#"{"spec":"chatty"}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let (_, body) = plain(addr, Method::GET, "/logspec", "").await;
    assert_eq!(
        body, r#"{"spec":"info,weft_ops=debug"}"#,
        "a bad spec changes nothing"
    );

    health.register(weft_ops::check_fn("deliver:mychannel", || {
        Err("no orderer connected".into())
    }));
    let (status, body) = plain(addr, Method::GET, "/healthz", "").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body.contains(
            r#""failed_checks":[{"component":"deliver:mychannel","reason":"no orderer connected"}]"#
        ),
        "{body}"
    );

    let (status, body) = plain(addr, Method::GET, "/version", "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(r#""CommitSHA""#) && body.contains(env!("CARGO_PKG_VERSION")),
        "{body}"
    );
    assert_eq!(
        plain(addr, Method::GET, "/nope", "").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        plain(addr, Method::POST, "/metrics", "").await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
    srv.shutdown().await;
}
