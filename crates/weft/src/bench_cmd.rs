//! `weft bench`: drive any Fabric-compatible peer Gateway with N concurrent clients and report
//! throughput, latency percentiles, errors by kind, the machine, the configuration and (for a
//! `weft up` network) each node's memory over the run.
//!
//! The pieces, each testable alone:
//! - `target`: which peer, TLS material and MSP identity (flags, `CORE_PEER_*`, network.json);
//! - `run`: the clients, workloads and phases (probe, setup, warm-up, measure);
//! - `stats`: percentiles and error kinds; `memory`: RSS sampling from /proc;
//! - `report`: the text report, the JSON file, comparison and baseline tables;
//! - `compare`: `--compare`, networks started and stopped with `weft up` / `weft down`.
//!
//! docs/BENCH.md is the user's guide.

#[path = "bench/commits.rs"]
mod commits;
#[path = "bench/compare.rs"]
mod compare;
#[path = "bench/memory.rs"]
mod memory;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/run.rs"]
mod run;
#[path = "bench/stats.rs"]
mod stats;
#[path = "bench/target.rs"]
mod target;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use report::{BenchFile, Report};
use run::{CommitWait, Settings, Stop, Workload};

type BoxError = Box<dyn std::error::Error>;

/// `weft bench` flags.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    target: target::TargetFlags,
    /// What each transaction does.
    #[arg(long, value_enum, default_value = "create")]
    workload: Workload,
    /// Concurrent clients, each waiting for its transaction's answer before the next.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// HTTP/2 connections the clients share (round robin).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Transactions to measure, all clients together [default: --duration 10s].
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// How long to measure (Go duration: 10s, 1m30s).
    #[arg(long, value_parser = go_duration)]
    duration: Option<Duration>,
    /// Run the workload this long first, unmeasured (Go duration).
    #[arg(long, value_parser = go_duration, default_value = "0")]
    warmup: Duration,
    /// transfer: every client transfers the same few assets, so MVCC conflicts happen (they
    /// are expected and do not fail the run).
    #[arg(long)]
    conflicts: bool,
    /// How a client learns its transaction committed: `status` calls the Gateway's
    /// CommitStatus per transaction (fabric-gateway's submitTransaction); `blocks` watches one
    /// filtered-block Deliver stream for the whole run.
    #[arg(long, value_enum, default_value = "status")]
    commit: CommitWait,
    /// Give up on a transaction after this long (Go duration).
    #[arg(long, value_parser = go_duration, default_value = "60s")]
    timeout: Duration,
    /// Run several configurations on networks started with `weft up`, and print ratios.
    #[arg(long, value_enum)]
    compare: Option<compare::Compare>,
    /// Where --compare puts its networks [default: a new directory under the temp dir].
    #[arg(long = "compare-dir")]
    compare_dir: Option<PathBuf>,
    /// A `weft up --config` file for the networks --compare starts (batch settings, ports).
    #[arg(long = "up-config", requires = "compare")]
    up_config: Option<PathBuf>,
    /// Write the whole report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A previous --json file: print this run's ratios to it.
    #[arg(long)]
    baseline: Option<PathBuf>,
}

fn go_duration(text: &str) -> Result<Duration, String> {
    weft_configtx::units::parse_go_duration(text)
}

impl BenchArgs {
    fn settings(&self) -> Result<Settings, String> {
        if self.clients == 0 {
            return Err("--clients must be at least 1".to_owned());
        }
        if self.connections == 0 {
            return Err("--connections must be at least 1".to_owned());
        }
        let stop = match (self.count, self.duration) {
            (Some(0), _) => return Err("--count must be at least 1".to_owned()),
            (Some(n), _) => Stop::Count(n),
            (None, Some(d)) if d.is_zero() => {
                return Err("--duration must be longer than 0".to_owned())
            }
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        };
        if self.conflicts && self.workload != Workload::Transfer {
            return Err("--conflicts applies to --workload transfer only".to_owned());
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be longer than 0".to_owned());
        }
        Ok(Settings {
            workload: self.workload,
            clients: self.clients,
            connections: self.connections,
            stop,
            warmup: self.warmup,
            conflicts: self.conflicts,
            timeout: self.timeout,
            commit: self.commit,
        })
    }
}

/// Whether a run failed: nothing completed, or errors other than the conflicts asked for.
fn failed(r: &Report) -> bool {
    let f = &r.figures;
    let expected: u64 = if r.config.conflicts {
        f.error_kinds
            .iter()
            .filter(|k| stats::is_conflict(&k.kind))
            .map(|k| k.count)
            .sum()
    } else {
        0
    };
    f.completed == 0 || f.errors > expected || f.interrupted
}

pub fn run(args: BenchArgs) -> Result<u8, BoxError> {
    let settings = args.settings()?;
    let baseline = match &args.baseline {
        Some(p) => Some(read_bench_file(p)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupted: finishing the transactions in flight");
                flag.store(true, Ordering::Relaxed);
            }
        });
    }

    let file = match args.compare {
        None => {
            let net = target::load_network(&args.target.dir)?;
            let t = target::resolve(&args.target, net.as_ref())?;
            tracing::info!(peer = %t.address, tls = t.tls.as_str(), chaincode = %t.chaincode,
                workload = settings.workload.as_str(), clients = settings.clients, "bench starting");
            let report = runtime.block_on(run::run(&t, &settings, interrupted.clone()))?;
            print!("{}", report::render(&report));
            BenchFile {
                format: report::FORMAT,
                runs: vec![report],
                groups: Vec::new(),
            }
        }
        Some(what) => {
            let base = match &args.compare_dir {
                Some(d) => d.clone(),
                None => std::env::temp_dir().join(format!("weft-bench-{}", std::process::id())),
            };
            std::fs::create_dir_all(&base)
                .map_err(|e| format!("cannot create --compare-dir {}: {e}", base.display()))?;
            let result = compare::run(
                what,
                &base,
                args.up_config.as_deref(),
                &settings,
                &runtime,
                interrupted.clone(),
                |r| {
                    print!("{}", report::render(r));
                    println!();
                },
            );
            let (runs, groups) = match result {
                Ok(r) => r,
                Err(e) => {
                    return Err(format!(
                        "{e}\n(the networks' directories and logs are kept in {})",
                        base.display()
                    )
                    .into())
                }
            };
            if args.compare_dir.is_none() {
                if let Err(e) = std::fs::remove_dir_all(&base) {
                    tracing::warn!(dir = %base.display(), error = %e, "cannot remove the comparison's networks");
                }
            }
            let file = BenchFile {
                format: report::FORMAT,
                runs,
                groups,
            };
            print!("{}", report::render_groups(&file));
            file
        }
    };
    if let (Some(b), Some(p)) = (&baseline, &args.baseline) {
        print!(
            "{}",
            report::render_baseline(&file, b, &p.display().to_string())
        );
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&file)?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write --json {}: {e}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    runtime.shutdown_background();
    Ok(if file.runs.iter().any(failed) {
        crate::EXIT_NOT_OK
    } else {
        0
    })
}

fn read_bench_file(path: &std::path::Path) -> Result<BenchFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --baseline {}: {e}", path.display()))?;
    let file: BenchFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "--baseline {} is not a `weft bench --json` file: {e}",
            path.display()
        )
    })?;
    if file.format != report::FORMAT {
        return Err(format!(
            "--baseline {} has format {}, this weft reads format {}",
            path.display(),
            file.format,
            report::FORMAT
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.bench)
    }

    #[test]
    fn flags_make_settings() {
        let a = parse(&[
            "--count",
            "200",
            "--clients",
            "8",
            "--workload",
            "transfer",
            "--conflicts",
        ])
        .unwrap();
        let s = a.settings().unwrap();
        assert_eq!(s.stop, Stop::Count(200));
        assert_eq!(
            (s.clients, s.workload, s.conflicts),
            (8, Workload::Transfer, true)
        );
        let s = parse(&["--duration", "1m30s", "--warmup", "2s"])
            .unwrap()
            .settings()
            .unwrap();
        assert_eq!(s.stop, Stop::Duration(Duration::from_secs(90)));
        assert_eq!(s.warmup, Duration::from_secs(2));
        let s = parse(&[]).unwrap().settings().unwrap();
        assert_eq!(s.stop, Stop::Duration(Duration::from_secs(10)));
        assert_eq!(
            (s.clients, s.connections, s.workload),
            (50, 1, Workload::Create)
        );
    }

    #[test]
    fn bad_settings_are_explained() {
        assert!(parse(&["--count", "5", "--duration", "5s"]).is_err());
        assert!(parse(&["--duration", "5 parsecs"]).is_err());
        let e = parse(&["--conflicts"]).unwrap().settings().unwrap_err();
        assert!(e.contains("--workload transfer"), "{e}");
        let e = parse(&["--clients", "0"]).unwrap().settings().unwrap_err();
        assert!(e.contains("--clients"), "{e}");
        let e = parse(&["--count", "0"]).unwrap().settings().unwrap_err();
        assert!(e.contains("--count"), "{e}");
    }

    #[test]
    fn tls_false_is_plaintext() {
        let a = parse(&["--tls=false", "--peerAddresses", "localhost:7051"]).unwrap();
        assert_eq!(a.target.tls, Some(false));
        assert_eq!(parse(&["--tls"]).unwrap().target.tls, Some(true));
    }

    #[test]
    fn a_run_fails_on_unexpected_errors_only() {
        use report::tests::fabricated;
        use target::TlsMode;
        let mut r = fabricated(TlsMode::Mutual, "basic", 100.0, 10.0);
        assert!(
            failed(&r),
            "an MVCC conflict without --conflicts fails the run"
        );
        r.config.conflicts = true;
        assert!(!failed(&r));
        r.figures.completed = 0;
        assert!(failed(&r));
    }

    #[test]
    fn a_baseline_file_is_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("b.json");
        let e = read_bench_file(&p).unwrap_err();
        assert!(e.contains("cannot read --baseline"), "{e}");
        std::fs::write(&p, "[]").unwrap();
        let e = read_bench_file(&p).unwrap_err();
        assert!(e.contains("is not a `weft bench --json` file"), "{e}");
        std::fs::write(&p, r#"{"format": 9, "runs": []}"#).unwrap();
        let e = read_bench_file(&p).unwrap_err();
        assert!(e.contains("format 9"), "{e}");
    }
}
