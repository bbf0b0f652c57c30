//! The peer's deliver client: per joined channel, pull blocks from the ordering service and
//! commit them.
//!
//! - Connection: mutual TLS to one of the channel's orderer endpoints (from the channel
//!   config), trusting the TLS roots of the channel's orderer orgs, presenting the peer's TLS
//!   client certificate (weft presents it whenever it has one).
//! - Request: a `SeekInfo` from the ledger height to the end of time with `BLOCK_UNTIL_READY`,
//!   in an envelope of type `DELIVER_SEEK_INFO` signed by the peer's identity, its channel
//!   header carrying `tls_cert_hash` = SHA-256 of the peer's TLS client certificate.
//! - Every block is checked before it reaches the committer ([`check_block`]): its number, its
//!   previous hash against the last block's header hash, its data hash, and its orderer
//!   signatures against `/Channel/Orderer/BlockValidation`.
//! - Blocks go through the commit [`Pipeline`]; a failure or a closed stream reconnects (to the
//!   next endpoint) with exponential backoff; the loop ends on shutdown.
//!
//! [`check_block`] and [`seek_envelope`] are plain functions for tests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::watch;
use weft_configtx::ChannelConfig;
use weft_ledger::block::{data_hash, header_hash, signature_message, signatures};
use weft_msp::msp::SigningIdentity;
use weft_msp::policy::SignedData;
use weft_proto::common::{
    Block, BlockHeader, ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader,
    Status,
};
use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use weft_proto::orderer::deliver_response::Type as DeliverType;
use weft_proto::orderer::seek_info::{SeekBehavior, SeekContentType, SeekErrorResponse};
use weft_proto::orderer::seek_position::Type as SeekType;
use weft_proto::orderer::{SeekInfo, SeekPosition, SeekSpecified};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, Settings, TlsClient, Trust};

use crate::channel::Channel;
use crate::committer::Pipeline;

/// The policy orderer signatures on a block must satisfy.
pub const BLOCK_VALIDATION_POLICY: &str = "/Channel/Orderer/BlockValidation";

/// Why a delivered block is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("channel {channel}: block {number} from the orderer is refused: {detail}")]
pub struct BlockRejected {
    pub channel: String,
    pub number: u64,
    pub detail: String,
}

/// Check a delivered block (see the module docs): `expected` is the number it must have,
/// `previous` the header of the block before it (none for block 0).
pub fn check_block(
    config: &ChannelConfig,
    expected: u64,
    previous: Option<&BlockHeader>,
    block: &Block,
) -> Result<(), BlockRejected> {
    let reject = |detail: String| BlockRejected {
        channel: config.channel_id().to_owned(),
        number: block.header.as_ref().map(|h| h.number).unwrap_or(expected),
        detail,
    };
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| reject("it has no header".into()))?;
    if header.number != expected {
        return Err(reject(format!("the peer expected block {expected}")));
    }
    if let Some(prev) = previous {
        let want = header_hash(prev);
        if header.previous_hash.as_ref() != want.as_slice() {
            return Err(reject(format!(
                "its previous hash {} is not the hash of block {} ({})",
                weft_crypto::hex(&header.previous_hash),
                prev.number,
                weft_crypto::hex(&want)
            )));
        }
    }
    let data = block.data.clone().unwrap_or_default();
    let dh = data_hash(&data);
    if header.data_hash.as_ref() != dh.as_slice() {
        return Err(reject(format!(
            "its data hash {} does not match its data ({})",
            weft_crypto::hex(&header.data_hash),
            weft_crypto::hex(&dh)
        )));
    }
    let md = signatures(block)
        .map_err(|e| reject(format!("its SIGNATURES metadata does not decode: {e}")))?
        .ok_or_else(|| reject("it carries no orderer signatures".into()))?;
    let mut parts: Vec<(Bytes, Vec<u8>, Bytes)> = Vec::with_capacity(md.signatures.len());
    for (i, s) in md.signatures.iter().enumerate() {
        let shdr = SignatureHeader::decode(s.signature_header.clone()).map_err(|e| {
            reject(format!(
                "signature {i}: its signature header does not decode: {e}"
            ))
        })?;
        parts.push((
            shdr.creator,
            signature_message(&md.value, &s.signature_header, header),
            s.signature.clone(),
        ));
    }
    let signed: Vec<SignedData<'_>> = parts
        .iter()
        .map(|(identity, data, signature)| SignedData {
            identity,
            data,
            signature,
        })
        .collect();
    config
        .evaluate_policy_at(
            BLOCK_VALIDATION_POLICY,
            &signed,
            weft_msp::CertTime::Issuance,
        )
        .map_err(|e| {
            reject(format!(
                "its orderer signatures do not satisfy the policy: {e}"
            ))
        })
}

/// The signed `DELIVER_SEEK_INFO` envelope asking for the blocks from `start` to `stop`,
/// waiting for blocks not yet there (`BLOCK_UNTIL_READY`). Under mutual TLS, `tls_cert_hash`
/// is the SHA-256 of the client's TLS certificate (DER), as the deliver service checks.
pub fn seek_envelope(
    signer: &SigningIdentity,
    channel: &str,
    start: SeekType,
    stop: SeekType,
    tls_cert_hash: Option<[u8; 32]>,
) -> Result<Envelope, String> {
    let creator = signer.serialize();
    let nonce = weft_crypto::random_bytes(24).map_err(|e| format!("cannot make a nonce: {e}"))?;
    let tx_id = weft_crypto::hex(&weft_crypto::sha256(&[nonce.as_slice(), &creator].concat()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let chdr = ChannelHeader {
        r#type: HeaderType::DeliverSeekInfo as i32,
        version: 0,
        timestamp: Some(prost_types::Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
        }),
        channel_id: channel.to_owned(),
        tx_id,
        epoch: 0,
        extension: Bytes::new(),
        tls_cert_hash: tls_cert_hash
            .map(|h| Bytes::copy_from_slice(&h))
            .unwrap_or_default(),
    };
    let seek = SeekInfo {
        start: Some(SeekPosition {
            r#type: Some(start),
        }),
        stop: Some(SeekPosition { r#type: Some(stop) }),
        behavior: SeekBehavior::BlockUntilReady as i32,
        error_response: SeekErrorResponse::Strict as i32,
        content_type: SeekContentType::Block as i32,
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: chdr.encode_to_vec().into(),
            signature_header: SignatureHeader {
                creator: creator.into(),
                nonce: nonce.into(),
            }
            .encode_to_vec()
            .into(),
        }),
        data: seek.encode_to_vec().into(),
    }
    .encode_to_vec();
    let signature = signer
        .sign(&payload)
        .map_err(|e| format!("cannot sign the seek request: {e}"))?;
    Ok(Envelope {
        payload: payload.into(),
        signature: signature.into(),
    })
}

/// What a deliver client needs from the peer.
#[derive(Debug, Clone)]
pub struct DeliverSettings {
    /// Signs the seek requests.
    pub signer: Arc<SigningIdentity>,
    /// The peer's TLS client certificate chain and key (PEM); `None`: present no certificate.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
    /// Whether to use TLS toward the orderer.
    pub tls_enabled: bool,
    /// Longest wait between reconnects.
    pub max_backoff: Duration,
}

/// Explain a deliver status.
fn status_reason(channel: &str, endpoint: &str, status: i32) -> String {
    match Status::try_from(status) {
        Ok(Status::Forbidden) => format!(
            "orderer {endpoint} refused to deliver channel {channel}: FORBIDDEN — the peer's identity does not satisfy the channel's Readers policy, or tls_cert_hash does not match the peer's TLS client certificate"
        ),
        Ok(Status::NotFound) => format!(
            "orderer {endpoint} does not serve channel {channel} (NOT_FOUND): is the orderer part of the channel?"
        ),
        Ok(Status::ServiceUnavailable) => format!(
            "orderer {endpoint} cannot deliver channel {channel} right now (SERVICE_UNAVAILABLE)"
        ),
        Ok(Status::BadRequest) => format!(
            "orderer {endpoint} says the peer's seek request for channel {channel} is malformed (BAD_REQUEST)"
        ),
        Ok(s) => format!(
            "orderer {endpoint} ended delivery of channel {channel} with status {}",
            s.as_str_name()
        ),
        Err(_) => format!("orderer {endpoint} ended delivery of channel {channel} with status {status}"),
    }
}

fn tls_client(
    config: &ChannelConfig,
    settings: &DeliverSettings,
) -> Result<Option<TlsClient>, String> {
    if !settings.tls_enabled {
        return Ok(None);
    }
    let roots: Vec<rustls_pki_types::CertificateDer<'static>> = config
        .orderer_tls_roots()
        .into_iter()
        .map(rustls_pki_types::CertificateDer::from)
        .collect();
    if roots.is_empty() {
        return Err(format!(
            "channel {}: the channel config has no orderer TLS root certificates (Orderer org MSPs' tlscacerts)",
            config.channel_id()
        ));
    }
    let identity = match &settings.tls {
        Some((cert, key)) => ClientIdentity::Certificate(
            Identity::from_pem(cert, key, "the peer's TLS client certificate")
                .map_err(|e| e.to_string())?,
        ),
        None => ClientIdentity::Anonymous,
    };
    TlsClient::new(Trust::Roots(roots), identity, Profile::Fabric)
        .map(|c| Some(c.with_settings(Settings::peer())))
        .map_err(|e| {
            format!(
                "channel {}: cannot set up TLS toward the orderers: {e}",
                config.channel_id()
            )
        })
}

/// Pull and commit blocks of `channel` until `stop` turns true.
pub async fn run(
    channel: Arc<Channel>,
    settings: DeliverSettings,
    mut stop: watch::Receiver<bool>,
) {
    let id = channel.id().to_owned();
    let mut backoff = Duration::from_millis(100);
    let mut attempt: usize = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = tokio::select! {
            r = session(&channel, &settings, attempt) => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        match outcome {
            Ok(progressed) => {
                if progressed {
                    backoff = Duration::from_millis(100);
                }
            }
            Err((progressed, e)) => {
                if progressed {
                    backoff = Duration::from_millis(100);
                }
                tracing::warn!(channel = %id, retry_in = ?backoff, "{e}");
            }
        }
        attempt = attempt.wrapping_add(1);
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        backoff = (backoff * 2).min(settings.max_backoff);
    }
    tracing::info!(channel = %id, "deliver client stopped");
}

/// One connection: returns whether any block was committed, and the error that ended it.
async fn session(
    channel: &Arc<Channel>,
    settings: &DeliverSettings,
    attempt: usize,
) -> Result<bool, (bool, String)> {
    let id = channel.id().to_owned();
    let config = channel.config().ok_or_else(|| {
        (
            false,
            format!("channel {id} has no channel config: it cannot pull blocks"),
        )
    })?;
    let endpoints = config.orderer_endpoints();
    if endpoints.is_empty() {
        return Err((
            false,
            format!("channel {id}: the channel config names no orderer endpoints"),
        ));
    }
    let (_, address) = &endpoints[attempt % endpoints.len()];
    let endpoint = Endpoint::parse(address).map_err(|e| {
        (
            false,
            format!("channel {id}: orderer endpoint {address:?}: {e}"),
        )
    })?;
    let tls = tls_client(&config, settings).map_err(|e| (false, e))?;
    let grpc = weft_tls::grpc::channel(tls, endpoint).await.map_err(|e| {
        (
            false,
            format!("channel {id}: cannot reach orderer {address}: {e}"),
        )
    })?;
    let mut client = AtomicBroadcastClient::new(grpc).max_decoding_message_size(256 * 1024 * 1024);

    // A commit that stored its block but not its state (and failed) left the state one block
    // behind: bring it up to the block store before validating anything new.
    crate::committer::recover(channel)
        .await
        .map_err(|e| (false, e.to_string()))?;
    let height = channel.blocks().height();
    let mut previous: Option<BlockHeader> = match height {
        0 => None,
        h => channel
            .blocks()
            .block(h - 1)
            .map_err(|e| {
                (
                    false,
                    format!("channel {id}: cannot read block {}: {e}", h - 1),
                )
            })?
            .and_then(|b| b.header),
    };
    let tls_hash = settings
        .tls
        .as_ref()
        .filter(|_| settings.tls_enabled)
        .and_then(|(cert, _)| weft_crypto::pem::certificates(cert, "TLS client certificate").ok())
        .and_then(|chain| chain.first().map(|c| weft_crypto::sha256(c.as_ref())));
    let seek = seek_envelope(
        &settings.signer,
        &id,
        SeekType::Specified(SeekSpecified { number: height }),
        SeekType::Specified(SeekSpecified { number: u64::MAX }),
        tls_hash,
    )
    .map_err(|e| (false, e))?;
    // Keep the request stream open while blocks flow.
    let (req_tx, req_rx) = tokio::sync::mpsc::channel::<Envelope>(1);
    let _ = req_tx.send(seek).await;
    let mut stream = client
        .deliver(tokio_stream::wrappers::ReceiverStream::new(req_rx))
        .await
        .map_err(|e| {
            (
                false,
                format!("channel {id}: orderer {address} refused the deliver stream: {e}"),
            )
        })?
        .into_inner();
    tracing::info!(channel = %id, orderer = %address, from = height, "pulling blocks");

    let pipeline = Pipeline::start(channel.clone(), |_| {});
    let mut expected = height;
    let mut progressed = false;
    let result: Result<(), String> = loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                break Err(format!(
                    "channel {id}: orderer {address} closed the deliver stream"
                ))
            }
            Err(e) => {
                break Err(format!(
                    "channel {id}: deliver stream from orderer {address} failed: {e}"
                ))
            }
        };
        match msg.r#type {
            Some(DeliverType::Block(block)) => {
                if let Err(e) = check_block(&config, expected, previous.as_ref(), &block) {
                    break Err(e.to_string());
                }
                previous = block.header.clone();
                expected += 1;
                if !pipeline.push(block).await {
                    break Err(format!("channel {id}: the committer stopped"));
                }
                progressed = true;
            }
            Some(DeliverType::Status(s)) => break Err(status_reason(&id, address, s)),
            None => {
                break Err(format!(
                    "channel {id}: orderer {address} sent an empty deliver response"
                ))
            }
        }
    };
    drop(req_tx);
    let committed = pipeline.finish().await;
    match (result, committed) {
        (_, Err(e)) => Err((progressed, format!("channel {id}: commit failed: {e}"))),
        (Err(e), Ok(())) => Err((progressed, e)),
        (Ok(()), Ok(())) => Ok(progressed),
    }
}
