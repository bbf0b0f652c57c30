//! What a successful handshake negotiated.

use rustls::{ClientConnection, ServerConnection};
use rustls_pki_types::CertificateDer;

/// The outcome of a successful handshake, for logs, `weft doctor` and link tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub protocol: String,
    pub cipher_suite: String,
    pub key_exchange: Option<String>,
    pub alpn: Option<String>,
    /// The other side's certificate chain (empty if it presented none).
    pub peer_chain: Vec<CertificateDer<'static>>,
    /// The server asked for a client certificate.
    pub client_cert_requested: bool,
    /// The client presented a certificate (and it was accepted).
    pub client_cert_presented: bool,
    /// With pinned trust: the node whose pinned certificate the other side presented.
    pub pinned_node: Option<String>,
}

fn version(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_owned(),
    }
}

impl HandshakeInfo {
    /// What both kinds of connection share (both deref to rustls' `CommonState`).
    fn common(
        conn: &rustls::CommonState,
        requested: bool,
        presented: bool,
        pinned_node: Option<String>,
    ) -> Self {
        HandshakeInfo {
            protocol: version(conn.protocol_version()),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            key_exchange: conn
                .negotiated_key_exchange_group()
                .map(|g| format!("{:?}", g.name())),
            alpn: conn
                .alpn_protocol()
                .map(|a| String::from_utf8_lossy(a).into_owned()),
            peer_chain: conn
                .peer_certificates()
                .map(|c| c.to_vec())
                .unwrap_or_default(),
            client_cert_requested: requested,
            client_cert_presented: presented,
            pinned_node,
        }
    }

    pub(crate) fn from_client(
        conn: &ClientConnection,
        requested: bool,
        presented: bool,
        pinned_node: Option<String>,
    ) -> Self {
        Self::common(conn, requested, presented, pinned_node)
    }

    pub(crate) fn from_server(
        conn: &ServerConnection,
        requested: bool,
        pinned_node: Option<String>,
    ) -> Self {
        let presented = conn.peer_certificates().is_some_and(|c| !c.is_empty());
        Self::common(conn, requested, presented, pinned_node)
    }

    /// "mutual TLS" / "server-authenticated TLS", for link tables.
    pub fn mode(&self) -> &'static str {
        if self.client_cert_presented {
            "mutual TLS"
        } else {
            "server-authenticated TLS"
        }
    }
}
