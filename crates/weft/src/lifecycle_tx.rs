//! `weft peer lifecycle chaincode approveformyorg | checkcommitreadiness | commit |
//! querycommitted | queryapproved`: calls to the `_lifecycle` system chaincode, with Fabric's
//! flags and environment.
//!
//! Approve and commit are transactions, as in Fabric: the proposal is endorsed by each peer
//! named with `--peerAddresses` (the commit needs enough orgs' peers for the channel's
//! `LifecycleEndorsement` policy), the client signs the transaction and broadcasts it to the
//! orderer (`-o`), then waits (`--waitForEvent`) until the first peer reports it committed,
//! through that peer's Gateway `CommitStatus`. The queries are proposals answered by one peer.
//!
//! Every connection is TLS; a client certificate is presented when one is configured
//! (`CORE_PEER_TLS_CLIENTCERT_FILE`/`_CLIENTKEY_FILE` for peers, `--certfile`/`--keyfile`
//! for the orderer, falling back to the peer ones), so peers and orderers that require mutual
//! TLS accept it.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use prost::Message;
use weft_msp::msp::SigningIdentity;
use weft_proto::common::ApplicationPolicy;
use weft_proto::lifecycle::{
    chaincode_source, ApproveChaincodeDefinitionForMyOrgArgs, ChaincodeSource,
    CheckCommitReadinessArgs, CheckCommitReadinessResult, CommitChaincodeDefinitionArgs,
    QueryApprovedChaincodeDefinitionArgs, QueryApprovedChaincodeDefinitionResult,
    QueryChaincodeDefinitionArgs, QueryChaincodeDefinitionResult, QueryChaincodeDefinitionsResult,
};
use weft_proto::protos::SignedProposal;
use weft_tls::{ClientIdentity, Endpoint, Identity, Profile, TlsClient, Trust};

type BoxError = Box<dyn std::error::Error>;

/// Who signs, and which peers are asked.
#[derive(Debug, Clone, Args)]
pub struct PeerFlags {
    /// Channel name.
    #[arg(short = 'C', long = "channelID")]
    pub channel: String,
    /// Peers to send the proposal to (host:port), repeated; defaults to CORE_PEER_ADDRESS.
    #[arg(long = "peerAddresses")]
    pub peers: Vec<String>,
    /// The TLS CA certificate of each --peerAddresses peer, in the same order; defaults to
    /// CORE_PEER_TLS_ROOTCERT_FILE.
    #[arg(long = "tlsRootCertFiles")]
    pub tls_roots: Vec<PathBuf>,
    /// The signing identity's MSP directory.
    #[arg(long = "mspdir", env = "CORE_PEER_MSPCONFIGPATH")]
    pub msp_dir: PathBuf,
    /// The signing identity's MSP id.
    #[arg(long = "mspid", env = "CORE_PEER_LOCALMSPID")]
    pub msp_id: String,
    /// Name expected in the peers' certificates, if not the host of the address.
    #[arg(long = "servername", env = "CORE_PEER_TLS_SERVERHOSTOVERRIDE")]
    pub server_name: Option<String>,
}

/// Where the transaction goes.
#[derive(Debug, Clone, Args)]
pub struct OrdererFlags {
    /// The orderer (host:port).
    #[arg(short = 'o', long = "orderer", env = "ORDERER_ADDRESS")]
    pub orderer: String,
    /// TLS to the orderer (weft always uses TLS; accepted for Fabric compatibility).
    #[arg(long = "tls", default_value_t = true)]
    pub tls: bool,
    /// The orderer's TLS CA certificate.
    #[arg(long = "cafile", env = "ORDERER_CA")]
    pub cafile: PathBuf,
    /// Client certificate for the orderer (mutual TLS); defaults to the peer client cert.
    #[arg(long = "certfile", requires = "keyfile")]
    pub certfile: Option<PathBuf>,
    /// Its key.
    #[arg(long = "keyfile", requires = "certfile")]
    pub keyfile: Option<PathBuf>,
    /// Accepted for Fabric compatibility: weft presents a client certificate whenever it has one.
    #[arg(long = "clientauth", default_value_t = false)]
    pub clientauth: bool,
    /// Name expected in the orderer's certificate, if not the host of -o.
    #[arg(long = "ordererTLSHostnameOverride")]
    pub orderer_server_name: Option<String>,
    /// Wait until the transaction is committed.
    #[arg(long = "waitForEvent", default_value_t = true, action = clap::ArgAction::Set)]
    pub wait: bool,
    /// How long to wait for the commit.
    #[arg(long = "waitForEventTimeout", default_value = "30s", value_parser = parse_duration)]
    pub wait_timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    weft_configtx::units::parse_go_duration(s)
}

/// The definition, as approveformyorg, checkcommitreadiness and commit take it.
#[derive(Debug, Clone, Args)]
pub struct DefinitionFlags {
    /// Chaincode name.
    #[arg(short = 'n', long = "name")]
    pub name: String,
    /// Chaincode version.
    #[arg(short = 'v', long = "version")]
    pub version: String,
    /// The definition's sequence (1 for the first definition).
    #[arg(long = "sequence")]
    pub sequence: i64,
    /// Endorsement policy in Fabric's DSL, e.g. "AND('Org1MSP.peer','Org2MSP.peer')".
    #[arg(long = "signature-policy", conflicts_with = "channel_config_policy")]
    pub signature_policy: Option<String>,
    /// Endorsement policy as a channel config policy path (default
    /// /Channel/Application/Endorsement).
    #[arg(long = "channel-config-policy")]
    pub channel_config_policy: Option<String>,
    /// Whether Init must be invoked first.
    #[arg(long = "init-required", default_value_t = false)]
    pub init_required: bool,
    /// Endorsement plugin name.
    #[arg(short = 'E', long = "endorsement-plugin", default_value = "escc")]
    pub endorsement_plugin: String,
    /// Validation plugin name.
    #[arg(short = 'V', long = "validation-plugin", default_value = "vscc")]
    pub validation_plugin: String,
    /// Private data collections (not supported by weft yet; refused with a message).
    #[arg(long = "collections-config")]
    pub collections_config: Option<PathBuf>,
}

impl DefinitionFlags {
    fn validation_parameter(&self) -> Result<Bytes, BoxError> {
        let policy = match (&self.signature_policy, &self.channel_config_policy) {
            (Some(dsl), _) => ApplicationPolicy {
                r#type: Some(
                    weft_proto::common::application_policy::Type::SignaturePolicy(
                        weft_msp::policy::parse(dsl)
                            .map_err(|e| format!("--signature-policy {dsl:?}: {e}"))?,
                    ),
                ),
            },
            (None, Some(path)) => ApplicationPolicy {
                r#type: Some(
                    weft_proto::common::application_policy::Type::ChannelConfigPolicyReference(
                        path.clone(),
                    ),
                ),
            },
            (None, None) => ApplicationPolicy {
                r#type: Some(
                    weft_proto::common::application_policy::Type::ChannelConfigPolicyReference(
                        "/Channel/Application/Endorsement".to_owned(),
                    ),
                ),
            },
        };
        Ok(policy.encode_to_vec().into())
    }

    fn check_collections(&self) -> Result<(), BoxError> {
        match &self.collections_config {
            Some(p) => Err(format!(
                "--collections-config {}: private data collections are not supported by weft yet",
                p.display()
            )
            .into()),
            None => Ok(()),
        }
    }
}

/// `-O json` or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

pub(crate) use weft_peer::client::Conn;

pub(crate) fn peer_client_identity() -> Result<ClientIdentity, BoxError> {
    match (
        std::env::var_os("CORE_PEER_TLS_CLIENTCERT_FILE"),
        std::env::var_os("CORE_PEER_TLS_CLIENTKEY_FILE"),
    ) {
        (Some(c), Some(k)) => Ok(ClientIdentity::Certificate(Identity::from_pem_files(
            std::path::Path::new(&c),
            std::path::Path::new(&k),
            "CORE_PEER_TLS_CLIENTCERT_FILE/CORE_PEER_TLS_CLIENTKEY_FILE",
        )?)),
        _ => Ok(ClientIdentity::Anonymous),
    }
}

pub(crate) async fn connect(
    address: &str,
    root: &std::path::Path,
    what: &str,
    identity: ClientIdentity,
    server_name: Option<&str>,
) -> Result<Conn, BoxError> {
    let trust = Trust::roots_from_pem_files(&[root], what)?;
    let client = TlsClient::new(trust, identity, Profile::Fabric)?;
    let mut endpoint = Endpoint::parse(address)?;
    if let Some(name) = server_name {
        endpoint = endpoint.with_server_name(name)?;
    }
    let channel = weft_tls::grpc::channel(Some(client), endpoint)
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    Ok(Conn {
        address: address.to_owned(),
        channel,
    })
}

impl PeerFlags {
    fn targets(&self) -> Result<Vec<(String, PathBuf)>, BoxError> {
        let mut peers = self.peers.clone();
        if peers.is_empty() {
            peers.push(std::env::var("CORE_PEER_ADDRESS").map_err(|_| {
                "no peer: pass --peerAddresses or set CORE_PEER_ADDRESS".to_owned()
            })?);
        }
        let mut roots = self.tls_roots.clone();
        if roots.is_empty() {
            if let Some(r) = std::env::var_os("CORE_PEER_TLS_ROOTCERT_FILE") {
                roots.push(PathBuf::from(r));
            }
        }
        if roots.len() != peers.len() {
            return Err(format!(
                "{} --peerAddresses but {} --tlsRootCertFiles: give one TLS CA file per peer, \
                 in the same order",
                peers.len(),
                roots.len()
            )
            .into());
        }
        Ok(peers.into_iter().zip(roots).collect())
    }

    async fn connect_all(&self) -> Result<Vec<Conn>, BoxError> {
        let mut out = Vec::new();
        for (addr, root) in self.targets()? {
            out.push(
                connect(
                    &addr,
                    &root,
                    "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)",
                    peer_client_identity()?,
                    self.server_name.as_deref(),
                )
                .await?,
            );
        }
        Ok(out)
    }
}

fn lifecycle_proposal(
    signer: &SigningIdentity,
    channel: &str,
    function: &str,
    arg: &[u8],
) -> Result<(SignedProposal, String), BoxError> {
    Ok(weft_peer::endorser::signed_proposal(
        signer,
        channel,
        weft_peer::lifecycle::LIFECYCLE,
        &[function.as_bytes(), arg],
        &[],
    )?)
}

/// Ask one peer; answer the payload.
async fn query(flags: &PeerFlags, function: &str, arg: &[u8]) -> Result<Bytes, BoxError> {
    let signer = SigningIdentity::from_local_msp_dir(&flags.msp_dir, &flags.msp_id)?;
    let conns = flags.connect_all().await?;
    let conn = conns.first().ok_or("no peer to ask")?;
    let (proposal, _) = lifecycle_proposal(&signer, &flags.channel, function, arg)?;
    let resp = weft_peer::client::endorse(conn, &proposal).await?;
    Ok(resp.response.unwrap_or_default().payload)
}

/// Endorse at every peer, order, and wait for the commit.
async fn transact(
    peers: &PeerFlags,
    orderer: &OrdererFlags,
    function: &str,
    arg: &[u8],
) -> Result<String, BoxError> {
    let signer = SigningIdentity::from_local_msp_dir(&peers.msp_dir, &peers.msp_id)?;
    let conns = peers.connect_all().await?;
    let (proposal, tx_id) = lifecycle_proposal(&signer, &peers.channel, function, arg)?;
    let envelope = weft_peer::client::endorse_and_assemble(&conns, &signer, &proposal).await?;
    let identity = match (&orderer.certfile, &orderer.keyfile) {
        (Some(c), Some(k)) => {
            ClientIdentity::Certificate(Identity::from_pem_files(c, k, "--certfile/--keyfile")?)
        }
        _ => peer_client_identity()?,
    };
    let oconn = connect(
        &orderer.orderer,
        &orderer.cafile,
        "--cafile (ORDERER_CA)",
        identity,
        orderer.orderer_server_name.as_deref(),
    )
    .await?;
    weft_peer::client::broadcast(&oconn, envelope).await?;
    tracing::info!(tx_id, orderer = %orderer.orderer, "transaction accepted by the orderer");
    if orderer.wait {
        let conn = conns.first().ok_or("no peer to wait on")?;
        let block = weft_peer::client::wait_committed(
            conn,
            &signer,
            &peers.channel,
            &tx_id,
            orderer.wait_timeout,
        )
        .await
        .map_err(|e| format!("{e} (--waitForEventTimeout)"))?;
        eprintln!(
            "txid [{tx_id}] committed with status (VALID) at {} (block {block})",
            conn.address
        );
    }
    Ok(tx_id)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, BoxError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `approveformyorg`.
pub fn approve(
    peers: PeerFlags,
    orderer: OrdererFlags,
    def: DefinitionFlags,
    package_id: Option<String>,
) -> Result<u8, BoxError> {
    def.check_collections()?;
    let source = match package_id.filter(|p| !p.is_empty()) {
        Some(p) => chaincode_source::Type::LocalPackage(chaincode_source::Local { package_id: p }),
        None => chaincode_source::Type::Unavailable(chaincode_source::Unavailable {}),
    };
    let args = ApproveChaincodeDefinitionForMyOrgArgs {
        sequence: def.sequence,
        name: def.name.clone(),
        version: def.version.clone(),
        endorsement_plugin: def.endorsement_plugin.clone(),
        validation_plugin: def.validation_plugin.clone(),
        validation_parameter: def.validation_parameter()?,
        collections: Bytes::new(),
        init_required: def.init_required,
        source: Some(ChaincodeSource {
            r#type: Some(source),
        }),
    };
    runtime()?.block_on(transact(
        &peers,
        &orderer,
        "ApproveChaincodeDefinitionForMyOrg",
        &args.encode_to_vec(),
    ))?;
    Ok(0)
}

/// `commit`.
pub fn commit(
    peers: PeerFlags,
    orderer: OrdererFlags,
    def: DefinitionFlags,
) -> Result<u8, BoxError> {
    def.check_collections()?;
    let args = CommitChaincodeDefinitionArgs {
        sequence: def.sequence,
        name: def.name.clone(),
        version: def.version.clone(),
        endorsement_plugin: def.endorsement_plugin.clone(),
        validation_plugin: def.validation_plugin.clone(),
        validation_parameter: def.validation_parameter()?,
        collections: Bytes::new(),
        init_required: def.init_required,
    };
    runtime()?.block_on(transact(
        &peers,
        &orderer,
        "CommitChaincodeDefinition",
        &args.encode_to_vec(),
    ))?;
    Ok(0)
}

/// `checkcommitreadiness`.
pub fn check_commit_readiness(
    peers: PeerFlags,
    def: DefinitionFlags,
    output: Output,
) -> Result<u8, BoxError> {
    def.check_collections()?;
    let args = CheckCommitReadinessArgs {
        sequence: def.sequence,
        name: def.name.clone(),
        version: def.version.clone(),
        endorsement_plugin: def.endorsement_plugin.clone(),
        validation_plugin: def.validation_plugin.clone(),
        validation_parameter: def.validation_parameter()?,
        collections: Bytes::new(),
        init_required: def.init_required,
    };
    let bytes =
        runtime()?.block_on(query(&peers, "CheckCommitReadiness", &args.encode_to_vec()))?;
    let r = CheckCommitReadinessResult::decode(bytes)
        .map_err(|e| format!("the peer's CheckCommitReadiness result does not decode: {e}"))?;
    match output {
        Output::Json => {
            let approvals: serde_json::Map<String, serde_json::Value> = r
                .approvals
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::Bool(*v)))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "approvals": approvals }))?
            );
        }
        Output::Text => {
            println!(
                "Chaincode definition for chaincode '{}', version '{}', sequence '{}' on channel '{}' approval status by org:",
                def.name, def.version, def.sequence, peers.channel
            );
            for (org, ok) in &r.approvals {
                println!("{org}: {ok}");
            }
        }
    }
    Ok(0)
}

fn policy_text(bytes: &Bytes) -> String {
    match ApplicationPolicy::decode(bytes.clone())
        .ok()
        .and_then(|p| p.r#type)
    {
        Some(weft_proto::common::application_policy::Type::SignaturePolicy(env)) => {
            weft_msp::policy::to_dsl(&env).unwrap_or_else(|_| "(signature policy)".to_owned())
        }
        Some(weft_proto::common::application_policy::Type::ChannelConfigPolicyReference(p)) => p,
        None => "(none)".to_owned(),
    }
}

/// `querycommitted`.
pub fn query_committed(
    peers: PeerFlags,
    name: Option<String>,
    output: Output,
) -> Result<u8, BoxError> {
    let rt = runtime()?;
    match name {
        Some(name) => {
            let arg = QueryChaincodeDefinitionArgs { name: name.clone() }.encode_to_vec();
            let bytes = rt.block_on(query(&peers, "QueryChaincodeDefinition", &arg))?;
            let r = QueryChaincodeDefinitionResult::decode(bytes)
                .map_err(|e| format!("the peer's answer does not decode: {e}"))?;
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "sequence": r.sequence,
                        "version": r.version,
                        "endorsement_plugin": r.endorsement_plugin,
                        "validation_plugin": r.validation_plugin,
                        "endorsement_policy": policy_text(&r.validation_parameter),
                        "init_required": r.init_required,
                        "approvals": r.approvals,
                    }))?
                ),
                Output::Text => {
                    let approvals: Vec<String> = r
                        .approvals
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect();
                    println!(
                        "Committed chaincode definition for chaincode '{name}' on channel '{}':",
                        peers.channel
                    );
                    println!(
                        "Version: {}, Sequence: {}, Endorsement Plugin: {}, Validation Plugin: {}, Endorsement Policy: {}, Approvals: [{}]",
                        r.version,
                        r.sequence,
                        r.endorsement_plugin,
                        r.validation_plugin,
                        policy_text(&r.validation_parameter),
                        approvals.join(", ")
                    );
                }
            }
        }
        None => {
            let bytes = rt.block_on(query(&peers, "QueryChaincodeDefinitions", &[]))?;
            let r = QueryChaincodeDefinitionsResult::decode(bytes)
                .map_err(|e| format!("the peer's answer does not decode: {e}"))?;
            match output {
                Output::Json => {
                    let list: Vec<serde_json::Value> = r
                        .chaincode_definitions
                        .iter()
                        .map(|d| {
                            serde_json::json!({
                                "name": d.name, "sequence": d.sequence, "version": d.version,
                                "endorsement_plugin": d.endorsement_plugin,
                                "validation_plugin": d.validation_plugin,
                                "endorsement_policy": policy_text(&d.validation_parameter),
                                "init_required": d.init_required,
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &serde_json::json!({ "chaincode_definitions": list })
                        )?
                    );
                }
                Output::Text => {
                    println!(
                        "Committed chaincode definitions on channel '{}':",
                        peers.channel
                    );
                    for d in &r.chaincode_definitions {
                        println!(
                            "Name: {}, Version: {}, Sequence: {}, Endorsement Plugin: {}, Validation Plugin: {}",
                            d.name, d.version, d.sequence, d.endorsement_plugin, d.validation_plugin
                        );
                    }
                }
            }
        }
    }
    Ok(0)
}

/// `queryapproved`.
pub fn query_approved(
    peers: PeerFlags,
    name: String,
    sequence: i64,
    output: Output,
) -> Result<u8, BoxError> {
    let arg = QueryApprovedChaincodeDefinitionArgs {
        name: name.clone(),
        sequence,
    }
    .encode_to_vec();
    let bytes = runtime()?.block_on(query(&peers, "QueryApprovedChaincodeDefinition", &arg))?;
    let r = QueryApprovedChaincodeDefinitionResult::decode(bytes)
        .map_err(|e| format!("the peer's answer does not decode: {e}"))?;
    let package = match r.source.and_then(|s| s.r#type) {
        Some(chaincode_source::Type::LocalPackage(l)) => l.package_id,
        _ => String::new(),
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "sequence": r.sequence, "version": r.version,
                "endorsement_plugin": r.endorsement_plugin,
                "validation_plugin": r.validation_plugin,
                "endorsement_policy": policy_text(&r.validation_parameter),
                "init_required": r.init_required,
                "source": { "package_id": package },
            }))?
        ),
        Output::Text => {
            println!(
                "Approved chaincode definition for chaincode '{name}' on channel '{}':",
                peers.channel
            );
            println!(
                "sequence: {}, version: {}, init-required: {}, package-id: {}, endorsement plugin: {}, validation plugin: {}",
                r.sequence, r.version, r.init_required, package, r.endorsement_plugin, r.validation_plugin
            );
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
        assert!(
            parse_duration("30").is_err(),
            "a number needs a unit, as in Go"
        );
    }
}
