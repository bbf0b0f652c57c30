//! The weft peer: chaincode packages and install, external builders, chaincode as a service,
//! per-launch chaincode certificates, and the peer's configuration.
//!
//! - [`config`]: `core.yaml` with `CORE_*` overrides; the chaincode listen/advertised address
//!   rules.
//! - [`launchcerts`]: the per-process ephemeral CA and the registry of per-launch chaincode
//!   client certificates that the chaincode service checks at registration (seed 000).
//! - [`chaincode_service`]: `ChaincodeSupport.Register` on the chaincode listener: mutual TLS
//!   with the ephemeral CA, every registration checked, connected chaincodes tracked.
//! - [`package`]: Fabric's chaincode package format, package ids, and the install store.
//! - [`builders`]: external builders (`detect`/`build`/`release`/`run`) and `connection.json`
//!   for chaincode as a service (seed 001).
//! - [`runtime`]: builds, launches (with per-launch credentials) or dials (chaincode as a
//!   service) chaincode on first use.
//! - [`handler`]: the peer's side of a registered chaincode stream: executions and the
//!   chaincode's state requests.
//! - [`simulator`]: a transaction's reads and writes over a snapshot of the state database,
//!   producing Fabric read/write sets.
//! - [`lifecycle_local`]: the channel-less `_lifecycle` calls (install, queryinstalled,
//!   getinstalledpackage) over the install store, for the peer's admins.
//! - [`endorser`]: `ProcessProposal`: header, tx id and creator checks, execution, signed
//!   endorsement.
//! - [`channel`]: the channels a peer serves (MSPs, state, chaincode definitions).
//! - [`committer`]: validate, store the block, apply its state; crash recovery; pipeline.
//! - [`deliverclient`]: pull blocks from the orderers over mutual TLS, check, commit.
//! - [`validator`]: a block's transactions -> validation codes and state updates.
//! - [`verifycache`]: bounded caches of verified signatures and validated identities.
//! - [`commit_events`]: per-channel notifications of committed blocks and tx results.
//! - [`gateway`]: the Fabric Gateway service (Evaluate, Endorse, Submit, CommitStatus,
//!   ChaincodeEvents).
//! - [`deliver`]: the peer's Deliver service (blocks and filtered blocks).

pub mod builders;
pub mod chaincode_service;
pub mod channel;
pub mod client;
pub mod commit_events;
pub mod committer;
pub mod config;
pub mod deliver;
pub mod deliverclient;
pub mod endorser;
pub mod gateway;
pub mod handler;
pub mod launchcerts;
pub mod lifecycle;
pub mod lifecycle_local;
pub mod node;
pub mod package;
pub mod runtime;
pub mod simulator;
mod sync;
pub mod testing;
pub mod validator;
pub mod verifycache;
