//! Fabric membership service providers for weft: organization crypto material in the layout Fabric's `cryptogen` writes, and MSP NodeOU config.
//!
//! - [`config`]: the `crypto-config.yaml` model (cryptogen's format plus optional weft
//!   extensions) and its validation.
//! - [`cryptogen`]: [`generate`] writes CAs, MSPs and TLS material for every org of a config.
//! - [`nodeou`]: an MSP's `config.yaml` (NodeOUs).
//! - [`msp`]: loading MSPs and validating identities ([`Msp`], [`MspManager`]), local signing
//!   identities ([`SigningIdentity`]).
//!
//! ```no_run
//! use std::path::Path;
//! use weft_msp::{generate, CryptoConfig, GenerateOptions};
//!
//! let config = CryptoConfig::from_file(Path::new("crypto-config.yaml"))?;
//! let report = generate(&config, Path::new("crypto-config"), &GenerateOptions { overwrite: false })?;
//! print!("{report}");
//! # Ok::<(), weft_msp::Error>(())
//! ```

pub mod config;
pub mod cryptogen;
mod error;
mod fsutil;
pub mod msp;
pub mod nodeou;
pub mod policy;

pub use config::{CryptoConfig, Curve, OrgKind, ResolvedOrg, Role};
pub use cryptogen::{
    default_network_config, generate, GenerateOptions, IdentityReport, OrgReport, Report,
    SAMPLE_CRYPTO_CONFIG,
};
pub use error::Error;
pub use msp::{
    serialize_identity, CertTime, IdentityError, Msp, MspManager, MspParts, NodeOuParts,
    Role as IdentityRole, RoleOuIdentifier, SigningIdentity, ValidatedIdentity,
};
pub use nodeou::MspConfig;
