//! The world-state database on a real RocksDB in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use weft_ledger::{StateDb, StateError, UpdateBatch, Version};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn writes_versions_deletes_and_savepoint_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = StateDb::open(dir.path()).unwrap();
        assert_eq!(db.savepoint().unwrap(), None);
        let mut batch = UpdateBatch::new();
        batch.put(
            "asset",
            "a1",
            b("{\"ID\":\"a1\"}"),
            b("policy"),
            Version::new(1, 0),
        );
        batch.put("asset", "a2", b("two"), Bytes::new(), Version::new(1, 1));
        db.apply(batch, Version::new(1, 1), true).await.unwrap();

        let mut batch = UpdateBatch::new();
        batch.delete("asset", "a2");
        batch.put("asset", "a1", b("new"), Bytes::new(), Version::new(2, 0));
        db.apply(batch, Version::new(2, 0), true).await.unwrap();
    }
    let db = StateDb::open(dir.path()).unwrap();
    assert_eq!(db.savepoint().unwrap(), Some(Version::new(2, 0)));
    let view = db.read().await;
    let a1 = view.get("asset", "a1").unwrap().unwrap();
    assert_eq!(
        (a1.value, a1.metadata, a1.version),
        (b("new"), Bytes::new(), Version::new(2, 0))
    );
    assert!(view.get("asset", "a2").unwrap().is_none());
    assert!(view.get("other", "a1").unwrap().is_none());
}

#[tokio::test]
async fn ranges_stay_inside_their_namespace_and_order_composite_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let mut batch = UpdateBatch::new();
    for (ns, key) in [
        ("a", "k1"),
        ("a", "k2"),
        ("a", "k3"),
        ("ab", "k0"), // a namespace that shares a prefix
        ("a", "\u{0}color\u{0}blue\u{0}a1\u{0}"),
        ("a", "\u{0}color\u{0}red\u{0}a2\u{0}"),
        ("b", "k1"),
    ] {
        batch.put(ns, key, b(key), Bytes::new(), Version::new(1, 0));
    }
    db.apply(batch, Version::new(1, 0), false).await.unwrap();
    let view = db.read().await;
    let keys = |start: &str, end: &str, limit: usize| {
        view.range("a", start, end, limit)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    assert_eq!(keys("k1", "k3", 100), ["k1", "k2"], "end is exclusive");
    assert_eq!(
        keys("k2", "", 100),
        ["k2", "k3"],
        "empty end runs to the end of the namespace"
    );
    assert_eq!(keys("k1", "", 1), ["k1"], "limit");
    let all = keys("", "", 100);
    assert_eq!(all.len(), 5, "no keys of 'ab' or 'b': {all:?}");
    assert_eq!(
        keys("\u{0}color\u{0}", "\u{0}color\u{0}\u{10FFFF}", 100),
        [
            "\u{0}color\u{0}blue\u{0}a1\u{0}",
            "\u{0}color\u{0}red\u{0}a2\u{0}"
        ]
    );
}

#[tokio::test]
async fn a_commit_waits_for_open_read_views() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let mut batch = UpdateBatch::new();
    batch.put("cc", "k", b("v1"), Bytes::new(), Version::new(1, 0));
    db.apply(batch, Version::new(1, 0), false).await.unwrap();

    let view = db.read().await;
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut batch = UpdateBatch::new();
            batch.put("cc", "k", b("v2"), Bytes::new(), Version::new(2, 0));
            db.apply(batch, Version::new(2, 0), false).await.unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The simulation still sees one consistent state.
    assert_eq!(view.get("cc", "k").unwrap().unwrap().value, b("v1"));
    assert!(
        !writer.is_finished(),
        "the commit must wait for the read view"
    );
    drop(view);
    tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        db.read().await.get("cc", "k").unwrap().unwrap().value,
        b("v2")
    );
}

#[tokio::test]
async fn bad_namespaces_and_a_locked_database_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let view = db.read().await;
    assert!(matches!(
        view.get("", "k"),
        Err(StateError::BadNamespace(_))
    ));
    assert!(matches!(
        view.get("a\u{0}b", "k"),
        Err(StateError::BadNamespace(_))
    ));
    drop(view);
    let e = StateDb::open(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("cannot open") && e.contains("another weft process"),
        "{e}"
    );
}
