//! The chaincode SDK for weft and Fabric peers: a stub API, a contract layer, launched and
//! chaincode-server modes, with TLS built in.
//!
//! A chaincode implements [`Chaincode`] (or builds a [`contract::Contract`]) and starts in one
//! of two modes, speaking the same stream protocol either way:
//!
//! - **Launched** ([`start`]): the peer started this process and told it, through its
//!   environment, where the peer is and which per-launch client certificate to present
//!   (`CORE_CHAINCODE_ID_NAME`, `-peer.address`/`--peer.address` or `CORE_PEER_ADDRESS`,
//!   `CORE_PEER_TLS_ENABLED`, `CORE_TLS_CLIENT_{KEY,CERT}_FILE` or `_PATH`,
//!   `CORE_PEER_TLS_ROOTCERT_FILE`). The chaincode dials the peer, verifies it against that
//!   root and presents the client certificate.
//! - **Server** ([`serve`], chaincode as a service): the chaincode listens; the peer dials it
//!   as `connection.json` says. With `CHAINCODE_CLIENT_CA_CERT` the server requires and
//!   verifies the peer's client certificate (mutual TLS). Plaintext only when
//!   `CHAINCODE_TLS_DISABLED=true`.
//!
//! In both modes the chaincode registers (REGISTER, REGISTERED, READY), then runs many
//! transactions at once; each transaction's requests to the peer are serialized, answers are
//! matched by channel id and transaction id, keepalives are echoed, and a panic in chaincode
//! code becomes an ERROR for that transaction, not a crash.

use std::future::Future;

use bytes::Bytes;

pub mod contract;
mod error;
mod handler;
mod keys;
mod launch;
mod server;
mod stub;
pub mod testing;

pub use error::{ChaincodeError, ShimError};
pub use keys::{create_composite_key, split_composite_key};
pub use launch::{start, start_with, LaunchConfig, LaunchTls};
pub use server::{serve, ChaincodeServer, ServerConfig, ServerTls};
pub use stub::{
    HistoryIterator, PageInfo, QueryIterator, StateIterator, Stub, VALIDATION_PARAMETER,
};
pub use weft_proto::queryresult::{KeyModification, Kv};

/// A chaincode: what runs for `Init` and for every other transaction.
pub trait Chaincode: Send + Sync + 'static {
    /// Called for a transaction the peer marks as initialization.
    fn init(&self, stub: Stub) -> impl Future<Output = Response> + Send;
    /// Called for every other transaction.
    fn invoke(&self, stub: Stub) -> impl Future<Output = Response> + Send;
}

/// A chaincode's answer to a transaction (Fabric's `protos.Response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// 200 for success; 400 and above is an error (Fabric uses 500).
    pub status: i32,
    pub message: String,
    pub payload: Bytes,
}

impl Response {
    pub const OK: i32 = 200;
    pub const ERROR_THRESHOLD: i32 = 400;
    pub const ERROR: i32 = 500;

    /// Status 200 with `payload`.
    pub fn success(payload: impl Into<Bytes>) -> Self {
        Response {
            status: Self::OK,
            message: String::new(),
            payload: payload.into(),
        }
    }

    /// Status 500 with `message`, as Fabric's shims answer a failed transaction.
    pub fn error(message: impl Into<String>) -> Self {
        Response {
            status: Self::ERROR,
            message: message.into(),
            payload: Bytes::new(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status < Self::ERROR_THRESHOLD
    }

    pub(crate) fn to_proto(&self) -> weft_proto::protos::Response {
        weft_proto::protos::Response {
            status: self.status,
            message: self.message.clone(),
            payload: self.payload.clone(),
        }
    }
}
