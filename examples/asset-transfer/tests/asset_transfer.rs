//! The asset-transfer contract run by `weft_shim::testing::MemoryPeer` over the real chaincode
//! stream protocol, and the built binary's handling of a missing configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use weft_shim::testing::MemoryPeer;
use weft_shim::Response;

const ASSET1: &str =
    r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}"#;

const ALL_SIX: &str = concat!(
    "[",
    r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5},"#,
    r#"{"AppraisedValue":400,"Color":"red","ID":"asset2","Owner":"Brad","Size":5},"#,
    r#"{"AppraisedValue":500,"Color":"green","ID":"asset3","Owner":"Jin Soo","Size":10},"#,
    r#"{"AppraisedValue":600,"Color":"yellow","ID":"asset4","Owner":"Max","Size":10},"#,
    r#"{"AppraisedValue":700,"Color":"black","ID":"asset5","Owner":"Adriana","Size":15},"#,
    r#"{"AppraisedValue":800,"Color":"white","ID":"asset6","Owner":"Michel","Size":15}"#,
    "]"
);

async fn peer() -> MemoryPeer {
    MemoryPeer::start(asset_transfer::contract()).await
}

async fn initialized_peer() -> MemoryPeer {
    let peer = peer().await;
    ok(&peer.invoke(&["InitLedger"]).await);
    peer
}

/// The payload of a successful response, as text.
fn ok(r: &Response) -> String {
    assert_eq!(r.status, 200, "expected success, got: {}", r.message);
    String::from_utf8(r.payload.to_vec()).unwrap()
}

/// The message of a failed response (status 500, as Fabric's shims answer).
fn err(r: &Response) -> String {
    assert_eq!(
        r.status,
        500,
        "expected an error, got payload {:?}",
        String::from_utf8_lossy(&r.payload)
    );
    assert!(r.payload.is_empty());
    r.message.clone()
}

fn state(peer: &MemoryPeer, key: &str) -> Option<String> {
    peer.state(key)
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

// ---- InitLedger and GetAllAssets ----

#[tokio::test]
async fn init_ledger_writes_the_six_sample_assets_in_the_samples_json() {
    let peer = initialized_peer().await;
    assert_eq!(peer.registered_as(), MemoryPeer::CHAINCODE);
    let world = peer.world_state();
    assert_eq!(
        world.keys().collect::<Vec<_>>(),
        ["asset1", "asset2", "asset3", "asset4", "asset5", "asset6"]
    );
    assert_eq!(state(&peer, "asset1").as_deref(), Some(ASSET1));
    assert_eq!(
        state(&peer, "asset3").as_deref(),
        Some(r#"{"AppraisedValue":500,"Color":"green","ID":"asset3","Owner":"Jin Soo","Size":10}"#)
    );
}

#[tokio::test]
async fn get_all_assets_after_init_ledger_returns_six_sorted_assets() {
    let peer = initialized_peer().await;
    let all = ok(&peer.query(&["GetAllAssets"]).await);
    assert_eq!(all, ALL_SIX);
    let parsed: Vec<asset_transfer::Asset> = serde_json::from_str(&all).unwrap();
    assert_eq!(parsed, asset_transfer::sample_assets());
}

#[tokio::test]
async fn init_ledger_also_runs_as_the_init_transaction() {
    // A chaincode defined with --init-required gets INIT; the contract dispatches it by name.
    let peer = peer().await;
    ok(&peer.init(&["InitLedger"]).await);
    assert_eq!(ok(&peer.query(&["GetAllAssets"]).await), ALL_SIX);
}

#[tokio::test]
async fn get_all_assets_of_an_empty_ledger_is_an_empty_array() {
    let peer = peer().await;
    assert_eq!(ok(&peer.query(&["GetAllAssets"]).await), "[]");
}

#[tokio::test]
async fn get_all_assets_reads_past_the_first_batch_of_results() {
    // The peer answers a range query 100 results at a time; the rest come by QUERY_STATE_NEXT.
    let peer = peer().await;
    for i in 0..250 {
        let id = format!("asset{i:03}");
        let json =
            format!(r#"{{"AppraisedValue":{i},"Color":"c","ID":"{id}","Owner":"o","Size":1}}"#);
        peer.put_state(&id, json);
    }
    let all: Vec<asset_transfer::Asset> =
        serde_json::from_str(&ok(&peer.query(&["GetAllAssets"]).await)).unwrap();
    assert_eq!(all.len(), 250);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "key order");
    assert_eq!(all[249].appraised_value, 249);
}

#[tokio::test]
async fn get_all_assets_names_a_key_that_does_not_hold_an_asset() {
    let peer = initialized_peer().await;
    peer.put_state("config", "not json");
    let message = err(&peer.query(&["GetAllAssets"]).await);
    assert!(message.contains("config"), "{message}");
    assert!(message.contains("not an asset"), "{message}");
}

// ---- CreateAsset ----

#[tokio::test]
async fn create_asset_stores_the_samples_json() {
    let peer = peer().await;
    let r = peer
        .invoke(&["CreateAsset", "asset7", "purple", "20", "Ana", "900"])
        .await;
    assert_eq!(ok(&r), "");
    assert_eq!(
        state(&peer, "asset7").as_deref(),
        Some(r#"{"AppraisedValue":900,"Color":"purple","ID":"asset7","Owner":"Ana","Size":20}"#)
    );
}

#[tokio::test]
async fn create_asset_twice_fails_and_keeps_the_first() {
    let peer = initialized_peer().await;
    let message = err(&peer
        .invoke(&["CreateAsset", "asset1", "red", "1", "Mallory", "1"])
        .await);
    assert_eq!(message, "the asset asset1 already exists");
    assert_eq!(state(&peer, "asset1").as_deref(), Some(ASSET1));
}

#[tokio::test]
async fn create_asset_checks_its_arguments() {
    let peer = peer().await;
    let message = err(&peer
        .invoke(&["CreateAsset", "asset7", "blue", "five", "Tomoko", "300"])
        .await);
    assert!(message.contains("CreateAsset"), "{message}");
    assert!(message.contains("argument 3"), "{message}");
    let message = err(&peer.invoke(&["CreateAsset", "asset7", "blue"]).await);
    assert!(
        message.contains("expects 5 argument(s), got 2"),
        "{message}"
    );
    let message = err(&peer
        .invoke(&["CreateAsset", "", "blue", "5", "Tomoko", "300"])
        .await);
    assert!(message.contains("must not be empty"), "{message}");
    assert!(peer.world_state().is_empty());
}

// ---- ReadAsset ----

#[tokio::test]
async fn read_asset_returns_exactly_the_samples_json() {
    let peer = initialized_peer().await;
    assert_eq!(ok(&peer.query(&["ReadAsset", "asset1"]).await), ASSET1);
    // Qualified with the contract name, as the Go sample's contract accepts it.
    assert_eq!(
        ok(&peer.query(&["SmartContract:ReadAsset", "asset1"]).await),
        ASSET1
    );
}

#[tokio::test]
async fn read_asset_of_a_missing_asset_fails() {
    let peer = initialized_peer().await;
    assert_eq!(
        err(&peer.query(&["ReadAsset", "asset99"]).await),
        "the asset asset99 does not exist"
    );
}

#[tokio::test]
async fn read_asset_normalizes_json_written_by_other_implementations() {
    // Other language versions of the sample may write keys in another order.
    let peer = peer().await;
    peer.put_state(
        "asset1",
        r#"{"ID":"asset1","Color":"blue","Size":5,"Owner":"Tomoko","AppraisedValue":300}"#,
    );
    assert_eq!(ok(&peer.query(&["ReadAsset", "asset1"]).await), ASSET1);
}

// ---- UpdateAsset ----

#[tokio::test]
async fn update_asset_replaces_every_field() {
    let peer = initialized_peer().await;
    let r = peer
        .invoke(&["UpdateAsset", "asset1", "orange", "7", "Sam", "350"])
        .await;
    assert_eq!(ok(&r), "");
    assert_eq!(
        ok(&peer.query(&["ReadAsset", "asset1"]).await),
        r#"{"AppraisedValue":350,"Color":"orange","ID":"asset1","Owner":"Sam","Size":7}"#
    );
}

#[tokio::test]
async fn update_asset_of_a_missing_asset_fails_and_creates_nothing() {
    let peer = initialized_peer().await;
    assert_eq!(
        err(&peer
            .invoke(&["UpdateAsset", "asset99", "orange", "7", "Sam", "350"])
            .await),
        "the asset asset99 does not exist"
    );
    assert_eq!(state(&peer, "asset99"), None);
}

// ---- DeleteAsset and AssetExists ----

#[tokio::test]
async fn delete_asset_removes_it() {
    let peer = initialized_peer().await;
    assert_eq!(ok(&peer.query(&["AssetExists", "asset2"]).await), "true");
    assert_eq!(ok(&peer.invoke(&["DeleteAsset", "asset2"]).await), "");
    assert_eq!(state(&peer, "asset2"), None);
    assert_eq!(ok(&peer.query(&["AssetExists", "asset2"]).await), "false");
    let all: Vec<asset_transfer::Asset> =
        serde_json::from_str(&ok(&peer.query(&["GetAllAssets"]).await)).unwrap();
    assert_eq!(
        all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["asset1", "asset3", "asset4", "asset5", "asset6"]
    );
}

#[tokio::test]
async fn delete_asset_of_a_missing_asset_fails() {
    let peer = initialized_peer().await;
    assert_eq!(
        err(&peer.invoke(&["DeleteAsset", "asset99"]).await),
        "the asset asset99 does not exist"
    );
    assert_eq!(peer.world_state().len(), 6);
}

#[tokio::test]
async fn asset_exists_answers_true_or_false() {
    let peer = initialized_peer().await;
    assert_eq!(ok(&peer.query(&["AssetExists", "asset6"]).await), "true");
    assert_eq!(ok(&peer.query(&["AssetExists", "asset7"]).await), "false");
}

// ---- TransferAsset ----

#[tokio::test]
async fn transfer_asset_returns_the_old_owner_and_changes_only_the_owner() {
    let peer = initialized_peer().await;
    assert_eq!(
        ok(&peer
            .invoke(&["TransferAsset", "asset1", "Christopher"])
            .await),
        "Tomoko"
    );
    assert_eq!(
        state(&peer, "asset1").as_deref(),
        Some(
            r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Christopher","Size":5}"#
        )
    );
    assert_eq!(
        ok(&peer.invoke(&["TransferAsset", "asset1", "Tomoko"]).await),
        "Christopher"
    );
}

#[tokio::test]
async fn transfer_asset_of_a_missing_asset_fails() {
    let peer = initialized_peer().await;
    assert_eq!(
        err(&peer
            .invoke(&["TransferAsset", "asset99", "Christopher"])
            .await),
        "the asset asset99 does not exist"
    );
    assert_eq!(state(&peer, "asset99"), None);
}

// ---- the contract as a whole ----

#[tokio::test]
async fn evaluating_a_submit_function_commits_nothing() {
    let peer = initialized_peer().await;
    ok(&peer
        .query(&["TransferAsset", "asset1", "Christopher"])
        .await);
    assert_eq!(state(&peer, "asset1").as_deref(), Some(ASSET1));
}

#[tokio::test]
async fn unknown_functions_fail_naming_the_known_ones() {
    let peer = peer().await;
    let message = err(&peer.invoke(&["BurnAsset", "asset1"]).await);
    assert!(message.contains("BurnAsset"), "{message}");
    assert!(message.contains("TransferAsset"), "{message}");
}

#[tokio::test]
async fn metadata_marks_the_read_only_functions_evaluate() {
    let peer = peer().await;
    let meta: serde_json::Value = serde_json::from_str(&ok(&peer
        .query(&["org.hyperledger.fabric:GetMetadata"])
        .await))
    .unwrap();
    let txs = meta["contracts"]["SmartContract"]["transactions"]
        .as_array()
        .unwrap();
    let tag = |name: &str| {
        txs.iter().find(|t| t["name"] == name).unwrap()["tag"][0]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for name in ["ReadAsset", "AssetExists", "GetAllAssets"] {
        assert_eq!(tag(name), "evaluate", "{name}");
    }
    for name in [
        "InitLedger",
        "CreateAsset",
        "UpdateAsset",
        "DeleteAsset",
        "TransferAsset",
    ] {
        assert_eq!(tag(name), "submit", "{name}");
    }
}

// ---- the binary ----

fn run_binary(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_asset-transfer"));
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run asset-transfer")
}

#[test]
fn binary_without_environment_names_core_chaincode_id_name() {
    let out = run_binary(&[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited successfully: {stderr}");
    assert!(stderr.contains("CORE_CHAINCODE_ID_NAME"), "{stderr}");
}

#[test]
fn binary_in_server_mode_without_tls_material_names_chaincode_tls_cert() {
    let out = run_binary(
        &[],
        &[
            ("CHAINCODE_SERVER_ADDRESS", "127.0.0.1:0"),
            ("CHAINCODE_ID", "basic_1.0:0000"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited successfully: {stderr}");
    assert!(stderr.contains("CHAINCODE_TLS_CERT"), "{stderr}");

    // The same through the flags.
    let out = run_binary(
        &[
            "--chaincode-address=127.0.0.1:0",
            "--chaincode-id",
            "basic_1.0:0000",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited successfully: {stderr}");
    assert!(stderr.contains("CHAINCODE_TLS_CERT"), "{stderr}");
}

#[test]
fn binary_help_describes_both_modes() {
    let out = run_binary(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for name in [
        "CORE_CHAINCODE_ID_NAME",
        "CORE_PEER_TLS_ROOTCERT_FILE",
        "CHAINCODE_SERVER_ADDRESS",
        "CHAINCODE_TLS_CERT",
        "CHAINCODE_CLIENT_CA_CERT",
        "CHAINCODE_TLS_DISABLED",
    ] {
        assert!(help.contains(name), "--help does not mention {name}");
    }
}
