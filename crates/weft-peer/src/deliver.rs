//! The peer's `protos.Deliver` service: committed blocks (with their TRANSACTIONS_FILTER) on
//! `Deliver`, filtered blocks (tx id, type, validation code, chaincode events without payload)
//! on `DeliverFiltered`.
//!
//! Each request on the stream is a signed envelope holding a `SeekInfo`. As in Fabric:
//! - the channel header needs a timestamp within `peer.authentication.timewindow` (15m) of
//!   the peer's clock, and under mutual TLS its `tls_cert_hash` must be the SHA-256 of the
//!   client's TLS certificate (a stolen envelope cannot be replayed on another connection);
//! - the creator's signature over the payload must verify and satisfy the ACL of `event/Block`
//!   or `event/FilteredBlock` (`/Channel/Application/Readers` by default), checked again when
//!   the channel config changes or the creator's certificate expires;
//! - start: oldest / newest / specified / next commit; stop: oldest (= start), newest (the
//!   height when the request arrives, or the start block if start is also newest),
//!   specified; `FAIL_IF_NOT_READY` ends with NOT_FOUND at a block not yet committed,
//!   `BLOCK_UNTIL_READY` waits for it;
//! - every request ends with a status (SUCCESS, BAD_REQUEST, NOT_FOUND, FORBIDDEN,
//!   SERVICE_UNAVAILABLE); after a non-success status the stream ends, after SUCCESS the
//!   client may send the next request.
//!
//! Refusals are logged with the reason; the client sees the status only (the wire has no
//! message field for it).

use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status as GrpcStatus, Streaming};
use weft_proto::common::{ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status};
use weft_proto::orderer::seek_info::SeekBehavior;
use weft_proto::orderer::seek_position::Type as Seek;
use weft_proto::orderer::SeekInfo;
use weft_proto::protos::deliver_response::Type as Answer;
use weft_proto::protos::deliver_server::{Deliver as DeliverRpc, DeliverServer};
use weft_proto::protos::{
    filtered_transaction, ChaincodeEvent, DeliverResponse, FilteredBlock, FilteredChaincodeAction,
    FilteredTransaction, FilteredTransactionActions,
};
use weft_tls::grpc::ConnInfo;

use crate::channel::{Channel, Channels};
use crate::commit_events::{parse_tx, CommittedBlock, Follower};
use crate::gateway::access::{self, authorize};

/// Deliver settings.
#[derive(Debug, Clone)]
pub struct DeliverOptions {
    /// `peer.tls.clientAuthRequired`: requests must carry the client's TLS certificate hash.
    pub mutual_tls: bool,
    /// `peer.authentication.timewindow`: how far a request's timestamp may be from now.
    pub time_window: Duration,
}

impl Default for DeliverOptions {
    fn default() -> Self {
        DeliverOptions {
            mutual_tls: false,
            time_window: Duration::from_secs(15 * 60),
        }
    }
}

/// What one stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Blocks,
    Filtered,
}

/// The peer's Deliver service.
#[derive(Debug)]
pub struct DeliverService {
    channels: Arc<Channels>,
    opts: DeliverOptions,
}

/// A checked seek request.
#[derive(Debug)]
struct Seek2 {
    channel: Arc<Channel>,
    creator: bytes::Bytes,
    seek: SeekInfo,
}

type Out = mpsc::Sender<Result<DeliverResponse, GrpcStatus>>;

fn status(s: Status) -> DeliverResponse {
    DeliverResponse {
        r#type: Some(Answer::Status(s as i32)),
    }
}

impl DeliverService {
    pub fn new(channels: Arc<Channels>, opts: DeliverOptions) -> Self {
        DeliverService { channels, opts }
    }

    /// The gRPC service.
    pub fn into_server(self: Arc<Self>) -> DeliverServer<DeliverRpcService> {
        DeliverServer::new(DeliverRpcService(self))
    }

    /// Check a request envelope up to the seek info; `Err` is the status to answer.
    fn check(
        &self,
        env: &Envelope,
        kind: Kind,
        client_cert: Option<&[u8]>,
        remote: &str,
    ) -> Result<Seek2, Status> {
        let refuse = |st: Status, why: String| {
            tracing::warn!(
                client = remote,
                status = st.as_str_name(),
                "deliver request refused: {why}"
            );
            st
        };
        let payload = Payload::decode(env.payload.clone())
            .map_err(|e| refuse(Status::BadRequest, format!("malformed payload: {e}")))?;
        let header = payload
            .header
            .ok_or_else(|| refuse(Status::BadRequest, "the payload has no header".into()))?;
        let chdr = ChannelHeader::decode(header.channel_header.clone())
            .map_err(|e| refuse(Status::BadRequest, format!("malformed channel header: {e}")))?;
        let shdr = SignatureHeader::decode(header.signature_header.clone()).map_err(|e| {
            refuse(
                Status::BadRequest,
                format!("malformed signature header: {e}"),
            )
        })?;
        check_timestamp(&chdr, self.opts.time_window).map_err(|e| refuse(Status::BadRequest, e))?;
        check_binding(&chdr, client_cert, self.opts.mutual_tls)
            .map_err(|e| refuse(Status::BadRequest, e))?;
        let channel = self.channels.get(&chdr.channel_id).ok_or_else(|| {
            tracing::debug!(client = remote, channel = %chdr.channel_id, "deliver: channel not found");
            Status::NotFound
        })?;
        authorize(
            &channel,
            resource(kind),
            &shdr.creator,
            &env.payload,
            &env.signature,
        )
        .map_err(|e| refuse(Status::Forbidden, e))?;
        if chdr.r#type != HeaderType::DeliverSeekInfo as i32 {
            tracing::debug!(
                client = remote,
                r#type = chdr.r#type,
                "deliver request with a header type other than DELIVER_SEEK_INFO"
            );
        }
        let seek = SeekInfo::decode(payload.data)
            .map_err(|e| refuse(Status::BadRequest, format!("malformed seek info: {e}")))?;
        if seek.start.is_none() || seek.stop.is_none() {
            return Err(refuse(
                Status::BadRequest,
                "the seek info lacks a start or a stop".into(),
            ));
        }
        Ok(Seek2 {
            channel,
            creator: shdr.creator,
            seek,
        })
    }

    /// Serve one request; returns the final status (`None`: the client went away).
    async fn serve_one(
        &self,
        env: &Envelope,
        kind: Kind,
        client_cert: Option<&[u8]>,
        remote: &str,
        out: &Out,
    ) -> Option<Status> {
        let req = match self.check(env, kind, client_cert, remote) {
            Ok(r) => r,
            Err(st) => return Some(st),
        };
        let channel = req.channel;
        let store = channel.blocks();
        // Subscribe before reading the height.
        let mut follower = Follower::new(channel.commit_events(), 0);
        let height = store.height();
        let start = match position(req.seek.start.and_then(|p| p.r#type), height) {
            Some(n) => n,
            None => return Some(Status::BadRequest),
        };
        let stop = match req.seek.stop.and_then(|p| p.r#type) {
            Some(Seek::Oldest(_)) => start,
            Some(Seek::Newest(_)) => {
                if req.seek.start == req.seek.stop {
                    start
                } else {
                    height.saturating_sub(1)
                }
            }
            Some(Seek::Specified(s)) => {
                if s.number < start {
                    tracing::warn!(
                        client = remote,
                        start,
                        stop = s.number,
                        "deliver: start after stop"
                    );
                    return Some(Status::BadRequest);
                }
                s.number
            }
            _ => u64::MAX,
        };
        let fail_if_not_ready = req.seek.behavior == SeekBehavior::FailIfNotReady as i32;
        follower.set_position(start);
        let mut config = channel.config();
        loop {
            let number = follower.position();
            if fail_if_not_ready && number >= store.height() {
                return Some(Status::NotFound);
            }
            let next = tokio::select! {
                _ = out.closed() => return None,
                b = follower.next(store) => b,
            };
            let block = match next {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(channel = %channel.id(), "deliver stopped: {e}");
                    return Some(Status::ServiceUnavailable);
                }
            };
            // Re-check access when the config changed or the creator's certificate expired.
            let now_config = channel.config();
            let changed = match (&config, &now_config) {
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
                (None, None) => false,
                _ => true,
            };
            if changed || creator_expired(&channel, &req.creator) {
                if let Err(e) = authorize(
                    &channel,
                    resource(kind),
                    &req.creator,
                    &env.payload,
                    &env.signature,
                ) {
                    tracing::warn!(client = remote, channel = %channel.id(), "deliver: access revoked: {e}");
                    return Some(Status::Forbidden);
                }
                config = now_config;
            }
            let answer = match kind {
                Kind::Blocks => Answer::Block(block.block.as_ref().clone()),
                Kind::Filtered => Answer::FilteredBlock(filtered_block(channel.id(), &block)),
            };
            let sent = out
                .send(Ok(DeliverResponse {
                    r#type: Some(answer),
                }))
                .await;
            if sent.is_err() {
                return None;
            }
            if block.number >= stop {
                return Some(Status::Success);
            }
        }
    }

    fn stream(
        self: Arc<Self>,
        request: Request<Streaming<Envelope>>,
        kind: Kind,
    ) -> ReceiverStream<Result<DeliverResponse, GrpcStatus>> {
        let conn = request.extensions().get::<ConnInfo>().cloned();
        let client_cert = conn
            .as_ref()
            .and_then(|c| c.client_certificate())
            .map(|c| c.as_ref().to_vec());
        let remote = conn
            .as_ref()
            .and_then(|c| c.remote)
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            loop {
                let env = match inbound.message().await {
                    Ok(Some(env)) => env,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(client = %remote, "deliver stream ended: {e}");
                        return;
                    }
                };
                let Some(st) = self
                    .serve_one(&env, kind, client_cert.as_deref(), &remote, &tx)
                    .await
                else {
                    return;
                };
                if tx.send(Ok(status(st))).await.is_err() || st != Status::Success {
                    return;
                }
            }
        });
        ReceiverStream::new(rx)
    }
}

fn resource(kind: Kind) -> &'static str {
    match kind {
        Kind::Blocks => access::EVENT_BLOCK,
        Kind::Filtered => access::EVENT_FILTERED_BLOCK,
    }
}

/// The block number a seek position names on a ledger of `height` blocks.
fn position(p: Option<Seek>, height: u64) -> Option<u64> {
    match p? {
        Seek::Oldest(_) => Some(0),
        Seek::Newest(_) => Some(height.saturating_sub(1)),
        Seek::Specified(s) => Some(s.number),
        Seek::NextCommit(_) => Some(height),
    }
}

/// The channel header's timestamp must be within `window` of now.
pub fn check_timestamp(chdr: &ChannelHeader, window: Duration) -> Result<(), String> {
    weft_configtx::units::check_time_window(
        chdr.timestamp.as_ref().map(|t| (t.seconds, t.nanos)),
        window,
        "peer.authentication.timewindow",
    )
}

/// Under mutual TLS (or when the client claims one) the header's `tls_cert_hash` must be
/// SHA-256 of the client's TLS certificate.
pub fn check_binding(
    chdr: &ChannelHeader,
    client_cert: Option<&[u8]>,
    mutual_tls: bool,
) -> Result<(), String> {
    if !mutual_tls && chdr.tls_cert_hash.is_empty() {
        return Ok(());
    }
    let Some(cert) = client_cert else {
        return Err(
            "the request carries a TLS certificate hash but the client presented no TLS certificate"
                .into(),
        );
    };
    if chdr.tls_cert_hash.is_empty() {
        return Err("the client did not include its TLS certificate hash (channel header tls_cert_hash), which mutual TLS requires".into());
    }
    let actual = weft_crypto::sha256(cert);
    if chdr.tls_cert_hash.as_ref() != actual {
        return Err(format!(
            "the request's TLS certificate hash {} is not the hash of this connection's client certificate ({}): the request was made for another connection",
            weft_crypto::hex(&chdr.tls_cert_hash),
            weft_crypto::hex(&actual)
        ));
    }
    Ok(())
}

fn creator_expired(channel: &Channel, creator: &bytes::Bytes) -> bool {
    match channel.deserialize_identity(creator) {
        Ok(id) => id.not_after < time::OffsetDateTime::now_utc(),
        Err(_) => true,
    }
}

/// The filtered view of a committed block.
pub fn filtered_block(channel_id: &str, block: &CommittedBlock) -> FilteredBlock {
    let envelopes = block
        .block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or_default();
    let filtered_transactions = envelopes
        .iter()
        .enumerate()
        .map(|(i, env)| {
            let parsed = parse_tx(env).unwrap_or_default();
            let code = block
                .txs
                .get(i)
                .map_or(crate::commit_events::NOT_VALIDATED, |t| t.code);
            let data = (parsed.tx_type == HeaderType::EndorserTransaction as i32).then(|| {
                filtered_transaction::Data::TransactionActions(FilteredTransactionActions {
                    chaincode_actions: parsed
                        .chaincode_event
                        .filter(|e| !e.chaincode_id.is_empty())
                        .map(|e| FilteredChaincodeAction {
                            chaincode_event: Some(ChaincodeEvent {
                                chaincode_id: e.chaincode_id,
                                tx_id: e.tx_id,
                                event_name: e.event_name,
                                payload: bytes::Bytes::new(),
                            }),
                        })
                        .into_iter()
                        .collect(),
                })
            });
            FilteredTransaction {
                txid: parsed.tx_id,
                r#type: parsed.tx_type,
                tx_validation_code: code,
                data,
            }
        })
        .collect();
    FilteredBlock {
        channel_id: channel_id.to_owned(),
        number: block.number,
        filtered_transactions,
    }
}

/// `protos.Deliver` over a [`DeliverService`].
#[derive(Debug, Clone)]
pub struct DeliverRpcService(pub Arc<DeliverService>);

#[tonic::async_trait]
impl DeliverRpc for DeliverRpcService {
    type DeliverStream = ReceiverStream<Result<DeliverResponse, GrpcStatus>>;
    type DeliverFilteredStream = ReceiverStream<Result<DeliverResponse, GrpcStatus>>;
    type DeliverWithPrivateDataStream = ReceiverStream<Result<DeliverResponse, GrpcStatus>>;

    async fn deliver(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverStream>, GrpcStatus> {
        Ok(Response::new(self.0.clone().stream(request, Kind::Blocks)))
    }

    async fn deliver_filtered(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverFilteredStream>, GrpcStatus> {
        Ok(Response::new(
            self.0.clone().stream(request, Kind::Filtered),
        ))
    }

    async fn deliver_with_private_data(
        &self,
        _request: Request<Streaming<Envelope>>,
    ) -> Result<Response<Self::DeliverWithPrivateDataStream>, GrpcStatus> {
        Err(GrpcStatus::unimplemented(
            "DeliverWithPrivateData is not supported by this peer: weft has no private data collections yet; use Deliver or DeliverFiltered",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn header(hash: &[u8], seconds_ago: i64) -> ChannelHeader {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        ChannelHeader {
            timestamp: Some(prost_types::Timestamp {
                seconds: now - seconds_ago,
                nanos: 0,
            }),
            tls_cert_hash: bytes::Bytes::copy_from_slice(hash),
            ..Default::default()
        }
    }

    #[test]
    fn binding_to_the_client_certificate() {
        let cert = b"client cert der";
        let good = weft_crypto::sha256(cert);
        assert!(check_binding(&header(&good, 0), Some(cert), true).is_ok());
        let e = check_binding(&header(&[7; 32], 0), Some(cert), true).unwrap_err();
        assert!(e.contains("another connection"), "{e}");
        let e = check_binding(&header(&[], 0), Some(cert), true).unwrap_err();
        assert!(e.contains("did not include"), "{e}");
        assert!(check_binding(&header(&good, 0), None, true).is_err());
        // Without mutual TLS a request with no hash is fine.
        assert!(check_binding(&header(&[], 0), None, false).is_ok());
    }

    #[test]
    fn timestamp_window() {
        let w = Duration::from_secs(900);
        assert!(check_timestamp(&header(&[], 10), w).is_ok());
        let e = check_timestamp(&header(&[], 3600), w).unwrap_err();
        assert!(e.contains("timewindow"), "{e}");
        assert!(check_timestamp(&ChannelHeader::default(), w).is_err());
    }

    #[test]
    fn seek_positions() {
        use weft_proto::orderer::{SeekNewest, SeekNextCommit, SeekOldest, SeekSpecified};
        assert_eq!(position(Some(Seek::Oldest(SeekOldest {})), 9), Some(0));
        assert_eq!(position(Some(Seek::Newest(SeekNewest {})), 9), Some(8));
        assert_eq!(
            position(Some(Seek::NextCommit(SeekNextCommit {})), 9),
            Some(9)
        );
        assert_eq!(
            position(Some(Seek::Specified(SeekSpecified { number: 4 })), 9),
            Some(4)
        );
        assert_eq!(position(None, 9), None);
    }
}
