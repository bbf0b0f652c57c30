//! The Fabric Gateway service (`gateway.Gateway`), as `@hyperledger/fabric-gateway` clients
//! use it:
//!
//! - `Evaluate`: run a proposal on this peer (or, when the client targets other
//!   organizations only, on one of their peers) and return the chaincode's response;
//! - `Endorse`: endorse on this peer, then gather endorsements from other organizations'
//!   peers until the chaincode's endorsement policy is satisfied, check that every endorser
//!   produced the same response payload, and return the prepared transaction (unsigned: the
//!   client signs it);
//! - `Submit`: send the client-signed transaction to an orderer of the channel (trying the
//!   next on failure);
//! - `CommitStatus`: a signed request (channel Readers) answered when the transaction
//!   commits, from [`crate::commit_events`] and the block store;
//! - `ChaincodeEvents`: a signed request (channel Readers) answered with a stream of the
//!   chaincode's events (see [`events`]).
//!
//! Failures are gRPC statuses with `gateway.ErrorDetail`s naming each node that failed
//! ([`errors`]). Other peers come from the configured list ([`GatewayOptions::peers`]) and the
//! channel config's anchor peers; orderers from the channel config's orderer endpoints. Both
//! are dialed once and the connection kept ([`remote`]).
//!
//! Modules: [`prepare`] (pure: proposal reading, response judging, the prepared
//! transaction), [`policy`] (endorsement policy over gathered endorsements), [`submit`]
//! (orderers, BFT quorum), [`access`] (signed read requests, shared with Deliver),
//! [`events`], [`errors`], [`remote`], [`join`].
//!
//! Configuration (core.yaml): `peer.gateway.enabled` (the caller serves the service or not),
//! `peer.gateway.endorsementTimeout` (30s), `peer.gateway.broadcastTimeout` (30s),
//! `peer.gateway.dialTimeout` (2m) -> [`GatewayOptions`].

pub mod access;
pub mod errors;
pub mod events;
pub mod join;
pub mod policy;
pub mod prepare;
pub mod remote;
pub mod streams;
pub mod submit;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Response, Status};
use weft_msp::msp::ValidatedIdentity;
use weft_proto::gateway::gateway_server::{Gateway as GatewayRpc, GatewayServer};
use weft_proto::gateway::{
    ChaincodeEventsRequest, ChaincodeEventsResponse, CommitStatusRequest, CommitStatusResponse,
    EndorseRequest, EndorseResponse, ErrorDetail, EvaluateRequest, EvaluateResponse,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest, SubmitResponse,
};
use weft_proto::protos::endorser_client::EndorserClient;
use weft_proto::protos::{ProposalResponse, SignedProposal};

use crate::channel::{Channel, Channels};
use crate::endorser::Endorser;
use crate::sync::lock;
use errors::{error_detail, rpc_error};
use join::futures_join_all;
use policy::{check_policy, endorser_name, org_tls_roots, policy_met, Endorsed};
use prepare::{prepare_transaction, read_proposal, response_status, ProposalInfo};
pub use remote::Dialing;
use remote::{Connections, Target};

/// Gateway settings, with Fabric's defaults.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    /// `peer.gateway.endorsementTimeout`: the longest one endorsement may take.
    pub endorsement_timeout: Duration,
    /// `peer.gateway.broadcastTimeout`: the longest one orderer may take to accept a
    /// transaction.
    pub broadcast_timeout: Duration,
    /// `peer.gateway.dialTimeout`: the longest a connection to another node may take.
    pub dial_timeout: Duration,
    /// Other peers known to this gateway (besides the channel config's anchor peers).
    pub peers: Vec<RemoteNode>,
    /// Orderers to use for channels whose config names none (channels from a channel file).
    pub orderers: Vec<RemoteNode>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            endorsement_timeout: Duration::from_secs(30),
            broadcast_timeout: Duration::from_secs(30),
            dial_timeout: Duration::from_secs(120),
            peers: Vec::new(),
            orderers: Vec::new(),
        }
    }
}

/// Another node: its address (`host:port`), its organization's MSP ID, and optionally the
/// name its TLS certificate carries when it differs from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNode {
    pub address: String,
    pub msp_id: String,
    pub server_name: Option<String>,
}

/// This peer as the gateway reports it in error details.
#[derive(Debug, Clone)]
pub struct LocalPeer {
    /// `peer.address` (what clients and other peers dial).
    pub address: String,
    /// `peer.localMspId`.
    pub msp_id: String,
}

/// The gateway of one peer.
#[derive(Debug)]
pub struct Gateway {
    channels: Arc<Channels>,
    endorser: Arc<Endorser>,
    local: LocalPeer,
    opts: GatewayOptions,
    connections: Arc<Connections>,
    /// Kept Broadcast streams to the orderers.
    broadcasts: streams::BroadcastStreams,
    /// Rotates the first orderer tried.
    next_orderer: AtomicUsize,
    /// The operations metrics (set once at node start).
    metrics: std::sync::OnceLock<Arc<weft_ops::peer::PeerMetrics>>,
    /// [`Gateway::remote_peers`] by channel, with the config and MSPs they were built from.
    remote: std::sync::Mutex<HashMap<String, RemotePeers>>,
}

/// The other orgs' peers of one channel, as of one channel config.
#[derive(Debug, Clone)]
struct RemotePeers {
    config: Option<Arc<weft_configtx::ChannelConfig>>,
    msps: Arc<weft_msp::msp::MspManager>,
    by_org: Arc<BTreeMap<String, Vec<Target>>>,
}

impl Gateway {
    pub fn new(
        channels: Arc<Channels>,
        endorser: Arc<Endorser>,
        local: LocalPeer,
        dialing: Dialing,
        opts: GatewayOptions,
    ) -> Self {
        let connections = Arc::new(Connections::new(dialing, opts.dial_timeout));
        Gateway {
            channels,
            endorser,
            local,
            opts,
            connections,
            broadcasts: streams::BroadcastStreams::default(),
            next_orderer: AtomicUsize::new(0),
            metrics: std::sync::OnceLock::new(),
            remote: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Count requests in `metrics` (once; later calls are ignored).
    pub fn set_metrics(&self, metrics: Arc<weft_ops::peer::PeerMetrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Run one request of `method`, counting it (`gateway_requests_*`).
    async fn measured<T>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let Some(m) = self.metrics.get() else {
            return call.await;
        };
        m.gateway_requests_received.with(&[method]).inc();
        let started = std::time::Instant::now();
        let result = call.await;
        let success = weft_ops::peer::flag(result.is_ok());
        m.gateway_requests_completed.with(&[method, success]).inc();
        m.gateway_requests_duration
            .with(&[method, success])
            .observe_duration(started.elapsed());
        result
    }

    /// The gRPC service.
    pub fn into_service(self: Arc<Self>) -> GatewayServer<GatewayService> {
        GatewayServer::new(GatewayService(self))
    }

    fn channel(&self, id: &str) -> Result<Arc<Channel>, Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("the request names no channel"));
        }
        self.channels.get(id).ok_or_else(|| {
            Status::not_found(format!(
                "channel {id:?} is not served by the gateway peer {} ({}); join the peer to it or use a peer of the channel",
                self.local.address, self.local.msp_id
            ))
        })
    }

    fn local_detail(&self, message: impl Into<String>) -> ErrorDetail {
        error_detail(&self.local.address, &self.local.msp_id, message)
    }

    /// The peers of other organizations that may endorse on `channel`, by MSP ID: the
    /// configured peers and the channel's anchor peers, this peer excluded.
    /// Built once per channel config (every endorsement asks), so an update of the anchor
    /// peers or of an org's TLS roots takes effect with the config block that carries it.
    pub fn remote_peers(&self, channel: &Channel) -> Arc<BTreeMap<String, Vec<Target>>> {
        let config = channel.config();
        let msps = channel.msps();
        let current = |r: &RemotePeers| {
            Arc::ptr_eq(&r.msps, &msps)
                && match (&r.config, &config) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                }
        };
        if let Some(r) = lock(&self.remote).get(channel.id()).filter(|r| current(r)) {
            return r.by_org.clone();
        }
        let by_org = Arc::new(self.find_remote_peers(channel));
        lock(&self.remote).insert(
            channel.id().to_owned(),
            RemotePeers {
                config,
                msps,
                by_org: by_org.clone(),
            },
        );
        by_org
    }

    fn find_remote_peers(&self, channel: &Channel) -> BTreeMap<String, Vec<Target>> {
        let mut by_org: BTreeMap<String, Vec<Target>> = BTreeMap::new();
        let mut add = |address: String, msp_id: String, server_name: Option<String>| {
            if address == self.local.address {
                return;
            }
            let list = by_org.entry(msp_id.clone()).or_default();
            if list.iter().any(|t| t.address == address) {
                return;
            }
            let roots = org_tls_roots(channel, &msp_id);
            list.push(Target {
                address,
                msp_id,
                server_name,
                roots,
            });
        };
        for p in &self.opts.peers {
            add(p.address.clone(), p.msp_id.clone(), p.server_name.clone());
        }
        if let Some(config) = channel.config() {
            for org in config.application_orgs().values() {
                for (host, port) in &org.anchor_peers {
                    add(format!("{host}:{port}"), org.msp_id.clone(), None);
                }
            }
        }
        by_org
    }

    /// Endorse on this peer, within the endorsement timeout.
    async fn endorse_locally(
        &self,
        signed: &SignedProposal,
        info: &ProposalInfo,
    ) -> Result<ProposalResponse, String> {
        let endorse = self.endorser.process_unpacked(signed, &info.unpacked);
        match tokio::time::timeout(self.opts.endorsement_timeout, endorse).await {
            Ok(r) => Ok(r),
            Err(_) => Err(format!(
                "endorsement timed out after {:?} (peer.gateway.endorsementTimeout)",
                self.opts.endorsement_timeout
            )),
        }
    }

    /// Endorse on a remote peer, within the endorsement timeout. `Err` carries the gRPC code
    /// Fabric reports and the message.
    async fn endorse_remotely(
        &self,
        target: &Target,
        signed: &SignedProposal,
    ) -> Result<ProposalResponse, (Code, String)> {
        let conn = self
            .connections
            .get(target)
            .await
            .map_err(|e| (Code::Unavailable, e))?;
        let mut client = EndorserClient::new(conn);
        let call = client.process_proposal(signed.clone());
        match tokio::time::timeout(self.opts.endorsement_timeout, call).await {
            Ok(Ok(r)) => Ok(r.into_inner()),
            Ok(Err(status)) => {
                if matches!(status.code(), Code::Unavailable | Code::Unknown) {
                    self.connections.forget(&target.address);
                }
                Err((Code::Unavailable, errors::remote_failure(&status)))
            }
            Err(_) => Err((
                Code::DeadlineExceeded,
                format!(
                    "endorsement timed out after {:?} (peer.gateway.endorsementTimeout)",
                    self.opts.endorsement_timeout
                ),
            )),
        }
    }

    /// `Evaluate`.
    pub async fn evaluate(&self, req: EvaluateRequest) -> Result<EvaluateResponse, Status> {
        let info =
            read_proposal(req.proposed_transaction.as_ref()).map_err(Status::invalid_argument)?;
        let channel = self.channel(info.channel_id())?;
        let signed = req.proposed_transaction.unwrap_or_default();
        let targets = &req.target_organizations;
        let local_ok = targets.is_empty() || targets.contains(&self.local.msp_id);
        if local_ok {
            let response = self.endorse_locally(&signed, &info).await.map_err(|e| {
                rpc_error(Code::DeadlineExceeded, e.clone(), &[self.local_detail(e)])
            })?;
            return self.evaluate_result(&info, response, &self.local.address, &self.local.msp_id);
        }
        let remote = self.remote_peers(&channel);
        let mut details = Vec::new();
        for org in targets {
            for target in remote.get(org).map(Vec::as_slice).unwrap_or_default() {
                match self.endorse_remotely(target, &signed).await {
                    Ok(response) => {
                        return self.evaluate_result(
                            &info,
                            response,
                            &target.address,
                            &target.msp_id,
                        )
                    }
                    Err((_, msg)) => {
                        details.push(error_detail(&target.address, &target.msp_id, msg))
                    }
                }
            }
        }
        if details.is_empty() {
            return Err(Status::failed_precondition(format!(
                "no peers of the target organizations {targets:?} are known on channel {}; add them to the gateway's peers or as anchor peers",
                info.channel_id()
            )));
        }
        Err(rpc_error(
            Code::Unavailable,
            "failed to evaluate transaction, see attached details for more info",
            &details,
        ))
    }

    fn evaluate_result(
        &self,
        info: &ProposalInfo,
        response: ProposalResponse,
        address: &str,
        msp_id: &str,
    ) -> Result<EvaluateResponse, Status> {
        if let Err((code, msg)) = response_status(&response) {
            tracing::debug!(tx_id = info.tx_id(), %address, "evaluate failed: {msg}");
            return Err(rpc_error(
                code,
                format!("evaluate call to endorser returned error: {msg}"),
                &[error_detail(address, msp_id, msg)],
            ));
        }
        let payload = prepare::result_payload(&response);
        let mut result = response.response.unwrap_or_default();
        result.payload = payload;
        Ok(EvaluateResponse {
            result: Some(result),
        })
    }

    /// `Endorse`.
    pub async fn endorse(&self, req: EndorseRequest) -> Result<EndorseResponse, Status> {
        let info =
            read_proposal(req.proposed_transaction.as_ref()).map_err(Status::invalid_argument)?;
        let channel = self.channel(info.channel_id())?;
        let signed = req.proposed_transaction.clone().unwrap_or_default();
        let requested = &req.endorsing_organizations;
        let mut details: Vec<ErrorDetail> = Vec::new();
        let mut endorsed: Vec<Endorsed> = Vec::new();

        // This peer first (when its organization may endorse).
        let local_wanted = requested.is_empty() || requested.contains(&self.local.msp_id);
        if local_wanted {
            match self.endorse_locally(&signed, &info).await {
                Ok(response) => {
                    match response_status(&response) {
                        Ok(()) => endorsed.push(into_endorsed(response)),
                        Err((code, msg)) => {
                            tracing::warn!(
                                tx_id = info.tx_id(),
                                "endorsement on this peer failed: {msg}"
                            );
                            details.push(self.local_detail(msg));
                            if requested.is_empty() {
                                // Fabric's gateway stops when the first endorser fails.
                                return Err(rpc_error(
                                if code == Code::Unknown { Code::Aborted } else { code },
                                "failed to endorse transaction, see attached details for more info",
                                &details,
                            ));
                            }
                        }
                    }
                }
                Err(msg) => {
                    details.push(self.local_detail(msg));
                    return Err(rpc_error(
                        Code::DeadlineExceeded,
                        "endorsement timeout expired while collecting first endorsement",
                        &details,
                    ));
                }
            }
        }

        let needs_more = if requested.is_empty() {
            !policy_met(&channel, info.chaincode(), &endorsed)
        } else {
            true
        };
        if needs_more {
            let remote = self.remote_peers(&channel);
            // First the organizations the policy needs (the proposal carries the client's
            // transient data; Fabric's gateway also asks one plan's organizations only),
            // then, if one of them fails, the others. All at once when no smaller plan is
            // found; the client's own list when it names organizations.
            let (first, rest): (Vec<String>, Vec<String>) = if requested.is_empty() {
                let others: Vec<String> = remote
                    .keys()
                    .filter(|o| **o != self.local.msp_id)
                    .cloned()
                    .collect();
                match policy::plan(&channel, info.chaincode(), &endorsed, &others) {
                    Some(first) => {
                        let rest = others.into_iter().filter(|o| !first.contains(o)).collect();
                        (first, rest)
                    }
                    None => (others, Vec::new()),
                }
            } else {
                let named = requested
                    .iter()
                    .filter(|o| **o != self.local.msp_id)
                    .cloned()
                    .collect();
                (named, Vec::new())
            };
            for (wave, orgs) in [first, rest].into_iter().enumerate() {
                if orgs.is_empty()
                    || (wave > 0 && policy_met(&channel, info.chaincode(), &endorsed))
                {
                    continue;
                }
                let calls = orgs.iter().map(|org| {
                let targets = remote.get(org).cloned().unwrap_or_default();
                let signed = &signed;
                let channel_id = channel.id();
                async move {
                    let mut failures = Vec::new();
                    if targets.is_empty() {
                        failures.push(error_detail(
                            "",
                            org,
                            format!(
                                "no peer of {org} is known on channel {channel_id}: configure one or set an anchor peer"
                            ),
                        ));
                    }
                    for t in &targets {
                        match self.endorse_remotely(t, signed).await {
                            Ok(response) => match response_status(&response) {
                                Ok(()) => return (Some(into_endorsed(response)), failures),
                                Err((_, msg)) => {
                                    failures.push(error_detail(&t.address, &t.msp_id, msg))
                                }
                            },
                            Err((_, msg)) => failures.push(error_detail(&t.address, &t.msp_id, msg)),
                        }
                    }
                    (None, failures)
                }
            });
                for (ok, failures) in futures_join_all(calls).await {
                    details.extend(failures);
                    endorsed.extend(ok);
                }
            }
        }

        // Every endorser must have produced the same response payload.
        let Some(first) = endorsed.first() else {
            return Err(rpc_error(
                Code::Aborted,
                "failed to collect enough transaction endorsements, see attached details for more info",
                &details,
            ));
        };
        let payload = first.payload.clone();
        let mut agreeing = Vec::with_capacity(endorsed.len());
        for e in endorsed {
            if e.payload == payload {
                agreeing.push(e);
            } else {
                let (msp, subject) = endorser_name(&e.endorsement);
                details.push(error_detail(
                    "",
                    &msp,
                    format!(
                        "ProposalResponsePayloads do not match: the endorsement by {subject} differs from the first endorsement (the chaincode is not deterministic, or the peers' states differ)"
                    ),
                ));
            }
        }
        // The client that names the endorsing organizations takes responsibility for the
        // policy (it may know of key-level policies): each named org must have endorsed.
        // Otherwise the chaincode's policy must be satisfied.
        let satisfied = if requested.is_empty() {
            check_policy(&channel, info.chaincode(), &agreeing)
        } else {
            let signers: Vec<String> = agreeing
                .iter()
                .map(|e| endorser_name(&e.endorsement).0)
                .collect();
            let missing: Vec<&String> = requested.iter().filter(|o| !signers.contains(o)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "no endorsement from the requested organization(s) {missing:?}"
                ))
            }
        };
        if let Err(why) = satisfied {
            details.push(self.local_detail(why.clone()));
            return Err(rpc_error(
                Code::Aborted,
                format!("failed to collect enough transaction endorsements, see attached details for more info: {why}"),
                &details,
            ));
        }
        let endorsements =
            prepare::unique_endorsements(agreeing.into_iter().map(|e| e.endorsement).collect());
        tracing::debug!(
            tx_id = info.tx_id(),
            endorsements = endorsements.len(),
            "endorsed"
        );
        let envelope = prepare_transaction(&info, payload, endorsements);
        Ok(EndorseResponse {
            prepared_transaction: Some(envelope),
        })
    }

    /// `CommitStatus`: waits until the transaction commits.
    pub async fn commit_status(
        &self,
        signed: SignedCommitStatusRequest,
    ) -> Result<CommitStatusResponse, Status> {
        if signed.request.is_empty() {
            return Err(Status::invalid_argument(
                "a commit status request is required",
            ));
        }
        let req = CommitStatusRequest::decode(signed.request.clone())
            .map_err(|e| Status::invalid_argument(format!("invalid status request: {e}")))?;
        let channel = self.channel(&req.channel_id)?;
        let who = access::authorize(
            &channel,
            access::GATEWAY_COMMIT_STATUS,
            &req.identity,
            &signed.request,
            &signed.signature,
        )
        .map_err(Status::permission_denied)?;
        log_reader(&who, "CommitStatus", &req.transaction_id);
        let lookup = {
            let channel = channel.clone();
            move |tx: &str| channel.tx_status(tx)
        };
        let (block, code) = channel
            .commit_events()
            .wait_for_tx_or(&req.transaction_id, lookup)
            .await
            .map_err(|e| Status::aborted(e.to_string()))?;
        Ok(CommitStatusResponse {
            result: code,
            block_number: block,
        })
    }

    /// `ChaincodeEvents`.
    pub fn chaincode_events(
        &self,
        signed: SignedChaincodeEventsRequest,
    ) -> Result<ReceiverStream<Result<ChaincodeEventsResponse, Status>>, Status> {
        if signed.request.is_empty() {
            return Err(Status::invalid_argument(
                "a chaincode events request is required",
            ));
        }
        let req = ChaincodeEventsRequest::decode(signed.request.clone()).map_err(|e| {
            Status::invalid_argument(format!("invalid chaincode events request: {e}"))
        })?;
        let channel = self.channel(&req.channel_id)?;
        let who = access::authorize(
            &channel,
            access::GATEWAY_CHAINCODE_EVENTS,
            &req.identity,
            &signed.request,
            &signed.signature,
        )
        .map_err(Status::permission_denied)?;
        log_reader(&who, "ChaincodeEvents", &req.chaincode_id);
        events::stream(channel, req)
    }
}

fn log_reader(who: &ValidatedIdentity, what: &str, subject: &str) {
    tracing::debug!(msp_id = %who.msp_id, client = %who.subject, "{what} {subject}");
}

fn into_endorsed(response: ProposalResponse) -> Endorsed {
    Endorsed::new(response.payload, response.endorsement.unwrap_or_default())
}

/// `gateway.Gateway` over a [`Gateway`].
#[derive(Debug, Clone)]
pub struct GatewayService(pub Arc<Gateway>);

#[tonic::async_trait]
impl GatewayRpc for GatewayService {
    async fn endorse(
        &self,
        request: Request<EndorseRequest>,
    ) -> Result<Response<EndorseResponse>, Status> {
        let g = &self.0;
        g.measured("Endorse", g.endorse(request.into_inner()))
            .await
            .map(Response::new)
    }

    async fn submit(
        &self,
        request: Request<SubmitRequest>,
    ) -> Result<Response<SubmitResponse>, Status> {
        let g = &self.0;
        g.measured("Submit", g.submit(request.into_inner()))
            .await
            .map(Response::new)
    }

    async fn commit_status(
        &self,
        request: Request<SignedCommitStatusRequest>,
    ) -> Result<Response<CommitStatusResponse>, Status> {
        let g = &self.0;
        g.measured("CommitStatus", g.commit_status(request.into_inner()))
            .await
            .map(Response::new)
    }

    async fn evaluate(
        &self,
        request: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        let g = &self.0;
        g.measured("Evaluate", g.evaluate(request.into_inner()))
            .await
            .map(Response::new)
    }

    type ChaincodeEventsStream = ReceiverStream<Result<ChaincodeEventsResponse, Status>>;

    async fn chaincode_events(
        &self,
        request: Request<SignedChaincodeEventsRequest>,
    ) -> Result<Response<Self::ChaincodeEventsStream>, Status> {
        let g = &self.0;
        g.measured("ChaincodeEvents", async {
            g.chaincode_events(request.into_inner())
        })
        .await
        .map(Response::new)
    }
}
