//! ECDSA signatures as Fabric requires them: DER-encoded `(r, s)`, and `s` in the low half of
//! the group order.
//!
//! ECDSA signatures are malleable: if `(r, s)` is valid for a message, so is `(r, n - s)`.
//! Fabric closes that hole by accepting only the variant with `s <= n / 2` ("low-S"): its
//! signers normalize, and its verifiers refuse a high-S signature before checking it. weft does
//! the same: [`PrivateKey::sign`] always produces low-S signatures, and [`verify`] refuses a
//! high-S one with [`SignatureError::HighS`] even though it is mathematically valid.
//!
//! Digests: P-256 keys sign SHA-256 of the message, P-384 keys SHA-384 of it.
//!
//! Fabric's MSP (`SignatureHashFamily: SHA2`) hashes with SHA-256 whatever the curve, so a
//! P-384 identity's signature made by a Fabric peer or SDK is over SHA-256, not SHA-384; P-256
//! signatures are identical in both.
//!
//! The DER handling here is written for hostile input: every length is checked against the
//! bytes present, INTEGERs must be minimally encoded and positive, and nothing may follow the
//! signature. No input panics.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ParsedPublicKey, VerificationAlgorithm, ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1,
};
use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::SubjectPublicKeyInfo;

use crate::{Error, KeyAlgorithm, PrivateKey};

/// Order `n` of the P-256 group (FIPS 186-4 D.1.2.3), big-endian.
pub const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Order `n` of the P-384 group (FIPS 186-4 D.1.2.4), big-endian.
pub const P384_ORDER: [u8; 48] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37, 0x2d, 0xdf,
    0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc, 0xc5, 0x29, 0x73,
];

/// `floor(n / 2)` for P-256: the largest `s` Fabric accepts.
pub const P256_HALF_ORDER: [u8; 32] = shr1(P256_ORDER);

/// `floor(n / 2)` for P-384: the largest `s` Fabric accepts.
pub const P384_HALF_ORDER: [u8; 48] = shr1(P384_ORDER);

/// A big-endian number shifted right by one bit.
const fn shr1<const N: usize>(n: [u8; N]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut carry = 0u8;
    let mut i = 0;
    while i < N {
        out[i] = (n[i] >> 1) | carry;
        carry = (n[i] & 1) << 7;
        i += 1;
    }
    out
}

fn order(curve: KeyAlgorithm) -> &'static [u8] {
    match curve {
        KeyAlgorithm::EcdsaP256 => &P256_ORDER,
        KeyAlgorithm::EcdsaP384 => &P384_ORDER,
    }
}

fn half_order(curve: KeyAlgorithm) -> &'static [u8] {
    match curve {
        KeyAlgorithm::EcdsaP256 => &P256_HALF_ORDER,
        KeyAlgorithm::EcdsaP384 => &P384_HALF_ORDER,
    }
}

fn verification(curve: KeyAlgorithm) -> &'static dyn VerificationAlgorithm {
    match curve {
        KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1,
        KeyAlgorithm::EcdsaP384 => &ECDSA_P384_SHA384_ASN1,
    }
}

/// Why a signature or a public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature is not a strict DER `SEQUENCE { INTEGER r, INTEGER s }` with `r` and `s` in
    /// `1..n`.
    #[error("malformed ECDSA signature: {detail} (expected DER SEQUENCE {{ INTEGER r, INTEGER s }} with 0 < r, s < n)")]
    Malformed { detail: String },
    /// `s` is in the upper half of the group order. Mathematically valid, refused as Fabric does.
    #[error("ECDSA signature has a high S value (s > n/2 for {curve}); Fabric accepts only low-S signatures, so the signer must normalize s to n - s")]
    HighS { curve: KeyAlgorithm },
    /// Well-formed, but not a signature of this message by this key.
    #[error("ECDSA signature does not verify with the {curve} public key: signed by another key, or the message was altered")]
    Invalid { curve: KeyAlgorithm },
    /// The signature's integers are too long for the key's curve: it was made on another curve.
    #[error("ECDSA signature's {component} is {len} bytes long, too long for a {key} key (at most {max} bytes): the signature was made with a key on another curve")]
    CurveMismatch {
        key: KeyAlgorithm,
        component: &'static str,
        len: usize,
        max: usize,
    },
    /// A message digest made for one curve was checked against a key on another.
    #[error("the message digest was made for {digest} signatures, but the key is {key}")]
    DigestMismatch {
        key: KeyAlgorithm,
        digest: KeyAlgorithm,
    },
    /// The public key is not an ECDSA P-256 or P-384 key.
    #[error("unsupported public key: {detail}; Fabric identities use ECDSA P-256 or P-384 keys")]
    UnsupportedKey { detail: String },
    /// The certificate or SubjectPublicKeyInfo holding the public key could not be parsed, or the
    /// point is not on the curve.
    #[error("malformed public key: {detail}")]
    MalformedKey { detail: String },
}

fn malformed(detail: impl Into<String>) -> SignatureError {
    SignatureError::Malformed {
        detail: detail.into(),
    }
}

// ---------------------------------------------------------------------------------------------
// DER

/// `r` and `s` of a DER ECDSA signature as big-endian magnitudes (no sign byte; zero is empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RawSignature<'a> {
    r: &'a [u8],
    s: &'a [u8],
}

/// Read a DER tag-length header for `tag` at the start of `input`; return the contents and the
/// bytes after them. Lengths must be minimally encoded (DER), and no longer than the input.
fn read_tlv<'a>(
    input: &'a [u8],
    tag: u8,
    what: &str,
) -> Result<(&'a [u8], &'a [u8]), SignatureError> {
    let (&first, rest) = input
        .split_first()
        .ok_or_else(|| malformed(format!("input ends where {what} should start")))?;
    if first != tag {
        return Err(malformed(format!(
            "expected {what} (tag 0x{tag:02x}), found tag 0x{first:02x}"
        )));
    }
    let (&len0, mut rest) = rest
        .split_first()
        .ok_or_else(|| malformed(format!("{what} has no length byte")))?;
    let len = match len0 {
        0x00..=0x7f => usize::from(len0),
        0x80 => {
            return Err(malformed(format!(
                "{what} uses an indefinite length (BER, not DER)"
            )))
        }
        0x81 | 0x82 => {
            let n = usize::from(len0 & 0x7f);
            if rest.len() < n {
                return Err(malformed(format!("{what} length is truncated")));
            }
            let (bytes, after) = rest.split_at(n);
            rest = after;
            let len = bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            // DER: the long form only when needed, and without leading zero bytes.
            if len < 0x80 || bytes[0] == 0 {
                return Err(malformed(format!(
                    "{what} length {len} is not minimally encoded (BER, not DER)"
                )));
            }
            len
        }
        _ => {
            return Err(malformed(format!(
                "{what} length uses {} bytes, far too long for an ECDSA signature",
                len0 & 0x7f
            )))
        }
    };
    if rest.len() < len {
        return Err(malformed(format!(
            "{what} claims {len} content bytes but only {} follow",
            rest.len()
        )));
    }
    Ok(rest.split_at(len))
}

/// Decode a DER INTEGER that must be non-negative; return its magnitude (leading zero bytes
/// removed, so zero is empty) and the bytes after it.
fn read_unsigned_integer<'a>(
    input: &'a [u8],
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), SignatureError> {
    let (content, rest) = read_tlv(input, 0x02, what)?;
    match content {
        [] => Err(malformed(format!("{what} has no content bytes"))),
        [first, ..] if first & 0x80 != 0 => Err(malformed(format!(
            "{what} is negative (its first byte 0x{first:02x} has the sign bit set)"
        ))),
        [0, second, ..] if second & 0x80 == 0 => Err(malformed(format!(
            "{what} has a superfluous leading zero byte (not minimal DER)"
        ))),
        [0, magnitude @ ..] => Ok((magnitude, rest)),
        magnitude => Ok((magnitude, rest)),
    }
}

/// Decode a strict DER ECDSA signature.
fn decode_signature(sig: &[u8]) -> Result<RawSignature<'_>, SignatureError> {
    let (body, trailing) = read_tlv(sig, 0x30, "SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(malformed(format!(
            "{} bytes follow the signature SEQUENCE",
            trailing.len()
        )));
    }
    let (r, body) = read_unsigned_integer(body, "INTEGER r")?;
    let (s, body) = read_unsigned_integer(body, "INTEGER s")?;
    if !body.is_empty() {
        return Err(malformed(format!(
            "{} bytes follow INTEGER s inside the SEQUENCE",
            body.len()
        )));
    }
    Ok(RawSignature { r, s })
}

/// Append a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// DER INTEGER of the non-negative big-endian number `magnitude` (leading zeros allowed in the
/// input; the output is minimal, with a 0x00 pad when the top bit is set).
fn encode_unsigned_integer(out: &mut Vec<u8>, magnitude: &[u8]) {
    let magnitude = strip_zeros(magnitude);
    out.push(0x02);
    match magnitude.first() {
        None => {
            out.push(1);
            out.push(0);
        }
        Some(&first) if first & 0x80 != 0 => {
            push_len(out, magnitude.len() + 1);
            out.push(0);
            out.extend_from_slice(magnitude);
        }
        Some(_) => {
            push_len(out, magnitude.len());
            out.extend_from_slice(magnitude);
        }
    }
}

/// DER `SEQUENCE { INTEGER r, INTEGER s }`.
fn encode_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(r.len() + s.len() + 6);
    encode_unsigned_integer(&mut body, r);
    encode_unsigned_integer(&mut body, s);
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(0x30);
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

// ---------------------------------------------------------------------------------------------
// Big-endian magnitude arithmetic (only what low-S needs: compare, subtract).

fn strip_zeros(n: &[u8]) -> &[u8] {
    let skip = n.iter().take_while(|&&b| b == 0).count();
    &n[skip..]
}

fn cmp_magnitude(a: &[u8], b: &[u8]) -> Ordering {
    let (a, b) = (strip_zeros(a), strip_zeros(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a - b` for `a >= b` (callers guarantee it), big-endian, `a.len()` bytes.
fn sub_magnitude(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0i16;
    for i in 0..out.len() {
        let ai = out.len() - 1 - i;
        let bv = if i < b.len() {
            i16::from(b[b.len() - 1 - i])
        } else {
            0
        };
        let mut v = i16::from(out[ai]) - bv - borrow;
        borrow = 0;
        if v < 0 {
            v += 256;
            borrow = 1;
        }
        out[ai] = v as u8;
    }
    out
}

/// Check one signature integer against the curve: non-zero, not longer than the order, below
/// the order.
fn check_component(
    curve: KeyAlgorithm,
    component: &'static str,
    value: &[u8],
) -> Result<(), SignatureError> {
    let n = order(curve);
    if value.is_empty() {
        return Err(malformed(format!("{component} is zero")));
    }
    if value.len() > n.len() {
        return Err(SignatureError::CurveMismatch {
            key: curve,
            component,
            len: value.len(),
            max: n.len(),
        });
    }
    if cmp_magnitude(value, n) != Ordering::Less {
        return Err(malformed(format!(
            "{component} is not below the {curve} group order"
        )));
    }
    Ok(())
}

fn decode_for(curve: KeyAlgorithm, sig_der: &[u8]) -> Result<RawSignature<'_>, SignatureError> {
    let sig = decode_signature(sig_der)?;
    check_component(curve, "r", sig.r)?;
    check_component(curve, "s", sig.s)?;
    Ok(sig)
}

/// Whether the DER signature `sig_der` has `s <= n/2` on `curve`. Errors when it is not a
/// well-formed signature for that curve.
pub fn is_low_s(curve: KeyAlgorithm, sig_der: &[u8]) -> Result<bool, SignatureError> {
    let sig = decode_for(curve, sig_der)?;
    Ok(cmp_magnitude(sig.s, half_order(curve)) != Ordering::Greater)
}

/// The low-S form of `sig_der`: unchanged if `s <= n/2`, else `(r, n - s)`. Either way the
/// output is the canonical DER encoding.
pub fn normalize_low_s(curve: KeyAlgorithm, sig_der: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let sig = decode_for(curve, sig_der)?;
    if cmp_magnitude(sig.s, half_order(curve)) == Ordering::Greater {
        Ok(encode_signature(sig.r, &sub_magnitude(order(curve), sig.s)))
    } else {
        // Strictly decoded DER re-encodes to the same bytes.
        Ok(sig_der.to_vec())
    }
}

/// The malleable twin of `sig_der`: `(r, n - s)`. It verifies mathematically for the same
/// message and key, with the opposite half of the order. For tests and diagnostics: shows that
/// a verifier enforces low-S.
pub fn complement_s(curve: KeyAlgorithm, sig_der: &[u8]) -> Result<Vec<u8>, SignatureError> {
    let sig = decode_for(curve, sig_der)?;
    Ok(encode_signature(sig.r, &sub_magnitude(order(curve), sig.s)))
}

// ---------------------------------------------------------------------------------------------
// Keys

/// An ECDSA P-256 or P-384 public key, parsed once for repeated verification. Cloning is
/// cheap (shared, no copy): every validated identity handed out by a peer's caches has one.
#[derive(Clone)]
pub struct PublicKey {
    algorithm: KeyAlgorithm,
    spki: Arc<[u8]>,
    parsed: Arc<ParsedPublicKey>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm)
            .field("spki_sha256", &crate::hex(&crate::sha256(&self.spki)))
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.algorithm == other.algorithm && self.spki == other.spki
    }
}

impl Eq for PublicKey {}

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

impl PublicKey {
    /// The subject public key of a certificate.
    pub fn from_certificate(cert: &CertificateDer<'_>) -> Result<Self, SignatureError> {
        let (_, parsed) =
            X509Certificate::from_der(cert.as_ref()).map_err(|e| SignatureError::MalformedKey {
                detail: format!("certificate does not parse: {e}"),
            })?;
        Self::from_spki(parsed.public_key())
    }

    /// A DER SubjectPublicKeyInfo (`PrivateKey::public_key_der`, `CertSummary::public_key_der`).
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, SignatureError> {
        let (rest, parsed) =
            SubjectPublicKeyInfo::from_der(spki).map_err(|e| SignatureError::MalformedKey {
                detail: format!("SubjectPublicKeyInfo does not parse: {e}"),
            })?;
        if !rest.is_empty() {
            return Err(SignatureError::MalformedKey {
                detail: format!("{} bytes follow the SubjectPublicKeyInfo", rest.len()),
            });
        }
        Self::from_spki(&parsed)
    }

    fn from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Self, SignatureError> {
        let key_oid = spki.algorithm.algorithm.to_id_string();
        if key_oid != OID_EC_PUBLIC_KEY {
            let name = match key_oid.as_str() {
                "1.2.840.113549.1.1.1" => "RSA".to_owned(),
                "1.3.101.112" => "Ed25519".to_owned(),
                other => format!("algorithm OID {other}"),
            };
            return Err(SignatureError::UnsupportedKey {
                detail: format!("the key is {name}, not ECDSA"),
            });
        }
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        let algorithm = match curve.as_deref() {
            Some(OID_P256) => KeyAlgorithm::EcdsaP256,
            Some(OID_P384) => KeyAlgorithm::EcdsaP384,
            Some("1.3.132.0.35") => {
                return Err(SignatureError::UnsupportedKey {
                    detail: "the key is on curve P-521".to_owned(),
                })
            }
            Some(other) => {
                return Err(SignatureError::UnsupportedKey {
                    detail: format!("the key is on the curve with OID {other}"),
                })
            }
            None => {
                return Err(SignatureError::UnsupportedKey {
                    detail: "the EC key names no curve (explicit parameters are not supported)"
                        .to_owned(),
                })
            }
        };
        let point = &spki.subject_public_key.data;
        let parsed =
            ParsedPublicKey::new(verification(algorithm), point.as_ref()).map_err(|e| {
                SignatureError::MalformedKey {
                    detail: format!("not a valid {algorithm} point ({e})"),
                }
            })?;
        Ok(PublicKey {
            algorithm,
            spki: spki.raw.into(),
            parsed: Arc::new(parsed),
        })
    }

    /// The curve (and so the digest) of this key.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// DER SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// Same as [`verify`] with this key.
    pub fn verify(&self, msg: &[u8], sig_der: &[u8]) -> Result<(), SignatureError> {
        verify(self, msg, sig_der)
    }
}

/// Check that `sig_der` is a low-S DER ECDSA signature of `msg` by `public_key` (digest SHA-256
/// for P-256 keys, SHA-384 for P-384).
///
/// Checked in this order, each with its own error: strict DER ([`SignatureError::Malformed`]),
/// integers sized for the key's curve ([`SignatureError::CurveMismatch`]), `0 < r, s < n`
/// (`Malformed`), low S ([`SignatureError::HighS`]), and then the signature itself
/// ([`SignatureError::Invalid`]).
pub fn verify(public_key: &PublicKey, msg: &[u8], sig_der: &[u8]) -> Result<(), SignatureError> {
    check_encoding(public_key.algorithm, sig_der)?;
    public_key
        .parsed
        .verify_sig(msg, sig_der)
        .map_err(|_| SignatureError::Invalid {
            curve: public_key.algorithm,
        })
}

/// The digest an ECDSA signature by a key of `curve` covers: SHA-256 of the message for
/// P-256, SHA-384 for P-384. Made once, it serves both a cache key and [`verify_digest`].
#[derive(Clone)]
pub struct MessageDigest {
    curve: KeyAlgorithm,
    digest: aws_lc_rs::digest::Digest,
}

impl fmt::Debug for MessageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MessageDigest({}, {})",
            self.curve,
            crate::hex(self.as_bytes())
        )
    }
}

impl MessageDigest {
    /// The digest of `msg` for signatures by keys of `curve`.
    pub fn of(curve: KeyAlgorithm, msg: &[u8]) -> Self {
        let algorithm = match curve {
            KeyAlgorithm::EcdsaP256 => &aws_lc_rs::digest::SHA256,
            KeyAlgorithm::EcdsaP384 => &aws_lc_rs::digest::SHA384,
        };
        MessageDigest {
            curve,
            digest: aws_lc_rs::digest::digest(algorithm, msg),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.digest.as_ref()
    }
}

/// [`verify`] for a message already digested with [`MessageDigest::of`]: the same checks, in
/// the same order, with the same errors. A digest made for another curve than the key's is
/// [`SignatureError::CurveMismatch`].
pub fn verify_digest(
    public_key: &PublicKey,
    digest: &MessageDigest,
    sig_der: &[u8],
) -> Result<(), SignatureError> {
    let curve = public_key.algorithm;
    if digest.curve != curve {
        return Err(SignatureError::DigestMismatch {
            key: curve,
            digest: digest.curve,
        });
    }
    check_encoding(curve, sig_der)?;
    public_key
        .parsed
        .verify_digest_sig(&digest.digest, sig_der)
        .map_err(|_| SignatureError::Invalid { curve })
}

/// Strict DER, integers sized for `curve`, `0 < r, s < n`, low S.
fn check_encoding(curve: KeyAlgorithm, sig_der: &[u8]) -> Result<(), SignatureError> {
    let sig = decode_for(curve, sig_der)?;
    if cmp_magnitude(sig.s, half_order(curve)) == Ordering::Greater {
        return Err(SignatureError::HighS { curve });
    }
    Ok(())
}

impl PrivateKey {
    /// A DER ECDSA signature of `msg`: over SHA-256 for P-256 keys, SHA-384 for P-384 keys,
    /// with `s` normalized to the low half of the group order as Fabric requires.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        let what = || format!("signing with {} key", self.algorithm());
        // aws-lc draws its own nonce; the RNG argument exists for API compatibility.
        let sig = self
            .ecdsa()
            .sign(&SystemRandom::new(), msg)
            .map_err(|e| Error::key(&what(), e))?;
        normalize_low_s(self.algorithm(), sig.as_ref()).map_err(|e| Error::key(&what(), e))
    }

    /// The public half, ready for [`verify`].
    pub fn public_key(&self) -> Result<PublicKey, SignatureError> {
        PublicKey::from_spki_der(&self.public_key_der())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateAuthority, LeafProfile, LeafRequest, Subject, Validity};

    const CURVES: [KeyAlgorithm; 2] = [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384];

    fn sig_of(r: &[u8], s: &[u8]) -> Vec<u8> {
        encode_signature(r, s)
    }

    #[test]
    fn half_orders_are_n_shifted_right() {
        // n is odd, so 2 * floor(n/2) + 1 == n.
        for curve in CURVES {
            let n = order(curve);
            let half = half_order(curve);
            let mut doubled = vec![0u8; n.len()];
            let mut carry = 1u8; // the +1
            for i in (0..n.len()).rev() {
                let v = (u16::from(half[i]) << 1) | u16::from(carry);
                doubled[i] = v as u8;
                carry = (v >> 8) as u8;
            }
            assert_eq!(carry, 0);
            assert_eq!(doubled, n, "{curve}");
        }
        assert_eq!(P256_HALF_ORDER[0], 0x7f);
        assert_eq!(P256_HALF_ORDER[31], 0xa8);
        assert_eq!(P384_HALF_ORDER[47], 0xb9);
    }

    #[test]
    fn der_integers_encode_minimally() {
        let enc = |m: &[u8]| {
            let mut v = Vec::new();
            encode_unsigned_integer(&mut v, m);
            v
        };
        assert_eq!(enc(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(enc(&[0, 0]), [0x02, 0x01, 0x00]);
        assert_eq!(enc(&[0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(enc(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(enc(&[0, 0, 0x01, 0x00]), [0x02, 0x02, 0x01, 0x00]);
        assert_eq!(enc(&[0, 0xff, 0x01]), [0x02, 0x03, 0x00, 0xff, 0x01]);
        // Round trip through the decoder for every leading byte.
        for first in 0..=255u8 {
            for len in 1..=49usize {
                let mut m = vec![0x5a; len];
                m[0] = first;
                let der = enc(&m);
                let (back, rest) = read_unsigned_integer(&der, "INTEGER x").unwrap();
                assert!(rest.is_empty());
                assert_eq!(back, strip_zeros(&m), "first {first:#x} len {len}");
            }
        }
        // Long-form lengths appear only when needed.
        let mut v = Vec::new();
        push_len(&mut v, 0x7f);
        push_len(&mut v, 0x80);
        push_len(&mut v, 0x1234);
        assert_eq!(v, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn der_decoder_refuses_non_der_and_out_of_range_values() {
        let ok = sig_of(&[1], &[2]);
        assert_eq!(ok, [0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02]);
        assert!(decode_signature(&ok).is_ok());
        let bad: &[(&[u8], &str)] = &[
            (&[], "ends where SEQUENCE"),
            (&[0x31, 0x00], "expected SEQUENCE"),
            (&[0x30], "no length byte"),
            (
                &[0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0, 0],
                "indefinite",
            ),
            (
                &[0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
                "not minimally encoded",
            ),
            (&[0x30, 0x84, 0, 0, 0, 6], "far too long"),
            (
                &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01],
                "only 6 follow",
            ),
            (
                &[0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00],
                "follow the signature",
            ),
            (
                &[0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00],
                "follow INTEGER s",
            ),
            (&[0x30, 0x05, 0x02, 0x00, 0x02, 0x01, 0x01], "no content"),
            (
                &[0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01],
                "negative",
            ),
            (
                &[0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01],
                "superfluous leading zero",
            ),
            (&[0x30, 0x03, 0x02, 0x01, 0x01], "ends where INTEGER s"),
            (
                &[0x30, 0x06, 0x04, 0x01, 0x01, 0x02, 0x01, 0x01],
                "expected INTEGER r",
            ),
        ];
        for (input, expected) in bad {
            let e = decode_signature(input).unwrap_err();
            assert!(
                matches!(e, SignatureError::Malformed { .. }) && e.to_string().contains(expected),
                "{input:02x?}: {e}"
            );
        }
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
            .unwrap()
            .public_key()
            .unwrap();
        let zero_r = sig_of(&[], &[1]);
        let e = verify(&key, b"m", &zero_r).unwrap_err();
        assert!(e.to_string().contains("r is zero"), "{e}");
        let s_is_n = sig_of(&[1], &P256_ORDER);
        let e = verify(&key, b"m", &s_is_n).unwrap_err();
        assert!(e.to_string().contains("s is not below"), "{e}");
        let long = sig_of(&[1; 33], &[1]);
        let e = verify(&key, b"m", &long).unwrap_err();
        assert!(
            matches!(e, SignatureError::CurveMismatch { len: 33, .. }),
            "{e}"
        );
    }

    #[test]
    fn low_s_boundary_is_half_the_order() {
        for curve in CURVES {
            let half = half_order(curve);
            let mut above = half.to_vec();
            *above.last_mut().unwrap() += 1; // the last byte of half is below 0xff
            assert!(is_low_s(curve, &sig_of(&[1], half)).unwrap());
            assert!(!is_low_s(curve, &sig_of(&[1], &above)).unwrap());
            assert!(is_low_s(curve, &sig_of(&[1], &[1])).unwrap());
            // n - (half + 1) == half.
            let normalized = normalize_low_s(curve, &sig_of(&[1], &above)).unwrap();
            assert_eq!(normalized, sig_of(&[1], half));
            let n_minus_1 = sub_magnitude(order(curve), &[1]);
            let normalized = normalize_low_s(curve, &sig_of(&[7], &n_minus_1)).unwrap();
            assert_eq!(normalized, sig_of(&[7], &[1]));
            // Low-S input comes back unchanged.
            assert_eq!(
                normalize_low_s(curve, &sig_of(&[7], &[3])).unwrap(),
                sig_of(&[7], &[3])
            );
        }
    }

    #[test]
    fn subtraction_borrows_across_bytes() {
        assert_eq!(
            sub_magnitude(&[0x01, 0x00, 0x00], &[0x01]),
            [0x00, 0xff, 0xff]
        );
        assert_eq!(sub_magnitude(&[0xff, 0xff], &[0xff, 0xff]), [0, 0]);
        assert_eq!(
            sub_magnitude(&[0x10, 0x00], &[0x00, 0x0f, 0xff]),
            [0x00, 0x01]
        );
    }

    #[test]
    fn sign_verify_round_trip_with_low_s_on_both_curves() {
        for curve in CURVES {
            let key = PrivateKey::generate(curve).unwrap();
            let public = key.public_key().unwrap();
            assert_eq!(public.algorithm(), curve);
            for i in 0..200u32 {
                let msg = format!("proposal {i}");
                let sig = key.sign(msg.as_bytes()).unwrap();
                assert!(
                    is_low_s(curve, &sig).unwrap(),
                    "{curve}: signature {i} is high-S"
                );
                verify(&public, msg.as_bytes(), &sig).unwrap();
            }
        }
    }

    #[test]
    fn verify_digest_gives_the_same_verdicts_as_verify() {
        for curve in CURVES {
            let key = PrivateKey::generate(curve).unwrap();
            let other = PrivateKey::generate(curve).unwrap().public_key().unwrap();
            let public = key.public_key().unwrap();
            let sig = key.sign(b"tx").unwrap();
            let high = complement_s(curve, &sig).unwrap();
            let cases: [(&PublicKey, &[u8], &[u8]); 5] = [
                (&public, b"tx", &sig),
                (&public, b"tX", &sig),
                (&other, b"tx", &sig),
                (&public, b"tx", &high),
                (&public, b"tx", &sig[..sig.len() - 1]),
            ];
            for (i, (k, msg, s)) in cases.into_iter().enumerate() {
                let digest = MessageDigest::of(curve, msg);
                assert_eq!(
                    verify_digest(k, &digest, s),
                    verify(k, msg, s),
                    "{curve} case {i}"
                );
            }
            assert!(verify_digest(&public, &MessageDigest::of(curve, b"tx"), &sig).is_ok());
        }
        let p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let sig = p256.sign(b"tx").unwrap();
        let e = verify_digest(
            &p256.public_key().unwrap(),
            &MessageDigest::of(KeyAlgorithm::EcdsaP384, b"tx"),
            &sig,
        )
        .unwrap_err();
        assert!(matches!(e, SignatureError::DigestMismatch { .. }), "{e}");
    }

    #[test]
    fn high_s_twin_is_valid_math_but_refused() {
        for curve in CURVES {
            let key = PrivateKey::generate(curve).unwrap();
            let public = key.public_key().unwrap();
            let sig = key.sign(b"tx").unwrap();
            let high = complement_s(curve, &sig).unwrap();
            assert!(!is_low_s(curve, &high).unwrap());
            // aws-lc alone accepts it: the signature is mathematically valid.
            ParsedPublicKey::new(verification(curve), {
                let (_, spki) = SubjectPublicKeyInfo::from_der(public.spki_der()).unwrap();
                spki.subject_public_key.data.to_vec()
            })
            .unwrap()
            .verify_sig(b"tx", &high)
            .unwrap();
            let e = verify(&public, b"tx", &high).unwrap_err();
            assert_eq!(e, SignatureError::HighS { curve });
            assert!(e.to_string().contains("high S value"), "{e}");
            assert_eq!(normalize_low_s(curve, &high).unwrap(), sig);
        }
    }

    #[test]
    fn wrong_message_key_or_curve_is_refused() {
        let p256 = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let p256b = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let p384 = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let sig256 = p256.sign(b"hello").unwrap();
        let sig384 = p384.sign(b"hello").unwrap();

        let e = verify(&p256.public_key().unwrap(), b"hellp", &sig256).unwrap_err();
        assert_eq!(
            e,
            SignatureError::Invalid {
                curve: KeyAlgorithm::EcdsaP256
            }
        );
        let e = verify(&p256b.public_key().unwrap(), b"hello", &sig256).unwrap_err();
        assert_eq!(
            e,
            SignatureError::Invalid {
                curve: KeyAlgorithm::EcdsaP256
            }
        );
        // A P-384 signature against a P-256 key: its integers do not fit the curve.
        let e = verify(&p256.public_key().unwrap(), b"hello", &sig384).unwrap_err();
        assert!(
            matches!(
                e,
                SignatureError::CurveMismatch {
                    key: KeyAlgorithm::EcdsaP256,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("another curve"), "{e}");
        // A P-256 signature against a P-384 key fits, and simply does not verify.
        let e = verify(&p384.public_key().unwrap(), b"hello", &sig256).unwrap_err();
        assert_eq!(
            e,
            SignatureError::Invalid {
                curve: KeyAlgorithm::EcdsaP384
            }
        );
    }

    #[test]
    fn public_keys_come_from_certificates_and_spki() {
        for curve in CURVES {
            let ca =
                CertificateAuthority::new_root(&Subject::cn("ca"), Validity::ten_years(), curve)
                    .unwrap();
            let leaf = ca
                .issue(&LeafRequest::new(Subject::cn("u"), LeafProfile::Signing).algorithm(curve))
                .unwrap();
            let from_cert = PublicKey::from_certificate(&leaf.der).unwrap();
            assert_eq!(from_cert, leaf.key.public_key().unwrap());
            assert_eq!(from_cert.algorithm(), curve);
            assert!(format!("{from_cert:?}").starts_with("PublicKey { algorithm: "));
            let sig = leaf.key.sign(b"m").unwrap();
            from_cert.verify(b"m", &sig).unwrap();
        }
        let e = PublicKey::from_certificate(&CertificateDer::from(vec![0x30, 0x00])).unwrap_err();
        assert!(matches!(e, SignatureError::MalformedKey { .. }), "{e}");
        let mut spki = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
            .unwrap()
            .public_key_der();
        spki.push(0);
        let e = PublicKey::from_spki_der(&spki).unwrap_err();
        assert!(
            e.to_string().contains("follow the SubjectPublicKeyInfo"),
            "{e}"
        );
        // Ed25519 SPKI.
        let mut ed = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        ed.extend_from_slice(&[7; 32]);
        let e = PublicKey::from_spki_der(&ed).unwrap_err();
        assert!(
            matches!(e, SignatureError::UnsupportedKey { .. }) && e.to_string().contains("Ed25519"),
            "{e}"
        );
        // A P-256 SPKI whose point is not on the curve.
        let mut off_curve = PrivateKey::generate(KeyAlgorithm::EcdsaP256)
            .unwrap()
            .public_key_der();
        let last = off_curve.len() - 1;
        off_curve[last] ^= 1;
        let e = PublicKey::from_spki_der(&off_curve).unwrap_err();
        assert!(
            e.to_string().contains("not a valid ECDSA P-256 point"),
            "{e}"
        );
    }

    /// xorshift64*: deterministic, so a failure is reproducible.
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

    #[test]
    fn mutated_signatures_never_panic_and_never_verify_unless_canonical() {
        let keys: Vec<PrivateKey> = CURVES
            .iter()
            .map(|&c| PrivateKey::generate(c).unwrap())
            .collect();
        let publics: Vec<PublicKey> = keys.iter().map(|k| k.public_key().unwrap()).collect();
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        for k in &keys {
            let sig = k.sign(b"msg").unwrap();
            seeds.push(complement_s(k.algorithm(), &sig).unwrap());
            seeds.push(sig);
        }
        seeds.push(Vec::new());
        seeds.push(vec![0x30, 0x81, 0x80]);
        let mut rng = Rng(0x51_6e_a7_0e_5e_ed_00_01);
        let mut accepted = 0;
        for round in 0..20_000 {
            let mut v = seeds[rng.below(seeds.len())].clone();
            for _ in 0..=rng.below(3) {
                match rng.below(6) {
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
                        let junk: Vec<u8> = (0..rng.below(4)).map(|_| rng.next() as u8).collect();
                        v.splice(i..i, junk);
                    }
                    4 if v.len() > 2 => {
                        v.remove(rng.below(v.len()));
                    }
                    _ => {
                        let mut fresh = vec![0u8; rng.below(110)];
                        for b in &mut fresh {
                            *b = rng.next() as u8;
                        }
                        if round % 2 == 0 && fresh.len() > 2 {
                            fresh[0] = 0x30;
                            fresh[1] = (fresh.len() - 2) as u8;
                        }
                        v = fresh;
                    }
                }
            }
            for (i, curve) in CURVES.iter().enumerate() {
                let _ = is_low_s(*curve, &v);
                if let Ok(n) = normalize_low_s(*curve, &v) {
                    assert!(is_low_s(*curve, &n).unwrap());
                    // Decoding is strict, so what it accepts it re-encodes byte for byte.
                    let sig = decode_signature(&v).unwrap();
                    assert_eq!(encode_signature(sig.r, sig.s), v);
                }
                let _ = complement_s(*curve, &v);
                if verify(&publics[i], b"msg", &v).is_ok() {
                    accepted += 1;
                    assert!(is_low_s(*curve, &v).unwrap());
                }
            }
        }
        // Only unmutated low-S seeds (a mutation may restore one) can verify.
        assert!(accepted > 0);

        // Public keys from mutated SPKI and certificates.
        let ca = CertificateAuthority::new_root(
            &Subject::cn("ca"),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP384,
        )
        .unwrap();
        let key_seeds = [
            keys[0].public_key_der(),
            keys[1].public_key_der(),
            ca.certificate().to_vec(),
        ];
        for _ in 0..3000 {
            let mut v = key_seeds[rng.below(key_seeds.len())].clone();
            for _ in 0..=rng.below(3) {
                match rng.below(3) {
                    0 if !v.is_empty() => {
                        let i = rng.below(v.len());
                        v[i] ^= 1 << rng.below(8);
                    }
                    1 => v.truncate(rng.below(v.len() + 1)),
                    _ if !v.is_empty() => {
                        let i = rng.below(v.len());
                        v[i] = rng.next() as u8;
                    }
                    _ => {}
                }
            }
            let _ = PublicKey::from_spki_der(&v);
            let _ = PublicKey::from_certificate(&CertificateDer::from(v));
        }
    }
}
