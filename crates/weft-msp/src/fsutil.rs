//! Crash-safe file writes: a file either has its old contents or its complete new contents.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// File mode of private keys.
pub(crate) const KEY_MODE: u32 = 0o600;
/// File mode of certificates and config files.
pub(crate) const PUBLIC_MODE: u32 = 0o644;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// How [`write_atomic`] treats an existing file at the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Replace it (atomically).
    Replace,
    /// Fail with [`Error::WouldOverwrite`]; the check and the write are one atomic step
    /// where the filesystem supports hard links.
    Refuse { what: &'static str },
}

/// Write `contents` to `path` through a temporary file in the same directory, flushed to disk
/// and then moved into place, so a crash never leaves a partial file at `path`.
pub(crate) fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    existing: Existing,
) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.weft-tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    if let Err(e) = write_new(&tmp, contents, mode) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io("write temporary file", tmp, e));
    }
    let result = match existing {
        Existing::Replace => {
            fs::rename(&tmp, path).map_err(|e| Error::io("move into place", path, e))
        }
        Existing::Refuse { what } => match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::WouldOverwrite {
                path: path.to_owned(),
                what,
            }),
            // No hard links on this filesystem: check, then rename.
            Err(_) => match fs::symlink_metadata(path) {
                Ok(_) => Err(Error::WouldOverwrite {
                    path: path.to_owned(),
                    what,
                }),
                Err(_) => fs::rename(&tmp, path).map_err(|e| Error::io("move into place", path, e)),
            },
        },
    };
    // After a rename the temporary name is gone; after a hard link (or a failure) it remains.
    let _ = fs::remove_file(&tmp);
    result
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut file = options.open(path)?;
    // The mode given at creation is reduced by the umask; set it exactly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents)?;
    file.sync_all()
}

/// Flush directory entries (new names) to disk; a no-op where directories cannot be opened.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("flush directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Every ancestor of `rel` below `root`, shallowest first (`a`, `a/b` for `a/b/c`).
pub(crate) fn ancestors_below(root: &Path, rel: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut cur = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for comp in parent.components() {
            cur.push(comp);
            out.push(cur.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_or_refuses_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("priv_sk");
        write_atomic(
            &p,
            b"one",
            KEY_MODE,
            Existing::Refuse {
                what: "private key",
            },
        )
        .unwrap();
        let e = write_atomic(
            &p,
            b"two",
            KEY_MODE,
            Existing::Refuse {
                what: "private key",
            },
        )
        .unwrap_err();
        assert!(matches!(e, Error::WouldOverwrite { .. }), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"three", KEY_MODE, Existing::Replace).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["priv_sk"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }

    #[test]
    fn ancestors_are_listed_shallowest_first() {
        let a = ancestors_below(Path::new("/o"), Path::new("x/y/z.pem"));
        assert_eq!(a, [PathBuf::from("/o/x"), PathBuf::from("/o/x/y")]);
    }
}
