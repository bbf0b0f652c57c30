//! `AtomicBroadcast.Broadcast`: checks on each submitted envelope, in Fabric's order, each
//! refusal with its status and a reason.
//!
//! 1. the payload, its header and channel header decode -> else `BAD_REQUEST`;
//! 2. the channel is served here -> else `NOT_FOUND`;
//! 3. the header type is `ENDORSER_TRANSACTION`, `MESSAGE` or `CONFIG_UPDATE` -> anything
//!    else `BAD_REQUEST`;
//! 4. `payload + signature` bytes are within `AbsoluteMaxBytes` -> else
//!    `REQUEST_ENTITY_TOO_LARGE`;
//! 5. the signature header decodes -> else `BAD_REQUEST`; the creator is a valid identity of
//!    the channel, its signature over the payload verifies, and it satisfies
//!    `/Channel/Writers` -> else `FORBIDDEN`, naming the signer's MSP and why;
//! 6. the consenter accepts it -> `SUCCESS`, else `SERVICE_UNAVAILABLE`.
//!
//! A `CONFIG_UPDATE` passes steps 1-5 like any envelope (its submitter must satisfy
//! `/Channel/Writers`, as with Fabric), then goes to [`crate::chain::Chain::configure`]: a
//! stale or malformed update is `BAD_REQUEST`, one whose signatures do not satisfy a changed
//! element's mod_policy `FORBIDDEN` (the reason names the element and the policy), and
//! `SUCCESS` is answered once the config block is stored.//!
//! [`inspect`] (steps 1 and 3) is a pure function; [`process`] runs them all.

use bytes::Bytes;
use prost::Message;
use weft_proto::common::{ChannelHeader, Envelope, HeaderType, Payload, SignatureHeader, Status};
use weft_proto::orderer::BroadcastResponse;

use crate::blockcutter::message_size;
use crate::registrar::Registrar;

/// A refused envelope: the status and the reason sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub info: String,
}

impl Refusal {
    pub fn new(status: Status, info: impl Into<String>) -> Self {
        Refusal {
            status,
            info: info.into(),
        }
    }

    pub fn response(&self) -> BroadcastResponse {
        BroadcastResponse {
            status: self.status as i32,
            info: self.info.clone(),
        }
    }
}

/// What the headers of an envelope say.
#[derive(Debug, Clone)]
pub struct Inspected {
    pub channel_header: ChannelHeader,
    pub signature_header: Bytes,
    pub header_type: i32,
}

/// Decode the payload's headers (step 1).
pub fn headers(env: &Envelope) -> Result<Inspected, Refusal> {
    let bad = |what: String| Refusal::new(Status::BadRequest, what);
    if env.payload.is_empty() {
        return Err(bad("the envelope has no payload".into()));
    }
    let payload = Payload::decode(env.payload.clone()).map_err(|e| {
        bad(format!(
            "the envelope's payload is not a common.Payload: {e}"
        ))
    })?;
    let header = payload
        .header
        .ok_or_else(|| bad("the payload has no header".into()))?;
    let channel_header = ChannelHeader::decode(header.channel_header)
        .map_err(|e| bad(format!("the payload's channel header does not decode: {e}")))?;
    Ok(Inspected {
        header_type: channel_header.r#type,
        channel_header,
        signature_header: header.signature_header,
    })
}

/// Steps 1 and 3: the headers, and whether the header type is ordered here.
pub fn inspect(env: &Envelope) -> Result<Inspected, Refusal> {
    let i = headers(env)?;
    check_type(i.header_type)?;
    Ok(i)
}

/// Step 3: ENDORSER_TRANSACTION, MESSAGE and CONFIG_UPDATE are ordered.
pub fn check_type(header_type: i32) -> Result<(), Refusal> {
    match HeaderType::try_from(header_type) {
        Ok(HeaderType::EndorserTransaction)
        | Ok(HeaderType::Message)
        | Ok(HeaderType::ConfigUpdate) => Ok(()),
        Ok(other) => Err(Refusal::new(
            Status::BadRequest,
            format!(
                "header type {} is not allowed on Broadcast (only ENDORSER_TRANSACTION, MESSAGE and CONFIG_UPDATE)",
                other.as_str_name()
            ),
        )),
        Err(_) => Err(Refusal::new(
            Status::BadRequest,
            format!("unknown header type {header_type}"),
        )),
    }
}

/// Decode the creator from the signature header.
pub fn creator(signature_header: &Bytes) -> Result<Bytes, Refusal> {
    let sh = SignatureHeader::decode(signature_header.clone()).map_err(|e| {
        Refusal::new(
            Status::BadRequest,
            format!("the payload's signature header does not decode: {e}"),
        )
    })?;
    if sh.creator.is_empty() {
        return Err(Refusal::new(
            Status::Forbidden,
            "the signature header has no creator",
        ));
    }
    Ok(sh.creator)
}

/// Run every check on one envelope and hand it to the consenter.
pub async fn process(registrar: &Registrar, env: &Envelope) -> Result<(), Refusal> {
    let started = std::time::Instant::now();
    let result = check_and_order(registrar, env).await;
    count(env, &result, started.elapsed());
    result
}

/// `broadcast_processed_count` and `broadcast_validate_duration` for one envelope.
fn count(env: &Envelope, result: &Result<(), Refusal>, took: std::time::Duration) {
    let (channel, header_type) = match headers(env) {
        Ok(i) => (
            i.channel_header.channel_id,
            HeaderType::try_from(i.header_type)
                .map(|t| t.as_str_name().to_owned())
                .unwrap_or_else(|_| i.header_type.to_string()),
        ),
        Err(_) => (String::new(), String::new()),
    };
    let status = match result {
        Ok(()) => Status::Success.as_str_name(),
        Err(r) => r.status.as_str_name(),
    };
    let m = weft_ops::orderer::global();
    let labels = [channel.as_str(), header_type.as_str(), status];
    m.broadcast_processed_count.with(&labels).inc();
    m.broadcast_validate_duration
        .with(&labels)
        .observe_duration(took);
}

async fn check_and_order(registrar: &Registrar, env: &Envelope) -> Result<(), Refusal> {
    let i = headers(env)?;
    let channel = &i.channel_header.channel_id;
    let Some(chain) = registrar.get(channel) else {
        return Err(Refusal::new(
            Status::NotFound,
            format!(
                "channel '{channel}' is not served by this orderer (joined: {})",
                registrar.ids().join(", ")
            ),
        ));
    };
    check_type(i.header_type)?;
    let size = message_size(env.payload.len(), env.signature.len());
    let max = chain.limits().absolute_max_bytes;
    if size > max {
        return Err(Refusal::new(
            Status::RequestEntityTooLarge,
            format!(
                "the envelope is {size} bytes (payload + signature), over channel '{channel}''s AbsoluteMaxBytes of {max}"
            ),
        ));
    }
    let creator = creator(&i.signature_header)?;
    let config = chain.config();
    // Maintenance mode (ConsensusType.state, for a consensus-type migration), as in Fabric:
    // only the orderer orgs may write (config updates), and transactions wait until it ends.
    let maintenance = config.orderer().maintenance;
    let writers = if maintenance {
        "/Channel/Orderer/Writers"
    } else {
        "/Channel/Writers"
    };
    chain
        .identities()
        .check(&config, writers, &creator, &env.payload, &env.signature)
        .map_err(|e| {
            Refusal::new(
                Status::Forbidden,
                format!(
                    "broadcast to channel '{channel}' refused: {e}{}",
                    if maintenance {
                        " (the channel is in maintenance mode: only the orderer orgs may submit)"
                    } else {
                        ""
                    }
                ),
            )
        })?;
    if i.header_type == HeaderType::ConfigUpdate as i32 {
        return chain.configure(env).await;
    }
    if maintenance {
        return Err(Refusal::new(
            Status::ServiceUnavailable,
            format!(
                "channel '{channel}' is in maintenance mode (ConsensusType.state): transactions \
                 are refused until the orderer admins end it with a config update"
            ),
        ));
    }
    let bytes = Bytes::from(env.encode_to_vec());
    chain
        .order(bytes, size)
        .await
        .map_err(|e| Refusal::new(Status::ServiceUnavailable, e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use weft_proto::common::Header;

    fn env(t: HeaderType) -> Envelope {
        let ch = ChannelHeader {
            r#type: t as i32,
            channel_id: "mychannel".into(),
            ..Default::default()
        };
        let p = Payload {
            header: Some(Header {
                channel_header: ch.encode_to_vec().into(),
                signature_header: Bytes::new(),
            }),
            data: Bytes::new(),
        };
        Envelope {
            payload: p.encode_to_vec().into(),
            signature: Bytes::new(),
        }
    }

    #[test]
    fn header_types() {
        assert!(inspect(&env(HeaderType::EndorserTransaction)).is_ok());
        assert!(inspect(&env(HeaderType::Message)).is_ok());
        assert!(inspect(&env(HeaderType::ConfigUpdate)).is_ok());
        let r = inspect(&env(HeaderType::Config)).unwrap_err();
        assert_eq!(r.status, Status::BadRequest);
        assert!(r.info.contains("CONFIG"), "{}", r.info);
    }

    #[test]
    fn malformed_envelopes_are_bad_requests() {
        for e in [
            Envelope::default(),
            Envelope {
                payload: Bytes::from_static(b"\xff\xff\xff garbage"),
                signature: Bytes::new(),
            },
            Envelope {
                payload: Payload::default().encode_to_vec().into(),
                signature: Bytes::new(),
            },
        ] {
            let r = inspect(&e).unwrap_err();
            assert_eq!(r.status, Status::BadRequest, "{}", r.info);
        }
        assert_eq!(
            creator(&Bytes::from_static(b"\xff")).unwrap_err().status,
            Status::BadRequest
        );
        assert_eq!(
            creator(&Bytes::new()).unwrap_err().status,
            Status::Forbidden
        );
    }
}
