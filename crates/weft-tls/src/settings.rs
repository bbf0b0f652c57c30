//! The names of the settings a user changes, so every diagnosis can point at the right one.

use std::borrow::Cow;

/// Which configuration keys control each TLS choice, as the user knows them.
///
/// A diagnosis says "set X" with the names held here: a peer's messages name `core.yaml` keys
/// and `CORE_*` variables, an orderer's `orderer.yaml` keys and `ORDERER_*` variables, and
/// `weft doctor tls` its own flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Turns TLS on for the endpoint.
    pub tls_enabled: Cow<'static, str>,
    /// The CA certificates a client trusts for servers.
    pub root_cas: Cow<'static, str>,
    /// The name a client expects in the server's certificate.
    pub server_name: Cow<'static, str>,
    /// The certificate and key a client presents.
    pub client_cert: Cow<'static, str>,
    /// Whether a server requires client certificates.
    pub client_auth_required: Cow<'static, str>,
    /// The CA certificates a server trusts for client certificates.
    pub client_root_cas: Cow<'static, str>,
    /// The certificate and key a server presents.
    pub server_cert: Cow<'static, str>,
    /// Where pinned certificates are configured (replica network).
    pub pinned_certs: Cow<'static, str>,
}

impl Settings {
    /// A Fabric peer (`core.yaml`, `CORE_PEER_TLS_*`).
    pub fn peer() -> Self {
        Settings {
            tls_enabled: "peer.tls.enabled (CORE_PEER_TLS_ENABLED)".into(),
            root_cas: "peer.tls.rootcert.file (CORE_PEER_TLS_ROOTCERT_FILE)".into(),
            server_name: "the host name in the peer address (or the client's server-name override)".into(),
            client_cert: "peer.tls.clientCert.file and peer.tls.clientKey.file (CORE_PEER_TLS_CLIENTCERT_FILE, CORE_PEER_TLS_CLIENTKEY_FILE)".into(),
            client_auth_required: "peer.tls.clientAuthRequired (CORE_PEER_TLS_CLIENTAUTHREQUIRED)".into(),
            client_root_cas: "peer.tls.clientRootCAs.files (CORE_PEER_TLS_CLIENTROOTCAS_FILES) or the TLS CA of the client's organization in the channel config".into(),
            server_cert: "peer.tls.cert.file and peer.tls.key.file (CORE_PEER_TLS_CERT_FILE, CORE_PEER_TLS_KEY_FILE)".into(),
            pinned_certs: "the pinned certificate list".into(),
        }
    }

    /// A Fabric orderer (`orderer.yaml`, `ORDERER_GENERAL_TLS_*`).
    pub fn orderer() -> Self {
        Settings {
            tls_enabled: "General.TLS.Enabled (ORDERER_GENERAL_TLS_ENABLED)".into(),
            root_cas: "General.TLS.RootCAs (ORDERER_GENERAL_TLS_ROOTCAS)".into(),
            server_name: "the host name in the orderer address (or the client's server-name override)".into(),
            client_cert: "General.TLS.Certificate and General.TLS.PrivateKey (ORDERER_GENERAL_TLS_CERTIFICATE, ORDERER_GENERAL_TLS_PRIVATEKEY)".into(),
            client_auth_required: "General.TLS.ClientAuthRequired (ORDERER_GENERAL_TLS_CLIENTAUTHREQUIRED)".into(),
            client_root_cas: "General.TLS.ClientRootCAs (ORDERER_GENERAL_TLS_CLIENTROOTCAS) or the TLS CA of the client's organization in the channel config".into(),
            server_cert: "General.TLS.Certificate and General.TLS.PrivateKey (ORDERER_GENERAL_TLS_CERTIFICATE, ORDERER_GENERAL_TLS_PRIVATEKEY)".into(),
            pinned_certs: "the pinned certificate list".into(),
        }
    }

    /// `weft doctor tls` and its flags.
    pub fn doctor() -> Self {
        Settings {
            tls_enabled: "TLS on the server".into(),
            root_cas: "--cafile".into(),
            server_name: "--servername".into(),
            client_cert: "--certfile and --keyfile".into(),
            client_auth_required: "the server's client-auth setting".into(),
            client_root_cas: "the server's trusted client CAs".into(),
            server_cert: "the server's TLS certificate".into(),
            pinned_certs: "the pinned certificate list".into(),
        }
    }

    /// Neutral wording for embedders and tests.
    pub fn generic() -> Self {
        Settings {
            tls_enabled: "the TLS setting".into(),
            root_cas: "the trusted root CAs".into(),
            server_name: "the server name".into(),
            client_cert: "the client certificate and key".into(),
            client_auth_required: "the client-auth setting".into(),
            client_root_cas: "the trusted client CAs".into(),
            server_cert: "the server certificate and key".into(),
            pinned_certs: "the pinned certificate list".into(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::generic()
    }
}
