//! Building chaincode packages, deterministically.
//!
//! Archives are written with fixed metadata (mtime 0, uid/gid 0, no user or group names, mode
//! 0644 or 0755) in a fixed order (names sorted byte-wise, depth first), and gzip with mtime 0,
//! so packaging the same files twice yields the same bytes and the same package id.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

use super::extract::inspect_code_archive;
use super::stream::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES, PACKAGE};
use super::{
    validate_chaincode_type, validate_label, Limits, PackageError, CODE_PACKAGE_FILE, METADATA_FILE,
};

/// Deepest directory nesting followed when packaging a directory.
const MAX_DEPTH: usize = 64;

pub(super) fn build_package(
    label: &str,
    chaincode_type: &str,
    path: &str,
    code_tar_gz: &[u8],
    limits: &Limits,
) -> Result<Vec<u8>, PackageError> {
    validate_label(label)?;
    validate_chaincode_type(chaincode_type)?;
    inspect_code_archive(code_tar_gz, limits)?;

    #[derive(serde::Serialize)]
    struct Metadata<'a> {
        path: &'a str,
        #[serde(rename = "type")]
        chaincode_type: &'a str,
        label: &'a str,
    }
    // Field order path, type, label: the order Fabric's CLI writes.
    let metadata = serde_json::to_vec(&Metadata {
        path,
        chaincode_type,
        label,
    })
    .map_err(|e| PackageError::InvalidMetadataJson {
        detail: e.to_string(),
    })?;

    let bytes = tar_gz(&[
        (METADATA_FILE.to_string(), metadata, false),
        (CODE_PACKAGE_FILE.to_string(), code_tar_gz.to_vec(), false),
    ])
    .map_err(|e| PackageError::io("build", PACKAGE, e))?;
    let size = bytes.len() as u64;
    if size > limits.max_package_bytes {
        return Err(PackageError::TooLarge {
            archive: PACKAGE,
            size,
            limit: limits.max_package_bytes,
        });
    }
    Ok(bytes)
}

/// Writes a gzip'd tar of `(path, data, executable)` regular files, in the given order, with
/// fixed metadata.
fn tar_gz(files: &[(String, Vec<u8>, bool)]) -> io::Result<Vec<u8>> {
    let gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, data, executable) in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(if *executable { 0o755 } else { 0o644 });
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        // append_data writes a GNU long-name record for paths over 100 bytes.
        tar.append_data(&mut header, path, data.as_slice())?;
    }
    let gz = tar.into_inner()?;
    let mut bytes = gz.finish()?;
    bytes.flush()?;
    Ok(bytes)
}

/// Packages a directory: builds `code.tar.gz` from `src_dir` (see
/// [`code_archive_from_directory`]) and wraps it with `metadata.json`, recording `src_dir` as
/// given as the `path` (as Fabric's CLI records `--path`).
pub fn package_directory(
    src_dir: &Path,
    label: &str,
    chaincode_type: &str,
) -> Result<Vec<u8>, PackageError> {
    let path = src_dir.to_string_lossy();
    package_directory_with_path(src_dir, label, chaincode_type, &path)
}

/// Like [`package_directory`], with the `path` to record in `metadata.json` given explicitly
/// (the package id covers it, so a fixed value makes the id independent of where the source
/// happens to live).
pub fn package_directory_with_path(
    src_dir: &Path,
    label: &str,
    chaincode_type: &str,
    path_in_metadata: &str,
) -> Result<Vec<u8>, PackageError> {
    validate_label(label)?;
    validate_chaincode_type(chaincode_type)?;
    let code = code_archive_from_directory(src_dir, chaincode_type)?;
    build_package(
        label,
        chaincode_type,
        path_in_metadata,
        &code,
        &Limits::DEFAULT,
    )
}

/// Builds a deterministic `code.tar.gz` from the regular files under `src_dir`.
///
/// Layout follows Fabric's platforms: for `golang`, `node` and `java` the files go under
/// `src/` (a top-level `META-INF/` directory, which holds state database indexes, stays at
/// the root as `META-INF/`); for every other type (`ccaas`, `binary`, external builders) the
/// files go at the root, so `connection.json` ends up where the builder looks for it. For
/// `node`, a top-level `node_modules/` is left out, as Fabric does.
///
/// A symbolic link is packaged as a copy of the file it points to when that file is inside
/// `src_dir`; links that point outside, dangle, or point to directories are refused, as are
/// devices, pipes and sockets. Modes become 0755 for files with any execute bit, else 0644.
pub fn code_archive_from_directory(
    src_dir: &Path,
    chaincode_type: &str,
) -> Result<Vec<u8>, PackageError> {
    let limits = Limits::DEFAULT;
    let refuse = |path: &Path, reason: String| PackageError::SourceRefused {
        path: path.to_path_buf(),
        reason,
    };
    let root = fs::canonicalize(src_dir).map_err(|e| PackageError::io("open", src_dir, e))?;
    if !root.is_dir() {
        return Err(refuse(src_dir, "it is not a directory".into()));
    }
    let kind = chaincode_type.to_ascii_lowercase();
    let language = matches!(kind.as_str(), "golang" | "node" | "java");

    let mut found = Vec::new();
    collect(&root, &root, &mut Vec::new(), &mut found, &kind)?;

    let mut files = Vec::with_capacity(found.len());
    let mut total: u64 = 0;
    for (components, fs_path) in found {
        if files.len() as u64 >= limits.max_code_entries {
            return Err(refuse(
                src_dir,
                format!(
                    "it holds more than {} files; package only what the builder needs",
                    limits.max_code_entries
                ),
            ));
        }
        let data = fs::read(&fs_path).map_err(|e| PackageError::io("read", &fs_path, e))?;
        let size = data.len() as u64;
        if size > limits.max_code_file_bytes {
            return Err(refuse(
                &fs_path,
                format!(
                    "the file is {size} bytes, over the {}-byte limit for one file",
                    limits.max_code_file_bytes
                ),
            ));
        }
        total = total.saturating_add(size);
        if total > limits.max_code_unpacked_bytes {
            return Err(refuse(
                src_dir,
                format!(
                    "its files add up to more than {} bytes",
                    limits.max_code_unpacked_bytes
                ),
            ));
        }
        let executable = is_executable(&fs_path)?;
        let relative = components.join("/");
        let archive_path =
            if !language || components.first().map(String::as_str) == Some("META-INF") {
                relative
            } else {
                format!("src/{relative}")
            };
        if archive_path.len() > MAX_PATH_BYTES {
            return Err(refuse(&fs_path, "its path is too long to package".into()));
        }
        files.push((archive_path, data, executable));
    }
    let code =
        tar_gz(&files).map_err(|e| PackageError::io("build code archive for", src_dir, e))?;
    inspect_code_archive(&code, &limits)?;
    Ok(code)
}

/// Walks `dir` depth first in byte-wise name order, collecting `(components, file to read)`.
fn collect(
    root: &Path,
    dir: &Path,
    components: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, PathBuf)>,
    kind: &str,
) -> Result<(), PackageError> {
    let refuse = |path: &Path, reason: &str| PackageError::SourceRefused {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    if components.len() > MAX_DEPTH {
        return Err(refuse(dir, "directories nest more than 64 levels deep"));
    }
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| PackageError::io("read directory", dir, e))? {
        let entry = entry.map_err(|e| PackageError::io("read directory", dir, e))?;
        let name = entry.file_name().into_string().map_err(|_| {
            refuse(
                &entry.path(),
                "its name is not valid UTF-8; rename it or leave it out",
            )
        })?;
        entries.push((name, entry.path()));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (name, path) in entries {
        if components.is_empty() && kind == "node" && name == "node_modules" {
            continue;
        }
        if name.len() > MAX_COMPONENT_BYTES {
            return Err(refuse(&path, "its name is longer than 255 bytes"));
        }
        if name.contains('\\') {
            return Err(refuse(
                &path,
                "its name contains a backslash, which archives cannot carry portably",
            ));
        }
        let meta =
            fs::symlink_metadata(&path).map_err(|e| PackageError::io("inspect", &path, e))?;
        let file_type = meta.file_type();
        let target = if file_type.is_symlink() {
            let target = fs::canonicalize(&path)
                .map_err(|_| refuse(&path, "it is a symbolic link that points nowhere"))?;
            if !target.starts_with(root) {
                return Err(refuse(
                    &path,
                    "it is a symbolic link that points outside the directory being packaged; \
                     copy the file in instead",
                ));
            }
            let target_meta =
                fs::metadata(&target).map_err(|e| PackageError::io("inspect", &target, e))?;
            if !target_meta.is_file() {
                return Err(refuse(
                    &path,
                    "it is a symbolic link to something other than a regular file (links to \
                     directories are not followed); replace it with a real directory or file",
                ));
            }
            target
        } else if file_type.is_dir() {
            components.push(name);
            collect(root, &path, components, out, kind)?;
            components.pop();
            continue;
        } else if file_type.is_file() {
            path.clone()
        } else {
            return Err(refuse(
                &path,
                "it is not a regular file, directory or symbolic link (a device, pipe or \
                 socket); leave it out",
            ));
        };
        let mut file_components = components.clone();
        file_components.push(name);
        out.push((file_components, target));
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(path: &Path) -> Result<bool, PackageError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::metadata(path).map_err(|e| PackageError::io("inspect", path, e))?;
    Ok(meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> Result<bool, PackageError> {
    Ok(false)
}
