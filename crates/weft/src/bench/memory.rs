//! Memory of a `weft up` network's node processes over a run: the resident set size
//! (`VmRSS` in `/proc/<pid>/status`) of every process network.json lists, sampled when the
//! measured phase starts, every second, and when it ends. A node warms up during the first
//! part of a run (caches, memtables, connection buffers), so growth is judged over the second
//! half: a node whose resident set at the end exceeds [`GROWTH_LIMIT`] times its size at the
//! run's midpoint is flagged, since memory should stay flat under a steady load once warm.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// End / midpoint ratio above which a node's memory counts as growing.
pub const GROWTH_LIMIT: f64 = 1.3;

/// One node's memory over the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeMemory {
    pub name: String,
    pub pid: u32,
    /// `[seconds since the measured phase started, RSS in KiB]`.
    pub samples: Vec<(f64, u64)>,
    pub start_kib: u64,
    pub end_kib: u64,
    pub max_kib: u64,
    /// RSS at the run's midpoint (the first sample at or after half the elapsed time).
    #[serde(default)]
    pub mid_kib: u64,
    /// end > GROWTH_LIMIT x mid.
    pub grew: bool,
}

impl NodeMemory {
    fn new(name: &str, pid: u32) -> Self {
        NodeMemory {
            name: name.to_owned(),
            pid,
            samples: Vec::new(),
            start_kib: 0,
            end_kib: 0,
            max_kib: 0,
            mid_kib: 0,
            grew: false,
        }
    }

    fn push(&mut self, t: f64, kib: u64) {
        if self.samples.is_empty() {
            self.start_kib = kib;
        }
        self.samples.push((t, kib));
        self.end_kib = kib;
        self.max_kib = self.max_kib.max(kib);
        self.mid_kib = self
            .samples
            .iter()
            .find(|(at, _)| *at >= t / 2.0)
            .map_or(kib, |(_, k)| *k);
        self.grew = self.mid_kib > 0 && self.end_kib as f64 > GROWTH_LIMIT * self.mid_kib as f64;
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vmrss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The resident set of a live process, in KiB (`None` when it is gone or not Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .as_deref()
        .and_then(parse_vmrss)
}

/// Samples the processes in the background until [`Sampler::finish`].
#[derive(Debug)]
pub struct Sampler {
    nodes: Arc<Mutex<Vec<NodeMemory>>>,
    start: Instant,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sampler {
    /// Take the first sample now and one every `every` (inside a tokio runtime).
    pub fn start(processes: &[(String, u32)], every: Duration) -> Sampler {
        let nodes = Arc::new(Mutex::new(
            processes
                .iter()
                .map(|(n, p)| NodeMemory::new(n, *p))
                .collect::<Vec<_>>(),
        ));
        let start = Instant::now();
        sample(&nodes, start);
        let task = (!processes.is_empty()).then(|| {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    sample(&nodes, start);
                }
            })
        });
        Sampler { nodes, start, task }
    }

    /// Take the last sample and answer every node's series.
    pub fn finish(mut self) -> Vec<NodeMemory> {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        sample(&self.nodes, self.start);
        match self.nodes.lock() {
            Ok(n) => n.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn sample(nodes: &Mutex<Vec<NodeMemory>>, start: Instant) {
    let t = start.elapsed().as_secs_f64();
    let mut nodes = match nodes.lock() {
        Ok(n) => n,
        Err(poisoned) => poisoned.into_inner(),
    };
    for n in nodes.iter_mut() {
        if let Some(kib) = rss_kib(n.pid) {
            n.push(t, kib);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn vmrss_is_read_from_the_status_text() {
        let status = "Name:\tweft\nVmPeak:\t  200000 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_vmrss(status), Some(51234));
        assert_eq!(parse_vmrss("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn growth_is_judged_over_the_second_half() {
        let mut m = NodeMemory::new("peer", 1);
        // Warm-up growth in the first half is not growth.
        m.push(0.0, 100);
        m.push(1.0, 300);
        m.push(2.0, 310);
        m.push(3.0, 320);
        m.push(4.0, 330);
        assert_eq!(
            (m.start_kib, m.mid_kib, m.max_kib, m.end_kib),
            (100, 310, 330, 330)
        );
        assert!(!m.grew);
        // Still climbing at the end is.
        m.push(5.0, 360);
        m.push(6.0, 450);
        assert_eq!(m.mid_kib, 320);
        assert!(m.grew);
    }

    #[tokio::test]
    async fn this_process_is_sampled_and_a_gone_one_is_skipped() {
        let me = std::process::id();
        let s = Sampler::start(
            &[("me".into(), me), ("gone".into(), u32::MAX)],
            Duration::from_millis(10),
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        let nodes = s.finish();
        assert!(nodes[0].samples.len() >= 2, "{:?}", nodes[0]);
        assert!(nodes[0].start_kib > 0);
        assert!(nodes[1].samples.is_empty());
    }
}
