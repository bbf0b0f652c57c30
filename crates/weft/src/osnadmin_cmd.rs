//! `weft osnadmin channel join|list|remove`: Fabric's `osnadmin` against an orderer's channel
//! participation API, with the same flags. Only HTTPS with a client certificate is spoken
//! (the API requires mutual TLS).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use prost::Message;
use weft_orderer::admin_client::{AdminClient, AdminResponse};

use crate::EXIT_NOT_OK;

#[derive(Debug, Subcommand)]
pub enum OsnadminCommand {
    /// Channel operations.
    #[command(subcommand)]
    Channel(ChannelCommand),
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Join the orderer to a channel from its genesis block.
    Join(JoinArgs),
    /// List the channels the orderer serves, or one channel's details.
    List(ListArgs),
    /// Remove the orderer from a channel (its blocks are deleted).
    Remove(RemoveArgs),
}

#[derive(Debug, Args)]
pub struct Conn {
    /// Admin endpoint of the orderer (host:port).
    #[arg(short = 'o', long = "orderer-address", value_name = "HOST:PORT")]
    orderer_address: String,
    /// TLS CA certificate (PEM) of the orderer's admin endpoint.
    #[arg(long = "ca-file", value_name = "FILE")]
    ca_file: PathBuf,
    /// TLS client certificate (PEM) of the administrator.
    #[arg(long = "client-cert", value_name = "FILE")]
    client_cert: PathBuf,
    /// TLS client key (PEM) of the administrator.
    #[arg(long = "client-key", value_name = "FILE")]
    client_key: PathBuf,
    /// Do not print the HTTP status line.
    #[arg(long = "no-status")]
    no_status: bool,
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    #[command(flatten)]
    conn: Conn,
    /// Channel ID (must match the config block's).
    #[arg(short = 'c', long = "channelID")]
    channel_id: String,
    /// Genesis block of the channel.
    #[arg(short = 'b', long = "config-block", value_name = "FILE")]
    config_block: PathBuf,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    conn: Conn,
    /// Show only this channel.
    #[arg(short = 'c', long = "channelID")]
    channel_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    conn: Conn,
    /// Channel ID.
    #[arg(short = 'c', long = "channelID")]
    channel_id: String,
}

fn read(path: &PathBuf, flag: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

fn client(c: &Conn) -> Result<AdminClient, String> {
    AdminClient::new(
        &c.orderer_address,
        &read(&c.ca_file, "--ca-file")?,
        &read(&c.client_cert, "--client-cert")?,
        &read(&c.client_key, "--client-key")?,
    )
}

fn print(c: &Conn, r: &AdminResponse) -> u8 {
    if !c.no_status {
        println!("Status: {}", r.status);
    }
    let body = serde_json::from_str::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| r.body.clone());
    if !body.is_empty() {
        println!("{body}");
    }
    if (200..300).contains(&r.status) {
        0
    } else {
        EXIT_NOT_OK
    }
}

pub fn run(cmd: OsnadminCommand) -> Result<u8, Box<dyn std::error::Error>> {
    let OsnadminCommand::Channel(cmd) = cmd;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let (conn, response) = match &cmd {
            ChannelCommand::Join(a) => {
                let block = read(&a.config_block, "--config-block")?;
                let decoded = weft_proto::common::Block::decode(block.as_slice()).map_err(|e| {
                    format!(
                        "--config-block {}: not a block: {e}",
                        a.config_block.display()
                    )
                })?;
                let (id, _) = weft_configtx::config_from_block(&decoded).map_err(|e| {
                    format!(
                        "--config-block {}: not a config block: {e}",
                        a.config_block.display()
                    )
                })?;
                if id != a.channel_id {
                    return Err(format!(
                        "--channelID {} does not match the config block's channel ID {id}",
                        a.channel_id
                    )
                    .into());
                }
                (&a.conn, client(&a.conn)?.join(&block).await?)
            }
            ChannelCommand::List(a) => {
                let c = client(&a.conn)?;
                let r = match &a.channel_id {
                    Some(id) => c.info(id).await?,
                    None => c.list().await?,
                };
                (&a.conn, r)
            }
            ChannelCommand::Remove(a) => (&a.conn, client(&a.conn)?.remove(&a.channel_id).await?),
        };
        Ok::<u8, Box<dyn std::error::Error>>(print(conn, &response))
    })
}
