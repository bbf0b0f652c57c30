//! An in-memory test peer that runs a chaincode over the real stream protocol, without sockets.
//!
//! [`MemoryPeer`] plays the peer's side of the chaincode stream for unit tests, as Go's
//! `shimtest.MockStub` does, but without a mock stub: the chaincode runs in this crate's real
//! stream engine (the one launched and server modes use), registers (REGISTER, REGISTERED,
//! READY), and every stub call travels as a `ChaincodeMessage` that this peer answers from an
//! in-memory ledger. What a chaincode does here it does the same way against a Fabric peer.
//!
//! ```no_run
//! # async fn demo() {
//! use weft_shim::contract::{Contract, Ctx};
//! use weft_shim::testing::MemoryPeer;
//!
//! let contract = Contract::new("basic").submit("Set", |ctx: Ctx, (k, v): (String, String)| async move {
//!     ctx.stub().put_state(&k, v).await
//! });
//! let peer = MemoryPeer::start(contract).await;
//! assert!(peer.invoke(&["Set", "a", "1"]).await.is_ok());
//! assert_eq!(peer.state("a").as_deref(), Some(&b"1"[..]));
//! # }
//! ```
//!
//! # What it mirrors from Fabric
//!
//! - **Endorse, then commit.** [`MemoryPeer::invoke`] simulates the transaction; its writes are
//!   committed only when the chaincode answers COMPLETED with a status below 400, and are
//!   discarded otherwise (an error status, an ERROR, a panic). [`MemoryPeer::query`] never
//!   commits. Transactions commit in the order they complete; there is no MVCC validation.
//! - **Reads do not see the transaction's own writes**: GET_STATE, range queries, metadata,
//!   hashes and history read committed state only, as Fabric's simulator does.
//! - **Writing an empty value deletes the key**, as in Fabric's read-write sets.
//! - **Range queries and history** return at most 100 results per answer with `has_more`,
//!   the rest fetched with QUERY_STATE_NEXT (Fabric's batch size). Paginated range queries
//!   (QueryMetadata `page_size`/`bookmark`) return one page; the bookmark is the key following
//!   the page, empty after the last page. The `QueryResponseMetadata` comes with the first
//!   answer, where shims read it (Fabric attaches it to the last batch, which is the first for
//!   pages of up to 100 results).
//! - **Read-only rules**: as Fabric's simulator, a transaction that has written may not run a
//!   paginated query or a range query over private data, and one that has run either may not
//!   write; the peer answers ERROR.
//! - **Rich queries** (GET_QUERY_RESULT) need CouchDB as the state database; this peer, like
//!   LevelDB, has none and answers ERROR (`rich queries need CouchDB`).
//! - **Private data**: any collection name is accepted; GET_PRIVATE_DATA_HASH answers the
//!   SHA-256 of the committed value; PURGE_PRIVATE_DATA removes the value at commit.
//! - **State metadata**: PUT_STATE_METADATA replaces a key's metadata at commit, kept only for
//!   keys that exist; deleting a key deletes its metadata.
//! - **Other chaincodes**: INVOKE_CHAINCODE answers ERROR unless a stand-in was registered with
//!   [`MemoryPeer::mock_chaincode`]; a stand-in's response comes back wrapped in a nested
//!   COMPLETED, as the peer wraps the called chaincode's answer.
//! - Every transaction carries a real `SignedProposal` (unsigned): creator, nonce, transient
//!   map, timestamp, channel and tx id as a client would build them, so `Stub::creator`,
//!   `transient`, `binding` and `tx_timestamp` work. The tx id is `hex(SHA-256(nonce ||
//!   creator))`; the nonce is derived from a counter and the clock, not random.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnboundedReceiverStream;
use weft_proto::common::{ChannelHeader, Header, HeaderType, SignatureHeader};
use weft_proto::msp::SerializedIdentity;
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{
    ChaincodeId, ChaincodeInput, ChaincodeInvocationSpec, ChaincodeMessage,
    ChaincodeProposalPayload, ChaincodeSpec, DelState, GetHistoryForKey, GetState, GetStateByRange,
    GetStateMetadata, Proposal, PutState, PutStateMetadata, QueryMetadata, QueryResponse,
    QueryResponseMetadata, QueryResultBytes, QueryStateClose, QueryStateNext, SignedProposal,
    StateMetadata, StateMetadataResult,
};
use weft_proto::queryresult::{KeyModification, Kv};

use crate::{handler, Chaincode, Response, ShimError};

/// Results per answer to a range or history query, as Fabric's peer batches them.
pub const QUERY_BATCH: usize = 100;

/// The tx id under which seeded values appear in key history.
pub const SEED_TX_ID: &str = "seed";

/// A committed chaincode event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The transaction that set it.
    pub tx_id: String,
    pub name: String,
    pub payload: Bytes,
}

type MockFn = Arc<dyn Fn(&[Bytes]) -> Response + Send + Sync>;

/// The committed ledger.
#[derive(Default)]
struct Ledger {
    public: BTreeMap<String, Bytes>,
    private: BTreeMap<String, BTreeMap<String, Bytes>>,
    /// (collection, key) -> metakey -> value; the public namespace is collection "".
    metadata: BTreeMap<(String, String), BTreeMap<String, Bytes>>,
    /// Public keys' modifications, oldest first.
    history: BTreeMap<String, Vec<KeyModification>>,
    last_event: Option<Event>,
    last_tx_id: Option<String>,
    mocks: HashMap<String, MockFn>,
    /// Messages received from the chaincode, by type name.
    received: BTreeMap<String, usize>,
}

/// A peer in memory, running one chaincode. See the [module documentation](self).
pub struct MemoryPeer {
    ledger: Arc<Mutex<Ledger>>,
    commands: mpsc::UnboundedSender<Command>,
    chaincode: JoinHandle<Result<(), ShimError>>,
    channel_id: String,
    chaincode_name: String,
    registered_as: String,
    creator: Mutex<Bytes>,
    seq: AtomicU64,
}

impl fmt::Debug for MemoryPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryPeer")
            .field("channel_id", &self.channel_id)
            .field("chaincode_name", &self.chaincode_name)
            .field("registered_as", &self.registered_as)
            .finish_non_exhaustive()
    }
}

enum Command {
    Run {
        msg: Box<ChaincodeMessage>,
        commit: bool,
        timestamp: prost_types::Timestamp,
        reply: oneshot::Sender<Response>,
    },
    Keepalive {
        reply: oneshot::Sender<()>,
    },
}

impl MemoryPeer {
    /// The default channel id.
    pub const CHANNEL: &'static str = "mychannel";
    /// The default chaincode name (the namespace of its keys).
    pub const CHAINCODE: &'static str = "mycc";
    /// The MSP id of the default creator.
    pub const MSPID: &'static str = "Org1MSP";

    /// Start `chaincode` on channel [`CHANNEL`](Self::CHANNEL) as [`CHAINCODE`](Self::CHAINCODE)
    /// and wait for its registration (REGISTER, REGISTERED, READY).
    pub async fn start<C: Chaincode>(chaincode: C) -> MemoryPeer {
        Self::start_on(chaincode, Self::CHANNEL, Self::CHAINCODE).await
    }

    /// Start `chaincode` on `channel_id` under the name `chaincode_name`.
    pub async fn start_on<C: Chaincode>(
        chaincode: C,
        channel_id: &str,
        chaincode_name: &str,
    ) -> MemoryPeer {
        let (to_cc, inbound) = mpsc::unbounded_channel::<Result<ChaincodeMessage, tonic::Status>>();
        let (out, mut from_cc) = mpsc::channel::<ChaincodeMessage>(256);
        let chaincode = tokio::spawn(handler::run(
            Arc::new(chaincode),
            chaincode_name.to_owned(),
            Some(Self::MSPID.to_owned()),
            Box::pin(UnboundedReceiverStream::new(inbound)),
            out,
        ));
        // The chaincode speaks first.
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        let mut registered_as = String::new();
        if let Some(msg) = from_cc.recv().await {
            lock(&ledger).count(msg.r#type);
            if msg.r#type == MsgType::Register as i32 {
                registered_as = ChaincodeId::decode(msg.payload)
                    .map(|id| id.name)
                    .unwrap_or_default();
                for ty in [MsgType::Registered, MsgType::Ready] {
                    let _ = to_cc.send(Ok(ChaincodeMessage {
                        r#type: ty as i32,
                        ..Default::default()
                    }));
                }
            } else {
                tracing::warn!(
                    "MemoryPeer: the chaincode sent {} instead of REGISTER",
                    type_name(msg.r#type)
                );
            }
        }
        let (commands, commands_rx) = mpsc::unbounded_channel();
        tokio::spawn(
            Dispatcher {
                ledger: ledger.clone(),
                namespace: chaincode_name.to_owned(),
                to_cc,
                txs: HashMap::new(),
                keepalives: VecDeque::new(),
                next_iterator: 0,
            }
            .run(commands_rx, from_cc),
        );
        MemoryPeer {
            ledger,
            commands,
            chaincode,
            channel_id: channel_id.to_owned(),
            chaincode_name: chaincode_name.to_owned(),
            registered_as,
            creator: Mutex::new(Self::serialized_identity(Self::MSPID, b"")),
            seq: AtomicU64::new(0),
        }
    }

    /// The chaincode id the chaincode sent in REGISTER.
    pub fn registered_as(&self) -> &str {
        &self.registered_as
    }

    pub fn channel_id(&self) -> &str {
        &self.channel_id
    }

    pub fn chaincode_name(&self) -> &str {
        &self.chaincode_name
    }

    /// A creator as clients send it: `msp.SerializedIdentity` bytes of `mspid` and a PEM
    /// certificate.
    pub fn serialized_identity(mspid: &str, cert_pem: &[u8]) -> Bytes {
        SerializedIdentity {
            mspid: mspid.to_owned(),
            id_bytes: Bytes::copy_from_slice(cert_pem),
        }
        .encode_to_vec()
        .into()
    }

    /// Set the creator of later [`invoke`](Self::invoke)/[`query`](Self::query)/
    /// [`init`](Self::init) calls (default: `Org1MSP` with no certificate).
    pub fn set_creator(&self, creator: impl Into<Bytes>) {
        *lock(&self.creator) = creator.into();
    }

    // ---- transactions ----

    /// Endorse a TRANSACTION with `args` (function name first), committing its writes and
    /// event if the chaincode answers with a status below 400.
    pub async fn invoke(&self, args: &[&str]) -> Response {
        let creator = lock(&self.creator).clone();
        self.run(MsgType::Transaction, args, BTreeMap::new(), creator, true)
            .await
    }

    /// [`invoke`](Self::invoke) with a transient map and a creator (`SerializedIdentity`
    /// bytes, see [`serialized_identity`](Self::serialized_identity)).
    pub async fn invoke_with(
        &self,
        args: &[&str],
        transient: BTreeMap<String, Bytes>,
        creator: impl Into<Bytes>,
    ) -> Response {
        self.run(MsgType::Transaction, args, transient, creator.into(), true)
            .await
    }

    /// Send INIT (`ChaincodeInput.is_init` set) with `args`; commits like [`invoke`](Self::invoke).
    pub async fn init(&self, args: &[&str]) -> Response {
        let creator = lock(&self.creator).clone();
        self.run(MsgType::Init, args, BTreeMap::new(), creator, true)
            .await
    }

    /// Evaluate a TRANSACTION: the chaincode runs the same way, nothing is committed.
    pub async fn query(&self, args: &[&str]) -> Response {
        let creator = lock(&self.creator).clone();
        self.run(MsgType::Transaction, args, BTreeMap::new(), creator, false)
            .await
    }

    /// [`query`](Self::query) with a transient map and a creator.
    pub async fn query_with(
        &self,
        args: &[&str],
        transient: BTreeMap<String, Bytes>,
        creator: impl Into<Bytes>,
    ) -> Response {
        self.run(MsgType::Transaction, args, transient, creator.into(), false)
            .await
    }

    /// Send a KEEPALIVE and wait for the chaincode to echo it; `false` if it is not running.
    pub async fn keepalive(&self) -> bool {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Keepalive { reply }).is_err() {
            return false;
        }
        rx.await.is_ok()
    }

    /// Answer INVOKE_CHAINCODE for `name` with `f(args)` (args: function name first).
    pub fn mock_chaincode(
        &self,
        name: &str,
        f: impl Fn(&[Bytes]) -> Response + Send + Sync + 'static,
    ) {
        lock(&self.ledger)
            .mocks
            .insert(name.to_owned(), Arc::new(f));
    }

    /// Stop: end the stream as a peer does, and return what the chaincode's stream engine
    /// returned (`Ok` after a clean end of stream).
    pub async fn stop(self) -> Result<(), ShimError> {
        drop(self.commands);
        self.chaincode.await.unwrap_or_else(|e| {
            Err(ShimError::Protocol(format!(
                "the chaincode's stream task failed: {e}"
            )))
        })
    }

    async fn run(
        &self,
        ty: MsgType,
        args: &[&str],
        transient: BTreeMap<String, Bytes>,
        creator: Bytes,
        commit: bool,
    ) -> Response {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let (msg, timestamp) = self.transaction_message(ty, args, transient, creator);
        let (reply, rx) = oneshot::channel();
        let sent = self.commands.send(Command::Run {
            msg: Box::new(msg),
            commit,
            timestamp,
            reply,
        });
        if sent.is_err() {
            return Response::error("MemoryPeer: the chaincode is not running");
        }
        rx.await.unwrap_or_else(|_| {
            Response::error("MemoryPeer: the chaincode stopped before it answered")
        })
    }

    /// A TRANSACTION/INIT message with a SignedProposal as a client and peer would build it.
    fn transaction_message(
        &self,
        ty: MsgType,
        args: Vec<Bytes>,
        transient: BTreeMap<String, Bytes>,
        creator: Bytes,
    ) -> (ChaincodeMessage, prost_types::Timestamp) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let timestamp = prost_types::Timestamp {
            seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut seed = Vec::new();
        seed.extend_from_slice(&seq.to_le_bytes());
        seed.extend_from_slice(&now.as_nanos().to_le_bytes());
        seed.extend_from_slice(self.chaincode_name.as_bytes());
        let nonce = weft_crypto::sha256(&seed)[..24].to_vec();
        let mut id_material = nonce.clone();
        id_material.extend_from_slice(&creator);
        let txid = weft_crypto::hex(&weft_crypto::sha256(&id_material));

        let is_init = ty == MsgType::Init;
        let input = ChaincodeInput {
            args,
            decorations: Default::default(),
            is_init,
        };
        let channel_header = ChannelHeader {
            r#type: HeaderType::EndorserTransaction as i32,
            timestamp: Some(timestamp),
            channel_id: self.channel_id.clone(),
            tx_id: txid.clone(),
            epoch: 0,
            ..Default::default()
        };
        let header = Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: SignatureHeader {
                creator,
                nonce: nonce.into(),
            }
            .encode_to_vec()
            .into(),
        };
        let invocation = ChaincodeInvocationSpec {
            chaincode_spec: Some(ChaincodeSpec {
                chaincode_id: Some(ChaincodeId {
                    name: self.chaincode_name.clone(),
                    ..Default::default()
                }),
                input: Some(input.clone()),
                ..Default::default()
            }),
        };
        let proposal = Proposal {
            header: header.encode_to_vec().into(),
            payload: ChaincodeProposalPayload {
                input: invocation.encode_to_vec().into(),
                transient_map: transient,
            }
            .encode_to_vec()
            .into(),
            extension: Bytes::new(),
        };
        let msg = ChaincodeMessage {
            r#type: ty as i32,
            timestamp: Some(timestamp),
            payload: input.encode_to_vec().into(),
            txid,
            proposal: Some(SignedProposal {
                proposal_bytes: proposal.encode_to_vec().into(),
                signature: Bytes::new(),
            }),
            channel_id: self.channel_id.clone(),
            ..Default::default()
        };
        (msg, timestamp)
    }

    // ---- the ledger ----

    /// The committed value of `key`.
    pub fn state(&self, key: &str) -> Option<Bytes> {
        lock(&self.ledger).public.get(key).cloned()
    }

    /// All committed public keys and values.
    pub fn world_state(&self) -> BTreeMap<String, Bytes> {
        lock(&self.ledger).public.clone()
    }

    /// Seed `key` with `value` (recorded in its history as tx [`SEED_TX_ID`]). An empty value
    /// deletes the key.
    pub fn put_state(&self, key: &str, value: impl Into<Bytes>) {
        let mut ledger = lock(&self.ledger);
        let value = value.into();
        ledger.write_public(key, (!value.is_empty()).then_some(value), SEED_TX_ID, None);
    }

    /// Remove `key` (recorded in its history as a delete by tx [`SEED_TX_ID`]).
    pub fn delete_state(&self, key: &str) {
        lock(&self.ledger).write_public(key, None, SEED_TX_ID, None);
    }

    /// The committed value of `key` in `collection`.
    pub fn private_data(&self, collection: &str, key: &str) -> Option<Bytes> {
        lock(&self.ledger)
            .private
            .get(collection)
            .and_then(|c| c.get(key))
            .cloned()
    }

    /// Seed `key` in `collection`. An empty value deletes the key.
    pub fn put_private_data(&self, collection: &str, key: &str, value: impl Into<Bytes>) {
        let value = value.into();
        lock(&self.ledger).write_private(collection, key, (!value.is_empty()).then_some(value));
    }

    /// The committed metadata of public `key` (metakey -> value).
    pub fn state_metadata(&self, key: &str) -> BTreeMap<String, Bytes> {
        self.private_metadata("", key)
    }

    /// The committed metadata of `key` in `collection` (`""`: the public namespace).
    pub fn private_metadata(&self, collection: &str, key: &str) -> BTreeMap<String, Bytes> {
        lock(&self.ledger)
            .metadata
            .get(&(collection.to_owned(), key.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    /// Seed metadata of public `key` (which must exist to keep it, as at commit).
    pub fn put_state_metadata(&self, key: &str, metakey: &str, value: impl Into<Bytes>) {
        let mut ledger = lock(&self.ledger);
        if ledger.public.contains_key(key) {
            ledger
                .metadata
                .entry((String::new(), key.to_owned()))
                .or_default()
                .insert(metakey.to_owned(), value.into());
        }
    }

    /// Every committed modification of public `key`, oldest first.
    pub fn history(&self, key: &str) -> Vec<KeyModification> {
        lock(&self.ledger)
            .history
            .get(key)
            .cloned()
            .unwrap_or_default()
    }

    /// The event of the last committed transaction that set one.
    pub fn last_event(&self) -> Option<Event> {
        lock(&self.ledger).last_event.clone()
    }

    /// The id of the last committed transaction.
    pub fn last_tx_id(&self) -> Option<String> {
        lock(&self.ledger).last_tx_id.clone()
    }

    /// How many messages of `message_type` (Fabric's name: `"GET_STATE"`, `"QUERY_STATE_NEXT"`,
    /// `"COMPLETED"`, ...) the chaincode has sent this peer, registration included.
    pub fn received(&self, message_type: &str) -> usize {
        lock(&self.ledger)
            .received
            .get(message_type)
            .copied()
            .unwrap_or(0)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn type_name(t: i32) -> String {
    MsgType::try_from(t)
        .map(|t| t.as_str_name().to_owned())
        .unwrap_or_else(|_| format!("unknown type {t}"))
}

impl Ledger {
    fn count(&mut self, ty: i32) {
        *self.received.entry(type_name(ty)).or_default() += 1;
    }

    fn write_public(
        &mut self,
        key: &str,
        value: Option<Bytes>,
        txid: &str,
        timestamp: Option<prost_types::Timestamp>,
    ) {
        let is_delete = value.is_none();
        match &value {
            Some(v) => {
                self.public.insert(key.to_owned(), v.clone());
            }
            None => {
                self.public.remove(key);
                self.metadata.remove(&(String::new(), key.to_owned()));
            }
        }
        self.history
            .entry(key.to_owned())
            .or_default()
            .push(KeyModification {
                tx_id: txid.to_owned(),
                value: value.unwrap_or_default(),
                timestamp,
                is_delete,
            });
    }

    fn write_private(&mut self, collection: &str, key: &str, value: Option<Bytes>) {
        match value {
            Some(v) => {
                self.private
                    .entry(collection.to_owned())
                    .or_default()
                    .insert(key.to_owned(), v);
            }
            None => {
                if let Some(c) = self.private.get_mut(collection) {
                    c.remove(key);
                }
                self.metadata
                    .remove(&(collection.to_owned(), key.to_owned()));
            }
        }
    }

    fn exists(&self, collection: &str, key: &str) -> bool {
        if collection.is_empty() {
            self.public.contains_key(key)
        } else {
            self.private
                .get(collection)
                .is_some_and(|c| c.contains_key(key))
        }
    }

    fn commit(&mut self, tx: &TxSim, txid: &str, event: Option<Event>) {
        for (key, value) in &tx.writes {
            self.write_public(key, value.clone(), txid, Some(tx.timestamp));
        }
        for ((collection, key), value) in &tx.private_writes {
            self.write_private(collection, key, value.clone());
        }
        for ((collection, key), metadata) in &tx.metadata_writes {
            if self.exists(collection, key) {
                self.metadata
                    .insert((collection.clone(), key.clone()), metadata.clone());
            }
        }
        for (collection, key) in &tx.purges {
            self.write_private(collection, key, None);
        }
        if event.is_some() {
            self.last_event = event;
        }
        self.last_tx_id = Some(txid.to_owned());
    }
}

/// One transaction being simulated.
struct TxSim {
    commit: bool,
    reply: oneshot::Sender<Response>,
    timestamp: prost_types::Timestamp,
    writes: BTreeMap<String, Option<Bytes>>,
    private_writes: BTreeMap<(String, String), Option<Bytes>>,
    metadata_writes: BTreeMap<(String, String), BTreeMap<String, Bytes>>,
    purges: BTreeSet<(String, String)>,
    /// Open query iterators: id -> (results not sent yet, pagination metadata for the last
    /// batch).
    iterators: HashMap<String, (VecDeque<Bytes>, Bytes)>,
    wrote: bool,
    paginated_query: bool,
    private_query: bool,
}

impl TxSim {
    /// Fabric's simulator: no writes after a paginated or private-data query.
    fn before_write(&mut self) -> Result<(), String> {
        if self.paginated_query {
            return Err(
                "this transaction has already run a paginated query, so it may not write \
                 (Fabric allows paginated queries only in read-only transactions)"
                    .into(),
            );
        }
        if self.private_query {
            return Err(
                "this transaction has already run a range query over private data, so it \
                 may not write (Fabric allows private data queries only in read-only transactions)"
                    .into(),
            );
        }
        self.wrote = true;
        Ok(())
    }

    /// Fabric's simulator: no paginated or private-data queries after a write.
    fn before_query(&mut self, paginated: bool, private: bool) -> Result<(), String> {
        if (paginated || private) && self.wrote {
            let what = if paginated {
                "paginated queries"
            } else {
                "range queries over private data"
            };
            return Err(format!(
                "{what} are supported only in read-only transactions, and this transaction has written"
            ));
        }
        self.paginated_query |= paginated;
        self.private_query |= private;
        Ok(())
    }
}

struct Dispatcher {
    ledger: Arc<Mutex<Ledger>>,
    namespace: String,
    to_cc: mpsc::UnboundedSender<Result<ChaincodeMessage, tonic::Status>>,
    txs: HashMap<(String, String), TxSim>,
    keepalives: VecDeque<oneshot::Sender<()>>,
    next_iterator: u64,
}

fn decode<M: Message + Default>(bytes: &Bytes, what: &str) -> Result<M, String> {
    M::decode(bytes.clone()).map_err(|e| format!("malformed {what}: {e}"))
}

impl Dispatcher {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut from_cc: mpsc::Receiver<ChaincodeMessage>,
    ) {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None => break,
                    Some(cmd) => self.command(cmd),
                },
                msg = from_cc.recv() => match msg {
                    None => break,
                    Some(msg) => self.message(msg),
                },
            }
        }
        for (_, tx) in self.txs.drain() {
            let _ = tx.reply.send(Response::error(
                "MemoryPeer: the chaincode stopped before it answered",
            ));
        }
    }

    fn send(&self, msg: ChaincodeMessage) {
        let _ = self.to_cc.send(Ok(msg));
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Keepalive { reply } => {
                self.keepalives.push_back(reply);
                self.send(ChaincodeMessage {
                    r#type: MsgType::Keepalive as i32,
                    ..Default::default()
                });
            }
            Command::Run {
                msg,
                commit,
                timestamp,
                reply,
            } => {
                let key = (msg.channel_id.clone(), msg.txid.clone());
                if self.txs.contains_key(&key) {
                    let _ = reply.send(Response::error(format!(
                        "MemoryPeer: transaction {} is already running",
                        msg.txid
                    )));
                    return;
                }
                self.txs.insert(
                    key,
                    TxSim {
                        commit,
                        reply,
                        timestamp,
                        writes: BTreeMap::new(),
                        private_writes: BTreeMap::new(),
                        metadata_writes: BTreeMap::new(),
                        purges: BTreeSet::new(),
                        iterators: HashMap::new(),
                        wrote: false,
                        paginated_query: false,
                        private_query: false,
                    },
                );
                self.send(*msg);
            }
        }
    }

    fn message(&mut self, msg: ChaincodeMessage) {
        lock(&self.ledger).count(msg.r#type);
        let ty = MsgType::try_from(msg.r#type);
        match ty {
            Ok(MsgType::Completed | MsgType::Error) => self.finish(msg),
            Ok(MsgType::Keepalive) => {
                if let Some(waiter) = self.keepalives.pop_front() {
                    let _ = waiter.send(());
                }
            }
            Ok(
                t @ (MsgType::GetState
                | MsgType::PutState
                | MsgType::DelState
                | MsgType::GetStateByRange
                | MsgType::GetQueryResult
                | MsgType::QueryStateNext
                | MsgType::QueryStateClose
                | MsgType::GetHistoryForKey
                | MsgType::GetStateMetadata
                | MsgType::PutStateMetadata
                | MsgType::GetPrivateDataHash
                | MsgType::PurgePrivateData
                | MsgType::InvokeChaincode),
            ) => {
                let answer = self.request(t, &msg);
                self.reply(&msg, answer);
            }
            _ => {
                let text = format!(
                    "MemoryPeer cannot handle {} from a registered chaincode",
                    type_name(msg.r#type)
                );
                self.reply(&msg, Err(text));
            }
        }
    }

    fn reply(&self, req: &ChaincodeMessage, answer: Result<Bytes, String>) {
        let (ty, payload) = match answer {
            Ok(p) => (MsgType::Response, p),
            Err(text) => (MsgType::Error, Bytes::from(text.into_bytes())),
        };
        self.send(ChaincodeMessage {
            r#type: ty as i32,
            payload,
            txid: req.txid.clone(),
            channel_id: req.channel_id.clone(),
            ..Default::default()
        });
    }

    /// COMPLETED or ERROR: answer the caller, committing if asked and successful.
    fn finish(&mut self, msg: ChaincodeMessage) {
        let Some(tx) = self.txs.remove(&(msg.channel_id.clone(), msg.txid.clone())) else {
            tracing::warn!(txid = %msg.txid, "MemoryPeer: {} for no running transaction", type_name(msg.r#type));
            return;
        };
        let response = if msg.r#type == MsgType::Completed as i32 {
            match weft_proto::protos::Response::decode(msg.payload.clone()) {
                Ok(r) => Response {
                    status: r.status,
                    message: r.message,
                    payload: r.payload,
                },
                Err(e) => Response::error(format!("MemoryPeer: malformed COMPLETED payload: {e}")),
            }
        } else {
            Response::error(String::from_utf8_lossy(&msg.payload).into_owned())
        };
        if tx.commit && response.is_ok() && msg.r#type == MsgType::Completed as i32 {
            let event = msg.chaincode_event.map(|e| Event {
                tx_id: msg.txid.clone(),
                name: e.event_name,
                payload: e.payload,
            });
            lock(&self.ledger).commit(&tx, &msg.txid, event);
        }
        let _ = tx.reply.send(response);
    }

    fn request(&mut self, ty: MsgType, msg: &ChaincodeMessage) -> Result<Bytes, String> {
        let key = (msg.channel_id.clone(), msg.txid.clone());
        if !self.txs.contains_key(&key) {
            return Err(format!(
                "no transaction {} is running on channel '{}'",
                msg.txid, msg.channel_id
            ));
        }
        let p = &msg.payload;
        match ty {
            MsgType::GetState => {
                let req: GetState = decode(p, "GetState")?;
                let ledger = lock(&self.ledger);
                let value = if req.collection.is_empty() {
                    ledger.public.get(&req.key).cloned()
                } else {
                    ledger
                        .private
                        .get(&req.collection)
                        .and_then(|c| c.get(&req.key))
                        .cloned()
                };
                Ok(value.unwrap_or_default())
            }
            MsgType::PutState => {
                let req: PutState = decode(p, "PutState")?;
                let tx = self.tx(&key)?;
                tx.before_write()?;
                let value = (!req.value.is_empty()).then_some(req.value);
                if req.collection.is_empty() {
                    tx.writes.insert(req.key, value);
                } else {
                    tx.private_writes.insert((req.collection, req.key), value);
                }
                Ok(Bytes::new())
            }
            MsgType::DelState => {
                let req: DelState = decode(p, "DelState")?;
                let tx = self.tx(&key)?;
                tx.before_write()?;
                if req.collection.is_empty() {
                    tx.writes.insert(req.key, None);
                } else {
                    tx.private_writes.insert((req.collection, req.key), None);
                }
                Ok(Bytes::new())
            }
            MsgType::PurgePrivateData => {
                let req: DelState = decode(p, "PurgePrivateData (DelState layout)")?;
                if req.collection.is_empty() {
                    return Err("PURGE_PRIVATE_DATA needs a collection".into());
                }
                let tx = self.tx(&key)?;
                tx.before_write()?;
                tx.purges.insert((req.collection, req.key));
                Ok(Bytes::new())
            }
            MsgType::GetStateByRange => {
                let req: GetStateByRange = decode(p, "GetStateByRange")?;
                let page = if req.metadata.is_empty() {
                    None
                } else {
                    let m: QueryMetadata = decode(&req.metadata, "QueryMetadata")?;
                    if m.page_size <= 0 {
                        return Err(format!(
                            "page size must be greater than zero, got {}",
                            m.page_size
                        ));
                    }
                    Some(m)
                };
                self.tx(&key)?
                    .before_query(page.is_some(), !req.collection.is_empty())?;
                let (results, metadata) = self.range(&req, page.as_ref());
                Ok(self.first_batch(&key, results, metadata)?)
            }
            MsgType::GetQueryResult => Err(
                "GET_QUERY_RESULT: rich queries need CouchDB as the state database; \
                 MemoryPeer, like LevelDB, cannot run them (use range or composite-key queries)"
                    .into(),
            ),
            MsgType::QueryStateNext => {
                let req: QueryStateNext = decode(p, "QueryStateNext")?;
                let tx = self.tx(&key)?;
                let Some((pending, page_metadata)) = tx.iterators.get_mut(&req.id) else {
                    return Err(format!(
                        "query iterator {} not found (closed or exhausted)",
                        req.id
                    ));
                };
                let n = pending.len().min(QUERY_BATCH);
                let results: Vec<QueryResultBytes> = pending
                    .drain(..n)
                    .map(|result_bytes| QueryResultBytes { result_bytes })
                    .collect();
                let has_more = !pending.is_empty();
                // Like Fabric's peer, pagination metadata rides on the last batch.
                let metadata = if has_more {
                    Bytes::new()
                } else {
                    page_metadata.clone()
                };
                if !has_more {
                    tx.iterators.remove(&req.id);
                }
                Ok(QueryResponse {
                    results,
                    has_more,
                    id: req.id,
                    metadata,
                }
                .encode_to_vec()
                .into())
            }
            MsgType::QueryStateClose => {
                let req: QueryStateClose = decode(p, "QueryStateClose")?;
                self.tx(&key)?.iterators.remove(&req.id);
                Ok(QueryResponse {
                    has_more: false,
                    id: req.id,
                    ..Default::default()
                }
                .encode_to_vec()
                .into())
            }
            MsgType::GetHistoryForKey => {
                let req: GetHistoryForKey = decode(p, "GetHistoryForKey")?;
                let results: Vec<Bytes> = lock(&self.ledger)
                    .history
                    .get(&req.key)
                    .map(|mods| {
                        mods.iter()
                            .rev()
                            .map(|m| Bytes::from(m.encode_to_vec()))
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(self.first_batch(&key, results, None)?)
            }
            MsgType::GetStateMetadata => {
                let req: GetStateMetadata = decode(p, "GetStateMetadata")?;
                let entries = lock(&self.ledger)
                    .metadata
                    .get(&(req.collection, req.key))
                    .map(|m| {
                        m.iter()
                            .map(|(metakey, value)| StateMetadata {
                                metakey: metakey.clone(),
                                value: value.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(StateMetadataResult { entries }.encode_to_vec().into())
            }
            MsgType::PutStateMetadata => {
                let req: PutStateMetadata = decode(p, "PutStateMetadata")?;
                let Some(entry) = req.metadata else {
                    return Err("PUT_STATE_METADATA without metadata".into());
                };
                let tx = self.tx(&key)?;
                tx.before_write()?;
                let mut metadata = BTreeMap::new();
                metadata.insert(entry.metakey, entry.value);
                tx.metadata_writes
                    .insert((req.collection, req.key), metadata);
                Ok(Bytes::new())
            }
            MsgType::GetPrivateDataHash => {
                let req: GetState = decode(p, "GetPrivateDataHash (GetState layout)")?;
                if req.collection.is_empty() {
                    return Err("GET_PRIVATE_DATA_HASH needs a collection".into());
                }
                let ledger = lock(&self.ledger);
                Ok(ledger
                    .private
                    .get(&req.collection)
                    .and_then(|c| c.get(&req.key))
                    .map(|v| Bytes::copy_from_slice(&weft_crypto::sha256(v)))
                    .unwrap_or_default())
            }
            MsgType::InvokeChaincode => {
                let spec: ChaincodeSpec = decode(p, "ChaincodeSpec")?;
                let target = spec.chaincode_id.map(|id| id.name).unwrap_or_default();
                let name = target.split('/').next().unwrap_or_default();
                let mock = lock(&self.ledger).mocks.get(name).cloned();
                let Some(mock) = mock else {
                    return Err(format!(
                        "INVOKE_CHAINCODE: no chaincode '{name}' on this MemoryPeer; register a \
                         stand-in with MemoryPeer::mock_chaincode"
                    ));
                };
                let args = spec.input.map(|i| i.args).unwrap_or_default();
                let response = mock(&args);
                let nested = ChaincodeMessage {
                    r#type: MsgType::Completed as i32,
                    payload: response.to_proto().encode_to_vec().into(),
                    txid: msg.txid.clone(),
                    channel_id: msg.channel_id.clone(),
                    ..Default::default()
                };
                Ok(nested.encode_to_vec().into())
            }
            other => Err(format!("MemoryPeer cannot handle {}", other.as_str_name())),
        }
    }

    fn tx(&mut self, key: &(String, String)) -> Result<&mut TxSim, String> {
        self.txs
            .get_mut(key)
            .ok_or_else(|| format!("no transaction {} is running", key.1))
    }

    /// Encoded `Kv`s of a range, and the pagination metadata of a paginated one.
    fn range(
        &self,
        req: &GetStateByRange,
        page: Option<&QueryMetadata>,
    ) -> (Vec<Bytes>, Option<QueryResponseMetadata>) {
        let ledger = lock(&self.ledger);
        let empty = BTreeMap::new();
        let map = if req.collection.is_empty() {
            &ledger.public
        } else {
            ledger.private.get(&req.collection).unwrap_or(&empty)
        };
        let start = match page {
            Some(m) if !m.bookmark.is_empty() => m.bookmark.clone(),
            _ => req.start_key.clone(),
        };
        let end = if req.end_key.is_empty() {
            Bound::Unbounded
        } else if req.end_key < start {
            return (Vec::new(), page.map(|_| QueryResponseMetadata::default()));
        } else {
            Bound::Excluded(req.end_key.clone())
        };
        let mut iter = map.range((Bound::Included(start), end));
        let limit = page.map_or(usize::MAX, |m| usize::try_from(m.page_size).unwrap_or(0));
        let results: Vec<Bytes> = iter
            .by_ref()
            .take(limit)
            .map(|(key, value)| {
                Kv {
                    namespace: self.namespace.clone(),
                    key: key.clone(),
                    value: value.clone(),
                }
                .encode_to_vec()
                .into()
            })
            .collect();
        let metadata = page.map(|_| QueryResponseMetadata {
            fetched_records_count: i32::try_from(results.len()).unwrap_or(i32::MAX),
            bookmark: iter.next().map(|(k, _)| k.clone()).unwrap_or_default(),
        });
        (results, metadata)
    }

    /// The first answer to a query: up to [`QUERY_BATCH`] results, the rest kept for
    /// QUERY_STATE_NEXT under a new iterator id.
    fn first_batch(
        &mut self,
        key: &(String, String),
        results: Vec<Bytes>,
        metadata: Option<QueryResponseMetadata>,
    ) -> Result<Bytes, String> {
        self.next_iterator += 1;
        let id = format!("memory-iterator-{}", self.next_iterator);
        let mut pending: VecDeque<Bytes> = results.into();
        let n = pending.len().min(QUERY_BATCH);
        let batch = pending
            .drain(..n)
            .map(|result_bytes| QueryResultBytes { result_bytes })
            .collect();
        let has_more = !pending.is_empty();
        let metadata: Bytes = metadata
            .map(|m| Bytes::from(m.encode_to_vec()))
            .unwrap_or_default();
        // Like Fabric's peer, pagination metadata rides on the last batch only: a page of more
        // than QUERY_BATCH results reaches shims with empty metadata, as it does on Fabric.
        if has_more {
            self.tx(key)?
                .iterators
                .insert(id.clone(), (pending, metadata));
            return Ok(QueryResponse {
                results: batch,
                has_more,
                id,
                metadata: Bytes::new(),
            }
            .encode_to_vec()
            .into());
        }
        Ok(QueryResponse {
            results: batch,
            has_more,
            id,
            metadata,
        }
        .encode_to_vec()
        .into())
    }
}
