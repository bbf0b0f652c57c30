//! `weft peer node start`: run a peer from `core.yaml` (Fabric's key names, `CORE_*`
//! overrides) until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::Args;
use weft_peer::config::CoreConfig;
use weft_peer::node::{PeerNode, StartOptions};

#[derive(Debug, Args)]
pub struct StartArgs {
    /// core.yaml to read; default: $FABRIC_CFG_PATH/core.yaml, else ./core.yaml, else the
    /// built-in defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The channels this peer serves, with their MSPs and chaincode definitions (weft's
    /// channel file, until channels are joined from blocks).
    #[arg(long, value_name = "FILE", env = "WEFT_PEER_CHANNELS")]
    channels: Option<PathBuf>,
    /// Development mode: chaincode started by hand registers by name or package id without a
    /// launch certificate. Never use it in production.
    #[arg(long = "peer-chaincodedev")]
    peer_chaincodedev: bool,
}

pub(crate) fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    if explicit.is_some() {
        return explicit;
    }
    if let Ok(dir) = std::env::var("FABRIC_CFG_PATH") {
        let p = PathBuf::from(dir).join("core.yaml");
        if p.exists() {
            return Some(p);
        }
    }
    let local = PathBuf::from("core.yaml");
    local.exists().then_some(local)
}

pub fn start(args: StartArgs) -> Result<u8, Box<dyn std::error::Error>> {
    let path = config_path(args.config);
    let cfg = CoreConfig::load(path.as_deref(), |k| std::env::var(k).ok())?;
    match &path {
        Some(p) => tracing::info!(config = %p.display(), "loaded core.yaml"),
        None => tracing::warn!(
            "no core.yaml found (--config, $FABRIC_CFG_PATH, ./core.yaml); using defaults"
        ),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let node = PeerNode::start(
            &cfg,
            StartOptions {
                channels_file: args.channels,
                dev_mode: args.peer_chaincodedev,
            },
        )
        .await?;
        println!(
            "peer {} listening on {} (chaincode service {}, given to chaincode as {})",
            cfg.peer.id, node.peer_address, node.chaincode_address, node.chaincode_advertised
        );
        node.deploy_defined().await;
        wait_for_signal().await;
        tracing::info!("stopping the peer");
        node.shutdown().await;
        Ok::<u8, Box<dyn std::error::Error>>(0)
    })
}

/// Wait for SIGINT or SIGTERM (Ctrl-C where signals cannot be installed): how the node
/// commands (`peer node start`, `orderer start`) know to stop.
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
