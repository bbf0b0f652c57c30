//! The peer's block store: a channel's blocks in append-only files, plus an index.
//!
//! # Layout
//!
//! Under the store's directory:
//!
//! - `chains/blockfile_000000`, `chains/blockfile_000001`, ...: block records, one per block,
//!   in block order. The next record goes to a new file when it would take the current,
//!   non-empty file past [`BlockStoreConfig::max_file_size`] (64 MiB by default); a block
//!   larger than that gets a file of its own.
//! - A record (pinned by a test; change it only with a migration) is
//!   `length (u64 BE) ++ block bytes ++ crc (u32 BE)`, where `crc` is the CRC-32C
//!   (Castagnoli) of `length ++ block bytes`. The block bytes are exactly the bytes given to
//!   [`BlockStore::append`]; they are never re-encoded.
//! - `index/`: a RocksDB database with
//!   - `b'b' ++ number (u64 BE)` -> `file (u32 BE) ++ offset (u64 BE) ++ length (u64 BE)`:
//!     where the block's record starts, and the length of its block bytes;
//!   - `b't' ++ tx id (UTF-8)` -> `block number (u64 BE) ++ tx number (u64 BE)`;
//!   - `b"c"` (the checkpoint) -> `height (u64 BE) ++ file (u32 BE) ++ offset (u64 BE)`: the
//!     number of blocks indexed and the position just after the last indexed record.
//!
//!   A block's entries and the checkpoint that covers it are written in one atomic batch.
//!
//! # Appending
//!
//! Blocks are appended in order: block `n` only when the height is `n`. [`BlockStore::append`]
//! writes the record, fsyncs the file (with [`BlockStoreConfig::sync`]), then writes the
//! index batch (synced too). The block is readable, and counted in the height, only once its
//! index batch is written.
//!
//! # Recovery
//!
//! On open, the block files are scanned from the checkpoint forward:
//!
//! - every complete record with a valid CRC is re-indexed (a crash between the file write and
//!   the index write); it must hold the block the height expects, otherwise opening fails;
//! - a bad record (cut short, or failing its CRC) in the last block file, with no valid record
//!   after it, is a write the crash interrupted: the file is truncated at the record's start,
//!   with a warning. Only records the index does not cover are ever cut;
//! - a bad record followed by a valid one, or by another block file, is corruption, not a
//!   crash: opening fails with [`BlockStoreError::Corrupt`] rather than drop the blocks
//!   after it;
//! - an index that points past the end of the block files (files lost or truncated behind its
//!   back) makes opening fail.
//!
//! Records the index covers are checked when they are read: a CRC mismatch is a
//! [`BlockStoreError::Corrupt`] error naming the file and offset.
//!
//! # Transaction ids
//!
//! Each envelope's tx id (`Envelope.payload` -> `Payload.header.channel_header` ->
//! `ChannelHeader.tx_id`) is indexed. An envelope that does not parse, or has an empty tx id,
//! is stored but not indexed. The first occurrence of a tx id in the chain wins: a later
//! transaction reusing it (which validation marks invalid) never replaces the entry, so a
//! lookup finds the transaction that counted.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use rocksdb::{Options, WriteBatch, WriteOptions, DB};
use weft_proto::common::{Block, ChannelHeader, Envelope, Payload};

/// Bytes a record adds around the block bytes: the length (8) and the CRC (4).
pub const RECORD_OVERHEAD: u64 = 12;
/// Default size at which a new block file is started (Fabric's default).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;
/// `BlockMetadataIndex.TRANSACTIONS_FILTER`: the metadata entry holding one validation code
/// per transaction.
pub const TRANSACTIONS_FILTER: usize = 2;
/// `TxValidationCode.NOT_VALIDATED`: reported for a transaction the block's filter does not
/// cover.
pub const NOT_VALIDATED: u8 = 254;

const BLOCK_PREFIX: u8 = b'b';
const TX_PREFIX: u8 = b't';
const CHECKPOINT_KEY: &[u8] = b"c";
/// Whether the store indexes transaction ids (`1`) or not (`0`), fixed when it is created.
const TX_INDEX_KEY: &[u8] = b"i";
const FILE_PREFIX: &str = "blockfile_";

/// Block store settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockStoreConfig {
    /// A new block file is started when the next record would take the current one past this
    /// size.
    pub max_file_size: u64,
    /// Fsync block files and index writes before `append` returns.
    pub sync: bool,
    /// Index every transaction id ([`BlockStore::tx_location`]), as a peer's ledger does; an
    /// orderer's, as in Fabric, indexes block numbers only. Fixed when the store is created:
    /// an existing store keeps the mode it was created with.
    pub index_tx_ids: bool,
}

impl Default for BlockStoreConfig {
    fn default() -> Self {
        BlockStoreConfig {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            sync: true,
            index_tx_ids: true,
        }
    }
}

/// Block store failures, naming the file or database and what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlockStoreError {
    #[error("block store {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("block store index {path}: {detail}")]
    Index { path: PathBuf, detail: String },
    #[error("block store {path}: corrupt data at offset {offset}: {detail}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        detail: String,
    },
    #[error("block {number} cannot be appended: the height is {height}, and blocks are appended in order")]
    OutOfOrder { height: u64, number: u64 },
    #[error("block {number} cannot be appended: {detail}")]
    BadBlock { number: u64, detail: String },
    #[error(
        "block store {path}: unusable after an earlier failure ({detail}); reopen it to recover"
    )]
    Unusable { path: PathBuf, detail: String },
}

/// Why bytes are not a valid record (see the module docs for the format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// The bytes end inside the record. `needed` is the record's full size, if its length
    /// header is complete and the size is representable.
    Truncated { available: u64, needed: Option<u64> },
    /// The record is complete, `size` bytes long, but its CRC does not match.
    Checksum {
        size: u64,
        stored: u32,
        computed: u32,
    },
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Truncated {
                available,
                needed: Some(needed),
            } => write!(f, "record of {needed} bytes cut short at {available} bytes"),
            RecordError::Truncated {
                available,
                needed: None,
            } => write!(
                f,
                "record header cut short or length unrepresentable ({available} bytes available)"
            ),
            RecordError::Checksum {
                size,
                stored,
                computed,
            } => write!(
                f,
                "record of {size} bytes fails its CRC-32C (stored {stored:#010x}, computed {computed:#010x})"
            ),
        }
    }
}

/// CRC-32C (Castagnoli, reflected, initial value and final xor `!0`), with the CPU's CRC
/// instructions where it has them.
fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Frame block bytes as a record.
pub fn encode_record(block_bytes: &[u8]) -> Vec<u8> {
    let (header, trailer) = record_frame(block_bytes);
    let mut r = Vec::with_capacity(block_bytes.len() + RECORD_OVERHEAD as usize);
    r.extend_from_slice(&header);
    r.extend_from_slice(block_bytes);
    r.extend_from_slice(&trailer);
    r
}

/// The length header and CRC trailer that frame `block_bytes` as a record, so a record can be
/// written without first copying the block next to them.
fn record_frame(block_bytes: &[u8]) -> ([u8; 8], [u8; 4]) {
    let header = (block_bytes.len() as u64).to_be_bytes();
    let crc = crc32c::crc32c_append(crc32c(&header), block_bytes);
    (header, crc.to_be_bytes())
}

/// Decode the record at the start of `buf`: its block bytes and the record's size. Bytes after
/// the record are ignored.
pub fn decode_record(buf: &[u8]) -> Result<(&[u8], usize), RecordError> {
    let available = buf.len() as u64;
    let truncated = |needed| RecordError::Truncated { available, needed };
    let Some(header) = buf.get(..8) else {
        return Err(truncated(None));
    };
    let mut len = [0u8; 8];
    len.copy_from_slice(header);
    let len = u64::from_be_bytes(len);
    let size = len.checked_add(RECORD_OVERHEAD);
    let (Some(size), Ok(len)) = (size, usize::try_from(len)) else {
        return Err(truncated(None));
    };
    if size > available {
        return Err(truncated(Some(size)));
    }
    let body_end = 8 + len;
    let (Some(framed), Some(crc)) = (buf.get(..body_end), buf.get(body_end..body_end + 4)) else {
        return Err(truncated(Some(size)));
    };
    let mut stored = [0u8; 4];
    stored.copy_from_slice(crc);
    let stored = u32::from_be_bytes(stored);
    let computed = crc32c(framed);
    if stored != computed {
        return Err(RecordError::Checksum {
            size,
            stored,
            computed,
        });
    }
    Ok((&framed[8..], body_end + 4))
}

/// The path of block file `n` under `chains`.
fn blockfile_path(chains: &Path, n: u32) -> PathBuf {
    chains.join(format!("{FILE_PREFIX}{n:06}"))
}

/// Where a block's record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    file: u32,
    offset: u64,
    len: u64,
}

impl Location {
    fn encode(&self) -> [u8; 20] {
        let mut v = [0u8; 20];
        v[..4].copy_from_slice(&self.file.to_be_bytes());
        v[4..12].copy_from_slice(&self.offset.to_be_bytes());
        v[12..].copy_from_slice(&self.len.to_be_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 20] = b.try_into().ok()?;
        let mut file = [0u8; 4];
        let mut offset = [0u8; 8];
        let mut len = [0u8; 8];
        file.copy_from_slice(&b[..4]);
        offset.copy_from_slice(&b[4..12]);
        len.copy_from_slice(&b[12..]);
        Some(Location {
            file: u32::from_be_bytes(file),
            offset: u64::from_be_bytes(offset),
            len: u64::from_be_bytes(len),
        })
    }
}

/// The number of blocks indexed and the position just after the last indexed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Checkpoint {
    height: u64,
    file: u32,
    offset: u64,
}

impl Checkpoint {
    fn encode(&self) -> [u8; 20] {
        let mut v = [0u8; 20];
        v[..8].copy_from_slice(&self.height.to_be_bytes());
        v[8..12].copy_from_slice(&self.file.to_be_bytes());
        v[12..].copy_from_slice(&self.offset.to_be_bytes());
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let b: &[u8; 20] = b.try_into().ok()?;
        let mut height = [0u8; 8];
        let mut file = [0u8; 4];
        let mut offset = [0u8; 8];
        height.copy_from_slice(&b[..8]);
        file.copy_from_slice(&b[8..12]);
        offset.copy_from_slice(&b[12..]);
        Some(Checkpoint {
            height: u64::from_be_bytes(height),
            file: u32::from_be_bytes(file),
            offset: u64::from_be_bytes(offset),
        })
    }
}

fn block_key(number: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = BLOCK_PREFIX;
    k[1..].copy_from_slice(&number.to_be_bytes());
    k
}

fn tx_key(tx_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + tx_id.len());
    k.push(TX_PREFIX);
    k.extend_from_slice(tx_id.as_bytes());
    k
}

fn decode_tx_location(b: &[u8]) -> Option<(u64, u64)> {
    let b: &[u8; 16] = b.try_into().ok()?;
    let mut block = [0u8; 8];
    let mut tx = [0u8; 8];
    block.copy_from_slice(&b[..8]);
    tx.copy_from_slice(&b[8..]);
    Some((u64::from_be_bytes(block), u64::from_be_bytes(tx)))
}

/// The tx id of an envelope, if it parses down to a channel header.
fn envelope_tx_id(envelope: &Bytes) -> Option<String> {
    let envelope = Envelope::decode(envelope.clone()).ok()?;
    let payload = Payload::decode(envelope.payload).ok()?;
    let header = payload.header?;
    let channel_header = ChannelHeader::decode(header.channel_header).ok()?;
    Some(channel_header.tx_id)
}

/// The number in a block's header, or why the block cannot be stored.
fn block_number(block: &Block) -> Result<u64, String> {
    block
        .header
        .as_ref()
        .map(|h| h.number)
        .ok_or_else(|| "the block has no header".to_owned())
}

fn io_err(path: &Path, what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BlockStoreError {
    let path = path.to_owned();
    let what = what.into();
    move |source| BlockStoreError::Io { path, what, source }
}

/// Fsync a directory so a file created in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), BlockStoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir, "cannot fsync the directory"))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Read the record at `offset` of `file` (whose length is `file_len`). The outer error is an
/// I/O failure; the inner one says why the bytes there are not a valid record. A record's
/// bytes are only read once its length fits in the file, so a corrupt length cannot make this
/// allocate more than the file holds.
fn read_record(
    file: &mut File,
    path: &Path,
    offset: u64,
    file_len: u64,
) -> Result<Result<(Bytes, u64), RecordError>, BlockStoreError> {
    let available = file_len.saturating_sub(offset);
    let read_at = |file: &mut File, buf: &mut [u8]| {
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(buf))
            .map_err(io_err(path, format!("cannot read at offset {offset}")))
    };
    if available < 8 {
        return Ok(Err(RecordError::Truncated {
            available,
            needed: None,
        }));
    }
    let mut header = [0u8; 8];
    read_at(file, &mut header)?;
    let size = u64::from_be_bytes(header).checked_add(RECORD_OVERHEAD);
    let size = match size {
        Some(size) if size <= available => size,
        needed => return Ok(Err(RecordError::Truncated { available, needed })),
    };
    let Ok(size) = usize::try_from(size) else {
        return Ok(Err(RecordError::Truncated {
            available,
            needed: Some(size),
        }));
    };
    let mut buf = vec![0u8; size];
    read_at(file, &mut buf)?;
    let buf = Bytes::from(buf);
    Ok(match decode_record(&buf) {
        Ok((payload, consumed)) => {
            let end = 8 + payload.len();
            Ok((buf.slice(8..end), consumed as u64))
        }
        Err(e) => Err(e),
    })
}

/// The block files under `chains`, by number, in order.
fn list_block_files(chains: &Path) -> Result<Vec<u32>, BlockStoreError> {
    let mut numbers = Vec::new();
    let entries = std::fs::read_dir(chains).map_err(io_err(chains, "cannot list block files"))?;
    for entry in entries {
        let entry = entry.map_err(io_err(chains, "cannot list block files"))?;
        let name = entry.file_name();
        let Some(number) = name.to_str().and_then(|n| n.strip_prefix(FILE_PREFIX)) else {
            continue;
        };
        match number.parse::<u32>() {
            Ok(n) if number.len() >= 6 => numbers.push(n),
            _ => {
                return Err(BlockStoreError::Corrupt {
                    path: entry.path(),
                    offset: 0,
                    detail: "not a block file name (blockfile_ and a six-digit number)".into(),
                })
            }
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// The file appends go to.
#[derive(Debug)]
struct Writer {
    file_num: u32,
    size: u64,
    file: Option<File>,
    /// Set when a failed append could not be undone: appends are refused until a reopen
    /// recovers the files.
    broken: Option<String>,
}

#[derive(Debug)]
struct Inner {
    chains: PathBuf,
    index_path: PathBuf,
    db: DB,
    config: BlockStoreConfig,
    height: AtomicU64,
    writer: Mutex<Writer>,
}

/// The recorded [`BlockStoreConfig::index_tx_ids`], if any.
fn read_tx_index_mode(db: &DB, index_path: &Path) -> Result<Option<bool>, BlockStoreError> {
    match db.get(TX_INDEX_KEY) {
        Ok(None) => Ok(None),
        Ok(Some(b)) if b.as_slice() == b"1" => Ok(Some(true)),
        Ok(Some(b)) if b.as_slice() == b"0" => Ok(Some(false)),
        Ok(Some(b)) => Err(BlockStoreError::Index {
            path: index_path.to_owned(),
            detail: format!("the index mode entry is {b:?}, not \"0\" or \"1\""),
        }),
        Err(e) => Err(BlockStoreError::Index {
            path: index_path.to_owned(),
            detail: format!("cannot read the index mode: {e}"),
        }),
    }
}

/// The index's checkpoint (the durable end of the block files); the default for a new index.
fn read_checkpoint(db: &DB, index_path: &Path) -> Result<Checkpoint, BlockStoreError> {
    match db.get(CHECKPOINT_KEY) {
        Ok(None) => Ok(Checkpoint::default()),
        Ok(Some(b)) => Checkpoint::decode(&b).ok_or_else(|| BlockStoreError::Index {
            path: index_path.to_owned(),
            detail: format!("checkpoint of {} bytes instead of 20", b.len()),
        }),
        Err(e) => Err(BlockStoreError::Index {
            path: index_path.to_owned(),
            detail: format!("cannot read the checkpoint: {e}"),
        }),
    }
}

/// A channel's block store (see the module docs). Cloning is cheap and shares the store.
#[derive(Debug, Clone)]
pub struct BlockStore {
    inner: Arc<Inner>,
}

impl BlockStore {
    /// Open (creating if needed) the store under `dir`, recovering from a crash (see the
    /// module docs).
    pub fn open(dir: &Path, config: BlockStoreConfig) -> Result<Self, BlockStoreError> {
        let chains = dir.join("chains");
        let index_path = dir.join("index");
        std::fs::create_dir_all(&chains).map_err(io_err(&chains, "cannot create"))?;
        std::fs::create_dir_all(&index_path).map_err(io_err(&index_path, "cannot create"))?;
        let mut opts = crate::rocks::point_lookup_options();
        opts.create_if_missing(true);
        let db = DB::open(&opts, &index_path).map_err(|e| BlockStoreError::Index {
            path: index_path.clone(),
            detail: format!("cannot open: {e} (is another weft process using it?)"),
        })?;
        let checkpoint = read_checkpoint(&db, &index_path)?;
        let mut config = config;
        config.index_tx_ids = match read_tx_index_mode(&db, &index_path)? {
            Some(stored) => stored,
            None => {
                // A store from before the mode was recorded indexed transaction ids.
                let mode = config.index_tx_ids || checkpoint.height > 0;
                let mut durable = WriteOptions::default();
                durable.set_sync(true);
                db.put_opt(TX_INDEX_KEY, if mode { b"1" } else { b"0" }, &durable)
                    .map_err(|e| BlockStoreError::Index {
                        path: index_path.clone(),
                        detail: format!("cannot record the index mode: {e}"),
                    })?;
                mode
            }
        };
        let mut inner = Inner {
            chains,
            index_path,
            db,
            config,
            height: AtomicU64::new(checkpoint.height),
            writer: Mutex::new(Writer {
                file_num: checkpoint.file,
                size: checkpoint.offset,
                file: None,
                broken: None,
            }),
        };
        let end = inner.recover(checkpoint)?;
        inner.height = AtomicU64::new(end.height);
        inner.writer = Mutex::new(Writer {
            file_num: end.file,
            size: end.offset,
            file: None,
            broken: None,
        });
        Ok(BlockStore {
            inner: Arc::new(inner),
        })
    }

    /// Open the store under `dir` to read it while another process (the peer or orderer that
    /// owns it) may be appending: RocksDB's read-only mode, no recovery, and the height as of
    /// the last indexed block. Appends are refused.
    pub fn open_read_only(dir: &Path) -> Result<Self, BlockStoreError> {
        let chains = dir.join("chains");
        let index_path = dir.join("index");
        if !index_path.is_dir() {
            return Err(BlockStoreError::Index {
                path: index_path,
                detail: "no block store here (expected chains/ and index/)".into(),
            });
        }
        let db = DB::open_for_read_only(&Options::default(), &index_path, false).map_err(|e| {
            BlockStoreError::Index {
                path: index_path.clone(),
                detail: format!("cannot open read-only: {e}"),
            }
        })?;
        let checkpoint = read_checkpoint(&db, &index_path)?;
        let index_tx_ids = read_tx_index_mode(&db, &index_path)?.unwrap_or(true);
        Ok(BlockStore {
            inner: Arc::new(Inner {
                chains,
                index_path,
                db,
                config: BlockStoreConfig {
                    index_tx_ids,
                    ..BlockStoreConfig::default()
                },
                height: AtomicU64::new(checkpoint.height),
                writer: Mutex::new(Writer {
                    file_num: checkpoint.file,
                    size: checkpoint.offset,
                    file: None,
                    broken: Some("the block store was opened read-only".into()),
                }),
            }),
        })
    }

    /// The number of blocks stored: the next block to append is block `height()`.
    pub fn height(&self) -> u64 {
        self.inner.height.load(Ordering::Acquire)
    }

    /// The directory holding the block files.
    pub fn chains_dir(&self) -> &Path {
        &self.inner.chains
    }

    /// The path of block file `n` (whether or not it exists).
    pub fn block_file_path(&self, n: u32) -> PathBuf {
        blockfile_path(&self.inner.chains, n)
    }

    /// Append `block`, encoding it. Prefer [`BlockStore::append`] with the bytes as received:
    /// re-encoding is not guaranteed to reproduce them.
    pub fn append_block(&self, block: &Block) -> Result<(), BlockStoreError> {
        let number = block_number(block).map_err(|detail| BlockStoreError::BadBlock {
            number: self.height(),
            detail,
        })?;
        self.append(number, &block.encode_to_vec())
    }

    /// Append block `number`, stored as exactly `block_bytes`, which must decode to a block
    /// with that number; `number` must be the height. Durable (with
    /// [`BlockStoreConfig::sync`]) and readable when this returns.
    pub fn append(&self, number: u64, block_bytes: &[u8]) -> Result<(), BlockStoreError> {
        let block = Block::decode(block_bytes).map_err(|e| BlockStoreError::BadBlock {
            number,
            detail: format!("the bytes are not a block: {e}"),
        })?;
        self.store(number, &block, block_bytes)
    }

    /// [`BlockStore::append`] for a caller that holds the block decoded as well as encoded
    /// (the committer): `block_bytes` must be the encoding of `block`, which is not decoded
    /// again. A length that differs from `block`'s encoded length is refused.
    pub fn append_decoded(
        &self,
        number: u64,
        block: &Block,
        block_bytes: &[u8],
    ) -> Result<(), BlockStoreError> {
        if block.encoded_len() != block_bytes.len() {
            return Err(BlockStoreError::BadBlock {
                number,
                detail: format!(
                    "{} bytes were given for a block that encodes to {}",
                    block_bytes.len(),
                    block.encoded_len()
                ),
            });
        }
        self.store(number, block, block_bytes)
    }

    /// Append block `number`, `block` decoded from `block_bytes`.
    fn store(&self, number: u64, block: &Block, block_bytes: &[u8]) -> Result<(), BlockStoreError> {
        let inner = &*self.inner;
        let mut w = inner.writer.lock().map_err(|_| BlockStoreError::Unusable {
            path: inner.chains.clone(),
            detail: "an append panicked".into(),
        })?;
        if let Some(detail) = &w.broken {
            return Err(BlockStoreError::Unusable {
                path: inner.chains.clone(),
                detail: detail.clone(),
            });
        }
        let height = inner.height.load(Ordering::Acquire);
        if number != height {
            return Err(BlockStoreError::OutOfOrder { height, number });
        }
        let bad = |detail: String| BlockStoreError::BadBlock { number, detail };
        let header_number = block_number(block).map_err(bad)?;
        if header_number != number {
            return Err(bad(format!("its header says it is block {header_number}")));
        }

        let (record_header, record_trailer) = record_frame(block_bytes);
        let record_len = block_bytes.len() as u64 + RECORD_OVERHEAD;
        if w.size > 0 && w.size.saturating_add(record_len) > inner.config.max_file_size {
            let next = w
                .file_num
                .checked_add(1)
                .ok_or_else(|| bad("no block file numbers left".into()))?;
            w.file_num = next;
            w.size = 0;
            w.file = None;
        }
        let path = blockfile_path(&inner.chains, w.file_num);
        if w.file.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io_err(&path, "cannot open for appending"))?;
            if inner.config.sync {
                sync_dir(&inner.chains)?;
            }
            w.file = Some(file);
        }
        let offset = w.size;
        let written = match w.file.as_mut() {
            Some(file) => file
                .seek(SeekFrom::Start(offset))
                .and_then(|_| file.write_all(&record_header))
                .and_then(|()| file.write_all(block_bytes))
                .and_then(|()| file.write_all(&record_trailer))
                .and_then(|()| {
                    if inner.config.sync {
                        file.sync_data()
                    } else {
                        Ok(())
                    }
                })
                .map_err(io_err(&path, format!("cannot write block {number}"))),
            None => Err(bad("no block file open".into())),
        };
        if let Err(e) = written {
            inner.undo(&mut w, &path, offset);
            return Err(e);
        }

        let location = Location {
            file: w.file_num,
            offset,
            len: block_bytes.len() as u64,
        };
        let end = Checkpoint {
            height: number + 1,
            file: w.file_num,
            offset: offset + record_len,
        };
        let indexed = inner
            .index_batch(block, number, location, end)
            .and_then(|batch| inner.write_index(batch, inner.config.sync));
        if let Err(e) = indexed {
            inner.undo(&mut w, &path, offset);
            return Err(e);
        }
        w.size = end.offset;
        inner.height.store(end.height, Ordering::Release);
        Ok(())
    }

    /// The stored bytes of block `number`, exactly as appended; `None` at or above the height.
    pub fn block_bytes(&self, number: u64) -> Result<Option<Bytes>, BlockStoreError> {
        let Some(location) = self.location(number)? else {
            return Ok(None);
        };
        self.inner.read_block_bytes(number, location).map(Some)
    }

    /// Block `number`, decoded; `None` at or above the height.
    pub fn block(&self, number: u64) -> Result<Option<Block>, BlockStoreError> {
        let Some(location) = self.location(number)? else {
            return Ok(None);
        };
        let bytes = self.inner.read_block_bytes(number, location)?;
        let corrupt = |detail: String| BlockStoreError::Corrupt {
            path: blockfile_path(&self.inner.chains, location.file),
            offset: location.offset,
            detail,
        };
        let block = Block::decode(bytes)
            .map_err(|e| corrupt(format!("block {number} does not decode: {e}")))?;
        match block_number(&block) {
            Ok(n) if n == number => Ok(Some(block)),
            Ok(n) => Err(corrupt(format!(
                "the record of block {number} holds block {n}"
            ))),
            Err(detail) => Err(corrupt(format!("block {number}: {detail}"))),
        }
    }

    /// Where block `number`'s record is; `None` at or above the height.
    fn location(&self, number: u64) -> Result<Option<Location>, BlockStoreError> {
        if number >= self.height() {
            return Ok(None);
        }
        let inner = &*self.inner;
        match inner.db.get(block_key(number)) {
            Ok(Some(b)) => Location::decode(&b).map(Some).ok_or_else(|| {
                inner.index_err(format!(
                    "entry of block {number} has {} bytes instead of 20",
                    b.len()
                ))
            }),
            Ok(None) => Err(inner.index_err(format!(
                "block {number} is below the height but has no entry"
            ))),
            Err(e) => Err(inner.index_err(format!("cannot read block {number}: {e}"))),
        }
    }

    /// Where the transaction `tx_id` is: (block number, tx number in the block). With
    /// duplicates, the first occurrence in the chain. An error on a store that does not index
    /// transaction ids (an orderer's).
    pub fn tx_location(&self, tx_id: &str) -> Result<Option<(u64, u64)>, BlockStoreError> {
        let inner = &*self.inner;
        if !inner.config.index_tx_ids {
            return Err(inner.index_err(format!(
                "cannot look up tx {tx_id:?}: this block store indexes block numbers only (an \
                 orderer's ledger, as in Fabric); look the transaction up in a peer's ledger"
            )));
        }
        match inner.db.get(tx_key(tx_id)) {
            Ok(None) => Ok(None),
            Ok(Some(b)) => match decode_tx_location(&b) {
                Some((block, _)) if block >= self.height() => Ok(None),
                Some(loc) => Ok(Some(loc)),
                None => Err(inner.index_err(format!(
                    "entry of tx {tx_id:?} has {} bytes instead of 16",
                    b.len()
                ))),
            },
            Err(e) => Err(inner.index_err(format!("cannot read tx {tx_id:?}: {e}"))),
        }
    }

    /// The envelope of transaction `tx_id` and its validation code from the block's
    /// transactions filter ([`NOT_VALIDATED`] if the filter does not cover it). With
    /// duplicates, the first occurrence in the chain.
    pub fn tx_envelope(&self, tx_id: &str) -> Result<Option<(Bytes, u8)>, BlockStoreError> {
        let Some((number, tx_num)) = self.tx_location(tx_id)? else {
            return Ok(None);
        };
        let Some(block) = self.block(number)? else {
            return Ok(None);
        };
        let envelope = usize::try_from(tx_num).ok().and_then(|i| {
            block
                .data
                .as_ref()
                .and_then(|d| d.data.get(i))
                .cloned()
                .map(|env| (i, env))
        });
        let Some((i, envelope)) = envelope else {
            return Err(self.inner.index_err(format!(
                "tx {tx_id:?} is indexed as transaction {tx_num} of block {number}, which has no such transaction"
            )));
        };
        let code = block
            .metadata
            .as_ref()
            .and_then(|m| m.metadata.get(TRANSACTIONS_FILTER))
            .and_then(|filter| filter.get(i).copied())
            .unwrap_or(NOT_VALIDATED);
        Ok(Some((envelope, code)))
    }

    /// The blocks from `number` up to the height (as it is when each is reached), in order.
    /// Stops after yielding an error.
    pub fn iter_from(&self, number: u64) -> Blocks {
        Blocks {
            store: self.clone(),
            next: number,
            done: false,
        }
    }
}

impl Inner {
    fn index_err(&self, detail: impl Into<String>) -> BlockStoreError {
        BlockStoreError::Index {
            path: self.index_path.clone(),
            detail: detail.into(),
        }
    }

    fn write_index(&self, batch: WriteBatch, sync: bool) -> Result<(), BlockStoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| self.index_err(format!("cannot write: {e}")))
    }

    /// The index entries of block `number` at `location`, and the checkpoint `end`.
    fn index_batch(
        &self,
        block: &Block,
        number: u64,
        location: Location,
        end: Checkpoint,
    ) -> Result<WriteBatch, BlockStoreError> {
        let mut batch = WriteBatch::default();
        batch.put(block_key(number), location.encode());
        let mut seen = HashSet::new();
        let envelopes = match &block.data {
            Some(d) if self.config.index_tx_ids => d.data.as_slice(),
            _ => &[],
        };
        for (tx_num, envelope) in envelopes.iter().enumerate() {
            let Some(tx_id) = envelope_tx_id(envelope) else {
                continue;
            };
            if tx_id.is_empty() || !seen.insert(tx_id.clone()) {
                continue;
            }
            let key = tx_key(&tx_id);
            let existing = self
                .db
                .get(&key)
                .map_err(|e| self.index_err(format!("cannot read tx {tx_id:?}: {e}")))?;
            // An entry for an earlier block wins; one for this block or later is left over
            // from an index that ran ahead of the files, and is replaced.
            if existing
                .as_deref()
                .and_then(decode_tx_location)
                .is_some_and(|(b, _)| b < number)
            {
                continue;
            }
            let mut value = [0u8; 16];
            value[..8].copy_from_slice(&number.to_be_bytes());
            value[8..].copy_from_slice(&(tx_num as u64).to_be_bytes());
            batch.put(key, value);
        }
        batch.put(CHECKPOINT_KEY, end.encode());
        Ok(batch)
    }

    /// Cut a failed append's partial record off; if that fails too, refuse further appends.
    fn undo(&self, w: &mut Writer, path: &Path, offset: u64) {
        let undone = match w.file.as_mut() {
            Some(file) => file.set_len(offset).and_then(|()| file.sync_data()),
            None => Ok(()),
        };
        if let Err(e) = undone {
            tracing::error!(path = %path.display(), offset, error = %e, "cannot undo a failed append; the block store refuses appends until reopened");
            w.broken = Some(format!(
                "a failed append at offset {offset} of {} could not be undone: {e}",
                path.display()
            ));
        }
    }

    fn read_block_bytes(&self, number: u64, location: Location) -> Result<Bytes, BlockStoreError> {
        let path = blockfile_path(&self.chains, location.file);
        let corrupt = |detail: String| BlockStoreError::Corrupt {
            path: path.clone(),
            offset: location.offset,
            detail,
        };
        let mut file = File::open(&path)
            .map_err(io_err(&path, format!("cannot open to read block {number}")))?;
        let file_len = file
            .metadata()
            .map_err(io_err(&path, "cannot read the file's length"))?
            .len();
        match read_record(&mut file, &path, location.offset, file_len)? {
            Ok((bytes, _)) if bytes.len() as u64 == location.len => Ok(bytes),
            Ok((bytes, _)) => Err(corrupt(format!(
                "block {number}: the record holds {} bytes, the index says {}",
                bytes.len(),
                location.len
            ))),
            Err(e) => Err(corrupt(format!("block {number}: {e}"))),
        }
    }

    /// Scan the block files from `checkpoint` forward, re-indexing complete records and cutting
    /// off a torn tail (see the module docs). Returns the position after the last record.
    fn recover(&self, checkpoint: Checkpoint) -> Result<Checkpoint, BlockStoreError> {
        let files = list_block_files(&self.chains)?;
        for (expected, &n) in files.iter().enumerate() {
            if n as usize != expected {
                return Err(BlockStoreError::Corrupt {
                    path: blockfile_path(&self.chains, expected as u32),
                    offset: 0,
                    detail: format!("missing, but block file {n} exists"),
                });
            }
        }
        let last_file = files.last().copied();
        let mut pos = checkpoint;
        if pos != Checkpoint::default() {
            let path = blockfile_path(&self.chains, pos.file);
            let len = match last_file {
                Some(last) if pos.file <= last => std::fs::metadata(&path)
                    .map_err(io_err(&path, "cannot read the file's length"))?
                    .len(),
                _ => 0,
            };
            if len < pos.offset {
                return Err(self.index_err(format!(
                    "the index covers {} blocks up to offset {} of {}, but the file has {len} bytes: block files were lost or truncated",
                    pos.height,
                    pos.offset,
                    path.display()
                )));
            }
        }
        let Some(last_file) = last_file else {
            return Ok(pos);
        };
        let mut reindexed = 0u64;
        loop {
            let path = blockfile_path(&self.chains, pos.file);
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(&path, "cannot open to recover"))?;
            let len = file
                .metadata()
                .map_err(io_err(&path, "cannot read the file's length"))?
                .len();
            while pos.offset < len {
                let corrupt = |detail: String| BlockStoreError::Corrupt {
                    path: path.clone(),
                    offset: pos.offset,
                    detail,
                };
                match read_record(&mut file, &path, pos.offset, len)? {
                    Ok((bytes, consumed)) => {
                        let block = Block::decode(bytes.clone()).map_err(|e| {
                            corrupt(format!(
                                "the record's CRC is valid but it holds no block: {e}"
                            ))
                        })?;
                        let number = block_number(&block).map_err(corrupt)?;
                        if number != pos.height {
                            return Err(corrupt(format!(
                                "the record holds block {number} where block {} belongs",
                                pos.height
                            )));
                        }
                        let location = Location {
                            file: pos.file,
                            offset: pos.offset,
                            len: bytes.len() as u64,
                        };
                        let end = Checkpoint {
                            height: pos.height + 1,
                            file: pos.file,
                            offset: pos.offset + consumed,
                        };
                        let batch = self.index_batch(&block, number, location, end)?;
                        self.write_index(batch, false)?;
                        pos = end;
                        reindexed += 1;
                    }
                    Err(bad) => {
                        if pos.file != last_file {
                            return Err(corrupt(format!(
                                "{bad}, and block file {last_file} follows: not a torn write"
                            )));
                        }
                        if let RecordError::Checksum { size, .. } = bad {
                            let next = pos.offset + size;
                            if next < len && read_record(&mut file, &path, next, len)?.is_ok() {
                                return Err(corrupt(format!(
                                    "{bad}, and a valid record follows it: not a torn write"
                                )));
                            }
                        }
                        tracing::warn!(
                            path = %path.display(),
                            offset = pos.offset,
                            cut = len - pos.offset,
                            problem = %bad,
                            "block file ends in a partly written record (a crash mid-append?); truncating it"
                        );
                        file.set_len(pos.offset)
                            .and_then(|()| file.sync_all())
                            .map_err(io_err(&path, format!("cannot truncate to {}", pos.offset)))?;
                        break;
                    }
                }
            }
            if pos.file >= last_file {
                break;
            }
            pos.file += 1;
            pos.offset = 0;
        }
        if reindexed > 0 {
            tracing::warn!(
                blocks = reindexed,
                height = pos.height,
                "re-indexed blocks the index did not cover (a crash mid-append?)"
            );
            self.db
                .flush_wal(true)
                .map_err(|e| self.index_err(format!("cannot sync: {e}")))?;
        }
        Ok(pos)
    }
}

/// Blocks from a starting number up to the height; see [`BlockStore::iter_from`].
#[derive(Debug)]
pub struct Blocks {
    store: BlockStore,
    next: u64,
    done: bool,
}

impl Iterator for Blocks {
    type Item = Result<Block, BlockStoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.store.block(self.next) {
            Ok(Some(block)) => {
                self.next += 1;
                Some(Ok(block))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }
}
