//! The world state: `(namespace, key) -> (value, metadata, version)` on RocksDB.
//!
//! Storage layout (pinned by a test; change it only with a migration):
//! - state entry: key `b's' ++ namespace ++ 0x00 ++ key`, value
//!   `0x01 ++ block_num (u64 BE) ++ tx_num (u64 BE) ++ metadata_len (u32 BE) ++ metadata ++ value`.
//!   Namespaces never contain 0x00, so one namespace's keys are one contiguous, key-ordered run
//!   (composite keys, which contain 0x00, sort inside it).
//! - savepoint: key `b"h:savepoint"`, value `block_num (u64 BE) ++ tx_num (u64 BE)`: the last
//!   committed position, written in the same atomic batch as the state it describes.
//! - history entry (one per modification of a key, Fabric's history database): key
//!   `b'k' ++ namespace ++ 0x00 ++ key_len (u32 BE) ++ key ++ block_num (u64 BE) ++ tx_num (u64 BE)`,
//!   value `0x01 ++ tx_id_len (u32 BE) ++ tx_id ++ has_timestamp (0x00 | 0x01)
//!   [++ seconds (i64 BE) ++ nanos (i32 BE), only if has_timestamp] ++ is_delete (0x00 | 0x01)
//!   ++ value` (the value is empty for deletes). The length prefix makes the key part
//!   unambiguous even though keys may contain 0x00 (so key `a` never sees `a\0b`), and the
//!   namespace terminator separates `mycc` from `mycc2`: one key's entries are exactly the
//!   keys that start with `b'k' ++ namespace ++ 0x00 ++ key_len ++ key`, in version order.
//!   Written in the same atomic batch as the state and savepoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, ReadOptions, WriteBatch, WriteOptions, DB};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

const STATE: u8 = b's';
const SAVEPOINT_KEY: &[u8] = b"h:savepoint";
/// History index prefix. Not `b'h'`: the savepoint key starts with it.
const HISTORY: u8 = b'k';
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

/// One modification of a key, as GetHistoryForKey reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub tx_id: String,
    /// Transaction timestamp: seconds and nanos since the Unix epoch (None if the tx had none).
    pub timestamp: Option<(i64, i32)>,
    pub is_delete: bool,
    /// The value written (empty for deletes).
    pub value: Bytes,
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
    /// An update that cannot be applied (e.g. a read/write set that does not decode).
    #[error("invalid update: {0}")]
    InvalidUpdate(String),
}

/// `(namespace, key)`.
type StateKey = (String, String);
/// `Some((value, metadata, version))` to write, `None` to delete.
type Write = Option<(Bytes, Bytes, Version)>;

/// Writes of one block, applied atomically with the new savepoint.
#[derive(Debug, Clone, Default)]
pub struct UpdateBatch {
    entries: std::collections::BTreeMap<StateKey, Write>,
    history: std::collections::BTreeMap<(StateKey, Version), HistoryEntry>,
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

    /// Record that the transaction at `version` modified `ns`/`key`; applied atomically with
    /// the batch. A later record for the same key and version replaces an earlier one. The
    /// value of a delete is not stored (history reports it as empty).
    pub fn add_history(&mut self, ns: &str, key: &str, version: Version, mut entry: HistoryEntry) {
        if entry.is_delete {
            entry.value = Bytes::new();
        }
        self.history
            .insert(((ns.to_owned(), key.to_owned()), version), entry);
    }

    /// The number of state writes (puts and deletes); history records are not counted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no state writes; history records are not counted.
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

/// `b'k' ++ ns ++ 0x00 ++ key_len (u32 BE) ++ key`: every history entry of `ns`/`key`, and only
/// those, starts with it. `None` if the key is too long to have a history entry.
fn history_prefix(ns: &str, key: &str) -> Option<Vec<u8>> {
    let key_len = u32::try_from(key.len()).ok()?;
    let mut k = Vec::with_capacity(2 + ns.len() + 4 + key.len() + 16);
    k.push(HISTORY);
    k.extend_from_slice(ns.as_bytes());
    k.push(0);
    k.extend_from_slice(&key_len.to_be_bytes());
    k.extend_from_slice(key.as_bytes());
    Some(k)
}

fn push_version(k: &mut Vec<u8>, version: Version) {
    k.extend_from_slice(&version.block_num.to_be_bytes());
    k.extend_from_slice(&version.tx_num.to_be_bytes());
}

/// The history entry key of `ns`/`key` modified at `version`.
fn history_key(ns: &str, key: &str, version: Version) -> Option<Vec<u8>> {
    let mut k = history_prefix(ns, key)?;
    push_version(&mut k, version);
    Some(k)
}

/// Encode a history entry (format v1); `None` if the tx id is too long to encode.
fn encode_history(entry: &HistoryEntry) -> Option<Vec<u8>> {
    let tx_id_len = u32::try_from(entry.tx_id.len()).ok()?;
    let value: &[u8] = if entry.is_delete { &[] } else { &entry.value };
    let mut v = Vec::with_capacity(1 + 4 + entry.tx_id.len() + 1 + 12 + 1 + value.len());
    v.push(FORMAT_V1);
    v.extend_from_slice(&tx_id_len.to_be_bytes());
    v.extend_from_slice(entry.tx_id.as_bytes());
    match entry.timestamp {
        None => v.push(0),
        Some((seconds, nanos)) => {
            v.push(1);
            v.extend_from_slice(&seconds.to_be_bytes());
            v.extend_from_slice(&nanos.to_be_bytes());
        }
    }
    v.push(u8::from(entry.is_delete));
    v.extend_from_slice(value);
    Some(v)
}

/// Take `n` bytes from the front of `rest`, or say which field is cut short.
fn take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], String> {
    if rest.len() < n {
        return Err(format!(
            "entry ends inside its {what} ({} of {n} bytes)",
            rest.len()
        ));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take_array<const N: usize>(rest: &mut &[u8], what: &str) -> Result<[u8; N], String> {
    let mut a = [0u8; N];
    a.copy_from_slice(take(rest, N, what)?);
    Ok(a)
}

fn take_flag(rest: &mut &[u8], what: &str) -> Result<bool, String> {
    match take_array::<1>(rest, what)? {
        [0] => Ok(false),
        [1] => Ok(true),
        [b] => Err(format!("{what} flag is {b:#04x}, not 0x00 or 0x01")),
    }
}

/// Decode a history entry; errors describe what is wrong instead of panicking.
fn decode_history(bytes: &[u8]) -> Result<HistoryEntry, String> {
    let mut rest = bytes;
    let [format] = take_array::<1>(&mut rest, "format byte")?;
    if format != FORMAT_V1 {
        return Err(format!("unknown history format {format:#04x}"));
    }
    let tx_id_len = u32::from_be_bytes(take_array(&mut rest, "tx id length")?) as usize;
    let tx_id = std::str::from_utf8(take(&mut rest, tx_id_len, "tx id")?)
        .map_err(|_| "tx id is not UTF-8".to_owned())?
        .to_owned();
    let timestamp = if take_flag(&mut rest, "timestamp presence")? {
        let seconds = i64::from_be_bytes(take_array(&mut rest, "timestamp seconds")?);
        let nanos = i32::from_be_bytes(take_array(&mut rest, "timestamp nanos")?);
        Some((seconds, nanos))
    } else {
        None
    };
    let is_delete = take_flag(&mut rest, "is_delete")?;
    if is_delete && !rest.is_empty() {
        return Err(format!("delete carries a {}-byte value", rest.len()));
    }
    Ok(HistoryEntry {
        tx_id,
        timestamp,
        is_delete,
        value: Bytes::copy_from_slice(rest),
    })
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
    /// Blocks whose updates are in the state: the savepoint's block number + 1 (0: none).
    applied: Arc<std::sync::atomic::AtomicU64>,
}

impl StateDb {
    /// Open (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        let mut opts = crate::rocks::point_lookup_options();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = DB::open(&opts, path).map_err(|e| StateError::Db {
            path: path.to_owned(),
            detail: format!("cannot open: {e} (is another weft process using it?)"),
        })?;
        let state = StateDb {
            db: Arc::new(db),
            gate: Arc::new(RwLock::new(())),
            path: path.to_owned(),
            applied: Arc::default(),
        };
        let applied = state.savepoint()?.map_or(0, |v| v.block_num + 1);
        state
            .applied
            .store(applied, std::sync::atomic::Ordering::Release);
        Ok(state)
    }

    /// How many blocks' updates the state holds (the savepoint's block number + 1; 0 before
    /// the first). A block the block store has but this does not count is stored but not
    /// committed yet: its transactions must not be reported committed, since a read of the
    /// state would not see them.
    pub fn applied_height(&self) -> u64 {
        self.applied.load(std::sync::atomic::Ordering::Acquire)
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
        for (((ns, key), version), entry) in &batch.history {
            check_ns(ns)?;
            let k = history_key(ns, key, *version).ok_or_else(|| {
                self.err(format!(
                    "history of {ns}/key of {} bytes: key too long",
                    key.len()
                ))
            })?;
            let v = encode_history(entry).ok_or_else(|| {
                self.err(format!(
                    "history of {ns}/{key:?}: tx id of {} bytes is too long",
                    entry.tx_id.len()
                ))
            })?;
            wb.put(k, v);
        }
        let mut sp = Vec::with_capacity(16);
        push_version(&mut sp, savepoint);
        wb.put(SAVEPOINT_KEY, sp);
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        let _exclusive = self.gate.write().await;
        self.db
            .write_opt(wb, &wo)
            .map_err(|e| self.err(format!("commit failed: {e}")))?;
        self.applied.fetch_max(
            savepoint.block_num.saturating_add(1),
            std::sync::atomic::Ordering::AcqRel,
        );
        Ok(())
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

    /// Modifications of `ns`/`key`, newest first (Fabric 2.x order). `before`: only entries
    /// strictly older than this version (for paging: pass the version of the last entry you
    /// got). At most `limit` entries.
    pub fn history(
        &self,
        ns: &str,
        key: &str,
        before: Option<Version>,
        limit: usize,
    ) -> Result<Vec<(Version, HistoryEntry)>, StateError> {
        check_ns(ns)?;
        let Some(prefix) = history_prefix(ns, key) else {
            // Too long to have been recorded.
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut upper = prefix.clone();
        match before {
            Some(v) => push_version(&mut upper, v),
            // Past every `prefix ++ 16 bytes`.
            None => upper.extend_from_slice(&[0xff; 17]),
        }
        let corrupt = |detail: String| StateError::Corrupt {
            path: self.path.clone(),
            what: format!("history of {ns}/{key:?}"),
            detail,
        };
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(prefix.clone());
        opts.set_iterate_upper_bound(upper);
        let mut out = Vec::new();
        for item in self.db.iterator_opt(IteratorMode::End, opts) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(|e| StateError::Db {
                path: self.path.clone(),
                detail: e.to_string(),
            })?;
            let suffix = k.get(prefix.len()..).unwrap_or_default();
            let version = match suffix.len() {
                16 => {
                    let mut n = [0u8; 8];
                    let mut t = [0u8; 8];
                    n.copy_from_slice(&suffix[..8]);
                    t.copy_from_slice(&suffix[8..]);
                    Version::new(u64::from_be_bytes(n), u64::from_be_bytes(t))
                }
                len => {
                    return Err(corrupt(format!(
                        "entry key ends in {len} bytes instead of a 16-byte version"
                    )))
                }
            };
            let entry = decode_history(&v)
                .map_err(|detail| corrupt(format!("at {version:?}: {detail}")))?;
            out.push((version, entry));
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

    #[test]
    fn history_encoding_is_pinned() {
        assert_eq!(
            history_key("mycc", "k\u{0}a", Version::new(7, 3)).unwrap(),
            [
                &b"kmycc\x00"[..],
                &3u32.to_be_bytes(),
                b"k\x00a",
                &7u64.to_be_bytes(),
                &3u64.to_be_bytes(),
            ]
            .concat()
        );
        let put = HistoryEntry {
            tx_id: "tx1".into(),
            timestamp: Some((1_700_000_000, 123)),
            is_delete: false,
            value: Bytes::from_static(b"val"),
        };
        let v = encode_history(&put).unwrap();
        assert_eq!(
            v,
            [
                &[0x01][..],
                &3u32.to_be_bytes(),
                b"tx1",
                &[0x01],
                &1_700_000_000i64.to_be_bytes(),
                &123i32.to_be_bytes(),
                &[0x00],
                b"val",
            ]
            .concat()
        );
        assert_eq!(decode_history(&v).unwrap(), put);
        let del = HistoryEntry {
            tx_id: "tx2".into(),
            timestamp: None,
            is_delete: true,
            value: Bytes::new(),
        };
        let v = encode_history(&del).unwrap();
        assert_eq!(
            v,
            [&[0x01][..], &3u32.to_be_bytes(), b"tx2", &[0x00], &[0x01]].concat()
        );
        assert_eq!(decode_history(&v).unwrap(), del);
        // Distinct prefixes: no key's entries start with another key's prefix.
        let a = history_prefix("mycc", "a").unwrap();
        for (ns, key) in [
            ("mycc", "a\u{0}b"),
            ("mycc", "ab"),
            ("mycc2", "a"),
            ("myc", "c"),
        ] {
            assert!(
                !history_prefix(ns, key).unwrap().starts_with(&a),
                "{ns}/{key:?}"
            );
        }
    }

    #[test]
    fn corrupt_history_entries_are_errors_not_panics() {
        let good = encode_history(&HistoryEntry {
            tx_id: "tx-é".into(),
            timestamp: Some((-5, 999_999_999)),
            is_delete: false,
            value: Bytes::from_static(b"value"),
        })
        .unwrap();
        // Every truncation that cuts into the header is an error (cuts inside the value are
        // just a shorter value: it has no length field).
        let header = 1 + 4 + "tx-é".len() + 1 + 12 + 1;
        for cut in 0..header {
            assert!(decode_history(&good[..cut]).is_err(), "cut at {cut}");
        }
        for cut in header..good.len() {
            assert!(decode_history(&good[..cut]).is_ok(), "cut at {cut}");
        }
        // Any single garbled byte decodes or fails, never panics.
        for i in 0..good.len() {
            for b in [0x00, 0x02, 0x7f, 0xff] {
                let mut garbled = good.clone();
                garbled[i] = b;
                let _ = decode_history(&garbled);
            }
        }
        assert!(decode_history(&[]).unwrap_err().contains("format byte"));
        assert!(decode_history(&[0x02; 30])
            .unwrap_err()
            .contains("unknown history format"));
        let mut lying = good.clone();
        lying[1..5].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_history(&lying).unwrap_err().contains("tx id"));
        let mut bad_flag = good.clone();
        bad_flag[5 + "tx-é".len()] = 0x07;
        assert!(decode_history(&bad_flag)
            .unwrap_err()
            .contains("timestamp presence flag"));
        let mut bad_utf8 = good.clone();
        bad_utf8[5] = 0xff;
        assert!(decode_history(&bad_utf8).unwrap_err().contains("UTF-8"));
        let mut delete_with_value = good.clone();
        delete_with_value[header - 1] = 0x01;
        assert!(decode_history(&delete_with_value)
            .unwrap_err()
            .contains("delete carries"));
    }
}
