//! A running peer: `weft peer node start`.
//!
//! Two listeners, as Fabric's peer has them:
//! - `peer.listenAddress`: the Endorser service (later Gateway and Deliver), with `peer.tls.*`;
//! - the chaincode support service on `peer.chaincodeListenAddress`, with mutual TLS against
//!   the per-process ephemeral CA. ChaincodeSupport is served there only.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_msp::msp::SigningIdentity;
use weft_tls::grpc::{incoming, Security};
use weft_tls::{ClientAuth, Identity, Profile, Settings, TlsServer, Trust};

use crate::builders::{BuilderSet, ExternalBuilder};
use crate::chaincode_service::{self, ChaincodeRegistry, ChaincodeSupportService};
use crate::channel::{Channels, ChannelsFile};
use crate::config::CoreConfig;
use crate::endorser::Endorser;
use crate::launchcerts::LaunchAuthority;
use crate::package::InstallStore;
use crate::runtime::{ChaincodeRuntime, RuntimeConfig};
use crate::simulator::QueryLimits;

/// How to start a peer besides `core.yaml`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// The channel file (see [`ChannelsFile`]); none: no channels.
    pub channels_file: Option<PathBuf>,
    /// Development mode (`--peer-chaincodedev`): chaincode started by hand may register
    /// without a launch certificate.
    pub dev_mode: bool,
}

/// Why a peer could not start. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn err(msg: impl Into<String>) -> StartError {
    StartError(msg.into())
}

/// A started peer. Dropping it does not stop it; call [`PeerNode::shutdown`].
#[derive(Debug)]
pub struct PeerNode {
    pub peer_address: std::net::SocketAddr,
    pub chaincode_address: std::net::SocketAddr,
    /// The address launched chaincode is given.
    pub chaincode_advertised: String,
    pub channels: Arc<Channels>,
    pub runtime: Arc<ChaincodeRuntime>,
    pub endorser: Arc<Endorser>,
    pub authority: Arc<LaunchAuthority>,
    pub identity: Arc<SigningIdentity>,
    /// Development mode: where the hand-started chaincode's TLS files are (removed at
    /// shutdown).
    pub dev_dir: Option<PathBuf>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
}

/// Development mode: write the ephemeral CA and a development client certificate for
/// chaincode started by hand, in a private directory, and say how to use them.
fn write_dev_credentials(
    authority: &LaunchAuthority,
    fs_path: &std::path::Path,
    advertised: &str,
) -> Result<PathBuf, StartError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = fs_path.join("chaincode-dev");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            err(format!(
                "development mode: cannot create {}: {e}",
                dir.display()
            ))
        })?;
    let creds = authority
        .issue_dev()
        .map_err(|e| err(format!("development mode: cannot issue a certificate: {e}")))?;
    for (name, body) in [
        ("ca.crt", &creds.root_pem),
        ("client.crt", &creds.cert_pem),
        ("client.key", &creds.key_pem),
    ] {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                err(format!(
                    "development mode: cannot write {}: {e}",
                    path.display()
                ))
            })?;
        std::io::Write::write_all(&mut f, body.as_bytes()).map_err(|e| {
            err(format!(
                "development mode: cannot write {}: {e}",
                path.display()
            ))
        })?;
    }
    tracing::warn!(
        "DEVELOPMENT MODE: start chaincode by hand with CORE_CHAINCODE_ID_NAME=<chaincode name or \
         package id> CORE_PEER_TLS_ENABLED=true CORE_PEER_TLS_ROOTCERT_FILE={d}/ca.crt \
         CORE_TLS_CLIENT_CERT_FILE={d}/client.crt CORE_TLS_CLIENT_KEY_FILE={d}/client.key \
         and -peer.address={advertised}",
        d = dir.display()
    );
    Ok(dir)
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr)
}

fn peer_tls(cfg: &CoreConfig, channels: &Channels, endpoint: &str) -> Result<Security, StartError> {
    let tls = &cfg.peer.tls;
    if !tls.enabled {
        tracing::warn!(
            "peer.tls.enabled is false: the peer's services are served WITHOUT TLS (CORE_PEER_TLS_ENABLED)"
        );
        return Ok(Security::Plaintext {
            endpoint: endpoint.to_owned(),
            settings: Arc::new(Settings::peer()),
        });
    }
    let file = |f: &Option<String>| cfg.resolve(f.as_deref().unwrap_or(""));
    let identity = Identity::from_pem_files(
        &file(&tls.cert.file),
        &file(&tls.key.file),
        "peer.tls.cert.file / peer.tls.key.file",
    )
    .map_err(|e| err(e.to_string()))?;
    // Trusted client roots: the configured ones plus the TLS roots of the channels' orgs.
    let mut roots = Vec::new();
    for f in &tls.client_root_cas.files {
        let path = cfg.resolve(f);
        let pem = std::fs::read(&path).map_err(|e| {
            err(format!(
                "peer.tls.clientRootCAs.files: cannot read {}: {e}",
                path.display()
            ))
        })?;
        roots.extend(
            weft_crypto::pem::certificates(&pem, &path.display().to_string())
                .map_err(|e| err(format!("peer.tls.clientRootCAs.files: {e}")))?,
        );
    }
    for id in channels.ids() {
        if let Some(ch) = channels.get(&id) {
            for msp in ch.msps().iter() {
                roots.extend(
                    msp.tls_root_certs()
                        .iter()
                        .chain(msp.tls_intermediate_certs())
                        .map(|der| rustls_pki_types::CertificateDer::from(der.clone())),
                );
            }
        }
    }
    let auth = if roots.is_empty() {
        if tls.client_auth_required {
            return Err(err(
                "peer.tls.clientAuthRequired is true but no client roots are known: set peer.tls.clientRootCAs.files or join a channel",
            ));
        }
        ClientAuth::None
    } else if tls.client_auth_required {
        ClientAuth::Require(Trust::Roots(roots))
    } else {
        ClientAuth::Request(Trust::Roots(roots))
    };
    let server = TlsServer::new(&identity, auth, Profile::Fabric)
        .map_err(|e| err(e.to_string()))?
        .with_settings(Settings::peer())
        .with_endpoint(endpoint.to_owned());
    Ok(Security::Tls(Arc::new(server)))
}

impl PeerNode {
    /// Start a peer from its configuration.
    pub async fn start(cfg: &CoreConfig, opts: StartOptions) -> Result<PeerNode, StartError> {
        let fs_path = cfg.resolve(&cfg.peer.file_system_path);
        std::fs::create_dir_all(&fs_path).map_err(|e| {
            err(format!(
                "peer.fileSystemPath: cannot create {}: {e}",
                fs_path.display()
            ))
        })?;
        let msp_dir = cfg.resolve(&cfg.peer.msp_config_path);
        let identity = Arc::new(
            SigningIdentity::from_local_msp_dir(&msp_dir, &cfg.peer.local_msp_id).map_err(|e| {
                err(format!(
                    "peer.mspConfigPath {} / peer.localMspId {}: {e}",
                    msp_dir.display(),
                    cfg.peer.local_msp_id
                ))
            })?,
        );

        let channels = Arc::new(Channels::default());
        if let Some(path) = &opts.channels_file {
            let file = ChannelsFile::load(path).map_err(|e| err(e.to_string()))?;
            file.open(path, &fs_path.join("ledgersData"), &channels)
                .map_err(|e| err(e.to_string()))?;
        }

        // The chaincode service.
        let addrs = cfg.chaincode_addresses().map_err(|e| err(e.to_string()))?;
        let cc_listener = TcpListener::bind(&addrs.listen).await.map_err(|e| {
            err(format!(
                "peer.chaincodeListenAddress {}: cannot listen: {e}",
                addrs.listen
            ))
        })?;
        let cc_local = cc_listener
            .local_addr()
            .map_err(|e| err(format!("chaincode listener: {e}")))?;
        let advertised = match addrs.advertised.rsplit_once(':') {
            Some((host, "0")) => format!("{host}:{}", cc_local.port()),
            _ => addrs.advertised.clone(),
        };
        let window = time::Duration::try_from(cfg.registration_window())
            .map_err(|e| err(format!("chaincode.registrationWindow: {e}")))?;
        let authority = Arc::new(
            LaunchAuthority::new(host_of(&advertised), window)
                .map_err(|e| err(format!("cannot create the chaincode CA: {e}")))?,
        );
        let registry = Arc::new(ChaincodeRegistry::default());

        let store = InstallStore::open(&fs_path).map_err(|e| err(e.to_string()))?;
        let mut builders = Vec::new();
        for b in &cfg.chaincode.external_builders {
            builders.push(
                ExternalBuilder::new(b.name.clone(), cfg.resolve(&b.path))
                    .propagating(b.propagate_environment.iter().cloned()),
            );
        }
        let builders = Arc::new(
            BuilderSet::new(builders)
                .map_err(|e| err(format!("chaincode.externalBuilders: {e}")))?,
        );
        let keepalive = (cfg.chaincode.keepalive > 0)
            .then(|| std::time::Duration::from_secs(cfg.chaincode.keepalive));
        let dev_mode = opts.dev_mode || cfg.chaincode.mode == "dev";
        let runtime = ChaincodeRuntime::new(
            RuntimeConfig {
                chaincode_address: advertised.clone(),
                mspid: cfg.peer.local_msp_id.clone(),
                builds_dir: fs_path.join("externalbuilders").join("builds"),
                startup_timeout: cfg.startup_timeout(),
                execute_timeout: cfg.execute_timeout(),
                keepalive,
                stop_grace: std::time::Duration::from_secs(5),
                dev_mode,
            },
            channels.clone(),
            registry.clone(),
            authority.clone(),
            store,
            builders,
        );
        let limits = QueryLimits {
            total_query_limit: cfg.ledger.state.total_query_limit.max(1),
            batch: crate::simulator::QUERY_BATCH,
            history_enabled: cfg.ledger.history.enable_history_database,
        };
        let endorser = Arc::new(Endorser::new(
            channels.clone(),
            runtime.clone(),
            identity.clone(),
            limits,
        ));

        // The peer's own listener.
        let peer_listener = TcpListener::bind(&cfg.peer.listen_address)
            .await
            .map_err(|e| {
                err(format!(
                    "peer.listenAddress {}: cannot listen: {e}",
                    cfg.peer.listen_address
                ))
            })?;
        let peer_local = peer_listener
            .local_addr()
            .map_err(|e| err(format!("peer listener: {e}")))?;
        if peer_local.port() == cc_local.port() && peer_local.ip() == cc_local.ip() {
            return Err(err(
                "peer.listenAddress and peer.chaincodeListenAddress must differ",
            ));
        }
        let security = peer_tls(cfg, &channels, &peer_local.to_string())?;

        let (stop, _) = watch::channel(false);
        let stopped = |stop: &watch::Sender<bool>| {
            let mut rx = stop.subscribe();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let dev_dir = if dev_mode {
            Some(write_dev_credentials(&authority, &fs_path, &advertised)?)
        } else {
            None
        };
        let service = ChaincodeSupportService::new(authority.clone(), registry, dev_mode)
            .with_invoker(runtime.invoker())
            .with_keepalive(keepalive);
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(chaincode_service::serve(
            cc_listener,
            service,
            stopped(&stop),
        )));
        let endorser_service = endorser.clone().into_service();
        let peer_shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(endorser_service)
                .serve_with_incoming_shutdown(incoming(peer_listener, security), peer_shutdown)
                .await
                .map_err(|e| e.to_string())
        }));
        tracing::info!(
            peer = %peer_local,
            chaincode_listen = %cc_local,
            chaincode_address = %advertised,
            mspid = %cfg.peer.local_msp_id,
            tls = cfg.peer.tls.enabled,
            client_auth_required = cfg.peer.tls.client_auth_required,
            channels = ?channels.ids(),
            "peer started"
        );
        Ok(PeerNode {
            peer_address: peer_local,
            chaincode_address: cc_local,
            chaincode_advertised: advertised,
            channels,
            runtime,
            endorser,
            authority,
            identity,
            dev_dir,
            stop,
            tasks,
        })
    }

    /// Build every chaincode defined on the peer's channels, warning about chaincode servers
    /// that do not answer (they are dialed again at first use).
    pub async fn deploy_defined(&self) {
        for id in self.channels.ids() {
            let Some(ch) = self.channels.get(&id) else {
                continue;
            };
            for name in ch.chaincode_names() {
                if let Some(pkg) = ch.package_for(&name) {
                    match self.runtime.deploy(&pkg).await {
                        Ok(r) => {
                            tracing::info!(channel = %id, chaincode = %name, package_id = %pkg, builder = %r.builder, "chaincode ready to run")
                        }
                        Err(e) => tracing::warn!(channel = %id, chaincode = %name, "{e}"),
                    }
                }
            }
        }
    }

    /// Stop listening, stop launched chaincode, and wait for the servers to finish.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        self.runtime.shutdown().await;
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        if let Some(dir) = self.dev_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
