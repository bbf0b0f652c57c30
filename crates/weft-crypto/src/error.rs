use std::fmt;

/// Everything that can go wrong turning bytes into keys and certificates, or issuing one.
///
/// Each variant names the thing that failed (`what`: a file path or a description the caller
/// supplied) so the message can be shown to a user as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input held no PEM block of the expected kind.
    #[error(
        "{what}: no {expected} found in PEM input (expected a '-----BEGIN {expected}-----' block)"
    )]
    PemMissing {
        what: String,
        expected: &'static str,
    },
    /// The PEM framing itself is broken (missing END line, bad base64, ...).
    #[error("{what}: malformed PEM: {detail}")]
    PemMalformed { what: String, detail: String },
    /// A private key block was found but its contents could not be used.
    #[error("{what}: unusable private key: {detail}")]
    Key { what: String, detail: String },
    /// A certificate could not be parsed.
    #[error("{what}: malformed certificate: {detail}")]
    Certificate { what: String, detail: String },
    /// Issuing a certificate failed (bad parameters, key mismatch).
    #[error("issuing certificate for '{subject}' failed: {detail}")]
    Issue { subject: String, detail: String },
}

impl Error {
    pub(crate) fn key(what: &str, detail: impl fmt::Display) -> Self {
        Error::Key {
            what: what.to_owned(),
            detail: detail.to_string(),
        }
    }
    pub(crate) fn cert(what: &str, detail: impl fmt::Display) -> Self {
        Error::Certificate {
            what: what.to_owned(),
            detail: detail.to_string(),
        }
    }
}
