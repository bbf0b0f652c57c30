//! The weft ordering service: Fabric's `AtomicBroadcast` (Broadcast and Deliver) over mutual
//! TLS, channels joined through the channel participation API, blocks cut, signed and stored.
//!
//! - [`blockcutter`]: which envelopes go into which block (pure state machine).
//! - [`consensus`]: the consenter seam ([`consensus::Consenter`], [`consensus::Decision`]) and
//!   block assembly and signing ([`consensus::BlockSigner`]).
//! - [`wal`]: the consenter's write-ahead log; [`solo`]: the single-node consenter.
//! - [`chain`]: one channel (block store, config, consenter, block writer);
//!   [`registrar`]: the joined channels.
//! - [`authn`]: creator validation with a cache, signature and policy checks.
//! - [`broadcast`], [`deliver`]: the checks and streams of the two RPCs; [`service`]: tonic.
//! - [`config`]: `orderer.yaml` and `ORDERER_*`; [`node`]: the running orderer;
//!   [`admin`]: the channel participation API, [`admin_client`] its client.
//! - [`testing`]: a whole orderer in process for tests ([`testing::TestOrderer`]).

pub mod admin;
pub mod admin_client;
pub mod authn;
pub mod blockcutter;
pub mod broadcast;
pub mod chain;
pub mod config;
pub mod consensus;
pub mod deliver;
pub mod multipart;
pub mod node;
pub mod registrar;
pub mod service;
pub mod solo;
pub mod testing;
pub mod wal;

pub use config::OrdererConfig;
pub use node::{OrdererNode, StartError};
