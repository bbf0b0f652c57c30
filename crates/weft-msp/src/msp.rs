//! Fabric MSPs: loading an MSP's trust material and validating identities against it.
//!
//! An [`Msp`] is what Fabric calls a verifying MSP: the CA certificates (`cacerts/`,
//! `intermediatecerts/`), the admin certificates (`admincerts/`), the TLS CA certificates
//! (`tlscacerts/`, `tlsintermediatecerts/`) and the NodeOU rules (`config.yaml`) of one
//! organization, under its MSP ID. [`Msp::from_dir`] reads the directory layout both an org's
//! `msp/` and a node's local `msp/` use; [`Msp::from_parts`] builds one from memory (a channel
//! config's `FabricMSPConfig`).
//!
//! [`Msp::validate`] decides whether a certificate is a member and in which role:
//!
//! 1. it parses, and is not a CA ([`IdentityError::IsCa`]);
//! 2. it chains to one of the MSP's root CAs, directly or through its intermediate CAs, by
//!    issuer name and signature; like Fabric, an identity must be issued by a CA at the end of
//!    the certification path, not by a CA that issued one of the MSP's intermediates
//!    ([`IdentityError::NotIssuedByMsp`]);
//! 3. every certificate of the chain is inside its validity window ([`IdentityError::Expired`],
//!    [`IdentityError::NotYetValid`]);
//! 4. with NodeOUs enabled, it carries exactly one role OU ([`IdentityError::MissingRoleOu`],
//!    [`IdentityError::MultipleRoleOus`]) and, when the OU identifier names a certificate, was
//!    issued by that CA ([`IdentityError::OuCertifierMismatch`]).
//!
//! The role is the role OU's, or [`Role::Admin`] when the certificate is byte-equal to one in
//! `admincerts/`, or [`Role::Member`] for an MSP without NodeOUs.
//!
//! Differences from Fabric's MSP: Fabric's identity validation itself ignores expiry (it
//! verifies the chain at the certificate's notBefore and leaves expiry to the orderer and
//! gossip); weft checks the validity window of every certificate of the chain. CRLs and the
//! `OrganizationalUnitIdentifiers` section of `config.yaml` are not implemented.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message as _;
use time::OffsetDateTime;
use weft_crypto::sign::{verify, PublicKey, SignatureError};
use weft_crypto::x509::{verify_signature, CertSummary};
use weft_crypto::PrivateKey;

use crate::config::Role as OuRole;
use crate::nodeou::MspConfig;
use crate::Error;

/// How deep a certification path may be (leaf excluded) before the search gives up.
const MAX_CHAIN_DEPTH: usize = 8;

/// The role a validated identity plays in its MSP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// NodeOU `client` (applications, users).
    Client,
    /// NodeOU `peer`.
    Peer,
    /// NodeOU `admin`, or a certificate listed in `admincerts/`.
    Admin,
    /// NodeOU `orderer`.
    Orderer,
    /// A member of an MSP without NodeOUs.
    Member,
}

impl Role {
    /// Lower-case name, as in Fabric's `MSPRole` and policies (`member` for [`Role::Member`]).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Peer => "peer",
            Role::Admin => "admin",
            Role::Orderer => "orderer",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When the validity windows of an identity's certificates are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertTime {
    /// Now: requests as they arrive (proposals, broadcasts, deliver sessions).
    Now,
    /// One second after the identity's certificate became valid ([`Msp::validate_at_issuance`]):
    /// what blocks hold, which every node must judge alike at any time.
    Issuance,
}

/// An identity that passed [`Msp::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedIdentity {
    pub msp_id: String,
    pub role: Role,
    /// Subject in RFC 4514 form.
    pub subject: String,
    /// Lower-case hex SHA-256 of the certificate DER.
    pub fingerprint: String,
    pub public_key: PublicKey,
    /// The certificate, DER.
    pub certificate: std::sync::Arc<[u8]>,
    pub not_after: OffsetDateTime,
}

/// Why an identity is not a valid member of an MSP. Every message names the MSP and, once the
/// certificate parsed, its subject.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The serialized identity or its certificate could not be decoded.
    #[error("MSP '{msp_id}': malformed identity: {detail}")]
    Malformed { msp_id: String, detail: String },

    /// The certificate does not chain to any of the MSP's CAs.
    #[error("MSP '{msp_id}': identity '{subject}' is not issued by this MSP: {reason}")]
    NotIssuedByMsp {
        msp_id: String,
        subject: String,
        /// What the certificate's issuer is and why no path to the MSP's CAs was found.
        reason: String,
    },

    /// The certificate, or a CA certificate of its chain, expired.
    #[error("MSP '{msp_id}': identity '{subject}' is expired: {} '{cert_subject}' was valid until {}", cert_kind(subject, cert_subject), rfc3339(*not_after))]
    Expired {
        msp_id: String,
        subject: String,
        /// The certificate that expired: the identity's own or a CA's.
        cert_subject: String,
        not_after: OffsetDateTime,
    },

    /// The certificate, or a CA certificate of its chain, is not valid yet.
    #[error("MSP '{msp_id}': identity '{subject}' is not valid yet: {} '{cert_subject}' is valid from {}", cert_kind(subject, cert_subject), rfc3339(*not_before))]
    NotYetValid {
        msp_id: String,
        subject: String,
        cert_subject: String,
        not_before: OffsetDateTime,
    },

    /// NodeOUs are enabled and the certificate carries none of the role OUs.
    #[error("MSP '{msp_id}': identity '{subject}' has no role OU; with NodeOUs enabled the certificate must carry exactly one of {} (its OUs: {})", list(expected), list(found))]
    MissingRoleOu {
        msp_id: String,
        subject: String,
        expected: Vec<String>,
        found: Vec<String>,
    },

    /// NodeOUs are enabled and the certificate carries more than one role OU.
    #[error("MSP '{msp_id}': identity '{subject}' carries several role OUs ({}); it must be exactly one of client, peer, admin or orderer", list(found))]
    MultipleRoleOus {
        msp_id: String,
        subject: String,
        found: Vec<String>,
    },

    /// The role OU's identifier names a CA certificate, and the identity was issued by another.
    #[error("MSP '{msp_id}': identity '{subject}' has role OU '{ou}' but was issued by '{issuer}'; the MSP's config.yaml grants that OU only to certificates issued by '{expected_issuer}'")]
    OuCertifierMismatch {
        msp_id: String,
        subject: String,
        ou: String,
        issuer: String,
        expected_issuer: String,
    },

    /// The certificate is a CA certificate; identities are end-entity certificates.
    #[error("MSP '{msp_id}': '{subject}' is a CA certificate (basicConstraints CA:TRUE) and cannot be used as an identity")]
    IsCa { msp_id: String, subject: String },

    /// A serialized identity names another MSP than the one asked to deserialize it.
    #[error("serialized identity belongs to MSP '{found}', not to MSP '{expected}'")]
    WrongMsp { expected: String, found: String },

    /// No MSP with the serialized identity's MSP ID is known.
    #[error(
        "unknown MSP '{msp_id}' in serialized identity; known MSPs: {}",
        list(known)
    )]
    UnknownMsp { msp_id: String, known: Vec<String> },

    /// The identity is valid, the signature is not.
    #[error("MSP '{msp_id}': signature by '{subject}' refused: {source}")]
    BadSignature {
        msp_id: String,
        subject: String,
        #[source]
        source: SignatureError,
    },
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(|i| format!("'{i}'"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn cert_kind(subject: &str, cert_subject: &str) -> &'static str {
    if subject == cert_subject {
        "its certificate"
    } else {
        "CA certificate"
    }
}

/// A CA certificate of the MSP.
#[derive(Debug, Clone)]
struct CaCert {
    der: Vec<u8>,
    summary: CertSummary,
    /// Issued one of the MSP's intermediate CAs: may not issue identities itself (Fabric's
    /// "parent certificate should be a leaf of the certification tree").
    internal: bool,
}

/// One role OU of the NodeOU rules.
#[derive(Debug, Clone)]
struct RoleRule {
    role: Role,
    ou: String,
    /// The CA that must have issued identities with this OU, DER (`Certificate:` in
    /// config.yaml).
    certifier: Option<Vec<u8>>,
}

/// One role's OU identifier, for [`MspParts`]: the OU value and optionally the CA certificate
/// (PEM) that must have issued identities carrying it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleOuIdentifier {
    pub organizational_unit_identifier: String,
    pub certificate_pem: Option<Vec<u8>>,
}

/// NodeOU rules for [`MspParts`] (Fabric's `FabricNodeOUs` with `enable: true`); a role left
/// `None` is not recognized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeOuParts {
    pub client: Option<RoleOuIdentifier>,
    pub peer: Option<RoleOuIdentifier>,
    pub admin: Option<RoleOuIdentifier>,
    pub orderer: Option<RoleOuIdentifier>,
}

/// The material of an MSP held in memory, as a channel config's `FabricMSPConfig` carries it:
/// every entry is one PEM certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MspParts {
    pub root_certs: Vec<Vec<u8>>,
    pub intermediate_certs: Vec<Vec<u8>>,
    pub admins: Vec<Vec<u8>>,
    pub tls_root_certs: Vec<Vec<u8>>,
    pub tls_intermediate_certs: Vec<Vec<u8>>,
    /// `None`: NodeOUs disabled.
    pub node_ous: Option<NodeOuParts>,
}

/// A verifying MSP: the trust material of one organization under its MSP ID.
#[derive(Debug, Clone)]
pub struct Msp {
    id: String,
    roots: Vec<CaCert>,
    intermediates: Vec<CaCert>,
    admins: Vec<Vec<u8>>,
    tls_roots: Vec<Vec<u8>>,
    tls_intermediates: Vec<Vec<u8>>,
    node_ous: Option<Vec<RoleRule>>,
}

/// A named PEM input: (what to call it in errors, the bytes).
type Named = (String, Vec<u8>);

impl Msp {
    /// Load the MSP directory `dir` (an org's `msp/` or a node's local `msp/`) as `msp_id`.
    ///
    /// Reads `cacerts/` (required, at least one), `intermediatecerts/`, `admincerts/`,
    /// `tlscacerts/`, `tlsintermediatecerts/` (all optional) and `config.yaml` (optional). As in
    /// Fabric, each file contributes its first certificate, and `signcerts/` and `keystore/`
    /// are ignored (see [`SigningIdentity::from_local_msp_dir`]).
    pub fn from_dir(dir: &Path, msp_id: &str) -> Result<Msp, Error> {
        let meta = fs::metadata(dir).map_err(|e| Error::io("read MSP directory", dir, e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                "read MSP directory",
                dir,
                std::io::Error::other("not a directory"),
            ));
        }
        let roots = read_cert_dir(&dir.join("cacerts"))?;
        if roots.is_empty() {
            return Err(invalid(
                &dir.join("cacerts"),
                msp_id,
                "no CA certificate found; an MSP needs at least one root CA in cacerts/",
            ));
        }
        let intermediates = read_cert_dir(&dir.join("intermediatecerts"))?;
        let admins = read_cert_dir(&dir.join("admincerts"))?;
        let tls_roots = read_cert_dir(&dir.join("tlscacerts"))?;
        let tls_intermediates = read_cert_dir(&dir.join("tlsintermediatecerts"))?;

        let config_path = dir.join("config.yaml");
        let node_ous = match fs::read_to_string(&config_path) {
            Ok(text) => {
                let what = config_path.display().to_string();
                let config = MspConfig::from_yaml(&text, &what)?;
                node_ou_parts_from_config(&config, dir, &config_path)?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("read", &config_path, e)),
        };
        Msp::build(
            msp_id,
            dir,
            Inputs {
                roots,
                intermediates,
                admins,
                tls_roots,
                tls_intermediates,
                node_ous,
            },
        )
    }

    /// An MSP from in-memory material (a channel config's MSP definition).
    pub fn from_parts(msp_id: &str, parts: &MspParts) -> Result<Msp, Error> {
        let named = |field: &str, items: &[Vec<u8>]| -> Vec<Named> {
            items
                .iter()
                .enumerate()
                .map(|(i, pem)| (format!("{field}[{i}]"), pem.clone()))
                .collect()
        };
        let node_ous = parts.node_ous.as_ref().map(|n| {
            let id = |field: &str, role: Role, ou: &Option<RoleOuIdentifier>| {
                ou.as_ref().map(|ou| {
                    (
                        role,
                        ou.organizational_unit_identifier.clone(),
                        ou.certificate_pem
                            .as_ref()
                            .map(|pem| (format!("node_ous.{field}.certificate"), pem.clone())),
                    )
                })
            };
            [
                id("client", Role::Client, &n.client),
                id("peer", Role::Peer, &n.peer),
                id("admin", Role::Admin, &n.admin),
                id("orderer", Role::Orderer, &n.orderer),
            ]
            .into_iter()
            .flatten()
            .collect()
        });
        Msp::build(
            msp_id,
            Path::new("MSP config"),
            Inputs {
                roots: named("root_certs", &parts.root_certs),
                intermediates: named("intermediate_certs", &parts.intermediate_certs),
                admins: named("admins", &parts.admins),
                tls_roots: named("tls_root_certs", &parts.tls_root_certs),
                tls_intermediates: named("tls_intermediate_certs", &parts.tls_intermediate_certs),
                node_ous,
            },
        )
    }

    fn build(msp_id: &str, source: &Path, inputs: Inputs) -> Result<Msp, Error> {
        if msp_id.is_empty() {
            return Err(invalid(source, msp_id, "the MSP ID is empty"));
        }
        let mut roots = Vec::with_capacity(inputs.roots.len());
        for (what, pem) in &inputs.roots {
            let (der, summary) = first_cert(pem, what)?;
            if !summary.is_ca {
                return Err(invalid(
                    Path::new(what),
                    msp_id,
                    format!(
                        "'{}' is not a CA certificate (basicConstraints CA:FALSE) and cannot be a root CA",
                        summary.subject
                    ),
                ));
            }
            roots.push(CaCert {
                der,
                summary,
                internal: false,
            });
        }
        if roots.is_empty() {
            return Err(invalid(
                source,
                msp_id,
                "no root CA certificate; an MSP needs at least one",
            ));
        }
        let mut msp = Msp {
            id: msp_id.to_owned(),
            roots,
            intermediates: Vec::new(),
            admins: Vec::new(),
            tls_roots: Vec::new(),
            tls_intermediates: Vec::new(),
            node_ous: None,
        };

        // Intermediates: CA certificates that chain to a root (through earlier ones too, in any
        // order).
        let mut pending = Vec::new();
        for (what, pem) in &inputs.intermediates {
            let (der, summary) = first_cert(pem, what)?;
            if !summary.is_ca {
                return Err(invalid(
                    Path::new(what),
                    msp_id,
                    format!(
                        "'{}' is not a CA certificate (basicConstraints CA:FALSE) and cannot be an intermediate CA",
                        summary.subject
                    ),
                ));
            }
            pending.push((what.clone(), der, summary));
        }
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for (what, der, summary) in pending {
                if let Some(issuer) = msp.find_issuer(&der, &summary) {
                    mark_internal(&mut msp, &issuer);
                    msp.intermediates.push(CaCert {
                        der,
                        summary,
                        internal: false,
                    });
                } else {
                    rest.push((what, der, summary));
                }
            }
            if rest.len() == before {
                let (what, _, summary) = &rest[0];
                return Err(invalid(
                    Path::new(what),
                    msp_id,
                    format!(
                        "intermediate CA '{}' (issuer '{}') does not chain to any root CA of the MSP",
                        summary.subject, summary.issuer
                    ),
                ));
            }
            pending = rest;
        }

        for (what, pem) in &inputs.admins {
            msp.admins.push(first_cert(pem, what)?.0);
        }
        for (what, pem) in &inputs.tls_roots {
            msp.tls_roots.push(first_cert(pem, what)?.0);
        }
        for (what, pem) in &inputs.tls_intermediates {
            msp.tls_intermediates.push(first_cert(pem, what)?.0);
        }

        if let Some(ids) = inputs.node_ous {
            let mut rules = Vec::with_capacity(ids.len());
            for (role, ou, cert) in ids {
                if ou.is_empty() {
                    return Err(invalid(
                        source,
                        msp_id,
                        format!("NodeOUs: the {role} OU identifier is empty"),
                    ));
                }
                let certifier = match cert {
                    None => None,
                    Some((what, pem)) => {
                        let (der, _) = first_cert(&pem, &what)?;
                        let known = msp
                            .roots
                            .iter()
                            .chain(&msp.intermediates)
                            .any(|c| c.der == der);
                        if !known {
                            return Err(invalid(
                                Path::new(&what),
                                msp_id,
                                format!("the certificate of the NodeOU '{ou}' identifier is not one of the MSP's root or intermediate CA certificates"),
                            ));
                        }
                        Some(der)
                    }
                };
                rules.push(RoleRule {
                    role,
                    ou,
                    certifier,
                });
            }
            msp.node_ous = Some(rules);
        }
        Ok(msp)
    }

    /// The MSP ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Root CA certificates, DER.
    pub fn root_certs(&self) -> impl Iterator<Item = &[u8]> {
        self.roots.iter().map(|c| c.der.as_slice())
    }

    /// Intermediate CA certificates, DER.
    pub fn intermediate_certs(&self) -> impl Iterator<Item = &[u8]> {
        self.intermediates.iter().map(|c| c.der.as_slice())
    }

    /// Admin certificates (`admincerts/`), DER.
    pub fn admin_certs(&self) -> &[Vec<u8>] {
        &self.admins
    }

    /// TLS root CA certificates, DER.
    pub fn tls_root_certs(&self) -> &[Vec<u8>] {
        &self.tls_roots
    }

    /// TLS intermediate CA certificates, DER.
    pub fn tls_intermediate_certs(&self) -> &[Vec<u8>] {
        &self.tls_intermediates
    }

    /// Whether NodeOUs classify identities.
    pub fn node_ous_enabled(&self) -> bool {
        self.node_ous.is_some()
    }

    /// Validate the DER certificate `cert_der` as an identity of this MSP, now.
    pub fn validate(&self, cert_der: &[u8]) -> Result<ValidatedIdentity, IdentityError> {
        self.validate_at(cert_der, OffsetDateTime::now_utc())
    }

    /// Validate the DER certificate `cert_der` as an identity of this MSP one second after the
    /// certificate became valid, whatever the clock says: for what a ledger holds, which every
    /// peer must judge alike at any time (Fabric's MSP validates at the same instant, FAB-3678).
    /// Expired certificates are refused where requests arrive, not when blocks are validated.
    pub fn validate_at_issuance(
        &self,
        cert_der: &[u8],
    ) -> Result<ValidatedIdentity, IdentityError> {
        let leaf = CertSummary::parse(&cert_der.into()).map_err(|e| IdentityError::Malformed {
            msp_id: self.id.clone(),
            detail: e.to_string(),
        })?;
        self.validate_at(cert_der, leaf.not_before + time::Duration::seconds(1))
    }

    /// Validate the DER certificate `cert_der` as an identity of this MSP at `now`.
    pub fn validate_at(
        &self,
        cert_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<ValidatedIdentity, IdentityError> {
        let leaf = CertSummary::parse(&cert_der.into()).map_err(|e| IdentityError::Malformed {
            msp_id: self.id.clone(),
            detail: e.to_string(),
        })?;
        let subject = leaf.subject.clone();
        if leaf.is_ca {
            return Err(IdentityError::IsCa {
                msp_id: self.id.clone(),
                subject,
            });
        }
        let chain =
            self.chain(cert_der, &leaf)
                .map_err(|reason| IdentityError::NotIssuedByMsp {
                    msp_id: self.id.clone(),
                    subject: subject.clone(),
                    reason,
                })?;

        for cert in std::iter::once(&leaf).chain(chain.iter().map(|c| &c.summary)) {
            if now < cert.not_before {
                return Err(IdentityError::NotYetValid {
                    msp_id: self.id.clone(),
                    subject,
                    cert_subject: cert.subject.clone(),
                    not_before: cert.not_before,
                });
            }
            if now > cert.not_after {
                return Err(IdentityError::Expired {
                    msp_id: self.id.clone(),
                    subject,
                    cert_subject: cert.subject.clone(),
                    not_after: cert.not_after,
                });
            }
        }

        let issuer = chain.first().map(|c| c.der.as_slice()).unwrap_or_default();
        let mut role = match &self.node_ous {
            None => Role::Member,
            Some(rules) => self.role_from_ous(&leaf, issuer, rules)?,
        };
        if self.admins.iter().any(|a| a.as_slice() == cert_der) {
            role = Role::Admin;
        }
        let public_key = PublicKey::from_spki_der(&leaf.public_key_der).map_err(|e| {
            IdentityError::Malformed {
                msp_id: self.id.clone(),
                detail: format!("certificate '{subject}': {e}"),
            }
        })?;
        Ok(ValidatedIdentity {
            msp_id: self.id.clone(),
            role,
            fingerprint: leaf.fingerprint(),
            subject,
            public_key,
            certificate: cert_der.into(),
            not_after: leaf.not_after,
        })
    }

    /// Decode a `msp.SerializedIdentity` of this MSP and validate its certificate, now.
    pub fn deserialize(&self, serialized: &[u8]) -> Result<ValidatedIdentity, IdentityError> {
        self.deserialize_at(serialized, OffsetDateTime::now_utc())
    }

    /// [`Msp::deserialize`] at `now`.
    pub fn deserialize_at(
        &self,
        serialized: &[u8],
        now: OffsetDateTime,
    ) -> Result<ValidatedIdentity, IdentityError> {
        let (mspid, der) =
            decode_serialized(serialized).map_err(|detail| IdentityError::Malformed {
                msp_id: self.id.clone(),
                detail,
            })?;
        if mspid != self.id {
            return Err(IdentityError::WrongMsp {
                expected: self.id.clone(),
                found: mspid,
            });
        }
        let der = der.map_err(|detail| IdentityError::Malformed {
            msp_id: self.id.clone(),
            detail,
        })?;
        self.validate_at(&der, now)
    }

    /// A CA of this MSP whose subject is `cert`'s issuer and whose key signed `cert`.
    fn find_issuer(&self, cert_der: &[u8], cert: &CertSummary) -> Option<Vec<u8>> {
        self.roots
            .iter()
            .chain(&self.intermediates)
            .find(|ca| ca.summary.subject == cert.issuer && signed_by(cert_der, &ca.der))
            .map(|ca| ca.der.clone())
    }

    /// The certification path of a leaf: its issuer first, a root last. `Err` says why there
    /// is none.
    fn chain(&self, leaf_der: &[u8], leaf: &CertSummary) -> Result<Vec<&CaCert>, String> {
        let mut path = Vec::new();
        let found = self.extend_path(leaf_der, leaf, &mut path);
        if found {
            let issuer = path[0];
            if issuer.internal {
                return Err(format!(
                    "it is issued directly by '{}', which issues the MSP's intermediate CAs; identities must be issued by a CA at the end of the certification path",
                    issuer.summary.subject
                ));
            }
            return Ok(path);
        }
        let by_name: Vec<&CaCert> = self
            .roots
            .iter()
            .chain(&self.intermediates)
            .filter(|ca| ca.summary.subject == leaf.issuer)
            .collect();
        let cas = self
            .roots
            .iter()
            .chain(&self.intermediates)
            .map(|c| c.summary.subject.clone())
            .collect::<Vec<_>>();
        if by_name.is_empty() {
            Err(format!(
                "its issuer '{}' is none of the MSP's CAs ({})",
                leaf.issuer,
                list(&cas)
            ))
        } else {
            Err(format!(
                "its issuer name '{}' matches a CA of the MSP, but the certificate's signature does not verify with that CA's key (or the CA does not chain to a root)",
                leaf.issuer
            ))
        }
    }

    /// Depth-first search for a path from `cert` to a root; pushes the CAs onto `path`.
    fn extend_path<'a>(
        &'a self,
        cert_der: &[u8],
        cert: &CertSummary,
        path: &mut Vec<&'a CaCert>,
    ) -> bool {
        if path.len() >= MAX_CHAIN_DEPTH {
            return false;
        }
        for ca in self.roots.iter().chain(&self.intermediates) {
            if ca.summary.subject != cert.issuer
                || path.iter().any(|p| std::ptr::eq(*p, ca))
                || !signed_by(cert_der, &ca.der)
            {
                continue;
            }
            path.push(ca);
            let is_root = self.roots.iter().any(|r| std::ptr::eq(r, ca));
            if is_root || self.extend_path(&ca.der, &ca.summary, path) {
                return true;
            }
            path.pop();
        }
        false
    }

    fn role_from_ous(
        &self,
        leaf: &CertSummary,
        issuer_der: &[u8],
        rules: &[RoleRule],
    ) -> Result<Role, IdentityError> {
        let matched = classify(&leaf.organizational_units, rules);
        match matched.as_slice() {
            [] => Err(IdentityError::MissingRoleOu {
                msp_id: self.id.clone(),
                subject: leaf.subject.clone(),
                expected: rules.iter().map(|r| r.ou.clone()).collect(),
                found: leaf.organizational_units.clone(),
            }),
            [rule] => {
                if let Some(certifier) = &rule.certifier {
                    if certifier.as_slice() != issuer_der {
                        let name = |der: &[u8]| {
                            CertSummary::parse(&der.into())
                                .map(|s| s.subject)
                                .unwrap_or_else(|_| "?".to_owned())
                        };
                        return Err(IdentityError::OuCertifierMismatch {
                            msp_id: self.id.clone(),
                            subject: leaf.subject.clone(),
                            ou: rule.ou.clone(),
                            issuer: leaf.issuer.clone(),
                            expected_issuer: name(certifier),
                        });
                    }
                }
                Ok(rule.role)
            }
            several => Err(IdentityError::MultipleRoleOus {
                msp_id: self.id.clone(),
                subject: leaf.subject.clone(),
                found: several.iter().map(|r| r.ou.clone()).collect(),
            }),
        }
    }
}

/// The role rules matched by a certificate's OUs, one entry per matching OU (an OU naming a
/// role twice counts twice, as in Fabric).
fn classify<'a>(ous: &[String], rules: &'a [RoleRule]) -> Vec<&'a RoleRule> {
    ous.iter()
        .filter_map(|ou| rules.iter().find(|r| &r.ou == ou))
        .collect()
}

fn mark_internal(msp: &mut Msp, issuer_der: &[u8]) {
    for ca in msp.roots.iter_mut().chain(msp.intermediates.iter_mut()) {
        if ca.der == issuer_der {
            ca.internal = true;
        }
    }
}

fn signed_by(cert_der: &[u8], issuer_der: &[u8]) -> bool {
    verify_signature(&cert_der.into(), &issuer_der.into()).unwrap_or(false)
}

struct Inputs {
    roots: Vec<Named>,
    intermediates: Vec<Named>,
    admins: Vec<Named>,
    tls_roots: Vec<Named>,
    tls_intermediates: Vec<Named>,
    node_ous: Option<Vec<(Role, String, Option<Named>)>>,
}

fn invalid(path: &Path, msp_id: &str, detail: impl Into<String>) -> Error {
    Error::InvalidConfig {
        config: path.display().to_string(),
        org: format!("MSP '{msp_id}'"),
        detail: detail.into(),
    }
}

/// The first certificate in `pem`, DER and summary; `what` names the source in errors.
fn first_cert(pem: &[u8], what: &str) -> Result<(Vec<u8>, CertSummary), Error> {
    let certs = weft_crypto::pem::certificates(pem, what).map_err(|e| Error::crypto(what, e))?;
    let Some(cert) = certs.first() else {
        return Err(Error::crypto(
            what,
            weft_crypto::Error::PemMissing {
                what: what.to_owned(),
                expected: "CERTIFICATE",
            },
        ));
    };
    if certs.len() > 1 {
        tracing::warn!(
            source = what,
            count = certs.len(),
            "only the first certificate of the file is used, as in Fabric"
        );
    }
    let summary = CertSummary::parse(cert).map_err(|e| Error::crypto(what, e))?;
    Ok((cert.to_vec(), summary))
}

/// Every regular file in `dir`, sorted by name, with its contents; an absent directory is
/// empty. Hidden entries (Kubernetes' `..data`, editors' swap files) are skipped.
fn read_cert_dir(dir: &Path) -> Result<Vec<Named>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symlinks: mounted secrets are links to files.
        if fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            Ok((path.display().to_string(), bytes))
        })
        .collect()
}

type NodeOuInputs = Option<Vec<(Role, String, Option<Named>)>>;

fn node_ou_parts_from_config(
    config: &MspConfig,
    dir: &Path,
    config_path: &Path,
) -> Result<NodeOuInputs, Error> {
    if !config.node_ous.as_ref().is_some_and(|n| n.enable) {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (ou_role, role) in [
        (OuRole::Client, Role::Client),
        (OuRole::Peer, Role::Peer),
        (OuRole::Admin, Role::Admin),
        (OuRole::Orderer, Role::Orderer),
    ] {
        let Some(id) = config.identifier(ou_role) else {
            continue;
        };
        let cert = if id.certificate.is_empty() {
            None
        } else {
            let rel = Path::new(&id.certificate);
            if rel.is_absolute()
                || rel
                    .components()
                    .any(|c| c == std::path::Component::ParentDir)
            {
                return Err(Error::NodeOuConfig {
                    what: config_path.display().to_string(),
                    detail: format!(
                        "the {role} OU identifier's Certificate '{}' must be a path inside the MSP directory, such as cacerts/ca-cert.pem",
                        id.certificate
                    ),
                });
            }
            let path = dir.join(rel);
            let bytes = fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
            Some((path.display().to_string(), bytes))
        };
        out.push((role, id.organizational_unit_identifier.clone(), cert));
    }
    Ok(Some(out))
}

/// Decode a `msp.SerializedIdentity`: the MSP ID, and the first certificate of `id_bytes` (DER)
/// or why there is none. The outer `Err` is for undecodable protobuf.
#[allow(clippy::type_complexity)]
fn decode_serialized(serialized: &[u8]) -> Result<(String, Result<Vec<u8>, String>), String> {
    let sid = weft_proto::msp::SerializedIdentity::decode(serialized)
        .map_err(|e| format!("not a msp.SerializedIdentity protobuf: {e}"))?;
    let der = weft_crypto::pem::certificates(&sid.id_bytes, "SerializedIdentity.id_bytes")
        .map_err(|e| e.to_string())
        .and_then(|certs| {
            certs
                .into_iter()
                .next()
                .map(|c| c.to_vec())
                .ok_or_else(|| "SerializedIdentity.id_bytes holds no certificate".to_owned())
        });
    Ok((sid.mspid, der))
}

/// `msp.SerializedIdentity` bytes for `msp_id` and a DER certificate: the certificate as one PEM
/// block, exactly as Fabric's `identity.Serialize` writes it (`creator` fields, endorsements).
pub fn serialize_identity(msp_id: &str, cert_der: &[u8]) -> Vec<u8> {
    weft_proto::msp::SerializedIdentity {
        mspid: msp_id.to_owned(),
        id_bytes: weft_crypto::pem::encode_certificate(cert_der)
            .into_bytes()
            .into(),
    }
    .encode_to_vec()
}

/// The MSPs a channel or node knows, by MSP ID.
#[derive(Debug, Clone, Default)]
pub struct MspManager {
    pub msps: BTreeMap<String, Msp>,
}

impl MspManager {
    /// A manager for `msps` (a later MSP with the same ID replaces an earlier one).
    pub fn new(msps: impl IntoIterator<Item = Msp>) -> Self {
        MspManager {
            msps: msps.into_iter().map(|m| (m.id.clone(), m)).collect(),
        }
    }

    /// Add or replace an MSP.
    pub fn insert(&mut self, msp: Msp) {
        self.msps.insert(msp.id.clone(), msp);
    }

    /// The MSPs, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Msp> {
        self.msps.values()
    }

    pub fn get(&self, msp_id: &str) -> Option<&Msp> {
        self.msps.get(msp_id)
    }

    /// Decode a `msp.SerializedIdentity` and validate it with the MSP it names, now.
    pub fn deserialize(&self, serialized: &[u8]) -> Result<ValidatedIdentity, IdentityError> {
        self.deserialize_at(serialized, OffsetDateTime::now_utc())
    }

    /// [`MspManager::deserialize`] at `now`.
    pub fn deserialize_at(
        &self,
        serialized: &[u8],
        now: OffsetDateTime,
    ) -> Result<ValidatedIdentity, IdentityError> {
        self.deserialize_with(serialized, Some(now))
    }

    /// [`MspManager::deserialize`] at `when`.
    pub fn deserialize_when(
        &self,
        serialized: &[u8],
        when: CertTime,
    ) -> Result<ValidatedIdentity, IdentityError> {
        match when {
            CertTime::Now => self.deserialize(serialized),
            CertTime::Issuance => self.deserialize_at_issuance(serialized),
        }
    }

    /// [`MspManager::deserialize`] at the certificate's issuance (see
    /// [`Msp::validate_at_issuance`]): for identities read from blocks.
    pub fn deserialize_at_issuance(
        &self,
        serialized: &[u8],
    ) -> Result<ValidatedIdentity, IdentityError> {
        self.deserialize_with(serialized, None)
    }

    /// At `now`, or at the certificate's issuance when `None`.
    fn deserialize_with(
        &self,
        serialized: &[u8],
        now: Option<OffsetDateTime>,
    ) -> Result<ValidatedIdentity, IdentityError> {
        let (mspid, der) =
            decode_serialized(serialized).map_err(|detail| IdentityError::Malformed {
                msp_id: "(undecodable)".to_owned(),
                detail,
            })?;
        let msp = self
            .msps
            .get(&mspid)
            .ok_or_else(|| IdentityError::UnknownMsp {
                msp_id: mspid.clone(),
                known: self.msps.keys().cloned().collect(),
            })?;
        let der = der.map_err(|detail| IdentityError::Malformed {
            msp_id: mspid,
            detail,
        })?;
        match now {
            Some(now) => msp.validate_at(&der, now),
            None => msp.validate_at_issuance(&der),
        }
    }

    /// Validate the creator `serialized_identity` and check that `sig` is its low-S signature of
    /// `msg`. Returns the identity.
    pub fn verify_signature(
        &self,
        serialized_identity: &[u8],
        msg: &[u8],
        sig: &[u8],
    ) -> Result<ValidatedIdentity, IdentityError> {
        let identity = self.deserialize(serialized_identity)?;
        verify(&identity.public_key, msg, sig).map_err(|source| IdentityError::BadSignature {
            msp_id: identity.msp_id.clone(),
            subject: identity.subject.clone(),
            source,
        })?;
        Ok(identity)
    }
}

/// A local MSP's signing identity: the certificate of `signcerts/` and its key from
/// `keystore/`.
#[derive(Debug)]
pub struct SigningIdentity {
    msp_id: String,
    identity: ValidatedIdentity,
    key: PrivateKey,
    /// [`SigningIdentity::serialize`]'s bytes, made once: every proposal, envelope and
    /// endorsement carries them.
    serialized: Vec<u8>,
}

impl SigningIdentity {
    /// Load the signing identity of the local MSP directory `dir` (a node's or user's `msp/`)
    /// as `msp_id`: the first certificate file of `signcerts/` (by name, `.pem` files first)
    /// and the key of `keystore/` that matches it (`priv_sk`, `<ski>_sk` or any other name).
    /// The certificate must be a valid identity of the MSP the same directory describes.
    pub fn from_local_msp_dir(dir: &Path, msp_id: &str) -> Result<SigningIdentity, Error> {
        let msp = Msp::from_dir(dir, msp_id)?;
        let signcerts = dir.join("signcerts");
        let mut files = read_cert_dir(&signcerts)?;
        files.sort_by_key(|(name, _)| !name.ends_with(".pem"));
        let Some((cert_what, cert_pem)) = files.first() else {
            return Err(invalid(
                &signcerts,
                msp_id,
                "no signing certificate found; a local MSP needs its certificate in signcerts/",
            ));
        };
        let (cert_der, summary) = first_cert(cert_pem, cert_what)?;

        let keystore = dir.join("keystore");
        let keys = read_cert_dir(&keystore)?;
        let mut tried = Vec::new();
        let mut key = None;
        for (what, bytes) in keys {
            match PrivateKey::from_pem(&bytes, &what) {
                Ok(k) if k.public_key_der() == summary.public_key_der => {
                    key = Some(k);
                    break;
                }
                Ok(_) => tried.push(format!("{what} (another key)")),
                Err(e) => tried.push(format!("{what} ({e})")),
            }
        }
        let Some(key) = key else {
            return Err(invalid(
                &keystore,
                msp_id,
                format!(
                    "no private key matching the certificate {cert_what} ('{}'); tried: {}",
                    summary.subject,
                    if tried.is_empty() {
                        "no files".to_owned()
                    } else {
                        tried.join(", ")
                    }
                ),
            ));
        };
        let identity = msp.validate(&cert_der).map_err(|e| {
            invalid(
                Path::new(cert_what),
                msp_id,
                format!("the signing certificate is not a valid identity: {e}"),
            )
        })?;
        Ok(SigningIdentity {
            serialized: serialize_identity(msp_id, &identity.certificate),
            msp_id: msp_id.to_owned(),
            identity,
            key,
        })
    }

    pub fn msp_id(&self) -> &str {
        &self.msp_id
    }

    /// The identity as validated when loaded (role, subject, public key).
    pub fn identity(&self) -> &ValidatedIdentity {
        &self.identity
    }

    /// The signing certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.identity.certificate
    }

    /// `msp.SerializedIdentity` bytes: what Fabric puts in a header's `creator` and an
    /// endorsement's `endorser`.
    pub fn serialize(&self) -> Vec<u8> {
        self.serialized.clone()
    }

    /// A low-S DER ECDSA signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        self.key
            .sign(msg)
            .map_err(|e| Error::crypto(format!("signing as '{}'", self.identity.subject), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Vec<RoleRule> {
        [
            (Role::Client, "client"),
            (Role::Peer, "peer"),
            (Role::Admin, "admin"),
            (Role::Orderer, "orderer"),
        ]
        .into_iter()
        .map(|(role, ou)| RoleRule {
            role,
            ou: ou.to_owned(),
            certifier: None,
        })
        .collect()
    }

    fn ous(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn classification_counts_role_ous_only() {
        let rules = rules();
        let roles = |v: &[&str]| -> Vec<Role> {
            classify(&ous(v), &rules).iter().map(|r| r.role).collect()
        };
        assert_eq!(roles(&["peer"]), [Role::Peer]);
        assert_eq!(roles(&["Fabric", "client", "department1"]), [Role::Client]);
        assert!(roles(&["Fabric"]).is_empty());
        assert!(roles(&[]).is_empty());
        assert_eq!(roles(&["peer", "admin"]), [Role::Peer, Role::Admin]);
        assert_eq!(roles(&["client", "client"]).len(), 2);
        // OU matching is exact, as in Fabric.
        assert!(roles(&["Peer", "peer "]).is_empty());
    }

    #[test]
    fn error_messages_name_the_msp_subject_and_problem() {
        let e = IdentityError::MultipleRoleOus {
            msp_id: "Org1MSP".into(),
            subject: "CN=x".into(),
            found: ous(&["peer", "admin"]),
        };
        assert_eq!(
            e.to_string(),
            "MSP 'Org1MSP': identity 'CN=x' carries several role OUs ('peer', 'admin'); it must be exactly one of client, peer, admin or orderer"
        );
        let t = time::macros::datetime!(2020-01-02 03:04:05 UTC);
        let e = IdentityError::Expired {
            msp_id: "Org1MSP".into(),
            subject: "CN=x".into(),
            cert_subject: "CN=ca".into(),
            not_after: t,
        };
        assert_eq!(
            e.to_string(),
            "MSP 'Org1MSP': identity 'CN=x' is expired: CA certificate 'CN=ca' was valid until 2020-01-02T03:04:05Z"
        );
        let e = IdentityError::UnknownMsp {
            msp_id: "Org9MSP".into(),
            known: ous(&["Org1MSP", "Org2MSP"]),
        };
        assert!(
            e.to_string().contains("known MSPs: 'Org1MSP', 'Org2MSP'"),
            "{e}"
        );
    }
}
