//! Errors of channel configuration: each names where the problem is (a config path such as
//! `/Channel/Application/Org1MSP/MSP`, a file, a profile) and what to do about it.

use weft_msp::policy::PolicyError;

/// Why a channel config, a profile or a configtx.yaml cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The block (or envelope) does not carry a channel config.
    #[error("{what}: {detail}")]
    NotConfig { what: String, detail: String },

    /// Something in the config tree is missing or invalid; `path` is Fabric's config path.
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },

    /// A file or directory that the profile names could not be read or is malformed.
    #[error("{file}: {detail}")]
    File { file: String, detail: String },

    /// configtx.yaml does not parse or does not have the expected shape.
    #[error("{file}: {detail}")]
    Yaml { file: String, detail: String },

    /// The profile asked for does not exist, or is incomplete.
    #[error("{detail}")]
    Profile { detail: String },
}

impl ConfigError {
    pub(crate) fn invalid(path: impl Into<String>, detail: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn file(file: impl std::fmt::Display, detail: impl Into<String>) -> ConfigError {
        ConfigError::File {
            file: file.to_string(),
            detail: detail.into(),
        }
    }
}

/// Why a policy check failed: no such policy, or the signers do not satisfy it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyCheckError {
    /// No policy at that path in the channel config.
    #[error("channel '{channel}' has no policy '{path}'; its policies are: {}", known.join(", "))]
    NotFound {
        channel: String,
        path: String,
        known: Vec<String>,
    },

    /// The signers do not satisfy the policy; `source` explains which rule failed and why,
    /// and lists signatures that did not count.
    #[error("channel '{channel}': policy '{path}' not satisfied: {source}")]
    NotSatisfied {
        channel: String,
        path: String,
        #[source]
        source: PolicyError,
    },
}
