//! Launched mode: the peer started this process; dial it with what it gave us.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Status, Streaming};
use weft_proto::protos::chaincode_support_client::ChaincodeSupportClient;
use weft_proto::protos::ChaincodeMessage;
use weft_tls::grpc::{channel, ChannelError};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, Settings, TlsClient, Trust};

use crate::{handler, Chaincode, ShimError};

/// TLS material a peer hands a launched chaincode.
#[derive(Debug, Clone)]
pub struct LaunchTls {
    /// The peer's (ephemeral) CA: `CORE_PEER_TLS_ROOTCERT_FILE`.
    pub root_pem: Vec<u8>,
    /// The per-launch client certificate and key (PEM).
    pub client_cert_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
    /// `CORE_PEER_TLS_SERVERHOSTOVERRIDE`: the name expected in the peer's certificate.
    pub server_name_override: Option<String>,
}

/// Everything a launched chaincode needs, as Fabric's peer provides it.
#[derive(Debug, Clone)]
pub struct LaunchConfig {
    /// `CORE_CHAINCODE_ID_NAME`: the package id the peer launched.
    pub chaincode_id: String,
    /// `host:port` of the peer's chaincode service.
    pub peer_address: String,
    /// `None` when `CORE_PEER_TLS_ENABLED=false`.
    pub tls: Option<LaunchTls>,
    /// `CORE_PEER_LOCALMSPID`.
    pub mspid: Option<String>,
}

/// Go's strconv.ParseBool, which Fabric uses for these variables.
pub(crate) fn parse_bool(name: &'static str, value: &str) -> Result<bool, ShimError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(ShimError::Invalid {
            name,
            value: value.to_owned(),
            detail: "expected true or false".into(),
        }),
    }
}

pub(crate) fn read_file(name: &'static str, path: &str) -> Result<Vec<u8>, ShimError> {
    std::fs::read(path).map_err(|e| ShimError::File {
        name,
        path: PathBuf::from(path),
        detail: e.to_string(),
    })
}

/// The peer address from `-peer.address=X`, `--peer.address=X`, `-peer.address X`,
/// `--peer.address X`.
fn peer_address_arg(args: &[String]) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let flag = a.trim_start_matches('-');
        if a.starts_with('-') {
            if let Some(v) = flag.strip_prefix("peer.address=") {
                return Some(v.to_owned());
            }
            if flag == "peer.address" {
                return it.next().cloned();
            }
        }
    }
    None
}

impl LaunchConfig {
    /// From this process's arguments and environment.
    pub fn from_env() -> Result<Self, ShimError> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Self::from_parts(&args, |k| std::env::var(k).ok())
    }

    /// From explicit arguments and a variable lookup (for tests and embedders).
    pub fn from_parts(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ShimError> {
        let chaincode_id = env("CORE_CHAINCODE_ID_NAME")
            .filter(|v| !v.is_empty())
            .ok_or(ShimError::Missing {
            name: "CORE_CHAINCODE_ID_NAME",
            hint:
                "the peer sets it to the package id when it launches a chaincode; for a chaincode \
                   the peer dials instead, use server mode (CHAINCODE_SERVER_ADDRESS)",
        })?;
        let peer_address = peer_address_arg(args)
            .or_else(|| env("CORE_PEER_ADDRESS"))
            .filter(|v| !v.is_empty())
            .ok_or(ShimError::Missing {
                name: "CORE_PEER_ADDRESS",
                hint: "pass the peer's chaincode address as -peer.address=host:port or set CORE_PEER_ADDRESS",
            })?;
        let tls_enabled = env("CORE_PEER_TLS_ENABLED").ok_or(ShimError::Missing {
            name: "CORE_PEER_TLS_ENABLED",
            hint: "the peer always sets it; set it to true (or false for a plaintext development peer)",
        })?;
        let tls = if parse_bool("CORE_PEER_TLS_ENABLED", &tls_enabled)? {
            let root_path = env("CORE_PEER_TLS_ROOTCERT_FILE").filter(|v| !v.is_empty()).ok_or(ShimError::Missing {
                name: "CORE_PEER_TLS_ROOTCERT_FILE",
                hint: "TLS is enabled, so the chaincode needs the peer's CA certificate to verify the peer",
            })?;
            let root_pem = read_file("CORE_PEER_TLS_ROOTCERT_FILE", &root_path)?;
            let client_key_pem =
                pem_or_base64(&env, "CORE_TLS_CLIENT_KEY_FILE", "CORE_TLS_CLIENT_KEY_PATH")?;
            let client_cert_pem = pem_or_base64(
                &env,
                "CORE_TLS_CLIENT_CERT_FILE",
                "CORE_TLS_CLIENT_CERT_PATH",
            )?;
            Some(LaunchTls {
                root_pem,
                client_cert_pem,
                client_key_pem,
                server_name_override: env("CORE_PEER_TLS_SERVERHOSTOVERRIDE")
                    .filter(|v| !v.is_empty()),
            })
        } else {
            None
        };
        Ok(LaunchConfig {
            chaincode_id,
            peer_address,
            tls,
            mspid: env("CORE_PEER_LOCALMSPID").filter(|v| !v.is_empty()),
        })
    }
}

/// A PEM from `pem_var` (a file of PEM) or else `b64_var` (a file of base64 of the PEM).
fn pem_or_base64(
    env: &impl Fn(&str) -> Option<String>,
    pem_var: &'static str,
    b64_var: &'static str,
) -> Result<Vec<u8>, ShimError> {
    if let Some(path) = env(pem_var).filter(|v| !v.is_empty()) {
        return read_file(pem_var, &path);
    }
    let Some(path) = env(b64_var).filter(|v| !v.is_empty()) else {
        return Err(ShimError::Missing {
            name: if pem_var.contains("KEY") { "CORE_TLS_CLIENT_KEY_FILE" } else { "CORE_TLS_CLIENT_CERT_FILE" },
            hint: "TLS is enabled, so the chaincode needs its client key and certificate: set the _FILE \
                   variable (PEM) or the _PATH variable (base64 of the PEM), as the peer does",
        });
    };
    let raw = read_file(b64_var, &path)?;
    let text: String = String::from_utf8_lossy(&raw).split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| ShimError::File {
            name: b64_var,
            path: PathBuf::from(&path),
            detail: format!("not base64 of a PEM file ({e}); the _FILE variables take plain PEM"),
        })
}

fn launch_settings() -> Settings {
    Settings {
        tls_enabled: "CORE_PEER_TLS_ENABLED".into(),
        root_cas: "CORE_PEER_TLS_ROOTCERT_FILE".into(),
        server_name: "CORE_PEER_TLS_SERVERHOSTOVERRIDE (or the host in the peer address)".into(),
        client_cert: "CORE_TLS_CLIENT_CERT_FILE/CORE_TLS_CLIENT_KEY_FILE (or their _PATH forms)"
            .into(),
        client_auth_required: "the peer's chaincode service (always mutual TLS)".into(),
        client_root_cas: "the peer's per-launch CA".into(),
        server_cert: "the peer's chaincode service certificate".into(),
        pinned_certs: "pinned certificates".into(),
    }
}

/// Start in launched mode, configured from the environment and arguments the peer gave.
pub async fn start<C: Chaincode>(chaincode: C) -> Result<(), ShimError> {
    start_with(chaincode, LaunchConfig::from_env()?).await
}

/// Start in launched mode with an explicit configuration.
pub async fn start_with<C: Chaincode>(chaincode: C, config: LaunchConfig) -> Result<(), ShimError> {
    let mut endpoint = Endpoint::parse(&config.peer_address).map_err(|e| ShimError::Invalid {
        name: "CORE_PEER_ADDRESS",
        value: config.peer_address.clone(),
        detail: e.to_string(),
    })?;
    let client = match &config.tls {
        None => {
            tracing::warn!(peer = %config.peer_address, "CORE_PEER_TLS_ENABLED=false: talking to the peer in plaintext");
            None
        }
        Some(tls) => {
            if let Some(name) = &tls.server_name_override {
                endpoint = endpoint
                    .with_server_name(name)
                    .map_err(|e| ShimError::Invalid {
                        name: "CORE_PEER_TLS_SERVERHOSTOVERRIDE",
                        value: name.clone(),
                        detail: e.to_string(),
                    })?;
            }
            let roots =
                weft_crypto::pem::certificates(&tls.root_pem, "CORE_PEER_TLS_ROOTCERT_FILE")
                    .map_err(|e| ShimError::Tls(e.to_string()))?;
            let identity = Identity::from_pem(
                &tls.client_cert_pem,
                &tls.client_key_pem,
                "CORE_TLS_CLIENT_CERT/KEY",
            )
            .map_err(|e| ShimError::Tls(e.to_string()))?;
            let client = TlsClient::new(
                Trust::Roots(roots),
                ClientIdentity::Certificate(identity),
                Profile::Fabric,
            )
            .map_err(|e| ShimError::Tls(e.to_string()))?
            .with_settings(launch_settings());
            Some(client)
        }
    };
    let ch = channel(client, endpoint).await.map_err(|e| match e {
        ChannelError::Handshake(h) => ShimError::Tls(h.to_string()),
        ChannelError::Transport { endpoint, detail } => ShimError::Connect {
            address: endpoint,
            detail,
        },
    })?;
    let (out_tx, out_rx) = mpsc::channel(256);
    let mut support = ChaincodeSupportClient::new(ch);
    // Open the stream lazily, from inside the handler: Fabric's peer (grpc-go) sends no response
    // headers until it has read REGISTER, so waiting for them before REGISTER is queued would
    // wait forever.
    let address = config.peer_address.clone();
    let inbound = Registering::Opening(Box::pin(async move {
        support
            .register(ReceiverStream::new(out_rx))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| {
                Status::new(
                    s.code(),
                    format!(
                        "ChaincodeSupport.Register at {address} failed ({:?}): {}",
                        s.code(),
                        s.message()
                    ),
                )
            })
    }));
    handler::run(
        Arc::new(chaincode),
        config.chaincode_id,
        config.mspid,
        Box::pin(inbound),
        out_tx,
    )
    .await
}

type OpenStream = Pin<Box<dyn Future<Output = Result<Streaming<ChaincodeMessage>, Status>> + Send>>;

/// The peer's side of `ChaincodeSupport.Register`, opened on first poll.
enum Registering {
    Opening(OpenStream),
    Open(Box<Streaming<ChaincodeMessage>>),
    Done,
}

impl Stream for Registering {
    type Item = Result<ChaincodeMessage, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut *self {
                Registering::Opening(open) => match open.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(stream)) => *self = Registering::Open(Box::new(stream)),
                    Poll::Ready(Err(status)) => {
                        *self = Registering::Done;
                        return Poll::Ready(Some(Err(status)));
                    }
                },
                Registering::Open(stream) => return Pin::new(stream.as_mut()).poll_next(cx),
                Registering::Done => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_address_flag_forms_of_go_and_node_shims() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            peer_address_arg(&s(&["-peer.address=p:7052"])).as_deref(),
            Some("p:7052")
        );
        assert_eq!(
            peer_address_arg(&s(&["--peer.address", "p:7052"])).as_deref(),
            Some("p:7052")
        );
        assert_eq!(
            peer_address_arg(&s(&["--peer.address=p:7052"])).as_deref(),
            Some("p:7052")
        );
        assert_eq!(peer_address_arg(&s(&["other", "x"])), None);
    }

    #[test]
    fn go_parse_bool_values() {
        assert!(parse_bool("X", "true").unwrap());
        assert!(!parse_bool("X", "F").unwrap());
        let e = parse_bool("CORE_PEER_TLS_ENABLED", "yes").unwrap_err();
        assert_eq!(
            e.to_string(),
            "CORE_PEER_TLS_ENABLED=\"yes\" is invalid: expected true or false"
        );
    }
}
