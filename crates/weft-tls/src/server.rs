//! Accepting TLS: explicit identity, explicit client authentication, live client trust.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{
    ResolvesServerCert, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsAcceptor;

use crate::diagnose::{diagnose_io, Observed};
use crate::sniff::Recorded;
use crate::verify::{take, ClientTrust, Seen, ServerSideVerifier};
use crate::{
    ConfigError, Diagnosis, HandshakeError, HandshakeInfo, Identity, Profile, Settings, Side,
    Trust, ALPN_H2,
};

/// How a server treats client certificates. Chosen explicitly, never defaulted.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Do not ask for a client certificate.
    None,
    /// Ask for one; verify it against this trust if presented; accept clients without one.
    /// Fabric servers behave this way when `clientAuthRequired` is false.
    Request(Trust),
    /// Require one that verifies against this trust (`clientAuthRequired: true`).
    Require(Trust),
}

/// Told about every handshake a [`TlsServer`] refuses or loses, after it is logged: the
/// operations service counts them by listener and [`HandshakeError::code`]. Keeps this crate
/// free of any metrics library.
pub trait HandshakeObserver: Send + Sync + std::fmt::Debug {
    fn handshake_failed(&self, error: &HandshakeError);
}

/// A TLS server endpoint.
#[derive(Debug)]
pub struct TlsServer {
    identity: Arc<CertifiedKey>,
    profile: Profile,
    provider: Arc<CryptoProvider>,
    mandatory: Option<bool>,
    state: RwLock<TrustState>,
    settings: Arc<Settings>,
    endpoint: String,
    handshake_timeout: Duration,
    /// ALPN protocols offered, in preference order (gRPC servers: `h2` only).
    alpn: Vec<Vec<u8>>,
    /// Told about failed handshakes (see [`TlsServer::with_observer`]).
    observer: Option<Arc<dyn HandshakeObserver>>,
}

#[derive(Debug, Clone)]
struct TrustState {
    trust: Option<ClientTrust>,
    /// Session cache; replaced with the trust so a removed CA cannot ride on resumption.
    sessions: Arc<dyn StoresServerSessions>,
}

/// An accepted TLS stream and what was negotiated.
#[derive(Debug)]
pub struct ServerAccepted<IO> {
    pub stream: tokio_rustls::server::TlsStream<Recorded<IO>>,
    pub info: HandshakeInfo,
}

impl TlsServer {
    /// A server presenting `identity`, treating clients per `client_auth`, speaking `profile`.
    pub fn new(
        identity: &Identity,
        client_auth: ClientAuth,
        profile: Profile,
    ) -> Result<Self, ConfigError> {
        let provider = profile.provider();
        let settings = Arc::new(Settings::default());
        let (mandatory, trust) = match client_auth {
            ClientAuth::None => (None, None),
            ClientAuth::Request(t) => (
                Some(false),
                Some(client_trust(t, false, &provider, &settings)?),
            ),
            ClientAuth::Require(t) => (
                Some(true),
                Some(client_trust(t, true, &provider, &settings)?),
            ),
        };
        Ok(TlsServer {
            identity: identity.certified_key(&provider)?,
            profile,
            provider,
            mandatory,
            state: RwLock::new(TrustState {
                trust,
                sessions: new_sessions(),
            }),
            settings,
            endpoint: "this server".to_owned(),
            handshake_timeout: Duration::from_secs(10),
            alpn: vec![ALPN_H2.to_vec()],
            observer: None,
        })
    }

    /// Name the settings in diagnoses after this node kind's configuration keys.
    pub fn with_settings(mut self, settings: Settings) -> Self {
        self.settings = Arc::new(settings);
        self
    }

    /// The listening address, used in messages and logs.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Offer these ALPN protocols instead of `h2` alone, e.g. `h2` and `http/1.1` for an HTTPS
    /// API that HTTP/1.1 clients use too. A client that offers none of them is refused.
    pub fn with_alpn_protocols(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Tell `observer` about every failed handshake (after logging it).
    pub fn with_observer(mut self, observer: Arc<dyn HandshakeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    pub fn profile(&self) -> Profile {
        self.profile
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Replace the trusted client CAs (or pins) of this running server. New handshakes use the
    /// new trust at once; established connections are not touched; cached sessions are dropped.
    pub fn set_client_trust(&self, trust: Trust) -> Result<(), ConfigError> {
        let Some(mandatory) = self.mandatory else {
            return Err(ConfigError::Unsupported(format!(
                "{}: client authentication is off, so there are no client CAs to replace",
                self.endpoint
            )));
        };
        let trust = client_trust(trust, mandatory, &self.provider, &self.settings)?;
        let mut state = self
            .state
            .write()
            .map_err(|_| ConfigError::Unsupported("trust lock poisoned".into()))?;
        *state = TrustState {
            trust: Some(trust),
            sessions: new_sessions(),
        };
        tracing::info!(endpoint = %self.endpoint, "trusted client CAs replaced");
        Ok(())
    }

    fn config(&self, seen: &Seen) -> Result<ServerConfig, ConfigError> {
        let state = self
            .state
            .read()
            .map_err(|_| ConfigError::Unsupported("trust lock poisoned".into()))?
            .clone();
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(self.profile.versions())?;
        let builder = match (state.trust, self.mandatory) {
            (Some(trust), Some(mandatory)) => {
                builder.with_client_cert_verifier(Arc::new(ServerSideVerifier {
                    trust,
                    mandatory,
                    provider: self.provider.clone(),
                    seen: seen.clone(),
                }))
            }
            _ => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(Fixed(self.identity.clone())));
        config.alpn_protocols = self.alpn.clone();
        config.session_storage = state.sessions;
        Ok(config)
    }

    /// Run the server side of a handshake on an accepted transport. `peer` names the client
    /// (its address) in logs and errors. Failures are logged here, with the diagnosis.
    pub async fn accept<IO>(
        &self,
        io: IO,
        peer: Option<String>,
    ) -> Result<ServerAccepted<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let result = self.accept_inner(io, peer.clone()).await;
        if let Err(e) = &result {
            tracing::warn!(
                endpoint = %self.endpoint,
                client = peer.as_deref().unwrap_or("unknown"),
                reason = e.code(),
                "{e}"
            );
            if let Some(observer) = &self.observer {
                observer.handshake_failed(e);
            }
        }
        result
    }

    async fn accept_inner<IO>(
        &self,
        io: IO,
        peer: Option<String>,
    ) -> Result<ServerAccepted<IO>, HandshakeError>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let fail = |d: Diagnosis, chain| {
            let mut e = HandshakeError::new(
                self.endpoint.clone(),
                peer.clone(),
                Side::Server,
                d,
                self.settings.clone(),
            );
            e.presented_chain = chain;
            e
        };
        let seen = Seen::default();
        let config = self.config(&seen).map_err(|e| {
            fail(
                Diagnosis::Other {
                    detail: e.to_string(),
                },
                vec![],
            )
        })?;
        let (io, head) = Recorded::new(io);
        let accept = TlsAcceptor::from(Arc::new(config)).accept(io);
        let stream = match tokio::time::timeout(self.handshake_timeout, accept).await {
            Err(_) => {
                return Err(fail(
                    Diagnosis::Timeout {
                        seconds: self.handshake_timeout.as_secs(),
                    },
                    vec![],
                ))
            }
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let obs = Observed {
                    side: Side::Server,
                    profile: self.profile,
                    chain: take(&seen),
                    head: head.looks(),
                    cert_requested: self.mandatory.is_some(),
                    cert_sent: false,
                    server_name: String::new(),
                };
                let d = diagnose_io(&e, &obs);
                return Err(fail(d, obs.chain.unwrap_or_default()));
            }
        };
        let conn = stream.get_ref().1;
        let chain = conn
            .peer_certificates()
            .map(|c| c.to_vec())
            .unwrap_or_default();
        let pinned_node = match self.state.read().ok().and_then(|s| s.trust.clone()) {
            Some(ClientTrust::Pinned(pins)) => chain
                .first()
                .and_then(|c| pins.node_for(c))
                .map(str::to_owned),
            _ => None,
        };
        let info = HandshakeInfo::from_server(conn, self.mandatory.is_some(), pinned_node);
        tracing::debug!(endpoint = %self.endpoint, client = peer.as_deref().unwrap_or("unknown"), protocol = %info.protocol, "TLS accepted");
        Ok(ServerAccepted { stream, info })
    }
}

fn new_sessions() -> Arc<dyn StoresServerSessions> {
    ServerSessionMemoryCache::new(1024)
}

fn client_trust(
    trust: Trust,
    mandatory: bool,
    provider: &Arc<CryptoProvider>,
    settings: &Settings,
) -> Result<ClientTrust, ConfigError> {
    match trust {
        Trust::Roots(roots) => {
            let store = Trust::root_store(&roots, &settings.client_root_cas)?;
            let mut builder = WebPkiClientVerifier::builder_with_provider(store, provider.clone());
            if !mandatory {
                builder = builder.allow_unauthenticated();
            }
            let verifier = builder.build().map_err(|e| ConfigError::BadRoot {
                setting: settings.client_root_cas.to_string(),
                detail: e.to_string(),
            })?;
            Ok(ClientTrust::WebPki(verifier))
        }
        Trust::Pinned(pins) => {
            if pins.is_empty() {
                return Err(ConfigError::NoRoots {
                    setting: settings.pinned_certs.to_string(),
                });
            }
            Ok(ClientTrust::Pinned(pins))
        }
    }
}

#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
