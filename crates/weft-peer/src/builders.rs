//! External builders and chaincode as a service, with Fabric's contract (seed 001).
//!
//! An external builder is a directory with programs the peer runs on a chaincode package:
//!
//! - `bin/detect SRC META`: exit status 0 claims the package. Builders are asked in
//!   configuration order and the first to claim it builds it.
//! - `bin/build SRC META BLD`: turns the package into something runnable in `BLD`.
//! - `bin/release BLD RELEASE` (optional): publishes metadata for the peer in `RELEASE`;
//!   `RELEASE/chaincode/server/connection.json` means "dial me" (chaincode as a service).
//! - `bin/run BLD RUNMETA` (optional): launches the chaincode, which then dials the peer with
//!   the values in `RUNMETA/chaincode.json`.
//!
//! `SRC` is the unpacked code archive of the package and `META` a directory holding its
//! `metadata.json`. Builders see only the environment variables their configuration
//! propagates plus `LD_LIBRARY_PATH`, `LIBPATH`, `PATH` and `TMPDIR`.
//!
//! - [`ExternalBuilder`]: one `chaincode.externalBuilders` entry, validated.
//! - [`BuilderSet`]: detect, build, release and reuse of finished builds; [`BuilderSet::run`]
//!   launches a built chaincode as a [`RunningChaincode`].
//! - [`ConnectionInfo`]: a parsed and validated `connection.json`, and the TLS client that
//!   dials the chaincode server it describes.
//!
//! The builders weft ships (`builders/ccaas`, `builders/binary` at the repository root) are
//! POSIX `sh` and `awk`, so a Fabric peer can use them as they are; see
//! `docs/EXTERNAL-BUILDERS.md`.

mod config;
mod connection;
mod duration;
mod process;
mod run;
mod set;

pub use config::{BuilderConfigError, ExternalBuilder, ALWAYS_PROPAGATED};
pub use connection::{ConnectionError, ConnectionInfo, DEFAULT_DIAL_TIMEOUT};
pub use duration::parse_go_duration;
pub use process::Step;
pub use run::{RunMetadata, RunningChaincode};
pub use set::{
    sanitize_package_id, BuildError, BuildResult, BuilderSet, StepTimeouts, BUILD_INFO_FILE,
};
