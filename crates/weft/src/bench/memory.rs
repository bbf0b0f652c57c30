//! Memory of a `weft up` network's node processes over a run: the resident set size
//! (`VmRSS` in `/proc/<pid>/status`) of every process network.json lists, sampled when the
//! measured phase starts, every second, and when it ends. A node warms up during the first
//! part of a run (caches, memtables, connection buffers), so growth is judged over the second
//! half: a node whose resident set at the end exceeds [`GROWTH_LIMIT`] times its size at the
//! run's midpoint is flagged, since memory should stay flat under a steady load once warm.
//!
//! The same sampler measures each process's CPU time over the measured phase (`utime` +
//! `stime` of `/proc/<pid>/stat`), which the report divides by the transactions completed:
//! where a transaction's CPU goes, process by process.
//!
//! Chaincode processes a peer launched (through its external builder's `run`) are not in
//! network.json: [`launched_chaincodes`] finds them among the peers' descendants in `/proc`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::procstat;

/// End / first-half-peak ratio above which a node's memory counts as growing.
pub const GROWTH_LIMIT: f64 = 1.3;

/// One node's memory (and CPU) over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The highest RSS over the run's first half (samples before half the elapsed time, or
    /// the first sample).
    #[serde(default)]
    pub first_half_max_kib: u64,
    /// end > GROWTH_LIMIT x first_half_max (never set for the bench's own process, which
    /// keeps every transaction's latency by design).
    pub grew: bool,
    /// CPU time (user + system) the process used during the measured phase, in seconds
    /// (`None` when it could not be read at both ends).
    #[serde(default)]
    pub cpu_s: Option<f64>,
    /// CPU ticks at the first sample (not reported).
    #[serde(skip)]
    pub(crate) cpu_start: Option<u64>,
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
            first_half_max_kib: 0,
            grew: false,
            cpu_s: None,
            cpu_start: None,
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
        self.first_half_max_kib = self
            .samples
            .iter()
            .take_while(|(at, _)| *at < t / 2.0)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(self.start_kib);
        self.grew = self.first_half_max_kib > 0
            && self.name != super::run::SELF_NAME
            && self.end_kib as f64 > GROWTH_LIMIT * self.first_half_max_kib as f64;
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

/// `utime + stime` (clock ticks) of a `/proc/<pid>/stat` line: fields 14 and 15.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    Some(procstat::number(stat, 14)? + procstat::number(stat, 15)?)
}

/// CPU ticks a live process has used so far (`None` when it is gone or not Linux).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    parse_cpu_ticks(&procstat::read(pid)?)
}

fn ticks_per_second() -> f64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100.0,
        n => n as f64,
    }
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
        if let Ok(mut nodes) = nodes.lock() {
            for n in nodes.iter_mut() {
                n.cpu_start = cpu_ticks(n.pid);
            }
        }
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
        let mut nodes = match self.nodes.lock() {
            Ok(n) => n.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let hz = ticks_per_second();
        for n in nodes.iter_mut() {
            n.cpu_s = match (n.cpu_start, cpu_ticks(n.pid)) {
                (Some(a), Some(b)) if b >= a => Some((b - a) as f64 / hz),
                _ => None,
            };
        }
        nodes
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

/// One `/proc/<pid>/stat` line's process id, command name and parent id (field 4).
pub fn parse_stat(stat: &str) -> Option<(u32, String, u32)> {
    let (pid, comm) = procstat::pid_and_comm(stat)?;
    let ppid = u32::try_from(procstat::number(stat, 4)?).ok()?;
    Some((pid, comm.to_owned(), ppid))
}

/// A process as [`launched_chaincodes`] sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcEntry {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
    /// The first word of its command line (the program's path).
    pub program: String,
}

/// Every process on this machine (Linux; empty elsewhere).
pub fn process_table() -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (pid, comm, ppid) = parse_stat(&procstat::read(pid)?)?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let program = cmdline
                .split(|b| *b == 0)
                .next()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            Some(ProcEntry {
                pid,
                ppid,
                comm,
                program,
            })
        })
        .collect()
}

/// The chaincode processes the given peers launched: their descendants, minus the shells that
/// run the builders' scripts, each named `<package label> (launched by <peer>)`. The label is
/// read from the build directory in the program's path (`.../builds/basic_1.0-<hash>/...`),
/// else the program's file name is used.
pub fn launched_chaincodes(peers: &[(String, u32)], table: &[ProcEntry]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for (peer, pid) in peers {
        let mut frontier = vec![*pid];
        let mut seen = std::collections::HashSet::new();
        while let Some(parent) = frontier.pop() {
            for p in table.iter().filter(|p| p.ppid == parent && p.pid != parent) {
                if !seen.insert(p.pid) {
                    continue;
                }
                frontier.push(p.pid);
                if is_shell(p) {
                    continue;
                }
                out.push((
                    format!("{} (launched by {peer})", chaincode_label(p)),
                    p.pid,
                ));
            }
        }
    }
    out
}

/// A shell running a builder's script: its command name is the shell's or (for a script run
/// through its `#!` line) the script's, and its program is the shell.
fn is_shell(p: &ProcEntry) -> bool {
    let shell = |name: &str| matches!(name, "sh" | "bash" | "dash");
    let program = std::path::Path::new(&p.program)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    shell(&p.comm) || shell(&program)
}

fn chaincode_label(p: &ProcEntry) -> String {
    let path = std::path::Path::new(&p.program);
    let from_build_dir = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .skip_while(|c| c != "builds")
        .nth(1)
        .map(|dir| match dir.rsplit_once('-') {
            Some((label, hash))
                if hash.len() >= 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                label.to_owned()
            }
            _ => dir.into_owned(),
        });
    from_build_dir
        .or_else(|| path.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| p.comm.clone())
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
    fn growth_is_judged_against_the_first_halfs_peak() {
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
        assert_eq!(m.first_half_max_kib, 300);
        assert!(!m.grew);
        // Still climbing past every earlier peak at the end is.
        m.push(5.0, 360);
        m.push(6.0, 450);
        assert_eq!((m.mid_kib, m.first_half_max_kib), (320, 310));
        assert!(m.grew);
    }

    #[test]
    fn a_sawtooth_is_not_growth() {
        // Memtables fill and flush: the midpoint sample falls just after a flush, and the end
        // is 1.45x it, but no higher than the first half's peak allows.
        let mut m = NodeMemory::new("peer", 1);
        for (t, kib) in [
            (0, 100),
            (40, 150),
            (80, 196),
            (100, 149),
            (120, 165),
            (160, 212),
        ] {
            m.push(f64::from(t), kib);
        }
        m.push(240.0, 240);
        assert_eq!((m.mid_kib, m.first_half_max_kib), (165, 196));
        assert!(m.end_kib as f64 > GROWTH_LIMIT * m.mid_kib as f64);
        assert!(!m.grew, "a sawtooth was flagged");
    }

    #[test]
    fn the_bench_itself_is_never_flagged() {
        // It keeps every latency, so it grows with the run by design.
        let mut m = NodeMemory::new(super::super::run::SELF_NAME, 1);
        m.push(0.0, 50);
        m.push(1.0, 50);
        m.push(2.0, 80);
        assert!(!m.grew);
    }

    #[test]
    fn cpu_ticks_are_utime_plus_stime() {
        let stat = "4242 (a b) S 1 4242 4242 0 -1 4194560 2211 0 3 0 150 25 0 0 20 0 9 0 100";
        assert_eq!(parse_cpu_ticks(stat), Some(175));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
        assert!(cpu_ticks(std::process::id()).is_some());
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(
            parse_stat("4242 (weft) S 1 4242 4242 0 -1 4194560 2211"),
            Some((4242, "weft".to_owned(), 1))
        );
        assert_eq!(
            parse_stat("77 (a (b) c) R 76 77 0"),
            Some((77, "a (b) c".to_owned(), 76))
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("12 (x"), None);
    }

    #[test]
    fn launched_chaincodes_are_the_peers_descendants_without_the_shells() {
        let e = |pid, ppid, comm: &str, program: &str| ProcEntry {
            pid,
            ppid,
            comm: comm.to_owned(),
            program: program.to_owned(),
        };
        let build = "/n/peer0.org1.example.com/data/externalbuilders/builds";
        let table = vec![
            e(10, 1, "weft", "/bin/weft"),
            e(11, 10, "run", "/bin/sh"),
            e(14, 11, "sh", "/usr/bin/dash"),
            e(
                12,
                11,
                "chaincode",
                &format!("{build}/basic_1.0-0123456789abcdef0123/bld/chaincode"),
            ),
            e(13, 10, "mycc", "/opt/mycc"),
            e(20, 1, "weft", "/bin/weft"),
            e(21, 1, "other", "/bin/other"),
        ];
        let found = launched_chaincodes(&[("peer0.org1".to_owned(), 10)], &table);
        assert_eq!(
            found,
            vec![
                ("mycc (launched by peer0.org1)".to_owned(), 13),
                ("basic_1.0 (launched by peer0.org1)".to_owned(), 12),
            ]
        );
        assert!(launched_chaincodes(&[("peer".to_owned(), 20)], &table).is_empty());
    }

    #[test]
    fn a_live_child_is_found_in_the_process_table() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let me = std::process::id();
        let found = launched_chaincodes(&[("me".to_owned(), me)], &process_table());
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found
                .iter()
                .any(|(name, pid)| *pid == child.id() && name == "sleep (launched by me)"),
            "{found:?}"
        );
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
        assert!(nodes[0].cpu_s.is_some_and(|c| c >= 0.0), "{:?}", nodes[0]);
        assert!(nodes[1].samples.is_empty());
        assert_eq!(nodes[1].cpu_s, None);
    }
}
