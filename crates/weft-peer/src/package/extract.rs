//! Checking and unpacking `code.tar.gz`.
//!
//! Extraction runs in two passes over the archive. The first pass checks everything (entry
//! types, paths, sizes, counts, conflicts, the gzip checksum) and writes nothing. Only when the
//! whole archive passes is the destination created and the second pass writes it, repeating
//! every check. If the second pass fails anyway (an I/O error), what it wrote is removed.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::stream::{
    describe_type, walk_archive, Member, WalkError, CODE, MAX_COMPONENT_BYTES, MAX_PATH_BYTES,
};
use super::{Limits, PackageError};

/// What [`inspect_code_archive`] found in a valid code archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeArchiveSummary {
    /// Regular files.
    pub files: u64,
    /// Directory entries (directories only implied by file paths are not counted).
    pub directories: u64,
    /// Sum of the regular files' sizes.
    pub file_bytes: u64,
}

/// One accepted member of a code archive.
enum Planned {
    /// The archive's root (`./`): nothing to do.
    Root,
    Dir(Vec<String>),
    File {
        components: Vec<String>,
        size: u64,
        executable: bool,
    },
}

/// Applies the rules for code archive members and remembers what earlier members claimed.
struct Tracker<'l> {
    limits: &'l Limits,
    files: HashSet<String>,
    dirs: HashSet<String>,
    summary: CodeArchiveSummary,
}

impl<'l> Tracker<'l> {
    fn new(limits: &'l Limits) -> Self {
        Tracker {
            limits,
            files: HashSet::new(),
            dirs: HashSet::new(),
            summary: CodeArchiveSummary {
                files: 0,
                directories: 0,
                file_bytes: 0,
            },
        }
    }

    fn admit(&mut self, member: &Member) -> Result<Planned, PackageError> {
        let entry = member.display_name();
        let is_file = match member.entry_type {
            EntryType::Regular => true,
            EntryType::Directory => false,
            other => {
                return Err(PackageError::NotRegularFile {
                    archive: CODE,
                    entry,
                    kind: describe_type(other),
                })
            }
        };
        let components =
            safe_components(&member.name).map_err(|reason| PackageError::UnsafePath {
                archive: CODE,
                entry: entry.clone(),
                reason,
            })?;
        if components.is_empty() {
            if is_file {
                return Err(PackageError::UnsafePath {
                    archive: CODE,
                    entry,
                    reason: "a file entry has an empty name".into(),
                });
            }
            return Ok(Planned::Root);
        }
        if is_file && member.size > self.limits.max_code_file_bytes {
            return Err(PackageError::EntryTooLarge {
                archive: CODE,
                entry,
                size: member.size,
                limit: self.limits.max_code_file_bytes,
            });
        }
        let conflict = |reason: String| PackageError::PathConflict {
            archive: CODE,
            entry: entry.clone(),
            reason,
        };
        let mut prefix = String::new();
        for component in &components[..components.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(component);
            if self.files.contains(&prefix) {
                return Err(conflict(format!(
                    "'{prefix}' is a file in this archive, but this entry needs it to be a \
                     directory"
                )));
            }
        }
        let key = components.join("/");
        if is_file {
            if self.files.contains(&key) {
                return Err(PackageError::DuplicateEntry {
                    archive: CODE,
                    entry,
                });
            }
            if self.dirs.contains(&key) {
                return Err(conflict(format!(
                    "'{key}' is already a directory in this archive"
                )));
            }
            self.summary.files += 1;
            self.summary.file_bytes = self.summary.file_bytes.saturating_add(member.size);
            if self.summary.file_bytes > self.limits.max_code_unpacked_bytes {
                return Err(PackageError::DecompressedTooLarge {
                    archive: CODE,
                    limit: self.limits.max_code_unpacked_bytes,
                });
            }
        } else {
            if self.files.contains(&key) {
                return Err(conflict(format!(
                    "'{key}' is already a file in this archive"
                )));
            }
            self.summary.directories += 1;
        }
        // Every ancestor is now a directory.
        let mut ancestor = String::new();
        for component in &components[..components.len() - 1] {
            if !ancestor.is_empty() {
                ancestor.push('/');
            }
            ancestor.push_str(component);
            self.dirs.insert(ancestor.clone());
        }
        if is_file {
            self.files.insert(key);
            Ok(Planned::File {
                components,
                size: member.size,
                executable: member.mode & 0o111 != 0,
            })
        } else {
            self.dirs.insert(key);
            Ok(Planned::Dir(components))
        }
    }
}

/// Splits an archive path into safe components, dropping `.` and empty components. Refuses
/// absolute paths, `..`, backslashes, Windows drive prefixes, non-UTF-8 and over-long names.
fn safe_components(name: &[u8]) -> Result<Vec<String>, String> {
    let name = std::str::from_utf8(name).map_err(|_| "the name is not valid UTF-8".to_string())?;
    if name.len() > MAX_PATH_BYTES {
        return Err(format!(
            "the path is {} bytes long (limit {MAX_PATH_BYTES})",
            name.len()
        ));
    }
    if name.starts_with('/') {
        return Err("it is an absolute path".into());
    }
    if name.contains('\\') {
        return Err("it contains a backslash (a Windows path separator)".into());
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("it starts with a Windows drive prefix".into());
    }
    if name.contains('\0') {
        return Err("it contains a NUL byte".into());
    }
    let mut components = Vec::new();
    for component in name.split('/') {
        match component {
            "" | "." => {}
            ".." => return Err("it contains a '..' component".into()),
            c if c.len() > MAX_COMPONENT_BYTES => {
                return Err(format!(
                    "a path component is {} bytes long (limit {MAX_COMPONENT_BYTES})",
                    c.len()
                ))
            }
            c => components.push(c.to_string()),
        }
    }
    Ok(components)
}

/// Checks a code archive against every extraction rule without writing anything: gzip and tar
/// well-formed, only regular files and directories, safe and unique paths, and the [`Limits`]
/// on compressed size, entries, per-file size and total decompressed size.
pub fn inspect_code_archive(
    code_tar_gz: &[u8],
    limits: &Limits,
) -> Result<CodeArchiveSummary, PackageError> {
    check_archive_size(code_tar_gz, limits)?;
    let mut tracker = Tracker::new(limits);
    walk_archive(
        CODE,
        code_tar_gz,
        limits.max_code_unpacked_bytes,
        limits.max_code_entries,
        |member, data| {
            if let Planned::File { size, .. } = tracker.admit(&member)? {
                drain_exactly(data, size)?;
            }
            Ok(())
        },
    )?;
    Ok(tracker.summary)
}

fn check_archive_size(code_tar_gz: &[u8], limits: &Limits) -> Result<(), PackageError> {
    let size = code_tar_gz.len() as u64;
    if size > limits.max_code_archive_bytes {
        return Err(PackageError::TooLarge {
            archive: CODE,
            size,
            limit: limits.max_code_archive_bytes,
        });
    }
    Ok(())
}

fn drain_exactly(data: &mut dyn Read, size: u64) -> Result<(), WalkError> {
    let copied = io::copy(&mut data.take(size), &mut io::sink()).map_err(WalkError::Io)?;
    if copied != size {
        return Err(truncated());
    }
    Ok(())
}

fn truncated() -> WalkError {
    WalkError::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the archive ends in the middle of a file",
    ))
}

/// Unpacks `code.tar.gz` into `dest` with the default [`Limits`]. See
/// [`extract_code_with_limits`].
pub fn extract_code(code_tar_gz: &[u8], dest: &Path) -> Result<(), PackageError> {
    extract_code_with_limits(code_tar_gz, dest, &Limits::DEFAULT)
}

/// Unpacks `code.tar.gz` into `dest`, which must not exist yet (its parent must) or be an
/// empty directory.
///
/// The whole archive is checked first ([`inspect_code_archive`]); nothing is created unless it
/// passes. Files are written `0644`, or `0755` when any execute bit is set in the archive;
/// directories `0755`; set-user-id, set-group-id and sticky bits are never set, and owners and
/// times are not restored. Files are created exclusively and never through a symbolic link. If
/// writing fails part-way, everything written is removed (and `dest` too if this call created
/// it).
pub fn extract_code_with_limits(
    code_tar_gz: &[u8],
    dest: &Path,
    limits: &Limits,
) -> Result<(), PackageError> {
    let dest_existed = check_destination(dest)?;
    inspect_code_archive(code_tar_gz, limits)?;
    if !dest_existed {
        create_dir(dest)?;
    }
    let result = write_archive(code_tar_gz, dest, limits);
    if result.is_err() {
        remove_partial(dest, dest_existed);
    }
    result
}

/// Returns whether `dest` already exists (as an empty directory).
fn check_destination(dest: &Path) -> Result<bool, PackageError> {
    let unusable = |reason: &str| PackageError::DestinationUnusable {
        path: dest.to_path_buf(),
        reason: reason.to_string(),
    };
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.file_type().is_symlink() => Err(unusable("it is a symbolic link")),
        Ok(meta) if meta.is_dir() => {
            let mut entries =
                fs::read_dir(dest).map_err(|e| PackageError::io("read directory", dest, e))?;
            if entries.next().is_some() {
                Err(unusable("it is a directory that is not empty"))
            } else {
                Ok(true)
            }
        }
        Ok(_) => Err(unusable("it exists and is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(PackageError::io("inspect", dest, e)),
    }
}

fn write_archive(code_tar_gz: &[u8], dest: &Path, limits: &Limits) -> Result<(), PackageError> {
    let mut tracker = Tracker::new(limits);
    walk_archive(
        CODE,
        code_tar_gz,
        limits.max_code_unpacked_bytes,
        limits.max_code_entries,
        |member, data| {
            match tracker.admit(&member)? {
                Planned::Root => {}
                Planned::Dir(components) => {
                    ensure_dirs(dest, &components)?;
                }
                Planned::File {
                    components,
                    size,
                    executable,
                } => {
                    let (name, parents) = components
                        .split_last()
                        .ok_or_else(|| truncated_name(&member))?;
                    let parent = ensure_dirs(dest, parents)?;
                    write_file(&parent.join(name), data, size, executable)?;
                }
            }
            Ok(())
        },
    )
}

fn truncated_name(member: &Member) -> PackageError {
    PackageError::UnsafePath {
        archive: CODE,
        entry: member.display_name(),
        reason: "a file entry has an empty name".into(),
    }
}

/// Creates `dest/components...` one level at a time; an existing level must be a real
/// directory (never a symbolic link). Returns the full path.
fn ensure_dirs(dest: &Path, components: &[String]) -> Result<PathBuf, PackageError> {
    let mut path = dest.to_path_buf();
    for component in components {
        path.push(component);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() && !meta.file_type().is_symlink() => {}
            Ok(_) => {
                return Err(PackageError::DestinationUnusable {
                    path: path.clone(),
                    reason: "a path the archive needs as a directory exists and is not a \
                             directory (was the destination changed during extraction?)"
                        .into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_dir(&path)?,
            Err(e) => return Err(PackageError::io("inspect", &path, e)),
        }
    }
    Ok(path)
}

fn create_dir(path: &Path) -> Result<(), PackageError> {
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder
        .create(path)
        .map_err(|e| PackageError::io("create directory", path, e))?;
    set_mode(path, 0o755)
}

fn write_file(
    path: &Path,
    data: &mut dyn Read,
    size: u64,
    executable: bool,
) -> Result<(), WalkError> {
    let mut options = fs::OpenOptions::new();
    // create_new: O_CREAT|O_EXCL, which also refuses to follow a symbolic link at `path`.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| PackageError::io("create file", path, e))?;
    let mut remaining = size;
    let mut buf = vec![0u8; 64 * 1024];
    while remaining > 0 {
        let want = usize::try_from(remaining.min(buf.len() as u64)).unwrap_or(buf.len());
        let n = data.read(&mut buf[..want]).map_err(WalkError::Io)?;
        if n == 0 {
            return Err(truncated());
        }
        file.write_all(&buf[..n])
            .map_err(|e| PackageError::io("write file", path, e))?;
        remaining -= n as u64;
    }
    file.flush()
        .map_err(|e| PackageError::io("write file", path, e))?;
    drop(file);
    set_mode(path, if executable { 0o755 } else { 0o644 })?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), PackageError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| PackageError::io("set permissions on", path, e))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<(), PackageError> {
    Ok(())
}

/// Removes what a failed extraction wrote: `dest` itself if this call created it, else its
/// contents (it was empty before).
fn remove_partial(dest: &Path, dest_existed: bool) {
    let result = if dest_existed {
        fs::read_dir(dest).and_then(|entries| {
            for entry in entries {
                let entry = entry?;
                let path = entry.path();
                if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(&path)?;
                } else {
                    fs::remove_file(&path)?;
                }
            }
            Ok(())
        })
    } else {
        fs::remove_dir_all(dest)
    };
    if let Err(e) = result {
        tracing::warn!(
            dest = %dest.display(),
            error = %e,
            "could not remove a partly extracted chaincode code directory"
        );
    }
}
