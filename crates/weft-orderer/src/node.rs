//! A running orderer: `weft orderer start`.
//!
//! Two listeners, as Fabric's orderer has them:
//! - `General.ListenAddress:General.ListenPort`: `AtomicBroadcast` with `General.TLS.*`.
//!   Trusted client roots are `General.TLS.ClientRootCAs` plus the TLS roots (and
//!   intermediates) of every org of every joined channel, replaced live on each join,
//!   removal and config change (a config block adding an org makes its TLS CA trusted). Client certificates are required with `ClientAuthRequired`, else requested.
//! - `Admin.ListenAddress`: the channel participation API ([`crate::admin`]) with
//!   `Admin.TLS.*` (mutual TLS required when TLS is on).
//!
//! Joined channels are found on disk at start ([`Registrar::open`]).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use weft_msp::msp::SigningIdentity;
use weft_tls::grpc::{incoming, Security};
use weft_tls::{ClientAuth, Identity, Profile, Settings, TlsServer, Trust};

use crate::chain::ChainPaths;
use crate::config::{OrdererConfig, TlsSection};
use crate::consensus::BlockSigner;
use crate::registrar::Registrar;
use crate::service::AtomicBroadcastService;

/// Why the orderer could not start. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

fn err(msg: impl Into<String>) -> StartError {
    StartError(msg.into())
}

/// A started orderer. Dropping it does not stop it; call [`OrdererNode::shutdown`].
#[derive(Debug)]
pub struct OrdererNode {
    /// Where AtomicBroadcast is served.
    pub address: SocketAddr,
    /// Where the channel participation API is served (if enabled).
    pub admin_address: Option<SocketAddr>,
    pub registrar: Arc<Registrar>,
    pub identity: Arc<SigningIdentity>,
    /// The AtomicBroadcast TLS server (for its client trust), when TLS is on.
    pub tls: Option<Arc<TlsServer>>,
    /// Where the operations service listens (`Operations.ListenAddress`; `None` when it is
    /// empty). The bound port when the configured one was 0.
    pub operations_address: Option<SocketAddr>,
    /// The node's metrics registry and families (the process-wide ones are included).
    pub metrics: Arc<weft_ops::orderer::OrdererNodeMetrics>,
    operations: Option<weft_ops::OpsServer>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn read_roots(
    cfg: &OrdererConfig,
    files: &[String],
    key: &str,
) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let mut roots = Vec::new();
    for f in files {
        let path = cfg.resolve(f);
        let pem = std::fs::read(&path)
            .map_err(|e| err(format!("{key}: cannot read {}: {e}", path.display())))?;
        roots.extend(
            weft_crypto::pem::certificates(&pem, &path.display().to_string())
                .map_err(|e| err(format!("{key}: {e}")))?,
        );
    }
    Ok(roots)
}

/// A root no certificate chains to: stands in while no client roots are known, so the
/// server can still ask for client certificates and have roots added later.
fn placeholder_root() -> Result<CertificateDer<'static>, StartError> {
    let ca = weft_crypto::CertificateAuthority::new_root(
        &weft_crypto::Subject::cn("weft orderer: no client roots known yet"),
        weft_crypto::Validity::from_now(time::Duration::days(1)),
        weft_crypto::KeyAlgorithm::EcdsaP256,
    )
    .map_err(|e| err(format!("cannot create a placeholder client root: {e}")))?;
    Ok(ca.certificate().clone())
}

/// Client roots for the AtomicBroadcast listener: configured + every joined channel's orgs.
fn client_roots(
    configured: &[CertificateDer<'static>],
    chains: &[Arc<crate::chain::Chain>],
) -> Vec<CertificateDer<'static>> {
    let mut roots: Vec<CertificateDer<'static>> = configured.to_vec();
    for chain in chains {
        for der in chain.config().all_tls_roots() {
            let c = CertificateDer::from(der);
            if !roots.contains(&c) {
                roots.push(c);
            }
        }
    }
    roots
}

/// The admin listener's settings, named after `Admin.TLS.*`.
fn admin_settings() -> Settings {
    Settings {
        tls_enabled: "Admin.TLS.Enabled (ORDERER_ADMIN_TLS_ENABLED)".into(),
        root_cas: "the orderer's TLS CA given to the admin client (osnadmin --ca-file)".into(),
        server_name: "the host name in the admin address (osnadmin -o)".into(),
        client_cert: "the administrator's TLS client certificate (osnadmin --client-cert / --client-key)".into(),
        client_auth_required: "Admin.TLS.ClientAuthRequired (ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED)".into(),
        client_root_cas: "Admin.TLS.ClientRootCAs (ORDERER_ADMIN_TLS_CLIENTROOTCAS)".into(),
        server_cert: "Admin.TLS.Certificate and Admin.TLS.PrivateKey (ORDERER_ADMIN_TLS_CERTIFICATE, ORDERER_ADMIN_TLS_PRIVATEKEY)".into(),
        pinned_certs: "the pinned certificate list".into(),
    }
}

fn tls_server(
    cfg: &OrdererConfig,
    tls: &TlsSection,
    prefix: &str,
    roots: Vec<CertificateDer<'static>>,
    endpoint: &str,
    observer: Arc<dyn weft_tls::HandshakeObserver>,
) -> Result<TlsServer, StartError> {
    let identity = Identity::from_pem_files(
        &cfg.resolve(&tls.certificate),
        &cfg.resolve(&tls.private_key),
        &format!("{prefix}.Certificate / {prefix}.PrivateKey"),
    )
    .map_err(|e| err(e.to_string()))?;
    let roots = if roots.is_empty() {
        vec![placeholder_root()?]
    } else {
        roots
    };
    let auth = if tls.client_auth_required {
        ClientAuth::Require(Trust::Roots(roots))
    } else {
        ClientAuth::Request(Trust::Roots(roots))
    };
    let server = TlsServer::new(&identity, auth, Profile::Fabric)
        .map_err(|e| err(format!("{prefix}: {e}")))?
        .with_endpoint(endpoint.to_owned())
        .with_observer(observer);
    Ok(if prefix == "Admin.TLS" {
        // The channel participation API is HTTPS for HTTP/2 and HTTP/1.1 clients alike.
        server
            .with_settings(admin_settings())
            .with_alpn_protocols(&[b"h2", b"http/1.1"])
    } else {
        server.with_settings(Settings::orderer())
    })
}

/// Register the scrape-time families and health checks, and start the operations listener
/// (`Operations.*`, `Metrics.Provider`); `None` when `Operations.ListenAddress` is empty.
async fn start_operations(
    cfg: &OrdererConfig,
    metrics: &Arc<weft_ops::orderer::OrdererNodeMetrics>,
    registrar: &Arc<Registrar>,
) -> Result<Option<weft_ops::OpsServer>, StartError> {
    let reg = registrar.clone();
    metrics.registry.gauge_fn(
        "ledger_blockchain_height",
        "Height of the chain in blocks.",
        &["channel"],
        move || {
            reg.chains()
                .iter()
                .map(|c| (vec![c.id().to_owned()], c.height() as f64))
                .collect()
        },
    );
    metrics.include_global();
    let listen = cfg.operations.listen_address.trim();
    if listen.is_empty() {
        tracing::info!("Operations.ListenAddress is empty: the operations service (/healthz, /metrics, /logspec) is not started");
        return Ok(None);
    }
    let health = Arc::new(weft_ops::Health::new());
    let reg = registrar.clone();
    health.register(weft_ops::check_fn("channels", move || {
        let halted: Vec<String> = reg
            .chains()
            .iter()
            .filter(|c| *c.stopped().borrow())
            .map(|c| c.id().to_owned())
            .collect();
        if halted.is_empty() {
            Ok(())
        } else {
            Err(format!("channels halted: {}", halted.join(", ")))
        }
    }));
    let provider = weft_ops::provider(&cfg.metrics.provider, "Metrics.Provider")
        .map_err(|e| err(e.to_string()))?;
    let tls = match cfg.operations_tls() {
        Some(t) => Some(Arc::new(
            t.server(listen, Some(metrics.tls_observer("operations")))
                .map_err(|e| err(e.to_string()))?,
        )),
        None => {
            tracing::info!("Operations.TLS.Enabled is false: the operations service is served without TLS (ORDERER_OPERATIONS_TLS_ENABLED)");
            None
        }
    };
    let mut ops = weft_ops::Ops::new(metrics.registry.clone(), health);
    ops.metrics_enabled = provider == weft_ops::Provider::Prometheus;
    ops.tls = tls.is_some();
    ops.client_roots_setting = weft_ops::TlsKeys::orderer().client_root_cas;
    let server = weft_ops::OpsServer::start(listen, "Operations.ListenAddress", tls, Arc::new(ops))
        .await
        .map_err(|e| err(e.to_string()))?;
    Ok(Some(server))
}

impl OrdererNode {
    /// Start an orderer from its configuration.
    pub async fn start(cfg: &OrdererConfig) -> Result<OrdererNode, StartError> {
        let msp_dir = cfg.resolve(&cfg.general.local_msp_dir);
        let identity = Arc::new(
            SigningIdentity::from_local_msp_dir(&msp_dir, &cfg.general.local_msp_id).map_err(
                |e| {
                    err(format!(
                        "General.LocalMSPDir {} / General.LocalMSPID {}: {e}",
                        msp_dir.display(),
                        cfg.general.local_msp_id
                    ))
                },
            )?,
        );
        let paths = ChainPaths {
            ledger_dir: cfg.ledger_dir(),
            wal_dir: cfg.wal_dir(),
        };
        for (key, dir) in [
            ("FileLedger.Location", &paths.ledger_dir),
            ("Consensus.WALDir", &paths.wal_dir),
        ] {
            std::fs::create_dir_all(dir)
                .map_err(|e| err(format!("{key}: cannot create {}: {e}", dir.display())))?;
        }
        let signer = BlockSigner::new(identity.clone());
        let registrar = {
            let paths = paths.clone();
            Arc::new(
                tokio::task::spawn_blocking(move || Registrar::open(paths, signer))
                    .await
                    .map_err(|e| err(format!("opening channels failed: {e}")))?,
            )
        };

        let metrics = Arc::new(weft_ops::orderer::OrdererNodeMetrics::new());
        let listen = cfg.listen_address();
        let listener = TcpListener::bind(&listen).await.map_err(|e| {
            err(format!(
                "General.ListenAddress/ListenPort {listen}: cannot listen: {e}"
            ))
        })?;
        let local = listener
            .local_addr()
            .map_err(|e| err(format!("orderer listener: {e}")))?;
        let gtls = &cfg.general.tls;
        if gtls.enabled {
            // What a channel's consenter set names this node by.
            let cert = cfg.resolve(&gtls.certificate);
            match std::fs::read(&cert)
                .map_err(|e| e.to_string())
                .and_then(|pem| {
                    weft_crypto::pem::certificates(&pem, &cert.display().to_string())
                        .map_err(|e| e.to_string())
                }) {
                Ok(certs) if !certs.is_empty() => {
                    registrar.set_tls_certificate(certs[0].to_vec());
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(err(format!(
                        "General.TLS.Certificate {}: {e}",
                        cert.display()
                    )))
                }
            }
        }
        let (security, tls) = if gtls.enabled {
            let configured = read_roots(cfg, &gtls.client_root_cas, "General.TLS.ClientRootCAs")?;
            let server = Arc::new(tls_server(
                cfg,
                gtls,
                "General.TLS",
                client_roots(&configured, &registrar.chains()),
                &local.to_string(),
                metrics.tls_observer("orderer"),
            )?);
            // Keep the trusted client roots in step with the joined channels.
            let weak = Arc::downgrade(&server);
            registrar.on_change(move |chains| {
                if let Some(server) = weak.upgrade() {
                    let mut roots = client_roots(&configured, chains);
                    if roots.is_empty() {
                        match placeholder_root() {
                            Ok(r) => roots.push(r),
                            Err(e) => {
                                tracing::error!("{e}");
                                return;
                            }
                        }
                    }
                    if let Err(e) = server.set_client_trust(Trust::Roots(roots)) {
                        tracing::error!("cannot update the trusted client CAs: {e}");
                    }
                }
            });
            (Security::Tls(server.clone()), Some(server))
        } else {
            tracing::warn!("General.TLS.Enabled is false: AtomicBroadcast is served WITHOUT TLS (ORDERER_GENERAL_TLS_ENABLED)");
            (
                Security::Plaintext {
                    endpoint: local.to_string(),
                    settings: Arc::new(Settings::orderer()),
                },
                None,
            )
        };

        let (stop, _) = watch::channel(false);
        let stopped = |stop: &watch::Sender<bool>| {
            let mut rx = stop.subscribe();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        let mut tasks = Vec::new();
        let service = AtomicBroadcastService::new(
            registrar.clone(),
            gtls.client_auth_required,
            cfg.time_window(),
            stop.subscribe(),
        )
        .into_server();
        let shutdown = stopped(&stop);
        tasks.push(tokio::spawn(async move {
            if let Err(e) = weft_tls::grpc::server_builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming(listener, security), shutdown)
                .await
            {
                tracing::error!("AtomicBroadcast server stopped: {e}");
            }
        }));

        let admin_address = if cfg.channel_participation.enabled {
            let admin = &cfg.admin;
            let listener = TcpListener::bind(&admin.listen_address)
                .await
                .map_err(|e| {
                    err(format!(
                        "Admin.ListenAddress {}: cannot listen: {e}",
                        admin.listen_address
                    ))
                })?;
            let admin_local = listener
                .local_addr()
                .map_err(|e| err(format!("admin listener: {e}")))?;
            let tls = if admin.tls.enabled {
                let roots = read_roots(cfg, &admin.tls.client_root_cas, "Admin.TLS.ClientRootCAs")?;
                if roots.is_empty() {
                    return Err(err("Admin.TLS.ClientRootCAs (ORDERER_ADMIN_TLS_CLIENTROOTCAS): the channel participation API requires mutual TLS; list the CA certificates of the administrators' TLS client certificates"));
                }
                Some(Arc::new(tls_server(
                    cfg,
                    &admin.tls,
                    "Admin.TLS",
                    roots,
                    &admin_local.to_string(),
                    metrics.tls_observer("admin"),
                )?))
            } else {
                tracing::warn!("Admin.TLS.Enabled is false: the channel participation API is served WITHOUT TLS and without authentication (ORDERER_ADMIN_TLS_ENABLED)");
                None
            };
            tasks.push(tokio::spawn(crate::admin::serve(
                listener,
                tls,
                registrar.clone(),
                cfg.max_request_body_size(),
                stopped(&stop),
            )));
            Some(admin_local)
        } else {
            tracing::warn!("ChannelParticipation.Enabled is false: channels cannot be joined");
            None
        };
        let operations = start_operations(cfg, &metrics, &registrar).await?;
        let operations_address = operations.as_ref().map(|o| o.address());
        tracing::info!(
            address = %local,
            admin = ?admin_address,
            operations = ?operations_address,
            mspid = %cfg.general.local_msp_id,
            tls = gtls.enabled,
            client_auth_required = gtls.client_auth_required,
            channels = ?registrar.ids(),
            "orderer started"
        );
        Ok(OrdererNode {
            address: local,
            admin_address,
            registrar,
            identity,
            tls,
            operations_address,
            metrics,
            operations,
            stop,
            tasks,
        })
    }

    /// Stop listening, halt every channel (blocks already decided are stored), and wait.
    pub async fn shutdown(self) {
        if let Some(ops) = self.operations {
            ops.shutdown().await;
        }
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        self.registrar.halt_all().await;
    }
}
