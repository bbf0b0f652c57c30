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

/// At most this many other organizations are searched for the smallest set that can meet a
/// policy (2^n policy evaluations); with more, the gateway asks all of them.
const PLAN_SEARCH_LIMIT: usize = 10;

/// The organizations to ask first for endorsements, given what `endorsed` already holds:
/// the smallest set of `candidates` (the first in their order among sets of that size) whose
/// peers, endorsing, would satisfy the chaincode's policy. Fabric's gateway likewise sends a
/// proposal (and its transient data) only to the organizations of one endorsement plan,
/// never to every organization. `None` when no such set can be found (policies that name
/// certificates or OUs, too many organizations, no endorsement yet to model a peer on): ask
/// them all.
pub fn plan(
    channel: &Channel,
    chaincode: &str,
    endorsed: &[Endorsed],
    candidates: &[String],
) -> Option<Vec<String>> {
    let n = candidates.len();
    if n <= 1 {
        // Nothing to choose (two orgs: the other one), and no evaluation on the hot path.
        return Some(candidates.to_vec());
    }
    if n > PLAN_SEARCH_LIMIT {
        return None;
    }
    let (ids, _) = verified_endorsers(channel, endorsed);
    let model = ids.first()?.clone();
    let applies = Applies::to(channel, chaincode);
    // A peer of each candidate, as the policy sees it: its MSP and the peer role.
    let peer_of = |org: &str| ValidatedIdentity {
        msp_id: org.to_owned(),
        role: weft_msp::msp::Role::Peer,
        subject: format!("a peer of {org}"),
        fingerprint: format!("planned endorser of {org}"),
        ..model.clone()
    };
    let mut subsets: Vec<u32> = (1..(1u32 << n)).collect();
    // Smaller sets first; among sets of one size, those of earlier candidates.
    subsets.sort_by_key(|m| (m.count_ones(), std::cmp::Reverse(m.reverse_bits())));
    for mask in subsets {
        let mut with = ids.clone();
        let chosen: Vec<String> = (0..n)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| candidates[i].clone())
            .collect();
        with.extend(chosen.iter().map(|o| peer_of(o)));
        if applies.met(&with) {
            return Some(chosen);
        }
    }
    None
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::channel::ChaincodeDefinition;

    /// The gateway's plan asks only the organizations a policy needs: with AND(Org1, Org2)
    /// on a channel that also has Org3, Org3's peers never see the proposal (nor the
    /// client's transient data it carries); OR(Org2, Org3) asks one of them; MAJORITY of
    /// the two orgs asks Org2; a policy no peer set can meet gives no plan (ask everyone).
    #[tokio::test]
    async fn plans_ask_only_the_organizations_a_policy_needs() {
        let dir = tempfile::tempdir().unwrap();
        let net = weft_configtx::testing::two_org_network(&dir.path().join("net"), 7050).unwrap();
        let ch = crate::testing::open_channel_from_genesis(
            &dir.path().join("ledger"),
            &net.genesis,
            Arc::new(crate::verifycache::SignatureCache::default()),
        )
        .await
        .unwrap();
        let peer1 = net.orgs[0].node.signer().unwrap();
        let payload = Bytes::from_static(b"a proposal response payload");
        let endorser: Bytes = peer1.serialize().into();
        let signature = peer1
            .sign(&[payload.as_ref(), endorser.as_ref()].concat())
            .unwrap();
        let local = vec![Endorsed::new(
            payload,
            Endorsement {
                endorser,
                signature: signature.into(),
            },
        )];
        let others = vec!["Org2MSP".to_owned(), "Org3MSP".to_owned()];
        let define = |name: &str, text: &str| {
            let p = weft_msp::policy::parse(text).unwrap();
            ch.define(
                name,
                ChaincodeDefinition {
                    package_id: format!("{name}:1"),
                    version: "1".into(),
                    endorsement_policy: Some(EndorsementPolicy::Signature(Arc::new(
                        CompiledPolicy::new(&p).unwrap(),
                    ))),
                },
            );
        };
        define("and12", "AND('Org1MSP.peer', 'Org2MSP.peer')");
        define("or23", "OR('Org2MSP.peer', 'Org3MSP.peer')");
        define(
            "all3",
            "AND('Org1MSP.peer', 'Org2MSP.peer', 'Org3MSP.peer')",
        );
        define("admins", "AND('Org1MSP.peer', 'Org2MSP.admin')");
        ch.define_chaincode("majority", "majority:1");
        let plan = |cc: &str| plan(&ch, cc, &local, &others);
        assert_eq!(plan("and12"), Some(vec!["Org2MSP".to_owned()]));
        assert_eq!(plan("or23"), Some(vec!["Org2MSP".to_owned()]));
        assert_eq!(plan("all3"), Some(others.clone()));
        assert_eq!(plan("majority"), Some(vec!["Org2MSP".to_owned()]));
        // Peers cannot meet a policy that wants another org's admin: ask everyone.
        assert_eq!(plan("admins"), None);
        // No endorsement to model a peer on: ask everyone.
        assert_eq!(super::plan(&ch, "and12", &[], &others), None);
    }
}
