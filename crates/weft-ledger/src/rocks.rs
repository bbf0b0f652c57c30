//! RocksDB options shared by the ledger's databases.

use rocksdb::{BlockBasedOptions, Options};

/// Options for databases read mostly by point lookups that often miss: the endorser's
/// duplicate transaction id check (a lookup of a new id in the block index) and chaincode
/// reads of keys not written yet (`AssetExists` before `CreateAsset`).
///
/// - Whole-key bloom filters in table files (10 bits per key, about 1% false positives), so a
///   miss does not read a data block of every level.
/// - A bloom filter over the memtable as well (2% of its size), so a miss skips the
///   memtable's skip-list search; under load that search was several percent of a peer's
///   CPU.
///
/// Range scans (prefix iteration) are unaffected: whole-key filters only serve point lookups.
pub(crate) fn point_lookup_options() -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(true);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut opts = Options::default();
    opts.set_block_based_table_factory(&table);
    opts.set_memtable_whole_key_filtering(true);
    opts.set_memtable_prefix_bloom_ratio(0.02);
    opts
}
