//! Plaintext ports that notice TLS, and plaintext clients that notice a TLS server.
//!
//! weft never serves plaintext by default. Where an operator turns TLS off, these helpers keep
//! the most common mistake (one side with TLS, the other without) from turning into a bare
//! "connection reset": both ends say what happened.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sniff::{Looks, Prefixed};
use crate::{Diagnosis, HandshakeError, Settings, Side};

/// What a plaintext weft port writes back to a TLS ClientHello, so the TLS client can show it.
pub const PLAINTEXT_NOTICE: &[u8] = b"weft: this port does not speak TLS\r\n";

/// The first bytes an HTTP/2 (gRPC) client sends.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Accept a plaintext connection, refusing (and explaining) a TLS handshake.
///
/// Waits up to `wait` for the client's first bytes; a client that sends nothing in that time
/// is passed through (some protocols let the server speak first).
pub async fn accept_plaintext<IO>(
    mut io: IO,
    endpoint: &str,
    peer: Option<String>,
    settings: Arc<Settings>,
    wait: Duration,
) -> Result<Prefixed<IO>, HandshakeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 64];
    let n = match tokio::time::timeout(wait, io.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        Ok(Err(_)) | Err(_) => 0,
    };
    buf.truncate(n);
    let looks = Looks::classify(&buf);
    if looks == Looks::TlsHandshake {
        let _ = io.write_all(PLAINTEXT_NOTICE).await;
        let _ = io.shutdown().await;
        let e = HandshakeError::new(
            endpoint,
            peer.clone(),
            Side::Server,
            Diagnosis::TlsToPlaintextPort { looks },
            settings,
        );
        tracing::warn!(
            endpoint,
            client = peer.as_deref().unwrap_or("unknown"),
            reason = e.code(),
            "{e}"
        );
        return Err(e);
    }
    Ok(Prefixed::new(buf, io))
}

/// Open a plaintext (HTTP/2) connection and check that the server does not answer with TLS.
///
/// Sends the HTTP/2 preface and looks at the first answer within `wait`; a TLS answer means
/// the port requires TLS.
pub async fn probe_plaintext(
    address: &str,
    settings: Arc<Settings>,
    wait: Duration,
) -> Result<Looks, HandshakeError> {
    let fail = |d| HandshakeError::new(address, None, Side::Client, d, settings.clone());
    let mut tcp = match tokio::time::timeout(wait, TcpStream::connect(address)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            return Err(fail(Diagnosis::ConnectFailed {
                detail: e.to_string(),
            }))
        }
        Err(_) => {
            return Err(fail(Diagnosis::Timeout {
                seconds: wait.as_secs().max(1),
            }))
        }
    };
    tcp.write_all(H2_PREFACE).await.map_err(|e| {
        fail(Diagnosis::ConnectFailed {
            detail: e.to_string(),
        })
    })?;
    let mut buf = vec![0u8; 64];
    let n = match tokio::time::timeout(wait, tcp.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        Ok(Err(_)) | Err(_) => 0,
    };
    let looks = Looks::classify(&buf[..n]);
    if looks.is_tls() {
        return Err(fail(Diagnosis::PlaintextToTlsPort { looks }));
    }
    Ok(looks)
}
