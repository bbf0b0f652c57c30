//! Generates organization material into temporary directories and reads every file back:
//! layout, certificate contents and chains, keys, NodeOU config, overwrite protection, config
//! errors, and (when the binary is installed) `openssl`'s opinion of the output.

// Helpers outside `#[test]` functions are test code too; clippy.toml only exempts the latter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use weft_crypto::pem::certificates;
use weft_crypto::x509::{verify_signature, CertSummary};
use weft_crypto::{KeyAlgorithm, PrivateKey};
use weft_msp::cryptogen::{IdentityReport, OrgReport};
use weft_msp::{
    default_network_config, generate, CryptoConfig, Error, GenerateOptions, MspConfig, OrgKind,
    Role, SAMPLE_CRYPTO_CONFIG,
};

const NO_OVERWRITE: GenerateOptions = GenerateOptions { overwrite: false };

/// A config in the style of Fabric's samples: CA subject, explicit Specs with a CN override and
/// templated SANS, a Template with Start/Hostname/SANS, users, NodeOUs off.
const CRYPTOGEN_STYLE: &str = r#"
OrdererOrgs:
  - Name: Orderer
    Domain: example.com
    Specs:
      - Hostname: orderer1
      - Hostname: orderer2
PeerOrgs:
  - Name: Org1
    Domain: org1.example.com
    EnableNodeOUs: false
    CA:
      Hostname: ca
      Country: DE
      Province: Berlin
      Locality: Berlin
      OrganizationalUnit: Hyperledger Fabric
      StreetAddress: Main Street 1
      PostalCode: "10115"
    Specs:
      - Hostname: foo
        CommonName: foo27.org1.example.com
        SANS:
          - "bar.{{.Domain}}"
          - "{{ .Hostname }}.alt.net"
          - "{{.CommonName}}"
          - 172.16.10.31
    Template:
      Count: 2
      Start: 5
      Hostname: "node{{.Index}}"
      SANS:
        - "{{.Hostname}}.alt.{{.Domain}}"
    Users:
      Count: 2
"#;

// ---------------------------------------------------------------------------------------------
// Helpers

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The single certificate in a PEM file, summarized.
fn summary(path: &Path) -> CertSummary {
    let certs = certificates(&read(path), &path.display().to_string()).unwrap();
    assert_eq!(
        certs.len(),
        1,
        "{}: expected exactly one certificate",
        path.display()
    );
    CertSummary::parse(&certs[0]).unwrap()
}

/// Whether the certificate at `cert` carries a valid signature by the CA at `ca`.
fn signed_by(cert: &Path, ca: &Path) -> bool {
    let c = certificates(&read(cert), "cert").unwrap();
    let ca = certificates(&read(ca), "ca").unwrap();
    verify_signature(&c[0], &ca[0]).unwrap()
}

/// Assert the key at `key` is the private half of the certificate at `cert`.
fn assert_key_matches(key: &Path, cert: &Path) -> KeyAlgorithm {
    let k = PrivateKey::from_pem(&read(key), &key.display().to_string()).unwrap();
    assert_eq!(
        k.public_key_der(),
        summary(cert).public_key_der,
        "{} does not belong to {}",
        key.display(),
        cert.display()
    );
    assert!(String::from_utf8(read(key))
        .unwrap()
        .starts_with("-----BEGIN PRIVATE KEY-----"));
    k.algorithm()
}

/// Every file (`a/b`) and empty directory (`a/`) below `root`, with file contents.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let mut empty = true;
        for entry in fs::read_dir(dir).unwrap() {
            empty = false;
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
        if empty && dir != root {
            let rel = dir
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(format!("{rel}/"), Vec::new());
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The files cryptogen writes for one node or user (NodeOUs on), relative to the org.
fn local_msp_files(base: &str, cn: &str, ca: &str, tls_prefix: &str) -> Vec<String> {
    vec![
        format!("{base}/msp/admincerts/"),
        format!("{base}/msp/cacerts/{ca}-cert.pem"),
        format!("{base}/msp/config.yaml"),
        format!("{base}/msp/keystore/priv_sk"),
        format!("{base}/msp/signcerts/{cn}-cert.pem"),
        format!("{base}/msp/tlscacerts/tls{ca}-cert.pem"),
        format!("{base}/tls/ca.crt"),
        format!("{base}/tls/{tls_prefix}.crt"),
        format!("{base}/tls/{tls_prefix}.key"),
    ]
}

/// Check one identity's MSP and TLS material against its org. `sign_ou` and `tls_ou` are the
/// expected OUs of the sign and TLS certs (None: no OU at all).
fn check_identity(
    org: &OrgReport,
    id: &IdentityReport,
    sign_ou: Option<&str>,
    tls_ou: Option<&str>,
    server: bool,
) {
    let ctx = format!("{} ({})", id.name, org.domain);

    // Signing identity.
    let s = summary(&id.sign_cert);
    assert_eq!(
        id.sign_cert.file_name().unwrap().to_string_lossy(),
        format!("{}-cert.pem", id.name)
    );
    assert_eq!(s.common_name.as_deref(), Some(id.name.as_str()), "{ctx}");
    assert_eq!(
        s.organizational_units,
        sign_ou.into_iter().collect::<Vec<_>>(),
        "{ctx}"
    );
    assert!(
        !s.subject.contains(" O=") && !s.subject.starts_with("O="),
        "{ctx}: leaf has an O"
    );
    assert!(!s.is_ca, "{ctx}");
    assert_eq!(s.key_usage, ["digitalSignature"], "{ctx}");
    assert!(s.ext_key_usage.is_empty(), "{ctx}");
    assert!(s.sans.is_empty(), "{ctx}");
    assert_eq!(s.issuer, summary(&org.ca_cert).subject, "{ctx}");
    assert!(
        signed_by(&id.sign_cert, &org.ca_cert),
        "{ctx}: sign cert not signed by the org CA"
    );
    assert!(
        !signed_by(&id.sign_cert, &org.tls_ca_cert),
        "{ctx}: sign cert signed by the TLS CA"
    );
    assert_eq!(
        assert_key_matches(&id.sign_key, &id.sign_cert),
        org.algorithm
    );
    assert_eq!(id.sign_key, id.msp_dir.join("keystore/priv_sk"));

    // MSP trust material.
    let ca_name = org.ca_cert.file_name().unwrap();
    let tls_ca_name = org.tls_ca_cert.file_name().unwrap();
    assert_eq!(
        read(&id.msp_dir.join("cacerts").join(ca_name)),
        read(&org.ca_cert),
        "{ctx}"
    );
    assert_eq!(
        read(&id.msp_dir.join("tlscacerts").join(tls_ca_name)),
        read(&org.tls_ca_cert)
    );
    assert_eq!(files_in(&id.msp_dir.join("cacerts")).len(), 1);
    assert_eq!(files_in(&id.msp_dir.join("keystore")), ["priv_sk"]);
    if org.node_ous {
        check_node_ou_config(&id.msp_dir, &org.ca_cert);
        assert!(files_in(&id.msp_dir.join("admincerts")).is_empty(), "{ctx}");
    } else {
        assert!(!id.msp_dir.join("config.yaml").exists(), "{ctx}");
        let admin = format!("Admin@{}-cert.pem", org.domain);
        assert_eq!(
            files_in(&id.msp_dir.join("admincerts")),
            std::slice::from_ref(&admin),
            "{ctx}"
        );
        let admin_signcert = org.path.join("users").join(format!("Admin@{}", org.domain));
        assert_eq!(
            read(&id.msp_dir.join("admincerts").join(&admin)),
            read(&admin_signcert.join("msp/signcerts").join(&admin))
        );
    }

    // TLS.
    let tls_dir = id.path.join("tls");
    let prefix = if server { "server" } else { "client" };
    assert_eq!(id.tls_cert, tls_dir.join(format!("{prefix}.crt")));
    assert_eq!(id.tls_key, tls_dir.join(format!("{prefix}.key")));
    assert_eq!(
        files_in(&tls_dir),
        [
            "ca.crt".to_owned(),
            format!("{prefix}.crt"),
            format!("{prefix}.key")
        ]
    );
    assert_eq!(read(&id.tls_ca_cert), read(&org.tls_ca_cert));
    let t = summary(&id.tls_cert);
    assert_eq!(t.common_name.as_deref(), Some(id.name.as_str()));
    assert_eq!(
        t.organizational_units,
        tls_ou.into_iter().collect::<Vec<_>>(),
        "{ctx}"
    );
    assert!(!t.is_ca);
    assert_eq!(
        t.key_usage,
        ["digitalSignature", "keyEncipherment"],
        "{ctx}"
    );
    if server {
        assert_eq!(t.ext_key_usage, ["serverAuth", "clientAuth"], "{ctx}");
    } else {
        assert_eq!(t.ext_key_usage, ["clientAuth"], "{ctx}");
    }
    let names: Vec<String> = t.names().into_iter().map(str::to_owned).collect();
    assert_eq!(names, id.sans, "{ctx}");
    assert!(
        signed_by(&id.tls_cert, &org.tls_ca_cert),
        "{ctx}: TLS cert not signed by the TLS CA"
    );
    assert!(
        !signed_by(&id.tls_cert, &org.ca_cert),
        "{ctx}: TLS cert signed by the signing CA"
    );
    assert_eq!(assert_key_matches(&id.tls_key, &id.tls_cert), org.algorithm);
    assert_ne!(
        read(&id.tls_key),
        read(&id.sign_key),
        "{ctx}: TLS and signing keys must differ"
    );

    #[cfg(unix)]
    {
        assert_eq!(mode(&id.sign_key), 0o600, "{ctx}");
        assert_eq!(mode(&id.tls_key), 0o600, "{ctx}");
        assert_eq!(mode(&id.sign_cert), 0o644, "{ctx}");
        assert_eq!(mode(&id.tls_cert), 0o644, "{ctx}");
    }
}

/// `msp/config.yaml` parses, enables all four OUs and points at the org CA inside the MSP.
fn check_node_ou_config(msp_dir: &Path, ca_cert: &Path) {
    let path = msp_dir.join("config.yaml");
    let text = String::from_utf8(read(&path)).unwrap();
    let config = MspConfig::from_yaml(&text, &path.display().to_string()).unwrap();
    for role in [Role::Client, Role::Peer, Role::Admin, Role::Orderer] {
        let id = config
            .identifier(role)
            .unwrap_or_else(|| panic!("{}: no {role:?}", path.display()));
        assert_eq!(id.organizational_unit_identifier, role.ou());
        let referenced = msp_dir.join(&id.certificate);
        assert!(
            referenced.is_file(),
            "{}: {} does not exist",
            path.display(),
            referenced.display()
        );
        assert_eq!(read(&referenced), read(ca_cert));
    }
}

fn check_org_cas(org: &OrgReport, country: &str, province: &str, locality: &str) {
    let ca = summary(&org.ca_cert);
    let tls = summary(&org.tls_ca_cert);
    assert_eq!(
        org.ca_cert,
        org.path
            .join("ca")
            .join(format!("ca.{}-cert.pem", org.domain))
    );
    assert_eq!(
        org.tls_ca_cert,
        org.path
            .join("tlsca")
            .join(format!("tlsca.{}-cert.pem", org.domain))
    );
    for (s, cn) in [
        (&ca, format!("ca.{}", org.domain)),
        (&tls, format!("tlsca.{}", org.domain)),
    ] {
        assert!(s.is_ca);
        assert_eq!(s.subject, s.issuer, "CA must be self-signed");
        assert_eq!(s.common_name.as_deref(), Some(cn.as_str()));
        for part in [
            format!("C={country}"),
            format!("ST={province}"),
            format!("L={locality}"),
            format!("O={}", org.domain),
        ] {
            assert!(s.subject.contains(&part), "{}: missing {part}", s.subject);
        }
        assert_eq!(
            s.key_usage,
            [
                "digitalSignature",
                "keyEncipherment",
                "keyCertSign",
                "cRLSign"
            ]
        );
    }
    assert!(signed_by(&org.ca_cert, &org.ca_cert));
    assert!(signed_by(&org.tls_ca_cert, &org.tls_ca_cert));
    assert_eq!(assert_key_matches(&org.ca_key, &org.ca_cert), org.algorithm);
    assert_eq!(
        assert_key_matches(&org.tls_ca_key, &org.tls_ca_cert),
        org.algorithm
    );
    assert_eq!(
        files_in(&org.path.join("ca")),
        [format!("ca.{}-cert.pem", org.domain), "priv_sk".into()]
    );
    #[cfg(unix)]
    {
        assert_eq!(mode(&org.ca_key), 0o600);
        assert_eq!(mode(&org.tls_ca_key), 0o600);
        assert_eq!(mode(&org.ca_cert), 0o644);
    }

    // The org's verifying MSP.
    assert_eq!(org.msp_dir, org.path.join("msp"));
    assert_eq!(
        read(
            &org.msp_dir
                .join("cacerts")
                .join(org.ca_cert.file_name().unwrap())
        ),
        read(&org.ca_cert)
    );
    assert_eq!(
        read(
            &org.msp_dir
                .join("tlscacerts")
                .join(org.tls_ca_cert.file_name().unwrap())
        ),
        read(&org.tls_ca_cert)
    );
    assert!(!org.msp_dir.join("keystore").exists() && !org.msp_dir.join("signcerts").exists());
    if org.node_ous {
        check_node_ou_config(&org.msp_dir, &org.ca_cert);
        assert!(files_in(&org.msp_dir.join("admincerts")).is_empty());
    } else {
        assert_eq!(
            files_in(&org.msp_dir.join("admincerts")),
            [format!("Admin@{}-cert.pem", org.domain)]
        );
        assert!(!org.msp_dir.join("config.yaml").exists());
    }
}

/// Location fields and OU of an org's CA config.
struct CaFields<'a> {
    country: &'a str,
    province: &'a str,
    locality: &'a str,
    ou: Option<&'a str>,
}

const DEFAULT_CA: CaFields<'static> = CaFields {
    country: "US",
    province: "California",
    locality: "San Francisco",
    ou: None,
};

fn check_org(org: &OrgReport, ca: &CaFields<'_>) {
    check_org_cas(org, ca.country, ca.province, ca.locality);
    // With NodeOUs the role OU is the sign cert's OU; without, the CA's OU (if any) is.
    let ou = |role: Role| if org.node_ous { Some(role.ou()) } else { ca.ou };
    for node in &org.nodes {
        assert_eq!(node.role, org.kind.node_role());
        assert_eq!(
            node.path.parent().unwrap(),
            org.path.join(org.kind.nodes_dir())
        );
        check_identity(org, node, ou(node.role), ca.ou, true);
    }
    let admin = &org.users[0];
    assert_eq!(admin.name, format!("Admin@{}", org.domain));
    for user in &org.users {
        assert_eq!(user.path.parent().unwrap(), org.path.join("users"));
        check_identity(org, user, ou(user.role), ca.ou, false);
    }
    assert_eq!(
        admin.role,
        if org.node_ous {
            Role::Admin
        } else {
            Role::Client
        }
    );
}

fn no_temp_files(root: &Path) {
    for path in tree(root).keys() {
        let name = path.trim_end_matches('/').rsplit('/').next().unwrap();
        assert!(!name.starts_with('.'), "leftover temporary file {path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Config parsing

#[test]
fn sample_config_parses_to_the_default_network() {
    let parsed = CryptoConfig::from_yaml_str(SAMPLE_CRYPTO_CONFIG, "sample.yaml").unwrap();
    assert_eq!(parsed, default_network_config());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crypto-config.yaml");
    fs::write(&path, SAMPLE_CRYPTO_CONFIG).unwrap();
    assert_eq!(CryptoConfig::from_file(&path).unwrap(), parsed);
}

#[test]
fn cryptogen_style_config_expands_specs_templates_and_users() {
    let config = CryptoConfig::from_yaml_str(CRYPTOGEN_STYLE, "crypto-config.yaml").unwrap();
    let orgs = config.resolve().unwrap();
    assert_eq!(orgs.len(), 2);

    let orderer = &orgs[0];
    assert_eq!(orderer.kind, OrgKind::Orderer);
    let cns: Vec<_> = orderer
        .nodes
        .iter()
        .map(|n| n.common_name.as_str())
        .collect();
    assert_eq!(cns, ["orderer1.example.com", "orderer2.example.com"]);
    assert!(!orderer.node_ous);

    let org1 = &orgs[1];
    assert_eq!(
        (org1.name.as_str(), org1.domain.as_str()),
        ("Org1", "org1.example.com")
    );
    assert_eq!(org1.ca.common_name, "ca.org1.example.com");
    assert_eq!(org1.ca.tls_common_name, "tlsca.org1.example.com");
    assert_eq!(org1.ca.country, "DE");
    assert_eq!(
        org1.ca.organizational_unit.as_deref(),
        Some("Hyperledger Fabric")
    );
    assert_eq!(org1.ca.postal_code.as_deref(), Some("10115"));
    let foo = &org1.nodes[0];
    assert_eq!(foo.common_name, "foo27.org1.example.com");
    // CN and host name first, templated SANS after, the duplicate CN entry dropped.
    assert_eq!(
        foo.sans,
        [
            "foo27.org1.example.com",
            "foo",
            "bar.org1.example.com",
            "foo.alt.net",
            "172.16.10.31"
        ]
    );
    let templated: Vec<_> = org1.nodes[1..]
        .iter()
        .map(|n| (n.hostname.as_str(), n.sans.clone()))
        .collect();
    assert_eq!(
        templated,
        [
            (
                "node5",
                vec![
                    "node5.org1.example.com".to_owned(),
                    "node5".into(),
                    "node5.alt.org1.example.com".into()
                ]
            ),
            (
                "node6",
                vec![
                    "node6.org1.example.com".to_owned(),
                    "node6".into(),
                    "node6.alt.org1.example.com".into()
                ]
            ),
        ]
    );
    assert_eq!(
        org1.users,
        ["User1@org1.example.com", "User2@org1.example.com"]
    );
    assert_eq!(org1.admin, "Admin@org1.example.com");
    assert_eq!(org1.algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(org1.validity_days, 3650);
}

// ---------------------------------------------------------------------------------------------
// Generation

#[test]
fn default_network_has_cryptogens_layout_and_consistent_material() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crypto-config");
    let report = generate(&default_network_config(), &out, &NO_OVERWRITE).unwrap();

    assert_eq!(report.output, out);
    let domains: Vec<_> = report
        .orgs
        .iter()
        .map(|o| (o.kind, o.domain.as_str()))
        .collect();
    assert_eq!(
        domains,
        [
            (OrgKind::Orderer, "example.com"),
            (OrgKind::Peer, "org1.example.com"),
            (OrgKind::Peer, "org2.example.com")
        ]
    );
    let files = tree(&out);
    assert_eq!(
        report.files_written,
        files.keys().filter(|k| !k.ends_with('/')).count()
    );
    assert!(report.removed.is_empty());

    // Exactly cryptogen's files for a peer org (NodeOUs on, one peer, one user).
    let org1: Vec<String> = files
        .keys()
        .filter_map(|k| k.strip_prefix("peerOrganizations/org1.example.com/"))
        .map(str::to_owned)
        .collect();
    let ca = "ca.org1.example.com";
    let mut expected: Vec<String> = [
        "ca/ca.org1.example.com-cert.pem",
        "ca/priv_sk",
        "msp/admincerts/",
        "msp/cacerts/ca.org1.example.com-cert.pem",
        "msp/config.yaml",
        "msp/tlscacerts/tlsca.org1.example.com-cert.pem",
        "tlsca/priv_sk",
        "tlsca/tlsca.org1.example.com-cert.pem",
    ]
    .map(str::to_owned)
    .to_vec();
    let peer = "peer0.org1.example.com";
    expected.extend(local_msp_files(
        &format!("peers/{peer}"),
        peer,
        ca,
        "server",
    ));
    for user in ["Admin@org1.example.com", "User1@org1.example.com"] {
        expected.extend(local_msp_files(
            &format!("users/{user}"),
            user,
            ca,
            "client",
        ));
    }
    expected.sort();
    assert_eq!(org1, expected);

    // The orderer org: one orderer and only Admin.
    let orderer_top: Vec<_> = files
        .keys()
        .filter_map(|k| k.strip_prefix("ordererOrganizations/example.com/"))
        .filter(|k| k.starts_with("orderers/") || k.starts_with("users/"))
        .filter_map(|k| {
            k.split("/msp/")
                .next()
                .filter(|_| k.contains("/msp/signcerts/"))
        })
        .map(str::to_owned)
        .collect();
    assert_eq!(
        orderer_top,
        ["orderers/orderer.example.com", "users/Admin@example.com"]
    );

    for org in &report.orgs {
        check_org(org, &DEFAULT_CA);
    }
    let orderer = &report.orgs[0].nodes[0];
    assert_eq!(orderer.name, "orderer.example.com");
    assert_eq!(
        orderer.sans,
        ["orderer.example.com", "orderer", "localhost", "127.0.0.1"]
    );
    let tls = summary(&orderer.tls_cert);
    assert_eq!(
        tls.sans,
        [
            "DNS:orderer.example.com",
            "DNS:orderer",
            "DNS:localhost",
            "IP:127.0.0.1"
        ]
    );
    let s = summary(&report.orgs[1].nodes[0].sign_cert);
    assert_eq!(
        s.subject,
        "C=US, ST=California, L=San Francisco, OU=peer, CN=peer0.org1.example.com"
    );
    let s = summary(&report.orgs[1].ca_cert);
    assert_eq!(
        s.subject,
        "C=US, ST=California, L=San Francisco, O=org1.example.com, CN=ca.org1.example.com"
    );
    // Two orgs never share a CA.
    assert!(!signed_by(
        &report.orgs[1].nodes[0].sign_cert,
        &report.orgs[2].ca_cert
    ));

    let text = report.to_string();
    assert!(
        text.contains("peer0.org1.example.com") && text.contains("Admin@example.com"),
        "{text}"
    );
    no_temp_files(&out);
}

#[test]
fn cryptogen_style_network_without_node_ous_uses_admincerts_and_the_ca_subject() {
    let dir = tempfile::tempdir().unwrap();
    let config = CryptoConfig::from_yaml_str(CRYPTOGEN_STYLE, "crypto-config.yaml").unwrap();
    let report = generate(&config, dir.path(), &NO_OVERWRITE).unwrap();

    check_org(&report.orgs[0], &DEFAULT_CA);
    let org1 = &report.orgs[1];
    check_org(
        org1,
        &CaFields {
            country: "DE",
            province: "Berlin",
            locality: "Berlin",
            ou: Some("Hyperledger Fabric"),
        },
    );
    assert_eq!(org1.nodes.len(), 3);
    assert_eq!(org1.users.len(), 3, "Admin + 2 users");
    let ca = summary(&org1.ca_cert);
    for part in [
        "OU=Hyperledger Fabric",
        "O=org1.example.com",
        "CN=ca.org1.example.com",
    ] {
        assert!(ca.subject.contains(part), "{}", ca.subject);
    }
    let foo = &org1.nodes[0];
    assert_eq!(foo.path, org1.path.join("peers/foo27.org1.example.com"));
    let tls = summary(&foo.tls_cert);
    assert_eq!(
        tls.sans,
        [
            "DNS:foo27.org1.example.com",
            "DNS:foo",
            "DNS:bar.org1.example.com",
            "DNS:foo.alt.net",
            "IP:172.16.10.31"
        ]
    );
    no_temp_files(dir.path());
}

#[test]
fn p384_profile_yields_p384_keys_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = default_network_config();
    config.peer_orgs[1].key_algorithm = Some(weft_msp::Curve::P384);
    let report = generate(&config, dir.path(), &NO_OVERWRITE).unwrap();
    let org2 = &report.orgs[2];
    assert_eq!(org2.algorithm, KeyAlgorithm::EcdsaP384);
    check_org(org2, &DEFAULT_CA);
    for id in org2.nodes.iter().chain(&org2.users) {
        for cert in [&id.sign_cert, &id.tls_cert] {
            let s = summary(cert);
            assert_eq!(s.key_algorithm, "ECDSA P-384", "{}", cert.display());
            assert_eq!(
                s.signature_algorithm,
                "ecdsa-with-SHA384",
                "{}",
                cert.display()
            );
        }
    }
    assert_eq!(summary(&org2.ca_cert).key_algorithm, "ECDSA P-384");
    // The other orgs keep the default.
    assert_eq!(report.orgs[1].algorithm, KeyAlgorithm::EcdsaP256);
    assert_eq!(
        summary(&report.orgs[1].nodes[0].sign_cert).key_algorithm,
        "ECDSA P-256"
    );

    // The top-level extension applies to every org, and ValidityDays shortens every cert.
    let yaml = format!("KeyAlgorithm: P-384\nValidityDays: 30\n{SAMPLE_CRYPTO_CONFIG}");
    let config = CryptoConfig::from_yaml_str(&yaml, "p384.yaml").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&config, dir.path(), &NO_OVERWRITE).unwrap();
    for org in &report.orgs {
        assert_eq!(org.algorithm, KeyAlgorithm::EcdsaP384);
        let s = summary(&org.users[0].sign_cert);
        assert_eq!(s.key_algorithm, "ECDSA P-384");
        let days = (s.not_after - s.not_before).whole_days();
        assert!((30..=31).contains(&days), "validity {days} days");
    }
}

#[test]
fn rerun_refuses_to_overwrite_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = default_network_config();
    generate(&config, dir.path(), &NO_OVERWRITE).unwrap();
    let before = tree(dir.path());

    let e = generate(&config, dir.path(), &NO_OVERWRITE).unwrap_err();
    let Error::WouldOverwrite { path, .. } = &e else {
        panic!("unexpected error: {e}")
    };
    assert!(
        path.ends_with("priv_sk"),
        "first existing path should be a key: {}",
        path.display()
    );
    assert!(path.exists());
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("pass --force to replace it"), "{msg}");
    assert_eq!(
        tree(dir.path()),
        before,
        "a refused run must not change anything"
    );

    // A single existing key deep inside an otherwise empty tree is enough to refuse, and the
    // refused run creates no directory or file at all.
    let dir = tempfile::tempdir().unwrap();
    let key = dir
        .path()
        .join("peerOrganizations/org2.example.com/users/User1@org2.example.com/tls/client.key");
    fs::create_dir_all(key.parent().unwrap()).unwrap();
    fs::write(&key, "precious").unwrap();
    let before = tree(dir.path());
    let e = generate(&config, dir.path(), &NO_OVERWRITE).unwrap_err();
    assert!(
        matches!(&e, Error::WouldOverwrite { path, .. } if *path == key),
        "{e}"
    );
    assert_eq!(tree(dir.path()), before);
    assert_eq!(fs::read_to_string(&key).unwrap(), "precious");
}

#[test]
fn overwrite_replaces_material_and_removes_stale_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = default_network_config();
    let first = generate(&config, dir.path(), &NO_OVERWRITE).unwrap();
    let old_ca = read(&first.orgs[1].ca_cert);
    let old_key = read(&first.orgs[1].nodes[0].sign_key);
    let stale = first.orgs[1].nodes[0].msp_dir.join("keystore/old_sk");
    fs::write(&stale, "stale").unwrap();
    let unrelated = dir.path().join("peerOrganizations/notes.txt");
    fs::write(&unrelated, "mine").unwrap();

    let second = generate(&config, dir.path(), &GenerateOptions { overwrite: true }).unwrap();
    assert_ne!(read(&second.orgs[1].ca_cert), old_ca);
    assert_ne!(read(&second.orgs[1].nodes[0].sign_key), old_key);
    assert_eq!(second.removed, std::slice::from_ref(&stale));
    assert!(!stale.exists());
    assert_eq!(
        fs::read_to_string(&unrelated).unwrap(),
        "mine",
        "files outside generated dirs stay"
    );
    for org in &second.orgs {
        check_org(org, &DEFAULT_CA);
    }
    no_temp_files(dir.path());

    // Turning NodeOUs off with --force leaves no stale config.yaml behind.
    let mut no_ous = config.clone();
    for org in no_ous
        .orderer_orgs
        .iter_mut()
        .chain(no_ous.peer_orgs.iter_mut())
    {
        org.enable_node_ous = false;
    }
    let third = generate(&no_ous, dir.path(), &GenerateOptions { overwrite: true }).unwrap();
    for org in &third.orgs {
        check_org(org, &DEFAULT_CA);
    }
}

#[cfg(unix)]
#[test]
fn symlinked_directories_inside_the_output_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("peerOrganizations")).unwrap();
    let e = generate(
        &default_network_config(),
        dir.path(),
        &GenerateOptions { overwrite: true },
    )
    .unwrap_err();
    assert!(matches!(e, Error::SymlinkInOutput { .. }), "{e}");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(tree(elsewhere.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Bad configs

fn config_error(yaml: &str) -> Error {
    CryptoConfig::from_yaml_str(yaml, "crypto-config.yaml").unwrap_err()
}

#[test]
fn bad_configs_are_refused_with_the_problem_named() {
    // Path traversal through the Domain.
    let e = config_error("PeerOrgs:\n  - Name: Evil\n    Domain: ../../etc\n");
    assert!(
        matches!(
            e,
            Error::UnsafePath {
                field: "Domain",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("crypto-config.yaml") && msg.contains("'Evil'"),
        "{msg}"
    );
    assert!(
        msg.contains("Domain '../../etc'") && msg.contains("outside the output directory"),
        "{msg}"
    );

    // ... and through a CommonName template.
    let e = config_error(
        "PeerOrgs:\n  - Name: O\n    Domain: o.example.com\n    Specs:\n      - Hostname: p\n        CommonName: \"../{{.Hostname}}\"\n",
    );
    assert!(
        matches!(
            e,
            Error::UnsafePath {
                field: "CommonName",
                ..
            }
        ),
        "{e}"
    );

    // A host defined twice (explicit spec and template).
    let e = config_error(
        "PeerOrgs:\n  - Name: Org1\n    Domain: org1.example.com\n    Specs:\n      - Hostname: peer0\n    Template:\n      Count: 1\n",
    );
    assert!(
        matches!(&e, Error::DuplicateHost { host, .. } if host == "peer0"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("host 'peer0' is defined more than once"),
        "{e}"
    );

    // Two peer orgs with one domain.
    let e = config_error(
        "PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n  - Name: B\n    Domain: a.example.com\n",
    );
    assert!(matches!(e, Error::DuplicateOrg { .. }), "{e}");

    let cases = [
        ("PeerOrgs:\n  - Domain: a.example.com\n", "Name must not be empty"),
        ("PeerOrgs:\n  - Name: A\n    Domain: \"\"\n", "Domain must not be empty"),
        ("PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n    Template:\n      Count: 20000\n", "Template.Count 20000 is out of range"),
        ("PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n    Users:\n      Count: -1\n", "Users.Count -1 is out of range"),
        ("PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n    Specs:\n      - Hostname: peer_0\n", "Hostname 'peer_0' is not a valid DNS label"),
        ("PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n    Specs:\n      - Hostname: p\n        SANS: [\"{{.Nope}}\"]\n", "unknown field '.Nope'"),
        ("PeerOrgs:\n  - Name: A\n    Domain: a..example.com\n", "Domain 'a..example.com' is not a valid DNS name"),
        ("OrdererOrgs: []\nPeerOrgs: []\n", "defines no organizations"),
        ("PeerOrgs:\n  - Name: A\n    Domain: a.example.com\n    EnableNodeOus: true\n", "unknown field `EnableNodeOus`"),
    ];
    for (yaml, expected) in cases {
        let msg = config_error(yaml).to_string();
        assert!(msg.contains(expected), "expected '{expected}' in: {msg}");
        assert!(
            msg.starts_with("crypto-config.yaml"),
            "error must name the file: {msg}"
        );
    }
}

#[test]
fn bad_yaml_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crypto-config.yaml");
    fs::write(
        &path,
        "PeerOrgs:\n  - Name: Org1\n    Domain: org1.example.com\n   Specs: [\n",
    )
    .unwrap();
    let e = CryptoConfig::from_file(&path).unwrap_err();
    let Error::Yaml { file, line, .. } = &e else {
        panic!("unexpected error: {e}")
    };
    assert_eq!(file, &path.display().to_string());
    assert!(line.is_some(), "{e}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{}:", path.display())) && msg.contains("line"),
        "{msg}"
    );

    // An unknown key is named, with its position.
    fs::write(
        &path,
        "PeerOrgs:\n  - Name: Org1\n    Domain: org1.example.com\n    Peers: 2\n",
    )
    .unwrap();
    let e = CryptoConfig::from_file(&path).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("unknown field `Peers`") && msg.contains(":4"),
        "{msg}"
    );

    let missing = dir.path().join("nope.yaml");
    let e = CryptoConfig::from_file(&missing).unwrap_err();
    assert!(
        matches!(e, Error::ReadConfig { .. }) && e.to_string().contains("nope.yaml"),
        "{e}"
    );
}

#[test]
fn generate_validates_configs_built_in_code_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut config = default_network_config();
    config.peer_orgs[0].domain = "../escape".into();
    let e = generate(&config, &out, &NO_OVERWRITE).unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// openssl

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn openssl_accepts_the_material() {
    if Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        println!("note: no usable `openssl` on PATH; skipping the openssl cross-check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = default_network_config();
    config.peer_orgs[1].key_algorithm = Some(weft_msp::Curve::P384);
    let report = generate(&config, dir.path(), &NO_OVERWRITE).unwrap();
    let s = |p: &PathBuf| p.to_str().unwrap().to_owned();

    for org in &report.orgs {
        for id in org.nodes.iter().chain(&org.users) {
            let (ok, text) = openssl(&["verify", "-CAfile", &s(&org.ca_cert), &s(&id.sign_cert)]);
            assert!(ok, "openssl verify sign cert {}: {text}", id.name);
            let server = id.tls_cert.ends_with("server.crt");
            let purpose = if server { "sslserver" } else { "sslclient" };
            let (ok, text) = openssl(&[
                "verify",
                "-purpose",
                purpose,
                "-CAfile",
                &s(&org.tls_ca_cert),
                &s(&id.tls_cert),
            ]);
            assert!(ok, "openssl verify TLS cert {}: {text}", id.name);
            // The TLS cert must not verify against the signing CA.
            let (ok, _) = openssl(&["verify", "-CAfile", &s(&org.ca_cert), &s(&id.tls_cert)]);
            assert!(!ok, "{}: TLS cert verified against the signing CA", id.name);
            for key in [&id.sign_key, &id.tls_key] {
                let (ok, text) = openssl(&["pkey", "-in", &s(key), "-noout"]);
                assert!(ok, "openssl pkey {}: {text}", key.display());
            }
        }
        for key in [&org.ca_key, &org.tls_ca_key] {
            let (ok, text) = openssl(&["pkey", "-in", &s(key), "-noout"]);
            assert!(ok, "openssl pkey {}: {text}", key.display());
        }
    }

    let compact = |t: &str| t.replace(' ', "");
    let peer = &report.orgs[1].nodes[0];
    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", &s(&peer.tls_cert)]);
    assert!(ok, "{text}");
    let t = compact(&text);
    assert!(
        t.contains("Subject:C=US,ST=California,L=SanFrancisco,CN=peer0.org1.example.com"),
        "{text}"
    );
    assert!(
        t.contains(
            "Issuer:C=US,ST=California,L=SanFrancisco,O=org1.example.com,CN=tlsca.org1.example.com"
        ),
        "{text}"
    );
    for san in [
        "DNS:peer0.org1.example.com",
        "DNS:peer0",
        "DNS:localhost",
        "IPAddress:127.0.0.1",
    ] {
        assert!(t.contains(san), "missing {san}: {text}");
    }
    assert!(
        t.contains("TLSWebServerAuthentication,TLSWebClientAuthentication"),
        "{text}"
    );

    let (ok, text) = openssl(&["x509", "-noout", "-text", "-in", &s(&peer.sign_cert)]);
    assert!(ok, "{text}");
    assert!(
        compact(&text).contains(
            "Subject:C=US,ST=California,L=SanFrancisco,OU=peer,CN=peer0.org1.example.com"
        ),
        "{text}"
    );

    let admin = &report.orgs[1].users[0];
    let (_, text) = openssl(&["x509", "-noout", "-subject", "-in", &s(&admin.sign_cert)]);
    assert!(
        compact(&text).contains("OU=admin,CN=Admin@org1.example.com"),
        "{text}"
    );

    let p384 = &report.orgs[2].nodes[0];
    let (_, text) = openssl(&["x509", "-noout", "-text", "-in", &s(&p384.tls_cert)]);
    assert!(
        text.contains("secp384r1") || text.contains("P-384"),
        "{text}"
    );
}

/// Mutation fuzzing of the config parser (stable toolchain): mutated YAML never panics, and
/// whatever parses also validates or fails with an error, never with a panic in resolve().
#[test]
fn mutated_configs_never_panic() {
    let seed = weft_msp::SAMPLE_CRYPTO_CONFIG.as_bytes();
    let mut state: u64 = 0x00c0_ffee_1234_5678;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..2000 {
        let mut v = seed.to_vec();
        for _ in 0..=(next() % 4) {
            let i = (next() as usize) % v.len().max(1);
            match next() % 4 {
                0 => v[i] = next() as u8,
                1 => v.truncate(i),
                2 => {
                    let specials = b"{}[]:-&*!|>'\"%@`\n\t ";
                    v.insert(i, specials[(next() as usize) % specials.len()]);
                }
                _ => {
                    let j = (next() as usize) % v.len().max(1);
                    v.swap(i, j);
                }
            }
            if v.is_empty() {
                break;
            }
        }
        let text = String::from_utf8_lossy(&v);
        if let Ok(cfg) = weft_msp::CryptoConfig::from_yaml_str(&text, "fuzz.yaml") {
            let _ = cfg.resolve();
        }
    }
}
