//! A running peer: `weft peer node start`.
//!
//! Channels: those the peer joined from a genesis block ([`PeerNode::join_channel`]; reopened
//! at start from `ledgersData/<channel>/joined`, with the config of their last config block)
//! and those of the channel file. Every joined channel gets a deliver client pulling its blocks
//! from the orderers ([`crate::deliverclient`]). The peer's listener trusts, as client TLS
//! roots, the configured `peer.tls.clientRootCAs.files` plus every channel's org TLS roots,
//! replaced live when a channel is joined and when a committed config block changes a
//! channel's orgs.
//!
//! Two listeners, as Fabric's peer has them:
//! - `peer.listenAddress`: the Endorser service (later Gateway and Deliver), with `peer.tls.*`;
//! - the chaincode support service on `peer.chaincodeListenAddress`, with mutual TLS against
//!   the per-process ephemeral CA. ChaincodeSupport is served there only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_msp::msp::SigningIdentity;
use weft_tls::grpc::{incoming, Security};
use weft_tls::{ClientAuth, Identity, Profile, Settings, TlsServer, Trust};

use crate::builders::{BuilderSet, ExternalBuilder};
use crate::chaincode_service::{self, ChaincodeRegistry, ChaincodeSupportService};
use crate::channel::{
    ledger_dir, open_ledger, valid_channel_name, Channel, Channels, ChannelsFile,
};
use crate::config::CoreConfig;
use crate::deliverclient::DeliverSettings;
use crate::endorser::Endorser;
use crate::launchcerts::LaunchAuthority;
use crate::package::InstallStore;
use crate::runtime::{ChaincodeRuntime, RuntimeConfig};
use crate::simulator::QueryLimits;
use weft_configtx::ChannelConfig;
use weft_proto::common::Block;

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
    /// `<peer.fileSystemPath>/ledgersData`.
    pub ledgers_dir: PathBuf,
    /// The Gateway service, when `peer.gateway.enabled`.
    pub gateway: Option<Arc<crate::gateway::Gateway>>,
    /// Where the operations service listens (`operations.listenAddress`; `None` when it is
    /// empty). The bound port when the configured one was 0.
    pub operations_address: Option<std::net::SocketAddr>,
    /// The peer's metrics (exposed on `/metrics` when `metrics.provider` is prometheus).
    pub metrics: Arc<weft_ops::peer::PeerMetrics>,
    operations: Option<weft_ops::OpsServer>,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<Result<(), String>>>,
}

/// What joining a channel touches, shared by the node and the endorser's `cscc` calls.
#[derive(Debug)]
struct Shared {
    channels: Arc<Channels>,
    ledgers_dir: PathBuf,
    tls: PeerTls,
    deliver: DeliverSettings,
    deliver_tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    /// The peer's own MSP (from `peer.mspConfigPath`): who its admins are.
    local_msp: weft_msp::msp::MspManager,
    local_msp_id: String,
    /// Installed packages, for `peer lifecycle chaincode install` over the network.
    install_store: InstallStore,
    /// Builds packages at install time (`None` in development mode: chaincode is started
    /// by hand there, so the peer never builds).
    builder: Option<Arc<ChaincodeRuntime>>,
}

/// The peer listener's TLS server and its configured client roots, for live root updates.
#[derive(Debug, Default, Clone)]
struct PeerTls {
    server: Option<Arc<TlsServer>>,
    configured_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

/// Trust `tls`'s configured client roots plus every channel's org TLS roots.
fn refresh_roots(tls: &PeerTls, channels: &Channels) {
    let Some(server) = &tls.server else {
        return;
    };
    let mut roots = tls.configured_roots.clone();
    roots.extend(channel_tls_roots(channels));
    if roots.is_empty() {
        return;
    }
    if let Err(e) = server.set_client_trust(Trust::Roots(roots)) {
        tracing::warn!(
            "cannot update the trusted client TLS roots ({e}); restart the peer to trust the new channel's orgs"
        );
    }
}

/// The name of the marker file that makes a channel's ledger directory a joined channel.
pub const JOINED_MARKER: &str = "joined";

/// Why a channel could not be joined or reopened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JoinError(pub String);

/// Every channel's org TLS roots (config: all orgs; channel file: its MSPs).
fn channel_tls_roots(channels: &Channels) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    let mut roots = Vec::new();
    for id in channels.ids() {
        let Some(ch) = channels.get(&id) else {
            continue;
        };
        match ch.config() {
            Some(cfg) => roots.extend(
                cfg.all_tls_roots()
                    .into_iter()
                    .map(rustls_pki_types::CertificateDer::from),
            ),
            None => {
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
    }
    roots
}

/// The channel config in force at the top of a stored chain: the block its last block's
/// SIGNATURES metadata names as the last config block, else block 0.
fn stored_config(
    channel_id: &str,
    blocks: &weft_ledger::BlockStore,
) -> Result<ChannelConfig, JoinError> {
    let e = |what: String| JoinError(format!("channel {channel_id}: {what}"));
    let height = blocks.height();
    if height == 0 {
        return Err(e(
            "the ledger holds no blocks; join the channel again from its genesis block".into(),
        ));
    }
    let last = blocks
        .block(height - 1)
        .map_err(|x| e(format!("cannot read block {}: {x}", height - 1)))?
        .ok_or_else(|| e(format!("block {} is missing", height - 1)))?;
    let index = weft_ledger::block::last_config_index(&last).unwrap_or(0);
    let config_block = if index == height - 1 {
        last
    } else {
        blocks
            .block(index)
            .map_err(|x| e(format!("cannot read config block {index}: {x}")))?
            .ok_or_else(|| e(format!("config block {index} is missing")))?
    };
    ChannelConfig::from_block(&config_block)
        .map_err(|x| e(format!("config block {index} is not usable: {x}")))
}

impl Shared {
    /// See [`PeerNode::join_channel`].
    pub async fn join_channel(&self, block: Block) -> Result<Arc<Channel>, JoinError> {
        let number = block.header.as_ref().map(|h| h.number);
        if number != Some(0) {
            return Err(JoinError(format!(
                "a channel is joined from its genesis block (block 0); this is block {}",
                number
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "without a header".into())
            )));
        }
        let config = ChannelConfig::from_block(&block).map_err(|e| {
            JoinError(format!(
                "the genesis block is not a usable config block: {e}"
            ))
        })?;
        let id = config.channel_id().to_owned();
        if !valid_channel_name(&id) {
            return Err(JoinError(format!(
                "the genesis block names an invalid channel {id:?}"
            )));
        }
        if self.channels.get(&id).is_some() {
            return Err(JoinError(format!(
                "the peer has already joined channel {id}"
            )));
        }
        let dir = ledger_dir(&self.ledgers_dir, &id);
        if dir.join(JOINED_MARKER).exists() {
            return Err(JoinError(format!(
                "channel {id} already has a ledger at {}",
                dir.display()
            )));
        }
        let (blocks, state) = open_ledger(&dir)
            .map_err(|e| JoinError(format!("channel {id}: cannot create the ledger: {e}")))?;
        let channel = Channel::from_config(
            Arc::new(config),
            blocks,
            state,
            self.channels.signature_cache().clone(),
        );
        if channel.blocks().height() == 0 {
            crate::committer::commit_genesis(&channel, block)
                .await
                .map_err(|e| JoinError(e.to_string()))?;
        }
        std::fs::write(dir.join(JOINED_MARKER), b"").map_err(|e| {
            JoinError(format!(
                "channel {id}: cannot write {}: {e}",
                dir.join(JOINED_MARKER).display()
            ))
        })?;
        channel.set_local_msp(&self.local_msp_id);
        let channel = self.channels.insert(channel);
        self.refresh_client_roots();
        self.start_deliver(channel.clone());
        tracing::info!(channel = %id, "joined channel");
        Ok(channel)
    }

    /// Trust the configured client roots plus every channel's org TLS roots.
    pub fn refresh_client_roots(&self) {
        refresh_roots(&self.tls, &self.channels);
    }

    /// Pull the channel's blocks, and follow its config: each committed config block
    /// refreshes the trusted client roots (an org added by a config update is trusted).
    fn start_deliver(&self, channel: Arc<Channel>) {
        let mut changes = channel.config_changes();
        let task = tokio::spawn(crate::deliverclient::run(
            channel,
            self.deliver.clone(),
            self.stop.subscribe(),
        ));
        let (tls, channels, mut stop) = (
            self.tls.clone(),
            self.channels.clone(),
            self.stop.subscribe(),
        );
        let watcher = tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        refresh_roots(&tls, &channels);
                    }
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
        });
        match self.deliver_tasks.lock() {
            Ok(mut t) => t.extend([task, watcher]),
            Err(p) => p.into_inner().extend([task, watcher]),
        }
    }
}

impl crate::endorser::PeerAdmin for Shared {
    fn check_admin(&self, creator: &[u8], message: &[u8], signature: &[u8]) -> Result<(), String> {
        let who = self
            .local_msp
            .verify_signature(creator, message, signature)
            .map_err(|e| {
                format!(
                    "the caller is not a valid member of this peer's organization {}: {e}",
                    self.local_msp_id
                )
            })?;
        if who.role != weft_msp::msp::Role::Admin {
            return Err(format!(
                "{} ({}) is a {} of {}, not an admin: peer-admin calls need an admin of the \
                 peer's organization",
                who.subject, who.msp_id, who.role, self.local_msp_id
            ));
        }
        Ok(())
    }

    fn install_store(&self) -> Option<&InstallStore> {
        Some(&self.install_store)
    }

    fn package_builder(&self) -> Option<&dyn crate::lifecycle_local::PackageBuilder> {
        self.builder
            .as_deref()
            .map(|r| r as &dyn crate::lifecycle_local::PackageBuilder)
    }

    fn join_channel(
        &self,
        block: Block,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>
    {
        Box::pin(async move {
            self.join_channel(block)
                .await
                .map(|c| c.id().to_owned())
                .map_err(|e| e.0)
        })
    }
}

/// `peer.tls.rootcert.file` as DER certificates (none when unset).
fn root_certs(cfg: &CoreConfig) -> Result<Vec<Vec<u8>>, StartError> {
    let Some(f) = cfg
        .peer
        .tls
        .rootcert
        .file
        .as_deref()
        .filter(|f| !f.is_empty())
    else {
        return Ok(Vec::new());
    };
    let path = cfg.resolve(f);
    let pem = std::fs::read(&path).map_err(|e| {
        err(format!(
            "peer.tls.rootcert.file: cannot read {}: {e}",
            path.display()
        ))
    })?;
    weft_crypto::pem::certificates(&pem, &path.display().to_string())
        .map(|certs| certs.into_iter().map(|c| c.to_vec()).collect())
        .map_err(|e| err(format!("peer.tls.rootcert.file: {e}")))
}

/// Reopen the joined channels found under `ledgers_dir`.
async fn reopen_joined(ledgers_dir: &Path, channels: &Channels) -> Result<(), StartError> {
    let entries = match std::fs::read_dir(ledgers_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(err(format!(
                "peer.fileSystemPath: cannot list {}: {e}",
                ledgers_dir.display()
            )))
        }
    };
    for entry in entries.flatten() {
        let dir = entry.path();
        if !dir.join(JOINED_MARKER).is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if channels.get(&name).is_some() {
            return Err(err(format!(
                "channel {name} is both joined (under {}) and listed in the channel file; remove it from the channel file",
                dir.display()
            )));
        }
        let (blocks, state) = open_ledger(&dir)
            .map_err(|e| err(format!("channel {name}: cannot open the ledger: {e}")))?;
        let config = stored_config(&name, &blocks).map_err(|e| err(e.0))?;
        let channel = Channel::from_config(
            Arc::new(config),
            blocks,
            state,
            channels.signature_cache().clone(),
        );
        crate::committer::recover(&channel)
            .await
            .map_err(|e| err(e.to_string()))?;
        tracing::info!(channel = %name, height = channel.blocks().height(), "reopened joined channel");
        channels.insert(channel);
    }
    Ok(())
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

/// Register the scrape-time families and health checks, and start the operations listener
/// (`operations.*`, `metrics.provider`); `None` when `operations.listenAddress` is empty.
async fn start_operations(
    cfg: &CoreConfig,
    metrics: &Arc<weft_ops::peer::PeerMetrics>,
    channels: &Arc<Channels>,
    authority: &Arc<LaunchAuthority>,
) -> Result<Option<weft_ops::OpsServer>, StartError> {
    let registry = &metrics.registry;
    let chs = channels.clone();
    registry.gauge_fn(
        "ledger_blockchain_height",
        "Height of the chain in blocks.",
        &["channel"],
        move || {
            chs.ids()
                .into_iter()
                .filter_map(|id| {
                    let h = chs.get(&id)?.blocks().height();
                    Some((vec![id], h as f64))
                })
                .collect()
        },
    );
    let auth = authority.clone();
    registry.counter_fn(
        "chaincode_registrations_refused_total",
        "Chaincode registrations refused on the chaincode listener, by reason.",
        &["reason"],
        move || {
            let (refused, _) = auth.counters();
            refused
                .into_iter()
                .map(|(reason, n)| (vec![reason.to_owned()], n as f64))
                .collect()
        },
    );
    let auth = authority.clone();
    registry.counter_fn(
        "chaincode_registrations_admitted_total",
        "Chaincode registrations admitted with a launch certificate.",
        &[],
        move || vec![(vec![], auth.counters().1 as f64)],
    );
    metrics.include_ledger();

    let listen = cfg.operations.listen_address.trim();
    if listen.is_empty() {
        tracing::info!("operations.listenAddress is empty: the operations service (/healthz, /metrics, /logspec) is not started");
        return Ok(None);
    }
    let health = Arc::new(weft_ops::Health::new());
    let chs = channels.clone();
    health.register(weft_ops::check_fn("ledger", move || {
        let empty: Vec<String> = chs
            .ids()
            .into_iter()
            .filter(|id| chs.get(id).is_some_and(|c| c.blocks().height() == 0))
            .collect();
        if empty.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "channels without a genesis block: {}",
                empty.join(", ")
            ))
        }
    }));
    let provider = weft_ops::provider(&cfg.metrics.provider, "metrics.provider")
        .map_err(|e| err(e.to_string()))?;
    let tls = match cfg.operations_tls() {
        Some(t) => Some(Arc::new(
            t.server(listen, Some(metrics.tls_observer("operations")))
                .map_err(|e| err(e.to_string()))?,
        )),
        None => {
            if !is_loopback(listen) {
                tracing::warn!(address = listen, "operations.tls.enabled is false: /metrics and /logspec are served WITHOUT TLS to every host that can reach {listen} (CORE_OPERATIONS_TLS_ENABLED)");
            }
            None
        }
    };
    let mut ops = weft_ops::Ops::new(registry.clone(), health);
    ops.metrics_enabled = provider == weft_ops::Provider::Prometheus;
    ops.tls = tls.is_some();
    ops.client_roots_setting = weft_ops::TlsKeys::peer().client_root_cas;
    let server = weft_ops::OpsServer::start(listen, "operations.listenAddress", tls, Arc::new(ops))
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(Some(server))
}

/// Whether `addr` (`host:port`) names a loopback host.
fn is_loopback(addr: &str) -> bool {
    let host = host_of(addr);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(addr)
}

fn peer_tls(
    cfg: &CoreConfig,
    channels: &Channels,
    endpoint: &str,
    observer: Arc<dyn weft_tls::HandshakeObserver>,
) -> Result<(Security, PeerTls), StartError> {
    let tls = &cfg.peer.tls;
    if !tls.enabled {
        tracing::warn!(
            "peer.tls.enabled is false: the peer's services are served WITHOUT TLS (CORE_PEER_TLS_ENABLED)"
        );
        return Ok((
            Security::Plaintext {
                endpoint: endpoint.to_owned(),
                settings: Arc::new(Settings::peer()),
            },
            PeerTls::default(),
        ));
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
    let configured_roots = roots.clone();
    roots.extend(channel_tls_roots(channels));
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
        .with_endpoint(endpoint.to_owned())
        .with_observer(observer);
    let server = Arc::new(server);
    Ok((
        Security::Tls(server.clone()),
        PeerTls {
            server: Some(server),
            configured_roots,
        },
    ))
}

/// What the deliver clients need: the peer's identity and TLS client certificate.
fn deliver_settings(
    cfg: &CoreConfig,
    identity: Arc<SigningIdentity>,
) -> Result<DeliverSettings, StartError> {
    let tls = &cfg.peer.tls;
    let mut pem = None;
    if tls.enabled {
        // The client certificate: peer.tls.clientCert.file, else the server certificate.
        let (cert, key, what) = match (&tls.client_cert.file, &tls.client_key.file) {
            (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => (
                c.clone(),
                k.clone(),
                "peer.tls.clientCert.file / peer.tls.clientKey.file",
            ),
            _ => (
                tls.cert.file.clone().unwrap_or_default(),
                tls.key.file.clone().unwrap_or_default(),
                "peer.tls.cert.file / peer.tls.key.file",
            ),
        };
        let read = |f: &str| {
            let path = cfg.resolve(f);
            std::fs::read(&path)
                .map_err(|e| err(format!("{what}: cannot read {}: {e}", path.display())))
        };
        pem = Some((read(&cert)?, read(&key)?));
    }
    Ok(DeliverSettings {
        signer: identity,
        tls: pem,
        tls_enabled: tls.enabled,
        max_backoff: std::time::Duration::from_secs(10),
    })
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
        let ledgers_dir = fs_path.join("ledgersData");
        if let Some(path) = &opts.channels_file {
            let file = ChannelsFile::load(path).map_err(|e| err(e.to_string()))?;
            file.open(path, &ledgers_dir, &channels)
                .map_err(|e| err(e.to_string()))?;
        }
        for id in channels.ids() {
            if let Some(ch) = channels.get(&id) {
                crate::committer::recover(&ch)
                    .await
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        reopen_joined(&ledgers_dir, &channels).await?;
        let deliver = deliver_settings(cfg, identity.clone())?;

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
            store.clone(),
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
        let metrics = Arc::new(weft_ops::peer::PeerMetrics::new(Arc::new(
            weft_ops::Registry::new(),
        )));
        endorser.set_metrics(metrics.clone());
        runtime.set_metrics(metrics.clone());

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
        let (security, tls) = peer_tls(
            cfg,
            &channels,
            &peer_local.to_string(),
            metrics.tls_observer("peer"),
        )?;

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
            .with_keepalive(keepalive)
            .with_tls_observer(metrics.tls_observer("chaincode"));
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(chaincode_service::serve(
            cc_listener,
            service,
            stopped(&stop),
        )));
        let endorser_service = endorser.clone().into_service();
        let deliver_service = Arc::new(crate::deliver::DeliverService::new(
            channels.clone(),
            crate::deliver::DeliverOptions {
                mutual_tls: cfg.peer.tls.enabled && cfg.peer.tls.client_auth_required,
                time_window: cfg.auth_time_window(),
            },
        ))
        .into_server();
        let gateway = if cfg.peer.gateway.enabled {
            let (endorsement_timeout, broadcast_timeout, dial_timeout) = cfg.gateway_timeouts();
            let dialing = match &deliver.tls {
                Some((cert, key)) => crate::gateway::Dialing::Tls {
                    client_cert: Some((cert.clone(), key.clone())),
                    extra_roots: root_certs(cfg)?,
                },
                None => crate::gateway::Dialing::Plaintext,
            };
            Some(Arc::new(crate::gateway::Gateway::new(
                channels.clone(),
                endorser.clone(),
                crate::gateway::LocalPeer {
                    address: cfg.peer.address.clone(),
                    msp_id: cfg.peer.local_msp_id.clone(),
                },
                dialing,
                crate::gateway::GatewayOptions {
                    endorsement_timeout,
                    broadcast_timeout,
                    dial_timeout,
                    ..Default::default()
                },
            )))
        } else {
            tracing::info!("peer.gateway.enabled is false: the Gateway service is not served");
            None
        };
        if let Some(g) = &gateway {
            g.set_metrics(metrics.clone());
        }
        let gateway_service = gateway.clone().map(|g| g.into_service());
        let peer_shutdown = stopped(&stop);
        let local_msp =
            weft_msp::msp::Msp::from_dir(&msp_dir, &cfg.peer.local_msp_id).map_err(|e| {
                err(format!(
                    "peer.mspConfigPath {} / peer.localMspId {}: {e}",
                    msp_dir.display(),
                    cfg.peer.local_msp_id
                ))
            })?;
        let shared = Arc::new(Shared {
            channels: channels.clone(),
            ledgers_dir: ledgers_dir.clone(),
            tls,
            deliver,
            deliver_tasks: Mutex::new(Vec::new()),
            stop,
            local_msp: weft_msp::msp::MspManager::new([local_msp]),
            local_msp_id: cfg.peer.local_msp_id.clone(),
            install_store: store,
            builder: (!dev_mode).then(|| runtime.clone()),
        });
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
        endorser.set_peer_admin(shared.clone());
        // Serve only now: the listener is bound (and accepts connections) already, and a peer
        // admin call that arrived before set_peer_admin would be refused.
        tasks.push(tokio::spawn(async move {
            weft_tls::grpc::server_builder()
                .add_service(endorser_service)
                .add_service(deliver_service)
                .add_optional_service(gateway_service)
                .serve_with_incoming_shutdown(incoming(peer_listener, security), peer_shutdown)
                .await
                .map_err(|e| e.to_string())
        }));
        let operations = start_operations(cfg, &metrics, &channels, &authority).await?;
        let node = PeerNode {
            peer_address: peer_local,
            chaincode_address: cc_local,
            chaincode_advertised: advertised,
            channels,
            runtime,
            endorser,
            authority,
            identity,
            dev_dir,
            ledgers_dir,
            gateway,
            operations_address: operations.as_ref().map(|o| o.address()),
            metrics,
            operations,
            shared,
            tasks,
        };
        for id in node.channels.ids() {
            if let Some(ch) = node.channels.get(&id) {
                ch.set_local_msp(&cfg.peer.local_msp_id);
                if let Err(e) =
                    crate::lifecycle::load_definitions(&ch, &cfg.peer.local_msp_id).await
                {
                    tracing::error!(channel = %id, "cannot load the chaincode definitions: {e}");
                }
                if ch.config().is_some() {
                    node.shared.start_deliver(ch);
                }
            }
        }
        Ok(node)
    }

    /// Join a channel from its genesis block: the block becomes block 0 of the channel's new
    /// ledger, the channel (with the MSPs and policies of its config) is served at once and
    /// reopened at every start, its org TLS roots are trusted by the peer's listener, and a
    /// deliver client starts pulling its blocks from the orderers.
    pub async fn join_channel(&self, block: Block) -> Result<Arc<Channel>, JoinError> {
        self.shared.join_channel(block).await
    }

    /// Trust the configured client roots plus every channel's org TLS roots.
    pub fn refresh_client_roots(&self) {
        self.shared.refresh_client_roots()
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

    /// Stop listening, stop launched chaincode, wait for the servers to finish, and (for up to
    /// 5 s) for the channels' ledgers to be closed, so that the same ledgers can be opened
    /// again as soon as this returns (a restart in the same process, tests).
    pub async fn shutdown(self) {
        let ledgers: Vec<std::sync::Weak<Channel>> = self
            .channels
            .ids()
            .iter()
            .filter_map(|id| self.channels.get(id))
            .map(|c| Arc::downgrade(&c))
            .collect();
        self.stop_and_join().await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let open = ledgers.iter().filter(|w| w.strong_count() > 0).count();
            if open == 0 {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    open,
                    "peer stopped, but {open} channel ledger(s) are still in use after 5 s: opening them again in this process fails on RocksDB's lock until they are released (a new process is not affected)"
                );
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    async fn stop_and_join(self) {
        if let Some(ops) = self.operations {
            ops.shutdown().await;
        }
        self.shared.stop.send_replace(true);
        let deliver = match self.shared.deliver_tasks.lock() {
            Ok(mut t) => std::mem::take(&mut *t),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for t in deliver {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        self.runtime.shutdown().await;
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        if let Some(dir) = self.dev_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
