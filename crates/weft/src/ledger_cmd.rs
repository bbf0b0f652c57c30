//! `weft ledger height | block | tx`: read a channel's block store on disk — a peer's
//! (`<peer.fileSystemPath>/ledgersData/<channel>/blocks`) or an orderer's
//! (`<FileLedger.Location>/chains/<channel>`) — while the node runs or not. The store is
//! opened read-only: what it shows is every block indexed so far.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use prost::Message;
use serde_json::{json, Value};
use weft_ledger::BlockStore;
use weft_proto::common::{
    Block, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
};
use weft_proto::msp::SerializedIdentity;
use weft_proto::protos::TxValidationCode;

type BoxError = Box<dyn std::error::Error>;

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// The number of blocks (the next block's number).
    Height {
        #[command(flatten)]
        at: LedgerAt,
    },
    /// One block: header, hashes and each transaction with its validation code (JSON).
    Block {
        /// Block number.
        number: u64,
        #[command(flatten)]
        at: LedgerAt,
    },
    /// Where a transaction is and how it was validated (JSON).
    Tx {
        /// Transaction id.
        tx_id: String,
        #[command(flatten)]
        at: LedgerAt,
    },
}

/// Which block store.
#[derive(Debug, Clone, Args)]
pub struct LedgerAt {
    /// The block store directory itself (holding chains/ and index/).
    #[arg(long = "ledger", value_name = "DIR", conflicts_with_all = ["peer_fs_path", "orderer_ledger"])]
    ledger: Option<PathBuf>,
    /// A peer's file system path (peer.fileSystemPath); needs --channelID.
    #[arg(
        long = "peer-fs-path",
        env = "CORE_PEER_FILESYSTEMPATH",
        requires = "channel"
    )]
    peer_fs_path: Option<PathBuf>,
    /// An orderer's FileLedger.Location; needs --channelID.
    #[arg(
        long = "orderer-ledger",
        env = "ORDERER_FILELEDGER_LOCATION",
        requires = "channel"
    )]
    orderer_ledger: Option<PathBuf>,
    /// Channel name.
    #[arg(short = 'C', long = "channelID")]
    channel: Option<String>,
}

impl LedgerAt {
    fn dir(&self) -> Result<PathBuf, BoxError> {
        if let Some(d) = &self.ledger {
            return Ok(d.clone());
        }
        let channel = self.channel.as_deref().unwrap_or_default();
        if let Some(p) = &self.orderer_ledger {
            return Ok(p.join("chains").join(channel));
        }
        if let Some(p) = &self.peer_fs_path {
            return Ok(p.join("ledgersData").join(channel).join("blocks"));
        }
        Err("which ledger? pass --ledger DIR, or --peer-fs-path / --orderer-ledger with --channelID".into())
    }

    fn open(&self) -> Result<BlockStore, BoxError> {
        let dir = self.dir()?;
        BlockStore::open_read_only(&dir)
            .map_err(|e| format!("cannot read the block store at {}: {e}", dir.display()).into())
    }
}

fn hex(b: &[u8]) -> String {
    weft_crypto::hex(b)
}

fn code_name(code: u8) -> String {
    TxValidationCode::try_from(i32::from(code))
        .map(|c| c.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("code {code}"))
}

/// One transaction of a block, as far as it decodes.
fn tx_summary(index: usize, env_bytes: &[u8], filter: Option<&[u8]>) -> Value {
    let mut v = json!({ "index": index });
    if let Some(code) = filter.and_then(|f| f.get(index)) {
        v["validation_code"] = json!(code_name(*code));
    }
    let decoded = Envelope::decode(env_bytes)
        .ok()
        .and_then(|e| Payload::decode(e.payload).ok())
        .and_then(|p| p.header)
        .map(|h: Header| {
            (
                ChannelHeader::decode(h.channel_header).ok(),
                SignatureHeader::decode(h.signature_header).ok(),
            )
        });
    match decoded {
        Some((Some(ch), sh)) => {
            v["tx_id"] = json!(ch.tx_id);
            v["type"] = json!(HeaderType::try_from(ch.r#type)
                .map(|t| t.as_str_name().to_owned())
                .unwrap_or_else(|_| ch.r#type.to_string()));
            v["channel"] = json!(ch.channel_id);
            if let Some(ts) = ch.timestamp {
                v["timestamp"] = json!(ts.seconds);
            }
            if let Some(creator) = sh.and_then(|s| SerializedIdentity::decode(s.creator).ok()) {
                v["creator_msp"] = json!(creator.mspid);
            }
        }
        _ => v["error"] = json!("the envelope does not decode"),
    }
    v
}

fn block_summary(block: &Block) -> Value {
    let header = block.header.clone().unwrap_or_default();
    let data = block.data.clone().unwrap_or_default();
    let filter = weft_ledger::block::transactions_filter(block);
    json!({
        "number": header.number,
        "previous_hash": hex(&header.previous_hash),
        "data_hash": hex(&header.data_hash),
        "header_hash": hex(&weft_ledger::block::header_hash(&header)),
        "last_config": weft_ledger::block::last_config_index(block),
        "signatures": weft_ledger::block::signatures(block).ok().flatten().map(|m| m.signatures.len()).unwrap_or(0),
        "transactions": data.data.iter().enumerate().map(|(i, e)| tx_summary(i, e, filter)).collect::<Vec<_>>(),
    })
}

pub fn run(cmd: LedgerCommand) -> Result<u8, BoxError> {
    match cmd {
        LedgerCommand::Height { at } => {
            println!("{}", at.open()?.height());
        }
        LedgerCommand::Block { number, at } => {
            let store = at.open()?;
            let block = store.block(number)?.ok_or_else(|| {
                format!(
                    "no block {number}: the ledger's height is {} (blocks 0..{})",
                    store.height(),
                    store.height().saturating_sub(1)
                )
            })?;
            println!("{}", serde_json::to_string_pretty(&block_summary(&block))?);
        }
        LedgerCommand::Tx { tx_id, at } => {
            let store = at.open()?;
            let Some((number, index)) = store.tx_location(&tx_id)? else {
                eprintln!(
                    "transaction {tx_id} is not in this ledger (height {})",
                    store.height()
                );
                return Ok(crate::EXIT_NOT_OK);
            };
            let block = store
                .block(number)?
                .ok_or_else(|| format!("the index names block {number}, which is missing"))?;
            let index = usize::try_from(index)?;
            let env = block
                .data
                .as_ref()
                .and_then(|d| d.data.get(index))
                .ok_or_else(|| format!("block {number} has no transaction {index}"))?;
            let mut v = tx_summary(index, env, weft_ledger::block::transactions_filter(&block));
            v["block"] = json!(number);
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(0)
}
