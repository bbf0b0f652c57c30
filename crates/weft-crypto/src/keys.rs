//! ECDSA private keys: generated, or loaded from any PEM that Fabric tools write.

use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    EcdsaKeyPair, EcdsaSigningAlgorithm, ECDSA_P256_SHA256_ASN1_SIGNING,
    ECDSA_P384_SHA384_ASN1_SIGNING,
};
use rustls_pki_types::pem::SectionKind;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// The key algorithms weft issues and accepts for identities and TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256: Fabric's default.
    #[default]
    EcdsaP256,
    /// ECDSA on NIST P-384 (secp384r1) with SHA-384: the replica network's profile.
    EcdsaP384,
}

impl KeyAlgorithm {
    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
            KeyAlgorithm::EcdsaP384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    pub(crate) fn rcgen(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        }
    }

    /// The curve's common name, as users meet it in configs and `openssl` output.
    pub fn curve_name(self) -> &'static str {
        match self {
            KeyAlgorithm::EcdsaP256 => "prime256v1 (P-256)",
            KeyAlgorithm::EcdsaP384 => "secp384r1 (P-384)",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
            KeyAlgorithm::EcdsaP384 => "ECDSA P-384",
        })
    }
}

/// An ECDSA private key, held as PKCS#8.
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pair: rcgen::KeyPair,
    /// The same key parsed once for aws-lc, so [`PrivateKey::sign`] does not re-parse PKCS#8.
    signer: EcdsaKeyPair,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl PrivateKey {
    /// A fresh random key.
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self, Error> {
        let pair = rcgen::KeyPair::generate_for(algorithm.rcgen())
            .map_err(|e| Error::key("new key", e))?;
        let signer = EcdsaKeyPair::from_pkcs8(algorithm.signing(), pair.serialized_der())
            .map_err(|e| Error::key("new key", e))?;
        Ok(PrivateKey {
            algorithm,
            pair,
            signer,
        })
    }

    /// Load the first private key found in `pem`. `what` names the input (a path) in errors.
    ///
    /// Accepts `PRIVATE KEY` (PKCS#8), `EC PRIVATE KEY` (SEC1), and PKCS#8 data inside an
    /// `EC PRIVATE KEY` block, which Fabric's peer writes for chaincode client keys: the DER is
    /// inspected rather than the label trusted.
    pub fn from_pem(pem: &[u8], what: &str) -> Result<Self, Error> {
        let sections = crate::pem::sections(pem, what)?;
        let (kind, der) = sections
            .into_iter()
            .find(|(kind, _)| {
                matches!(
                    kind,
                    SectionKind::PrivateKey
                        | SectionKind::EcPrivateKey
                        | SectionKind::RsaPrivateKey
                )
            })
            .ok_or_else(|| Error::PemMissing {
                what: what.to_owned(),
                expected: "PRIVATE KEY",
            })?;
        if kind == SectionKind::RsaPrivateKey {
            return Err(Error::key(
                what,
                "RSA keys are not supported; use an ECDSA P-256 or P-384 key",
            ));
        }
        Self::from_der(&der, what)
    }

    /// Load a PKCS#8 or SEC1 DER private key (either is detected from the bytes).
    pub fn from_der(der: &[u8], what: &str) -> Result<Self, Error> {
        let mut last_err = String::new();
        for algorithm in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
            // `from_private_key_der` takes PKCS#8 first, then SEC1.
            match EcdsaKeyPair::from_private_key_der(algorithm.signing(), der) {
                Ok(signer) => {
                    let pkcs8 = signer.to_pkcs8v1().map_err(|e| Error::key(what, e))?;
                    let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec());
                    let pair =
                        rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, algorithm.rcgen())
                            .map_err(|e| Error::key(what, e))?;
                    return Ok(PrivateKey {
                        algorithm,
                        pair,
                        signer,
                    });
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        Err(Error::key(
            what,
            format!("not an ECDSA P-256 or P-384 key in PKCS#8 or SEC1 form ({last_err})"),
        ))
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        self.pair.serialized_der()
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as cryptogen writes `priv_sk`.
    pub fn to_pkcs8_pem(&self) -> String {
        crate::pem::encode("PRIVATE KEY", self.pkcs8_der())
    }

    /// The key in the form rustls takes.
    pub fn to_rustls(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8_der().to_vec()))
    }

    /// DER SubjectPublicKeyInfo of the public half.
    pub fn public_key_der(&self) -> Vec<u8> {
        use rcgen::PublicKeyData as _;
        self.pair.subject_public_key_info()
    }

    /// Fabric's key file name: hex SHA-256 of the raw public point (the SKI cryptogen uses),
    /// followed by `_sk`. cryptogen itself writes `priv_sk`; fabric-ca writes this form.
    pub fn ski(&self) -> [u8; 32] {
        crate::sha256(self.pair.public_key_raw())
    }

    pub(crate) fn rcgen(&self) -> &rcgen::KeyPair {
        &self.pair
    }

    /// The cached aws-lc key pair that [`PrivateKey::sign`] uses.
    pub(crate) fn ecdsa(&self) -> &EcdsaKeyPair {
        &self.signer
    }

    /// Check that `der` holds a usable private key and say which algorithm; used by loaders
    /// that only need to validate. Prefer [`PrivateKey::from_der`].
    pub fn sniff(der: &[u8]) -> Option<KeyAlgorithm> {
        Self::from_der(der, "key").ok().map(|k| k.algorithm)
    }

    /// SEC1 DER of this key (for tests and tools that want `EC PRIVATE KEY` output).
    pub fn sec1_der(&self) -> Result<Vec<u8>, Error> {
        let sec1 = self
            .signer
            .private_key()
            .as_der()
            .map_err(|e| Error::key("key", e))?;
        Ok(sec1.as_ref().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_fabric_writes_loads_to_the_same_key() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384] {
            let key = PrivateKey::generate(alg).unwrap();
            let pkcs8 = key.to_pkcs8_pem();
            let sec1 = crate::pem::encode("EC PRIVATE KEY", &key.sec1_der().unwrap());
            // Fabric's peer: PKCS#8 bytes under an `EC PRIVATE KEY` label.
            let mislabelled = crate::pem::encode("EC PRIVATE KEY", key.pkcs8_der());
            for pem in [pkcs8, sec1, mislabelled] {
                let loaded = PrivateKey::from_pem(pem.as_bytes(), "k.pem").unwrap();
                assert_eq!(loaded.algorithm(), alg);
                assert_eq!(loaded.public_key_der(), key.public_key_der());
            }
        }
    }

    #[test]
    fn bad_keys_are_refused_with_the_file_named() {
        let e = PrivateKey::from_pem(b"", "keystore/priv_sk").unwrap_err();
        assert!(
            e.to_string().contains("keystore/priv_sk: no PRIVATE KEY"),
            "{e}"
        );
        let junk = crate::pem::encode("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
        let e = PrivateKey::from_pem(junk.as_bytes(), "k.pem").unwrap_err();
        assert!(e.to_string().contains("k.pem: unusable private key"), "{e}");
        let rsa = crate::pem::encode("RSA PRIVATE KEY", b"\x30\x00");
        let e = PrivateKey::from_pem(rsa.as_bytes(), "r.pem").unwrap_err();
        assert!(e.to_string().contains("RSA keys are not supported"), "{e}");
    }

    #[test]
    fn debug_does_not_leak_key_material() {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert_eq!(
            format!("{key:?}"),
            "PrivateKey { algorithm: EcdsaP256, .. }"
        );
    }
}
