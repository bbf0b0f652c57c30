//! The client side of a transaction, as Fabric's `peer` CLI does it: send one signed proposal
//! to several peers' endorsers, check they agree, assemble and sign the transaction, broadcast
//! it to an orderer, and wait until a peer reports it committed (through the peer's Gateway
//! `CommitStatus`). The `weft` CLI's lifecycle and channel commands, the tests and `weft up`
//! use it; applications use the Gateway instead.

use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use weft_msp::msp::SigningIdentity;
use weft_proto::common::{Envelope, Status};
use weft_proto::gateway::gateway_client::GatewayClient;
use weft_proto::gateway::{CommitStatusRequest, SignedCommitStatusRequest};
use weft_proto::orderer::atomic_broadcast_client::AtomicBroadcastClient;
use weft_proto::protos::endorser_client::EndorserClient;
use weft_proto::protos::{ProposalResponse, SignedProposal, TxValidationCode};

use crate::gateway::prepare::{prepare_transaction, read_proposal, unique_endorsements};

/// A connection to a node, with the address it was dialed at (for messages).
#[derive(Debug, Clone)]
pub struct Conn {
    pub address: String,
    pub channel: tonic::transport::Channel,
}

/// Why a client step failed; the message names the node and what to do.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

fn err(msg: impl Into<String>) -> ClientError {
    ClientError(msg.into())
}

/// A gateway's error with its details (each peer or orderer and what it said).
fn gateway_err(what: String, status: &tonic::Status) -> ClientError {
    let mut msg = format!("{what}: {}", status.message());
    for d in crate::gateway::errors::error_details(status) {
        msg.push_str(&format!(
            "\n  - {} ({}): {}",
            d.address, d.msp_id, d.message
        ));
    }
    ClientError(msg)
}

/// Send `proposal` to one peer; a status >= 400 is an error naming the peer.
pub async fn endorse(
    conn: &Conn,
    proposal: &SignedProposal,
) -> Result<ProposalResponse, ClientError> {
    let resp = EndorserClient::new(conn.channel.clone())
        .process_proposal(proposal.clone())
        .await
        .map_err(|s| {
            err(format!(
                "peer {} refused the proposal: {}",
                conn.address,
                s.message()
            ))
        })?
        .into_inner();
    let r = resp.response.clone().unwrap_or_default();
    if r.status >= 400 {
        return Err(err(format!(
            "peer {} answered status {}: {}",
            conn.address, r.status, r.message
        )));
    }
    Ok(resp)
}

/// Endorse at every peer and assemble the transaction signed by `signer`. The peers must
/// have simulated the same result.
pub async fn endorse_and_assemble(
    peers: &[Conn],
    signer: &SigningIdentity,
    proposal: &SignedProposal,
) -> Result<Envelope, ClientError> {
    let info = read_proposal(Some(proposal)).map_err(err)?;
    let mut payload: Option<(Bytes, &str)> = None;
    let mut endorsements = Vec::new();
    for conn in peers {
        let resp = endorse(conn, proposal).await?;
        match &payload {
            None => payload = Some((resp.payload.clone(), &conn.address)),
            Some((p, first)) if *p != resp.payload => {
                return Err(err(format!(
                    "peer {} simulated a different result than {first}: the peers' world \
                     states differ (is one of them behind?)",
                    conn.address
                )))
            }
            Some(_) => {}
        }
        endorsements.extend(resp.endorsement);
    }
    let (payload, _) = payload.ok_or_else(|| err("no peer to endorse the proposal"))?;
    let unsigned = prepare_transaction(&info, payload, unique_endorsements(endorsements));
    let signature = signer
        .sign(&unsigned.payload)
        .map_err(|e| err(format!("cannot sign the transaction: {e}")))?;
    Ok(Envelope {
        payload: unsigned.payload,
        signature: signature.into(),
    })
}

/// Broadcast one envelope; anything but SUCCESS is an error with the orderer's reason.
pub async fn broadcast(orderer: &Conn, envelope: Envelope) -> Result<(), ClientError> {
    let mut responses = AtomicBroadcastClient::new(orderer.channel.clone())
        .broadcast(tokio_stream::iter([envelope]))
        .await
        .map_err(|s| {
            err(format!(
                "orderer {} refused the stream: {}",
                orderer.address,
                s.message()
            ))
        })?
        .into_inner();
    let first = responses
        .message()
        .await
        .map_err(|s| err(format!("orderer {}: {}", orderer.address, s.message())))?
        .ok_or_else(|| {
            err(format!(
                "orderer {} closed the stream without an answer",
                orderer.address
            ))
        })?;
    if first.status != Status::Success as i32 {
        return Err(err(format!(
            "orderer {} refused the transaction: status {} ({})",
            orderer.address,
            Status::try_from(first.status)
                .map(|s| s.as_str_name())
                .unwrap_or("unknown"),
            first.info
        )));
    }
    Ok(())
}

/// Wait until `peer` reports `tx_id` committed; answers the block number, or an error with
/// the validation code when the transaction was committed invalid.
pub async fn wait_committed(
    peer: &Conn,
    signer: &SigningIdentity,
    channel: &str,
    tx_id: &str,
    timeout: Duration,
) -> Result<u64, ClientError> {
    let request = CommitStatusRequest {
        transaction_id: tx_id.to_owned(),
        channel_id: channel.to_owned(),
        identity: signer.serialize().into(),
    }
    .encode_to_vec();
    let signature = signer
        .sign(&request)
        .map_err(|e| err(format!("cannot sign the commit status request: {e}")))?;
    let mut client = GatewayClient::new(peer.channel.clone());
    let call = client.commit_status(SignedCommitStatusRequest {
        request: request.into(),
        signature: signature.into(),
    });
    let status = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| {
            err(format!(
                "transaction {tx_id} was not committed on peer {} within {timeout:?}",
                peer.address
            ))
        })?
        .map_err(|s| {
            err(format!(
                "peer {}: commit status of {tx_id}: {}",
                peer.address,
                s.message()
            ))
        })?
        .into_inner();
    if status.result != TxValidationCode::Valid as i32 {
        let code = TxValidationCode::try_from(status.result)
            .map(|c| c.as_str_name())
            .unwrap_or("UNKNOWN");
        return Err(err(format!(
            "transaction {tx_id} was committed as invalid on peer {}: {code} (block {})",
            peer.address, status.block_number
        )));
    }
    Ok(status.block_number)
}

/// Endorse at `peers`, order through `orderer`, and (with `wait`) wait for the first peer to
/// commit it. Answers the tx id and, when waited for, the block number.
pub async fn submit(
    peers: &[Conn],
    orderer: &Conn,
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[&[u8]],
    wait: Option<Duration>,
) -> Result<(String, Option<u64>), ClientError> {
    let (proposal, tx_id) = crate::endorser::signed_proposal(signer, channel, chaincode, args, &[])
        .map_err(|e| err(format!("cannot make the proposal: {e}")))?;
    let envelope = endorse_and_assemble(peers, signer, &proposal).await?;
    broadcast(orderer, envelope).await?;
    tracing::debug!(tx_id, orderer = %orderer.address, "transaction accepted by the orderer");
    let block = match (wait, peers.first()) {
        (Some(timeout), Some(peer)) => {
            Some(wait_committed(peer, signer, channel, &tx_id, timeout).await?)
        }
        _ => None,
    };
    Ok((tx_id, block))
}

/// Submit a transaction through a peer's Gateway, as Fabric's client SDKs do: `Endorse`
/// (the gateway gathers the endorsements), sign the prepared transaction, `Submit`, then
/// `CommitStatus`. Answers the tx id and the block it committed in; an invalid commit is an
/// error with its validation code.
pub async fn gateway_submit(
    gateway: &Conn,
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[&[u8]],
    timeout: Duration,
) -> Result<(String, u64), ClientError> {
    let (tx_id, envelope) = gateway_endorse(gateway, signer, channel, chaincode, args).await?;
    gateway_send(gateway, channel, &tx_id, envelope).await?;
    let block = wait_committed(gateway, signer, channel, &tx_id, timeout).await?;
    Ok((tx_id, block))
}

/// The first half of [`gateway_submit`]: the gateway's `Endorse`, then the client's
/// signature on the prepared transaction. Answers the tx id and the signed envelope, ready
/// for [`gateway_send`].
pub async fn gateway_endorse(
    gateway: &Conn,
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[&[u8]],
) -> Result<(String, Envelope), ClientError> {
    use weft_proto::gateway::EndorseRequest;
    let (proposal, tx_id) = crate::endorser::signed_proposal(signer, channel, chaincode, args, &[])
        .map_err(|e| err(format!("cannot make the proposal: {e}")))?;
    let endorsed = GatewayClient::new(gateway.channel.clone())
        .endorse(EndorseRequest {
            transaction_id: tx_id.clone(),
            channel_id: channel.to_owned(),
            proposed_transaction: Some(proposal),
            endorsing_organizations: Vec::new(),
        })
        .await
        .map_err(|s| gateway_err(format!("gateway {}: endorse {tx_id}", gateway.address), &s))?
        .into_inner();
    let prepared = endorsed.prepared_transaction.ok_or_else(|| {
        err(format!(
            "gateway {}: endorse {tx_id} returned no transaction",
            gateway.address
        ))
    })?;
    let signature = signer
        .sign(&prepared.payload)
        .map_err(|e| err(format!("cannot sign the transaction: {e}")))?;
    let envelope = Envelope {
        payload: prepared.payload,
        signature: signature.into(),
    };
    Ok((tx_id, envelope))
}

/// The gateway's `Submit` of a signed transaction: answers once the orderer accepted it.
pub async fn gateway_send(
    gateway: &Conn,
    channel: &str,
    tx_id: &str,
    envelope: Envelope,
) -> Result<(), ClientError> {
    use weft_proto::gateway::SubmitRequest;
    GatewayClient::new(gateway.channel.clone())
        .submit(SubmitRequest {
            transaction_id: tx_id.to_owned(),
            channel_id: channel.to_owned(),
            prepared_transaction: Some(envelope),
        })
        .await
        .map_err(|s| gateway_err(format!("gateway {}: submit {tx_id}", gateway.address), &s))?;
    Ok(())
}

/// Evaluate a transaction through a peer's Gateway (nothing is ordered): the chaincode's
/// payload, or an error with the gateway's message.
pub async fn gateway_evaluate(
    gateway: &Conn,
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[&[u8]],
) -> Result<Bytes, ClientError> {
    use weft_proto::gateway::EvaluateRequest;
    let (proposal, tx_id) = crate::endorser::signed_proposal(signer, channel, chaincode, args, &[])
        .map_err(|e| err(format!("cannot make the proposal: {e}")))?;
    let resp = GatewayClient::new(gateway.channel.clone())
        .evaluate(EvaluateRequest {
            transaction_id: tx_id.clone(),
            channel_id: channel.to_owned(),
            proposed_transaction: Some(proposal),
            target_organizations: Vec::new(),
        })
        .await
        .map_err(|s| gateway_err(format!("gateway {}: evaluate {tx_id}", gateway.address), &s))?
        .into_inner();
    Ok(resp.result.map(|r| r.payload).unwrap_or_default())
}
