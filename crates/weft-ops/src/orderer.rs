//! The orderer's metrics, with Fabric's names and labels.
//!
//! Broadcast, Deliver and the block writer are reached by no per-node object the orderer
//! could hand its metrics to (they are free functions over the registrar, which another
//! part of the node owns), so their families are process-wide ([`global`]); each node's
//! registry includes them. A process runs one orderer in production, so the numbers are the
//! node's; several orderers in one test process share them. The node's own families (TLS
//! handshake failures, ledger heights) are per node ([`OrdererNodeMetrics`]).

use std::sync::{Arc, OnceLock};

use crate::metrics::{CounterVec, HistogramVec, Registry, DEFAULT_BUCKETS};

/// Every family the orderer updates itself (`ledger_blockchain_height` is read at scrape
/// time; see the node).
#[derive(Debug)]
pub struct OrdererMetrics {
    pub registry: Arc<Registry>,
    /// `broadcast_processed_count{channel,type,status}`: envelopes answered by Broadcast;
    /// `status` is the `common.Status` name (`SUCCESS`, `FORBIDDEN`, ...).
    pub broadcast_processed_count: Arc<CounterVec>,
    /// `broadcast_validate_duration{channel,type,status}`: checks of one envelope, and its
    /// hand-off to consensus (seconds).
    pub broadcast_validate_duration: Arc<HistogramVec>,
    /// `deliver_requests_received{channel,filtered,data_type}`.
    pub deliver_requests_received: Arc<CounterVec>,
    /// `deliver_requests_completed{channel,filtered,data_type,success}`.
    pub deliver_requests_completed: Arc<CounterVec>,
    /// `deliver_blocks_sent{channel,filtered,data_type}`.
    pub deliver_blocks_sent: Arc<CounterVec>,
    /// `blockcutter_block_fill_duration{channel}`: from a block's first envelope entering
    /// consensus to the block being written (seconds).
    pub block_fill_duration: Arc<HistogramVec>,
}

static GLOBAL: OnceLock<OrdererMetrics> = OnceLock::new();

/// The process-wide orderer families (see the module documentation).
pub fn global() -> &'static OrdererMetrics {
    GLOBAL.get_or_init(|| OrdererMetrics::new(Arc::new(Registry::new())))
}

/// One orderer node's own families.
#[derive(Debug)]
pub struct OrdererNodeMetrics {
    /// The node's registry: its own families, then the process-wide ones.
    pub registry: Arc<Registry>,
    /// `tls_handshake_failures_total{listener,reason}` (listeners `orderer`, `admin`,
    /// `operations`).
    pub tls_handshake_failures: Arc<CounterVec>,
}

impl OrdererNodeMetrics {
    pub fn new() -> Self {
        let registry = Arc::new(Registry::new());
        let tls_handshake_failures = crate::tls::register(&registry);
        OrdererNodeMetrics {
            registry,
            tls_handshake_failures,
        }
    }

    /// Expose the process-wide families after the node's own (call once, after registering
    /// the node's scrape-time families).
    pub fn include_global(&self) {
        self.registry.include(global().registry.clone());
    }

    /// An observer counting failed handshakes of `listener`.
    pub fn tls_observer(&self, listener: &str) -> Arc<dyn weft_tls::HandshakeObserver> {
        crate::tls::HandshakeFailures::observer(&self.tls_handshake_failures, listener)
    }
}

impl Default for OrdererNodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl OrdererMetrics {
    /// Register the orderer's families in `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        let r = &registry;
        OrdererMetrics {
            broadcast_processed_count: r.counter_vec(
                "broadcast_processed_count",
                "The number of transactions processed.",
                &["channel", "type", "status"],
            ),
            broadcast_validate_duration: r.histogram_vec(
                "broadcast_validate_duration",
                "The time to validate a transaction, in seconds.",
                &["channel", "type", "status"],
                DEFAULT_BUCKETS,
            ),
            deliver_requests_received: r.counter_vec(
                "deliver_requests_received",
                "The number of deliver requests that have been received.",
                &["channel", "filtered", "data_type"],
            ),
            deliver_requests_completed: r.counter_vec(
                "deliver_requests_completed",
                "The number of deliver requests that have been completed.",
                &["channel", "filtered", "data_type", "success"],
            ),
            deliver_blocks_sent: r.counter_vec(
                "deliver_blocks_sent",
                "The number of blocks sent by the deliver service.",
                &["channel", "filtered", "data_type"],
            ),
            block_fill_duration: r.histogram_vec(
                "blockcutter_block_fill_duration",
                "The time from first transaction enqueuing to the block being cut, in seconds.",
                &["channel"],
                DEFAULT_BUCKETS,
            ),
            registry,
        }
    }
}
