//! The process's log output and its run-time level (`/logspec`).
//!
//! [`init`] installs the global `tracing` subscriber: human-readable lines on stderr (ANSI
//! colours only on a terminal) filtered by a reloadable `EnvFilter`. The handle it returns is
//! also kept process-wide ([`handle`]), because there is one subscriber per process; each
//! node's operations service changes that filter.
//!
//! Specs: `tracing` filter syntax (`info`, `info,weft_peer=debug`) or Fabric's
//! (`[logger[,logger...]=]level[:...]`, e.g. `weft_peer=debug:info`), which is translated.
//! Fabric's `warning` is `warn`; `fatal`, `panic` and `critical` are `error`.

use std::sync::{Arc, Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// Changes and reports the log filter of a running process.
pub trait LogControl: Send + Sync + std::fmt::Debug {
    /// The spec in force, as it was set.
    fn spec(&self) -> String;
    /// Parse and activate `spec`; `Err` says what is wrong with it and changes nothing.
    fn set_spec(&self, spec: &str) -> Result<(), String>;
}

/// The handle [`init`] returns.
#[derive(Debug, Clone)]
pub struct LogHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    spec: Arc<Mutex<String>>,
}

static HANDLE: OnceLock<LogHandle> = OnceLock::new();

/// The handle of the subscriber [`init`] installed, if it was called in this process.
pub fn handle() -> Option<LogHandle> {
    HANDLE.get().cloned()
}

fn level(l: &str) -> Result<&'static str, String> {
    match l.trim().to_ascii_lowercase().as_str() {
        "trace" => Ok("trace"),
        "debug" => Ok("debug"),
        "info" => Ok("info"),
        "warn" | "warning" => Ok("warn"),
        "error" | "fatal" | "panic" | "critical" | "dpanic" => Ok("error"),
        "off" => Ok("off"),
        other => Err(format!(
            "unknown log level {other:?} (expected trace, debug, info, warn, error or off)"
        )),
    }
}

/// Fabric's spec syntax as a `tracing` filter: `a,b=debug:info` -> `info,a=debug,b=debug`.
fn from_fabric(spec: &str) -> Result<String, String> {
    let mut default = None;
    let mut directives = Vec::new();
    for part in spec.split(':').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((loggers, lvl)) => {
                let lvl = level(lvl)?;
                for logger in loggers.split(',').map(str::trim).filter(|l| !l.is_empty()) {
                    directives.push(format!("{}={lvl}", logger.replace('.', "::")));
                }
            }
            None => default = Some(level(part)?),
        }
    }
    let mut out = vec![default.unwrap_or("info").to_owned()];
    out.extend(directives);
    Ok(out.join(","))
}

/// Parse a spec in either syntax (see the module documentation).
pub fn parse_spec(spec: &str) -> Result<EnvFilter, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("the log spec is empty; send e.g. {\"spec\":\"info\"}".into());
    }
    // A bare word is a target at every level for `tracing`, which is never what a typo
    // ("degub") meant: a directive without `=` must be a level.
    for d in spec
        .split([',', ':'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        if !d.contains('=') && !d.contains('[') {
            level(d)?;
        }
    }
    let direct = if spec.contains(':') {
        None
    } else {
        EnvFilter::builder()
            .with_regex(false)
            .parse(spec)
            .ok()
            .map(|f| (f, spec.to_owned()))
    };
    let (filter, _) = match direct {
        Some(f) => f,
        None => {
            let translated = from_fabric(spec)?;
            let f = EnvFilter::builder()
                .with_regex(false)
                .parse(&translated)
                .map_err(|e| format!("invalid log spec {spec:?}: {e}"))?;
            (f, translated)
        }
    };
    Ok(filter)
}

/// Install the process's subscriber with `default_spec` (falling back to `info`, with a
/// warning on stderr, when it does not parse). A second call returns the first handle.
pub fn init(default_spec: &str) -> LogHandle {
    if let Some(h) = HANDLE.get() {
        return h.clone();
    }
    let (filter, spec) = match parse_spec(default_spec) {
        Ok(f) => (f, default_spec.trim().to_owned()),
        Err(e) => {
            eprintln!("warning: ignoring log filter '{default_spec}': {e}");
            (EnvFilter::new("info"), "info".to_owned())
        }
    };
    let (layer, filter_handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if let Err(e) = tracing_subscriber::registry()
        .with(layer)
        .with(fmt)
        .try_init()
    {
        eprintln!(
            "warning: a log subscriber was already installed; /logspec will not change it ({e})"
        );
    }
    let handle = LogHandle {
        filter: filter_handle,
        spec: Arc::new(Mutex::new(spec)),
    };
    HANDLE.get_or_init(|| handle).clone()
}

impl LogControl for LogHandle {
    fn spec(&self) -> String {
        match self.spec.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_spec(&self, spec: &str) -> Result<(), String> {
        let filter = parse_spec(spec)?;
        self.filter
            .reload(filter)
            .map_err(|e| format!("cannot change the log filter: {e}"))?;
        match self.spec.lock() {
            Ok(mut s) => *s = spec.trim().to_owned(),
            Err(p) => *p.into_inner() = spec.trim().to_owned(),
        }
        tracing::info!(spec = spec.trim(), "log spec changed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn both_syntaxes_parse_and_bad_ones_explain() {
        assert!(parse_spec("info").is_ok());
        assert!(parse_spec("info,weft_peer=debug").is_ok());
        assert_eq!(
            from_fabric("gossip,ledger=debug:warning").unwrap(),
            "warn,gossip=debug,ledger=debug"
        );
        assert!(parse_spec("weft_peer=debug:info").is_ok());
        let e = parse_spec("verbose:info").unwrap_err();
        assert!(e.contains("unknown log level"), "{e}");
        let e = parse_spec("x=loud").unwrap_err();
        assert!(e.contains("loud"), "{e}");
        assert!(parse_spec("  ").unwrap_err().contains("empty"));
        assert!(parse_spec("degub")
            .unwrap_err()
            .contains("unknown log level"));
    }
}
