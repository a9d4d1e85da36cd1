//! The SQLite store keeps what a step wrote across a reopen, refuses a write that does not
//! build on the stored version (keeping nothing of that step), and round-trips every key kind.

use plinth_control::CommandId;
use plinth_control::store::{Key, Store, StoreError, Write};
use plinth_store::SqliteStore;

fn put(key: Key, version: u64, value: &[u8]) -> Write {
    Write {
        key,
        version,
        value: Some(value.to_vec()),
    }
}

#[test]
fn records_survive_a_reopen_and_a_stale_step_keeps_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("control.db");
    let keys = [
        Key::Meta,
        Key::Host("h1".into()),
        Key::Vm("apps-workers-0".into()),
        Key::Command(CommandId(7)),
        Key::Retry(3),
        Key::Cluster("apps".into()),
        Key::Failure(0),
        Key::Condition("vm/apps-cp-0".into()),
    ];
    {
        let mut store = SqliteStore::open(&path).expect("opens");
        let writes: Vec<Write> = keys.iter().map(|k| put(k.clone(), 1, b"one")).collect();
        store.write(&writes).expect("first step");
        // Deleting builds on the version too.
        store
            .write(&[Write {
                key: Key::Retry(3),
                version: 2,
                value: None,
            }])
            .expect("delete");
    }
    let mut store = SqliteStore::open(&path).expect("reopens");
    let records = store.load().expect("loads");
    assert_eq!(records.len(), keys.len() - 1);
    assert!(!records.contains_key(&Key::Retry(3)));
    assert_eq!(
        records[&Key::Condition("vm/apps-cp-0".into())].value,
        b"one"
    );

    // One write of the step is stale: none of the step is kept.
    let err = store
        .write(&[
            put(Key::Host("h1".into()), 2, b"two"),
            put(Key::Meta, 1, b"again"),
        ])
        .expect_err("stale");
    assert!(
        matches!(err, StoreError::Conflict { found: 1, .. }),
        "{err}"
    );
    let records = store.load().expect("loads");
    assert_eq!(records[&Key::Host("h1".into())].value, b"one");
    assert_eq!(records[&Key::Host("h1".into())].version, 1);
}

#[test]
fn a_file_that_is_not_a_store_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage.db");
    std::fs::write(
        &path,
        b"not a database, just some bytes that go on for a while......",
    )
    .expect("writes");
    assert!(matches!(
        SqliteStore::open(&path),
        Err(StoreError::Backend(_))
    ));
}
