//! Fabric's wire protocol for weft: protobuf messages and gRPC services, wire-compatible with
//! Hyperledger Fabric 2.5.
//!
//! The `.proto` files under `proto/` are written for weft from Fabric's wire facts: package
//! names, message names and field numbers are Fabric's, so bytes produced here are bytes a
//! Fabric peer, orderer, SDK or chaincode reads, and the reverse. `tests/conformance.rs` checks
//! that against reference encodings made by `@hyperledger/fabric-protos`.
//!
//! Modules are protobuf packages: [`common`] (envelopes, headers, blocks, config, policies,
//! MSP principals), [`msp`], [`protos`] (peer: proposals, responses, transactions, the
//! chaincode stream and its services, events), [`rwset`], [`kvrwset`], [`queryresult`],
//! [`orderer`] (atomic broadcast, orderer config values), [`etcdraft`] (Raft consenter
//! metadata) and [`gateway`]. Channel config values live in [`common`] (channel level),
//! [`orderer`], [`protos`] (application: anchor peers, ACLs) and [`msp`] (`FabricMSPConfig`).
//! Every `bytes` field is `bytes::Bytes`.

#![allow(clippy::all, missing_debug_implementations)] // generated code

pub mod common {
    tonic::include_proto!("common");
}
pub mod msp {
    tonic::include_proto!("msp");
}
pub mod protos {
    tonic::include_proto!("protos");
}
pub mod rwset {
    tonic::include_proto!("rwset");
}
pub mod kvrwset {
    tonic::include_proto!("kvrwset");
}
pub mod queryresult {
    tonic::include_proto!("queryresult");
}
pub mod orderer {
    tonic::include_proto!("orderer");
}
pub mod etcdraft {
    tonic::include_proto!("etcdraft");
}
pub mod gateway {
    tonic::include_proto!("gateway");
}
pub mod lifecycle {
    tonic::include_proto!("lifecycle");
}

pub use prost::Message;
