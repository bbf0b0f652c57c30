//! A certificate authority that issues the certificates a Fabric network needs.
//!
//! Profiles follow what `cryptogen` produces, so Fabric tools and SDKs accept the output:
//! CAs carry digitalSignature, keyEncipherment, keyCertSign and cRLSign with the serverAuth and
//! clientAuth purposes; signing (MSP) certificates carry digitalSignature only; TLS
//! certificates carry digitalSignature and keyEncipherment with the TLS purposes and SANs.

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::{Error, KeyAlgorithm, PrivateKey};

/// Distinguished-name fields, in the order cryptogen writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    pub country: Option<String>,
    pub province: Option<String>,
    pub locality: Option<String>,
    pub organization: Option<String>,
    pub organizational_unit: Option<String>,
    pub street_address: Option<String>,
    pub postal_code: Option<String>,
    pub common_name: String,
}

impl Subject {
    /// A subject with only a common name.
    pub fn cn(common_name: impl Into<String>) -> Self {
        Subject {
            common_name: common_name.into(),
            ..Subject::default()
        }
    }

    fn to_rcgen(&self) -> DistinguishedName {
        let mut dn = DistinguishedName::new();
        let fields = [
            (DnType::CountryName, &self.country),
            (DnType::StateOrProvinceName, &self.province),
            (DnType::LocalityName, &self.locality),
            (DnType::OrganizationName, &self.organization),
            (DnType::OrganizationalUnitName, &self.organizational_unit),
            (DnType::CustomDnType(vec![2, 5, 4, 9]), &self.street_address),
            (DnType::CustomDnType(vec![2, 5, 4, 17]), &self.postal_code),
        ];
        for (ty, value) in fields {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                dn.push(ty, v);
            }
        }
        dn.push(DnType::CommonName, self.common_name.as_str());
        dn
    }
}

/// The window in which a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// Back-dating applied to "now" so that a peer whose clock is slightly behind still
    /// accepts a certificate issued this second (cryptogen back-dates by five minutes).
    pub const CLOCK_SKEW: Duration = Duration::minutes(5);

    /// From (now - [`Self::CLOCK_SKEW`]) for `duration`.
    pub fn from_now(duration: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        Validity {
            not_before: now - Self::CLOCK_SKEW,
            not_after: now + duration,
        }
    }

    /// An explicit window; used for tests of expired and not-yet-valid certificates.
    pub fn between(not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        Validity {
            not_before,
            not_after,
        }
    }

    /// cryptogen's default: ten years.
    pub fn ten_years() -> Self {
        Self::from_now(Duration::days(3650))
    }
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafProfile {
    /// An MSP signing certificate (`msp/signcerts`): digitalSignature, no TLS purposes.
    Signing,
    /// A TLS server certificate that also works as a client certificate, as cryptogen issues
    /// for nodes (`tls/server.crt`): nodes dial each other with the same certificate.
    TlsServer,
    /// A TLS client certificate only (`tls/client.crt` of users; per-launch chaincode certs).
    TlsClient,
}

/// Everything needed to issue one leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafRequest {
    pub subject: Subject,
    /// DNS names or IP addresses; each entry that parses as an IP becomes an IP SAN.
    pub sans: Vec<String>,
    pub profile: LeafProfile,
    pub validity: Validity,
    pub algorithm: KeyAlgorithm,
}

impl LeafRequest {
    pub fn new(subject: Subject, profile: LeafProfile) -> Self {
        LeafRequest {
            subject,
            sans: Vec::new(),
            profile,
            validity: Validity::ten_years(),
            algorithm: KeyAlgorithm::EcdsaP256,
        }
    }

    pub fn sans<I: IntoIterator<Item = S>, S: Into<String>>(mut self, sans: I) -> Self {
        self.sans = sans.into_iter().map(Into::into).collect();
        self
    }

    pub fn validity(mut self, validity: Validity) -> Self {
        self.validity = validity;
        self
    }

    pub fn algorithm(mut self, algorithm: KeyAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }
}

/// A certificate with its freshly generated private key.
#[derive(Debug)]
pub struct IssuedCertificate {
    pub der: CertificateDer<'static>,
    pub key: PrivateKey,
}

impl IssuedCertificate {
    pub fn pem(&self) -> String {
        crate::pem::encode_certificate(&self.der)
    }
}

/// A CA: its certificate and signing key.
#[derive(Debug)]
pub struct CertificateAuthority {
    cert: CertificateDer<'static>,
    key: PrivateKey,
}

impl CertificateAuthority {
    /// A new self-signed root CA.
    pub fn new_root(
        subject: &Subject,
        validity: Validity,
        algorithm: KeyAlgorithm,
    ) -> Result<Self, Error> {
        let key = PrivateKey::generate(algorithm)?;
        let mut params = base_params(subject, validity);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let cert = params
            .self_signed(key.rcgen())
            .map_err(|e| issue_err(&subject.common_name, e))?;
        Ok(CertificateAuthority {
            cert: cert.der().clone(),
            key,
        })
    }

    /// An existing CA from its PEM certificate and key; `what` names the source in errors.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], what: &str) -> Result<Self, Error> {
        let cert = crate::pem::certificates(cert_pem, what)?.remove(0);
        let key = PrivateKey::from_pem(key_pem, what)?;
        let summary = crate::x509::CertSummary::parse(&cert)?;
        if !summary.is_ca {
            return Err(Error::cert(
                what,
                "certificate is not a CA (basicConstraints CA:FALSE)",
            ));
        }
        if summary.public_key_der != key.public_key_der() {
            return Err(Error::key(
                what,
                "private key does not match the CA certificate",
            ));
        }
        Ok(CertificateAuthority { cert, key })
    }

    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    pub fn certificate_pem(&self) -> String {
        crate::pem::encode_certificate(&self.cert)
    }

    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Issue a leaf certificate for a new key of `req.algorithm`.
    pub fn issue(&self, req: &LeafRequest) -> Result<IssuedCertificate, Error> {
        let key = PrivateKey::generate(req.algorithm)?;
        let mut params = base_params(&req.subject, req.validity);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.subject_alt_names = req
            .sans
            .iter()
            .map(|san| san_type(san))
            .collect::<Result<_, _>>()
            .map_err(|e| issue_err(&req.subject.common_name, e))?;
        match req.profile {
            LeafProfile::Signing => {
                params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            }
            LeafProfile::TlsServer => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                params.extended_key_usages = vec![
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ];
            }
            LeafProfile::TlsClient => {
                params.key_usages = vec![
                    KeyUsagePurpose::DigitalSignature,
                    KeyUsagePurpose::KeyEncipherment,
                ];
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let issuer = Issuer::from_ca_cert_der(&self.cert, self.key.rcgen())
            .map_err(|e| issue_err(&req.subject.common_name, e))?;
        let cert = params
            .signed_by(key.rcgen(), &issuer)
            .map_err(|e| issue_err(&req.subject.common_name, e))?;
        Ok(IssuedCertificate {
            der: cert.der().clone(),
            key,
        })
    }
}

fn base_params(subject: &Subject, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.to_rcgen();
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    params.serial_number = Some(random_serial());
    params
}

/// 128 random bits with the top bit clear, so the DER INTEGER stays positive and 16 bytes.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // aws-lc's RNG only fails if the OS has no entropy source; a zero-filled serial is still
    // a valid certificate and every other step would fail loudly in that case.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn san_type(san: &str) -> Result<SanType, rcgen::Error> {
    match san.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => Ok(SanType::DnsName(san.try_into()?)),
    }
}

fn issue_err(subject: &str, e: impl std::fmt::Display) -> Error {
    Error::Issue {
        subject: subject.to_owned(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::{verify_signature, CertSummary};

    fn org_subject(cn: &str) -> Subject {
        Subject {
            country: Some("US".into()),
            province: Some("California".into()),
            locality: Some("San Francisco".into()),
            organization: Some("org1.example.com".into()),
            common_name: cn.into(),
            ..Subject::default()
        }
    }

    #[test]
    fn issued_tls_certificate_has_sans_purposes_and_chains_to_the_ca() {
        let ca = CertificateAuthority::new_root(
            &org_subject("tlsca.org1.example.com"),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        let leaf = ca
            .issue(
                &LeafRequest::new(
                    org_subject("peer0.org1.example.com"),
                    LeafProfile::TlsServer,
                )
                .sans(["peer0.org1.example.com", "peer0", "127.0.0.1", "::1"]),
            )
            .unwrap();
        let s = CertSummary::parse(&leaf.der).unwrap();
        assert_eq!(s.common_name.as_deref(), Some("peer0.org1.example.com"));
        assert_eq!(
            s.sans,
            [
                "DNS:peer0.org1.example.com",
                "DNS:peer0",
                "IP:127.0.0.1",
                "IP:::1"
            ]
        );
        assert!(!s.is_ca);
        assert_eq!(s.ext_key_usage, ["serverAuth", "clientAuth"]);
        assert_eq!(s.key_usage, ["digitalSignature", "keyEncipherment"]);
        assert_eq!(
            s.issuer,
            CertSummary::parse(ca.certificate()).unwrap().subject
        );
        assert!(verify_signature(&leaf.der, ca.certificate()).unwrap());
        let other = CertificateAuthority::new_root(
            &org_subject("tlsca.org1.example.com"),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        assert!(!verify_signature(&leaf.der, other.certificate()).unwrap());
    }

    #[test]
    fn p384_profile_issues_p384_keys_and_signatures() {
        let ca = CertificateAuthority::new_root(
            &Subject::cn("replica-ca"),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP384,
        )
        .unwrap();
        let leaf = ca
            .issue(
                &LeafRequest::new(Subject::cn("replica1"), LeafProfile::TlsServer)
                    .algorithm(KeyAlgorithm::EcdsaP384),
            )
            .unwrap();
        assert_eq!(leaf.key.algorithm(), KeyAlgorithm::EcdsaP384);
        let s = CertSummary::parse(&leaf.der).unwrap();
        assert_eq!(s.key_algorithm, "ECDSA P-384");
        assert_eq!(s.signature_algorithm, "ecdsa-with-SHA384");
        assert!(verify_signature(&leaf.der, ca.certificate()).unwrap());
    }

    #[test]
    fn ca_reloads_from_pem_and_refuses_a_mismatched_key() {
        let ca = CertificateAuthority::new_root(
            &Subject::cn("ca"),
            Validity::ten_years(),
            KeyAlgorithm::EcdsaP256,
        )
        .unwrap();
        let cert_pem = ca.certificate_pem();
        let again = CertificateAuthority::from_pem(
            cert_pem.as_bytes(),
            ca.key().to_pkcs8_pem().as_bytes(),
            "ca",
        )
        .unwrap();
        let leaf = again
            .issue(&LeafRequest::new(Subject::cn("x"), LeafProfile::Signing))
            .unwrap();
        assert!(verify_signature(&leaf.der, ca.certificate()).unwrap());

        let wrong = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let e = CertificateAuthority::from_pem(
            cert_pem.as_bytes(),
            wrong.to_pkcs8_pem().as_bytes(),
            "ca/priv_sk",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("does not match the CA certificate"),
            "{e}"
        );
        let e = CertificateAuthority::from_pem(
            leaf.pem().as_bytes(),
            leaf.key.to_pkcs8_pem().as_bytes(),
            "leaf",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a CA"), "{e}");
    }
}
