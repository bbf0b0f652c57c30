//! The steps `weft up` takes against running nodes, each one skipped when a resumed network
//! has done it already: the orderer joins the channel (channel participation API, the
//! orderer org's admin), each peer joins it (`cscc JoinChain`, its org's admin), chaincode
//! packages are installed, defined through `_lifecycle` (each org approves, then one commit
//! endorsed by both orgs), and a smoke transaction goes through the Gateway as an org user.

use std::path::Path;
use std::time::{Duration, Instant};

use prost::Message as _;
use weft_msp::msp::SigningIdentity;
use weft_peer::client::Conn;
use weft_proto::lifecycle::{
    chaincode_source, ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeSource,
    CommitChaincodeDefinitionArgs, QueryChaincodeDefinitionArgs,
};
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

use super::state::{NetworkFile, PeerEntry, UserEntry};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A connection as `who` (its TLS client certificate under mutual TLS), trusting `ca`.
pub async fn connect(
    net: &NetworkFile,
    address: &str,
    ca: &Path,
    who: Option<(&Path, &Path)>,
) -> Result<Conn, BoxError> {
    let tls = if net.tls.enabled() {
        let identity = match who {
            Some((cert, key)) if net.tls.mutual() => {
                ClientIdentity::Certificate(Identity::from_pem_files(cert, key, "client TLS")?)
            }
            _ => ClientIdentity::Anonymous,
        };
        let trust = Trust::roots_from_pem_files(&[ca], "TLS CA")?;
        Some(TlsClient::new(trust, identity, Profile::Fabric)?)
    } else {
        None
    };
    let channel = weft_tls::grpc::channel(tls, Endpoint::parse(address)?)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    Ok(Conn {
        address: address.to_owned(),
        channel,
    })
}

fn admin_of<'a>(net: &'a NetworkFile, msp_id: &str) -> Result<&'a UserEntry, BoxError> {
    Ok(net
        .user(msp_id, "Admin@")
        .ok_or_else(|| format!("no admin of {msp_id} in network.json"))?)
}

pub fn signer(u: &UserEntry) -> Result<SigningIdentity, BoxError> {
    Ok(SigningIdentity::from_local_msp_dir(&u.msp_dir, &u.msp_id)?)
}

/// A peer, as `as_user` (TLS client certificate and all).
pub async fn peer_conn(
    net: &NetworkFile,
    peer: &PeerEntry,
    as_user: &UserEntry,
) -> Result<Conn, BoxError> {
    connect(
        net,
        &peer.address,
        &peer.tls_ca,
        Some((&as_user.tls_cert, &as_user.tls_key)),
    )
    .await
}

async fn orderer_conn(net: &NetworkFile, as_user: &UserEntry) -> Result<Conn, BoxError> {
    connect(
        net,
        &net.orderer.address,
        &net.orderer.tls_ca,
        Some((&as_user.tls_cert, &as_user.tls_key)),
    )
    .await
}

/// Join the orderer to the channel unless it serves it already. Answers whether it joined.
pub async fn join_orderer(net: &NetworkFile, block: &[u8]) -> Result<bool, BoxError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let client = weft_orderer::admin_client::AdminClient::new(
        &net.orderer.admin_address,
        &read(&net.orderer.tls_ca)?,
        &read(&net.orderer.admin_tls_cert)?,
        &read(&net.orderer.admin_tls_key)?,
    )?;
    let info = client.info(&net.channel).await?;
    if info.status == 200 {
        return Ok(false);
    }
    let r = client.join(block).await?;
    if r.status != 201 {
        return Err(format!(
            "the orderer's channel participation API ({}) refused to join {}: {} {}",
            net.orderer.admin_address, net.channel, r.status, r.body
        )
        .into());
    }
    Ok(true)
}

async fn cscc(
    net: &NetworkFile,
    peer: &PeerEntry,
    args: &[&[u8]],
) -> Result<bytes::Bytes, BoxError> {
    let admin = admin_of(net, &peer.msp_id)?;
    let conn = peer_conn(net, peer, admin).await?;
    let (proposal, _) = weft_peer::endorser::signed_proposal(
        &signer(admin)?,
        "",
        weft_peer::endorser::CSCC,
        args,
        &[],
    )?;
    let resp = weft_peer::client::endorse(&conn, &proposal).await?;
    Ok(resp.response.unwrap_or_default().payload)
}

/// Join `peer` to the channel unless it has joined. Answers whether it joined.
pub async fn join_peer(
    net: &NetworkFile,
    peer: &PeerEntry,
    block: &[u8],
) -> Result<bool, BoxError> {
    let list = cscc(net, peer, &[b"GetChannels"]).await?;
    let list = weft_proto::protos::ChannelQueryResponse::decode(list)
        .map_err(|e| format!("{}: the channel list does not decode: {e}", peer.address))?;
    if list.channels.iter().any(|c| c.channel_id == net.channel) {
        return Ok(false);
    }
    cscc(net, peer, &[b"JoinChain", block]).await?;
    Ok(true)
}

/// Install a package on a peer as its org's admin, as `peer lifecycle chaincode install`
/// does: a channel-less `_lifecycle` `InstallChaincode` proposal; the peer checks the admin,
/// stores the package and builds it. Answers the package id.
pub async fn install(
    net: &NetworkFile,
    peer: &PeerEntry,
    package: &Path,
) -> Result<String, BoxError> {
    let bytes = std::fs::read(package).map_err(|e| format!("{}: {e}", package.display()))?;
    let admin = admin_of(net, &peer.msp_id)?;
    let conn = peer_conn(net, peer, admin).await?;
    let arg = weft_proto::lifecycle::InstallChaincodeArgs {
        chaincode_install_package: bytes.into(),
    }
    .encode_to_vec();
    let (proposal, _) = weft_peer::endorser::signed_proposal(
        &signer(admin)?,
        "",
        weft_peer::lifecycle::LIFECYCLE,
        &[b"InstallChaincode", &arg],
        &[],
    )?;
    let resp = match weft_peer::client::endorse(&conn, &proposal).await {
        Ok(r) => r,
        // An earlier run installed it but stopped before recording it.
        Err(e) if e.0.contains("already successfully installed") => {
            let bytes =
                std::fs::read(package).map_err(|e| format!("{}: {e}", package.display()))?;
            let parsed = weft_peer::package::ChaincodePackage::parse(&bytes)?;
            return Ok(parsed.package_id().to_owned());
        }
        Err(e) => return Err(e.into()),
    };
    let result = weft_proto::lifecycle::InstallChaincodeResult::decode(
        resp.response.unwrap_or_default().payload,
    )
    .map_err(|e| format!("{}: the install result does not decode: {e}", peer.address))?;
    Ok(result.package_id)
}

/// Whether `name` has a committed definition on the channel (asking org1's peer).
pub async fn is_defined(net: &NetworkFile, name: &str) -> Result<bool, BoxError> {
    let peer = net.peers.first().ok_or("no peers")?;
    let admin = admin_of(net, &peer.msp_id)?;
    let conn = peer_conn(net, peer, admin).await?;
    let arg = QueryChaincodeDefinitionArgs { name: name.into() }.encode_to_vec();
    let (proposal, _) = weft_peer::endorser::signed_proposal(
        &signer(admin)?,
        &net.channel,
        weft_peer::lifecycle::LIFECYCLE,
        &[b"QueryChaincodeDefinition", &arg],
        &[],
    )?;
    Ok(weft_peer::client::endorse(&conn, &proposal).await.is_ok())
}

fn channel_endorsement_policy() -> bytes::Bytes {
    weft_proto::common::ApplicationPolicy {
        r#type: Some(
            weft_proto::common::application_policy::Type::ChannelConfigPolicyReference(
                "/Channel/Application/Endorsement".into(),
            ),
        ),
    }
    .encode_to_vec()
    .into()
}

/// Org `peer.msp_id`'s admin approves sequence 1 of `name` with `package_id`, through its own
/// peer. Answers the block the approval committed in.
pub async fn approve(
    net: &NetworkFile,
    peer: &PeerEntry,
    name: &str,
    package_id: &str,
) -> Result<u64, BoxError> {
    let admin = admin_of(net, &peer.msp_id)?;
    let args = ApproveChaincodeDefinitionForMyOrgArgs {
        sequence: 1,
        name: name.into(),
        version: "1.0".into(),
        endorsement_plugin: "escc".into(),
        validation_plugin: "vscc".into(),
        validation_parameter: channel_endorsement_policy(),
        collections: Default::default(),
        init_required: false,
        source: Some(ChaincodeSource {
            r#type: Some(chaincode_source::Type::LocalPackage(
                chaincode_source::Local {
                    package_id: package_id.into(),
                },
            )),
        }),
    }
    .encode_to_vec();
    let (_, block) = weft_peer::client::submit(
        &[peer_conn(net, peer, admin).await?],
        &orderer_conn(net, admin).await?,
        &signer(admin)?,
        &net.channel,
        weft_peer::lifecycle::LIFECYCLE,
        &[b"ApproveChaincodeDefinitionForMyOrg", &args],
        Some(Duration::from_secs(60)),
    )
    .await
    .map_err(|e| format!("{} approving {name}: {e}", peer.msp_id))?;
    Ok(block.unwrap_or_default())
}

/// Org1's admin commits sequence 1 of `name`, endorsed by every org's peer.
pub async fn commit(net: &NetworkFile, name: &str) -> Result<u64, BoxError> {
    let first = net.peers.first().ok_or("no peers")?;
    let admin = admin_of(net, &first.msp_id)?;
    let args = CommitChaincodeDefinitionArgs {
        sequence: 1,
        name: name.into(),
        version: "1.0".into(),
        endorsement_plugin: "escc".into(),
        validation_plugin: "vscc".into(),
        validation_parameter: channel_endorsement_policy(),
        collections: Default::default(),
        init_required: false,
    }
    .encode_to_vec();
    let mut peers = Vec::new();
    for p in &net.peers {
        peers.push(peer_conn(net, p, admin).await?);
    }
    let (_, block) = weft_peer::client::submit(
        &peers,
        &orderer_conn(net, admin).await?,
        &signer(admin)?,
        &net.channel,
        weft_peer::lifecycle::LIFECYCLE,
        &[b"CommitChaincodeDefinition", &args],
        Some(Duration::from_secs(60)),
    )
    .await
    .map_err(|e| format!("committing the definition of {name}: {e}"))?;
    Ok(block.unwrap_or_default())
}

/// The height of a peer's ledger, read from its block store (read-only, while it runs).
pub fn height(net: &NetworkFile, peer: &PeerEntry) -> Option<u64> {
    let dir = peer
        .fs_path
        .join("ledgersData")
        .join(&net.channel)
        .join("blocks");
    weft_ledger::blockstore::BlockStore::open_read_only(&dir)
        .ok()
        .map(|s| s.height())
}

/// Wait until every peer holds `height` blocks.
pub async fn wait_height(
    net: &NetworkFile,
    at_least: u64,
    limit: Duration,
) -> Result<(), BoxError> {
    let deadline = Instant::now() + limit;
    for p in &net.peers {
        loop {
            let h = height(net, p).unwrap_or(0);
            if h >= at_least {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} has {h} blocks after {limit:?}, not {at_least}: it is not receiving \
                     blocks from the orderer (see its log)",
                    p.name
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(())
}

/// Submit `args` to `chaincode` through `peer`'s Gateway as `user`; answers (tx id, block).
pub async fn invoke(
    net: &NetworkFile,
    peer: &PeerEntry,
    user: &UserEntry,
    chaincode: &str,
    args: &[&str],
) -> Result<(String, u64), BoxError> {
    let conn = peer_conn(net, peer, user).await?;
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    Ok(weft_peer::client::gateway_submit(
        &conn,
        &signer(user)?,
        &net.channel,
        chaincode,
        &args,
        Duration::from_secs(60),
    )
    .await?)
}

/// Evaluate `args` on `chaincode` through `peer`'s Gateway as `user`.
pub async fn query(
    net: &NetworkFile,
    peer: &PeerEntry,
    user: &UserEntry,
    chaincode: &str,
    args: &[&str],
) -> Result<String, BoxError> {
    let conn = peer_conn(net, peer, user).await?;
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    let payload =
        weft_peer::client::gateway_evaluate(&conn, &signer(user)?, &net.channel, chaincode, &args)
            .await?;
    Ok(String::from_utf8_lossy(&payload).into_owned())
}
