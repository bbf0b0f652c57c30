//! Protocol profiles: which TLS versions, key exchange groups and signatures a link accepts.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rustls::crypto::aws_lc_rs::{self as provider, cipher_suite, kx_group};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{SignatureScheme, SupportedProtocolVersion};
use rustls_pki_types::alg_id;

/// A protocol profile. Both ends of a link must pick compatible ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Profile {
    /// TLS 1.2 and 1.3 with the default groups and cipher suites: what Fabric nodes and SDKs
    /// speak. The default for client, peer and orderer links.
    #[default]
    Fabric,
    /// TLS 1.3 only, key exchange on secp384r1 only, ECDSA P-384 / SHA-384 signatures only:
    /// the replica network's profile (seed 004).
    Tls13P384,
    /// TLS 1.2 only. For probing legacy peers and testing version mismatches; never a default.
    Tls12Only,
}

impl Profile {
    /// The crypto provider (aws-lc-rs) restricted to this profile.
    pub fn provider(self) -> Arc<CryptoProvider> {
        static FABRIC: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
        static P384: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
        match self {
            Profile::Fabric | Profile::Tls12Only => FABRIC
                .get_or_init(|| Arc::new(provider::default_provider()))
                .clone(),
            Profile::Tls13P384 => P384
                .get_or_init(|| {
                    Arc::new(CryptoProvider {
                        cipher_suites: vec![
                            cipher_suite::TLS13_AES_256_GCM_SHA384,
                            cipher_suite::TLS13_AES_128_GCM_SHA256,
                            cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
                        ],
                        kx_groups: vec![kx_group::SECP384R1],
                        signature_verification_algorithms: p384_only(),
                        ..provider::default_provider()
                    })
                })
                .clone(),
        }
    }

    /// The protocol versions this profile enables.
    pub fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static BOTH: [&SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        static TLS12: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        match self {
            Profile::Fabric => &BOTH,
            Profile::Tls13P384 => &TLS13,
            Profile::Tls12Only => &TLS12,
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Fabric => "TLS 1.2 and 1.3",
            Profile::Tls13P384 => "TLS 1.3 only with secp384r1",
            Profile::Tls12Only => "TLS 1.2 only",
        })
    }
}

/// The default provider's verification algorithms, keeping only ECDSA P-384 with SHA-384.
fn p384_only() -> WebPkiSupportedAlgorithms {
    static ALGS: OnceLock<WebPkiSupportedAlgorithms> = OnceLock::new();
    *ALGS.get_or_init(|| {
        let default = provider::default_provider().signature_verification_algorithms;
        let all: Vec<_> = default
            .all
            .iter()
            .copied()
            .filter(|a| {
                a.public_key_alg_id() == alg_id::ECDSA_P384
                    && a.signature_alg_id() == alg_id::ECDSA_SHA384
            })
            .collect();
        let mapping: Vec<_> = default
            .mapping
            .iter()
            .filter(|(scheme, _)| *scheme == SignatureScheme::ECDSA_NISTP384_SHA384)
            .map(|(scheme, algs)| {
                let algs: Vec<_> = algs
                    .iter()
                    .copied()
                    .filter(|a| a.public_key_alg_id() == alg_id::ECDSA_P384)
                    .collect();
                (*scheme, &*Box::leak(algs.into_boxed_slice()))
            })
            .collect();
        // Leaked once per process: the provider wants 'static tables.
        WebPkiSupportedAlgorithms {
            all: Box::leak(all.into_boxed_slice()),
            mapping: Box::leak(mapping.into_boxed_slice()),
        }
    })
}
