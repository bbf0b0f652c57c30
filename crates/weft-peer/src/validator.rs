//! Validation of a block's transactions: one `TxValidationCode` per transaction, as Fabric's
//! committing peer decides it.
//!
//! Two phases:
//!
//! 1. [`check_envelope`], per transaction, independent of the others and of the state, run in
//!    parallel across the block ([`check_block`]): decode the envelope, payload and headers
//!    from the bytes as received (nothing a signature covers is re-encoded); channel id, header
//!    type, epoch; `tx_id = hex(sha256(nonce || creator))`; the creator validated by the
//!    channel's MSPs and its signature over the payload bytes verified; the chaincode action
//!    decoded, and bound to this transaction: the `proposal_hash` its endorsers signed must be
//!    `sha256(channel header || action's signature header || chaincode proposal payload)` of
//!    this transaction's bytes, so endorsements cannot be replayed under another header;
//!    every endorsement signature (over `proposal_response_payload || endorser`)
//!    verified, keeping the distinct endorsers whose signatures are good. Signatures go
//!    through the [`TxContext`], which skips those already verified on this peer (see
//!    [`crate::verifycache`]).
//! 2. [`BlockChecker`], in block order, over a read view of the state before the block:
//!    duplicate tx ids (in the block, then on the ledger), the endorsement policy of every
//!    namespace written and of the invoked chaincode (key-level `VALIDATION_PARAMETER`
//!    policies replace the chaincode's for the keys that have one, as of the earlier valid
//!    transactions of the block), then MVCC and phantom reads with
//!    [`weft_ledger::mvcc::BlockValidator`], whose updates of the valid transactions become the
//!    block's state batch.
//!
//! Config transactions are valid here when their creator (the orderer) and signature check
//! and their `ConfigEnvelope` decodes; the committer checks the config update itself against
//! the channel's config ([`crate::committer::check_config_block`]) and applies it. Everything here is free of network and clock: tests drive it directly.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use prost::Message;
use weft_ledger::mvcc::{decode_metadata, BlockValidator, Conflict};
use weft_ledger::{ReadView, StateError, UpdateBatch};
use weft_msp::msp::ValidatedIdentity;
use weft_proto::common::{
    ChannelHeader, ConfigEnvelope, Envelope, HeaderType, Payload, SignatureHeader,
};
use weft_proto::kvrwset::KvrwSet;
use weft_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEvent, ChaincodeHeaderExtension,
    ProposalResponsePayload, Transaction, TxValidationCode,
};
use weft_proto::rwset::TxReadWriteSet;

use crate::channel::{EndorsementPolicy, DEFAULT_ENDORSEMENT_POLICY};

/// The metadata entry of a key holding its key-level endorsement policy (a
/// `SignaturePolicyEnvelope`).
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

/// What validation needs from the channel (implemented by [`crate::channel::Channel`]).
pub trait TxContext: Sync {
    fn channel_id(&self) -> &str;
    /// Validate a serialized identity with the channel's MSPs.
    fn validate_identity(&self, serialized: &Bytes) -> Result<ValidatedIdentity, String>;
    /// Check `signature` of `message` by `identity` (already validated); may answer from a
    /// cache of signatures verified before.
    fn verify(
        &self,
        identity: &ValidatedIdentity,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), String>;
    /// The endorsement policy of chaincode `name`: `None` if it is not defined on the
    /// channel, `Some(None)` for the channel's default.
    fn chaincode_policy(&self, name: &str) -> Option<Option<EndorsementPolicy>>;
    /// Evaluate the channel policy at `path` over endorsers.
    fn evaluate_channel_policy(&self, path: &str, ids: &[ValidatedIdentity]) -> Result<(), String>;
    /// Who may endorse for the application org whose MSP is `msp_id` (its `_lifecycle`
    /// approvals).
    fn org_endorsement_policy(&self, msp_id: &str) -> OrgEndorsement;
}

/// Who endorses for one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgEndorsement {
    /// The org's `Endorsement` policy, at this path.
    Policy(String),
    /// The config gives the org no `Endorsement` policy (or the channel has no config): any
    /// member of the org.
    AnyMember,
    /// The MSP is not an application org of the channel.
    NotAnApplicationOrg,
}

/// A transaction after phase 1.
#[derive(Debug, Clone)]
pub enum Checked {
    /// Invalid already; `tx_id` is empty when the header did not decode.
    Invalid {
        tx_id: String,
        code: TxValidationCode,
        reason: String,
    },
    /// A config transaction that decodes.
    Config { tx_id: String },
    /// An endorser transaction whose signatures were checked.
    Endorser(Box<EndorserTx>),
}

/// The parts of an endorser transaction phase 2 needs.
#[derive(Debug, Clone)]
pub struct EndorserTx {
    pub tx_id: String,
    /// The invoked chaincode.
    pub chaincode: String,
    pub rwset: TxReadWriteSet,
    /// Decoded namespaces of `rwset`.
    pub namespaces: Vec<(String, KvrwSet)>,
    /// Distinct endorsers with valid signatures.
    pub endorsers: Vec<ValidatedIdentity>,
    /// Endorsements that did not count, and why.
    pub rejected: Vec<String>,
    pub event: Option<ChaincodeEvent>,
    pub timestamp: Option<(i64, i32)>,
}

impl Checked {
    pub fn tx_id(&self) -> &str {
        match self {
            Checked::Invalid { tx_id, .. } | Checked::Config { tx_id } => tx_id,
            Checked::Endorser(tx) => &tx.tx_id,
        }
    }
}

fn invalid(tx_id: &str, code: TxValidationCode, reason: impl Into<String>) -> Checked {
    Checked::Invalid {
        tx_id: tx_id.to_owned(),
        code,
        reason: reason.into(),
    }
}

/// Phase 1 for one envelope (see the module docs).
pub fn check_envelope(ctx: &dyn TxContext, env_bytes: &Bytes) -> Checked {
    use TxValidationCode as C;
    if env_bytes.is_empty() {
        return invalid("", C::NilEnvelope, "the envelope is empty");
    }
    let env = match Envelope::decode(env_bytes.clone()) {
        Ok(e) => e,
        Err(e) => {
            return invalid(
                "",
                C::BadPayload,
                format!("the envelope does not decode: {e}"),
            )
        }
    };
    let payload = match Payload::decode(env.payload.clone()) {
        Ok(p) => p,
        Err(e) => {
            return invalid(
                "",
                C::BadPayload,
                format!("the payload does not decode: {e}"),
            )
        }
    };
    let Some(header) = payload.header else {
        return invalid("", C::BadCommonHeader, "the payload has no header");
    };
    let chdr = match ChannelHeader::decode(header.channel_header.clone()) {
        Ok(h) => h,
        Err(e) => {
            return invalid(
                "",
                C::BadChannelHeader,
                format!("the channel header does not decode: {e}"),
            )
        }
    };
    let tx_id = chdr.tx_id.clone();
    let shdr = match SignatureHeader::decode(header.signature_header.clone()) {
        Ok(h) => h,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadCommonHeader,
                format!("the signature header does not decode: {e}"),
            )
        }
    };
    if chdr.channel_id != ctx.channel_id() {
        return invalid(
            &tx_id,
            C::TargetChainNotFound,
            format!(
                "the transaction is for channel {:?}, not {:?}",
                chdr.channel_id,
                ctx.channel_id()
            ),
        );
    }
    if chdr.epoch != 0 {
        return invalid(
            &tx_id,
            C::BadChannelHeader,
            format!("epoch {} in the channel header; it must be 0", chdr.epoch),
        );
    }
    let htype = HeaderType::try_from(chdr.r#type).ok();
    match htype {
        Some(HeaderType::EndorserTransaction) | Some(HeaderType::Config) => {}
        _ => {
            return invalid(
                &tx_id,
                C::UnknownTxType,
                format!("header type {} is not accepted in a block", chdr.r#type),
            )
        }
    }
    if shdr.nonce.is_empty() || shdr.creator.is_empty() {
        return invalid(
            &tx_id,
            C::BadCommonHeader,
            "the signature header lacks a nonce or a creator",
        );
    }
    // The creator and its signature over the payload bytes as received.
    let creator = match ctx.validate_identity(&shdr.creator) {
        Ok(id) => id,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadCreatorSignature,
                format!("the creator is not accepted: {e}"),
            )
        }
    };
    if let Err(e) = ctx.verify(&creator, &env.payload, &env.signature) {
        return invalid(
            &tx_id,
            C::BadCreatorSignature,
            format!("the envelope signature does not verify: {e}"),
        );
    }
    if htype == Some(HeaderType::Config) {
        return match ConfigEnvelope::decode(payload.data.clone()) {
            Ok(ce) if ce.config.is_some() => Checked::Config { tx_id },
            Ok(_) => invalid(
                &tx_id,
                C::InvalidConfigTransaction,
                "the config envelope has no config",
            ),
            Err(e) => invalid(
                &tx_id,
                C::InvalidConfigTransaction,
                format!("the config envelope does not decode: {e}"),
            ),
        };
    }
    let expected = weft_crypto::hex(&weft_crypto::sha256(
        &[shdr.nonce.as_ref(), shdr.creator.as_ref()].concat(),
    ));
    if tx_id != expected {
        return invalid(
            &tx_id,
            C::BadProposalTxid,
            format!("tx id {tx_id:?} is not hex(sha256(nonce || creator)) = {expected}"),
        );
    }
    let ext = match ChaincodeHeaderExtension::decode(chdr.extension.clone()) {
        Ok(e) => e,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadHeaderExtension,
                format!("the chaincode header extension does not decode: {e}"),
            )
        }
    };
    let chaincode = ext.chaincode_id.map(|c| c.name).unwrap_or_default();
    if chaincode.is_empty() {
        return invalid(
            &tx_id,
            C::BadHeaderExtension,
            "the header names no chaincode",
        );
    }
    check_endorser_tx(
        ctx,
        tx_id,
        chaincode,
        &payload.data,
        &chdr,
        &header.channel_header,
    )
}

fn check_endorser_tx(
    ctx: &dyn TxContext,
    tx_id: String,
    chaincode: String,
    data: &Bytes,
    chdr: &ChannelHeader,
    chdr_bytes: &Bytes,
) -> Checked {
    use TxValidationCode as C;
    let tx = match Transaction::decode(data.clone()) {
        Ok(t) => t,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadPayload,
                format!("the transaction does not decode: {e}"),
            )
        }
    };
    let action = match tx.actions.as_slice() {
        [a] => a,
        other => {
            return invalid(
                &tx_id,
                C::InvalidEndorserTransaction,
                format!(
                    "the transaction has {} actions; exactly one is supported",
                    other.len()
                ),
            )
        }
    };
    let cap = match ChaincodeActionPayload::decode(action.payload.clone()) {
        Ok(p) => p,
        Err(e) => {
            return invalid(
                &tx_id,
                C::InvalidEndorserTransaction,
                format!("the chaincode action payload does not decode: {e}"),
            )
        }
    };
    let Some(endorsed) = cap.action else {
        return invalid(
            &tx_id,
            C::InvalidEndorserTransaction,
            "the transaction has no endorsed action",
        );
    };
    // The action's signature header is the proposal's, as the endorsers saw it.
    match SignatureHeader::decode(action.header.clone()) {
        Ok(h) if !h.nonce.is_empty() && !h.creator.is_empty() => {}
        Ok(_) => {
            return invalid(
                &tx_id,
                C::InvalidEndorserTransaction,
                "the action's signature header lacks a nonce or a creator",
            )
        }
        Err(e) => {
            return invalid(
                &tx_id,
                C::InvalidEndorserTransaction,
                format!("the action's signature header does not decode: {e}"),
            )
        }
    }
    let prp = match ProposalResponsePayload::decode(endorsed.proposal_response_payload.clone()) {
        Ok(p) => p,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadResponsePayload,
                format!("the proposal response payload does not decode: {e}"),
            )
        }
    };
    // What was endorsed must be this transaction's proposal: the endorsers signed a hash of
    // its channel header (with the tx id), its signature header (creator and nonce) and its
    // input. Without this check, endorsements copied from any committed transaction could be
    // replayed under a new header and tx id.
    let proposal_hash = {
        let mut h = weft_crypto::Sha256::new();
        h.update(chdr_bytes);
        h.update(&action.header);
        h.update(&cap.chaincode_proposal_payload);
        h.finish()
    };
    if prp.proposal_hash.as_ref() != proposal_hash.as_slice() {
        return invalid(
            &tx_id,
            C::InvalidEndorserTransaction,
            "the endorsed proposal hash does not match this transaction's header and input: \
             the endorsements were made for another proposal",
        );
    }
    let cca = match ChaincodeAction::decode(prp.extension.clone()) {
        Ok(a) => a,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadResponsePayload,
                format!("the chaincode action does not decode: {e}"),
            )
        }
    };
    // The endorsed action names the chaincode it ran, as Fabric's committer requires.
    let Some(action_id) = &cca.chaincode_id else {
        return invalid(
            &tx_id,
            C::InvalidOtherReason,
            "the endorsed chaincode action does not name its chaincode",
        );
    };
    if action_id.name != chaincode {
        return invalid(
            &tx_id,
            C::InvalidChaincode,
            format!(
                "the endorsed action is for chaincode {:?} but the header names {chaincode:?}",
                action_id.name
            ),
        );
    }
    if action_id.version.is_empty() {
        return invalid(
            &tx_id,
            C::InvalidChaincode,
            format!("the endorsed action for chaincode {chaincode:?} has no chaincode version"),
        );
    }
    // A chaincode event is the invoked chaincode's own: listeners of another chaincode must
    // never receive it.
    let event = if cca.events.is_empty() {
        None
    } else {
        match ChaincodeEvent::decode(cca.events.clone()) {
            Ok(e) if e.chaincode_id == chaincode => Some(e),
            Ok(e) => {
                return invalid(
                    &tx_id,
                    C::InvalidOtherReason,
                    format!(
                        "the chaincode event names chaincode {:?}, but the transaction invoked \
                         {chaincode:?}",
                        e.chaincode_id
                    ),
                )
            }
            Err(e) => {
                return invalid(
                    &tx_id,
                    C::InvalidOtherReason,
                    format!("the chaincode event does not decode: {e}"),
                )
            }
        }
    };
    let rwset = match TxReadWriteSet::decode(cca.results.clone()) {
        Ok(r) => r,
        Err(e) => {
            return invalid(
                &tx_id,
                C::BadRwset,
                format!("the read/write set does not decode: {e}"),
            )
        }
    };
    let mut namespaces: Vec<(String, KvrwSet)> = Vec::with_capacity(rwset.ns_rwset.len());
    for ns in &rwset.ns_rwset {
        if ns.namespace.is_empty() {
            return invalid(
                &tx_id,
                C::BadRwset,
                "the read/write set has an unnamed namespace",
            );
        }
        if namespaces.iter().any(|(name, _)| *name == ns.namespace) {
            return invalid(
                &tx_id,
                C::IllegalWriteset,
                format!(
                    "namespace {:?} appears twice in the read/write set",
                    ns.namespace
                ),
            );
        }
        // weft has no private data collections: endorsers refuse private data calls, so a
        // hashed private read or write can only come from a forged or foreign endorsement,
        // and no state here could check or apply it.
        if let Some(c) = ns.collection_hashed_rwset.first() {
            return invalid(
                &tx_id,
                C::InvalidOtherReason,
                format!(
                    "namespace {:?} carries private data of collection {:?}; this peer has no \
                     private data collections",
                    ns.namespace, c.collection_name
                ),
            );
        }
        match KvrwSet::decode(ns.rwset.clone()) {
            Ok(kv) => namespaces.push((ns.namespace.clone(), kv)),
            Err(e) => {
                return invalid(
                    &tx_id,
                    C::BadRwset,
                    format!(
                        "namespace {:?} of the read/write set does not decode: {e}",
                        ns.namespace
                    ),
                )
            }
        }
    }
    // System namespaces are written only by their own chaincode.
    for (ns, kv) in &namespaces {
        let writes = !kv.writes.is_empty() || !kv.metadata_writes.is_empty();
        if writes && ns.starts_with('_') && *ns != chaincode {
            return invalid(
                &tx_id,
                C::IllegalWriteset,
                format!("chaincode {chaincode:?} writes to the system namespace {ns:?}"),
            );
        }
    }
    // Endorsements: each over prp bytes || endorser, distinct valid endorsers only.
    let mut endorsers: Vec<ValidatedIdentity> = Vec::with_capacity(endorsed.endorsements.len());
    let mut rejected = Vec::new();
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let prp_bytes = &endorsed.proposal_response_payload;
    for (i, e) in endorsed.endorsements.iter().enumerate() {
        let id = match ctx.validate_identity(&e.endorser) {
            Ok(id) => id,
            Err(err) => {
                rejected.push(format!("endorsement {i}: {err}"));
                continue;
            }
        };
        if !seen.insert((id.msp_id.clone(), id.fingerprint.clone())) {
            rejected.push(format!(
                "endorsement {i}: a second endorsement by {}",
                id.subject
            ));
            continue;
        }
        let mut msg = Vec::with_capacity(prp_bytes.len() + e.endorser.len());
        msg.extend_from_slice(prp_bytes);
        msg.extend_from_slice(&e.endorser);
        if let Err(err) = ctx.verify(&id, &msg, &e.signature) {
            rejected.push(format!(
                "endorsement {i} by {} {:?}: the signature does not verify: {err}",
                id.msp_id, id.subject
            ));
            continue;
        }
        endorsers.push(id);
    }
    Checked::Endorser(Box::new(EndorserTx {
        tx_id,
        chaincode,
        rwset,
        namespaces,
        endorsers,
        rejected,
        event,
        timestamp: chdr.timestamp.map(|t| (t.seconds, t.nanos)),
    }))
}

/// Phase 1 for a whole block, on up to `workers` threads (contiguous chunks, results in block
/// order).
pub fn check_block(ctx: &dyn TxContext, envelopes: &[Bytes], workers: usize) -> Vec<Checked> {
    let workers = workers.clamp(1, 16).min(envelopes.len().max(1));
    if workers <= 1 || envelopes.len() < 8 {
        return envelopes.iter().map(|e| check_envelope(ctx, e)).collect();
    }
    let chunk = envelopes.len().div_ceil(workers);
    std::thread::scope(|s| {
        let handles: Vec<_> = envelopes
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|e| check_envelope(ctx, e))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(envelopes.len());
        for (h, part) in handles.into_iter().zip(envelopes.chunks(chunk)) {
            match h.join() {
                Ok(v) => out.extend(v),
                // A panic in a worker must not lose the block: check that chunk here.
                Err(_) => out.extend(part.iter().map(|e| check_envelope(ctx, e))),
            }
        }
        out
    })
}

/// The result of one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TxResult {
    pub tx_id: String,
    pub code: TxValidationCode,
    /// Why it is invalid (empty when valid).
    pub reason: String,
    pub chaincode_event: Option<ChaincodeEvent>,
    /// Whether it is a valid transaction that wrote `_lifecycle` (chaincode definitions
    /// changed).
    pub writes_lifecycle: bool,
}

/// A validated block: codes in block order and the state updates of the valid transactions.
#[derive(Debug, Clone)]
pub struct ValidatedBlock {
    pub number: u64,
    pub results: Vec<TxResult>,
    pub updates: UpdateBatch,
}

impl ValidatedBlock {
    /// The TRANSACTIONS_FILTER bytes.
    pub fn codes(&self) -> Vec<u8> {
        self.results.iter().map(|r| r.code as i32 as u8).collect()
    }
}

/// Evaluate one endorsement policy over endorsers.
pub fn evaluate_endorsement_policy(
    ctx: &dyn TxContext,
    policy: &Option<EndorsementPolicy>,
    endorsers: &[ValidatedIdentity],
) -> Result<(), String> {
    match policy {
        Some(EndorsementPolicy::Signature(p)) => p.evaluate(endorsers).map_err(|e| e.to_string()),
        Some(EndorsementPolicy::ChannelPolicy(path)) => {
            ctx.evaluate_channel_policy(path, endorsers)
        }
        None => ctx.evaluate_channel_policy(DEFAULT_ENDORSEMENT_POLICY, endorsers),
    }
}

/// The endorsements a `_lifecycle` transaction needs: one org's approval satisfies that
/// org's `Endorsement` policy (a member of the org without one); anything else (a commit) satisfies the channel's
/// `/Channel/Application/LifecycleEndorsement` policy.
fn lifecycle_policy(ctx: &dyn TxContext, tx: &EndorserTx) -> Result<(), String> {
    use crate::lifecycle::{write_requirement, WriteRequirement, LIFECYCLE};
    let keys = tx
        .namespaces
        .iter()
        .filter(|(ns, _)| ns == LIFECYCLE)
        .flat_map(|(_, kv)| {
            kv.writes
                .iter()
                .map(|w| w.key.as_str())
                .chain(kv.metadata_writes.iter().map(|m| m.key.as_str()))
        });
    match write_requirement(keys) {
        // As Fabric's lifecycle validation: the org's own Endorsement policy, or any member
        // of the org when the config gives it none.
        WriteRequirement::Org(msp) => match ctx.org_endorsement_policy(&msp) {
            OrgEndorsement::Policy(path) => ctx
                .evaluate_channel_policy(&path, &tx.endorsers)
                .map_err(|e| {
                    format!(
                        "the approval of {msp} must satisfy {path}: {e}; endorsed by: {}",
                        endorser_list(tx)
                    )
                }),
            OrgEndorsement::AnyMember if tx.endorsers.iter().any(|e| e.msp_id == msp) => Ok(()),
            OrgEndorsement::AnyMember => Err(format!(
                "the approval of {msp} must be endorsed by a member of {msp}; endorsed by: {}",
                endorser_list(tx)
            )),
            OrgEndorsement::NotAnApplicationOrg => Err(format!(
                "{msp} is not an application org of the channel: it has no approvals to write"
            )),
        },
        WriteRequirement::LifecycleEndorsement => ctx
            .evaluate_channel_policy(LIFECYCLE_ENDORSEMENT_POLICY, &tx.endorsers)
            .map_err(|e| {
                format!(
                    "the {LIFECYCLE_ENDORSEMENT_POLICY} policy is not satisfied: {e}; endorsed \
                     by: {}",
                    endorser_list(tx)
                )
            }),
    }
}

/// The channel policy `_lifecycle` commits must satisfy.
pub const LIFECYCLE_ENDORSEMENT_POLICY: &str = "/Channel/Application/LifecycleEndorsement";

fn endorser_list(tx: &EndorserTx) -> String {
    if tx.endorsers.is_empty() {
        return "nobody".to_owned();
    }
    tx.endorsers
        .iter()
        .map(|e| format!("{} ({})", e.msp_id, e.role))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Phase 2 (see the module docs).
pub struct BlockChecker<'a> {
    ctx: &'a dyn TxContext,
    view: &'a ReadView,
    mvcc: BlockValidator<'a>,
    number: u64,
    seen: HashSet<String>,
    /// Keys whose key-level policy an earlier valid transaction of the block set or removed
    /// (a metadata write), and that transaction's number.
    params_changed: HashMap<(String, String), u64>,
    results: Vec<TxResult>,
}

impl std::fmt::Debug for BlockChecker<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockChecker")
            .field("number", &self.number)
            .field("results", &self.results.len())
            .finish()
    }
}

impl<'a> BlockChecker<'a> {
    /// Check block `number` over `view`, the state before the block.
    pub fn new(ctx: &'a dyn TxContext, view: &'a ReadView, number: u64) -> Self {
        BlockChecker {
            ctx,
            view,
            mvcc: BlockValidator::new(view, number),
            number,
            seen: HashSet::new(),
            params_changed: HashMap::new(),
            results: Vec::new(),
        }
    }

    /// The key-level policy in force for the block: the committed one. (A policy changed
    /// earlier in the block makes writing the key invalid instead, see
    /// [`BlockChecker::policies`]; a delete earlier in the block does not lift it.)
    fn param(&self, ns: &str, key: &str) -> Result<Option<Bytes>, StateError> {
        let Some(v) = self.view.get(ns, key)? else {
            return Ok(None);
        };
        if v.metadata.is_empty() {
            return Ok(None);
        }
        let md = decode_metadata(&v.metadata).map_err(StateError::InvalidUpdate)?;
        Ok(md.get(VALIDATION_PARAMETER).cloned())
    }

    /// The endorsement policy check of a transaction (Fabric's key-level validation): each
    /// written key with a `VALIDATION_PARAMETER` must satisfy that policy; the chaincode
    /// policy of a namespace must hold when it writes a key without one, and the invoked
    /// chaincode's when it writes nothing.
    fn policies(&self, tx: &EndorserTx) -> Result<Result<(), String>, StateError> {
        // Namespace -> whether its chaincode's own policy must hold. The invoked chaincode's
        // does when it writes nothing or writes a key without a key-level policy.
        let mut needs_cc: BTreeMap<&str, bool> = BTreeMap::new();
        needs_cc.insert(&tx.chaincode, true);
        for (ns, kv) in &tx.namespaces {
            if *ns == tx.chaincode && (!kv.writes.is_empty() || !kv.metadata_writes.is_empty()) {
                needs_cc.insert(ns, false);
            }
        }
        for (ns, kv) in &tx.namespaces {
            let keys: Vec<&str> = kv
                .writes
                .iter()
                .map(|w| w.key.as_str())
                .chain(kv.metadata_writes.iter().map(|m| m.key.as_str()))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let mut uncovered = false;
            for key in keys {
                // As Fabric's key-level validation: once a valid transaction of the block
                // changed a key's policy, later ones in the block cannot write the key, since
                // they were endorsed against the policy it replaced.
                if let Some(n) = self.params_changed.get(&(ns.clone(), key.to_owned())) {
                    return Ok(Err(format!(
                        "the key-level endorsement policy of {ns}/{key:?} was changed by \
                         transaction {n} of block {}; a later transaction of the same block \
                         cannot write the key",
                        self.number
                    )));
                }
                match self.param(ns, key)? {
                    Some(param) => {
                        let r = weft_msp::policy::CompiledPolicy::from_bytes(&param)
                            .map_err(|e| e.to_string())
                            .and_then(|p| p.evaluate(&tx.endorsers).map_err(|e| e.to_string()));
                        if let Err(e) = r {
                            return Ok(Err(format!(
                                "the key-level endorsement policy of {ns}/{key:?} is not satisfied: {e}"
                            )));
                        }
                    }
                    None => uncovered = true,
                }
            }
            let entry = needs_cc.entry(ns.as_str()).or_insert(false);
            *entry |= uncovered;
        }
        for (ns, needed) in needs_cc {
            if !needed {
                continue;
            }
            if ns == crate::lifecycle::LIFECYCLE {
                if let Err(e) = lifecycle_policy(self.ctx, tx) {
                    return Ok(Err(e));
                }
                continue;
            }
            let Some(policy) = self.ctx.chaincode_policy(ns) else {
                return Ok(Err(format!(
                    "chaincode {ns:?} is not defined on channel {:?}",
                    self.ctx.channel_id()
                )));
            };
            if let Err(e) = evaluate_endorsement_policy(self.ctx, &policy, &tx.endorsers) {
                let mut msg =
                    format!("the endorsement policy of chaincode {ns:?} is not satisfied: {e}");
                if !tx.rejected.is_empty() {
                    msg.push_str(&format!(
                        "; endorsements not counted: {}",
                        tx.rejected.join("; ")
                    ));
                }
                return Ok(Err(msg));
            }
        }
        Ok(Ok(()))
    }

    /// Validate the next transaction of the block; `on_ledger` says whether a tx id is
    /// already on the ledger.
    pub fn push(
        &mut self,
        checked: Checked,
        on_ledger: &dyn Fn(&str) -> Result<bool, String>,
    ) -> Result<(), StateError> {
        use TxValidationCode as C;
        let tx_num = self.results.len() as u64;
        let tx_id = checked.tx_id().to_owned();
        // Duplicate tx ids: earlier in this block, or on the ledger.
        // Only transactions whose tx id and creator signature checked out claim their tx id in
        // the block: an invalid copy cannot shadow the real transaction.
        let claims = !tx_id.is_empty() && !matches!(checked, Checked::Invalid { .. });
        let duplicate = if !claims {
            None
        } else if !self.seen.insert(tx_id.clone()) {
            Some(format!(
                "tx id {tx_id} appears earlier in block {}",
                self.number
            ))
        } else {
            match on_ledger(&tx_id) {
                Ok(true) => Some(format!("tx id {tx_id} is already on the ledger")),
                Ok(false) => None,
                Err(e) => {
                    return Err(StateError::InvalidUpdate(format!(
                        "tx id lookup failed: {e}"
                    )))
                }
            }
        };
        let lifecycle_writes = matches!(&checked, Checked::Endorser(tx) if tx.namespaces.iter().any(
            |(ns, kv)| ns == crate::lifecycle::LIFECYCLE && !kv.writes.is_empty()
        ));
        let (code, reason, event) = match checked {
            Checked::Invalid { code, reason, .. } => (code, reason, None),
            _ if duplicate.is_some() => (C::DuplicateTxid, duplicate.unwrap_or_default(), None),
            Checked::Config { .. } => (C::Valid, String::new(), None),
            Checked::Endorser(tx) => {
                let event = tx.event.clone();
                match self.policies(&tx)? {
                    Err(reason) => (C::EndorsementPolicyFailure, reason, event),
                    Ok(()) => match self.mvcc.check(&tx.rwset)? {
                        Some(c @ (Conflict::Read { .. } | Conflict::ReadWrittenInBlock { .. })) => {
                            (C::MvccReadConflict, c.to_string(), event)
                        }
                        Some(c @ Conflict::Phantom { .. }) => {
                            (C::PhantomReadConflict, c.to_string(), event)
                        }
                        Some(c @ Conflict::Malformed { .. }) => (C::BadRwset, c.to_string(), event),
                        None => {
                            self.mvcc
                                .apply(tx_num, &tx.rwset, &tx.tx_id, tx.timestamp)?;
                            self.note_params(&tx, tx_num);
                            (C::Valid, String::new(), event)
                        }
                    },
                }
            }
        };
        if code != C::Valid {
            tracing::debug!(block = self.number, tx = tx_num, tx_id = %tx_id, code = code.as_str_name(), "{reason}");
        }
        self.results.push(TxResult {
            tx_id,
            writes_lifecycle: lifecycle_writes && code == C::Valid,
            code,
            reason,
            chaincode_event: event,
        });
        Ok(())
    }

    /// Remember the keys whose key-level policy valid transaction `tx_num` set or removed.
    fn note_params(&mut self, tx: &EndorserTx, tx_num: u64) {
        for (ns, kv) in &tx.namespaces {
            for m in &kv.metadata_writes {
                self.params_changed
                    .entry((ns.clone(), m.key.clone()))
                    .or_insert(tx_num);
            }
        }
    }

    /// The block's results and the updates of its valid transactions.
    pub fn finish(self) -> ValidatedBlock {
        ValidatedBlock {
            number: self.number,
            results: self.results,
            updates: self.mvcc.finish(),
        }
    }
}

/// Phase 2 over a whole block.
pub fn finish_block(
    ctx: &dyn TxContext,
    view: &ReadView,
    number: u64,
    checked: Vec<Checked>,
    on_ledger: &dyn Fn(&str) -> Result<bool, String>,
) -> Result<ValidatedBlock, StateError> {
    let mut checker = BlockChecker::new(ctx, view, number);
    for c in checked {
        checker.push(c, on_ledger)?;
    }
    Ok(checker.finish())
}
