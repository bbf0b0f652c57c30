//! `weft doctor tls`: probe an endpoint with given material and explain the outcome.

use std::fmt::Write as _;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use weft_crypto::CertSummary;

use crate::{
    ClientIdentity, ConfigError, Diagnosis, Endpoint, HandshakeError, HandshakeInfo, Identity,
    Profile, Settings, TlsClient, Trust,
};

/// The material a probe connects with: what a real client would have.
#[derive(Debug, Default)]
pub struct ProbeOptions {
    /// Trusted CAs; `None` probes without verifying (and the verdict is "untrusted").
    pub ca: Option<Vec<CertificateDer<'static>>>,
    /// Client certificate and key to present when asked.
    pub identity: Option<Identity>,
    /// Name expected in the server's certificate, if not the host dialed.
    pub server_name: Option<String>,
    pub profile: Profile,
    pub timeout: Option<Duration>,
}

/// What the server does about client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertPolicy {
    /// The server did not ask for one.
    NotRequested,
    /// The server asks but accepts clients without one.
    Optional,
    /// The server refuses clients without one.
    Required,
    /// The server asked for one; the handshake stopped before it could be learnt whether
    /// clients without one are accepted.
    Requested,
    /// The handshake stopped before this could be learnt.
    Unknown,
}

/// The outcome of a probe.
#[derive(Debug)]
pub struct ProbeReport {
    pub endpoint: String,
    pub expected_name: String,
    /// The server's chain as presented (even when it was not trusted).
    pub chain: Vec<CertSummary>,
    pub client_cert: ClientCertPolicy,
    /// Whether the probe presented a client certificate.
    pub presented_identity: Option<String>,
    pub result: Result<HandshakeInfo, HandshakeError>,
}

impl ProbeReport {
    /// Whether a client with the given material can connect.
    pub fn ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "endpoint:     {} (expecting name '{}')",
            self.endpoint, self.expected_name
        );
        match &self.result {
            Ok(info) => {
                let _ = writeln!(
                    out,
                    "handshake:    OK, {} {} key exchange {} ALPN {}",
                    info.protocol,
                    info.cipher_suite,
                    info.key_exchange.as_deref().unwrap_or("-"),
                    info.alpn.as_deref().unwrap_or("none")
                );
            }
            Err(e) => {
                let _ = writeln!(out, "handshake:    FAILED ({})", e.code());
            }
        }
        let policy = match self.client_cert {
            ClientCertPolicy::NotRequested => "not requested by the server",
            ClientCertPolicy::Optional => "requested, optional (clients without one are accepted)",
            ClientCertPolicy::Required => "required (clients without one are refused)",
            ClientCertPolicy::Requested => {
                "requested by the server (whether it is required is unknown: the handshake stopped earlier)"
            }
            ClientCertPolicy::Unknown => "unknown (the handshake stopped earlier)",
        };
        let _ = writeln!(out, "client cert:  {policy}");
        if let Some(id) = &self.presented_identity {
            let _ = writeln!(out, "presented:    {id}");
        }
        if self.chain.is_empty() {
            let _ = writeln!(out, "server chain: (none received)");
        } else {
            let _ = writeln!(out, "server chain:");
            let now = OffsetDateTime::now_utc();
            for (i, cert) in self.chain.iter().enumerate() {
                let _ = writeln!(out, "  [{i}] subject: {}", cert.subject);
                let _ = writeln!(out, "      issuer:  {}", cert.issuer);
                if !cert.sans.is_empty() {
                    let _ = writeln!(out, "      SANs:    {}", cert.sans.join(", "));
                }
                let state = match cert.validity_at(now) {
                    weft_crypto::x509::ValidityState::Valid => {
                        format!("valid, {} days left", (cert.not_after - now).whole_days())
                    }
                    weft_crypto::x509::ValidityState::Expired => "EXPIRED".to_owned(),
                    weft_crypto::x509::ValidityState::NotYetValid => "NOT YET VALID".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "      valid:   {} .. {} ({state})",
                    fmt_time(cert.not_before),
                    fmt_time(cert.not_after)
                );
                let _ = writeln!(
                    out,
                    "      key:     {}, sha256 {}",
                    cert.key_algorithm,
                    cert.fingerprint()
                );
            }
        }
        match &self.result {
            Ok(_) => {
                let _ = writeln!(
                    out,
                    "verdict:      OK: a client with this material can connect"
                );
            }
            Err(e) => {
                let _ = writeln!(out, "verdict:      FAILED: {e}");
            }
        }
        out
    }
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Probe `address` with the given material.
pub async fn probe(address: &str, opts: ProbeOptions) -> Result<ProbeReport, ConfigError> {
    let mut endpoint = Endpoint::parse(address)?;
    if let Some(name) = &opts.server_name {
        endpoint = endpoint.with_server_name(name)?;
    }
    let presented_identity = opts.identity.as_ref().map(|id| id.leaf().subject.clone());
    let identity = match opts.identity {
        Some(id) => ClientIdentity::Certificate(id),
        None => ClientIdentity::Anonymous,
    };
    let client = match opts.ca {
        Some(ca) => TlsClient::new(Trust::Roots(ca), identity, opts.profile)?,
        None => TlsClient::record_only(identity, opts.profile)?,
    }
    .with_settings(Settings::doctor())
    .with_failure_logging(false)
    .with_handshake_timeout(opts.timeout.unwrap_or(Duration::from_secs(5)));

    let first = client.connect_tcp(&endpoint).await;
    let (chain_der, requested, result) = match first {
        Ok(c) => (
            c.info.peer_chain.clone(),
            Some(c.info.client_cert_requested),
            Ok(c.info),
        ),
        Err(e) => (e.presented_chain.clone(), e.client_cert_requested, Err(e)),
    };
    let client_cert = match (&result, requested) {
        (Err(e), _) if e.diagnosis == Diagnosis::ClientCertRequired => ClientCertPolicy::Required,
        (_, Some(false)) => ClientCertPolicy::NotRequested,
        (Ok(_), Some(true)) if !client.has_identity() => ClientCertPolicy::Optional,
        (Ok(_), Some(true)) => {
            // Ask again without a certificate to learn whether it is required.
            match client.without_identity().connect_tcp(&endpoint).await {
                Ok(_) => ClientCertPolicy::Optional,
                Err(e) if e.diagnosis == Diagnosis::ClientCertRequired => {
                    ClientCertPolicy::Required
                }
                Err(_) => ClientCertPolicy::Unknown,
            }
        }
        (Err(_), Some(true)) => ClientCertPolicy::Requested,
        _ => ClientCertPolicy::Unknown,
    };
    Ok(ProbeReport {
        endpoint: endpoint.address().to_owned(),
        expected_name: endpoint.server_name(),
        chain: chain_der
            .iter()
            .filter_map(|c| CertSummary::parse(c).ok())
            .collect(),
        client_cert,
        presented_identity,
        result,
    })
}
