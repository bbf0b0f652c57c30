//! Health checks behind `GET /healthz`, as Fabric's operations service answers it:
//! 200 `{"status":"OK","time":...}` when every registered check passes, else 503
//! `{"status":"Service Unavailable","time":...,"failed_checks":[{"component","reason"}]}`.
//!
//! A check must be cheap and true: it looks at state the node already keeps (a ledger that
//! answers, a deliver client that is connected), never dials out.

use std::sync::{Arc, RwLock};

use serde::Serialize;

/// One component's health.
pub trait HealthCheck: Send + Sync {
    /// The component's name in `failed_checks` (e.g. `ledger:mychannel`).
    fn component(&self) -> &str;
    /// `Err(reason)` when the component is not healthy.
    fn check(&self) -> Result<(), String>;
}

/// A check made of a name and a closure.
pub struct FnCheck<F> {
    component: String,
    check: F,
}

impl<F> std::fmt::Debug for FnCheck<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnCheck")
            .field("component", &self.component)
            .finish()
    }
}

impl<F: Fn() -> Result<(), String> + Send + Sync> HealthCheck for FnCheck<F> {
    fn component(&self) -> &str {
        &self.component
    }

    fn check(&self) -> Result<(), String> {
        (self.check)()
    }
}

/// A check from a closure.
pub fn check_fn<F: Fn() -> Result<(), String> + Send + Sync + 'static>(
    component: impl Into<String>,
    check: F,
) -> Arc<dyn HealthCheck> {
    Arc::new(FnCheck {
        component: component.into(),
        check,
    })
}

/// A failed check in the `/healthz` answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FailedCheck {
    pub component: String,
    pub reason: String,
}

/// The `/healthz` answer.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct HealthStatus {
    pub status: String,
    pub time: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<FailedCheck>,
}

/// `status` when healthy.
pub const OK: &str = "OK";
/// `status` when a check failed.
pub const UNAVAILABLE: &str = "Service Unavailable";

/// The registered checks.
#[derive(Default)]
pub struct Health {
    checks: RwLock<Vec<Arc<dyn HealthCheck>>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .checks
            .read()
            .map(|c| c.iter().map(|c| c.component().to_owned()).collect())
            .unwrap_or_default();
        f.debug_struct("Health").field("checks", &names).finish()
    }
}

impl Health {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a check (a component registered twice is checked twice).
    pub fn register(&self, check: Arc<dyn HealthCheck>) {
        match self.checks.write() {
            Ok(mut c) => c.push(check),
            Err(p) => p.into_inner().push(check),
        }
    }

    /// Remove the checks of `component` (e.g. a channel that was left).
    pub fn unregister(&self, component: &str) {
        match self.checks.write() {
            Ok(mut c) => c.retain(|x| x.component() != component),
            Err(p) => p.into_inner().retain(|x| x.component() != component),
        }
    }

    /// Run every check; `time` is the RFC 3339 time of the answer.
    pub fn run(&self, time: String) -> HealthStatus {
        let checks: Vec<Arc<dyn HealthCheck>> = match self.checks.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let failed_checks: Vec<FailedCheck> = checks
            .iter()
            .filter_map(|c| {
                c.check().err().map(|reason| FailedCheck {
                    component: c.component().to_owned(),
                    reason,
                })
            })
            .collect();
        HealthStatus {
            status: if failed_checks.is_empty() {
                OK
            } else {
                UNAVAILABLE
            }
            .to_owned(),
            time,
            failed_checks,
        }
    }
}
