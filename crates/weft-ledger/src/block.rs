//! Blocks as Fabric builds, hashes and signs them.
//!
//! - The header hash is SHA-256 over the DER encoding of
//!   `SEQUENCE { number INTEGER, previous_hash OCTET STRING, data_hash OCTET STRING }`; it is
//!   what the next block's `previous_hash` holds and what orderer signatures cover.
//! - The data hash is SHA-256 over the concatenated envelope bytes, as received.
//! - A new block carries one metadata entry per `BlockMetadataIndex` (five), all empty.
//! - An orderer signs `metadata.value || signature_header || header bytes` for the SIGNATURES
//!   entry, whose value is an `OrdererBlockMetadata` (last config index, consenter metadata).
//!
//! Everything here works on the bytes as they are: nothing that a signature covers is
//! re-encoded.

use bytes::Bytes;
use prost::Message;
use weft_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, BlockMetadataIndex, LastConfig, Metadata,
    MetadataSignature, OrdererBlockMetadata,
};

/// Number of metadata entries Fabric gives every block.
pub const METADATA_ENTRIES: usize = 5;

/// The DER bytes of a block header that its hash and the orderer signatures cover.
pub fn header_bytes(header: &BlockHeader) -> Vec<u8> {
    let mut body = Vec::with_capacity(8 + header.previous_hash.len() + header.data_hash.len() + 12);
    der_unsigned_integer(&mut body, header.number);
    der_tlv(&mut body, 0x04, &header.previous_hash);
    der_tlv(&mut body, 0x04, &header.data_hash);
    let mut out = Vec::with_capacity(body.len() + 6);
    der_tlv(&mut out, 0x30, &body);
    out
}

/// SHA-256 of [`header_bytes`]: the value the next block's `previous_hash` must hold.
pub fn header_hash(header: &BlockHeader) -> [u8; 32] {
    weft_crypto::sha256(&header_bytes(header))
}

/// SHA-256 over the concatenation of the block's data entries (envelopes, as received).
pub fn data_hash(data: &BlockData) -> [u8; 32] {
    let mut ctx = weft_crypto::Sha256::new();
    for entry in &data.data {
        ctx.update(entry);
    }
    ctx.finish()
}

/// A block numbered `number` after a block whose header hash is `previous_hash`, holding
/// `data`, with the data hash set and the five empty metadata entries.
pub fn new_block(number: u64, previous_hash: &[u8], data: Vec<Bytes>) -> Block {
    let data = BlockData { data };
    let header = BlockHeader {
        number,
        previous_hash: Bytes::copy_from_slice(previous_hash),
        data_hash: Bytes::copy_from_slice(&data_hash(&data)),
    };
    Block {
        header: Some(header),
        data: Some(data),
        metadata: Some(BlockMetadata {
            metadata: vec![Bytes::new(); METADATA_ENTRIES],
        }),
    }
}

/// The metadata entry at `index`, if the block has it.
pub fn metadata_entry(block: &Block, index: BlockMetadataIndex) -> Option<&Bytes> {
    block
        .metadata
        .as_ref()
        .and_then(|m| m.metadata.get(index as usize))
}

/// Set the metadata entry at `index`, growing the list to the five entries if needed.
pub fn set_metadata_entry(block: &mut Block, index: BlockMetadataIndex, value: Bytes) {
    let md = block.metadata.get_or_insert_with(BlockMetadata::default);
    let at = index as usize;
    if md.metadata.len() <= at {
        md.metadata
            .resize(METADATA_ENTRIES.max(at + 1), Bytes::new());
    }
    md.metadata[at] = value;
}

/// The validation code of each transaction (TRANSACTIONS_FILTER), if the committer set it.
pub fn transactions_filter(block: &Block) -> Option<&[u8]> {
    metadata_entry(block, BlockMetadataIndex::TransactionsFilter)
        .filter(|b| !b.is_empty())
        .map(|b| b.as_ref())
}

/// Record one validation code per transaction in the TRANSACTIONS_FILTER entry.
pub fn set_transactions_filter(block: &mut Block, codes: &[u8]) {
    set_metadata_entry(
        block,
        BlockMetadataIndex::TransactionsFilter,
        Bytes::copy_from_slice(codes),
    );
}

/// The bytes an orderer signs for the SIGNATURES entry: `value || signature_header ||
/// header_bytes(header)`.
pub fn signature_message(value: &[u8], signature_header: &[u8], header: &BlockHeader) -> Vec<u8> {
    let hb = header_bytes(header);
    let mut msg = Vec::with_capacity(value.len() + signature_header.len() + hb.len());
    msg.extend_from_slice(value);
    msg.extend_from_slice(signature_header);
    msg.extend_from_slice(&hb);
    msg
}

/// The `OrdererBlockMetadata` value of the SIGNATURES entry, encoded.
pub fn orderer_metadata_value(last_config: u64, consenter_metadata: Bytes) -> Bytes {
    Bytes::from(
        OrdererBlockMetadata {
            last_config: Some(LastConfig { index: last_config }),
            consenter_metadata,
        }
        .encode_to_vec(),
    )
}

/// The decoded SIGNATURES entry: its value bytes (as stored) and its signatures.
pub fn signatures(block: &Block) -> Result<Option<Metadata>, prost::DecodeError> {
    match metadata_entry(block, BlockMetadataIndex::Signatures) {
        Some(b) if !b.is_empty() => Metadata::decode(b.clone()).map(Some),
        _ => Ok(None),
    }
}

/// Store the SIGNATURES entry: `value` (an encoded `OrdererBlockMetadata`) and the signatures
/// over [`signature_message`].
pub fn set_signatures(block: &mut Block, value: Bytes, signatures: Vec<MetadataSignature>) {
    let md = Metadata { value, signatures };
    set_metadata_entry(
        block,
        BlockMetadataIndex::Signatures,
        Bytes::from(md.encode_to_vec()),
    );
}

/// The last config block index the SIGNATURES entry records (Fabric 2.x), if present.
pub fn last_config_index(block: &Block) -> Option<u64> {
    let md = signatures(block).ok().flatten()?;
    let obm = OrdererBlockMetadata::decode(md.value).ok()?;
    obm.last_config.map(|lc| lc.index)
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (8 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der_tlv(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    der_len(out, content.len());
    out.extend_from_slice(content);
}

/// A non-negative INTEGER in minimal two's complement (Go's asn1 of a big.Int).
fn der_unsigned_integer(out: &mut Vec<u8>, n: u64) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    let mut content = Vec::with_capacity(9);
    if bytes[skip] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(&bytes[skip..]);
    der_tlv(out, 0x02, &content);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn header_der_matches_go_asn1() {
        // Go: asn1.Marshal(asn1Header{Number: big.NewInt(0), PreviousHash: nil, DataHash: nil})
        let h = BlockHeader {
            number: 0,
            previous_hash: Bytes::new(),
            data_hash: Bytes::new(),
        };
        assert_eq!(
            header_bytes(&h),
            vec![0x30, 0x07, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00]
        );
        // 128 needs a leading zero byte; 32-byte hashes use short-form lengths.
        let h = BlockHeader {
            number: 128,
            previous_hash: Bytes::from(vec![1u8; 32]),
            data_hash: Bytes::from(vec![2u8; 32]),
        };
        let der = header_bytes(&h);
        assert_eq!(&der[..6], &[0x30, 0x48, 0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der.len(), 2 + 0x48);
        // u64::MAX: nine content bytes.
        let h = BlockHeader {
            number: u64::MAX,
            ..Default::default()
        };
        assert_eq!(&header_bytes(&h)[2..5], &[0x02, 0x09, 0x00]);
    }

    #[test]
    fn long_form_length() {
        let mut out = Vec::new();
        der_tlv(&mut out, 0x04, &[0u8; 300]);
        assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }

    #[test]
    fn chain_and_metadata() {
        let b0 = new_block(0, &[], vec![Bytes::from_static(b"genesis")]);
        let h0 = header_hash(b0.header.as_ref().unwrap());
        let mut b1 = new_block(
            1,
            &h0,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        );
        assert_eq!(
            b1.header.as_ref().unwrap().data_hash.as_ref(),
            weft_crypto::sha256(b"ab").as_slice()
        );
        assert_eq!(
            b1.metadata.as_ref().unwrap().metadata.len(),
            METADATA_ENTRIES
        );
        assert!(transactions_filter(&b1).is_none());
        set_transactions_filter(&mut b1, &[0, 11]);
        assert_eq!(transactions_filter(&b1), Some(&[0u8, 11][..]));
        let value = orderer_metadata_value(0, Bytes::new());
        set_signatures(&mut b1, value.clone(), vec![]);
        assert_eq!(last_config_index(&b1), Some(0));
        let msg = signature_message(&value, b"sh", b1.header.as_ref().unwrap());
        assert!(msg.starts_with(&value));
    }
}
