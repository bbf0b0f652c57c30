//! Channel config updates from the command line, without configtxlator:
//!
//! - `weft configtx update add-org | set-anchor-peers`: read the current config block, edit
//!   the config, compute the read and write sets ([`weft_configtx::update::compute_update`])
//!   and write the update as Fabric's tools pass it around: a `common.Envelope` of type
//!   CONFIG_UPDATE whose payload holds a `ConfigUpdateEnvelope` without signatures yet (what
//!   `configtxlator` + the `jq` wrapping of Fabric's tutorial produce).
//! - `weft peer channel signconfigtx -f FILE`: add the local admin's `ConfigSignature` to the
//!   file, in place.
//! - `weft peer channel update -f FILE -c CHANNEL -o ORDERER --cafile CA`: add the local
//!   admin's signature too, wrap the update in an envelope signed by that admin, broadcast it
//!   and print the orderer's answer.
//! - `weft peer channel fetch newest|oldest|config|N [FILE] -c CHANNEL -o ORDERER --cafile CA`:
//!   one block from the orderer's Deliver service (`config`: the block that the newest
//!   block's LAST_CONFIG names).
//!
//! Signing identity: `--mspdir`/`--mspid` (`CORE_PEER_MSPCONFIGPATH`, `CORE_PEER_LOCALMSPID`).
//! The orderer connection is TLS; a client certificate (`--certfile`/`--keyfile`, else
//! `CORE_PEER_TLS_CLIENTCERT_FILE`/`_CLIENTKEY_FILE`) is presented when given, and Deliver
//! requests then carry its hash (orderers bind the stream to it under mutual TLS).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::{Args, Subcommand};
use prost::Message;
use weft_configtx::update;
use weft_configtx::{config_from_block, ChannelConfig, OrgProfile};
use weft_msp::msp::SigningIdentity;
use weft_proto::common::{
    Block, ChannelHeader, ConfigUpdateEnvelope, Envelope, Header, HeaderType, Payload, Status,
};
use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use weft_proto::orderer::deliver_response::Type as DeliverType;
use weft_proto::orderer::seek_position::Type as Pos;
use weft_proto::orderer::{SeekNewest, SeekOldest, SeekSpecified};
use weft_tls::{ClientIdentity, Identity};

use crate::lifecycle_tx::{connect, peer_client_identity, runtime, Conn};

type BoxError = Box<dyn std::error::Error>;

/// `weft configtx update ...`.
#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Add an application org to a channel: its MSP (from its MSP directory), the default org
    /// policies (Readers, Writers, Admins, Endorsement) and its anchor peers.
    AddOrg {
        #[command(flatten)]
        common: UpdateFlags,
        /// The new org's MSP directory (cacerts/, tlscacerts/, config.yaml, ...).
        #[arg(long = "org-msp-dir")]
        msp_dir: PathBuf,
        /// The new org's MSP ID.
        #[arg(long = "msp-id")]
        msp_id: String,
        /// The org's group name in the config (default: the MSP ID).
        #[arg(long = "org-name")]
        org_name: Option<String>,
        /// An anchor peer, host:port (repeatable).
        #[arg(long = "anchor-peer")]
        anchor_peers: Vec<String>,
    },
    /// Replace an application org's anchor peers (none given: remove them).
    SetAnchorPeers {
        #[command(flatten)]
        common: UpdateFlags,
        /// The org's group name in the config (usually its MSP ID).
        #[arg(long = "org")]
        org: String,
        /// An anchor peer, host:port (repeatable).
        #[arg(long = "anchor-peer")]
        anchor_peers: Vec<String>,
    },
}

/// Input and output of `weft configtx update`.
#[derive(Debug, Clone, Args)]
pub struct UpdateFlags {
    /// The channel's current config block (`weft peer channel fetch config`).
    #[arg(long = "channel-block")]
    pub channel_block: PathBuf,
    /// Where to write the update (a CONFIG_UPDATE envelope, unsigned).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
}

/// The signing identity (Fabric's environment).
#[derive(Debug, Clone, Args)]
pub struct SignerFlags {
    /// The admin's MSP directory.
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    pub msp_dir: PathBuf,
    /// The admin's MSP ID.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    pub msp_id: String,
}

impl SignerFlags {
    fn signer(&self) -> Result<SigningIdentity, BoxError> {
        SigningIdentity::from_local_msp_dir(&self.msp_dir, &self.msp_id).map_err(|e| {
            format!(
                "--mspdir {} / --mspid {} (CORE_PEER_MSPCONFIGPATH / CORE_PEER_LOCALMSPID): {e}",
                self.msp_dir.display(),
                self.msp_id
            )
            .into()
        })
    }
}

/// The orderer and how to reach it (Fabric's flags).
#[derive(Debug, Clone, Args)]
pub struct OrdererConnFlags {
    /// The orderer (host:port).
    #[arg(short = 'o', long = "orderer", env = "ORDERER_ADDRESS")]
    pub orderer: String,
    /// TLS to the orderer (weft always uses TLS; accepted for Fabric compatibility).
    #[arg(long = "tls", default_value_t = true)]
    pub tls: bool,
    /// The orderer's TLS CA certificate.
    #[arg(long = "cafile", env = "ORDERER_CA")]
    pub cafile: PathBuf,
    /// Client certificate for the orderer (mutual TLS); defaults to the peer client cert.
    #[arg(long = "certfile", requires = "keyfile")]
    pub certfile: Option<PathBuf>,
    /// Client key for the orderer.
    #[arg(long = "keyfile", requires = "certfile")]
    pub keyfile: Option<PathBuf>,
    /// Accepted for Fabric compatibility: the client certificate is presented when given.
    #[arg(long = "clientauth", default_value_t = false)]
    pub clientauth: bool,
    /// Name expected in the orderer's certificate, if not the host of -o.
    #[arg(long = "ordererTLSHostnameOverride")]
    pub server_name: Option<String>,
}

/// `weft peer channel update`.
#[derive(Debug, Clone, Args)]
pub struct ChannelUpdateArgs {
    /// The update (from `weft configtx update`, possibly signed with `signconfigtx`).
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// The channel.
    #[arg(short = 'c', long = "channelID")]
    pub channel: String,
    #[command(flatten)]
    pub orderer: OrdererConnFlags,
    #[command(flatten)]
    pub signer: SignerFlags,
}

/// `weft peer channel signconfigtx`.
#[derive(Debug, Clone, Args)]
pub struct SignConfigTxArgs {
    /// The update file; the signature is added to it in place.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    #[command(flatten)]
    pub signer: SignerFlags,
}

/// `weft peer channel fetch`.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// Which block: newest, oldest, config (the current config block) or a block number.
    pub which: String,
    /// Where to write it (default: <channel>_<which>.block).
    pub output: Option<PathBuf>,
    /// The channel.
    #[arg(short = 'c', long = "channelID")]
    pub channel: String,
    #[command(flatten)]
    pub orderer: OrdererConnFlags,
    #[command(flatten)]
    pub signer: SignerFlags,
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()).into())
}

fn write_file(path: &Path, bytes: &[u8], what: &str) -> Result<(), BoxError> {
    std::fs::write(path, bytes)
        .map_err(|e| format!("cannot write {what} {}: {e}", path.display()).into())
}

fn parse_peers(list: &[String]) -> Result<Vec<(String, u16)>, BoxError> {
    list.iter()
        .map(|a| {
            let (host, port) = a
                .rsplit_once(':')
                .ok_or_else(|| format!("--anchor-peer {a:?}: expected host:port"))?;
            let port: u16 = port
                .parse()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("--anchor-peer {a:?}: the port must be 1-65535"))?;
            if host.is_empty() {
                return Err(format!("--anchor-peer {a:?}: the host is empty").into());
            }
            Ok((host.to_owned(), port))
        })
        .collect()
}

/// The CONFIG_UPDATE envelope file format: payload with a channel header, data =
/// `ConfigUpdateEnvelope`; unsigned.
fn update_file(channel: &str, cue: &ConfigUpdateEnvelope) -> Envelope {
    let ch = ChannelHeader {
        r#type: HeaderType::ConfigUpdate as i32,
        channel_id: channel.to_owned(),
        ..ChannelHeader::default()
    };
    Envelope {
        payload: Bytes::from(
            Payload {
                header: Some(Header {
                    channel_header: Bytes::from(ch.encode_to_vec()),
                    signature_header: Bytes::new(),
                }),
                data: Bytes::from(cue.encode_to_vec()),
            }
            .encode_to_vec(),
        ),
        signature: Bytes::new(),
    }
}

/// Read an update file: its channel and `ConfigUpdateEnvelope`.
fn read_update(path: &Path) -> Result<(String, ConfigUpdateEnvelope), BoxError> {
    let bytes = read_file(path, "the update file")?;
    let bad = |e: String| -> BoxError {
        format!(
            "{} is not a config update envelope (from `weft configtx update` or configtxlator): {e}",
            path.display()
        )
        .into()
    };
    let env = Envelope::decode(bytes.as_slice()).map_err(|e| bad(e.to_string()))?;
    let (ch, cue) = update::update_from_envelope(&env).map_err(|e| bad(e.to_string()))?;
    update::decode_update_envelope(&Bytes::from(cue.encode_to_vec()))
        .map_err(|e| bad(e.to_string()))?;
    Ok((ch.channel_id, cue))
}

/// An edit of the current config into the desired one.
type Edit = Box<dyn Fn(&ChannelConfig) -> Result<weft_proto::common::Config, BoxError>>;

/// `weft configtx update ...`.
pub fn run_update(cmd: UpdateCommand) -> Result<u8, BoxError> {
    let (common, edit): (UpdateFlags, Edit) = match cmd {
        UpdateCommand::AddOrg {
            common,
            msp_dir,
            msp_id,
            org_name,
            anchor_peers,
        } => {
            let peers = parse_peers(&anchor_peers)?;
            let name = org_name.unwrap_or_else(|| msp_id.clone());
            let mut org = OrgProfile::application(&name, &msp_id, &msp_dir);
            org.anchor_peers = peers;
            (
                common,
                Box::new(move |c: &ChannelConfig| {
                    Ok(update::add_application_org(c.config(), &org)?)
                }),
            )
        }
        UpdateCommand::SetAnchorPeers {
            common,
            org,
            anchor_peers,
        } => {
            let peers = parse_peers(&anchor_peers)?;
            (
                common,
                Box::new(move |c: &ChannelConfig| {
                    Ok(update::set_anchor_peers(c.config(), &org, &peers)?)
                }),
            )
        }
    };
    let bytes = read_file(&common.channel_block, "the config block")?;
    let block = Block::decode(bytes.as_slice()).map_err(|e| {
        format!(
            "{} is not a block (protobuf common.Block): {e}",
            common.channel_block.display()
        )
    })?;
    let (channel, config) = config_from_block(&block).map_err(|e| {
        format!(
            "{}: {e}; fetch the current config block with `weft peer channel fetch config`",
            common.channel_block.display()
        )
    })?;
    let current = ChannelConfig::from_config(&channel, &config)
        .map_err(|e| format!("{}: {e}", common.channel_block.display()))?;
    let updated = edit(&current)?;
    let cu = update::compute_update(&channel, current.config(), &updated)?;
    let cue = ConfigUpdateEnvelope {
        config_update: Bytes::from(cu.encode_to_vec()),
        signatures: Vec::new(),
    };
    write_file(
        &common.output,
        &update_file(&channel, &cue).encode_to_vec(),
        "the update",
    )?;
    println!(
        "wrote the config update of channel '{channel}' (from config sequence {}) to {}; sign it with `weft peer channel signconfigtx -f {}` as enough admins, then submit it with `weft peer channel update`",
        current.sequence(),
        common.output.display(),
        common.output.display()
    );
    Ok(0)
}

/// `weft peer channel signconfigtx`.
pub fn signconfigtx(args: SignConfigTxArgs) -> Result<u8, BoxError> {
    let signer = args.signer.signer()?;
    let (channel, mut cue) = read_update(&args.file)?;
    cue.signatures
        .push(update::signature(&signer, &cue.config_update)?);
    write_file(
        &args.file,
        &update_file(&channel, &cue).encode_to_vec(),
        "the update",
    )?;
    eprintln!(
        "signed the config update of channel '{channel}' as {} ({} signatures now)",
        signer.msp_id(),
        cue.signatures.len()
    );
    Ok(0)
}

async fn orderer_conn(flags: &OrdererConnFlags) -> Result<(Conn, Option<[u8; 32]>), BoxError> {
    let identity = match (&flags.certfile, &flags.keyfile) {
        (Some(c), Some(k)) => {
            ClientIdentity::Certificate(Identity::from_pem_files(c, k, "--certfile/--keyfile")?)
        }
        _ => peer_client_identity()?,
    };
    let hash = match &identity {
        ClientIdentity::Certificate(id) => {
            id.chain().first().map(|c| weft_crypto::sha256(c.as_ref()))
        }
        _ => None,
    };
    let conn = connect(
        &flags.orderer,
        &flags.cafile,
        "--cafile (ORDERER_CA)",
        identity,
        flags.server_name.as_deref(),
    )
    .await?;
    Ok((conn, hash))
}

/// `weft peer channel update`.
pub fn channel_update(args: ChannelUpdateArgs) -> Result<u8, BoxError> {
    let signer = args.signer.signer()?;
    let (channel, mut cue) = read_update(&args.file)?;
    if channel != args.channel {
        return Err(format!(
            "{} is an update of channel '{channel}', not '{}' (-c)",
            args.file.display(),
            args.channel
        )
        .into());
    }
    cue.signatures
        .push(update::signature(&signer, &cue.config_update)?);
    let envelope = update::update_envelope(&channel, &cue, &signer)?;
    runtime()?.block_on(async {
        let (conn, _) = orderer_conn(&args.orderer).await?;
        weft_peer::client::broadcast(&conn, envelope).await?;
        Ok::<(), BoxError>(())
    })?;
    eprintln!("Successfully submitted channel update");
    Ok(0)
}

/// One block from the orderer.
async fn fetch_one(
    conn: &Conn,
    signer: &SigningIdentity,
    channel: &str,
    pos: Pos,
    tls_hash: Option<[u8; 32]>,
) -> Result<Block, BoxError> {
    let env = weft_peer::deliverclient::seek_envelope(signer, channel, pos, pos, tls_hash)?;
    let mut stream = AtomicBroadcastClient::new(conn.channel.clone())
        .max_decoding_message_size(256 * 1024 * 1024)
        .deliver(tokio_stream::iter([env]))
        .await
        .map_err(|s| {
            format!(
                "orderer {} refused the deliver stream: {}",
                conn.address,
                s.message()
            )
        })?
        .into_inner();
    let mut block = None;
    loop {
        let msg = stream
            .message()
            .await
            .map_err(|s| format!("orderer {}: {}", conn.address, s.message()))?
            .ok_or_else(|| format!("orderer {} closed the stream", conn.address))?;
        match msg.r#type {
            Some(DeliverType::Block(b)) => block = Some(b),
            Some(DeliverType::Status(s)) => {
                if s == Status::Success as i32 {
                    return block
                        .ok_or_else(|| format!("orderer {} sent no block", conn.address).into());
                }
                let name = Status::try_from(s)
                    .map(|s| s.as_str_name())
                    .unwrap_or("unknown");
                let hint = if s == Status::Forbidden as i32 {
                    ": the signer (--mspdir/--mspid) does not satisfy the channel's Readers policy, or the TLS client certificate is not the one the request is bound to"
                } else if s == Status::NotFound as i32 {
                    ": the orderer does not serve this channel, or the block does not exist"
                } else {
                    ""
                };
                return Err(format!(
                    "orderer {} answered status {s} ({name}) for channel '{channel}'{hint}",
                    conn.address
                )
                .into());
            }
            None => return Err(format!("orderer {} sent an empty response", conn.address).into()),
        }
    }
}

/// `weft peer channel fetch`.
pub fn fetch(args: FetchArgs) -> Result<u8, BoxError> {
    let signer = args.signer.signer()?;
    let which = args.which.to_ascii_lowercase();
    let pos = match which.as_str() {
        "newest" | "config" => Pos::Newest(SeekNewest {}),
        "oldest" => Pos::Oldest(SeekOldest {}),
        n => Pos::Specified(SeekSpecified {
            number: n.parse().map_err(|_| {
                format!("fetch {n:?}: expected newest, oldest, config or a block number")
            })?,
        }),
    };
    let block = runtime()?.block_on(async {
        let (conn, hash) = orderer_conn(&args.orderer).await?;
        let block = fetch_one(&conn, &signer, &args.channel, pos, hash).await?;
        if which != "config" {
            return Ok::<Block, BoxError>(block);
        }
        let number = block.header.as_ref().map_or(0, |h| h.number);
        let index = weft_ledger::block::last_config_index(&block).ok_or_else(|| {
            format!("block {number} records no LAST_CONFIG index: cannot find the config block")
        })?;
        if index == number {
            return Ok(block);
        }
        fetch_one(
            &conn,
            &signer,
            &args.channel,
            Pos::Specified(SeekSpecified { number: index }),
            hash,
        )
        .await
    })?;
    let number = block.header.as_ref().map_or(0, |h| h.number);
    let out = args
        .output
        .unwrap_or_else(|| PathBuf::from(format!("{}_{which}.block", args.channel)));
    write_file(&out, &block.encode_to_vec(), "the block")?;
    eprintln!("Received block: {number}");
    println!("{}", out.display());
    Ok(0)
}
