//! The `crypto-config.yaml` model: the file Fabric's `cryptogen` reads, plus a few optional
//! weft extensions.
//!
//! Keys are spelled exactly as cryptogen spells them (`OrdererOrgs`, `PeerOrgs`, `Name`,
//! `Domain`, `EnableNodeOUs`, `CA`, `Specs`, `Template`, `Users`, `SANS`, ...). Unlike
//! cryptogen, which silently ignores keys it does not know, weft rejects them and names the
//! key: a misspelt `EnableNodeOus` would otherwise quietly produce an MSP without NodeOUs.
//! cryptogen's newer `PublicKeyAlgorithm` key is accepted with the value `ecdsa`.
//!
//! weft extensions (all optional, at the top level or per organization; the per-org value wins):
//! - `KeyAlgorithm: P-256 | P-384`: the ECDSA curve for every key of the org (default P-256).
//! - `ValidityDays: <days>`: lifetime of every certificate (default 3650, as cryptogen).
//!
//! [`CryptoConfig::resolve`] validates a config and expands templates into the concrete list of
//! organizations, nodes and users that generation produces.

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use weft_crypto::KeyAlgorithm;

use crate::Error;

/// cryptogen's default lifetime of every certificate, in days.
pub const DEFAULT_VALIDITY_DAYS: u32 = 3650;
/// Upper bound on `ValidityDays` (a hundred years).
pub const MAX_VALIDITY_DAYS: u32 = 36_500;
/// Upper bound on `Template.Count` and `Users.Count`: anything above is a typo, not a network.
pub const MAX_COUNT: i64 = 10_000;

/// Name used in errors for configs that were not read from a file.
const IN_CODE: &str = "crypto config";

/// A whole `crypto-config.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CryptoConfig {
    /// Organizations that run orderers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub orderer_orgs: Vec<OrgSpec>,
    /// Organizations that run peers.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub peer_orgs: Vec<OrgSpec>,
    /// weft extension: default curve for every org (`P-256` unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<Curve>,
    /// weft extension: default certificate lifetime in days for every org (3650 unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
}

/// One organization (`OrdererOrgs[i]` or `PeerOrgs[i]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct OrgSpec {
    /// Display name (cryptogen does not use it for paths; the Domain names the directory).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// DNS domain; the org's directory, its CA names and every node's FQDN derive from it.
    #[serde(default, deserialize_with = "null_default")]
    pub domain: String,
    /// Put role OUs (peer/orderer/admin/client) into sign certs and write `msp/config.yaml`.
    #[serde(rename = "EnableNodeOUs", default, deserialize_with = "null_default")]
    pub enable_node_ous: bool,
    /// The org CA: its host name (default `ca`), common name and subject fields.
    #[serde(
        rename = "CA",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "NodeSpec::is_empty"
    )]
    pub ca: NodeSpec,
    /// Nodes named from a template (`peer0`, `peer1`, ...).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "NodeTemplate::is_empty"
    )]
    pub template: NodeTemplate,
    /// Nodes named one by one.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub specs: Vec<NodeSpec>,
    /// Users in addition to `Admin` (peer orgs only, as in cryptogen).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "UsersSpec::is_empty"
    )]
    pub users: UsersSpec,
    /// weft extension: curve for this org's keys, overriding the top-level setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_algorithm: Option<Curve>,
    /// weft extension: certificate lifetime in days for this org, overriding the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validity_days: Option<u32>,
}

/// A node (an entry of `Specs`) or the CA (`CA`).
///
/// The subject fields (`Country` .. `PostalCode`) are only used under `CA`, as in cryptogen;
/// every certificate of the org takes them from there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NodeSpec {
    /// Short host name, a single DNS label (`peer0`, `orderer`, `ca`).
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub hostname: String,
    /// Common name template; default `{{.Hostname}}.{{.Domain}}`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub common_name: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub country: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub province: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub locality: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub organizational_unit: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub street_address: String,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub postal_code: String,
    /// Extra subject alternative names; templates over `.Hostname`, `.Domain`, `.CommonName`.
    /// The CN and the short host name are always included.
    #[serde(
        rename = "SANS",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sans: Vec<String>,
    /// cryptogen (Fabric 3) key algorithm selector; weft accepts only `ecdsa`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub public_key_algorithm: String,
}

/// `Template`: `Count` nodes named by `Hostname` (default `{{.Prefix}}{{.Index}}`) with
/// indexes from `Start`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NodeTemplate {
    #[serde(default, deserialize_with = "null_default")]
    pub count: i64,
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "is_zero"
    )]
    pub start: i64,
    /// Host name template over `.Prefix` (`peer` or `orderer`), `.Index` and `.Domain`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub hostname: String,
    #[serde(
        rename = "SANS",
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sans: Vec<String>,
    /// cryptogen (Fabric 3) key algorithm selector; weft accepts only `ecdsa`.
    #[serde(
        default,
        deserialize_with = "null_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub public_key_algorithm: String,
}

/// `Users`: how many `User<N>` identities to create in addition to `Admin`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UsersSpec {
    #[serde(default, deserialize_with = "null_default")]
    pub count: i64,
}

/// weft extension `KeyAlgorithm`: the ECDSA curve for an org's keys.
///
/// Written `P-256` or `P-384`; `P256`, `prime256v1`, `secp256r1`, `P384` and `secp384r1` are
/// accepted too (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    /// The canonical spelling: `P-256` / `P-384`.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Curve {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "p-256" | "p256" | "prime256v1" | "secp256r1" => Ok(Curve::P256),
            "p-384" | "p384" | "secp384r1" => Ok(Curve::P384),
            _ => Err(format!("unknown KeyAlgorithm '{s}'; use P-256 or P-384")),
        }
    }
}

impl Serialize for Curve {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Curve {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl From<Curve> for KeyAlgorithm {
    fn from(c: Curve) -> Self {
        match c {
            Curve::P256 => KeyAlgorithm::EcdsaP256,
            Curve::P384 => KeyAlgorithm::EcdsaP384,
        }
    }
}

impl NodeSpec {
    fn is_empty(&self) -> bool {
        *self == NodeSpec::default()
    }
}

impl NodeTemplate {
    fn is_empty(&self) -> bool {
        *self == NodeTemplate::default()
    }
}

impl UsersSpec {
    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// YAML `Key:` with no value is null; cryptogen (Go) reads that as the zero value, so do we.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Which side of the network an org is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrgKind {
    Orderer,
    Peer,
}

impl OrgKind {
    /// Top-level directory: `ordererOrganizations` / `peerOrganizations`.
    pub fn dir_name(self) -> &'static str {
        match self {
            OrgKind::Orderer => "ordererOrganizations",
            OrgKind::Peer => "peerOrganizations",
        }
    }

    /// Directory of the org's nodes: `orderers` / `peers`.
    pub fn nodes_dir(self) -> &'static str {
        match self {
            OrgKind::Orderer => "orderers",
            OrgKind::Peer => "peers",
        }
    }

    /// `.Prefix` of the default host name template: `orderer` / `peer`.
    pub fn prefix(self) -> &'static str {
        match self {
            OrgKind::Orderer => "orderer",
            OrgKind::Peer => "peer",
        }
    }

    /// The role of the org's nodes.
    pub fn node_role(self) -> Role {
        match self {
            OrgKind::Orderer => Role::Orderer,
            OrgKind::Peer => Role::Peer,
        }
    }

    fn section(self) -> &'static str {
        match self {
            OrgKind::Orderer => "OrdererOrgs",
            OrgKind::Peer => "PeerOrgs",
        }
    }
}

/// The role of an identity; with NodeOUs it is the OU of its sign certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Peer,
    Orderer,
    Admin,
    Client,
}

impl Role {
    /// The organizational unit Fabric's NodeOUs classify by.
    pub fn ou(self) -> &'static str {
        match self {
            Role::Peer => "peer",
            Role::Orderer => "orderer",
            Role::Admin => "admin",
            Role::Client => "client",
        }
    }
}

/// An organization with every template expanded and every default applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedOrg {
    pub kind: OrgKind,
    pub name: String,
    pub domain: String,
    pub node_ous: bool,
    pub ca: ResolvedCa,
    pub nodes: Vec<ResolvedNode>,
    /// Common names of the users besides Admin: `User1@<domain>`, ...
    pub users: Vec<String>,
    /// `Admin@<domain>`.
    pub admin: String,
    pub algorithm: KeyAlgorithm,
    pub validity_days: u32,
}

/// The org's two CAs and the subject fields every certificate of the org carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedCa {
    /// CN of the signing CA, `ca.<domain>` unless configured; names `ca/<cn>-cert.pem`.
    pub common_name: String,
    /// CN of the TLS CA: `tls` + the CA's CN (`tlsca.<domain>`), as cryptogen.
    pub tls_common_name: String,
    pub country: String,
    pub province: String,
    pub locality: String,
    pub organizational_unit: Option<String>,
    pub street_address: Option<String>,
    pub postal_code: Option<String>,
}

/// A peer or orderer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedNode {
    pub hostname: String,
    /// The FQDN: certificate CN and directory name.
    pub common_name: String,
    /// TLS subject alternative names: CN, host name, then the configured SANS.
    pub sans: Vec<String>,
}

impl CryptoConfig {
    /// Parse and validate YAML; `source` names the input (a file name) in errors.
    pub fn from_yaml_str(yaml: &str, source: &str) -> Result<Self, Error> {
        let config: CryptoConfig = serde_norway::from_str(yaml).map_err(|e| Error::Yaml {
            file: source.to_owned(),
            line: e.location().map(|l| l.line()),
            detail: e.to_string(),
        })?;
        config.resolve_named(source)?;
        Ok(config)
    }

    /// Read, parse and validate a `crypto-config.yaml`.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml_str(&text, &path.display().to_string())
    }

    /// The config as YAML (weft extensions included only when set).
    pub fn to_yaml(&self) -> Result<String, Error> {
        serde_norway::to_string(self).map_err(|e| Error::Yaml {
            file: IN_CODE.to_owned(),
            line: None,
            detail: e.to_string(),
        })
    }

    /// Check the config without expanding it for use.
    pub fn validate(&self) -> Result<(), Error> {
        self.resolve().map(|_| ())
    }

    /// Validate and expand: orderer orgs first, then peer orgs, in file order.
    pub fn resolve(&self) -> Result<Vec<ResolvedOrg>, Error> {
        self.resolve_named(IN_CODE)
    }

    pub(crate) fn resolve_named(&self, source: &str) -> Result<Vec<ResolvedOrg>, Error> {
        let invalid = |org: &str, detail: String| Error::InvalidConfig {
            config: source.to_owned(),
            org: org.to_owned(),
            detail,
        };
        if self.orderer_orgs.is_empty() && self.peer_orgs.is_empty() {
            return Err(invalid(
                "config",
                "defines no organizations; add at least one entry under OrdererOrgs or PeerOrgs"
                    .into(),
            ));
        }
        if let Some(days) = self.validity_days {
            check_validity_days(days).map_err(|d| invalid("config", d))?;
        }
        let mut out = Vec::new();
        for (kind, orgs) in [
            (OrgKind::Orderer, &self.orderer_orgs),
            (OrgKind::Peer, &self.peer_orgs),
        ] {
            let mut domains = HashSet::new();
            for (i, org) in orgs.iter().enumerate() {
                let resolved = resolve_org(self, org, kind, i, source)?;
                if !domains.insert(resolved.domain.to_ascii_lowercase()) {
                    return Err(Error::DuplicateOrg {
                        config: source.to_owned(),
                        kind: kind.section(),
                        domain: resolved.domain,
                    });
                }
                out.push(resolved);
            }
        }
        Ok(out)
    }
}

fn check_validity_days(days: u32) -> Result<(), String> {
    if days == 0 || days > MAX_VALIDITY_DAYS {
        return Err(format!(
            "ValidityDays {days} is out of range; use 1..={MAX_VALIDITY_DAYS} (default {DEFAULT_VALIDITY_DAYS})"
        ));
    }
    Ok(())
}

fn org_label(kind: OrgKind, index: usize, name: &str) -> String {
    if name.trim().is_empty() {
        format!("{}[{index}]", kind.section())
    } else {
        format!("{}[{index}] '{name}'", kind.section())
    }
}

fn resolve_org(
    config: &CryptoConfig,
    org: &OrgSpec,
    kind: OrgKind,
    index: usize,
    source: &str,
) -> Result<ResolvedOrg, Error> {
    let label = org_label(kind, index, &org.name);
    let invalid = |detail: String| Error::InvalidConfig {
        config: source.to_owned(),
        org: label.clone(),
        detail,
    };
    let unsafe_path = |field: &'static str, value: &str| Error::UnsafePath {
        config: source.to_owned(),
        org: label.clone(),
        field,
        value: value.to_owned(),
    };

    if org.name.trim().is_empty() {
        return Err(invalid("Name must not be empty".into()));
    }
    let domain = org.domain.trim();
    if domain.is_empty() {
        return Err(invalid(
            "Domain must not be empty; set it to the org's DNS domain, e.g. org1.example.com"
                .into(),
        ));
    }
    if path_unsafe(domain) {
        return Err(unsafe_path("Domain", domain));
    }
    check_dns_name(domain)
        .map_err(|d| invalid(format!("Domain '{domain}' is not a valid DNS name: {d}")))?;
    let domain = domain.to_owned();

    let validity_days = org
        .validity_days
        .or(config.validity_days)
        .unwrap_or(DEFAULT_VALIDITY_DAYS);
    check_validity_days(validity_days).map_err(&invalid)?;
    let algorithm: KeyAlgorithm = org
        .key_algorithm
        .or(config.key_algorithm)
        .unwrap_or(Curve::P256)
        .into();

    check_public_key_algorithm(&org.ca.public_key_algorithm)
        .map_err(|d| invalid(format!("CA: {d}")))?;
    check_public_key_algorithm(&org.template.public_key_algorithm)
        .map_err(|d| invalid(format!("Template: {d}")))?;

    // The CA.
    let ca_host = if org.ca.hostname.trim().is_empty() {
        "ca"
    } else {
        org.ca.hostname.trim()
    };
    let ca_node = resolve_node(ca_host, &org.ca.common_name, &[], &domain, "CA")
        .map_err(|e| e.into_error(&invalid, &unsafe_path))?;
    let non_empty = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let ca = ResolvedCa {
        tls_common_name: format!("tls{}", ca_node.common_name),
        common_name: ca_node.common_name,
        country: non_empty(&org.ca.country).unwrap_or_else(|| "US".into()),
        province: non_empty(&org.ca.province).unwrap_or_else(|| "California".into()),
        locality: non_empty(&org.ca.locality).unwrap_or_else(|| "San Francisco".into()),
        organizational_unit: non_empty(&org.ca.organizational_unit),
        street_address: non_empty(&org.ca.street_address),
        postal_code: non_empty(&org.ca.postal_code),
    };

    // Nodes: Specs first, then the Template, as cryptogen orders them.
    let count = org.template.count;
    if !(0..=MAX_COUNT).contains(&count) {
        return Err(invalid(format!(
            "Template.Count {count} is out of range; use 0..={MAX_COUNT}"
        )));
    }
    let start = org.template.start;
    if !(0..=1_000_000_000).contains(&start) {
        return Err(invalid(format!(
            "Template.Start {start} is out of range; use a non-negative index"
        )));
    }
    let mut nodes = Vec::new();
    for (i, spec) in org.specs.iter().enumerate() {
        let what = format!("Specs[{i}]");
        check_public_key_algorithm(&spec.public_key_algorithm)
            .map_err(|d| invalid(format!("{what}: {d}")))?;
        if spec.hostname.trim().is_empty() {
            return Err(invalid(format!("{what}: Hostname must not be empty")));
        }
        let node = resolve_node(
            spec.hostname.trim(),
            &spec.common_name,
            &spec.sans,
            &domain,
            &what,
        )
        .map_err(|e| e.into_error(&invalid, &unsafe_path))?;
        nodes.push(node);
    }
    let host_template = if org.template.hostname.is_empty() {
        "{{.Prefix}}{{.Index}}"
    } else {
        &org.template.hostname
    };
    for i in 0..count {
        let index = (start + i).to_string();
        let what = format!("Template (index {index})");
        let hostname = render(
            host_template,
            &[
                ("Prefix", kind.prefix()),
                ("Index", &index),
                ("Domain", &domain),
            ],
        )
        .map_err(|d| invalid(format!("{what}: Hostname template '{host_template}': {d}")))?;
        let node = resolve_node(&hostname, "", &org.template.sans, &domain, &what)
            .map_err(|e| e.into_error(&invalid, &unsafe_path))?;
        nodes.push(node);
    }
    let mut seen = HashSet::new();
    for node in &nodes {
        for name in [&node.hostname, &node.common_name] {
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(Error::DuplicateHost {
                    config: source.to_owned(),
                    org: label.clone(),
                    host: name.clone(),
                });
            }
        }
    }

    // Users.
    let users_count = org.users.count;
    if !(0..=MAX_COUNT).contains(&users_count) {
        return Err(invalid(format!(
            "Users.Count {users_count} is out of range; use 0..={MAX_COUNT}"
        )));
    }
    let users = match kind {
        OrgKind::Peer => (1..=users_count)
            .map(|n| format!("User{n}@{domain}"))
            .collect(),
        OrgKind::Orderer => {
            if users_count > 0 {
                tracing::warn!(
                    org = %label,
                    "Users.Count is ignored for orderer organizations (only Admin is generated, as cryptogen does)"
                );
            }
            Vec::new()
        }
    };

    Ok(ResolvedOrg {
        kind,
        name: org.name.trim().to_owned(),
        admin: format!("Admin@{domain}"),
        domain,
        node_ous: org.enable_node_ous,
        ca,
        nodes,
        users,
        algorithm,
        validity_days,
    })
}

/// Why a node failed to resolve, before it is turned into an [`Error`] with org context.
enum NodeProblem {
    Invalid(String),
    Unsafe(&'static str, String),
}

impl NodeProblem {
    fn into_error(
        self,
        invalid: &impl Fn(String) -> Error,
        unsafe_path: &impl Fn(&'static str, &str) -> Error,
    ) -> Error {
        match self {
            NodeProblem::Invalid(d) => invalid(d),
            NodeProblem::Unsafe(field, value) => unsafe_path(field, &value),
        }
    }
}

fn resolve_node(
    hostname: &str,
    cn_template: &str,
    san_templates: &[String],
    domain: &str,
    what: &str,
) -> Result<ResolvedNode, NodeProblem> {
    if path_unsafe(hostname) {
        return Err(NodeProblem::Unsafe("Hostname", hostname.to_owned()));
    }
    check_label(hostname).map_err(|d| {
        NodeProblem::Invalid(format!(
            "{what}: Hostname '{hostname}' is not a valid DNS label: {d}"
        ))
    })?;
    let cn_template = if cn_template.trim().is_empty() {
        "{{.Hostname}}.{{.Domain}}"
    } else {
        cn_template
    };
    let common_name =
        render(cn_template, &[("Hostname", hostname), ("Domain", domain)]).map_err(|d| {
            NodeProblem::Invalid(format!("{what}: CommonName template '{cn_template}': {d}"))
        })?;
    if path_unsafe(&common_name) {
        return Err(NodeProblem::Unsafe("CommonName", common_name));
    }
    check_dns_name(&common_name).map_err(|d| {
        NodeProblem::Invalid(format!(
            "{what}: CommonName '{common_name}' is not a valid DNS name: {d}"
        ))
    })?;
    let mut sans = vec![common_name.clone(), hostname.to_owned()];
    for template in san_templates {
        let san = render(
            template,
            &[
                ("Hostname", hostname),
                ("Domain", domain),
                ("CommonName", &common_name),
            ],
        )
        .map_err(|d| NodeProblem::Invalid(format!("{what}: SANS template '{template}': {d}")))?;
        let san = san.trim().to_owned();
        check_san(&san)
            .map_err(|d| NodeProblem::Invalid(format!("{what}: SANS entry '{san}': {d}")))?;
        if !sans.iter().any(|s| s.eq_ignore_ascii_case(&san)) {
            sans.push(san);
        }
    }
    Ok(ResolvedNode {
        hostname: hostname.to_owned(),
        common_name,
        sans,
    })
}

fn check_public_key_algorithm(value: &str) -> Result<(), String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "ecdsa" => Ok(()),
        "ed25519" => Err("PublicKeyAlgorithm 'ed25519' is not supported by weft (ECDSA only); remove it and pick the curve with the weft extension 'KeyAlgorithm: P-256 | P-384'".into()),
        other => Err(format!("unknown PublicKeyAlgorithm '{other}'; the only supported value is 'ecdsa'")),
    }
}

/// Expand the `{{.Field}}` substitutions of a cryptogen (Go text/template) string.
///
/// Only plain field references are supported, with optional spaces (`{{ .Hostname }}`); this
/// is everything cryptogen's documentation and sample configs use.
pub(crate) fn render(template: &str, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| "unclosed '{{' (expected '}}')".to_owned())?;
        let expr = after[..close].trim();
        let field = expr
            .strip_prefix('.')
            .filter(|f| !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let Some(field) = field else {
            return Err(format!(
                "unsupported template expression '{{{{{expr}}}}}'; only field references such as {{{{.Hostname}}}} are supported"
            ));
        };
        let value = vars
            .iter()
            .find(|(k, _)| *k == field)
            .map(|(_, v)| *v)
            .ok_or_else(|| {
                let available: Vec<String> = vars.iter().map(|(k, _)| format!(".{k}")).collect();
                format!(
                    "unknown field '.{field}' (available here: {})",
                    available.join(", ")
                )
            })?;
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether a name used as a directory or file name could escape its parent directory.
fn path_unsafe(s: &str) -> bool {
    s.contains(['/', '\\', '\0', ':']) || s == "." || s == ".." || Path::new(s).is_absolute()
}

/// An RFC 1123 host label: 1..=63 letters, digits and '-', not starting or ending with '-'.
fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("empty label".into());
    }
    if label.len() > 63 {
        return Err(format!("label '{label}' is longer than 63 characters"));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "'{c}' is not allowed (use letters, digits and '-')"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label '{label}' must not start or end with '-'"));
    }
    Ok(())
}

/// A DNS name: dot-separated [`check_label`] labels, at most 253 characters.
fn check_dns_name(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in name.split('.') {
        check_label(label)?;
    }
    Ok(())
}

/// A SAN: an IP address, a DNS name, or a wildcard DNS name (`*.example.com`).
fn check_san(san: &str) -> Result<(), String> {
    if san.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = san.strip_prefix("*.").unwrap_or(san);
    check_dns_name(name).map_err(|d| format!("not an IP address or DNS name: {d}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_fields_with_or_without_spaces() {
        let vars = [("Hostname", "peer0"), ("Domain", "org1.example.com")];
        assert_eq!(
            render("{{.Hostname}}.{{.Domain}}", &vars).unwrap(),
            "peer0.org1.example.com"
        );
        assert_eq!(render("{{ .Hostname }}-x", &vars).unwrap(), "peer0-x");
        assert_eq!(render("plain", &vars).unwrap(), "plain");
        let e = render("{{.Nope}}", &vars).unwrap_err();
        assert!(
            e.contains("unknown field '.Nope'") && e.contains(".Hostname, .Domain"),
            "{e}"
        );
        let e = render("{{.Hostname", &vars).unwrap_err();
        assert!(e.contains("unclosed"), "{e}");
        let e = render("{{printf \"%d\" 1}}", &vars).unwrap_err();
        assert!(e.contains("unsupported template expression"), "{e}");
    }

    #[test]
    fn names_are_checked_as_dns() {
        assert!(check_label("peer0").is_ok());
        assert!(check_label("peer-0").is_ok());
        assert!(check_label("-peer").is_err());
        assert!(check_label("peer_0").is_err());
        assert!(check_label("").is_err());
        assert!(check_label(&"a".repeat(64)).is_err());
        assert!(check_dns_name("org1.example.com").is_ok());
        assert!(check_dns_name("org1..example.com").is_err());
        assert!(check_san("127.0.0.1").is_ok());
        assert!(check_san("::1").is_ok());
        assert!(check_san("*.example.com").is_ok());
        assert!(check_san("bad name").is_err());
        for s in ["../../etc", "a/b", "a\\b", "..", ".", "/abs", "c:x"] {
            assert!(path_unsafe(s), "{s}");
        }
        assert!(!path_unsafe("org1.example.com"));
    }

    #[test]
    fn null_values_read_as_cryptogen_zero_values() {
        let yaml = "PeerOrgs:\n  - Name: Org1\n    Domain: org1.example.com\n    CA:\n    Specs:\n    Template:\n      Count: 2\n    Users:\n";
        let c = CryptoConfig::from_yaml_str(yaml, "c.yaml").unwrap();
        let orgs = c.resolve().unwrap();
        assert_eq!(orgs[0].nodes.len(), 2);
        assert_eq!(orgs[0].nodes[1].common_name, "peer1.org1.example.com");
        assert!(orgs[0].users.is_empty());
        assert_eq!(orgs[0].ca.common_name, "ca.org1.example.com");
        assert_eq!(orgs[0].ca.tls_common_name, "tlsca.org1.example.com");
    }

    #[test]
    fn extensions_apply_per_org_over_top_level() {
        let yaml = "KeyAlgorithm: P-384\nValidityDays: 30\nPeerOrgs:\n  - Name: A\n    Domain: a.example.com\n  - Name: B\n    Domain: b.example.com\n    KeyAlgorithm: P-256\n    ValidityDays: 7\n";
        let orgs = CryptoConfig::from_yaml_str(yaml, "c.yaml")
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(
            (orgs[0].algorithm, orgs[0].validity_days),
            (KeyAlgorithm::EcdsaP384, 30)
        );
        assert_eq!(
            (orgs[1].algorithm, orgs[1].validity_days),
            (KeyAlgorithm::EcdsaP256, 7)
        );
        let e = CryptoConfig::from_yaml_str(
            "ValidityDays: 0\nPeerOrgs: [{Name: A, Domain: a.b}]",
            "c.yaml",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("ValidityDays 0 is out of range"),
            "{e}"
        );
        let e =
            CryptoConfig::from_yaml_str("KeyAlgorithm: P-521\nPeerOrgs: []", "c.yaml").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown KeyAlgorithm 'P-521'; use P-256 or P-384"),
            "{e}"
        );
        assert!(e.to_string().starts_with("c.yaml:1:"), "{e}");
        assert_eq!("secp384r1".parse::<Curve>(), Ok(Curve::P384));
        assert_eq!(Curve::P256.to_string(), "P-256");
    }

    #[test]
    fn public_key_algorithm_accepts_ecdsa_only() {
        let ok = "PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n    Specs:\n      - Hostname: p\n        PublicKeyAlgorithm: ecdsa\n";
        CryptoConfig::from_yaml_str(ok, "c.yaml").unwrap();
        let bad = ok.replace("ecdsa", "ed25519");
        let e = CryptoConfig::from_yaml_str(&bad, "c.yaml").unwrap_err();
        assert!(e.to_string().contains("'ed25519' is not supported"), "{e}");
    }

    #[test]
    fn yaml_round_trips() {
        let c = crate::cryptogen::default_network_config();
        let again = CryptoConfig::from_yaml_str(&c.to_yaml().unwrap(), "x").unwrap();
        assert_eq!(again, c);
    }
}
