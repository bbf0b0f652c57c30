//! Streaming, bounded reading of gzip'd tar archives.
//!
//! The `tar` crate is used in raw mode: it hands over every header as it is, and this module
//! interprets GNU long names and pax records itself, with size caps, instead of letting the
//! crate buffer them without bound. Every byte out of the gzip decoder passes through
//! [`Guarded`], which stops at a byte cap and remembers whether a failure came from the gzip
//! layer, so errors can be reported as "corrupt gzip", "too large" or "not a tar".

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use tar::EntryType;

use super::{Limits, PackageError, CODE_PACKAGE_FILE, METADATA_FILE};

/// How the outer package is named in messages.
pub(crate) const PACKAGE: &str = "the chaincode package";
/// How the code archive is named in messages.
pub(crate) const CODE: &str = "code.tar.gz";

/// Longest path accepted in an archive, in bytes.
pub(crate) const MAX_PATH_BYTES: usize = 4096;
/// Longest path component accepted, in bytes.
pub(crate) const MAX_COMPONENT_BYTES: usize = 255;
/// Largest pax extended header (local or global) accepted.
const MAX_PAX_BYTES: u64 = 64 * 1024;
/// Most pax global headers accepted in one archive.
const MAX_GLOBAL_HEADERS: u32 = 16;

/// A reader that caps how many bytes come out of `inner` and records why it failed.
pub(crate) struct Guarded<R> {
    inner: R,
    read: u64,
    limit: u64,
    limit_hit: bool,
    inner_error: Option<String>,
}

impl<R: Read> Guarded<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Guarded {
            inner,
            read: 0,
            limit,
            limit_hit: false,
            inner_error: None,
        }
    }

    /// Turns an I/O error seen while reading through this guard into the right refusal.
    pub(crate) fn classify(&self, archive: &'static str, err: &io::Error) -> PackageError {
        if self.limit_hit {
            PackageError::DecompressedTooLarge {
                archive,
                limit: self.limit,
            }
        } else if let Some(detail) = &self.inner_error {
            PackageError::CorruptGzip {
                archive,
                detail: detail.clone(),
            }
        } else {
            PackageError::NotTar {
                archive,
                detail: err.to_string(),
            }
        }
    }
}

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.read >= self.limit {
            // At the cap: the stream is fine only if it ends exactly here.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe) {
                Ok(0) => Ok(0),
                Ok(_) => {
                    self.limit_hit = true;
                    Err(io::Error::other("decompressed size limit reached"))
                }
                Err(e) => {
                    self.inner_error = Some(e.to_string());
                    Err(e)
                }
            };
        }
        let room = usize::try_from(self.limit - self.read).unwrap_or(usize::MAX);
        let take = buf.len().min(room);
        match self.inner.read(&mut buf[..take]) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.inner_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Refuses data that does not start with the gzip magic bytes, saying what it looks like.
pub(crate) fn check_gzip_magic(archive: &'static str, bytes: &[u8]) -> Result<(), PackageError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(());
    }
    let found = if bytes.is_empty() {
        "it is empty"
    } else if bytes.len() >= 262 && &bytes[257..262] == b"ustar" {
        "it is an uncompressed tar archive (gzip it, e.g. `tar czf`)"
    } else if bytes.starts_with(b"PK\x03\x04") {
        "it is a zip file"
    } else {
        "it does not start with the gzip magic bytes 1f 8b"
    };
    Err(PackageError::NotGzip { archive, found })
}

/// Errors inside a walk: an I/O error still to be classified by the [`Guarded`] reader, or a
/// decided refusal.
pub(crate) enum WalkError {
    Io(io::Error),
    Refused(PackageError),
}

impl From<PackageError> for WalkError {
    fn from(e: PackageError) -> Self {
        WalkError::Refused(e)
    }
}

/// One archive member, with its extension records (GNU long name, pax) already applied.
pub(crate) struct Member {
    /// The full path as stored (pax `path`, else GNU long name, else the header's name).
    pub(crate) name: Vec<u8>,
    pub(crate) entry_type: EntryType,
    /// Size of the member's data as declared by its header.
    pub(crate) size: u64,
    pub(crate) mode: u32,
}

impl Member {
    pub(crate) fn display_name(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Decompresses `bytes` (which must be gzip) through a [`Guarded`] reader capped at
/// `stream_limit`, walks its tar members, and calls `visit` for each real member with a reader
/// over its data. After the last member the rest of the gzip stream is read to the end, so its
/// checksum is verified and trailing data is also bounded by the cap.
pub(crate) fn walk_archive(
    archive: &'static str,
    bytes: &[u8],
    stream_limit: u64,
    max_members: u64,
    mut visit: impl FnMut(Member, &mut dyn Read) -> Result<(), WalkError>,
) -> Result<(), PackageError> {
    check_gzip_magic(archive, bytes)?;
    let mut guard = Guarded::new(MultiGzDecoder::new(bytes), stream_limit);
    let walked = walk_tar(archive, &mut guard, max_members, &mut visit);
    match walked {
        Ok(()) => {}
        Err(WalkError::Refused(e)) => return Err(e),
        Err(WalkError::Io(e)) => return Err(guard.classify(archive, &e)),
    }
    if let Err(e) = io::copy(&mut guard, &mut io::sink()) {
        return Err(guard.classify(archive, &e));
    }
    Ok(())
}

fn walk_tar<R: Read>(
    archive: &'static str,
    reader: R,
    max_members: u64,
    visit: &mut dyn FnMut(Member, &mut dyn Read) -> Result<(), WalkError>,
) -> Result<(), WalkError> {
    let mut tar = tar::Archive::new(reader);
    let entries = tar.entries().map_err(WalkError::Io)?.raw(true);
    let mut long_name: Option<Vec<u8>> = None;
    let mut pax: Option<PaxRecords> = None;
    let mut global_headers = 0u32;
    let mut members = 0u64;
    for entry in entries {
        let mut entry = entry.map_err(WalkError::Io)?;
        let header_name = entry.header().path_bytes().into_owned();
        let entry_type = entry.header().entry_type();
        let size = entry.size();
        let unsupported = |entry: &[u8], reason: String| {
            WalkError::Refused(PackageError::UnsupportedTar {
                archive,
                entry: String::from_utf8_lossy(entry).into_owned(),
                reason,
            })
        };
        match entry_type {
            EntryType::GNULongName => {
                if long_name.is_some() {
                    return Err(unsupported(
                        &header_name,
                        "two GNU long-name records describe the same member".into(),
                    ));
                }
                if size > MAX_PATH_BYTES as u64 + 1 {
                    return Err(unsupported(
                        &header_name,
                        format!(
                            "a GNU long-name record of {size} bytes (paths are limited to \
                         {MAX_PATH_BYTES} bytes)"
                        ),
                    ));
                }
                let mut name = read_exactly(&mut entry, size)?;
                while name.last() == Some(&0) {
                    name.pop();
                }
                long_name = Some(name);
                continue;
            }
            EntryType::XHeader => {
                if pax.is_some() {
                    return Err(unsupported(
                        &header_name,
                        "two pax extended headers describe the same member".into(),
                    ));
                }
                if size > MAX_PAX_BYTES {
                    return Err(unsupported(
                        &header_name,
                        format!("a pax extended header of {size} bytes (limit {MAX_PAX_BYTES})"),
                    ));
                }
                let data = read_exactly(&mut entry, size)?;
                pax = Some(PaxRecords::parse(&data).map_err(|r| unsupported(&header_name, r))?);
                continue;
            }
            EntryType::XGlobalHeader => {
                global_headers += 1;
                if global_headers > MAX_GLOBAL_HEADERS {
                    return Err(unsupported(
                        &header_name,
                        format!("more than {MAX_GLOBAL_HEADERS} pax global headers"),
                    ));
                }
                if size > MAX_PAX_BYTES {
                    return Err(unsupported(
                        &header_name,
                        format!("a pax global header of {size} bytes (limit {MAX_PAX_BYTES})"),
                    ));
                }
                // Global headers (git archive writes one) carry nothing weft needs.
                read_exactly(&mut entry, size)?;
                continue;
            }
            EntryType::GNULongLink => {
                return Err(unsupported(
                    &header_name,
                    "a GNU long link-name record (used only by links, which are not allowed)"
                        .into(),
                ));
            }
            _ => {}
        }

        members += 1;
        if members > max_members {
            return Err(PackageError::TooManyEntries {
                archive,
                limit: max_members,
            }
            .into());
        }
        let records = pax.take().unwrap_or_default();
        let name = records
            .path
            .or_else(|| long_name.take())
            .unwrap_or(header_name);
        long_name = None;
        if let Some(pax_size) = records.size {
            if pax_size != size {
                return Err(unsupported(
                    &name,
                    format!(
                        "its pax header gives size {pax_size} but its tar header gives {size}; \
                     readers would disagree about where the next entry starts"
                    ),
                ));
            }
        }
        if records.sparse {
            return Err(unsupported(
                &name,
                "a GNU sparse file (pax GNU.sparse records)".into(),
            ));
        }
        let mode = entry.header().mode().map_err(WalkError::Io)?;
        visit(
            Member {
                name,
                entry_type,
                size,
                mode,
            },
            &mut entry,
        )?;
    }
    if long_name.is_some() || pax.is_some() {
        return Err(WalkError::Io(io::Error::other(
            "the archive ends with an extension record that describes no member",
        )));
    }
    Ok(())
}

/// Reads exactly `size` bytes (`size` already checked against a small cap by the caller).
pub(crate) fn read_exactly(reader: &mut dyn Read, size: u64) -> Result<Vec<u8>, WalkError> {
    let mut data = Vec::new();
    reader
        .take(size)
        .read_to_end(&mut data)
        .map_err(WalkError::Io)?;
    if data.len() as u64 != size {
        return Err(WalkError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the archive ends in the middle of an entry",
        )));
    }
    Ok(data)
}

/// The pax records weft interprets.
#[derive(Default)]
struct PaxRecords {
    path: Option<Vec<u8>>,
    size: Option<u64>,
    sparse: bool,
}

impl PaxRecords {
    /// Parses `"<len> <key>=<value>\n"` records.
    fn parse(mut data: &[u8]) -> Result<PaxRecords, String> {
        let mut out = PaxRecords::default();
        while !data.is_empty() {
            let space = data
                .iter()
                .position(|&b| b == b' ')
                .ok_or("a malformed pax record (no length)")?;
            let len: usize = std::str::from_utf8(&data[..space])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or("a malformed pax record length")?;
            if len <= space + 1 || len > data.len() || data[len - 1] != b'\n' {
                return Err("a malformed pax record".into());
            }
            let record = &data[space + 1..len - 1];
            data = &data[len..];
            let eq = record
                .iter()
                .position(|&b| b == b'=')
                .ok_or("a pax record without '='")?;
            let (key, value) = (&record[..eq], &record[eq + 1..]);
            match key {
                b"path" => {
                    if value.len() > MAX_PATH_BYTES {
                        return Err(format!(
                            "a pax path of {} bytes (limit {MAX_PATH_BYTES})",
                            value.len()
                        ));
                    }
                    out.path = Some(value.to_vec());
                }
                b"size" => {
                    let size = std::str::from_utf8(value)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or("a pax size record that is not a number")?;
                    out.size = Some(size);
                }
                _ if key.starts_with(b"GNU.sparse.") => out.sparse = true,
                _ => {}
            }
        }
        Ok(out)
    }
}

/// Reads the outer package: exactly one `metadata.json` and one `code.tar.gz`, both regular
/// files within their limits. Returns their bytes.
pub(crate) fn read_package(
    bytes: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, Vec<u8>), PackageError> {
    let size = bytes.len() as u64;
    if size > limits.max_package_bytes {
        return Err(PackageError::TooLarge {
            archive: PACKAGE,
            size,
            limit: limits.max_package_bytes,
        });
    }
    let mut metadata: Option<Vec<u8>> = None;
    let mut code: Option<Vec<u8>> = None;
    walk_archive(
        PACKAGE,
        bytes,
        limits.max_package_unpacked_bytes(),
        u64::MAX,
        |member, data| {
            let name = member.display_name();
            let (slot, limit) = match member.name.as_slice() {
                n if n == METADATA_FILE.as_bytes() => (&mut metadata, limits.max_metadata_bytes),
                n if n == CODE_PACKAGE_FILE.as_bytes() => {
                    (&mut code, limits.max_code_archive_bytes)
                }
                _ => return Err(PackageError::UnexpectedEntry { entry: name }.into()),
            };
            if member.entry_type != EntryType::Regular {
                return Err(PackageError::NotRegularFile {
                    archive: PACKAGE,
                    entry: name,
                    kind: describe_type(member.entry_type),
                }
                .into());
            }
            if slot.is_some() {
                return Err(PackageError::DuplicateEntry {
                    archive: PACKAGE,
                    entry: name,
                }
                .into());
            }
            if member.size > limit {
                return Err(PackageError::EntryTooLarge {
                    archive: PACKAGE,
                    entry: name,
                    size: member.size,
                    limit,
                }
                .into());
            }
            *slot = Some(read_exactly(data, member.size)?);
            Ok(())
        },
    )?;
    let metadata = metadata.ok_or(PackageError::MissingEntry {
        entry: METADATA_FILE,
    })?;
    let code = code.ok_or(PackageError::MissingEntry {
        entry: CODE_PACKAGE_FILE,
    })?;
    Ok((metadata, code))
}

/// Names a tar entry type for messages.
pub(crate) fn describe_type(entry_type: EntryType) -> &'static str {
    match entry_type {
        EntryType::Regular => "a regular file",
        EntryType::Link => "a hard link",
        EntryType::Symlink => "a symbolic link",
        EntryType::Char => "a character device",
        EntryType::Block => "a block device",
        EntryType::Directory => "a directory",
        EntryType::Fifo => "a named pipe (FIFO)",
        EntryType::Continuous => "a contiguous file (tar type '7')",
        EntryType::GNUSparse => "a GNU sparse file",
        _ => "an entry of an unknown tar type",
    }
}
