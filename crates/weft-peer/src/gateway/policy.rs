//! Endorsement policy checks for the gateway, and naming endorsers in messages.
//!
//! The gateway checks the chaincode's endorsement policy over the endorsements it gathered
//! before it returns a prepared transaction, so a client learns at Endorse time, with an
//! explanation, that endorsements are missing (rather than at commit, as
//! ENDORSEMENT_POLICY_FAILURE). Key-level policies are not considered here (the committer
//! applies them); a client that knows they apply names the endorsing organizations.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prost::Message;
use weft_configtx::ChannelConfig;
use weft_msp::msp::ValidatedIdentity;
use weft_msp::policy::CompiledPolicy;
use weft_proto::protos::Endorsement;

use crate::channel::{Channel, EndorsementPolicy, DEFAULT_ENDORSEMENT_POLICY};

/// One endorser's answer.
#[derive(Debug, Clone)]
pub struct Endorsed {
    pub payload: Bytes,
    pub endorsement: Endorsement,
    /// The endorsement's signer once its signature was checked (or why it failed): the
    /// gateway asks about the policy after its own endorsement and again after the others',
    /// and checks each endorsement once.
    signer: OnceLock<Result<ValidatedIdentity, String>>,
}

impl Endorsed {
    pub fn new(payload: Bytes, endorsement: Endorsement) -> Self {
        Endorsed {
            payload,
            endorsement,
            signer: OnceLock::new(),
        }
    }

    /// The identity whose signature over `payload || endorser` this endorsement carries,
    /// validated by the channel's MSPs (through the peer's caches, so the committer does
    /// not verify it again).
    fn signer(&self, channel: &Channel) -> &Result<ValidatedIdentity, String> {
        self.signer.get_or_init(|| {
            let e = &self.endorsement;
            let msg = [self.payload.as_ref(), e.endorser.as_ref()].concat();
            channel
                .verify_signature(&e.endorser, &msg, &e.signature)
                .map_err(|err| err.to_string())
        })
    }
}

/// The MSP ID and subject of an endorsement's signer, for messages.
pub fn endorser_name(e: &Endorsement) -> (String, String) {
    match weft_proto::msp::SerializedIdentity::decode(e.endorser.clone()) {
        Ok(id) => {
            let subject = weft_crypto::pem::certificates(&id.id_bytes, "endorser")
                .ok()
                .and_then(|c| c.into_iter().next())
                .and_then(|der| weft_crypto::CertSummary::parse(&der).ok())
                .map(|s| s.subject)
                .unwrap_or_else(|| format!("an identity of {}", id.mspid));
            (id.mspid, subject)
        }
        Err(_) => (String::new(), "an undecodable identity".into()),
    }
}

/// The TLS roots (DER) of organization `msp_id` on `channel`.
pub fn org_tls_roots(channel: &Channel, msp_id: &str) -> Vec<Vec<u8>> {
    let from = |msp: &weft_msp::msp::Msp| -> Vec<Vec<u8>> {
        msp.tls_root_certs()
            .iter()
            .chain(msp.tls_intermediate_certs())
            .cloned()
            .collect()
    };
    if let Some(config) = channel.config() {
        if let Some(org) = config.org_by_msp_id(msp_id) {
            return from(&org.msp);
        }
    }
    channel.msps().get(msp_id).map(from).unwrap_or_default()
}

/// The identities of the endorsements whose signature verifies ([`Endorsed::signer`]), and
/// why the others did not count.
fn verified_endorsers(
    channel: &Channel,
    endorsed: &[Endorsed],
) -> (Vec<ValidatedIdentity>, Vec<String>) {
    let mut ids = Vec::with_capacity(endorsed.len());
    let mut rejected = Vec::new();
    for e in endorsed {
        match e.signer(channel) {
            Ok(id) => ids.push(id.clone()),
            Err(err) => rejected.push(err.clone()),
        }
    }
    (ids, rejected)
}

/// The endorsement policy that applies to a chaincode on a channel.
enum Applies {
    /// The chaincode's own signature policy.
    Signature(Arc<CompiledPolicy>),
    /// A channel policy by path (the chaincode's, or the channel's default).
    Channel(Arc<ChannelConfig>, String),
    /// A channel from a channel file has no policies: one valid endorsement will do.
    AnyEndorsement,
}

impl Applies {
    fn to(channel: &Channel, chaincode: &str) -> Self {
        let path = match channel
            .definition(chaincode)
            .and_then(|d| d.endorsement_policy)
        {
            Some(EndorsementPolicy::Signature(p)) => return Applies::Signature(p),
            Some(EndorsementPolicy::ChannelPolicy(path)) => path,
            None => DEFAULT_ENDORSEMENT_POLICY.to_owned(),
        };
        match channel.config() {
            Some(config) => Applies::Channel(config, path),
            None => Applies::AnyEndorsement,
        }
    }

    /// The quick verdict, without an explanation.
    fn met(&self, ids: &[ValidatedIdentity]) -> bool {
        match self {
            Applies::Signature(p) => p.is_satisfied(ids),
            Applies::Channel(config, path) => config.policy_satisfied(path, ids),
            Applies::AnyEndorsement => !ids.is_empty(),
        }
    }

    /// The verdict, with why it failed.
    fn explain(&self, ids: &[ValidatedIdentity]) -> Result<(), String> {
        match self {
            Applies::Signature(p) => p.evaluate(ids).map_err(|e| e.to_string()),
            Applies::Channel(config, path) => config
                .evaluate_policy_identities(path, ids)
                .map_err(|e| e.to_string()),
            Applies::AnyEndorsement if ids.is_empty() => Err("no valid endorsement".into()),
            Applies::AnyEndorsement => Ok(()),
        }
    }
}

/// Whether the endorsements satisfy the chaincode's endorsement policy, without explaining
/// a failure: the gateway asks this after its own endorsement to learn whether it needs
/// other organizations', which under MAJORITY of two is the usual case.
pub fn policy_met(channel: &Channel, chaincode: &str, endorsed: &[Endorsed]) -> bool {
    let (ids, _) = verified_endorsers(channel, endorsed);
    Applies::to(channel, chaincode).met(&ids)
}

/// Whether the endorsements satisfy the chaincode's endorsement policy, and if not, why.
/// Each endorsement's signature is verified as in [`policy_met`].
pub fn check_policy(
    channel: &Channel,
    chaincode: &str,
    endorsed: &[Endorsed],
) -> Result<(), String> {
    let (ids, rejected) = verified_endorsers(channel, endorsed);
    Applies::to(channel, chaincode).explain(&ids).map_err(|e| {
        let rejected_note = if rejected.is_empty() {
            String::new()
        } else {
            format!("; endorsements that did not count: {}", rejected.join("; "))
        };
        format!("the endorsement policy of chaincode {chaincode} on channel {} is not satisfied: {e}{rejected_note}", channel.id())
    })
}
