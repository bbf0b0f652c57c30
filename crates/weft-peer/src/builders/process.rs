//! Running a builder's programs: the environment, logging of their output, timeouts, and
//! signals to their process group.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::fmt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use super::config::ExternalBuilder;

/// One of the programs of an external builder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Detect,
    Build,
    Release,
    Run,
}

impl Step {
    pub fn program_name(self) -> &'static str {
        match self {
            Step::Detect => "detect",
            Step::Build => "build",
            Step::Release => "release",
            Step::Run => "run",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bin/{}", self.program_name())
    }
}

/// How many lines of a program's standard error an error message quotes.
pub(crate) const STDERR_TAIL_LINES: usize = 20;
/// Longer lines are cut into pieces of this many bytes.
const MAX_LINE: usize = 4096;
/// How long to keep reading output after a program exited (descendants may hold the pipes).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A command for one of `builder`'s programs, with the builder's environment only: the
/// variables it propagates plus [`super::ALWAYS_PROPAGATED`], taken from the peer's
/// environment. It runs in a process group of its own, so that it and its descendants can be
/// signalled together.
pub(crate) fn command<I, S>(builder: &ExternalBuilder, step: Step, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(builder.program(step));
    cmd.args(args);
    cmd.env_clear();
    for name in builder.environment_names() {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    cmd
}

/// Where a line of output came from, for the log.
#[derive(Debug, Clone)]
pub(crate) struct LogContext {
    pub builder: String,
    pub step: Step,
    pub package_id: String,
    /// Detect output is logged at DEBUG (declining is normal), the rest at INFO.
    pub debug: bool,
}

/// The last lines of a stream.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
}

impl Tail {
    fn push(&mut self, line: String) {
        if self.lines.len() == STDERR_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// Tasks copying a child's standard output and error into the log.
#[derive(Debug)]
pub(crate) struct Pumps {
    tasks: Vec<JoinHandle<()>>,
    stderr_tail: Arc<Mutex<Tail>>,
}

impl Pumps {
    pub fn start(child: &mut Child, ctx: LogContext) -> Pumps {
        let ctx = Arc::new(ctx);
        let stderr_tail = Arc::new(Mutex::new(Tail::default()));
        let mut tasks = Vec::new();
        if let Some(out) = child.stdout.take() {
            tasks.push(tokio::spawn(pump(out, ctx.clone(), "stdout", None)));
        }
        if let Some(err) = child.stderr.take() {
            tasks.push(tokio::spawn(pump(
                err,
                ctx,
                "stderr",
                Some(stderr_tail.clone()),
            )));
        }
        Pumps { tasks, stderr_tail }
    }

    /// Waits (briefly) for the output to end, then returns the last lines of stderr.
    pub async fn finish(&mut self) -> Vec<String> {
        for task in &mut self.tasks {
            if tokio::time::timeout(DRAIN_GRACE, &mut *task).await.is_err() {
                task.abort();
            }
        }
        self.tasks.clear();
        self.tail()
    }

    pub fn tail(&self) -> Vec<String> {
        match self.stderr_tail.lock() {
            Ok(t) => t.lines.iter().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().lines.iter().cloned().collect(),
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    ctx: Arc<LogContext>,
    stream: &'static str,
    tail: Option<Arc<Mutex<Tail>>>,
) {
    let mut reader = BufReader::new(reader);
    let mut line: Vec<u8> = Vec::new();
    loop {
        let (used, complete) = match reader.fill_buf().await {
            Err(_) => break,
            Ok([]) => {
                if !line.is_empty() {
                    emit(&ctx, stream, &line, tail.as_deref());
                }
                break;
            }
            Ok(buf) => match buf.iter().position(|b| *b == b'\n') {
                Some(i) if line.len() + i <= MAX_LINE => {
                    line.extend_from_slice(&buf[..i]);
                    (i + 1, true)
                }
                _ => {
                    let n = buf.len().min(MAX_LINE - line.len());
                    line.extend_from_slice(&buf[..n]);
                    (n, line.len() >= MAX_LINE)
                }
            },
        };
        reader.consume(used);
        if complete {
            emit(&ctx, stream, &line, tail.as_deref());
            line.clear();
        }
    }
}

fn emit(ctx: &LogContext, stream: &'static str, raw: &[u8], tail: Option<&Mutex<Tail>>) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw).into_owned();
    if ctx.debug {
        tracing::debug!(builder = %ctx.builder, step = %ctx.step, package_id = %ctx.package_id, stream, "{text}");
    } else {
        tracing::info!(builder = %ctx.builder, step = %ctx.step, package_id = %ctx.package_id, stream, "{text}");
    }
    if let Some(tail) = tail {
        match tail.lock() {
            Ok(mut t) => t.push(text),
            Err(poisoned) => poisoned.into_inner().push(text),
        }
    }
}

/// "exit code 3", "killed by signal 9".
pub(crate) fn describe_status(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The outcome of a program run to completion.
#[derive(Debug)]
pub(crate) enum Finished {
    Exited {
        status: ExitStatus,
        stderr_tail: Vec<String>,
    },
    TimedOut {
        stderr_tail: Vec<String>,
    },
    WaitFailed(std::io::Error),
}

/// Runs a spawned program to completion, logging its output; past `timeout` its whole process
/// group is killed.
pub(crate) async fn finish(mut child: Child, ctx: LogContext, timeout: Duration) -> Finished {
    let pgid = child.id();
    // Should the caller stop waiting (the future dropped), the whole group is killed, not
    // only the program itself.
    let mut guard = GroupGuard(pgid);
    let mut pumps = Pumps::start(&mut child, ctx);
    let outcome = tokio::time::timeout(timeout, child.wait()).await;
    // Past this point the program has exited or is killed below.
    guard.0 = None;
    match outcome {
        Ok(Ok(status)) => Finished::Exited {
            status,
            stderr_tail: pumps.finish().await,
        },
        Ok(Err(e)) => {
            pumps.finish().await;
            Finished::WaitFailed(e)
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                signal_group(pgid, "KILL").await;
            }
            let _ = child.kill().await;
            Finished::TimedOut {
                stderr_tail: pumps.finish().await,
            }
        }
    }
}

/// Kills a process group when dropped while still armed.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            signal_group_blocking(pgid, "KILL");
        }
    }
}

fn kill_command(pgid: u32, signal: &str) -> Option<std::process::Command> {
    // Never signal "all processes" (-1) or our own group (0).
    if pgid <= 1 {
        return None;
    }
    let mut cmd = std::process::Command::new("kill");
    cmd.arg("-s")
        .arg(signal)
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Some(cmd)
}

/// Sends `signal` (`TERM`, `KILL`) to a process group. std has no way to send SIGTERM or to
/// signal a group, so this runs the POSIX `kill` utility. False when it could not be sent.
pub(crate) async fn signal_group(pgid: u32, signal: &str) -> bool {
    match kill_command(pgid, signal) {
        Some(cmd) => Command::from(cmd)
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false),
        None => false,
    }
}

/// [`signal_group`] for `Drop`, where nothing can be awaited.
pub(crate) fn signal_group_blocking(pgid: u32, signal: &str) -> bool {
    match kill_command(pgid, signal) {
        Some(mut cmd) => cmd.status().map(|s| s.success()).unwrap_or(false),
        None => false,
    }
}
