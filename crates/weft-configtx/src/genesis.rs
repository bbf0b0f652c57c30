//! Profiles and genesis blocks: the config tree laid out exactly as Fabric 2.x's configtxgen
//! lays out an application channel's genesis (no system channel).
//!
//! ```text
//! Channel            values HashingAlgorithm, BlockDataHashingStructure, [OrdererAddresses],
//!                           [Capabilities]; policies Readers, Writers, Admins
//!   Orderer          values BatchSize, BatchTimeout, ChannelRestrictions, [Capabilities],
//!                           ConsensusType; policies Readers, Writers, Admins, BlockValidation
//!     <org>          values MSP, [Endpoints]; the org's policies
//!   Application      values [ACLs], [Capabilities]; policies Readers, Writers, Admins,
//!                           Endorsement, LifecycleEndorsement
//!     <org>          values MSP, [AnchorPeers]; the org's policies
//! ```
//!
//! Every group, value and policy has version 0 and mod_policy `Admins`, except
//! `OrdererAddresses`, whose mod_policy is `/Channel/Orderer/Admins`. The genesis block is block
//! 0 with an empty previous hash and one envelope (unsigned, as configtxgen writes it) whose
//! payload has a CONFIG channel header (version 1, epoch 0, the time in whole seconds, tx ID
//! from a random nonce) and a `ConfigEnvelope`; metadata LAST_CONFIG and SIGNATURES both record
//! config index 0.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use weft_msp::policy::{parse, parse_implicit_meta};
use weft_proto::common::{
    self, Block, BlockDataHashingStructure, BlockMetadataIndex, ChannelHeader, Config,
    ConfigEnvelope, ConfigGroup, ConfigPolicy, ConfigValue, Envelope, HashingAlgorithm, HeaderType,
    LastConfig, Metadata, OrdererAddresses, Payload, Policy, SignatureHeader,
};
use weft_proto::etcdraft;
use weft_proto::orderer::{BatchSize, BatchTimeout, ChannelRestrictions, ConsensusType};
use weft_proto::protos::{AcLs, AnchorPeer, AnchorPeers, ApiResource};

use crate::channel::BatchConfig;
use crate::error::ConfigError;
use crate::keys;
use crate::mspdir::{fabric_msp_config, msp_value};
use crate::units::format_go_duration;

/// A policy as configtx.yaml writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySpec {
    /// `Type: Signature`, `Rule:` in the DSL, e.g. `OR('Org1MSP.admin')`.
    Signature(String),
    /// `Type: ImplicitMeta`, `Rule:` e.g. `MAJORITY Admins`.
    ImplicitMeta(String),
}

impl PolicySpec {
    pub fn signature(rule: impl Into<String>) -> PolicySpec {
        PolicySpec::Signature(rule.into())
    }
    pub fn implicit_meta(rule: impl Into<String>) -> PolicySpec {
        PolicySpec::ImplicitMeta(rule.into())
    }
}

/// Policies by name.
pub type Policies = BTreeMap<String, PolicySpec>;

/// An organization of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgProfile {
    /// The org group's name in the config (configtx.yaml `Name`).
    pub name: String,
    /// The MSP ID (configtx.yaml `ID`).
    pub msp_id: String,
    /// The org's MSP directory (cacerts/, tlscacerts/, config.yaml, ...).
    pub msp_dir: PathBuf,
    pub policies: Policies,
    /// Anchor peers (application orgs).
    pub anchor_peers: Vec<(String, u16)>,
    /// `host:port` of the org's orderers (orderer orgs).
    pub orderer_endpoints: Vec<String>,
}

impl OrgProfile {
    /// An application org with the policies of Fabric's test network: Readers
    /// `OR(admin, peer, client)`, Writers `OR(admin, client)`, Admins `OR(admin)`, Endorsement
    /// `OR(peer)`.
    pub fn application(name: &str, msp_id: &str, msp_dir: impl Into<PathBuf>) -> OrgProfile {
        let p = |roles: &[&str]| {
            let principals: Vec<String> = roles.iter().map(|r| format!("'{msp_id}.{r}'")).collect();
            PolicySpec::Signature(format!("OR({})", principals.join(", ")))
        };
        OrgProfile {
            name: name.to_owned(),
            msp_id: msp_id.to_owned(),
            msp_dir: msp_dir.into(),
            policies: BTreeMap::from([
                (keys::READERS.to_owned(), p(&["admin", "peer", "client"])),
                (keys::WRITERS.to_owned(), p(&["admin", "client"])),
                (keys::ADMINS.to_owned(), p(&["admin"])),
                (keys::ENDORSEMENT.to_owned(), p(&["peer"])),
            ]),
            anchor_peers: Vec::new(),
            orderer_endpoints: Vec::new(),
        }
    }

    /// An orderer org with the policies of Fabric's test network: Readers and Writers
    /// `OR(member)`, Admins `OR(admin)`.
    pub fn orderer(name: &str, msp_id: &str, msp_dir: impl Into<PathBuf>) -> OrgProfile {
        OrgProfile {
            name: name.to_owned(),
            msp_id: msp_id.to_owned(),
            msp_dir: msp_dir.into(),
            policies: BTreeMap::from([
                (
                    keys::READERS.to_owned(),
                    PolicySpec::signature(format!("OR('{msp_id}.member')")),
                ),
                (
                    keys::WRITERS.to_owned(),
                    PolicySpec::signature(format!("OR('{msp_id}.member')")),
                ),
                (
                    keys::ADMINS.to_owned(),
                    PolicySpec::signature(format!("OR('{msp_id}.admin')")),
                ),
            ]),
            anchor_peers: Vec::new(),
            orderer_endpoints: Vec::new(),
        }
    }
}

/// The orderer section of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdererProfile {
    /// `solo`, `etcdraft`, `BFT`, ...
    pub orderer_type: String,
    /// Channel-level `OrdererAddresses` (deprecated; prefer per-org endpoints).
    pub addresses: Vec<String>,
    pub batch: BatchConfig,
    /// `ChannelRestrictions.max_count` (0: unlimited).
    pub max_channels: u64,
    /// `ConsensusType.metadata` for `etcdraft` (consenters with PEM certificates, options).
    pub etcdraft: Option<etcdraft::ConfigMetadata>,
    pub organizations: Vec<OrgProfile>,
    pub policies: Policies,
    pub capabilities: Vec<String>,
}

/// The application section of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationProfile {
    pub organizations: Vec<OrgProfile>,
    pub policies: Policies,
    pub capabilities: Vec<String>,
    /// Resource -> policy path.
    pub acls: BTreeMap<String, String>,
}

/// Everything needed to build a channel's genesis config.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub orderer: OrdererProfile,
    pub application: ApplicationProfile,
    /// Channel-level policies.
    pub policies: Policies,
    /// Channel capabilities.
    pub capabilities: Vec<String>,
}

/// `Readers: ANY Readers`, `Writers: ANY Writers`, `Admins: MAJORITY Admins`.
pub fn default_policies() -> Policies {
    BTreeMap::from([
        (
            keys::READERS.to_owned(),
            PolicySpec::implicit_meta("ANY Readers"),
        ),
        (
            keys::WRITERS.to_owned(),
            PolicySpec::implicit_meta("ANY Writers"),
        ),
        (
            keys::ADMINS.to_owned(),
            PolicySpec::implicit_meta("MAJORITY Admins"),
        ),
    ])
}

/// The ACLs of Fabric's sample configtx.yaml.
pub fn default_acls() -> BTreeMap<String, String> {
    let w = "/Channel/Application/Writers";
    let r = "/Channel/Application/Readers";
    [
        ("_lifecycle/CheckCommitReadiness", w),
        ("_lifecycle/CommitChaincodeDefinition", w),
        ("_lifecycle/QueryChaincodeDefinition", w),
        ("_lifecycle/QueryChaincodeDefinitions", w),
        ("lscc/ChaincodeExists", r),
        ("lscc/GetDeploymentSpec", r),
        ("lscc/GetChaincodeData", r),
        ("lscc/GetInstantiatedChaincodes", r),
        ("qscc/GetChainInfo", r),
        ("qscc/GetBlockByNumber", r),
        ("qscc/GetBlockByHash", r),
        ("qscc/GetTransactionByID", r),
        ("qscc/GetBlockByTxID", r),
        ("cscc/GetConfigBlock", r),
        ("cscc/GetChannelConfig", r),
        ("peer/Propose", w),
        ("peer/ChaincodeToChaincode", w),
        ("event/Block", r),
        ("event/FilteredBlock", r),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl Profile {
    /// A profile like Fabric's test network's: default implicit meta policies, Application
    /// `Endorsement`/`LifecycleEndorsement` `MAJORITY Endorsement`, Orderer `BlockValidation`
    /// `ANY Writers`, capabilities V2_0 (channel, orderer) and V2_5 (application), the sample
    /// ACLs, configtxgen's batch defaults and orderer type `solo`.
    pub fn new(orderer_orgs: Vec<OrgProfile>, application_orgs: Vec<OrgProfile>) -> Profile {
        let mut app_policies = default_policies();
        app_policies.insert(
            keys::ENDORSEMENT.to_owned(),
            PolicySpec::implicit_meta("MAJORITY Endorsement"),
        );
        app_policies.insert(
            keys::LIFECYCLE_ENDORSEMENT.to_owned(),
            PolicySpec::implicit_meta("MAJORITY Endorsement"),
        );
        let mut ord_policies = default_policies();
        ord_policies.insert(
            keys::BLOCK_VALIDATION.to_owned(),
            PolicySpec::implicit_meta("ANY Writers"),
        );
        Profile {
            orderer: OrdererProfile {
                orderer_type: "solo".to_owned(),
                addresses: Vec::new(),
                batch: BatchConfig::default(),
                max_channels: 0,
                etcdraft: None,
                organizations: orderer_orgs,
                policies: ord_policies,
                capabilities: vec!["V2_0".to_owned()],
            },
            application: ApplicationProfile {
                organizations: application_orgs,
                policies: app_policies,
                capabilities: vec!["V2_5".to_owned()],
                acls: default_acls(),
            },
            policies: default_policies(),
            capabilities: vec!["V2_0".to_owned()],
        }
    }
}

fn value<M: Message>(msg: &M, mod_policy: &str) -> ConfigValue {
    ConfigValue {
        version: 0,
        value: Bytes::from(msg.encode_to_vec()),
        mod_policy: mod_policy.to_owned(),
    }
}

/// The `Capabilities` value, encoded as Fabric encodes it: every map entry carries its (empty)
/// `Capability` value as `12 00`, which prost would leave out. The bytes are what configtxgen
/// writes, so config updates computed by Fabric tools see no spurious difference.
fn capabilities_value(caps: &[String]) -> ConfigValue {
    let names: std::collections::BTreeSet<&String> = caps.iter().collect();
    let mut out = Vec::new();
    for name in names {
        let mut entry = Vec::with_capacity(name.len() + 4);
        entry.push(0x0a);
        prost::encoding::encode_varint(name.len() as u64, &mut entry);
        entry.extend_from_slice(name.as_bytes());
        entry.extend_from_slice(&[0x12, 0x00]);
        out.push(0x0a);
        prost::encoding::encode_varint(entry.len() as u64, &mut out);
        out.extend_from_slice(&entry);
    }
    ConfigValue {
        version: 0,
        value: Bytes::from(out),
        mod_policy: keys::ADMINS.to_owned(),
    }
}

/// Compile `policies` into `group` (mod_policy Admins); `path` names the group in errors.
fn add_policies(
    group: &mut ConfigGroup,
    policies: &Policies,
    path: &str,
) -> Result<(), ConfigError> {
    for (name, spec) in policies {
        let ppath = format!("{path}/{name}");
        let policy = match spec {
            PolicySpec::Signature(rule) => Policy {
                r#type: common::policy::PolicyType::Signature as i32,
                value: Bytes::from(
                    parse(rule)
                        .map_err(|e| {
                            ConfigError::invalid(
                                &ppath,
                                format!("signature policy \"{rule}\": {e}"),
                            )
                        })?
                        .encode_to_vec(),
                ),
            },
            PolicySpec::ImplicitMeta(rule) => Policy {
                r#type: common::policy::PolicyType::ImplicitMeta as i32,
                value: Bytes::from(
                    parse_implicit_meta(rule)
                        .map_err(|e| {
                            ConfigError::invalid(
                                &ppath,
                                format!("implicit meta policy \"{rule}\": {e}"),
                            )
                        })?
                        .encode_to_vec(),
                ),
            },
        };
        group.policies.insert(
            name.clone(),
            ConfigPolicy {
                version: 0,
                policy: Some(policy),
                mod_policy: keys::ADMINS.to_owned(),
            },
        );
    }
    Ok(())
}

fn require_policies(policies: &Policies, names: &[&str], path: &str) -> Result<(), ConfigError> {
    for name in names {
        if !policies.contains_key(*name) {
            return Err(ConfigError::invalid(
                format!("{path}/{name}"),
                "missing: the profile must define this policy",
            ));
        }
    }
    Ok(())
}

fn org_group(org: &OrgProfile, path: &str) -> Result<ConfigGroup, ConfigError> {
    if org.name.is_empty() || org.name.contains('/') {
        return Err(ConfigError::invalid(
            path,
            format!(
                "organization name '{}' must be non-empty without '/'",
                org.name
            ),
        ));
    }
    let mut g = ConfigGroup {
        mod_policy: keys::ADMINS.to_owned(),
        ..ConfigGroup::default()
    };
    require_policies(
        &org.policies,
        &[keys::READERS, keys::WRITERS, keys::ADMINS],
        path,
    )?;
    add_policies(&mut g, &org.policies, path)?;
    let fc = fabric_msp_config(&org.msp_dir, &org.msp_id)?;
    g.values
        .insert(keys::MSP.to_owned(), value(&msp_value(&fc), keys::ADMINS));
    Ok(g)
}

/// The channel group of `profile`, as configtxgen builds it.
pub fn channel_group(profile: &Profile) -> Result<ConfigGroup, ConfigError> {
    let root = format!("/{}", keys::CHANNEL);
    let mut channel = ConfigGroup {
        mod_policy: keys::ADMINS.to_owned(),
        ..ConfigGroup::default()
    };
    require_policies(
        &profile.policies,
        &[keys::READERS, keys::WRITERS, keys::ADMINS],
        &root,
    )?;
    add_policies(&mut channel, &profile.policies, &root)?;
    channel.values.insert(
        keys::HASHING_ALGORITHM.to_owned(),
        value(
            &HashingAlgorithm {
                name: keys::SHA256.to_owned(),
            },
            keys::ADMINS,
        ),
    );
    channel.values.insert(
        keys::BLOCK_DATA_HASHING_STRUCTURE.to_owned(),
        value(
            &BlockDataHashingStructure {
                width: keys::DATA_HASHING_WIDTH,
            },
            keys::ADMINS,
        ),
    );
    let o = &profile.orderer;
    if !o.addresses.is_empty() {
        channel.values.insert(
            keys::ORDERER_ADDRESSES.to_owned(),
            value(
                &OrdererAddresses {
                    addresses: o.addresses.clone(),
                },
                "/Channel/Orderer/Admins",
            ),
        );
    }
    if !profile.capabilities.is_empty() {
        channel.values.insert(
            keys::CAPABILITIES.to_owned(),
            capabilities_value(&profile.capabilities),
        );
    }

    // Orderer.
    let opath = format!("{root}/{}", keys::ORDERER);
    let mut og = ConfigGroup {
        mod_policy: keys::ADMINS.to_owned(),
        ..ConfigGroup::default()
    };
    require_policies(
        &o.policies,
        &[
            keys::READERS,
            keys::WRITERS,
            keys::ADMINS,
            keys::BLOCK_VALIDATION,
        ],
        &opath,
    )?;
    add_policies(&mut og, &o.policies, &opath)?;
    let b = &o.batch;
    if b.max_message_count == 0
        || b.absolute_max_bytes == 0
        || b.preferred_max_bytes > b.absolute_max_bytes
    {
        return Err(ConfigError::invalid(
            format!("{opath}/{}", keys::BATCH_SIZE),
            format!(
                "MaxMessageCount {} and AbsoluteMaxBytes {} must be positive and PreferredMaxBytes {} at most AbsoluteMaxBytes",
                b.max_message_count, b.absolute_max_bytes, b.preferred_max_bytes
            ),
        ));
    }
    if b.timeout.is_zero() {
        return Err(ConfigError::invalid(
            format!("{opath}/{}", keys::BATCH_TIMEOUT),
            "the batch timeout must be positive",
        ));
    }
    og.values.insert(
        keys::BATCH_SIZE.to_owned(),
        value(
            &BatchSize {
                max_message_count: b.max_message_count,
                absolute_max_bytes: b.absolute_max_bytes,
                preferred_max_bytes: b.preferred_max_bytes,
            },
            keys::ADMINS,
        ),
    );
    og.values.insert(
        keys::BATCH_TIMEOUT.to_owned(),
        value(
            &BatchTimeout {
                timeout: format_go_duration(b.timeout),
            },
            keys::ADMINS,
        ),
    );
    og.values.insert(
        keys::CHANNEL_RESTRICTIONS.to_owned(),
        value(
            &ChannelRestrictions {
                max_count: o.max_channels,
            },
            keys::ADMINS,
        ),
    );
    if !o.capabilities.is_empty() {
        og.values.insert(
            keys::CAPABILITIES.to_owned(),
            capabilities_value(&o.capabilities),
        );
    }
    if o.orderer_type.is_empty() {
        return Err(ConfigError::invalid(
            format!("{opath}/{}", keys::CONSENSUS_TYPE),
            "OrdererType is empty",
        ));
    }
    let metadata = match (&o.etcdraft, o.orderer_type.as_str()) {
        (Some(m), "etcdraft") => Bytes::from(m.encode_to_vec()),
        (None, "etcdraft") => {
            return Err(ConfigError::invalid(
                format!("{opath}/{}", keys::CONSENSUS_TYPE),
                "OrdererType etcdraft needs EtcdRaft consenters",
            ))
        }
        _ => Bytes::new(),
    };
    og.values.insert(
        keys::CONSENSUS_TYPE.to_owned(),
        value(
            &ConsensusType {
                r#type: o.orderer_type.clone(),
                metadata,
                state: 0,
            },
            keys::ADMINS,
        ),
    );
    for org in &o.organizations {
        let path = format!("{opath}/{}", org.name);
        let mut g = org_group(org, &path)?;
        if !org.orderer_endpoints.is_empty() {
            g.values.insert(
                keys::ENDPOINTS.to_owned(),
                value(
                    &OrdererAddresses {
                        addresses: org.orderer_endpoints.clone(),
                    },
                    keys::ADMINS,
                ),
            );
        }
        if og.groups.insert(org.name.clone(), g).is_some() {
            return Err(ConfigError::invalid(
                path,
                "this organization is listed twice",
            ));
        }
    }
    channel.groups.insert(keys::ORDERER.to_owned(), og);

    // Application.
    let a = &profile.application;
    let apath = format!("{root}/{}", keys::APPLICATION);
    let mut ag = ConfigGroup {
        mod_policy: keys::ADMINS.to_owned(),
        ..ConfigGroup::default()
    };
    require_policies(
        &a.policies,
        &[keys::READERS, keys::WRITERS, keys::ADMINS],
        &apath,
    )?;
    add_policies(&mut ag, &a.policies, &apath)?;
    if !a.acls.is_empty() {
        ag.values.insert(
            keys::ACLS.to_owned(),
            value(
                &AcLs {
                    acls: a
                        .acls
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                ApiResource {
                                    policy_ref: v.clone(),
                                },
                            )
                        })
                        .collect(),
                },
                keys::ADMINS,
            ),
        );
    }
    if !a.capabilities.is_empty() {
        ag.values.insert(
            keys::CAPABILITIES.to_owned(),
            capabilities_value(&a.capabilities),
        );
    }
    for org in &a.organizations {
        let path = format!("{apath}/{}", org.name);
        let mut g = org_group(org, &path)?;
        if !org.anchor_peers.is_empty() {
            g.values.insert(
                keys::ANCHOR_PEERS.to_owned(),
                value(
                    &AnchorPeers {
                        anchor_peers: org
                            .anchor_peers
                            .iter()
                            .map(|(host, port)| AnchorPeer {
                                host: host.clone(),
                                port: i32::from(*port),
                            })
                            .collect(),
                    },
                    keys::ADMINS,
                ),
            );
        }
        if ag.groups.insert(org.name.clone(), g).is_some() {
            return Err(ConfigError::invalid(
                path,
                "this organization is listed twice",
            ));
        }
    }
    channel.groups.insert(keys::APPLICATION.to_owned(), ag);
    Ok(channel)
}

/// The genesis config (sequence 0) of `profile`.
pub fn genesis_config(profile: &Profile) -> Result<Config, ConfigError> {
    Ok(Config {
        sequence: 0,
        channel_group: Some(channel_group(profile)?),
    })
}

/// The genesis block of `channel_id` for `profile`; it parses back with
/// [`crate::ChannelConfig::from_block`] (checked before it is returned).
pub fn genesis_block(channel_id: &str, profile: &Profile) -> Result<Block, ConfigError> {
    let config = genesis_config(profile)?;
    let block = genesis_block_from_config(channel_id, &config)?;
    crate::ChannelConfig::from_block(&block)?;
    Ok(block)
}

/// A genesis block (number 0) carrying `config` for `channel_id`.
pub fn genesis_block_from_config(channel_id: &str, config: &Config) -> Result<Block, ConfigError> {
    check_channel_id(channel_id)?;
    let nonce = weft_crypto::random_bytes(24).map_err(|e| ConfigError::Profile {
        detail: format!("cannot make the genesis nonce: {e}"),
    })?;
    let tx_id = weft_crypto::hex(&weft_crypto::sha256(&nonce));
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        version: 1,
        timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        channel_id: channel_id.to_owned(),
        tx_id,
        epoch: 0,
        ..ChannelHeader::default()
    };
    let signature_header = SignatureHeader {
        creator: Bytes::new(),
        nonce: Bytes::from(nonce),
    };
    let payload = Payload {
        header: Some(common::Header {
            channel_header: Bytes::from(channel_header.encode_to_vec()),
            signature_header: Bytes::from(signature_header.encode_to_vec()),
        }),
        data: Bytes::from(
            ConfigEnvelope {
                config: Some(config.clone()),
                last_update: None,
            }
            .encode_to_vec(),
        ),
    };
    let envelope = Envelope {
        payload: Bytes::from(payload.encode_to_vec()),
        signature: Bytes::new(),
    };
    let mut block =
        weft_ledger::block::new_block(0, &[], vec![Bytes::from(envelope.encode_to_vec())]);
    weft_ledger::block::set_metadata_entry(
        &mut block,
        BlockMetadataIndex::LastConfig,
        Bytes::from(
            Metadata {
                value: Bytes::from(LastConfig { index: 0 }.encode_to_vec()),
                signatures: Vec::new(),
            }
            .encode_to_vec(),
        ),
    );
    weft_ledger::block::set_signatures(
        &mut block,
        weft_ledger::block::orderer_metadata_value(0, Bytes::new()),
        Vec::new(),
    );
    Ok(block)
}

/// Fabric's channel name rule: lower-case letters, digits, `.` and `-`, starting with a letter,
/// fewer than 250 characters.
pub fn check_channel_id(channel_id: &str) -> Result<(), ConfigError> {
    let ok = !channel_id.is_empty()
        && channel_id.len() < 250
        && channel_id.starts_with(|c: char| c.is_ascii_lowercase())
        && channel_id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Profile {
            detail: format!(
                "channel ID '{channel_id}' is invalid: use lower-case letters, digits, '.' and '-', starting with a letter, fewer than 250 characters"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn capabilities_encode_like_fabric() {
        // @hyperledger/fabric-protos' bytes for {V2_0: {}, V2_5: {}} (conformance vector
        // "capabilities").
        let v = capabilities_value(&["V2_5".to_owned(), "V2_0".to_owned()]);
        assert_eq!(
            weft_crypto::hex(&v.value),
            "0a080a0456325f3012000a080a0456325f351200"
        );
        let decoded = common::Capabilities::decode(v.value).unwrap();
        assert_eq!(decoded.capabilities.len(), 2);
    }
}
