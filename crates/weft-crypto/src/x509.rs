//! A readable summary of an X.509 certificate, for diagnostics, `weft doctor` and tests.

use std::fmt;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Error;

/// What a person wants to know about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// Subject in RFC 4514 form, e.g. `C=US, O=org1.example.com, CN=peer0.org1.example.com`.
    pub subject: String,
    pub issuer: String,
    pub common_name: Option<String>,
    pub organizational_units: Vec<String>,
    /// `DNS:name` / `IP:address` / `URI:...` / `email:...`, in certificate order.
    pub sans: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Serial number as colon-free lower-case hex.
    pub serial: String,
    /// SHA-256 of the DER encoding: the fingerprint pinned trust uses.
    pub sha256: [u8; 32],
    pub is_ca: bool,
    pub key_usage: Vec<&'static str>,
    pub ext_key_usage: Vec<&'static str>,
    /// `ECDSA P-256`, `ECDSA P-384`, `RSA`, or the algorithm OID.
    pub key_algorithm: String,
    /// `ecdsa-with-SHA256` and the like, or the OID.
    pub signature_algorithm: String,
    /// DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
}

/// Where a certificate's validity window stands relative to a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityState {
    NotYetValid,
    Valid,
    Expired,
}

impl CertSummary {
    pub fn parse(der: &CertificateDer<'_>) -> Result<Self, Error> {
        let (_, cert) =
            X509Certificate::from_der(der.as_ref()).map_err(|e| Error::cert("certificate", e))?;
        let tbs = &cert.tbs_certificate;
        let common_name = tbs
            .subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let organizational_units = tbs
            .subject
            .iter_organizational_unit()
            .filter_map(|ou| ou.as_str().ok().map(str::to_owned))
            .collect();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for name in &ext.value.general_names {
                sans.push(match name {
                    GeneralName::DNSName(n) => format!("DNS:{n}"),
                    GeneralName::IPAddress(b) => format!("IP:{}", ip_string(b)),
                    GeneralName::URI(u) => format!("URI:{u}"),
                    GeneralName::RFC822Name(m) => format!("email:{m}"),
                    other => format!("{other:?}"),
                });
            }
        }
        let mut key_usage = Vec::new();
        if let Ok(Some(ku)) = cert.key_usage() {
            let ku = ku.value;
            let flags = [
                (ku.digital_signature(), "digitalSignature"),
                (ku.non_repudiation(), "nonRepudiation"),
                (ku.key_encipherment(), "keyEncipherment"),
                (ku.data_encipherment(), "dataEncipherment"),
                (ku.key_agreement(), "keyAgreement"),
                (ku.key_cert_sign(), "keyCertSign"),
                (ku.crl_sign(), "cRLSign"),
            ];
            key_usage = flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| *n)
                .collect();
        }
        let mut ext_key_usage = Vec::new();
        if let Ok(Some(eku)) = cert.extended_key_usage() {
            let eku = eku.value;
            let flags = [
                (eku.any, "any"),
                (eku.server_auth, "serverAuth"),
                (eku.client_auth, "clientAuth"),
                (eku.code_signing, "codeSigning"),
                (eku.email_protection, "emailProtection"),
                (eku.time_stamping, "timeStamping"),
                (eku.ocsp_signing, "OCSPSigning"),
            ];
            ext_key_usage = flags
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, n)| *n)
                .collect();
        }
        let spki = cert.public_key();
        let key_oid = spki.algorithm.algorithm.to_id_string();
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        let key_algorithm = match (key_oid.as_str(), curve.as_deref()) {
            ("1.2.840.10045.2.1", Some("1.2.840.10045.3.1.7")) => "ECDSA P-256".to_owned(),
            ("1.2.840.10045.2.1", Some("1.3.132.0.34")) => "ECDSA P-384".to_owned(),
            ("1.2.840.10045.2.1", Some("1.3.132.0.35")) => "ECDSA P-521".to_owned(),
            ("1.2.840.113549.1.1.1", _) => "RSA".to_owned(),
            ("1.3.101.112", _) => "Ed25519".to_owned(),
            (oid, _) => oid.to_owned(),
        };
        let sig_oid = cert.signature_algorithm.algorithm.to_id_string();
        let signature_algorithm = match sig_oid.as_str() {
            "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".to_owned(),
            "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".to_owned(),
            "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512".to_owned(),
            "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".to_owned(),
            "1.3.101.112" => "Ed25519".to_owned(),
            other => other.to_owned(),
        };
        let to_time = |t: &x509_parser::time::ASN1Time| {
            OffsetDateTime::from_unix_timestamp(t.timestamp())
                .map_err(|e| Error::cert("certificate", format!("validity date out of range: {e}")))
        };
        Ok(CertSummary {
            subject: tbs.subject.to_string(),
            issuer: tbs.issuer.to_string(),
            common_name,
            organizational_units,
            sans,
            not_before: to_time(&tbs.validity.not_before)?,
            not_after: to_time(&tbs.validity.not_after)?,
            serial: crate::hex(cert.raw_serial()),
            sha256: crate::sha256(der.as_ref()),
            is_ca: cert.is_ca(),
            key_usage,
            ext_key_usage,
            key_algorithm,
            signature_algorithm,
            public_key_der: spki.raw.to_vec(),
        })
    }

    /// Lower-case hex SHA-256 fingerprint.
    pub fn fingerprint(&self) -> String {
        crate::hex(&self.sha256)
    }

    /// Whether `at` falls inside the validity window.
    pub fn validity_at(&self, at: OffsetDateTime) -> ValidityState {
        if at < self.not_before {
            ValidityState::NotYetValid
        } else if at > self.not_after {
            ValidityState::Expired
        } else {
            ValidityState::Valid
        }
    }

    /// DNS names and IPs from the SAN extension, without their `DNS:`/`IP:` prefixes.
    pub fn names(&self) -> Vec<&str> {
        self.sans
            .iter()
            .filter_map(|s| s.strip_prefix("DNS:").or_else(|| s.strip_prefix("IP:")))
            .collect()
    }
}

/// Whether certificate `cert` is signed by the key in `issuer` (signature only).
pub fn verify_signature(
    cert: &CertificateDer<'_>,
    issuer: &CertificateDer<'_>,
) -> Result<bool, Error> {
    let (_, cert) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| Error::cert("certificate", e))?;
    let (_, issuer) = X509Certificate::from_der(issuer.as_ref())
        .map_err(|e| Error::cert("issuer certificate", e))?;
    Ok(cert.verify_signature(Some(issuer.public_key())).is_ok())
}

fn ip_string(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => crate::hex(bytes),
    }
}

impl fmt::Display for CertSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fmt_time = |t: OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| t.to_string())
        };
        writeln!(f, "subject:  {}", self.subject)?;
        writeln!(f, "issuer:   {}", self.issuer)?;
        if !self.sans.is_empty() {
            writeln!(f, "SANs:     {}", self.sans.join(", "))?;
        }
        writeln!(
            f,
            "valid:    {} .. {}",
            fmt_time(self.not_before),
            fmt_time(self.not_after)
        )?;
        writeln!(
            f,
            "key:      {} (signature {})",
            self.key_algorithm, self.signature_algorithm
        )?;
        if self.is_ca {
            writeln!(f, "CA:       yes")?;
        }
        write!(f, "sha256:   {}", self.fingerprint())
    }
}
