//! gRPC (tonic) over weft-tls: a server's incoming connections, a client's channels.
//!
//! Both go through [`TlsServer::accept`] and [`TlsClient::connect_tcp`], so gRPC links get the
//! same explicit trust and the same diagnosed failures as everything else. Services read who
//! connected from the request extensions: `request.extensions().get::<ConnInfo>()`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::coalesce::Coalesce;
use crate::sniff::{Prefixed, Recorded};
use crate::{Endpoint, HandshakeError, HandshakeInfo, Settings, TlsClient, TlsServer};

/// Who is on the other end of a served connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    /// `None` on a plaintext connection.
    pub tls: Option<Arc<HandshakeInfo>>,
}

impl ConnInfo {
    /// The client's certificate, when it presented one.
    pub fn client_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.tls.as_ref().and_then(|t| t.peer_chain.first())
    }
}

/// The transport under a served connection.
#[derive(Debug)]
pub enum Transport {
    Tls(Box<tokio_rustls::server::TlsStream<Recorded<TcpStream>>>),
    Plain(Prefixed<TcpStream>),
}

/// A served connection: the transport (writes coalesced, see [`crate::coalesce`]) plus
/// [`ConnInfo`] for request extensions.
#[derive(Debug)]
pub struct Conn {
    io: Coalesce<Transport>,
    info: ConnInfo,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;
    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut *self {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut *self {
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// How a listener secures its connections. Plaintext must be chosen by name.
#[derive(Debug, Clone)]
pub enum Security {
    Tls(Arc<TlsServer>),
    /// No TLS. TLS clients are told so (see [`crate::plaintext`]).
    Plaintext {
        endpoint: String,
        settings: Arc<Settings>,
    },
}

/// HTTP/2 flow-control windows for weft's gRPC servers and clients: 1 MiB per stream, 8 MiB
/// per connection (HTTP/2's default is 64 KiB for both). One connection carries hundreds of
/// concurrent calls (a Gateway client's, a peer's to the orderer); with 64 KiB for the whole
/// connection a sender stalls until the receiver has read and released the window, and every
/// few requests costs a WINDOW_UPDATE frame.
pub const STREAM_WINDOW: u32 = 1 << 20;
/// See [`STREAM_WINDOW`].
pub const CONNECTION_WINDOW: u32 = 8 << 20;

/// A tonic server builder with weft's HTTP/2 settings ([`STREAM_WINDOW`]).
pub fn server_builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
}

/// Accept connections on `listener` and hand tonic the ones whose handshake succeeded.
/// Handshakes run concurrently (a slow client does not hold up others); failures are logged
/// by [`TlsServer::accept`]. The accept loop stops when the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    security: Security,
) -> ReceiverStream<Result<Conn, io::Error>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                a = listener.accept() => a,
            };
            let (tcp, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let tx = tx.clone();
            let security = security.clone();
            tokio::spawn(async move {
                let conn = match security {
                    Security::Tls(server) => {
                        match server.accept(tcp, Some(remote.to_string())).await {
                            Ok(a) => Conn {
                                info: ConnInfo {
                                    remote: Some(remote),
                                    tls: Some(Arc::new(a.info)),
                                },
                                io: Coalesce::new(Transport::Tls(Box::new(a.stream))),
                            },
                            Err(_) => return, // logged by accept
                        }
                    }
                    Security::Plaintext { endpoint, settings } => {
                        match crate::plaintext::accept_plaintext(
                            tcp,
                            &endpoint,
                            Some(remote.to_string()),
                            settings,
                            Duration::from_secs(10),
                        )
                        .await
                        {
                            Ok(io) => Conn {
                                info: ConnInfo {
                                    remote: Some(remote),
                                    tls: None,
                                },
                                io: Coalesce::new(Transport::Plain(io)),
                            },
                            Err(_) => return,
                        }
                    }
                };
                let _ = tx.send(Ok(conn)).await;
            });
        }
    });
    ReceiverStream::new(rx)
}

/// Why a channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The TLS handshake (or TCP connect) failed; the diagnosis says why.
    #[error("{0}")]
    Handshake(#[from] HandshakeError),
    /// HTTP/2 could not be set up over the connection.
    #[error("gRPC connection to {endpoint} failed: {detail}")]
    Transport { endpoint: String, detail: String },
}

/// Open a gRPC channel to `endpoint`, through `client` (TLS) or plaintext when `None`.
///
/// Connects eagerly so a bad address or a refused handshake is reported here, with its
/// diagnosis; later reconnects go through the same path. HTTP/2 keepalive pings are sent every
/// 2 minutes: Fabric servers refuse pings more often than once a minute.
pub async fn channel(
    client: Option<TlsClient>,
    endpoint: Endpoint,
) -> Result<tonic::transport::Channel, ChannelError> {
    let uri = format!("http://{}", endpoint.address());
    let builder = tonic::transport::Endpoint::from_shared(uri.clone())
        .map_err(|e| ChannelError::Transport {
            endpoint: endpoint.address().to_owned(),
            detail: e.to_string(),
        })?
        .http2_keep_alive_interval(Duration::from_secs(120))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW);
    let address = endpoint.address().to_owned();
    let connector = tower::service_fn(move |_uri: tonic::transport::Uri| {
        let client = client.clone();
        let endpoint = endpoint.clone();
        async move {
            match client {
                Some(client) => {
                    let c = client.connect_tcp(&endpoint).await?;
                    Ok::<_, ChannelError>(TokioIo::new(
                        Box::new(Coalesce::new(c.stream)) as Box<dyn Io>
                    ))
                }
                None => {
                    let tcp = TcpStream::connect(endpoint.address()).await.map_err(|e| {
                        ChannelError::Transport {
                            endpoint: endpoint.address().to_owned(),
                            detail: e.to_string(),
                        }
                    })?;
                    let _ = tcp.set_nodelay(true);
                    Ok(TokioIo::new(Box::new(Coalesce::new(tcp)) as Box<dyn Io>))
                }
            }
        }
    });
    builder
        .connect_with_connector(connector)
        .await
        .map_err(|e| {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(err) = source {
                if let Some(ChannelError::Handshake(h)) = err.downcast_ref::<ChannelError>() {
                    return ChannelError::Handshake(h.clone());
                }
                if let Some(h) = err.downcast_ref::<HandshakeError>() {
                    return ChannelError::Handshake(h.clone());
                }
                source = err.source();
            }
            ChannelError::Transport {
                endpoint: address.clone(),
                detail: e.to_string(),
            }
        })
}

/// An owned byte stream (TLS or TCP) for the client connector.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}
