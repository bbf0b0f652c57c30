//! The block store on real files and a real RocksDB index in a temporary directory, including
//! crashes simulated by editing the files behind its back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use prost::Message;
use weft_ledger::blockstore::{decode_record, encode_record, RecordError, NOT_VALIDATED};
use weft_ledger::{BlockStore, BlockStoreConfig, BlockStoreError};
use weft_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, ChannelHeader, Envelope, Header, Payload,
};

fn envelope(tx_id: &str, body: &str) -> Bytes {
    let channel_header = ChannelHeader {
        r#type: 3,
        channel_id: "mychannel".into(),
        tx_id: tx_id.into(),
        ..Default::default()
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: Bytes::from_static(b"creator"),
        }),
        data: Bytes::copy_from_slice(body.as_bytes()),
    };
    Envelope {
        payload: payload.encode_to_vec().into(),
        signature: Bytes::from_static(b"sig"),
    }
    .encode_to_vec()
    .into()
}

/// Block `number` holding `envelopes`, with a transactions filter of `codes`.
fn block_with(number: u64, envelopes: Vec<Bytes>, codes: &[u8]) -> Block {
    Block {
        header: Some(BlockHeader {
            number,
            previous_hash: Bytes::from(vec![number as u8; 32]),
            data_hash: Bytes::from(vec![0xd0; 32]),
        }),
        data: Some(BlockData { data: envelopes }),
        metadata: Some(BlockMetadata {
            metadata: vec![
                Bytes::new(),
                Bytes::new(),
                Bytes::copy_from_slice(codes),
                Bytes::new(),
            ],
        }),
    }
}

/// Block `number` with two transactions whose ids are unique to it.
fn block(number: u64) -> Block {
    block_with(
        number,
        vec![
            envelope(&format!("tx{number}a"), "first"),
            envelope(&format!("tx{number}b"), "second"),
        ],
        &[0, 0],
    )
}

fn config(max_file_size: u64) -> BlockStoreConfig {
    BlockStoreConfig {
        max_file_size,
        ..BlockStoreConfig::default()
    }
}

fn open(dir: &Path) -> BlockStore {
    BlockStore::open(dir, BlockStoreConfig::default()).unwrap()
}

fn blockfile(dir: &Path, n: u32) -> std::path::PathBuf {
    dir.join("chains").join(format!("blockfile_{n:06}"))
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

fn append_to(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
    f.sync_all().unwrap();
}

fn fill(store: &BlockStore, n: u64) {
    for i in store.height()..n {
        store.append_block(&block(i)).unwrap();
    }
}

#[test]
fn record_format_is_pinned() {
    let record = encode_record(b"abc");
    assert_eq!(
        record,
        [0, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 0x9e, 0xdc, 0xa3, 0x0c],
        "length (u64 BE) ++ bytes ++ CRC-32C (u32 BE) of length ++ bytes"
    );
    assert_eq!(decode_record(&record), Ok((&b"abc"[..], 15)));
    let mut followed = record.clone();
    followed.extend_from_slice(b"next");
    assert_eq!(decode_record(&followed), Ok((&b"abc"[..], 15)));
    assert_eq!(
        decode_record(&record[..14]),
        Err(RecordError::Truncated {
            available: 14,
            needed: Some(15)
        })
    );
    let mut bad = record;
    bad[9] ^= 1;
    assert!(matches!(
        decode_record(&bad),
        Err(RecordError::Checksum { size: 15, .. })
    ));
}

#[test]
fn stores_exact_bytes_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.height(), 0);
    assert!(store.block_bytes(0).unwrap().is_none());

    // An unknown field (number 99, varint 1) that decoding drops: re-encoding would lose it.
    let mut bytes = block(0).encode_to_vec();
    bytes.extend_from_slice(&[0x98, 0x06, 0x01]);
    assert_ne!(Block::decode(&bytes[..]).unwrap().encode_to_vec(), bytes);
    store.append(0, &bytes).unwrap();
    store
        .append_decoded(1, &block(1), &block(1).encode_to_vec())
        .unwrap();

    assert_eq!(store.height(), 2);
    assert_eq!(store.block_bytes(0).unwrap().unwrap(), bytes);
    assert_eq!(store.block(1).unwrap().unwrap(), block(1));
    assert_eq!(
        store.block_bytes(1).unwrap().unwrap(),
        block(1).encode_to_vec()
    );
    assert!(store.block(2).unwrap().is_none());
    let all: Vec<u64> = store
        .iter_from(0)
        .map(|b| b.unwrap().header.unwrap().number)
        .collect();
    assert_eq!(all, [0, 1]);
    assert_eq!(store.iter_from(1).count(), 1);
    assert_eq!(store.iter_from(5).count(), 0);

    // The file holds exactly the two records.
    let expected = [
        encode_record(&bytes),
        encode_record(&block(1).encode_to_vec()),
    ]
    .concat();
    assert_eq!(std::fs::read(blockfile(dir.path(), 0)).unwrap(), expected);
}

#[test]
fn height_and_blocks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fill(&store, 5);
    }
    let store = open(dir.path());
    assert_eq!(store.height(), 5);
    for i in 0..5 {
        assert_eq!(store.block(i).unwrap().unwrap(), block(i));
    }
    store.append_block(&block(5)).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.height(), 6);
    assert_eq!(store.tx_location("tx5b").unwrap(), Some((5, 1)));
}

#[test]
fn rolls_over_to_new_files_at_the_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let len = |i: u64| encode_record(&block(i).encode_to_vec()).len() as u64;
    // Blocks 1..10 encode to the same size; block 0 is smaller (a zero number is not encoded).
    assert!(len(0) < len(1) && (1..10).all(|i| len(i) == len(1)));
    // Room for two records per file.
    let max = len(1) * 2 + len(1) / 2;
    {
        let store = BlockStore::open(dir.path(), config(max)).unwrap();
        fill(&store, 5);
        for n in 0..3 {
            assert!(blockfile(dir.path(), n).exists(), "file {n}");
        }
        assert!(!blockfile(dir.path(), 3).exists());
        assert_eq!(file_len(&blockfile(dir.path(), 0)), len(0) + len(1));
        assert_eq!(file_len(&blockfile(dir.path(), 1)), len(2) + len(3));
        assert_eq!(file_len(&blockfile(dir.path(), 2)), len(4));
        for i in 0..5 {
            assert_eq!(store.block(i).unwrap().unwrap(), block(i));
        }
    }
    // After a reopen, appends continue in the last file, then roll over.
    let store = BlockStore::open(dir.path(), config(max)).unwrap();
    assert_eq!(store.height(), 5);
    fill(&store, 7);
    assert_eq!(file_len(&blockfile(dir.path(), 2)), len(4) + len(5));
    assert_eq!(file_len(&blockfile(dir.path(), 3)), len(6));
    let all: Vec<Block> = store.iter_from(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), 7);

    // A block larger than the maximum gets a file of its own.
    let tiny = tempfile::tempdir().unwrap();
    let store = BlockStore::open(tiny.path(), config(1)).unwrap();
    fill(&store, 3);
    for n in 0..3 {
        assert_eq!(file_len(&blockfile(tiny.path(), n)), len(u64::from(n)));
    }
    drop(store);
    let store = BlockStore::open(tiny.path(), config(1)).unwrap();
    assert_eq!(store.height(), 3);
    assert_eq!(store.block(2).unwrap().unwrap(), block(2));
}

#[test]
fn refuses_blocks_out_of_order_or_not_matching_their_number() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let err = store.append_block(&block(1)).unwrap_err();
    assert!(
        matches!(
            err,
            BlockStoreError::OutOfOrder {
                height: 0,
                number: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("height is 0"), "{err}");
    store.append_block(&block(0)).unwrap();
    assert!(matches!(
        store.append_block(&block(0)),
        Err(BlockStoreError::OutOfOrder {
            height: 1,
            number: 0
        })
    ));
    // The number given must be the one in the header.
    let err = store.append(1, &block(2).encode_to_vec()).unwrap_err();
    assert!(
        matches!(err, BlockStoreError::BadBlock { number: 1, .. }),
        "{err}"
    );
    // Bytes that are not a block, and a block without a header.
    assert!(matches!(
        store.append(1, &[0xff, 0xff, 0xff]),
        Err(BlockStoreError::BadBlock { number: 1, .. })
    ));
    let headerless = Block {
        header: None,
        ..block(1)
    };
    assert!(matches!(
        store.append(1, &headerless.encode_to_vec()),
        Err(BlockStoreError::BadBlock { .. })
    ));
    // A decoded block with bytes that are not its encoding (the committer's path).
    let err = store
        .append_decoded(1, &block(1), &block(2).encode_to_vec()[1..])
        .unwrap_err();
    assert!(
        matches!(err, BlockStoreError::BadBlock { number: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("encodes to"), "{err}");
    // Nothing of the refused blocks reached the file.
    assert_eq!(store.height(), 1);
    assert_eq!(
        file_len(&blockfile(dir.path(), 0)),
        encode_record(&block(0).encode_to_vec()).len() as u64
    );
    store.append_block(&block(1)).unwrap();
    assert_eq!(store.height(), 2);
}

#[test]
fn tx_ids_are_indexed_and_the_first_occurrence_wins() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .append_block(&block_with(
                0,
                vec![
                    envelope("alpha", "a0"),
                    Bytes::from_static(b"\xff\xffnot an envelope"),
                    envelope("beta", "b0"),
                    envelope("", "no id"),
                    envelope("beta", "b0 again, same block"),
                ],
                &[0, 0, 0, 0, 10],
            ))
            .unwrap();
        store
            .append_block(&block_with(
                1,
                vec![envelope("alpha", "a1 replay"), envelope("gamma", "g1")],
                // Validation marked the replay invalid (DUPLICATE_TXID = 9); the filter stops
                // short of gamma.
                &[9],
            ))
            .unwrap();
        check_tx_index(&store);
    }
    let store = open(dir.path());
    check_tx_index(&store);
    drop(store);

    // Rebuilt from the files alone, the index still keeps the first occurrences.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = open(dir.path());
    assert_eq!(store.height(), 2);
    check_tx_index(&store);
}

/// An orderer's store indexes block numbers only: blocks read back, a tx lookup explains why
/// it cannot answer, and the mode sticks across reopening (with either config) and read-only
/// opens.
#[test]
fn a_store_without_a_tx_index_says_so_and_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let blocks_only = BlockStoreConfig {
        index_tx_ids: false,
        ..BlockStoreConfig::default()
    };
    {
        let store = BlockStore::open(dir.path(), blocks_only.clone()).unwrap();
        store
            .append_block(&block_with(0, vec![envelope("alpha", "a0")], &[0]))
            .unwrap();
    }
    let reopened = [
        BlockStore::open(dir.path(), BlockStoreConfig::default()).unwrap(),
        BlockStore::open_read_only(dir.path()).unwrap(),
    ];
    for store in &reopened {
        assert_eq!(store.height(), 1);
        assert!(store.block(0).unwrap().is_some());
        let e = store.tx_location("alpha").unwrap_err().to_string();
        assert!(e.contains("indexes block numbers only"), "{e}");
        assert!(e.contains("peer's ledger"), "{e}");
    }
    drop(reopened);

    // A store created indexing tx ids keeps doing so, even when opened as an orderer's.
    let old = tempfile::tempdir().unwrap();
    {
        let store = open(old.path());
        store
            .append_block(&block_with(0, vec![envelope("beta", "b0")], &[0]))
            .unwrap();
    }
    let store = BlockStore::open(old.path(), blocks_only.clone()).unwrap();
    assert_eq!(store.tx_location("beta").unwrap(), Some((0, 0)));
    drop(store);

    // A store from before the mode was recorded (no mode entry, blocks indexed) is taken as
    // indexing tx ids, even when opened as an orderer's.
    {
        let db = rocksdb::DB::open_default(old.path().join("index")).unwrap();
        db.delete(b"i").unwrap();
    }
    let store = BlockStore::open(old.path(), blocks_only).unwrap();
    assert_eq!(store.tx_location("beta").unwrap(), Some((0, 0)));
}

fn check_tx_index(store: &BlockStore) {
    assert_eq!(store.tx_location("alpha").unwrap(), Some((0, 0)));
    assert_eq!(store.tx_location("beta").unwrap(), Some((0, 2)));
    assert_eq!(store.tx_location("gamma").unwrap(), Some((1, 1)));
    assert_eq!(store.tx_location("").unwrap(), None);
    assert_eq!(store.tx_location("missing").unwrap(), None);
    assert_eq!(
        store.tx_envelope("alpha").unwrap(),
        Some((envelope("alpha", "a0"), 0))
    );
    assert_eq!(
        store.tx_envelope("beta").unwrap(),
        Some((envelope("beta", "b0"), 0))
    );
    assert_eq!(
        store.tx_envelope("gamma").unwrap(),
        Some((envelope("gamma", "g1"), NOT_VALIDATED))
    );
    assert_eq!(store.tx_envelope("missing").unwrap(), None);
}

#[test]
fn a_torn_tail_is_cut_off_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fill(&store, 4);
    }
    let path = blockfile(dir.path(), 0);
    let good_len = file_len(&path);
    let next = encode_record(&block(4).encode_to_vec());
    let tails: Vec<Vec<u8>> = vec![
        vec![0x42],                      // a cut length header
        next[..next.len() / 2].to_vec(), // half a record
        next[..next.len() - 1].to_vec(), // all but the last CRC byte
        vec![0; next.len()],             // the size grew, the data never landed
        vec![0xab; 100],                 // garbage
        {
            let mut r = next.clone(); // complete, but a byte never landed
            r[20] ^= 0xff;
            r
        },
    ];
    for (i, tail) in tails.iter().enumerate() {
        append_to(&path, tail);
        let store = open(dir.path());
        assert_eq!(store.height(), 4, "tail {i}");
        assert_eq!(file_len(&path), good_len, "tail {i} was not cut off");
        assert_eq!(store.block(3).unwrap().unwrap(), block(3));
    }
    // Appending continues where the good records end.
    let store = open(dir.path());
    store.append_block(&block(4)).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.height(), 5);
    assert_eq!(store.block(4).unwrap().unwrap(), block(4));
}

#[test]
fn records_the_index_missed_are_reindexed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fill(&store, 3);
    }
    // A crash after the record was written and synced but before its index batch.
    append_to(
        &blockfile(dir.path(), 0),
        &encode_record(&block(3).encode_to_vec()),
    );
    let store = open(dir.path());
    assert_eq!(store.height(), 4);
    assert_eq!(store.block(3).unwrap().unwrap(), block(3));
    assert_eq!(store.tx_location("tx3b").unwrap(), Some((3, 1)));
    store.append_block(&block(4)).unwrap();
    drop(store);

    // The whole index lost: rebuilt from the files, across rolled-over files too.
    let store = BlockStore::open(dir.path(), config(1)).unwrap();
    fill(&store, 7);
    drop(store);
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = BlockStore::open(dir.path(), config(1)).unwrap();
    assert_eq!(store.height(), 7);
    for i in 0..7 {
        assert_eq!(store.block(i).unwrap().unwrap(), block(i));
        assert_eq!(store.tx_location(&format!("tx{i}a")).unwrap(), Some((i, 0)));
    }
    store.append_block(&block(7)).unwrap();
    assert!(blockfile(dir.path(), 3).exists());
}

#[test]
fn a_record_holding_the_wrong_block_is_refused_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fill(&store, 2);
    }
    // A valid record, but of block 5 where block 2 belongs.
    append_to(
        &blockfile(dir.path(), 0),
        &encode_record(&block(5).encode_to_vec()),
    );
    let err = BlockStore::open(dir.path(), BlockStoreConfig::default()).unwrap_err();
    assert!(
        matches!(&err, BlockStoreError::Corrupt { detail, .. } if detail.contains("block 5 where block 2")),
        "{err}"
    );
}

#[test]
fn a_corrupt_record_in_the_middle_is_an_error_not_data_loss() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fill(&store, 3);
    }
    let path = blockfile(dir.path(), 0);
    let record_len = encode_record(&block(0).encode_to_vec()).len() as u64;
    let original = std::fs::read(&path).unwrap();
    let mut bytes = original.clone();
    bytes[record_len as usize + 30] ^= 0x01; // inside block 1's bytes
    std::fs::write(&path, &bytes).unwrap();

    // Indexed: the open succeeds and reading the block fails clearly; its neighbours read.
    let store = open(dir.path());
    assert_eq!(store.height(), 3);
    let err = store.block_bytes(1).unwrap_err();
    match &err {
        BlockStoreError::Corrupt {
            path: p,
            offset,
            detail,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*offset, record_len);
            assert!(detail.contains("CRC"), "{err}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("blockfile_000000"), "{err}");
    assert_eq!(store.block(0).unwrap().unwrap(), block(0));
    assert_eq!(store.block(2).unwrap().unwrap(), block(2));
    let mut iter = store.iter_from(0);
    assert!(iter.next().unwrap().is_ok());
    assert!(iter.next().unwrap().is_err());
    assert!(iter.next().is_none());
    assert!(store.tx_envelope("tx1a").is_err());
    drop((iter, store));

    // Not indexed (index lost): the open fails instead of cutting blocks 1 and 2 off.
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let err = BlockStore::open(dir.path(), BlockStoreConfig::default()).unwrap_err();
    match &err {
        BlockStoreError::Corrupt {
            path: p,
            offset,
            detail,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*offset, record_len);
            assert!(detail.contains("valid record follows"), "{err}");
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the file was modified"
    );

    // Once repaired, everything is back.
    std::fs::write(&path, &original).unwrap();
    let store = open(dir.path());
    assert_eq!(store.height(), 3);
    assert_eq!(store.block(1).unwrap().unwrap(), block(1));
}

#[test]
fn a_bad_record_before_another_block_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = BlockStore::open(dir.path(), config(1)).unwrap();
        fill(&store, 3);
    }
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    // Cut block 1's file short: block 2's file follows, so this is no torn write.
    let path = blockfile(dir.path(), 1);
    let len = file_len(&path);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let err = BlockStore::open(dir.path(), config(1)).unwrap_err();
    assert!(
        matches!(&err, BlockStoreError::Corrupt { path: p, .. } if p == &path),
        "{err}"
    );
}

#[test]
fn an_index_ahead_of_the_files_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        fill(&store, 3);
    }
    let path = blockfile(dir.path(), 0);
    let len = file_len(&path);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();
    let err = BlockStore::open(dir.path(), BlockStoreConfig::default()).unwrap_err();
    assert!(matches!(err, BlockStoreError::Index { .. }), "{err}");
    assert!(err.to_string().contains("lost or truncated"), "{err}");
    assert_eq!(file_len(&path), len - 10, "the file was modified");

    std::fs::remove_file(&path).unwrap();
    assert!(BlockStore::open(dir.path(), BlockStoreConfig::default()).is_err());
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut Rng, original: &[u8]) -> Vec<u8> {
    let mut m = original.to_vec();
    for _ in 0..1 + rng.below(3) {
        match rng.below(6) {
            0 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] ^= 1 << rng.below(8);
            }
            1 if !m.is_empty() => {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            2 => m.truncate(rng.below(m.len() + 1)),
            3 => {
                for _ in 0..rng.below(20) {
                    m.push(rng.next() as u8);
                }
            }
            4 if m.len() >= 8 => {
                // A random, often huge, length header.
                let len = match rng.below(3) {
                    0 => rng.next(),
                    1 => u64::MAX - rng.below(16) as u64,
                    _ => rng.below(original.len() * 2) as u64,
                };
                m[..8].copy_from_slice(&len.to_be_bytes());
            }
            _ => {
                let i = rng.below(m.len() + 1);
                m.insert(i, rng.next() as u8);
            }
        }
    }
    m
}

#[test]
fn mutated_records_never_panic_the_decoder() {
    let record = encode_record(&block(7).encode_to_vec());
    let mut rng = Rng(0x5eed_b10c_5701_e000);
    let mut accepted = 0;
    for _ in 0..20_000 {
        let m = mutate(&mut rng, &record);
        if let Ok((payload, size)) = decode_record(&m) {
            accepted += 1;
            assert!(size <= m.len());
            assert_eq!(size, payload.len() + 12);
            assert_eq!(&m[8..8 + payload.len()], payload);
        }
    }
    // Only mutations that leave the record intact (extra bytes after it) pass.
    assert!(accepted > 0 && accepted < 20_000, "{accepted}");
    for len in 0..record.len() {
        assert!(matches!(
            decode_record(&record[..len]),
            Err(RecordError::Truncated { .. })
        ));
    }
}

#[test]
fn mutated_block_files_never_panic_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let pristine = tempfile::tempdir().unwrap();
    {
        let store = open(pristine.path());
        fill(&store, 3);
    }
    let original = std::fs::read(blockfile(pristine.path(), 0)).unwrap();
    let mut rng = Rng(0xfade_d0c5_0000_0001);
    let (mut opened, mut refused) = (0, 0);
    for round in 0..24 {
        let _ = std::fs::remove_dir_all(dir.path());
        std::fs::create_dir_all(dir.path().join("chains")).unwrap();
        // Every other round keeps the index, so reads of indexed records are checked too.
        if round % 2 == 1 {
            copy_dir(&pristine.path().join("index"), &dir.path().join("index"));
        }
        let mutated = mutate(&mut rng, &original);
        std::fs::write(blockfile(dir.path(), 0), &mutated).unwrap();
        match BlockStore::open(dir.path(), BlockStoreConfig::default()) {
            Ok(store) => {
                opened += 1;
                for i in 0..store.height() + 1 {
                    let _ = store.block(i);
                    let _ = store.tx_envelope(&format!("tx{i}a"));
                }
                let _ = store.iter_from(0).count();
            }
            Err(e) => {
                refused += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert_eq!(opened + refused, 24);
    assert!(
        opened > 0 && refused > 0,
        "{opened} opened, {refused} refused"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
