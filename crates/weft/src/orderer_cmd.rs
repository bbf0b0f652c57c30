//! `weft orderer start`: run an orderer from `orderer.yaml` (Fabric's key names, `ORDERER_*`
//! overrides) until SIGINT or SIGTERM.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use weft_orderer::{OrdererConfig, OrdererNode};

#[derive(Debug, Subcommand)]
pub enum OrdererCommand {
    /// Start the orderer: AtomicBroadcast on General.ListenAddress:ListenPort and the channel
    /// participation API on Admin.ListenAddress, until SIGINT/SIGTERM.
    Start(StartArgs),
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// orderer.yaml to read; default: $FABRIC_CFG_PATH/orderer.yaml, else ./orderer.yaml, else
    /// the built-in defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    if explicit.is_some() {
        return explicit;
    }
    if let Ok(dir) = std::env::var("FABRIC_CFG_PATH") {
        let p = PathBuf::from(dir).join("orderer.yaml");
        if p.exists() {
            return Some(p);
        }
    }
    let local = PathBuf::from("orderer.yaml");
    local.exists().then_some(local)
}

pub fn run(cmd: OrdererCommand) -> Result<u8, Box<dyn std::error::Error>> {
    let OrdererCommand::Start(args) = cmd;
    let path = config_path(args.config);
    let cfg = OrdererConfig::load(path.as_deref(), |k| std::env::var(k).ok())?;
    match &path {
        Some(p) => tracing::info!(config = %p.display(), "loaded orderer.yaml"),
        None => tracing::warn!(
            "no orderer.yaml found (--config, $FABRIC_CFG_PATH, ./orderer.yaml); using defaults"
        ),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let node = OrdererNode::start(&cfg).await?;
        match node.admin_address {
            Some(admin) => println!(
                "orderer listening on {} (channel participation API on {admin}; channels: {})",
                node.address,
                node.registrar.ids().join(", ")
            ),
            None => println!("orderer listening on {}", node.address),
        }
        crate::node_cmd::wait_for_signal().await;
        tracing::info!("stopping the orderer");
        node.shutdown().await;
        Ok::<u8, Box<dyn std::error::Error>>(0)
    })
}
