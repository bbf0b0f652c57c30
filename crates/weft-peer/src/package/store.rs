//! The peer's store of installed chaincode packages, in Fabric's layout:
//! `<peer.fileSystemPath>/lifecycle/chaincodes/<label>.<sha256 hex>.tar.gz`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use weft_crypto::{hex, sha256};

use super::{validate_label, validate_package_id, ChaincodePackage, Limits, PackageError};

/// One installed chaincode package, as `queryinstalled` reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct InstalledChaincode {
    /// `label:sha256hex`.
    pub package_id: String,
    /// The package's label.
    pub label: String,
}

/// The result of [`InstallStore::install`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOutcome {
    /// What is now installed.
    pub chaincode: InstalledChaincode,
    /// True when the same package (same id, same bytes) was already installed; nothing was
    /// written. Fabric answers this case with "chaincode already successfully installed".
    pub already_installed: bool,
}

/// Installed chaincode packages under a peer's file system path.
#[derive(Debug, Clone)]
pub struct InstallStore {
    dir: PathBuf,
    limits: Limits,
}

impl InstallStore {
    /// Opens (creating if needed, mode 0750) `<peer_fs_path>/lifecycle/chaincodes`.
    pub fn open(peer_fs_path: impl AsRef<Path>) -> Result<InstallStore, PackageError> {
        let dir = peer_fs_path.as_ref().join("lifecycle").join("chaincodes");
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o750);
        builder
            .create(&dir)
            .map_err(|e| PackageError::io("create the chaincode install directory", &dir, e))?;
        let meta = fs::symlink_metadata(&dir)
            .map_err(|e| PackageError::io("inspect the chaincode install directory", &dir, e))?;
        if !meta.is_dir() {
            return Err(PackageError::io(
                "use the chaincode install directory",
                &dir,
                io::Error::other("it is not a directory"),
            ));
        }
        Ok(InstallStore {
            dir,
            limits: Limits::DEFAULT,
        })
    }

    /// Uses `limits` instead of the defaults for packages installed or read from now on.
    pub fn with_limits(mut self, limits: Limits) -> InstallStore {
        self.limits = limits;
        self
    }

    /// `<peer_fs_path>/lifecycle/chaincodes`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates the package fully ([`ChaincodePackage::parse_with_limits`]) and stores it
    /// atomically (temporary file, fsync, rename). Installing a package that is already
    /// installed writes nothing and reports `already_installed`; a damaged file under the same
    /// id is replaced.
    pub fn install(&self, package_bytes: &[u8]) -> Result<InstallOutcome, PackageError> {
        let package = ChaincodePackage::parse_with_limits(package_bytes, &self.limits)?;
        let chaincode = InstalledChaincode {
            package_id: package.package_id().to_string(),
            label: package.label().to_string(),
        };
        let name = file_name(&chaincode.package_id);
        let path = self.dir.join(&name);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let existing = fs::read(&path).map_err(|e| PackageError::io("read", &path, e))?;
                if sha256(&existing) == sha256(package_bytes) {
                    return Ok(InstallOutcome {
                        chaincode,
                        already_installed: true,
                    });
                }
                tracing::warn!(
                    path = %path.display(),
                    "installed chaincode package does not match its id; replacing it"
                );
            }
            Ok(_) => {
                return Err(PackageError::InstalledPackageCorrupt {
                    package_id: chaincode.package_id,
                    path,
                    reason: "it is not a regular file".into(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PackageError::io("inspect", &path, e)),
        }
        write_file_atomically(&path, package_bytes)?;
        tracing::info!(package_id = %chaincode.package_id, "installed chaincode package");
        Ok(InstallOutcome {
            chaincode,
            already_installed: false,
        })
    }

    /// The installed packages, ordered by file name (as Fabric lists them). Files that do not
    /// follow the `<label>.<hash>.tar.gz` pattern, and anything that is not a regular file,
    /// are ignored.
    pub fn query_installed(&self) -> Result<Vec<InstalledChaincode>, PackageError> {
        let mut found = Vec::new();
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| PackageError::io("read directory", &self.dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| PackageError::io("read directory", &self.dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(chaincode) = installed_from_file_name(&name) else {
                continue;
            };
            match entry.file_type() {
                Ok(t) if t.is_file() => found.push((name, chaincode)),
                _ => {}
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(found.into_iter().map(|(_, c)| c).collect())
    }

    /// The bytes of an installed package (`getinstalledpackage`). The id is validated first;
    /// the file's SHA-256 must match the id.
    pub fn get(&self, package_id: &str) -> Result<Vec<u8>, PackageError> {
        let (_, hash) = validate_package_id(package_id)?;
        let path = self.dir.join(file_name(package_id));
        let corrupt = |reason: String| PackageError::InstalledPackageCorrupt {
            package_id: package_id.to_string(),
            path: path.clone(),
            reason,
        };
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(PackageError::NotInstalled {
                    package_id: package_id.to_string(),
                    dir: self.dir.clone(),
                })
            }
            Err(e) => return Err(PackageError::io("inspect", &path, e)),
        };
        if !meta.is_file() {
            return Err(corrupt("it is not a regular file".into()));
        }
        if meta.len() > self.limits.max_package_bytes {
            return Err(corrupt(format!(
                "it is {} bytes, over the {}-byte package limit",
                meta.len(),
                self.limits.max_package_bytes
            )));
        }
        let bytes = fs::read(&path).map_err(|e| PackageError::io("read", &path, e))?;
        let actual = hex(&sha256(&bytes));
        if actual != hash {
            return Err(corrupt(format!(
                "its SHA-256 is {actual}, not the hash in its package id"
            )));
        }
        Ok(bytes)
    }

    /// Where the package with this id is (or would be) stored. The id is validated, so the
    /// result is always a direct child of [`InstallStore::dir`].
    pub fn path_of(&self, package_id: &str) -> Result<PathBuf, PackageError> {
        validate_package_id(package_id)?;
        Ok(self.dir.join(file_name(package_id)))
    }
}

/// Fabric's file name for a package id: the first ':' becomes '.', plus `.tar.gz`. Only call
/// with a validated id.
fn file_name(package_id: &str) -> String {
    format!("{}.tar.gz", package_id.replacen(':', ".", 1))
}

/// Reverses [`file_name`]: `<label>.<64 lower-case hex>.tar.gz` with a valid label.
fn installed_from_file_name(name: &str) -> Option<InstalledChaincode> {
    let stem = name.strip_suffix(".tar.gz")?;
    let (label, hash) = stem.rsplit_once('.')?;
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    validate_label(label).ok()?;
    Some(InstalledChaincode {
        package_id: format!("{label}:{hash}"),
        label: label.to_string(),
    })
}

/// `queryinstalled --output json` in Fabric's shape: Go's `json.MarshalIndent` of
/// `QueryInstalledChaincodesResult` with tab indentation and empty fields left out, so an
/// empty list prints `{}`.
pub fn installed_chaincodes_json(installed: &[InstalledChaincode]) -> String {
    #[derive(serde::Serialize)]
    struct Output<'a> {
        #[serde(skip_serializing_if = "<[InstalledChaincode]>::is_empty")]
        installed_chaincodes: &'a [InstalledChaincode],
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    let value = Output {
        installed_chaincodes: installed,
    };
    match serde::Serialize::serialize(&value, &mut serializer) {
        Ok(()) => String::from_utf8_lossy(&out).into_owned(),
        // Serializing plain strings cannot fail; keep the output well-formed regardless.
        Err(_) => "{}".to_string(),
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
/// flushed to disk and renamed over `path`, so readers see the old file or the new one, never
/// a partial one. The temporary file is removed on failure.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{base}.tmp.{}.{nanos}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> Result<(), PackageError> {
        let mut file = options
            .open(&tmp)
            .map_err(|e| PackageError::io("create temporary file", &tmp, e))?;
        file.write_all(bytes)
            .map_err(|e| PackageError::io("write", &tmp, e))?;
        file.sync_all()
            .map_err(|e| PackageError::io("flush to disk", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| PackageError::io("move into place", path, e))
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable; not every platform can open a directory for this.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
