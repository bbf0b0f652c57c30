//! A client of the channel participation API (what `weft osnadmin` and the tests use): one
//! HTTPS request per call over weft-tls (HTTP/2, negotiated by ALPN), with the
//! administrator's TLS client certificate.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request};
use hyper_util::rt::{TokioExecutor, TokioIo};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, Settings, TlsClient, Trust};

use crate::admin::CHANNELS;
use crate::multipart;

/// An answer: HTTP status and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminResponse {
    pub status: u16,
    pub body: String,
}

/// A channel participation client for one orderer admin endpoint.
#[derive(Debug, Clone)]
pub struct AdminClient {
    endpoint: Endpoint,
    tls: TlsClient,
}

impl AdminClient {
    /// `address` is `host:port`; `ca_pem` the orderer's TLS CA; `cert_pem`/`key_pem` the
    /// administrator's TLS client certificate and key.
    pub fn new(
        address: &str,
        ca_pem: &[u8],
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<AdminClient, String> {
        let endpoint = Endpoint::parse(address).map_err(|e| e.to_string())?;
        let roots =
            weft_crypto::pem::certificates(ca_pem, "--ca-file").map_err(|e| e.to_string())?;
        let identity = Identity::from_pem(cert_pem, key_pem, "--client-cert / --client-key")
            .map_err(|e| e.to_string())?;
        let tls = TlsClient::new(
            Trust::Roots(roots),
            ClientIdentity::Certificate(identity),
            Profile::Fabric,
        )
        .map_err(|e| e.to_string())?
        .with_settings(Settings::doctor());
        Ok(AdminClient { endpoint, tls })
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<AdminResponse, String> {
        let conn = self
            .tls
            .connect_tcp(&self.endpoint)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(conn.stream))
                .await
                .map_err(|e| format!("{}: HTTP/2 setup failed: {e}", self.endpoint.address()))?;
        let driver = tokio::spawn(connection);
        let uri = format!("https://{}{path}", self.endpoint.address());
        let mut req = Request::builder().method(method).uri(uri);
        let body = match body {
            Some((ct, b)) => {
                req = req.header(CONTENT_TYPE, ct);
                Full::new(Bytes::from(b))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body).map_err(|e| e.to_string())?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("{}: request failed: {e}", self.endpoint.address()))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| {
                format!(
                    "{}: reading the answer failed: {e}",
                    self.endpoint.address()
                )
            })?
            .to_bytes();
        driver.abort();
        Ok(AdminResponse {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// `POST /participation/v1/channels` with `block` (a marshalled genesis block).
    pub async fn join(&self, block: &[u8]) -> Result<AdminResponse, String> {
        let (ct, body) = multipart::single_file("config-block", "config.block", block);
        self.request(Method::POST, CHANNELS, Some((ct, body))).await
    }

    /// `GET /participation/v1/channels`.
    pub async fn list(&self) -> Result<AdminResponse, String> {
        self.request(Method::GET, CHANNELS, None).await
    }

    /// `GET /participation/v1/channels/{id}`.
    pub async fn info(&self, channel: &str) -> Result<AdminResponse, String> {
        self.request(Method::GET, &format!("{CHANNELS}/{channel}"), None)
            .await
    }

    /// `DELETE /participation/v1/channels/{id}`.
    pub async fn remove(&self, channel: &str) -> Result<AdminResponse, String> {
        self.request(Method::DELETE, &format!("{CHANNELS}/{channel}"), None)
            .await
    }
}
