//! Caches that keep a peer from doing the same expensive check twice.
//!
//! - [`SignatureCache`]: the keys of signatures this peer has already verified or made,
//!   `sha256(len(key) || key || len(digest) || digest || signature)`, where `key` is the
//!   signer's public key (DER SubjectPublicKeyInfo) and `digest` the hash of the signed
//!   message. The endorser fills it with the proposals it verified and the endorsements it
//!   signed; the validator consults it before verifying a signature. A hit says exactly what
//!   a verification would: "this public key signed these exact bytes". The identity holding
//!   the key is still validated against the channel's MSPs on every use. The length prefixes
//!   keep two different (key, digest) splits of the same bytes apart. Keying by the ~90-byte
//!   public key rather than the ~800-byte serialized identity hashes 4 SHA-256 blocks per
//!   lookup instead of ~15.
//! - [`IdentityCache`]: serialized identity bytes -> the identity the channel's MSPs validated
//!   (certificate chain, role). A cached identity past its `not_after` is validated again
//!   (and so refused). Per channel: another channel has other MSPs.
//!
//! Both are bounded: when full, the oldest entries (insertion order) are dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use time::OffsetDateTime;
use weft_crypto::sign::{MessageDigest, PublicKey};
use weft_msp::msp::{IdentityError, MspManager, ValidatedIdentity};

use crate::sync::lock;

/// Default capacity of a [`SignatureCache`].
pub const SIGNATURE_CACHE_CAPACITY: usize = 200_000;
/// Default capacity of an [`IdentityCache`].
pub const IDENTITY_CACHE_CAPACITY: usize = 10_000;

/// A bounded set with first-in first-out eviction.
#[derive(Debug)]
struct Fifo<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V> Fifo<K, V> {
    fn new(capacity: usize) -> Self {
        // Sized for the capacity up front: growing rehashes the whole map under the lock,
        // with every verifying thread waiting on it.
        let capacity = capacity.max(1);
        Fifo {
            map: HashMap::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    fn insert(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// Signatures already verified (or made) on this peer; see the module docs.
#[derive(Debug)]
pub struct SignatureCache {
    inner: Mutex<Fifo<[u8; 32], ()>>,
}

impl Default for SignatureCache {
    fn default() -> Self {
        Self::new(SIGNATURE_CACHE_CAPACITY)
    }
}

/// The cache key of `signature` by `key` over the message with digest `digest`: the digest
/// the signature covers, so the message is hashed once for both the cache key and the
/// verification ([`weft_crypto::sign::verify_digest`]).
fn signature_key(key: &PublicKey, digest: &MessageDigest, signature: &[u8]) -> [u8; 32] {
    let spki = key.spki_der();
    let digest = digest.as_bytes();
    let mut h = weft_crypto::Sha256::new();
    h.update(&(spki.len() as u64).to_be_bytes());
    h.update(spki);
    h.update(&(digest.len() as u64).to_be_bytes());
    h.update(digest);
    h.update(signature);
    h.finish()
}

impl SignatureCache {
    pub fn new(capacity: usize) -> Self {
        SignatureCache {
            inner: Mutex::new(Fifo::new(capacity)),
        }
    }

    /// Record that `signature` by `key` over the message with digest `digest` is good.
    pub fn insert(&self, key: &PublicKey, digest: &MessageDigest, signature: &[u8]) {
        self.insert_key(signature_key(key, digest, signature));
    }

    fn insert_key(&self, key: [u8; 32]) {
        lock(&self.inner).insert(key, ());
    }

    /// Check that `signature` is `key`'s signature of `message`: from the cache when this
    /// peer verified (or made) it before, else by verifying it and remembering it. The message
    /// is hashed once, for both the cache key and the verification.
    pub fn verify(
        &self,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), weft_crypto::sign::SignatureError> {
        let digest = MessageDigest::of(key.algorithm(), message);
        let cache_key = signature_key(key, &digest, signature);
        if !self.contains_key(&cache_key) {
            weft_crypto::sign::verify_digest(key, &digest, signature)?;
            self.insert_key(cache_key);
        }
        Ok(())
    }

    /// Whether `signature` by `key` over the message with digest `digest` was verified (or
    /// made) before.
    pub fn contains(&self, key: &PublicKey, digest: &MessageDigest, signature: &[u8]) -> bool {
        self.contains_key(&signature_key(key, digest, signature))
    }

    fn contains_key(&self, key: &[u8; 32]) -> bool {
        lock(&self.inner).map.contains_key(key)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Identities validated by one channel's MSPs; see the module docs.
#[derive(Debug)]
pub struct IdentityCache {
    inner: Mutex<Fifo<Bytes, ValidatedIdentity>>,
}

impl Default for IdentityCache {
    fn default() -> Self {
        Self::new(IDENTITY_CACHE_CAPACITY)
    }
}

impl IdentityCache {
    pub fn new(capacity: usize) -> Self {
        IdentityCache {
            inner: Mutex::new(Fifo::new(capacity)),
        }
    }

    /// `msps.deserialize(serialized)`, from the cache when possible. Failures are not cached
    /// (they are rare and must keep their full explanation).
    pub fn deserialize(
        &self,
        msps: &MspManager,
        serialized: &Bytes,
    ) -> Result<ValidatedIdentity, IdentityError> {
        let now = OffsetDateTime::now_utc();
        if let Some(id) = lock(&self.inner).map.get(serialized) {
            if id.not_after > now {
                return Ok(id.clone());
            }
        }
        let id = msps.deserialize_at(serialized, now)?;
        lock(&self.inner).insert(serialized.clone(), id.clone());
        Ok(id)
    }

    /// `msps.deserialize_at_issuance(serialized)`, from the cache when possible: identities
    /// read from blocks, validated the same way at any time (see
    /// [`weft_msp::msp::Msp::validate_at_issuance`]). Keep such identities in a cache of
    /// their own: one validated now may differ.
    pub fn deserialize_at_issuance(
        &self,
        msps: &MspManager,
        serialized: &Bytes,
    ) -> Result<ValidatedIdentity, IdentityError> {
        if let Some(id) = lock(&self.inner).map.get(serialized) {
            return Ok(id.clone());
        }
        let id = msps.deserialize_at_issuance(serialized)?;
        lock(&self.inner).insert(serialized.clone(), id.clone());
        Ok(id)
    }

    /// Forget everything (the channel's MSPs changed).
    pub fn clear(&self) {
        let mut g = lock(&self.inner);
        g.map.clear();
        g.order.clear();
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn key_pair() -> (weft_crypto::keys::PrivateKey, PublicKey) {
        let key =
            weft_crypto::keys::PrivateKey::generate(weft_crypto::KeyAlgorithm::EcdsaP256).unwrap();
        let public = PublicKey::from_spki_der(&key.public_key_der()).unwrap();
        (key, public)
    }

    fn public_key() -> PublicKey {
        key_pair().1
    }

    #[test]
    fn verify_remembers_good_signatures_only() {
        let (key, public) = key_pair();
        let (_, other) = key_pair();
        let c = SignatureCache::new(10);
        let sig = key.sign(b"msg").unwrap();
        c.verify(&public, b"msg", &sig).unwrap();
        assert_eq!(c.len(), 1);
        c.verify(&public, b"msg", &sig).unwrap();
        assert_eq!(c.len(), 1, "the second check is a cache hit");
        // Another key, or another message: verified (and refused), never answered from the
        // cache, never remembered.
        assert!(c.verify(&other, b"msg", &sig).is_err());
        assert!(c.verify(&public, b"msg2", &sig).is_err());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn signature_cache_is_bounded_and_keyed_by_all_parts() {
        let d = |m: &[u8]| MessageDigest::of(weft_crypto::KeyAlgorithm::EcdsaP256, m);
        let (a, b) = (public_key(), public_key());
        let c = SignatureCache::new(2);
        c.insert(&a, &d(b"msg"), b"sig");
        assert!(c.contains(&a, &d(b"msg"), b"sig"));
        assert!(!c.contains(&b, &d(b"msg"), b"sig"), "another key");
        assert!(!c.contains(&a, &d(b"msg2"), b"sig"), "another message");
        assert!(!c.contains(&a, &d(b"msg"), b"sig2"), "another signature");
        c.insert(&a, &d(b"msg"), b"sig2");
        c.insert(&a, &d(b"msg"), b"sig3");
        assert_eq!(c.len(), 2);
        assert!(!c.contains(&a, &d(b"msg"), b"sig"), "oldest evicted");
        assert!(c.contains(&a, &d(b"msg"), b"sig3"));
    }
}
