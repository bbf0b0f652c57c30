//! The world state: `(namespace, key) -> (value, metadata, version)` on RocksDB.
//!
//! Storage layout (pinned by a test; change it only with a migration):
//! - state entry: key `b's' ++ namespace ++ 0x00 ++ key`, value
//!   `0x01 ++ block_num (u64 BE) ++ tx_num (u64 BE) ++ metadata_len (u32 BE) ++ metadata ++ value`.
//!   Namespaces never contain 0x00, so one namespace's keys are one contiguous, key-ordered run
//!   (composite keys, which contain 0x00, sort inside it).
//! - savepoint: key `b"h:savepoint"`, value `block_num (u64 BE) ++ tx_num (u64 BE)`: the last
//!   committed position, written in the same atomic batch as the state it describes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, Options, ReadOptions, WriteBatch, WriteOptions, DB};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

const STATE: u8 = b's';
const SAVEPOINT_KEY: &[u8] = b"h:savepoint";
const FORMAT_V1: u8 = 0x01;

/// Where a value was last written: block number and transaction number within the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version {
    pub block_num: u64,
    pub tx_num: u64,
}

impl Version {
    pub fn new(block_num: u64, tx_num: u64) -> Self {
        Version { block_num, tx_num }
    }
}

/// A stored value with its metadata (e.g. a key-level endorsement policy) and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    pub value: Bytes,
    pub metadata: Bytes,
    pub version: Version,
}

/// Storage failures, naming the database and what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("state database {path}: {detail}")]
    Db { path: PathBuf, detail: String },
    #[error("state database {path}: corrupt entry for {what}: {detail}")]
    Corrupt {
        path: PathBuf,
        what: String,
        detail: String,
    },
    #[error("namespace {0:?} is invalid: it must be non-empty and must not contain U+0000")]
    BadNamespace(String),
}

/// `(namespace, key)`.
type StateKey = (String, String);
/// `Some((value, metadata, version))` to write, `None` to delete.
type Write = Option<(Bytes, Bytes, Version)>;

/// Writes of one block, applied atomically with the new savepoint.
#[derive(Debug, Clone, Default)]
pub struct UpdateBatch {
    entries: std::collections::BTreeMap<StateKey, Write>,
}

impl UpdateBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, ns: &str, key: &str, value: Bytes, metadata: Bytes, version: Version) {
        self.entries.insert(
            (ns.to_owned(), key.to_owned()),
            Some((value, metadata, version)),
        );
    }

    pub fn delete(&mut self, ns: &str, key: &str) {
        self.entries.insert((ns.to_owned(), key.to_owned()), None);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn check_ns(ns: &str) -> Result<(), StateError> {
    if ns.is_empty() || ns.contains('\0') {
        return Err(StateError::BadNamespace(ns.to_owned()));
    }
    Ok(())
}

fn state_key(ns: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + ns.len() + key.len());
    k.push(STATE);
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// Encode a stored value (format v1).
pub fn encode_value(value: &[u8], metadata: &[u8], version: Version) -> Vec<u8> {
    let mut v = Vec::with_capacity(1 + 16 + 4 + metadata.len() + value.len());
    v.push(FORMAT_V1);
    v.extend_from_slice(&version.block_num.to_be_bytes());
    v.extend_from_slice(&version.tx_num.to_be_bytes());
    v.extend_from_slice(&(metadata.len() as u32).to_be_bytes());
    v.extend_from_slice(metadata);
    v.extend_from_slice(value);
    v
}

/// Decode a stored value; errors describe what is wrong instead of panicking.
pub fn decode_value(bytes: &[u8]) -> Result<VersionedValue, String> {
    let (&format, rest) = bytes.split_first().ok_or("empty entry")?;
    if format != FORMAT_V1 {
        return Err(format!("unknown value format {format:#04x}"));
    }
    if rest.len() < 20 {
        return Err(format!(
            "entry of {} bytes is shorter than its header",
            bytes.len()
        ));
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&rest[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let version = Version {
        block_num: u64_at(0),
        tx_num: u64_at(8),
    };
    let mut m = [0u8; 4];
    m.copy_from_slice(&rest[16..20]);
    let meta_len = u32::from_be_bytes(m) as usize;
    let body = &rest[20..];
    if body.len() < meta_len {
        return Err(format!("metadata length {meta_len} exceeds the entry"));
    }
    Ok(VersionedValue {
        metadata: Bytes::copy_from_slice(&body[..meta_len]),
        value: Bytes::copy_from_slice(&body[meta_len..]),
        version,
    })
}

/// The world-state database.
#[derive(Debug, Clone)]
pub struct StateDb {
    db: Arc<DB>,
    /// Read views hold it shared; commits take it exclusively.
    gate: Arc<RwLock<()>>,
    path: PathBuf,
}

impl StateDb {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = DB::open(&opts, path).map_err(|e| StateError::Db {
            path: path.to_owned(),
            detail: format!("cannot open: {e} (is another weft process using it?)"),
        })?;
        Ok(StateDb {
            db: Arc::new(db),
            gate: Arc::new(RwLock::new(())),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, detail: impl std::fmt::Display) -> StateError {
        StateError::Db {
            path: self.path.clone(),
            detail: detail.to_string(),
        }
    }

    /// A consistent view of the committed state: no commit lands while it lives.
    pub async fn read(&self) -> ReadView {
        let guard = self.gate.clone().read_owned().await;
        ReadView {
            db: self.db.clone(),
            path: self.path.clone(),
            _guard: guard,
        }
    }

    /// The last committed position, if any block was committed.
    pub fn savepoint(&self) -> Result<Option<Version>, StateError> {
        match self.db.get(SAVEPOINT_KEY).map_err(|e| self.err(e))? {
            None => Ok(None),
            Some(b) if b.len() == 16 => {
                let mut n = [0u8; 8];
                let mut t = [0u8; 8];
                n.copy_from_slice(&b[..8]);
                t.copy_from_slice(&b[8..]);
                Ok(Some(Version::new(
                    u64::from_be_bytes(n),
                    u64::from_be_bytes(t),
                )))
            }
            Some(b) => Err(StateError::Corrupt {
                path: self.path.clone(),
                what: "savepoint".into(),
                detail: format!("{} bytes instead of 16", b.len()),
            }),
        }
    }

    /// Apply `batch` and move the savepoint to `savepoint`, atomically. With `sync`, the write
    /// is durable (fsync'd) when this returns. Waits for open read views to finish.
    pub async fn apply(
        &self,
        batch: UpdateBatch,
        savepoint: Version,
        sync: bool,
    ) -> Result<(), StateError> {
        let mut wb = WriteBatch::default();
        for ((ns, key), entry) in &batch.entries {
            check_ns(ns)?;
            let k = state_key(ns, key);
            match entry {
                Some((value, metadata, version)) => {
                    wb.put(k, encode_value(value, metadata, *version))
                }
                None => wb.delete(k),
            }
        }
        let mut sp = Vec::with_capacity(16);
        sp.extend_from_slice(&savepoint.block_num.to_be_bytes());
        sp.extend_from_slice(&savepoint.tx_num.to_be_bytes());
        wb.put(SAVEPOINT_KEY, sp);
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        let _exclusive = self.gate.write().await;
        self.db
            .write_opt(wb, &wo)
            .map_err(|e| self.err(format!("commit failed: {e}")))
    }
}

/// A consistent view of the state (see [`StateDb::read`]).
#[derive(Debug)]
pub struct ReadView {
    db: Arc<DB>,
    path: PathBuf,
    _guard: OwnedRwLockReadGuard<()>,
}

impl ReadView {
    /// The value of `key` in namespace `ns`.
    pub fn get(&self, ns: &str, key: &str) -> Result<Option<VersionedValue>, StateError> {
        check_ns(ns)?;
        let raw = self
            .db
            .get_pinned(state_key(ns, key))
            .map_err(|e| StateError::Db {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
        raw.map(|b| {
            decode_value(&b).map_err(|detail| StateError::Corrupt {
                path: self.path.clone(),
                what: format!("{ns}/{key:?}"),
                detail,
            })
        })
        .transpose()
    }

    /// Keys of `ns` in `[start, end)` in key order (`end` empty: to the end of the namespace),
    /// at most `limit` of them.
    pub fn range(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        limit: usize,
    ) -> Result<Vec<(String, VersionedValue)>, StateError> {
        check_ns(ns)?;
        let lower = state_key(ns, start);
        let upper = if end.is_empty() {
            // The byte after the namespace terminator: one past every key of `ns`.
            let mut u = Vec::with_capacity(2 + ns.len());
            u.push(STATE);
            u.extend_from_slice(ns.as_bytes());
            u.push(1);
            u
        } else {
            state_key(ns, end)
        };
        let mut opts = ReadOptions::default();
        opts.set_iterate_upper_bound(upper);
        let prefix_len = 2 + ns.len();
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_opt(IteratorMode::From(&lower, Direction::Forward), opts)
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| StateError::Db {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
            let key =
                String::from_utf8(k[prefix_len..].to_vec()).map_err(|_| StateError::Corrupt {
                    path: self.path.clone(),
                    what: format!("{ns} key"),
                    detail: "key is not UTF-8".into(),
                })?;
            let value = decode_value(&v).map_err(|detail| StateError::Corrupt {
                path: self.path.clone(),
                what: format!("{ns}/{key:?}"),
                detail,
            })?;
            out.push((key, value));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_encoding_is_pinned() {
        let v = encode_value(b"val", b"md", Version::new(7, 3));
        assert_eq!(
            v,
            [
                &[0x01][..],
                &7u64.to_be_bytes(),
                &3u64.to_be_bytes(),
                &2u32.to_be_bytes(),
                b"md",
                b"val"
            ]
            .concat()
        );
        assert_eq!(state_key("mycc", "k\u{0}a"), b"smycc\x00k\x00a");
        let back = decode_value(&v).unwrap();
        assert_eq!(
            (back.value.as_ref(), back.metadata.as_ref(), back.version),
            (&b"val"[..], &b"md"[..], Version::new(7, 3))
        );
    }

    #[test]
    fn corrupt_entries_are_errors_not_panics() {
        let good = encode_value(b"value", b"meta", Version::new(1, 2));
        for cut in 0..good.len() {
            let _ = decode_value(&good[..cut]);
        }
        assert!(decode_value(&[0x02; 30])
            .unwrap_err()
            .contains("unknown value format"));
        let mut lying = good.clone();
        lying[17..21].copy_from_slice(&1000u32.to_be_bytes());
        assert!(decode_value(&lying).unwrap_err().contains("exceeds"));
    }
}
