use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading a crypto config or generating organization material.
///
/// Every message names what failed (the config file or org, the path on disk) and what to do
/// about it, so the CLI can print it as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The crypto config file could not be read.
    #[error("cannot read crypto config '{}': {source}; check the path passed to --config", path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The crypto config is not valid YAML, or does not have the shape cryptogen expects
    /// (wrong type, unknown key). `detail` carries the YAML path and line.
    #[error("{file}{}: invalid crypto config: {detail}; fix the YAML (the format is described in docs/CRYPTO.md)", line_suffix(*line))]
    Yaml {
        file: String,
        /// 1-based line of the problem, when the parser knows it.
        line: Option<usize>,
        detail: String,
    },

    /// A value in the config is parseable but not acceptable (empty name, bad DNS name,
    /// absurd count, unsupported algorithm, bad template).
    #[error("{config}: {org}: {detail}")]
    InvalidConfig {
        /// The config file, or `crypto config` when it was built in code.
        config: String,
        /// `org 'Org1'`, `OrdererOrgs[0]`, or `config` for top-level settings.
        org: String,
        detail: String,
    },

    /// A config value would make generation write outside the output directory.
    #[error("{config}: {org}: {field} '{value}' would place files outside the output directory; use a plain DNS name such as 'org1.example.com' (no '/', '\\\\' or '..')")]
    UnsafePath {
        config: String,
        org: String,
        field: &'static str,
        value: String,
    },

    /// Two nodes of one org resolve to the same host name or common name (same directory).
    #[error("{config}: {org}: host '{host}' is defined more than once; Specs and Template entries must produce distinct names (check Template.Start and Template.Hostname)")]
    DuplicateHost {
        config: String,
        org: String,
        host: String,
    },

    /// Two orgs of the same kind share a domain (same directory).
    #[error("{config}: {kind} '{domain}' is defined more than once; every organization of a kind needs its own Domain")]
    DuplicateOrg {
        config: String,
        kind: &'static str,
        domain: String,
    },

    /// Generation would replace an existing file (a key, or material that belongs with one).
    #[error("refusing to overwrite existing {what} '{}': the output directory already holds generated material; pass --force to replace it, or choose another output directory", path.display())]
    WouldOverwrite { path: PathBuf, what: &'static str },

    /// A directory inside the output tree is a symbolic link; following it could write outside
    /// the output directory.
    #[error("'{}' is a symbolic link inside the output directory; refusing to write through it (remove the link or choose another output directory)", path.display())]
    SymlinkInOutput { path: PathBuf },

    /// A filesystem operation failed.
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Key generation or certificate issuance failed.
    #[error("{what}: {source}")]
    Crypto {
        what: String,
        #[source]
        source: weft_crypto::Error,
    },

    /// A generated `config.yaml` could not be written or read back.
    #[error("{what}: NodeOU config: {detail}")]
    NodeOuConfig { what: String, detail: String },
}

fn line_suffix(line: Option<usize>) -> String {
    match line {
        Some(l) => format!(":{l}"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn crypto(what: impl Into<String>, source: weft_crypto::Error) -> Self {
        Error::Crypto {
            what: what.into(),
            source,
        }
    }
}
