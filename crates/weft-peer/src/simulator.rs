//! The transaction simulator: a chaincode's reads and writes during endorsement.
//!
//! A simulator runs over one [`ReadView`] of the committed state (commits wait until it is
//! dropped, so every read of a transaction sees the same state) and records what Fabric's
//! endorsers record:
//! - reads: the committed version of every key read (none for a missing key), per namespace;
//! - writes: the last value written to each key, a delete being an empty value (as Fabric's
//!   `PutState(key, [])` is a delete);
//! - metadata writes: the whole metadata map of a key after `PUT_STATE_METADATA`;
//! - range query info: start, end, whether the iterator was exhausted, and the keys and
//!   versions it returned, so a validator can detect phantoms.
//!
//! Like Fabric, a transaction does not read its own writes; paginated queries are allowed only
//! in read-only transactions. Range queries are served in batches of [`QUERY_BATCH`]; a
//! paginated query's metadata (count and bookmark) rides on every batch of the page, so a
//! shim that reads it from the first batch (as fabric-shim and weft-shim do) gets it even for
//! pages over 100 results (Fabric puts it on the last batch only).
//!
//! Private data needs collection definitions, which come with chaincode definitions on a
//! channel; until a chaincode has collections, private data requests are refused by name.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use prost::Message;
use weft_ledger::{ReadView, StateError, Version};
use weft_proto::kvrwset::{
    range_query_info::ReadsInfo, KvMetadataEntry, KvMetadataWrite, KvRead, KvWrite, KvrwSet,
    QueryReads, RangeQueryInfo, Version as KvVersion,
};
use weft_proto::protos::{QueryMetadata, QueryResponse, QueryResponseMetadata, QueryResultBytes};
use weft_proto::queryresult::{KeyModification, Kv};
use weft_proto::rwset::{tx_read_write_set::DataModel, NsReadWriteSet, TxReadWriteSet};

/// Results per query batch (Fabric's peer sends 100).
pub const QUERY_BATCH: usize = 100;

/// Limits on what one transaction's queries may return.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    /// Results one iterator may return at most (`ledger.state.totalQueryLimit`, default
    /// 100000).
    pub total_query_limit: usize,
    /// Results per batch sent to the chaincode.
    pub batch: usize,
    /// Whether the history index is kept (`ledger.history.enableHistoryDatabase`).
    pub history_enabled: bool,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            total_query_limit: 100_000,
            batch: QUERY_BATCH,
            history_enabled: true,
        }
    }
}

/// Why a simulator request failed; the message goes back to the chaincode as an ERROR.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The request is not allowed or not understood.
    #[error("{0}")]
    Refused(String),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
}

fn refused(msg: impl Into<String>) -> SimError {
    SimError::Refused(msg.into())
}

#[derive(Debug, Default)]
struct NsSim {
    reads: BTreeMap<String, Option<Version>>,
    writes: BTreeMap<String, Option<Bytes>>,
    metadata_writes: BTreeMap<String, BTreeMap<String, Bytes>>,
    range_queries: Vec<RangeQueryInfo>,
}

#[derive(Debug)]
enum Cursor {
    /// A range over committed state. `next_from` is the first key not returned yet.
    Range {
        ns: String,
        start: String,
        end: String,
        next_from: Option<String>,
        returned: usize,
        limit: usize,
        reads: Vec<KvRead>,
        last_key: Option<String>,
        /// A paginated query's whole page, fetched at once, and its metadata.
        page: Option<(std::collections::VecDeque<Kv>, Bytes)>,
    },
    /// A key's history, newest first. `before` is the version of the last entry returned.
    History {
        ns: String,
        key: String,
        before: Option<Version>,
        done: bool,
        returned: usize,
        limit: usize,
    },
}

/// One transaction's simulation (see the module docs).
#[derive(Debug)]
pub struct TxSimulator {
    txid: String,
    view: ReadView,
    limits: QueryLimits,
    namespaces: BTreeMap<String, NsSim>,
    cursors: HashMap<String, Cursor>,
    next_cursor: u64,
    wrote: bool,
    paginated: bool,
}

pub use weft_ledger::mvcc::{decode_metadata, encode_metadata};

fn metadata_entries(entries: &BTreeMap<String, Bytes>) -> Vec<KvMetadataEntry> {
    entries
        .iter()
        .map(|(name, value)| KvMetadataEntry {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn kv_version(v: Version) -> KvVersion {
    KvVersion {
        block_num: v.block_num,
        tx_num: v.tx_num,
    }
}

fn collection_refused(ns: &str, collection: &str) -> SimError {
    refused(format!(
        "private data collection {collection:?} is not defined for chaincode {ns:?} on this \
         channel (collections are declared in the chaincode definition)"
    ))
}

impl TxSimulator {
    pub fn new(txid: impl Into<String>, view: ReadView, limits: QueryLimits) -> Self {
        TxSimulator {
            txid: txid.into(),
            view,
            limits,
            namespaces: BTreeMap::new(),
            cursors: HashMap::new(),
            next_cursor: 0,
            wrote: false,
            paginated: false,
        }
    }

    pub fn txid(&self) -> &str {
        &self.txid
    }

    fn ns(&mut self, ns: &str) -> &mut NsSim {
        self.namespaces.entry(ns.to_owned()).or_default()
    }

    fn before_write(&mut self) -> Result<(), SimError> {
        if self.paginated {
            return Err(refused(format!(
                "transaction {} has already run a paginated query, so it may not write \
                 (paginated queries are allowed only in read-only transactions)",
                self.txid
            )));
        }
        self.wrote = true;
        Ok(())
    }

    fn check_key(key: &str) -> Result<(), SimError> {
        if key.is_empty() {
            return Err(refused("the key is empty"));
        }
        Ok(())
    }

    /// `GET_STATE`: the committed value (empty if absent); records the read.
    pub fn get_state(&mut self, ns: &str, key: &str) -> Result<Bytes, SimError> {
        Self::check_key(key)?;
        let found = self.view.get(ns, key)?;
        let version = found.as_ref().map(|v| v.version);
        self.ns(ns).reads.insert(key.to_owned(), version);
        Ok(found.map(|v| v.value).unwrap_or_default())
    }

    /// `GET_STATE_METADATA`: the committed metadata of a key; records the read.
    pub fn get_state_metadata(
        &mut self,
        ns: &str,
        key: &str,
    ) -> Result<BTreeMap<String, Bytes>, SimError> {
        Self::check_key(key)?;
        let found = self.view.get(ns, key)?;
        let version = found.as_ref().map(|v| v.version);
        self.ns(ns).reads.insert(key.to_owned(), version);
        match found {
            Some(v) => decode_metadata(&v.metadata)
                .map_err(|e| refused(format!("key {key:?} of {ns:?}: {e}"))),
            None => Ok(BTreeMap::new()),
        }
    }

    /// `PUT_STATE`: an empty value is a delete, as in Fabric.
    pub fn put_state(&mut self, ns: &str, key: &str, value: Bytes) -> Result<(), SimError> {
        Self::check_key(key)?;
        self.before_write()?;
        let value = (!value.is_empty()).then_some(value);
        self.ns(ns).writes.insert(key.to_owned(), value);
        Ok(())
    }

    /// `DEL_STATE`.
    pub fn delete_state(&mut self, ns: &str, key: &str) -> Result<(), SimError> {
        Self::check_key(key)?;
        self.before_write()?;
        self.ns(ns).writes.insert(key.to_owned(), None);
        Ok(())
    }

    /// `PUT_STATE_METADATA`: set one metadata entry of a key, keeping the others.
    pub fn put_state_metadata(
        &mut self,
        ns: &str,
        key: &str,
        name: &str,
        value: Bytes,
    ) -> Result<(), SimError> {
        Self::check_key(key)?;
        if name.is_empty() {
            return Err(refused("the metadata entry name is empty"));
        }
        self.before_write()?;
        let mut entries = match self
            .namespaces
            .get(ns)
            .and_then(|n| n.metadata_writes.get(key))
        {
            Some(pending) => pending.clone(),
            None => self.get_state_metadata(ns, key)?,
        };
        entries.insert(name.to_owned(), value);
        self.ns(ns).metadata_writes.insert(key.to_owned(), entries);
        Ok(())
    }

    /// Private data requests: refused until the chaincode defines collections.
    pub fn private_data(&mut self, ns: &str, collection: &str) -> SimError {
        collection_refused(ns, collection)
    }

    /// `GET_QUERY_RESULT`: rich queries need a JSON document database.
    pub fn rich_query(&mut self, _ns: &str) -> SimError {
        refused(
            "rich queries (GetQueryResult) need a JSON state database such as CouchDB; weft's \
             state database is RocksDB, which, like Fabric's LevelDB, answers key and range \
             queries only",
        )
    }

    fn new_cursor_id(&mut self) -> String {
        self.next_cursor += 1;
        format!("{}-{}", self.txid, self.next_cursor)
    }

    /// `GET_STATE_BY_RANGE`: the first batch. `metadata` is the request's `QueryMetadata`
    /// bytes (empty for an unpaginated query).
    pub fn range_query(
        &mut self,
        ns: &str,
        start: &str,
        end: &str,
        metadata: &[u8],
    ) -> Result<QueryResponse, SimError> {
        let page = if metadata.is_empty() {
            None
        } else {
            Some(QueryMetadata::decode(metadata).map_err(|e| {
                refused(format!(
                    "malformed pagination metadata (QueryMetadata): {e}"
                ))
            })?)
        };
        if page.is_some() {
            if self.wrote {
                return Err(refused(format!(
                    "transaction {} has written, so it may not run a paginated query \
                     (paginated queries are allowed only in read-only transactions)",
                    self.txid
                )));
            }
            self.paginated = true;
        }
        if !end.is_empty() && end < start {
            return Err(refused(format!(
                "range query end key {end:?} sorts before start key {start:?}"
            )));
        }
        let id = self.new_cursor_id();
        let mut limit = self.limits.total_query_limit;
        let mut from = start.to_owned();
        let mut page_data = None;
        if let Some(meta) = &page {
            if meta.page_size > 0 {
                limit = limit.min(usize::try_from(meta.page_size).unwrap_or(usize::MAX));
            }
            if !meta.bookmark.is_empty() {
                from = meta.bookmark.clone();
            }
            // Fetch the whole page and the key after it (the bookmark) now, so every batch
            // can carry the page's metadata.
            let mut rows = self.view.range(ns, &from, end, limit.saturating_add(1))?;
            let bookmark = if rows.len() > limit {
                rows.pop().map(|(k, _)| k).unwrap_or_default()
            } else {
                String::new()
            };
            let meta = QueryResponseMetadata {
                fetched_records_count: i32::try_from(rows.len()).unwrap_or(i32::MAX),
                bookmark,
            }
            .encode_to_vec()
            .into();
            let kvs = rows
                .into_iter()
                .map(|(key, v)| Kv {
                    namespace: ns.to_owned(),
                    key,
                    value: v.value,
                })
                .collect();
            page_data = Some((kvs, meta));
        }
        self.cursors.insert(
            id.clone(),
            Cursor::Range {
                ns: ns.to_owned(),
                start: from.clone(),
                end: end.to_owned(),
                next_from: Some(from),
                returned: 0,
                limit,
                reads: Vec::new(),
                last_key: None,
                page: page_data,
            },
        );
        self.ns(ns);
        self.next_batch(&id)
    }

    /// `GET_HISTORY_FOR_KEY`: the first batch of a key's modifications, newest first.
    pub fn history_query(&mut self, ns: &str, key: &str) -> Result<QueryResponse, SimError> {
        Self::check_key(key)?;
        if !self.limits.history_enabled {
            return Err(refused(
                "the history database is disabled on this peer \
                 (ledger.history.enableHistoryDatabase: false)",
            ));
        }
        let id = self.new_cursor_id();
        self.cursors.insert(
            id.clone(),
            Cursor::History {
                ns: ns.to_owned(),
                key: key.to_owned(),
                before: None,
                done: false,
                returned: 0,
                limit: self.limits.total_query_limit,
            },
        );
        self.next_batch(&id)
    }

    /// `QUERY_STATE_NEXT`.
    pub fn query_next(&mut self, id: &str) -> Result<QueryResponse, SimError> {
        if !self.cursors.contains_key(id) {
            return Err(refused(format!(
                "query iterator {id:?} does not exist in transaction {} (closed or exhausted)",
                self.txid
            )));
        }
        self.next_batch(id)
    }

    /// `QUERY_STATE_CLOSE`.
    pub fn query_close(&mut self, id: &str) -> Result<QueryResponse, SimError> {
        if let Some(cursor) = self.cursors.remove(id) {
            self.finish(cursor, false);
        }
        Ok(QueryResponse {
            id: id.to_owned(),
            ..Default::default()
        })
    }

    /// Record a finished range iterator in the read set.
    fn finish(&mut self, cursor: Cursor, exhausted: bool) {
        if let Cursor::Range {
            ns,
            start,
            end,
            reads,
            last_key,
            ..
        } = cursor
        {
            // Not exhausted: only the part read matters, so the range ends at the last key
            // returned (as Fabric records it).
            let end_key = if exhausted {
                end
            } else {
                last_key.unwrap_or(start.clone())
            };
            self.ns(&ns).range_queries.push(RangeQueryInfo {
                start_key: start,
                end_key,
                itr_exhausted: exhausted,
                reads_info: Some(ReadsInfo::RawReads(QueryReads { kv_reads: reads })),
            });
        }
    }

    fn next_batch(&mut self, id: &str) -> Result<QueryResponse, SimError> {
        let batch = self.limits.batch.max(1);
        let Some(cursor) = self.cursors.get_mut(id) else {
            return Ok(QueryResponse {
                id: id.to_owned(),
                ..Default::default()
            });
        };
        let mut results = Vec::new();
        let mut metadata = Bytes::new();
        let has_more;
        match cursor {
            Cursor::Range {
                ns,
                end,
                next_from,
                returned,
                limit,
                reads,
                last_key,
                page,
                ..
            } => {
                let rows: Vec<Kv> = if let Some((queue, meta)) = page {
                    metadata = meta.clone();
                    let n = queue.len().min(batch);
                    queue.drain(..n).collect()
                } else if let Some(from) = next_from.take() {
                    let want = batch.min(*limit - *returned);
                    let mut rows = self.view.range(ns, &from, end, want.saturating_add(1))?;
                    if rows.len() > want {
                        *next_from = rows.pop().map(|(k, _)| k);
                    }
                    rows.into_iter()
                        .map(|(key, v)| {
                            reads.push(KvRead {
                                key: key.clone(),
                                version: Some(kv_version(v.version)),
                            });
                            Kv {
                                namespace: ns.clone(),
                                key,
                                value: v.value,
                            }
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                *returned += rows.len();
                if let Some(last) = rows.last() {
                    *last_key = Some(last.key.clone());
                }
                if page.is_none() && *returned >= *limit {
                    *next_from = None;
                }
                has_more = match page {
                    Some((queue, _)) => !queue.is_empty(),
                    None => next_from.is_some(),
                };
                results = rows
                    .into_iter()
                    .map(|kv| QueryResultBytes {
                        result_bytes: kv.encode_to_vec().into(),
                    })
                    .collect();
            }
            Cursor::History {
                ns,
                key,
                before,
                done,
                returned,
                limit,
            } => {
                if !*done {
                    let want = batch.min(*limit - *returned);
                    let mut rows = self
                        .view
                        .history(ns, key, *before, want.saturating_add(1))?;
                    let more = rows.len() > want;
                    rows.truncate(want);
                    *returned += rows.len();
                    *before = rows.last().map(|(v, _)| *v).or(*before);
                    *done = !more || *returned >= *limit;
                    results = rows
                        .into_iter()
                        .map(|(_, h)| QueryResultBytes {
                            result_bytes: KeyModification {
                                tx_id: h.tx_id,
                                value: h.value,
                                timestamp: h.timestamp.map(|(seconds, nanos)| {
                                    prost_types::Timestamp { seconds, nanos }
                                }),
                                is_delete: h.is_delete,
                            }
                            .encode_to_vec()
                            .into(),
                        })
                        .collect();
                }
                has_more = !*done;
            }
        }
        if !has_more {
            if let Some(cursor) = self.cursors.remove(id) {
                self.finish(cursor, true);
            }
        }
        Ok(QueryResponse {
            results,
            has_more,
            id: id.to_owned(),
            metadata,
        })
    }

    /// Whether the transaction wrote anything.
    pub fn has_writes(&self) -> bool {
        self.wrote
    }

    /// The read/write set, Fabric's `TxReadWriteSet` (namespaces, keys and metadata names in
    /// sorted order; range queries in the order they ran). Open iterators are recorded as
    /// closed where they stopped. Releases the state snapshot.
    pub fn into_results(mut self) -> TxReadWriteSet {
        let open: Vec<String> = self.cursors.keys().cloned().collect();
        for id in open {
            if let Some(cursor) = self.cursors.remove(&id) {
                self.finish(cursor, false);
            }
        }
        let ns_rwset = std::mem::take(&mut self.namespaces)
            .into_iter()
            .map(|(namespace, ns)| {
                let kv = KvrwSet {
                    reads: ns
                        .reads
                        .into_iter()
                        .map(|(key, v)| KvRead {
                            key,
                            version: v.map(kv_version),
                        })
                        .collect(),
                    range_queries_info: ns.range_queries,
                    writes: ns
                        .writes
                        .into_iter()
                        .map(|(key, value)| KvWrite {
                            key,
                            is_delete: value.is_none(),
                            value: value.unwrap_or_default(),
                        })
                        .collect(),
                    metadata_writes: ns
                        .metadata_writes
                        .into_iter()
                        .map(|(key, entries)| KvMetadataWrite {
                            key,
                            entries: metadata_entries(&entries),
                        })
                        .collect(),
                };
                NsReadWriteSet {
                    namespace,
                    rwset: kv.encode_to_vec().into(),
                    collection_hashed_rwset: Vec::new(),
                }
            })
            .collect();
        TxReadWriteSet {
            data_model: DataModel::Kv as i32,
            ns_rwset,
        }
    }
}
