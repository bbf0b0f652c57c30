//! The endorser: `protos.Endorser/ProcessProposal`.
//!
//! A proposal is checked as Fabric checks it — header type ENDORSER_TRANSACTION, epoch 0, a
//! nonce and a creator, `tx_id = hex(sha256(nonce || creator))`, the creator a valid member of
//! one of the channel's MSPs whose signature over the proposal bytes verifies and who satisfies
//! the channel's policy for proposing (the `peer/Propose` ACL, `/Channel/Application/Writers`
//! by default; `_lifecycle/<function>` for the lifecycle), and a tx id
//! that is neither on the ledger nor being endorsed right now — then the chaincode runs on a
//! simulator over the channel's state, and the result is signed by the peer:
//! `ProposalResponsePayload{proposal_hash, ChaincodeAction{rwset, event, response, chaincode}}`
//! with the endorsement signature over `payload || endorser`.
//!
//! Proposals without a channel are the peer-admin calls: `cscc` (join a channel, list
//! channels) and the peer-local `_lifecycle` calls (install, queryinstalled,
//! getinstalledpackage, see [`crate::lifecycle_local`]). Their creator must be an admin of
//! the peer's own organization; they are answered with the response alone, unendorsed.
//!
//! As in Fabric, a proposal that fails is answered with a `ProposalResponse` whose response
//! has status 500 and a message saying why (a gRPC error is kept for transport problems), and
//! a chaincode response with status >= 400 is returned without an endorsement.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use tonic::{Request, Response as GrpcResponse, Status};
use weft_msp::msp::SigningIdentity;
use weft_proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use weft_proto::protos::endorser_server::{Endorser as EndorserRpc, EndorserServer};
use weft_proto::protos::{
    ChaincodeAction, ChaincodeHeaderExtension, ChaincodeId, ChaincodeInvocationSpec,
    ChaincodeProposalPayload, Endorsement, Proposal, ProposalResponse, ProposalResponsePayload,
    Response, SignedProposal,
};

use crate::channel::Channels;
use crate::handler::{SharedSim, TxRequest};
use crate::runtime::ChaincodeRuntime;
use crate::simulator::{QueryLimits, TxSimulator};

/// The configuration system chaincode: peer-admin calls (`JoinChain`, `GetChannels`).
pub const CSCC: &str = "cscc";

/// The version Fabric's endorsers give system chaincodes in an endorsed action.
pub const SYSCC_VERSION: &str = "syscc";

/// What the endorser asks of the peer node for `cscc` calls: joining channels is the node's
/// business (ledgers, deliver clients, TLS roots), and so is its local MSP, which says who
/// the peer's admins are.
pub trait PeerAdmin: Send + Sync + std::fmt::Debug {
    /// Check that `creator` is an admin of the peer's own organization (local MSP) and that
    /// it signed `message` with `signature`.
    fn check_admin(&self, creator: &[u8], message: &[u8], signature: &[u8]) -> Result<(), String>;
    /// Join a channel from its genesis block; answers the channel id.
    fn join_channel(
        &self,
        block: weft_proto::common::Block,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + '_>>;
    /// The peer's installed chaincode packages, for the channel-less `_lifecycle` calls
    /// (`None`: install and the installed-package queries are not served by proposals).
    fn install_store(&self) -> Option<&crate::package::InstallStore> {
        None
    }
    /// Builds a package at install time, as Fabric does (`None`: built at first use only).
    fn package_builder(&self) -> Option<&dyn crate::lifecycle_local::PackageBuilder> {
        None
    }
}

/// The largest proposal (and proposal response) the Endorser service takes: a chaincode
/// package at the install limit (100 MiB, Fabric's default message limit) plus headers.
pub const MAX_PROPOSAL_BYTES: usize = 101 * 1024 * 1024;

/// Responses at or above this status are failures (Fabric's shim `ERRORTHRESHOLD`).
pub const ERROR_THRESHOLD: i32 = 400;

/// A proposal's parts, decoded and checked.
#[derive(Debug, Clone)]
pub struct UnpackedProposal {
    pub channel_header: ChannelHeader,
    pub signature_header: SignatureHeader,
    pub chaincode_name: String,
    pub invocation: ChaincodeInvocationSpec,
    pub transient_map_len: usize,
    /// The proposal's header, with its channel and signature header bytes as signed.
    pub header: Header,
    /// The proposal's `ChaincodeProposalPayload` without its transient map, encoded: what
    /// a transaction carries and what `proposal_hash` covers.
    pub payload_without_transient: Bytes,
    /// `sha256(channel_header || signature_header || payload without transient map)`.
    pub proposal_hash: [u8; 32],
}

/// Why a proposal was not endorsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ProposalError(pub String);

fn bad(msg: impl Into<String>) -> ProposalError {
    ProposalError(msg.into())
}

/// Fabric's default policy for proposals: `peer/Propose` and `_lifecycle`'s channel functions.
const CHANNEL_WRITERS: &str = "/Channel/Application/Writers";

/// The ACL resource (configtx.yaml `ACLs`) a channel proposal's creator must satisfy, with
/// Fabric's default policy: `peer/Propose` for a chaincode, `_lifecycle/<function>` for the
/// lifecycle's channel functions. `None` for approveformyorg and its query, which Fabric
/// reserves to the peer's own admins (checked by the lifecycle itself).
fn proposal_acl(
    chaincode: &str,
    input: &weft_proto::protos::ChaincodeInput,
) -> Option<(String, &'static str)> {
    if chaincode != crate::lifecycle::LIFECYCLE {
        return Some(("peer/Propose".to_owned(), CHANNEL_WRITERS));
    }
    let function = input
        .args
        .first()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .unwrap_or_default();
    match function.as_str() {
        "ApproveChaincodeDefinitionForMyOrg" | "QueryApprovedChaincodeDefinition" => None,
        _ => Some((format!("_lifecycle/{function}"), CHANNEL_WRITERS)),
    }
}

/// Decode a signed proposal and check its headers (not yet the creator).
pub fn unpack(signed: &SignedProposal) -> Result<UnpackedProposal, ProposalError> {
    if signed.proposal_bytes.is_empty() {
        return Err(bad("the signed proposal has no proposal bytes"));
    }
    let proposal = Proposal::decode(signed.proposal_bytes.clone())
        .map_err(|e| bad(format!("malformed proposal: {e}")))?;
    let header = Header::decode(proposal.header.clone())
        .map_err(|e| bad(format!("malformed proposal header: {e}")))?;
    let chdr = ChannelHeader::decode(header.channel_header.clone())
        .map_err(|e| bad(format!("malformed channel header: {e}")))?;
    let shdr = SignatureHeader::decode(header.signature_header.clone())
        .map_err(|e| bad(format!("malformed signature header: {e}")))?;
    if chdr.r#type != HeaderType::EndorserTransaction as i32 {
        let name = HeaderType::try_from(chdr.r#type)
            .map(|t| t.as_str_name().to_owned())
            .unwrap_or_else(|_| chdr.r#type.to_string());
        return Err(bad(format!(
            "invalid header type {name}: proposals must be ENDORSER_TRANSACTION"
        )));
    }
    if chdr.epoch != 0 {
        return Err(bad(format!(
            "invalid epoch in channel header: expected 0, got {}",
            chdr.epoch
        )));
    }
    if shdr.nonce.is_empty() {
        return Err(bad("the signature header has no nonce"));
    }
    if shdr.creator.is_empty() {
        return Err(bad("the signature header has no creator"));
    }
    let expected = {
        let mut h = weft_crypto::Sha256::new();
        h.update(&shdr.nonce);
        h.update(&shdr.creator);
        weft_crypto::hex(&h.finish())
    };
    if chdr.tx_id != expected {
        return Err(bad(format!(
            "incorrectly formed tx id {:?}: it must be hex(sha256(nonce || creator)) = {expected}",
            chdr.tx_id
        )));
    }
    let ext = ChaincodeHeaderExtension::decode(chdr.extension.clone())
        .map_err(|e| bad(format!("malformed chaincode header extension: {e}")))?;
    let chaincode_name = ext.chaincode_id.map(|id| id.name).unwrap_or_default();
    if chaincode_name.is_empty() {
        return Err(bad("the proposal's header names no chaincode"));
    }
    if chdr.channel_id.is_empty()
        && chaincode_name != CSCC
        && chaincode_name != crate::lifecycle::LIFECYCLE
    {
        return Err(bad(
            "the proposal names no channel (only the peer-admin calls of cscc and _lifecycle \
             are channel-less)",
        ));
    }
    let cpp = ChaincodeProposalPayload::decode(proposal.payload.clone())
        .map_err(|e| bad(format!("malformed chaincode proposal payload: {e}")))?;
    let invocation = ChaincodeInvocationSpec::decode(cpp.input.clone())
        .map_err(|e| bad(format!("malformed chaincode invocation spec: {e}")))?;
    let without_transient = ChaincodeProposalPayload {
        input: cpp.input,
        transient_map: Default::default(),
    }
    .encode_to_vec();
    let proposal_hash = {
        let mut h = weft_crypto::Sha256::new();
        h.update(&header.channel_header);
        h.update(&header.signature_header);
        h.update(&without_transient);
        h.finish()
    };
    Ok(UnpackedProposal {
        channel_header: chdr,
        signature_header: shdr,
        chaincode_name,
        invocation,
        transient_map_len: cpp.transient_map.len(),
        header,
        payload_without_transient: without_transient.into(),
        proposal_hash,
    })
}

/// The endorser.
#[derive(Debug)]
pub struct Endorser {
    channels: Arc<Channels>,
    runtime: Arc<ChaincodeRuntime>,
    identity: Arc<SigningIdentity>,
    limits: QueryLimits,
    in_flight: Mutex<HashSet<(String, String)>>,
    admin: std::sync::OnceLock<Arc<dyn PeerAdmin>>,
    /// One install at a time: a package is stored and built before the next one starts.
    install_lock: tokio::sync::Mutex<()>,
    /// The operations metrics (set once at node start).
    metrics: std::sync::OnceLock<Arc<weft_ops::peer::PeerMetrics>>,
}

/// What a proposal was, for its metrics: channel, chaincode, and whether it got as far as
/// running the chaincode.
#[derive(Debug, Default)]
struct Seen {
    channel: String,
    chaincode: String,
    ran: bool,
}

/// Removes a tx id from the in-flight set when its endorsement ends.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<(String, String)>>,
    key: (String, String),
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut set = match self.set.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        set.remove(&self.key);
    }
}

fn failure(status: i32, message: impl Into<String>) -> ProposalResponse {
    ProposalResponse {
        response: Some(Response {
            status,
            message: message.into(),
            payload: Bytes::new(),
        }),
        ..Default::default()
    }
}

/// Count one proposal: received was counted on arrival; here its outcome and duration.
fn record(
    m: &weft_ops::peer::PeerMetrics,
    seen: &Seen,
    result: &Result<ProposalResponse, ProposalError>,
    took: std::time::Duration,
) {
    use weft_ops::peer::flag;
    let status = match result {
        Ok(r) => r.response.as_ref().map_or(500, |r| r.status),
        Err(_) => 500,
    };
    let success = result.is_ok() && status < ERROR_THRESHOLD;
    if success {
        m.successful_proposals.inc();
    } else if seen.ran {
        // The chaincode answered with an error status, or its run failed.
        m.endorsement_failures
            .with(&[&seen.channel, &seen.chaincode, flag(result.is_ok())])
            .inc();
    } else {
        m.proposal_validation_failures.inc();
    }
    m.proposal_duration
        .with(&[&seen.channel, &seen.chaincode, flag(success)])
        .observe_duration(took);
}

impl Endorser {
    pub fn new(
        channels: Arc<Channels>,
        runtime: Arc<ChaincodeRuntime>,
        identity: Arc<SigningIdentity>,
        limits: QueryLimits,
    ) -> Self {
        Endorser {
            channels,
            runtime,
            identity,
            limits,
            in_flight: Mutex::new(HashSet::new()),
            admin: std::sync::OnceLock::new(),
            install_lock: tokio::sync::Mutex::new(()),
            metrics: std::sync::OnceLock::new(),
        }
    }

    /// Count proposals in `metrics` (once; later calls are ignored).
    pub fn set_metrics(&self, metrics: Arc<weft_ops::peer::PeerMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Serve `cscc` calls through `admin` (once; later calls are ignored).
    pub fn set_peer_admin(&self, admin: Arc<dyn PeerAdmin>) {
        let _ = self.admin.set(admin);
    }

    /// `cscc`: `JoinChain` (args: the genesis block) and `GetChannels`, for the peer's admins.
    async fn cscc(
        &self,
        signed: &SignedProposal,
        up: &UnpackedProposal,
    ) -> Result<ProposalResponse, ProposalError> {
        let admin = self.admin.get().ok_or_else(|| {
            bad("this peer does not serve cscc calls (no channel management configured)")
        })?;
        admin
            .check_admin(
                &up.signature_header.creator,
                &signed.proposal_bytes,
                &signed.signature,
            )
            .map_err(|e| bad(format!("access denied for cscc: {e}")))?;
        let input = up
            .invocation
            .chaincode_spec
            .clone()
            .unwrap_or_default()
            .input
            .unwrap_or_default();
        let function = input
            .args
            .first()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        let payload = match function.as_str() {
            "JoinChain" => {
                let bytes = input.args.get(1).cloned().unwrap_or_default();
                if bytes.is_empty() {
                    return Err(bad("cscc JoinChain: the genesis block argument is missing"));
                }
                let block = weft_proto::common::Block::decode(bytes)
                    .map_err(|e| bad(format!("cscc JoinChain: the block does not decode: {e}")))?;
                let id = admin
                    .join_channel(block)
                    .await
                    .map_err(|e| bad(format!("cscc JoinChain: {e}")))?;
                tracing::info!(channel = %id, "joined channel by admin request");
                Bytes::new()
            }
            "GetChannels" => weft_proto::protos::ChannelQueryResponse {
                channels: self
                    .channels
                    .ids()
                    .into_iter()
                    .map(|channel_id| weft_proto::protos::ChannelInfo { channel_id })
                    .collect(),
            }
            .encode_to_vec()
            .into(),
            other => {
                return Err(bad(format!(
                    "cscc has no function {other:?} served by weft (JoinChain, GetChannels)"
                )))
            }
        };
        Ok(ProposalResponse {
            version: 1,
            response: Some(Response {
                status: 200,
                message: String::new(),
                payload,
            }),
            ..Default::default()
        })
    }

    /// The channel-less `_lifecycle` calls (install, queryinstalled, getinstalledpackage),
    /// for the peer's admins. As in Fabric, the answer is the response alone: nothing was
    /// simulated, so there is nothing to endorse.
    async fn lifecycle_local(
        &self,
        signed: &SignedProposal,
        up: &UnpackedProposal,
    ) -> Result<ProposalResponse, ProposalError> {
        let input = up
            .invocation
            .chaincode_spec
            .clone()
            .unwrap_or_default()
            .input
            .unwrap_or_default();
        let function = input
            .args
            .first()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        if function.is_empty() {
            return Err(bad("_lifecycle must be invoked with a function name"));
        }
        if input.args.len() != 2 {
            return Err(bad(format!(
                "_lifecycle {function}: lifecycle operations take exactly two arguments \
                 (the function and its marshalled Args message), got {}",
                input.args.len()
            )));
        }
        let admin = self.admin.get().ok_or_else(|| {
            bad("this peer does not serve peer-admin _lifecycle calls (no local MSP configured)")
        })?;
        admin
            .check_admin(
                &up.signature_header.creator,
                &signed.proposal_bytes,
                &signed.signature,
            )
            .map_err(|e| {
                bad(format!(
                    "access denied for _lifecycle {function}: {e}; these calls need an admin \
                     of the peer's organization (Fabric's local Admins policy): set \
                     CORE_PEER_MSPCONFIGPATH to the org admin's msp directory"
                ))
            })?;
        let store = admin.install_store().ok_or_else(|| {
            bad(format!(
                "_lifecycle {function}: this peer has no install store to serve it"
            ))
        })?;
        let _one_install = if function == "InstallChaincode" {
            Some(self.install_lock.lock().await)
        } else {
            None
        };
        let arg = input.args.get(1).cloned().unwrap_or_default();
        let response = match crate::lifecycle_local::serve(
            store,
            admin.package_builder(),
            &self.channels,
            &function,
            &arg,
        )
        .await
        {
            Ok(payload) => Response {
                status: 200,
                message: String::new(),
                payload,
            },
            Err(e) => {
                tracing::warn!(function = %function, "_lifecycle call refused: {}", e.message);
                Response {
                    status: e.status,
                    message: e.message,
                    payload: Bytes::new(),
                }
            }
        };
        Ok(ProposalResponse {
            version: 1,
            response: Some(response),
            ..Default::default()
        })
    }

    /// Endorse one proposal; failures are responses with status 500.
    pub async fn process(&self, signed: &SignedProposal) -> ProposalResponse {
        match unpack(signed) {
            Ok(up) => self.process_with(signed, Ok(&up)).await,
            Err(e) => self.process_with(signed, Err(e)).await,
        }
    }

    /// [`Endorser::process`] for a proposal its caller already unpacked from `signed` (the
    /// Gateway reads each proposal before endorsing it here).
    pub async fn process_unpacked(
        &self,
        signed: &SignedProposal,
        unpacked: &UnpackedProposal,
    ) -> ProposalResponse {
        self.process_with(signed, Ok(unpacked)).await
    }

    async fn process_with(
        &self,
        signed: &SignedProposal,
        unpacked: Result<&UnpackedProposal, ProposalError>,
    ) -> ProposalResponse {
        let started = std::time::Instant::now();
        let metrics = self.metrics.get();
        if let Some(m) = metrics {
            m.proposals_received.inc();
        }
        let mut seen = Seen::default();
        let result = match unpacked {
            Ok(up) => self.endorse(signed, up, &mut seen).await,
            Err(e) => Err(e),
        };
        if let Some(m) = metrics {
            record(m, &seen, &result, started.elapsed());
        }
        match result {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("proposal refused: {e}");
                failure(500, e.0)
            }
        }
    }

    async fn endorse(
        &self,
        signed: &SignedProposal,
        up: &UnpackedProposal,
        seen: &mut Seen,
    ) -> Result<ProposalResponse, ProposalError> {
        seen.channel = up.channel_header.channel_id.clone();
        seen.chaincode = up.chaincode_name.clone();
        if up.chaincode_name == CSCC {
            return self.cscc(signed, up).await;
        }
        if up.channel_header.channel_id.is_empty() {
            // unpack lets only cscc and _lifecycle through without a channel.
            return self.lifecycle_local(signed, up).await;
        }
        let chdr = &up.channel_header;
        let channel = self.channels.get(&chdr.channel_id).ok_or_else(|| {
            bad(format!(
                "channel {:?} is not served by this peer",
                chdr.channel_id
            ))
        })?;
        // Through the channel's caches: identities validated once, signatures verified once.
        let creator = channel
            .verify_signature(
                &up.signature_header.creator,
                &signed.proposal_bytes,
                &signed.signature,
            )
            .map_err(|e| {
                bad(format!(
                    "access denied: channel {:?}, tx {}: the creator is not accepted: {e}",
                    chdr.channel_id, chdr.tx_id
                ))
            })?;
        let spec = up.invocation.chaincode_spec.clone().unwrap_or_default();
        let input = spec.input.unwrap_or_default();
        if let (Some(config), Some((resource, default))) =
            (channel.config(), proposal_acl(&up.chaincode_name, &input))
        {
            let path = config.acl_policy(&resource, default);
            config
                .evaluate_policy_identities(path, std::slice::from_ref(&creator))
                .map_err(|e| {
                    bad(format!(
                        "access denied: channel {:?}, tx {}: {} ({}) does not satisfy {path}, \
                         the policy of {resource}: {e}",
                        chdr.channel_id, chdr.tx_id, creator.subject, creator.msp_id
                    ))
                })?;
        }
        if channel.is_committed(&chdr.tx_id) {
            return Err(bad(format!(
                "duplicate transaction: tx id {} is already on the ledger of channel {:?}",
                chdr.tx_id, chdr.channel_id
            )));
        }
        let _guard = {
            let key = (chdr.channel_id.clone(), chdr.tx_id.clone());
            let mut set = match self.in_flight.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            if !set.insert(key.clone()) {
                return Err(bad(format!(
                    "duplicate transaction: tx id {} is being endorsed already on channel {:?}",
                    chdr.tx_id, chdr.channel_id
                )));
            }
            InFlight {
                set: &self.in_flight,
                key,
            }
        };
        let view = channel.state().read().await;
        let sim: SharedSim = Arc::new(Mutex::new(TxSimulator::new(
            chdr.tx_id.clone(),
            view,
            self.limits,
        )));
        let req = TxRequest {
            channel_id: chdr.channel_id.clone(),
            txid: chdr.tx_id.clone(),
            chaincode_name: up.chaincode_name.clone(),
            is_init: input.is_init,
            input: input.encode_to_vec().into(),
            signed_proposal: Some(signed.clone()),
        };
        tracing::debug!(channel = %chdr.channel_id, txid = %chdr.tx_id, chaincode = %up.chaincode_name, creator = %creator.subject, "endorsing");
        seen.ran = true;
        let outcome = if up.chaincode_name == crate::lifecycle::LIFECYCLE {
            self.run_lifecycle(&channel, &creator, &input, &sim)?
        } else {
            self.runtime.execute(req, sim.clone()).await.map_err(|e| {
                bad(format!(
                    "error in simulation: transaction {}: {e}",
                    chdr.tx_id
                ))
            })?
        };
        let response = outcome.response;
        if response.status >= ERROR_THRESHOLD {
            return Ok(ProposalResponse {
                response: Some(response),
                ..Default::default()
            });
        }
        let sim = Arc::try_unwrap(sim).map_err(|_| {
            bad(format!(
                "transaction {}: the simulator is still in use by a chaincode call",
                chdr.tx_id
            ))
        })?;
        let sim = sim.into_inner().unwrap_or_else(|p| p.into_inner());
        let results = sim.into_results().encode_to_vec();
        let events = match &outcome.event {
            Some(ev) => {
                if ev.tx_id != chdr.tx_id && !ev.tx_id.is_empty() {
                    return Err(bad(format!(
                        "the chaincode event names tx {} instead of {}",
                        ev.tx_id, chdr.tx_id
                    )));
                }
                ev.encode_to_vec()
            }
            None => Vec::new(),
        };
        let action = ChaincodeAction {
            results: results.into(),
            events: events.into(),
            response: Some(response.clone()),
            // As Fabric's endorser: the definition's version, "syscc" for system chaincodes.
            // Committers refuse an action without a version (INVALID_CHAINCODE).
            chaincode_id: Some(ChaincodeId {
                name: up.chaincode_name.clone(),
                version: if up.chaincode_name == crate::lifecycle::LIFECYCLE {
                    SYSCC_VERSION.to_owned()
                } else {
                    channel.version_of(&up.chaincode_name).unwrap_or_default()
                },
                ..Default::default()
            }),
        };
        let prp = ProposalResponsePayload {
            proposal_hash: Bytes::copy_from_slice(&up.proposal_hash),
            extension: action.encode_to_vec().into(),
        }
        .encode_to_vec();
        let endorser = self.identity.serialize();
        let signed = [prp.as_slice(), endorser.as_slice()].concat();
        let signature = self
            .identity
            .sign(&signed)
            .map_err(|e| bad(format!("the peer could not sign the endorsement: {e}")))?;
        // The validator of this peer will not verify its own endorsement again.
        let public_key = &self.identity.identity().public_key;
        let digest = weft_crypto::sign::MessageDigest::of(public_key.algorithm(), &signed);
        channel
            .signature_cache()
            .insert(public_key, &digest, &signature);
        Ok(ProposalResponse {
            version: 1,
            timestamp: None,
            response: Some(response),
            payload: prp.into(),
            endorsement: Some(Endorsement {
                endorser: endorser.into(),
                signature: signature.into(),
            }),
            interest: None,
        })
    }

    /// Run the `_lifecycle` system chaincode in this process, over the same simulator a
    /// chaincode would use, so its writes are endorsed, ordered and validated like any other.
    fn run_lifecycle(
        &self,
        channel: &crate::channel::Channel,
        creator: &weft_msp::msp::ValidatedIdentity,
        input: &weft_proto::protos::ChaincodeInput,
        sim: &SharedSim,
    ) -> Result<crate::handler::TxOutcome, ProposalError> {
        let orgs: Vec<String> = match channel.config() {
            Some(cfg) => cfg
                .application_orgs()
                .values()
                .map(|o| o.msp_id.clone())
                .collect(),
            None => channel.msps().iter().map(|m| m.id().to_owned()).collect(),
        };
        let ctx = crate::lifecycle::CallContext {
            local_msp: self.identity.msp_id().to_owned(),
            creator_msp: creator.msp_id.clone(),
            creator_is_admin: creator.role == weft_msp::msp::Role::Admin,
            orgs,
        };
        let function = input
            .args
            .first()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default();
        let arg = input.args.get(1).cloned().unwrap_or_default();
        let mut guard = match sim.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let response = match crate::lifecycle::invoke(&mut *guard, &ctx, &function, &arg) {
            Ok(Some(payload)) => Response {
                status: 200,
                message: String::new(),
                payload,
            },
            Ok(None) => Response {
                status: 500,
                message: format!(
                    "_lifecycle {function} is a peer-local call: send it without a channel \
                     (as `peer lifecycle chaincode install|queryinstalled|getinstalledpackage` \
                     do), signed by an admin of the peer's organization"
                ),
                payload: Bytes::new(),
            },
            Err(e) => Response {
                status: 500,
                message: format!("failed to invoke backing implementation of '{function}': {e}"),
                payload: Bytes::new(),
            },
        };
        Ok(crate::handler::TxOutcome {
            response,
            event: None,
        })
    }

    /// The gRPC service. It accepts proposals up to [`MAX_PROPOSAL_BYTES`], so a chaincode
    /// package up to the install limit (100 MiB) can be installed through it.
    pub fn into_service(self: Arc<Self>) -> EndorserServer<EndorserService> {
        EndorserServer::new(EndorserService(self))
            .max_decoding_message_size(MAX_PROPOSAL_BYTES)
            .max_encoding_message_size(MAX_PROPOSAL_BYTES)
    }
}

/// `protos.Endorser` over an [`Endorser`].
#[derive(Debug, Clone)]
pub struct EndorserService(pub Arc<Endorser>);

#[tonic::async_trait]
impl EndorserRpc for EndorserService {
    async fn process_proposal(
        &self,
        request: Request<SignedProposal>,
    ) -> Result<GrpcResponse<ProposalResponse>, Status> {
        let signed = request.into_inner();
        Ok(GrpcResponse::new(self.0.process(&signed).await))
    }
}

/// A signed proposal to invoke `chaincode` on `channel` with `args`, as a Fabric client
/// makes it: a fresh 24-byte nonce, `tx_id = hex(sha256(nonce || creator))`, the creator's
/// signature over the proposal bytes. Returns the proposal and its tx id.
pub fn signed_proposal(
    signer: &SigningIdentity,
    channel: &str,
    chaincode: &str,
    args: &[&[u8]],
    transient: &[(&str, &[u8])],
) -> Result<(SignedProposal, String), weft_msp::Error> {
    use weft_proto::protos::{ChaincodeInput, ChaincodeSpec};
    let creator = signer.serialize();
    let nonce = weft_crypto::random_bytes(24).map_err(|source| weft_msp::Error::Crypto {
        what: "proposal nonce".to_owned(),
        source,
    })?;
    let tx_id = weft_crypto::hex(&weft_crypto::sha256(&[nonce.as_slice(), &creator].concat()));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let chdr = ChannelHeader {
        r#type: HeaderType::EndorserTransaction as i32,
        version: 0,
        timestamp: Some(prost_types::Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
        }),
        channel_id: channel.to_owned(),
        tx_id: tx_id.clone(),
        epoch: 0,
        extension: ChaincodeHeaderExtension {
            chaincode_id: Some(ChaincodeId {
                name: chaincode.to_owned(),
                ..Default::default()
            }),
        }
        .encode_to_vec()
        .into(),
        tls_cert_hash: Bytes::new(),
    };
    let shdr = SignatureHeader {
        creator: creator.into(),
        nonce: nonce.into(),
    };
    let input = ChaincodeInvocationSpec {
        chaincode_spec: Some(ChaincodeSpec {
            r#type: 0,
            chaincode_id: Some(ChaincodeId {
                name: chaincode.to_owned(),
                ..Default::default()
            }),
            input: Some(ChaincodeInput {
                args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
                ..Default::default()
            }),
            timeout: 0,
        }),
    };
    let proposal = Proposal {
        header: Header {
            channel_header: chdr.encode_to_vec().into(),
            signature_header: shdr.encode_to_vec().into(),
        }
        .encode_to_vec()
        .into(),
        payload: ChaincodeProposalPayload {
            input: input.encode_to_vec().into(),
            transient_map: transient
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Bytes::copy_from_slice(v)))
                .collect(),
        }
        .encode_to_vec()
        .into(),
        extension: Bytes::new(),
    };
    let proposal_bytes = proposal.encode_to_vec();
    let signature = signer.sign(&proposal_bytes)?;
    Ok((
        SignedProposal {
            proposal_bytes: proposal_bytes.into(),
            signature: signature.into(),
        },
        tx_id,
    ))
}
