use std::path::PathBuf;

/// Why a chaincode could not start or lost its peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShimError {
    /// A required environment variable or flag is missing.
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    /// An environment variable or flag has a value that cannot be used.
    #[error("{name}={value:?} is invalid: {detail}")]
    Invalid {
        name: &'static str,
        value: String,
        detail: String,
    },
    /// A file named by a variable cannot be read or parsed.
    #[error("{name} ({path}): {detail}")]
    File {
        name: &'static str,
        path: PathBuf,
        detail: String,
    },
    /// TLS material is unusable or the handshake failed.
    #[error("{0}")]
    Tls(String),
    /// The peer could not be reached or the stream could not be opened.
    #[error("cannot reach the peer at {address}: {detail}")]
    Connect { address: String, detail: String },
    /// The peer refused the registration or broke the protocol.
    #[error("peer protocol error: {0}")]
    Protocol(String),
    /// The chaincode server could not listen or serve.
    #[error("chaincode server on {address}: {detail}")]
    Serve { address: String, detail: String },
}

/// An error from a stub call or a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChaincodeError {
    /// The peer answered the request with an ERROR message.
    #[error("peer error: {0}")]
    Peer(String),
    /// The stream to the peer closed before the answer came.
    #[error("the connection to the peer closed before it answered {0}")]
    Disconnected(&'static str),
    /// The peer's answer could not be decoded.
    #[error("malformed {what} from the peer: {detail}")]
    Decode { what: &'static str, detail: String },
    /// The arguments of a stub call are invalid (e.g. a composite key part holding U+0000).
    #[error("{0}")]
    InvalidArgument(String),
    /// A failure the chaincode itself reports (mapped to status 500).
    #[error("{0}")]
    Chaincode(String),
}

impl ChaincodeError {
    pub fn msg(message: impl Into<String>) -> Self {
        ChaincodeError::Chaincode(message.into())
    }
}
