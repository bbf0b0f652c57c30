//! Per-launch chaincode certificates (seed 000): who may register on the chaincode service.
//!
//! At every start the peer makes an ephemeral CA that lives only in memory. The chaincode
//! service presents a server certificate from it carrying exactly the host of the chaincode
//! address, and trusts client certificates from it alone. Each launch of a chaincode gets a
//! fresh client certificate whose SHA-256 is recorded against the package id; the
//! REGISTER that opens the chaincode's stream is then checked against that record.
//!
//! Beyond Fabric: the certificate's own validity *is* the registration window (Fabric issues
//! 24-hour certificates and forgets the record after 10 minutes), and a registration consumes
//! the certificate, so a stolen copy cannot open a second stream.
//!
//! This module holds decisions only; the chaincode service feeds it the client certificate of
//! the TLS connection and the first message of the stream.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use prost::Message;
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{ChaincodeId, ChaincodeMessage};
use weft_tls::{ClientAuth, ConfigError, Identity, Profile, TlsServer, Trust};

/// Fabric's registration window, weft's default.
pub const DEFAULT_WINDOW: Duration = Duration::minutes(10);

/// What a launched chaincode is given to reach the chaincode service.
#[derive(Debug, Clone)]
pub struct LaunchCredentials {
    /// Client certificate (PEM), valid for the registration window only.
    pub cert_pem: String,
    /// Its private key: PKCS#8 in a PEM block labelled `EC PRIVATE KEY`, as Fabric's peer
    /// writes it (shims must read the DER, not trust the label).
    pub key_pem: String,
    /// The ephemeral CA (PEM): what the chaincode verifies the peer against.
    pub root_pem: String,
    pub not_after: OffsetDateTime,
}

/// Why a registration was refused. Each has its own log line and counter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The stream's first message was not REGISTER.
    NotRegister { got: String },
    /// The TLS connection carried no client certificate.
    NoCertificate,
    /// The certificate was never issued by this peer for a launch (or this peer restarted).
    UnknownCertificate { fingerprint: String },
    /// The certificate already served one successful registration.
    CertificateReused {
        fingerprint: String,
        package_id: String,
    },
    /// The certificate's registration window has passed.
    WindowExpired {
        package_id: String,
        expired_at: OffsetDateTime,
    },
    /// The certificate was issued for another chaincode than the one registering.
    WrongPackage {
        issued_for: String,
        registering: String,
    },
    /// That chaincode already has a registered stream.
    AlreadyRunning { package_id: String },
    /// The REGISTER payload is not a ChaincodeID.
    MalformedRegister { detail: String },
}

impl Refusal {
    /// Stable reason code: metric label and log field.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NotRegister { .. } => "not_register",
            Refusal::NoCertificate => "no_certificate",
            Refusal::UnknownCertificate { .. } => "unknown_certificate",
            Refusal::CertificateReused { .. } => "certificate_reused",
            Refusal::WindowExpired { .. } => "window_expired",
            Refusal::WrongPackage { .. } => "wrong_package",
            Refusal::AlreadyRunning { .. } => "already_running",
            Refusal::MalformedRegister { .. } => "malformed_register",
        }
    }

    /// Every reason, for metrics.
    pub const CODES: [&'static str; 8] = [
        "not_register",
        "no_certificate",
        "unknown_certificate",
        "certificate_reused",
        "window_expired",
        "wrong_package",
        "already_running",
        "malformed_register",
    ];
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotRegister { got } => write!(
                f,
                "chaincode registration refused: the first message was {got}, not REGISTER"
            ),
            Refusal::NoCertificate => write!(
                f,
                "chaincode registration refused: no client certificate; launched chaincode must \
                 present the per-launch certificate from CORE_TLS_CLIENT_CERT_FILE/_PATH"
            ),
            Refusal::UnknownCertificate { fingerprint } => write!(
                f,
                "chaincode registration refused: client certificate sha256 {fingerprint} was not \
                 issued by this peer for a launch (a chaincode started by hand needs dev mode, and \
                 certificates do not survive a peer restart)"
            ),
            Refusal::CertificateReused { fingerprint, package_id } => write!(
                f,
                "chaincode registration refused: client certificate sha256 {fingerprint} for \
                 {package_id} was already used by a successful registration; each launch \
                 certificate registers once"
            ),
            Refusal::WindowExpired { package_id, expired_at } => write!(
                f,
                "chaincode registration refused: the launch certificate for {package_id} expired at \
                 {expired_at}; the chaincode must register within the window (chaincode.registrationWindow)"
            ),
            Refusal::WrongPackage { issued_for, registering } => write!(
                f,
                "chaincode registration refused: the certificate was issued for {issued_for} but the \
                 chaincode registers as {registering}"
            ),
            Refusal::AlreadyRunning { package_id } => write!(
                f,
                "chaincode registration refused: {package_id} already has a registered stream"
            ),
            Refusal::MalformedRegister { detail } => {
                write!(f, "chaincode registration refused: malformed REGISTER payload ({detail})")
            }
        }
    }
}

impl std::error::Error for Refusal {}

#[derive(Debug)]
struct Issued {
    package_id: String,
    not_after: OffsetDateTime,
}

#[derive(Debug, Default)]
struct Registry {
    /// Certificates issued and not yet used, by SHA-256 of their DER.
    issued: HashMap<[u8; 32], Issued>,
    /// Certificates that registered successfully: hash -> package id.
    consumed: HashMap<[u8; 32], String>,
    /// Package ids with a registered stream.
    running: HashSet<String>,
    /// Development-mode client certificates (see [`LaunchAuthority::issue_dev`]).
    dev: HashSet<[u8; 32]>,
}

/// The per-process ephemeral CA and the launch-certificate registry.
#[derive(Debug)]
pub struct LaunchAuthority {
    ca: CertificateAuthority,
    server: Identity,
    chaincode_host: String,
    window: Duration,
    registry: Mutex<Registry>,
    refusals: [AtomicU64; 8],
    admitted: AtomicU64,
}

impl LaunchAuthority {
    /// A new ephemeral CA and a chaincode-service certificate for `chaincode_host` (the host of
    /// the address given to chaincode; an IP address becomes an IP SAN).
    pub fn new(chaincode_host: &str, window: Duration) -> Result<Self, weft_crypto::Error> {
        let now = OffsetDateTime::now_utc();
        let ca = CertificateAuthority::new_root(
            // A distinct name per peer process, so a certificate from another peer's CA is
            // reported as an unknown CA rather than a bad signature.
            &Subject::cn(format!(
                "weft ephemeral chaincode CA {:x}.{:x}",
                std::process::id(),
                now.unix_timestamp_nanos() as u64
            )),
            Validity::between(now - Validity::CLOCK_SKEW, now + Duration::days(365)),
            KeyAlgorithm::EcdsaP256,
        )?;
        let host = chaincode_host.trim_start_matches('[').trim_end_matches(']');
        let issued = ca.issue(
            &LeafRequest::new(Subject::cn(host), LeafProfile::TlsServer)
                .sans([host])
                .validity(Validity::between(
                    now - Validity::CLOCK_SKEW,
                    now + Duration::days(365),
                )),
        )?;
        let server = Identity::new(
            vec![issued.der],
            issued.key,
            "chaincode service certificate",
        )
        .map_err(|e| weft_crypto::Error::Issue {
            subject: host.to_owned(),
            detail: e.to_string(),
        })?;
        Ok(LaunchAuthority {
            ca,
            server,
            chaincode_host: host.to_owned(),
            window,
            registry: Mutex::new(Registry::default()),
            refusals: Default::default(),
            admitted: AtomicU64::new(0),
        })
    }

    /// The ephemeral CA certificate (PEM), for `CORE_PEER_TLS_ROOTCERT_FILE`.
    pub fn root_pem(&self) -> String {
        self.ca.certificate_pem()
    }

    pub fn root(&self) -> &CertificateDer<'static> {
        self.ca.certificate()
    }

    pub fn chaincode_host(&self) -> &str {
        &self.chaincode_host
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// The chaincode service's TLS endpoint: mutual TLS, trusting only the ephemeral CA.
    pub fn tls_server(&self) -> Result<TlsServer, ConfigError> {
        TlsServer::new(
            &self.server,
            ClientAuth::Require(Trust::Roots(vec![self.ca.certificate().clone()])),
            Profile::Fabric,
        )
    }

    /// Development mode's endpoint: still TLS with the same server certificate, but client
    /// certificates are only requested, so a chaincode started by hand can connect.
    pub fn dev_tls_server(&self) -> Result<TlsServer, ConfigError> {
        TlsServer::new(
            &self.server,
            ClientAuth::Request(Trust::Roots(vec![self.ca.certificate().clone()])),
            Profile::Fabric,
        )
    }

    /// Issue the client certificate of one launch of `package_id`, valid for the window.
    pub fn issue(&self, package_id: &str) -> Result<LaunchCredentials, weft_crypto::Error> {
        self.issue_at(package_id, OffsetDateTime::now_utc())
    }

    pub(crate) fn issue_at(
        &self,
        package_id: &str,
        now: OffsetDateTime,
    ) -> Result<LaunchCredentials, weft_crypto::Error> {
        let not_after = now + self.window;
        let issued = self.ca.issue(
            &LeafRequest::new(Subject::cn(package_id), LeafProfile::TlsClient)
                // A little slack before now for clock differences; none after the window.
                .validity(Validity::between(now - Duration::seconds(30), not_after)),
        )?;
        let hash = weft_crypto::sha256(&issued.der);
        if let Ok(mut r) = self.registry.lock() {
            // Forget expired, never-used certificates as new ones are issued.
            r.issued.retain(|_, i| i.not_after > now);
            r.issued.insert(
                hash,
                Issued {
                    package_id: package_id.to_owned(),
                    not_after,
                },
            );
        }
        Ok(LaunchCredentials {
            cert_pem: issued.pem(),
            key_pem: weft_crypto::pem::encode("EC PRIVATE KEY", issued.key.pkcs8_der()),
            root_pem: self.ca.certificate_pem(),
            not_after,
        })
    }

    /// Decide on a registration: `first` is the stream's first message, `client_cert` the TLS
    /// client certificate. On success the certificate is consumed and the package marked
    /// running until [`LaunchAuthority::stopped`].
    pub fn admit(
        &self,
        first: &ChaincodeMessage,
        client_cert: Option<&CertificateDer<'_>>,
    ) -> Result<String, Refusal> {
        self.admit_at(first, client_cert, OffsetDateTime::now_utc())
    }

    pub fn admit_at(
        &self,
        first: &ChaincodeMessage,
        client_cert: Option<&CertificateDer<'_>>,
        now: OffsetDateTime,
    ) -> Result<String, Refusal> {
        let result = self.decide(first, client_cert, now);
        match &result {
            Ok(package_id) => {
                self.admitted.fetch_add(1, Ordering::Relaxed);
                tracing::info!(package_id = %package_id, "chaincode registered with its launch certificate");
            }
            Err(refusal) => {
                if let Some(i) = Refusal::CODES.iter().position(|c| *c == refusal.code()) {
                    self.refusals[i].fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(reason = refusal.code(), "{refusal}");
            }
        }
        result
    }

    fn decide(
        &self,
        first: &ChaincodeMessage,
        client_cert: Option<&CertificateDer<'_>>,
        now: OffsetDateTime,
    ) -> Result<String, Refusal> {
        if first.r#type != MsgType::Register as i32 {
            let got = MsgType::try_from(first.r#type)
                .map(|t| t.as_str_name().to_owned())
                .unwrap_or_else(|_| format!("message type {}", first.r#type));
            return Err(Refusal::NotRegister { got });
        }
        let cert = client_cert.ok_or(Refusal::NoCertificate)?;
        let registering = ChaincodeId::decode(first.payload.as_ref())
            .map_err(|e| Refusal::MalformedRegister {
                detail: e.to_string(),
            })?
            .name;
        let hash = weft_crypto::sha256(cert.as_ref());
        let fingerprint = weft_crypto::hex(&hash);
        let mut r = self
            .registry
            .lock()
            .map_err(|_| Refusal::UnknownCertificate {
                fingerprint: fingerprint.clone(),
            })?;
        let Some(issued) = r.issued.get(&hash) else {
            return Err(match r.consumed.get(&hash) {
                Some(package_id) if r.running.contains(package_id) => Refusal::AlreadyRunning {
                    package_id: package_id.clone(),
                },
                Some(package_id) => Refusal::CertificateReused {
                    fingerprint,
                    package_id: package_id.clone(),
                },
                None => Refusal::UnknownCertificate { fingerprint },
            });
        };
        if now > issued.not_after {
            return Err(Refusal::WindowExpired {
                package_id: issued.package_id.clone(),
                expired_at: issued.not_after,
            });
        }
        if issued.package_id != registering {
            return Err(Refusal::WrongPackage {
                issued_for: issued.package_id.clone(),
                registering,
            });
        }
        if r.running.contains(&registering) {
            return Err(Refusal::AlreadyRunning {
                package_id: registering,
            });
        }
        r.issued.remove(&hash);
        r.consumed.insert(hash, registering.clone());
        r.running.insert(registering.clone());
        Ok(registering)
    }

    /// Development mode only: a client certificate for chaincode started by hand, valid for a
    /// day and for any chaincode name. The chaincode service accepts it only when the peer
    /// runs in development mode.
    pub fn issue_dev(&self) -> Result<LaunchCredentials, weft_crypto::Error> {
        let now = OffsetDateTime::now_utc();
        let not_after = now + Duration::days(1);
        let issued = self.ca.issue(
            &LeafRequest::new(
                Subject::cn("weft development-mode chaincode"),
                LeafProfile::TlsClient,
            )
            .validity(Validity::between(now - Duration::seconds(30), not_after)),
        )?;
        if let Ok(mut r) = self.registry.lock() {
            r.dev.insert(weft_crypto::sha256(&issued.der));
        }
        Ok(LaunchCredentials {
            cert_pem: issued.pem(),
            key_pem: weft_crypto::pem::encode("EC PRIVATE KEY", issued.key.pkcs8_der()),
            root_pem: self.ca.certificate_pem(),
            not_after,
        })
    }

    /// Whether `cert` is a development-mode certificate from [`LaunchAuthority::issue_dev`].
    pub fn is_dev_certificate(&self, cert: &CertificateDer<'_>) -> bool {
        let hash = weft_crypto::sha256(cert.as_ref());
        self.registry
            .lock()
            .map(|r| r.dev.contains(&hash))
            .unwrap_or(false)
    }

    /// The chaincode's stream ended: it may register again with a new launch certificate.
    pub fn stopped(&self, package_id: &str) {
        if let Ok(mut r) = self.registry.lock() {
            r.running.remove(package_id);
        }
    }

    /// Refused registrations by reason code, and the number admitted.
    pub fn counters(&self) -> (Vec<(&'static str, u64)>, u64) {
        let refused = Refusal::CODES
            .iter()
            .zip(&self.refusals)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .collect();
        (refused, self.admitted.load(Ordering::Relaxed))
    }
}

/// Whether `host` is a literal IP address (the service certificate then carries an IP SAN).
pub fn is_ip(host: &str) -> bool {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_crypto::CertSummary;

    fn register(name: &str) -> ChaincodeMessage {
        ChaincodeMessage {
            r#type: MsgType::Register as i32,
            payload: ChaincodeId {
                name: name.to_owned(),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
            ..Default::default()
        }
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        weft_crypto::pem::certificates(pem.as_bytes(), "test")
            .unwrap()
            .remove(0)
    }

    #[test]
    fn service_and_launch_certificates_have_the_required_shape() {
        let auth = LaunchAuthority::new("127.0.0.1", DEFAULT_WINDOW).unwrap();
        let creds = auth.issue("mycc:abc").unwrap();
        let leaf = CertSummary::parse(&der(&creds.cert_pem)).unwrap();
        assert!(leaf.sans.is_empty(), "launch certificates carry no SANs");
        assert_eq!(leaf.ext_key_usage, ["clientAuth"]);
        assert_eq!(leaf.key_algorithm, "ECDSA P-256");
        let window = leaf.not_after - OffsetDateTime::now_utc();
        assert!(
            window <= DEFAULT_WINDOW && window > DEFAULT_WINDOW - Duration::minutes(1),
            "validity is the window: {window}"
        );
        assert!(weft_crypto::x509::verify_signature(&der(&creds.cert_pem), auth.root()).unwrap());
        // The key is PKCS#8 under an EC PRIVATE KEY label, as Fabric writes it, and still loads.
        assert!(creds.key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let key = weft_crypto::PrivateKey::from_pem(creds.key_pem.as_bytes(), "key").unwrap();
        assert_eq!(key.public_key_der(), leaf.public_key_der);

        let server = CertSummary::parse(&auth.server.chain()[0]).unwrap();
        assert_eq!(
            server.sans,
            ["IP:127.0.0.1"],
            "exactly the chaincode address host"
        );
        let named = LaunchAuthority::new("peer0.org1.example.com", DEFAULT_WINDOW).unwrap();
        assert_eq!(
            CertSummary::parse(&named.server.chain()[0]).unwrap().sans,
            ["DNS:peer0.org1.example.com"]
        );
    }

    #[test]
    fn each_attack_is_refused_with_its_own_reason() {
        let auth = LaunchAuthority::new("127.0.0.1", DEFAULT_WINDOW).unwrap();
        let now = OffsetDateTime::now_utc();
        let a = auth.issue_at("a:1", now).unwrap();
        let a_cert = der(&a.cert_pem);

        // First message not REGISTER.
        let ready = ChaincodeMessage {
            r#type: MsgType::Ready as i32,
            ..Default::default()
        };
        assert_eq!(
            auth.admit_at(&ready, Some(&a_cert), now)
                .unwrap_err()
                .code(),
            "not_register"
        );
        // No certificate.
        assert_eq!(
            auth.admit_at(&register("a:1"), None, now).unwrap_err(),
            Refusal::NoCertificate
        );
        // A certificate from another CA (or self-signed): unknown.
        let other = LaunchAuthority::new("127.0.0.1", DEFAULT_WINDOW)
            .unwrap()
            .issue_at("a:1", now)
            .unwrap();
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&der(&other.cert_pem)), now)
                .unwrap_err()
                .code(),
            "unknown_certificate"
        );
        // Issued for another package.
        let e = auth
            .admit_at(&register("b:2"), Some(&a_cert), now)
            .unwrap_err();
        assert_eq!(
            e,
            Refusal::WrongPackage {
                issued_for: "a:1".into(),
                registering: "b:2".into()
            }
        );
        // Malformed REGISTER.
        let junk = ChaincodeMessage {
            r#type: MsgType::Register as i32,
            payload: vec![0xff, 0xff].into(),
            ..Default::default()
        };
        assert_eq!(
            auth.admit_at(&junk, Some(&a_cert), now).unwrap_err().code(),
            "malformed_register"
        );
        // After the window.
        let late = now + DEFAULT_WINDOW + Duration::seconds(1);
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&a_cert), late)
                .unwrap_err()
                .code(),
            "window_expired"
        );

        // The genuine registration succeeds once...
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&a_cert), now).unwrap(),
            "a:1"
        );
        // ...the same certificate cannot open a second stream while it runs...
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&a_cert), now)
                .unwrap_err()
                .code(),
            "already_running"
        );
        // ...nor a fresh certificate for the same package.
        let a2 = auth.issue_at("a:1", now).unwrap();
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&der(&a2.cert_pem)), now)
                .unwrap_err()
                .code(),
            "already_running"
        );
        // After the chaincode stops, the used certificate stays used; a new launch works.
        auth.stopped("a:1");
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&a_cert), now)
                .unwrap_err()
                .code(),
            "certificate_reused"
        );
        assert_eq!(
            auth.admit_at(&register("a:1"), Some(&der(&a2.cert_pem)), now)
                .unwrap(),
            "a:1"
        );

        let (refused, admitted) = auth.counters();
        let count = |code: &str| {
            refused
                .iter()
                .find(|(c, _)| *c == code)
                .map(|(_, n)| *n)
                .unwrap()
        };
        assert_eq!(admitted, 2);
        for code in [
            "not_register",
            "no_certificate",
            "unknown_certificate",
            "wrong_package",
            "malformed_register",
            "window_expired",
            "certificate_reused",
        ] {
            assert_eq!(count(code), 1, "{code}");
        }
        assert_eq!(count("already_running"), 2);
    }

    #[test]
    fn refusals_explain_themselves() {
        let msg = Refusal::NoCertificate.to_string();
        assert!(msg.contains("CORE_TLS_CLIENT_CERT_FILE"), "{msg}");
        let msg = Refusal::UnknownCertificate {
            fingerprint: "ab".into(),
        }
        .to_string();
        assert!(msg.contains("dev mode") && msg.contains("restart"), "{msg}");
    }
}
