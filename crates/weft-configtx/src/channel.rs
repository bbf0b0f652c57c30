//! A channel's configuration, parsed and checked once from a config block or a `common.Config`.
//!
//! [`ChannelConfig::from_block`] takes the config envelope out of a config block (genesis or
//! later), [`ChannelConfig::from_config`] reads the tree. Parsing does all the work that must
//! not happen per transaction: every value is decoded and validated, each org's MSP is built
//! ([`weft_msp::Msp`], NodeOUs, admins, TLS CAs), and every policy is compiled. A problem is
//! reported with its config path (`/Channel/Application/Org1MSP/MSP: ...`).
//!
//! What is accepted is what Fabric 2.x application channels contain: groups `Orderer` and
//! `Application` under `Channel`, one group per org below each, and the values Fabric defines
//! at each level. Unknown groups or values are refused (as Fabric's channelconfig does), as
//! are MSP features weft does not enforce (Idemix, CRLs, OU restrictions) and capabilities it
//! does not know: silently ignoring any of them would accept what Fabric refuses.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use weft_msp::policy::{valid_signers_at, PolicyError, SignedData};
use weft_msp::{
    CertTime, Msp, MspManager, MspParts, NodeOuParts, RoleOuIdentifier, ValidatedIdentity,
};
use weft_proto::common::{
    self, Block, BlockDataHashingStructure, Config, ConfigEnvelope, ConfigGroup, HashingAlgorithm,
    HeaderType, OrdererAddresses,
};
use weft_proto::etcdraft;
use weft_proto::msp::{FabricMspConfig, FabricOuIdentifier, MspConfig};
use weft_proto::orderer::{BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType};
use weft_proto::protos::{AcLs, AnchorPeers};

use crate::error::{ConfigError, PolicyCheckError};
use crate::keys;
use crate::policies::{PolicyInfo, PolicyTree};
use crate::units::parse_go_duration;

/// Block cutting settings of the orderer (`BatchSize` and `BatchTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Cut a block once it holds this many transactions.
    pub max_message_count: u32,
    /// A transaction larger than this is refused; no block's data exceeds it.
    pub absolute_max_bytes: u32,
    /// Cut a block once it reaches this size.
    pub preferred_max_bytes: u32,
    /// Cut a non-empty block this long after its first transaction arrived.
    pub timeout: Duration,
}

impl Default for BatchConfig {
    /// configtxgen's defaults: 500 messages, 10 MB, 2 MB, 2 s.
    fn default() -> Self {
        BatchConfig {
            max_message_count: 500,
            absolute_max_bytes: 10 * 1024 * 1024,
            preferred_max_bytes: 2 * 1024 * 1024,
            timeout: Duration::from_secs(2),
        }
    }
}

/// The capabilities a channel requires, per level (e.g. `V2_0`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub channel: BTreeSet<String>,
    pub orderer: BTreeSet<String>,
    pub application: BTreeSet<String>,
}

/// One organization of the channel: its group name, MSP and endpoints.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    /// The org group's name in the config (configtx.yaml's `Name`).
    pub name: String,
    /// The MSP ID (`FabricMSPConfig.name`, configtx.yaml's `ID`).
    pub msp_id: String,
    /// The verifying MSP built from the config's MSP definition.
    pub msp: Msp,
    /// The MSP definition as the config carries it (PEM certificates).
    pub msp_config: FabricMspConfig,
    /// Anchor peers (application orgs): host and port.
    pub anchor_peers: Vec<(String, u16)>,
    /// Orderer endpoints (orderer orgs' `Endpoints`): `host:port`.
    pub orderer_endpoints: Vec<String>,
}

/// The orderer section of the config.
#[derive(Debug, Clone)]
pub struct OrdererConfig {
    /// `ConsensusType.type`: `etcdraft`, `BFT`, `solo`, ...
    pub consensus_type: String,
    /// `ConsensusType.metadata` as carried.
    pub consensus_metadata: Bytes,
    /// `ConsensusType.state`: true when in maintenance mode.
    pub maintenance: bool,
    /// The Raft consenters and options when the type is `etcdraft`.
    pub etcdraft: Option<etcdraft::ConfigMetadata>,
    /// The BFT consenter mapping (`Orderers` value), if present.
    pub consenters: Vec<common::Consenter>,
    pub batch: BatchConfig,
    /// `ChannelRestrictions.max_count` (0: unlimited).
    pub max_channels: u64,
}

/// A parsed, validated channel configuration with its policies compiled.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    channel_id: String,
    config: Config,
    application_orgs: BTreeMap<String, OrgConfig>,
    orderer_orgs: BTreeMap<String, OrgConfig>,
    msp_manager: MspManager,
    orderer: OrdererConfig,
    orderer_addresses: Vec<String>,
    capabilities: Capabilities,
    acls: BTreeMap<String, String>,
    policies: PolicyTree,
}

/// The channel ID and `common.Config` of a config block: exactly one envelope, whose payload
/// has a CONFIG channel header and holds a `ConfigEnvelope`. The block's data hash is checked.
pub fn config_from_block(block: &Block) -> Result<(String, Config), ConfigError> {
    let number = block.header.as_ref().map(|h| h.number).unwrap_or_default();
    let what = format!("block {number}");
    let not_config = |detail: String| ConfigError::NotConfig {
        what: what.clone(),
        detail,
    };
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| not_config("the block has no header".into()))?;
    let data = block
        .data
        .as_ref()
        .ok_or_else(|| not_config("the block has no data".into()))?;
    let computed = weft_ledger::block::data_hash(data);
    if header.data_hash.as_ref() != computed.as_slice() {
        return Err(not_config(format!(
            "the header's data hash {} does not match the data ({}); the block was altered or is corrupt",
            weft_crypto::hex(&header.data_hash),
            weft_crypto::hex(&computed)
        )));
    }
    if data.data.len() != 1 {
        return Err(not_config(format!(
            "a config block holds exactly one envelope, this one holds {}",
            data.data.len()
        )));
    }
    let envelope = common::Envelope::decode(data.data[0].clone())
        .map_err(|e| not_config(format!("the envelope does not decode: {e}")))?;
    let payload = common::Payload::decode(envelope.payload.clone())
        .map_err(|e| not_config(format!("the envelope's payload does not decode: {e}")))?;
    let ph = payload
        .header
        .as_ref()
        .ok_or_else(|| not_config("the payload has no header".into()))?;
    let ch = common::ChannelHeader::decode(ph.channel_header.clone())
        .map_err(|e| not_config(format!("the channel header does not decode: {e}")))?;
    if ch.r#type != HeaderType::Config as i32 {
        return Err(not_config(format!(
            "the envelope's header type is {} ({}), not CONFIG (1): not a config block",
            ch.r#type,
            HeaderType::try_from(ch.r#type)
                .map(|t| t.as_str_name())
                .unwrap_or("unknown")
        )));
    }
    if ch.channel_id.is_empty() {
        return Err(not_config("the channel header has no channel ID".into()));
    }
    let ce = ConfigEnvelope::decode(payload.data.clone())
        .map_err(|e| not_config(format!("the payload is not a ConfigEnvelope: {e}")))?;
    let config = ce
        .config
        .ok_or_else(|| not_config("the config envelope holds no config".into()))?;
    Ok((ch.channel_id, config))
}

impl ChannelConfig {
    /// Parse the config carried by a config block (see [`config_from_block`]).
    pub fn from_block(block: &Block) -> Result<ChannelConfig, ConfigError> {
        let (channel_id, config) = config_from_block(block)?;
        ChannelConfig::from_config(&channel_id, &config)
    }

    /// Parse and validate `config` as the configuration of `channel_id`.
    pub fn from_config(channel_id: &str, config: &Config) -> Result<ChannelConfig, ConfigError> {
        let root = format!("/{}", keys::CHANNEL);
        let channel = config
            .channel_group
            .as_ref()
            .ok_or_else(|| ConfigError::invalid(&root, "the config has no channel group"))?;

        check_keys(
            &root,
            "group",
            channel.groups.keys(),
            &[keys::ORDERER, keys::APPLICATION],
            "an application channel has the groups Orderer and Application (system channels with Consortiums are not supported)",
        )?;
        check_keys(
            &root,
            "value",
            channel.values.keys(),
            &[
                keys::HASHING_ALGORITHM,
                keys::BLOCK_DATA_HASHING_STRUCTURE,
                keys::ORDERER_ADDRESSES,
                keys::CONSORTIUM,
                keys::CAPABILITIES,
            ],
            "remove it or use a config made by configtxgen",
        )?;

        let hashing: HashingAlgorithm = required_value(channel, &root, keys::HASHING_ALGORITHM)?;
        if hashing.name != keys::SHA256 {
            return Err(ConfigError::invalid(
                format!("{root}/{}", keys::HASHING_ALGORITHM),
                format!(
                    "'{}' is not supported; Fabric channels use SHA256",
                    hashing.name
                ),
            ));
        }
        let structure: BlockDataHashingStructure =
            required_value(channel, &root, keys::BLOCK_DATA_HASHING_STRUCTURE)?;
        if structure.width != keys::DATA_HASHING_WIDTH {
            return Err(ConfigError::invalid(
                format!("{root}/{}", keys::BLOCK_DATA_HASHING_STRUCTURE),
                format!(
                    "width {} is not supported; Fabric channels use {}",
                    structure.width,
                    keys::DATA_HASHING_WIDTH
                ),
            ));
        }
        let orderer_addresses =
            optional_value::<OrdererAddresses>(channel, &root, keys::ORDERER_ADDRESSES)?
                .map(|a| a.addresses)
                .unwrap_or_default();
        let channel_caps = capabilities(channel, &root, keys::CHANNEL_CAPABILITIES)?;

        // Orderer.
        let opath = format!("{root}/{}", keys::ORDERER);
        let og = channel.groups.get(keys::ORDERER).ok_or_else(|| {
            ConfigError::invalid(&opath, "missing: a channel config needs an Orderer group")
        })?;
        let (orderer, orderer_caps) = parse_orderer(og, &opath)?;
        let mut orderer_orgs = BTreeMap::new();
        for (name, org) in &og.groups {
            let path = format!("{opath}/{name}");
            check_keys(
                &path,
                "value",
                org.values.keys(),
                &[keys::MSP, keys::ENDPOINTS],
                "an orderer org has the values MSP and Endpoints",
            )?;
            let mut oc = parse_org(name, org, &path)?;
            oc.orderer_endpoints = optional_value::<OrdererAddresses>(org, &path, keys::ENDPOINTS)?
                .map(|a| a.addresses)
                .unwrap_or_default();
            orderer_orgs.insert(name.clone(), oc);
        }

        // Application.
        let apath = format!("{root}/{}", keys::APPLICATION);
        let ag = channel.groups.get(keys::APPLICATION).ok_or_else(|| {
            ConfigError::invalid(
                &apath,
                "missing: an application channel needs an Application group",
            )
        })?;
        check_keys(
            &apath,
            "value",
            ag.values.keys(),
            &[keys::ACLS, keys::CAPABILITIES],
            "the Application group has the values ACLs and Capabilities",
        )?;
        let application_caps = capabilities(ag, &apath, keys::APPLICATION_CAPABILITIES)?;
        // As Fabric reads ACLs: a policy name that is not a path is one of the Application
        // group's policies (`Readers` is `/Channel/Application/Readers`, not
        // `/Channel/Readers`, which orderer orgs satisfy too), and an empty one leaves the
        // resource to its default.
        let acls = optional_value::<AcLs>(ag, &apath, keys::ACLS)?
            .map(|a| {
                a.acls
                    .into_iter()
                    .filter(|(_, v)| !v.policy_ref.is_empty())
                    .map(|(k, v)| {
                        let path = if v.policy_ref.starts_with('/') {
                            v.policy_ref
                        } else {
                            format!("{apath}/{}", v.policy_ref)
                        };
                        (k, path)
                    })
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        let mut application_orgs = BTreeMap::new();
        for (name, org) in &ag.groups {
            let path = format!("{apath}/{name}");
            check_keys(
                &path,
                "value",
                org.values.keys(),
                &[keys::MSP, keys::ANCHOR_PEERS],
                "an application org has the values MSP and AnchorPeers",
            )?;
            let mut oc = parse_org(name, org, &path)?;
            if let Some(ap) = optional_value::<AnchorPeers>(org, &path, keys::ANCHOR_PEERS)? {
                for (i, p) in ap.anchor_peers.into_iter().enumerate() {
                    let port = u16::try_from(p.port).ok().filter(|p| *p != 0);
                    match port {
                        Some(port) if !p.host.is_empty() => oc.anchor_peers.push((p.host, port)),
                        _ => {
                            return Err(ConfigError::invalid(
                                format!("{path}/{}", keys::ANCHOR_PEERS),
                                format!(
                                "anchor peer {i} '{}:{}' needs a host and a port from 1 to 65535",
                                p.host, p.port
                            ),
                            ))
                        }
                    }
                }
            }
            application_orgs.insert(name.clone(), oc);
        }

        // MSPs: one per MSP ID; an org may appear in both sections with the same definition.
        let mut msp_defs: BTreeMap<String, (String, &FabricMspConfig)> = BTreeMap::new();
        let mut manager = MspManager::default();
        for (section, orgs) in [(&opath, &orderer_orgs), (&apath, &application_orgs)] {
            for (name, org) in orgs.iter() {
                let path = format!("{section}/{name}/{}", keys::MSP);
                if let Some((other, def)) = msp_defs.get(&org.msp_id) {
                    if *def != &org.msp_config {
                        return Err(ConfigError::invalid(
                            path,
                            format!("MSP ID '{}' is also defined at {other} with different material; an MSP ID names one organization", org.msp_id),
                        ));
                    }
                    continue;
                }
                msp_defs.insert(org.msp_id.clone(), (path, &org.msp_config));
                manager.insert(org.msp.clone());
            }
        }

        let policies = PolicyTree::build(&root, channel)?;
        for required in [
            format!("{root}/{}", keys::READERS),
            format!("{root}/{}", keys::WRITERS),
            format!("{root}/{}", keys::ADMINS),
            format!("{opath}/{}", keys::BLOCK_VALIDATION),
        ] {
            if !policies.contains(&required) {
                return Err(ConfigError::invalid(
                    &required,
                    "missing: every channel config defines this policy (peers check blocks and requests against it)",
                ));
            }
        }

        let config = ChannelConfig {
            channel_id: channel_id.to_owned(),
            config: config.clone(),
            application_orgs,
            orderer_orgs,
            msp_manager: manager,
            orderer,
            orderer_addresses,
            capabilities: Capabilities {
                channel: channel_caps,
                orderer: orderer_caps,
                application: application_caps,
            },
            acls,
            policies,
        };
        tracing::debug!(
            channel = %config.channel_id,
            sequence = config.sequence(),
            application_orgs = config.application_orgs.len(),
            orderer_orgs = config.orderer_orgs.len(),
            "channel config parsed"
        );
        Ok(config)
    }

    /// The channel ID.
    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    /// The config sequence (0 for a genesis config; +1 per config update).
    pub fn sequence(&self) -> u64 {
        self.config.sequence
    }

    /// The config as carried (for config updates and display).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Application orgs by org group name.
    pub fn application_orgs(&self) -> &BTreeMap<String, OrgConfig> {
        &self.application_orgs
    }

    /// Orderer orgs by org group name.
    pub fn orderer_orgs(&self) -> &BTreeMap<String, OrgConfig> {
        &self.orderer_orgs
    }

    /// The org (application or orderer) whose MSP ID is `msp_id`.
    pub fn org_by_msp_id(&self, msp_id: &str) -> Option<&OrgConfig> {
        self.application_orgs
            .values()
            .chain(self.orderer_orgs.values())
            .find(|o| o.msp_id == msp_id)
    }

    /// The MSPs of every org of the channel, by MSP ID.
    pub fn msp_manager(&self) -> &MspManager {
        &self.msp_manager
    }

    /// TLS root and intermediate CA certificates (DER) of the application orgs: the client
    /// roots a peer trusts for mutual TLS.
    pub fn application_tls_roots(&self) -> Vec<Vec<u8>> {
        tls_roots(self.application_orgs.values())
    }

    /// TLS root and intermediate CA certificates (DER) of the orderer orgs.
    pub fn orderer_tls_roots(&self) -> Vec<Vec<u8>> {
        tls_roots(self.orderer_orgs.values())
    }

    /// TLS root and intermediate CA certificates (DER) of every org, without duplicates.
    pub fn all_tls_roots(&self) -> Vec<Vec<u8>> {
        tls_roots(
            self.application_orgs
                .values()
                .chain(self.orderer_orgs.values()),
        )
    }

    /// The orderer section.
    pub fn orderer(&self) -> &OrdererConfig {
        &self.orderer
    }

    /// Block cutting settings.
    pub fn batch(&self) -> BatchConfig {
        self.orderer.batch
    }

    /// `ConsensusType.type`.
    pub fn consensus_type(&self) -> &str {
        &self.orderer.consensus_type
    }

    /// Orderer endpoints as `(msp_id, "host:port")`: each orderer org's `Endpoints`; if no org
    /// has any, the channel-level `OrdererAddresses`, paired with the MSP ID of the only orderer
    /// org, or with `""` when there are several (then any orderer org's TLS CA may serve them:
    /// use [`ChannelConfig::orderer_tls_roots`]).
    pub fn orderer_endpoints(&self) -> Vec<(String, String)> {
        let per_org: Vec<(String, String)> = self
            .orderer_orgs
            .values()
            .flat_map(|o| {
                o.orderer_endpoints
                    .iter()
                    .map(move |e| (o.msp_id.clone(), e.clone()))
            })
            .collect();
        if !per_org.is_empty() {
            return per_org;
        }
        let msp_id = match self.orderer_orgs.values().collect::<Vec<_>>().as_slice() {
            [only] => only.msp_id.clone(),
            _ => String::new(),
        };
        self.orderer_addresses
            .iter()
            .map(|a| (msp_id.clone(), a.clone()))
            .collect()
    }

    /// The channel-level `OrdererAddresses` (deprecated in Fabric 2.x in favour of per-org
    /// endpoints).
    pub fn orderer_addresses(&self) -> &[String] {
        &self.orderer_addresses
    }

    /// Required capabilities per level.
    pub fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    /// ACLs: resource (e.g. `peer/Propose`) -> policy path (e.g. `/Channel/Application/Writers`).
    pub fn acls(&self) -> &BTreeMap<String, String> {
        &self.acls
    }

    /// Whether `next` may follow this config (Fabric's `ValidateNew`): an org keeps its MSP
    /// ID, and the consensus type does not change (weft has no consensus-type migration).
    /// Without the first check an org's own admins, who alone satisfy its group's
    /// mod_policy, could rename their MSP to an ID that policies still name (a departed or
    /// not yet joined org) and gain that org's rights.
    pub fn check_successor(&self, next: &ChannelConfig) -> Result<(), String> {
        if self.consensus_type() != next.consensus_type() {
            return Err(format!(
                "the update changes the consensus type from {:?} to {:?}; this orderer cannot \
                 migrate a channel between consensus types",
                self.consensus_type(),
                next.consensus_type()
            ));
        }
        let same_ids =
            |kind: &str, now: &BTreeMap<String, OrgConfig>, then: &BTreeMap<String, OrgConfig>| {
                for (name, org) in now {
                    if let Some(n) = then.get(name) {
                        if n.msp_id != org.msp_id {
                            return Err(format!(
                            "{kind} org {name} may not change its MSP ID from {} to {}: remove \
                             the org and add it again under the new ID instead",
                            org.msp_id, n.msp_id
                        ));
                        }
                    }
                }
                Ok(())
            };
        same_ids("orderer", &self.orderer_orgs, &next.orderer_orgs)?;
        same_ids(
            "application",
            &self.application_orgs,
            &next.application_orgs,
        )
    }

    /// The policy path guarding `resource` per the channel's ACLs, or `default` when the
    /// channel has no ACL for it.
    pub fn acl_policy<'a>(&'a self, resource: &str, default: &'a str) -> &'a str {
        self.acls
            .get(resource)
            .map(String::as_str)
            .unwrap_or(default)
    }

    /// Whether the channel has a policy at `path` (see [`ChannelConfig::evaluate_policy`] for
    /// paths).
    pub fn has_policy(&self, path: &str) -> bool {
        self.policies.contains(&absolute(path))
    }

    /// Every policy with its rule in text form, in path order.
    pub fn policies(&self) -> Vec<PolicyInfo> {
        self.policies.info()
    }

    /// Check a signature set against the policy at `path`: absolute
    /// (`/Channel/Application/Writers`) or relative to `/Channel` (`Application/Writers`).
    /// Signatures are verified and identities validated with the channel's MSPs first; a
    /// failure explains which rule failed and lists the signatures that did not count.
    pub fn evaluate_policy(
        &self,
        path: &str,
        signed: &[SignedData<'_>],
    ) -> Result<(), PolicyCheckError> {
        self.evaluate_policy_at(path, signed, CertTime::Now)
    }

    /// [`ChannelConfig::evaluate_policy`] with the signers' certificates checked at `when`:
    /// [`CertTime::Issuance`] for signatures read from blocks (orderer signatures, config
    /// updates), which every node must judge alike at any time.
    pub fn evaluate_policy_at(
        &self,
        path: &str,
        signed: &[SignedData<'_>],
        when: CertTime,
    ) -> Result<(), PolicyCheckError> {
        let path = self.policy_path(path)?;
        let signers = valid_signers_at(&self.msp_manager, signed, when);
        self.policies
            .evaluate(&path, &signers.identities)
            .map_err(|e| {
                let e = if signers.rejected.is_empty() {
                    e
                } else {
                    let rejected: Vec<String> = signers
                        .rejected
                        .iter()
                        .map(|r| format!("signature {}: {}", r.index, r.reason))
                        .collect();
                    match e {
                        PolicyError::NotSatisfied { explanation } => PolicyError::NotSatisfied {
                            explanation: format!(
                                "{explanation}; signatures that did not count: {}",
                                rejected.join("; ")
                            ),
                        },
                        other => other,
                    }
                };
                PolicyCheckError::NotSatisfied {
                    channel: self.channel_id.clone(),
                    path: path.clone(),
                    source: e,
                }
            })
    }

    /// Check identities that the caller already validated (with this channel's MSPs) and whose
    /// signatures it already verified against the policy at `path`.
    pub fn evaluate_policy_identities(
        &self,
        path: &str,
        identities: &[ValidatedIdentity],
    ) -> Result<(), PolicyCheckError> {
        let path = self.policy_path(path)?;
        let result = self.policies.evaluate(&path, identities);
        self.not_satisfied(path, result)
    }

    /// Whether `identities` satisfy the policy at `path`: the quick check that
    /// [`ChannelConfig::evaluate_policy_identities`] makes before it explains a failure.
    /// `false` for a policy that does not exist.
    pub fn policy_satisfied(&self, path: &str, identities: &[ValidatedIdentity]) -> bool {
        self.policy_path(path)
            .map(|p| self.policies.is_satisfied(&p, identities))
            .unwrap_or(false)
    }

    /// [`ChannelConfig::evaluate_policy_identities`] without the quick check: the explaining
    /// evaluator alone. For tests that hold the two to the same verdicts.
    #[doc(hidden)]
    pub fn evaluate_policy_explained(
        &self,
        path: &str,
        identities: &[ValidatedIdentity],
    ) -> Result<(), PolicyCheckError> {
        let path = self.policy_path(path)?;
        let result = self.policies.evaluate_explained(&path, identities);
        self.not_satisfied(path, result)
    }

    fn not_satisfied(
        &self,
        path: String,
        result: Result<(), PolicyError>,
    ) -> Result<(), PolicyCheckError> {
        result.map_err(|source| PolicyCheckError::NotSatisfied {
            channel: self.channel_id.clone(),
            path,
            source,
        })
    }

    fn policy_path(&self, path: &str) -> Result<String, PolicyCheckError> {
        let abs = absolute(path);
        if self.policies.contains(&abs) {
            Ok(abs)
        } else {
            Err(PolicyCheckError::NotFound {
                channel: self.channel_id.clone(),
                path: abs,
                known: self.policies.paths(),
            })
        }
    }
}

/// `/Channel/...` as is; a relative path is relative to `/Channel`.
fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{}/{path}", keys::CHANNEL)
    }
}

fn tls_roots<'a>(orgs: impl Iterator<Item = &'a OrgConfig>) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for org in orgs {
        for der in org
            .msp
            .tls_root_certs()
            .iter()
            .chain(org.msp.tls_intermediate_certs())
        {
            if !out.contains(der) {
                out.push(der.clone());
            }
        }
    }
    out
}

fn check_keys<'a>(
    path: &str,
    kind: &str,
    found: impl Iterator<Item = &'a String>,
    allowed: &[&str],
    hint: &str,
) -> Result<(), ConfigError> {
    for key in found {
        if !allowed.contains(&key.as_str()) {
            return Err(ConfigError::invalid(
                format!("{path}/{key}"),
                format!(
                    "unknown {kind} '{key}' (expected one of: {}); {hint}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn optional_value<T: Message + Default>(
    group: &ConfigGroup,
    path: &str,
    key: &str,
) -> Result<Option<T>, ConfigError> {
    let Some(v) = group.values.get(key) else {
        return Ok(None);
    };
    T::decode(v.value.clone()).map(Some).map_err(|e| {
        ConfigError::invalid(
            format!("{path}/{key}"),
            format!(
                "the value does not decode as {}: {e}",
                std::any::type_name::<T>()
                    .rsplit("::")
                    .next()
                    .unwrap_or("its type")
            ),
        )
    })
}

fn required_value<T: Message + Default>(
    group: &ConfigGroup,
    path: &str,
    key: &str,
) -> Result<T, ConfigError> {
    optional_value(group, path, key)?.ok_or_else(|| {
        ConfigError::invalid(
            format!("{path}/{key}"),
            "missing: configtxgen always writes this value",
        )
    })
}

fn capabilities(
    group: &ConfigGroup,
    path: &str,
    known: &[&str],
) -> Result<BTreeSet<String>, ConfigError> {
    let Some(caps) = optional_value::<common::Capabilities>(group, path, keys::CAPABILITIES)?
    else {
        return Ok(BTreeSet::new());
    };
    for name in caps.capabilities.keys() {
        if !known.contains(&name.as_str()) {
            return Err(ConfigError::invalid(
                format!("{path}/{}", keys::CAPABILITIES),
                format!(
                    "the channel requires capability '{name}', which weft does not support (known here: {}); a node that ignored it could validate differently from the others",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(caps.capabilities.into_keys().collect())
}

fn parse_orderer(
    og: &ConfigGroup,
    opath: &str,
) -> Result<(OrdererConfig, BTreeSet<String>), ConfigError> {
    check_keys(
        opath,
        "value",
        og.values.keys(),
        &[
            keys::CONSENSUS_TYPE,
            keys::BATCH_SIZE,
            keys::BATCH_TIMEOUT,
            keys::CHANNEL_RESTRICTIONS,
            keys::CAPABILITIES,
            keys::KAFKA_BROKERS,
            keys::ORDERERS,
        ],
        "remove it or use a config made by configtxgen",
    )?;
    let ct: ConsensusType = required_value(og, opath, keys::CONSENSUS_TYPE)?;
    let ctpath = format!("{opath}/{}", keys::CONSENSUS_TYPE);
    if ct.r#type.is_empty() {
        return Err(ConfigError::invalid(&ctpath, "the consensus type is empty"));
    }
    let etcdraft = if ct.r#type == "etcdraft" {
        Some(
            etcdraft::ConfigMetadata::decode(ct.metadata.clone()).map_err(|e| {
                ConfigError::invalid(
                    &ctpath,
                    format!("the etcdraft metadata does not decode: {e}"),
                )
            })?,
        )
    } else {
        None
    };
    let bs: BatchSize = required_value(og, opath, keys::BATCH_SIZE)?;
    let bspath = format!("{opath}/{}", keys::BATCH_SIZE);
    if bs.max_message_count == 0 {
        return Err(ConfigError::invalid(
            &bspath,
            "MaxMessageCount is 0; it must be at least 1",
        ));
    }
    if bs.absolute_max_bytes == 0 {
        return Err(ConfigError::invalid(
            &bspath,
            "AbsoluteMaxBytes is 0; it must be positive",
        ));
    }
    if bs.preferred_max_bytes > bs.absolute_max_bytes {
        return Err(ConfigError::invalid(
            &bspath,
            format!(
                "PreferredMaxBytes ({}) is larger than AbsoluteMaxBytes ({}); it must not be",
                bs.preferred_max_bytes, bs.absolute_max_bytes
            ),
        ));
    }
    let bt: BatchTimeout = required_value(og, opath, keys::BATCH_TIMEOUT)?;
    let timeout = parse_go_duration(&bt.timeout)
        .map_err(|e| ConfigError::invalid(format!("{opath}/{}", keys::BATCH_TIMEOUT), e))?;
    if timeout.is_zero() {
        return Err(ConfigError::invalid(
            format!("{opath}/{}", keys::BATCH_TIMEOUT),
            "the batch timeout is 0; it must be positive",
        ));
    }
    let max_channels =
        optional_value::<ChannelRestrictions>(og, opath, keys::CHANNEL_RESTRICTIONS)?
            .map(|c| c.max_count)
            .unwrap_or_default();
    let consenters = optional_value::<common::Orderers>(og, opath, keys::ORDERERS)?
        .map(|o| o.consenter_mapping)
        .unwrap_or_default();
    let caps = capabilities(og, opath, keys::ORDERER_CAPABILITIES)?;
    Ok((
        OrdererConfig {
            consensus_type: ct.r#type,
            consensus_metadata: ct.metadata,
            maintenance: ct.state == weft_proto::orderer::consensus_type::State::Maintenance as i32,
            etcdraft,
            consenters,
            batch: BatchConfig {
                max_message_count: bs.max_message_count,
                absolute_max_bytes: bs.absolute_max_bytes,
                preferred_max_bytes: bs.preferred_max_bytes,
                timeout,
            },
            max_channels,
        },
        caps,
    ))
}

/// An org group: no sub-groups, an MSP value that builds.
fn parse_org(name: &str, org: &ConfigGroup, path: &str) -> Result<OrgConfig, ConfigError> {
    if let Some(sub) = org.groups.keys().next() {
        return Err(ConfigError::invalid(
            format!("{path}/{sub}"),
            "an organization group has no sub-groups",
        ));
    }
    let mpath = format!("{path}/{}", keys::MSP);
    let mc: MspConfig = required_value(org, path, keys::MSP)?;
    let (msp_config, msp) = msp_from_config(&mc, &mpath)?;
    Ok(OrgConfig {
        name: name.to_owned(),
        msp_id: msp_config.name.clone(),
        msp,
        msp_config,
        anchor_peers: Vec::new(),
        orderer_endpoints: Vec::new(),
    })
}

/// Decode and build an org's MSP from its `MSPConfig` value at `path`.
pub fn msp_from_config(mc: &MspConfig, path: &str) -> Result<(FabricMspConfig, Msp), ConfigError> {
    if mc.r#type != 0 {
        return Err(ConfigError::invalid(
            path,
            format!(
                "MSP type {} ({}) is not supported; weft supports X.509 MSPs (type 0, FABRIC)",
                mc.r#type,
                if mc.r#type == 1 { "IDEMIX" } else { "unknown" }
            ),
        ));
    }
    let fc = FabricMspConfig::decode(mc.config.clone()).map_err(|e| {
        ConfigError::invalid(
            path,
            format!("the MSP config does not decode as FabricMSPConfig: {e}"),
        )
    })?;
    if fc.name.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "the MSP ID (FabricMSPConfig.name) is empty",
        ));
    }
    if !fc.revocation_list.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "the MSP carries certificate revocation lists, which weft does not enforce yet; refusing rather than accepting revoked identities",
        ));
    }
    if !fc.organizational_unit_identifiers.is_empty() {
        return Err(ConfigError::invalid(
            path,
            "the MSP restricts membership to OrganizationalUnitIdentifiers, which weft does not enforce yet; refusing rather than accepting identities Fabric would refuse",
        ));
    }
    if let Some(cc) = &fc.crypto_config {
        if !cc.signature_hash_family.is_empty() && cc.signature_hash_family != "SHA2" {
            return Err(ConfigError::invalid(
                path,
                format!(
                    "signature hash family '{}' is not supported; use SHA2",
                    cc.signature_hash_family
                ),
            ));
        }
    }
    let certs = |v: &[Bytes]| v.iter().map(|b| b.to_vec()).collect::<Vec<_>>();
    let ou = |o: &Option<FabricOuIdentifier>| {
        o.as_ref().map(|o| RoleOuIdentifier {
            organizational_unit_identifier: o.organizational_unit_identifier.clone(),
            certificate_pem: (!o.certificate.is_empty()).then(|| o.certificate.to_vec()),
        })
    };
    let parts = MspParts {
        root_certs: certs(&fc.root_certs),
        intermediate_certs: certs(&fc.intermediate_certs),
        admins: certs(&fc.admins),
        tls_root_certs: certs(&fc.tls_root_certs),
        tls_intermediate_certs: certs(&fc.tls_intermediate_certs),
        node_ous: fc
            .fabric_node_ous
            .as_ref()
            .filter(|n| n.enable)
            .map(|n| NodeOuParts {
                client: ou(&n.client_ou_identifier),
                peer: ou(&n.peer_ou_identifier),
                admin: ou(&n.admin_ou_identifier),
                orderer: ou(&n.orderer_ou_identifier),
            }),
    };
    let msp = Msp::from_parts(&fc.name, &parts)
        .map_err(|e| ConfigError::invalid(path, format!("MSP '{}': {e}", fc.name)))?;
    Ok((fc, msp))
}
