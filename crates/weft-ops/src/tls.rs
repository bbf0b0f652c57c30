//! TLS handshake failures counted by listener and reason: a [`weft_tls::HandshakeObserver`]
//! over the `tls_handshake_failures_total` family. The reason is weft-tls' stable diagnosis
//! code (`client_cert_required`, `client_ca_untrusted`, `plaintext_to_tls_port`, ...).

use std::sync::Arc;

use weft_tls::{HandshakeError, HandshakeObserver};

use crate::metrics::{CounterVec, Registry};

/// The family's name.
pub const TLS_HANDSHAKE_FAILURES: &str = "tls_handshake_failures_total";

/// Register `tls_handshake_failures_total{listener,reason}`.
pub fn register(registry: &Registry) -> Arc<CounterVec> {
    registry.counter_vec(
        TLS_HANDSHAKE_FAILURES,
        "TLS handshakes refused or lost by a listener of this node, by listener and reason.",
        &["listener", "reason"],
    )
}

/// Counts one listener's failed handshakes.
#[derive(Debug)]
pub struct HandshakeFailures {
    listener: String,
    family: Arc<CounterVec>,
}

impl HandshakeFailures {
    /// An observer for `listener` (`peer`, `chaincode`, `orderer`, `admin`, `operations`).
    pub fn observer(family: &Arc<CounterVec>, listener: &str) -> Arc<dyn HandshakeObserver> {
        Arc::new(HandshakeFailures {
            listener: listener.to_owned(),
            family: family.clone(),
        })
    }
}

impl HandshakeObserver for HandshakeFailures {
    fn handshake_failed(&self, error: &HandshakeError) {
        self.family.with(&[&self.listener, error.code()]).inc();
    }
}
