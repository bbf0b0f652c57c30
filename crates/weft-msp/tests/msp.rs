//! Loads the MSPs of a generated network and validates identities against them: roles, foreign
//! and TLS certificates, validity windows, NodeOU rules, CA certificates as identities, signing
//! identities with serialized creators and low-S signatures, unknown MSPs, and hostile input.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use prost::Message as _;
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use weft_crypto::pem::certificates;
use weft_crypto::sign::{complement_s, SignatureError};
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, PrivateKey, Subject, Validity,
};
use weft_msp::cryptogen::{OrgReport, Report};
use weft_msp::{
    default_network_config, generate, serialize_identity, CryptoConfig, Error, GenerateOptions,
    IdentityError, IdentityRole, Msp, MspManager, MspParts, NodeOuParts, RoleOuIdentifier,
    SigningIdentity,
};

const NO_OVERWRITE: GenerateOptions = GenerateOptions { overwrite: false };

// ---------------------------------------------------------------------------------------------
// Helpers

fn network() -> (TempDir, Report) {
    let dir = tempfile::tempdir().unwrap();
    let report = generate(&default_network_config(), dir.path(), &NO_OVERWRITE).unwrap();
    (dir, report)
}

fn org<'a>(report: &'a Report, domain: &str) -> &'a OrgReport {
    report.orgs.iter().find(|o| o.domain == domain).unwrap()
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The DER of the single certificate in a PEM file.
fn der(path: &Path) -> Vec<u8> {
    certificates(&read(path), &path.display().to_string()).unwrap()[0].to_vec()
}

fn org_msp(org: &OrgReport, id: &str) -> Msp {
    Msp::from_dir(&org.msp_dir, id).unwrap()
}

fn org_ca(org: &OrgReport) -> CertificateAuthority {
    CertificateAuthority::from_pem(&read(&org.ca_cert), &read(&org.ca_key), "org CA").unwrap()
}

/// A subject like cryptogen's leaves, with `ou` as the only OU.
fn subject(ou: Option<&str>, cn: &str) -> Subject {
    Subject {
        country: Some("US".into()),
        province: Some("California".into()),
        locality: Some("San Francisco".into()),
        organizational_unit: ou.map(str::to_owned),
        ..Subject::cn(cn)
    }
}

fn issue(ca: &CertificateAuthority, ou: Option<&str>, cn: &str, validity: Validity) -> Vec<u8> {
    ca.issue(&LeafRequest::new(subject(ou, cn), LeafProfile::Signing).validity(validity))
        .unwrap()
        .der
        .to_vec()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn manager(report: &Report) -> MspManager {
    MspManager::new([
        org_msp(org(report, "org1.example.com"), "Org1MSP"),
        org_msp(org(report, "org2.example.com"), "Org2MSP"),
        org_msp(org(report, "example.com"), "OrdererMSP"),
    ])
}

// ---------------------------------------------------------------------------------------------
// Roles

#[test]
fn generated_identities_validate_with_their_nodeou_roles() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let msp = org_msp(org1, "Org1MSP");
    assert_eq!(msp.id(), "Org1MSP");
    assert!(msp.node_ous_enabled());
    assert_eq!(msp.root_certs().count(), 1);
    assert_eq!(msp.intermediate_certs().count(), 0);
    assert_eq!(msp.tls_root_certs(), [der(&org1.tls_ca_cert)]);
    assert!(msp.admin_certs().is_empty());

    let peer = &org1.nodes[0];
    let id = msp.validate(&der(&peer.sign_cert)).unwrap();
    assert_eq!(id.role, IdentityRole::Peer);
    assert_eq!(id.msp_id, "Org1MSP");
    assert_eq!(
        id.subject,
        "C=US, ST=California, L=San Francisco, OU=peer, CN=peer0.org1.example.com"
    );
    assert_eq!(
        id.fingerprint,
        weft_crypto::hex(&weft_crypto::sha256(&der(&peer.sign_cert)))
    );
    let key = PrivateKey::from_pem(&read(&peer.sign_key), "priv_sk").unwrap();
    assert_eq!(id.public_key, key.public_key().unwrap());
    assert_eq!(*id.certificate, *der(&peer.sign_cert));

    let roles: Vec<(String, IdentityRole)> = org1
        .users
        .iter()
        .map(|u| {
            (
                u.name.clone(),
                msp.validate(&der(&u.sign_cert)).unwrap().role,
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("Admin@org1.example.com".to_owned(), IdentityRole::Admin),
            ("User1@org1.example.com".to_owned(), IdentityRole::Client)
        ]
    );

    let orderer_org = org(&report, "example.com");
    let orderer_msp = org_msp(orderer_org, "OrdererMSP");
    let id = orderer_msp
        .validate(&der(&orderer_org.nodes[0].sign_cert))
        .unwrap();
    assert_eq!(id.role, IdentityRole::Orderer);
    assert_eq!(id.role.to_string(), "orderer");

    // A node's local MSP directory is a verifying MSP too.
    let local = Msp::from_dir(&peer.msp_dir, "Org1MSP").unwrap();
    assert_eq!(
        local.validate(&der(&org1.users[1].sign_cert)).unwrap().role,
        IdentityRole::Client
    );
}

#[test]
fn without_node_ous_admincerts_make_admins_and_everyone_else_is_a_member() {
    let yaml = r#"
PeerOrgs:
  - Name: Org1
    Domain: org1.example.com
    EnableNodeOUs: false
    Template:
      Count: 1
    Users:
      Count: 1
"#;
    let dir = tempfile::tempdir().unwrap();
    let config = CryptoConfig::from_yaml_str(yaml, "crypto-config.yaml").unwrap();
    let report = generate(&config, dir.path(), &NO_OVERWRITE).unwrap();
    let org1 = &report.orgs[0];
    let msp = org_msp(org1, "Org1MSP");
    assert!(!msp.node_ous_enabled());
    assert_eq!(msp.admin_certs(), [der(&org1.users[0].sign_cert)]);
    assert_eq!(
        msp.validate(&der(&org1.users[0].sign_cert)).unwrap().role,
        IdentityRole::Admin
    );
    assert_eq!(
        msp.validate(&der(&org1.users[1].sign_cert)).unwrap().role,
        IdentityRole::Member
    );
    assert_eq!(
        msp.validate(&der(&org1.nodes[0].sign_cert)).unwrap().role,
        IdentityRole::Member
    );
    // Any certificate of the CA is a member: no OU needed.
    let bare = issue(&org_ca(org1), None, "bare", Validity::ten_years());
    assert_eq!(msp.validate(&bare).unwrap().role, IdentityRole::Member);
}

// ---------------------------------------------------------------------------------------------
// Refusals

#[test]
fn another_orgs_certificate_and_tls_certificates_are_not_issued_by_the_msp() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let org2 = org(&report, "org2.example.com");
    let msp = org_msp(org1, "Org1MSP");

    let e = msp.validate(&der(&org2.nodes[0].sign_cert)).unwrap_err();
    assert!(matches!(e, IdentityError::NotIssuedByMsp { .. }), "{e}");
    let text = e.to_string();
    for part in [
        "MSP 'Org1MSP'",
        "CN=peer0.org2.example.com",
        "CN=ca.org2.example.com",
        "CN=ca.org1.example.com",
    ] {
        assert!(text.contains(part), "missing {part}: {text}");
    }

    // TLS certificates come from the TLS CA, which is not an identity CA.
    for tls in [&org1.nodes[0].tls_cert, &org1.users[1].tls_cert] {
        let e = msp.validate(&der(tls)).unwrap_err();
        assert!(
            matches!(e, IdentityError::NotIssuedByMsp { .. })
                && e.to_string().contains("tlsca.org1.example.com"),
            "{e}"
        );
    }

    // Same subject as the org CA, different key: the name matches, the signature does not.
    let impostor = CertificateAuthority::new_root(
        &Subject {
            organization: Some("org1.example.com".into()),
            ..subject(None, "ca.org1.example.com")
        },
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let forged = issue(
        &impostor,
        Some("admin"),
        "Admin@org1.example.com",
        Validity::ten_years(),
    );
    let e = msp.validate(&forged).unwrap_err();
    assert!(
        matches!(e, IdentityError::NotIssuedByMsp { .. })
            && e.to_string().contains("signature does not verify"),
        "{e}"
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let msp = org_msp(org1, "Org1MSP");
    let ca = org_ca(org1);
    let now = OffsetDateTime::now_utc();

    let ended = (now - Duration::days(1)).replace_nanosecond(0).unwrap();
    let expired = issue(
        &ca,
        Some("client"),
        "old@org1.example.com",
        Validity::between(now - Duration::days(30), ended),
    );
    let e = msp.validate(&expired).unwrap_err();
    match &e {
        IdentityError::Expired {
            msp_id,
            subject,
            cert_subject,
            not_after,
        } => {
            assert_eq!(msp_id, "Org1MSP");
            assert!(subject.ends_with("CN=old@org1.example.com"));
            assert_eq!(subject, cert_subject);
            assert_eq!(*not_after, ended);
        }
        other => panic!("expected Expired, got {other:?}"),
    }
    assert!(
        e.to_string().contains("is expired: its certificate")
            && e.to_string().contains("valid until"),
        "{e}"
    );
    // Inside its own window, but the org CA was created minutes ago: the chain counts.
    let e = msp
        .validate_at(&expired, now - Duration::days(2))
        .unwrap_err();
    match &e {
        IdentityError::NotYetValid { cert_subject, .. } => {
            assert!(cert_subject.ends_with("CN=ca.org1.example.com"), "{e}")
        }
        other => panic!("expected NotYetValid, got {other:?}"),
    }
    assert!(
        e.to_string().contains("not valid yet: CA certificate"),
        "{e}"
    );

    let future = issue(
        &ca,
        Some("client"),
        "future@org1.example.com",
        Validity::between(now + Duration::days(1), now + Duration::days(30)),
    );
    let e = msp.validate(&future).unwrap_err();
    assert!(
        matches!(e, IdentityError::NotYetValid { .. }) && e.to_string().contains("not valid yet"),
        "{e}"
    );

    // Every certificate of the chain counts: past the CA's end the peer is refused too, and the
    // error names the CA.
    let peer = der(&org1.nodes[0].sign_cert);
    let far = now + Duration::days(365 * 11);
    let e = msp.validate_at(&peer, far).unwrap_err();
    assert!(matches!(e, IdentityError::Expired { .. }), "{e}");
    let long_lived = issue(
        &ca,
        Some("peer"),
        "long.org1.example.com",
        Validity::between(now - Duration::days(1), now + Duration::days(365 * 20)),
    );
    let e = msp.validate_at(&long_lived, far).unwrap_err();
    assert!(
        e.to_string()
            .contains("CA certificate 'C=US, ST=California, L=San Francisco, O=org1.example.com, CN=ca.org1.example.com'"),
        "{e}"
    );
}

#[test]
fn node_ou_rules_require_exactly_one_role_ou_from_the_pinned_ca() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let msp = org_msp(org1, "Org1MSP");
    let ca = org_ca(org1);

    for ou in [None, Some("Fabric"), Some("Peer")] {
        let cert = issue(&ca, ou, "nobody", Validity::ten_years());
        let e = msp.validate(&cert).unwrap_err();
        match &e {
            IdentityError::MissingRoleOu {
                expected, found, ..
            } => {
                assert_eq!(expected, &["client", "peer", "admin", "orderer"]);
                assert_eq!(
                    found,
                    &ou.map(str::to_owned).into_iter().collect::<Vec<_>>()
                );
            }
            other => panic!("expected MissingRoleOu, got {other:?}"),
        }
        assert!(
            e.to_string()
                .contains("MSP 'Org1MSP': identity 'C=US, ST=California, L=San Francisco")
                && e.to_string().contains("has no role OU"),
            "{e}"
        );
    }

    // An MSP trusting a second CA, with the role OUs pinned to the org CA: the second CA's
    // certificates are members of the MSP but cannot claim a role.
    let other = CertificateAuthority::new_root(
        &subject(None, "ca.other.example.com"),
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let pinned = |pem: &str| {
        Some(RoleOuIdentifier {
            organizational_unit_identifier: "client".into(),
            certificate_pem: Some(pem.as_bytes().to_vec()),
        })
    };
    let parts = MspParts {
        root_certs: vec![read(&org1.ca_cert), other.certificate_pem().into_bytes()],
        node_ous: Some(NodeOuParts {
            client: pinned(&ca.certificate_pem()),
            ..NodeOuParts::default()
        }),
        ..MspParts::default()
    };
    let two_cas = Msp::from_parts("Org1MSP", &parts).unwrap();
    let from_other = issue(&other, Some("client"), "intruder", Validity::ten_years());
    let e = two_cas.validate(&from_other).unwrap_err();
    assert!(
        matches!(e, IdentityError::OuCertifierMismatch { .. })
            && e.to_string().contains("CN=ca.other.example.com")
            && e.to_string().contains("CN=ca.org1.example.com"),
        "{e}"
    );
    let from_org = issue(&ca, Some("client"), "insider", Validity::ten_years());
    assert_eq!(
        two_cas.validate(&from_org).unwrap().role,
        IdentityRole::Client
    );
    // Unpinned, any of the MSP's CAs may issue the role.
    let unpinned = MspParts {
        node_ous: Some(NodeOuParts {
            client: Some(RoleOuIdentifier {
                organizational_unit_identifier: "client".into(),
                certificate_pem: None,
            }),
            ..NodeOuParts::default()
        }),
        ..parts.clone()
    };
    let msp2 = Msp::from_parts("Org1MSP", &unpinned).unwrap();
    assert_eq!(
        msp2.validate(&from_other).unwrap().role,
        IdentityRole::Client
    );
    // Only the configured roles count: a peer OU is no role here.
    let peer = issue(&ca, Some("peer"), "p", Validity::ten_years());
    assert!(matches!(
        msp2.validate(&peer).unwrap_err(),
        IdentityError::MissingRoleOu { .. }
    ));

    // The pinned certificate must be one of the MSP's CAs.
    let stranger = CertificateAuthority::new_root(
        &subject(None, "stranger"),
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let bad = MspParts {
        node_ous: Some(NodeOuParts {
            client: pinned(&stranger.certificate_pem()),
            ..NodeOuParts::default()
        }),
        ..parts
    };
    let e = Msp::from_parts("Org1MSP", &bad).unwrap_err();
    assert!(
        e.to_string().contains("node_ous.client.certificate")
            && e.to_string()
                .contains("not one of the MSP's root or intermediate CA"),
        "{e}"
    );
}

#[test]
fn ca_certificates_are_not_identities() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let msp = org_msp(org1, "Org1MSP");
    for ca in [&org1.ca_cert, &org1.tls_ca_cert] {
        let e = msp.validate(&der(ca)).unwrap_err();
        assert!(
            matches!(e, IdentityError::IsCa { .. })
                && e.to_string().contains("MSP 'Org1MSP'")
                && e.to_string().contains("is a CA certificate"),
            "{e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Signing identities and the manager

#[test]
fn signing_identity_signs_and_the_manager_verifies_with_low_s() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let user1 = &org1.users[1];
    let signer = SigningIdentity::from_local_msp_dir(&user1.msp_dir, "Org1MSP").unwrap();
    assert_eq!(signer.msp_id(), "Org1MSP");
    assert_eq!(signer.identity().role, IdentityRole::Client);
    assert_eq!(signer.certificate_der(), der(&user1.sign_cert));

    // The creator bytes: mspid and the certificate PEM, as Fabric serializes them (the same
    // PEM cryptogen wrote).
    let creator = signer.serialize();
    let decoded = weft_proto::msp::SerializedIdentity::decode(creator.as_slice()).unwrap();
    assert_eq!(decoded.mspid, "Org1MSP");
    assert_eq!(decoded.id_bytes.as_ref(), read(&user1.sign_cert).as_slice());
    assert_eq!(
        creator,
        serialize_identity("Org1MSP", &der(&user1.sign_cert))
    );

    let mgr = manager(&report);
    let msg = b"proposal bytes";
    let sig = signer.sign(msg).unwrap();
    assert!(weft_crypto::sign::is_low_s(KeyAlgorithm::EcdsaP256, &sig).unwrap());
    let id = mgr.verify_signature(&creator, msg, &sig).unwrap();
    assert_eq!(id.role, IdentityRole::Client);
    assert_eq!(id.msp_id, "Org1MSP");
    assert_eq!(mgr.deserialize(&creator).unwrap(), id);

    let e = mgr
        .verify_signature(&creator, b"proposal bytez", &sig)
        .unwrap_err();
    match &e {
        IdentityError::BadSignature { source, .. } => {
            assert!(matches!(source, SignatureError::Invalid { .. }), "{source}")
        }
        other => panic!("expected BadSignature, got {other:?}"),
    }
    assert!(
        e.to_string().contains("MSP 'Org1MSP': signature by '")
            && e.to_string().contains("CN=User1@org1.example.com"),
        "{e}"
    );

    let high = complement_s(KeyAlgorithm::EcdsaP256, &sig).unwrap();
    let e = mgr.verify_signature(&creator, msg, &high).unwrap_err();
    match &e {
        IdentityError::BadSignature { source, .. } => assert_eq!(
            *source,
            SignatureError::HighS {
                curve: KeyAlgorithm::EcdsaP256
            }
        ),
        other => panic!("expected BadSignature(HighS), got {other:?}"),
    }

    // Another identity's signature under User1's creator.
    let peer = SigningIdentity::from_local_msp_dir(&org1.nodes[0].msp_dir, "Org1MSP").unwrap();
    assert_eq!(peer.identity().role, IdentityRole::Peer);
    let e = mgr
        .verify_signature(&creator, msg, &peer.sign(msg).unwrap())
        .unwrap_err();
    assert!(matches!(e, IdentityError::BadSignature { .. }), "{e}");

    // Org2's admin, through the same manager.
    let org2 = org(&report, "org2.example.com");
    let admin2 = SigningIdentity::from_local_msp_dir(&org2.users[0].msp_dir, "Org2MSP").unwrap();
    let sig = admin2.sign(b"config update").unwrap();
    let id = mgr
        .verify_signature(&admin2.serialize(), b"config update", &sig)
        .unwrap();
    assert_eq!(
        (id.msp_id.as_str(), id.role),
        ("Org2MSP", IdentityRole::Admin)
    );
}

#[test]
fn unknown_and_mismatched_msp_ids_are_named() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let org2 = org(&report, "org2.example.com");
    let mgr = manager(&report);
    let cert = der(&org1.users[1].sign_cert);

    let e = mgr
        .deserialize(&serialize_identity("Org9MSP", &cert))
        .unwrap_err();
    assert!(matches!(e, IdentityError::UnknownMsp { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "unknown MSP 'Org9MSP' in serialized identity; known MSPs: 'OrdererMSP', 'Org1MSP', 'Org2MSP'"
    );

    let msp1 = mgr.get("Org1MSP").unwrap();
    let e = msp1
        .deserialize(&serialize_identity("Org2MSP", &cert))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "serialized identity belongs to MSP 'Org2MSP', not to MSP 'Org1MSP'"
    );

    // An org2 certificate claiming Org1MSP.
    let e = mgr
        .deserialize(&serialize_identity(
            "Org1MSP",
            &der(&org2.nodes[0].sign_cert),
        ))
        .unwrap_err();
    assert!(matches!(e, IdentityError::NotIssuedByMsp { .. }), "{e}");
}

#[test]
fn garbage_serialized_identities_are_malformed_and_never_panic() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let mgr = manager(&report);

    let not_proto = mgr.deserialize(b"\xff\xff\xff garbage").unwrap_err();
    assert!(
        matches!(not_proto, IdentityError::Malformed { .. })
            && not_proto
                .to_string()
                .contains("not a msp.SerializedIdentity"),
        "{not_proto}"
    );
    let junk_pem = weft_proto::msp::SerializedIdentity {
        mspid: "Org1MSP".into(),
        id_bytes: b"garbage".to_vec().into(),
    }
    .encode_to_vec();
    let e = mgr.deserialize(&junk_pem).unwrap_err();
    assert!(
        matches!(e, IdentityError::Malformed { .. }) && e.to_string().starts_with("MSP 'Org1MSP'"),
        "{e}"
    );
    let bad_der = serialize_identity("Org1MSP", b"\x30\x03\x02\x01\x00");
    assert!(matches!(
        mgr.deserialize(&bad_der).unwrap_err(),
        IdentityError::Malformed { .. }
    ));

    // Mutations of a valid creator, signature and message.
    let signer = SigningIdentity::from_local_msp_dir(&org1.users[1].msp_dir, "Org1MSP").unwrap();
    let creator = signer.serialize();
    let sig = signer.sign(b"m").unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut ok = 0;
    for _ in 0..1500 {
        let mut c = creator.clone();
        let mut s = sig.clone();
        let target = next() % 3;
        for _ in 0..=(next() % 3) {
            let v = if target == 0 { &mut s } else { &mut c };
            if v.is_empty() {
                continue;
            }
            let i = (next() as usize) % v.len();
            match next() % 4 {
                0 => v[i] ^= 1 << (next() % 8),
                1 => v.truncate(i),
                2 => v[i] = next() as u8,
                _ => v.insert(i, next() as u8),
            }
        }
        match mgr.verify_signature(&c, b"m", &s) {
            Ok(id) => {
                ok += 1;
                assert_eq!(id.subject, signer.identity().subject);
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    // Some mutations are harmless (PEM whitespace, base64 padding bits); most are refused.
    assert!(ok < 1500);
}

// ---------------------------------------------------------------------------------------------
// Loading errors

#[test]
fn loading_errors_name_the_file() {
    let (dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let work = dir.path().join("work");

    // No cacerts.
    let m = work.join("no-cacerts");
    copy_dir(&org1.msp_dir, &m);
    fs::remove_dir_all(m.join("cacerts")).unwrap();
    let e = Msp::from_dir(&m, "Org1MSP").unwrap_err();
    assert!(
        e.to_string().contains("no-cacerts/cacerts") && e.to_string().contains("MSP 'Org1MSP'"),
        "{e}"
    );

    // Junk in cacerts.
    let m = work.join("junk");
    copy_dir(&org1.msp_dir, &m);
    fs::write(m.join("cacerts/notes.txt"), "hello").unwrap();
    let e = Msp::from_dir(&m, "Org1MSP").unwrap_err();
    assert!(e.to_string().contains("cacerts/notes.txt"), "{e}");
    // Hidden files are skipped (Kubernetes mounts, editor swap files).
    fs::remove_file(m.join("cacerts/notes.txt")).unwrap();
    fs::write(m.join("cacerts/.notes.swp"), "hello").unwrap();
    Msp::from_dir(&m, "Org1MSP").unwrap();

    // A leaf in cacerts.
    let m = work.join("leaf-root");
    copy_dir(&org1.msp_dir, &m);
    fs::copy(&org1.users[1].sign_cert, m.join("cacerts/user.pem")).unwrap();
    let e = Msp::from_dir(&m, "Org1MSP").unwrap_err();
    assert!(
        e.to_string().contains("cacerts/user.pem") && e.to_string().contains("not a CA"),
        "{e}"
    );

    // config.yaml pointing at a missing certificate, and at one outside the directory.
    let m = work.join("bad-config");
    copy_dir(&org1.msp_dir, &m);
    let yaml = fs::read_to_string(m.join("config.yaml")).unwrap();
    fs::write(
        m.join("config.yaml"),
        yaml.replacen(
            "cacerts/ca.org1.example.com-cert.pem",
            "cacerts/gone.pem",
            1,
        ),
    )
    .unwrap();
    let e = Msp::from_dir(&m, "Org1MSP").unwrap_err();
    assert!(e.to_string().contains("cacerts/gone.pem"), "{e}");
    fs::write(
        m.join("config.yaml"),
        yaml.replacen("cacerts/ca.org1.example.com-cert.pem", "../../ca/ca.pem", 1),
    )
    .unwrap();
    let e = Msp::from_dir(&m, "Org1MSP").unwrap_err();
    assert!(
        matches!(e, Error::NodeOuConfig { .. })
            && e.to_string().contains("inside the MSP directory"),
        "{e}"
    );
    // A NodeOU certificate that is not one of the MSP's CAs.
    fs::copy(&org1.tls_ca_cert, m.join("tlsca.pem")).unwrap();
    fs::write(
        m.join("config.yaml"),
        yaml.replacen("cacerts/ca.org1.example.com-cert.pem", "tlsca.pem", 1),
    )
    .unwrap();
    let e = Msp::from_dir(&m, "Org1MSP").unwrap_err();
    assert!(
        e.to_string().contains("tlsca.pem")
            && e.to_string()
                .contains("not one of the MSP's root or intermediate CA"),
        "{e}"
    );

    // A keystore without the certificate's key.
    let m = work.join("wrong-key");
    copy_dir(&org1.users[1].msp_dir, &m);
    fs::copy(&org1.users[0].sign_key, m.join("keystore/priv_sk")).unwrap();
    let e = SigningIdentity::from_local_msp_dir(&m, "Org1MSP").unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("wrong-key/keystore")
            && text.contains("no private key matching")
            && text.contains("User1@org1.example.com-cert.pem")
            && text.contains("priv_sk (another key)"),
        "{text}"
    );
    // Any key file name works (fabric-ca writes `<ski>_sk`).
    fs::remove_file(m.join("keystore/priv_sk")).unwrap();
    fs::copy(&org1.users[1].sign_key, m.join("keystore/0123abcd_sk")).unwrap();
    SigningIdentity::from_local_msp_dir(&m, "Org1MSP").unwrap();

    // Not a directory at all.
    let e = Msp::from_dir(&org1.ca_cert, "Org1MSP").unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}

#[test]
fn from_parts_matches_from_dir() {
    let (_dir, report) = network();
    let org1 = org(&report, "org1.example.com");
    let ca_pem = read(&org1.ca_cert);
    let role = |ou: &str| {
        Some(RoleOuIdentifier {
            organizational_unit_identifier: ou.into(),
            certificate_pem: Some(ca_pem.clone()),
        })
    };
    let parts = MspParts {
        root_certs: vec![ca_pem.clone()],
        tls_root_certs: vec![read(&org1.tls_ca_cert)],
        node_ous: Some(NodeOuParts {
            client: role("client"),
            peer: role("peer"),
            admin: role("admin"),
            orderer: role("orderer"),
        }),
        ..MspParts::default()
    };
    let mem = Msp::from_parts("Org1MSP", &parts).unwrap();
    let disk = org_msp(org1, "Org1MSP");
    for id in org1.nodes.iter().chain(&org1.users) {
        let cert = der(&id.sign_cert);
        assert_eq!(mem.validate(&cert).unwrap(), disk.validate(&cert).unwrap());
    }
    let e = Msp::from_parts("Org1MSP", &MspParts::default()).unwrap_err();
    assert!(e.to_string().contains("no root CA certificate"), "{e}");
    let e = Msp::from_parts(
        "Org1MSP",
        &MspParts {
            root_certs: vec![b"junk".to_vec()],
            ..MspParts::default()
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("root_certs[0]"), "{e}");
}
