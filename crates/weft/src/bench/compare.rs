//! `weft bench --compare`: several configurations in one invocation, each against a network
//! the bench starts itself with `weft up --detach --dir <base>/<mode> --tls <mode>` (this same
//! executable) and stops with `weft down --dir ...` — always: a [`Network`] guard downs its
//! network when dropped, on success, error and Ctrl-C alike.
//!
//! - `tls`: three networks (plaintext, server TLS, mutual TLS), chaincode `basic` (launched);
//! - `chaincode`: one mutual-TLS network, chaincode `basic` (launched by the peer) and
//!   `basic-ccaas` (a chaincode server the peer dials);
//! - `commit`: one mutual-TLS network, chaincode `basic`, commits learnt from a
//!   `CommitStatus` call per transaction and from one filtered-block stream;
//! - `all`: all three, sharing the mutual-TLS network and its `basic` run.
//!
//! The networks run one after the other. `--up-config FILE` is passed to every `weft up` as
//! `--config` (batch settings, ports). The target of every run comes from its network's
//! network.json; target flags are not used.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::report::{Group, Report};
use super::run::{self, CommitWait, Settings};
use super::target::{self, TargetFlags, TlsMode};

/// What `--compare` varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Compare {
    /// Plaintext, TLS and mutual TLS.
    Tls,
    /// Launched chaincode and chaincode server.
    Chaincode,
    /// Commits learnt from CommitStatus calls and from a filtered-block stream.
    Commit,
    /// All of them.
    All,
}

/// One network of the plan and the runs against it: chaincode and how commits are learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub tls: TlsMode,
    pub runs: Vec<(&'static str, CommitWait)>,
}

/// The networks to start, in order, and the tables to print (row labels, as
/// [`super::report::label`] makes them).
pub fn plan(what: Compare) -> (Vec<Step>, Vec<Group>) {
    let label = super::report::run_label;
    let status = CommitWait::Status;
    let tls_group = Group {
        title: "TLS on every link of the network (chaincode basic, launched)".to_owned(),
        labels: [TlsMode::Off, TlsMode::Server, TlsMode::Mutual]
            .iter()
            .map(|t| label(*t, "basic", status))
            .collect(),
    };
    let cc_group = Group {
        title: "chaincode launched by the peer vs chaincode server (mutual TLS)".to_owned(),
        labels: vec![
            label(TlsMode::Mutual, "basic", status),
            label(TlsMode::Mutual, "basic-ccaas", status),
        ],
    };
    let commit_group = Group {
        title: "commits from CommitStatus calls vs one filtered-block stream (mutual TLS)"
            .to_owned(),
        labels: vec![
            label(TlsMode::Mutual, "basic", status),
            label(TlsMode::Mutual, "basic", CommitWait::Blocks),
        ],
    };
    let step = |tls, runs| Step { tls, runs };
    let basic = ("basic", status);
    let ccaas = ("basic-ccaas", status);
    let blocks = ("basic", CommitWait::Blocks);
    match what {
        Compare::Tls => (
            vec![
                step(TlsMode::Off, vec![basic]),
                step(TlsMode::Server, vec![basic]),
                step(TlsMode::Mutual, vec![basic]),
            ],
            vec![tls_group],
        ),
        Compare::Chaincode => (
            vec![step(TlsMode::Mutual, vec![basic, ccaas])],
            vec![cc_group],
        ),
        Compare::Commit => (
            vec![step(TlsMode::Mutual, vec![basic, blocks])],
            vec![commit_group],
        ),
        Compare::All => (
            vec![
                step(TlsMode::Off, vec![basic]),
                step(TlsMode::Server, vec![basic]),
                step(TlsMode::Mutual, vec![basic, ccaas, blocks]),
            ],
            vec![tls_group, cc_group, commit_group],
        ),
    }
}

/// A network this process started; downed when dropped.
#[derive(Debug)]
pub struct Network {
    exe: PathBuf,
    pub dir: PathBuf,
    up: bool,
}

/// The last lines of a child's output, for an error message.
fn tail(out: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(out);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Network {
    /// `weft up --detach --dir <dir> --tls <mode>`; returns once the network committed its
    /// smoke transaction.
    pub fn up(
        exe: &Path,
        dir: &Path,
        tls: TlsMode,
        config: Option<&Path>,
    ) -> Result<Network, String> {
        tracing::info!(dir = %dir.display(), tls = tls.as_str(), "starting a network for the comparison");
        let mut net = Network {
            exe: exe.to_owned(),
            dir: dir.to_owned(),
            up: false,
        };
        let dir_arg = dir.to_string_lossy().into_owned();
        let mut cmd = Command::new(exe);
        cmd.args(["up", "--detach", "--dir", &dir_arg, "--tls", tls.as_str()]);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {} up: {e}", exe.display()))?;
        // Whatever happened, something may be running now: down it on drop.
        net.up = true;
        if !out.status.success() {
            return Err(format!(
                "`weft up --dir {dir_arg} --tls {}` failed ({}); its last output:\n{}\n{}",
                tls.as_str(),
                out.status,
                tail(&out.stdout, 10),
                tail(&out.stderr, 20)
            ));
        }
        Ok(net)
    }

    /// `weft down --dir <dir>`.
    pub fn down(&mut self) -> Result<(), String> {
        if !self.up {
            return Ok(());
        }
        self.up = false;
        let dir_arg = self.dir.to_string_lossy().into_owned();
        let out = Command::new(&self.exe)
            .args(["down", "--dir", &dir_arg])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {} down: {e}", self.exe.display()))?;
        if !out.status.success() {
            return Err(format!(
                "`weft down --dir {dir_arg}` failed ({}): {}",
                out.status,
                tail(&out.stderr, 10)
            ));
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Err(e) = self.down() {
            eprintln!("warning: {e}; stop the network by hand");
        }
    }
}

/// Run the plan: each network up, its runs, down. Each report is handed to `each` as it
/// completes. Answers the reports and the groups.
pub fn run(
    what: Compare,
    base: &Path,
    up_config: Option<&Path>,
    settings: &Settings,
    runtime: &tokio::runtime::Runtime,
    interrupted: Arc<AtomicBool>,
    mut each: impl FnMut(&Report),
) -> Result<(Vec<Report>, Vec<Group>), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find this weft executable to run `weft up`: {e}"))?;
    let (steps, groups) = plan(what);
    let mut reports = Vec::new();
    for step in steps {
        if interrupted.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("interrupted".to_owned());
        }
        let dir = base.join(step.tls.as_str());
        let mut net = Network::up(&exe, &dir, step.tls, up_config)?;
        let file = target::load_network(&dir)?.ok_or_else(|| {
            format!(
                "`weft up --dir {}` succeeded but wrote no {}",
                dir.display(),
                target::NETWORK_FILE
            )
        })?;
        for (cc, commit) in &step.runs {
            let flags = TargetFlags {
                dir: dir.clone(),
                chaincode: Some((*cc).to_owned()),
                ..Default::default()
            };
            let t = target::resolve(&flags, Some(&file))?;
            let settings = Settings {
                commit: *commit,
                ..settings.clone()
            };
            let report = runtime
                .block_on(run::run(&t, &settings, interrupted.clone()))
                .map_err(|e| format!("[{}] {e}", super::report::label(&t, *commit)))?;
            each(&report);
            reports.push(report);
        }
        net.down()?;
    }
    Ok((reports, groups))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn every_row_of_every_table_is_run() {
        for what in [
            Compare::Tls,
            Compare::Chaincode,
            Compare::Commit,
            Compare::All,
        ] {
            let (steps, groups) = plan(what);
            let run: Vec<String> = steps
                .iter()
                .flat_map(|s| {
                    s.runs
                        .iter()
                        .map(|(c, commit)| {
                            let report =
                                crate::bench_cmd::report::tests::fabricated(s.tls, c, 1.0, 1.0);
                            // As the run labels its report.
                            crate::bench_cmd::report::label(&report.config.target, *commit)
                        })
                        .collect::<Vec<_>>()
                })
                .collect();
            for g in &groups {
                for l in &g.labels {
                    assert!(run.contains(l), "{what:?}: {l} is in a table but never run");
                }
            }
            // No network is started twice.
            let mut modes: Vec<_> = steps.iter().map(|s| s.tls.as_str()).collect();
            modes.dedup();
            assert_eq!(modes.len(), steps.len());
        }
        assert_eq!(plan(Compare::All).1.len(), 3);
    }

    #[test]
    fn a_failed_up_is_reported_with_its_output_and_downed() {
        // `false` stands in for weft: `up` fails, and the guard's `down` fails too (reported
        // as a warning, not a panic).
        let tmp = tempfile::tempdir().unwrap();
        let e =
            Network::up(Path::new("/bin/false"), tmp.path(), TlsMode::Server, None).unwrap_err();
        assert!(e.contains("--tls server` failed"), "{e}");
        let e = Network::up(
            Path::new("/nonexistent/weft"),
            tmp.path(),
            TlsMode::Off,
            None,
        )
        .unwrap_err();
        assert!(e.contains("cannot run /nonexistent/weft up"), "{e}");
    }
}
