//! Certificate verifiers: rustls/webpki underneath, plus pinning, plus recording of what the
//! other side presented so a failure can name it.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use weft_crypto::CertSummary;

use crate::PinSet;

/// The chain the other side presented, captured during the handshake.
pub(crate) type Seen = Arc<Mutex<Option<Vec<CertificateDer<'static>>>>>;

fn record(seen: &Seen, end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) {
    let mut chain = Vec::with_capacity(1 + intermediates.len());
    chain.push(end_entity.clone().into_owned());
    chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
    if let Ok(mut slot) = seen.lock() {
        *slot = Some(chain);
    }
}

pub(crate) fn take(seen: &Seen) -> Option<Vec<CertificateDer<'static>>> {
    seen.lock().ok().and_then(|mut s| s.take())
}

/// The presented certificate is not the pinned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// Subject of the presented certificate.
    pub subject: String,
    /// SHA-256 fingerprint of the presented certificate.
    pub fingerprint: String,
    /// The node ids whose pinned certificates would have been accepted.
    pub expected: Vec<String>,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "certificate {} (sha256 {}) is not the pinned certificate of {}",
            self.subject,
            self.fingerprint,
            self.expected.join(", ")
        )
    }
}

impl std::error::Error for PinMismatch {}

/// Accept `end_entity` only if it is byte for byte one of `allowed`, and currently valid.
fn check_pinned<'a>(
    end_entity: &CertificateDer<'_>,
    allowed: impl Iterator<Item = (&'a str, &'a CertificateDer<'static>)>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let mut expected = Vec::new();
    for (node, cert) in allowed {
        if cert.as_ref() == end_entity.as_ref() {
            let summary = CertSummary::parse(cert)
                .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
            let now_s = now.as_secs() as i64;
            if now_s < summary.not_before.unix_timestamp() {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidYetContext {
                        time: now,
                        not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                            summary.not_before.unix_timestamp().max(0) as u64,
                        )),
                    },
                ));
            }
            if now_s > summary.not_after.unix_timestamp() {
                return Err(rustls::Error::InvalidCertificate(
                    CertificateError::ExpiredContext {
                        time: now,
                        not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                            summary.not_after.unix_timestamp().max(0) as u64,
                        )),
                    },
                ));
            }
            return Ok(());
        }
        expected.push(node.to_owned());
    }
    let (subject, fingerprint) = match CertSummary::parse(end_entity) {
        Ok(s) => (s.subject.clone(), s.fingerprint()),
        Err(_) => (
            "(unparsable)".to_owned(),
            weft_crypto::hex(&weft_crypto::sha256(end_entity)),
        ),
    };
    Err(rustls::Error::InvalidCertificate(CertificateError::Other(
        OtherError(Arc::new(PinMismatch {
            subject,
            fingerprint,
            expected,
        })),
    )))
}

/// How a client judges the server's certificate.
#[derive(Debug, Clone)]
pub(crate) enum ServerTrust {
    WebPki(Arc<WebPkiServerVerifier>),
    Pinned {
        pins: PinSet,
        node: String,
    },
    /// Record the chain and refuse it as untrusted: `weft doctor tls` without `--cafile`.
    RecordOnly,
}

#[derive(Debug)]
pub(crate) struct ClientSideVerifier {
    pub(crate) trust: ServerTrust,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) seen: Seen,
}

impl ServerCertVerifier for ClientSideVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        record(&self.seen, end_entity, intermediates);
        match &self.trust {
            ServerTrust::WebPki(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            ServerTrust::Pinned { pins, node } => {
                let allowed = pins.get(node).map(|c| (node.as_str(), c));
                check_pinned(end_entity, allowed.into_iter(), now)
                    .map(|()| ServerCertVerified::assertion())
            }
            ServerTrust::RecordOnly => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// How a server judges client certificates.
#[derive(Debug, Clone)]
pub(crate) enum ClientTrust {
    WebPki(Arc<dyn ClientCertVerifier>),
    Pinned(PinSet),
}

#[derive(Debug)]
pub(crate) struct ServerSideVerifier {
    pub(crate) trust: ClientTrust,
    pub(crate) mandatory: bool,
    pub(crate) provider: Arc<CryptoProvider>,
    pub(crate) seen: Seen,
}

impl ClientCertVerifier for ServerSideVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        match &self.trust {
            ClientTrust::WebPki(v) => v.root_hint_subjects(),
            ClientTrust::Pinned(_) => &[],
        }
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        record(&self.seen, end_entity, intermediates);
        match &self.trust {
            ClientTrust::WebPki(v) => v.verify_client_cert(end_entity, intermediates, now),
            ClientTrust::Pinned(pins) => {
                let allowed = pins.nodes().filter_map(|n| pins.get(n).map(|c| (n, c)));
                check_pinned(end_entity, allowed, now).map(|()| ClientCertVerified::assertion())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
