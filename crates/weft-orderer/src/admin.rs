//! The channel participation API on `Admin.ListenAddress`, as Fabric's `osnadmin` speaks it:
//!
//! | request | answer |
//! |---|---|
//! | `GET /participation/v1/channels` | 200 `{"systemChannel":null,"channels":[{"name","url"}]}` |
//! | `POST /participation/v1/channels` (multipart field `config-block`) | 201 channel info; 405 if joined; 400 if the block is not a genesis config block |
//! | `GET /participation/v1/channels/{id}` | 200 `{"name","url","consensusRelation":"consenter","status":"active","height"}`; 404 |
//! | `DELETE /participation/v1/channels/{id}` | 204; 404 |
//!
//! Errors are JSON `{"error": "..."}`. Any other method on these paths is 405 with `Allow`.
//! HTTP/1.1 and HTTP/2 are both served (Go's osnadmin speaks HTTP/1.1 over TLS). The routing
//! is a pure function ([`route`]) over the request's parts and body; [`serve`] is the
//! listener. Authentication is the listener's mutual TLS (`Admin.TLS.ClientRootCAs`), as in
//! Fabric.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use prost::Message;
use serde::Serialize;
use tokio::net::TcpListener;
use weft_proto::common::Block;
use weft_tls::TlsServer;

use crate::chain::{Chain, ChainError};
use crate::multipart;
use crate::registrar::Registrar;

/// The API's path prefix.
pub const CHANNELS: &str = "/participation/v1/channels";

/// `ChannelInfoShort`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct ChannelShort {
    pub name: String,
    pub url: String,
}

/// `ChannelList`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelList {
    pub system_channel: Option<ChannelShort>,
    pub channels: Vec<ChannelShort>,
}

/// `ChannelInfo`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelInfo {
    pub name: String,
    pub url: String,
    pub consensus_relation: String,
    pub status: String,
    pub height: u64,
}

/// A response before it becomes HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<serde_json::Value>,
    pub allow: Option<&'static str>,
    pub location: Option<String>,
}

impl Answer {
    fn json(status: StatusCode, body: impl Serialize) -> Answer {
        Answer {
            status,
            body: Some(serde_json::to_value(body).unwrap_or(serde_json::Value::Null)),
            allow: None,
            location: None,
        }
    }

    fn error(status: StatusCode, msg: impl Into<String>) -> Answer {
        Answer::json(status, serde_json::json!({ "error": msg.into() }))
    }
}

fn url(id: &str) -> String {
    format!("{CHANNELS}/{id}")
}

fn info(chain: &Chain) -> ChannelInfo {
    ChannelInfo {
        name: chain.id().to_owned(),
        url: url(chain.id()),
        consensus_relation: "consenter".into(),
        status: "active".into(),
        height: chain.height(),
    }
}

/// Answer one request (see the module documentation).
pub async fn route(
    registrar: &Registrar,
    method: &Method,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Answer {
    let path = path.trim_end_matches('/');
    if path == CHANNELS {
        return match *method {
            Method::GET => {
                let channels = registrar
                    .ids()
                    .into_iter()
                    .map(|name| ChannelShort {
                        url: url(&name),
                        name,
                    })
                    .collect();
                Answer::json(
                    StatusCode::OK,
                    ChannelList {
                        system_channel: None,
                        channels,
                    },
                )
            }
            Method::POST => join(registrar, content_type, body).await,
            _ => Answer {
                allow: Some("GET, POST"),
                ..Answer::error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("invalid request method: {method}"),
                )
            },
        };
    }
    let Some(id) = path
        .strip_prefix(CHANNELS)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| !id.contains('/'))
    else {
        return Answer::error(StatusCode::NOT_FOUND, format!("no such resource: {path}"));
    };
    if let Err(e) = crate::chain::check_channel_name(id) {
        return Answer::error(StatusCode::BAD_REQUEST, e);
    }
    match *method {
        Method::GET => match registrar.get(id) {
            Some(c) => Answer::json(StatusCode::OK, info(&c)),
            None => Answer::error(StatusCode::NOT_FOUND, "channel does not exist"),
        },
        Method::DELETE => match registrar.remove(id).await {
            Ok(true) => Answer {
                status: StatusCode::NO_CONTENT,
                body: None,
                allow: None,
                location: None,
            },
            Ok(false) => Answer::error(StatusCode::NOT_FOUND, "channel does not exist"),
            Err(e) => Answer::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot remove channel: {e}"),
            ),
        },
        _ => Answer {
            allow: Some("GET, DELETE"),
            ..Answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("invalid request method: {method}"),
            )
        },
    }
}

async fn join(registrar: &Registrar, content_type: Option<&str>, body: &[u8]) -> Answer {
    let bad = |m: String| Answer::error(StatusCode::BAD_REQUEST, m);
    let Some(ct) = content_type else {
        return bad("cannot join: the request has no Content-Type; send multipart/form-data with a config-block field".into());
    };
    let block =
        match multipart::boundary(ct).and_then(|b| multipart::field(body, &b, "config-block")) {
            Ok(b) => b,
            Err(e) => return bad(format!("cannot join: {e}")),
        };
    let block = match Block::decode(block) {
        Ok(b) => b,
        Err(e) => {
            return bad(format!(
                "cannot join: the config-block field is not a block: {e}"
            ))
        }
    };
    match registrar.join(block).await {
        Ok(chain) => Answer {
            location: Some(url(chain.id())),
            ..Answer::json(StatusCode::CREATED, info(&chain))
        },
        Err(ChainError::Exists { channel }) => Answer {
            allow: Some("GET, DELETE"),
            ..Answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("cannot join: channel already exists: {channel}"),
            )
        },
        Err(e @ ChainError::Invalid { .. }) => bad(format!("cannot join: {e}")),
        Err(e) => Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot join: {e}"),
        ),
    }
}

fn to_http(a: Answer) -> Response<Full<Bytes>> {
    let body = a
        .body
        .map(|v| Bytes::from(serde_json::to_vec(&v).unwrap_or_default()))
        .unwrap_or_default();
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = a.status;
    if a.status != StatusCode::NO_CONTENT {
        r.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Some(allow) = a.allow {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    if let Some(loc) = a.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(LOCATION, loc);
    }
    r
}

async fn handle(
    registrar: Arc<Registrar>,
    req: Request<Incoming>,
    remote: String,
    max_body: usize,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, max_body).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(to_http(Answer::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "cannot read the request body: {e} (ChannelParticipation.MaxRequestBodySize \
                     is {max_body} bytes; raise it for larger config blocks)"
                ),
            )))
        }
    };
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let answer = route(&registrar, &parts.method, parts.uri.path(), ct, &body).await;
    tracing::info!(client = %remote, method = %parts.method, path = %parts.uri.path(), status = answer.status.as_u16(), "channel participation request");
    Ok(to_http(answer))
}

/// Serve the API on `listener` (TLS when `tls` is set) until `stop` resolves.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<TlsServer>>,
    registrar: Arc<Registrar>,
    max_body: usize,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("admin listener: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let registrar = registrar.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let remote_s = remote.to_string();
            let svc = {
                let remote_s = remote_s.clone();
                hyper::service::service_fn(move |req| {
                    handle(registrar.clone(), req, remote_s.clone(), max_body)
                })
            };
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(server) => match server.accept(tcp, Some(remote_s.clone())).await {
                    Ok(a) => builder.serve_connection(TokioIo::new(a.stream), svc).await,
                    Err(_) => return, // logged by accept
                },
                None => builder.serve_connection(TokioIo::new(tcp), svc).await,
            };
            if let Err(e) = result {
                tracing::debug!(client = %remote_s, "admin connection ended: {e}");
            }
        });
    }
}
