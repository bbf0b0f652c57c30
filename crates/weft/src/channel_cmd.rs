//! `weft peer channel join | list`: the peer-admin calls of Fabric's `peer channel`, sent as
//! proposals to the peer's `cscc` system chaincode and signed by an admin of the peer's org.
//! `fetch`, `signconfigtx` and `update` (config updates, with the orderer) are in
//! [`crate::configupdate_cmd`].

use std::path::PathBuf;

use clap::{Args, Subcommand};
use prost::Message;
use weft_msp::msp::SigningIdentity;
use weft_proto::protos::endorser_client::EndorserClient;
use weft_proto::protos::ChannelQueryResponse;

use crate::lifecycle_tx::{connect, peer_client_identity, runtime};

type BoxError = Box<dyn std::error::Error>;

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// Join the peer to a channel from the channel's genesis block (as an admin of the peer's
    /// organization).
    Join {
        /// The genesis block file (from `weft configtx genesis`, or fetched from the orderer).
        #[arg(short = 'b', long = "blockpath")]
        block: PathBuf,
        #[command(flatten)]
        peer: AdminFlags,
    },
    /// The channels the peer has joined.
    List {
        #[command(flatten)]
        peer: AdminFlags,
    },
    /// Fetch a block from the orderer: newest, oldest, config (the current config block) or
    /// a number.
    Fetch(crate::configupdate_cmd::FetchArgs),
    /// Add your signature (the local admin's) to a config update file, in place.
    Signconfigtx(crate::configupdate_cmd::SignConfigTxArgs),
    /// Sign a config update as the local admin and submit it to the orderer.
    Update(crate::configupdate_cmd::ChannelUpdateArgs),
}

/// The peer and the admin identity, Fabric's environment.
#[derive(Debug, Clone, Args)]
pub struct AdminFlags {
    /// The peer (host:port).
    #[arg(long = "peerAddresses", env = "CORE_PEER_ADDRESS")]
    pub peer: String,
    /// The peer's TLS CA certificate.
    #[arg(long = "tlsRootCertFiles", env = "CORE_PEER_TLS_ROOTCERT_FILE")]
    pub tls_root: PathBuf,
    /// Name expected in the peer's certificate, if not the host of the address.
    #[arg(long = "servername", env = "CORE_PEER_TLS_SERVERHOSTOVERRIDE")]
    pub server_name: Option<String>,
    /// The admin's MSP directory.
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    pub msp_dir: PathBuf,
    /// The admin's MSP id.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    pub msp_id: String,
}

async fn call(flags: &AdminFlags, args: &[&[u8]]) -> Result<bytes::Bytes, BoxError> {
    let signer = SigningIdentity::from_local_msp_dir(&flags.msp_dir, &flags.msp_id)?;
    let conn = connect(
        &flags.peer,
        &flags.tls_root,
        "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)",
        peer_client_identity()?,
        flags.server_name.as_deref(),
    )
    .await?;
    let (proposal, _) =
        weft_peer::endorser::signed_proposal(&signer, "", weft_peer::endorser::CSCC, args, &[])?;
    let resp = EndorserClient::new(conn.channel)
        .process_proposal(proposal)
        .await
        .map_err(|s| format!("peer {} refused the call: {}", flags.peer, s.message()))?
        .into_inner();
    let r = resp.response.unwrap_or_default();
    if r.status >= 400 {
        return Err(format!(
            "peer {} answered status {}: {}",
            flags.peer, r.status, r.message
        )
        .into());
    }
    Ok(r.payload)
}

pub fn run(cmd: ChannelCommand) -> Result<u8, BoxError> {
    match cmd {
        ChannelCommand::Fetch(args) => return crate::configupdate_cmd::fetch(args),
        ChannelCommand::Signconfigtx(args) => return crate::configupdate_cmd::signconfigtx(args),
        ChannelCommand::Update(args) => return crate::configupdate_cmd::channel_update(args),
        _ => {}
    }
    let rt = runtime()?;
    match cmd {
        ChannelCommand::Join { block, peer } => {
            let bytes = std::fs::read(&block)
                .map_err(|e| format!("cannot read the block file {}: {e}", block.display()))?;
            weft_proto::common::Block::decode(bytes.as_slice()).map_err(|e| {
                format!(
                    "{} is not a block (protobuf common.Block): {e}",
                    block.display()
                )
            })?;
            rt.block_on(call(&peer, &[b"JoinChain", &bytes]))?;
            eprintln!("Successfully submitted proposal to join channel");
        }
        ChannelCommand::List { peer } => {
            let payload = rt.block_on(call(&peer, &[b"GetChannels"]))?;
            let r = ChannelQueryResponse::decode(payload)
                .map_err(|e| format!("the peer's channel list does not decode: {e}"))?;
            println!("Channels peers has joined: ");
            for c in r.channels {
                println!("{}", c.channel_id);
            }
        }
        ChannelCommand::Fetch(_) | ChannelCommand::Signconfigtx(_) | ChannelCommand::Update(_) => {}
    }
    Ok(0)
}
