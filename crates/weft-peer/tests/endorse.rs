//! The peer end to end in one process: `PeerNode::start` from a core.yaml, proposals to the
//! endorser over mutual TLS, chaincode as a service dialed from connection.json (weft-shim
//! chaincode servers), read/write sets, signatures, and the attacks on the CCaaS link.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::sync::oneshot;
use weft_crypto::{CertificateAuthority, LeafProfile};
use weft_msp::msp::SigningIdentity;
use weft_peer::endorser::signed_proposal;
use weft_peer::node::PeerNode;
use weft_peer::testing::{TestPeer, TestPeerOptions, CHANNEL};
use weft_proto::kvrwset::{range_query_info::ReadsInfo, KvrwSet};
use weft_proto::protos::endorser_client::EndorserClient;
use weft_proto::protos::{
    ChaincodeAction, ProposalResponse, ProposalResponsePayload, SignedProposal,
};
use weft_proto::rwset::TxReadWriteSet;
use weft_shim::{ChaincodeServer, Response, ServerConfig, ServerTls, Stub};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A peer in this process ([`TestPeer`]) in a temporary directory.
struct Net {
    _tmp: tempfile::TempDir,
    peer: Option<TestPeer>,
}

struct Users<'a>(&'a TestPeer);

impl Users<'_> {
    fn user(&self) -> SigningIdentity {
        self.0.user("org1").unwrap()
    }
    fn org2_user(&self) -> SigningIdentity {
        self.0.user("org2").unwrap()
    }
}

impl Net {
    async fn start() -> Net {
        let tmp = tempfile::tempdir().unwrap();
        let opts = TestPeerOptions::with_shipped_builders(&repo());
        let peer = TestPeer::start(tmp.path(), &opts).await.unwrap();
        Net {
            _tmp: tmp,
            peer: Some(peer),
        }
    }

    fn peer(&self) -> &TestPeer {
        self.peer.as_ref().unwrap()
    }

    fn node(&self) -> &PeerNode {
        &self.peer().node
    }

    fn m(&self) -> Users<'_> {
        Users(self.peer())
    }

    fn install_ccaas(&self, label: &str, name: &str, conn: &serde_json::Value) -> String {
        self.peer().install_ccaas(label, name, conn).unwrap()
    }

    async fn endorse(&self, signed: &SignedProposal) -> ProposalResponse {
        self.node().endorser.process(signed).await
    }

    async fn invoke(&self, cc: &str, args: &[&str]) -> ProposalResponse {
        self.peer().invoke(cc, args).await.unwrap()
    }

    async fn seed(&self, ns: &str, entries: &[(&str, &str)], block: u64) {
        let entries: Vec<(&str, &[u8])> = entries.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.peer().seed(ns, &entries, block).await.unwrap()
    }

    async fn stop(mut self) {
        if let Some(peer) = self.peer.take() {
            peer.stop().await;
        }
    }
}

/// Server TLS material for a chaincode server: a CA, and a server certificate for `sans`.
struct ServerPki {
    ca: CertificateAuthority,
    cert_pem: String,
    key_pem: String,
}

fn ca(name: &str) -> CertificateAuthority {
    weft_peer::testing::test_ca(name).unwrap()
}

/// (certificate PEM, PKCS#8 key PEM).
fn leaf(
    ca: &CertificateAuthority,
    cn: &str,
    sans: &[&str],
    profile: LeafProfile,
) -> (String, String) {
    weft_peer::testing::test_leaf(ca, cn, sans, profile).unwrap()
}

fn server_pki(sans: &[&str]) -> ServerPki {
    let ca = ca("chaincode server CA");
    let (cert_pem, key_pem) = leaf(&ca, "chaincode", sans, LeafProfile::TlsServer);
    ServerPki {
        ca,
        cert_pem,
        key_pem,
    }
}

/// The test chaincode: one function per chaincode message type.
#[derive(Clone)]
struct Probe;

fn ok(payload: impl Into<Bytes>) -> Response {
    Response::success(payload)
}

impl weft_shim::Chaincode for Probe {
    async fn init(&self, _stub: Stub) -> Response {
        ok("init")
    }

    async fn invoke(&self, stub: Stub) -> Response {
        let (f, a) = stub.function_and_parameters();
        let r: Result<Response, weft_shim::ChaincodeError> = async {
            Ok(match f.as_str() {
                "put" => {
                    stub.put_state(&a[0], a[1].clone().into_bytes()).await?;
                    ok("")
                }
                "get" => ok(stub.get_state(&a[0]).await?.unwrap_or_default()),
                "getput" => {
                    let v = stub.get_state(&a[0]).await?.unwrap_or_default();
                    stub.put_state(&a[1], v).await?;
                    stub.del_state(&a[2]).await?;
                    ok("")
                }
                "range" => {
                    let it = stub.get_state_by_range(&a[0], &a[1]).await?;
                    let all = it.collect_all().await?;
                    ok(all.len().to_string())
                }
                "rangefirst" => {
                    let mut it = stub.get_state_by_range(&a[0], &a[1]).await?;
                    let first = it.next().await?.map(|kv| kv.key).unwrap_or_default();
                    it.close().await?;
                    ok(first)
                }
                "page" => {
                    let size: i32 = a[2].parse().unwrap();
                    let (it, meta) = stub
                        .get_state_by_range_with_pagination(&a[0], &a[1], size, &a[3])
                        .await?;
                    let n = it.collect_all().await?.len();
                    ok(format!(
                        "{n} {} {}",
                        meta.fetched_records_count, meta.bookmark
                    ))
                }
                "pagethenput" => {
                    let (it, _) = stub
                        .get_state_by_range_with_pagination("", "", 5, "")
                        .await?;
                    drop(it);
                    stub.put_state("after", b"x".to_vec()).await?;
                    ok("")
                }
                "history" => {
                    let it = stub.get_history_for_key(&a[0]).await?;
                    let all = it.collect_all().await?;
                    let ids: Vec<String> = all.into_iter().map(|m| m.tx_id).collect();
                    ok(ids.join(","))
                }
                "setep" => {
                    stub.set_state_validation_parameter(&a[0], a[1].clone().into_bytes())
                        .await?;
                    ok("")
                }
                "getep" => ok(stub
                    .get_state_validation_parameter(&a[0])
                    .await?
                    .unwrap_or_default()),
                "event" => {
                    stub.set_event(&a[0], a[1].clone().into_bytes())?;
                    ok("")
                }
                "fail" => Response::error(a[0].clone()),
                "sleep" => {
                    tokio::time::sleep(Duration::from_millis(a[0].parse().unwrap())).await;
                    ok("slept")
                }
                "private" => ok(stub
                    .get_private_data("secret", &a[0])
                    .await?
                    .unwrap_or_default()),
                "rich" => {
                    stub.get_query_result("{}").await?;
                    ok("")
                }
                "call" => {
                    let args: Vec<&[u8]> = a[1..].iter().map(|s| s.as_bytes()).collect();
                    let r = stub.invoke_chaincode(&a[0], &args, "").await?;
                    if r.status >= 400 {
                        Response::error(format!("callee: {}", r.message))
                    } else {
                        ok(r.payload)
                    }
                }
                other => Response::error(format!("unknown function {other}")),
            })
        }
        .await;
        r.unwrap_or_else(|e| Response::error(e.to_string()))
    }
}

/// A weft-shim chaincode server; stopped when the handle drops.
struct Server {
    _stop: oneshot::Sender<()>,
}

/// A ccaas chaincode with mutual TLS on the link: installs, defines as `name`, serves.
async fn mtls_chaincode(net: &Net, label: &str, name: &str) -> (String, Server) {
    let pki = server_pki(&["127.0.0.1", "localhost"]);
    let client_ca = ca("peer client CA");
    let (client_cert, client_key) = leaf(&client_ca, "peer0", &[], LeafProfile::TlsClient);
    // The package id depends on connection.json, which needs the address: bind first on a
    // free port, then install with that address and serve on it.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let conn = serde_json::json!({
        "address": format!("127.0.0.1:{port}"),
        "dial_timeout": "2s",
        "tls_required": true,
        "client_auth_required": true,
        "client_cert": client_cert,
        "client_key": client_key,
        "root_cert": pki.ca.certificate_pem(),
    });
    let id = net.install_ccaas(label, name, &conn);
    let server = ChaincodeServer::bind(ServerConfig {
        address: format!("127.0.0.1:{port}"),
        chaincode_id: id.clone(),
        tls: Some(ServerTls {
            cert_pem: pki.cert_pem.into_bytes(),
            key_pem: pki.key_pem.into_bytes(),
            client_ca_pem: Some(client_ca.certificate_pem().into_bytes()),
        }),
    })
    .await
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(Probe, async move {
        let _ = stopped.await;
    }));
    (id, Server { _stop: stop })
}

fn action(resp: &ProposalResponse) -> ChaincodeAction {
    let prp = ProposalResponsePayload::decode(resp.payload.clone()).unwrap();
    ChaincodeAction::decode(prp.extension).unwrap()
}

fn kv_rwset(resp: &ProposalResponse, ns: &str) -> KvrwSet {
    let rw = TxReadWriteSet::decode(action(resp).results).unwrap();
    let ns = rw
        .ns_rwset
        .iter()
        .find(|n| n.namespace == ns)
        .unwrap_or_else(|| panic!("no namespace {ns} in {rw:?}"));
    KvrwSet::decode(ns.rwset.clone()).unwrap()
}

fn status(resp: &ProposalResponse) -> (i32, String, Bytes) {
    let r = resp.response.clone().unwrap_or_default();
    (r.status, r.message, r.payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endorses_over_ccaas_with_mutual_tls_and_signs() {
    let net = Net::start().await;
    let (_id, _server) = mtls_chaincode(&net, "probe_1", "probe").await;
    net.seed("probe", &[("a", "apple"), ("z", "zebra")], 3)
        .await;

    let user = net.m().user();
    let (sp, txid) = signed_proposal(
        &user,
        CHANNEL,
        "probe",
        &[b"getput", b"a", b"b", b"z"],
        &[("secret", b"not hashed")],
    )
    .unwrap();
    let resp = net.endorse(&sp).await;
    assert_eq!(status(&resp).0, 200, "{resp:?}");

    // The endorsement is the peer's signature over payload || endorser.
    let e = resp.endorsement.clone().expect("endorsed");
    assert_eq!(
        e.endorser.as_ref(),
        net.node().identity.serialize().as_slice()
    );
    let cert =
        rustls_pki_types::CertificateDer::from(net.node().identity.certificate_der().to_vec());
    let key = weft_crypto::PublicKey::from_certificate(&cert).unwrap();
    key.verify(
        &[resp.payload.as_ref(), e.endorser.as_ref()].concat(),
        &e.signature,
    )
    .unwrap();

    // The proposal hash leaves the transient map out, as Fabric's does.
    let up = weft_peer::endorser::unpack(&sp).unwrap();
    assert_eq!(up.channel_header.tx_id, txid);
    let prp = ProposalResponsePayload::decode(resp.payload.clone()).unwrap();
    assert_eq!(prp.proposal_hash.as_ref(), up.proposal_hash.as_slice());
    assert_eq!(up.transient_map_len, 1);

    // Reads carry committed versions; the write and the delete are recorded.
    let kv = kv_rwset(&resp, "probe");
    let reads: Vec<(String, Option<(u64, u64)>)> = kv
        .reads
        .iter()
        .map(|r| (r.key.clone(), r.version.map(|v| (v.block_num, v.tx_num))))
        .collect();
    assert_eq!(reads, [("a".to_owned(), Some((3, 0)))]);
    let writes: Vec<(String, bool, Bytes)> = kv
        .writes
        .iter()
        .map(|w| (w.key.clone(), w.is_delete, w.value.clone()))
        .collect();
    assert_eq!(
        writes,
        [
            ("b".to_owned(), false, Bytes::from_static(b"apple")),
            ("z".to_owned(), true, Bytes::new())
        ]
    );
    assert_eq!(action(&resp).chaincode_id.unwrap().name, "probe");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_pagination_history_metadata_events_and_refusals() {
    let net = Net::start().await;
    let (_id, _server) = mtls_chaincode(&net, "probe_1", "probe").await;
    let keys: Vec<String> = (0..250).map(|i| format!("k{i:03}")).collect();
    let entries: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    net.seed("probe", &entries, 1).await;
    net.seed("probe", &[("k000", "v2")], 2).await;

    // A range over 250 keys comes in three batches; the read set records all of it.
    let resp = net.invoke("probe", &["range", "k", "l"]).await;
    assert_eq!(status(&resp).2.as_ref(), b"250");
    let kv = kv_rwset(&resp, "probe");
    let rq = &kv.range_queries_info[0];
    assert!(rq.itr_exhausted);
    let Some(ReadsInfo::RawReads(reads)) = &rq.reads_info else {
        panic!("raw reads expected")
    };
    assert_eq!(reads.kv_reads.len(), 250);
    assert_eq!(reads.kv_reads[0].version.unwrap().block_num, 2);

    // An iterator closed early records what the peer sent: its first batch of 100.
    let resp = net.invoke("probe", &["rangefirst", "k100", ""]).await;
    assert_eq!(status(&resp).2.as_ref(), b"k100");
    let rq = kv_rwset(&resp, "probe").range_queries_info[0].clone();
    assert!(!rq.itr_exhausted);
    assert_eq!(
        (rq.start_key.as_str(), rq.end_key.as_str()),
        ("k100", "k199")
    );

    // Pagination: a page over 100 results keeps its metadata (Fabric loses it).
    let resp = net.invoke("probe", &["page", "k", "l", "150", ""]).await;
    assert_eq!(status(&resp).2.as_ref(), b"150 150 k150");
    let resp = net
        .invoke("probe", &["page", "k", "l", "150", "k150"])
        .await;
    assert_eq!(status(&resp).2.as_ref(), b"100 100 ");

    // Writes after a paginated query are refused, as in Fabric.
    let resp = net.invoke("probe", &["pagethenput"]).await;
    let (code, msg, _) = status(&resp);
    assert_eq!(code, 500);
    assert!(msg.contains("paginated query"), "{msg}");
    assert!(resp.endorsement.is_none());

    // History, newest first.
    let resp = net.invoke("probe", &["history", "k000"]).await;
    assert_eq!(status(&resp).2.as_ref(), b"seed-2-0,seed-1-0");

    // Key-level endorsement policy: a metadata write of the whole map.
    let resp = net
        .invoke("probe", &["setep", "k001", "policy-bytes"])
        .await;
    assert_eq!(status(&resp).0, 200, "{resp:?}");
    let kv = kv_rwset(&resp, "probe");
    assert_eq!(kv.metadata_writes.len(), 1);
    assert_eq!(kv.metadata_writes[0].key, "k001");
    assert_eq!(
        kv.metadata_writes[0].entries[0].name,
        "VALIDATION_PARAMETER"
    );
    assert_eq!(
        kv.metadata_writes[0].entries[0].value.as_ref(),
        b"policy-bytes"
    );

    // Events ride in the chaincode action.
    let resp = net.invoke("probe", &["event", "Created", "payload"]).await;
    let ev = weft_proto::protos::ChaincodeEvent::decode(action(&resp).events).unwrap();
    assert_eq!(
        (ev.event_name.as_str(), ev.payload.as_ref()),
        ("Created", &b"payload"[..])
    );
    assert_eq!(ev.chaincode_id, "probe");

    // Refusals reach the chaincode as errors naming the problem.
    let resp = net.invoke("probe", &["private", "k"]).await;
    assert!(
        status(&resp)
            .1
            .contains("collection \"secret\" is not defined"),
        "{resp:?}"
    );
    let resp = net.invoke("probe", &["rich"]).await;
    assert!(status(&resp).1.contains("rich queries"), "{resp:?}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaincode_errors_timeouts_and_calls() {
    let net = Net::start().await;
    let (_a, _s1) = mtls_chaincode(&net, "probe_1", "probe").await;
    let (_b, _s2) = mtls_chaincode(&net, "other_1", "other").await;
    net.seed("other", &[("x", "from-other")], 1).await;

    // A chaincode error is returned, not endorsed.
    let resp = net.invoke("probe", &["fail", "asset exists"]).await;
    assert_eq!(status(&resp).0, 500);
    assert_eq!(status(&resp).1, "asset exists");
    assert!(resp.endorsement.is_none() && resp.payload.is_empty());

    // Past chaincode.executetimeout (3s here) the proposal fails with a clear message.
    let resp = net.invoke("probe", &["sleep", "4000"]).await;
    let (code, msg, _) = status(&resp);
    assert_eq!(code, 500);
    assert!(
        msg.contains("did not answer") && msg.contains("executetimeout"),
        "{msg}"
    );

    // Chaincode to chaincode on the same channel: one read set, two namespaces.
    let resp = net.invoke("probe", &["call", "other", "get", "x"]).await;
    assert_eq!(status(&resp).2.as_ref(), b"from-other", "{resp:?}");
    let kv = kv_rwset(&resp, "other");
    assert_eq!(kv.reads[0].key, "x");
    // Another channel is refused.
    let resp = net
        .invoke("probe", &["call", "other/otherchannel", "get", "x"])
        .await;
    assert!(status(&resp).1.contains("same channel only"), "{resp:?}");
    // Re-entering the running chaincode is refused, not deadlocked.
    let resp = net.invoke("probe", &["call", "probe", "get", "x"]).await;
    assert!(status(&resp).1.contains("already executing"), "{resp:?}");
    net.stop().await;
}

/// Attack: a channel guards chaincode-to-chaincode calls more strictly than proposals
/// (`peer/ChaincodeToChaincode` = Org1's admins here, `peer/Propose` the default Writers). A
/// client may still call `other` directly, but not through the proxy chaincode `probe`, which
/// before this check reached it anyway. Org1's admin may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaincode_to_chaincode_calls_follow_the_channel_acl() {
    use weft_proto::protos::{AcLs, ApiResource};
    let tmp = tempfile::tempdir().unwrap();
    let network = weft_configtx::testing::two_org_network(tmp.path(), 7050).unwrap();
    let (_, mut config) = weft_configtx::config_from_block(&network.genesis).unwrap();
    let app = config
        .channel_group
        .as_mut()
        .unwrap()
        .groups
        .get_mut("Application")
        .unwrap();
    let acls = app.values.get_mut("ACLs").unwrap();
    let mut decoded = AcLs::decode(acls.value.clone()).unwrap();
    decoded.acls.insert(
        "peer/ChaincodeToChaincode".into(),
        ApiResource {
            policy_ref: "/Channel/Application/Org1MSP/Admins".into(),
        },
    );
    acls.value = decoded.encode_to_vec().into();
    let genesis = weft_configtx::genesis_block_from_config(CHANNEL, &config).unwrap();
    let opts = TestPeerOptions::with_shipped_builders(&repo());
    let peer = TestPeer::start_in_network(tmp.path(), "org1", &opts)
        .await
        .unwrap();
    peer.node.join_channel(genesis).await.unwrap();
    let net = Net {
        _tmp: tmp,
        peer: Some(peer),
    };
    let (_a, _probe) = mtls_chaincode(&net, "probe_1", "probe").await;
    let (_b, _other) = mtls_chaincode(&net, "other_1", "other").await;

    let user = net.m().user();
    let admin = network.orgs[0].admin.signer().unwrap();
    let call = |signer: &SigningIdentity, cc: &str, args: &[&[u8]]| {
        signed_proposal(signer, CHANNEL, cc, args, &[]).unwrap().0
    };
    // Directly: peer/Propose, Writers.
    let resp = net
        .endorse(&call(&user, "other", &[b"put", b"x", b"1"]))
        .await;
    assert_eq!(status(&resp).0, 200, "{resp:?}");
    // Through the proxy: refused, naming the ACL.
    let resp = net
        .endorse(&call(
            &user,
            "probe",
            &[b"call", b"other", b"put", b"x", b"2"],
        ))
        .await;
    let (code, msg, _) = status(&resp);
    assert_eq!(code, 500, "{resp:?}");
    assert!(
        msg.contains("peer/ChaincodeToChaincode")
            && msg.contains("/Channel/Application/Org1MSP/Admins"),
        "{msg}"
    );
    assert!(resp.endorsement.is_none());
    // Org1's admin satisfies it.
    let resp = net
        .endorse(&call(
            &admin,
            "probe",
            &[b"call", b"other", b"put", b"x", b"3"],
        ))
        .await;
    assert_eq!(status(&resp).0, 200, "{resp:?}");
    assert_eq!(kv_rwset(&resp, "other").writes[0].key, "x");
    net.stop().await;
}

fn tamper(
    sp: &SignedProposal,
    f: impl FnOnce(&mut weft_proto::common::ChannelHeader, &mut weft_proto::common::SignatureHeader),
) -> Vec<u8> {
    use weft_proto::common::{ChannelHeader, Header, SignatureHeader};
    use weft_proto::protos::Proposal;
    let mut p = Proposal::decode(sp.proposal_bytes.clone()).unwrap();
    let h = Header::decode(p.header.clone()).unwrap();
    let mut ch = ChannelHeader::decode(h.channel_header).unwrap();
    let mut sh = SignatureHeader::decode(h.signature_header).unwrap();
    f(&mut ch, &mut sh);
    p.header = Header {
        channel_header: ch.encode_to_vec().into(),
        signature_header: sh.encode_to_vec().into(),
    }
    .encode_to_vec()
    .into();
    p.encode_to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposal_attacks_are_refused_with_reasons() {
    let net = Net::start().await;
    let (_id, _server) = mtls_chaincode(&net, "probe_1", "probe").await;
    let user = net.m().user();
    let (good, txid) = signed_proposal(&user, CHANNEL, "probe", &[b"get", b"a"], &[]).unwrap();
    let first = net.endorse(&good).await;
    assert_eq!(status(&first).0, 200, "{first:?}");

    let resign = |bytes: Vec<u8>| SignedProposal {
        signature: user.sign(&bytes).unwrap().into(),
        proposal_bytes: bytes.into(),
    };
    let cases: Vec<(&str, SignedProposal, &str)> = vec![
        (
            "wrong header type",
            resign(tamper(&good, |c, _| c.r#type = 1)),
            "invalid header type CONFIG",
        ),
        (
            "epoch",
            resign(tamper(&good, |c, _| c.epoch = 7)),
            "expected 0, got 7",
        ),
        (
            "no nonce",
            resign(tamper(&good, |_, s| s.nonce = Bytes::new())),
            "no nonce",
        ),
        (
            "no creator",
            resign(tamper(&good, |_, s| s.creator = Bytes::new())),
            "no creator",
        ),
        (
            "tx id not derived from nonce and creator",
            resign(tamper(&good, |c, _| c.tx_id = "f".repeat(64))),
            "incorrectly formed tx id",
        ),
        (
            "unknown channel",
            resign(tamper(&good, |c, _| c.channel_id = "elsewhere".into())),
            "channel \"elsewhere\" is not served",
        ),
        (
            "signature by someone else",
            SignedProposal {
                proposal_bytes: good.proposal_bytes.clone(),
                signature: net
                    .m()
                    .org2_user()
                    .sign(&good.proposal_bytes)
                    .unwrap()
                    .into(),
            },
            "access denied",
        ),
        (
            "garbage",
            SignedProposal {
                proposal_bytes: Bytes::from_static(b"\xff\xff\xff"),
                signature: Bytes::new(),
            },
            "malformed proposal",
        ),
    ];
    for (what, sp, expect) in cases {
        let (code, msg, _) = status(&net.endorse(&sp).await);
        assert_eq!(code, 500, "{what}");
        assert!(msg.contains(expect), "{what}: {msg}");
    }

    // A creator from an org that is not in the channel.
    let (sp, _) =
        signed_proposal(&net.m().org2_user(), CHANNEL, "probe", &[b"get", b"a"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(
        msg.contains("access denied") && msg.contains("Org2MSP"),
        "{msg}"
    );

    // A chaincode that is not defined.
    let (sp, _) = signed_proposal(&user, CHANNEL, "nope", &[b"get"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(msg.contains("\"nope\" is not defined"), "{msg}");

    // Duplicate tx ids: one already on the ledger, one being endorsed right now.
    net.node()
        .channels
        .get(CHANNEL)
        .unwrap()
        .record_committed(txid);
    let msg = status(&net.endorse(&good).await).1;
    assert!(msg.contains("already on the ledger"), "{msg}");
    let (slow, _) = signed_proposal(&user, CHANNEL, "probe", &[b"sleep", b"800"], &[]).unwrap();
    let (a, b) = tokio::join!(net.endorse(&slow), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        net.endorse(&slow).await
    });
    assert_eq!(status(&a).0, 200, "{a:?}");
    assert!(status(&b).1.contains("being endorsed already"), "{b:?}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endorser_over_grpc_requires_client_certificates() {
    let net = Net::start().await;
    let (_id, _server) = mtls_chaincode(&net, "probe_1", "probe").await;
    let org1 = net.peer().org("org1");
    let user_tls = org1.join("users/User1@org1.example.com/tls");
    let roots = weft_tls::Trust::roots_from_pem_files(&[user_tls.join("ca.crt")], "ca").unwrap();
    let id = weft_tls::Identity::from_pem_files(
        &user_tls.join("client.crt"),
        &user_tls.join("client.key"),
        "client",
    )
    .unwrap();
    let endpoint = weft_tls::Endpoint::parse(&net.node().peer_address.to_string()).unwrap();
    let client = weft_tls::TlsClient::new(
        roots.clone(),
        weft_tls::ClientIdentity::Certificate(id),
        weft_tls::Profile::Fabric,
    )
    .unwrap();
    let ch = weft_tls::grpc::channel(Some(client.clone()), endpoint.clone())
        .await
        .unwrap();
    let (sp, _) = signed_proposal(&net.m().user(), CHANNEL, "probe", &[b"get", b"a"], &[]).unwrap();
    let resp = EndorserClient::new(ch)
        .process_proposal(sp)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status(&resp).0, 200);

    // Without a client certificate the handshake is refused, and the reason says which
    // setting requires one.
    let anonymous = client.without_identity();
    let err = weft_tls::grpc::channel(Some(anonymous), endpoint)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("client certificate"), "{msg}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ccaas_link_attacks_are_refused() {
    let net = Net::start().await;
    let user = net.m().user();

    // 1. The server's certificate is not from root_cert's CA.
    let pki = server_pki(&["127.0.0.1"]);
    let other = ca("some other CA");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let id = net.install_ccaas(
        "wrongroot_1",
        "wrongroot",
        &serde_json::json!({
            "address": format!("127.0.0.1:{port}"),
            "tls_required": true,
            "root_cert": other.certificate_pem(),
        }),
    );
    let _s = serve_on(port, &id, &pki, None).await;
    let (sp, _) = signed_proposal(&user, CHANNEL, "wrongroot", &[b"get", b"a"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(msg.contains("root_cert"), "untrusted server: {msg}");

    // 2. The server's certificate does not carry the host of `address`.
    let pki = server_pki(&["chaincode.example.com"]);
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let id = net.install_ccaas(
        "wronghost_1",
        "wronghost",
        &serde_json::json!({
            "address": format!("127.0.0.1:{port}"),
            "tls_required": true,
            "root_cert": pki.ca.certificate_pem(),
        }),
    );
    let _s2 = serve_on(port, &id, &pki, None).await;
    let (sp, _) = signed_proposal(&user, CHANNEL, "wronghost", &[b"get", b"a"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(
        msg.contains("expected the name '127.0.0.1'") && msg.contains("chaincode.example.com"),
        "wrong host: {msg}"
    );

    // 3. The server requires a client certificate and connection.json gives none.
    let pki = server_pki(&["127.0.0.1"]);
    let client_ca = ca("peer client CA");
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let id = net.install_ccaas(
        "noclient_1",
        "noclient",
        &serde_json::json!({
            "address": format!("127.0.0.1:{port}"),
            "tls_required": true,
            "client_auth_required": false,
            "root_cert": pki.ca.certificate_pem(),
        }),
    );
    let _s3 = serve_on(port, &id, &pki, Some(&client_ca)).await;
    let (sp, _) = signed_proposal(&user, CHANNEL, "noclient", &[b"get", b"a"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(
        msg.contains("requires a client certificate") && msg.contains("client_cert/client_key"),
        "no client cert: {msg}"
    );

    // 4. The server registers as another package.
    let pki = server_pki(&["127.0.0.1"]);
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let _id = net.install_ccaas(
        "impostor_1",
        "impostor",
        &serde_json::json!({
            "address": format!("127.0.0.1:{port}"),
            "tls_required": true,
            "root_cert": pki.ca.certificate_pem(),
        }),
    );
    let _s4 = serve_on(port, "someone-else:1234", &pki, None).await;
    let (sp, _) = signed_proposal(&user, CHANNEL, "impostor", &[b"get", b"a"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(
        msg.contains("registered as \"someone-else:1234\""),
        "impostor: {msg}"
    );

    // 5. Nothing listening: deploy warns, the proposal fails saying so.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let id = net.install_ccaas(
        "absent_1",
        "absent",
        &serde_json::json!({
            "address": format!("127.0.0.1:{port}"),
            "dial_timeout": "1s",
            "tls_required": true,
            "root_cert": pki.ca.certificate_pem(),
        }),
    );
    let report = net.node().runtime.deploy(&id).await.unwrap();
    assert_eq!(report.server, Some((format!("127.0.0.1:{port}"), false)));
    let (sp, _) = signed_proposal(&user, CHANNEL, "absent", &[b"get", b"a"], &[]).unwrap();
    let msg = status(&net.endorse(&sp).await).1;
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "absent: {msg}");
    net.stop().await;
}

async fn serve_on(
    port: u16,
    id: &str,
    pki: &ServerPki,
    client_ca: Option<&CertificateAuthority>,
) -> Server {
    let server = ChaincodeServer::bind(ServerConfig {
        address: format!("127.0.0.1:{port}"),
        chaincode_id: id.into(),
        tls: Some(ServerTls {
            cert_pem: pki.cert_pem.clone().into_bytes(),
            key_pem: pki.key_pem.clone().into_bytes(),
            client_ca_pem: client_ca.map(|c| c.certificate_pem().into_bytes()),
        }),
    })
    .await
    .unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(Probe, async move {
        let _ = stopped.await;
    }));
    Server { _stop: stop }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_chaincode_server_when_tls_not_required() {
    let net = Net::start().await;
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let id = net.install_ccaas(
        "plain_1",
        "plain",
        &serde_json::json!({ "address": format!("127.0.0.1:{port}") }),
    );
    let server = ChaincodeServer::bind(ServerConfig {
        address: format!("127.0.0.1:{port}"),
        chaincode_id: id,
        tls: None,
    })
    .await
    .unwrap();
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.run_until(Probe, async move {
        let _ = stopped.await;
    }));
    net.seed("plain", &[("a", "1")], 1).await;
    let resp = net.invoke("plain", &["get", "a"]).await;
    assert_eq!(status(&resp).2.as_ref(), b"1", "{resp:?}");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_mode_runs_chaincode_started_by_hand() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = TestPeerOptions::with_shipped_builders(&repo());
    opts.dev_mode = true;
    let peer = TestPeer::start(tmp.path(), &opts).await.unwrap();
    let dir = peer
        .node
        .dev_dir
        .clone()
        .expect("dev mode writes the chaincode's TLS files");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("client.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // Nothing is running yet: the peer launches nothing in dev mode and says what to do.
    let resp = peer.invoke("probe", &["get", "a"]).await.unwrap();
    let msg = status(&resp).1;
    assert!(
        msg.contains("development mode") && msg.contains("CORE_CHAINCODE_ID_NAME=probe"),
        "{msg}"
    );

    // A chaincode started by hand with the files the peer wrote registers by name.
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap();
    let config = weft_shim::LaunchConfig {
        chaincode_id: "probe".into(),
        peer_address: peer.node.chaincode_advertised.clone(),
        tls: Some(weft_shim::LaunchTls {
            root_pem: read("ca.crt"),
            client_cert_pem: read("client.crt"),
            client_key_pem: read("client.key"),
            server_name_override: None,
        }),
        mspid: None,
    };
    tokio::spawn(weft_shim::start_with(Probe, config));
    let stream = peer
        .node
        .runtime
        .registry()
        .wait_registered("probe", Duration::from_secs(10))
        .await
        .expect("registered in dev mode");
    assert!(stream.dev_mode());
    peer.seed("probe", &[("a", b"dev".as_slice())], 1)
        .await
        .unwrap();
    let resp = peer.invoke("probe", &["get", "a"]).await.unwrap();
    assert_eq!(status(&resp).2.as_ref(), b"dev", "{resp:?}");
    assert!(resp.endorsement.is_some());
    peer.stop().await;
    assert!(
        !dir.exists(),
        "the development files are removed at shutdown"
    );
}

/// Mutated signed proposals (bytes flipped, truncated, fields spliced): every one is
/// answered with a response, none panics, and none is endorsed unless it is the original.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_proposals_are_refused_not_fatal() {
    let net = Net::start().await;
    let (_id, _server) = mtls_chaincode(&net, "probe_1", "probe").await;
    let (good, _) =
        signed_proposal(&net.m().user(), CHANNEL, "probe", &[b"get", b"a"], &[]).unwrap();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut endorsed = 0;
    for round in 0..600 {
        let mut bytes = good.proposal_bytes.to_vec();
        let mut sig = good.signature.to_vec();
        match round % 3 {
            0 => {
                let i = (next() as usize) % bytes.len();
                bytes[i] ^= (next() as u8) | 1;
            }
            1 => bytes.truncate((next() as usize) % bytes.len()),
            _ => {
                let i = (next() as usize) % sig.len();
                sig[i] ^= (next() as u8) | 1;
            }
        }
        let sp = SignedProposal {
            proposal_bytes: bytes.into(),
            signature: sig.into(),
        };
        let resp = net.endorse(&sp).await;
        let (code, msg, _) = status(&resp);
        assert!(code == 500 || code == 200, "round {round}: {resp:?}");
        if resp.endorsement.is_some() {
            endorsed += 1;
        } else {
            assert!(!msg.is_empty(), "round {round}: a refusal says why");
        }
    }
    // A flipped bit can land in an unsigned place only if the signature still verifies,
    // which it cannot: the signature covers every proposal byte.
    assert_eq!(endorsed, 0);
    net.stop().await;
}

/// `GET /metrics` on the peer's operations listener (plain HTTP in the test peer).
async fn scrape(node: &PeerNode) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = node
        .operations_address
        .expect("the operations service is on");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    assert!(out.starts_with("HTTP/1.0 200"), "{out}");
    out
}

/// The value of the sample `line_start` (name and labels) in a scrape, if present.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_metrics_count_endorsements_and_refusals() {
    let net = Net::start().await;
    let node = net.node();
    let before = scrape(node).await;
    assert_eq!(
        sample(&before, "endorser_proposals_received"),
        Some(0.0),
        "{before}"
    );

    // One endorsement, and one proposal refused before any chaincode runs.
    let (_id, _server) = mtls_chaincode(&net, "probe_1", "probe").await;
    let user = net.m().user();
    let (good, _) = signed_proposal(&user, CHANNEL, "probe", &[b"get", b"a"], &[]).unwrap();
    assert_eq!(status(&net.endorse(&good).await).0, 200);
    let forged = SignedProposal {
        proposal_bytes: good.proposal_bytes.clone(),
        signature: net
            .m()
            .org2_user()
            .sign(&good.proposal_bytes)
            .unwrap()
            .into(),
    };
    assert_eq!(status(&net.endorse(&forged).await).0, 500);

    // Attack: chaincode registering with a launch certificate issued for another package.
    let creds = node.authority.issue("other:ffff").unwrap();
    let launched = weft_shim::start_with(
        weft_shim::contract::Contract::new("t"),
        weft_shim::LaunchConfig {
            chaincode_id: "asset:0a1b".into(),
            peer_address: node.chaincode_advertised.clone(),
            tls: Some(weft_shim::LaunchTls {
                root_pem: creds.root_pem.clone().into_bytes(),
                client_cert_pem: creds.cert_pem.clone().into_bytes(),
                client_key_pem: creds.key_pem.clone().into_bytes(),
                server_name_override: None,
            }),
            mspid: Some("Org1MSP".into()),
        },
    );
    let e = tokio::time::timeout(Duration::from_secs(10), launched)
        .await
        .expect("the refusal comes promptly")
        .expect_err("the registration must be refused");
    assert!(e.to_string().contains("issued for other:ffff"), "{e}");

    // Attack: plaintext spoken to the peer's TLS port.
    {
        use tokio::io::AsyncWriteExt;
        let mut tcp = tokio::net::TcpStream::connect(node.peer_address)
            .await
            .unwrap();
        let _ = tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let _ = tcp.shutdown().await;
    }

    let tls_line =
        "tls_handshake_failures_total{listener=\"peer\",reason=\"plaintext_to_tls_port\"}";
    let mut text = String::new();
    for _ in 0..100 {
        text = scrape(node).await;
        if sample(&text, tls_line).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        sample(&text, "endorser_proposals_received"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "endorser_successful_proposals"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "endorser_proposal_validation_failures"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("endorser_proposal_duration_count{{channel=\"{CHANNEL}\",chaincode=\"probe\",success=\"true\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "chaincode_registrations_refused_total{reason=\"wrong_package\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, tls_line), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            &format!("ledger_blockchain_height{{channel=\"{CHANNEL}\"}}")
        ),
        Some(node.channels.get(CHANNEL).unwrap().blocks().height() as f64),
        "{text}"
    );
    net.stop().await;
}

/// A tar.gz of (name, bytes) members written with raw header bytes, so names like `../x`
/// that the `tar` crate's safe setters refuse can be produced.
fn raw_tgz(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut header = tar::Header::new_gnu();
        {
            let bytes = header.as_mut_bytes();
            bytes[..100].fill(0);
            bytes[..name.len()].copy_from_slice(name.as_bytes());
        }
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder.append(&header, *data).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A channel-less `_lifecycle` call, as `peer lifecycle chaincode install` sends it.
fn local_call(signer: &SigningIdentity, function: &str, arg: &[u8]) -> SignedProposal {
    signed_proposal(signer, "", "_lifecycle", &[function.as_bytes(), arg], &[])
        .unwrap()
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_and_installed_packages_through_proposals_for_admins_only() {
    use weft_peer::package::{code_archive_from_directory, ChaincodePackage};
    use weft_proto::lifecycle::{
        GetInstalledChaincodePackageArgs, GetInstalledChaincodePackageResult, InstallChaincodeArgs,
        InstallChaincodeResult, QueryInstalledChaincodesResult,
    };
    let net = Net::start().await;
    let peer = net.peer();
    let admin = SigningIdentity::from_local_msp_dir(
        &peer.org("org1").join("users/Admin@org1.example.com/msp"),
        "Org1MSP",
    )
    .unwrap();
    let org2_admin = SigningIdentity::from_local_msp_dir(
        &peer.org("org2").join("users/Admin@org2.example.com/msp"),
        "Org2MSP",
    )
    .unwrap();
    let user = net.m().user();
    let src = peer.dir.join("src-local");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("connection.json"),
        r#"{"address":"127.0.0.1:1","dial_timeout":"1s","tls_required":false}"#,
    )
    .unwrap();
    let code = code_archive_from_directory(&src, "ccaas").unwrap();
    let pkg = ChaincodePackage::build("local_1.0", "ccaas", "", &code).unwrap();
    let expected_id = ChaincodePackage::parse(&pkg)
        .unwrap()
        .package_id()
        .to_string();
    let install_arg = |bytes: &[u8]| {
        InstallChaincodeArgs {
            chaincode_install_package: bytes.to_vec().into(),
        }
        .encode_to_vec()
    };
    let query_all = |signer: &SigningIdentity| local_call(signer, "QueryInstalledChaincodes", &[]);

    // A client of the peer's org may not install, nor list what is installed; nor may
    // another org's admin. Each refusal says whose admin is needed and who signed.
    let r = net
        .endorse(&local_call(&user, "InstallChaincode", &install_arg(&pkg)))
        .await;
    let (code_, msg, _) = status(&r);
    assert_eq!(code_, 500, "{msg}");
    for part in [
        "access denied for _lifecycle InstallChaincode",
        "User1@org1.example.com",
        "not an admin",
        "admin of the peer's organization",
    ] {
        assert!(msg.contains(part), "{part:?} not in {msg}");
    }
    let (code_, msg, _) = status(&net.endorse(&query_all(&user)).await);
    assert_eq!(code_, 500);
    assert!(msg.contains("not an admin"), "{msg}");
    let (code_, msg, _) = status(
        &net.endorse(&local_call(
            &org2_admin,
            "InstallChaincode",
            &install_arg(&pkg),
        ))
        .await,
    );
    assert_eq!(code_, 500);
    assert!(msg.contains("Org1MSP"), "{msg}");
    let store = weft_peer::package::InstallStore::open(&peer.fs_path).unwrap();
    assert!(
        store.query_installed().unwrap().is_empty(),
        "nothing installed by the refused calls"
    );

    // The org's admin installs: the package is stored and built (the ccaas builder), and the
    // answer is unendorsed (no channel, nothing simulated).
    let r = net
        .endorse(&local_call(&admin, "InstallChaincode", &install_arg(&pkg)))
        .await;
    let (code_, msg, payload) = status(&r);
    assert_eq!(code_, 200, "{msg}");
    assert!(r.endorsement.is_none());
    let installed = InstallChaincodeResult::decode(payload).unwrap();
    assert_eq!(installed.package_id, expected_id);
    assert_eq!(installed.label, "local_1.0");
    // Installing it again is refused, as in Fabric.
    let (code_, msg, _) = status(
        &net.endorse(&local_call(&admin, "InstallChaincode", &install_arg(&pkg)))
            .await,
    );
    assert_eq!(code_, 500);
    assert!(msg.contains("already successfully installed"), "{msg}");

    let (code_, msg, payload) = status(&net.endorse(&query_all(&admin)).await);
    assert_eq!(code_, 200, "{msg}");
    let all = QueryInstalledChaincodesResult::decode(payload).unwrap();
    assert_eq!(all.installed_chaincodes.len(), 1, "{all:?}");
    assert_eq!(all.installed_chaincodes[0].package_id, expected_id);
    assert_eq!(all.installed_chaincodes[0].label, "local_1.0");

    let get = |id: &str| {
        local_call(
            &admin,
            "GetInstalledChaincodePackage",
            &GetInstalledChaincodePackageArgs {
                package_id: id.to_owned(),
            }
            .encode_to_vec(),
        )
    };
    let (code_, msg, payload) = status(&net.endorse(&get(&expected_id)).await);
    assert_eq!(code_, 200, "{msg}");
    assert_eq!(
        GetInstalledChaincodePackageResult::decode(payload)
            .unwrap()
            .chaincode_install_package,
        pkg
    );
    let unknown = format!("nothere_1.0:{}", "a".repeat(64));
    let (code_, msg, _) = status(&net.endorse(&get(&unknown)).await);
    assert_eq!(code_, 404, "{msg}");
    assert!(
        msg.contains(&format!("'{unknown}' not found")) && msg.contains("queryinstalled"),
        "{msg}"
    );
    let (code_, msg, _) = status(&net.endorse(&get("../../etc/passwd")).await);
    assert_eq!(code_, 500, "{msg}");
    assert!(msg.contains("../../etc/passwd"), "{msg}");

    // Attack: a package whose code.tar.gz escapes the build directory is refused over the
    // proposal path, naming the entry, and nothing is installed.
    let evil_code = raw_tgz(&[("../../escape.txt", b"x")]);
    let evil = raw_tgz(&[
        (
            "metadata.json",
            br#"{"path":"","type":"ccaas","label":"evil_1"}"#,
        ),
        ("code.tar.gz", &evil_code),
    ]);
    let (code_, msg, _) = status(
        &net.endorse(&local_call(&admin, "InstallChaincode", &install_arg(&evil)))
            .await,
    );
    assert_eq!(code_, 500, "{msg}");
    assert!(
        msg.contains("../../escape.txt") && msg.contains("code.tar.gz"),
        "{msg}"
    );
    assert!(!peer.dir.join("escape.txt").exists());

    // A package no builder accepts (no Go builder here) is refused and not left installed.
    let go_code = raw_tgz(&[("src/main.go", b"package main\n")]);
    let go = ChaincodePackage::build("gocc_1.0", "golang", "", &go_code).unwrap();
    let (code_, msg, _) = status(
        &net.endorse(&local_call(&admin, "InstallChaincode", &install_arg(&go)))
            .await,
    );
    assert_eq!(code_, 500, "{msg}");
    assert!(msg.contains("could not build chaincode"), "{msg}");
    let (_, _, payload) = status(&net.endorse(&query_all(&admin)).await);
    let all = QueryInstalledChaincodesResult::decode(payload).unwrap();
    assert_eq!(all.installed_chaincodes.len(), 1, "{all:?}");

    // Only the peer-local functions are served without a channel, and only for _lifecycle.
    let (code_, msg, _) = status(
        &net.endorse(&local_call(&admin, "CommitChaincodeDefinition", &[]))
            .await,
    );
    assert_eq!(code_, 500);
    assert!(msg.contains("needs a channel"), "{msg}");
    let (other, _) = signed_proposal(&admin, "", "probe", &[b"get", b"a"], &[]).unwrap();
    let (code_, msg, _) = status(&net.endorse(&other).await);
    assert_eq!(code_, 500);
    assert!(msg.contains("names no channel"), "{msg}");
    // Through a channel, the local functions say how to call them.
    let (on_channel, _) = signed_proposal(
        &admin,
        CHANNEL,
        "_lifecycle",
        &[b"QueryInstalledChaincodes", b""],
        &[],
    )
    .unwrap();
    let (code_, msg, _) = status(&net.endorse(&on_channel).await);
    assert_eq!(code_, 500);
    assert!(msg.contains("without a channel"), "{msg}");
    net.stop().await;
}
