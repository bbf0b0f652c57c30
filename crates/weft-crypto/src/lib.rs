//! Keys, PEM handling and X.509 certificate issuance for weft.
//!
//! This crate does no I/O beyond what its callers hand it: it turns bytes into keys and
//! certificates and back. Disk layout belongs to `weft-msp`, sockets to `weft-tls`.
//!
//! - [`keys`]: ECDSA P-256 / P-384 private keys, generated or loaded from any PEM Fabric writes
//!   (PKCS#8, SEC1, and PKCS#8 inside a block labelled `EC PRIVATE KEY`).
//! - [`pem`]: certificate chains from PEM.
//! - [`ca`]: a certificate authority that issues signing, TLS server and TLS client certificates.
//! - [`x509`]: a readable summary of a certificate (subject, SANs, validity, fingerprint) for
//!   diagnostics and tests.

pub mod ca;
mod error;
pub mod keys;
pub mod pem;
pub mod x509;

pub use ca::{
    CertificateAuthority, IssuedCertificate, LeafProfile, LeafRequest, Subject, Validity,
};
pub use error::Error;
pub use keys::{KeyAlgorithm, PrivateKey};
pub use x509::CertSummary;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Lower-case hex of `data`.
pub fn hex(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}
