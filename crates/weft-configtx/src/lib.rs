//! Channel configuration for weft: Fabric's config tree as configtxgen lays it out, genesis
//! blocks, `configtx.yaml` profiles, and the parsed channel config every node works from.
//!
//! - [`channel`]: [`ChannelConfig`] parsed from a config block or a `common.Config`, with its
//!   orgs and MSPs, orderer settings, TLS roots, ACLs and pre-compiled policies, evaluated by
//!   Fabric path ([`ChannelConfig::evaluate_policy`]).
//! - [`policies`]: the compiled policy tree (signature and implicit meta policies).
//! - [`genesis`]: [`Profile`] and [`genesis_block`]: the config tree laid out as configtxgen
//!   does, wrapped in a genesis block.
//! - [`yaml`]: `configtx.yaml` ([`ConfigTxFile`]) to [`Profile`].
//! - [`mspdir`]: an org's `FabricMSPConfig` from its MSP directory.
//! - [`testing`]: [`testing::two_org_network`], material and genesis block for other crates'
//!   tests.
//! - [`keys`]: the names of Fabric's config groups, values and policies.
//! - [`units`]: Go durations and Fabric byte sizes.
//! - [`update`]: channel config updates: validating and applying a signed `ConfigUpdate`
//!   (orderer and peer), computing one from two configs, adding an org, anchor peers.
//! - [`nodeyaml`]: `core.yaml` / `orderer.yaml` with their `CORE_*` / `ORDERER_*` overrides
//!   (the loader peers and orderers share).
//!
//! ```no_run
//! # fn f(block: &weft_proto::common::Block, sigs: &[weft_msp::policy::SignedData<'_>]) -> Result<(), Box<dyn std::error::Error>> {
//! let config = weft_configtx::ChannelConfig::from_block(block)?;
//! config.evaluate_policy("/Channel/Application/Writers", sigs)?;
//! # Ok(()) }
//! ```

pub mod channel;
mod error;
pub mod genesis;
pub mod inspect;
pub mod keys;
pub mod mspdir;
pub mod nodeyaml;
pub mod policies;
pub mod testing;
pub mod units;
pub mod update;
pub mod yaml;

pub use channel::{
    config_from_block, BatchConfig, Capabilities, ChannelConfig, OrdererConfig, OrgConfig,
};
pub use error::{ConfigError, PolicyCheckError};
pub use genesis::{
    channel_group, genesis_block, genesis_block_from_config, genesis_config, ApplicationProfile,
    OrdererProfile, OrgProfile, PolicySpec, Profile,
};
pub use policies::PolicyInfo;
pub use update::UpdateError;
pub use yaml::ConfigTxFile;
