//! The peer's chaincode service: `protos.ChaincodeSupport/Register`, served only on the
//! chaincode listener.
//!
//! Launched chaincode dials it over mutual TLS trusting only the peer's ephemeral CA. The
//! first message of every stream must be a REGISTER that [`LaunchAuthority::admit`] accepts
//! (right per-launch certificate, right package, inside its window, first use, not already
//! running); otherwise the stream is refused with `PERMISSION_DENIED` and the reason, which
//! the chaincode prints. Admitted chaincode gets REGISTERED then READY and is recorded in the
//! [`ChaincodeRegistry`] until its stream ends.
//!
//! Development mode (Fabric's `--peer-chaincodedev`) admits a REGISTER without a launch
//! certificate (or with the development certificate the peer writes for hand-started
//! chaincode) so a developer can start chaincode by hand; it is off unless chosen, and every
//! registration it admits is logged as such.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::chaincode_support_server::{ChaincodeSupport, ChaincodeSupportServer};
use weft_proto::protos::{ChaincodeId, ChaincodeMessage};
use weft_tls::grpc::{incoming, ConnInfo, Security};
use weft_tls::Settings;

use crate::handler::{ChaincodeStream, Invoker, StreamOptions};
use crate::launchcerts::LaunchAuthority;

/// How long a new stream may take to send its REGISTER.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Chaincodes with a registered stream, by package id.
#[derive(Debug, Default)]
pub struct ChaincodeRegistry {
    connected: Mutex<HashMap<String, ChaincodeStream>>,
    changed: Mutex<Option<watch::Sender<u64>>>,
}

impl ChaincodeRegistry {
    /// The open stream of `package_id`.
    pub fn get(&self, package_id: &str) -> Option<ChaincodeStream> {
        self.connected
            .lock()
            .ok()
            .and_then(|m| m.get(package_id).filter(|s| !s.is_closed()).cloned())
    }

    pub fn package_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .connected
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn notify(&self) {
        if let Ok(mut w) = self.changed.lock() {
            let tx = w.get_or_insert_with(|| watch::channel(0).0);
            tx.send_modify(|n| *n += 1);
        }
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        match self.changed.lock() {
            Ok(mut w) => w.get_or_insert_with(|| watch::channel(0).0).subscribe(),
            Err(_) => watch::channel(0).1,
        }
    }

    /// Wait until `package_id` is registered, up to `timeout` (the chaincode start-up timeout).
    pub async fn wait_registered(
        &self,
        package_id: &str,
        timeout: Duration,
    ) -> Option<ChaincodeStream> {
        let mut changes = self.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(c) = self.get(package_id) {
                return Some(c);
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return self.get(package_id);
            }
        }
    }

    pub(crate) fn insert(&self, c: ChaincodeStream) {
        if let Ok(mut m) = self.connected.lock() {
            m.insert(c.package_id().to_owned(), c);
        }
        self.notify();
    }

    /// Forget `stream` (only if it is still the one recorded for its package).
    pub(crate) fn remove(&self, package_id: &str) {
        if let Ok(mut m) = self.connected.lock() {
            if m.get(package_id).is_some_and(|s| s.is_closed()) {
                m.remove(package_id);
            }
        }
        self.notify();
    }
}

/// The `ChaincodeSupport` gRPC service.
#[derive(Debug, Clone)]
pub struct ChaincodeSupportService {
    authority: Arc<LaunchAuthority>,
    registry: Arc<ChaincodeRegistry>,
    dev_mode: bool,
    invoker: Option<Arc<dyn Invoker>>,
    keepalive: Option<Duration>,
    /// Told about failed TLS handshakes on the chaincode listener.
    tls_observer: Option<Arc<dyn weft_tls::HandshakeObserver>>,
}

impl ChaincodeSupportService {
    pub fn new(
        authority: Arc<LaunchAuthority>,
        registry: Arc<ChaincodeRegistry>,
        dev_mode: bool,
    ) -> Self {
        if dev_mode {
            tracing::warn!(
                "DEVELOPMENT MODE (--peer-chaincodedev): chaincode may register without a launch \
                 certificate; never use this in production"
            );
        }
        ChaincodeSupportService {
            authority,
            registry,
            dev_mode,
            invoker: None,
            keepalive: None,
            tls_observer: None,
        }
    }

    /// Where INVOKE_CHAINCODE requests of registered chaincode go (the peer's runtime).
    pub fn with_invoker(mut self, invoker: Arc<dyn Invoker>) -> Self {
        self.invoker = Some(invoker);
        self
    }

    /// Tell `observer` about failed TLS handshakes on the chaincode listener.
    pub fn with_tls_observer(mut self, observer: Arc<dyn weft_tls::HandshakeObserver>) -> Self {
        self.tls_observer = Some(observer);
        self
    }

    /// Send KEEPALIVE to registered chaincode this often (`chaincode.keepalive`).
    pub fn with_keepalive(mut self, keepalive: Option<Duration>) -> Self {
        self.keepalive = keepalive;
        self
    }

    fn admit(
        &self,
        first: &ChaincodeMessage,
        conn: Option<&ConnInfo>,
    ) -> Result<(String, bool), Status> {
        let cert = conn.and_then(|c| c.client_certificate());
        let dev_cert = cert.is_some_and(|c| self.authority.is_dev_certificate(c));
        if self.dev_mode && first.r#type == MsgType::Register as i32 && (cert.is_none() || dev_cert)
        {
            let name = prost::Message::decode(first.payload.as_ref())
                .map(|id: ChaincodeId| id.name)
                .map_err(|e| {
                    Status::invalid_argument(format!("malformed REGISTER payload: {e}"))
                })?;
            tracing::warn!(chaincode = %name, "DEVELOPMENT MODE: admitting chaincode without a launch certificate");
            return Ok((name, true));
        }
        self.authority
            .admit(first, cert)
            .map(|id| (id, false))
            .map_err(|refusal| Status::permission_denied(refusal.to_string()))
    }
}

type ToChaincode = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

fn message(ty: MsgType) -> ChaincodeMessage {
    ChaincodeMessage {
        r#type: ty as i32,
        ..Default::default()
    }
}

#[tonic::async_trait]
impl ChaincodeSupport for ChaincodeSupportService {
    type RegisterStream = ToChaincode;

    async fn register(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<ToChaincode>, Status> {
        let conn = request.extensions().get::<ConnInfo>().cloned();
        let remote = conn
            .as_ref()
            .and_then(|c| c.remote)
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let mut inbound = request.into_inner();
        let first = match tokio::time::timeout(REGISTER_TIMEOUT, inbound.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(Some(Err(status))) => return Err(status),
            Ok(None) => {
                return Err(Status::cancelled(
                    "the chaincode closed the stream before registering",
                ))
            }
            Err(_) => {
                tracing::warn!(chaincode = %remote, "no REGISTER within {REGISTER_TIMEOUT:?}");
                return Err(Status::deadline_exceeded("no REGISTER received in time"));
            }
        };
        let (package_id, dev_mode) = self.admit(&first, conn.as_ref())?;
        let (to_chaincode, rx) = mpsc::channel(256);
        let _ = to_chaincode.send(message(MsgType::Registered)).await;
        let _ = to_chaincode.send(message(MsgType::Ready)).await;
        let registry = self.registry.clone();
        let authority = self.authority.clone();
        let ended = package_id.clone();
        let stream = ChaincodeStream::start(
            package_id.clone(),
            Box::pin(inbound),
            to_chaincode,
            self.invoker.clone(),
            StreamOptions {
                keepalive: self.keepalive,
                dev_mode,
            },
            move || {
                registry.remove(&ended);
                authority.stopped(&ended);
                tracing::info!(package_id = %ended, "chaincode stream ended");
            },
        );
        self.registry.insert(stream);
        tracing::info!(package_id = %package_id, chaincode = %remote, dev_mode, "chaincode stream ready");
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}

/// Serve `ChaincodeSupport` on `listener` with the authority's mutual TLS until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    service: ChaincodeSupportService,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), String> {
    let local = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let tls = if service.dev_mode {
        service.authority.dev_tls_server()
    } else {
        service.authority.tls_server()
    }
    .map_err(|e| e.to_string())?
    .with_endpoint(local.clone());
    let tls = match service.tls_observer.clone() {
        Some(o) => tls.with_observer(o),
        None => tls,
    }
    .with_settings(Settings {
        client_auth_required:
            "the chaincode service (always mutual TLS with per-launch certificates)".into(),
        client_root_cas: "the peer's ephemeral chaincode CA".into(),
        client_cert: "the per-launch certificate (CORE_TLS_CLIENT_CERT_FILE/_PATH)".into(),
        root_cas: "CORE_PEER_TLS_ROOTCERT_FILE".into(),
        ..Settings::peer()
    });
    tracing::info!(address = %local, "chaincode service listening (mutual TLS, per-launch certificates)");
    weft_tls::grpc::server_builder()
        .add_service(ChaincodeSupportServer::new(service))
        .serve_with_incoming_shutdown(incoming(listener, Security::Tls(Arc::new(tls))), shutdown)
        .await
        .map_err(|e| e.to_string())
}
