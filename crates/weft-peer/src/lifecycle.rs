//! `_lifecycle`: chaincode definitions that the channel's organizations approve and commit
//! as transactions (Fabric 2.x's chaincode lifecycle).
//!
//! The functions and their protobuf arguments and results are Fabric's
//! (`weft_proto::lifecycle`). They run inside the endorser like any chaincode: reads and
//! writes go through a transaction simulator (here the [`LifecycleState`] trait, implemented
//! for [`TxSimulator`]), so the definitions reach the ledger only through ordering,
//! validation and commit, and MVCC protects them like any other key.
//!
//! World state, in the `_lifecycle` namespace:
//! - a committed definition, as Fabric lays it out: `namespaces/metadata/<name>` (a
//!   `StateMetadata` naming the fields), `namespaces/fields/<name>/Sequence` (`StateData`
//!   Int64), `.../EndorsementInfo` (`ChaincodeEndorsementInfo`), `.../ValidationInfo`
//!   (`ChaincodeValidationInfo`: the endorsement policy) and `.../Collections`;
//! - an organization's approval: `approvals/<name>#<sequence>/<MSP ID>`, holding a
//!   `QueryApprovedChaincodeDefinitionResult` (the definition and the org's package id).
//!   Fabric keeps approvals in each org's implicit private data collection; weft has no
//!   private data yet, so approvals are public state. Only the org itself may write its
//!   approval: the validator requires an endorsement from a peer of that org for a
//!   transaction that writes one ([`write_requirement`]).
//!
//! Checks, each with a message that says what to do: names and versions Fabric accepts;
//! sequences (a new definition is the committed sequence + 1; re-approving the committed
//! sequence must match it); a peer endorses a commit only of a definition its own org
//! approved, so the commit transaction's `LifecycleEndorsement` policy (checked at
//! validation) means that enough orgs approved, as in Fabric; collections are refused
//! (private data is not supported yet).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use prost::Message;
use weft_proto::lifecycle::{
    chaincode_source, check_commit_readiness_result, query_chaincode_definitions_result,
    ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeEndorsementInfo, ChaincodeSource,
    ChaincodeValidationInfo, CheckCommitReadinessArgs, CheckCommitReadinessResult,
    CommitChaincodeDefinitionArgs, QueryApprovedChaincodeDefinitionArgs,
    QueryApprovedChaincodeDefinitionResult, QueryChaincodeDefinitionArgs,
    QueryChaincodeDefinitionResult, QueryChaincodeDefinitionsResult, StateData, StateMetadata,
};
use weft_proto::queryresult::Kv;

use crate::simulator::TxSimulator;

/// The system chaincode's name and its world-state namespace.
pub const LIFECYCLE: &str = "_lifecycle";

const METADATA_PREFIX: &str = "namespaces/metadata/";
const FIELDS_PREFIX: &str = "namespaces/fields/";
const APPROVALS_PREFIX: &str = "approvals/";
const DEFINITION_TYPE: &str = "ChaincodeDefinition";
const FIELDS: [&str; 4] = [
    "EndorsementInfo",
    "ValidationInfo",
    "Collections",
    "Sequence",
];

/// A failed `_lifecycle` call: the message goes back to the client as the response message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LifecycleError(pub String);

fn err(msg: impl Into<String>) -> LifecycleError {
    LifecycleError(msg.into())
}

/// Reads and writes of the `_lifecycle` namespace during one simulation.
pub trait LifecycleState {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>, LifecycleError>;
    fn put(&mut self, key: &str, value: Bytes) -> Result<(), LifecycleError>;
    /// Keys in `[start, end)`, in key order.
    fn range(&mut self, start: &str, end: &str) -> Result<Vec<(String, Bytes)>, LifecycleError>;
}

impl LifecycleState for TxSimulator {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>, LifecycleError> {
        let v = self
            .get_state(LIFECYCLE, key)
            .map_err(|e| err(format!("reading {key}: {e}")))?;
        Ok(if v.is_empty() { None } else { Some(v) })
    }

    fn put(&mut self, key: &str, value: Bytes) -> Result<(), LifecycleError> {
        self.put_state(LIFECYCLE, key, value)
            .map_err(|e| err(format!("writing {key}: {e}")))
    }

    fn range(&mut self, start: &str, end: &str) -> Result<Vec<(String, Bytes)>, LifecycleError> {
        let ctx = |e: crate::simulator::SimError| err(format!("range {start}..{end}: {e}"));
        let mut out = Vec::new();
        let mut resp = self.range_query(LIFECYCLE, start, end, &[]).map_err(ctx)?;
        // Bounded: a lifecycle namespace holds a few keys per chaincode.
        for _ in 0..10_000 {
            for r in &resp.results {
                let kv = Kv::decode(r.result_bytes.clone())
                    .map_err(|e| err(format!("range result does not decode: {e}")))?;
                out.push((kv.key, kv.value));
            }
            if !resp.has_more {
                return Ok(out);
            }
            resp = self.query_next(&resp.id).map_err(ctx)?;
        }
        Err(err("too many lifecycle keys in one range"))
    }
}

/// What the endorser knows about the call beyond its arguments.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The MSP ID of this peer's organization (whose approval `approveformyorg` records).
    pub local_msp: String,
    /// The proposal creator's MSP ID.
    pub creator_msp: String,
    /// Whether the creator is an admin of its organization.
    pub creator_is_admin: bool,
    /// The MSP IDs of the channel's application organizations.
    pub orgs: Vec<String>,
}

/// A definition's agreed parameters (everything but the package, which is each org's own).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DefinitionParams {
    pub sequence: i64,
    pub version: String,
    pub endorsement_plugin: String,
    pub validation_plugin: String,
    pub validation_parameter: Bytes,
    pub collections: Bytes,
    pub init_required: bool,
}

impl DefinitionParams {
    /// The fields where `self` (the proposed definition) differs from `other`, by Fabric's
    /// mismatch names.
    fn mismatches(&self, other: &DefinitionParams) -> Vec<String> {
        let mut out = Vec::new();
        if self.sequence != other.sequence {
            out.push("Sequence".to_owned());
        }
        if self.version != other.version
            || self.endorsement_plugin != other.endorsement_plugin
            || self.init_required != other.init_required
        {
            out.push("EndorsementInfo".to_owned());
        }
        if self.validation_plugin != other.validation_plugin
            || self.validation_parameter != other.validation_parameter
        {
            out.push("ValidationInfo".to_owned());
        }
        if self.collections != other.collections {
            out.push("Collections".to_owned());
        }
        out
    }
}

/// A committed chaincode definition as the peer uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub name: String,
    pub params: DefinitionParams,
}

impl Committed {
    /// The endorsement policy (`ValidationInfo.validation_parameter`, an `ApplicationPolicy`).
    pub fn endorsement_policy(&self) -> &Bytes {
        &self.params.validation_parameter
    }
}

/// Which endorsements a transaction that writes `_lifecycle` keys needs: writing only one
/// org's approval needs that org's endorsement; anything else (a commit) needs the channel's
/// `LifecycleEndorsement` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteRequirement {
    /// An endorsement by a peer of this MSP.
    Org(String),
    /// `/Channel/Application/LifecycleEndorsement`.
    LifecycleEndorsement,
}

/// See [`WriteRequirement`].
pub fn write_requirement<'a>(keys: impl IntoIterator<Item = &'a str>) -> WriteRequirement {
    let mut orgs = BTreeSet::new();
    for key in keys {
        match approval_owner(key) {
            Some(msp) => {
                orgs.insert(msp.to_owned());
            }
            None => return WriteRequirement::LifecycleEndorsement,
        }
    }
    match (orgs.len(), orgs.into_iter().next()) {
        (1, Some(msp)) => WriteRequirement::Org(msp),
        _ => WriteRequirement::LifecycleEndorsement,
    }
}

/// The MSP ID an approval key belongs to (`approvals/<name>#<seq>/<msp>`).
pub fn approval_owner(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(APPROVALS_PREFIX)?;
    let (def, msp) = rest.rsplit_once('/')?;
    if def.contains('#') && !msp.is_empty() {
        Some(msp)
    } else {
        None
    }
}

fn approval_key(name: &str, sequence: i64, msp: &str) -> String {
    format!("{APPROVALS_PREFIX}{name}#{sequence}/{msp}")
}

fn field_key(name: &str, field: &str) -> String {
    format!("{FIELDS_PREFIX}{name}/{field}")
}

fn metadata_key(name: &str) -> String {
    format!("{METADATA_PREFIX}{name}")
}

/// Names Fabric's `_lifecycle` refuses for chaincodes: its system chaincodes, past and present.
pub const SYSTEM_CHAINCODES: [&str; 5] = ["cscc", "escc", "lscc", "qscc", "vscc"];

/// Fabric's rule for chaincode names: `^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$`, and not a system
/// chaincode's name.
pub fn check_name(name: &str) -> Result<(), LifecycleError> {
    let ok = !name.is_empty()
        && name
            .split(['-', '_'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok && SYSTEM_CHAINCODES.contains(&name) {
        // A definition under a system chaincode's name would answer calls meant for it
        // (qscc's blocks and transactions, for one), as Fabric's _lifecycle refuses.
        Err(err(format!(
            "chaincode name {name:?} is the name of a system chaincode"
        )))
    } else if ok && !name.starts_with('_') {
        Ok(())
    } else {
        Err(err(format!(
            "invalid chaincode name {name:?}: use letters and digits, optionally joined by \
             single '-' or '_' (Fabric's rule ^[a-zA-Z0-9]+([-_][a-zA-Z0-9]+)*$)"
        )))
    }
}

/// Fabric's rule for versions: `^[A-Za-z0-9_.+-]+$`.
pub fn check_version(version: &str) -> Result<(), LifecycleError> {
    if !version.is_empty()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'))
    {
        Ok(())
    } else {
        Err(err(format!(
            "invalid chaincode version {version:?}: use letters, digits and _ . + - (not empty)"
        )))
    }
}

fn state_int(bytes: &Bytes, what: &str) -> Result<i64, LifecycleError> {
    match StateData::decode(bytes.clone()) {
        Ok(StateData {
            r#type: Some(weft_proto::lifecycle::state_data::Type::Int64(n)),
        }) => Ok(n),
        _ => Err(err(format!(
            "{what} in _lifecycle is not an Int64 StateData"
        ))),
    }
}

fn state_bytes(bytes: &Bytes, what: &str) -> Result<Bytes, LifecycleError> {
    match StateData::decode(bytes.clone()) {
        Ok(StateData {
            r#type: Some(weft_proto::lifecycle::state_data::Type::Bytes(b)),
        }) => Ok(b),
        Ok(StateData { r#type: None }) => Ok(Bytes::new()),
        _ => Err(err(format!(
            "{what} in _lifecycle is not a Bytes StateData"
        ))),
    }
}

fn data_int(n: i64) -> Bytes {
    StateData {
        r#type: Some(weft_proto::lifecycle::state_data::Type::Int64(n)),
    }
    .encode_to_vec()
    .into()
}

fn data_bytes(b: Bytes) -> Bytes {
    StateData {
        r#type: Some(weft_proto::lifecycle::state_data::Type::Bytes(b)),
    }
    .encode_to_vec()
    .into()
}

/// The committed sequence of `name` (0: never committed).
fn committed_sequence(state: &mut dyn LifecycleState, name: &str) -> Result<i64, LifecycleError> {
    match state.get(&field_key(name, "Sequence"))? {
        Some(b) => state_int(&b, &format!("the sequence of {name}")),
        None => Ok(0),
    }
}

/// The committed definition of `name`, if any.
pub fn committed(
    state: &mut dyn LifecycleState,
    name: &str,
) -> Result<Option<Committed>, LifecycleError> {
    if state.get(&metadata_key(name))?.is_none() {
        return Ok(None);
    }
    let sequence = committed_sequence(state, name)?;
    let what = |f: &str| format!("the {f} of chaincode {name}");
    let ei = match state.get(&field_key(name, "EndorsementInfo"))? {
        Some(b) => ChaincodeEndorsementInfo::decode(state_bytes(&b, &what("EndorsementInfo"))?)
            .map_err(|e| err(format!("{}: {e}", what("EndorsementInfo"))))?,
        None => return Err(err(format!("{} is missing", what("EndorsementInfo")))),
    };
    let vi = match state.get(&field_key(name, "ValidationInfo"))? {
        Some(b) => ChaincodeValidationInfo::decode(state_bytes(&b, &what("ValidationInfo"))?)
            .map_err(|e| err(format!("{}: {e}", what("ValidationInfo"))))?,
        None => return Err(err(format!("{} is missing", what("ValidationInfo")))),
    };
    let collections = match state.get(&field_key(name, "Collections"))? {
        Some(b) => state_bytes(&b, &what("Collections"))?,
        None => Bytes::new(),
    };
    Ok(Some(Committed {
        name: name.to_owned(),
        params: DefinitionParams {
            sequence,
            version: ei.version,
            endorsement_plugin: ei.endorsement_plugin,
            validation_plugin: vi.validation_plugin,
            validation_parameter: vi.validation_parameter,
            collections,
            init_required: ei.init_required,
        },
    }))
}

/// Every committed definition, by name.
pub fn all_committed(
    state: &mut dyn LifecycleState,
) -> Result<BTreeMap<String, Committed>, LifecycleError> {
    // '0' is the byte after '/': the range covers every key under the prefix.
    let keys = state.range(METADATA_PREFIX, "namespaces/metadata0")?;
    let mut out = BTreeMap::new();
    for (key, _) in keys {
        let Some(name) = key.strip_prefix(METADATA_PREFIX) else {
            continue;
        };
        if let Some(c) = committed(state, name)? {
            out.insert(name.to_owned(), c);
        }
    }
    Ok(out)
}

/// An organization's approval of `name` at `sequence`, if it made one.
fn approval(
    state: &mut dyn LifecycleState,
    name: &str,
    sequence: i64,
    msp: &str,
) -> Result<Option<QueryApprovedChaincodeDefinitionResult>, LifecycleError> {
    match state.get(&approval_key(name, sequence, msp))? {
        Some(b) => QueryApprovedChaincodeDefinitionResult::decode(b)
            .map(Some)
            .map_err(|e| {
                err(format!(
                    "the approval of {name}#{sequence} by {msp} does not decode: {e}"
                ))
            }),
        None => Ok(None),
    }
}

fn approved_params(a: &QueryApprovedChaincodeDefinitionResult) -> DefinitionParams {
    DefinitionParams {
        sequence: a.sequence,
        version: a.version.clone(),
        endorsement_plugin: a.endorsement_plugin.clone(),
        validation_plugin: a.validation_plugin.clone(),
        validation_parameter: a.validation_parameter.clone(),
        collections: a.collections.clone(),
        init_required: a.init_required,
    }
}

/// The package this org approved to run `name` at `sequence`, if it named one.
pub fn approved_package(
    state: &mut dyn LifecycleState,
    name: &str,
    sequence: i64,
    msp: &str,
) -> Result<Option<String>, LifecycleError> {
    Ok(
        approval(state, name, sequence, msp)?.and_then(|a| match a.source {
            Some(ChaincodeSource {
                r#type: Some(chaincode_source::Type::LocalPackage(l)),
            }) if !l.package_id.is_empty() => Some(l.package_id),
            _ => None,
        }),
    )
}

fn check_params(name: &str, p: &DefinitionParams) -> Result<(), LifecycleError> {
    check_name(name)?;
    check_version(&p.version)?;
    if p.sequence < 1 {
        return Err(err(format!(
            "invalid sequence {} for chaincode {name}: sequences start at 1",
            p.sequence
        )));
    }
    if !p.collections.is_empty() {
        return Err(err(
            "private data collections are not supported by weft yet: approve the definition \
             without --collections-config",
        ));
    }
    Ok(())
}

/// Each org -> whether it approved; the mismatching fields of orgs whose approval differs.
type Approvals = (BTreeMap<String, bool>, BTreeMap<String, Vec<String>>);

/// Who approved `params` for `name`: each org -> whether its approval matches, and the
/// mismatching fields of those that don't.
fn approvals(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    name: &str,
    params: &DefinitionParams,
) -> Result<Approvals, LifecycleError> {
    let mut approved = BTreeMap::new();
    let mut mismatches = BTreeMap::new();
    for org in &ctx.orgs {
        match approval(state, name, params.sequence, org)? {
            Some(a) => {
                let diff = params.mismatches(&approved_params(&a));
                approved.insert(org.clone(), diff.is_empty());
                if !diff.is_empty() {
                    mismatches.insert(org.clone(), diff);
                }
            }
            None => {
                approved.insert(org.clone(), false);
            }
        }
    }
    Ok((approved, mismatches))
}

/// Approving, and reading an approval, are for the admins of the peer's own organization
/// (Fabric's default ACL for both is the local MSP's Admins).
fn require_local_admin(ctx: &CallContext, what: &str) -> Result<(), LifecycleError> {
    if ctx.creator_msp == ctx.local_msp && ctx.creator_is_admin {
        return Ok(());
    }
    Err(err(format!(
        "{what} by an admin of this peer's organization ({}); the creator is a {} of {}",
        ctx.local_msp,
        if ctx.creator_is_admin {
            "admin"
        } else {
            "non-admin"
        },
        ctx.creator_msp
    )))
}

/// `ApproveChaincodeDefinitionForMyOrg`: record this peer's org's approval.
pub fn approve(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    args: &ApproveChaincodeDefinitionForMyOrgArgs,
) -> Result<(), LifecycleError> {
    require_local_admin(ctx, "approveformyorg must be submitted")?;
    let params = DefinitionParams {
        sequence: args.sequence,
        version: args.version.clone(),
        endorsement_plugin: args.endorsement_plugin.clone(),
        validation_plugin: args.validation_plugin.clone(),
        validation_parameter: args.validation_parameter.clone(),
        collections: args.collections.clone(),
        init_required: args.init_required,
    };
    check_params(&args.name, &params)?;
    let current = committed_sequence(state, &args.name)?;
    if params.sequence == current {
        // Re-approving the committed definition (e.g. to name a new package) must not change it.
        if let Some(c) = committed(state, &args.name)? {
            let diff = params.mismatches(&c.params);
            if !diff.is_empty() {
                return Err(err(format!(
                    "chaincode {} sequence {current} is already committed with a different \
                     definition ({}): approve sequence {} to change it",
                    args.name,
                    diff.join(", "),
                    current + 1
                )));
            }
        }
    } else if params.sequence != current + 1 {
        return Err(err(format!(
            "requested sequence is {}, but new definition of chaincode {} must be sequence {} \
             (the committed sequence is {current})",
            params.sequence,
            args.name,
            current + 1
        )));
    }
    let record = QueryApprovedChaincodeDefinitionResult {
        sequence: params.sequence,
        version: params.version,
        endorsement_plugin: params.endorsement_plugin,
        validation_plugin: params.validation_plugin,
        validation_parameter: params.validation_parameter,
        collections: params.collections,
        init_required: params.init_required,
        source: Some(args.source.clone().unwrap_or(ChaincodeSource {
            r#type: Some(chaincode_source::Type::Unavailable(
                chaincode_source::Unavailable {},
            )),
        })),
    };
    state.put(
        &approval_key(&args.name, args.sequence, &ctx.local_msp),
        record.encode_to_vec().into(),
    )
}

/// `CheckCommitReadiness`: which orgs approved exactly this definition.
pub fn check_commit_readiness(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    args: &CheckCommitReadinessArgs,
) -> Result<CheckCommitReadinessResult, LifecycleError> {
    let params = commit_params(args.sequence, args);
    check_params(&args.name, &params)?;
    let current = committed_sequence(state, &args.name)?;
    if params.sequence != current + 1 {
        return Err(err(format!(
            "requested sequence is {}, but new definition of chaincode {} must be sequence {}",
            params.sequence,
            args.name,
            current + 1
        )));
    }
    let (approvals, mismatches) = approvals(state, ctx, &args.name, &params)?;
    Ok(CheckCommitReadinessResult {
        approvals,
        mismatches: mismatches
            .into_iter()
            .map(|(k, items)| (k, check_commit_readiness_result::Mismatches { items }))
            .collect(),
    })
}

fn commit_params(sequence: i64, a: &impl CommitLike) -> DefinitionParams {
    DefinitionParams {
        sequence,
        version: a.version().to_owned(),
        endorsement_plugin: a.endorsement_plugin().to_owned(),
        validation_plugin: a.validation_plugin().to_owned(),
        validation_parameter: a.validation_parameter().clone(),
        collections: a.collections().clone(),
        init_required: a.init_required(),
    }
}

/// The shared shape of `CheckCommitReadinessArgs` and `CommitChaincodeDefinitionArgs`.
trait CommitLike {
    fn version(&self) -> &str;
    fn endorsement_plugin(&self) -> &str;
    fn validation_plugin(&self) -> &str;
    fn validation_parameter(&self) -> &Bytes;
    fn collections(&self) -> &Bytes;
    fn init_required(&self) -> bool;
}

macro_rules! commit_like {
    ($t:ty) => {
        impl CommitLike for $t {
            fn version(&self) -> &str {
                &self.version
            }
            fn endorsement_plugin(&self) -> &str {
                &self.endorsement_plugin
            }
            fn validation_plugin(&self) -> &str {
                &self.validation_plugin
            }
            fn validation_parameter(&self) -> &Bytes {
                &self.validation_parameter
            }
            fn collections(&self) -> &Bytes {
                &self.collections
            }
            fn init_required(&self) -> bool {
                self.init_required
            }
        }
    };
}
commit_like!(CheckCommitReadinessArgs);
commit_like!(CommitChaincodeDefinitionArgs);

/// `CommitChaincodeDefinition`: define the chaincode on the channel, once enough orgs approved.
pub fn commit(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    args: &CommitChaincodeDefinitionArgs,
) -> Result<(), LifecycleError> {
    let params = commit_params(args.sequence, args);
    check_params(&args.name, &params)?;
    let current = committed_sequence(state, &args.name)?;
    if params.sequence != current + 1 {
        return Err(err(format!(
            "requested sequence is {}, but new definition of chaincode {} must be sequence {} \
             (the committed sequence is {current})",
            params.sequence,
            args.name,
            current + 1
        )));
    }
    // As in Fabric: each endorsing peer commits only a definition its own org approved; the
    // LifecycleEndorsement policy, checked at validation, then needs enough orgs' peers.
    let (approvals, mismatches) = approvals(state, ctx, &args.name, &params)?;
    if approvals.get(&ctx.local_msp) != Some(&true) {
        let why = match mismatches.get(&ctx.local_msp) {
            Some(fields) => format!(
                "its approval differs in {} (run checkcommitreadiness)",
                fields.join(", ")
            ),
            None => "it has not approved it (run approveformyorg)".to_owned(),
        };
        return Err(err(format!(
            "chaincode definition not agreed to by this org ({}): {why}",
            ctx.local_msp
        )));
    }
    let name = &args.name;
    state.put(
        &metadata_key(name),
        StateMetadata {
            datatype: DEFINITION_TYPE.to_owned(),
            fields: FIELDS.iter().map(|s| (*s).to_owned()).collect(),
        }
        .encode_to_vec()
        .into(),
    )?;
    state.put(&field_key(name, "Sequence"), data_int(params.sequence))?;
    state.put(
        &field_key(name, "EndorsementInfo"),
        data_bytes(
            ChaincodeEndorsementInfo {
                version: params.version,
                init_required: params.init_required,
                endorsement_plugin: params.endorsement_plugin,
            }
            .encode_to_vec()
            .into(),
        ),
    )?;
    state.put(
        &field_key(name, "ValidationInfo"),
        data_bytes(
            ChaincodeValidationInfo {
                validation_plugin: params.validation_plugin,
                validation_parameter: params.validation_parameter,
            }
            .encode_to_vec()
            .into(),
        ),
    )?;
    state.put(
        &field_key(name, "Collections"),
        data_bytes(params.collections),
    )?;
    Ok(())
}

/// `QueryChaincodeDefinition`: the committed definition and who approved it.
pub fn query_definition(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    args: &QueryChaincodeDefinitionArgs,
) -> Result<QueryChaincodeDefinitionResult, LifecycleError> {
    let Some(c) = committed(state, &args.name)? else {
        return Err(err(format!(
            "namespace {} is not defined on this channel: commit its definition first",
            args.name
        )));
    };
    let (approvals, _) = approvals(state, ctx, &args.name, &c.params)?;
    let p = c.params;
    Ok(QueryChaincodeDefinitionResult {
        sequence: p.sequence,
        version: p.version,
        endorsement_plugin: p.endorsement_plugin,
        validation_plugin: p.validation_plugin,
        validation_parameter: p.validation_parameter,
        collections: p.collections,
        init_required: p.init_required,
        approvals,
    })
}

/// `QueryChaincodeDefinitions`: every committed definition.
pub fn query_definitions(
    state: &mut dyn LifecycleState,
) -> Result<QueryChaincodeDefinitionsResult, LifecycleError> {
    Ok(QueryChaincodeDefinitionsResult {
        chaincode_definitions: all_committed(state)?
            .into_values()
            .map(
                |c| query_chaincode_definitions_result::ChaincodeDefinition {
                    name: c.name,
                    sequence: c.params.sequence,
                    version: c.params.version,
                    endorsement_plugin: c.params.endorsement_plugin,
                    validation_plugin: c.params.validation_plugin,
                    validation_parameter: c.params.validation_parameter,
                    collections: c.params.collections,
                    init_required: c.params.init_required,
                },
            )
            .collect(),
    })
}

/// `QueryApprovedChaincodeDefinition`: this org's approval (sequence 0: the latest one, i.e.
/// the committed sequence + 1 if approved, else the committed one).
pub fn query_approved(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    args: &QueryApprovedChaincodeDefinitionArgs,
) -> Result<QueryApprovedChaincodeDefinitionResult, LifecycleError> {
    require_local_admin(ctx, "queryapproved must be asked")?;
    check_name(&args.name)?;
    let sequence = if args.sequence > 0 {
        args.sequence
    } else {
        let current = committed_sequence(state, &args.name)?;
        if approval(state, &args.name, current + 1, &ctx.local_msp)?.is_some() {
            current + 1
        } else {
            current
        }
    };
    approval(state, &args.name, sequence, &ctx.local_msp)?.ok_or_else(|| {
        err(format!(
            "{} has not approved chaincode {} at sequence {sequence}",
            ctx.local_msp, args.name
        ))
    })
}

/// Dispatch a `_lifecycle` call by Fabric's function name; answers the encoded result.
/// Returns `Ok(None)` for functions that are not channel-scoped definitions calls
/// (install and installed-package queries, which the endorser answers from the install store).
pub fn invoke(
    state: &mut dyn LifecycleState,
    ctx: &CallContext,
    function: &str,
    arg: &[u8],
) -> Result<Option<Bytes>, LifecycleError> {
    fn decode<M: Message + Default>(function: &str, arg: &[u8]) -> Result<M, LifecycleError> {
        M::decode(arg).map_err(|e| {
            err(format!(
                "failed to decode the argument of _lifecycle {function}: {e}"
            ))
        })
    }
    let out: Bytes = match function {
        "ApproveChaincodeDefinitionForMyOrg" => {
            approve(state, ctx, &decode(function, arg)?)?;
            Bytes::new()
        }
        "CheckCommitReadiness" => check_commit_readiness(state, ctx, &decode(function, arg)?)?
            .encode_to_vec()
            .into(),
        "CommitChaincodeDefinition" => {
            commit(state, ctx, &decode(function, arg)?)?;
            Bytes::new()
        }
        "QueryChaincodeDefinition" => query_definition(state, ctx, &decode(function, arg)?)?
            .encode_to_vec()
            .into(),
        "QueryChaincodeDefinitions" => query_definitions(state)?.encode_to_vec().into(),
        "QueryApprovedChaincodeDefinition" => query_approved(state, ctx, &decode(function, arg)?)?
            .encode_to_vec()
            .into(),
        "InstallChaincode"
        | "QueryInstalledChaincode"
        | "QueryInstalledChaincodes"
        | "GetInstalledChaincodePackage" => return Ok(None),
        other => {
            return Err(err(format!(
                "_lifecycle has no function {other:?} (it has ApproveChaincodeDefinitionForMyOrg, \
                 CheckCommitReadiness, CommitChaincodeDefinition, QueryChaincodeDefinition, \
                 QueryChaincodeDefinitions, QueryApprovedChaincodeDefinition, InstallChaincode, \
                 QueryInstalledChaincode(s), GetInstalledChaincodePackage)"
            )))
        }
    };
    Ok(Some(out))
}

/// Read-only lifecycle state over a committed view (for loading definitions after a commit).
struct ViewState<'a>(&'a weft_ledger::ReadView);

impl LifecycleState for ViewState<'_> {
    fn get(&mut self, key: &str) -> Result<Option<Bytes>, LifecycleError> {
        self.0
            .get(LIFECYCLE, key)
            .map(|v| v.map(|v| v.value))
            .map_err(|e| err(format!("reading {key}: {e}")))
    }

    fn put(&mut self, key: &str, _value: Bytes) -> Result<(), LifecycleError> {
        Err(err(format!(
            "{key}: the committed lifecycle state is read-only"
        )))
    }

    fn range(&mut self, start: &str, end: &str) -> Result<Vec<(String, Bytes)>, LifecycleError> {
        self.0
            .range(LIFECYCLE, start, end, 100_000)
            .map(|v| v.into_iter().map(|(k, v)| (k, v.value)).collect())
            .map_err(|e| err(format!("range {start}..{end}: {e}")))
    }
}

/// The endorsement policy a definition names (`ValidationInfo.validation_parameter`).
pub fn endorsement_policy(
    parameter: &[u8],
) -> Result<Option<crate::channel::EndorsementPolicy>, LifecycleError> {
    use weft_proto::common::application_policy::Type;
    if parameter.is_empty() {
        return Ok(None);
    }
    let policy = weft_proto::common::ApplicationPolicy::decode(parameter)
        .map_err(|e| err(format!("the endorsement policy does not decode: {e}")))?;
    match policy.r#type {
        Some(Type::SignaturePolicy(env)) => {
            let compiled = weft_msp::policy::CompiledPolicy::new(&env)
                .map_err(|e| err(format!("the endorsement policy does not compile: {e}")))?;
            Ok(Some(crate::channel::EndorsementPolicy::Signature(
                std::sync::Arc::new(compiled),
            )))
        }
        Some(Type::ChannelConfigPolicyReference(path)) => {
            Ok(Some(crate::channel::EndorsementPolicy::ChannelPolicy(path)))
        }
        None => Ok(None),
    }
}

/// Define on `channel` every chaincode `_lifecycle` has committed: its endorsement policy,
/// and the package `local_msp` approved for it (empty if this org named none, so the peer
/// can validate its transactions but not run it). Called when a channel opens and after a
/// block that wrote `_lifecycle` commits. Answers the names defined.
pub async fn load_definitions(
    channel: &crate::channel::Channel,
    local_msp: &str,
) -> Result<Vec<String>, LifecycleError> {
    let view = channel.state().read().await;
    let mut state = ViewState(&view);
    let committed = all_committed(&mut state)?;
    let mut names = Vec::new();
    for (name, c) in committed {
        // One unreadable definition must not freeze the others at their old policies: it is
        // taken off the channel (its transactions fail as undefined), the rest load.
        let loaded =
            approved_package(&mut state, &name, c.params.sequence, local_msp).and_then(|package| {
                endorsement_policy(&c.params.validation_parameter)
                    .map(|policy| (package.unwrap_or_default(), policy))
            });
        let (package_id, endorsement_policy) = match loaded {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(channel = %channel.id(), chaincode = %name, sequence = c.params.sequence,
                    "the committed definition cannot be used; the chaincode is undefined on this peer until a new definition is committed: {e}");
                channel.undefine(&name);
                continue;
            }
        };
        tracing::info!(channel = %channel.id(), chaincode = %name, sequence = c.params.sequence,
            package = %package_id, "chaincode definition loaded from _lifecycle");
        channel.define(
            name.clone(),
            crate::channel::ChaincodeDefinition {
                package_id,
                version: c.params.version.clone(),
                endorsement_policy,
            },
        );
        names.push(name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A committed map plus pending writes, like a simulation over a snapshot.
    #[derive(Default)]
    struct Mem(BTreeMap<String, Bytes>);

    impl LifecycleState for Mem {
        fn get(&mut self, key: &str) -> Result<Option<Bytes>, LifecycleError> {
            Ok(self.0.get(key).cloned())
        }
        fn put(&mut self, key: &str, value: Bytes) -> Result<(), LifecycleError> {
            self.0.insert(key.to_owned(), value);
            Ok(())
        }
        fn range(
            &mut self,
            start: &str,
            end: &str,
        ) -> Result<Vec<(String, Bytes)>, LifecycleError> {
            Ok(self
                .0
                .range(start.to_owned()..end.to_owned())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
    }

    fn ctx(local: &str, creator: &str, admin: bool) -> CallContext {
        CallContext {
            local_msp: local.into(),
            creator_msp: creator.into(),
            creator_is_admin: admin,
            orgs: vec!["Org1MSP".into(), "Org2MSP".into(), "Org3MSP".into()],
        }
    }

    fn approve_args(seq: i64, version: &str, pkg: &str) -> ApproveChaincodeDefinitionForMyOrgArgs {
        ApproveChaincodeDefinitionForMyOrgArgs {
            sequence: seq,
            name: "basic".into(),
            version: version.into(),
            endorsement_plugin: "escc".into(),
            validation_plugin: "vscc".into(),
            validation_parameter: Bytes::from_static(b"policy"),
            collections: Bytes::new(),
            init_required: false,
            source: Some(ChaincodeSource {
                r#type: Some(chaincode_source::Type::LocalPackage(
                    chaincode_source::Local {
                        package_id: pkg.into(),
                    },
                )),
            }),
        }
    }

    fn readiness_args(seq: i64, version: &str) -> CheckCommitReadinessArgs {
        CheckCommitReadinessArgs {
            sequence: seq,
            name: "basic".into(),
            version: version.into(),
            endorsement_plugin: "escc".into(),
            validation_plugin: "vscc".into(),
            validation_parameter: Bytes::from_static(b"policy"),
            collections: Bytes::new(),
            init_required: false,
        }
    }

    fn commit_args(seq: i64, version: &str) -> CommitChaincodeDefinitionArgs {
        CommitChaincodeDefinitionArgs {
            sequence: seq,
            name: "basic".into(),
            version: version.into(),
            endorsement_plugin: "escc".into(),
            validation_plugin: "vscc".into(),
            validation_parameter: Bytes::from_static(b"policy"),
            collections: Bytes::new(),
            init_required: false,
        }
    }

    #[test]
    fn approve_check_commit_query() {
        let mut st = Mem::default();
        approve(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", true),
            &approve_args(1, "1.0", "basic_1:aa"),
        )
        .unwrap();
        // One of three approved.
        let ready = check_commit_readiness(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", false),
            &readiness_args(1, "1.0"),
        )
        .unwrap();
        assert_eq!(ready.approvals.get("Org1MSP"), Some(&true));
        assert_eq!(ready.approvals.get("Org2MSP"), Some(&false));
        // Org2's peer does not endorse a commit its org did not approve.
        let e = commit(
            &mut st,
            &ctx("Org2MSP", "Org2MSP", false),
            &commit_args(1, "1.0"),
        )
        .unwrap_err();
        assert!(
            e.0.contains("not agreed to by this org (Org2MSP)") && e.0.contains("approveformyorg"),
            "{e}"
        );

        // Org2 approves a different version: a mismatch its peer reports.
        approve(
            &mut st,
            &ctx("Org2MSP", "Org2MSP", true),
            &approve_args(1, "2.0", "basic_2:bb"),
        )
        .unwrap();
        let r = check_commit_readiness(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", false),
            &readiness_args(1, "1.0"),
        )
        .unwrap();
        assert_eq!(
            r.mismatches["Org2MSP"].items,
            vec!["EndorsementInfo".to_owned()]
        );
        let e = commit(
            &mut st,
            &ctx("Org2MSP", "Org2MSP", false),
            &commit_args(1, "1.0"),
        )
        .unwrap_err();
        assert!(e.0.contains("differs in EndorsementInfo"), "{e}");

        // Org1's peer endorses the commit (the LifecycleEndorsement policy is the validator's).
        approve(
            &mut st,
            &ctx("Org3MSP", "Org3MSP", true),
            &approve_args(1, "1.0", "basic_1:aa"),
        )
        .unwrap();
        commit(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", false),
            &commit_args(1, "1.0"),
        )
        .unwrap();
        let q = query_definition(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", false),
            &QueryChaincodeDefinitionArgs {
                name: "basic".into(),
            },
        )
        .unwrap();
        assert_eq!((q.sequence, q.version.as_str()), (1, "1.0"));
        assert_eq!(q.approvals.get("Org3MSP"), Some(&true));
        let all = query_definitions(&mut st).unwrap();
        assert_eq!(all.chaincode_definitions.len(), 1);
        assert_eq!(
            approved_package(&mut st, "basic", 1, "Org3MSP")
                .unwrap()
                .as_deref(),
            Some("basic_1:aa")
        );

        // Committing the same sequence again, or skipping one, is refused.
        let e = commit(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", false),
            &commit_args(1, "1.0"),
        )
        .unwrap_err();
        assert!(e.0.contains("must be sequence 2"), "{e}");
        let e = approve(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", true),
            &approve_args(3, "1.0", "x"),
        )
        .unwrap_err();
        assert!(e.0.contains("must be sequence 2"), "{e}");
        // Re-approving the committed sequence with a new package is fine; with a new version not.
        approve(
            &mut st,
            &ctx("Org2MSP", "Org2MSP", true),
            &approve_args(1, "1.0", "basic_1:cc"),
        )
        .unwrap();
        let e = approve(
            &mut st,
            &ctx("Org2MSP", "Org2MSP", true),
            &approve_args(1, "9.9", "x"),
        )
        .unwrap_err();
        assert!(e.0.contains("already committed"), "{e}");
    }

    #[test]
    fn only_an_admin_of_the_peers_org_approves() {
        let mut st = Mem::default();
        let e = approve(
            &mut st,
            &ctx("Org1MSP", "Org2MSP", true),
            &approve_args(1, "1.0", "p"),
        )
        .unwrap_err();
        assert!(
            e.0.contains("admin of this peer's organization (Org1MSP)"),
            "{e}"
        );
        let e = approve(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", false),
            &approve_args(1, "1.0", "p"),
        )
        .unwrap_err();
        assert!(e.0.contains("non-admin"), "{e}");
        assert!(st.0.is_empty());
        // Reading the org's approval is for its admins too; others learn nothing of it.
        approve(
            &mut st,
            &ctx("Org1MSP", "Org1MSP", true),
            &approve_args(1, "1.0", "p"),
        )
        .unwrap();
        let query = QueryApprovedChaincodeDefinitionArgs {
            name: "basic".into(),
            sequence: 0,
        };
        for (creator, admin) in [("Org1MSP", false), ("Org2MSP", true)] {
            let e = query_approved(&mut st, &ctx("Org1MSP", creator, admin), &query).unwrap_err();
            assert!(
                e.0.contains("queryapproved must be asked by an admin of this peer's organization"),
                "{e}"
            );
        }
        let r = query_approved(&mut st, &ctx("Org1MSP", "Org1MSP", true), &query).unwrap();
        assert_eq!(r.sequence, 1);
    }

    #[test]
    fn names_versions_collections() {
        for bad in ["", "_lifecycle", "a--b", "a b", "-a", "a-", "ü"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["basic", "asset-transfer", "a_b-c9"] {
            check_name(good).unwrap();
        }
        assert!(check_version("1.0+build_7-rc").is_ok());
        assert!(check_version("1 0").is_err());
        let mut st = Mem::default();
        let mut a = approve_args(1, "1.0", "p");
        a.collections = Bytes::from_static(b"\x0a\x00");
        let e = approve(&mut st, &ctx("Org1MSP", "Org1MSP", true), &a).unwrap_err();
        assert!(e.0.contains("collections are not supported"), "{e}");
    }

    #[test]
    fn write_requirements() {
        assert_eq!(
            write_requirement(["approvals/basic#1/Org1MSP"]),
            WriteRequirement::Org("Org1MSP".into())
        );
        assert_eq!(
            write_requirement(["approvals/basic#1/Org1MSP", "approvals/basic#1/Org2MSP"]),
            WriteRequirement::LifecycleEndorsement
        );
        assert_eq!(
            write_requirement(["namespaces/fields/basic/Sequence"]),
            WriteRequirement::LifecycleEndorsement
        );
        assert_eq!(
            write_requirement(["approvals/nohash/Org1MSP"]),
            WriteRequirement::LifecycleEndorsement
        );
    }

    #[test]
    fn dispatch_decodes_and_names_functions() {
        let mut st = Mem::default();
        let c = ctx("Org1MSP", "Org1MSP", true);
        let e = invoke(&mut st, &c, "Nope", &[]).unwrap_err();
        assert!(e.0.contains("has no function"));
        let e = invoke(&mut st, &c, "CommitChaincodeDefinition", &[0xff, 0xff]).unwrap_err();
        assert!(e.0.contains("failed to decode"));
        assert_eq!(invoke(&mut st, &c, "InstallChaincode", &[]).unwrap(), None);
        let arg = approve_args(1, "1.0", "p").encode_to_vec();
        assert_eq!(
            invoke(&mut st, &c, "ApproveChaincodeDefinitionForMyOrg", &arg).unwrap(),
            Some(Bytes::new())
        );
    }

    /// A committed definition whose policy cannot be read is taken off the channel; the
    /// others still load (before, loading stopped at it, and definitions sorting after it
    /// kept their previous, possibly weaker, policies).
    #[tokio::test]
    async fn one_unreadable_definition_does_not_freeze_the_others() {
        let mut st = Mem::default();
        let good = weft_proto::common::ApplicationPolicy {
            r#type: Some(
                weft_proto::common::application_policy::Type::SignaturePolicy(
                    weft_msp::policy::parse("OR('Org1MSP.peer')").unwrap(),
                ),
            ),
        }
        .encode_to_vec();
        // "aaa": a length-delimited field cut short, which does not decode.
        for (name, parameter) in [("aaa", vec![0x0a, 0x05]), ("zzz", good)] {
            for org in ["Org1MSP", "Org2MSP"] {
                let mut a = approve_args(1, "1.0", "pkg_1:aa");
                a.name = name.into();
                a.validation_parameter = parameter.clone().into();
                approve(&mut st, &ctx(org, org, true), &a).unwrap();
            }
            let mut c = commit_args(1, "1.0");
            c.name = name.into();
            c.validation_parameter = parameter.into();
            commit(&mut st, &ctx("Org1MSP", "Org1MSP", false), &c).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let net = weft_configtx::testing::two_org_network(&dir.path().join("net"), 7050).unwrap();
        let ch = crate::testing::open_channel_from_genesis(
            &dir.path().join("ledger"),
            &net.genesis,
            std::sync::Arc::new(crate::verifycache::SignatureCache::default()),
        )
        .await
        .unwrap();
        ch.define_chaincode("aaa", "old:aa");
        let mut batch = weft_ledger::statedb::UpdateBatch::new();
        for (k, v) in &st.0 {
            batch.put(
                LIFECYCLE,
                k,
                v.clone(),
                Bytes::new(),
                weft_ledger::statedb::Version::new(1, 0),
            );
        }
        ch.state()
            .apply(batch, weft_ledger::statedb::Version::new(1, 0), false)
            .await
            .unwrap();
        let names = load_definitions(&ch, "Org1MSP").await.unwrap();
        assert_eq!(names, vec!["zzz".to_owned()]);
        assert!(ch.definition("aaa").is_none());
        let zzz = ch.definition("zzz").unwrap();
        assert_eq!(zzz.version, "1.0");
        assert!(matches!(
            zzz.endorsement_policy,
            Some(crate::channel::EndorsementPolicy::Signature(_))
        ));
    }

    /// Attack: a definition named like a system chaincode (`qscc` serves blocks and
    /// transactions to clients) is refused at approval, readiness and commit, as Fabric's
    /// `_lifecycle` refuses it; nothing is written.
    #[test]
    fn system_chaincode_names_cannot_be_defined() {
        let mut st = Mem::default();
        let c = ctx("Org1MSP", "Org1MSP", true);
        for name in SYSTEM_CHAINCODES {
            let mut approve = approve_args(1, "1.0", "p");
            approve.name = name.into();
            let mut ready = readiness_args(1, "1.0");
            ready.name = name.into();
            for (function, arg) in [
                (
                    "ApproveChaincodeDefinitionForMyOrg",
                    approve.encode_to_vec(),
                ),
                ("CheckCommitReadiness", ready.encode_to_vec()),
            ] {
                let e = invoke(&mut st, &c, function, &arg).unwrap_err();
                assert!(
                    e.0.contains("is the name of a system chaincode"),
                    "{name}: {e:?}"
                );
            }
        }
        assert!(st.0.is_empty(), "{:?}", st.0.keys());
    }
}
