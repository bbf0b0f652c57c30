//! Channel config updates, as Fabric's configtx validator applies them and configtxlator
//! computes them. Plain functions over protobuf values: no I/O, no clock.
//!
//! # Applying an update ([`propose`], used by the orderer; [`validate_config_envelope`], by peers)
//!
//! The config tree is flattened into elements keyed by kind and path (`[Group]
//! /Channel/Application/Org1MSP`, `[Value] /Channel/Application/Org1MSP/MSP`, ...). A group
//! element carries its version, its mod_policy and the *names* of its children.
//!
//! 1. The `ConfigUpdate`'s channel ID must be the channel's.
//! 2. Read set: every element must exist at exactly the version read ([`check_read_set`]);
//!    otherwise the update was computed against another config (stale).
//! 3. Delta: the write-set elements whose version differs from the read set's
//!    ([`delta_set`]). It must not be empty. A new element (not in the config) must be at
//!    version 0; an existing one at its current version + 1, and the existing element's
//!    mod_policy must be satisfied by the `ConfigSignature`s (each signs
//!    `signature_header || config_update`). A relative mod_policy is resolved in the group the
//!    element belongs to (for a group: the group itself); an absolute one (`/Channel/...`)
//!    as is. New elements are authorized by their parent group, whose version must rise for
//!    its set of children to change.
//! 4. The delta replaces the current elements and the tree is rebuilt from the root: a group
//!    in the delta takes the children its write-set copy lists (a child it no longer lists is
//!    removed), a group not in the delta keeps its children. Every delta element must be
//!    reachable in the result. The result's sequence is the current one + 1, and it must parse
//!    as a [`ChannelConfig`].
//!
//! Only the delta is merged: a write-set element at the version read is ignored, so content
//! cannot change without a version bump and its policy check.
//!
//! # Computing an update ([`compute_update`], as `configtxlator compute_update`)
//!
//! From the current and the desired config: changed values and policies are written at
//! version + 1, new ones at 0; a group whose set of children or mod_policy changes is written
//! at version + 1 with every child listed (unchanged children at their current version in
//! both sets); the groups on the path to a change are read and written at their version.
//! [`add_application_org`] and [`set_anchor_peers`] edit a config for the CLI;
//! [`signature`] and [`update_envelope`] sign.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use prost::Message;
use weft_msp::policy::{parse, parse_implicit_meta, SignedData};
use weft_msp::{CertTime, SigningIdentity};
use weft_proto::common::{
    self, ChannelHeader, Config, ConfigEnvelope, ConfigGroup, ConfigPolicy, ConfigSignature,
    ConfigUpdate, ConfigUpdateEnvelope, ConfigValue, Envelope, HeaderType, Payload, Policy,
    SignatureHeader,
};
use weft_proto::protos::{AnchorPeer, AnchorPeers};

use crate::channel::ChannelConfig;
use crate::error::{ConfigError, PolicyCheckError};
use crate::genesis::{OrgProfile, PolicySpec};
use crate::keys;
use crate::mspdir::{fabric_msp_config, msp_value};

/// Why a config update is refused. [`UpdateError::is_forbidden`] separates missing
/// authority (Fabric answers FORBIDDEN) from a malformed or stale update (BAD_REQUEST).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateError {
    /// The envelope or update does not decode or has the wrong shape.
    #[error("malformed config update: {0}")]
    Malformed(String),
    /// The update names another channel.
    #[error("the config update is for channel '{update}', not '{channel}'")]
    WrongChannel { update: String, channel: String },
    /// The read set does not match the current config: the update is stale.
    #[error("{path}: {detail}; fetch the current config block and compute the update again")]
    ReadSet { path: String, detail: String },
    /// A write-set element has a version the current config does not allow.
    #[error("{path}: {detail}")]
    Version { path: String, detail: String },
    /// The update changes nothing.
    #[error("the update changes nothing: its write set equals its read set (delta set empty)")]
    Empty,
    /// A changed element's mod_policy is not satisfied by the update's signatures.
    #[error("modifying {path} requires policy {policy} (its mod_policy '{mod_policy}'), not satisfied by the update's signatures: {detail}")]
    Forbidden {
        path: String,
        policy: String,
        mod_policy: String,
        detail: String,
    },
    /// The updated config is not a valid channel config.
    #[error("the updated config is not valid: {0}")]
    InvalidResult(String),
    /// A config envelope (in a config block) does not match what its update produces.
    #[error("{0}")]
    Mismatch(String),
}

impl UpdateError {
    /// Whether the refusal is about authority (FORBIDDEN) rather than the request.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, UpdateError::Forbidden { .. })
    }
}

fn malformed(detail: impl Into<String>) -> UpdateError {
    UpdateError::Malformed(detail.into())
}

/// The kind of a config element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Group,
    Value,
    Policy,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Group => "group",
            Kind::Value => "value",
            Kind::Policy => "policy",
        })
    }
}

/// An element of a flattened config: a group (children by name only), a value or a policy.
#[derive(Debug, Clone, PartialEq)]
pub enum Element {
    Group(ConfigGroup),
    Value(ConfigValue),
    Policy(ConfigPolicy),
}

impl Element {
    pub fn version(&self) -> u64 {
        match self {
            Element::Group(g) => g.version,
            Element::Value(v) => v.version,
            Element::Policy(p) => p.version,
        }
    }
    pub fn mod_policy(&self) -> &str {
        match self {
            Element::Group(g) => &g.mod_policy,
            Element::Value(v) => &v.mod_policy,
            Element::Policy(p) => &p.mod_policy,
        }
    }
}

/// A flattened config tree: `(kind, path)` -> element.
pub type ConfigMap = BTreeMap<(Kind, String), Element>;

/// Deepest nesting accepted in an update (Channel / Application / Org is 3).
const MAX_DEPTH: usize = 8;

fn shell(g: &ConfigGroup) -> ConfigGroup {
    ConfigGroup {
        version: g.version,
        mod_policy: g.mod_policy.clone(),
        groups: g
            .groups
            .keys()
            .map(|k| (k.clone(), ConfigGroup::default()))
            .collect(),
        values: g
            .values
            .keys()
            .map(|k| (k.clone(), ConfigValue::default()))
            .collect(),
        policies: g
            .policies
            .keys()
            .map(|k| (k.clone(), ConfigPolicy::default()))
            .collect(),
    }
}

fn check_name(path: &str, name: &str) -> Result<(), UpdateError> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(malformed(format!(
            "{path}: element name {name:?} is not allowed (letters, digits, '.', '_', '-', at most 249)"
        )))
    }
}

/// Flatten `group` (named by `path`, e.g. `/Channel`).
pub fn flatten(group: &ConfigGroup, path: &str) -> Result<ConfigMap, UpdateError> {
    let mut map = ConfigMap::new();
    flatten_into(group, path, 0, &mut map)?;
    Ok(map)
}

fn flatten_into(
    group: &ConfigGroup,
    path: &str,
    depth: usize,
    map: &mut ConfigMap,
) -> Result<(), UpdateError> {
    if depth > MAX_DEPTH {
        return Err(malformed(format!(
            "{path}: groups nest more than {MAX_DEPTH} deep"
        )));
    }
    map.insert((Kind::Group, path.to_owned()), Element::Group(shell(group)));
    for (name, v) in &group.values {
        check_name(path, name)?;
        map.insert(
            (Kind::Value, format!("{path}/{name}")),
            Element::Value(v.clone()),
        );
    }
    for (name, p) in &group.policies {
        check_name(path, name)?;
        map.insert(
            (Kind::Policy, format!("{path}/{name}")),
            Element::Policy(p.clone()),
        );
    }
    for (name, g) in &group.groups {
        check_name(path, name)?;
        flatten_into(g, &format!("{path}/{name}"), depth + 1, map)?;
    }
    Ok(())
}

/// Rebuild the tree rooted at `path` from `map`; `reached` collects every key used.
fn rebuild(
    map: &ConfigMap,
    path: &str,
    depth: usize,
    reached: &mut BTreeSet<(Kind, String)>,
) -> Result<ConfigGroup, UpdateError> {
    let key = (Kind::Group, path.to_owned());
    let Some(Element::Group(sh)) = map.get(&key) else {
        return Err(UpdateError::InvalidResult(format!(
            "{path}: group is listed by its parent but does not exist"
        )));
    };
    if depth > MAX_DEPTH {
        return Err(UpdateError::InvalidResult(format!(
            "{path}: groups nest more than {MAX_DEPTH} deep"
        )));
    }
    reached.insert(key);
    let mut out = ConfigGroup {
        version: sh.version,
        mod_policy: sh.mod_policy.clone(),
        ..ConfigGroup::default()
    };
    for name in sh.values.keys() {
        let k = (Kind::Value, format!("{path}/{name}"));
        match map.get(&k) {
            Some(Element::Value(v)) => {
                out.values.insert(name.clone(), v.clone());
            }
            _ => {
                return Err(UpdateError::InvalidResult(format!(
                    "{}: value is listed by its group but does not exist",
                    k.1
                )))
            }
        }
        reached.insert(k);
    }
    for name in sh.policies.keys() {
        let k = (Kind::Policy, format!("{path}/{name}"));
        match map.get(&k) {
            Some(Element::Policy(p)) => {
                out.policies.insert(name.clone(), p.clone());
            }
            _ => {
                return Err(UpdateError::InvalidResult(format!(
                    "{}: policy is listed by its group but does not exist",
                    k.1
                )))
            }
        }
        reached.insert(k);
    }
    for name in sh.groups.keys() {
        let child = rebuild(map, &format!("{path}/{name}"), depth + 1, reached)?;
        out.groups.insert(name.clone(), child);
    }
    Ok(out)
}

fn root_path() -> String {
    format!("/{}", keys::CHANNEL)
}

/// Step 2: every read-set element exists in `current` at the version read.
pub fn check_read_set(current: &ConfigMap, read: &ConfigMap) -> Result<(), UpdateError> {
    for ((kind, path), el) in read {
        match current.get(&(*kind, path.clone())) {
            None => {
                return Err(UpdateError::ReadSet {
                    path: path.clone(),
                    detail: format!("the update read {kind} {path}, which the current config does not have"),
                })
            }
            Some(cur) if cur.version() != el.version() => {
                return Err(UpdateError::ReadSet {
                    path: path.clone(),
                    detail: format!(
                        "the update was computed against version {} of this {kind}, but it is at version {} now (the config changed since)",
                        el.version(),
                        cur.version()
                    ),
                })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Step 3's delta: write-set elements not in the read set at the same version.
pub fn delta_set(read: &ConfigMap, write: &ConfigMap) -> ConfigMap {
    write
        .iter()
        .filter(|(k, w)| read.get(*k).is_none_or(|r| r.version() != w.version()))
        .map(|(k, w)| (k.clone(), w.clone()))
        .collect()
}

/// The absolute path of the policy `mod_policy` guarding the element at `path`.
pub fn mod_policy_path(kind: Kind, path: &str, mod_policy: &str) -> String {
    if mod_policy.starts_with('/') {
        return mod_policy.to_owned();
    }
    let scope = match kind {
        Kind::Group => path,
        Kind::Value | Kind::Policy => path.rsplit_once('/').map_or(path, |(p, _)| p),
    };
    format!("{scope}/{mod_policy}")
}

fn check_mod_policy(path: &str, mod_policy: &str) -> Result<(), UpdateError> {
    if mod_policy.is_empty() {
        return Err(UpdateError::Version {
            path: path.to_owned(),
            detail: "mod_policy not set; every element needs one (usually Admins)".into(),
        });
    }
    for part in mod_policy.trim_start_matches('/').split('/') {
        check_name(path, part).map_err(|_| UpdateError::Version {
            path: path.to_owned(),
            detail: format!("mod_policy {mod_policy:?} is not a valid policy path"),
        })?;
    }
    Ok(())
}

/// Step 3: versions of the delta and the mod_policy of every changed element.
pub fn authorize(
    current: &ChannelConfig,
    current_map: &ConfigMap,
    delta: &ConfigMap,
    signed: &[SignedData<'_>],
    when: CertTime,
) -> Result<(), UpdateError> {
    if delta.is_empty() {
        return Err(UpdateError::Empty);
    }
    for ((kind, path), el) in delta {
        check_mod_policy(path, el.mod_policy())?;
        let Some(existing) = current_map.get(&(*kind, path.clone())) else {
            if el.version() != 0 {
                return Err(UpdateError::Version {
                    path: path.clone(),
                    detail: format!(
                        "the update sets new {kind} {path} to version {}; a new element starts at version 0",
                        el.version()
                    ),
                });
            }
            continue;
        };
        if el.version() != existing.version() + 1 {
            return Err(UpdateError::Version {
                path: path.clone(),
                detail: format!(
                    "the update sets this {kind} to version {}, but it is at version {}: a change writes version {}",
                    el.version(),
                    existing.version(),
                    existing.version() + 1
                ),
            });
        }
        let policy = mod_policy_path(*kind, path, existing.mod_policy());
        current
            .evaluate_policy_at(&policy, signed, when)
            .map_err(|e| UpdateError::Forbidden {
                path: format!("{kind} {path}"),
                policy: policy.clone(),
                mod_policy: existing.mod_policy().to_owned(),
                detail: match e {
                    PolicyCheckError::NotSatisfied { source, .. } => source.to_string(),
                    other => other.to_string(),
                },
            })?;
    }
    Ok(())
}

/// The `ConfigUpdate` and its signatures carried by a CONFIG_UPDATE envelope's payload data.
pub fn decode_update_envelope(
    data: &Bytes,
) -> Result<(ConfigUpdateEnvelope, ConfigUpdate), UpdateError> {
    let cue = ConfigUpdateEnvelope::decode(data.clone())
        .map_err(|e| malformed(format!("the payload is not a ConfigUpdateEnvelope: {e}")))?;
    let cu = ConfigUpdate::decode(cue.config_update.clone())
        .map_err(|e| malformed(format!("config_update is not a ConfigUpdate: {e}")))?;
    Ok((cue, cu))
}

/// The channel header and `ConfigUpdateEnvelope` of a CONFIG_UPDATE envelope.
pub fn update_from_envelope(
    env: &Envelope,
) -> Result<(ChannelHeader, ConfigUpdateEnvelope), UpdateError> {
    let payload = Payload::decode(env.payload.clone())
        .map_err(|e| malformed(format!("the envelope's payload does not decode: {e}")))?;
    let header = payload
        .header
        .ok_or_else(|| malformed("the payload has no header"))?;
    let ch = ChannelHeader::decode(header.channel_header)
        .map_err(|e| malformed(format!("the channel header does not decode: {e}")))?;
    if ch.r#type != HeaderType::ConfigUpdate as i32 {
        return Err(malformed(format!(
            "the envelope's header type is {}, not CONFIG_UPDATE (2)",
            ch.r#type
        )));
    }
    let (cue, _) = decode_update_envelope(&payload.data)?;
    Ok((ch, cue))
}

/// Apply a signed `ConfigUpdateEnvelope` to `current` (steps 1-4 of the module docs): the new
/// config, at sequence + 1, and its parsed form.
pub fn propose(
    current: &ChannelConfig,
    cue: &ConfigUpdateEnvelope,
) -> Result<(Config, ChannelConfig), UpdateError> {
    propose_at(current, cue, CertTime::Now)
}

/// [`propose`] with the signers' certificates checked at `when` ([`CertTime::Issuance`] when
/// the update is read from a block).
pub fn propose_at(
    current: &ChannelConfig,
    cue: &ConfigUpdateEnvelope,
    when: CertTime,
) -> Result<(Config, ChannelConfig), UpdateError> {
    let cu = ConfigUpdate::decode(cue.config_update.clone())
        .map_err(|e| malformed(format!("config_update is not a ConfigUpdate: {e}")))?;
    if cu.channel_id != current.channel_id() {
        return Err(UpdateError::WrongChannel {
            update: cu.channel_id,
            channel: current.channel_id().to_owned(),
        });
    }
    let root = root_path();
    let current_group = current.config().channel_group.as_ref().ok_or_else(|| {
        UpdateError::InvalidResult("the current config has no channel group".into())
    })?;
    let current_map = flatten(current_group, &root)?;
    let read = match &cu.read_set {
        Some(g) => flatten(g, &root)?,
        None => ConfigMap::new(),
    };
    check_read_set(&current_map, &read)?;
    let write = match &cu.write_set {
        Some(g) => flatten(g, &root)?,
        None => return Err(UpdateError::Empty),
    };
    let delta = delta_set(&read, &write);

    // Signed data: signature_header || config_update, by the header's creator.
    let mut parts = Vec::with_capacity(cue.signatures.len());
    for (i, s) in cue.signatures.iter().enumerate() {
        let sh = SignatureHeader::decode(s.signature_header.clone()).map_err(|e| {
            malformed(format!(
                "signature {i}: the signature header does not decode: {e}"
            ))
        })?;
        let data = [s.signature_header.as_ref(), cue.config_update.as_ref()].concat();
        parts.push((sh.creator, data, s.signature.clone()));
    }
    let signed: Vec<SignedData<'_>> = parts
        .iter()
        .map(|(creator, data, sig)| SignedData {
            identity: creator,
            data,
            signature: sig,
        })
        .collect();
    authorize(current, &current_map, &delta, &signed, when)?;

    let mut merged = current_map;
    for (k, v) in &delta {
        merged.insert(k.clone(), v.clone());
    }
    let mut reached = BTreeSet::new();
    let group = rebuild(&merged, &root, 0, &mut reached)?;
    if let Some((kind, path)) = delta.keys().find(|k| !reached.contains(*k)) {
        return Err(UpdateError::InvalidResult(format!(
            "the update writes {kind} {path}, but its parent group does not list it: write the parent group at its next version, listing the new child"
        )));
    }
    let config = Config {
        sequence: current.sequence() + 1,
        channel_group: Some(group),
    };
    let parsed = ChannelConfig::from_config(current.channel_id(), &config)
        .map_err(|e| UpdateError::InvalidResult(e.to_string()))?;
    current
        .check_successor(&parsed)
        .map_err(UpdateError::InvalidResult)?;
    Ok((config, parsed))
}

/// A peer's check of a committed config envelope against its current config (Fabric's
/// `Validate`): sequence current + 1, and its `last_update` applied to the current config
/// (signatures and mod_policies included) gives exactly its config. Returns the new config.
pub fn validate_config_envelope(
    current: &ChannelConfig,
    ce: &ConfigEnvelope,
) -> Result<ChannelConfig, UpdateError> {
    let config = ce
        .config
        .as_ref()
        .ok_or_else(|| malformed("the config envelope has no config"))?;
    if config.sequence != current.sequence() + 1 {
        return Err(UpdateError::Mismatch(format!(
            "the config is at sequence {}, the channel at {}: a config block must carry sequence {}",
            config.sequence,
            current.sequence(),
            current.sequence() + 1
        )));
    }
    let last = ce
        .last_update
        .as_ref()
        .ok_or_else(|| malformed("the config envelope has no last_update"))?;
    let (_, cue) = update_from_envelope(last)?;
    // A committed update is judged as of its signers' certificates' issuance: a peer replaying
    // the chain after an admin's certificate expired must accept what the others accepted.
    let (computed, parsed) = propose_at(current, &cue, CertTime::Issuance)?;
    if computed != *config {
        return Err(UpdateError::Mismatch(
            "the config envelope's last_update does not produce the config it carries".into(),
        ));
    }
    Ok(parsed)
}

// ---- Computing updates -------------------------------------------------------------------

/// configtxlator's `compute_update`: the read and write sets taking `original` to `updated`.
pub fn compute_update(
    channel_id: &str,
    original: &Config,
    updated: &Config,
) -> Result<ConfigUpdate, UpdateError> {
    let empty = ConfigGroup::default();
    let o = original.channel_group.as_ref().unwrap_or(&empty);
    let u = updated.channel_group.as_ref().unwrap_or(&empty);
    let (read_set, write_set, changed) = group_update(o, u);
    if !changed {
        return Err(UpdateError::Empty);
    }
    Ok(ConfigUpdate {
        channel_id: channel_id.to_owned(),
        read_set: Some(read_set),
        write_set: Some(write_set),
        isolated_data: BTreeMap::new(),
    })
}

/// (read set, write set, anything changed) for one group.
fn group_update(original: &ConfigGroup, updated: &ConfigGroup) -> (ConfigGroup, ConfigGroup, bool) {
    let mut read = ConfigGroup::default();
    let mut write = ConfigGroup::default();
    let mut members_changed = original.mod_policy != updated.mod_policy;
    let mut same = ConfigGroup::default();

    for (name, ov) in &original.values {
        match updated.values.get(name) {
            None => members_changed = true,
            Some(uv) if uv.value == ov.value && uv.mod_policy == ov.mod_policy => {
                same.values.insert(
                    name.clone(),
                    ConfigValue {
                        version: ov.version,
                        ..ConfigValue::default()
                    },
                );
            }
            Some(uv) => {
                write.values.insert(
                    name.clone(),
                    ConfigValue {
                        version: ov.version + 1,
                        ..uv.clone()
                    },
                );
            }
        }
    }
    for (name, uv) in &updated.values {
        if !original.values.contains_key(name) {
            members_changed = true;
            write.values.insert(
                name.clone(),
                ConfigValue {
                    version: 0,
                    ..uv.clone()
                },
            );
        }
    }
    for (name, op) in &original.policies {
        match updated.policies.get(name) {
            None => members_changed = true,
            Some(up) if up.policy == op.policy && up.mod_policy == op.mod_policy => {
                same.policies.insert(
                    name.clone(),
                    ConfigPolicy {
                        version: op.version,
                        ..ConfigPolicy::default()
                    },
                );
            }
            Some(up) => {
                write.policies.insert(
                    name.clone(),
                    ConfigPolicy {
                        version: op.version + 1,
                        ..up.clone()
                    },
                );
            }
        }
    }
    for (name, up) in &updated.policies {
        if !original.policies.contains_key(name) {
            members_changed = true;
            write.policies.insert(
                name.clone(),
                ConfigPolicy {
                    version: 0,
                    ..up.clone()
                },
            );
        }
    }
    for (name, og) in &original.groups {
        match updated.groups.get(name) {
            None => members_changed = true,
            Some(ug) => {
                let (r, w, changed) = group_update(og, ug);
                if changed {
                    read.groups.insert(name.clone(), r);
                    write.groups.insert(name.clone(), w);
                } else {
                    same.groups.insert(name.clone(), r);
                }
            }
        }
    }
    for (name, ug) in &updated.groups {
        if !original.groups.contains_key(name) {
            members_changed = true;
            write.groups.insert(name.clone(), zero_versions(ug));
        }
    }

    if !members_changed {
        let nothing = read.groups.is_empty()
            && write.groups.is_empty()
            && write.values.is_empty()
            && write.policies.is_empty();
        read.version = original.version;
        write.version = original.version;
        return (read, write, !nothing);
    }
    for (k, v) in same.values {
        read.values.insert(k.clone(), v.clone());
        write.values.insert(k, v);
    }
    for (k, v) in same.policies {
        read.policies.insert(k.clone(), v.clone());
        write.policies.insert(k, v);
    }
    for (k, v) in same.groups {
        read.groups.insert(k.clone(), v.clone());
        write.groups.insert(k, v);
    }
    read.version = original.version;
    write.version = original.version + 1;
    write.mod_policy = updated.mod_policy.clone();
    (read, write, true)
}

fn zero_versions(g: &ConfigGroup) -> ConfigGroup {
    ConfigGroup {
        version: 0,
        mod_policy: g.mod_policy.clone(),
        groups: g
            .groups
            .iter()
            .map(|(k, v)| (k.clone(), zero_versions(v)))
            .collect(),
        values: g
            .values
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    ConfigValue {
                        version: 0,
                        ..v.clone()
                    },
                )
            })
            .collect(),
        policies: g
            .policies
            .iter()
            .map(|(k, p)| {
                (
                    k.clone(),
                    ConfigPolicy {
                        version: 0,
                        ..p.clone()
                    },
                )
            })
            .collect(),
    }
}

fn policy_of(spec: &PolicySpec, path: &str) -> Result<Policy, ConfigError> {
    let bad = |e: String| ConfigError::Invalid {
        path: path.to_owned(),
        detail: e,
    };
    Ok(match spec {
        PolicySpec::Signature(rule) => Policy {
            r#type: common::policy::PolicyType::Signature as i32,
            value: Bytes::from(
                parse(rule)
                    .map_err(|e| bad(format!("signature policy \"{rule}\": {e}")))?
                    .encode_to_vec(),
            ),
        },
        PolicySpec::ImplicitMeta(rule) => Policy {
            r#type: common::policy::PolicyType::ImplicitMeta as i32,
            value: Bytes::from(
                parse_implicit_meta(rule)
                    .map_err(|e| bad(format!("implicit meta policy \"{rule}\": {e}")))?
                    .encode_to_vec(),
            ),
        },
    })
}

fn anchor_peers_value(peers: &[(String, u16)]) -> ConfigValue {
    ConfigValue {
        version: 0,
        value: Bytes::from(
            AnchorPeers {
                anchor_peers: peers
                    .iter()
                    .map(|(host, port)| AnchorPeer {
                        host: host.clone(),
                        port: i32::from(*port),
                    })
                    .collect(),
            }
            .encode_to_vec(),
        ),
        mod_policy: keys::ADMINS.to_owned(),
    }
}

/// An application org's config group as configtxgen writes it (`configtxgen -printOrg`): its
/// MSP from its MSP directory, its policies, its anchor peers; every mod_policy `Admins`.
pub fn application_org_group(org: &OrgProfile) -> Result<ConfigGroup, ConfigError> {
    let path = format!("/{}/{}/{}", keys::CHANNEL, keys::APPLICATION, org.name);
    let mut g = ConfigGroup {
        mod_policy: keys::ADMINS.to_owned(),
        ..ConfigGroup::default()
    };
    for name in [keys::READERS, keys::WRITERS, keys::ADMINS] {
        if !org.policies.contains_key(name) {
            return Err(ConfigError::Invalid {
                path: format!("{path}/{name}"),
                detail: "missing: an org needs Readers, Writers and Admins policies".into(),
            });
        }
    }
    for (name, spec) in &org.policies {
        g.policies.insert(
            name.clone(),
            ConfigPolicy {
                version: 0,
                policy: Some(policy_of(spec, &format!("{path}/{name}"))?),
                mod_policy: keys::ADMINS.to_owned(),
            },
        );
    }
    let fc = fabric_msp_config(&org.msp_dir, &org.msp_id)?;
    g.values.insert(
        keys::MSP.to_owned(),
        ConfigValue {
            version: 0,
            value: Bytes::from(msp_value(&fc).encode_to_vec()),
            mod_policy: keys::ADMINS.to_owned(),
        },
    );
    if !org.anchor_peers.is_empty() {
        g.values.insert(
            keys::ANCHOR_PEERS.to_owned(),
            anchor_peers_value(&org.anchor_peers),
        );
    }
    Ok(g)
}

fn application_mut(config: &mut Config) -> Result<&mut ConfigGroup, UpdateError> {
    config
        .channel_group
        .as_mut()
        .and_then(|c| c.groups.get_mut(keys::APPLICATION))
        .ok_or_else(|| malformed("the config has no /Channel/Application group"))
}

/// `config` with `org` added to the Application group (the org must not be there yet).
pub fn add_application_org(config: &Config, org: &OrgProfile) -> Result<Config, UpdateError> {
    let group = application_org_group(org).map_err(|e| malformed(e.to_string()))?;
    let mut out = config.clone();
    let app = application_mut(&mut out)?;
    if app.groups.contains_key(&org.name) {
        return Err(malformed(format!(
            "/Channel/Application/{} already exists in the channel config",
            org.name
        )));
    }
    if let Some((name, _)) = app.groups.iter().find(|(_, g)| {
        g.values
            .get(keys::MSP)
            .and_then(|v| weft_proto::msp::MspConfig::decode(v.value.clone()).ok())
            .and_then(|m| weft_proto::msp::FabricMspConfig::decode(m.config).ok())
            .is_some_and(|f| f.name == org.msp_id)
    }) {
        return Err(malformed(format!(
            "MSP ID {} is already used by /Channel/Application/{name}",
            org.msp_id
        )));
    }
    app.groups.insert(org.name.clone(), group);
    Ok(out)
}

/// `config` with the anchor peers of application org `org_name` replaced by `peers`.
pub fn set_anchor_peers(
    config: &Config,
    org_name: &str,
    peers: &[(String, u16)],
) -> Result<Config, UpdateError> {
    let mut out = config.clone();
    let app = application_mut(&mut out)?;
    let known: Vec<String> = app.groups.keys().cloned().collect();
    let org = app.groups.get_mut(org_name).ok_or_else(|| {
        malformed(format!(
            "the channel has no application org '{org_name}' (it has: {})",
            known.join(", ")
        ))
    })?;
    if peers.is_empty() {
        org.values.remove(keys::ANCHOR_PEERS);
    } else {
        let mod_policy = org
            .values
            .get(keys::ANCHOR_PEERS)
            .map(|v| v.mod_policy.clone())
            .unwrap_or_else(|| keys::ADMINS.to_owned());
        let mut v = anchor_peers_value(peers);
        v.mod_policy = mod_policy;
        org.values.insert(keys::ANCHOR_PEERS.to_owned(), v);
    }
    Ok(out)
}

/// `signer`'s `ConfigSignature` of `config_update` (the encoded `ConfigUpdate`): a fresh
/// signature header, signature over `signature_header || config_update`.
pub fn signature(
    signer: &SigningIdentity,
    config_update: &[u8],
) -> Result<ConfigSignature, String> {
    let nonce = weft_crypto::random_bytes(24).map_err(|e| format!("cannot make a nonce: {e}"))?;
    let signature_header = Bytes::from(
        SignatureHeader {
            creator: Bytes::from(signer.serialize()),
            nonce: Bytes::from(nonce),
        }
        .encode_to_vec(),
    );
    let msg = [signature_header.as_ref(), config_update].concat();
    let sig = signer
        .sign(&msg)
        .map_err(|e| format!("cannot sign the config update: {e}"))?;
    Ok(ConfigSignature {
        signature_header,
        signature: Bytes::from(sig),
    })
}

/// A CONFIG_UPDATE envelope carrying `cue` on `channel_id`, signed by `signer` (as
/// `peer channel update` sends it: channel header version 0, epoch 0, no tx id).
pub fn update_envelope(
    channel_id: &str,
    cue: &ConfigUpdateEnvelope,
    signer: &SigningIdentity,
) -> Result<Envelope, String> {
    let nonce = weft_crypto::random_bytes(24).map_err(|e| format!("cannot make a nonce: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ch = ChannelHeader {
        r#type: HeaderType::ConfigUpdate as i32,
        channel_id: channel_id.to_owned(),
        timestamp: Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: 0,
        }),
        ..ChannelHeader::default()
    };
    let sh = SignatureHeader {
        creator: Bytes::from(signer.serialize()),
        nonce: Bytes::from(nonce),
    };
    let payload = Payload {
        header: Some(common::Header {
            channel_header: Bytes::from(ch.encode_to_vec()),
            signature_header: Bytes::from(sh.encode_to_vec()),
        }),
        data: Bytes::from(cue.encode_to_vec()),
    };
    let payload = Bytes::from(payload.encode_to_vec());
    let signature = signer
        .sign(&payload)
        .map_err(|e| format!("cannot sign the envelope: {e}"))?;
    Ok(Envelope {
        payload,
        signature: Bytes::from(signature),
    })
}

/// Crypto material for one more application org of a test network, `Org<n>MSP`
/// (`org<n>.example.com`, one peer, Admin and User1, NodeOUs, TLS SANs `localhost` and
/// `127.0.0.1`), generated under `dir/crypto-org<n>`: what tests add with a config update.
pub fn test_org(dir: &std::path::Path, n: u32) -> Result<crate::testing::TestOrg, ConfigError> {
    let yaml = format!(
        "PeerOrgs:\n  - Name: Org{n}\n    Domain: org{n}.example.com\n    EnableNodeOUs: true\n    \
         Template:\n      Count: 1\n      SANS: [localhost, 127.0.0.1]\n    Users:\n      Count: 1\n"
    );
    let out = dir.join(format!("crypto-org{n}"));
    let file = |e: String| ConfigError::File {
        file: out.display().to_string(),
        detail: e,
    };
    let cfg = weft_msp::CryptoConfig::from_yaml_str(&yaml, "test org")
        .map_err(|e| file(e.to_string()))?;
    let report = weft_msp::cryptogen::generate(&cfg, &out, &Default::default())
        .map_err(|e| file(e.to_string()))?;
    let o = report
        .orgs
        .first()
        .ok_or_else(|| file("cryptogen made no org".into()))?;
    let msp_id = format!("Org{n}MSP");
    let ident = |r: &weft_msp::IdentityReport| crate::testing::TestIdentity {
        name: r.name.clone(),
        msp_id: msp_id.clone(),
        msp_dir: r.msp_dir.clone(),
        tls_cert: r.tls_cert.clone(),
        tls_key: r.tls_key.clone(),
        tls_ca_cert: r.tls_ca_cert.clone(),
    };
    let node = o
        .nodes
        .first()
        .map(ident)
        .ok_or_else(|| file("cryptogen made no peer".into()))?;
    let admin = o
        .users
        .iter()
        .find(|u| u.name.starts_with("Admin@"))
        .map(ident)
        .ok_or_else(|| file("cryptogen made no Admin".into()))?;
    let user = o
        .users
        .iter()
        .find(|u| u.name.starts_with("User1@"))
        .map(ident)
        .unwrap_or_else(|| admin.clone());
    Ok(crate::testing::TestOrg {
        name: msp_id.clone(),
        msp_id,
        msp_dir: o.msp_dir.clone(),
        tls_ca_cert: o.tls_ca_cert.clone(),
        node,
        admin,
        user,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::{two_org_network, TestNetwork};

    fn network() -> (tempfile::TempDir, TestNetwork, ChannelConfig) {
        let dir = tempfile::tempdir().unwrap();
        let net = two_org_network(dir.path(), 7050).unwrap();
        let cfg = ChannelConfig::from_block(&net.genesis).unwrap();
        (dir, net, cfg)
    }

    /// Org3's MSP directory, from a cryptogen run of its own.
    fn org3(dir: &std::path::Path) -> OrgProfile {
        let org = test_org(dir, 3).unwrap();
        let mut p = OrgProfile::application(&org.name, &org.msp_id, &org.msp_dir);
        p.anchor_peers = vec![("peer0.org3.example.com".into(), 11051)];
        p
    }

    fn sign_all(cu: &ConfigUpdate, signers: &[SigningIdentity]) -> ConfigUpdateEnvelope {
        let bytes = cu.encode_to_vec();
        ConfigUpdateEnvelope {
            signatures: signers
                .iter()
                .map(|s| signature(s, &bytes).unwrap())
                .collect(),
            config_update: Bytes::from(bytes),
        }
    }

    fn admins(net: &TestNetwork) -> Vec<SigningIdentity> {
        net.orgs.iter().map(|o| o.admin.signer().unwrap()).collect()
    }

    #[test]
    fn add_org_signed_by_majority_is_applied() {
        let (dir, net, cfg) = network();
        let org = org3(dir.path());
        let updated = add_application_org(cfg.config(), &org).unwrap();
        let cu = compute_update(cfg.channel_id(), cfg.config(), &updated).unwrap();
        // Read set: Application at version 0; write set: Application at 1 with Org3 at 0.
        let w = cu.write_set.as_ref().unwrap();
        assert_eq!(w.groups[keys::APPLICATION].version, 1);
        assert_eq!(w.groups[keys::APPLICATION].groups["Org3MSP"].version, 0);
        let cue = sign_all(&cu, &admins(&net));
        let (config, parsed) = propose(&cfg, &cue).unwrap();
        assert_eq!(config.sequence, 1);
        assert_eq!(parsed.sequence(), 1);
        let o3 = &parsed.application_orgs()["Org3MSP"];
        assert_eq!(o3.msp_id, "Org3MSP");
        assert_eq!(
            o3.anchor_peers,
            vec![("peer0.org3.example.com".to_owned(), 11051)]
        );
        assert!(!o3.msp.tls_root_certs().is_empty());
        assert!(parsed.all_tls_roots().len() > cfg.all_tls_roots().len());
        // The result is exactly the desired config, versions aside.
        let g = config.channel_group.as_ref().unwrap();
        assert_eq!(g.groups[keys::APPLICATION].version, 1);
        assert_eq!(
            g.groups[keys::APPLICATION].groups["Org3MSP"].values,
            updated.channel_group.as_ref().unwrap().groups[keys::APPLICATION].groups["Org3MSP"]
                .values
        );

        // A peer accepts the config envelope made from it, and only at the next sequence.
        let env =
            update_envelope(cfg.channel_id(), &cue, &net.orgs[0].admin.signer().unwrap()).unwrap();
        let ce = ConfigEnvelope {
            config: Some(config.clone()),
            last_update: Some(env.clone()),
        };
        let again = validate_config_envelope(&cfg, &ce).unwrap();
        assert_eq!(again.sequence(), 1);
        let err = validate_config_envelope(&parsed, &ce).unwrap_err();
        assert!(matches!(err, UpdateError::Mismatch(_)), "{err}");
        // A config that is not what the update produces is refused.
        let mut forged = config.clone();
        forged
            .channel_group
            .as_mut()
            .unwrap()
            .groups
            .get_mut(keys::APPLICATION)
            .unwrap()
            .groups
            .remove("Org1MSP");
        let err = validate_config_envelope(
            &cfg,
            &ConfigEnvelope {
                config: Some(forged),
                last_update: Some(env),
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("does not produce"), "{err}");
    }

    #[test]
    fn add_org_signed_by_one_admin_is_forbidden() {
        let (dir, net, cfg) = network();
        let updated = add_application_org(cfg.config(), &org3(dir.path())).unwrap();
        let cu = compute_update(cfg.channel_id(), cfg.config(), &updated).unwrap();
        let cue = sign_all(&cu, &admins(&net)[..1]);
        let err = propose(&cfg, &cue).unwrap_err();
        assert!(err.is_forbidden(), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("/Channel/Application/Admins"), "{msg}");
        assert!(msg.contains("group /Channel/Application"), "{msg}");
        // Unsigned: forbidden too.
        let err = propose(&cfg, &sign_all(&cu, &[])).unwrap_err();
        assert!(err.is_forbidden(), "{err}");
    }

    #[test]
    fn org_group_change_needs_that_orgs_admin() {
        let (_dir, net, cfg) = network();
        // Org2's anchor peers, signed by Org1's admin only: Org2's Admins policy refuses.
        let updated = set_anchor_peers(
            cfg.config(),
            "Org2MSP",
            &[("peer0.org2.example.com".into(), 9051)],
        )
        .unwrap();
        let cu = compute_update(cfg.channel_id(), cfg.config(), &updated).unwrap();
        let a = admins(&net);
        let err = propose(&cfg, &sign_all(&cu, &a[..1])).unwrap_err();
        assert!(err.is_forbidden(), "{err}");
        assert!(
            err.to_string()
                .contains("/Channel/Application/Org2MSP/Admins"),
            "{err}"
        );
        // Org2's admin may.
        let (_, parsed) = propose(&cfg, &sign_all(&cu, &a[1..2])).unwrap();
        assert_eq!(
            parsed.application_orgs()["Org2MSP"].anchor_peers,
            vec![("peer0.org2.example.com".to_owned(), 9051)]
        );
    }

    /// Attack: Org1's admins alone satisfy their org's mod_policy, so they could rename
    /// their MSP to an ID the channel's policies still name (here Org2's, after a rename in
    /// one step) and gain that org's rights. Refused as Fabric refuses it; the consensus type
    /// cannot change either.
    #[test]
    fn an_org_cannot_change_its_msp_id() {
        let (_dir, net, cfg) = network();
        let a = admins(&net);
        let mut renamed = cfg.config().clone();
        let org1 =
            crate::testing::group_mut(&mut renamed, &[keys::APPLICATION, "Org1MSP"]).unwrap();
        let value = org1.values.get_mut(keys::MSP).unwrap();
        let mut msp = weft_proto::msp::MspConfig::decode(value.value.clone()).unwrap();
        let mut fabric = weft_proto::msp::FabricMspConfig::decode(msp.config.clone()).unwrap();
        fabric.name = "Org9MSP".into();
        msp.config = fabric.encode_to_vec().into();
        value.value = msp.encode_to_vec().into();
        let cu = compute_update(cfg.channel_id(), cfg.config(), &renamed).unwrap();
        let err = propose(&cfg, &sign_all(&cu, &a[..1])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(
                "application org Org1MSP may not change its MSP ID from Org1MSP to Org9MSP"
            ),
            "{text}"
        );

        let raft = crate::testing::with_consensus_type(cfg.config(), |ct| ct.r#type = "BFT".into())
            .unwrap();
        let cu = compute_update(cfg.channel_id(), cfg.config(), &raft).unwrap();
        let orderer_admin = net.orderer_org.admin.signer().unwrap();
        let err = propose(&cfg, &sign_all(&cu, &[orderer_admin])).unwrap_err();
        assert!(err.to_string().contains("consensus type"), "{err}");
    }

    #[test]
    fn stale_read_set_and_bad_versions_are_refused() {
        let (dir, net, cfg) = network();
        let a = admins(&net);
        let updated = add_application_org(cfg.config(), &org3(dir.path())).unwrap();
        let cu = compute_update(cfg.channel_id(), cfg.config(), &updated).unwrap();
        let cue = sign_all(&cu, &a);
        let (_, after) = propose(&cfg, &cue).unwrap();
        // The same update against the updated config: the read set is stale.
        let err = propose(&after, &cue).unwrap_err();
        assert!(matches!(err, UpdateError::ReadSet { .. }), "{err}");
        assert!(err.to_string().contains("version 0"), "{err}");
        assert!(!err.is_forbidden());

        // Skipping a version.
        let mut bad = cu.clone();
        bad.write_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut(keys::APPLICATION)
            .unwrap()
            .version = 2;
        let err = propose(&cfg, &sign_all(&bad, &a)).unwrap_err();
        assert!(matches!(err, UpdateError::Version { .. }), "{err}");

        // Adding a child without bumping its parent: the child would be unreachable.
        let mut sneaky = cu.clone();
        sneaky
            .write_set
            .as_mut()
            .unwrap()
            .groups
            .get_mut(keys::APPLICATION)
            .unwrap()
            .version = 0;
        let err = propose(&cfg, &sign_all(&sneaky, &a)).unwrap_err();
        assert!(err.to_string().contains("parent group"), "{err}");

        // Another channel.
        let mut other = cu.clone();
        other.channel_id = "otherchannel".into();
        let err = propose(&cfg, &sign_all(&other, &a)).unwrap_err();
        assert!(matches!(err, UpdateError::WrongChannel { .. }), "{err}");

        // Nothing changed.
        assert_eq!(
            compute_update(cfg.channel_id(), cfg.config(), cfg.config()).unwrap_err(),
            UpdateError::Empty
        );
        let noop = ConfigUpdate {
            channel_id: cfg.channel_id().into(),
            read_set: cu.read_set.clone(),
            write_set: cu.read_set.clone(),
            ..Default::default()
        };
        assert_eq!(
            propose(&cfg, &sign_all(&noop, &a)).unwrap_err(),
            UpdateError::Empty
        );
    }

    #[test]
    fn same_version_content_change_is_ignored() {
        // A write-set value at the version read is not part of the delta: it cannot change
        // content without its policy check.
        let (_dir, net, cfg) = network();
        let a = admins(&net);
        let updated = set_anchor_peers(
            cfg.config(),
            "Org1MSP",
            &[("peer0.org1.example.com".into(), 7051)],
        )
        .unwrap();
        let mut cu = compute_update(cfg.channel_id(), cfg.config(), &updated).unwrap();
        // Smuggle a batch size change at the current version.
        let orderer = &cfg.config().channel_group.as_ref().unwrap().groups[keys::ORDERER];
        let mut bs = orderer.values[keys::BATCH_SIZE].clone();
        let mut size = weft_proto::orderer::BatchSize::decode(bs.value.clone()).unwrap();
        size.max_message_count = 1;
        bs.value = Bytes::from(size.encode_to_vec());
        let mut og = ConfigGroup {
            version: orderer.version,
            ..Default::default()
        };
        og.values.insert(keys::BATCH_SIZE.into(), bs.clone());
        cu.write_set
            .as_mut()
            .unwrap()
            .groups
            .insert(keys::ORDERER.into(), og.clone());
        let mut rs = og;
        rs.values.get_mut(keys::BATCH_SIZE).unwrap().value = Bytes::new();
        cu.read_set
            .as_mut()
            .unwrap()
            .groups
            .insert(keys::ORDERER.into(), rs);
        let (_, parsed) = propose(&cfg, &sign_all(&cu, &a[..1])).unwrap();
        assert_eq!(parsed.batch().max_message_count, 500);
    }

    #[test]
    fn mod_policy_paths() {
        assert_eq!(
            mod_policy_path(Kind::Group, "/Channel/Application", "Admins"),
            "/Channel/Application/Admins"
        );
        assert_eq!(
            mod_policy_path(Kind::Value, "/Channel/Application/Org1MSP/MSP", "Admins"),
            "/Channel/Application/Org1MSP/Admins"
        );
        assert_eq!(
            mod_policy_path(
                Kind::Value,
                "/Channel/OrdererAddresses",
                "/Channel/Orderer/Admins"
            ),
            "/Channel/Orderer/Admins"
        );
    }
}
