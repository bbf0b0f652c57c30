//! What a run reports, as text for people and as JSON for later comparison.
//!
//! A JSON file holds every run of one invocation ([`BenchFile`]); a `--compare` invocation
//! also names its groups (run labels, first row is the reference). Runs are matched to a
//! `--baseline` file's runs by label (`tls=mutual cc=basic`), or one to one when both files
//! hold a single run.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::memory::{NodeMemory, GROWTH_LIMIT};
use super::run::CommitWait;
use super::stats::{ErrorKind, Latency};
use super::target::Target;

/// The JSON layout version.
pub const FORMAT: u32 = 1;

/// One invocation's JSON file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchFile {
    pub format: u32,
    pub runs: Vec<Report>,
    /// `--compare` tables: a title and the labels of its rows.
    #[serde(default)]
    pub groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub title: String,
    pub labels: Vec<String>,
}

/// The machine the client ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu_model: String,
    pub os: String,
}

impl Machine {
    pub fn this() -> Machine {
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(0),
            cpu_model: std::fs::read_to_string("/proc/cpuinfo")
                .ok()
                .and_then(|t| cpu_model(&t))
                .unwrap_or_else(|| "unknown".to_owned()),
            os: std::env::consts::OS.to_owned(),
        }
    }
}

/// The first `model name` of a /proc/cpuinfo text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("model name"))
        .find_map(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// How the run was configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub target: Target,
    pub workload: String,
    pub clients: usize,
    pub connections: usize,
    /// Transactions measured (count mode).
    pub count: Option<u64>,
    /// Seconds measured (duration mode).
    pub duration_s: Option<f64>,
    pub warmup_s: f64,
    pub conflicts: bool,
    pub timeout_s: f64,
    /// How clients learnt their commits (absent in reports from before the option).
    #[serde(default)]
    pub commit: CommitWait,
}

/// The measured figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// Transactions that succeeded (committed VALID, or evaluated).
    pub completed: u64,
    pub errors: u64,
    /// From the first proposal signed to the last answer.
    pub elapsed_s: f64,
    /// completed / elapsed_s.
    pub throughput_tps: f64,
    /// Of the completed transactions.
    pub latency: Latency,
    pub error_kinds: Vec<ErrorKind>,
    /// Stopped by Ctrl-C before the end.
    #[serde(default)]
    pub interrupted: bool,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub label: String,
    pub started_at: String,
    pub weft_version: String,
    pub machine: Machine,
    pub config: Config,
    pub figures: Figures,
    pub memory: Vec<NodeMemory>,
}

/// A run's label: what a comparison varies.
pub fn label(target: &Target, commit: CommitWait) -> String {
    run_label(target.tls, &target.chaincode, commit)
}

/// The label of a run with these settings: `tls=<mode> cc=<chaincode>[ commit=blocks]`.
pub fn run_label(tls: super::target::TlsMode, chaincode: &str, commit: CommitWait) -> String {
    let base = format!("tls={} cc={chaincode}", tls.as_str());
    match commit {
        CommitWait::Status => base,
        CommitWait::Blocks => format!("{base} commit=blocks"),
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn tls_words(t: &Target) -> &'static str {
    match t.tls {
        super::target::TlsMode::Off => "plaintext",
        super::target::TlsMode::Server => "TLS",
        super::target::TlsMode::Mutual => "mutual TLS",
    }
}

/// The text report of one run.
pub fn render(r: &Report) -> String {
    let c = &r.config;
    let f = &r.figures;
    let t = &c.target;
    let mut s = String::new();
    let amount = match (c.count, c.duration_s) {
        (Some(n), _) => format!("{n} transactions"),
        (None, Some(d)) => format!("{d} s"),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        s,
        "weft bench [{}]: {} workload, {} clients over {} connection{}, {amount}{}{}",
        r.label,
        c.workload,
        c.clients,
        c.connections,
        if c.connections == 1 { "" } else { "s" },
        if c.warmup_s > 0.0 {
            format!(" after {} s warm-up", c.warmup_s)
        } else {
            String::new()
        },
        if c.conflicts {
            ", conflicting keys"
        } else {
            ""
        },
    );
    if c.commit != CommitWait::Status {
        let _ = writeln!(
            s,
            "  commits    learnt from one filtered-block stream (--commit blocks), not \
             CommitStatus calls"
        );
    }
    let _ = writeln!(
        s,
        "  target     {} ({}), channel {}, chaincode {}, as {} ({})",
        t.address,
        tls_words(t),
        t.channel,
        t.chaincode,
        t.msp_id,
        t.msp_dir.display()
    );
    let _ = writeln!(
        s,
        "  machine    {} cores, {}",
        r.machine.cores, r.machine.cpu_model
    );
    let _ = writeln!(
        s,
        "  completed  {} in {:.2} s = {:.1} tx/s{}",
        f.completed,
        f.elapsed_s,
        f.throughput_tps,
        if f.interrupted { " (interrupted)" } else { "" }
    );
    let l = &f.latency;
    let _ = writeln!(
        s,
        "  latency    p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms  (mean {:.1} ms)",
        l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.mean_ms
    );
    if f.error_kinds.is_empty() {
        let _ = writeln!(s, "  errors     none");
    } else {
        let _ = writeln!(s, "  errors     {}", f.errors);
        for k in &f.error_kinds {
            let _ = writeln!(
                s,
                "    {:>6} {}: first: {}",
                k.count,
                k.kind,
                first_line(&k.first)
            );
        }
    }
    let width = r
        .memory
        .iter()
        .map(|m| m.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(28);
    for (i, m) in r.memory.iter().enumerate() {
        let head = if i == 0 {
            "  memory    "
        } else {
            "            "
        };
        if m.samples.is_empty() {
            let _ = writeln!(s, "{head} {} (pid {}): not running", m.name, m.pid);
            continue;
        }
        let _ = writeln!(
            s,
            "{head} {:<width$} start {:>10}  mid {:>10}  end {:>10}  max {:>10}{}",
            m.name,
            mib(m.start_kib),
            mib(m.mid_kib),
            mib(m.end_kib),
            mib(m.max_kib),
            if m.grew {
                format!(
                    "  GROWING: end is {:.1}x the first half's peak (limit {GROWTH_LIMIT}x)",
                    m.end_kib as f64 / m.first_half_max_kib.max(1) as f64
                )
            } else {
                String::new()
            }
        );
    }
    s.push_str(&cpu_lines(r, width));
    s
}

/// Each process's CPU over the measured phase, as a share of one core and per completed
/// transaction, and the total against what the machine's cores could give.
fn cpu_lines(r: &Report, width: usize) -> String {
    let f = &r.figures;
    let mut s = String::new();
    let with_cpu: Vec<(&NodeMemory, f64)> = r
        .memory
        .iter()
        .filter_map(|m| m.cpu_s.map(|c| (m, c)))
        .collect();
    if with_cpu.is_empty() || f.elapsed_s <= 0.0 {
        return s;
    }
    let per_tx = |cpu: f64| {
        if f.completed > 0 {
            format!("{:>7.0} µs/tx", cpu * 1e6 / f.completed as f64)
        } else {
            "      - µs/tx".to_owned()
        }
    };
    let mut total = 0.0;
    for (i, (m, cpu)) in with_cpu.iter().enumerate() {
        total += cpu;
        let head = if i == 0 {
            "  cpu       "
        } else {
            "            "
        };
        let _ = writeln!(
            s,
            "{head} {:<width$} {:>7.1} s = {:>5.1}% of a core {}",
            m.name,
            cpu,
            cpu / f.elapsed_s * 100.0,
            per_tx(*cpu)
        );
    }
    let cores = r.machine.cores.max(1) as f64;
    let _ = writeln!(
        s,
        "             {:<width$} {:>7.1} s = {:>5.1}% of {} cores {}",
        "total",
        total,
        total / (f.elapsed_s * cores) * 100.0,
        r.machine.cores,
        per_tx(total)
    );
    s
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

fn ratio(value: f64, reference: f64) -> String {
    if reference > 0.0 && value.is_finite() {
        format!("{:.2}x", value / reference)
    } else {
        "-".to_owned()
    }
}

/// CPU time of every sampled process (the nodes and the bench) per completed transaction, in
/// µs; `None` without CPU figures.
pub fn cpu_per_tx_us(r: &Report) -> Option<f64> {
    let cpu: Vec<f64> = r.memory.iter().filter_map(|m| m.cpu_s).collect();
    (!cpu.is_empty() && r.figures.completed > 0)
        .then(|| cpu.iter().sum::<f64>() * 1e6 / r.figures.completed as f64)
}

/// A comparison table: each row's throughput and latency, and its throughput ratio to the
/// first row; then the CPU all processes spent per transaction and its ratio to the first
/// row's (steadier than tx/s on a shared machine). Labels with no run are skipped.
pub fn render_table(title: &str, rows: &[&Report]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{title}");
    let w = rows
        .iter()
        .map(|r| r.label.len())
        .max()
        .unwrap_or(0)
        .max(26);
    let _ = writeln!(
        s,
        "  {:<w$} {:>9} {:>7} {:>9} {:>9} {:>7} {:>10} {:>9}",
        "run", "tx/s", "ratio", "p50 ms", "p99 ms", "errors", "CPU µs/tx", "CPU ratio"
    );
    let reference = rows
        .first()
        .map(|r| r.figures.throughput_tps)
        .unwrap_or(0.0);
    let cpu_reference = rows.first().and_then(|r| cpu_per_tx_us(r)).unwrap_or(0.0);
    for r in rows {
        let f = &r.figures;
        let cpu = cpu_per_tx_us(r);
        let _ = writeln!(
            s,
            "  {:<w$} {:>9.1} {:>7} {:>9.1} {:>9.1} {:>7} {:>10} {:>9}",
            r.label,
            f.throughput_tps,
            ratio(f.throughput_tps, reference),
            f.latency.p50_ms,
            f.latency.p99_ms,
            f.errors,
            cpu.map_or_else(|| "-".to_owned(), |c| format!("{c:.0}")),
            cpu.map_or_else(|| "-".to_owned(), |c| ratio(c, cpu_reference)),
        );
    }
    s
}

/// The tables of a compare invocation.
pub fn render_groups(file: &BenchFile) -> String {
    let mut s = String::new();
    for g in &file.groups {
        s.push('\n');
        let rows: Vec<&Report> = g
            .labels
            .iter()
            .filter_map(|l| file.runs.iter().find(|r| &r.label == l))
            .collect();
        s.push_str(&render_table(&g.title, &rows));
    }
    s
}

/// Each run against its baseline run: ratios of throughput and of p50/p99 latency.
pub fn render_baseline(current: &BenchFile, baseline: &BenchFile, name: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "against the baseline {name}");
    let _ = writeln!(
        s,
        "  {:<26} {:>9} {:>9} {:>7} {:>9} {:>9}",
        "run", "tx/s", "was", "ratio", "p50", "p99"
    );
    let one_to_one = current.runs.len() == 1 && baseline.runs.len() == 1;
    for r in &current.runs {
        let base = if one_to_one {
            baseline.runs.first()
        } else {
            baseline.runs.iter().find(|b| b.label == r.label)
        };
        match base {
            Some(b) => {
                let _ = writeln!(
                    s,
                    "  {:<26} {:>9.1} {:>9.1} {:>7} {:>9} {:>9}",
                    r.label,
                    r.figures.throughput_tps,
                    b.figures.throughput_tps,
                    ratio(r.figures.throughput_tps, b.figures.throughput_tps),
                    ratio(r.figures.latency.p50_ms, b.figures.latency.p50_ms),
                    ratio(r.figures.latency.p99_ms, b.figures.latency.p99_ms),
                );
            }
            None => {
                let _ = writeln!(
                    s,
                    "  {:<26} (no run with this label in the baseline)",
                    r.label
                );
            }
        }
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::super::target::TlsMode;
    use super::*;

    pub(crate) fn fabricated(tls: TlsMode, chaincode: &str, tps: f64, p50: f64) -> Report {
        let target = Target {
            address: "127.0.0.1:7051".into(),
            tls,
            tls_root: Some("/n/ca.pem".into()),
            server_name: None,
            client_cert: None,
            client_key: None,
            msp_dir: "/n/user1/msp".into(),
            msp_id: "Org1MSP".into(),
            channel: "mychannel".into(),
            chaincode: chaincode.into(),
            network_dir: Some("/n".into()),
            processes: Vec::new(),
        };
        Report {
            label: label(&target, CommitWait::Status),
            started_at: "2026-11-21T13:00:00Z".into(),
            weft_version: "0.1.0".into(),
            machine: Machine {
                cores: 2,
                cpu_model: "Xeon".into(),
                os: "linux".into(),
            },
            config: Config {
                target,
                workload: "create".into(),
                clients: 50,
                connections: 1,
                count: Some(1000),
                duration_s: None,
                warmup_s: 0.0,
                conflicts: false,
                timeout_s: 60.0,
                commit: Default::default(),
            },
            figures: Figures {
                completed: 1000,
                errors: 1,
                elapsed_s: 1000.0 / tps,
                throughput_tps: tps,
                latency: Latency {
                    min_ms: 1.0,
                    mean_ms: p50,
                    p50_ms: p50,
                    p95_ms: p50 * 2.0,
                    p99_ms: p50 * 3.0,
                    max_ms: p50 * 4.0,
                },
                error_kinds: vec![ErrorKind {
                    kind: "invalid:MVCC_READ_CONFLICT".into(),
                    count: 1,
                    first: "transaction t was committed as invalid\nsecond line".into(),
                }],
                interrupted: false,
            },
            memory: vec![NodeMemory {
                name: "peer0.org1.example.com".into(),
                pid: 7,
                samples: vec![(0.0, 102400), (1.0, 102400), (2.0, 204800)],
                start_kib: 102400,
                mid_kib: 102400,
                first_half_max_kib: 102400,
                end_kib: 204800,
                max_kib: 204800,
                grew: true,
                cpu_s: Some(2.5),
                ..NodeMemory::default()
            }],
        }
    }

    #[test]
    fn cpu_model_is_the_first_model_name() {
        let info = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.70GHz\n\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(
            cpu_model(info).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.70GHz")
        );
        assert_eq!(cpu_model("processor : 0\n"), None);
        assert!(Machine::this().cores >= 1);
    }

    #[test]
    fn the_text_report_names_configuration_figures_errors_and_memory() {
        let text = render(&fabricated(TlsMode::Mutual, "basic", 175.0, 283.0));
        for want in [
            "[tls=mutual cc=basic]",
            "create workload, 50 clients over 1 connection, 1000 transactions",
            "127.0.0.1:7051 (mutual TLS), channel mychannel, chaincode basic, as Org1MSP",
            "2 cores, Xeon",
            "1000 in 5.71 s = 175.0 tx/s",
            "p50 283.0 ms  p95 566.0 ms  p99 849.0 ms",
            "1 invalid:MVCC_READ_CONFLICT: first: transaction t was committed as invalid\n",
            "start  100.0 MiB  mid  100.0 MiB  end  200.0 MiB",
            "GROWING: end is 2.0x the first half's peak",
            "43.8% of a core    2500 µs/tx",
            "21.9% of 2 cores    2500 µs/tx",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
    }

    #[test]
    fn json_round_trips() {
        let file = BenchFile {
            format: FORMAT,
            runs: vec![fabricated(TlsMode::Off, "basic", 200.0, 100.0)],
            groups: vec![Group {
                title: "t".into(),
                labels: vec!["tls=off cc=basic".into()],
            }],
        };
        let text = serde_json::to_string_pretty(&file).unwrap();
        let back: BenchFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back, file);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["runs"][0]["figures"]["throughput_tps"], 200.0);
        assert_eq!(v["runs"][0]["config"]["target"]["tls"], "off");
        assert_eq!(v["runs"][0]["memory"][0]["samples"][2][1], 204800);
    }

    #[test]
    fn the_compare_table_gives_ratios_to_the_first_row() {
        let file = BenchFile {
            format: FORMAT,
            runs: vec![
                fabricated(TlsMode::Off, "basic", 200.0, 100.0),
                fabricated(TlsMode::Server, "basic", 180.0, 110.0),
                fabricated(TlsMode::Mutual, "basic", 150.0, 130.0),
                fabricated(TlsMode::Mutual, "basic-ccaas", 165.0, 120.0),
            ],
            groups: vec![
                Group {
                    title: "TLS".into(),
                    labels: vec![
                        "tls=off cc=basic".into(),
                        "tls=server cc=basic".into(),
                        "tls=mutual cc=basic".into(),
                    ],
                },
                Group {
                    title: "chaincode".into(),
                    labels: vec![
                        "tls=mutual cc=basic".into(),
                        "tls=mutual cc=basic-ccaas".into(),
                    ],
                },
            ],
        };
        let text = render_groups(&file);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "");
        let lines = &lines[1..];
        assert_eq!(lines[0], "TLS");
        assert!(
            lines[2].contains("tls=off cc=basic") && lines[2].contains("1.00x"),
            "{text}"
        );
        assert!(lines[3].contains("0.90x"), "{text}");
        assert!(lines[4].contains("0.75x"), "{text}");
        assert_eq!((lines[5], lines[6]), ("", "chaincode"));
        let lines = &lines[1..];
        assert!(
            lines[7].contains("tls=mutual cc=basic ") && lines[7].contains("1.00x"),
            "{text}"
        );
        assert!(lines[8].contains("1.10x"), "{text}");
        // CPU per transaction: 2.5 s over 1000 transactions in every fabricated run.
        assert!(lines[0].contains("CPU µs/tx"), "{text}");
        assert!(lines[1].ends_with("2500     1.00x"), "{text}");
    }

    #[test]
    fn cpu_per_transaction_sums_every_process() {
        let mut r = fabricated(TlsMode::Off, "basic", 200.0, 100.0);
        assert_eq!(cpu_per_tx_us(&r), Some(2500.0));
        r.memory.push(NodeMemory {
            name: "weft bench (this client)".into(),
            cpu_s: Some(0.5),
            ..NodeMemory::default()
        });
        assert_eq!(cpu_per_tx_us(&r), Some(3000.0));
        r.memory.clear();
        assert_eq!(cpu_per_tx_us(&r), None);
    }

    #[test]
    fn table_columns_line_up_under_long_labels() {
        let short = fabricated(TlsMode::Off, "basic", 200.0, 100.0);
        let mut long = fabricated(TlsMode::Mutual, "basic", 240.0, 90.0);
        long.label = label(&long.config.target, CommitWait::Blocks);
        let table = render_table("t", &[&short, &long]);
        let widths: Vec<usize> = table.lines().skip(1).map(|l| l.chars().count()).collect();
        assert_eq!(widths.len(), 3, "{table}");
        assert!(widths.iter().all(|w| *w == widths[0]), "{table}");
        assert!(
            table.contains("tls=mutual cc=basic commit=blocks"),
            "{table}"
        );
    }

    #[test]
    fn baseline_ratios_match_runs_by_label() {
        let base = BenchFile {
            format: FORMAT,
            runs: vec![
                fabricated(TlsMode::Off, "basic", 200.0, 100.0),
                fabricated(TlsMode::Mutual, "basic", 100.0, 200.0),
            ],
            groups: Vec::new(),
        };
        let cur = BenchFile {
            format: FORMAT,
            runs: vec![
                fabricated(TlsMode::Mutual, "basic", 150.0, 100.0),
                fabricated(TlsMode::Server, "basic", 1.0, 1.0),
            ],
            groups: Vec::new(),
        };
        let text = render_baseline(&cur, &base, "old.json");
        assert!(text.contains("against the baseline old.json"), "{text}");
        let mutual = text.lines().find(|l| l.contains("tls=mutual")).unwrap();
        assert!(
            mutual.contains("150.0") && mutual.contains("100.0"),
            "{mutual}"
        );
        assert!(
            mutual.contains("1.50x") && mutual.contains("0.50x"),
            "{mutual}"
        );
        assert!(
            text.lines().any(|l| l.contains("tls=server cc=basic") && l.contains("(no run with this label")),
            "{text}"
        );
        // One run on each side: compared whatever their labels.
        let one = BenchFile {
            runs: vec![cur.runs[1].clone()],
            ..cur.clone()
        };
        let base_one = BenchFile {
            runs: vec![base.runs[0].clone()],
            ..base
        };
        let text = render_baseline(&one, &base_one, "b");
        assert!(text.contains("0.01x"), "{text}");
    }
}
