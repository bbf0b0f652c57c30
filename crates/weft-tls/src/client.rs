//! Dialing with TLS: explicit trust, explicit client identity, diagnosed failures.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::{ResolvesClientCert, Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::diagnose::{diagnose_io, Observed};
use crate::sniff::Recorded;
use crate::verify::{take, ClientSideVerifier, Seen, ServerTrust};
use crate::{
    ConfigError, Diagnosis, HandshakeError, HandshakeInfo, Identity, Profile, Settings, Side,
    Trust, ALPN_H2,
};

/// Where to connect and whom to expect there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    address: String,
    server_name: ServerName<'static>,
    node: Option<String>,
}

impl Endpoint {
    /// `host:port` (IPv6 as `[::1]:7051`). The expected server name is the host, unless
    /// overridden with [`Endpoint::with_server_name`].
    pub fn parse(address: &str) -> Result<Self, ConfigError> {
        let err = |detail: &str| ConfigError::Endpoint {
            input: address.to_owned(),
            detail: detail.to_owned(),
        };
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| err("expected host:port"))?;
        port.parse::<u16>()
            .map_err(|_| err("the port is not a number between 0 and 65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        let server_name = server_name(host).map_err(|d| err(&d))?;
        Ok(Endpoint {
            address: address.to_owned(),
            server_name,
            node: None,
        })
    }

    /// Expect `name` in the server's certificate instead of the host dialed (Fabric's
    /// `ssl-target-name-override`).
    pub fn with_server_name(mut self, name: &str) -> Result<Self, ConfigError> {
        self.server_name = server_name(name).map_err(|detail| ConfigError::Endpoint {
            input: name.to_owned(),
            detail,
        })?;
        Ok(self)
    }

    /// The node id whose pinned certificate the server must present (pinned trust).
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn server_name(&self) -> String {
        match &self.server_name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
            other => format!("{other:?}"),
        }
    }
}

fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("'{host}' is not a valid DNS name or IP address ({e})"))
}

/// Whether this client presents a certificate. Chosen explicitly, never defaulted.
// Built once per client; the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ClientIdentity {
    /// Present no certificate (servers that require one will refuse).
    Anonymous,
    /// Present this certificate whenever the server asks for one.
    Certificate(Identity),
}

/// A TLS client: dial endpoints with fixed trust, identity and profile.
#[derive(Debug, Clone)]
pub struct TlsClient {
    trust: ClientTrustConfig,
    identity: Option<Arc<CertifiedKey>>,
    profile: Profile,
    provider: Arc<CryptoProvider>,
    settings: Arc<Settings>,
    resumption: Resumption,
    handshake_timeout: Duration,
    confirm_timeout: Duration,
    log_failures: bool,
}

#[derive(Debug, Clone)]
enum ClientTrustConfig {
    WebPki(Arc<WebPkiServerVerifier>),
    Pinned(crate::PinSet),
    RecordOnly,
}

/// A connected TLS stream and what was negotiated.
#[derive(Debug)]
pub struct ClientConnected<IO> {
    pub stream: tokio_rustls::client::TlsStream<Recorded<IO>>,
    pub info: HandshakeInfo,
}

impl TlsClient {
    /// A client with explicit trust, identity and profile.
    pub fn new(
        trust: Trust,
        identity: ClientIdentity,
        profile: Profile,
    ) -> Result<Self, ConfigError> {
        Self::build(Some(trust), identity, profile)
    }

    /// A client that trusts nothing but records what servers present: for `weft doctor tls`
    /// when no CA is given. Every handshake fails with an "untrusted CA" diagnosis.
    pub fn record_only(identity: ClientIdentity, profile: Profile) -> Result<Self, ConfigError> {
        Self::build(None, identity, profile)
    }

    fn build(
        trust: Option<Trust>,
        identity: ClientIdentity,
        profile: Profile,
    ) -> Result<Self, ConfigError> {
        let provider = profile.provider();
        let settings = Arc::new(Settings::default());
        let trust = match trust {
            None => ClientTrustConfig::RecordOnly,
            Some(Trust::Roots(roots)) => {
                let store = Trust::root_store(&roots, &settings.root_cas)?;
                let verifier = WebPkiServerVerifier::builder_with_provider(store, provider.clone())
                    .build()
                    .map_err(|e| ConfigError::BadRoot {
                        setting: settings.root_cas.to_string(),
                        detail: e.to_string(),
                    })?;
                ClientTrustConfig::WebPki(verifier)
            }
            Some(Trust::Pinned(pins)) => {
                if pins.is_empty() {
                    return Err(ConfigError::NoRoots {
                        setting: settings.pinned_certs.to_string(),
                    });
                }
                ClientTrustConfig::Pinned(pins)
            }
        };
        let identity = match identity {
            ClientIdentity::Anonymous => None,
            ClientIdentity::Certificate(id) => Some(id.certified_key(&provider)?),
        };
        Ok(TlsClient {
            trust,
            identity,
            profile,
            provider,
            settings,
            resumption: Resumption::default(),
            handshake_timeout: Duration::from_secs(10),
            confirm_timeout: Duration::from_secs(2),
            log_failures: true,
        })
    }

    /// Name the settings in diagnoses after this node kind's configuration keys.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = Arc::new(settings);
        self
    }

    /// Whether failed handshakes are logged (at WARN, with the diagnosis). On by default; a
    /// caller that reports the failure itself (`weft doctor`) turns it off.
    pub fn with_failure_logging(mut self, on: bool) -> Self {
        self.log_failures = on;
        self
    }

    /// The longest a TCP connect plus handshake may take (default 10 s).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Session resumption (on by default; shared by every connection of this client).
    pub fn with_resumption(mut self, enabled: bool) -> Self {
        self.resumption = if enabled {
            Resumption::default()
        } else {
            Resumption::disabled()
        };
        self
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// A client like this one but presenting no certificate (doctor: is one *required*?).
    pub fn without_identity(&self) -> Self {
        TlsClient {
            identity: None,
            resumption: Resumption::disabled(),
            ..self.clone()
        }
    }

    fn config_for(
        &self,
        endpoint: &Endpoint,
        seen: &Seen,
        requested: &Arc<AtomicBool>,
    ) -> Result<ClientConfig, HandshakeError> {
        let trust = match &self.trust {
            ClientTrustConfig::WebPki(v) => ServerTrust::WebPki(v.clone()),
            ClientTrustConfig::Pinned(pins) => {
                let node = endpoint.node.clone().ok_or_else(|| {
                    self.fail(
                        endpoint,
                        Diagnosis::Other {
                            detail: ConfigError::PinnedNeedsNode {
                                endpoint: endpoint.address.clone(),
                            }
                            .to_string(),
                        },
                    )
                })?;
                if pins.get(&node).is_none() {
                    let known = pins.nodes().collect::<Vec<_>>().join(", ");
                    return Err(self.fail(
                        endpoint,
                        Diagnosis::Other {
                            detail: ConfigError::UnknownNode {
                                endpoint: endpoint.address.clone(),
                                node,
                                known,
                            }
                            .to_string(),
                        },
                    ));
                }
                ServerTrust::Pinned {
                    pins: pins.clone(),
                    node,
                }
            }
            ClientTrustConfig::RecordOnly => ServerTrust::RecordOnly,
        };
        let verifier = Arc::new(ClientSideVerifier {
            trust,
            provider: self.provider.clone(),
            seen: seen.clone(),
        });
        let resolver = Arc::new(RecordingResolver {
            key: self.identity.clone(),
            requested: requested.clone(),
        });
        let mut config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.profile.versions())
            .map_err(|e| {
                self.fail(
                    endpoint,
                    Diagnosis::Other {
                        detail: e.to_string(),
                    },
                )
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver);
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        config.resumption = self.resumption.clone();
        Ok(config)
    }

    fn fail(&self, endpoint: &Endpoint, diagnosis: Diagnosis) -> HandshakeError {
        let e = HandshakeError::new(
            endpoint.address.clone(),
            None,
            Side::Client,
            diagnosis,
            self.settings.clone(),
        );
        if self.log_failures {
            tracing::warn!(endpoint = %endpoint.address, reason = e.code(), "{e}");
        }
        e
    }

    fn fail_observed(
        &self,
        endpoint: &Endpoint,
        e: &std::io::Error,
        obs: Observed,
    ) -> HandshakeError {
        let mut err = self.fail(endpoint, diagnose_io(e, &obs));
        err.presented_chain = obs.chain.unwrap_or_default();
        err.client_cert_requested = Some(obs.cert_requested);
        err
    }

    /// Open a TCP connection to the endpoint and run the handshake.
    pub async fn connect_tcp(
        &self,
        endpoint: &Endpoint,
    ) -> Result<ClientConnected<TcpStream>, HandshakeError> {
        let started = tokio::time::Instant::now();
        let tcp = match tokio::time::timeout(
            self.handshake_timeout,
            TcpStream::connect(endpoint.address()),
        )
        .await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(self.fail(
                    endpoint,
                    Diagnosis::ConnectFailed {
                        detail: e.to_string(),
                    },
                ))
            }
            Err(_) => {
                return Err(self.fail(
                    endpoint,
                    Diagnosis::Timeout {
                        seconds: self.handshake_timeout.as_secs(),
                    },
                ))
            }
        };
        let _ = tcp.set_nodelay(true);
        let remaining = self.handshake_timeout.saturating_sub(started.elapsed());
        self.connect_within(tcp, endpoint, remaining).await
    }

    /// Run the handshake over an established transport.
    pub async fn connect<IO>(
        &self,
        io: IO,
        endpoint: &Endpoint,
    ) -> Result<ClientConnected<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        self.connect_within(io, endpoint, self.handshake_timeout)
            .await
    }

    async fn connect_within<IO>(
        &self,
        io: IO,
        endpoint: &Endpoint,
        limit: Duration,
    ) -> Result<ClientConnected<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let seen: Seen = Seen::default();
        let requested = Arc::new(AtomicBool::new(false));
        let config = self.config_for(endpoint, &seen, &requested)?;
        let connector = TlsConnector::from(Arc::new(config));
        let (io, head) = Recorded::new(io);
        let handshake = connector.connect_with(endpoint.server_name.clone(), io, |_| {});
        let result = match tokio::time::timeout(limit, handshake).await {
            Ok(result) => result,
            Err(_) => {
                return Err(self.fail(
                    endpoint,
                    Diagnosis::Timeout {
                        seconds: limit.as_secs().max(1),
                    },
                ));
            }
        };
        let observe = |chain: Option<Vec<CertificateDer<'static>>>| Observed {
            side: Side::Client,
            profile: self.profile,
            chain: chain.or_else(|| take(&seen)),
            head: head.looks(),
            cert_requested: requested.load(Ordering::SeqCst),
            cert_sent: requested.load(Ordering::SeqCst) && self.identity.is_some(),
            server_name: endpoint.server_name(),
        };
        let mut stream = match result {
            Ok(stream) => stream,
            Err(e) => return Err(self.fail_observed(endpoint, &e, observe(None))),
        };
        let chain: Vec<CertificateDer<'static>> = stream
            .get_ref()
            .1
            .peer_certificates()
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let was_requested = requested.load(Ordering::SeqCst);
        // In TLS 1.3 the server judges our certificate after our Finished: a refusal arrives as
        // an alert after the handshake "succeeded". Wait for the server's first flight (session
        // tickets or data) so that refusal is reported here, with its reason.
        if was_requested
            && stream.get_ref().1.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3)
        {
            if let Err(e) = confirm(&mut stream, self.confirm_timeout).await {
                return Err(self.fail_observed(endpoint, &e, observe(Some(chain))));
            }
        }
        let pinned_node = match &self.trust {
            ClientTrustConfig::Pinned(_) => endpoint.node.clone(),
            _ => None,
        };
        let info = HandshakeInfo::from_client(
            stream.get_ref().1,
            was_requested,
            was_requested && self.identity.is_some(),
            pinned_node,
        );
        Ok(ClientConnected { stream, info })
    }
}

/// Read until the server shows it accepted us (a session ticket or application data), it
/// refuses (an alert, returned as the error), or `limit` passes (taken as accepted).
async fn confirm<IO>(
    stream: &mut tokio_rustls::client::TlsStream<Recorded<IO>>,
    limit: Duration,
) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let (io, conn) = stream.get_mut();
        if conn.tls13_tickets_received() > 0 {
            return Ok(());
        }
        let n = match tokio::time::timeout_at(deadline, io.read(&mut buf)).await {
            Err(_) => return Ok(()),
            Ok(r) => r?,
        };
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "server closed the connection after the handshake",
            ));
        }
        let mut rd = &buf[..n];
        let mut plaintext = false;
        while !rd.is_empty() {
            conn.read_tls(&mut rd)?;
            let state = conn
                .process_new_packets()
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            plaintext |= state.plaintext_bytes_to_read() > 0;
        }
        if conn.wants_write() {
            let mut out = Vec::new();
            conn.write_tls(&mut out)?;
            io.write_all(&out).await?;
        }
        if plaintext || conn.tls13_tickets_received() > 0 {
            return Ok(());
        }
    }
}

/// Hands out the client certificate, and notes that the server asked for one.
#[derive(Debug)]
struct RecordingResolver {
    key: Option<Arc<CertifiedKey>>,
    requested: Arc<AtomicBool>,
}

impl ResolvesClientCert for RecordingResolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}
