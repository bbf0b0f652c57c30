//! Launching built chaincode with `bin/run BLD RUNMETA`.

use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::process::Child;

use super::process::{self, describe_status, LogContext, Pumps, Step};
use super::set::{sanitize_package_id, write_private, BuildError, BuildResult, BuilderSet};

/// What a launched chaincode needs to dial the peer, written as `RUNMETA/chaincode.json` with
/// Fabric's field names (`chaincode_id`, `peer_address`, `client_cert`, `client_key`,
/// `root_cert`, `mspid`). The PEM fields are all empty when the peer runs without TLS.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RunMetadata {
    /// The package id the chaincode registers as.
    pub chaincode_id: String,
    /// The peer's chaincode service address (`host:port`).
    pub peer_address: String,
    /// The per-launch client certificate (PEM).
    pub client_cert_pem: String,
    /// Its private key (PEM).
    pub client_key_pem: String,
    /// The CA certificate that issued the peer's chaincode-service certificate (PEM).
    pub root_cert_pem: String,
    /// The peer's MSP id.
    pub mspid: String,
}

impl fmt::Debug for RunMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        f.debug_struct("RunMetadata")
            .field("chaincode_id", &self.chaincode_id)
            .field("peer_address", &self.peer_address)
            .field("tls", &!self.client_cert_pem.is_empty())
            .field("mspid", &self.mspid)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct ChaincodeJson<'a> {
    chaincode_id: &'a str,
    peer_address: &'a str,
    client_cert: &'a str,
    client_key: &'a str,
    root_cert: &'a str,
    mspid: &'a str,
}

impl RunMetadata {
    /// The contents of `chaincode.json`.
    pub fn to_chaincode_json(&self) -> Vec<u8> {
        let json = ChaincodeJson {
            chaincode_id: &self.chaincode_id,
            peer_address: &self.peer_address,
            client_cert: &self.client_cert_pem,
            client_key: &self.client_key_pem,
            root_cert: &self.root_cert_pem,
            mspid: &self.mspid,
        };
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(&json).unwrap_or_default()
    }

    fn check(&self, package_id: &str) -> Result<(), BuildError> {
        let bad = |detail: &str| BuildError::BadRunMetadata {
            package_id: package_id.to_owned(),
            detail: detail.to_owned(),
        };
        if self.chaincode_id.is_empty() {
            return Err(bad("chaincode_id is empty"));
        }
        if self.peer_address.is_empty() {
            return Err(bad("peer_address is empty"));
        }
        let present = [
            &self.client_cert_pem,
            &self.client_key_pem,
            &self.root_cert_pem,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .count();
        if present != 0 && present != 3 {
            return Err(bad(
                "give the client certificate, its key and the root certificate together (with TLS), or none of them (without TLS)",
            ));
        }
        Ok(())
    }
}

static RUN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh private (0700) directory for one launch.
fn create_runmeta(parent: &Path, package_id: &str) -> Result<PathBuf, BuildError> {
    let base = sanitize_package_id(package_id);
    let mut last_err = None;
    for _ in 0..16 {
        let n = RUN_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = parent.join(format!(
            "weft-run-{base}-{}-{n}-{nanos:08x}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(source) => {
                return Err(BuildError::Io {
                    action: "cannot create run directory",
                    path: dir,
                    source,
                })
            }
        }
    }
    Err(BuildError::Io {
        action: "cannot create run directory in",
        path: parent.to_owned(),
        source: last_err.unwrap_or_else(|| std::io::Error::other("no unique name found")),
    })
}

impl BuilderSet {
    /// Launches a built chaincode: writes `RUNMETA/chaincode.json` (mode 0600, in a fresh
    /// 0700 directory) and starts `bin/run BLD RUNMETA` of the builder that built it, with the
    /// builder's environment. Its output goes to the log with the package id. `RUNMETA` is
    /// removed when the chaincode stops.
    pub async fn run(
        &self,
        build: &BuildResult,
        run: RunMetadata,
    ) -> Result<RunningChaincode, BuildError> {
        let package_id = build.package_id.as_str();
        if let Some(conn) = &build.connection {
            return Err(BuildError::IsServer {
                package_id: package_id.to_owned(),
                connection: conn.source_name().to_owned(),
                address: conn.address().to_owned(),
            });
        }
        let Some(builder) = self.builder(&build.builder) else {
            return Err(BuildError::BuilderGone {
                package_id: package_id.to_owned(),
                builder: build.builder.clone(),
                record: build.build_dir.join(super::BUILD_INFO_FILE),
                dir: build.build_dir.clone(),
            });
        };
        if !builder.has(Step::Run) {
            return Err(BuildError::NoRun {
                builder: builder.name.clone(),
                package_id: package_id.to_owned(),
            });
        }
        run.check(package_id)?;

        let runmeta = create_runmeta(&self.run_dir(), package_id)?;
        let written = write_private(&runmeta.join("chaincode.json"), &run.to_chaincode_json());
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&runmeta);
            return Err(e);
        }
        let spawned = process::command(
            builder,
            Step::Run,
            [build.bld_dir.as_os_str(), runmeta.as_os_str()],
        )
        .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(source) => {
                let _ = std::fs::remove_dir_all(&runmeta);
                return Err(BuildError::Spawn {
                    builder: builder.name.clone(),
                    step: Step::Run,
                    program: builder.program(Step::Run),
                    source,
                });
            }
        };
        let pumps = Pumps::start(
            &mut child,
            LogContext {
                builder: builder.name.clone(),
                step: Step::Run,
                package_id: package_id.to_owned(),
                debug: false,
            },
        );
        tracing::info!(package_id, builder = %builder.name, pid = child.id(), "chaincode launched with bin/run");
        Ok(RunningChaincode {
            package_id: package_id.to_owned(),
            builder: builder.name.clone(),
            program: builder.program(Step::Run),
            pgid: child.id(),
            child,
            runmeta,
            runmeta_removed: false,
            status: None,
            pumps,
        })
    }
}

/// A chaincode launched by `bin/run`. Wait for it to exit, stop it (SIGTERM, then SIGKILL),
/// or kill it; dropping it kills it. Signals go to the whole process group of `bin/run`, so
/// they reach the chaincode it started. `RUNMETA` is removed once it has stopped.
#[derive(Debug)]
pub struct RunningChaincode {
    package_id: String,
    builder: String,
    program: PathBuf,
    pgid: Option<u32>,
    child: Child,
    runmeta: PathBuf,
    runmeta_removed: bool,
    status: Option<ExitStatus>,
    pumps: Pumps,
}

impl RunningChaincode {
    pub fn package_id(&self) -> &str {
        &self.package_id
    }

    pub fn builder(&self) -> &str {
        &self.builder
    }

    /// The process id of `bin/run` (also its process group id), while it runs.
    pub fn id(&self) -> Option<u32> {
        if self.status.is_some() {
            None
        } else {
            self.pgid
        }
    }

    /// The `RUNMETA` directory given to `bin/run` (removed once the chaincode stopped).
    pub fn runmeta_dir(&self) -> &Path {
        &self.runmeta
    }

    /// The exit status, once known.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Waits for `bin/run` to exit.
    pub async fn wait(&mut self) -> Result<ExitStatus, BuildError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.child.wait().await.map_err(|source| BuildError::Io {
            action: "cannot wait for",
            path: self.program.clone(),
            source,
        })?;
        self.pumps.finish().await;
        Ok(self.exited(status))
    }

    /// The exit status if `bin/run` has exited, without waiting.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, BuildError> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        match self.child.try_wait() {
            Ok(Some(status)) => Ok(Some(self.exited(status))),
            Ok(None) => Ok(None),
            Err(source) => Err(BuildError::Io {
                action: "cannot wait for",
                path: self.program.clone(),
                source,
            }),
        }
    }

    /// Asks the chaincode to stop (SIGTERM to its process group), and kills it if it is still
    /// running after `grace` (Fabric waits 5 s).
    pub async fn stop(&mut self, grace: Duration) -> Result<ExitStatus, BuildError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let sent = match self.pgid {
            Some(pgid) => process::signal_group(pgid, "TERM").await,
            None => false,
        };
        if sent {
            if let Ok(waited) = tokio::time::timeout(grace, self.wait()).await {
                return waited;
            }
            tracing::warn!(package_id = %self.package_id, "chaincode did not stop within {grace:?} of SIGTERM; killing it");
        }
        self.kill().await
    }

    /// Kills the chaincode's process group (SIGKILL) and waits for `bin/run` to exit.
    pub async fn kill(&mut self) -> Result<ExitStatus, BuildError> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        if let Some(pgid) = self.pgid {
            process::signal_group(pgid, "KILL").await;
        }
        let _ = self.child.start_kill();
        self.wait().await
    }

    fn exited(&mut self, status: ExitStatus) -> ExitStatus {
        self.status = Some(status);
        tracing::info!(package_id = %self.package_id, builder = %self.builder, "chaincode exited ({})", describe_status(&status));
        self.remove_runmeta();
        status
    }

    fn remove_runmeta(&mut self) {
        if self.runmeta_removed {
            return;
        }
        match std::fs::remove_dir_all(&self.runmeta) {
            Ok(()) => self.runmeta_removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.runmeta_removed = true,
            Err(e) => {
                tracing::warn!(package_id = %self.package_id, "cannot remove {}: {e}", self.runmeta.display());
            }
        }
    }
}

impl Drop for RunningChaincode {
    fn drop(&mut self) {
        if self.status.is_none() {
            if let Some(pgid) = self.pgid {
                process::signal_group_blocking(pgid, "KILL");
            }
            let _ = self.child.start_kill();
            // Reap it if it is already gone; otherwise tokio reaps it in the background.
            let _ = self.child.try_wait();
        }
        self.remove_runmeta();
    }
}
