//! Chaincode packages: building, parsing, package ids, the install store, extraction, and
//! refusal of malicious archives (built here with the `tar` crate's low-level header API).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use tar::{EntryType, Header};
use weft_peer::package::{
    code_archive_from_directory, extract_code, extract_code_with_limits, inspect_code_archive,
    installed_chaincodes_json, package_directory, package_directory_with_path, package_id,
    validate_label, validate_package_id, ChaincodePackage, InstallStore, Limits, PackageError,
};

// ---------------------------------------------------------------------------------------------
// Archive construction helpers

/// One tar member written with raw header bytes, so names like `../x` or `/etc/x` that the
/// `tar` crate's safe setters refuse can be produced.
struct Raw {
    name: Vec<u8>,
    kind: EntryType,
    data: Vec<u8>,
    declared_size: Option<u64>,
    mode: u32,
    link: Vec<u8>,
}

fn raw(name: &str, kind: EntryType, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind,
        data: data.to_vec(),
        declared_size: None,
        mode: 0o644,
        link: Vec::new(),
    }
}

fn file(name: &str, data: &[u8]) -> Raw {
    raw(name, EntryType::Regular, data)
}

fn tar_raw(entries: &[Raw]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = Header::new_gnu();
        assert!(e.name.len() <= 100, "raw names must fit the 100-byte field");
        assert!(
            e.link.len() <= 100,
            "raw link names must fit the 100-byte field"
        );
        {
            let bytes = header.as_mut_bytes();
            bytes[..100].fill(0);
            bytes[..e.name.len()].copy_from_slice(&e.name);
            bytes[157..257].fill(0);
            bytes[157..157 + e.link.len()].copy_from_slice(&e.link);
        }
        header.set_entry_type(e.kind);
        header.set_mode(e.mode);
        header.set_mtime(0);
        header.set_size(e.declared_size.unwrap_or(e.data.len() as u64));
        header.set_cksum();
        builder.append(&header, e.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn tgz(entries: &[Raw]) -> Vec<u8> {
    gz(&tar_raw(entries))
}

/// gzip of `n` zero bytes, streamed (never held uncompressed).
fn gz_zeros(n: u64) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
    io::copy(&mut io::repeat(0).take(n), &mut enc).unwrap();
    enc.finish().unwrap()
}

fn connection_json() -> &'static [u8] {
    br#"{"address":"mycc:9999","dial_timeout":"10s","tls_required":false}"#
}

fn ccaas_code() -> Vec<u8> {
    tgz(&[file("connection.json", connection_json())])
}

fn metadata(label: &str) -> Vec<u8> {
    format!(r#"{{"path":"","type":"ccaas","label":"{label}"}}"#).into_bytes()
}

/// A package with the given raw entries (no validation).
fn package_of(entries: &[Raw]) -> Vec<u8> {
    tgz(entries)
}

fn good_package(label: &str) -> Vec<u8> {
    ChaincodePackage::build(label, "ccaas", "", &ccaas_code()).unwrap()
}

/// Every path under `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(
                path.strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Extracts `code` into `<fresh tmp>/out`, expects a refusal, and checks that nothing at all
/// was left in the temporary directory. Returns the error.
fn refuse_extract(code: &[u8]) -> PackageError {
    refuse_extract_with(code, &Limits::default())
}

fn refuse_extract_with(code: &[u8], limits: &Limits) -> PackageError {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("out");
    let err = extract_code_with_limits(code, &dest, limits).unwrap_err();
    assert_eq!(
        listing(root.path()),
        Vec::<String>::new(),
        "a refused extraction left files behind ({err})"
    );
    // The same archive is refused inside a package, at install time.
    err
}

fn assert_message(err: &PackageError, needles: &[&str]) {
    let message = err.to_string();
    for needle in needles {
        assert!(
            message.contains(needle),
            "message {message:?} does not mention {needle:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Building, parsing, package ids

#[test]
fn build_then_parse_round_trips() {
    let code = ccaas_code();
    let bytes = ChaincodePackage::build("mycc_1.0", "ccaas", "some/path", &code).unwrap();
    let package = ChaincodePackage::parse(&bytes).unwrap();
    assert_eq!(package.label(), "mycc_1.0");
    assert_eq!(package.metadata().label, "mycc_1.0");
    assert_eq!(package.metadata().chaincode_type, "ccaas");
    assert_eq!(package.metadata().path, "some/path");
    assert_eq!(package.code_archive(), code.as_slice());
    assert_eq!(
        package.package_id(),
        format!(
            "mycc_1.0:{}",
            weft_crypto::hex(&weft_crypto::sha256(&bytes))
        )
    );

    // Exactly two regular entries, metadata.json first, with Fabric's field order.
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        assert_eq!(entry.header().entry_type(), EntryType::Regular);
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if name == "metadata.json" {
            let mut json = String::new();
            entry.read_to_string(&mut json).unwrap();
            assert_eq!(
                json,
                r#"{"path":"some/path","type":"ccaas","label":"mycc_1.0"}"#
            );
        }
        names.push(name);
    }
    assert_eq!(names, ["metadata.json", "code.tar.gz"]);

    // Building again gives the same bytes.
    assert_eq!(
        ChaincodePackage::build("mycc_1.0", "ccaas", "some/path", &code).unwrap(),
        bytes
    );
}

#[test]
fn errors_stay_small() {
    // clippy's result_large_err fires at 128 bytes; keep `Result<_, PackageError>` cheap.
    assert!(std::mem::size_of::<PackageError>() <= 128);
}

#[test]
fn package_id_format() {
    let bytes = good_package("basic_1.0");
    let id = ChaincodePackage::parse(&bytes)
        .unwrap()
        .package_id()
        .to_string();
    let (label, hash) = id.split_once(':').unwrap();
    assert_eq!(label, "basic_1.0");
    assert_eq!(hash.len(), 64);
    assert!(hash
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(id, package_id("basic_1.0", &bytes));
    assert_eq!(validate_package_id(&id).unwrap(), ("basic_1.0", hash));

    // Known answer: the hash is SHA-256 of the file bytes, lower-case hex.
    assert_eq!(
        package_id("x", b"abc"),
        "x:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn label_rule_is_fabrics() {
    for ok in ["mycc_1.0", "a", "A+b-c.d_e", "0", "cc-2.5+build.1"] {
        validate_label(ok).unwrap();
    }
    for bad in [
        "", "_x", ".x", "-x", "a/b", "a b", "a:b", "é", "a\\b", "..", "x\n",
    ] {
        let err = validate_label(bad).unwrap_err();
        assert!(
            matches!(err, PackageError::InvalidLabel { .. }),
            "{bad:?}: {err}"
        );
    }
    validate_label(&"a".repeat(183)).unwrap();
    assert!(validate_label(&"a".repeat(184)).is_err());
    // build refuses bad labels too.
    let err = ChaincodePackage::build("my/cc", "ccaas", "", &ccaas_code()).unwrap_err();
    assert!(matches!(err, PackageError::InvalidLabel { .. }), "{err}");
}

#[test]
fn metadata_is_read_like_fabric() {
    // No path field (what fabric-samples' ccaas scripts write) and capitalised keys (old
    // Fabric tooling; Go's JSON decoding matches field names case-insensitively).
    for json in [
        r#"{"type":"ccaas","label":"basic_1.0"}"#,
        r#"{"Path":"x","Type":"ccaas","Label":"basic_1.0","extra":[1,2]}"#,
        r#"{"path":null,"type":"ccaas","label":"basic_1.0"}"#,
    ] {
        let bytes = package_of(&[
            file("metadata.json", json.as_bytes()),
            file("code.tar.gz", &ccaas_code()),
        ]);
        let package = ChaincodePackage::parse(&bytes).unwrap();
        assert_eq!(package.label(), "basic_1.0", "{json}");
        assert_eq!(package.metadata().chaincode_type, "ccaas");
    }
    // A package made by GNU tar-style writers, entries in the other order, with a pax global
    // header (as `git archive` writes) is fine.
    let bytes = package_of(&[
        raw(
            "pax_global_header",
            EntryType::XGlobalHeader,
            b"52 comment=0123456789abcdef0123456789abcdef01234567\n",
        ),
        file("code.tar.gz", &ccaas_code()),
        file("metadata.json", &metadata("basic_1.0")),
    ]);
    ChaincodePackage::parse(&bytes).unwrap();
}

#[test]
fn package_directory_is_deterministic() {
    let src = tempfile::tempdir().unwrap();
    let dir = src.path();
    fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    fs::create_dir_all(dir.join("META-INF/statedb/couchdb/indexes")).unwrap();
    fs::write(dir.join("main.go"), b"package main\n").unwrap();
    fs::write(dir.join("go.mod"), b"module example.com/cc\n").unwrap();
    fs::write(dir.join("sub/util.go"), b"package sub\n").unwrap();
    fs::write(dir.join("sub/deeper/data.txt"), b"data").unwrap();
    fs::write(
        dir.join("META-INF/statedb/couchdb/indexes/owner.json"),
        br#"{"index":{"fields":["owner"]}}"#,
    )
    .unwrap();
    fs::write(dir.join("run.sh"), b"#!/bin/sh\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o4775)).unwrap();
        // A link to a file inside the directory is packaged as a copy.
        std::os::unix::fs::symlink("main.go", dir.join("alias.go")).unwrap();
    }

    let first = package_directory(dir, "gocc_1", "golang").unwrap();
    let second = package_directory(dir, "gocc_1", "golang").unwrap();
    assert_eq!(first, second, "same directory, same bytes");
    let id = ChaincodePackage::parse(&first)
        .unwrap()
        .package_id()
        .to_string();
    assert_eq!(
        id,
        ChaincodePackage::parse(&second).unwrap().package_id(),
        "same directory, same package id"
    );

    // File times do not matter.
    let f = fs::File::options()
        .write(true)
        .open(dir.join("main.go"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345))
        .unwrap();
    drop(f);
    let third = package_directory(dir, "gocc_1", "golang").unwrap();
    assert_eq!(ChaincodePackage::parse(&third).unwrap().package_id(), id);

    // Content does.
    fs::write(dir.join("sub/deeper/data.txt"), b"changed").unwrap();
    let fourth = package_directory(dir, "gocc_1", "golang").unwrap();
    assert_ne!(ChaincodePackage::parse(&fourth).unwrap().package_id(), id);

    // Layout: sources under src/, META-INF at the root, modes normalised.
    let package = ChaincodePackage::parse(&fourth).unwrap();
    assert_eq!(package.metadata().path, dir.to_string_lossy());
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    extract_code(package.code_archive(), &dest).unwrap();
    let mut expected = vec![
        "META-INF",
        "META-INF/statedb",
        "META-INF/statedb/couchdb",
        "META-INF/statedb/couchdb/indexes",
        "META-INF/statedb/couchdb/indexes/owner.json",
        "src",
        "src/go.mod",
        "src/main.go",
        "src/run.sh",
        "src/sub",
        "src/sub/deeper",
        "src/sub/deeper/data.txt",
        "src/sub/util.go",
    ];
    if cfg!(unix) {
        expected.push("src/alias.go");
    }
    expected.sort();
    assert_eq!(listing(&dest), expected);
    assert_eq!(
        fs::read(dest.join("src/sub/deeper/data.txt")).unwrap(),
        b"changed"
    );
    #[cfg(unix)]
    {
        assert_eq!(
            fs::read(dest.join("src/alias.go")).unwrap(),
            b"package main\n"
        );
        assert!(!fs::symlink_metadata(dest.join("src/alias.go"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(
            mode_of(&dest.join("src/run.sh")),
            0o755,
            "setuid dropped, x kept"
        );
        assert_eq!(mode_of(&dest.join("src/main.go")), 0o644);
        assert_eq!(mode_of(&dest.join("src/sub")), 0o755);
    }
}

#[test]
fn ccaas_directory_packages_at_the_root_and_path_can_be_fixed() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        fs::write(dir.join("connection.json"), connection_json()).unwrap();
        fs::create_dir_all(dir.join("META-INF")).unwrap();
        fs::write(dir.join("META-INF/x.json"), b"{}").unwrap();
    }
    let pa = package_directory_with_path(a.path(), "cc_1", "ccaas", "").unwrap();
    let pb = package_directory_with_path(b.path(), "cc_1", "ccaas", "").unwrap();
    assert_eq!(pa, pb, "same content and recorded path, wherever it lives");

    let package = ChaincodePackage::parse(&pa).unwrap();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("src");
    extract_code(package.code_archive(), &dest).unwrap();
    assert_eq!(
        listing(&dest),
        ["META-INF", "META-INF/x.json", "connection.json"]
    );
    assert_eq!(
        fs::read(dest.join("connection.json")).unwrap(),
        connection_json()
    );

    // node leaves a top-level node_modules out, as Fabric does.
    let n = tempfile::tempdir().unwrap();
    fs::create_dir_all(n.path().join("node_modules/dep")).unwrap();
    fs::write(n.path().join("node_modules/dep/index.js"), b"x").unwrap();
    fs::write(n.path().join("index.js"), b"y").unwrap();
    let code = code_archive_from_directory(n.path(), "node").unwrap();
    let summary = inspect_code_archive(&code, &Limits::default()).unwrap();
    assert_eq!(summary.files, 1);
}

#[cfg(unix)]
#[test]
fn package_directory_refuses_links_that_leave_the_directory() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret"), b"s").unwrap();
    let src = tempfile::tempdir().unwrap();
    fs::write(src.path().join("connection.json"), connection_json()).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret"), src.path().join("leak")).unwrap();
    let err = package_directory(src.path(), "cc_1", "ccaas").unwrap_err();
    assert!(matches!(err, PackageError::SourceRefused { .. }), "{err}");
    assert_message(&err, &["leak", "outside"]);

    fs::remove_file(src.path().join("leak")).unwrap();
    std::os::unix::fs::symlink("missing", src.path().join("dangling")).unwrap();
    let err = package_directory(src.path(), "cc_1", "ccaas").unwrap_err();
    assert!(matches!(err, PackageError::SourceRefused { .. }), "{err}");

    fs::remove_file(src.path().join("dangling")).unwrap();
    fs::create_dir(src.path().join("d")).unwrap();
    std::os::unix::fs::symlink("d", src.path().join("dirlink")).unwrap();
    let err = package_directory(src.path(), "cc_1", "ccaas").unwrap_err();
    assert!(matches!(err, PackageError::SourceRefused { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The install store

#[test]
fn install_query_get_and_idempotent_reinstall() {
    let peer = tempfile::tempdir().unwrap();
    let store = InstallStore::open(peer.path()).unwrap();
    assert_eq!(store.dir(), peer.path().join("lifecycle/chaincodes"));
    assert!(store.query_installed().unwrap().is_empty());
    assert_eq!(installed_chaincodes_json(&[]), "{}");

    let bytes = good_package("basic_1.0");
    let id = package_id("basic_1.0", &bytes);
    let outcome = store.install(&bytes).unwrap();
    assert!(!outcome.already_installed);
    assert_eq!(outcome.chaincode.package_id, id);
    assert_eq!(outcome.chaincode.label, "basic_1.0");

    // Fabric's file name: <label>.<hash>.tar.gz
    let hash = id.split_once(':').unwrap().1;
    let expected_file = store.dir().join(format!("basic_1.0.{hash}.tar.gz"));
    assert_eq!(store.path_of(&id).unwrap(), expected_file);
    assert_eq!(fs::read(&expected_file).unwrap(), bytes);

    // Reinstalling is fine and says so.
    let again = store.install(&bytes).unwrap();
    assert!(again.already_installed);
    assert_eq!(again.chaincode, outcome.chaincode);

    let other = ChaincodePackage::build("another_2", "binary", "", &ccaas_code()).unwrap();
    let other_id = store.install(&other).unwrap().chaincode.package_id;

    let installed = store.query_installed().unwrap();
    let ids: Vec<_> = installed.iter().map(|c| c.package_id.as_str()).collect();
    assert_eq!(ids, [other_id.as_str(), id.as_str()], "sorted by file name");
    assert_eq!(installed[1].label, "basic_1.0");

    assert_eq!(store.get(&id).unwrap(), bytes);
    assert_eq!(store.get(&other_id).unwrap(), other);

    // Only the two package files, no temporary files left behind.
    assert_eq!(listing(store.dir()).len(), 2);

    // JSON output in Fabric's shape.
    let json = installed_chaincodes_json(&installed);
    assert!(json.starts_with("{\n\t\"installed_chaincodes\": [\n\t\t{\n\t\t\t\"package_id\": "));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["installed_chaincodes"][1]["label"], "basic_1.0");
    assert_eq!(value["installed_chaincodes"][1]["package_id"], id.as_str());

    // A stray file in the directory is not a chaincode.
    fs::write(store.dir().join("notes.txt"), b"x").unwrap();
    assert_eq!(store.query_installed().unwrap().len(), 2);

    // Reopening finds the same.
    let reopened = InstallStore::open(peer.path()).unwrap();
    assert_eq!(reopened.query_installed().unwrap(), installed);
}

#[test]
fn store_validates_user_supplied_package_ids() {
    let peer = tempfile::tempdir().unwrap();
    let store = InstallStore::open(peer.path()).unwrap();
    let hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    for bad in [
        "../../etc/passwd".to_string(),
        format!("../x:{hash}"),
        format!("a/b:{hash}"),
        format!("..:{hash}"),
        format!(":{hash}"),
        format!("mycc:{}", hash.to_uppercase()),
        "mycc:abc".to_string(),
        format!("mycc:{hash}/../../x"),
        format!("mycc:{hash}\0"),
        "mycc".to_string(),
    ] {
        let err = store.get(&bad).unwrap_err();
        assert!(
            matches!(err, PackageError::InvalidPackageId { .. }),
            "{bad:?}: {err}"
        );
        assert!(store.path_of(&bad).is_err());
    }
    let err = store.get(&format!("mycc:{hash}")).unwrap_err();
    assert!(matches!(err, PackageError::NotInstalled { .. }), "{err}");
    assert_message(&err, &["not found", "queryinstalled"]);
}

#[test]
fn store_detects_a_tampered_file_and_reinstall_repairs_it() {
    let peer = tempfile::tempdir().unwrap();
    let store = InstallStore::open(peer.path()).unwrap();
    let bytes = good_package("basic_1.0");
    let id = store.install(&bytes).unwrap().chaincode.package_id;
    fs::write(store.path_of(&id).unwrap(), b"tampered").unwrap();
    let err = store.get(&id).unwrap_err();
    assert!(
        matches!(err, PackageError::InstalledPackageCorrupt { .. }),
        "{err}"
    );
    assert_message(&err, &["SHA-256", "install the package again"]);
    let outcome = store.install(&bytes).unwrap();
    assert!(!outcome.already_installed);
    assert_eq!(store.get(&id).unwrap(), bytes);
}

#[test]
fn refused_install_writes_nothing() {
    let peer = tempfile::tempdir().unwrap();
    let store = InstallStore::open(peer.path()).unwrap();
    let evil_code = tgz(&[file("../../../escape.txt", b"x")]);
    let evil = package_of(&[
        file("metadata.json", &metadata("evil_1")),
        file("code.tar.gz", &evil_code),
    ]);
    let err = store.install(&evil).unwrap_err();
    assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
    assert!(listing(store.dir()).is_empty());
    assert_eq!(listing(peer.path()), ["lifecycle", "lifecycle/chaincodes"]);
    assert!(store.query_installed().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Malicious or malformed packages

fn refuse_parse(bytes: &[u8]) -> PackageError {
    ChaincodePackage::parse(bytes).unwrap_err()
}

#[test]
fn refuses_data_that_is_not_gzip() {
    let err = refuse_parse(b"hello, this is not a package");
    assert!(matches!(err, PackageError::NotGzip { .. }), "{err}");
    assert_message(&err, &["not gzip-compressed", "chaincode package"]);

    let err = refuse_parse(b"");
    assert_message(&err, &["empty"]);

    let plain_tar = tar_raw(&[
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", &ccaas_code()),
    ]);
    let err = refuse_parse(&plain_tar);
    assert!(matches!(err, PackageError::NotGzip { .. }), "{err}");
    assert_message(&err, &["uncompressed tar"]);

    // code.tar.gz that is not gzip.
    let err = refuse_parse(&package_of(&[
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", b"{\"address\":\"x\"}"),
    ]));
    assert!(
        matches!(
            err,
            PackageError::NotGzip {
                archive: "code.tar.gz",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn refuses_truncated_and_corrupt_gzip() {
    // Enough incompressible content that truncation cuts the deflate stream mid-way.
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let code = tgz(&[
        file("connection.json", connection_json()),
        file("blob", &noise),
    ]);
    let bytes = ChaincodePackage::build("x_1", "ccaas", "", &code).unwrap();
    let err = refuse_parse(&bytes[..bytes.len() / 2]);
    assert!(matches!(err, PackageError::CorruptGzip { .. }), "{err}");
    assert_message(&err, &["corrupt or truncated gzip"]);

    // Only the 8-byte gzip trailer (CRC, length) missing.
    let err = refuse_parse(&bytes[..bytes.len() - 8]);
    assert!(matches!(err, PackageError::CorruptGzip { .. }), "{err}");

    // A flipped byte in the trailer's CRC.
    let mut flipped = bytes.clone();
    let at = flipped.len() - 6;
    flipped[at] ^= 0xff;
    let err = refuse_parse(&flipped);
    assert!(matches!(err, PackageError::CorruptGzip { .. }), "{err}");

    // Valid gzip, not a tar.
    let err = refuse_parse(&gz(b"just some text, not a tar archive"));
    assert!(matches!(err, PackageError::NotTar { .. }), "{err}");
    assert_message(&err, &["not a valid tar archive"]);
}

#[test]
fn refuses_missing_duplicate_and_unexpected_entries() {
    let code = ccaas_code();
    let err = refuse_parse(&package_of(&[file("metadata.json", &metadata("x"))]));
    assert!(
        matches!(
            err,
            PackageError::MissingEntry {
                entry: "code.tar.gz"
            }
        ),
        "{err}"
    );
    assert_message(&err, &["no 'code.tar.gz' entry"]);

    let err = refuse_parse(&package_of(&[file("code.tar.gz", &code)]));
    assert!(
        matches!(
            err,
            PackageError::MissingEntry {
                entry: "metadata.json"
            }
        ),
        "{err}"
    );

    let err = refuse_parse(&package_of(&[
        file("metadata.json", &metadata("x")),
        file("metadata.json", &metadata("y")),
        file("code.tar.gz", &code),
    ]));
    assert!(matches!(err, PackageError::DuplicateEntry { .. }), "{err}");
    assert_message(&err, &["'metadata.json' more than once"]);

    let err = refuse_parse(&package_of(&[
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", &code),
        file("code.tar.gz", &code),
    ]));
    assert!(matches!(err, PackageError::DuplicateEntry { .. }), "{err}");

    let err = refuse_parse(&package_of(&[
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", &code),
        file("README.md", b"hi"),
    ]));
    assert!(matches!(err, PackageError::UnexpectedEntry { .. }), "{err}");
    assert_message(&err, &["'README.md'"]);

    // `tar czf pkg.tar.gz -C dir .` style: './' prefix and a directory entry.
    let err = refuse_parse(&package_of(&[
        raw("./", EntryType::Directory, b""),
        file("./metadata.json", &metadata("x")),
        file("./code.tar.gz", &code),
    ]));
    assert!(matches!(err, PackageError::UnexpectedEntry { .. }), "{err}");
    assert_message(&err, &["no './' prefix"]);
}

#[test]
fn refuses_thousands_of_entries_quickly() {
    let code = ccaas_code();
    let mut entries = vec![
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", &code),
    ];
    entries.extend((0..5000).map(|i| file(&format!("f{i}"), b"")));
    let err = refuse_parse(&package_of(&entries));
    assert!(matches!(err, PackageError::UnexpectedEntry { .. }), "{err}");

    // Thousands of entries inside code.tar.gz, over the entry limit.
    let many: Vec<Raw> = (0..20_001).map(|i| file(&format!("f{i}"), b"")).collect();
    let code = tgz(&many);
    let err = refuse_parse(&package_of(&[
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", &code),
    ]));
    assert!(
        matches!(err, PackageError::TooManyEntries { limit: 20_000, .. }),
        "{err}"
    );
    let err = refuse_extract(&code);
    assert!(matches!(err, PackageError::TooManyEntries { .. }), "{err}");
}

#[test]
fn refuses_entries_that_are_not_regular_files() {
    let code = ccaas_code();
    let mut symlink = raw("metadata.json", EntryType::Symlink, b"");
    symlink.link = b"/etc/passwd".to_vec();
    let mut hardlink = raw("code.tar.gz", EntryType::Link, b"");
    hardlink.link = b"metadata.json".to_vec();
    let cases: Vec<(Vec<Raw>, &str)> = vec![
        (vec![symlink, file("code.tar.gz", &code)], "a symbolic link"),
        (
            vec![file("metadata.json", &metadata("x")), hardlink],
            "a hard link",
        ),
        (
            vec![
                raw("metadata.json", EntryType::Char, b""),
                file("code.tar.gz", &code),
            ],
            "a character device",
        ),
        (
            vec![
                file("metadata.json", &metadata("x")),
                raw("code.tar.gz", EntryType::Block, b""),
            ],
            "a block device",
        ),
        (
            vec![
                file("metadata.json", &metadata("x")),
                raw("code.tar.gz", EntryType::Directory, b""),
            ],
            "a directory",
        ),
        (
            vec![
                raw("metadata.json", EntryType::Fifo, b""),
                file("code.tar.gz", &code),
            ],
            "a named pipe",
        ),
    ];
    for (entries, kind) in cases {
        let err = refuse_parse(&package_of(&entries));
        assert!(
            matches!(
                err,
                PackageError::NotRegularFile {
                    archive: "the chaincode package",
                    ..
                }
            ),
            "{kind}: {err}"
        );
        assert_message(&err, &[kind, "regular files"]);
    }
}

#[test]
fn refuses_bad_metadata_naming_the_field() {
    let code = ccaas_code();
    let with = |json: &str| {
        refuse_parse(&package_of(&[
            file("metadata.json", json.as_bytes()),
            file("code.tar.gz", &code),
        ]))
    };

    let err = with(r#"{"type":"ccaas","label":5}"#);
    assert!(
        matches!(
            err,
            PackageError::WrongFieldType {
                field: "label",
                found: "a number"
            }
        ),
        "{err}"
    );
    assert_message(&err, &["\"label\"", "a number", "must be a string"]);

    let err = with(r#"{"type":["ccaas"],"label":"x"}"#);
    assert!(
        matches!(
            err,
            PackageError::WrongFieldType {
                field: "type",
                found: "an array"
            }
        ),
        "{err}"
    );

    let err = with(r#"{"type":"ccaas","label":"x","path":7}"#);
    assert!(
        matches!(err, PackageError::WrongFieldType { field: "path", .. }),
        "{err}"
    );

    let err = with(r#"{"label":"x"}"#);
    assert!(
        matches!(err, PackageError::MissingField { field: "type" }),
        "{err}"
    );
    assert_message(&err, &["no \"type\" field"]);

    let err = with(r#"{"type":"ccaas"}"#);
    assert!(
        matches!(err, PackageError::MissingField { field: "label" }),
        "{err}"
    );

    let err = with(r#"{"type":"ccaas","label":"a/b"}"#);
    assert!(matches!(err, PackageError::InvalidLabel { .. }), "{err}");
    assert_message(&err, &["'a/b'", "'/'"]);

    let err = with(r#"{"type":"ccaas","label":"../../x"}"#);
    assert!(matches!(err, PackageError::InvalidLabel { .. }), "{err}");

    let err = with(r#"{"type":"","label":"x"}"#);
    assert!(
        matches!(err, PackageError::InvalidChaincodeType { .. }),
        "{err}"
    );

    let err = with(r#"{"type":"ccaas","label":"x""#);
    assert!(
        matches!(err, PackageError::InvalidMetadataJson { .. }),
        "{err}"
    );
    assert_message(&err, &["metadata.json", "not valid"]);

    let err = with(r#"["ccaas","x"]"#);
    assert!(
        matches!(err, PackageError::InvalidMetadataJson { .. }),
        "{err}"
    );
    assert_message(&err, &["expected a JSON object, found an array"]);
}

#[test]
fn refuses_huge_declared_sizes_before_reading() {
    let code = ccaas_code();
    let mut huge_metadata = file("metadata.json", b"{}");
    huge_metadata.declared_size = Some(10 << 30);
    let err = refuse_parse(&package_of(&[huge_metadata]));
    assert!(
        matches!(err, PackageError::EntryTooLarge { size, limit: 65536, .. } if size == 10 << 30),
        "{err}"
    );
    assert_message(&err, &["'metadata.json'", "before reading"]);

    let mut huge_code = file("code.tar.gz", &code);
    huge_code.declared_size = Some(200 << 20);
    let err = refuse_parse(&package_of(&[
        file("metadata.json", &metadata("x")),
        huge_code,
    ]));
    assert!(matches!(err, PackageError::EntryTooLarge { .. }), "{err}");

    // Inside code.tar.gz: a file declaring 5 GiB.
    let mut huge_file = file("big.bin", b"tiny");
    huge_file.declared_size = Some(5 << 30);
    let err = refuse_extract(&tgz(&[huge_file]));
    assert!(
        matches!(
            err,
            PackageError::EntryTooLarge {
                archive: "code.tar.gz",
                ..
            }
        ),
        "{err}"
    );
    assert_message(&err, &["'big.bin'"]);

    // Package file over the package limit.
    let small = Limits {
        max_package_bytes: 100,
        ..Limits::default()
    };
    let err = ChaincodePackage::parse_with_limits(&good_package("x"), &small).unwrap_err();
    assert!(matches!(err, PackageError::TooLarge { .. }), "{err}");
}

#[test]
fn stops_a_gzip_bomb_early() {
    // 200 MiB of zeros compress to about 200 KiB. Decompression stops at the package limit
    // (about 101 MiB) instead of inflating everything.
    let bomb = gz_zeros(200 << 20);
    assert!(bomb.len() < 1 << 20);
    let err = refuse_parse(&bomb);
    assert!(
        matches!(err, PackageError::DecompressedTooLarge { archive: "the chaincode package", limit } if limit < 200 << 20),
        "{err}"
    );
    assert_message(&err, &["decompression bomb"]);

    // The same as a code archive, with a small unpacked limit.
    let limits = Limits {
        max_code_unpacked_bytes: 4 << 20,
        ..Limits::default()
    };
    let err = refuse_extract_with(&gz_zeros(64 << 20), &limits);
    assert!(
        matches!(
            err,
            PackageError::DecompressedTooLarge {
                archive: "code.tar.gz",
                ..
            }
        ),
        "{err}"
    );

    // A real 8 MiB file of zeros against a 1 MiB limit: refused from the header.
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut header = Header::new_gnu();
    header.set_size(8 << 20);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "zeros.bin", io::repeat(0).take(8 << 20))
        .unwrap();
    let code = builder.into_inner().unwrap().finish().unwrap();
    let limits = Limits {
        max_code_unpacked_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = refuse_extract_with(&code, &limits);
    assert!(
        matches!(err, PackageError::DecompressedTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn refuses_disagreeing_pax_size_and_sparse_files() {
    let pax = b"12 size=999\n";
    let code = tgz(&[
        raw("PaxHeaders/x", EntryType::XHeader, pax),
        file("x", b"abc"),
    ]);
    let err = refuse_extract(&code);
    assert!(matches!(err, PackageError::UnsupportedTar { .. }), "{err}");
    assert_message(&err, &["size 999", "tar header gives 3"]);

    let err = refuse_extract(&tgz(&[raw("sparse", EntryType::GNUSparse, b"")]));
    assert!(matches!(err, PackageError::NotRegularFile { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Extraction

#[test]
fn extract_refuses_path_traversal() {
    let root = tempfile::tempdir().unwrap();
    let absolute_inside_tmp = format!("{}/abs_evil.txt", root.path().display());
    for name in [
        "../evil.txt",
        "a/../../evil.txt",
        "a/b/../../../evil.txt",
        "/etc/evil.txt",
        absolute_inside_tmp.as_str(),
        "C:\\evil.txt",
        "C:/evil.txt",
        "..\\evil.txt",
        "a\\..\\..\\evil.txt",
    ] {
        let err = refuse_extract(&tgz(&[file("ok.txt", b"fine"), file(name, b"evil")]));
        assert!(
            matches!(
                err,
                PackageError::UnsafePath {
                    archive: "code.tar.gz",
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert_message(&err, &[name, "unsafe path"]);
    }
    assert_eq!(listing(root.path()), Vec::<String>::new());
    assert!(!Path::new("/etc/evil.txt").exists());

    // The same names inside a package are refused at parse time.
    let evil = package_of(&[
        file("metadata.json", &metadata("x")),
        file("code.tar.gz", &tgz(&[file("../evil.txt", b"evil")])),
    ]);
    let err = refuse_parse(&evil);
    assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
}

#[test]
fn extract_refuses_traversal_in_long_names_and_pax_paths() {
    // GNU long-name record naming a path with '..'.
    let long = format!("{}/../../../evil.txt", "d".repeat(120));
    let mut name = long.clone().into_bytes();
    name.push(0);
    let code = tgz(&[
        raw("././@LongLink", EntryType::GNULongName, &name),
        file("placeholder", b"x"),
    ]);
    let err = refuse_extract(&code);
    assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
    assert_message(&err, &["evil.txt", "'..'"]);

    // pax path record.
    let record = "27 path=../../pax-evil.txt\n";
    assert_eq!(record.len(), 27);
    let code = tgz(&[
        raw("PaxHeaders/x", EntryType::XHeader, record.as_bytes()),
        file("innocent.txt", b"x"),
    ]);
    let err = refuse_extract(&code);
    assert!(matches!(err, PackageError::UnsafePath { .. }), "{err}");
    assert_message(&err, &["pax-evil.txt"]);
}

#[test]
fn extract_refuses_links_and_devices() {
    let mut symlink = raw("link", EntryType::Symlink, b"");
    symlink.link = b"/etc/passwd".to_vec();
    let mut hardlink = raw("hard", EntryType::Link, b"");
    hardlink.link = b"ok.txt".to_vec();
    let cases = [
        (symlink, "a symbolic link"),
        (hardlink, "a hard link"),
        (raw("tty", EntryType::Char, b""), "a character device"),
        (raw("disk", EntryType::Block, b""), "a block device"),
        (raw("pipe", EntryType::Fifo, b""), "a named pipe"),
        (raw("cont", EntryType::Continuous, b""), "a contiguous file"),
    ];
    for (entry, kind) in cases {
        let err = refuse_extract(&tgz(&[file("ok.txt", b"fine"), entry]));
        assert!(
            matches!(
                err,
                PackageError::NotRegularFile {
                    archive: "code.tar.gz",
                    ..
                }
            ),
            "{kind}: {err}"
        );
        assert_message(&err, &[kind, "regular files and directories"]);
    }
}

#[test]
fn extract_refuses_writing_through_a_symlink() {
    let root = tempfile::tempdir().unwrap();
    let outside = root.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let dest = root.path().join("out");

    // A symlink to a directory outside, then a file "through" it.
    let mut link = raw("escape", EntryType::Symlink, b"");
    link.link = outside.to_string_lossy().as_bytes().to_vec();
    let code = tgz(&[link, file("escape/pwned.txt", b"pwned")]);
    let err = extract_code(&code, &dest).unwrap_err();
    assert!(matches!(err, PackageError::NotRegularFile { .. }), "{err}");
    assert_eq!(
        listing(root.path()),
        ["outside"],
        "nothing written anywhere"
    );

    // The same with a relative link climbing out.
    let mut link = raw("up", EntryType::Symlink, b"");
    link.link = b"../outside".to_vec();
    let code = tgz(&[link, file("up/pwned.txt", b"pwned")]);
    let err = extract_code(&code, &dest).unwrap_err();
    assert!(matches!(err, PackageError::NotRegularFile { .. }), "{err}");
    assert_eq!(listing(root.path()), ["outside"]);
}

#[test]
fn extract_refuses_duplicates_and_file_directory_conflicts() {
    let err = refuse_extract(&tgz(&[file("a.txt", b"1"), file("./a.txt", b"2")]));
    assert!(matches!(err, PackageError::DuplicateEntry { .. }), "{err}");

    let err = refuse_extract(&tgz(&[file("a", b"1"), file("a/b", b"2")]));
    assert!(matches!(err, PackageError::PathConflict { .. }), "{err}");
    assert_message(&err, &["'a' is a file"]);

    let err = refuse_extract(&tgz(&[file("a/b", b"1"), file("a", b"2")]));
    assert!(matches!(err, PackageError::PathConflict { .. }), "{err}");

    let err = refuse_extract(&tgz(&[
        file("a", b"1"),
        raw("a/", EntryType::Directory, b""),
    ]));
    assert!(matches!(err, PackageError::PathConflict { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn extract_sets_safe_permissions() {
    let mut setuid = file("bin/tool", b"#!/bin/sh\n");
    setuid.mode = 0o4755;
    let mut setgid = file("data/setgid.txt", b"x");
    setgid.mode = 0o2644;
    let mut private = file("data/private.txt", b"x");
    private.mode = 0o600;
    let mut group_exec = file("bin/group-exec", b"x");
    group_exec.mode = 0o610;
    let mut world_dir = raw("open/", EntryType::Directory, b"");
    world_dir.mode = 0o1777;
    let code = tgz(&[
        raw("./", EntryType::Directory, b""),
        setuid,
        setgid,
        private,
        group_exec,
        world_dir,
    ]);
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("out");
    extract_code(&code, &dest).unwrap();
    assert_eq!(mode_of(&dest.join("bin/tool")), 0o755);
    assert_eq!(mode_of(&dest.join("bin/group-exec")), 0o755);
    assert_eq!(mode_of(&dest.join("data/setgid.txt")), 0o644);
    assert_eq!(mode_of(&dest.join("data/private.txt")), 0o644);
    assert_eq!(mode_of(&dest.join("open")), 0o755);
    assert_eq!(mode_of(&dest.join("bin")), 0o755);
    assert_eq!(fs::read(dest.join("bin/tool")).unwrap(), b"#!/bin/sh\n");
}

#[test]
fn extract_destination_rules() {
    let code = ccaas_code();
    let root = tempfile::tempdir().unwrap();

    // An existing empty directory is fine.
    let empty = root.path().join("empty");
    fs::create_dir(&empty).unwrap();
    extract_code(&code, &empty).unwrap();
    assert_eq!(listing(&empty), ["connection.json"]);

    // A non-empty one is not; nothing in it changes.
    let err = extract_code(&code, &empty).unwrap_err();
    assert!(
        matches!(err, PackageError::DestinationUnusable { .. }),
        "{err}"
    );
    assert_message(&err, &["not empty"]);

    // A file is not.
    let plain = root.path().join("plain");
    fs::write(&plain, b"x").unwrap();
    let err = extract_code(&code, &plain).unwrap_err();
    assert!(
        matches!(err, PackageError::DestinationUnusable { .. }),
        "{err}"
    );

    // A symlink (even to an empty directory) is not.
    #[cfg(unix)]
    {
        let target = root.path().join("target");
        fs::create_dir(&target).unwrap();
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = extract_code(&code, &link).unwrap_err();
        assert!(
            matches!(err, PackageError::DestinationUnusable { .. }),
            "{err}"
        );
        assert!(listing(&target).is_empty());
    }

    // A missing parent is an I/O error, and nothing is created.
    let deep = root.path().join("no/such/parent");
    let err = extract_code(&code, &deep).unwrap_err();
    assert!(matches!(err, PackageError::Io { .. }), "{err}");
    assert!(!root.path().join("no").exists());
}

/// A path that passes every check (each component under 255 bytes, the whole under 4096) but
/// is too long for the file system once joined to the destination: the failure comes during
/// writing, after other files were written, and everything written is removed.
#[cfg(target_os = "linux")]
#[test]
fn extract_removes_partial_output_when_writing_fails() {
    let deep: Vec<String> = (0..20)
        .map(|i| format!("{i:02}{}", "d".repeat(198)))
        .collect();
    let long_path = format!("{}/file.txt", deep.join("/"));
    assert!(long_path.len() < 4096 && long_path.len() > 3900);

    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (name, data) in [("first.txt", &b"one"[..]), ("dir/second.txt", b"two")] {
        let mut header = Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, data).unwrap();
    }
    let mut header = Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, &long_path, &b"deep"[..])
        .unwrap();
    let code = builder.into_inner().unwrap().finish().unwrap();

    // The archive itself is valid.
    inspect_code_archive(&code, &Limits::default()).unwrap();

    let root = tempfile::tempdir().unwrap();
    // Make the destination path long enough that the deep file cannot be created.
    let mut dest = root.path().to_path_buf();
    for _ in 0..2 {
        dest.push("p".repeat(200));
    }
    fs::create_dir_all(&dest).unwrap();
    let target = dest.join("out");
    let err = extract_code(&code, &target).unwrap_err();
    assert!(matches!(err, PackageError::Io { .. }), "{err}");
    assert!(!target.exists(), "the partial destination was removed");
    assert_eq!(listing(&dest), Vec::<String>::new());

    // With a pre-existing empty destination, it is emptied again (and kept).
    fs::create_dir(&target).unwrap();
    let err = extract_code(&code, &target).unwrap_err();
    assert!(matches!(err, PackageError::Io { .. }), "{err}");
    assert_eq!(listing(&target), Vec::<String>::new());
}

#[test]
fn parsed_package_code_extracts_like_the_source() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("lib")).unwrap();
    fs::write(src.path().join("lib/a.js"), b"module.exports = 1;\n").unwrap();
    fs::write(src.path().join("package.json"), b"{\"name\":\"cc\"}").unwrap();
    let bytes = package_directory(src.path(), "nodecc_1", "node").unwrap();
    let package = ChaincodePackage::parse(&bytes).unwrap();
    assert_eq!(package.metadata().chaincode_type, "node");
    let out = tempfile::tempdir().unwrap();
    let dest: PathBuf = out.path().join("src");
    extract_code(package.code_archive(), &dest).unwrap();
    assert_eq!(
        listing(&dest),
        ["src", "src/lib", "src/lib/a.js", "src/package.json"]
    );
    assert_eq!(
        fs::read(dest.join("src/lib/a.js")).unwrap(),
        b"module.exports = 1;\n"
    );
}
