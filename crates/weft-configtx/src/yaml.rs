//! `configtx.yaml` in Fabric's format: `Organizations` defined once with YAML anchors
//! (`- &Org1`), sections reused through aliases and `<<:` merge keys (applied with
//! [`serde_norway::Value::apply_merge`]), and `Profiles` naming complete channel configs.
//!
//! A profile becomes a [`Profile`] as configtxgen does it: missing orderer settings take
//! configtxgen's defaults (`solo`, 2 s, 500 messages, 10 MB, 2 MB); a level without policies
//! gets the default implicit meta policies (orgs: `OR(member)` for Readers/Writers,
//! `OR(admin)` for Admins), with a warning, as Fabric's deprecated default emission (one
//! difference: weft's Application defaults also define `Endorsement` and
//! `LifecycleEndorsement` as `MAJORITY Endorsement`, which chaincode definitions need);
//! `BlockValidation` defaults to `ANY Writers` only when the Orderer has no policies at all;
//! `MSPDir` and EtcdRaft certificate paths are relative to the directory of configtx.yaml;
//! sizes accept Fabric's units (`99 MB`, `512 KB`), timeouts Go durations (`2s`). Keys are
//! Fabric's, exact case; an unknown key is an error naming it, as configtxgen's strict decoding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;
use weft_proto::etcdraft;

use crate::channel::BatchConfig;
use crate::error::ConfigError;
use crate::genesis::{default_policies, OrgProfile, Policies, PolicySpec, Profile};
use crate::keys;
use crate::units::{parse_byte_size, parse_go_duration};

/// The configtx.yaml file name.
pub const CONFIGTX_FILE: &str = "configtx.yaml";

/// A parsed configtx.yaml: its profiles, merge keys applied.
#[derive(Debug, Clone)]
pub struct ConfigTxFile {
    /// Where it was read from (for errors) and the directory relative paths are resolved from.
    file: String,
    base_dir: PathBuf,
    profiles: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileYaml {
    #[serde(rename = "Consortium", default)]
    consortium: Option<String>,
    #[serde(rename = "Consortiums", default)]
    consortiums: Option<Value>,
    #[serde(rename = "Application", default)]
    application: Option<ApplicationYaml>,
    #[serde(rename = "Orderer", default)]
    orderer: Option<OrdererYaml>,
    #[serde(rename = "Capabilities", default)]
    capabilities: BTreeMap<String, bool>,
    #[serde(rename = "Policies", default)]
    policies: BTreeMap<String, PolicyYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApplicationYaml {
    #[serde(rename = "Organizations", default)]
    organizations: Option<Vec<OrgYaml>>,
    #[serde(rename = "Capabilities", default)]
    capabilities: BTreeMap<String, bool>,
    #[serde(rename = "Policies", default)]
    policies: BTreeMap<String, PolicyYaml>,
    #[serde(rename = "ACLs", default)]
    acls: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdererYaml {
    #[serde(rename = "OrdererType", default)]
    orderer_type: Option<String>,
    #[serde(rename = "Addresses", default)]
    addresses: Option<Vec<String>>,
    #[serde(rename = "BatchTimeout", default)]
    batch_timeout: Option<Value>,
    #[serde(rename = "BatchSize", default)]
    batch_size: Option<BatchSizeYaml>,
    #[serde(rename = "Kafka", default)]
    kafka: Option<Value>,
    #[serde(rename = "EtcdRaft", default)]
    etcd_raft: Option<EtcdRaftYaml>,
    #[serde(rename = "SmartBFT", default)]
    smart_bft: Option<Value>,
    #[serde(rename = "ConsenterMapping", default)]
    consenter_mapping: Option<Value>,
    #[serde(rename = "Organizations", default)]
    organizations: Option<Vec<OrgYaml>>,
    #[serde(rename = "MaxChannels", default)]
    max_channels: u64,
    #[serde(rename = "Capabilities", default)]
    capabilities: BTreeMap<String, bool>,
    #[serde(rename = "Policies", default)]
    policies: BTreeMap<String, PolicyYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchSizeYaml {
    #[serde(rename = "MaxMessageCount", default)]
    max_message_count: Option<u32>,
    #[serde(rename = "AbsoluteMaxBytes", default)]
    absolute_max_bytes: Option<Value>,
    #[serde(rename = "PreferredMaxBytes", default)]
    preferred_max_bytes: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EtcdRaftYaml {
    #[serde(rename = "Consenters", default)]
    consenters: Vec<ConsenterYaml>,
    #[serde(rename = "Options", default)]
    options: Option<RaftOptionsYaml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsenterYaml {
    #[serde(rename = "Host")]
    host: String,
    #[serde(rename = "Port")]
    port: u32,
    #[serde(rename = "ClientTLSCert")]
    client_tls_cert: String,
    #[serde(rename = "ServerTLSCert")]
    server_tls_cert: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaftOptionsYaml {
    #[serde(rename = "TickInterval", default)]
    tick_interval: Option<String>,
    #[serde(rename = "ElectionTick", default)]
    election_tick: Option<u32>,
    #[serde(rename = "HeartbeatTick", default)]
    heartbeat_tick: Option<u32>,
    #[serde(rename = "MaxInflightBlocks", default)]
    max_inflight_blocks: Option<u32>,
    #[serde(rename = "SnapshotIntervalSize", default)]
    snapshot_interval_size: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgYaml {
    #[serde(rename = "Name")]
    name: String,
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "MSPDir")]
    msp_dir: String,
    #[serde(rename = "MSPType", default)]
    msp_type: Option<String>,
    #[serde(rename = "SkipAsForeign", default)]
    skip_as_foreign: bool,
    #[serde(rename = "AdminPrincipal", default)]
    admin_principal: Option<String>,
    #[serde(rename = "Policies", default)]
    policies: BTreeMap<String, PolicyYaml>,
    #[serde(rename = "AnchorPeers", default)]
    anchor_peers: Vec<AnchorPeerYaml>,
    #[serde(rename = "OrdererEndpoints", default)]
    orderer_endpoints: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorPeerYaml {
    #[serde(rename = "Host")]
    host: String,
    #[serde(rename = "Port")]
    port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyYaml {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Rule")]
    rule: String,
}

impl ConfigTxFile {
    /// Read `configtx.yaml` from `dir` (configtxgen's `-configPath`).
    pub fn from_dir(dir: &Path) -> Result<ConfigTxFile, ConfigError> {
        ConfigTxFile::from_file(&dir.join(CONFIGTX_FILE))
    }

    /// Read a configtx.yaml file; relative paths in it are relative to its directory.
    pub fn from_file(path: &Path) -> Result<ConfigTxFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::file(
                path.display(),
                format!("cannot read configtx.yaml: {e}; pass --configPath <dir> or set FABRIC_CFG_PATH to the folder that holds it"),
            )
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        ConfigTxFile::parse(&text, &path.display().to_string(), &base)
    }

    /// Parse configtx.yaml text; `file` names it in errors, `base_dir` resolves relative paths.
    pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<ConfigTxFile, ConfigError> {
        let yaml_err = |detail: String| ConfigError::Yaml {
            file: file.to_owned(),
            detail,
        };
        let mut root: Value =
            serde_norway::from_str(text).map_err(|e| yaml_err(format!("not valid YAML: {e}")))?;
        // Merges can bring in mappings that hold merge keys themselves; a few passes settle it.
        for _ in 0..8 {
            root.apply_merge()
                .map_err(|e| yaml_err(format!("a '<<' merge key is invalid: {e}")))?;
        }
        let profiles = match root.get("Profiles") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Mapping(m)) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let name = k.as_str().ok_or_else(|| {
                        yaml_err("a key under Profiles is not a string".to_owned())
                    })?;
                    out.insert(name.to_owned(), v.clone());
                }
                out
            }
            Some(_) => {
                return Err(yaml_err(
                    "'Profiles' must be a mapping of profile names to profiles".to_owned(),
                ))
            }
        };
        Ok(ConfigTxFile {
            file: file.to_owned(),
            base_dir: base_dir.to_owned(),
            profiles,
        })
    }

    /// The profile names, sorted.
    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.keys().cloned().collect()
    }

    /// The named profile as a [`Profile`]. An unknown name is an error listing the profiles.
    pub fn profile(&self, name: &str) -> Result<Profile, ConfigError> {
        let value = self
            .profiles
            .get(name)
            .ok_or_else(|| ConfigError::Profile {
                detail: format!(
                    "profile '{name}' is not in {}; its profiles are: {}",
                    self.file,
                    if self.profiles.is_empty() {
                        "(none: add a Profiles section)".to_owned()
                    } else {
                        self.profile_names().join(", ")
                    }
                ),
            })?;
        let what = format!("{}: profile '{name}'", self.file);
        let p: ProfileYaml =
            serde_norway::from_value(value.clone()).map_err(|e| ConfigError::Yaml {
                file: self.file.clone(),
                detail: format!("profile '{name}': {e}"),
            })?;
        self.convert(p, &what)
    }

    fn path(&self, p: &str) -> PathBuf {
        let path = Path::new(p);
        if path.is_absolute() {
            path.to_owned()
        } else {
            self.base_dir.join(path)
        }
    }

    fn convert(&self, p: ProfileYaml, what: &str) -> Result<Profile, ConfigError> {
        let err = |detail: String| ConfigError::Profile {
            detail: format!("{what}: {detail}"),
        };
        if p.consortium.is_some() || p.consortiums.is_some() {
            return Err(err("Consortium/Consortiums belong to the system channel, which weft does not have; remove them and give the profile Orderer and Application sections".to_owned()));
        }
        let app = p.application.ok_or_else(|| {
            err(
                "no Application section; a channel genesis profile needs Application and Orderer"
                    .to_owned(),
            )
        })?;
        let ord = p.orderer.ok_or_else(|| {
            err(
                "no Orderer section; a channel genesis profile needs Application and Orderer"
                    .to_owned(),
            )
        })?;

        let mut application_orgs = Vec::new();
        for org in app.organizations.unwrap_or_default() {
            application_orgs.push(self.org(org, what, false)?);
        }
        let mut orderer_orgs = Vec::new();
        for org in ord.organizations.unwrap_or_default() {
            orderer_orgs.push(self.org(org, what, true)?);
        }

        let mut profile = Profile::new(orderer_orgs, application_orgs);
        profile.capabilities = enabled(&p.capabilities);
        profile.policies = level_policies(&p.policies, what, "Channel")?;

        profile.application.capabilities = enabled(&app.capabilities);
        profile.application.policies = level_policies(&app.policies, what, "Application")?;
        profile.application.acls = app.acls;

        let o = &mut profile.orderer;
        o.orderer_type = ord.orderer_type.unwrap_or_else(|| "solo".to_owned());
        o.addresses = ord.addresses.unwrap_or_default();
        o.capabilities = enabled(&ord.capabilities);
        o.max_channels = ord.max_channels;
        o.policies = level_policies(&ord.policies, what, "Orderer")?;
        if ord.policies.is_empty() {
            o.policies.insert(
                keys::BLOCK_VALIDATION.to_owned(),
                PolicySpec::implicit_meta("ANY Writers"),
            );
        } else if !o.policies.contains_key(keys::BLOCK_VALIDATION) {
            return Err(err("Orderer.Policies has no BlockValidation policy; add e.g. BlockValidation: {Type: ImplicitMeta, Rule: \"ANY Writers\"}".to_owned()));
        }
        let defaults = BatchConfig::default();
        let timeout = match &ord.batch_timeout {
            None => defaults.timeout,
            Some(v) => {
                let text = scalar(v).ok_or_else(|| {
                    err("Orderer.BatchTimeout must be a duration such as 2s".to_owned())
                })?;
                parse_go_duration(&text).map_err(|e| err(format!("Orderer.BatchTimeout: {e}")))?
            }
        };
        let bs = ord.batch_size.unwrap_or(BatchSizeYaml {
            max_message_count: None,
            absolute_max_bytes: None,
            preferred_max_bytes: None,
        });
        let size = |v: &Option<Value>, field: &str, default: u32| -> Result<u32, ConfigError> {
            match v {
                None => Ok(default),
                Some(v) => {
                    let text = scalar(v).ok_or_else(|| {
                        err(format!(
                            "Orderer.BatchSize.{field} must be a size such as '10 MB'"
                        ))
                    })?;
                    parse_byte_size(&text)
                        .map_err(|e| err(format!("Orderer.BatchSize.{field}: {e}")))
                }
            }
        };
        o.batch = BatchConfig {
            max_message_count: bs.max_message_count.unwrap_or(defaults.max_message_count),
            absolute_max_bytes: size(
                &bs.absolute_max_bytes,
                "AbsoluteMaxBytes",
                defaults.absolute_max_bytes,
            )?,
            preferred_max_bytes: size(
                &bs.preferred_max_bytes,
                "PreferredMaxBytes",
                defaults.preferred_max_bytes,
            )?,
            timeout,
        };
        if ord.kafka.is_some() && o.orderer_type == "kafka" {
            return Err(err(
                "OrdererType kafka is not supported (Fabric 2.x removed it)".to_owned(),
            ));
        }
        if o.orderer_type == "BFT" || ord.smart_bft.is_some() || ord.consenter_mapping.is_some() {
            return Err(err("SmartBFT/ConsenterMapping profiles are not supported by configtx genesis yet; use OrdererType solo or etcdraft".to_owned()));
        }
        if o.orderer_type == "etcdraft" {
            let raft = ord.etcd_raft.ok_or_else(|| {
                err("OrdererType etcdraft needs an EtcdRaft section with Consenters".to_owned())
            })?;
            o.etcdraft = Some(self.raft(raft, &err)?);
        }
        Ok(profile)
    }

    fn raft(
        &self,
        raft: EtcdRaftYaml,
        err: &dyn Fn(String) -> ConfigError,
    ) -> Result<etcdraft::ConfigMetadata, ConfigError> {
        if raft.consenters.is_empty() {
            return Err(err("EtcdRaft.Consenters is empty".to_owned()));
        }
        let mut consenters = Vec::new();
        for c in raft.consenters {
            let read = |p: &str| -> Result<bytes::Bytes, ConfigError> {
                let path = self.path(p);
                let bytes = std::fs::read(&path).map_err(|e| {
                    ConfigError::file(
                        path.display(),
                        format!(
                            "cannot read the consenter certificate of {}:{}: {e}",
                            c.host, c.port
                        ),
                    )
                })?;
                weft_crypto::pem::certificates(&bytes, &path.display().to_string())
                    .map_err(|e| ConfigError::file(path.display(), e.to_string()))?;
                Ok(bytes::Bytes::from(bytes))
            };
            consenters.push(etcdraft::Consenter {
                host: c.host.clone(),
                port: c.port,
                client_tls_cert: read(&c.client_tls_cert)?,
                server_tls_cert: read(&c.server_tls_cert)?,
            });
        }
        let o = raft.options;
        let o = o.as_ref();
        let snapshot = match o.and_then(|o| o.snapshot_interval_size.as_ref()) {
            None => 16 * 1024 * 1024,
            Some(v) => {
                let text = scalar(v).ok_or_else(|| {
                    err("EtcdRaft.Options.SnapshotIntervalSize must be a size".to_owned())
                })?;
                parse_byte_size(&text)
                    .map_err(|e| err(format!("EtcdRaft.Options.SnapshotIntervalSize: {e}")))?
            }
        };
        Ok(etcdraft::ConfigMetadata {
            consenters,
            options: Some(etcdraft::Options {
                tick_interval: o
                    .and_then(|o| o.tick_interval.clone())
                    .unwrap_or_else(|| "500ms".to_owned()),
                election_tick: o.and_then(|o| o.election_tick).unwrap_or(10),
                heartbeat_tick: o.and_then(|o| o.heartbeat_tick).unwrap_or(1),
                max_inflight_blocks: o.and_then(|o| o.max_inflight_blocks).unwrap_or(5),
                snapshot_interval_size: snapshot,
            }),
        })
    }

    fn org(&self, org: OrgYaml, what: &str, orderer: bool) -> Result<OrgProfile, ConfigError> {
        let err = |detail: String| ConfigError::Profile {
            detail: format!("{what}: organization '{}': {detail}", org.name),
        };
        if let Some(t) = &org.msp_type {
            if t != "bccsp" {
                return Err(err(format!(
                    "MSPType '{t}' is not supported; weft supports X.509 MSPs (bccsp)"
                )));
            }
        }
        if org.skip_as_foreign {
            return Err(err(
                "SkipAsForeign is not supported: a genesis block needs every org's MSP".to_owned(),
            ));
        }
        if org.id.is_empty() {
            return Err(err("ID (the MSP ID) is empty".to_owned()));
        }
        let msp_dir = self.path(&org.msp_dir);
        let mut p = if orderer {
            OrgProfile::orderer(&org.name, &org.id, msp_dir)
        } else {
            OrgProfile::application(&org.name, &org.id, msp_dir)
        };
        if org.policies.is_empty() {
            tracing::warn!(org = %org.name, "no Policies for the organization; emitting default policies (deprecated in Fabric)");
            let admin_role = match org.admin_principal.as_deref() {
                None | Some("Role.ADMIN") => "admin",
                Some("Role.MEMBER") => "member",
                Some(other) => {
                    return Err(err(format!(
                        "AdminPrincipal '{other}' is not Role.ADMIN or Role.MEMBER"
                    )))
                }
            };
            p.policies = BTreeMap::from([
                (
                    keys::READERS.to_owned(),
                    PolicySpec::signature(format!("OR('{}.member')", org.id)),
                ),
                (
                    keys::WRITERS.to_owned(),
                    PolicySpec::signature(format!("OR('{}.member')", org.id)),
                ),
                (
                    keys::ADMINS.to_owned(),
                    PolicySpec::signature(format!("OR('{}.{admin_role}')", org.id)),
                ),
            ]);
        } else {
            p.policies = policies(&org.policies, what, &format!("organization '{}'", org.name))?;
        }
        p.anchor_peers = org
            .anchor_peers
            .into_iter()
            .map(|a| (a.host, a.port))
            .collect();
        p.orderer_endpoints = org.orderer_endpoints;
        Ok(p)
    }
}

/// A scalar YAML value as text (`2s`, `99 MB`, `1048576`).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn enabled(caps: &BTreeMap<String, bool>) -> Vec<String> {
    caps.iter()
        .filter(|(_, on)| **on)
        .map(|(k, _)| k.clone())
        .collect()
}

fn policies(
    p: &BTreeMap<String, PolicyYaml>,
    what: &str,
    level: &str,
) -> Result<Policies, ConfigError> {
    p.iter()
        .map(|(name, y)| {
            let spec = match y.kind.as_str() {
                "Signature" => PolicySpec::Signature(y.rule.clone()),
                "ImplicitMeta" => PolicySpec::ImplicitMeta(y.rule.clone()),
                other => {
                    return Err(ConfigError::Profile {
                        detail: format!("{what}: {level} policy '{name}': unknown Type '{other}'; use Signature or ImplicitMeta"),
                    })
                }
            };
            Ok((name.clone(), spec))
        })
        .collect()
}

/// A level's policies, or the default implicit meta policies (with a warning) when empty.
fn level_policies(
    p: &BTreeMap<String, PolicyYaml>,
    what: &str,
    level: &str,
) -> Result<Policies, ConfigError> {
    if p.is_empty() {
        tracing::warn!(
            level,
            "no Policies; emitting default implicit meta policies (deprecated in Fabric)"
        );
        let mut d = default_policies();
        if level == "Application" {
            d.insert(
                keys::ENDORSEMENT.to_owned(),
                PolicySpec::implicit_meta("MAJORITY Endorsement"),
            );
            d.insert(
                keys::LIFECYCLE_ENDORSEMENT.to_owned(),
                PolicySpec::implicit_meta("MAJORITY Endorsement"),
            );
        }
        return Ok(d);
    }
    policies(p, what, level)
}
