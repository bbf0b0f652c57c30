//! The configured builders: detect, build, release, and reuse of finished builds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::{BuilderConfigError, ExternalBuilder};
use super::connection::{ConnectionError, ConnectionInfo};
use super::process::{self, describe_status, Finished, LogContext, Step};

/// The file in a package's build directory that records which builder built it. Written
/// last, only after build and release succeeded; a directory without it is rebuilt.
pub const BUILD_INFO_FILE: &str = "build-info.json";

/// Time limits for the builder programs that must finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepTimeouts {
    /// `bin/detect`; past it the builder counts as declining. Default 1 minute.
    pub detect: Duration,
    /// `bin/build`. Default 15 minutes.
    pub build: Duration,
    /// `bin/release`. Default 5 minutes.
    pub release: Duration,
}

impl Default for StepTimeouts {
    fn default() -> Self {
        StepTimeouts {
            detect: Duration::from_secs(60),
            build: Duration::from_secs(15 * 60),
            release: Duration::from_secs(5 * 60),
        }
    }
}

/// A failure to build or launch chaincode with an external builder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No builder claimed the package.
    #[error("no external builder claimed chaincode package {package_id} (asked: {asked}); check \"type\" in the package's metadata.json and chaincode.externalBuilders in core.yaml")]
    NotClaimed { package_id: String, asked: String },
    /// A program exited unsuccessfully.
    #[error(
        "external builder '{builder}' {step} failed for {package_id} with {status}{}",
        quote_tail(stderr_tail)
    )]
    StepFailed {
        builder: String,
        step: Step,
        package_id: String,
        /// "exit code N" or "killed by signal N".
        status: String,
        exit_code: Option<i32>,
        stderr_tail: Vec<String>,
    },
    /// A program ran past its time limit and was killed.
    #[error("external builder '{builder}' {step} for {package_id} did not finish within {timeout:?} and was killed{}", quote_tail(stderr_tail))]
    Timeout {
        builder: String,
        step: Step,
        package_id: String,
        timeout: Duration,
        stderr_tail: Vec<String>,
    },
    /// A program could not be started.
    #[error("cannot start external builder '{builder}' {step} ({program}): {source}")]
    Spawn {
        builder: String,
        step: Step,
        program: PathBuf,
        source: std::io::Error,
    },
    /// A file or directory of the build could not be handled.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The package id cannot name a directory.
    #[error("package id {package_id:?} cannot be used: {detail}")]
    BadPackageId { package_id: String, detail: String },
    /// A finished build names a builder that is no longer configured.
    #[error("chaincode {package_id} was built by external builder '{builder}' (see {record}), which is not in chaincode.externalBuilders any more; add it back, or remove {dir} to rebuild")]
    BuilderGone {
        package_id: String,
        builder: String,
        record: PathBuf,
        dir: PathBuf,
    },
    /// The build record is not readable JSON.
    #[error("{record}: unreadable build record ({detail}); remove {dir} to rebuild")]
    BadBuildRecord {
        record: PathBuf,
        dir: PathBuf,
        detail: String,
    },
    /// The builder has no `bin/run`.
    #[error(
        "external builder '{builder}' has no bin/run, so chaincode {package_id} cannot be launched"
    )]
    NoRun { builder: String, package_id: String },
    /// The chaincode is a server to dial, not a program to run.
    #[error("chaincode {package_id} is a chaincode server ({connection}): dial {address} instead of launching it")]
    IsServer {
        package_id: String,
        connection: String,
        address: String,
    },
    /// The launch values are inconsistent.
    #[error("cannot launch {package_id}: {detail}")]
    BadRunMetadata { package_id: String, detail: String },
    /// The released `connection.json` is unusable.
    #[error("external builder '{builder}' released an unusable connection.json for {package_id}: {source}")]
    Connection {
        builder: String,
        package_id: String,
        source: Box<ConnectionError>,
    },
}

fn quote_tail(lines: &[String]) -> String {
    if lines.is_empty() {
        return "; it wrote nothing to stderr".to_owned();
    }
    let mut s = String::from("; last lines of its stderr:");
    for line in lines {
        let _ = write!(s, "\n  | {line}");
    }
    s
}

/// A built package: where its output lives and, for chaincode as a service, how to dial it.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub package_id: String,
    /// The builder that built it.
    pub builder: String,
    /// `<builds_dir>/<sanitized package id>`, holding `bld/`, `release/` and
    /// [`BUILD_INFO_FILE`].
    pub build_dir: PathBuf,
    pub bld_dir: PathBuf,
    pub release_dir: PathBuf,
    /// `release/chaincode/server/connection.json`, when the builder released one: dial the
    /// chaincode instead of running it.
    pub connection: Option<ConnectionInfo>,
    /// True when an earlier, completed build was reused.
    pub reused: bool,
}

#[derive(Serialize, Deserialize)]
struct BuildInfo {
    builder_name: String,
}

/// The external builders of a peer, in configuration order.
#[derive(Debug)]
pub struct BuilderSet {
    builders: Vec<ExternalBuilder>,
    timeouts: StepTimeouts,
    run_dir: Option<PathBuf>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Fabric's file-name form of a package id: `<>:"/\|?*&` become `-`.
pub fn sanitize_package_id(package_id: &str) -> String {
    package_id
        .chars()
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*' | '&' => '-',
            other => other,
        })
        .collect()
}

impl BuilderSet {
    /// Validates every builder (see [`ExternalBuilder::validate`]) and that names are unique.
    pub fn new(builders: Vec<ExternalBuilder>) -> Result<Self, BuilderConfigError> {
        for (i, builder) in builders.iter().enumerate() {
            builder.validate()?;
            if builders[..i].iter().any(|b| b.name == builder.name) {
                return Err(BuilderConfigError::DuplicateName {
                    name: builder.name.clone(),
                });
            }
        }
        Ok(BuilderSet {
            builders,
            timeouts: StepTimeouts::default(),
            run_dir: None,
            locks: Mutex::new(HashMap::new()),
        })
    }

    pub fn with_timeouts(mut self, timeouts: StepTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Where `RUNMETA` directories are created (default: the system temporary directory).
    pub fn with_run_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run_dir = Some(dir.into());
        self
    }

    pub fn builders(&self) -> &[ExternalBuilder] {
        &self.builders
    }

    pub fn is_empty(&self) -> bool {
        self.builders.is_empty()
    }

    pub fn timeouts(&self) -> StepTimeouts {
        self.timeouts
    }

    pub(crate) fn run_dir(&self) -> PathBuf {
        self.run_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    pub(crate) fn builder(&self, name: &str) -> Option<&ExternalBuilder> {
        self.builders.iter().find(|b| b.name == name)
    }

    /// The directory a package's build output lives in: `<builds_dir>/<sanitized id>`.
    pub fn build_dir(builds_dir: &Path, package_id: &str) -> Result<PathBuf, BuildError> {
        let name = sanitize_package_id(package_id);
        let bad = |detail: &str| BuildError::BadPackageId {
            package_id: package_id.to_owned(),
            detail: detail.to_owned(),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(bad("it is empty or a relative directory name"));
        }
        if name.contains('\0') {
            return Err(bad("it contains a NUL byte"));
        }
        Ok(builds_dir.join(name))
    }

    /// A finished build of `package_id` under `builds_dir`, if there is one.
    pub fn cached(
        &self,
        package_id: &str,
        builds_dir: &Path,
    ) -> Result<Option<BuildResult>, BuildError> {
        let dir = Self::build_dir(builds_dir, package_id)?;
        let record = dir.join(BUILD_INFO_FILE);
        let bytes = match std::fs::read(&record) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(BuildError::Io {
                    action: "cannot read build record",
                    path: record,
                    source,
                })
            }
        };
        let info: BuildInfo =
            serde_json::from_slice(&bytes).map_err(|e| BuildError::BadBuildRecord {
                record: record.clone(),
                dir: dir.clone(),
                detail: e.to_string(),
            })?;
        let Some(builder) = self.builder(&info.builder_name) else {
            return Err(BuildError::BuilderGone {
                package_id: package_id.to_owned(),
                builder: info.builder_name,
                record,
                dir,
            });
        };
        let result = self.result(package_id, &builder.name, dir, true)?;
        Ok(Some(result))
    }

    fn result(
        &self,
        package_id: &str,
        builder: &str,
        build_dir: PathBuf,
        reused: bool,
    ) -> Result<BuildResult, BuildError> {
        let bld_dir = build_dir.join("bld");
        let release_dir = build_dir.join("release");
        let conn_path = release_dir.join("chaincode/server/connection.json");
        let connection = if conn_path.exists() {
            Some(ConnectionInfo::from_file(&conn_path).map_err(|source| {
                BuildError::Connection {
                    builder: builder.to_owned(),
                    package_id: package_id.to_owned(),
                    source: Box::new(source),
                }
            })?)
        } else {
            None
        };
        Ok(BuildResult {
            package_id: package_id.to_owned(),
            builder: builder.to_owned(),
            build_dir,
            bld_dir,
            release_dir,
            connection,
            reused,
        })
    }

    fn lock_for(&self, package_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(package_id.to_owned()).or_default().clone()
    }

    /// Builds `package_id` with the first builder whose `bin/detect` claims it, unless a
    /// finished build is already in `builds_dir` (then that one is returned, `reused` set).
    ///
    /// `src` is the unpacked code archive; `metadata_json` the package's `metadata.json`.
    /// Output goes to `<builds_dir>/<sanitized id>/{bld,release}` (Fabric's layout under
    /// `<fileSystemPath>/externalbuilders/builds`), moved there from a scratch directory once
    /// build and release succeeded; the build record is written last. Builds of one package
    /// are serialized.
    pub async fn build(
        &self,
        package_id: &str,
        src: &Path,
        metadata_json: &[u8],
        builds_dir: &Path,
    ) -> Result<BuildResult, BuildError> {
        let final_dir = Self::build_dir(builds_dir, package_id)?;
        let lock = self.lock_for(package_id);
        let _guard = lock.lock().await;

        if let Some(done) = self.cached(package_id, builds_dir)? {
            tracing::debug!(package_id, builder = %done.builder, dir = %done.build_dir.display(), "reusing finished external build");
            return Ok(done);
        }

        mkdir_all(builds_dir)?;
        let scratch = Scratch::create(builds_dir, package_id)?;
        let meta_dir = scratch.path.join("metadata");
        let bld = scratch.path.join("bld");
        let release = scratch.path.join("release");
        for dir in [&meta_dir, &bld, &release] {
            mkdir(dir)?;
        }
        let metadata_file = meta_dir.join("metadata.json");
        write_private(&metadata_file, metadata_json)?;

        let Some(builder) = self.detect(package_id, src, &meta_dir).await else {
            return Err(BuildError::NotClaimed {
                package_id: package_id.to_owned(),
                asked: if self.builders.is_empty() {
                    "none configured".to_owned()
                } else {
                    self.builders
                        .iter()
                        .map(|b| format!("'{}'", b.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        };
        tracing::info!(package_id, builder = %builder.name, "building chaincode with external builder");

        self.step(
            builder,
            Step::Build,
            package_id,
            [src.as_os_str(), meta_dir.as_os_str(), bld.as_os_str()],
            self.timeouts.build,
        )
        .await?;
        if builder.has(Step::Release) {
            self.step(
                builder,
                Step::Release,
                package_id,
                [bld.as_os_str(), release.as_os_str()],
                self.timeouts.release,
            )
            .await?;
        }

        // A directory without a build record is a leftover of an interrupted build.
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir).map_err(|source| BuildError::Io {
                action: "cannot remove the incomplete build",
                path: final_dir.clone(),
                source,
            })?;
        }
        mkdir(&final_dir)?;
        rename(&bld, &final_dir.join("bld"))?;
        rename(&release, &final_dir.join("release"))?;
        drop(scratch);

        // Refuse an unusable connection.json before recording the build as finished, so a
        // corrected configuration (e.g. CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG) rebuilds it.
        let result = self.result(package_id, &builder.name, final_dir.clone(), false)?;

        let record = serde_json::to_vec(&BuildInfo {
            builder_name: builder.name.clone(),
        })
        .map_err(|e| BuildError::Io {
            action: "cannot encode build record",
            path: final_dir.join(BUILD_INFO_FILE),
            source: std::io::Error::other(e),
        })?;
        let tmp = final_dir.join(format!(".{BUILD_INFO_FILE}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, &record)?;
        rename(&tmp, &final_dir.join(BUILD_INFO_FILE))?;
        tracing::info!(package_id, builder = %builder.name, dir = %final_dir.display(), chaincode_server = result.connection.is_some(), "external build finished");
        Ok(result)
    }

    async fn detect(
        &self,
        package_id: &str,
        src: &Path,
        meta_dir: &Path,
    ) -> Option<&ExternalBuilder> {
        for builder in &self.builders {
            let ctx = LogContext {
                builder: builder.name.clone(),
                step: Step::Detect,
                package_id: package_id.to_owned(),
                debug: true,
            };
            let cmd = process::command(builder, Step::Detect, [src, meta_dir]).spawn();
            let child = match cmd {
                Ok(child) => child,
                Err(e) => {
                    tracing::warn!(package_id, builder = %builder.name, "cannot start {}: {e}", builder.program(Step::Detect).display());
                    continue;
                }
            };
            match process::finish(child, ctx, self.timeouts.detect).await {
                Finished::Exited { status, .. } if status.success() => {
                    tracing::debug!(package_id, builder = %builder.name, "bin/detect claimed the package");
                    return Some(builder);
                }
                Finished::Exited {
                    status,
                    stderr_tail,
                } => {
                    tracing::debug!(package_id, builder = %builder.name, "bin/detect declined ({}): {}", describe_status(&status), stderr_tail.join(" / "));
                }
                Finished::TimedOut { .. } => {
                    tracing::warn!(package_id, builder = %builder.name, "bin/detect did not answer within {:?}; counted as declining", self.timeouts.detect);
                }
                Finished::WaitFailed(e) => {
                    tracing::warn!(package_id, builder = %builder.name, "bin/detect could not be waited for: {e}");
                }
            }
        }
        None
    }

    async fn step<const N: usize>(
        &self,
        builder: &ExternalBuilder,
        step: Step,
        package_id: &str,
        args: [&std::ffi::OsStr; N],
        timeout: Duration,
    ) -> Result<(), BuildError> {
        let child = process::command(builder, step, args)
            .spawn()
            .map_err(|source| BuildError::Spawn {
                builder: builder.name.clone(),
                step,
                program: builder.program(step),
                source,
            })?;
        let ctx = LogContext {
            builder: builder.name.clone(),
            step,
            package_id: package_id.to_owned(),
            debug: false,
        };
        match process::finish(child, ctx, timeout).await {
            Finished::Exited { status, .. } if status.success() => Ok(()),
            Finished::Exited {
                status,
                stderr_tail,
            } => Err(BuildError::StepFailed {
                builder: builder.name.clone(),
                step,
                package_id: package_id.to_owned(),
                status: describe_status(&status),
                exit_code: status.code(),
                stderr_tail,
            }),
            Finished::TimedOut { stderr_tail } => Err(BuildError::Timeout {
                builder: builder.name.clone(),
                step,
                package_id: package_id.to_owned(),
                timeout,
                stderr_tail,
            }),
            Finished::WaitFailed(source) => Err(BuildError::Io {
                action: "cannot wait for",
                path: builder.program(step),
                source,
            }),
        }
    }
}

/// The scratch directory of one build (`<builds_dir>/.<id>.building`), removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(builds_dir: &Path, package_id: &str) -> Result<Self, BuildError> {
        let path = builds_dir.join(format!(".{}.building", sanitize_package_id(package_id)));
        // Builds of one package are serialized, so an existing one is a crash's leftover.
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| BuildError::Io {
                action: "cannot remove the leftover scratch directory",
                path: path.clone(),
                source,
            })?;
        }
        mkdir(&path)?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub(crate) fn mkdir(path: &Path) -> Result<(), BuildError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|source| BuildError::Io {
            action: "cannot create directory",
            path: path.to_owned(),
            source,
        })
}

fn mkdir_all(path: &Path) -> Result<(), BuildError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(path)
        .map_err(|source| BuildError::Io {
            action: "cannot create directory",
            path: path.to_owned(),
            source,
        })
}

fn rename(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::rename(from, to).map_err(|source| BuildError::Io {
        action: "cannot move build output to",
        path: to.to_owned(),
        source,
    })
}

/// Writes a new file readable by the owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), BuildError> {
    use std::io::Write as _;
    let io = |source| BuildError::Io {
        action: "cannot write",
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}
