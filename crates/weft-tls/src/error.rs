use std::path::PathBuf;

/// A TLS configuration that cannot be built. Raised at start-up, before any connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file named in the configuration could not be read.
    #[error("cannot read {setting} file {path}: {source}")]
    Read {
        setting: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Key or certificate contents are unusable.
    #[error("{0}")]
    Crypto(#[from] weft_crypto::Error),
    /// The private key does not belong to the certificate.
    #[error("{what}: the private key does not match the certificate's public key (subject {subject}); check that the key and certificate files belong together")]
    KeyMismatch { what: String, subject: String },
    /// Trust was requested but no CA certificate was given.
    #[error("no trusted CA certificates given for {setting}; add the CA certificate(s) that issued the other side's TLS certificate")]
    NoRoots { setting: String },
    /// A certificate could not be added to a trust store.
    #[error("{setting}: unusable CA certificate: {detail}")]
    BadRoot { setting: String, detail: String },
    /// A pinned-trust connection did not say which node it expects.
    #[error("{endpoint}: pinned trust needs the node id of the server to connect to")]
    PinnedNeedsNode { endpoint: String },
    /// The node id is not in the pin set.
    #[error("{endpoint}: no pinned certificate for node '{node}'; known nodes: {known}")]
    UnknownNode {
        endpoint: String,
        node: String,
        known: String,
    },
    /// An address or server name does not parse.
    #[error("invalid endpoint '{input}': {detail}")]
    Endpoint { input: String, detail: String },
    /// The operation does not fit the configured trust kind.
    #[error("{0}")]
    Unsupported(String),
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}
