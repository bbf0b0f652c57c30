//! Pure pieces of the gateway: reading a proposal, judging an endorser's answer as Fabric's
//! gateway does, and assembling the prepared (unsigned) transaction.
//!
//! Bytes that someone signed are carried as received: the proposal's channel and signature
//! headers, each endorser's `ProposalResponsePayload`. The one message rebuilt is the
//! chaincode proposal payload without its transient map, which is what Fabric puts in a
//! transaction and what the endorser hashed into `proposal_hash`.

use bytes::Bytes;
use prost::Message;
use tonic::Code;
use weft_proto::common::{Envelope, Payload};
use weft_proto::protos::{
    ChaincodeAction, ChaincodeActionPayload, ChaincodeEndorsedAction, Endorsement,
    ProposalResponse, ProposalResponsePayload, SignedProposal, Transaction, TransactionAction,
};

use crate::endorser::{unpack, UnpackedProposal};

/// A proposal as the gateway needs it.
#[derive(Debug, Clone)]
pub struct ProposalInfo {
    pub unpacked: UnpackedProposal,
}

impl ProposalInfo {
    pub fn channel_id(&self) -> &str {
        &self.unpacked.channel_header.channel_id
    }
    pub fn tx_id(&self) -> &str {
        &self.unpacked.channel_header.tx_id
    }
    pub fn chaincode(&self) -> &str {
        &self.unpacked.chaincode_name
    }
    pub fn has_transient_data(&self) -> bool {
        self.unpacked.transient_map_len > 0
    }
}

/// Decode and check a signed proposal (headers and tx id, not yet the creator).
pub fn read_proposal(signed: Option<&SignedProposal>) -> Result<ProposalInfo, String> {
    let signed = signed
        .filter(|s| !s.proposal_bytes.is_empty())
        .ok_or("the request carries no signed proposal (proposed_transaction)")?;
    let unpacked =
        unpack(signed).map_err(|e| format!("failed to unpack transaction proposal: {e}"))?;
    Ok(ProposalInfo { unpacked })
}

/// Fabric's reading of a `ProcessProposal` answer: `Ok` for a status in 200..400; otherwise
/// the gRPC code the gateway reports and a message. A 500 without payload comes from the
/// peer itself (`Aborted`); anything else from the chaincode (`Unknown`, "chaincode
/// response <status>, <message>").
pub fn response_status(response: &ProposalResponse) -> Result<(), (Code, String)> {
    let Some(r) = response.response.as_ref() else {
        return Err((
            Code::Aborted,
            "the endorser's answer has no response".to_owned(),
        ));
    };
    if (200..400).contains(&r.status) {
        if response.endorsement.is_none() || response.payload.is_empty() {
            return Err((
                Code::Aborted,
                format!(
                    "the endorser answered status {} without an endorsement",
                    r.status
                ),
            ));
        }
        return Ok(());
    }
    if response.payload.is_empty() && r.status == 500 {
        return Err((Code::Aborted, r.message.clone()));
    }
    Err((
        Code::Unknown,
        format!("chaincode response {}, {}", r.status, r.message),
    ))
}

/// The transaction result of a successful response: the chaincode response payload from the
/// signed `ProposalResponsePayload` (preferred, as Fabric does), else the response's payload.
pub fn result_payload(response: &ProposalResponse) -> Bytes {
    let from_action = ProposalResponsePayload::decode(response.payload.clone())
        .ok()
        .and_then(|prp| ChaincodeAction::decode(prp.extension).ok())
        .and_then(|a| a.response)
        .map(|r| r.payload);
    from_action
        .or_else(|| response.response.as_ref().map(|r| r.payload.clone()))
        .unwrap_or_default()
}

/// Build the transaction for the client to sign: `Envelope{payload: Payload{header,
/// Transaction{[TransactionAction{signature header, ChaincodeActionPayload}]}}}` with no
/// signature. `response_payload` is the agreed `ProposalResponsePayload` bytes.
pub fn prepare_transaction(
    proposal: &ProposalInfo,
    response_payload: Bytes,
    endorsements: Vec<Endorsement>,
) -> Envelope {
    let proposal = &proposal.unpacked;
    let action_payload = ChaincodeActionPayload {
        chaincode_proposal_payload: proposal.payload_without_transient.clone(),
        action: Some(ChaincodeEndorsedAction {
            proposal_response_payload: response_payload,
            endorsements,
        }),
    };
    let tx = Transaction {
        actions: vec![TransactionAction {
            header: proposal.header.signature_header.clone(),
            payload: action_payload.encode_to_vec().into(),
        }],
    };
    let payload = Payload {
        header: Some(proposal.header.clone()),
        data: tx.encode_to_vec().into(),
    };
    Envelope {
        payload: payload.encode_to_vec().into(),
        signature: Bytes::new(),
    }
}

/// Endorsements deduplicated by endorser identity (first one kept).
pub fn unique_endorsements(endorsements: Vec<Endorsement>) -> Vec<Endorsement> {
    let mut out: Vec<Endorsement> = Vec::with_capacity(endorsements.len());
    for e in endorsements {
        if !out.iter().any(|o| o.endorser == e.endorser) {
            out.push(e);
        }
    }
    out
}
