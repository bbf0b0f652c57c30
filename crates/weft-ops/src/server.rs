//! The operations listener: HTTP/1.1 and HTTP/2, plain or TLS (weft-tls), answering with
//! [`crate::routes::route`].
//!
//! TLS follows Fabric's operations service: the server presents `cert`/`key`; with
//! `clientAuthRequired` every client must present a certificate from the client CAs (the
//! handshake fails otherwise); without it a certificate is verified if given, and `/metrics`
//! and `/logspec` answer 401 to clients that gave none.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_tls::{ClientAuth, HandshakeObserver, Identity, Profile, Settings, TlsServer, Trust};

use crate::routes::{route, Answer, Ops, Req};

/// Largest request body read (a `/logspec` PUT).
pub const MAX_BODY: usize = 64 * 1024;

/// Why the operations service could not start; each names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpsError(pub String);

/// The names of the settings behind [`OpsTls`], for messages (`core.yaml` or `orderer.yaml`).
#[derive(Debug, Clone)]
pub struct TlsKeys {
    pub enabled: String,
    pub cert_and_key: String,
    pub client_auth_required: String,
    pub client_root_cas: String,
}

impl TlsKeys {
    /// The peer's `operations.tls.*` keys.
    pub fn peer() -> Self {
        TlsKeys {
            enabled: "operations.tls.enabled (CORE_OPERATIONS_TLS_ENABLED)".into(),
            cert_and_key: "operations.tls.cert.file / operations.tls.key.file \
                           (CORE_OPERATIONS_TLS_CERT_FILE, CORE_OPERATIONS_TLS_KEY_FILE)"
                .into(),
            client_auth_required:
                "operations.tls.clientAuthRequired (CORE_OPERATIONS_TLS_CLIENTAUTHREQUIRED)".into(),
            client_root_cas:
                "operations.tls.clientRootCAs.files (CORE_OPERATIONS_TLS_CLIENTROOTCAS_FILES)"
                    .into(),
        }
    }

    /// The orderer's `Operations.TLS.*` keys.
    pub fn orderer() -> Self {
        TlsKeys {
            enabled: "Operations.TLS.Enabled (ORDERER_OPERATIONS_TLS_ENABLED)".into(),
            cert_and_key: "Operations.TLS.Certificate / Operations.TLS.PrivateKey \
                           (ORDERER_OPERATIONS_TLS_CERTIFICATE, ORDERER_OPERATIONS_TLS_PRIVATEKEY)"
                .into(),
            client_auth_required:
                "Operations.TLS.ClientAuthRequired (ORDERER_OPERATIONS_TLS_CLIENTAUTHREQUIRED)"
                    .into(),
            client_root_cas: "Operations.TLS.ClientRootCAs (ORDERER_OPERATIONS_TLS_CLIENTROOTCAS)"
                .into(),
        }
    }
}

/// Operations TLS, with paths already resolved.
#[derive(Debug, Clone)]
pub struct OpsTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_auth_required: bool,
    pub client_root_cas: Vec<PathBuf>,
    pub keys: TlsKeys,
}

impl OpsTls {
    /// The TLS server for the operations listener at `endpoint`, telling `observer` about
    /// failed handshakes.
    pub fn server(
        &self,
        endpoint: &str,
        observer: Option<Arc<dyn HandshakeObserver>>,
    ) -> Result<TlsServer, OpsError> {
        let k = &self.keys;
        let identity = Identity::from_pem_files(&self.cert, &self.key, &k.cert_and_key)
            .map_err(|e| OpsError(e.to_string()))?;
        let mut roots: Vec<CertificateDer<'static>> = Vec::new();
        for path in &self.client_root_cas {
            let pem = std::fs::read(path).map_err(|e| {
                OpsError(format!(
                    "{}: cannot read {}: {e}",
                    k.client_root_cas,
                    path.display()
                ))
            })?;
            roots.extend(
                weft_crypto::pem::certificates(&pem, &path.display().to_string())
                    .map_err(|e| OpsError(format!("{}: {e}", k.client_root_cas)))?,
            );
        }
        let auth = match (self.client_auth_required, roots.is_empty()) {
            (true, true) => {
                return Err(OpsError(format!(
                    "{} is true but {} lists no CA: list the CAs of the clients allowed to \
                     read the operations endpoint",
                    k.client_auth_required, k.client_root_cas
                )))
            }
            (true, false) => ClientAuth::Require(Trust::Roots(roots)),
            (false, false) => ClientAuth::Request(Trust::Roots(roots)),
            (false, true) => {
                tracing::warn!(
                    "{} lists no CA: /metrics and /logspec will refuse every client (401)",
                    k.client_root_cas
                );
                ClientAuth::None
            }
        };
        let settings = Settings {
            tls_enabled: k.enabled.clone().into(),
            root_cas: "the CA of the operations server certificate given to the client \
                       (curl --cacert)"
                .into(),
            server_name: "the host name in the operations URL".into(),
            client_cert: "the client's TLS certificate (curl --cert / --key)".into(),
            client_auth_required: k.client_auth_required.clone().into(),
            client_root_cas: k.client_root_cas.clone().into(),
            server_cert: k.cert_and_key.clone().into(),
            pinned_certs: "the pinned certificate list".into(),
        };
        let mut server = TlsServer::new(&identity, auth, Profile::Fabric)
            .map_err(|e| OpsError(format!("{}: {e}", k.enabled)))?
            .with_settings(settings)
            .with_endpoint(endpoint.to_owned())
            .with_alpn_protocols(&[b"h2", b"http/1.1"]);
        if let Some(o) = observer {
            server = server.with_observer(o);
        }
        Ok(server)
    }
}

/// A running operations listener. Dropping it does not stop it; call
/// [`OpsServer::shutdown`].
#[derive(Debug)]
pub struct OpsServer {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl OpsServer {
    /// Listen on `listen` (`setting` names it in errors) and serve `ops`, over TLS when
    /// `tls` is given.
    pub async fn start(
        listen: &str,
        setting: &str,
        tls: Option<Arc<TlsServer>>,
        ops: Arc<Ops>,
    ) -> Result<OpsServer, OpsError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| OpsError(format!("{setting} {listen}: cannot listen: {e}")))?;
        let address = listener
            .local_addr()
            .map_err(|e| OpsError(format!("{setting} {listen}: {e}")))?;
        let (stop, rx) = watch::channel(false);
        tracing::info!(address = %address, tls = tls.is_some(), "operations service listening (/healthz, /metrics, /logspec, /version)");
        let task = tokio::spawn(serve(listener, tls, ops, rx));
        Ok(OpsServer {
            address,
            stop,
            task,
        })
    }

    /// Where it listens (the bound port when the configured one was 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stop accepting and wait (up to 5 s) for the accept loop to end.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

fn to_http(a: Answer) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(a.body)));
    *r.status_mut() = a.status;
    if a.status != hyper::StatusCode::NO_CONTENT {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    }
    if let Some(allow) = a.allow {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    r
}

async fn handle(
    ops: Arc<Ops>,
    req: Request<Incoming>,
    remote: Arc<str>,
    client_verified: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body =
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Ok(to_http(Answer {
                status: hyper::StatusCode::PAYLOAD_TOO_LARGE,
                content_type: "application/json",
                body: serde_json::to_vec(&serde_json::json!({
                    "error": format!("cannot read the request body (limit {MAX_BODY} bytes): {e}")
                }))
                .unwrap_or_default(),
                allow: None,
            })),
        };
    let answer = route(
        &ops,
        Req {
            method: &parts.method,
            path: parts.uri.path(),
            body: &body,
            client_verified,
        },
    );
    tracing::debug!(client = %remote, method = %parts.method, path = %parts.uri.path(), status = answer.status.as_u16(), "operations request");
    Ok(to_http(answer))
}

async fn serve(
    listener: TcpListener,
    tls: Option<Arc<TlsServer>>,
    ops: Arc<Ops>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let (tcp, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("operations listener: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let ops = ops.clone();
        let tls = tls.clone();
        let mut conn_stop = stop.clone();
        tokio::spawn(async move {
            let remote: Arc<str> = remote.to_string().into();
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10));
            let svc = |verified: bool| {
                let remote = remote.clone();
                hyper::service::service_fn(move |req| {
                    handle(ops.clone(), req, remote.clone(), verified)
                })
            };
            let result = match tls {
                Some(server) => match server.accept(tcp, Some(remote.to_string())).await {
                    Ok(a) => {
                        let verified = a.info.client_cert_presented;
                        let conn = builder.serve_connection(TokioIo::new(a.stream), svc(verified));
                        tokio::select! {
                            r = conn => r,
                            _ = conn_stop.wait_for(|s| *s) => Ok(()),
                        }
                    }
                    Err(_) => return, // logged and counted by accept
                },
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), svc(false));
                    tokio::select! {
                        r = conn => r,
                        _ = conn_stop.wait_for(|s| *s) => Ok(()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(client = %remote, "operations connection ended: {e}");
            }
        });
    }
}
