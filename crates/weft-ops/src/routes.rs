//! The operations API as a pure function of a request ([`route`]), as Fabric serves it:
//!
//! | request | answer |
//! |---|---|
//! | `GET /healthz` | 200 `{"status":"OK","time"}` or 503 with `failed_checks` |
//! | `GET /metrics` | 200 Prometheus text (404 with `metrics.provider` other than prometheus) |
//! | `GET /logspec` | 200 `{"spec":"info"}` |
//! | `PUT /logspec` `{"spec":"..."}` | 204; 400 `{"error"}` for a bad spec |
//! | `GET /version` | 200 `{"CommitSHA","Version"}` |
//!
//! With operations TLS on, `/metrics` and `/logspec` need a verified client certificate
//! (401 otherwise), while `/healthz` and `/version` do not: Fabric's `RequireCert` middleware
//! guards exactly those two. With `clientAuthRequired` the TLS handshake itself already
//! demands a certificate for every path. Other paths are 404, other methods 405 with `Allow`.

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::health::{Health, OK};
use crate::logging::LogControl;
use crate::metrics::{Registry, TEXT_CONTENT_TYPE};

/// `GET /version`'s answer (Fabric's field names).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionInfo {
    #[serde(rename = "CommitSHA")]
    pub commit_sha: String,
    #[serde(rename = "Version")]
    pub version: String,
}

impl Default for VersionInfo {
    fn default() -> Self {
        VersionInfo {
            commit_sha: option_env!("WEFT_COMMIT_SHA")
                .unwrap_or("development")
                .to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// `/logspec` bodies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogSpec {
    pub spec: String,
}

/// What the operations API serves.
#[derive(Debug)]
pub struct Ops {
    pub registry: Arc<Registry>,
    pub health: Arc<Health>,
    /// The process's log filter; `None`: `/logspec` answers 503.
    pub log: Option<Arc<dyn LogControl>>,
    pub version: VersionInfo,
    /// `metrics.provider` is `prometheus`.
    pub metrics_enabled: bool,
    /// Operations TLS is on: `/metrics` and `/logspec` need a verified client certificate.
    pub tls: bool,
    /// The setting that lists trusted client CAs, named in 401 answers.
    pub client_roots_setting: String,
}

impl Ops {
    /// Plain HTTP, metrics on, the process's log handle if [`crate::logging::init`] ran.
    pub fn new(registry: Arc<Registry>, health: Arc<Health>) -> Self {
        Ops {
            registry,
            health,
            log: crate::logging::handle().map(|h| Arc::new(h) as Arc<dyn LogControl>),
            version: VersionInfo::default(),
            metrics_enabled: true,
            tls: false,
            client_roots_setting: "the operations client root CAs".into(),
        }
    }
}

/// One request, as the route function sees it.
#[derive(Debug, Clone, Copy)]
pub struct Req<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub body: &'a [u8],
    /// The client presented a certificate that verified against the client CAs.
    pub client_verified: bool,
}

/// An answer before it becomes HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub allow: Option<&'static str>,
}

const JSON: &str = "application/json";

impl Answer {
    fn json(status: StatusCode, body: &impl Serialize) -> Answer {
        Answer {
            status,
            content_type: JSON,
            body: serde_json::to_vec(body).unwrap_or_default(),
            allow: None,
        }
    }

    fn error(status: StatusCode, msg: impl Into<String>) -> Answer {
        Answer::json(status, &serde_json::json!({ "error": msg.into() }))
    }

    fn not_allowed(method: &Method, allow: &'static str) -> Answer {
        Answer {
            allow: Some(allow),
            ..Answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("invalid request method: {method}; allowed: {allow}"),
            )
        }
    }

    /// The body as text (for tests and logs).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Answer one request (see the module documentation).
pub fn route(ops: &Ops, req: Req<'_>) -> Answer {
    let path = match req.path.trim_end_matches('/') {
        "" => "/",
        p => p,
    };
    let secure = matches!(path, "/metrics" | "/logspec");
    if !matches!(path, "/healthz" | "/version" | "/metrics" | "/logspec")
        || (path == "/metrics" && !ops.metrics_enabled)
    {
        let why = if path == "/metrics" {
            "metrics are not served: metrics.provider (Metrics.Provider) is not prometheus"
                .to_owned()
        } else {
            format!("no such resource: {path} (served: /healthz, /metrics, /logspec, /version)")
        };
        return Answer::error(StatusCode::NOT_FOUND, why);
    }
    if secure && ops.tls && !req.client_verified {
        return Answer::error(
            StatusCode::UNAUTHORIZED,
            format!(
                "{path} requires a TLS client certificate issued by a CA in {}; connect with a \
                 client certificate (curl --cert/--key) or read /healthz, which needs none",
                ops.client_roots_setting
            ),
        );
    }
    match (path, req.method) {
        ("/healthz", &Method::GET) => {
            let status = ops.health.run(now_rfc3339());
            let code = if status.status == OK {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            Answer::json(code, &status)
        }
        ("/version", &Method::GET) => Answer::json(StatusCode::OK, &ops.version),
        ("/metrics", &Method::GET) => Answer {
            status: StatusCode::OK,
            content_type: TEXT_CONTENT_TYPE,
            body: ops.registry.encode().into_bytes(),
            allow: None,
        },
        ("/logspec", &Method::GET) => match &ops.log {
            Some(log) => Answer::json(StatusCode::OK, &LogSpec { spec: log.spec() }),
            None => no_log_control(),
        },
        ("/logspec", &Method::PUT) => {
            let spec: LogSpec = match serde_json::from_slice(req.body) {
                Ok(s) => s,
                Err(e) => {
                    return Answer::error(
                        StatusCode::BAD_REQUEST,
                        format!("the body must be JSON {{\"spec\":\"<log spec>\"}}: {e}"),
                    )
                }
            };
            match &ops.log {
                Some(log) => match log.set_spec(&spec.spec) {
                    Ok(()) => Answer {
                        status: StatusCode::NO_CONTENT,
                        content_type: JSON,
                        body: Vec::new(),
                        allow: None,
                    },
                    Err(e) => Answer::error(StatusCode::BAD_REQUEST, e),
                },
                None => no_log_control(),
            }
        }
        ("/logspec", m) => Answer::not_allowed(m, "GET, PUT"),
        (_, m) => Answer::not_allowed(m, "GET"),
    }
}

fn no_log_control() -> Answer {
    Answer::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "this process's logging was not set up through weft_ops::logging::init, so its log \
         spec cannot be read or changed here",
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::health::check_fn;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct FakeLog(Mutex<String>);

    impl LogControl for FakeLog {
        fn spec(&self) -> String {
            self.0.lock().unwrap().clone()
        }
        fn set_spec(&self, spec: &str) -> Result<(), String> {
            crate::logging::parse_spec(spec)?;
            *self.0.lock().unwrap() = spec.to_owned();
            Ok(())
        }
    }

    fn ops() -> Ops {
        let mut o = Ops::new(Arc::new(Registry::new()), Arc::new(Health::new()));
        o.log = Some(Arc::new(FakeLog(Mutex::new("info".into()))));
        o
    }

    fn get(ops: &Ops, path: &str) -> Answer {
        call(ops, &Method::GET, path, b"", false)
    }

    fn call(ops: &Ops, method: &Method, path: &str, body: &[u8], verified: bool) -> Answer {
        route(
            ops,
            Req {
                method,
                path,
                body,
                client_verified: verified,
            },
        )
    }

    #[test]
    fn healthz_ok_and_failing() {
        let o = ops();
        let a = get(&o, "/healthz");
        assert_eq!(a.status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["status"], "OK");
        assert!(v["time"].as_str().unwrap().contains('T'));
        assert!(v.get("failed_checks").is_none());
        o.health.register(check_fn("ledger:mychannel", || Ok(())));
        o.health.register(check_fn("deliver:mychannel", || {
            Err("not connected to any orderer".into())
        }));
        let a = get(&o, "/healthz");
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
        let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(v["status"], "Service Unavailable");
        assert_eq!(v["failed_checks"][0]["component"], "deliver:mychannel");
        assert_eq!(
            v["failed_checks"][0]["reason"],
            "not connected to any orderer"
        );
        assert_eq!(v["failed_checks"].as_array().unwrap().len(), 1);
        o.health.unregister("deliver:mychannel");
        assert_eq!(get(&o, "/healthz").status, StatusCode::OK);
    }

    #[test]
    fn logspec_get_put_and_bad_specs() {
        let o = ops();
        assert_eq!(get(&o, "/logspec").text(), r#"{"spec":"info"}"#);
        let a = call(&o, &Method::PUT, "/logspec", br#"{"spec":"debug"}"#, false);
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert_eq!(get(&o, "/logspec").text(), r#"{"spec":"debug"}"#);
        let a = call(&o, &Method::PUT, "/logspec", br#"{"spec":"x=loud"}"#, false);
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.text().contains("\"error\""), "{}", a.text());
        let a = call(&o, &Method::PUT, "/logspec", b"debug", false);
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.text().contains("must be JSON"), "{}", a.text());
        assert_eq!(get(&o, "/logspec").text(), r#"{"spec":"debug"}"#);
    }

    #[test]
    fn unknown_paths_and_wrong_methods() {
        let o = ops();
        let a = get(&o, "/nope");
        assert_eq!(a.status, StatusCode::NOT_FOUND);
        assert!(a.text().contains("/healthz"));
        let a = call(&o, &Method::POST, "/healthz", b"", false);
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(a.allow, Some("GET"));
        let a = call(&o, &Method::DELETE, "/logspec", b"", false);
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(a.allow, Some("GET, PUT"));
    }

    #[test]
    fn metrics_text_and_version() {
        let o = ops();
        o.registry
            .counter("endorser_proposals_received", "Proposals received.")
            .inc();
        let a = get(&o, "/metrics");
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.content_type, TEXT_CONTENT_TYPE);
        assert!(
            a.text().contains("endorser_proposals_received 1\n"),
            "{}",
            a.text()
        );
        let v: VersionInfo = serde_json::from_slice(&get(&o, "/version").body).unwrap();
        assert_eq!(v.version, env!("CARGO_PKG_VERSION"));
        let mut off = ops();
        off.metrics_enabled = false;
        assert_eq!(get(&off, "/metrics").status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn with_tls_metrics_and_logspec_need_a_verified_client() {
        let mut o = ops();
        o.tls = true;
        o.client_roots_setting = "operations.tls.clientRootCAs.files".into();
        let a = get(&o, "/metrics");
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert!(
            a.text().contains("operations.tls.clientRootCAs.files"),
            "{}",
            a.text()
        );
        assert_eq!(get(&o, "/logspec").status, StatusCode::UNAUTHORIZED);
        assert_eq!(get(&o, "/healthz").status, StatusCode::OK);
        assert_eq!(get(&o, "/version").status, StatusCode::OK);
        assert_eq!(
            call(&o, &Method::GET, "/metrics", b"", true).status,
            StatusCode::OK
        );
    }
}
