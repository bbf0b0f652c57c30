//! [`PackageError`]: every way a chaincode package, a code archive or the install store can be
//! refused. Each message says what is wrong, where, and what to do about it.

use std::io;
use std::path::PathBuf;

const REBUILD: &str = "rebuild the package with `weft peer lifecycle chaincode package` \
                       (or Fabric's `peer lifecycle chaincode package`)";

/// Why a chaincode package, code archive, install or extraction was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// A file is over its size limit before decompression.
    #[error(
        "{archive} is {size} bytes, over the {limit}-byte limit; a chaincode package should \
         carry source code or a connection.json, not build output or dependencies — leave those \
         out (node_modules, build directories, binaries) and package again"
    )]
    TooLarge {
        archive: &'static str,
        size: u64,
        limit: u64,
    },

    /// The data does not start with the gzip magic bytes.
    #[error(
        "{archive} is not gzip-compressed: {found}; both the chaincode package and its \
         code.tar.gz must be gzip'd tar files — {REBUILD}"
    )]
    NotGzip {
        archive: &'static str,
        found: &'static str,
    },

    /// The gzip stream is damaged or cut short.
    #[error(
        "{archive} has a corrupt or truncated gzip stream ({detail}); the file was probably cut \
         short or damaged in transfer — copy it again, or {REBUILD}"
    )]
    CorruptGzip {
        archive: &'static str,
        detail: String,
    },

    /// Decompression passed its cap (a gzip bomb, or far too much content); stopped there.
    #[error(
        "{archive} decompresses to more than {limit} bytes, so unpacking was stopped at that \
         limit; this is either a decompression bomb or far more content than chaincode needs — \
         package only the source the builder needs"
    )]
    DecompressedTooLarge { archive: &'static str, limit: u64 },

    /// Valid gzip, but the content is not a tar archive.
    #[error(
        "{archive} is gzip data but not a valid tar archive ({detail}); create it with `tar czf` \
         or {REBUILD}"
    )]
    NotTar {
        archive: &'static str,
        detail: String,
    },

    /// `metadata.json` or `code.tar.gz` is missing from the package.
    #[error(
        "the chaincode package has no '{entry}' entry; a package holds exactly two regular files \
         at its top level, metadata.json and code.tar.gz — {REBUILD}"
    )]
    MissingEntry { entry: &'static str },

    /// The same entry name appears twice.
    #[error(
        "{archive} contains '{entry}' more than once; which copy a reader would use is \
         ambiguous, so the archive is refused — recreate it with each name once"
    )]
    DuplicateEntry {
        archive: &'static str,
        entry: String,
    },

    /// The package has an entry other than `metadata.json` and `code.tar.gz`.
    #[error(
        "the chaincode package has an unexpected entry '{entry}'; a package holds exactly \
         metadata.json and code.tar.gz at its top level (no './' prefix, no directories, no \
         other files such as macOS '._*' files) — {REBUILD}"
    )]
    UnexpectedEntry { entry: String },

    /// An entry is a link, device, FIFO, directory (in the package) or other non-file.
    #[error("entry '{entry}' of {archive} is {kind}, which is not allowed there; {advice}",
        advice = not_regular_advice(.archive))]
    NotRegularFile {
        archive: &'static str,
        entry: String,
        kind: &'static str,
    },

    /// An entry declares more data than its limit allows.
    #[error(
        "entry '{entry}' of {archive} declares {size} bytes, over the {limit}-byte limit for \
         that entry; it was refused before reading its data — leave large files out of the \
         chaincode package"
    )]
    EntryTooLarge {
        archive: &'static str,
        entry: String,
        size: u64,
        limit: u64,
    },

    /// An archive has more entries than allowed.
    #[error(
        "{archive} has more than {limit} entries; package only the files the builder needs \
         (for example leave out node_modules or vendored test data)"
    )]
    TooManyEntries { archive: &'static str, limit: u64 },

    /// An entry's path could land outside the destination or is not portable.
    #[error(
        "entry '{entry}' of {archive} has an unsafe path: {reason}; paths in a code archive \
         must be relative, use '/' and stay inside the archive — recreate the archive from a \
         plain directory"
    )]
    UnsafePath {
        archive: &'static str,
        entry: String,
        reason: String,
    },

    /// Two entries disagree about what a path is (a file and a directory).
    #[error("entry '{entry}' of {archive} conflicts with an earlier entry: {reason}; recreate the archive from a plain directory")]
    PathConflict {
        archive: &'static str,
        entry: String,
        reason: String,
    },

    /// A tar feature weft does not accept (sparse files, disagreeing pax sizes, ...).
    #[error("{archive} uses an unsupported tar feature at entry '{entry}': {reason}; recreate the archive with plain `tar czf` or {REBUILD}")]
    UnsupportedTar {
        archive: &'static str,
        entry: String,
        reason: String,
    },

    /// `metadata.json` is not valid JSON or not an object.
    #[error(
        "metadata.json in the chaincode package is not valid: {detail}; it must be a JSON \
         object like {{\"path\":\"...\",\"type\":\"ccaas\",\"label\":\"mycc_1.0\"}}"
    )]
    InvalidMetadataJson { detail: String },

    /// A required field is missing from `metadata.json`.
    #[error(
        "metadata.json in the chaincode package has no \"{field}\" field; add it as a string \
         (e.g. \"type\": \"ccaas\", \"label\": \"mycc_1.0\")"
    )]
    MissingField { field: &'static str },

    /// A field of `metadata.json` has the wrong JSON type.
    #[error(
        "field \"{field}\" of metadata.json in the chaincode package is {found}, but it must be \
         a string; quote the value"
    )]
    WrongFieldType {
        field: &'static str,
        found: &'static str,
    },

    /// The label does not match Fabric's label rule.
    #[error(
        "invalid chaincode package label '{label}': {reason}; a label must match \
         ^[[:alnum:]][[:alnum:]_.+-]*$ (for example mycc_1.0) — choose another label"
    )]
    InvalidLabel { label: String, reason: String },

    /// The chaincode type is empty or malformed.
    #[error(
        "invalid chaincode type '{chaincode_type}' in metadata.json: {reason}; use golang, node, \
         java, ccaas, binary or a type your external builder claims"
    )]
    InvalidChaincodeType {
        chaincode_type: String,
        reason: String,
    },

    /// A user-supplied package id is malformed.
    #[error(
        "invalid package id '{package_id}': {reason}; copy the id exactly as \
         `weft peer lifecycle chaincode queryinstalled` prints it"
    )]
    InvalidPackageId { package_id: String, reason: String },

    /// No installed package has this id.
    #[error(
        "chaincode install package '{package_id}' not found in {dir}; list what is installed \
         with `weft peer lifecycle chaincode queryinstalled`"
    )]
    NotInstalled { package_id: String, dir: PathBuf },

    /// An installed package file is damaged or not a regular file.
    #[error(
        "installed chaincode package '{package_id}' at {path} is unusable: {reason}; remove the \
         file and install the package again"
    )]
    InstalledPackageCorrupt {
        package_id: String,
        path: PathBuf,
        reason: String,
    },

    /// The extraction destination exists and is not an empty directory.
    #[error(
        "cannot extract chaincode code into {path}: {reason}; give a path that does not exist \
         yet (its parent must exist) or an empty directory"
    )]
    DestinationUnusable { path: PathBuf, reason: String },

    /// A source directory cannot be packaged as it is.
    #[error("cannot package {path}: {reason}")]
    SourceRefused { path: PathBuf, reason: String },

    /// A file system operation failed.
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn not_regular_advice(archive: &str) -> &'static str {
    if archive == super::stream::PACKAGE {
        "a chaincode package holds only the regular files metadata.json and code.tar.gz — \
         rebuild the package with `weft peer lifecycle chaincode package`"
    } else {
        "a code archive may hold only regular files and directories — replace links with copies \
         of the files they point to and leave out devices and pipes"
    }
}

impl PackageError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PackageError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
