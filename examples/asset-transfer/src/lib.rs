//! Fabric's asset-transfer-basic chaincode, written on weft-shim.
//!
//! The transactions, their argument order, their results and the asset JSON are those of the
//! `asset-transfer-basic` sample in fabric-samples, so an application written for that sample
//! (its Gateway client, `peer chaincode invoke/query`, ...) runs against this chaincode
//! unchanged:
//!
//! | Transaction | Arguments | Result | Kind |
//! |---|---|---|---|
//! | `InitLedger` | none | none | submit |
//! | `CreateAsset` | id, color, size, owner, appraisedValue | none | submit |
//! | `ReadAsset` | id | the asset (JSON) | evaluate |
//! | `UpdateAsset` | id, color, size, owner, appraisedValue | none | submit |
//! | `DeleteAsset` | id | none | submit |
//! | `AssetExists` | id | `true` or `false` | evaluate |
//! | `TransferAsset` | id, newOwner | the previous owner | submit |
//! | `GetAllAssets` | none | every asset (JSON array, in key order) | evaluate |
//!
//! Failures answer status 500 with a message naming the asset and the problem, using the
//! sample's wording (`the asset asset7 does not exist`), so clients that match on it keep
//! working.

use serde::{Deserialize, Serialize};
use weft_shim::contract::{Contract, Ctx, Json};
use weft_shim::{ChaincodeError, Stub};

/// The contract's name. As with the Go sample's `SmartContract`, functions can be called by
/// their bare name (`ReadAsset`) or qualified (`SmartContract:ReadAsset`).
pub const CONTRACT_NAME: &str = "SmartContract";

/// An asset, stored under its ID as JSON.
///
/// Fields are declared in alphabetical order of their JSON names: serde writes them in
/// declaration order, which gives the same deterministic bytes as the Go sample
/// (`{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}`), so every
/// endorsing peer, whatever language its copy of the chaincode is written in, produces the
/// same write set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Asset {
    #[serde(rename = "AppraisedValue")]
    pub appraised_value: i64,
    #[serde(rename = "Color")]
    pub color: String,
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Owner")]
    pub owner: String,
    #[serde(rename = "Size")]
    pub size: i64,
}

impl Asset {
    fn new(id: &str, color: &str, size: i64, owner: &str, appraised_value: i64) -> Self {
        Asset {
            appraised_value,
            color: color.to_owned(),
            id: id.to_owned(),
            owner: owner.to_owned(),
            size,
        }
    }
}

/// The six assets `InitLedger` writes, as in the sample.
pub fn sample_assets() -> Vec<Asset> {
    vec![
        Asset::new("asset1", "blue", 5, "Tomoko", 300),
        Asset::new("asset2", "red", 5, "Brad", 400),
        Asset::new("asset3", "green", 10, "Jin Soo", 500),
        Asset::new("asset4", "yellow", 10, "Max", 600),
        Asset::new("asset5", "black", 15, "Adriana", 700),
        Asset::new("asset6", "white", 15, "Michel", 800),
    ]
}

/// The asset-transfer-basic contract.
pub fn contract() -> Contract {
    Contract::new(CONTRACT_NAME)
        .submit("InitLedger", init_ledger)
        .submit("CreateAsset", create_asset)
        .evaluate("ReadAsset", read_asset)
        .submit("UpdateAsset", update_asset)
        .submit("DeleteAsset", delete_asset)
        .evaluate("AssetExists", asset_exists)
        .submit("TransferAsset", transfer_asset)
        .evaluate("GetAllAssets", get_all_assets)
}

fn fail(message: String) -> ChaincodeError {
    ChaincodeError::msg(message)
}

fn does_not_exist(id: &str) -> ChaincodeError {
    fail(format!("the asset {id} does not exist"))
}

fn check_id(id: &str) -> Result<(), ChaincodeError> {
    if id.is_empty() {
        return Err(fail("the asset ID must not be empty".into()));
    }
    Ok(())
}

/// The asset stored under `id`, if any.
async fn load(stub: &Stub, id: &str) -> Result<Option<Asset>, ChaincodeError> {
    let Some(bytes) = stub
        .get_state(id)
        .await
        .map_err(|e| fail(format!("failed to read asset {id} from world state: {e}")))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| fail(format!("the value stored under {id} is not an asset: {e}")))
}

async fn store(stub: &Stub, asset: &Asset) -> Result<(), ChaincodeError> {
    let json = serde_json::to_vec(asset)
        .map_err(|e| fail(format!("failed to encode asset {}: {e}", asset.id)))?;
    stub.put_state(&asset.id, json).await.map_err(|e| {
        fail(format!(
            "failed to put asset {} to world state: {e}",
            asset.id
        ))
    })
}

/// Announce a change as a chaincode event named after the transaction (the payload is the
/// asset's JSON), as Fabric's asset-transfer-events sample does; clients receive it through
/// the Gateway's ChaincodeEvents once the transaction commits.
fn announce(stub: &Stub, name: &str, asset: &Asset) -> Result<(), ChaincodeError> {
    let json = serde_json::to_vec(asset)
        .map_err(|e| fail(format!("failed to encode asset {}: {e}", asset.id)))?;
    stub.set_event(name, json)
}

async fn exists(stub: &Stub, id: &str) -> Result<bool, ChaincodeError> {
    let value = stub
        .get_state(id)
        .await
        .map_err(|e| fail(format!("failed to read asset {id} from world state: {e}")))?;
    Ok(value.is_some())
}

/// Write the six sample assets (overwriting any with the same IDs).
async fn init_ledger(ctx: Ctx, (): ()) -> Result<(), ChaincodeError> {
    let assets = sample_assets();
    for asset in &assets {
        store(ctx.stub(), asset).await?;
    }
    tracing::info!(tx = %ctx.stub().tx_id(), count = assets.len(), "ledger initialized with the sample assets");
    Ok(())
}

/// Issue a new asset; fails if the ID is taken.
async fn create_asset(
    ctx: Ctx,
    (id, color, size, owner, appraised_value): (String, String, i64, String, i64),
) -> Result<(), ChaincodeError> {
    check_id(&id)?;
    if exists(ctx.stub(), &id).await? {
        return Err(fail(format!("the asset {id} already exists")));
    }
    let asset = Asset::new(&id, &color, size, &owner, appraised_value);
    store(ctx.stub(), &asset).await?;
    announce(ctx.stub(), "CreateAsset", &asset)?;
    tracing::debug!(tx = %ctx.stub().tx_id(), asset = %id, "asset created");
    Ok(())
}

/// The asset stored under `id`.
async fn read_asset(ctx: Ctx, (id,): (String,)) -> Result<Json<Asset>, ChaincodeError> {
    load(ctx.stub(), &id)
        .await?
        .map(Json)
        .ok_or_else(|| does_not_exist(&id))
}

/// Replace an existing asset with the given fields.
async fn update_asset(
    ctx: Ctx,
    (id, color, size, owner, appraised_value): (String, String, i64, String, i64),
) -> Result<(), ChaincodeError> {
    if !exists(ctx.stub(), &id).await? {
        return Err(does_not_exist(&id));
    }
    let asset = Asset::new(&id, &color, size, &owner, appraised_value);
    store(ctx.stub(), &asset).await?;
    announce(ctx.stub(), "UpdateAsset", &asset)?;
    tracing::debug!(tx = %ctx.stub().tx_id(), asset = %id, "asset updated");
    Ok(())
}

/// Remove an existing asset.
async fn delete_asset(ctx: Ctx, (id,): (String,)) -> Result<(), ChaincodeError> {
    let asset = load(ctx.stub(), &id)
        .await?
        .ok_or_else(|| does_not_exist(&id))?;
    announce(ctx.stub(), "DeleteAsset", &asset)?;
    ctx.stub()
        .del_state(&id)
        .await
        .map_err(|e| fail(format!("failed to delete asset {id} from world state: {e}")))?;
    tracing::debug!(tx = %ctx.stub().tx_id(), asset = %id, "asset deleted");
    Ok(())
}

/// Whether an asset is stored under `id`.
async fn asset_exists(ctx: Ctx, (id,): (String,)) -> Result<bool, ChaincodeError> {
    exists(ctx.stub(), &id).await
}

/// Give the asset a new owner; answers the previous owner.
async fn transfer_asset(
    ctx: Ctx,
    (id, new_owner): (String, String),
) -> Result<String, ChaincodeError> {
    let mut asset = load(ctx.stub(), &id)
        .await?
        .ok_or_else(|| does_not_exist(&id))?;
    let old_owner = std::mem::replace(&mut asset.owner, new_owner);
    store(ctx.stub(), &asset).await?;
    announce(ctx.stub(), "TransferAsset", &asset)?;
    tracing::debug!(tx = %ctx.stub().tx_id(), asset = %id, from = %old_owner, to = %asset.owner, "asset transferred");
    Ok(old_owner)
}

/// Every asset, by an open-ended range query over the chaincode's keys (key order).
async fn get_all_assets(ctx: Ctx, (): ()) -> Result<Json<Vec<Asset>>, ChaincodeError> {
    let results = ctx
        .stub()
        .get_state_by_range("", "")
        .await
        .map_err(|e| fail(format!("failed to query the world state: {e}")))?
        .collect_all()
        .await
        .map_err(|e| fail(format!("failed to read the range of assets: {e}")))?;
    let assets = results
        .iter()
        .map(|kv| {
            serde_json::from_slice::<Asset>(&kv.value).map_err(|e| {
                fail(format!(
                    "the value stored under {} is not an asset: {e}",
                    kv.key
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(assets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_json_has_the_samples_shape() -> Result<(), serde_json::Error> {
        let json = serde_json::to_string(&sample_assets()[0])?;
        assert_eq!(
            json,
            r#"{"AppraisedValue":300,"Color":"blue","ID":"asset1","Owner":"Tomoko","Size":5}"#
        );
        Ok(())
    }

    #[test]
    fn asset_json_from_other_implementations_reads() -> Result<(), serde_json::Error> {
        // Key order does not matter on reading; missing fields read as zero values, as in Go.
        let a: Asset = serde_json::from_str(
            r#"{"ID":"x","Owner":"o","Color":"c","Size":1,"AppraisedValue":2,"docType":"asset"}"#,
        )?;
        assert_eq!(a, Asset::new("x", "c", 1, "o", 2));
        let b: Asset = serde_json::from_str(r#"{"ID":"y"}"#)?;
        assert_eq!(b.id, "y");
        assert_eq!(b.size, 0);
        Ok(())
    }

    #[test]
    fn contract_lists_the_samples_transactions() {
        let meta = contract().metadata();
        let txs = &meta["contracts"][CONTRACT_NAME]["transactions"];
        let mut names: Vec<(String, String, usize)> = txs
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|t| {
                        (
                            t["name"].as_str().unwrap_or_default().to_owned(),
                            t["tag"][0].as_str().unwrap_or_default().to_owned(),
                            t["parameters"].as_array().map_or(0, Vec::len),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let expect = [
            ("AssetExists", "evaluate", 1),
            ("CreateAsset", "submit", 5),
            ("DeleteAsset", "submit", 1),
            ("GetAllAssets", "evaluate", 0),
            ("InitLedger", "submit", 0),
            ("ReadAsset", "evaluate", 1),
            ("TransferAsset", "submit", 2),
            ("UpdateAsset", "submit", 5),
        ];
        let expect: Vec<(String, String, usize)> = expect
            .iter()
            .map(|(n, t, p)| (n.to_string(), t.to_string(), *p))
            .collect();
        assert_eq!(names, expect);
    }
}
