//! Checking who signed an envelope, on the hot path: the creator of a signed payload is
//! validated with the channel's MSPs once and remembered (by its serialized bytes); the
//! signature is verified every time; the policy is evaluated over the cached identity.
//!
//! The cache belongs to one channel config (a new config gets a new cache) and is bounded:
//! when full it is emptied. A cached identity is used only while its certificate is valid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use time::OffsetDateTime;
use weft_configtx::ChannelConfig;
use weft_msp::ValidatedIdentity;

/// Cached identities at most.
pub const CAPACITY: usize = 4096;

/// Validated creators of one channel config.
#[derive(Debug)]
pub struct IdentityCache {
    /// The sequence of the config whose MSPs validated the entries. A caller holding another
    /// config (one that read the config just before or after an update) neither reads nor
    /// fills this cache, so identities validated under replaced MSPs never outlive them.
    sequence: u64,
    map: Mutex<HashMap<Bytes, Arc<ValidatedIdentity>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl IdentityCache {
    /// An empty cache for the config at `sequence`.
    pub fn for_sequence(sequence: u64) -> Self {
        IdentityCache {
            sequence,
            map: Mutex::default(),
        }
    }

    /// The validated identity behind `creator` (`msp.SerializedIdentity` bytes).
    pub fn identity(
        &self,
        config: &ChannelConfig,
        creator: &Bytes,
    ) -> Result<Arc<ValidatedIdentity>, String> {
        let now = OffsetDateTime::now_utc();
        let ours = config.sequence() == self.sequence;
        if ours {
            if let Some(id) = lock(&self.map).get(creator) {
                if now < id.not_after {
                    return Ok(id.clone());
                }
            }
        }
        let id = Arc::new(
            config
                .msp_manager()
                .deserialize_at(creator, now)
                .map_err(|e| e.to_string())?,
        );
        if !ours {
            return Ok(id);
        }
        let mut map = lock(&self.map);
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(creator.clone(), id.clone());
        Ok(id)
    }

    /// Validate `creator`, verify its `signature` of `data`, and evaluate the policy at
    /// `policy` over it. The error says who signed and why it does not count.
    pub fn check(
        &self,
        config: &ChannelConfig,
        policy: &str,
        creator: &Bytes,
        data: &[u8],
        signature: &[u8],
    ) -> Result<Arc<ValidatedIdentity>, String> {
        if signature.is_empty() {
            return Err("the envelope is not signed (empty signature)".into());
        }
        let id = self
            .identity(config, creator)
            .map_err(|e| format!("the creator is not a valid identity of the channel: {e}"))?;
        weft_crypto::sign::verify(&id.public_key, data, signature).map_err(|e| {
            format!(
                "signature by '{}' of MSP '{}' does not verify: {e}",
                id.subject, id.msp_id
            )
        })?;
        config
            .evaluate_policy_identities(policy, std::slice::from_ref(id.as_ref()))
            .map_err(|e| {
                format!(
                    "identity '{}' of MSP '{}' does not satisfy {policy}: {e}",
                    id.subject, id.msp_id
                )
            })?;
        Ok(id)
    }

    pub fn len(&self) -> usize {
        lock(&self.map).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Attack on revocation: a Broadcast or Deliver that read the config just before an
    /// update removed an org, and the identity cache just after, validates the removed
    /// org's member under the old MSPs. That result must not enter the new config's cache,
    /// where it would stay valid until the certificate expired.
    #[test]
    fn identities_validated_under_another_config_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let net = weft_configtx::testing::two_org_network(dir.path(), 7050).unwrap();
        let old = ChannelConfig::from_block(&net.genesis).unwrap();
        let mut without =
            weft_configtx::testing::without_application_org(old.config(), "Org2MSP").unwrap();
        without.sequence += 1;
        let new = ChannelConfig::from_config(old.channel_id(), &without).unwrap();
        let user2: Bytes = net.orgs[1].user.signer().unwrap().serialize().into();

        let cache = IdentityCache::for_sequence(new.sequence());
        // The late caller with the old config: validated under it, not remembered.
        cache.identity(&old, &user2).unwrap();
        assert!(cache.is_empty());
        let err = cache.identity(&new, &user2).unwrap_err();
        assert!(err.contains("Org2MSP"), "{err}");
        // The config's own callers fill it.
        let user1: Bytes = net.orgs[0].user.signer().unwrap().serialize().into();
        cache.identity(&new, &user1).unwrap();
        assert_eq!(cache.len(), 1);
    }
}
