//! MVCC validation of a block's public read/write sets, and the state updates of its valid
//! transactions (Fabric's rules).
//!
//! Transactions are validated in block order against the committed state *plus* the writes of
//! the earlier valid transactions of the same block:
//! - a read is valid when the key's version is the one the endorser saw (absent when it saw
//!   no value), and no earlier transaction of the block wrote the key;
//! - a range query is re-run over the same merged state: the keys and versions must be the ones
//!   recorded, and an exhausted iterator must find nothing more; a key added, changed or
//!   removed in the range is a phantom read;
//! - a valid transaction's writes become the state at version `(block, tx)`; a write without a
//!   metadata write keeps the key's metadata, a delete drops it; every write is recorded in
//!   the key's history.
//!
//! Metadata is stored as [`encode_metadata`] bytes.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use prost::Message;
use weft_proto::kvrwset::range_query_info::ReadsInfo;
use weft_proto::kvrwset::{KvMetadataEntry, KvMetadataWrite, KvrwSet, RangeQueryInfo};
use weft_proto::rwset::TxReadWriteSet;

use crate::statedb::{HistoryEntry, ReadView, StateError, UpdateBatch, Version};

/// Encode a key's metadata map as stored in the state database: a `KVMetadataWrite` without
/// key, entries in name order (empty map: no bytes).
pub fn encode_metadata(entries: &BTreeMap<String, Bytes>) -> Bytes {
    if entries.is_empty() {
        return Bytes::new();
    }
    KvMetadataWrite {
        key: String::new(),
        entries: entries
            .iter()
            .map(|(name, value)| KvMetadataEntry {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
    }
    .encode_to_vec()
    .into()
}

/// Decode what [`encode_metadata`] stored.
pub fn decode_metadata(bytes: &[u8]) -> Result<BTreeMap<String, Bytes>, String> {
    if bytes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let w = KvMetadataWrite::decode(bytes).map_err(|e| format!("corrupt key metadata: {e}"))?;
    Ok(w.entries.into_iter().map(|e| (e.name, e.value)).collect())
}

/// Why a transaction's read set no longer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// A key read at `read` is now at `current` (`None`: absent).
    Read {
        namespace: String,
        key: String,
        read: Option<Version>,
        current: Option<Version>,
    },
    /// A key read by this transaction was written or deleted by an earlier valid transaction
    /// of the same block. As in Fabric, that is a conflict whatever version was read: the
    /// read saw the state before the block.
    ReadWrittenInBlock { namespace: String, key: String },
    /// A range query would now return other keys or versions.
    Phantom {
        namespace: String,
        start: String,
        end: String,
        detail: String,
    },
    /// The read/write set itself does not decode.
    Malformed { detail: String },
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = |v: &Option<Version>| match v {
            Some(v) => format!("{}:{}", v.block_num, v.tx_num),
            None => "absent".into(),
        };
        match self {
            Conflict::Read {
                namespace,
                key,
                read,
                current,
            } => write!(
                f,
                "MVCC read conflict: {namespace}/{key:?} was read at version {} but is now {}",
                v(read),
                v(current)
            ),
            Conflict::ReadWrittenInBlock { namespace, key } => write!(
                f,
                "MVCC read conflict: {namespace}/{key:?} was read before this block, and an \
                 earlier transaction of this block wrote or deleted it"
            ),
            Conflict::Phantom {
                namespace,
                start,
                end,
                detail,
            } => write!(
                f,
                "phantom read: range [{start:?}, {end:?}) of {namespace}: {detail}"
            ),
            Conflict::Malformed { detail } => write!(f, "malformed read/write set: {detail}"),
        }
    }
}

/// A key's state as seen during validation: the committed value or an earlier write of this
/// block. `None`: absent (or deleted).
type Pending = Option<(Bytes, Bytes, Version)>;

/// One key's updates in a transaction: the value write (`Some(None)`: delete) and the
/// metadata write.
type KeyUpdate = (Option<Option<Bytes>>, Option<BTreeMap<String, Bytes>>);

/// Validates one block's transactions in order and collects the valid ones' updates.
#[derive(Debug)]
pub struct BlockValidator<'a> {
    view: &'a ReadView,
    block: u64,
    /// Writes of earlier valid transactions of this block.
    pending: BTreeMap<(String, String), Pending>,
    batch: UpdateBatch,
}

fn decode_ns(rw: &TxReadWriteSet) -> Result<Vec<(String, KvrwSet)>, Conflict> {
    rw.ns_rwset
        .iter()
        .map(|ns| {
            KvrwSet::decode(ns.rwset.clone())
                .map(|kv| (ns.namespace.clone(), kv))
                .map_err(|e| Conflict::Malformed {
                    detail: format!("namespace {:?}: {e}", ns.namespace),
                })
        })
        .collect()
}

impl<'a> BlockValidator<'a> {
    /// Validate block `block` over `view` (the state before the block).
    pub fn new(view: &'a ReadView, block: u64) -> Self {
        BlockValidator {
            view,
            block,
            pending: BTreeMap::new(),
            batch: UpdateBatch::new(),
        }
    }

    fn current(&self, ns: &str, key: &str) -> Result<Pending, StateError> {
        if let Some(p) = self.pending.get(&(ns.to_owned(), key.to_owned())) {
            return Ok(p.clone());
        }
        Ok(self
            .view
            .get(ns, key)?
            .map(|v| (v.value, v.metadata, v.version)))
    }

    /// Check `rw`'s reads and range queries. `Ok(None)`: valid.
    pub fn check(&self, rw: &TxReadWriteSet) -> Result<Option<Conflict>, StateError> {
        let sets = match decode_ns(rw) {
            Ok(s) => s,
            Err(c) => return Ok(Some(c)),
        };
        for (ns, kv) in &sets {
            for read in &kv.reads {
                if self.pending.contains_key(&(ns.clone(), read.key.clone())) {
                    return Ok(Some(Conflict::ReadWrittenInBlock {
                        namespace: ns.clone(),
                        key: read.key.clone(),
                    }));
                }
                let read_version = read.version.map(|v| Version::new(v.block_num, v.tx_num));
                let current = self.current(ns, &read.key)?.map(|(_, _, v)| v);
                if current != read_version {
                    return Ok(Some(Conflict::Read {
                        namespace: ns.clone(),
                        key: read.key.clone(),
                        read: read_version,
                        current,
                    }));
                }
            }
            for rq in &kv.range_queries_info {
                if let Some(c) = self.check_range(ns, rq)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    fn check_range(&self, ns: &str, rq: &RangeQueryInfo) -> Result<Option<Conflict>, StateError> {
        let phantom = |detail: String| {
            Some(Conflict::Phantom {
                namespace: ns.to_owned(),
                start: rq.start_key.clone(),
                end: rq.end_key.clone(),
                detail,
            })
        };
        let reads = match &rq.reads_info {
            Some(ReadsInfo::RawReads(r)) => &r.kv_reads,
            Some(ReadsInfo::ReadsMerkleHashes(_)) => {
                return Ok(phantom(
                    "merkle-summarised range reads are not supported; endorse with raw reads"
                        .into(),
                ))
            }
            None => return Ok(phantom("the range query records no reads".into())),
        };
        // Not exhausted: the range ends at end_key inclusive (the last key the peer sent).
        let (end, inclusive) = if rq.itr_exhausted {
            (rq.end_key.clone(), false)
        } else {
            (rq.end_key.clone(), true)
        };
        let now = self.range_now(ns, &rq.start_key, &end, inclusive, reads.len() + 1)?;
        for (i, read) in reads.iter().enumerate() {
            let want = read.version.map(|v| Version::new(v.block_num, v.tx_num));
            match now.get(i) {
                Some((k, v)) if *k == read.key && Some(*v) == want => {}
                Some((k, v)) => {
                    return Ok(phantom(format!(
                        "result {i} is now {k:?} at {}:{} instead of {:?}",
                        v.block_num, v.tx_num, read.key
                    )))
                }
                None => {
                    return Ok(phantom(format!(
                        "{:?} (result {i}) is no longer in the range",
                        read.key
                    )))
                }
            }
        }
        if now.len() > reads.len() {
            let (k, _) = &now[reads.len()];
            return Ok(phantom(format!("{k:?} is now in the range")));
        }
        Ok(None)
    }

    /// Up to `limit` (key, version) of `ns` in the range, committed state merged with this
    /// block's pending writes.
    fn range_now(
        &self,
        ns: &str,
        start: &str,
        end: &str,
        end_inclusive: bool,
        limit: usize,
    ) -> Result<Vec<(String, Version)>, StateError> {
        // Committed keys: fetch enough to cover pending deletions in the range.
        let deletions = self
            .pending
            .iter()
            .filter(|((n, _), p)| n == ns && p.is_none())
            .count();
        let committed_end = if end_inclusive {
            format!("{end}\u{0}")
        } else {
            end.to_owned()
        };
        let committed =
            self.view
                .range(ns, start, &committed_end, limit.saturating_add(deletions))?;
        let mut merged: BTreeMap<String, Version> =
            committed.into_iter().map(|(k, v)| (k, v.version)).collect();
        let upper = if end.is_empty() {
            Bound::Unbounded
        } else if end_inclusive {
            Bound::Included((ns.to_owned(), end.to_owned()))
        } else {
            Bound::Excluded((ns.to_owned(), end.to_owned()))
        };
        for ((_, key), p) in self
            .pending
            .range((Bound::Included((ns.to_owned(), start.to_owned())), upper))
        {
            match p {
                Some((_, _, v)) => {
                    merged.insert(key.clone(), *v);
                }
                None => {
                    merged.remove(key);
                }
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    /// Apply a valid transaction's writes at version `(block, tx_num)`, with history.
    pub fn apply(
        &mut self,
        tx_num: u64,
        rw: &TxReadWriteSet,
        tx_id: &str,
        timestamp: Option<(i64, i32)>,
    ) -> Result<(), StateError> {
        let sets = decode_ns(rw).map_err(|c| StateError::InvalidUpdate(c.to_string()))?;
        let version = Version::new(self.block, tx_num);
        for (ns, kv) in sets {
            let mut touched: BTreeMap<String, KeyUpdate> = BTreeMap::new();
            for w in kv.writes {
                let value = (!w.is_delete).then_some(w.value);
                touched.entry(w.key).or_default().0 = Some(value);
            }
            for m in kv.metadata_writes {
                let entries = m.entries.into_iter().map(|e| (e.name, e.value)).collect();
                touched.entry(m.key).or_default().1 = Some(entries);
            }
            for (key, (value, metadata)) in touched {
                let current = self.current(&ns, &key)?;
                let value_written = value.is_some();
                let next: Pending = match (value, metadata) {
                    (Some(None), _) => None,
                    (Some(Some(v)), Some(md)) => Some((v, encode_metadata(&md), version)),
                    // A value write keeps the key's metadata.
                    (Some(Some(v)), None) => {
                        let md = current.as_ref().map(|c| c.1.clone()).unwrap_or_default();
                        Some((v, md, version))
                    }
                    // A metadata write alone keeps the value; on an absent key it is a no-op.
                    (None, Some(md)) => match current {
                        Some((v, _, _)) => Some((v, encode_metadata(&md), version)),
                        None => continue,
                    },
                    (None, None) => continue,
                };
                match &next {
                    Some((v, md, ver)) => self.batch.put(&ns, &key, v.clone(), md.clone(), *ver),
                    None => self.batch.delete(&ns, &key),
                }
                // History records value writes and deletes, not metadata-only updates.
                if value_written {
                    self.batch.add_history(
                        &ns,
                        &key,
                        version,
                        HistoryEntry {
                            tx_id: tx_id.to_owned(),
                            timestamp,
                            is_delete: next.is_none(),
                            value: next.as_ref().map(|n| n.0.clone()).unwrap_or_default(),
                        },
                    );
                }
                self.pending.insert((ns.clone(), key), next);
            }
        }
        Ok(())
    }

    /// The updates of every applied transaction, to commit with the block.
    pub fn finish(self) -> UpdateBatch {
        self.batch
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::statedb::StateDb;
    use weft_proto::kvrwset::{KvRead, KvWrite, QueryReads, Version as KvVersion};
    use weft_proto::rwset::NsReadWriteSet;

    const NS: &str = "cc";

    fn ver(b: u64, t: u64) -> Option<KvVersion> {
        Some(KvVersion {
            block_num: b,
            tx_num: t,
        })
    }

    fn read(key: &str, v: Option<KvVersion>) -> KvRead {
        KvRead {
            key: key.into(),
            version: v,
        }
    }

    fn write(key: &str, value: &str) -> KvWrite {
        KvWrite {
            key: key.into(),
            is_delete: value.is_empty(),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }

    fn rwset(kv: KvrwSet) -> TxReadWriteSet {
        TxReadWriteSet {
            data_model: 0,
            ns_rwset: vec![NsReadWriteSet {
                namespace: NS.into(),
                rwset: kv.encode_to_vec().into(),
                collection_hashed_rwset: Vec::new(),
            }],
        }
    }

    fn range(start: &str, end: &str, exhausted: bool, reads: Vec<KvRead>) -> RangeQueryInfo {
        RangeQueryInfo {
            start_key: start.into(),
            end_key: end.into(),
            itr_exhausted: exhausted,
            reads_info: Some(ReadsInfo::RawReads(QueryReads { kv_reads: reads })),
        }
    }

    /// A state DB with a@(1,0), b@(1,1), d@(1,2) and metadata on b.
    async fn db() -> (tempfile::TempDir, StateDb) {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let mut b = UpdateBatch::new();
        let md: BTreeMap<String, Bytes> =
            [("VALIDATION_PARAMETER".to_owned(), Bytes::from_static(b"p"))].into();
        b.put(NS, "a", "A".into(), Bytes::new(), Version::new(1, 0));
        b.put(
            NS,
            "b",
            "B".into(),
            encode_metadata(&md),
            Version::new(1, 1),
        );
        b.put(NS, "d", "D".into(), Bytes::new(), Version::new(1, 2));
        db.apply(b, Version::new(1, 2), false).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn reads_must_match_committed_and_earlier_writes_of_the_block() {
        let (_d, db) = db().await;
        let view = db.read().await;
        let mut v = BlockValidator::new(&view, 2);
        let ok = rwset(KvrwSet {
            reads: vec![read("a", ver(1, 0)), read("zz", None)],
            ..Default::default()
        });
        assert_eq!(v.check(&ok).unwrap(), None);
        let stale = rwset(KvrwSet {
            reads: vec![read("a", ver(0, 9))],
            ..Default::default()
        });
        assert!(matches!(
            v.check(&stale).unwrap(),
            Some(Conflict::Read { .. })
        ));
        let absent_now_present = rwset(KvrwSet {
            reads: vec![read("a", None)],
            ..Default::default()
        });
        let c = v.check(&absent_now_present).unwrap().unwrap();
        assert!(
            c.to_string()
                .contains("read at version absent but is now 1:0"),
            "{c}"
        );

        // tx 0 writes a; tx 1 read a at its committed version: conflict.
        let w = rwset(KvrwSet {
            reads: vec![read("a", ver(1, 0))],
            writes: vec![write("a", "A2")],
            ..Default::default()
        });
        assert_eq!(v.check(&w).unwrap(), None);
        v.apply(0, &w, "tx0", None).unwrap();
        assert!(matches!(
            v.check(&w).unwrap(),
            Some(Conflict::ReadWrittenInBlock { .. })
        ));

        // tx 1 deletes d; tx 2 read d and found it absent, or read it at its committed
        // version: both saw the state before the block, and both conflict (Fabric's rule: a
        // key an earlier valid transaction of the block updated cannot be read).
        let delete = rwset(KvrwSet {
            writes: vec![write("d", "")],
            ..Default::default()
        });
        assert_eq!(v.check(&delete).unwrap(), None);
        v.apply(1, &delete, "tx1", None).unwrap();
        for version in [None, ver(1, 2)] {
            let c = v
                .check(&rwset(KvrwSet {
                    reads: vec![read("d", version)],
                    writes: vec![write("d", "back")],
                    ..Default::default()
                }))
                .unwrap()
                .unwrap();
            assert!(
                c.to_string()
                    .contains("an earlier transaction of this block wrote or deleted it"),
                "{c}"
            );
        }
    }

    #[tokio::test]
    async fn range_queries_detect_phantoms() {
        let (_d, db) = db().await;
        let view = db.read().await;
        let all = vec![
            read("a", ver(1, 0)),
            read("b", ver(1, 1)),
            read("d", ver(1, 2)),
        ];
        let q = |info: RangeQueryInfo| {
            rwset(KvrwSet {
                range_queries_info: vec![info],
                ..Default::default()
            })
        };
        let v = BlockValidator::new(&view, 2);
        assert_eq!(
            v.check(&q(range("a", "z", true, all.clone()))).unwrap(),
            None
        );
        // A key missing from the recorded results, or one too many.
        let c = v
            .check(&q(range("a", "z", true, all[..2].to_vec())))
            .unwrap()
            .unwrap();
        assert!(c.to_string().contains("\"d\" is now in the range"), "{c}");
        // Not exhausted: only [start, end_key] counts.
        assert_eq!(
            v.check(&q(range("a", "b", false, all[..2].to_vec())))
                .unwrap(),
            None
        );

        // Earlier transactions of the block insert, change and delete keys in the range.
        let mut v = BlockValidator::new(&view, 2);
        let insert_c = rwset(KvrwSet {
            writes: vec![write("c", "C")],
            ..Default::default()
        });
        v.apply(0, &insert_c, "tx0", None).unwrap();
        let c = v
            .check(&q(range("a", "z", true, all.clone())))
            .unwrap()
            .unwrap();
        assert!(matches!(c, Conflict::Phantom { .. }), "{c}");
        // The insert is outside a non-exhausted range that ended at b.
        assert_eq!(
            v.check(&q(range("a", "b", false, all[..2].to_vec())))
                .unwrap(),
            None
        );

        let mut v = BlockValidator::new(&view, 2);
        let delete_b = rwset(KvrwSet {
            writes: vec![write("b", "")],
            ..Default::default()
        });
        v.apply(0, &delete_b, "tx0", None).unwrap();
        let c = v.check(&q(range("a", "z", true, all))).unwrap().unwrap();
        assert!(c.to_string().contains("phantom"), "{c}");
    }

    #[tokio::test]
    async fn writes_keep_metadata_record_history_and_commit() {
        let (_d, db) = db().await;
        let batch = {
            let view = db.read().await;
            let mut v = BlockValidator::new(&view, 2);
            // b: value write keeps b's metadata; d: deleted; a: metadata-only write keeps A.
            let tx = rwset(KvrwSet {
                writes: vec![write("b", "B2"), write("d", "")],
                metadata_writes: vec![KvMetadataWrite {
                    key: "a".into(),
                    entries: vec![KvMetadataEntry {
                        name: "VALIDATION_PARAMETER".into(),
                        value: Bytes::from_static(b"q"),
                    }],
                }],
                ..Default::default()
            });
            v.apply(3, &tx, "tx3", Some((1_700_000_000, 5))).unwrap();
            v.finish()
        };
        db.apply(batch, Version::new(2, 3), false).await.unwrap();
        let view = db.read().await;
        let b = view.get(NS, "b").unwrap().unwrap();
        assert_eq!(b.value.as_ref(), b"B2");
        assert_eq!(b.version, Version::new(2, 3));
        assert_eq!(
            decode_metadata(&b.metadata).unwrap()["VALIDATION_PARAMETER"].as_ref(),
            b"p"
        );
        assert!(view.get(NS, "d").unwrap().is_none());
        let a = view.get(NS, "a").unwrap().unwrap();
        assert_eq!(a.value.as_ref(), b"A");
        assert_eq!(
            decode_metadata(&a.metadata).unwrap()["VALIDATION_PARAMETER"].as_ref(),
            b"q"
        );
        let h = view.history(NS, "d", None, 10).unwrap();
        assert_eq!(h.len(), 1);
        assert!(h[0].1.is_delete);
        assert_eq!(h[0].1.tx_id, "tx3");
        assert_eq!(h[0].1.timestamp, Some((1_700_000_000, 5)));
        // Metadata-only updates are not history.
        assert!(view.history(NS, "a", None, 10).unwrap().is_empty());
    }

    #[tokio::test]
    async fn malformed_rwsets_are_conflicts_not_panics() {
        let (_d, db) = db().await;
        let view = db.read().await;
        let v = BlockValidator::new(&view, 2);
        let good = rwset(KvrwSet {
            reads: vec![read("a", ver(1, 0))],
            range_queries_info: vec![range("a", "z", true, vec![read("a", ver(1, 0))])],
            ..Default::default()
        })
        .ns_rwset[0]
            .rwset
            .to_vec();
        for cut in 0..good.len() {
            let mut bad = good.clone();
            bad[cut] ^= 0xa5;
            bad.truncate(cut + 1);
            let rw = TxReadWriteSet {
                data_model: 0,
                ns_rwset: vec![NsReadWriteSet {
                    namespace: NS.into(),
                    rwset: bad.into(),
                    collection_hashed_rwset: Vec::new(),
                }],
            };
            let _ = v.check(&rw).unwrap();
        }
        assert!(decode_metadata(b"\xff\xff").is_err());
    }
}
