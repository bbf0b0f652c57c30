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
#[derive(Debug, Default)]
pub struct IdentityCache {
    map: Mutex<HashMap<Bytes, Arc<ValidatedIdentity>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl IdentityCache {
    /// The validated identity behind `creator` (`msp.SerializedIdentity` bytes).
    pub fn identity(
        &self,
        config: &ChannelConfig,
        creator: &Bytes,
    ) -> Result<Arc<ValidatedIdentity>, String> {
        let now = OffsetDateTime::now_utc();
        if let Some(id) = lock(&self.map).get(creator) {
            if now < id.not_after {
                return Ok(id.clone());
            }
        }
        let id = Arc::new(
            config
                .msp_manager()
                .deserialize_at(creator, now)
                .map_err(|e| e.to_string())?,
        );
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
