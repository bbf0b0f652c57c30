//! Keys, PEM handling and X.509 certificate issuance for weft.
//!
//! This crate does no I/O beyond what its callers hand it: it turns bytes into keys and
//! certificates and back. Disk layout belongs to `weft-msp`, sockets to `weft-tls`.
//!
//! - [`keys`]: ECDSA P-256 / P-384 private keys, generated or loaded from any PEM Fabric writes
//!   (PKCS#8, SEC1, and PKCS#8 inside a block labelled `EC PRIVATE KEY`).
//! - [`pem`]: certificate chains from PEM.
//! - [`ca`]: a certificate authority that issues signing, TLS server and TLS client certificates.
//! - [`sign`]: ECDSA signing and verification with Fabric's low-S rule.
//! - [`x509`]: a readable summary of a certificate (subject, SANs, validity, fingerprint) for
//!   diagnostics and tests.

pub mod ca;
mod error;
pub mod keys;
pub mod pem;
pub mod sign;
pub mod x509;

pub use ca::{
    CertificateAuthority, IssuedCertificate, LeafProfile, LeafRequest, Subject, Validity,
};
pub use error::Error;
pub use keys::{KeyAlgorithm, PrivateKey};
pub use sign::{PublicKey, SignatureError};
pub use x509::CertSummary;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Incremental SHA-256, for hashing data that arrives in pieces (a block's envelopes).
pub struct Sha256(aws_lc_rs::digest::Context);

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256")
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub fn new() -> Self {
        Sha256(aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> [u8; 32] {
        let digest = self.0.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

/// `n` bytes from the system's secure random generator (nonces).
pub fn random_bytes(n: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Error::key("random bytes", "the system random generator failed"))?;
    Ok(bytes)
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

/// Mutation fuzzing of every decoder in this crate, on the stable toolchain: valid inputs are
/// bit-flipped, truncated, spliced and padded; no input may panic.
#[cfg(test)]
mod robustness {
    use rustls_pki_types::CertificateDer;

    use crate::{
        CertSummary, CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, PrivateKey,
        Subject, Validity,
    };

    /// xorshift64*: deterministic, so a failure is reproducible from the seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
        let mut v = input.to_vec();
        for _ in 0..=rng.below(4) {
            match rng.below(5) {
                0 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
                1 => v.truncate(rng.below(v.len() + 1)),
                2 if !v.is_empty() => {
                    let i = rng.below(v.len());
                    v[i] = rng.next() as u8;
                }
                3 => {
                    let i = rng.below(v.len() + 1);
                    let junk: Vec<u8> = (0..rng.below(16)).map(|_| rng.next() as u8).collect();
                    v.splice(i..i, junk);
                }
                _ if v.len() > 2 => {
                    let a = rng.below(v.len());
                    let b = rng.below(v.len());
                    v.swap(a, b);
                }
                _ => {}
            }
        }
        v
    }

    #[test]
    fn decoders_never_panic_on_mutated_input() {
        let ca = CertificateAuthority::new_root(
            &Subject::cn("ca"),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        let leaf = ca
            .issue(
                &LeafRequest::new(Subject::cn("peer0"), LeafProfile::TlsServer)
                    .sans(["peer0", "127.0.0.1"]),
            )
            .unwrap();
        let key384 = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let der_seeds: Vec<Vec<u8>> = vec![
            leaf.der.to_vec(),
            ca.certificate().to_vec(),
            leaf.key.pkcs8_der().to_vec(),
            key384.sec1_der().unwrap(),
        ];
        let pem_seeds: Vec<Vec<u8>> = vec![
            leaf.pem().into_bytes(),
            leaf.key.to_pkcs8_pem().into_bytes(),
            crate::pem::encode("EC PRIVATE KEY", key384.pkcs8_der()).into_bytes(),
            format!("{}{}", leaf.pem(), ca.certificate_pem()).into_bytes(),
        ];
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for _ in 0..3000 {
            let pick = rng.below(der_seeds.len());
            let der = mutate(&mut rng, &der_seeds[pick]);
            let _ = CertSummary::parse(&CertificateDer::from(der.clone()));
            let _ = PrivateKey::from_der(&der, "fuzz");
            let _ = crate::x509::verify_signature(&CertificateDer::from(der), ca.certificate());
            let pick = rng.below(pem_seeds.len());
            let pem = mutate(&mut rng, &pem_seeds[pick]);
            let _ = crate::pem::certificates(&pem, "fuzz");
            let _ = PrivateKey::from_pem(&pem, "fuzz");
        }
    }
}
