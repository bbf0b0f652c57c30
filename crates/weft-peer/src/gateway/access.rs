//! Access checks for signed requests (gateway `CommitStatus` / `ChaincodeEvents`, Deliver):
//! the signature must verify under the request's identity, the identity must be a valid
//! member of one of the channel's organizations, and it must satisfy the channel policy the
//! channel's ACLs name for the resource (`/Channel/Application/Readers` by default).
//!
//! A channel without a config block (from the peer's channel file) has no policies: there a
//! valid member of one of its MSPs is enough.

use bytes::Bytes;
use weft_msp::msp::ValidatedIdentity;

use crate::channel::Channel;

/// Fabric's default policy for the read resources below.
pub const READERS: &str = "/Channel/Application/Readers";

/// ACL resource names (configtx.yaml `ACLs`).
pub const GATEWAY_COMMIT_STATUS: &str = "gateway/CommitStatus";
pub const GATEWAY_CHAINCODE_EVENTS: &str = "gateway/ChaincodeEvents";
pub const EVENT_BLOCK: &str = "event/Block";
pub const EVENT_FILTERED_BLOCK: &str = "event/FilteredBlock";

/// Check one signed request against `resource` on `channel`; the error explains the refusal.
pub fn authorize(
    channel: &Channel,
    resource: &str,
    identity: &Bytes,
    data: &[u8],
    signature: &[u8],
) -> Result<ValidatedIdentity, String> {
    if identity.is_empty() {
        return Err(format!(
            "access denied on channel {}: the request names no identity",
            channel.id()
        ));
    }
    let id = channel
        .verify_signature(identity, data, signature)
        .map_err(|e| {
            format!(
                "access denied on channel {} for {resource}: the request's signer is not accepted: {e}",
                channel.id()
            )
        })?;
    if let Some(config) = channel.config() {
        let path = config.acl_policy(resource, READERS).to_owned();
        config
            .evaluate_policy_identities(&path, std::slice::from_ref(&id))
            .map_err(|e| {
                format!(
                    "access denied on channel {} for {resource}: {} ({}) does not satisfy {path}: {e}",
                    channel.id(),
                    id.subject,
                    id.msp_id
                )
            })?;
    }
    Ok(id)
}
