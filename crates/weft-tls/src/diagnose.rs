//! Handshake failures, translated into what happened and what to change.

use std::fmt;
use std::io;
use std::sync::Arc;

use rustls::{AlertDescription, CertificateError, PeerIncompatible};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use weft_crypto::CertSummary;

use crate::sniff::Looks;
use crate::verify::PinMismatch;
use crate::{Profile, Settings};

/// Which end of the connection is reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This process dialed.
    Client,
    /// This process accepted.
    Server,
}

/// What went wrong in a handshake, with the facts needed to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Diagnosis {
    /// The server's certificate does not chain to a CA this client trusts.
    ServerCaUntrusted { subject: String, issuer: String },
    /// A certificate in the server's chain has expired.
    ServerCertExpired {
        subject: String,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// A certificate in the server's chain is not valid yet.
    ServerCertNotYetValid {
        subject: String,
        not_before: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// The server's certificate does not carry the name the client dialed.
    ServerNameMismatch {
        expected: String,
        presented: Vec<String>,
    },
    /// The server's certificate is not the one pinned for that node.
    ServerPinMismatch(PinMismatch),
    /// The server's certificate is unusable for another reason.
    ServerCertInvalid { subject: String, reason: String },
    /// The server demanded a client certificate and this client had none to send.
    ClientCertRequired,
    /// The server refused the client certificate this client sent.
    ClientCertRejected { alert: String },
    /// (server) A client connected without a certificate where one is required.
    ClientSentNoCert,
    /// (server) The client's certificate does not chain to a trusted client CA.
    ClientCaUntrusted { subject: String, issuer: String },
    /// (server) The client's certificate has expired.
    ClientCertExpired {
        subject: String,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// (server) The client's certificate is not valid yet.
    ClientCertNotYetValid {
        subject: String,
        not_before: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// (server) The client's certificate is none of the pinned ones.
    ClientPinMismatch(PinMismatch),
    /// (server) The client's certificate is unusable for another reason.
    ClientCertInvalid { subject: String, reason: String },
    /// (server) The client refused this server's certificate.
    PeerRejectedOurCert { alert: String },
    /// The two sides have no protocol version in common.
    ProtocolVersion { ours: Profile, detail: String },
    /// No cipher suite, key exchange group or signature scheme in common.
    NoCommonParameters { detail: String },
    /// No application protocol (ALPN) in common; gRPC needs `h2`.
    AlpnMismatch,
    /// Plaintext arrived at a TLS port (seen by the TLS server, or by a plaintext client that
    /// got a TLS answer).
    PlaintextToTlsPort { looks: Looks },
    /// TLS arrived at a plaintext port (seen by the TLS client that got a plaintext answer, or
    /// by the plaintext server that got a ClientHello).
    TlsToPlaintextPort { looks: Looks },
    /// The other side closed the connection before the handshake finished.
    ClosedDuringHandshake,
    /// (client) The server asked for a client certificate, got this client's, and closed the
    /// connection without an alert: it most likely does not trust the certificate (Node's
    /// grpc-js servers do this).
    ClosedAfterClientCert,
    /// No TCP connection could be made.
    ConnectFailed { detail: String },
    /// The handshake did not finish in time.
    Timeout { seconds: u64 },
    /// Anything else, with rustls' or the OS's words.
    Other { detail: String },
}

impl Diagnosis {
    /// A short stable code, for metrics labels and log fields.
    pub fn code(&self) -> &'static str {
        match self {
            Diagnosis::ServerCaUntrusted { .. } => "server_ca_untrusted",
            Diagnosis::ServerCertExpired { .. } => "server_cert_expired",
            Diagnosis::ServerCertNotYetValid { .. } => "server_cert_not_yet_valid",
            Diagnosis::ServerNameMismatch { .. } => "server_name_mismatch",
            Diagnosis::ServerPinMismatch(_) => "server_pin_mismatch",
            Diagnosis::ServerCertInvalid { .. } => "server_cert_invalid",
            Diagnosis::ClientCertRequired => "client_cert_required",
            Diagnosis::ClientCertRejected { .. } => "client_cert_rejected",
            Diagnosis::ClientSentNoCert => "client_sent_no_cert",
            Diagnosis::ClientCaUntrusted { .. } => "client_ca_untrusted",
            Diagnosis::ClientCertExpired { .. } => "client_cert_expired",
            Diagnosis::ClientCertNotYetValid { .. } => "client_cert_not_yet_valid",
            Diagnosis::ClientPinMismatch(_) => "client_pin_mismatch",
            Diagnosis::ClientCertInvalid { .. } => "client_cert_invalid",
            Diagnosis::PeerRejectedOurCert { .. } => "peer_rejected_our_cert",
            Diagnosis::ProtocolVersion { .. } => "protocol_version",
            Diagnosis::NoCommonParameters { .. } => "no_common_parameters",
            Diagnosis::AlpnMismatch => "alpn_mismatch",
            Diagnosis::PlaintextToTlsPort { .. } => "plaintext_to_tls_port",
            Diagnosis::TlsToPlaintextPort { .. } => "tls_to_plaintext_port",
            Diagnosis::ClosedDuringHandshake => "closed_during_handshake",
            Diagnosis::ClosedAfterClientCert => "closed_after_client_cert",
            Diagnosis::ConnectFailed { .. } => "connect_failed",
            Diagnosis::Timeout { .. } => "timeout",
            Diagnosis::Other { .. } => "other",
        }
    }
}

/// A failed handshake: where, seen from which side, why, and what to change.
#[derive(Debug, Clone)]
pub struct HandshakeError {
    /// The server endpoint (`host:port`): the one dialed, or the local listener.
    pub endpoint: String,
    /// The remote address of the client, when the server reports.
    pub peer: Option<String>,
    pub side: Side,
    pub diagnosis: Diagnosis,
    /// The certificate chain the other side presented, when the handshake got that far.
    pub presented_chain: Vec<CertificateDer<'static>>,
    /// (client) Whether the server asked for a client certificate, when known.
    pub client_cert_requested: Option<bool>,
    settings: Arc<Settings>,
}

impl HandshakeError {
    pub(crate) fn new(
        endpoint: impl Into<String>,
        peer: Option<String>,
        side: Side,
        diagnosis: Diagnosis,
        settings: Arc<Settings>,
    ) -> Self {
        HandshakeError {
            endpoint: endpoint.into(),
            peer,
            side,
            diagnosis,
            presented_chain: Vec::new(),
            client_cert_requested: None,
            settings,
        }
    }

    pub fn code(&self) -> &'static str {
        self.diagnosis.code()
    }
}

impl std::error::Error for HandshakeError {}

fn when(t: &OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        let ep = &self.endpoint;
        let client = self.peer.as_deref().unwrap_or("a client");
        match (&self.diagnosis, self.side) {
            (Diagnosis::ServerCaUntrusted { subject, issuer }, _) => write!(
                f,
                "TLS to {ep} failed: the server's certificate ({subject}) is issued by '{issuer}', \
                 which is not a CA this client trusts; add that CA's certificate to {}",
                s.root_cas
            ),
            (Diagnosis::ServerCertExpired { subject, not_after, now }, _) => write!(
                f,
                "TLS to {ep} failed: the server's certificate ({subject}) expired at {} (it is now {}); \
                 renew {} on the server",
                when(not_after),
                when(now),
                s.server_cert
            ),
            (Diagnosis::ServerCertNotYetValid { subject, not_before, now }, _) => write!(
                f,
                "TLS to {ep} failed: the server's certificate ({subject}) is not valid before {} (it is now {}); \
                 check both machines' clocks or reissue the certificate",
                when(not_before),
                when(now)
            ),
            (Diagnosis::ServerNameMismatch { expected, presented }, _) => write!(
                f,
                "TLS to {ep} failed: the client expected the name '{expected}' but the server's certificate is for [{}]; \
                 connect with one of those names, set {}, or reissue the certificate with '{expected}' as a SAN",
                presented.join(", "),
                s.server_name
            ),
            (Diagnosis::ServerPinMismatch(p), _) => write!(
                f,
                "TLS to {ep} failed: the server presented {} (sha256 {}), which is not the certificate pinned for {}; \
                 either this is not that node or its certificate changed: update {} only if the change is legitimate",
                p.subject,
                p.fingerprint,
                p.expected.join(", "),
                s.pinned_certs
            ),
            (Diagnosis::ServerCertInvalid { subject, reason }, _) => write!(
                f,
                "TLS to {ep} failed: the server's certificate ({subject}) is unusable: {reason}; fix {} on the server",
                s.server_cert
            ),
            (Diagnosis::ClientCertRequired, _) => write!(
                f,
                "TLS to {ep} failed: the server requires a client certificate and this client sent none; \
                 configure {} with a certificate issued by a CA the server trusts",
                s.client_cert
            ),
            (Diagnosis::ClientCertRejected { alert }, _) => write!(
                f,
                "TLS to {ep} failed: the server rejected this client's certificate (alert {alert}); \
                 the certificate ({}) must be currently valid and issued by a CA in the server's trusted client CAs",
                s.client_cert
            ),
            (Diagnosis::ClientSentNoCert, _) => write!(
                f,
                "TLS on {ep}: client {client} connected without a client certificate, but this server requires one \
                 ({} is true); the client must present a certificate from a trusted CA",
                s.client_auth_required
            ),
            (Diagnosis::ClientCaUntrusted { subject, issuer }, _) => write!(
                f,
                "TLS on {ep}: client {client} presented a certificate ({subject}) issued by '{issuer}', \
                 which is not a trusted client CA; add that CA to {} or give the client a certificate from a trusted CA",
                s.client_root_cas
            ),
            (Diagnosis::ClientCertExpired { subject, not_after, now }, _) => write!(
                f,
                "TLS on {ep}: client {client} presented a certificate ({subject}) that expired at {} (it is now {}); \
                 the client needs a renewed certificate",
                when(not_after),
                when(now)
            ),
            (Diagnosis::ClientCertNotYetValid { subject, not_before, now }, _) => write!(
                f,
                "TLS on {ep}: client {client} presented a certificate ({subject}) not valid before {} (it is now {}); \
                 check both machines' clocks",
                when(not_before),
                when(now)
            ),
            (Diagnosis::ClientPinMismatch(p), _) => write!(
                f,
                "TLS on {ep}: client {client} presented {} (sha256 {}), which matches none of the pinned certificates ({}); \
                 refused; update {} only if that node's certificate legitimately changed",
                p.subject,
                p.fingerprint,
                p.expected.join(", "),
                s.pinned_certs
            ),
            (Diagnosis::ClientCertInvalid { subject, reason }, _) => write!(
                f,
                "TLS on {ep}: client {client} presented an unusable certificate ({subject}): {reason}"
            ),
            (Diagnosis::PeerRejectedOurCert { alert }, _) => write!(
                f,
                "TLS on {ep}: client {client} rejected this server's certificate (alert {alert}); \
                 the client must trust this server's TLS CA and dial a name the certificate carries ({})",
                s.server_cert
            ),
            (Diagnosis::ProtocolVersion { ours, detail }, Side::Client) => write!(
                f,
                "TLS to {ep} failed: no TLS version in common ({detail}); this client allows {ours}; \
                 a TLS 1.3-only server refuses TLS 1.2 clients: use a profile both sides support"
            ),
            (Diagnosis::ProtocolVersion { ours, detail }, Side::Server) => write!(
                f,
                "TLS on {ep}: client {client} offered no TLS version this server accepts ({detail}); \
                 this server allows {ours}; upgrade the client or relax the server's profile"
            ),
            (Diagnosis::NoCommonParameters { detail }, _) => write!(
                f,
                "TLS with {ep} failed: no cipher suite, key exchange group or signature scheme in common ({detail}); \
                 the replica profile needs TLS 1.3 with secp384r1 and P-384 certificates on both sides"
            ),
            (Diagnosis::AlpnMismatch, _) => write!(
                f,
                "TLS with {ep} failed: no application protocol in common; gRPC needs ALPN 'h2' on both sides"
            ),
            (Diagnosis::PlaintextToTlsPort { looks }, Side::Server) => write!(
                f,
                "TLS on {ep}: client {client} sent {looks} to this TLS port; the client must connect with TLS \
                 and trust this server's CA ({} on the client)",
                s.root_cas
            ),
            (Diagnosis::PlaintextToTlsPort { looks }, Side::Client) => write!(
                f,
                "connection to {ep} failed: the server answered with {looks}: it requires TLS; \
                 enable TLS on this client ({}) and trust the server's CA ({})",
                s.tls_enabled, s.root_cas
            ),
            (Diagnosis::TlsToPlaintextPort { looks }, Side::Client) => write!(
                f,
                "TLS to {ep} failed: the server answered with {looks} instead of TLS: it does not have TLS enabled; \
                 enable it on the server ({}) or connect without TLS",
                s.tls_enabled
            ),
            (Diagnosis::TlsToPlaintextPort { .. }, Side::Server) => write!(
                f,
                "plaintext port {ep}: client {client} started a TLS handshake, but TLS is not enabled here; \
                 enable it ({}) or have the client connect without TLS",
                s.tls_enabled
            ),
            (Diagnosis::ClosedDuringHandshake, Side::Client) => write!(
                f,
                "TLS to {ep} failed: the server closed the connection without completing the handshake; \
                 it may not have TLS enabled ({}), may be another service, or refused this client (see its log)",
                s.tls_enabled
            ),
            (Diagnosis::ClosedAfterClientCert, _) => write!(
                f,
                "TLS to {ep} failed: the server asked for a client certificate, received this \
                 client's ({}), and closed the connection without giving a reason; it most likely \
                 does not trust that certificate's CA: give a certificate issued by a CA the \
                 server trusts for clients, or add its CA to the server's client CAs (see the \
                 server's log)",
                s.client_cert
            ),
            (Diagnosis::ClosedDuringHandshake, Side::Server) => write!(
                f,
                "TLS on {ep}: client {client} closed the connection during the handshake \
                 (often: it does not trust this server's certificate; see the client's error)"
            ),
            (Diagnosis::ConnectFailed { detail }, _) => write!(
                f,
                "cannot connect to {ep}: {detail}; check that the node is running and listening on that address"
            ),
            (Diagnosis::Timeout { seconds }, _) => write!(
                f,
                "TLS with {ep} did not complete within {seconds}s; check the address and that the other side speaks TLS"
            ),
            (Diagnosis::Other { detail }, Side::Client) => write!(f, "TLS to {ep} failed: {detail}"),
            (Diagnosis::Other { detail }, Side::Server) => {
                write!(f, "TLS on {ep}: handshake with client {client} failed: {detail}")
            }
        }
    }
}

/// What was observed during a failed handshake, besides the error itself.
#[derive(Debug)]
pub(crate) struct Observed {
    pub side: Side,
    pub profile: Profile,
    /// The chain the other side presented, if it got that far.
    pub chain: Option<Vec<CertificateDer<'static>>>,
    /// The first bytes received.
    pub head: Looks,
    /// (client) The server sent a CertificateRequest.
    pub cert_requested: bool,
    /// (client) This client had a certificate to send.
    pub cert_sent: bool,
    pub server_name: String,
}

fn alert_name(a: &AlertDescription) -> String {
    let name = match a {
        AlertDescription::BadCertificate => "bad_certificate",
        AlertDescription::UnknownCA => "unknown_ca",
        AlertDescription::CertificateExpired => "certificate_expired",
        AlertDescription::CertificateUnknown => "certificate_unknown",
        AlertDescription::CertificateRevoked => "certificate_revoked",
        AlertDescription::UnsupportedCertificate => "unsupported_certificate",
        AlertDescription::CertificateRequired => "certificate_required",
        AlertDescription::HandshakeFailure => "handshake_failure",
        AlertDescription::ProtocolVersion => "protocol_version",
        AlertDescription::DecryptError => "decrypt_error",
        AlertDescription::AccessDenied => "access_denied",
        AlertDescription::IllegalParameter => "illegal_parameter",
        AlertDescription::InsufficientSecurity => "insufficient_security",
        AlertDescription::NoApplicationProtocol => "no_application_protocol",
        other => return format!("{other:?}"),
    };
    name.to_owned()
}

fn subject_issuer(chain: &Option<Vec<CertificateDer<'static>>>) -> (String, String) {
    let parsed = chain
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| CertSummary::parse(c).ok());
    match (parsed, chain.as_ref().map(|c| c.len()).unwrap_or(0)) {
        (Some(leaf), n) if n > 1 => {
            // With intermediates, the unknown issuer is the top of the presented chain.
            let top = chain
                .as_ref()
                .and_then(|c| c.last())
                .and_then(|c| CertSummary::parse(c).ok())
                .map(|t| t.issuer)
                .unwrap_or(leaf.issuer.clone());
            (leaf.subject, top)
        }
        (Some(leaf), _) => (leaf.subject, leaf.issuer),
        (None, _) => ("(not captured)".to_owned(), "(unknown)".to_owned()),
    }
}

/// The chain member whose validity window excludes `now`, else the leaf.
fn out_of_window(
    chain: &Option<Vec<CertificateDer<'static>>>,
    now: OffsetDateTime,
) -> Option<CertSummary> {
    let certs: Vec<CertSummary> = chain
        .iter()
        .flatten()
        .filter_map(|c| CertSummary::parse(c).ok())
        .collect();
    certs
        .iter()
        .find(|c| now < c.not_before || now > c.not_after)
        .or(certs.first())
        .cloned()
}

fn unix(t: rustls_pki_types::UnixTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t.as_secs() as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn cert_error(e: &CertificateError, obs: &Observed) -> Diagnosis {
    let local_now = OffsetDateTime::now_utc();
    let server_side_cert = obs.side == Side::Client; // the certificate judged is the server's
    match e {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            let (subject, issuer) = subject_issuer(&obs.chain);
            if server_side_cert {
                Diagnosis::ServerCaUntrusted { subject, issuer }
            } else {
                Diagnosis::ClientCaUntrusted { subject, issuer }
            }
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let now = match e {
                CertificateError::ExpiredContext { time, .. } => unix(*time),
                _ => local_now,
            };
            let cert = out_of_window(&obs.chain, now);
            let subject = cert.as_ref().map(|c| c.subject.clone()).unwrap_or_default();
            let not_after = match (e, &cert) {
                (_, Some(c)) => c.not_after,
                (CertificateError::ExpiredContext { not_after, .. }, None) => unix(*not_after),
                _ => now,
            };
            if server_side_cert {
                Diagnosis::ServerCertExpired {
                    subject,
                    not_after,
                    now,
                }
            } else {
                Diagnosis::ClientCertExpired {
                    subject,
                    not_after,
                    now,
                }
            }
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let now = match e {
                CertificateError::NotValidYetContext { time, .. } => unix(*time),
                _ => local_now,
            };
            let cert = out_of_window(&obs.chain, now);
            let subject = cert.as_ref().map(|c| c.subject.clone()).unwrap_or_default();
            let not_before = cert.map(|c| c.not_before).unwrap_or(now);
            if server_side_cert {
                Diagnosis::ServerCertNotYetValid {
                    subject,
                    not_before,
                    now,
                }
            } else {
                Diagnosis::ClientCertNotYetValid {
                    subject,
                    not_before,
                    now,
                }
            }
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            let presented = match e {
                CertificateError::NotValidForNameContext { presented, .. } => presented.clone(),
                _ => obs
                    .chain
                    .as_ref()
                    .and_then(|c| c.first())
                    .and_then(|c| CertSummary::parse(c).ok())
                    .map(|s| s.sans)
                    .unwrap_or_default(),
            };
            Diagnosis::ServerNameMismatch {
                expected: obs.server_name.clone(),
                presented,
            }
        }
        CertificateError::Other(other) => {
            if let Some(p) = other.0.downcast_ref::<PinMismatch>() {
                if server_side_cert {
                    Diagnosis::ServerPinMismatch(p.clone())
                } else {
                    Diagnosis::ClientPinMismatch(p.clone())
                }
            } else {
                invalid(obs, other.to_string())
            }
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            let purpose = if server_side_cert {
                "TLS server"
            } else {
                "TLS client"
            };
            invalid(
                obs,
                format!("its extended key usage does not allow {purpose} authentication"),
            )
        }
        other => invalid(obs, format!("{other:?}")),
    }
}

fn invalid(obs: &Observed, reason: String) -> Diagnosis {
    let (subject, _) = subject_issuer(&obs.chain);
    if obs.side == Side::Client {
        Diagnosis::ServerCertInvalid { subject, reason }
    } else {
        Diagnosis::ClientCertInvalid { subject, reason }
    }
}

/// Translate a rustls error seen during (or right after) a handshake.
pub(crate) fn diagnose(err: &rustls::Error, obs: &Observed) -> Diagnosis {
    use rustls::Error as E;
    match err {
        E::InvalidCertificate(e) => cert_error(e, obs),
        E::NoCertificatesPresented => Diagnosis::ClientSentNoCert,
        E::AlertReceived(alert) => alert_received(alert, obs),
        E::PeerIncompatible(p) => incompatible(p, obs),
        E::NoApplicationProtocol => Diagnosis::AlpnMismatch,
        E::InvalidMessage(_)
        | E::InappropriateMessage { .. }
        | E::InappropriateHandshakeMessage { .. }
            if !obs.head.is_tls() && obs.head != Looks::Nothing =>
        {
            plaintext_seen(obs)
        }
        other => Diagnosis::Other {
            detail: other.to_string(),
        },
    }
}

fn plaintext_seen(obs: &Observed) -> Diagnosis {
    match obs.side {
        // A TLS client got a plaintext answer: the server is not speaking TLS.
        Side::Client => Diagnosis::TlsToPlaintextPort {
            looks: obs.head.clone(),
        },
        // A TLS server got plaintext: the client is not speaking TLS.
        Side::Server => Diagnosis::PlaintextToTlsPort {
            looks: obs.head.clone(),
        },
    }
}

fn alert_received(alert: &AlertDescription, obs: &Observed) -> Diagnosis {
    use AlertDescription as A;
    let cert_alert = matches!(
        alert,
        A::BadCertificate
            | A::UnknownCA
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::UnsupportedCertificate
            | A::AccessDenied
            | A::DecryptError
    );
    match (obs.side, alert) {
        (_, A::ProtocolVersion) => Diagnosis::ProtocolVersion {
            ours: obs.profile,
            detail: "the other side answered protocol_version".into(),
        },
        (_, A::NoApplicationProtocol) => Diagnosis::AlpnMismatch,
        (Side::Client, A::CertificateRequired) => Diagnosis::ClientCertRequired,
        (Side::Client, A::BadCertificate | A::HandshakeFailure)
            if obs.cert_requested && !obs.cert_sent =>
        {
            Diagnosis::ClientCertRequired
        }
        (Side::Client, _) if cert_alert && obs.cert_sent => Diagnosis::ClientCertRejected {
            alert: alert_name(alert),
        },
        (Side::Server, _) if cert_alert => Diagnosis::PeerRejectedOurCert {
            alert: alert_name(alert),
        },
        (_, A::HandshakeFailure | A::InsufficientSecurity | A::IllegalParameter) => {
            Diagnosis::NoCommonParameters {
                detail: format!("the other side answered {}", alert_name(alert)),
            }
        }
        _ => Diagnosis::Other {
            detail: format!("the other side sent alert {}", alert_name(alert)),
        },
    }
}

fn incompatible(p: &PeerIncompatible, obs: &Observed) -> Diagnosis {
    use PeerIncompatible as P;
    match p {
        P::ServerDoesNotSupportTls12Or13
        | P::ServerTlsVersionIsDisabledByOurConfig
        | P::SupportedVersionsExtensionRequired
        | P::Tls12NotOffered
        | P::Tls12NotOfferedOrEnabled => {
            let detail = match (obs.side, p) {
                (Side::Server, P::SupportedVersionsExtensionRequired) => {
                    "the client offered only TLS 1.2 or older".to_owned()
                }
                (Side::Server, P::Tls12NotOffered | P::Tls12NotOfferedOrEnabled) => {
                    "the client offered only TLS versions this server disabled".to_owned()
                }
                (Side::Client, P::ServerTlsVersionIsDisabledByOurConfig) => {
                    "the server chose a TLS version this client disabled".to_owned()
                }
                _ => format!("{p:?}"),
            };
            Diagnosis::ProtocolVersion {
                ours: obs.profile,
                detail,
            }
        }
        other => Diagnosis::NoCommonParameters {
            detail: format!("{other:?}"),
        },
    }
}

/// Translate an I/O error from a handshake (tokio-rustls wraps rustls errors in io::Error).
pub(crate) fn diagnose_io(e: &io::Error, obs: &Observed) -> Diagnosis {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return diagnose(inner, obs);
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => {
            if obs.head != Looks::Nothing && !obs.head.is_tls() {
                plaintext_seen(obs)
            } else if obs.side == Side::Client && obs.cert_requested && obs.cert_sent {
                Diagnosis::ClosedAfterClientCert
            } else {
                Diagnosis::ClosedDuringHandshake
            }
        }
        io::ErrorKind::InvalidData if !obs.head.is_tls() && obs.head != Looks::Nothing => {
            plaintext_seen(obs)
        }
        _ => Diagnosis::Other {
            detail: e.to_string(),
        },
    }
}
