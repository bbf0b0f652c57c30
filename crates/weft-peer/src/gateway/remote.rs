//! Connections from the gateway to other peers (Endorser) and to orderers (AtomicBroadcast).
//!
//! One cached gRPC connection (HTTP/2, many concurrent streams) per address, opened on first
//! use through weft-tls with mutual TLS: the peer presents its TLS client certificate and
//! trusts the TLS roots of the target's organization from the channel configuration (plus
//! any configured extra roots). A connection that fails is dropped from the cache so the next
//! call dials again. Concurrent first uses of one address share one dial.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use tokio::sync::OnceCell;
use tonic::transport::Channel as GrpcChannel;
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, Settings, TlsClient, Trust};

use crate::sync::lock;

/// How the gateway dials other nodes.
#[derive(Debug, Clone)]
pub enum Dialing {
    /// TLS (the peer has `peer.tls.enabled`).
    Tls {
        /// The peer's TLS client certificate and key (PEM): presented to every node dialed.
        /// `None` dials without a client certificate (nodes that require one will refuse).
        client_cert: Option<(Vec<u8>, Vec<u8>)>,
        /// Roots trusted for every node besides the org roots from the channel config
        /// (e.g. `peer.tls.rootcert.file`), DER.
        extra_roots: Vec<Vec<u8>>,
    },
    /// Plaintext, for peers whose own TLS is off (logged loudly at start by the peer).
    Plaintext,
}

/// A node to dial: address, the name its certificate must carry, the roots to trust.
#[derive(Debug, Clone)]
pub struct Target {
    pub address: String,
    pub msp_id: String,
    /// Overrides the host of `address` as the expected certificate name.
    pub server_name: Option<String>,
    /// TLS roots (DER) of the node's organization.
    pub roots: Vec<Vec<u8>>,
}

type Slot = Arc<OnceCell<GrpcChannel>>;

/// Cached connections by address.
#[derive(Debug)]
pub struct Connections {
    dialing: Dialing,
    dial_timeout: Duration,
    cache: Mutex<HashMap<String, Slot>>,
}

impl Connections {
    pub fn new(dialing: Dialing, dial_timeout: Duration) -> Self {
        Connections {
            dialing,
            dial_timeout,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to `target`, dialing it if needed (within the dial timeout).
    pub async fn get(&self, target: &Target) -> Result<GrpcChannel, String> {
        let slot = {
            let mut cache = lock(&self.cache);
            cache.entry(target.address.clone()).or_default().clone()
        };
        slot.get_or_try_init(|| self.dial(target)).await.cloned()
    }

    /// Drop the cached connection to `address` (after a transport failure).
    pub fn forget(&self, address: &str) {
        lock(&self.cache).remove(address);
    }

    async fn dial(&self, target: &Target) -> Result<GrpcChannel, String> {
        let mut endpoint = Endpoint::parse(&target.address)
            .map_err(|e| format!("cannot dial {} ({}): {e}", target.address, target.msp_id))?;
        if let Some(name) = &target.server_name {
            endpoint = endpoint
                .with_server_name(name)
                .map_err(|e| format!("cannot dial {}: server name {name}: {e}", target.address))?;
        }
        let client = match &self.dialing {
            Dialing::Plaintext => None,
            Dialing::Tls {
                client_cert,
                extra_roots,
            } => Some(self.tls_client(target, client_cert.as_ref(), extra_roots)?),
        };
        tracing::debug!(address = %target.address, msp_id = %target.msp_id, "gateway dialing");
        match tokio::time::timeout(self.dial_timeout, weft_tls::grpc::channel(client, endpoint))
            .await
        {
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(e)) => Err(format!(
                "failed to connect to {} ({}): {e}",
                target.address, target.msp_id
            )),
            Err(_) => Err(format!(
                "failed to connect to {} ({}): no connection within {:?} (peer.gateway.dialTimeout)",
                target.address, target.msp_id, self.dial_timeout
            )),
        }
    }

    fn tls_client(
        &self,
        target: &Target,
        client_cert: Option<&(Vec<u8>, Vec<u8>)>,
        extra_roots: &[Vec<u8>],
    ) -> Result<TlsClient, String> {
        let roots: Vec<CertificateDer<'static>> = target
            .roots
            .iter()
            .chain(extra_roots)
            .map(|d| CertificateDer::from(d.clone()))
            .collect();
        if roots.is_empty() {
            return Err(format!(
                "cannot dial {} ({}): no TLS root certificates are known for {}; add its org's TLS CA to the channel config",
                target.address, target.msp_id, target.msp_id
            ));
        }
        let identity = match client_cert {
            Some((cert, key)) => ClientIdentity::Certificate(
                Identity::from_pem(cert, key, "the peer's TLS client certificate")
                    .map_err(|e| format!("cannot dial {}: {e}", target.address))?,
            ),
            None => ClientIdentity::Anonymous,
        };
        Ok(
            TlsClient::new(Trust::Roots(roots), identity, Profile::Fabric)
                .map_err(|e| format!("cannot dial {}: {e}", target.address))?
                .with_settings(Settings::peer())
                .with_handshake_timeout(self.dial_timeout),
        )
    }
}
