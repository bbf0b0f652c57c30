//! The consensus seam: what a chain asks of the component that orders its envelopes.
//!
//! A chain hands a [`Consenter`] envelopes that passed Broadcast's checks, each with the config
//! sequence it was validated against ([`OrderRequest`]). A CONFIG envelope (`is_config`) is
//! cut into a block of its own, after the pending envelopes, and the consenter tells its chain
//! at once ([`ChainHooks::config_block`]) so that what follows is ordered under the new config;
//! envelopes validated against an older config are checked again ([`ChainHooks::revalidate`]).
//! The consenter orders them, cuts
//! blocks, and emits [`Decision`]s (a block plus the consenters' signatures over it) on the
//! channel returned by [`Consenter::start`]. The chain writes each decision's block to its
//! block store and reports the new height with [`Consenter::committed`], which lets the
//! consenter release its write-ahead log.
//!
//! The single-node consenter ([`crate::solo::SingleNode`]) is the only implementation today;
//! the BFT replica network of a later issue implements the same trait, with several
//! signatures per decision and a membership of more than one ([`Consenter::consenters`]).
//!
//! Block assembly and signing are shared by every consenter: [`BlockSigner`] produces the
//! SIGNATURES metadata entry as Fabric 2.x does (value = `OrdererBlockMetadata{last_config}`,
//! each signature over `value || signature_header || ASN.1 header bytes`), and LAST_CONFIG.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use tokio::sync::mpsc;
use weft_ledger::block;
use weft_msp::msp::SigningIdentity;
use weft_proto::common::{
    Block, BlockHeader, BlockMetadataIndex, LastConfig, Metadata, MetadataSignature,
    SignatureHeader,
};

/// A boxed future, so the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An envelope to order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    /// The marshalled `common.Envelope`, as it will appear in the block.
    pub envelope: Bytes,
    /// Fabric's size of the envelope (payload + signature), for block cutting.
    pub size: u32,
    /// The config sequence the envelope was validated against. A consenter whose config moved
    /// on since must validate it again before ordering it.
    pub config_seq: u64,
    /// A CONFIG envelope (the orderer's answer to a config update): it goes into a block of
    /// its own, after the pending envelopes are cut, and its config takes effect at once.
    pub is_config: bool,
}

/// What a consenter asks of its chain while ordering (implemented by the chain).
pub trait ChainHooks: Send + Sync + std::fmt::Debug {
    /// Block `number`, holding the CONFIG `envelope` alone, was cut: make its config the
    /// channel's. Returns the new config sequence and batch limits.
    fn config_block(
        &self,
        number: u64,
        envelope: &Bytes,
    ) -> Result<(u64, crate::blockcutter::BatchLimits), String>;

    /// Check again, against the current config, an envelope validated against an older one.
    fn revalidate(&self, envelope: &Bytes) -> Result<(), String>;
}

/// Whether `envelope` (a marshalled `common.Envelope`) has a CONFIG channel header.
pub fn is_config_envelope(envelope: &Bytes) -> bool {
    use weft_proto::common::{ChannelHeader, Envelope, HeaderType, Payload};
    Envelope::decode(envelope.clone())
        .ok()
        .and_then(|e| Payload::decode(e.payload).ok())
        .and_then(|p| p.header)
        .and_then(|h| ChannelHeader::decode(h.channel_header).ok())
        .is_some_and(|c| c.r#type == HeaderType::Config as i32)
}

/// An ordered block and the consenters' signatures over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Header, data and metadata (LAST_CONFIG set); the SIGNATURES entry is filled from
    /// `metadata_value` and `signatures` by [`Decision::into_block`].
    pub block: Block,
    /// The encoded `OrdererBlockMetadata` the signatures cover.
    pub metadata_value: Bytes,
    pub signatures: Vec<MetadataSignature>,
}

impl Decision {
    pub fn number(&self) -> u64 {
        self.block.header.as_ref().map_or(0, |h| h.number)
    }

    /// The block to store: SIGNATURES = `Metadata{value, signatures}`.
    pub fn into_block(self) -> Block {
        let mut b = self.block;
        block::set_signatures(&mut b, self.metadata_value, self.signatures);
        b
    }
}

/// One member of the consenter set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsenterInfo {
    /// Consenter id (1 for the single node).
    pub id: u64,
    pub msp_id: String,
    /// `msp.SerializedIdentity` of the signing identity.
    pub identity: Bytes,
}

/// Why the consenter did not take a request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// Halted or not started: the client should retry elsewhere or later.
    #[error("the consenter of channel {channel} is not running: {detail}")]
    Unavailable { channel: String, detail: String },
    /// The consenter could not start (its log, its block store tip).
    #[error("the consenter of channel {channel} cannot start: {detail}")]
    Start { channel: String, detail: String },
}

/// Orders envelopes into blocks (see the module documentation).
pub trait Consenter: Send + Sync + std::fmt::Debug {
    /// Start ordering. Returns the decisions, in block order, starting with any recovered from
    /// the consenter's log. Callable once.
    fn start(&self) -> Result<mpsc::Receiver<Decision>, ConsensusError>;

    /// Submit an envelope; resolves once the consenter accepted it (durably ordered or queued
    /// for ordering), not when its block is written.
    fn order(&self, request: OrderRequest) -> BoxFuture<'_, Result<(), ConsensusError>>;

    /// The chain's block store reached `height` (every decision below it is durable).
    fn committed(&self, height: u64);

    /// The consenter set.
    fn consenters(&self) -> Vec<ConsenterInfo>;

    /// Stop ordering; pending envelopes are dropped, `order` fails from now on.
    fn halt(&self);
}

/// Assembles and signs blocks as this orderer.
#[derive(Debug, Clone)]
pub struct BlockSigner {
    identity: Arc<SigningIdentity>,
    creator: Bytes,
}

/// Signing failed (the local key).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot sign block {number}: {detail}")]
pub struct SignError {
    pub number: u64,
    pub detail: String,
}

impl BlockSigner {
    pub fn new(identity: Arc<SigningIdentity>) -> Self {
        let creator = Bytes::from(identity.serialize());
        BlockSigner { identity, creator }
    }

    pub fn identity(&self) -> &Arc<SigningIdentity> {
        &self.identity
    }

    /// `msp.SerializedIdentity` of the signer.
    pub fn creator(&self) -> &Bytes {
        &self.creator
    }

    /// The next block after `previous_hash`, holding `envelopes`, with LAST_CONFIG set to
    /// `last_config`, and the SIGNATURES value it will carry.
    pub fn assemble(
        &self,
        number: u64,
        previous_hash: &[u8],
        envelopes: Vec<Bytes>,
        last_config: u64,
    ) -> (Block, Bytes) {
        let mut b = block::new_block(number, previous_hash, envelopes);
        let lc = Metadata {
            value: Bytes::from(LastConfig { index: last_config }.encode_to_vec()),
            signatures: Vec::new(),
        };
        block::set_metadata_entry(
            &mut b,
            BlockMetadataIndex::LastConfig,
            Bytes::from(lc.encode_to_vec()),
        );
        let value = block::orderer_metadata_value(last_config, Bytes::new());
        (b, value)
    }

    /// This orderer's signature of a block header with `value`.
    pub fn sign(&self, header: &BlockHeader, value: &[u8]) -> Result<MetadataSignature, SignError> {
        let err = |detail: String| SignError {
            number: header.number,
            detail,
        };
        let nonce = weft_crypto::random_bytes(24).map_err(|e| err(e.to_string()))?;
        let signature_header = Bytes::from(
            SignatureHeader {
                creator: self.creator.clone(),
                nonce: Bytes::from(nonce),
            }
            .encode_to_vec(),
        );
        let msg = block::signature_message(value, &signature_header, header);
        let signature = self.identity.sign(&msg).map_err(|e| err(e.to_string()))?;
        Ok(MetadataSignature {
            signature_header,
            signature: Bytes::from(signature),
            identifier_header: Bytes::new(),
        })
    }

    /// Assemble and sign in one step: a decision with this orderer's signature.
    pub fn decide(
        &self,
        number: u64,
        previous_hash: &[u8],
        envelopes: Vec<Bytes>,
        last_config: u64,
    ) -> Result<Decision, SignError> {
        let (block, metadata_value) = self.assemble(number, previous_hash, envelopes, last_config);
        let header = block.header.clone().unwrap_or_default();
        let sig = self.sign(&header, &metadata_value)?;
        Ok(Decision {
            block,
            metadata_value,
            signatures: vec![sig],
        })
    }
}
