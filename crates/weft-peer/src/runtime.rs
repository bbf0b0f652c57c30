//! Getting a chaincode to run: build it with the external builders, then launch it with
//! per-launch credentials (it dials the chaincode service) or dial it as a service from its
//! `connection.json`, and execute transactions on its stream.
//!
//! A chaincode is started on first use and kept until its stream ends; a launched process is
//! stopped when its stream ends, so the next use starts a fresh one with a fresh certificate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use weft_proto::protos::chaincode_client::ChaincodeClient;
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{ChaincodeId, ChaincodeMessage};

use crate::builders::{BuildResult, BuilderSet, ConnectionInfo, RunMetadata, RunningChaincode};
use crate::chaincode_service::ChaincodeRegistry;
use crate::channel::Channels;
use crate::handler::{
    ChaincodeStream, ExecError, Invoker, SharedSim, StreamOptions, TxOutcome, TxRequest,
};
use crate::launchcerts::LaunchAuthority;
use crate::package::{extract_code, ChaincodePackage, InstallStore};

/// How the runtime runs chaincode.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// The chaincode service address given to launched chaincode (`peer.chaincodeAddress`).
    pub chaincode_address: String,
    /// The peer's MSP id, given to launched chaincode.
    pub mspid: String,
    /// Where builds are kept (`<fileSystemPath>/externalbuilders/builds`).
    pub builds_dir: PathBuf,
    /// How long a launched chaincode may take to register (`chaincode.startuptimeout`).
    pub startup_timeout: Duration,
    /// How long one execution may take (`chaincode.executetimeout`).
    pub execute_timeout: Duration,
    /// KEEPALIVE period on chaincode streams (`chaincode.keepalive`).
    pub keepalive: Option<Duration>,
    /// How long a stopping chaincode gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
    /// Development mode: chaincode is started by hand and registers by package id or name;
    /// the peer never launches or dials it.
    pub dev_mode: bool,
}

/// Runs the chaincode of a peer.
#[derive(Debug)]
pub struct ChaincodeRuntime {
    cfg: RuntimeConfig,
    channels: Arc<Channels>,
    registry: Arc<ChaincodeRegistry>,
    authority: Arc<LaunchAuthority>,
    store: InstallStore,
    builders: Arc<BuilderSet>,
    starting: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    processes: Mutex<HashMap<String, RunningChaincode>>,
    me: Weak<ChaincodeRuntime>,
    /// The operations metrics (set once at node start).
    metrics: std::sync::OnceLock<Arc<weft_ops::peer::PeerMetrics>>,
}

/// The [`Invoker`] of chaincode-to-chaincode calls: the runtime, weakly held.
#[derive(Debug, Clone)]
pub struct RuntimeInvoker(Weak<ChaincodeRuntime>);

#[tonic::async_trait]
impl Invoker for RuntimeInvoker {
    async fn invoke(&self, req: TxRequest, sim: SharedSim) -> Result<TxOutcome, ExecError> {
        let rt = self
            .0
            .upgrade()
            .ok_or_else(|| ExecError::Unavailable("the peer is shutting down".into()))?;
        rt.check_chaincode_to_chaincode(&req)?;
        rt.execute(req, sim).await
    }
}

/// The ACL resource of chaincode-to-chaincode calls, and Fabric's default policy for it.
const CC2CC: (&str, &str) = ("peer/ChaincodeToChaincode", "/Channel/Application/Writers");

impl ChaincodeRuntime {
    /// Fabric's check before a chaincode calls another: the creator of the proposal being
    /// executed must satisfy the channel's `peer/ChaincodeToChaincode` ACL, so a channel can
    /// guard a chaincode against calls through a proxy chaincode more strictly than against
    /// proposals. (The proposal's signature was verified when it was endorsed; the check
    /// finds it in the cache.)
    fn check_chaincode_to_chaincode(&self, req: &TxRequest) -> Result<(), ExecError> {
        let refuse = |why: String| {
            ExecError::Unavailable(format!(
                "chaincode-to-chaincode call to {:?} refused: {why}",
                req.chaincode_name
            ))
        };
        let channel = self
            .channels
            .get(&req.channel_id)
            .ok_or_else(|| refuse(format!("channel {:?} is not on this peer", req.channel_id)))?;
        let Some(config) = channel.config() else {
            // A channel from a channel file has no ACLs.
            return Ok(());
        };
        let signed = req
            .signed_proposal
            .as_ref()
            .ok_or_else(|| refuse("the calling transaction has no signed proposal".into()))?;
        let up = crate::endorser::unpack(signed).map_err(|e| refuse(e.to_string()))?;
        let creator = channel
            .verify_signature(
                &up.signature_header.creator,
                &signed.proposal_bytes,
                &signed.signature,
            )
            .map_err(|e| refuse(format!("the creator is not accepted: {e}")))?;
        let path = config.acl_policy(CC2CC.0, CC2CC.1);
        config
            .evaluate_policy_identities(path, std::slice::from_ref(&creator))
            .map_err(|e| {
                refuse(format!(
                    "{} ({}) does not satisfy {path}, the policy of {}: {e}",
                    creator.subject, creator.msp_id, CC2CC.0
                ))
            })
    }
}

/// What deploying a package found.
#[derive(Debug, Clone)]
pub struct DeployReport {
    pub package_id: String,
    pub builder: String,
    /// Chaincode as a service: its address, and whether it answered a TCP connect now.
    pub server: Option<(String, bool)>,
}

fn unavailable(msg: impl Into<String>) -> ExecError {
    ExecError::Unavailable(msg.into())
}

impl ChaincodeRuntime {
    pub fn new(
        cfg: RuntimeConfig,
        channels: Arc<Channels>,
        registry: Arc<ChaincodeRegistry>,
        authority: Arc<LaunchAuthority>,
        store: InstallStore,
        builders: Arc<BuilderSet>,
    ) -> Arc<ChaincodeRuntime> {
        Arc::new_cyclic(|me| ChaincodeRuntime {
            cfg,
            channels,
            registry,
            authority,
            store,
            builders,
            starting: Mutex::new(HashMap::new()),
            processes: Mutex::new(HashMap::new()),
            me: me.clone(),
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Count launches in `metrics` (once; later calls are ignored).
    pub fn set_metrics(&self, metrics: Arc<weft_ops::peer::PeerMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// The invoker to give the chaincode service.
    pub fn invoker(&self) -> Arc<dyn Invoker> {
        Arc::new(RuntimeInvoker(self.me.clone()))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.cfg
    }

    pub fn registry(&self) -> &Arc<ChaincodeRegistry> {
        &self.registry
    }

    /// Run `req` on the chaincode its channel defines for `req.chaincode_name`.
    pub async fn execute(&self, req: TxRequest, sim: SharedSim) -> Result<TxOutcome, ExecError> {
        let channel = self.channels.get(&req.channel_id).ok_or_else(|| {
            unavailable(format!(
                "channel {:?} does not exist on this peer",
                req.channel_id
            ))
        })?;
        let package_id = channel.package_for(&req.chaincode_name);
        if self.cfg.dev_mode {
            let stream = package_id
                .as_deref()
                .and_then(|p| self.registry.get(p))
                .or_else(|| self.registry.get(&req.chaincode_name))
                .ok_or_else(|| {
                    unavailable(format!(
                        "development mode: chaincode {:?} is not running; start it by hand with \
                         CORE_CHAINCODE_ID_NAME={} and -peer.address={}",
                        req.chaincode_name,
                        package_id.as_deref().unwrap_or(&req.chaincode_name),
                        self.cfg.chaincode_address
                    ))
                })?;
            return stream.execute(req, sim, self.cfg.execute_timeout).await;
        }
        let package_id = package_id.ok_or_else(|| {
            unavailable(format!(
                "chaincode {:?} is not defined on channel {:?}",
                req.chaincode_name, req.channel_id
            ))
        })?;
        let stream = self.stream(&package_id).await?;
        stream.execute(req, sim, self.cfg.execute_timeout).await
    }

    fn start_lock(&self, package_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = match self.starting.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        m.entry(package_id.to_owned()).or_default().clone()
    }

    /// The stream of `package_id`, starting the chaincode if it is not connected.
    pub async fn stream(&self, package_id: &str) -> Result<ChaincodeStream, ExecError> {
        if let Some(s) = self.registry.get(package_id) {
            return Ok(s);
        }
        let lock = self.start_lock(package_id);
        let _guard = lock.lock().await;
        if let Some(s) = self.registry.get(package_id) {
            return Ok(s);
        }
        let started = std::time::Instant::now();
        let result = match self.build(package_id).await {
            Ok(build) => match &build.connection {
                Some(conn) => self.dial(package_id, conn).await,
                None => self.launch(&build).await,
            },
            Err(e) => Err(e),
        };
        if let Some(m) = self.metrics.get() {
            m.launch_duration
                .with(&[package_id, weft_ops::peer::flag(result.is_ok())])
                .observe_duration(started.elapsed());
            if result.is_err() {
                m.launch_failures.with(&[package_id]).inc();
            }
        }
        result
    }

    /// Build `package_id` (or reuse its build), and for chaincode as a service check that the
    /// server answers; if it does not, say so now rather than at the first transaction.
    pub async fn deploy(&self, package_id: &str) -> Result<DeployReport, ExecError> {
        let build = self.build(package_id).await?;
        let server = match &build.connection {
            Some(conn) => {
                let reachable = tokio::time::timeout(
                    conn.dial_timeout(),
                    tokio::net::TcpStream::connect(conn.address()),
                )
                .await
                .is_ok_and(|r| r.is_ok());
                if !reachable {
                    tracing::warn!(
                        package_id,
                        address = conn.address(),
                        "chaincode server for {package_id} is not reachable at {} now; transactions \
                         will fail until it is started (check the address in connection.json)",
                        conn.address()
                    );
                }
                Some((conn.address().to_owned(), reachable))
            }
            None => None,
        };
        Ok(DeployReport {
            package_id: package_id.to_owned(),
            builder: build.builder.clone(),
            server,
        })
    }

    async fn build(&self, package_id: &str) -> Result<BuildResult, ExecError> {
        let fail = |e: &dyn std::fmt::Display| {
            unavailable(format!("cannot build chaincode {package_id}: {e}"))
        };
        if let Some(done) = self
            .builders
            .cached(package_id, &self.cfg.builds_dir)
            .map_err(|e| fail(&e))?
        {
            return Ok(done);
        }
        let bytes = self.store.get(package_id).map_err(|e| fail(&e))?;
        let package = ChaincodePackage::parse(&bytes).map_err(|e| fail(&e))?;
        let metadata = serde_json::to_vec(package.metadata()).map_err(|e| fail(&e))?;
        let src = SourceDir::create(&self.cfg.builds_dir, package_id).map_err(|e| fail(&e))?;
        extract_code(package.code_archive(), &src.0).map_err(|e| fail(&e))?;
        self.builders
            .build(package_id, &src.0, &metadata, &self.cfg.builds_dir)
            .await
            .map_err(|e| fail(&e))
    }

    async fn launch(&self, build: &BuildResult) -> Result<ChaincodeStream, ExecError> {
        let package_id = build.package_id.as_str();
        let creds = self.authority.issue(package_id).map_err(|e| {
            unavailable(format!(
                "cannot issue the launch certificate of {package_id}: {e}"
            ))
        })?;
        let meta = RunMetadata {
            chaincode_id: package_id.to_owned(),
            peer_address: self.cfg.chaincode_address.clone(),
            client_cert_pem: creds.cert_pem,
            client_key_pem: creds.key_pem,
            root_cert_pem: creds.root_pem,
            mspid: self.cfg.mspid.clone(),
        };
        let mut process = self
            .builders
            .run(build, meta)
            .await
            .map_err(|e| unavailable(format!("cannot launch chaincode {package_id}: {e}")))?;
        tracing::info!(package_id, builder = %build.builder, pid = ?process.id(), "launched chaincode; waiting for it to register");
        let deadline = tokio::time::Instant::now() + self.cfg.startup_timeout;
        let stream = loop {
            let step = tokio::time::Instant::now() + Duration::from_millis(100);
            if let Some(s) = self
                .registry
                .wait_registered(package_id, Duration::from_millis(100))
                .await
            {
                break s;
            }
            if let Ok(Some(status)) = process.try_wait() {
                return Err(unavailable(format!(
                    "chaincode {package_id} exited ({status}) before registering with the peer; \
                     its output is in the peer's log"
                )));
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = process.kill().await;
                return Err(unavailable(format!(
                    "chaincode {package_id} did not register within {:?} \
                     (chaincode.startuptimeout); it was stopped. Its output is in the peer's log",
                    self.cfg.startup_timeout
                )));
            }
            tokio::time::sleep_until(step).await;
        };
        self.processes_mut().insert(package_id.to_owned(), process);
        // Stop the process when its stream ends: the next use launches a fresh one.
        let me = self.me.clone();
        let watched = stream.clone();
        let grace = self.cfg.stop_grace;
        tokio::spawn(async move {
            watched.closed().await;
            let Some(rt) = me.upgrade() else { return };
            let process = rt.processes_mut().remove(watched.package_id());
            if let Some(mut p) = process {
                let _ = p.stop(grace).await;
            }
        });
        Ok(stream)
    }

    fn processes_mut(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunningChaincode>> {
        match self.processes.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        }
    }

    /// Dial a chaincode server and run the REGISTER handshake on `Chaincode.Connect`.
    async fn dial(
        &self,
        package_id: &str,
        conn: &ConnectionInfo,
    ) -> Result<ChaincodeStream, ExecError> {
        let address = conn.address().to_owned();
        let fail = |detail: String| {
            unavailable(format!(
                "chaincode server {address} for {package_id} ({}): {detail}",
                conn.source_name()
            ))
        };
        let tls = conn.tls_client().map_err(|e| fail(e.to_string()))?;
        let channel = tokio::time::timeout(
            conn.dial_timeout(),
            weft_tls::grpc::channel(tls, conn.endpoint()),
        )
        .await
        .map_err(|_| {
            fail(format!(
                "no connection within dial_timeout {:?}; is the server running?",
                conn.dial_timeout()
            ))
        })?
        .map_err(|e| fail(e.to_string()))?;
        let (out, rx) = mpsc::channel(256);
        let mut inbound = ChaincodeClient::new(channel)
            .connect(ReceiverStream::new(rx))
            .await
            .map_err(|s| fail(format!("Connect refused: {}", s.message())))?
            .into_inner();
        let first =
            tokio::time::timeout(crate::chaincode_service::REGISTER_TIMEOUT, inbound.next())
                .await
                .map_err(|_| fail("the server sent no REGISTER".into()))?
                .ok_or_else(|| fail("the server closed the stream before registering".into()))?
                .map_err(|s| fail(format!("stream failed: {}", s.message())))?;
        if first.r#type != MsgType::Register as i32 {
            return Err(fail(format!(
                "the first message was type {} instead of REGISTER",
                first.r#type
            )));
        }
        let id = ChaincodeId::decode(first.payload.clone())
            .map_err(|e| fail(format!("malformed REGISTER: {e}")))?;
        if id.name != package_id {
            return Err(fail(format!(
                "it registered as {:?}; start the server with CHAINCODE_ID={package_id}",
                id.name
            )));
        }
        for ty in [MsgType::Registered, MsgType::Ready] {
            let m = ChaincodeMessage {
                r#type: ty as i32,
                ..Default::default()
            };
            out.send(m)
                .await
                .map_err(|_| fail("the stream closed during registration".into()))?;
        }
        let registry = self.registry.clone();
        let ended = package_id.to_owned();
        let stream = ChaincodeStream::start(
            package_id,
            Box::pin(inbound),
            out,
            Some(self.invoker()),
            StreamOptions {
                keepalive: self.cfg.keepalive,
                dev_mode: false,
            },
            move || {
                registry.remove(&ended);
                tracing::info!(package_id = %ended, "chaincode server stream ended");
            },
        );
        self.registry.insert(stream.clone());
        tracing::info!(package_id, %address, tls = conn.tls_required(), "connected to chaincode server");
        Ok(stream)
    }

    /// Stop every launched chaincode.
    pub async fn shutdown(&self) {
        let all: Vec<RunningChaincode> = self.processes_mut().drain().map(|(_, p)| p).collect();
        for mut p in all {
            let _ = p.stop(self.cfg.stop_grace).await;
        }
    }
}

/// A scratch directory for a package's unpacked source, removed on drop.
struct SourceDir(PathBuf);

impl SourceDir {
    fn create(builds_dir: &Path, package_id: &str) -> std::io::Result<SourceDir> {
        std::fs::create_dir_all(builds_dir)?;
        let dir = builds_dir.join(format!(
            ".src-{}-{}",
            crate::builders::sanitize_package_id(package_id),
            std::process::id()
        ));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir(&dir)?;
        Ok(SourceDir(dir))
    }
}

impl Drop for SourceDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
