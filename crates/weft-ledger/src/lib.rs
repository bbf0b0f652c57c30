//! The weft ledger's storage: a versioned world-state database on RocksDB with consistent
//! read views.
//!
//! - [`statedb`]: namespaced keys with values, metadata and versions (block, tx); atomic
//!   updates with a savepoint; read views that see one committed state for as long as they
//!   live (simulations hold one; commits wait for them, as in Fabric).
//! - [`block`]: block construction, header and data hashes, metadata entries and the bytes
//!   an orderer signs, as Fabric defines them.
//! - [`blockstore`]: the block store: append-only block files with CRC-checked records and a
//!   RocksDB index (block number, tx id), recovered after a crash at any point.
//! - [`mvcc`]: MVCC and phantom-read validation of a block's read/write sets, and the state
//!   and history updates of its valid transactions.

pub mod block;
pub mod blockstore;
pub mod mvcc;
mod rocks;
pub mod statedb;

pub use blockstore::{BlockStore, BlockStoreConfig, BlockStoreError};
pub use statedb::{
    HistoryEntry, ReadView, StateDb, StateError, UpdateBatch, Version, VersionedValue,
};
