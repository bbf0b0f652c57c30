//! The stub: what a transaction can ask of the peer and know about itself.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use weft_proto::common::{ChannelHeader, Header, SignatureHeader};
use weft_proto::protos::chaincode_message::Type as MsgType;
use weft_proto::protos::{
    ChaincodeEvent, ChaincodeId, ChaincodeInput, ChaincodeMessage, ChaincodeProposalPayload,
    ChaincodeSpec, DelState, GetHistoryForKey, GetQueryResult, GetState, GetStateByRange,
    GetStateMetadata, Proposal, PutState, PutStateMetadata, QueryMetadata, QueryResponse,
    QueryResponseMetadata, QueryStateClose, QueryStateNext, SignedProposal, StateMetadata,
    StateMetadataResult,
};
use weft_proto::queryresult::{KeyModification, Kv};

use crate::handler::PeerLink;
use crate::keys::{check_simple_key, create_composite_key, EMPTY_KEY_SUBSTITUTE, MAX_RUNE};
use crate::{ChaincodeError, Response};

/// The state-metadata key under which key-level endorsement policies are stored.
pub const VALIDATION_PARAMETER: &str = "VALIDATION_PARAMETER";

#[derive(Debug)]
pub(crate) struct TxInner {
    link: PeerLink,
    txid: String,
    channel_id: String,
    args: Vec<Bytes>,
    decorations: BTreeMap<String, Bytes>,
    is_init: bool,
    signed_proposal: Option<SignedProposal>,
    creator: Option<Bytes>,
    transient: BTreeMap<String, Bytes>,
    binding: Option<Vec<u8>>,
    timestamp: Option<prost_types::Timestamp>,
    mspid: Option<String>,
    event: Mutex<Option<ChaincodeEvent>>,
    /// Fabric's peer drops a second concurrent request of one transaction: serialize them.
    serial: tokio::sync::Mutex<()>,
}

fn decode<M: Message + Default>(bytes: &[u8], what: &'static str) -> Result<M, ChaincodeError> {
    M::decode(bytes).map_err(|e| ChaincodeError::Decode {
        what,
        detail: e.to_string(),
    })
}

impl TxInner {
    pub(crate) fn from_message(
        msg: &ChaincodeMessage,
        link: PeerLink,
        mspid: Option<String>,
    ) -> Result<Self, ChaincodeError> {
        let input: ChaincodeInput = decode(&msg.payload, "chaincode input")?;
        let mut inner = TxInner {
            link,
            txid: msg.txid.clone(),
            channel_id: msg.channel_id.clone(),
            args: input.args,
            decorations: input.decorations,
            is_init: input.is_init,
            signed_proposal: msg.proposal.clone(),
            creator: None,
            transient: BTreeMap::new(),
            binding: None,
            timestamp: None,
            mspid,
            event: Mutex::new(None),
            serial: tokio::sync::Mutex::new(()),
        };
        if let Some(sp) = &msg.proposal {
            let proposal: Proposal = decode(&sp.proposal_bytes, "proposal")?;
            let header: Header = decode(&proposal.header, "proposal header")?;
            let channel_header: ChannelHeader = decode(&header.channel_header, "channel header")?;
            let signature_header: SignatureHeader =
                decode(&header.signature_header, "signature header")?;
            let payload: ChaincodeProposalPayload = decode(&proposal.payload, "proposal payload")?;
            // Fabric's binding: SHA-256(nonce || creator || epoch as little-endian u64).
            let mut material = Vec::with_capacity(
                signature_header.nonce.len() + signature_header.creator.len() + 8,
            );
            material.extend_from_slice(&signature_header.nonce);
            material.extend_from_slice(&signature_header.creator);
            material.extend_from_slice(&channel_header.epoch.to_le_bytes());
            inner.binding = Some(weft_crypto::sha256(&material).to_vec());
            inner.creator = Some(signature_header.creator);
            inner.transient = payload.transient_map;
            inner.timestamp = channel_header.timestamp;
        }
        Ok(inner)
    }
}

/// A transaction's handle to the ledger and to facts about itself. Cheap to clone; every
/// clone belongs to the same transaction. Requests to the peer are serialized per transaction.
#[derive(Debug, Clone)]
pub struct Stub {
    inner: Arc<TxInner>,
}

/// Pagination facts returned with a page of results.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageInfo {
    pub fetched_records_count: i32,
    pub bookmark: String,
}

impl Stub {
    pub(crate) fn new(inner: TxInner) -> Self {
        Stub {
            inner: Arc::new(inner),
        }
    }

    pub(crate) fn take_event(&self) -> Option<ChaincodeEvent> {
        self.inner.event.lock().ok().and_then(|mut e| e.take())
    }

    async fn call<M: Message>(
        &self,
        ty: MsgType,
        msg: &M,
        what: &'static str,
    ) -> Result<Bytes, ChaincodeError> {
        let _turn = self.inner.serial.lock().await;
        self.inner
            .link
            .request(
                &self.inner.channel_id,
                &self.inner.txid,
                ty,
                msg.encode_to_vec(),
                what,
            )
            .await
    }

    // ---- facts about the transaction ----

    pub fn tx_id(&self) -> &str {
        &self.inner.txid
    }

    pub fn channel_id(&self) -> &str {
        &self.inner.channel_id
    }

    /// All arguments, the function name first.
    pub fn args(&self) -> &[Bytes] {
        &self.inner.args
    }

    /// All arguments as UTF-8 strings (invalid UTF-8 is replaced).
    pub fn string_args(&self) -> Vec<String> {
        self.inner
            .args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    /// The function name (first argument) and the remaining arguments.
    pub fn function_and_parameters(&self) -> (String, Vec<String>) {
        let mut args = self.string_args();
        if args.is_empty() {
            return (String::new(), Vec::new());
        }
        let f = args.remove(0);
        (f, args)
    }

    /// Whether the peer marked this invocation as the chaincode's initialization.
    pub fn is_init(&self) -> bool {
        self.inner.is_init
    }

    /// Decorations added by the peer's decorators.
    pub fn decorations(&self) -> &BTreeMap<String, Bytes> {
        &self.inner.decorations
    }

    /// The submitter's serialized identity (`msp.SerializedIdentity` bytes).
    pub fn creator(&self) -> Option<&Bytes> {
        self.inner.creator.as_ref()
    }

    /// The signed proposal this transaction came from.
    pub fn signed_proposal(&self) -> Option<&SignedProposal> {
        self.inner.signed_proposal.as_ref()
    }

    /// Transient data: passed to the chaincode, never written to the ledger.
    pub fn transient(&self) -> &BTreeMap<String, Bytes> {
        &self.inner.transient
    }

    /// The proposal binding: SHA-256(nonce || creator || epoch).
    pub fn binding(&self) -> Option<&[u8]> {
        self.inner.binding.as_deref()
    }

    /// The client's timestamp in the proposal's channel header.
    pub fn tx_timestamp(&self) -> Option<&prost_types::Timestamp> {
        self.inner.timestamp.as_ref()
    }

    /// The MSP id of the peer that launched this chaincode (`CORE_PEER_LOCALMSPID`).
    pub fn mspid(&self) -> Option<&str> {
        self.inner.mspid.as_deref()
    }

    /// Set the chaincode event of this transaction (the last call wins, as in Fabric).
    pub fn set_event(&self, name: &str, payload: impl Into<Bytes>) -> Result<(), ChaincodeError> {
        if name.is_empty() {
            return Err(ChaincodeError::InvalidArgument(
                "event name must not be empty".into(),
            ));
        }
        let event = ChaincodeEvent {
            event_name: name.to_owned(),
            payload: payload.into(),
            ..Default::default()
        };
        if let Ok(mut slot) = self.inner.event.lock() {
            *slot = Some(event);
        }
        Ok(())
    }

    // ---- world state ----

    /// The value of `key`, or `None` if it does not exist.
    pub async fn get_state(&self, key: &str) -> Result<Option<Bytes>, ChaincodeError> {
        self.get(key, "").await
    }

    pub async fn put_state(
        &self,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), ChaincodeError> {
        if key.is_empty() {
            return Err(ChaincodeError::InvalidArgument(
                "key must not be empty".into(),
            ));
        }
        self.put(key, "", value.into()).await
    }

    pub async fn del_state(&self, key: &str) -> Result<(), ChaincodeError> {
        self.del(key, "", MsgType::DelState).await
    }

    /// Keys in [start, end) in key order. An empty `start` means from the first key, an empty
    /// `end` to the last.
    pub async fn get_state_by_range(
        &self,
        start: &str,
        end: &str,
    ) -> Result<StateIterator, ChaincodeError> {
        let start = simple_range_start(start, end)?;
        Ok(self.range(start, end, "", None).await?.0)
    }

    /// One page of [start, end): at most `page_size` results from `bookmark`.
    pub async fn get_state_by_range_with_pagination(
        &self,
        start: &str,
        end: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(StateIterator, PageInfo), ChaincodeError> {
        let start = simple_range_start(start, end)?;
        self.range(start, end, "", Some((page_size, bookmark)))
            .await
    }

    /// All composite keys of `object_type` whose attributes start with `attributes`.
    pub async fn get_state_by_partial_composite_key(
        &self,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<StateIterator, ChaincodeError> {
        let (start, end) = partial_range(object_type, attributes)?;
        Ok(self.range(&start, &end, "", None).await?.0)
    }

    pub async fn get_state_by_partial_composite_key_with_pagination(
        &self,
        object_type: &str,
        attributes: &[&str],
        page_size: i32,
        bookmark: &str,
    ) -> Result<(StateIterator, PageInfo), ChaincodeError> {
        let (start, end) = partial_range(object_type, attributes)?;
        self.range(&start, &end, "", Some((page_size, bookmark)))
            .await
    }

    /// A rich query, passed to the state database as is (CouchDB selector syntax on Fabric).
    pub async fn get_query_result(&self, query: &str) -> Result<StateIterator, ChaincodeError> {
        Ok(self.query(query, "", None).await?.0)
    }

    pub async fn get_query_result_with_pagination(
        &self,
        query: &str,
        page_size: i32,
        bookmark: &str,
    ) -> Result<(StateIterator, PageInfo), ChaincodeError> {
        self.query(query, "", Some((page_size, bookmark))).await
    }

    /// Every committed modification of `key`, newest first.
    pub async fn get_history_for_key(&self, key: &str) -> Result<HistoryIterator, ChaincodeError> {
        let bytes = self
            .call(
                MsgType::GetHistoryForKey,
                &GetHistoryForKey {
                    key: key.to_owned(),
                },
                "GET_HISTORY_FOR_KEY",
            )
            .await?;
        let response: QueryResponse = decode(&bytes, "history query response")?;
        Ok(QueryIterator::new(self.clone(), response))
    }

    /// The key-level endorsement policy of `key` (a `SignaturePolicyEnvelope`), if set.
    pub async fn get_state_validation_parameter(
        &self,
        key: &str,
    ) -> Result<Option<Bytes>, ChaincodeError> {
        self.get_metadata(key, "").await
    }

    /// Set the key-level endorsement policy of `key`.
    pub async fn set_state_validation_parameter(
        &self,
        key: &str,
        policy: impl Into<Bytes>,
    ) -> Result<(), ChaincodeError> {
        self.put_metadata(key, "", policy.into()).await
    }

    // ---- private data ----

    pub async fn get_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Bytes>, ChaincodeError> {
        check_collection(collection)?;
        self.get(key, collection).await
    }

    /// The hash of a private value, readable by peers that do not hold the collection.
    pub async fn get_private_data_hash(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Bytes>, ChaincodeError> {
        check_collection(collection)?;
        let msg = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let value = self
            .call(MsgType::GetPrivateDataHash, &msg, "GET_PRIVATE_DATA_HASH")
            .await?;
        Ok((!value.is_empty()).then_some(value))
    }

    pub async fn put_private_data(
        &self,
        collection: &str,
        key: &str,
        value: impl Into<Bytes>,
    ) -> Result<(), ChaincodeError> {
        check_collection(collection)?;
        if key.is_empty() {
            return Err(ChaincodeError::InvalidArgument(
                "key must not be empty".into(),
            ));
        }
        self.put(key, collection, value.into()).await
    }

    pub async fn del_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<(), ChaincodeError> {
        check_collection(collection)?;
        self.del(key, collection, MsgType::DelState).await
    }

    /// Delete a private value and its history from the private store (Fabric 2.5 purge).
    pub async fn purge_private_data(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<(), ChaincodeError> {
        check_collection(collection)?;
        self.del(key, collection, MsgType::PurgePrivateData).await
    }

    pub async fn get_private_data_by_range(
        &self,
        collection: &str,
        start: &str,
        end: &str,
    ) -> Result<StateIterator, ChaincodeError> {
        check_collection(collection)?;
        let start = simple_range_start(start, end)?;
        Ok(self.range(start, end, collection, None).await?.0)
    }

    pub async fn get_private_data_by_partial_composite_key(
        &self,
        collection: &str,
        object_type: &str,
        attributes: &[&str],
    ) -> Result<StateIterator, ChaincodeError> {
        check_collection(collection)?;
        let (start, end) = partial_range(object_type, attributes)?;
        Ok(self.range(&start, &end, collection, None).await?.0)
    }

    pub async fn get_private_data_query_result(
        &self,
        collection: &str,
        query: &str,
    ) -> Result<StateIterator, ChaincodeError> {
        check_collection(collection)?;
        Ok(self.query(query, collection, None).await?.0)
    }

    pub async fn get_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
    ) -> Result<Option<Bytes>, ChaincodeError> {
        check_collection(collection)?;
        self.get_metadata(key, collection).await
    }

    pub async fn set_private_data_validation_parameter(
        &self,
        collection: &str,
        key: &str,
        policy: impl Into<Bytes>,
    ) -> Result<(), ChaincodeError> {
        check_collection(collection)?;
        self.put_metadata(key, collection, policy.into()).await
    }

    // ---- other chaincodes ----

    /// Invoke `chaincode` (on `channel`, or this channel when empty) with `args`, within this
    /// transaction. Returns the called chaincode's response.
    pub async fn invoke_chaincode(
        &self,
        chaincode: &str,
        args: &[&[u8]],
        channel: &str,
    ) -> Result<Response, ChaincodeError> {
        let name = if channel.is_empty() {
            chaincode.to_owned()
        } else {
            format!("{chaincode}/{channel}")
        };
        let spec = ChaincodeSpec {
            chaincode_id: Some(ChaincodeId {
                name,
                ..Default::default()
            }),
            input: Some(ChaincodeInput {
                args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = self
            .call(MsgType::InvokeChaincode, &spec, "INVOKE_CHAINCODE")
            .await?;
        // The answer wraps a whole ChaincodeMessage: COMPLETED with a Response, or ERROR.
        let nested: ChaincodeMessage = decode(&bytes, "invoke_chaincode answer")?;
        match MsgType::try_from(nested.r#type) {
            Ok(MsgType::Completed) => {
                let r: weft_proto::protos::Response =
                    decode(&nested.payload, "invoked chaincode response")?;
                Ok(Response {
                    status: r.status,
                    message: r.message,
                    payload: r.payload,
                })
            }
            _ => Err(ChaincodeError::Peer(
                String::from_utf8_lossy(&nested.payload).into_owned(),
            )),
        }
    }

    // ---- helpers ----

    async fn get(&self, key: &str, collection: &str) -> Result<Option<Bytes>, ChaincodeError> {
        let msg = GetState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let value = self.call(MsgType::GetState, &msg, "GET_STATE").await?;
        Ok((!value.is_empty()).then_some(value))
    }

    async fn put(&self, key: &str, collection: &str, value: Bytes) -> Result<(), ChaincodeError> {
        let msg = PutState {
            key: key.to_owned(),
            value,
            collection: collection.to_owned(),
        };
        self.call(MsgType::PutState, &msg, "PUT_STATE")
            .await
            .map(drop)
    }

    async fn del(&self, key: &str, collection: &str, ty: MsgType) -> Result<(), ChaincodeError> {
        let msg = DelState {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let what = if ty == MsgType::PurgePrivateData {
            "PURGE_PRIVATE_DATA"
        } else {
            "DEL_STATE"
        };
        self.call(ty, &msg, what).await.map(drop)
    }

    async fn get_metadata(
        &self,
        key: &str,
        collection: &str,
    ) -> Result<Option<Bytes>, ChaincodeError> {
        let msg = GetStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
        };
        let bytes = self
            .call(MsgType::GetStateMetadata, &msg, "GET_STATE_METADATA")
            .await?;
        let result: StateMetadataResult = decode(&bytes, "state metadata")?;
        Ok(result
            .entries
            .into_iter()
            .find(|e| e.metakey == VALIDATION_PARAMETER)
            .map(|e| e.value))
    }

    async fn put_metadata(
        &self,
        key: &str,
        collection: &str,
        value: Bytes,
    ) -> Result<(), ChaincodeError> {
        let msg = PutStateMetadata {
            key: key.to_owned(),
            collection: collection.to_owned(),
            metadata: Some(StateMetadata {
                metakey: VALIDATION_PARAMETER.to_owned(),
                value,
            }),
        };
        self.call(MsgType::PutStateMetadata, &msg, "PUT_STATE_METADATA")
            .await
            .map(drop)
    }

    async fn range(
        &self,
        start: &str,
        end: &str,
        collection: &str,
        page: Option<(i32, &str)>,
    ) -> Result<(StateIterator, PageInfo), ChaincodeError> {
        let msg = GetStateByRange {
            start_key: start.to_owned(),
            end_key: end.to_owned(),
            collection: collection.to_owned(),
            metadata: page_metadata(page),
        };
        let bytes = self
            .call(MsgType::GetStateByRange, &msg, "GET_STATE_BY_RANGE")
            .await?;
        self.page(bytes)
    }

    async fn query(
        &self,
        query: &str,
        collection: &str,
        page: Option<(i32, &str)>,
    ) -> Result<(StateIterator, PageInfo), ChaincodeError> {
        let msg = GetQueryResult {
            query: query.to_owned(),
            collection: collection.to_owned(),
            metadata: page_metadata(page),
        };
        let bytes = self
            .call(MsgType::GetQueryResult, &msg, "GET_QUERY_RESULT")
            .await?;
        self.page(bytes)
    }

    fn page(&self, bytes: Bytes) -> Result<(StateIterator, PageInfo), ChaincodeError> {
        let response: QueryResponse = decode(&bytes, "query response")?;
        let info = if response.metadata.is_empty() {
            PageInfo::default()
        } else {
            let m: QueryResponseMetadata = decode(&response.metadata, "query response metadata")?;
            PageInfo {
                fetched_records_count: m.fetched_records_count,
                bookmark: m.bookmark,
            }
        };
        Ok((QueryIterator::new(self.clone(), response), info))
    }
}

fn page_metadata(page: Option<(i32, &str)>) -> Bytes {
    match page {
        None => Bytes::new(),
        Some((page_size, bookmark)) => QueryMetadata {
            page_size,
            bookmark: bookmark.to_owned(),
        }
        .encode_to_vec()
        .into(),
    }
}

/// Check a simple-key range and substitute Fabric's start key for an empty one.
fn simple_range_start<'a>(start: &'a str, end: &str) -> Result<&'a str, ChaincodeError> {
    check_simple_key(start)?;
    check_simple_key(end)?;
    Ok(if start.is_empty() {
        EMPTY_KEY_SUBSTITUTE
    } else {
        start
    })
}

fn partial_range(
    object_type: &str,
    attributes: &[&str],
) -> Result<(String, String), ChaincodeError> {
    let start = create_composite_key(object_type, attributes)?;
    let mut end = start.clone();
    end.push(MAX_RUNE);
    Ok((start, end))
}

fn check_collection(collection: &str) -> Result<(), ChaincodeError> {
    if collection.is_empty() {
        return Err(ChaincodeError::InvalidArgument(
            "collection must not be an empty string".into(),
        ));
    }
    Ok(())
}

/// Results of a range, rich or history query, fetched from the peer in batches.
#[derive(Debug)]
pub struct QueryIterator<T> {
    stub: Stub,
    id: String,
    buffer: VecDeque<Bytes>,
    has_more: bool,
    closed: bool,
    _item: PhantomData<fn() -> T>,
}

/// Key/value results of range and rich queries.
pub type StateIterator = QueryIterator<Kv>;
/// Modifications of one key.
pub type HistoryIterator = QueryIterator<KeyModification>;

impl<T: Message + Default> QueryIterator<T> {
    fn new(stub: Stub, response: QueryResponse) -> Self {
        QueryIterator {
            stub,
            id: response.id,
            buffer: response
                .results
                .into_iter()
                .map(|r| r.result_bytes)
                .collect(),
            has_more: response.has_more,
            closed: false,
            _item: PhantomData,
        }
    }

    /// The next result, fetching the next batch from the peer when needed.
    #[allow(clippy::should_implement_trait)] // async: not `Iterator::next`
    pub async fn next(&mut self) -> Result<Option<T>, ChaincodeError> {
        loop {
            if let Some(bytes) = self.buffer.pop_front() {
                return decode(&bytes, "query result").map(Some);
            }
            if !self.has_more || self.closed {
                return Ok(None);
            }
            let bytes = self
                .stub
                .call(
                    MsgType::QueryStateNext,
                    &QueryStateNext {
                        id: self.id.clone(),
                    },
                    "QUERY_STATE_NEXT",
                )
                .await?;
            let response: QueryResponse = decode(&bytes, "query response")?;
            self.has_more = response.has_more;
            self.buffer
                .extend(response.results.into_iter().map(|r| r.result_bytes));
        }
    }

    /// Every remaining result.
    pub async fn collect_all(mut self) -> Result<Vec<T>, ChaincodeError> {
        let mut all = Vec::new();
        while let Some(item) = self.next().await? {
            all.push(item);
        }
        self.close().await?;
        Ok(all)
    }

    /// Tell the peer the iterator is done (it also forgets it when the transaction ends).
    pub async fn close(&mut self) -> Result<(), ChaincodeError> {
        if self.closed || self.id.is_empty() {
            self.closed = true;
            return Ok(());
        }
        self.closed = true;
        self.stub
            .call(
                MsgType::QueryStateClose,
                &QueryStateClose {
                    id: self.id.clone(),
                },
                "QUERY_STATE_CLOSE",
            )
            .await
            .map(drop)
    }
}
