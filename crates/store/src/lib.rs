//! Durable control-plane records in SQLite (bundled, no server to set up).
//!
//! One table `records(key TEXT PRIMARY KEY, version INTEGER, value BLOB)`. A step's writes
//! go in one immediate transaction: each must build on the version stored (optimistic
//! concurrency, as etcd's revisions), else nothing of the step is kept. Keys are
//! [`Key`]s in their text form; the values are the control plane's own encoding, opaque
//! here. The database runs in WAL mode with `synchronous=FULL`: a step reported written
//! survives a power cut.

use std::collections::BTreeMap;
use std::path::Path;

use plinth_control::store::{Key, MAX_RECORD_BYTES, Store, StoreError, Versioned, Write};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// A [`Store`] in one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    db: Connection,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl SqliteStore {
    /// Opens (creating when absent) the store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a Plinth store.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Connection::open(path).map_err(backend)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS records (
                 key TEXT PRIMARY KEY NOT NULL,
                 version INTEGER NOT NULL,
                 value BLOB NOT NULL
             ) STRICT;",
        )
        .map_err(backend)?;
        Ok(Self { db })
    }
}

impl Store for SqliteStore {
    fn load(&self) -> Result<BTreeMap<Key, Versioned>, StoreError> {
        let mut query = self
            .db
            .prepare("SELECT key, version, value FROM records")
            .map_err(backend)?;
        let rows = query
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                ))
            })
            .map_err(backend)?;
        let mut records = BTreeMap::new();
        for row in rows {
            let (text, version, value) = row.map_err(backend)?;
            let key = Key::parse(&text).ok_or_else(|| StoreError::Unknown {
                key: text.clone(),
                what: "record kind".to_owned(),
            })?;
            records.insert(
                key,
                Versioned {
                    version: u64::try_from(version).unwrap_or(0),
                    value,
                },
            );
        }
        Ok(records)
    }

    fn write(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        for w in writes {
            let key = w.key.to_string();
            let found: u64 = tx
                .query_row(
                    "SELECT version FROM records WHERE key = ?1",
                    params![key],
                    |row| row.get::<_, i64>(0),
                )
                .optional()
                .map_err(backend)?
                .map_or(0, |v| u64::try_from(v).unwrap_or(0));
            if w.version != found.saturating_add(1) {
                return Err(StoreError::Conflict {
                    key,
                    expected: w.version.saturating_sub(1),
                    found,
                });
            }
            match &w.value {
                Some(value) if value.len() > MAX_RECORD_BYTES => {
                    return Err(StoreError::TooLarge {
                        key,
                        bytes: value.len(),
                    });
                }
                Some(value) => {
                    let version = i64::try_from(w.version).map_err(|_| StoreError::Conflict {
                        key: key.clone(),
                        expected: w.version,
                        found,
                    })?;
                    tx.execute(
                        "INSERT INTO records (key, version, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT(key) DO UPDATE SET version = ?2, value = ?3",
                        params![key, version, value],
                    )
                    .map_err(backend)?;
                }
                None => {
                    tx.execute("DELETE FROM records WHERE key = ?1", params![key])
                        .map_err(backend)?;
                }
            }
        }
        tx.commit().map_err(backend)
    }
}
