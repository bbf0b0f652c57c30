//! The consenter's write-ahead log: each cut batch is made durable here before its block is
//! written to the block store, so a crash between the two loses nothing.
//!
//! # Format
//!
//! One file, `wal.log`, of records framed as the block store frames blocks
//! ([`weft_ledger::blockstore::encode_record`]: `length (u64 BE) ++ body ++ CRC-32C (u32 BE)`).
//! A record's body is `block number (u64 BE) ++ common.BlockData bytes` (the batch's
//! envelopes, in order). Every append is fsynced before it returns.
//!
//! # Recovery and release
//!
//! [`Wal::open`] reads every record. A record cut short or failing its CRC at the end of the
//! file is a write a crash interrupted: it is dropped with a warning and the file truncated
//! there (the batch was never acknowledged as ordered, since the append did not return).
//!
//! Once blocks are durable in the block store, [`Wal::release`] forgets records below the
//! store's height: when none is left the file is truncated to zero; when some are left and
//! the file has grown past [`ROTATE_BYTES`], the remaining records are copied to a new file
//! that atomically replaces the old one.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;
use weft_ledger::blockstore::{decode_record, encode_record};
use weft_proto::common::BlockData;

/// Size past which a release rewrites the log without its released records.
pub const ROTATE_BYTES: u64 = 16 * 1024 * 1024;

const FILE: &str = "wal.log";

/// A WAL failure, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("write-ahead log {path}: {what}: {source}")]
pub struct WalError {
    pub path: PathBuf,
    pub what: String,
    #[source]
    pub source: std::io::Error,
}

/// One batch read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    pub number: u64,
    pub envelopes: Vec<Bytes>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    number: u64,
    offset: u64,
    size: u64,
}

/// The open log (see the module documentation).
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    end: u64,
    held: VecDeque<Held>,
}

fn encode_body(number: u64, envelopes: &[Bytes]) -> Vec<u8> {
    let data = BlockData {
        data: envelopes.to_vec(),
    };
    let mut body = Vec::with_capacity(8 + data.encoded_len());
    body.extend_from_slice(&number.to_be_bytes());
    body.extend_from_slice(&data.encode_to_vec());
    body
}

fn decode_body(body: &[u8]) -> Result<WalEntry, String> {
    let (num, data) = body
        .split_at_checked(8)
        .ok_or("record shorter than its block number")?;
    let mut n = [0u8; 8];
    n.copy_from_slice(num);
    let data = BlockData::decode(data).map_err(|e| format!("not a batch: {e}"))?;
    Ok(WalEntry {
        number: u64::from_be_bytes(n),
        envelopes: data.data,
    })
}

impl Wal {
    /// Open (or create) the log in `dir`, returning the records it holds, in order.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<WalEntry>), WalError> {
        let path = dir.join(FILE);
        let err = |what: &str| {
            let path = path.clone();
            let what = what.to_owned();
            move |source| WalError { path, what, source }
        };
        std::fs::create_dir_all(dir).map_err(err("cannot create the directory"))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(err("cannot open"))?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(err("cannot read"))?;
        let mut entries = Vec::new();
        let mut held = VecDeque::new();
        let mut offset = 0usize;
        while offset < buf.len() {
            let rest = buf.get(offset..).unwrap_or_default();
            let problem = match decode_record(rest) {
                Ok((body, size)) => match decode_body(body) {
                    Ok(entry) => {
                        held.push_back(Held {
                            number: entry.number,
                            offset: offset as u64,
                            size: size as u64,
                        });
                        entries.push(entry);
                        offset += size;
                        continue;
                    }
                    Err(e) => e,
                },
                Err(e) => e.to_string(),
            };
            tracing::warn!(
                wal = %path.display(),
                offset,
                dropped_bytes = buf.len() - offset,
                "ignoring a torn record at the end of the write-ahead log (a write interrupted by a crash): {problem}"
            );
            break;
        }
        let end = offset as u64;
        if end < buf.len() as u64 {
            file.set_len(end)
                .map_err(err("cannot truncate a torn record"))?;
            file.sync_all().map_err(err("cannot sync"))?;
        }
        file.seek(SeekFrom::Start(end))
            .map_err(err("cannot seek"))?;
        Ok((
            Wal {
                dir: dir.to_owned(),
                path,
                file,
                end,
                held,
            },
            entries,
        ))
    }

    fn err(&self, what: &str) -> impl FnOnce(std::io::Error) -> WalError {
        let path = self.path.clone();
        let what = what.to_owned();
        move |source| WalError { path, what, source }
    }

    /// Append block `number`'s batch and fsync it.
    pub fn append(&mut self, number: u64, envelopes: &[Bytes]) -> Result<(), WalError> {
        let record = encode_record(&encode_body(number, envelopes));
        self.file
            .write_all(&record)
            .map_err(self.err("cannot append"))?;
        self.file.sync_data().map_err(self.err("cannot sync"))?;
        self.held.push_back(Held {
            number,
            offset: self.end,
            size: record.len() as u64,
        });
        self.end += record.len() as u64;
        Ok(())
    }

    /// Records still held (not yet released).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Current file size.
    pub fn len(&self) -> u64 {
        self.end
    }

    pub fn is_empty(&self) -> bool {
        self.end == 0
    }

    /// Forget records for blocks below `height` (durable in the block store).
    pub fn release(&mut self, height: u64) -> Result<(), WalError> {
        while self.held.front().is_some_and(|h| h.number < height) {
            self.held.pop_front();
        }
        if self.held.is_empty() {
            if self.end > 0 {
                self.file.set_len(0).map_err(self.err("cannot truncate"))?;
                self.file.sync_all().map_err(self.err("cannot sync"))?;
                self.file
                    .seek(SeekFrom::Start(0))
                    .map_err(self.err("cannot seek"))?;
                self.end = 0;
            }
            return Ok(());
        }
        if self.end > ROTATE_BYTES {
            self.rotate()?;
        }
        Ok(())
    }

    /// Copy the held records to a new file that replaces the log.
    fn rotate(&mut self) -> Result<(), WalError> {
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let mut out = File::create(&tmp).map_err(self.err("cannot create the rotated log"))?;
        let mut held = VecDeque::new();
        let mut offset = 0u64;
        for h in &self.held {
            let mut rec = vec![0u8; h.size as usize];
            self.file
                .seek(SeekFrom::Start(h.offset))
                .map_err(self.err("cannot seek"))?;
            self.file
                .read_exact(&mut rec)
                .map_err(self.err("cannot read a held record"))?;
            out.write_all(&rec)
                .map_err(self.err("cannot write the rotated log"))?;
            held.push_back(Held {
                number: h.number,
                offset,
                size: h.size,
            });
            offset += h.size;
        }
        out.sync_all()
            .map_err(self.err("cannot sync the rotated log"))?;
        drop(out);
        std::fs::rename(&tmp, &self.path).map_err(self.err("cannot replace the log"))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(self.err("cannot reopen"))?;
        file.seek(SeekFrom::End(0))
            .map_err(self.err("cannot seek"))?;
        self.file = file;
        self.held = held;
        self.end = offset;
        tracing::debug!(wal = %self.path.display(), bytes = offset, "write-ahead log rotated");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn batch(tag: u8, n: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(vec![tag, i as u8])).collect()
    }

    #[test]
    fn records_survive_reopen_and_release_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, entries) = Wal::open(dir.path()).unwrap();
        assert!(entries.is_empty());
        wal.append(1, &batch(1, 2)).unwrap();
        wal.append(2, &batch(2, 1)).unwrap();
        drop(wal);
        let (mut wal, entries) = Wal::open(dir.path()).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].number, 1);
        assert_eq!(entries[0].envelopes, batch(1, 2));
        assert_eq!(entries[1].number, 2);
        wal.release(2).unwrap();
        assert_eq!(wal.held(), 1);
        assert!(!wal.is_empty());
        wal.release(3).unwrap();
        assert!(wal.is_empty());
        drop(wal);
        let (_, entries) = Wal::open(dir.path()).unwrap();
        assert!(entries.is_empty());
    }

    #[test]
    fn torn_tail_is_ignored_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(5, &batch(5, 3)).unwrap();
        let good = wal.len();
        drop(wal);
        // A second record cut short, as a crash mid-write leaves it.
        let rec = encode_record(&encode_body(6, &batch(6, 3)));
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .unwrap();
        f.write_all(&rec[..rec.len() - 5]).unwrap();
        drop(f);
        let (mut wal, entries) = Wal::open(dir.path()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].number, 5);
        assert_eq!(wal.len(), good);
        // Appending after recovery yields a clean log.
        wal.append(6, &batch(6, 1)).unwrap();
        drop(wal);
        let (_, entries) = Wal::open(dir.path()).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.number).collect::<Vec<_>>(),
            vec![5, 6]
        );
    }

    #[test]
    fn corrupt_tail_crc_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(0, &batch(0, 1)).unwrap();
        wal.append(1, &batch(1, 1)).unwrap();
        drop(wal);
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        std::fs::write(&path, bytes).unwrap();
        let (_, entries) = Wal::open(dir.path()).unwrap();
        assert_eq!(entries.len(), 1);
    }

    #[test]
    fn rotation_keeps_held_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        let big = vec![Bytes::from(vec![7u8; 1024 * 1024])];
        for n in 0..20 {
            wal.append(n, &big).unwrap();
        }
        wal.release(18).unwrap();
        assert_eq!(wal.held(), 2);
        assert!(wal.len() < 3 * 1024 * 1024, "rotated: {}", wal.len());
        wal.append(20, &batch(20, 1)).unwrap();
        drop(wal);
        let (_, entries) = Wal::open(dir.path()).unwrap();
        assert_eq!(
            entries.iter().map(|e| e.number).collect::<Vec<_>>(),
            vec![18, 19, 20]
        );
    }
}
