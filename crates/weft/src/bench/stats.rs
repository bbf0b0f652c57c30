//! The figures of one run: latency percentiles (nearest rank over every completed
//! transaction, no sampling) and errors grouped by kind.
//!
//! An error's kind is read from the client's message, whose shapes are fixed in
//! `weft_peer::client` (`gateway A: endorse TX: ...`, `... committed as invalid on peer P: CODE
//! (block N)`, `... was not committed on peer P within ...`): the validation code for an
//! invalid commit (`invalid:MVCC_READ_CONFLICT`), else the Gateway step that failed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// The nearest-rank percentile `p` (0..=1) of `sorted`: the smallest value with at least
/// `p` of the values at or below it. Zero for no values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Summarize latencies (sorts them).
pub fn summarize(latencies: &mut [Duration]) -> Latency {
    latencies.sort_unstable();
    let Some(&max) = latencies.last() else {
        return Latency::default();
    };
    let total: Duration = latencies.iter().sum();
    Latency {
        min_ms: ms(latencies[0]),
        mean_ms: ms(total) / latencies.len() as f64,
        p50_ms: ms(percentile(latencies, 0.50)),
        p95_ms: ms(percentile(latencies, 0.95)),
        p99_ms: ms(percentile(latencies, 0.99)),
        max_ms: ms(max),
    }
}

/// One kind of error: how often, and the first message seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorKind {
    pub kind: String,
    pub count: u64,
    pub first: String,
}

/// Errors by kind.
#[derive(Debug, Clone, Default)]
pub struct ErrorTally {
    kinds: BTreeMap<String, (u64, String)>,
}

impl ErrorTally {
    pub fn add(&mut self, message: &str) {
        let e = self
            .kinds
            .entry(classify(message))
            .or_insert_with(|| (0, message.to_owned()));
        e.0 += 1;
    }

    pub fn merge(&mut self, other: ErrorTally) {
        for (kind, (count, first)) in other.kinds {
            self.kinds.entry(kind).or_insert((0, first)).0 += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.kinds.values().map(|(c, _)| c).sum()
    }

    /// Most frequent first.
    pub fn into_kinds(self) -> Vec<ErrorKind> {
        let mut v: Vec<ErrorKind> = self
            .kinds
            .into_iter()
            .map(|(kind, (count, first))| ErrorKind { kind, count, first })
            .collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.kind.cmp(&b.kind)));
        v
    }
}

/// The kind of a client error message (see the module doc).
pub fn classify(message: &str) -> String {
    if let Some(rest) = message.split(" was committed as invalid on peer ").nth(1) {
        let code = rest
            .split_once(": ")
            .map(|(_, c)| c.split_whitespace().next().unwrap_or("UNKNOWN"))
            .unwrap_or("UNKNOWN");
        return format!("invalid:{code}");
    }
    if message.contains(" was not committed on peer ") {
        return "commit-timeout".to_owned();
    }
    if message.contains(": commit status of ") {
        return "commit-status".to_owned();
    }
    if message.contains("the filtered-block stream of channel ") {
        return "commit-stream".to_owned();
    }
    for step in ["endorse", "submit", "evaluate"] {
        if message.starts_with("gateway ") && message.contains(&format!(": {step} ")) {
            return step.to_owned();
        }
    }
    if message.starts_with("bench: ") {
        return "timeout".to_owned();
    }
    "other".to_owned()
}

/// MVCC conflicts: what `--conflicts` asks for.
pub fn is_conflict(kind: &str) -> bool {
    matches!(
        kind,
        "invalid:MVCC_READ_CONFLICT" | "invalid:PHANTOM_READ_CONFLICT"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(d).collect();
        assert_eq!(percentile(&v, 0.50), d(50));
        assert_eq!(percentile(&v, 0.95), d(95));
        assert_eq!(percentile(&v, 0.99), d(99));
        assert_eq!(percentile(&v, 1.0), d(100));
        assert_eq!(percentile(&v, 0.0), d(1));
        assert_eq!(percentile(&[d(7)], 0.99), d(7));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        // Two values: the median is the lower one, p99 the upper.
        assert_eq!(percentile(&[d(1), d(9)], 0.5), d(1));
        assert_eq!(percentile(&[d(1), d(9)], 0.99), d(9));
    }

    #[test]
    fn summary_sorts_and_averages() {
        let mut v = vec![d(30), d(10), d(20)];
        let l = summarize(&mut v);
        assert_eq!((l.min_ms, l.p50_ms, l.max_ms), (10.0, 20.0, 30.0));
        assert!((l.mean_ms - 20.0).abs() < 1e-9);
        assert_eq!(summarize(&mut []), Latency::default());
    }

    #[test]
    fn errors_are_grouped_by_the_step_or_validation_code() {
        let mut t = ErrorTally::default();
        t.add("transaction ab12 was committed as invalid on peer 127.0.0.1:7051: MVCC_READ_CONFLICT (block 9)");
        t.add("transaction cd34 was committed as invalid on peer 127.0.0.1:7051: MVCC_READ_CONFLICT (block 10)");
        t.add("gateway 127.0.0.1:7051: endorse ab: chaincode response 500, the asset x already exists");
        t.add("gateway 127.0.0.1:7051: submit ab: orderer unavailable");
        t.add("gateway 127.0.0.1:7051: evaluate ab: no such function");
        t.add("transaction ab was not committed on peer 127.0.0.1:7051 within 60s");
        t.add("peer 127.0.0.1:7051: commit status of ab: permission denied");
        t.add("the filtered-block stream of channel c on peer p (--commit blocks): the peer closed the stream");
        t.add("bench: no answer within 60s");
        t.add("something else");
        let mut other = ErrorTally::default();
        other.add(
            "transaction ef was committed as invalid on peer p: PHANTOM_READ_CONFLICT (block 1)",
        );
        t.merge(other);
        assert_eq!(t.total(), 11);
        let kinds = t.into_kinds();
        let conflicts: u64 = kinds
            .iter()
            .filter(|k| is_conflict(&k.kind))
            .map(|k| k.count)
            .sum();
        assert_eq!(conflicts, 3);
        assert_eq!(kinds[0].kind, "invalid:MVCC_READ_CONFLICT");
        assert_eq!(kinds[0].count, 2);
        assert!(kinds[0].first.contains("block 9"));
        let names: Vec<&str> = kinds.iter().map(|k| k.kind.as_str()).collect();
        for k in [
            "endorse",
            "submit",
            "evaluate",
            "commit-timeout",
            "commit-status",
            "commit-stream",
            "timeout",
            "other",
            "invalid:PHANTOM_READ_CONFLICT",
        ] {
            assert!(names.contains(&k), "{k} missing from {names:?}");
        }
    }
}
