//! The Gateway and Deliver services end to end, with mutual TLS on every link:
//! a channel joined from a two-org genesis block (weft-configtx's test network), org1's
//! gateway endorsing locally and on org2's endorser over mTLS, a client signing the prepared
//! transaction, Submit to an orderer over mTLS, the real committer, CommitStatus, Evaluate,
//! ChaincodeEvents, Deliver and DeliverFiltered — and the attacks on them.
//!
//! The orderer here is a minimal in-test AtomicBroadcast service (one block per envelope,
//! signed with the orderer org's identity, committed with `weft_peer::committer`): it stands
//! in for the ordering service and the peer's deliver client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Router;
use tonic::{Code, Request, Response as GrpcResponse, Status, Streaming};
use weft_configtx::testing::{two_org_network, TestIdentity, TestNetwork};
use weft_msp::msp::SigningIdentity;
use weft_peer::channel::{open_ledger, Channel, Channels};
use weft_peer::commit_events::{CommittedBlock, CommittedTx};
use weft_peer::deliver::{DeliverOptions, DeliverService};
use weft_peer::endorser::{signed_proposal, Endorser};
use weft_peer::gateway::errors::error_details;
use weft_peer::gateway::{Dialing, Gateway, GatewayOptions, LocalPeer, RemoteNode};
use weft_peer::simulator::QueryLimits;
use weft_peer::testing::{next_block, sign_block, TestPeer, TestPeerOptions, CHANNEL};
use weft_proto::common::{
    ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader, Status as CommonStatus,
};
use weft_proto::gateway::gateway_client::GatewayClient;
use weft_proto::gateway::{
    ChaincodeEventsRequest, CommitStatusRequest, EndorseRequest, EvaluateRequest,
    SignedChaincodeEventsRequest, SignedCommitStatusRequest, SubmitRequest,
};
use weft_proto::orderer::atomic_broadcast_server::{AtomicBroadcast, AtomicBroadcastServer};
use weft_proto::orderer::seek_position::Type as Seek;
use weft_proto::orderer::{
    BroadcastResponse, SeekInfo, SeekNextCommit, SeekPosition, SeekSpecified,
};
use weft_proto::protos::deliver_client::DeliverClient;
use weft_proto::protos::deliver_response::Type as Answer;
use weft_proto::protos::{
    filtered_transaction, ChaincodeActionPayload, ChaincodeEvent, DeliverResponse, Proposal,
    Transaction,
};
use weft_shim::{ChaincodeServer, Response, ServerConfig, Stub};
use weft_tls::grpc::{incoming, Security};
use weft_tls::{
    ClientAuth, ClientIdentity, Endpoint, Identity, Profile, TlsClient, TlsServer, Trust,
};

const CC: &str = "gw";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The test chaincode: `put k v` (sets event `put` with payload k), `get k`, `fail msg`.
#[derive(Clone)]
struct Kv;

impl weft_shim::Chaincode for Kv {
    async fn init(&self, _stub: Stub) -> Response {
        Response::success("")
    }

    async fn invoke(&self, stub: Stub) -> Response {
        let (f, a) = stub.function_and_parameters();
        let r: Result<Response, weft_shim::ChaincodeError> = async {
            Ok(match f.as_str() {
                "put" => {
                    stub.put_state(&a[0], a[1].clone().into_bytes()).await?;
                    stub.set_event("put", a[0].clone().into_bytes())?;
                    Response::success(a[1].clone())
                }
                "get" => Response::success(stub.get_state(&a[0]).await?.unwrap_or_default()),
                "fail" => Response::error(a[0].clone()),
                // The asset-transfer functions the real-SDK client (interop/gateway-client) calls.
                "CreateAsset" => {
                    if stub.get_state(&a[0]).await?.is_some() {
                        return Ok(Response::error(format!(
                            "the asset {} already exists",
                            a[0]
                        )));
                    }
                    let asset = serde_json::json!({
                        "AppraisedValue": a[4].parse::<i64>().unwrap_or(0),
                        "Color": a[1], "ID": a[0], "Owner": a[3],
                        "Size": a[2].parse::<i64>().unwrap_or(0),
                    })
                    .to_string();
                    stub.put_state(&a[0], asset.clone().into_bytes()).await?;
                    stub.set_event("CreateAsset", asset.clone().into_bytes())?;
                    Response::success(asset)
                }
                "ReadAsset" => match stub.get_state(&a[0]).await? {
                    Some(v) => Response::success(v),
                    None => Response::error(format!("the asset {} does not exist", a[0])),
                },
                "AssetExists" => {
                    Response::success(stub.get_state(&a[0]).await?.is_some().to_string())
                }
                "TransferAsset" => {
                    let Some(v) = stub.get_state(&a[0]).await? else {
                        return Ok(Response::error(format!(
                            "the asset {} does not exist",
                            a[0]
                        )));
                    };
                    let mut asset: serde_json::Value = serde_json::from_slice(&v).unwrap();
                    let old = asset["Owner"].as_str().unwrap_or_default().to_owned();
                    asset["Owner"] = serde_json::Value::String(a[1].clone());
                    let json = asset.to_string();
                    stub.put_state(&a[0], json.clone().into_bytes()).await?;
                    stub.set_event("TransferAsset", json.into_bytes())?;
                    Response::success(old)
                }
                other => Response::error(format!("unknown function {other}")),
            })
        }
        .await;
        r.unwrap_or_else(|e| Response::error(e.to_string()))
    }
}

/// A minimal ordering service: every envelope becomes a block (signed by the orderer org's
/// node), answered SUCCESS, then committed to the channel in order.
struct MiniOrderer {
    channel: Arc<Channel>,
    signer: Arc<SigningIdentity>,
    order: Arc<tokio::sync::Mutex<()>>,
}

#[tonic::async_trait]
impl AtomicBroadcast for MiniOrderer {
    type BroadcastStream = ReceiverStream<Result<BroadcastResponse, Status>>;
    type DeliverStream = ReceiverStream<Result<weft_proto::orderer::DeliverResponse, Status>>;

    async fn broadcast(
        &self,
        request: Request<Streaming<Envelope>>,
    ) -> Result<GrpcResponse<Self::BroadcastStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let (channel, signer, order) = (
            self.channel.clone(),
            self.signer.clone(),
            self.order.clone(),
        );
        tokio::spawn(async move {
            while let Ok(Some(env)) = inbound.message().await {
                if env.signature.is_empty() {
                    let _ = tx
                        .send(Ok(BroadcastResponse {
                            status: CommonStatus::BadRequest as i32,
                            info: "unsigned envelope".into(),
                        }))
                        .await;
                    continue;
                }
                let _ = tx
                    .send(Ok(BroadcastResponse {
                        status: CommonStatus::Success as i32,
                        info: String::new(),
                    }))
                    .await;
                let (channel, signer, order) = (channel.clone(), signer.clone(), order.clone());
                tokio::spawn(async move {
                    let _g = order.lock().await;
                    let h = channel.blocks().height();
                    let prev = channel.blocks().block(h - 1).unwrap().unwrap();
                    let mut b = next_block(
                        prev.header.as_ref().unwrap(),
                        vec![env.encode_to_vec().into()],
                    );
                    sign_block(&mut b, &signer, 0).unwrap();
                    weft_peer::committer::commit_block(&channel, b)
                        .await
                        .unwrap();
                });
            }
        });
        Ok(GrpcResponse::new(ReceiverStream::new(rx)))
    }

    async fn deliver(
        &self,
        _request: Request<Streaming<Envelope>>,
    ) -> Result<GrpcResponse<Self::DeliverStream>, Status> {
        Err(Status::unimplemented("not in this test orderer"))
    }
}

fn pem_roots(files: &[&Path]) -> Vec<CertificateDer<'static>> {
    files
        .iter()
        .flat_map(|f| weft_crypto::pem::certificates(&std::fs::read(f).unwrap(), "test").unwrap())
        .collect()
}

fn tls_identity(id: &TestIdentity) -> Identity {
    Identity::from_pem_files(&id.tls_cert, &id.tls_key, "test").unwrap()
}

/// Serve `router` on `listener` with `id`'s TLS certificate, requiring client certificates
/// from `roots`. Stops when the returned sender drops.
fn spawn_tls(
    router: Router,
    listener: TcpListener,
    id: &TestIdentity,
    roots: Vec<CertificateDer<'static>>,
) -> oneshot::Sender<()> {
    let server = TlsServer::new(
        &tls_identity(id),
        ClientAuth::Require(Trust::Roots(roots)),
        Profile::Fabric,
    )
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(router.serve_with_incoming_shutdown(
        incoming(listener, Security::Tls(Arc::new(server))),
        async move {
            let _ = stopped.await;
        },
    ));
    stop
}

struct Net {
    _tmp: tempfile::TempDir,
    peer: Option<TestPeer>,
    net: TestNetwork,
    channel: Arc<Channel>,
    gateway_addr: SocketAddr,
    user1: SigningIdentity,
    _stops: Vec<oneshot::Sender<()>>,
}

async fn setup() -> Net {
    let tmp = tempfile::tempdir().unwrap();
    let orderer_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let orderer_port = orderer_listener.local_addr().unwrap().port();
    let net = two_org_network(&tmp.path().join("net"), orderer_port).unwrap();
    let peer = TestPeer::start(
        &tmp.path().join("peer"),
        &TestPeerOptions::with_shipped_builders(&repo()),
    )
    .await
    .unwrap();
    let channels: Arc<Channels> = peer.node.channels.clone();
    let mut stops = Vec::new();

    // The chaincode, as a service (plaintext on loopback: the chaincode link is not under test).
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cc_port = probe.local_addr().unwrap().port();
    drop(probe);
    let conn = serde_json::json!({
        "address": format!("127.0.0.1:{cc_port}"),
        "dial_timeout": "2s",
        "tls_required": false,
    });
    let package_id = peer.install_ccaas("gw_1", CC, &conn).unwrap();
    let server = ChaincodeServer::bind(ServerConfig {
        address: format!("127.0.0.1:{cc_port}"),
        chaincode_id: package_id.clone(),
        tls: None,
    })
    .await
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(Kv, async move {
        let _ = stopped.await;
    }));
    stops.push(stop);

    // The channel from the genesis block replaces the peer's file channel of the same name.
    let config = weft_configtx::ChannelConfig::from_block(&net.genesis).unwrap();
    let (blocks, state) = open_ledger(&tmp.path().join("ledger")).unwrap();
    let channel = Channel::from_config(
        Arc::new(config),
        blocks,
        state,
        channels.signature_cache().clone(),
    );
    weft_peer::committer::commit_genesis(&channel, net.genesis.clone())
        .await
        .unwrap();
    let channel = channels.insert(channel);
    channel.define_chaincode(CC, package_id);

    let all_roots = pem_roots(&[
        &net.orgs[0].tls_ca_cert,
        &net.orgs[1].tls_ca_cert,
        &net.orderer_org.tls_ca_cert,
    ]);
    let endorser = |i: usize| {
        Arc::new(Endorser::new(
            channels.clone(),
            peer.node.runtime.clone(),
            Arc::new(net.orgs[i].node.signer().unwrap()),
            QueryLimits::default(),
        ))
    };

    // Org2's endorser over mutual TLS.
    let org2_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let org2_addr = org2_listener.local_addr().unwrap();
    let router = tonic::transport::Server::builder().add_service(endorser(1).into_service());
    stops.push(spawn_tls(
        router,
        org2_listener,
        &net.orgs[1].node,
        all_roots.clone(),
    ));

    // The orderer at the address the channel config names.
    let orderer = MiniOrderer {
        channel: channel.clone(),
        signer: Arc::new(net.orderer_org.node.signer().unwrap()),
        order: Arc::new(tokio::sync::Mutex::new(())),
    };
    let router =
        tonic::transport::Server::builder().add_service(AtomicBroadcastServer::new(orderer));
    stops.push(spawn_tls(
        router,
        orderer_listener,
        &net.orderer_org.node,
        all_roots.clone(),
    ));

    // Org1's gateway and deliver service.
    let gw_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_addr = gw_listener.local_addr().unwrap();
    let org1_tls = &net.orgs[0].node;
    let gateway = Gateway::new(
        channels.clone(),
        endorser(0),
        LocalPeer {
            address: gateway_addr.to_string(),
            msp_id: "Org1MSP".into(),
        },
        Dialing::Tls {
            client_cert: Some((
                std::fs::read(&org1_tls.tls_cert).unwrap(),
                std::fs::read(&org1_tls.tls_key).unwrap(),
            )),
            extra_roots: Vec::new(),
        },
        GatewayOptions {
            peers: vec![RemoteNode {
                address: org2_addr.to_string(),
                msp_id: "Org2MSP".into(),
                server_name: None,
            }],
            dial_timeout: Duration::from_secs(10),
            ..GatewayOptions::default()
        },
    );
    let deliver = DeliverService::new(
        channels.clone(),
        DeliverOptions {
            mutual_tls: true,
            ..DeliverOptions::default()
        },
    );
    let router = tonic::transport::Server::builder()
        .add_service(Arc::new(gateway).into_service())
        .add_service(Arc::new(deliver).into_server());
    stops.push(spawn_tls(router, gw_listener, org1_tls, all_roots));

    let user1 = net.orgs[0].user.signer().unwrap();
    Net {
        _tmp: tmp,
        peer: Some(peer),
        net,
        channel,
        gateway_addr,
        user1,
        _stops: stops,
    }
}

impl Net {
    /// A TLS connection to the gateway peer as `who` (its TLS client certificate).
    async fn connect(&self, who: &TestIdentity) -> tonic::transport::Channel {
        let client = TlsClient::new(
            Trust::Roots(pem_roots(&[&self.net.orgs[0].tls_ca_cert])),
            ClientIdentity::Certificate(tls_identity(who)),
            Profile::Fabric,
        )
        .unwrap();
        weft_tls::grpc::channel(
            Some(client),
            Endpoint::parse(&self.gateway_addr.to_string()).unwrap(),
        )
        .await
        .unwrap()
    }

    async fn gateway(&self) -> GatewayClient<tonic::transport::Channel> {
        GatewayClient::new(self.connect(&self.net.orgs[0].user).await)
    }

    fn proposal(&self, args: &[&str]) -> (weft_proto::protos::SignedProposal, String) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        signed_proposal(&self.user1, CHANNEL, CC, &args, &[]).unwrap()
    }

    async fn evaluate(&self, args: &[&str]) -> Result<Bytes, Status> {
        let (sp, tx_id) = self.proposal(args);
        let r = self
            .gateway()
            .await
            .evaluate(EvaluateRequest {
                transaction_id: tx_id,
                channel_id: CHANNEL.into(),
                proposed_transaction: Some(sp),
                target_organizations: Vec::new(),
            })
            .await?;
        Ok(r.into_inner().result.unwrap().payload)
    }

    /// Sign `prepared` as User1, submit it, and wait (30 s at most) for its commit status.
    async fn sign_submit_and_wait(
        &self,
        gw: &mut GatewayClient<tonic::transport::Channel>,
        tx_id: &str,
        mut prepared: Envelope,
    ) -> weft_proto::gateway::CommitStatusResponse {
        prepared.signature = self.user1.sign(&prepared.payload).unwrap().into();
        gw.submit(SubmitRequest {
            transaction_id: tx_id.to_owned(),
            channel_id: CHANNEL.into(),
            prepared_transaction: Some(prepared),
        })
        .await
        .unwrap();
        tokio::time::timeout(
            Duration::from_secs(30),
            gw.commit_status(self.commit_status_request(
                &self.user1,
                self.user1.serialize(),
                tx_id,
            )),
        )
        .await
        .unwrap()
        .unwrap()
        .into_inner()
    }

    fn commit_status_request(
        &self,
        signer: &SigningIdentity,
        identity: Vec<u8>,
        tx_id: &str,
    ) -> SignedCommitStatusRequest {
        let request = CommitStatusRequest {
            transaction_id: tx_id.into(),
            channel_id: CHANNEL.into(),
            identity: identity.into(),
        }
        .encode_to_vec();
        let signature = signer.sign(&request).unwrap();
        SignedCommitStatusRequest {
            request: request.into(),
            signature: signature.into(),
        }
    }

    fn events_request(&self, start: Seek) -> SignedChaincodeEventsRequest {
        let request = ChaincodeEventsRequest {
            channel_id: CHANNEL.into(),
            chaincode_id: CC.into(),
            identity: self.user1.serialize().into(),
            start_position: Some(SeekPosition {
                r#type: Some(start),
            }),
            after_transaction_id: String::new(),
        }
        .encode_to_vec();
        let signature = self.user1.sign(&request).unwrap();
        SignedChaincodeEventsRequest {
            request: request.into(),
            signature: signature.into(),
        }
    }

    /// A signed SeekInfo envelope by `signer`, bound to the TLS certificate `tls_cert`.
    fn seek(&self, signer: &SigningIdentity, tls_cert: &[u8], start: Seek, stop: Seek) -> Envelope {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let chdr = ChannelHeader {
            r#type: HeaderType::DeliverSeekInfo as i32,
            channel_id: CHANNEL.into(),
            timestamp: Some(prost_types::Timestamp {
                seconds: now.as_secs() as i64,
                nanos: 0,
            }),
            tls_cert_hash: Bytes::copy_from_slice(&weft_crypto::sha256(tls_cert)),
            ..Default::default()
        };
        let shdr = SignatureHeader {
            creator: signer.serialize().into(),
            nonce: Bytes::from_static(b"0123456789abcdef"),
        };
        let payload = Payload {
            header: Some(Header {
                channel_header: chdr.encode_to_vec().into(),
                signature_header: shdr.encode_to_vec().into(),
            }),
            data: SeekInfo {
                start: Some(SeekPosition {
                    r#type: Some(start),
                }),
                stop: Some(SeekPosition { r#type: Some(stop) }),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        }
        .encode_to_vec();
        let signature = signer.sign(&payload).unwrap();
        Envelope {
            payload: payload.into(),
            signature: signature.into(),
        }
    }

    /// Run one deliver request; returns the answers.
    async fn deliver(&self, env: Envelope, filtered: bool) -> Vec<DeliverResponse> {
        let mut client = DeliverClient::new(self.connect(&self.net.orgs[0].user).await);
        let req = tokio_stream::once(env);
        let mut stream = if filtered {
            client.deliver_filtered(req).await.unwrap().into_inner()
        } else {
            client.deliver(req).await.unwrap().into_inner()
        };
        let mut out = Vec::new();
        for _ in 0..20 {
            match tokio::time::timeout(Duration::from_secs(20), stream.message())
                .await
                .unwrap()
            {
                Ok(Some(r)) => {
                    let is_status = matches!(r.r#type, Some(Answer::Status(_)));
                    out.push(r);
                    if is_status {
                        break;
                    }
                }
                _ => break,
            }
        }
        out
    }

    fn user1_tls_cert(&self) -> Vec<u8> {
        pem_roots(&[&self.net.orgs[0].user.tls_cert])[0].to_vec()
    }

    async fn stop(mut self) {
        if let Some(p) = self.peer.take() {
            p.stop().await;
        }
    }
}

fn specified(n: u64) -> Seek {
    Seek::Specified(SeekSpecified { number: n })
}

fn last_status(answers: &[DeliverResponse]) -> Option<CommonStatus> {
    match answers.last()?.r#type {
        Some(Answer::Status(s)) => CommonStatus::try_from(s).ok(),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endorse_submit_commit_evaluate_and_events_over_mutual_tls() {
    let n = setup().await;
    let mut gw = n.gateway().await;
    assert_eq!(n.evaluate(&["get", "k"]).await.unwrap(), Bytes::new());

    // Listen for events from the next commit on, before submitting.
    let mut events = gw
        .chaincode_events(n.events_request(Seek::NextCommit(SeekNextCommit {})))
        .await
        .unwrap()
        .into_inner();

    let (sp, tx_id) = n.proposal(&["put", "k", "v1"]);
    let prepared = gw
        .endorse(EndorseRequest {
            transaction_id: tx_id.clone(),
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(sp.clone()),
            endorsing_organizations: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .prepared_transaction
        .unwrap();
    assert!(
        prepared.signature.is_empty(),
        "the client signs, not the gateway"
    );
    // The header is the proposal's, as signed; both orgs endorsed (MAJORITY of two).
    let payload = Payload::decode(prepared.payload.clone()).unwrap();
    let proposal = Proposal::decode(sp.proposal_bytes.clone()).unwrap();
    assert_eq!(
        payload.header.clone().unwrap().encode_to_vec(),
        proposal.header.to_vec()
    );
    let tx = Transaction::decode(payload.data.clone()).unwrap();
    let cap = ChaincodeActionPayload::decode(tx.actions[0].payload.clone()).unwrap();
    let endorsers: Vec<String> = cap
        .action
        .unwrap()
        .endorsements
        .iter()
        .map(|e| {
            weft_proto::msp::SerializedIdentity::decode(e.endorser.clone())
                .unwrap()
                .mspid
        })
        .collect();
    assert_eq!(endorsers.len(), 2, "{endorsers:?}");
    assert!(endorsers.contains(&"Org1MSP".to_owned()) && endorsers.contains(&"Org2MSP".to_owned()));

    // Submit refuses an unsigned transaction; the signed one goes to the orderer.
    let err = gw
        .submit(SubmitRequest {
            transaction_id: tx_id.clone(),
            channel_id: CHANNEL.into(),
            prepared_transaction: Some(prepared.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let status = n.sign_submit_and_wait(&mut gw, &tx_id, prepared).await;
    assert_eq!(
        (status.result, status.block_number),
        (0, 1),
        "VALID in block 1"
    );
    assert_eq!(
        n.evaluate(&["get", "k"]).await.unwrap(),
        Bytes::from_static(b"v1")
    );

    let ev = tokio::time::timeout(Duration::from_secs(20), events.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ev.block_number, 1);
    assert_eq!(ev.events.len(), 1);
    assert_eq!(
        (
            ev.events[0].chaincode_id.as_str(),
            ev.events[0].event_name.as_str(),
            ev.events[0].payload.as_ref()
        ),
        (CC, "put", b"k".as_ref())
    );

    // Replay from the block store.
    let mut replay = gw
        .chaincode_events(n.events_request(specified(0)))
        .await
        .unwrap()
        .into_inner();
    let ev = tokio::time::timeout(Duration::from_secs(20), replay.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.block_number, ev.events[0].tx_id.as_str()),
        (1, tx_id.as_str())
    );

    // Deliver: block 1 with its transactions filter; then the filtered view.
    let cert = n.user1_tls_cert();
    let answers = n
        .deliver(n.seek(&n.user1, &cert, specified(1), specified(1)), false)
        .await;
    assert_eq!(
        last_status(&answers),
        Some(CommonStatus::Success),
        "{answers:?}"
    );
    let Some(Answer::Block(block)) = answers[0].r#type.clone() else {
        panic!("expected a block: {answers:?}")
    };
    assert_eq!(block.header.unwrap().number, 1);
    assert_eq!(block.metadata.unwrap().metadata[2].as_ref(), &[0u8]);

    let answers = n
        .deliver(n.seek(&n.user1, &cert, specified(0), specified(1)), true)
        .await;
    assert_eq!(answers.len(), 3, "{answers:?}");
    let Some(Answer::FilteredBlock(fb)) = answers[1].r#type.clone() else {
        panic!("expected a filtered block: {answers:?}")
    };
    let ftx = &fb.filtered_transactions[0];
    assert_eq!(
        (ftx.txid.as_str(), ftx.tx_validation_code),
        (tx_id.as_str(), 0)
    );
    let Some(filtered_transaction::Data::TransactionActions(actions)) = &ftx.data else {
        panic!("no actions: {ftx:?}")
    };
    let event: &ChaincodeEvent = actions.chaincode_actions[0]
        .chaincode_event
        .as_ref()
        .unwrap();
    assert_eq!((event.event_name.as_str(), event.payload.len()), ("put", 0));

    n.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_and_failures_are_refused_with_reasons() {
    let n = setup().await;
    let mut gw = n.gateway().await;

    // A chaincode error on Endorse names the gateway peer and its MSP.
    let (sp, tx_id) = n.proposal(&["fail", "no such asset"]);
    let err = gw
        .endorse(EndorseRequest {
            transaction_id: tx_id,
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(sp),
            endorsing_organizations: Vec::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let details = error_details(&err);
    assert_eq!(details.len(), 1, "{err:?}");
    assert_eq!(details[0].address, n.gateway_addr.to_string());
    assert_eq!(details[0].msp_id, "Org1MSP");
    // The endorser answers a chaincode error without a response payload, which Fabric's
    // gateway reads as the peer's own 500 (message as is); with a payload it would say
    // "chaincode response 500, ...".
    assert!(details[0].message.contains("no such asset"), "{details:?}");
    // Evaluate reports the chaincode's error the same way.
    let err = n.evaluate(&["fail", "nope"]).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    assert!(error_details(&err)[0].message.contains("nope"));

    // The client may name the endorsing organizations: only org2's peer endorses (over
    // mTLS); an organization without known peers is reported.
    let endorse_by = |orgs: &[&str]| {
        let (sp, tx_id) = n.proposal(&["put", "x", "1"]);
        EndorseRequest {
            transaction_id: tx_id,
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(sp),
            endorsing_organizations: orgs.iter().map(|o| (*o).to_owned()).collect(),
        }
    };
    let env = gw
        .endorse(endorse_by(&["Org2MSP"]))
        .await
        .unwrap()
        .into_inner()
        .prepared_transaction
        .unwrap();
    let tx = Transaction::decode(Payload::decode(env.payload).unwrap().data).unwrap();
    let cap = ChaincodeActionPayload::decode(tx.actions[0].payload.clone()).unwrap();
    let endorsements = cap.action.unwrap().endorsements;
    assert_eq!(endorsements.len(), 1);
    let id = weft_proto::msp::SerializedIdentity::decode(endorsements[0].endorser.clone()).unwrap();
    assert_eq!(id.mspid, "Org2MSP");
    let err = gw.endorse(endorse_by(&["Org3MSP"])).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err:?}");
    let details = error_details(&err);
    assert!(
        details
            .iter()
            .any(|d| d.msp_id == "Org3MSP" && d.message.contains("no peer of Org3MSP")),
        "{details:?}"
    );
    // Evaluate on another organization's peer.
    let (sp, tx_id) = n.proposal(&["get", "nothing"]);
    let r = gw
        .evaluate(EvaluateRequest {
            transaction_id: tx_id,
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(sp),
            target_organizations: vec!["Org2MSP".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.result.unwrap().status, 200);

    // A proposal by a member of Org1MSP that is not one of the channel's Writers (the peer's
    // own enrollment, role peer): refused by the peer/Propose ACL, naming the policy.
    let peer_identity = n.net.orgs[0].node.signer().unwrap();
    let (sp, tx_id) =
        signed_proposal(&peer_identity, CHANNEL, CC, &[b"put", b"y", b"1"], &[]).unwrap();
    let err = gw
        .endorse(EndorseRequest {
            transaction_id: tx_id,
            channel_id: CHANNEL.into(),
            proposed_transaction: Some(sp),
            endorsing_organizations: Vec::new(),
        })
        .await
        .unwrap_err();
    let details = error_details(&err);
    assert!(
        details.iter().any(|d| d
            .message
            .contains("does not satisfy /Channel/Application/Writers, the policy of peer/Propose")),
        "{err:?}"
    );

    // CommitStatus with a signature that is not the identity's.
    let org2 = n.net.orgs[1].user.signer().unwrap();
    let forged = n.commit_status_request(&org2, n.user1.serialize(), "some-tx");
    let err = gw.commit_status(forged).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("signature"), "{err:?}");

    // CommitStatus by an identity from an unknown org (an MSP ID the channel does not have),
    // and by a certificate from another CA claiming Org1MSP.
    let stranger = n.peer.as_ref().unwrap().user("org1").unwrap();
    let org3 = weft_msp::msp::serialize_identity("Org3MSP", stranger.certificate_der());
    let err = gw
        .commit_status(n.commit_status_request(&stranger, org3, "some-tx"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("Org3MSP"), "{err:?}");
    let err = gw
        .commit_status(n.commit_status_request(&stranger, stranger.serialize(), "some-tx"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");

    // CommitStatus waits for a commit announced after the call (fed by hand here).
    let waiting = {
        let mut gw = gw.clone();
        let req = n.commit_status_request(&n.user1, n.user1.serialize(), "tx-by-hand");
        tokio::spawn(async move { gw.commit_status(req).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    n.channel.commit_events().publish(Arc::new(CommittedBlock {
        number: 7,
        block: Arc::new(Default::default()),
        txs: vec![CommittedTx {
            tx_id: "tx-by-hand".into(),
            code: 11,
            chaincode_event: None,
        }],
    }));
    let r = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!((r.result, r.block_number), (11, 7));

    // Deliver with a tls_cert_hash of another certificate: a request made for another
    // connection is refused (BAD_REQUEST, as Fabric's binding check answers).
    let other_cert = pem_roots(&[&n.net.orgs[1].user.tls_cert])[0].to_vec();
    let answers = n
        .deliver(
            n.seek(&n.user1, &other_cert, specified(0), specified(0)),
            false,
        )
        .await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(last_status(&answers), Some(CommonStatus::BadRequest));
    // Deliver by an identity the channel does not know: FORBIDDEN.
    let cert = n.user1_tls_cert();
    let answers = n
        .deliver(n.seek(&stranger, &cert, specified(0), specified(0)), true)
        .await;
    assert_eq!(
        last_status(&answers),
        Some(CommonStatus::Forbidden),
        "{answers:?}"
    );
    // The genuine request is served.
    let answers = n
        .deliver(n.seek(&n.user1, &cert, specified(0), specified(0)), true)
        .await;
    assert_eq!(
        last_status(&answers),
        Some(CommonStatus::Success),
        "{answers:?}"
    );

    n.stop().await;
}

fn first_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_file())
        .unwrap()
}

/// Fabric's own Gateway SDK (`@hyperledger/fabric-gateway`, interop/gateway-client) against
/// this gateway: submit with commit status, evaluate, a chaincode error's details, chaincode
/// events; and a client without a TLS certificate refused. Skipped when Node.js or the
/// client's node_modules are not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabric_gateway_sdk_client_submits_evaluates_and_reads_events() {
    let app = repo().join("interop/gateway-client");
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !node_ok
        || !app.join("app.js").is_file()
        || !app
            .join("node_modules/@hyperledger/fabric-gateway")
            .is_dir()
    {
        eprintln!("skipped: node or interop/gateway-client/node_modules missing (npm ci there)");
        return;
    }
    let n = setup().await;
    let user = &n.net.orgs[0].user;
    let cfg = serde_json::json!({
        "endpoint": n.gateway_addr.to_string(),
        "serverName": "localhost",
        "tlsRootCert": n.net.orgs[0].tls_ca_cert,
        "clientCert": user.tls_cert,
        "clientKey": user.tls_key,
        "mspId": "Org1MSP",
        "identityCert": first_file(&user.msp_dir.join("signcerts")),
        "identityKey": first_file(&user.msp_dir.join("keystore")),
        "channel": CHANNEL,
        "chaincode": CC,
        "assetId": "asset7",
    });
    let cfg_path = n._tmp.path().join("client.json");
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let run = |scenario: &'static str| {
        let app = app.clone();
        let cfg_path = cfg_path.clone();
        async move {
            let out = tokio::time::timeout(
                Duration::from_secs(120),
                tokio::process::Command::new("node")
                    .arg(app.join("app.js"))
                    .arg(scenario)
                    .arg(&cfg_path)
                    .output(),
            )
            .await
            .unwrap()
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
                panic!(
                    "{scenario}: {e}: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            });
            v
        }
    };
    let r = run("asset-transfer").await;
    assert!(r.get("failed").is_none(), "{r:#}");
    assert_eq!(r["createStatus"]["code"], 0, "{r:#}");
    assert_eq!(r["createStatus"]["successful"], true, "{r:#}");
    assert_eq!(r["read"]["Owner"], "Tomoko", "{r:#}");
    assert_eq!(r["previousOwner"], "Tomoko", "{r:#}");
    assert_eq!(r["readAfterTransfer"]["Owner"], "Mark", "{r:#}");
    let missing = &r["missing"]["error"];
    assert_eq!(missing["details"][0]["mspId"], "Org1MSP", "{r:#}");
    assert!(missing["details"][0]["message"]
        .as_str()
        .unwrap()
        .contains("asset7-missing does not exist"));
    let names: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CreateAsset", "TransferAsset"], "{r:#}");
    assert_eq!(r["events"][0]["txId"], r["createTxId"], "{r:#}");

    let r = run("no-client-cert").await;
    assert_eq!(r["refused"], true, "{r:#}");

    n.stop().await;
}

/// Fuzzing the Gateway with what a client can send: proposals with mutated bytes (half of them
/// signed again, so they pass the signature check and reach the proposal checks) on Endorse
/// and Evaluate, mutated prepared transactions (signed) on Submit, and mutated CommitStatus
/// and ChaincodeEvents requests. Every call ends with an answer or keeps waiting for a
/// transaction or event it asked for (bounded here), and the Gateway keeps serving: a good
/// transaction afterwards is endorsed, submitted and committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_gateway_requests_are_answered_and_the_gateway_keeps_serving() {
    use weft_configtx::testing::{mutate, Rng};
    let n = setup().await;
    let mut gw = n.gateway().await;
    let mut rng = Rng(0x6a7e_5eed_0000_0001);
    let answered = Duration::from_secs(15);
    let endorse_request = |sp, tx_id: &str| EndorseRequest {
        transaction_id: tx_id.to_owned(),
        channel_id: CHANNEL.into(),
        proposed_transaction: Some(sp),
        endorsing_organizations: Vec::new(),
    };
    let (sp, tx_id) = n.proposal(&["put", "fz", "1"]);
    let prepared = gw
        .endorse(endorse_request(sp, &tx_id))
        .await
        .unwrap()
        .into_inner()
        .prepared_transaction
        .unwrap();
    let mut refused = 0;
    for i in 0..40 {
        let (sp, tx_id) = n.proposal(&["put", &format!("fz{i}"), "v"]);
        let bytes = mutate(&mut rng, &sp.proposal_bytes);
        let signature = if i % 2 == 0 {
            n.user1.sign(&bytes).unwrap().into()
        } else {
            sp.signature
        };
        let sp = weft_proto::protos::SignedProposal {
            proposal_bytes: bytes.into(),
            signature,
        };
        let r = tokio::time::timeout(answered, gw.endorse(endorse_request(sp.clone(), &tx_id)))
            .await
            .expect("Endorse answers");
        refused += usize::from(r.is_err());
        tokio::time::timeout(
            answered,
            gw.evaluate(EvaluateRequest {
                transaction_id: tx_id.clone(),
                channel_id: CHANNEL.into(),
                proposed_transaction: Some(sp),
                target_organizations: Vec::new(),
            }),
        )
        .await
        .expect("Evaluate answers")
        .ok();

        let payload = mutate(&mut rng, &prepared.payload);
        let env = Envelope {
            signature: n.user1.sign(&payload).unwrap().into(),
            payload: payload.into(),
        };
        tokio::time::timeout(
            answered,
            gw.submit(SubmitRequest {
                transaction_id: tx_id.clone(),
                channel_id: CHANNEL.into(),
                prepared_transaction: Some(env),
            }),
        )
        .await
        .expect("Submit answers")
        .ok();

        // These two may wait for a transaction or an event that never comes: bounded.
        let req = n.commit_status_request(&n.user1, n.user1.serialize(), &tx_id);
        let request = mutate(&mut rng, &req.request);
        let signature = n.user1.sign(&request).unwrap().into();
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            gw.commit_status(SignedCommitStatusRequest {
                request: request.into(),
                signature,
            }),
        )
        .await;
        let events = ChaincodeEventsRequest {
            channel_id: CHANNEL.into(),
            chaincode_id: CC.into(),
            identity: n.user1.serialize().into(),
            ..Default::default()
        }
        .encode_to_vec();
        let request = mutate(&mut rng, &events);
        let signature = n.user1.sign(&request).unwrap().into();
        let _ = tokio::time::timeout(
            Duration::from_millis(200),
            gw.chaincode_events(SignedChaincodeEventsRequest {
                request: request.into(),
                signature,
            }),
        )
        .await;
    }
    assert!(
        refused > 20,
        "most mutated proposals are refused: {refused} of 40"
    );

    // Still serving: a good transaction goes all the way.
    let (sp, tx_id) = n.proposal(&["put", "after-fuzz", "1"]);
    let prepared = gw
        .endorse(endorse_request(sp, &tx_id))
        .await
        .unwrap()
        .into_inner()
        .prepared_transaction
        .unwrap();
    let status = n.sign_submit_and_wait(&mut gw, &tx_id, prepared).await;
    assert_eq!(status.result, 0, "{status:?}");
    n.stop().await;
}
