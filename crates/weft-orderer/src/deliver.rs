//! `AtomicBroadcast.Deliver`: stream blocks of a channel to a signed reader.
//!
//! Each request on the stream is an Envelope of type `DELIVER_SEEK_INFO` whose data is a
//! `SeekInfo`. Checks, each refusal answered with a final `status` and logged with its reason
//! (the Deliver protocol has no text field):
//!
//! - headers decode, the channel header's timestamp is within `General.Authentication.TimeWindow`
//!   (15m) of the orderer's clock, the type is `DELIVER_SEEK_INFO`, `SeekInfo` decodes -> else
//!   `BAD_REQUEST`;
//! - the channel is served here -> else `NOT_FOUND`;
//! - under mutual TLS, `ChannelHeader.tls_cert_hash` is the SHA-256 of the client's TLS
//!   certificate (DER) -> else `FORBIDDEN`. When client certificates are only requested, a
//!   client that presented one and put a hash in the header is held to it too;
//! - the creator's signature verifies and satisfies `/Channel/Readers` -> else `FORBIDDEN`;
//!   while streaming, the stream ends with `FORBIDDEN` when the creator's certificate expires.
//!
//! Positions ([`resolve`]): `oldest` is 0, `newest` the last block at the time of the
//! request, `specified` a number, `next_commit` the next block to be written. `start > stop`
//! is `BAD_REQUEST`. With `BLOCK_UNTIL_READY` the stream waits for blocks not yet written;
//! with `FAIL_IF_NOT_READY` it ends with `NOT_FOUND` when it reaches one. Reaching `stop`
//! ends the request with `SUCCESS`; the stream then takes the next request.

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use weft_proto::common::{Block, BlockData, Envelope, HeaderType, Payload, Status};
use weft_proto::orderer::seek_info::{SeekBehavior, SeekContentType};
use weft_proto::orderer::seek_position::Type as Pos;
use weft_proto::orderer::{deliver_response, DeliverResponse, SeekInfo, SeekPosition};

use crate::broadcast::{creator, headers, Refusal};
use crate::registrar::Registrar;
use weft_configtx::channel::ChannelConfig;

/// Where a request starts and stops (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub stop: u64,
}

fn position(p: Option<&SeekPosition>, height: u64, what: &str) -> Result<u64, Refusal> {
    let newest = height.saturating_sub(1);
    match p.and_then(|p| p.r#type.as_ref()) {
        Some(Pos::Oldest(_)) => Ok(0),
        Some(Pos::Newest(_)) => Ok(newest),
        Some(Pos::Specified(s)) => Ok(s.number),
        Some(Pos::NextCommit(_)) => Ok(height),
        None => Err(Refusal::new(
            Status::BadRequest,
            format!("the seek info has no {what} position"),
        )),
    }
}

/// Resolve a `SeekInfo` against the chain's `height`.
pub fn resolve(seek: &SeekInfo, height: u64) -> Result<Range, Refusal> {
    let start = position(seek.start.as_ref(), height, "start")?;
    let stop = position(seek.stop.as_ref(), height, "stop")?;
    if start > stop {
        return Err(Refusal::new(
            Status::BadRequest,
            format!("the seek start ({start}) is after its stop ({stop})"),
        ));
    }
    Ok(Range { start, stop })
}

/// Who is asking, as the transport saw it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The client's TLS certificate (DER), if it presented one.
    pub tls_cert: Option<Vec<u8>>,
    /// Whether the listener requires client certificates.
    pub mutual_tls: bool,
    /// `General.Authentication.TimeWindow`.
    pub time_window: std::time::Duration,
    /// For logs.
    pub remote: String,
}

/// The TLS binding check.
pub fn check_binding(caller: &Caller, tls_cert_hash: &[u8]) -> Result<(), Refusal> {
    let Some(cert) = &caller.tls_cert else {
        if caller.mutual_tls {
            return Err(Refusal::new(
                Status::Forbidden,
                "mutual TLS is required but the connection has no client certificate",
            ));
        }
        return Ok(());
    };
    if !caller.mutual_tls && tls_cert_hash.is_empty() {
        return Ok(());
    }
    let expected = weft_crypto::sha256(cert);
    if tls_cert_hash != expected.as_slice() {
        return Err(Refusal::new(
            Status::Forbidden,
            if tls_cert_hash.is_empty() {
                "the request's channel header has no tls_cert_hash; under mutual TLS it must hold the SHA-256 of the client's TLS certificate".to_owned()
            } else {
                format!(
                    "the request's tls_cert_hash {} is not the SHA-256 of the client's TLS certificate ({}): the request was signed for another TLS session",
                    weft_crypto::hex(tls_cert_hash),
                    weft_crypto::hex(&expected)
                )
            },
        ));
    }
    Ok(())
}

type Tx = mpsc::Sender<Result<DeliverResponse, tonic::Status>>;

fn status(s: Status) -> DeliverResponse {
    DeliverResponse {
        r#type: Some(deliver_response::Type::Status(s as i32)),
    }
}

/// Send the final status of a refused request, logging why. `Err` when the client left.
async fn refuse(tx: &Tx, caller: &Caller, r: Refusal) -> Result<(), ()> {
    tracing::warn!(client = %caller.remote, status = r.status.as_str_name(), "deliver refused: {}", r.info);
    tx.send(Ok(status(r.status))).await.map_err(|_| ())
}

/// Serve one request of a Deliver stream. `Err` when the client is gone.
pub async fn handle(
    registrar: &Registrar,
    env: &Envelope,
    caller: &Caller,
    tx: &Tx,
) -> Result<(), ()> {
    let m = weft_ops::orderer::global();
    let channel = headers(env)
        .map(|i| i.channel_header.channel_id)
        .unwrap_or_default();
    let labels = [channel.as_str(), "false", "block"];
    m.deliver_requests_received.with(&labels).inc();
    let result = serve(registrar, env, caller, tx).await;
    let success = weft_ops::peer::flag(matches!(result, Ok(Ok(()))));
    m.deliver_requests_completed
        .with(&[labels[0], labels[1], labels[2], success])
        .inc();
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(r)) => refuse(tx, caller, r).await,
        Err(()) => Err(()),
    }
}

/// `Ok(Err(refusal))`: answer with that status; `Err(())`: the client left.
async fn serve(
    registrar: &Registrar,
    env: &Envelope,
    caller: &Caller,
    tx: &Tx,
) -> Result<Result<(), Refusal>, ()> {
    let i = match headers(env) {
        Ok(i) => i,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(e) = weft_configtx::units::check_time_window(
        i.channel_header
            .timestamp
            .as_ref()
            .map(|t| (t.seconds, t.nanos)),
        caller.time_window,
        "General.Authentication.TimeWindow",
    ) {
        return Ok(Err(Refusal::new(Status::BadRequest, e)));
    }
    if i.header_type != HeaderType::DeliverSeekInfo as i32 {
        return Ok(Err(Refusal::new(
            Status::BadRequest,
            format!(
                "a Deliver request must have header type DELIVER_SEEK_INFO, not {}",
                i.header_type
            ),
        )));
    }
    let channel = i.channel_header.channel_id.clone();
    let Some(chain) = registrar.get(&channel) else {
        return Ok(Err(Refusal::new(
            Status::NotFound,
            format!("channel '{channel}' is not served by this orderer"),
        )));
    };
    if let Err(r) = check_binding(caller, &i.channel_header.tls_cert_hash) {
        return Ok(Err(r));
    }
    let seek = match Payload::decode(env.payload.clone())
        .map_err(|e| e.to_string())
        .and_then(|p| SeekInfo::decode(p.data).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            return Ok(Err(Refusal::new(
                Status::BadRequest,
                format!("the request's data is not a SeekInfo: {e}"),
            )))
        }
    };
    let creator = match creator(&i.signature_header) {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    // Fabric's session access control: the policy is checked on the first request and again
    // whenever the channel's config changes, so a reader removed or revoked by a config update
    // stops receiving blocks on a stream it opened before.
    // In maintenance mode only the orderer orgs read the channel, as in Fabric.
    let readers = |config: &ChannelConfig| {
        let policy = if config.orderer().maintenance {
            "/Channel/Orderer/Readers"
        } else {
            "/Channel/Readers"
        };
        chain
            .identities()
            .check(config, policy, &creator, &env.payload, &env.signature)
            .map_err(|e| {
                Refusal::new(
                    Status::Forbidden,
                    format!("deliver on channel '{channel}' refused: {e}"),
                )
            })
    };
    let config = chain.config();
    let mut checked_sequence = config.sequence();
    let identity = match readers(&config) {
        Ok(id) => id,
        Err(r) => return Ok(Err(r)),
    };
    let mut heights = chain.subscribe();
    let mut stopped = chain.stopped();
    let range = match resolve(&seek, chain.height()) {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    let fail_if_not_ready = seek.behavior == SeekBehavior::FailIfNotReady as i32;
    let headers_only = seek.content_type == SeekContentType::HeaderWithSig as i32;
    tracing::debug!(client = %caller.remote, channel = %channel, start = range.start, stop = range.stop, "deliver");
    let mut next = range.start;
    loop {
        if time::OffsetDateTime::now_utc() >= identity.not_after {
            return Ok(Err(Refusal::new(
                Status::Forbidden,
                format!(
                    "the certificate of '{}' ({}) expired during the deliver stream",
                    identity.subject, identity.msp_id
                ),
            )));
        }
        let height = *heights.borrow_and_update();
        if next >= height {
            if fail_if_not_ready {
                return Ok(Err(Refusal::new(
                    Status::NotFound,
                    format!(
                        "block {next} of channel '{channel}' is not written yet (height {height}) and the request asked FAIL_IF_NOT_READY"
                    ),
                )));
            }
            tokio::select! {
                changed = heights.changed() => {
                    if changed.is_err() {
                        return Ok(Err(Refusal::new(Status::ServiceUnavailable, format!("channel '{channel}' stopped"))));
                    }
                }
                _ = stopped.wait_for(|s| *s) => {
                    return Ok(Err(Refusal::new(Status::ServiceUnavailable, format!("channel '{channel}' stopped on this orderer"))));
                }
                _ = tx.closed() => return Err(()),
            }
            continue;
        }
        // Read after the height: a config block is in the store only once its config is in
        // force, so the check below already knows the config a config block carries.
        let config = chain.config();
        if config.sequence() != checked_sequence {
            if let Err(mut r) = readers(&config) {
                r.info = format!(
                    "{} (checked again after the channel's config changed to sequence {})",
                    r.info,
                    config.sequence()
                );
                return Ok(Err(r));
            }
            checked_sequence = config.sequence();
        }
        let block = match chain.block_bytes(next) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Ok(Err(Refusal::new(
                    Status::InternalServerError,
                    format!("block {next} of channel '{channel}' is missing from the block store"),
                )))
            }
            Err(e) => {
                tracing::error!(channel = %channel, block = next, "{e}");
                return Ok(Err(Refusal::new(Status::InternalServerError, e)));
            }
        };
        let mut block = match Block::decode(block) {
            Ok(b) => b,
            Err(e) => {
                return Ok(Err(Refusal::new(
                    Status::InternalServerError,
                    format!("stored block {next} does not decode: {e}"),
                )))
            }
        };
        if headers_only {
            block.data = Some(BlockData::default());
        }
        tx.send(Ok(DeliverResponse {
            r#type: Some(deliver_response::Type::Block(block)),
        }))
        .await
        .map_err(|_| ())?;
        weft_ops::orderer::global()
            .deliver_blocks_sent
            .with(&[&channel, "false", "block"])
            .inc();
        if next == range.stop {
            break;
        }
        next += 1;
    }
    tx.send(Ok(status(Status::Success))).await.map_err(|_| ())?;
    Ok(Ok(()))
}

/// Bytes helper for tests and clients: SHA-256 of a DER certificate as `tls_cert_hash`.
pub fn tls_cert_hash(cert_der: &[u8]) -> Bytes {
    Bytes::copy_from_slice(&weft_crypto::sha256(cert_der))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_proto::orderer::{SeekNewest, SeekNextCommit, SeekOldest, SeekSpecified};

    fn pos(t: Pos) -> Option<SeekPosition> {
        Some(SeekPosition { r#type: Some(t) })
    }

    fn seek(start: Pos, stop: Pos) -> SeekInfo {
        SeekInfo {
            start: pos(start),
            stop: pos(stop),
            ..Default::default()
        }
    }

    #[test]
    fn positions() {
        let r = resolve(
            &seek(Pos::Oldest(SeekOldest {}), Pos::Newest(SeekNewest {})),
            5,
        )
        .unwrap();
        assert_eq!(r, Range { start: 0, stop: 4 });
        let r = resolve(
            &seek(
                Pos::Specified(SeekSpecified { number: 3 }),
                Pos::Specified(SeekSpecified { number: u64::MAX }),
            ),
            2,
        )
        .unwrap();
        assert_eq!(
            r,
            Range {
                start: 3,
                stop: u64::MAX
            }
        );
        let r = resolve(
            &seek(
                Pos::NextCommit(SeekNextCommit {}),
                Pos::Specified(SeekSpecified { number: 9 }),
            ),
            7,
        )
        .unwrap();
        assert_eq!(r.start, 7);
        let e = resolve(
            &seek(
                Pos::Specified(SeekSpecified { number: 4 }),
                Pos::Oldest(SeekOldest {}),
            ),
            7,
        )
        .unwrap_err();
        assert_eq!(e.status, Status::BadRequest);
        let e = resolve(&SeekInfo::default(), 1).unwrap_err();
        assert!(e.info.contains("start"));
    }

    #[test]
    fn binding() {
        let cert = b"cert".to_vec();
        let good = weft_crypto::sha256(&cert);
        let mtls = Caller {
            tls_cert: Some(cert.clone()),
            mutual_tls: true,
            time_window: std::time::Duration::from_secs(900),
            remote: "x".into(),
        };
        assert!(check_binding(&mtls, &good).is_ok());
        let e = check_binding(&mtls, &[0u8; 32]).unwrap_err();
        assert_eq!(e.status, Status::Forbidden);
        assert!(e.info.contains("another TLS session"), "{}", e.info);
        assert!(check_binding(&mtls, &[])
            .unwrap_err()
            .info
            .contains("no tls_cert_hash"));
        let requested = Caller {
            time_window: std::time::Duration::from_secs(900),
            mutual_tls: false,
            ..mtls.clone()
        };
        assert!(check_binding(&requested, &[]).is_ok());
        assert!(check_binding(&requested, &[1]).is_err());
        assert!(check_binding(&Caller::default(), &[1]).is_ok());
        let no_cert = Caller {
            time_window: std::time::Duration::from_secs(900),
            tls_cert: None,
            mutual_tls: true,
            remote: String::new(),
        };
        assert!(check_binding(&no_cert, &good).is_err());
    }
}
