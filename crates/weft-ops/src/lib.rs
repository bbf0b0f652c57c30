//! The operations service of weft nodes: what Fabric's peer and orderer serve on their
//! operations listener (`operations.listenAddress`, `Operations.ListenAddress`).
//!
//! - [`routes`]: `/healthz`, `/metrics` (Prometheus text), `/logspec` (run-time log level),
//!   `/version`, as a pure function of a request;
//! - [`server`]: the HTTP(S) listener (hyper; TLS and client certificates through weft-tls);
//! - [`metrics`]: a small registry with Prometheus' text format and Fabric's metric names;
//!   [`peer::PeerMetrics`] and [`orderer::OrdererMetrics`] are the families each node kind
//!   updates, created once at node start and shared (`Arc`) with the components that count;
//! - [`health`]: the [`health::HealthCheck`] trait and the `/healthz` answer;
//! - [`logging`]: the process's `tracing` subscriber with a reloadable filter;
//! - [`tls`]: TLS handshake failures by listener and reason (a weft-tls observer).
//!
//! See docs/OPERATIONS.md for the endpoints, the settings and every metric.

pub mod health;
pub mod logging;
pub mod metrics;
pub mod orderer;
pub mod peer;
pub mod routes;
pub mod server;
pub mod tls;

pub use health::{check_fn, Health, HealthCheck};
pub use metrics::Registry;
pub use routes::{route, Ops, VersionInfo};
pub use server::{OpsError, OpsServer, OpsTls, TlsKeys};

/// The value of `metrics.provider` / `Metrics.Provider` as weft reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Prometheus,
    Disabled,
}

/// Read `metrics.provider` (`setting` names it in messages): `prometheus` or `disabled`;
/// `statsd` is not supported (metrics are then disabled, with a warning, as Fabric does for
/// providers it does not know); anything else is an error.
pub fn provider(value: &str, setting: &str) -> Result<Provider, OpsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "prometheus" => Ok(Provider::Prometheus),
        "disabled" | "" => Ok(Provider::Disabled),
        "statsd" => {
            tracing::warn!(
                "{setting} is statsd, which weft does not support: metrics are disabled; set it \
                 to prometheus and scrape /metrics on the operations listener"
            );
            Ok(Provider::Disabled)
        }
        other => Err(OpsError(format!(
            "{setting}: unknown metrics provider {other:?}; use prometheus or disabled"
        ))),
    }
}
