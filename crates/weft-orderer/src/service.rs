//! The `orderer.AtomicBroadcast` gRPC service: [`crate::broadcast`] and [`crate::deliver`]
//! over tonic streams.
//!
//! Broadcast answers every envelope with exactly one response, in order, on the same stream;
//! envelopes of one stream are processed one after the other (streams run concurrently).
//! Deliver serves the requests of a stream one after the other.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};
use weft_proto::common::Envelope;
use weft_proto::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use weft_proto::orderer::{BroadcastResponse, DeliverResponse};
use weft_tls::grpc::ConnInfo;

use crate::broadcast;
use crate::deliver::{self, Caller};
use crate::registrar::Registrar;

/// Largest gRPC message accepted or sent (Fabric's 100 MB).
pub const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;

/// The service (see the module documentation).
#[derive(Debug, Clone)]
pub struct AtomicBroadcastService {
    registrar: Arc<Registrar>,
    mutual_tls: bool,
    time_window: std::time::Duration,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl AtomicBroadcastService {
    /// `mutual_tls`: whether the listener requires client certificates (Deliver then binds
    /// requests to the TLS session). `time_window`: `General.Authentication.TimeWindow`, how
    /// far a Deliver request's timestamp may be from now. Streams end when `stop` turns true.
    pub fn new(
        registrar: Arc<Registrar>,
        mutual_tls: bool,
        time_window: std::time::Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        AtomicBroadcastService {
            registrar,
            mutual_tls,
            time_window,
            stop,
        }
    }

    pub fn into_server(self) -> AtomicBroadcastServer<Self> {
        AtomicBroadcastServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

fn caller<T>(req: &Request<T>, mutual_tls: bool, time_window: std::time::Duration) -> Caller {
    let info = req.extensions().get::<ConnInfo>();
    Caller {
        tls_cert: info
            .and_then(|i| i.client_certificate())
            .map(|c| c.as_ref().to_vec()),
        mutual_tls,
        time_window,
        remote: info
            .and_then(|i| i.remote)
            .map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
    }
}

#[tonic::async_trait]
impl AtomicBroadcast for AtomicBroadcastService {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, Status>>;
    type DeliverStream = ReceiverStream<Result<DeliverResponse, Status>>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::BroadcastStream>, Status> {
        let caller = caller(&request, self.mutual_tls, self.time_window);
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let registrar = self.registrar.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                let item = tokio::select! {
                    item = incoming.next() => item,
                    _ = stop.wait_for(|s| *s) => None,
                };
                let Some(item) = item else { break };
                let env = match item {
                    Ok(env) => env,
                    Err(e) => {
                        tracing::debug!(client = %caller.remote, "broadcast stream ended: {e}");
                        break;
                    }
                };
                let response = match broadcast::process(&registrar, &env).await {
                    Ok(()) => BroadcastResponse {
                        status: weft_proto::common::Status::Success as i32,
                        info: String::new(),
                    },
                    Err(r) => {
                        tracing::warn!(client = %caller.remote, status = r.status.as_str_name(), "broadcast refused: {}", r.info);
                        r.response()
                    }
                };
                if tx.send(Ok(response)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, Status> {
        let caller = caller(&request, self.mutual_tls, self.time_window);
        let mut incoming = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let registrar = self.registrar.clone();
        let mut stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                let item = tokio::select! {
                    item = incoming.next() => item,
                    _ = stop.wait_for(|s| *s) => None,
                };
                let Some(item) = item else { break };
                let env = match item {
                    Ok(env) => env,
                    Err(e) => {
                        tracing::debug!(client = %caller.remote, "deliver stream ended: {e}");
                        break;
                    }
                };
                if deliver::handle(&registrar, &env, &caller, &tx)
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
