//! The peer's metrics, with Fabric's names and labels where Fabric has them. Created once at
//! peer start ([`PeerMetrics::new`]) and shared with the endorser, the Gateway, the
//! chaincode service and the runtime.
//!
//! The committer is a free function over a channel, which this node does not own, so the
//! ledger families are process-wide ([`ledger`]) and every peer's registry includes them. A
//! process runs one peer in production, so they are the node's; peers sharing a test
//! process share them.

use std::sync::{Arc, OnceLock};

use crate::metrics::{Counter, CounterVec, HistogramVec, Registry, DEFAULT_BUCKETS};

/// Every family the peer updates itself (values read at scrape time, such as
/// `ledger_blockchain_height` and `chaincode_registrations_refused_total`, are registered by
/// the node with [`Registry::gauge_fn`] / [`Registry::counter_fn`]).
#[derive(Debug)]
pub struct PeerMetrics {
    pub registry: Arc<Registry>,
    /// `endorser_proposals_received`: proposals received by the endorser.
    pub proposals_received: Arc<Counter>,
    /// `endorser_successful_proposals`: proposals endorsed (status 200).
    pub successful_proposals: Arc<Counter>,
    /// `endorser_proposal_validation_failures`: proposals refused before chaincode ran
    /// (malformed, bad signature, unknown creator, unknown channel).
    pub proposal_validation_failures: Arc<Counter>,
    /// `endorser_endorsement_failures{channel,chaincode,chaincodeerror}`: proposals that
    /// reached a chaincode and were not endorsed; `chaincodeerror` is `true` when the
    /// chaincode itself answered with an error status.
    pub endorsement_failures: Arc<CounterVec>,
    /// `endorser_proposal_duration{channel,chaincode,success}` (seconds).
    pub proposal_duration: Arc<HistogramVec>,
    /// `gateway_requests_received{method}`.
    pub gateway_requests_received: Arc<CounterVec>,
    /// `gateway_requests_completed{method,success}`.
    pub gateway_requests_completed: Arc<CounterVec>,
    /// `gateway_requests_duration{method,success}` (seconds).
    pub gateway_requests_duration: Arc<HistogramVec>,
    /// `chaincode_launch_duration{chaincode,success}` (seconds).
    pub launch_duration: Arc<HistogramVec>,
    /// `chaincode_launch_failures{chaincode}`.
    pub launch_failures: Arc<CounterVec>,
    /// `tls_handshake_failures_total{listener,reason}` (listeners `peer`, `chaincode`,
    /// `operations`).
    pub tls_handshake_failures: Arc<CounterVec>,
}

/// Label value of a boolean.
pub fn flag(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

impl PeerMetrics {
    /// Register the peer's families in `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        let r = &registry;
        PeerMetrics {
            proposals_received: r.counter(
                "endorser_proposals_received",
                "The number of proposals received.",
            ),
            successful_proposals: r.counter(
                "endorser_successful_proposals",
                "The number of successful proposals.",
            ),
            proposal_validation_failures: r.counter(
                "endorser_proposal_validation_failures",
                "The number of proposals that have failed initial validation.",
            ),
            endorsement_failures: r.counter_vec(
                "endorser_endorsement_failures",
                "The number of failed endorsements.",
                &["channel", "chaincode", "chaincodeerror"],
            ),
            proposal_duration: r.histogram_vec(
                "endorser_proposal_duration",
                "The time to complete a proposal, in seconds.",
                &["channel", "chaincode", "success"],
                DEFAULT_BUCKETS,
            ),
            gateway_requests_received: r.counter_vec(
                "gateway_requests_received",
                "The number of requests received by the Gateway.",
                &["method"],
            ),
            gateway_requests_completed: r.counter_vec(
                "gateway_requests_completed",
                "The number of requests completed by the Gateway.",
                &["method", "success"],
            ),
            gateway_requests_duration: r.histogram_vec(
                "gateway_requests_duration",
                "The time to complete a Gateway request, in seconds.",
                &["method", "success"],
                DEFAULT_BUCKETS,
            ),
            launch_duration: r.histogram_vec(
                "chaincode_launch_duration",
                "The time to launch a chaincode, in seconds.",
                &["chaincode", "success"],
                &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0],
            ),
            launch_failures: r.counter_vec(
                "chaincode_launch_failures",
                "The number of chaincode launches that have failed.",
                &["chaincode"],
            ),
            tls_handshake_failures: crate::tls::register(r),
            registry,
        }
    }

    /// Expose the process-wide ledger families after the node's own (call once, after
    /// registering the node's scrape-time families).
    pub fn include_ledger(&self) {
        self.registry.include(ledger().registry.clone());
    }

    /// An observer counting failed handshakes of `listener`.
    pub fn tls_observer(&self, listener: &str) -> Arc<dyn weft_tls::HandshakeObserver> {
        crate::tls::HandshakeFailures::observer(&self.tls_handshake_failures, listener)
    }
}

/// The committer's families (process-wide; see the module documentation).
#[derive(Debug)]
pub struct LedgerMetrics {
    pub registry: Arc<Registry>,
    /// `ledger_block_processing_time{channel}`: validation and commit of one block (seconds).
    pub block_processing_time: Arc<HistogramVec>,
    /// `ledger_transaction_count{channel,transaction_type,chaincode,validation_code}`.
    pub transaction_count: Arc<CounterVec>,
}

static LEDGER: OnceLock<LedgerMetrics> = OnceLock::new();

/// The process-wide ledger families.
pub fn ledger() -> &'static LedgerMetrics {
    LEDGER.get_or_init(|| {
        let registry = Arc::new(Registry::new());
        LedgerMetrics {
            block_processing_time: registry.histogram_vec(
                "ledger_block_processing_time",
                "The time to validate and commit a block, in seconds.",
                &["channel"],
                DEFAULT_BUCKETS,
            ),
            transaction_count: registry.counter_vec(
                "ledger_transaction_count",
                "The number of transactions committed, by type, chaincode and validation code.",
                &[
                    "channel",
                    "transaction_type",
                    "chaincode",
                    "validation_code",
                ],
            ),
            registry,
        }
    })
}
