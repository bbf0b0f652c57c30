//! Server mode (chaincode as a service): listen; the peer dials in as `connection.json` says.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Status, Streaming};
use weft_proto::protos::chaincode_server::{
    Chaincode as ConnectApi, ChaincodeServer as ConnectServer,
};
use weft_proto::protos::ChaincodeMessage;
use weft_tls::grpc::{incoming, ConnInfo, Security};
use weft_tls::{ClientAuth, Identity, Profile, Settings, TlsServer, Trust};

use crate::launch::{parse_bool, read_file};
use crate::{handler, Chaincode, ShimError};

/// TLS of a chaincode server.
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// `CHAINCODE_TLS_CERT` / `--chaincode-tls-cert-file` (PEM, chain allowed).
    pub cert_pem: Vec<u8>,
    /// `CHAINCODE_TLS_KEY` / `--chaincode-tls-key-file` (PEM).
    pub key_pem: Vec<u8>,
    /// `CHAINCODE_CLIENT_CA_CERT` / `--chaincode-tls-client-cacert-file`: when set, the peer
    /// must present a client certificate issued by this CA (mutual TLS).
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Configuration of a chaincode server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `CHAINCODE_SERVER_ADDRESS` / `--chaincode-address`: where to listen (`host:port`).
    pub address: String,
    /// `CHAINCODE_ID` / `--chaincode-id`: the package id the peer knows this chaincode by.
    pub chaincode_id: String,
    /// `None` only with `CHAINCODE_TLS_DISABLED=true` / `--chaincode-tls-disabled`.
    pub tls: Option<ServerTls>,
}

fn flag(args: &[String], name: &str) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(v) = a.strip_prefix(&format!("--{name}=")) {
            return Some(v.to_owned());
        }
        if a == &format!("--{name}") {
            return it.next().cloned();
        }
    }
    None
}

impl ServerConfig {
    /// From this process's arguments and environment.
    pub fn from_env() -> Result<Self, ShimError> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Self::from_parts(&args, |k| std::env::var(k).ok())
    }

    /// From flags (fabric-chaincode-node's names) or else environment variables (the
    /// fabric-samples external chaincode's names).
    pub fn from_parts(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ShimError> {
        let get = |flag_name: &str, var: &str| {
            flag(args, flag_name)
                .or_else(|| env(var))
                .filter(|v| !v.is_empty())
        };
        let address = get("chaincode-address", "CHAINCODE_SERVER_ADDRESS").ok_or(ShimError::Missing {
            name: "CHAINCODE_SERVER_ADDRESS",
            hint: "set the address to listen on (host:port, e.g. 0.0.0.0:9999) or pass --chaincode-address",
        })?;
        let chaincode_id = get("chaincode-id", "CHAINCODE_ID").ok_or(ShimError::Missing {
            name: "CHAINCODE_ID",
            hint: "set the package id printed by `peer lifecycle chaincode install` (label:hash) or pass --chaincode-id",
        })?;
        let disabled = args.iter().any(|a| a == "--chaincode-tls-disabled")
            || match env("CHAINCODE_TLS_DISABLED") {
                Some(v) if !v.is_empty() => parse_bool("CHAINCODE_TLS_DISABLED", &v)?,
                _ => false,
            };
        let tls = if disabled {
            None
        } else {
            let cert =
                get("chaincode-tls-cert-file", "CHAINCODE_TLS_CERT").ok_or(ShimError::Missing {
                    name: "CHAINCODE_TLS_CERT",
                    hint: "TLS is on by default: give the server certificate (PEM file), or set \
                       CHAINCODE_TLS_DISABLED=true to serve plaintext deliberately",
                })?;
            let key =
                get("chaincode-tls-key-file", "CHAINCODE_TLS_KEY").ok_or(ShimError::Missing {
                    name: "CHAINCODE_TLS_KEY",
                    hint: "TLS is on by default: give the server's private key (PEM file)",
                })?;
            let client_ca = get(
                "chaincode-tls-client-cacert-file",
                "CHAINCODE_CLIENT_CA_CERT",
            );
            Some(ServerTls {
                cert_pem: read_file("CHAINCODE_TLS_CERT", &cert)?,
                key_pem: read_file("CHAINCODE_TLS_KEY", &key)?,
                client_ca_pem: client_ca
                    .map(|p| read_file("CHAINCODE_CLIENT_CA_CERT", &p))
                    .transpose()?,
            })
        };
        Ok(ServerConfig {
            address,
            chaincode_id,
            tls,
        })
    }
}

fn server_settings() -> Settings {
    Settings {
        tls_enabled: "CHAINCODE_TLS_DISABLED (and tls_required in the peer's connection.json)"
            .into(),
        root_cas: "root_cert in the peer's connection.json".into(),
        server_name: "the host in connection.json's address".into(),
        client_cert: "client_cert/client_key in the peer's connection.json".into(),
        client_auth_required:
            "CHAINCODE_CLIENT_CA_CERT (and client_auth_required in connection.json)".into(),
        client_root_cas: "CHAINCODE_CLIENT_CA_CERT".into(),
        server_cert: "CHAINCODE_TLS_CERT/CHAINCODE_TLS_KEY".into(),
        pinned_certs: "pinned certificates".into(),
    }
}

/// A bound chaincode server, ready to [`run`](ChaincodeServer::run).
#[derive(Debug)]
pub struct ChaincodeServer {
    listener: TcpListener,
    local: SocketAddr,
    config: ServerConfig,
    security: Security,
}

impl ChaincodeServer {
    /// Bind the listening socket and prepare TLS. Fails on unusable TLS material.
    pub async fn bind(config: ServerConfig) -> Result<Self, ShimError> {
        let listener = TcpListener::bind(&config.address)
            .await
            .map_err(|e| ShimError::Serve {
                address: config.address.clone(),
                detail: e.to_string(),
            })?;
        let local = listener.local_addr().map_err(|e| ShimError::Serve {
            address: config.address.clone(),
            detail: e.to_string(),
        })?;
        let security = match &config.tls {
            None => {
                tracing::warn!(address = %local, "CHAINCODE_TLS_DISABLED: serving the peer in PLAINTEXT");
                Security::Plaintext {
                    endpoint: local.to_string(),
                    settings: Arc::new(server_settings()),
                }
            }
            Some(tls) => {
                let identity = Identity::from_pem(
                    &tls.cert_pem,
                    &tls.key_pem,
                    "CHAINCODE_TLS_CERT/CHAINCODE_TLS_KEY",
                )
                .map_err(|e| ShimError::Tls(e.to_string()))?;
                let auth = match &tls.client_ca_pem {
                    Some(ca) => {
                        let roots = weft_crypto::pem::certificates(ca, "CHAINCODE_CLIENT_CA_CERT")
                            .map_err(|e| ShimError::Tls(e.to_string()))?;
                        ClientAuth::Require(Trust::Roots(roots))
                    }
                    None => ClientAuth::None,
                };
                let server = TlsServer::new(&identity, auth, Profile::Fabric)
                    .map_err(|e| ShimError::Tls(e.to_string()))?
                    .with_settings(server_settings())
                    .with_endpoint(local.to_string());
                Security::Tls(Arc::new(server))
            }
        };
        Ok(ChaincodeServer {
            listener,
            local,
            config,
            security,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serve the peer until the process ends.
    pub async fn run<C: Chaincode>(self, chaincode: C) -> Result<(), ShimError> {
        self.run_until(chaincode, std::future::pending()).await
    }

    /// Serve until `shutdown` completes.
    pub async fn run_until<C: Chaincode>(
        self,
        chaincode: C,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), ShimError> {
        let service = ConnectService {
            chaincode: Arc::new(chaincode),
            chaincode_id: self.config.chaincode_id.clone(),
        };
        tracing::info!(address = %self.local, chaincode = %self.config.chaincode_id, tls = self.config.tls.is_some(), "chaincode server listening");
        weft_tls::grpc::server_builder()
            // Never ping the peer more often than Fabric accepts; answer its pings.
            .http2_keepalive_interval(None)
            .add_service(ConnectServer::new(service))
            .serve_with_incoming_shutdown(incoming(self.listener, self.security), shutdown)
            .await
            .map_err(|e| ShimError::Serve {
                address: self.local.to_string(),
                detail: e.to_string(),
            })
    }
}

/// Bind and serve with `config` until the process ends.
pub async fn serve<C: Chaincode>(chaincode: C, config: ServerConfig) -> Result<(), ShimError> {
    ChaincodeServer::bind(config).await?.run(chaincode).await
}

struct ConnectService<C> {
    chaincode: Arc<C>,
    chaincode_id: String,
}

type OutStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl<C: Chaincode> ConnectApi for ConnectService<C> {
    type ConnectStream = OutStream;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<tonic::Response<OutStream>, Status> {
        let who = request
            .extensions()
            .get::<ConnInfo>()
            .and_then(|c| c.remote)
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        tracing::info!(peer = %who, "peer connected");
        let inbound = Box::pin(request.into_inner());
        let (out_tx, out_rx) = mpsc::channel(256);
        let chaincode = self.chaincode.clone();
        let id = self.chaincode_id.clone();
        tokio::spawn(async move {
            if let Err(e) = handler::run(chaincode, id, None, inbound, out_tx).await {
                tracing::warn!(peer = %who, "{e}");
            }
        });
        Ok(tonic::Response::new(Box::pin(
            ReceiverStream::new(out_rx).map(Ok),
        )))
    }
}
