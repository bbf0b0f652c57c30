//! The world-state database on a real RocksDB in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use weft_ledger::{HistoryEntry, StateDb, StateError, UpdateBatch, Version};

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

fn put_entry(tx_id: &str, value: &str) -> HistoryEntry {
    HistoryEntry {
        tx_id: tx_id.into(),
        timestamp: Some((1_700_000_000, 42)),
        is_delete: false,
        value: b(value),
    }
}

fn delete_entry(tx_id: &str) -> HistoryEntry {
    HistoryEntry {
        tx_id: tx_id.into(),
        timestamp: None,
        is_delete: true,
        value: Bytes::new(),
    }
}

/// Commit one block: a put (or delete) of each `(ns, key, value)` at `(block, tx index)`, with
/// its history entry.
async fn commit(db: &StateDb, block: u64, writes: &[(&str, &str, Option<&str>)]) {
    let mut batch = UpdateBatch::new();
    for (tx, (ns, key, value)) in writes.iter().enumerate() {
        let version = Version::new(block, tx as u64);
        let tx_id = format!("tx{block}.{tx}");
        match value {
            Some(v) => {
                batch.put(ns, key, b(v), Bytes::new(), version);
                batch.add_history(ns, key, version, put_entry(&tx_id, v));
            }
            None => {
                batch.delete(ns, key);
                batch.add_history(ns, key, version, delete_entry(&tx_id));
            }
        }
    }
    db.apply(batch, Version::new(block, writes.len() as u64), false)
        .await
        .unwrap();
}

fn tx_ids(history: &[(Version, HistoryEntry)]) -> Vec<&str> {
    history.iter().map(|(_, e)| e.tx_id.as_str()).collect()
}

#[tokio::test]
async fn history_is_newest_first_records_deletes_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = StateDb::open(dir.path()).unwrap();
        assert!(db
            .read()
            .await
            .history("mycc", "k", None, 10)
            .unwrap()
            .is_empty());
        commit(&db, 1, &[("mycc", "k", Some("v1"))]).await;
        commit(
            &db,
            2,
            &[("mycc", "other", Some("x")), ("mycc", "k", Some("v2"))],
        )
        .await;
        commit(&db, 3, &[("mycc", "k", None)]).await;
        commit(&db, 4, &[("mycc", "k", Some("v4"))]).await;
        let view = db.read().await;
        let h = view.history("mycc", "k", None, 10).unwrap();
        assert_eq!(tx_ids(&h), ["tx4.0", "tx3.0", "tx2.1", "tx1.0"]);
        assert_eq!(
            h[1],
            (
                Version::new(3, 0),
                HistoryEntry {
                    tx_id: "tx3.0".into(),
                    timestamp: None,
                    is_delete: true,
                    value: Bytes::new(),
                }
            )
        );
        assert_eq!(h[2], (Version::new(2, 1), put_entry("tx2.1", "v2")));
        assert!(view.get("mycc", "k").unwrap().is_some());
    }
    // History is durable and atomic with the state it describes.
    let db = StateDb::open(dir.path()).unwrap();
    assert_eq!(db.savepoint().unwrap(), Some(Version::new(4, 1)));
    let view = db.read().await;
    let h = view.history("mycc", "k", None, 10).unwrap();
    assert_eq!(
        h.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
        [
            Version::new(4, 0),
            Version::new(3, 0),
            Version::new(2, 1),
            Version::new(1, 0)
        ]
    );
    assert_eq!(h[0].1, put_entry("tx4.0", "v4"));
    assert!(h[1].1.is_delete && h[1].1.value.is_empty());
    assert_eq!(
        tx_ids(&view.history("mycc", "other", None, 10).unwrap()),
        ["tx2.0"]
    );
}

#[tokio::test]
async fn history_pages_with_before_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    for block in 1..=3 {
        // Two modifications of `k` per block, at tx 0 and tx 1.
        commit(
            &db,
            block,
            &[("cc", "k", Some("a")), ("cc", "k", Some("b"))],
        )
        .await;
    }
    let view = db.read().await;
    let all = ["tx3.1", "tx3.0", "tx2.1", "tx2.0", "tx1.1", "tx1.0"];
    assert_eq!(tx_ids(&view.history("cc", "k", None, 100).unwrap()), all);
    assert!(view.history("cc", "k", None, 0).unwrap().is_empty());

    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = view.history("cc", "k", before, 4).unwrap();
        assert!(page.len() <= 4);
        let Some((last, _)) = page.last() else { break };
        before = Some(*last);
        paged.extend(page.into_iter().map(|(_, e)| e.tx_id));
    }
    assert_eq!(paged, all);

    assert_eq!(
        tx_ids(
            &view
                .history("cc", "k", Some(Version::new(2, 1)), 2)
                .unwrap()
        ),
        ["tx2.0", "tx1.1"],
        "before is exclusive"
    );
    assert_eq!(
        tx_ids(
            &view
                .history("cc", "k", Some(Version::new(2, 5)), 100)
                .unwrap()
        ),
        ["tx2.1", "tx2.0", "tx1.1", "tx1.0"],
        "before need not be an existing entry"
    );
    assert!(view
        .history("cc", "k", Some(Version::new(1, 0)), 100)
        .unwrap()
        .is_empty());
    assert_eq!(
        tx_ids(
            &view
                .history("cc", "k", Some(Version::new(u64::MAX, u64::MAX)), 1)
                .unwrap()
        ),
        ["tx3.1"]
    );
}

#[tokio::test]
async fn history_is_isolated_between_keys_and_namespaces() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let keys = [
        ("mycc", "a"),
        ("mycc", "a\u{0}b"),
        ("mycc", "ab"),
        ("mycc", ""),
        ("mycc", "\u{0}color\u{0}blue\u{0}a1\u{0}"),
        ("mycc", "\u{0}color\u{0}blue\u{0}"),
        ("mycc", "\u{0}color\u{0}blue\u{0}a1\u{0}\u{0}"),
        ("mycc2", "a"),
        ("myc", "ca"),
        ("mycc", "b"),
    ];
    // Each key is modified in every block, interleaving their entries.
    for block in 1..=2 {
        let writes: Vec<_> = keys
            .iter()
            .map(|(ns, key)| (*ns, *key, Some("v")))
            .collect();
        commit(&db, block, &writes).await;
    }
    let view = db.read().await;
    for (i, (ns, key)) in keys.iter().enumerate() {
        let h = view.history(ns, key, None, 100).unwrap();
        assert_eq!(
            h.iter().map(|(v, _)| *v).collect::<Vec<_>>(),
            [Version::new(2, i as u64), Version::new(1, i as u64)],
            "history of {ns}/{key:?}"
        );
    }
    assert!(view
        .history("mycc", "\u{0}color\u{0}", None, 100)
        .unwrap()
        .is_empty());
    assert!(view
        .history("mycc", "a\u{0}", None, 100)
        .unwrap()
        .is_empty());
    assert!(view.history("mycc3", "a", None, 100).unwrap().is_empty());
    assert!(matches!(
        view.history("", "a", None, 1),
        Err(StateError::BadNamespace(_))
    ));
    assert!(matches!(
        view.history("my\u{0}cc", "a", None, 1),
        Err(StateError::BadNamespace(_))
    ));
}

#[tokio::test]
async fn a_history_only_batch_and_a_bad_namespace_in_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let mut batch = UpdateBatch::new();
    batch.add_history("cc", "k", Version::new(1, 0), put_entry("t", "v"));
    assert!(batch.is_empty(), "len/is_empty count state writes only");
    db.apply(batch, Version::new(1, 0), false).await.unwrap();
    assert_eq!(
        db.read().await.history("cc", "k", None, 10).unwrap(),
        [(Version::new(1, 0), put_entry("t", "v"))]
    );

    // A delete's value is not kept, whatever the caller passed.
    let mut batch = UpdateBatch::new();
    let mut del = delete_entry("d");
    del.value = b("ignored");
    batch.add_history("cc", "k", Version::new(2, 0), del);
    db.apply(batch, Version::new(2, 0), false).await.unwrap();
    assert_eq!(
        db.read().await.history("cc", "k", None, 1).unwrap(),
        [(Version::new(2, 0), delete_entry("d"))]
    );

    let mut batch = UpdateBatch::new();
    batch.put("cc", "k", b("v3"), Bytes::new(), Version::new(3, 0));
    batch.add_history("", "k", Version::new(3, 0), put_entry("t3", "v3"));
    assert!(matches!(
        db.apply(batch, Version::new(3, 0), false).await,
        Err(StateError::BadNamespace(_))
    ));
    assert_eq!(
        db.savepoint().unwrap(),
        Some(Version::new(2, 0)),
        "nothing applied"
    );
    assert!(db.read().await.get("cc", "k").unwrap().is_none());
}

#[tokio::test]
async fn a_corrupt_history_entry_is_reported_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = StateDb::open(dir.path()).unwrap();
        commit(&db, 1, &[("cc", "k", Some("v"))]).await;
    }
    {
        // Garble the stored entry, at its pinned key (see the storage layout).
        let raw = rocksdb::DB::open_default(dir.path()).unwrap();
        let key = [
            &b"kcc\x00"[..],
            &1u32.to_be_bytes(),
            b"k",
            &1u64.to_be_bytes(),
            &0u64.to_be_bytes(),
        ]
        .concat();
        assert!(raw.get(&key).unwrap().is_some(), "the layout is as pinned");
        raw.put(&key, [0x01, 0x00, 0x00]).unwrap();
    }
    let db = StateDb::open(dir.path()).unwrap();
    let view = db.read().await;
    let e = view.history("cc", "k", None, 10).unwrap_err();
    assert!(matches!(e, StateError::Corrupt { .. }), "{e:?}");
    assert!(e.to_string().contains("tx id length"), "{e}");
}

#[tokio::test]
async fn history_covers_the_whole_version_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let mut batch = UpdateBatch::new();
    for (i, v) in [
        Version::new(0, 0),
        Version::new(0xff00_0000_0000_0000, 0),
        Version::new(u64::MAX, u64::MAX),
    ]
    .into_iter()
    .enumerate()
    {
        batch.add_history("cc", "k", v, put_entry(&format!("t{i}"), "v"));
    }
    db.apply(batch, Version::new(1, 0), false).await.unwrap();
    let view = db.read().await;
    assert_eq!(
        tx_ids(&view.history("cc", "k", None, 10).unwrap()),
        ["t2", "t1", "t0"]
    );
    assert_eq!(
        tx_ids(
            &view
                .history("cc", "k", Some(Version::new(u64::MAX, u64::MAX)), 10)
                .unwrap()
        ),
        ["t1", "t0"]
    );
}
