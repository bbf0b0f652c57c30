//! The network's processes: started in their own process group (a Ctrl-C in the terminal
//! reaches `weft up`, which stops them in order), their output appended to one log file each,
//! readiness judged by their ports answering, and stopped with SIGTERM, then SIGKILL after a
//! grace period. A recorded process is identified by pid *and* start time, so a recycled pid
//! is never signalled.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::state::ProcessEntry;

/// A process `weft up` started.
#[derive(Debug)]
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
    pub started: u64,
}

/// Environment variables that would change what a node reads from its config file: a
/// user's shell set up for the CLI (`CORE_PEER_ADDRESS`, ...) must not reach the nodes.
fn scrub(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CORE_")
            || k.starts_with("ORDERER_")
            || k.starts_with("CHAINCODE_")
            || k == "FABRIC_CFG_PATH"
            || k == "WEFT_LOG"
        {
            cmd.env_remove(k);
        }
    }
}

/// Start `program args` with `env`, output appended to `log`.
pub fn spawn(
    name: &str,
    program: &Path,
    args: &[&str],
    env: &[(&str, String)],
    log: &Path,
) -> Result<Proc, String> {
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| format!("cannot open the log file {}: {e}", log.display()))
    };
    let out = open()?;
    let err = open()?;
    let mut cmd = Command::new(program);
    scrub(&mut cmd);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {name} ({}): {e}", program.display()))?;
    let started = start_time(child.id()).unwrap_or(0);
    Ok(Proc {
        name: name.to_owned(),
        child,
        log: log.to_owned(),
        started,
    })
}

impl Proc {
    pub fn entry(&self) -> ProcessEntry {
        ProcessEntry {
            name: self.name.clone(),
            pid: self.child.id(),
            started: self.started,
            log: self.log.clone(),
        }
    }

    /// Wait until every address accepts TCP connections; fail early, with the log's tail, if
    /// the process exits.
    pub fn wait_listening(&mut self, addresses: &[&str], limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        for address in addresses {
            loop {
                if std::net::TcpStream::connect(address).is_ok() {
                    break;
                }
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!(
                        "{} exited ({status}) before listening on {address}; the end of its log \
                         ({}):\n{}",
                        self.name,
                        self.log.display(),
                        tail(&self.log, 15)
                    ));
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "{} is not listening on {address} after {limit:?}; the end of its log \
                         ({}):\n{}",
                        self.name,
                        self.log.display(),
                        tail(&self.log, 15)
                    ));
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        Ok(())
    }

    /// SIGTERM, then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        signal(self.child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::warn!(process = %self.name, "did not stop within {grace:?} of SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// The start time of `pid` (clock ticks after boot, field 22 of /proc/PID/stat).
pub fn start_time(pid: u32) -> Option<u64> {
    crate::procstat::number(&crate::procstat::read(pid)?, 22)
}

/// Whether the recorded process still runs (same pid, same start time, not a zombie).
pub fn alive(p: &ProcessEntry) -> bool {
    match crate::procstat::read(p.pid) {
        Some(stat) => {
            crate::procstat::field(&stat, 3) != Some("Z")
                && (p.started == 0 || crate::procstat::number(&stat, 22) == Some(p.started))
        }
        None => false,
    }
}

/// Stop a recorded process (not our child): SIGTERM, then SIGKILL after `grace`. Answers
/// whether it had to be killed.
pub fn stop_recorded(p: &ProcessEntry, grace: Duration) -> bool {
    if !alive(p) {
        return false;
    }
    signal(p.pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !alive(p) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(p) {
        signal(p.pid, rustix::process::Signal::KILL);
        return true;
    }
    false
}

/// The last `lines` lines of a log file (reading at most its last 64 KiB), indented.
pub fn tail(path: &Path, lines: usize) -> String {
    let mut buf = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let _ = f.read_to_end(&mut buf);
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    let from = all.len().saturating_sub(lines);
    if all.is_empty() {
        return "    (empty)".to_owned();
    }
    all[from..]
        .iter()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_process_is_started_watched_and_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("sleep.log");
        let mut p = spawn(
            "sleeper",
            Path::new("/bin/sh"),
            &["-c", "echo started; exec sleep 30"],
            &[],
            &log,
        )
        .unwrap();
        // The output reaches the log file.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !tail(&log, 5).contains("started") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(tail(&log, 5).contains("started"), "{}", tail(&log, 5));
        let e = p.entry();
        assert!(e.started > 0);
        assert!(alive(&e));
        // A recycled pid (other start time) is not the recorded process.
        let other = ProcessEntry {
            started: e.started + 1,
            ..e.clone()
        };
        assert!(!alive(&other));
        p.stop(Duration::from_secs(5));
        assert!(!alive(&e));
    }

    #[test]
    fn an_early_exit_is_reported_with_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("fail.log");
        let mut p = spawn(
            "failing node",
            Path::new("/bin/sh"),
            &["-c", "echo 'error: bad config'; exit 3"],
            &[],
            &log,
        )
        .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = p
            .wait_listening(&[&format!("127.0.0.1:{port}")], Duration::from_secs(10))
            .unwrap_err();
        assert!(e.contains("failing node exited"), "{e}");
        assert!(e.contains("error: bad config"), "{e}");
    }
}
