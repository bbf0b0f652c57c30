//! Fabric 2.x chaincode packages, package ids, and the peer's install store.
//!
//! A chaincode package is a gzip'd tar with exactly two regular files at its top level:
//!
//! - `metadata.json`: `{"path": "...", "type": "...", "label": "..."}`. `type` picks the
//!   builder (`golang`, `node`, `java`, `ccaas`, `binary`, or anything an external builder
//!   claims); `label` names the package and must match Fabric's `^[[:alnum:]][[:alnum:]_.+-]*$`;
//!   `path` is informational and may be absent.
//! - `code.tar.gz`: a gzip'd tar of the code (for `ccaas`: `connection.json` and optionally
//!   `META-INF/`). External builders get it unpacked as their source directory.
//!
//! The package id is `label:` followed by the lower-case hex SHA-256 of the whole package file,
//! exactly as Fabric computes it. The peer keeps installed packages as
//! `<peer.fileSystemPath>/lifecycle/chaincodes/<label>.<hash>.tar.gz`, Fabric's layout.
//!
//! Packages arrive from outside, so everything here treats them as hostile: sizes and entry
//! counts are capped while streaming (a gzip bomb stops at the cap, not at the end), only
//! regular files (and, inside `code.tar.gz`, directories) are accepted, every path is checked
//! before anything is written, and extraction validates the whole archive before it creates
//! the first file. See [`Limits`] for the numbers and `docs/CHAINCODE-PACKAGES.md` for the
//! rules in prose.

mod build;
mod error;
mod extract;
mod store;
mod stream;

use weft_crypto::{hex, sha256};

pub use build::{code_archive_from_directory, package_directory, package_directory_with_path};
pub use error::PackageError;
pub use extract::{
    extract_code, extract_code_with_limits, inspect_code_archive, CodeArchiveSummary,
};
pub use store::{
    installed_chaincodes_json, write_file_atomically, InstallOutcome, InstallStore,
    InstalledChaincode,
};

/// Name of the metadata entry at the top level of a chaincode package.
pub const METADATA_FILE: &str = "metadata.json";
/// Name of the code archive entry at the top level of a chaincode package.
pub const CODE_PACKAGE_FILE: &str = "code.tar.gz";

/// Longest accepted label, in bytes. The installed file is `<label>.<64 hex>.tar.gz`, and most
/// file systems cap a file name at 255 bytes: 255 - 1 - 64 - 7 = 183.
pub const MAX_LABEL_LEN: usize = 183;

/// Longest accepted chaincode type, in bytes.
pub const MAX_TYPE_LEN: usize = 128;

const MIB: u64 = 1024 * 1024;

/// Size and count limits applied to chaincode packages and their code archives.
///
/// Every limit is enforced while streaming: a declared size over a limit is refused from the
/// tar header before its data is read, and the decompressed byte count is capped as bytes come
/// out of the gzip decoder, so a small file that inflates without end is stopped at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest package file accepted (compressed, as installed). Default 100 MiB, the size of
    /// the largest gRPC message a Fabric peer accepts by default.
    pub max_package_bytes: u64,
    /// Largest `metadata.json`. Default 64 KiB.
    pub max_metadata_bytes: u64,
    /// Largest `code.tar.gz` (compressed). Default 100 MiB.
    pub max_code_archive_bytes: u64,
    /// Most entries (files and directories) in `code.tar.gz`. Default 20,000.
    pub max_code_entries: u64,
    /// Largest single file in `code.tar.gz`, decompressed. Default 256 MiB.
    pub max_code_file_bytes: u64,
    /// Most bytes `code.tar.gz` may decompress to, tar headers and padding included.
    /// Default 1 GiB.
    pub max_code_unpacked_bytes: u64,
}

impl Limits {
    /// The defaults described on each field.
    pub const DEFAULT: Limits = Limits {
        max_package_bytes: 100 * MIB,
        max_metadata_bytes: 64 * 1024,
        max_code_archive_bytes: 100 * MIB,
        max_code_entries: 20_000,
        max_code_file_bytes: 256 * MIB,
        max_code_unpacked_bytes: 1024 * MIB,
    };

    /// Most bytes the outer package tar may decompress to: both entries at their limits plus
    /// room for headers, extension records and padding.
    fn max_package_unpacked_bytes(&self) -> u64 {
        self.max_metadata_bytes
            .saturating_add(self.max_code_archive_bytes)
            .saturating_add(MIB)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// The contents of `metadata.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackageMetadata {
    /// `path`: informational (Fabric's CLI records `--path` here); empty when absent.
    pub path: String,
    /// `type`: which builder handles the package (`golang`, `node`, `java`, `ccaas`, `binary`,
    /// or a type an external builder claims).
    #[serde(rename = "type")]
    pub chaincode_type: String,
    /// `label`: the human-readable part of the package id.
    pub label: String,
}

/// A parsed, fully validated chaincode package.
///
/// [`ChaincodePackage::parse`] checks the package and its `code.tar.gz` against every rule of
/// [`extract_code`], so a parsed package can be unpacked without surprises.
#[derive(Debug, Clone)]
pub struct ChaincodePackage {
    metadata: PackageMetadata,
    code: Vec<u8>,
    package_id: String,
}

impl ChaincodePackage {
    /// Parses and validates a package file with the default [`Limits`].
    pub fn parse(bytes: &[u8]) -> Result<ChaincodePackage, PackageError> {
        Self::parse_with_limits(bytes, &Limits::DEFAULT)
    }

    /// Parses and validates a package file.
    pub fn parse_with_limits(
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<ChaincodePackage, PackageError> {
        let (metadata, code) = stream::read_package(bytes, limits)?;
        let metadata = parse_metadata(&metadata)?;
        validate_label(&metadata.label)?;
        validate_chaincode_type(&metadata.chaincode_type)?;
        inspect_code_archive(&code, limits)?;
        let package_id = package_id(&metadata.label, bytes);
        Ok(ChaincodePackage {
            metadata,
            code,
            package_id,
        })
    }

    /// Builds a package file from a label, a chaincode type, the `path` to record in
    /// `metadata.json` and a ready-made `code.tar.gz`. The code archive is checked with the
    /// same rules as [`extract_code`] first, so the result installs anywhere weft runs.
    ///
    /// The output is deterministic: the same inputs give the same bytes, hence the same
    /// package id.
    pub fn build(
        label: &str,
        chaincode_type: &str,
        path: &str,
        code_tar_gz: &[u8],
    ) -> Result<Vec<u8>, PackageError> {
        build::build_package(label, chaincode_type, path, code_tar_gz, &Limits::DEFAULT)
    }

    /// `label:sha256hex(package file)`.
    pub fn package_id(&self) -> &str {
        &self.package_id
    }

    /// The package's label.
    pub fn label(&self) -> &str {
        &self.metadata.label
    }

    /// The parsed `metadata.json`.
    pub fn metadata(&self) -> &PackageMetadata {
        &self.metadata
    }

    /// The bytes of `code.tar.gz`.
    pub fn code_archive(&self) -> &[u8] {
        &self.code
    }

    /// Takes the bytes of `code.tar.gz`.
    pub fn into_code_archive(self) -> Vec<u8> {
        self.code
    }
}

/// Fabric's package id: `label:` + lower-case hex SHA-256 of the whole package file.
pub fn package_id(label: &str, package_bytes: &[u8]) -> String {
    format!("{label}:{}", hex(&sha256(package_bytes)))
}

/// Checks a label against Fabric's rule `^[[:alnum:]][[:alnum:]_.+-]*$` (ASCII only) and
/// [`MAX_LABEL_LEN`].
pub fn validate_label(label: &str) -> Result<(), PackageError> {
    let invalid = |reason: String| PackageError::InvalidLabel {
        label: label.to_string(),
        reason,
    };
    let Some(first) = label.chars().next() else {
        return Err(invalid("it is empty".to_string()));
    };
    if !first.is_ascii_alphanumeric() {
        return Err(invalid(format!(
            "it starts with {first:?}; the first character must be an ASCII letter or digit"
        )));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')))
    {
        return Err(invalid(format!(
            "it contains {bad:?}; only ASCII letters, digits and '_', '.', '+', '-' are allowed"
        )));
    }
    if label.len() > MAX_LABEL_LEN {
        return Err(invalid(format!(
            "it is {} bytes long; the limit is {MAX_LABEL_LEN} so that the installed file name \
             fits in 255 bytes",
            label.len()
        )));
    }
    Ok(())
}

/// Checks a chaincode type: non-empty, at most [`MAX_TYPE_LEN`] bytes, no control characters.
/// Any other value is accepted, since external builders may claim any type.
pub fn validate_chaincode_type(chaincode_type: &str) -> Result<(), PackageError> {
    let invalid = |reason: &str| PackageError::InvalidChaincodeType {
        chaincode_type: chaincode_type.to_string(),
        reason: reason.to_string(),
    };
    if chaincode_type.is_empty() {
        return Err(invalid("it is empty"));
    }
    if chaincode_type.len() > MAX_TYPE_LEN {
        return Err(invalid("it is longer than 128 bytes"));
    }
    if chaincode_type.chars().any(char::is_control) {
        return Err(invalid("it contains control characters"));
    }
    Ok(())
}

/// Splits and checks a package id supplied by a user: `<label>:<64 lower-case hex digits>`,
/// with a label that passes [`validate_label`]. Returns `(label, hash)`.
pub fn validate_package_id(package_id: &str) -> Result<(&str, &str), PackageError> {
    let invalid = |reason: String| PackageError::InvalidPackageId {
        package_id: package_id.to_string(),
        reason,
    };
    let Some((label, hash)) = package_id.rsplit_once(':') else {
        return Err(invalid(
            "it has no ':'; a package id is <label>:<sha256 hex>".to_string(),
        ));
    };
    if let Err(PackageError::InvalidLabel { reason, .. }) = validate_label(label) {
        return Err(invalid(format!("its label '{label}' is invalid: {reason}")));
    }
    if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid(
            "the part after ':' must be exactly 64 lower-case hex digits (a SHA-256)".to_string(),
        ));
    }
    Ok((label, hash))
}

/// Parses `metadata.json` the way Fabric's Go code reads it (field names match
/// case-insensitively, an exact match wins, unknown fields are ignored), but strictly typed:
/// `type` and `label` must be present strings; `path` may be absent or null.
fn parse_metadata(bytes: &[u8]) -> Result<PackageMetadata, PackageError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| PackageError::InvalidMetadataJson {
            detail: e.to_string(),
        })?;
    let serde_json::Value::Object(object) = &value else {
        return Err(PackageError::InvalidMetadataJson {
            detail: format!("expected a JSON object, found {}", json_kind(&value)),
        });
    };
    let field = |name: &'static str, required: bool| -> Result<String, PackageError> {
        let found = object.get(name).or_else(|| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        });
        match found {
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            None if required => Err(PackageError::MissingField { field: name }),
            None | Some(serde_json::Value::Null) if !required => Ok(String::new()),
            Some(other) => Err(PackageError::WrongFieldType {
                field: name,
                found: json_kind(other),
            }),
            None => Err(PackageError::MissingField { field: name }),
        }
    };
    Ok(PackageMetadata {
        chaincode_type: field("type", true)?,
        label: field("label", true)?,
        path: field("path", false)?,
    })
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
