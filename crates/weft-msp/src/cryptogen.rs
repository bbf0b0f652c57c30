//! Organization crypto material in the directory layout Fabric's `cryptogen` produces.
//!
//! [`generate`] turns a [`CryptoConfig`] into, per organization:
//!
//! ```text
//! <out>/peerOrganizations/<domain>/          (ordererOrganizations/ for orderer orgs)
//!   ca/ca.<domain>-cert.pem, ca/priv_sk       signing CA
//!   tlsca/tlsca.<domain>-cert.pem, priv_sk    TLS CA
//!   msp/cacerts, tlscacerts, admincerts, [config.yaml]      the org's verifying MSP
//!   peers/<host>.<domain>/                    (orderers/ for orderer orgs)
//!     msp/cacerts, tlscacerts, signcerts/<cn>-cert.pem, keystore/priv_sk, admincerts, [config.yaml]
//!     tls/ca.crt, server.crt, server.key
//!   users/Admin@<domain>/, users/User<N>@<domain>/
//!     msp/... as above
//!     tls/ca.crt, client.crt, client.key
//! ```
//!
//! Everything is generated in memory and checked against the disk before the first byte is
//! written: a run that would replace an existing file fails without touching anything unless
//! [`GenerateOptions::overwrite`] is set. Each file is written atomically (temporary file,
//! flush, rename), keys with mode 0600 and everything else 0644 on Unix.

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use time::Duration;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};

pub use crate::config::{
    CryptoConfig, Curve, NodeSpec, NodeTemplate, OrgKind, OrgSpec, ResolvedCa, ResolvedNode,
    ResolvedOrg, Role, UsersSpec, DEFAULT_VALIDITY_DAYS, MAX_COUNT, MAX_VALIDITY_DAYS,
};
use crate::fsutil::{self, Existing, KEY_MODE, PUBLIC_MODE};
use crate::nodeou::MspConfig;
use crate::Error;

/// File name of every private key cryptogen writes (`ca/`, `tlsca/`, `msp/keystore/`).
pub const KEY_FILE: &str = "priv_sk";

/// How [`generate`] treats an output directory that already holds material.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Replace existing keys and certificates (the CLI's `--force`). Without it, any file the
    /// run would write that already exists makes the run fail before anything is written.
    pub overwrite: bool,
}

/// What [`generate`] produced; its `Display` is a short human summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The output directory as given.
    pub output: PathBuf,
    pub orgs: Vec<OrgReport>,
    /// Number of files written.
    pub files_written: usize,
    /// Stale files removed from the generated directories (only with `overwrite`).
    pub removed: Vec<PathBuf>,
}

/// One organization's material. All paths are `output` joined with the layout path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgReport {
    pub kind: OrgKind,
    pub name: String,
    pub domain: String,
    /// `<out>/peerOrganizations/<domain>` or `<out>/ordererOrganizations/<domain>`.
    pub path: PathBuf,
    /// The org's verifying MSP (`<org>/msp`), what channel configs reference.
    pub msp_dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub tls_ca_cert: PathBuf,
    pub tls_ca_key: PathBuf,
    pub node_ous: bool,
    pub algorithm: KeyAlgorithm,
    /// Peers or orderers.
    pub nodes: Vec<IdentityReport>,
    /// `Admin@<domain>` first, then `User<N>@<domain>`.
    pub users: Vec<IdentityReport>,
}

/// One node's or user's material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityReport {
    /// The certificate CN: a node's FQDN or `Admin@<domain>` / `User1@<domain>`.
    pub name: String,
    pub role: Role,
    /// `<org>/peers/<cn>`, `<org>/orderers/<cn>` or `<org>/users/<cn>`.
    pub path: PathBuf,
    /// Local MSP directory (`CORE_PEER_MSPCONFIGPATH`, `ORDERER_GENERAL_LOCALMSPDIR`).
    pub msp_dir: PathBuf,
    pub sign_cert: PathBuf,
    pub sign_key: PathBuf,
    /// `tls/server.crt` for nodes, `tls/client.crt` for users.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// `tls/ca.crt`: the org's TLS CA.
    pub tls_ca_cert: PathBuf,
    /// Subject alternative names of the TLS certificate (empty for users, as cryptogen).
    pub sans: Vec<String>,
}

/// Generate the material for every organization of `config` under `out`.
pub fn generate(
    config: &CryptoConfig,
    out: &Path,
    opts: &GenerateOptions,
) -> Result<Report, Error> {
    let orgs = config.resolve()?;
    let mut plan = Plan::default();
    let mut reports = Vec::with_capacity(orgs.len());
    for org in &orgs {
        tracing::debug!(org = %org.name, domain = %org.domain, "generating organization material");
        reports.push(build_org(org, out, &mut plan)?);
    }
    preflight(out, &plan, opts)?;
    let removed = write_plan(out, &plan, opts)?;
    tracing::info!(
        output = %out.display(),
        orgs = reports.len(),
        files = plan.files.len(),
        "crypto material generated"
    );
    Ok(Report {
        output: out.to_owned(),
        orgs: reports,
        files_written: plan.files.len(),
        removed,
    })
}

/// The default development network: orderer org `example.com` with one orderer, and peer orgs
/// `org1.example.com` and `org2.example.com` with one peer and one user each; NodeOUs on, TLS
/// SANs include `localhost` and `127.0.0.1`. The same network as [`SAMPLE_CRYPTO_CONFIG`].
pub fn default_network_config() -> CryptoConfig {
    let local_sans = || vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let peer_org = |n: u32| OrgSpec {
        name: format!("Org{n}"),
        domain: format!("org{n}.example.com"),
        enable_node_ous: true,
        template: NodeTemplate {
            count: 1,
            sans: local_sans(),
            ..NodeTemplate::default()
        },
        users: UsersSpec { count: 1 },
        ..OrgSpec::default()
    };
    CryptoConfig {
        orderer_orgs: vec![OrgSpec {
            name: "Orderer".into(),
            domain: "example.com".into(),
            enable_node_ous: true,
            specs: vec![NodeSpec {
                hostname: "orderer".into(),
                sans: local_sans(),
                ..NodeSpec::default()
            }],
            ..OrgSpec::default()
        }],
        peer_orgs: vec![peer_org(1), peer_org(2)],
        key_algorithm: None,
        validity_days: None,
    }
}

/// [`default_network_config`] written as a `crypto-config.yaml`, with comments.
pub const SAMPLE_CRYPTO_CONFIG: &str = r#"# crypto-config.yaml: the organizations of a network, in the format of Fabric's cryptogen.
# Generate with:  weft crypto generate --config crypto-config.yaml --output crypto-config
#
# weft extensions (optional, at the top level or inside an org; the org's value wins):
#   KeyAlgorithm: P-256     # ECDSA curve of every key: P-256 (default) or P-384
#   ValidityDays: 3650      # lifetime of every certificate in days (default 3650)

OrdererOrgs:
  - Name: Orderer
    Domain: example.com           # directory ordererOrganizations/example.com
    EnableNodeOUs: true           # role OUs in certs + msp/config.yaml
    Specs:
      - Hostname: orderer         # orderer.example.com
        SANS:                     # TLS names besides the FQDN and the short host name
          - localhost
          - 127.0.0.1             # IP addresses become IP SANs

PeerOrgs:
  - Name: Org1
    Domain: org1.example.com
    EnableNodeOUs: true
    # CA:                         # optional subject of the org's CAs (defaults shown)
    #   Hostname: ca              # CA CN: ca.org1.example.com; TLS CA CN: tlsca.org1.example.com
    #   Country: US
    #   Province: California
    #   Locality: San Francisco
    Template:
      Count: 1                    # peer0.org1.example.com
      # Start: 0
      # Hostname: "{{.Prefix}}{{.Index}}"
      SANS:
        - localhost
        - 127.0.0.1
    Users:
      Count: 1                    # User1@org1.example.com, in addition to Admin@org1.example.com

  - Name: Org2
    Domain: org2.example.com
    EnableNodeOUs: true
    Template:
      Count: 1
      SANS:
        - localhost
        - 127.0.0.1
    Users:
      Count: 1
"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FileKind {
    Key,
    Cert,
    Config,
}

impl FileKind {
    fn what(self) -> &'static str {
        match self {
            FileKind::Key => "private key",
            FileKind::Cert => "certificate",
            FileKind::Config => "MSP config",
        }
    }
}

#[derive(Debug)]
struct PlannedFile {
    rel: PathBuf,
    contents: Vec<u8>,
    kind: FileKind,
}

/// Everything a run writes, relative to the output directory.
#[derive(Debug, Default)]
struct Plan {
    files: Vec<PlannedFile>,
    /// Directories to create, including ones that stay empty (`admincerts` with NodeOUs).
    dirs: BTreeSet<PathBuf>,
}

impl Plan {
    fn file(&mut self, rel: PathBuf, contents: impl Into<Vec<u8>>, kind: FileKind) {
        self.files.push(PlannedFile {
            rel,
            contents: contents.into(),
            kind,
        });
    }

    fn dir(&mut self, rel: PathBuf) {
        self.dirs.insert(rel);
    }
}

/// Per-org context shared by every identity of the org.
struct OrgCtx<'a> {
    org: &'a ResolvedOrg,
    out: &'a Path,
    org_rel: PathBuf,
    validity: Validity,
    sign_ca: CertificateAuthority,
    tls_ca: CertificateAuthority,
    ca_file: String,
    tls_ca_file: String,
    ca_pem: String,
    tls_ca_pem: String,
    /// `Admin@<domain>-cert.pem` and its PEM, once generated (for `admincerts/`).
    admin_cert: Option<(String, String)>,
}

fn cert_file(cn: &str) -> String {
    format!("{cn}-cert.pem")
}

/// The subject cryptogen gives a leaf: the CA's location fields, no O, the CA's OU unless a
/// role OU replaces it, and `cn`.
fn leaf_subject(ca: &ResolvedCa, role_ou: Option<&str>, cn: &str) -> Subject {
    Subject {
        country: Some(ca.country.clone()),
        province: Some(ca.province.clone()),
        locality: Some(ca.locality.clone()),
        organization: None,
        organizational_unit: role_ou
            .map(str::to_owned)
            .or_else(|| ca.organizational_unit.clone()),
        street_address: ca.street_address.clone(),
        postal_code: ca.postal_code.clone(),
        common_name: cn.to_owned(),
    }
}

fn build_org(org: &ResolvedOrg, out: &Path, plan: &mut Plan) -> Result<OrgReport, Error> {
    let org_rel = Path::new(org.kind.dir_name()).join(&org.domain);
    let validity = Validity::from_now(Duration::days(i64::from(org.validity_days)));
    let ca_subject = |cn: &str| Subject {
        organization: Some(org.domain.clone()),
        organizational_unit: org.ca.organizational_unit.clone(),
        ..leaf_subject(&org.ca, None, cn)
    };
    let sign_ca =
        CertificateAuthority::new_root(&ca_subject(&org.ca.common_name), validity, org.algorithm)
            .map_err(|e| Error::crypto(format!("org '{}': creating CA", org.name), e))?;
    let tls_ca = CertificateAuthority::new_root(
        &ca_subject(&org.ca.tls_common_name),
        validity,
        org.algorithm,
    )
    .map_err(|e| Error::crypto(format!("org '{}': creating TLS CA", org.name), e))?;
    let mut ctx = OrgCtx {
        org,
        out,
        validity,
        ca_file: cert_file(&org.ca.common_name),
        tls_ca_file: cert_file(&org.ca.tls_common_name),
        ca_pem: sign_ca.certificate_pem(),
        tls_ca_pem: tls_ca.certificate_pem(),
        sign_ca,
        tls_ca,
        admin_cert: None,
        org_rel,
    };

    // The CAs.
    let ca_dir = ctx.org_rel.join("ca");
    let tlsca_dir = ctx.org_rel.join("tlsca");
    plan.dir(ca_dir.clone());
    plan.dir(tlsca_dir.clone());
    plan.file(
        ca_dir.join(&ctx.ca_file),
        ctx.ca_pem.clone(),
        FileKind::Cert,
    );
    plan.file(
        ca_dir.join(KEY_FILE),
        ctx.sign_ca.key().to_pkcs8_pem(),
        FileKind::Key,
    );
    plan.file(
        tlsca_dir.join(&ctx.tls_ca_file),
        ctx.tls_ca_pem.clone(),
        FileKind::Cert,
    );
    plan.file(
        tlsca_dir.join(KEY_FILE),
        ctx.tls_ca.key().to_pkcs8_pem(),
        FileKind::Key,
    );

    // Admin first: its certificate goes into every admincerts/ when NodeOUs are off.
    let users_rel = ctx.org_rel.join("users");
    let admin_role = if org.node_ous {
        Role::Admin
    } else {
        Role::Client
    };
    let admin = build_identity(
        &mut ctx,
        plan,
        users_rel.join(&org.admin),
        &org.admin,
        admin_role,
        &[],
        LeafProfile::TlsClient,
    )?;

    // The org's verifying MSP.
    let msp_rel = ctx.org_rel.join("msp");
    write_msp_common(&ctx, plan, &msp_rel)?;

    let mut nodes = Vec::with_capacity(org.nodes.len());
    let nodes_rel = ctx.org_rel.join(org.kind.nodes_dir());
    for node in &org.nodes {
        nodes.push(build_identity(
            &mut ctx,
            plan,
            nodes_rel.join(&node.common_name),
            &node.common_name,
            org.kind.node_role(),
            &node.sans,
            LeafProfile::TlsServer,
        )?);
    }
    let mut users = vec![admin];
    for user in &org.users {
        users.push(build_identity(
            &mut ctx,
            plan,
            users_rel.join(user),
            user,
            Role::Client,
            &[],
            LeafProfile::TlsClient,
        )?);
    }

    Ok(OrgReport {
        kind: org.kind,
        name: org.name.clone(),
        domain: org.domain.clone(),
        path: out.join(&ctx.org_rel),
        msp_dir: out.join(&msp_rel),
        ca_cert: out.join(ca_dir.join(&ctx.ca_file)),
        ca_key: out.join(ca_dir.join(KEY_FILE)),
        tls_ca_cert: out.join(tlsca_dir.join(&ctx.tls_ca_file)),
        tls_ca_key: out.join(tlsca_dir.join(KEY_FILE)),
        node_ous: org.node_ous,
        algorithm: org.algorithm,
        nodes,
        users,
    })
}

/// What every MSP directory of the org holds: `cacerts/`, `tlscacerts/`, `admincerts/` (the
/// Admin's certificate when NodeOUs are off, empty otherwise) and `config.yaml` with NodeOUs.
fn write_msp_common(ctx: &OrgCtx<'_>, plan: &mut Plan, msp_rel: &Path) -> Result<(), Error> {
    plan.dir(msp_rel.to_path_buf());
    for sub in ["admincerts", "cacerts", "tlscacerts"] {
        plan.dir(msp_rel.join(sub));
    }
    plan.file(
        msp_rel.join("cacerts").join(&ctx.ca_file),
        ctx.ca_pem.clone(),
        FileKind::Cert,
    );
    plan.file(
        msp_rel.join("tlscacerts").join(&ctx.tls_ca_file),
        ctx.tls_ca_pem.clone(),
        FileKind::Cert,
    );
    if ctx.org.node_ous {
        let yaml = MspConfig::node_ous(&format!("cacerts/{}", ctx.ca_file)).to_yaml()?;
        plan.file(msp_rel.join("config.yaml"), yaml, FileKind::Config);
    } else if let Some((name, pem)) = &ctx.admin_cert {
        plan.file(
            msp_rel.join("admincerts").join(name),
            pem.clone(),
            FileKind::Cert,
        );
    }
    Ok(())
}

fn build_identity(
    ctx: &mut OrgCtx<'_>,
    plan: &mut Plan,
    dir_rel: PathBuf,
    cn: &str,
    role: Role,
    sans: &[String],
    tls_profile: LeafProfile,
) -> Result<IdentityReport, Error> {
    let org = ctx.org;
    let what = |part: &str| format!("org '{}': {part} for '{cn}'", org.name);

    let role_ou = org.node_ous.then(|| role.ou());
    let sign = ctx
        .sign_ca
        .issue(
            &LeafRequest::new(leaf_subject(&org.ca, role_ou, cn), LeafProfile::Signing)
                .validity(ctx.validity)
                .algorithm(org.algorithm),
        )
        .map_err(|e| Error::crypto(what("issuing the signing certificate"), e))?;
    let tls = ctx
        .tls_ca
        .issue(
            &LeafRequest::new(leaf_subject(&org.ca, None, cn), tls_profile)
                .sans(sans.iter().cloned())
                .validity(ctx.validity)
                .algorithm(org.algorithm),
        )
        .map_err(|e| Error::crypto(what("issuing the TLS certificate"), e))?;

    let sign_pem = sign.pem();
    let sign_name = cert_file(cn);
    if cn == org.admin {
        ctx.admin_cert = Some((sign_name.clone(), sign_pem.clone()));
    }

    let msp_rel = dir_rel.join("msp");
    write_msp_common(ctx, plan, &msp_rel)?;
    plan.dir(msp_rel.join("signcerts"));
    plan.dir(msp_rel.join("keystore"));
    let sign_cert_rel = msp_rel.join("signcerts").join(&sign_name);
    let sign_key_rel = msp_rel.join("keystore").join(KEY_FILE);
    plan.file(sign_cert_rel.clone(), sign_pem, FileKind::Cert);
    plan.file(sign_key_rel.clone(), sign.key.to_pkcs8_pem(), FileKind::Key);

    let tls_rel = dir_rel.join("tls");
    plan.dir(tls_rel.clone());
    let prefix = if tls_profile == LeafProfile::TlsServer {
        "server"
    } else {
        "client"
    };
    let tls_cert_rel = tls_rel.join(format!("{prefix}.crt"));
    let tls_key_rel = tls_rel.join(format!("{prefix}.key"));
    let tls_ca_rel = tls_rel.join("ca.crt");
    plan.file(tls_ca_rel.clone(), ctx.tls_ca_pem.clone(), FileKind::Cert);
    plan.file(tls_cert_rel.clone(), tls.pem(), FileKind::Cert);
    plan.file(tls_key_rel.clone(), tls.key.to_pkcs8_pem(), FileKind::Key);

    let out = ctx.out;
    Ok(IdentityReport {
        name: cn.to_owned(),
        role,
        path: out.join(&dir_rel),
        msp_dir: out.join(&msp_rel),
        sign_cert: out.join(sign_cert_rel),
        sign_key: out.join(sign_key_rel),
        tls_cert: out.join(tls_cert_rel),
        tls_key: out.join(tls_key_rel),
        tls_ca_cert: out.join(tls_ca_rel),
        sans: sans.to_vec(),
    })
}

/// Check the disk before writing anything: no symlinked directories inside the output tree,
/// nothing in the way, and (without `overwrite`) no file of the plan already present.
fn preflight(out: &Path, plan: &Plan, opts: &GenerateOptions) -> Result<(), Error> {
    match fs::metadata(out) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::io(
                "use as output directory",
                out,
                std::io::Error::other("it exists and is not a directory"),
            ))
        }
        Ok(_) => {}
        // Nothing exists yet, so nothing can be overwritten.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("inspect output directory", out, e)),
    }

    let mut checked_dirs = HashSet::new();
    let mut check_dir = |dir: PathBuf| -> Result<(), Error> {
        if !checked_dirs.insert(dir.clone()) {
            return Ok(());
        }
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.file_type().is_symlink() => Err(Error::SymlinkInOutput { path: dir }),
            Ok(m) if !m.is_dir() => Err(Error::io(
                "create directory",
                &dir,
                std::io::Error::other("a file with that name is in the way"),
            )),
            _ => Ok(()),
        }
    };
    for dir in &plan.dirs {
        for ancestor in fsutil::ancestors_below(out, dir) {
            check_dir(ancestor)?;
        }
        check_dir(out.join(dir))?;
    }

    // Keys first, so the error names a key when any key exists.
    let mut files: Vec<&PlannedFile> = plan.files.iter().collect();
    files.sort_by_key(|f| f.kind);
    for file in files {
        for ancestor in fsutil::ancestors_below(out, &file.rel) {
            check_dir(ancestor)?;
        }
        let path = out.join(&file.rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                return Err(Error::io(
                    "write",
                    &path,
                    std::io::Error::other("a directory with that name is in the way"),
                ))
            }
            Ok(_) if !opts.overwrite => {
                return Err(Error::WouldOverwrite {
                    path,
                    what: file.kind.what(),
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// Create the directories, write every file atomically and, with `overwrite`, remove files
/// left in the generated directories by an earlier run that this run did not write.
fn write_plan(out: &Path, plan: &Plan, opts: &GenerateOptions) -> Result<Vec<PathBuf>, Error> {
    fs::create_dir_all(out).map_err(|e| Error::io("create output directory", out, e))?;
    // Every file's parent is in `plan.dirs`: these are the directories this run owns.
    let dirs: Vec<PathBuf> = plan.dirs.iter().map(|d| out.join(d)).collect();
    for dir in &dirs {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    let existing = |kind: FileKind| {
        if opts.overwrite {
            Existing::Replace
        } else {
            Existing::Refuse { what: kind.what() }
        }
    };
    for file in &plan.files {
        let mode = if file.kind == FileKind::Key {
            KEY_MODE
        } else {
            PUBLIC_MODE
        };
        fsutil::write_atomic(
            &out.join(&file.rel),
            &file.contents,
            mode,
            existing(file.kind),
        )?;
    }

    let mut removed = Vec::new();
    if opts.overwrite {
        let targets: HashSet<PathBuf> = plan.files.iter().map(|f| out.join(&f.rel)).collect();
        for dir in &dirs {
            let entries = fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
                let path = entry.path();
                let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(true);
                if !is_dir && !targets.contains(&path) {
                    fs::remove_file(&path).map_err(|e| Error::io("remove stale file", &path, e))?;
                    tracing::info!(path = %path.display(), "removed stale file from an earlier run");
                    removed.push(path);
                }
            }
        }
    }

    for dir in &dirs {
        fsutil::sync_dir(dir)?;
    }
    Ok(removed)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rel = |p: &Path| {
            p.strip_prefix(&self.output)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        writeln!(
            f,
            "Generated crypto material for {} organization(s) in {} ({} files)",
            self.orgs.len(),
            self.output.display(),
            self.files_written
        )?;
        for org in &self.orgs {
            let kind = match org.kind {
                OrgKind::Orderer => "orderer org",
                OrgKind::Peer => "peer org",
            };
            writeln!(
                f,
                "  {kind} {} ({}, {}, NodeOUs {}): {}",
                org.name,
                org.domain,
                org.algorithm,
                if org.node_ous { "on" } else { "off" },
                rel(&org.path)
            )?;
            writeln!(f, "    msp:    {}", rel(&org.msp_dir))?;
            writeln!(f, "    ca:     {}", rel(&org.ca_cert))?;
            writeln!(f, "    tlsca:  {}", rel(&org.tls_ca_cert))?;
            for id in org.nodes.iter().chain(&org.users) {
                writeln!(f, "    {:<7} {}: {}", id.role.ou(), id.name, rel(&id.path))?;
            }
        }
        if !self.removed.is_empty() {
            writeln!(
                f,
                "  removed {} stale file(s) from an earlier run",
                self.removed.len()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_config_is_the_default_network() {
        let parsed = CryptoConfig::from_yaml_str(SAMPLE_CRYPTO_CONFIG, "sample").unwrap();
        assert_eq!(parsed, default_network_config());
        let orgs = parsed.resolve().unwrap();
        let names: Vec<_> = orgs.iter().map(|o| o.domain.as_str()).collect();
        assert_eq!(
            names,
            ["example.com", "org1.example.com", "org2.example.com"]
        );
        assert_eq!(
            orgs[0].nodes[0].sans,
            ["orderer.example.com", "orderer", "localhost", "127.0.0.1"]
        );
        assert_eq!(orgs[1].nodes[0].common_name, "peer0.org1.example.com");
        assert_eq!(orgs[1].users, ["User1@org1.example.com"]);
        assert!(orgs[0].users.is_empty());
    }

    #[test]
    fn leaf_subjects_follow_cryptogen() {
        let ca = ResolvedCa {
            common_name: "ca.x".into(),
            tls_common_name: "tlsca.x".into(),
            country: "US".into(),
            province: "California".into(),
            locality: "San Francisco".into(),
            organizational_unit: Some("Fabric".into()),
            street_address: None,
            postal_code: None,
        };
        let s = leaf_subject(&ca, Some("peer"), "peer0.x");
        assert_eq!(s.organization, None);
        assert_eq!(s.organizational_unit.as_deref(), Some("peer"));
        let s = leaf_subject(&ca, None, "peer0.x");
        assert_eq!(s.organizational_unit.as_deref(), Some("Fabric"));
    }
}
