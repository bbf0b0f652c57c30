//! Gateway errors as Fabric's gateway returns them: a gRPC status whose
//! `grpc-status-details-bin` holds a `google.rpc.Status` with one `gateway.ErrorDetail` per
//! node that failed (its address, MSP ID and message). Fabric's client SDKs show these
//! details to the application (`EndorseError.details` and the like).

use bytes::Bytes;
use prost::Message;
use tonic::{Code, Status};
use weft_proto::gateway::ErrorDetail;

/// The type URL of `gateway.ErrorDetail` inside a `google.protobuf.Any`.
pub const ERROR_DETAIL_TYPE_URL: &str = "type.googleapis.com/gateway.ErrorDetail";

/// `google.rpc.Status`, the message carried in `grpc-status-details-bin`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// The detail for one node.
pub fn error_detail(address: &str, msp_id: &str, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        address: address.to_owned(),
        msp_id: msp_id.to_owned(),
        message: message.into(),
    }
}

/// How a failed call to another node reads in an `ErrorDetail`, in the words of Fabric's
/// gateway (grpc-go's error text): `rpc error: code = Unavailable desc = ...`.
pub fn remote_failure(status: &Status) -> String {
    format!(
        "rpc error: code = {:?} desc = {}",
        status.code(),
        status.message()
    )
}

/// A gRPC status with `details` attached the way Fabric attaches them.
pub fn rpc_error(code: Code, message: impl Into<String>, details: &[ErrorDetail]) -> Status {
    let message = message.into();
    if details.is_empty() {
        return Status::new(code, message);
    }
    let body = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: details
            .iter()
            .map(|d| prost_types::Any {
                type_url: ERROR_DETAIL_TYPE_URL.to_owned(),
                value: d.encode_to_vec(),
            })
            .collect(),
    };
    Status::with_details(code, message, Bytes::from(body.encode_to_vec()))
}

/// The `gateway.ErrorDetail`s attached to a status (empty when there are none or they do not
/// decode). For clients and tests.
pub fn error_details(status: &Status) -> Vec<ErrorDetail> {
    let Ok(body) = RpcStatus::decode(status.details()) else {
        return Vec::new();
    };
    body.details
        .iter()
        .filter(|a| a.type_url == ERROR_DETAIL_TYPE_URL)
        .filter_map(|a| ErrorDetail::decode(a.value.as_slice()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn details_round_trip() {
        let d = error_detail("peer0:7051", "Org1MSP", "chaincode response 500, boom");
        let st = rpc_error(Code::Aborted, "failed to endorse", std::slice::from_ref(&d));
        assert_eq!(st.code(), Code::Aborted);
        assert_eq!(error_details(&st), vec![d]);
        assert!(error_details(&Status::internal("x")).is_empty());
    }
}
