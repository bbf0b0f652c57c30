//! Kept Broadcast streams from the gateway to the orderers.
//!
//! `AtomicBroadcast.Broadcast` is a bidirectional stream: a client may send any number of
//! envelopes on it, and the orderer answers each one, in the order they came (Fabric's
//! orderer and weft's both read, check and answer one envelope at a time). Fabric's gateway
//! still opens a new stream for every `Submit`; weft keeps a few streams per orderer open and
//! sends each envelope on one of them, matching answers to waiters first in, first out. That
//! saves, per transaction and on both sides, the HTTP/2 stream set-up and tear-down (request
//! and response headers, trailers, a task on the orderer): a fifth of the orderer's CPU per
//! transaction in the measured A/B (docs/PERFORMANCE.md).
//!
//! Failures: when a stream ends or breaks, every envelope waiting on it gets the error (the
//! `Submit` then tries the next orderer, as before), and the next envelope opens a new stream.
//! An envelope without an answer within the broadcast timeout retires its stream too, so one
//! stuck stream does not hold later transactions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use weft_proto::common::Envelope;
use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;

use super::errors::remote_failure;
use super::remote::{Connections, Target};
use crate::sync::lock;

/// Streams kept open per orderer: a few, so that one slow answer does not queue every other
/// transaction behind it, while each stream still carries many envelopes.
pub const STREAMS_PER_ORDERER: usize = 2;

/// An orderer's answer to one envelope: its status and info, or why there is none.
pub type Answer = Result<(i32, String), String>;

/// How long a stream takes new envelopes. Then it is retired: its last answers still
/// arrive, and a new stream takes over. An orderer that stops gracefully (HTTP/2 GOAWAY)
/// waits for the streams in progress, so none may stay open for ever.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(30);

/// The kept streams of a gateway, by orderer address.
#[derive(Debug)]
pub struct BroadcastStreams {
    streams: Mutex<HashMap<String, Vec<Arc<Stream>>>>,
    next: AtomicUsize,
    lifetime: Duration,
}

impl Default for BroadcastStreams {
    fn default() -> Self {
        Self::with_lifetime(STREAM_LIFETIME)
    }
}

#[derive(Debug)]
struct Stream {
    state: Mutex<State>,
    opened: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Envelopes into the stream; `None` once the stream is closed or retired.
    sender: Option<mpsc::UnboundedSender<Envelope>>,
    /// Who waits for the next answers, oldest first.
    waiting: VecDeque<oneshot::Sender<Answer>>,
}

impl Stream {
    /// Queue `envelope`; the answer arrives on the returned receiver. `Err` gives the envelope
    /// back when the stream is closed.
    fn send(&self, envelope: Envelope) -> Result<oneshot::Receiver<Answer>, Envelope> {
        let mut state = lock(&self.state);
        let Some(sender) = &state.sender else {
            return Err(envelope);
        };
        // Under the lock, so that the order of the waiters is the order on the wire.
        sender.send(envelope).map_err(|e| e.0)?;
        let (tx, rx) = oneshot::channel();
        state.waiting.push_back(tx);
        Ok(rx)
    }

    fn answer(&self, answer: Answer) {
        let waiter = lock(&self.state).waiting.pop_front();
        if let Some(w) = waiter {
            // The waiter may have given up (timeout); its answer is dropped.
            let _ = w.send(answer);
        }
    }

    /// Close the stream: no more envelopes go in, and everyone waiting gets `why`.
    fn close(&self, why: &str) {
        let waiting = {
            let mut state = lock(&self.state);
            state.sender = None;
            std::mem::take(&mut state.waiting)
        };
        for w in waiting {
            let _ = w.send(Err(why.to_owned()));
        }
    }

    /// Take no more envelopes; the ones sent are still answered.
    fn retire(&self) {
        lock(&self.state).sender = None;
    }

    fn is_open(&self) -> bool {
        lock(&self.state).sender.is_some()
    }
}

impl BroadcastStreams {
    /// Streams that take new envelopes for `lifetime` each.
    pub fn with_lifetime(lifetime: Duration) -> Self {
        BroadcastStreams {
            streams: Mutex::new(HashMap::new()),
            next: AtomicUsize::new(0),
            lifetime,
        }
    }

    /// Send `envelope` to `target` on a kept stream and wait (at most `timeout`) for the
    /// orderer's answer.
    pub async fn broadcast(
        &self,
        connections: &Arc<Connections>,
        target: &Target,
        envelope: Envelope,
        timeout: Duration,
    ) -> Answer {
        let mut envelope = envelope;
        // A stream found closed is replaced once; a second closed one means the orderer
        // closes streams as fast as they open, which the error then says.
        for _ in 0..2 {
            let stream = self.pick(connections, target);
            match stream.send(envelope) {
                Ok(rx) => {
                    return match tokio::time::timeout(timeout, rx).await {
                        Ok(Ok(answer)) => answer,
                        Ok(Err(_)) => Err("the broadcast stream to the orderer was dropped".into()),
                        Err(_) => {
                            stream.close(&format!(
                                "the orderer left an earlier envelope on this broadcast stream \
                                 unanswered for {timeout:?} (peer.gateway.broadcastTimeout); the \
                                 stream was closed and the next Submit opens a new one"
                            ));
                            self.remove(&target.address, &stream);
                            Err(format!(
                                "no answer within {timeout:?} (peer.gateway.broadcastTimeout)"
                            ))
                        }
                    };
                }
                Err(back) => {
                    self.remove(&target.address, &stream);
                    envelope = back;
                }
            }
        }
        Err(format!(
            "the broadcast streams to {} closed as soon as they opened",
            target.address
        ))
    }

    /// Streams open now, over all orderers (for tests).
    pub fn open_streams(&self) -> usize {
        lock(&self.streams)
            .values()
            .flatten()
            .filter(|s| s.is_open())
            .count()
    }

    /// One of `target`'s streams, opening one when fewer than [`STREAMS_PER_ORDERER`] are
    /// open. A new stream takes envelopes at once; its task dials (or reuses) the connection
    /// and makes the call, so concurrent first uses share it rather than each opening one.
    fn pick(&self, connections: &Arc<Connections>, target: &Target) -> Arc<Stream> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        let mut all = lock(&self.streams);
        let list = all.entry(target.address.clone()).or_default();
        list.retain(|s| {
            if s.opened.elapsed() >= self.lifetime {
                s.retire();
            }
            s.is_open()
        });
        if list.len() >= STREAMS_PER_ORDERER {
            return list[turn % list.len()].clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let stream = Arc::new(Stream {
            state: Mutex::new(State {
                sender: Some(tx),
                waiting: VecDeque::new(),
            }),
            opened: Instant::now(),
        });
        list.push(stream.clone());
        tokio::spawn(run_stream(
            connections.clone(),
            target.clone(),
            rx,
            stream.clone(),
        ));
        stream
    }

    fn remove(&self, address: &str, stream: &Arc<Stream>) {
        if let Some(list) = lock(&self.streams).get_mut(address) {
            list.retain(|s| !Arc::ptr_eq(s, stream));
        }
    }
}

/// Run one Broadcast call: connect, send the envelopes from `rx`, hand each answer to the
/// oldest waiter. The call is made here rather than by the first sender because an orderer
/// may send its response headers only with its first answer.
async fn run_stream(
    connections: Arc<Connections>,
    target: Target,
    rx: mpsc::UnboundedReceiver<Envelope>,
    stream: Arc<Stream>,
) {
    let conn = match connections.get(&target).await {
        Ok(c) => c,
        Err(e) => {
            stream.close(&e);
            return;
        }
    };
    let outgoing = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
    let mut answers = match AtomicBroadcastClient::new(conn).broadcast(outgoing).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            connections.forget(&target.address);
            stream.close(&remote_failure(&status));
            return;
        }
    };
    loop {
        match answers.message().await {
            Ok(Some(r)) => stream.answer(Ok((r.status, r.info))),
            Ok(None) => {
                stream.close("the orderer closed the broadcast stream without an answer");
                return;
            }
            Err(status) => {
                tracing::debug!(orderer = %target.address, "broadcast stream ended: {status}");
                connections.forget(&target.address);
                stream.close(&remote_failure(&status));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::gateway::remote::Dialing;
    use std::sync::atomic::AtomicU64;
    use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
    use tonic::{Request, Response, Status, Streaming};
    use weft_proto::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
    use weft_proto::orderer::{BroadcastResponse, DeliverResponse};

    /// Answers each envelope with its own payload as `info` (so a mismatched answer shows),
    /// BAD_REQUEST for payload "bad", nothing for "mute"; ends the stream on "end", and with
    /// an UNAVAILABLE status on "fail".
    #[derive(Clone, Default)]
    struct Echo {
        streams: Arc<AtomicU64>,
    }

    #[tonic::async_trait]
    impl AtomicBroadcast for Echo {
        type BroadcastStream = ReceiverStream<Result<BroadcastResponse, Status>>;
        type DeliverStream = ReceiverStream<Result<DeliverResponse, Status>>;

        async fn broadcast(
            &self,
            request: Request<Streaming<Envelope>>,
        ) -> Result<Response<Self::BroadcastStream>, Status> {
            self.streams.fetch_add(1, Ordering::Relaxed);
            let mut inbound = request.into_inner();
            let (tx, rx) = mpsc::channel(16);
            tokio::spawn(async move {
                while let Ok(Some(env)) = inbound.message().await {
                    let text = String::from_utf8_lossy(&env.payload).into_owned();
                    let status = match text.as_str() {
                        "mute" => continue,
                        "end" => return,
                        "fail" => {
                            let _ = tx.send(Err(Status::unavailable("going away"))).await;
                            return;
                        }
                        "bad" => 400,
                        _ => 200,
                    };
                    let answer = BroadcastResponse { status, info: text };
                    if tx.send(Ok(answer)).await.is_err() {
                        return;
                    }
                }
            });
            Ok(Response::new(ReceiverStream::new(rx)))
        }

        async fn deliver(
            &self,
            _request: Request<Streaming<Envelope>>,
        ) -> Result<Response<Self::DeliverStream>, Status> {
            Err(Status::unimplemented("not here"))
        }
    }

    async fn orderer(echo: Echo) -> (Target, oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(AtomicBroadcastServer::new(echo))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                }),
        );
        (target(address), stop)
    }

    fn target(address: String) -> Target {
        Target {
            address,
            msp_id: "OrdererMSP".into(),
            server_name: None,
            roots: Vec::new(),
        }
    }

    fn env(text: &str) -> Envelope {
        Envelope {
            payload: text.as_bytes().to_vec().into(),
            signature: Default::default(),
        }
    }

    fn connections() -> Arc<Connections> {
        Arc::new(Connections::new(Dialing::Plaintext, Duration::from_secs(5)))
    }

    const T: Duration = Duration::from_secs(10);

    /// After a failure, the next envelope gets through (on a new stream).
    async fn next_is_accepted(
        streams: &BroadcastStreams,
        conns: &Arc<Connections>,
        target: &Target,
    ) {
        let (status, _) = streams
            .broadcast(conns, target, env("next"), T)
            .await
            .unwrap();
        assert_eq!(status, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_envelopes_share_a_few_streams_and_each_gets_its_own_answer() {
        let echo = Echo::default();
        let (target, _stop) = orderer(echo.clone()).await;
        let (conns, streams) = (connections(), Arc::new(BroadcastStreams::default()));
        let calls = (0..300).map(|i| {
            let (conns, streams, target) = (conns.clone(), streams.clone(), target.clone());
            tokio::spawn(async move {
                let text = if i % 7 == 0 {
                    "bad".to_string()
                } else {
                    format!("tx{i}")
                };
                let answer = streams.broadcast(&conns, &target, env(&text), T).await;
                (text, answer)
            })
        });
        for call in calls.collect::<Vec<_>>() {
            let (text, answer) = call.await.unwrap();
            let (status, info) = answer.unwrap();
            assert_eq!(info, text, "an answer went to the wrong envelope");
            assert_eq!(status, if text == "bad" { 400 } else { 200 });
        }
        let opened = echo.streams.load(Ordering::Relaxed) as usize;
        assert!(
            (1..=STREAMS_PER_ORDERER).contains(&opened),
            "300 envelopes opened {opened} streams"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_stream_fails_its_waiters_and_the_next_envelope_opens_another() {
        let echo = Echo::default();
        let (target, _stop) = orderer(echo.clone()).await;
        let (conns, streams) = (connections(), BroadcastStreams::default());
        for i in 0..STREAMS_PER_ORDERER {
            let (_, info) = streams
                .broadcast(&conns, &target, env(&format!("warm{i}")), T)
                .await
                .unwrap();
            assert_eq!(info, format!("warm{i}"));
        }
        // The orderer ends one stream on "end": that envelope's waiter learns it.
        let err = streams
            .broadcast(&conns, &target, env("end"), T)
            .await
            .unwrap_err();
        assert!(
            err.contains("closed the broadcast stream without an answer"),
            "{err}"
        );
        for i in 0..10 {
            let (status, info) = streams
                .broadcast(&conns, &target, env(&format!("after{i}")), T)
                .await
                .unwrap();
            assert_eq!((status, info), (200, format!("after{i}")));
        }
        assert_eq!(streams.open_streams(), STREAMS_PER_ORDERER);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unanswered_envelope_times_out_and_retires_its_stream() {
        let echo = Echo::default();
        let (target, _stop) = orderer(echo.clone()).await;
        let (conns, streams) = (connections(), BroadcastStreams::default());
        let err = streams
            .broadcast(&conns, &target, env("mute"), Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            err.contains("no answer within") && err.contains("broadcastTimeout"),
            "{err}"
        );
        assert_eq!(streams.open_streams(), 0, "the stuck stream is still used");
        next_is_accepted(&streams, &conns, &target).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_on_the_stream_is_explained_and_the_next_envelope_opens_another() {
        let (target, _stop) = orderer(Echo::default()).await;
        let (conns, streams) = (connections(), BroadcastStreams::default());
        let err = streams
            .broadcast(&conns, &target, env("fail"), T)
            .await
            .unwrap_err();
        assert!(
            err.contains("rpc error: code = Unavailable") && err.contains("going away"),
            "{err}"
        );
        next_is_accepted(&streams, &conns, &target).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_orderer_that_is_gone_is_named_in_the_error() {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = probe.local_addr().unwrap().to_string();
        drop(probe);
        let target = target(address.clone());
        let (conns, streams) = (connections(), BroadcastStreams::default());
        let err = streams
            .broadcast(&conns, &target, env("x"), T)
            .await
            .unwrap_err();
        assert!(
            err.contains("failed to connect") && err.contains(&address),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn streams_are_replaced_after_their_lifetime() {
        let echo = Echo::default();
        let (target, _stop) = orderer(echo.clone()).await;
        let conns = connections();
        let streams = BroadcastStreams::with_lifetime(Duration::from_millis(200));
        for round in 0..3 {
            for i in 0..STREAMS_PER_ORDERER {
                let text = format!("r{round}-{i}");
                let (_, info) = streams
                    .broadcast(&conns, &target, env(&text), T)
                    .await
                    .unwrap();
                assert_eq!(info, text);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(
            echo.streams.load(Ordering::Relaxed) as usize,
            3 * STREAMS_PER_ORDERER,
            "each round after the lifetime should have opened new streams"
        );
    }
}
