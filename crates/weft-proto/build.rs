//! Compiles weft's .proto files (proto/) with protox, a protobuf compiler in Rust: no system
//! `protoc`, no network.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "common/common.proto",
        "common/configtx.proto",
        "common/policies.proto",
        "common/configuration.proto",
        "msp/msp_principal.proto",
        "msp/identities.proto",
        "msp/msp_config.proto",
        "peer/chaincode.proto",
        "peer/configuration.proto",
        "peer/query.proto",
        "peer/lifecycle/lifecycle.proto",
        "peer/lifecycle/db.proto",
        "peer/lifecycle/chaincode_definition.proto",
        "peer/chaincode_event.proto",
        "peer/chaincode_shim.proto",
        "peer/events.proto",
        "peer/peer.proto",
        "peer/proposal.proto",
        "peer/proposal_response.proto",
        "peer/transaction.proto",
        "ledger/rwset/rwset.proto",
        "ledger/rwset/kvrwset/kv_rwset.proto",
        "ledger/queryresult/kv_query.proto",
        "orderer/ab.proto",
        "orderer/configuration.proto",
        "orderer/etcdraft/configuration.proto",
        "gateway/gateway.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    let mut config = tonic_prost_build::Config::new();
    // Keep received bytes as `Bytes`: signatures cover bytes, so they are hashed and verified
    // as received instead of being copied or re-encoded.
    config.bytes(["."]);
    // Maps encode in key order, so an encoding is deterministic and can be pinned by vectors.
    config.btree_map(["."]);
    // No generated `connect(dst)` constructors: weft builds channels through weft-tls, and the
    // constructor would clash with the `Chaincode.Connect` rpc.
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds_with_config(fds, config)?;
    Ok(())
}
