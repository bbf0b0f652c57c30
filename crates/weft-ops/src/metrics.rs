//! A small metrics registry with Prometheus' text exposition format (version 0.0.4).
//!
//! Why not the `prometheus-client` crate: its encoder writes OpenMetrics and appends `_total`
//! to every counter, so Fabric's metric names (`endorser_proposals_received`,
//! `ledger_transaction_count`, `broadcast_processed_count`, ...) could not be reproduced, and
//! dashboards and alerts written for Fabric would not find them. Fabric's operations service
//! exposes them under exactly those names (client_golang, text format 0.0.4); so does this.
//!
//! Metrics are families: a name, a help text, label names, and one child per distinct label
//! values, created on first use ([`CounterVec::with`]). Children are atomics, cheap to update
//! from any thread; hold on to a child (`Arc`) on hot paths. Values that already live
//! elsewhere (ledger heights, refusal counters) are read at scrape time through callbacks
//! ([`Registry::gauge_fn`], [`Registry::counter_fn`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Prometheus' default histogram buckets (seconds), as Fabric uses them.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The content type of [`Registry::encode`]'s output.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn inc_by(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Observations counted into cumulative buckets, with their sum and count.
#[derive(Debug)]
pub struct Histogram {
    bounds: Arc<[f64]>,
    buckets: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        Histogram {
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum: AtomicU64::new(0f64.to_bits()),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((f64::from_bits(s) + v).to_bits())
            });
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Observe a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

/// What a family's children are.
trait Child: Send + Sync + std::fmt::Debug {
    fn encode(&self, out: &mut String, name: &str, labels: &str);
}

impl Child for Counter {
    fn encode(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{labels} {}", self.get());
    }
}

impl Child for Gauge {
    fn encode(&self, out: &mut String, name: &str, labels: &str) {
        let _ = writeln!(out, "{name}{labels} {}", number(self.get()));
    }
}

impl Child for Histogram {
    fn encode(&self, out: &mut String, name: &str, labels: &str) {
        // `labels` is `{a="b"}` or empty; `le` joins the others.
        let inner = labels.trim_start_matches('{').trim_end_matches('}');
        let sep = if inner.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, n) in self.bounds.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{inner}{sep}le=\"{}\"}} {cumulative}",
                number(*bound)
            );
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{inner}{sep}le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum{labels} {}", number(self.sum()));
        let _ = writeln!(out, "{name}_count{labels} {count}");
    }
}

/// A number as Prometheus writes it.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn label_text(names: &[&'static str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// One metric family with children of type `M`.
#[derive(Debug)]
pub struct Family<M> {
    name: String,
    help: String,
    kind: &'static str,
    labels: Vec<&'static str>,
    children: Mutex<BTreeMap<Vec<String>, Arc<M>>>,
    make: fn(&Family<M>) -> M,
    bounds: Arc<[f64]>,
}

/// A counter family.
pub type CounterVec = Family<Counter>;
/// A gauge family.
pub type GaugeVec = Family<Gauge>;
/// A histogram family.
pub type HistogramVec = Family<Histogram>;

impl<M> Family<M> {
    /// The child for these label values (in the order of the family's label names; missing
    /// values are empty, extra ones ignored).
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        let n = self.labels.len();
        let value = |i: usize| values.get(i).copied().unwrap_or("");
        let mut children = match self.children.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        // Found without building a key: this runs on every request, and a family has few
        // children.
        if let Some((_, c)) = children
            .iter()
            .find(|(k, _)| k.iter().enumerate().all(|(i, v)| v == value(i)))
        {
            return c.clone();
        }
        let key: Vec<String> = (0..n).map(|i| value(i).to_owned()).collect();
        let child = Arc::new((self.make)(self));
        children.insert(key, child.clone());
        child
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

trait Encode: Send + Sync + std::fmt::Debug {
    fn encode(&self, out: &mut String);
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

impl<M: Child> Encode for Family<M> {
    fn encode(&self, out: &mut String) {
        let children: Vec<(Vec<String>, Arc<M>)> = match self.children.lock() {
            Ok(c) => c.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(p) => p
                .into_inner()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        if children.is_empty() {
            return;
        }
        header(out, &self.name, &self.help, self.kind);
        for (values, child) in children {
            child.encode(out, &self.name, &label_text(&self.labels, &values));
        }
    }
}

/// Values read at scrape time: label values and the value.
pub type Samples = Vec<(Vec<String>, f64)>;

struct Callback {
    name: String,
    help: String,
    kind: &'static str,
    labels: Vec<&'static str>,
    read: Box<dyn Fn() -> Samples + Send + Sync>,
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("name", &self.name)
            .finish()
    }
}

impl Encode for Callback {
    fn encode(&self, out: &mut String) {
        let samples = (self.read)();
        if samples.is_empty() {
            return;
        }
        header(out, &self.name, &self.help, self.kind);
        for (values, v) in samples {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                label_text(&self.labels, &values),
                number(v)
            );
        }
    }
}

/// The metrics of one node (or one test): every family registered here is exposed by
/// [`Registry::encode`], in registration order. Registering a name twice keeps both, so
/// register each name once (the node's metrics structs do).
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<Vec<Arc<dyn Encode>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, f: Arc<dyn Encode>) {
        match self.families.lock() {
            Ok(mut v) => v.push(f),
            Err(p) => p.into_inner().push(f),
        }
    }

    fn family<M: Child + 'static>(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[&'static str],
        bounds: &[f64],
        make: fn(&Family<M>) -> M,
    ) -> Arc<Family<M>> {
        let f = Arc::new(Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            labels: labels.to_vec(),
            children: Mutex::new(BTreeMap::new()),
            make,
            bounds: bounds.into(),
        });
        self.add(f.clone());
        f
    }

    /// A counter family with these label names.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&'static str]) -> Arc<CounterVec> {
        self.family(name, help, "counter", labels, &[], |_| Counter::default())
    }

    /// A counter without labels (exposed from the start, at 0).
    pub fn counter(&self, name: &str, help: &str) -> Arc<Counter> {
        self.counter_vec(name, help, &[]).with(&[])
    }

    /// A gauge family with these label names.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&'static str]) -> Arc<GaugeVec> {
        self.family(name, help, "gauge", labels, &[], |_| Gauge::default())
    }

    /// A histogram family with these label names and bucket upper bounds (seconds for
    /// durations; see [`DEFAULT_BUCKETS`]).
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&'static str],
        buckets: &[f64],
    ) -> Arc<HistogramVec> {
        self.family(name, help, "histogram", labels, buckets, |f| {
            Histogram::new(f.bounds.clone())
        })
    }

    /// A gauge family whose samples `read` returns at each scrape.
    pub fn gauge_fn(
        &self,
        name: &str,
        help: &str,
        labels: &[&'static str],
        read: impl Fn() -> Samples + Send + Sync + 'static,
    ) {
        self.callback(name, help, "gauge", labels, Box::new(read))
    }

    /// A counter family whose samples `read` returns at each scrape (the values must only
    /// grow, e.g. counters kept by another component).
    pub fn counter_fn(
        &self,
        name: &str,
        help: &str,
        labels: &[&'static str],
        read: impl Fn() -> Samples + Send + Sync + 'static,
    ) {
        self.callback(name, help, "counter", labels, Box::new(read))
    }

    fn callback(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        labels: &[&'static str],
        read: Box<dyn Fn() -> Samples + Send + Sync>,
    ) {
        self.add(Arc::new(Callback {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            labels: labels.to_vec(),
            read,
        }))
    }

    /// Expose every family of `other` too (after this registry's own, in order of
    /// registration): a node's registry includes the process-wide families.
    pub fn include(&self, other: Arc<Registry>) {
        self.add(other)
    }

    /// Every family in Prometheus' text format ([`TEXT_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let families: Vec<Arc<dyn Encode>> = match self.families.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let mut out = String::new();
        for f in families {
            f.encode(&mut out);
        }
        out
    }
}

impl Encode for Registry {
    fn encode(&self, out: &mut String) {
        out.push_str(&Registry::encode(self));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn counters_gauges_and_labels_in_text_format() {
        let r = Registry::new();
        let c = r.counter("endorser_proposals_received", "Proposals received.");
        c.inc();
        c.inc_by(2);
        let v = r.counter_vec("things", "Things \"done\".", &["channel", "status"]);
        v.with(&["ch\"1", "ok"]).inc();
        v.with(&["ch\"1", "ok"]).inc();
        let g = r.gauge_vec("height", "Height.", &["channel"]);
        g.with(&["mychannel"]).set(7.0);
        r.gauge_fn("fn_gauge", "Read at scrape.", &["a"], || {
            vec![(vec!["x".into()], 1.5)]
        });
        r.counter_vec("unused", "Never used.", &["a"]);
        let text = r.encode();
        assert!(
            text.contains(
                "# TYPE endorser_proposals_received counter\nendorser_proposals_received 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("things{channel=\"ch\\\"1\",status=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE height gauge\nheight{channel=\"mychannel\"} 7\n"),
            "{text}"
        );
        assert!(text.contains("fn_gauge{a=\"x\"} 1.5\n"), "{text}");
        assert!(!text.contains("unused"), "{text}");
    }

    #[test]
    fn the_same_label_values_give_the_same_child() {
        let r = Registry::new();
        let v = r.counter_vec("calls", "Calls.", &["channel", "status"]);
        v.with(&["a", "ok"]).inc();
        v.with(&["a", "ok", "extra ignored"]).inc();
        v.with(&["a"]).inc();
        v.with(&["a", ""]).inc();
        v.with(&["b", "ok"]).inc();
        assert!(Arc::ptr_eq(&v.with(&["a", "ok"]), &v.with(&["a", "ok"])));
        let text = r.encode();
        assert!(
            text.contains("calls{channel=\"a\",status=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("calls{channel=\"a\",status=\"\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("calls{channel=\"b\",status=\"ok\"} 1\n"),
            "{text}"
        );
    }

    #[test]
    fn histograms_are_cumulative() {
        let r = Registry::new();
        let h = r.histogram_vec("d", "Durations.", &["success"], &[0.1, 1.0]);
        let ok = h.with(&["true"]);
        ok.observe(0.05);
        ok.observe(0.5);
        ok.observe(3.0);
        let text = r.encode();
        for line in [
            "d_bucket{success=\"true\",le=\"0.1\"} 1",
            "d_bucket{success=\"true\",le=\"1\"} 2",
            "d_bucket{success=\"true\",le=\"+Inf\"} 3",
            "d_sum{success=\"true\"} 3.55",
            "d_count{success=\"true\"} 3",
        ] {
            assert!(text.contains(line), "{line} missing from {text}");
        }
        let plain = r.histogram_vec("p", "No labels.", &[], DEFAULT_BUCKETS);
        plain.with(&[]).observe_duration(Duration::from_millis(20));
        let text = r.encode();
        assert!(text.contains("p_bucket{le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("p_count 1"), "{text}");
    }
}
