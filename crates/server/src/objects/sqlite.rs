//! The objects in one SQLite file: the embedded default, nothing to install.
//!
//! Tables `objects` (one row per object), `changes` (the change log, by revision) and
//! `meta` (the counters). WAL mode with `synchronous=FULL`: a write that was answered
//! survives a crash of the process or of the machine. A transaction is a savepoint; a
//! batch ([`Backend::begin_batch`]) is one immediate transaction holding many of them,
//! so many writers share one wait for the disk.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Row as SqlRow, params};
use serde_json::Value;

use super::{Backend, ChangeType, Filter, Logged, Meta, Row, Tx, parse_json, resource_of};
use crate::error::ObjectsError;
use crate::kinds::{ObjectKey, Resource};

/// The SQLite backend.
#[derive(Debug)]
pub struct SqliteObjects {
    db: Connection,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn json(text: &str) -> Result<Value, ObjectsError> {
    parse_json(text.as_bytes())
}

impl SqliteObjects {
    /// Opens (creating when absent) the store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a Plinth object store.
    pub fn open(path: &Path) -> Result<Self, ObjectsError> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;",
        )?;
        let has = |table: &str, column: &str| -> rusqlite::Result<bool> {
            db.query_row(
                "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
                [table, column],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        };
        // A store written before workloads were keyed by their guest cluster: the key
        // gains the cluster, read from each object's `plinth.dev/cluster` label, and each
        // object its creation revision (its last write's, the closest the store knows).
        if has("objects", "name")? && !has("objects", "cluster")? {
            db.execute_batch(
                "BEGIN IMMEDIATE;
                 ALTER TABLE objects RENAME TO objects_unclustered;
                 DROP INDEX IF EXISTS objects_by_revision;",
            )?;
            db.execute_batch(OBJECTS_TABLE)?;
            db.execute_batch(
                "INSERT INTO objects
                     SELECT resource,
                            COALESCE(json_extract(body, '$.metadata.labels.\"plinth.dev/cluster\"'), ''),
                            namespace, name, revision, generation, revision, body, status
                     FROM objects_unclustered;
                 DROP TABLE objects_unclustered;
                 ALTER TABLE changes ADD COLUMN cluster TEXT NOT NULL DEFAULT '';
                 COMMIT;",
            )?;
        }
        db.execute_batch(OBJECTS_TABLE)?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS changes (
                 revision INTEGER PRIMARY KEY NOT NULL,
                 resource TEXT NOT NULL,
                 namespace TEXT NOT NULL,
                 name TEXT NOT NULL,
                 type TEXT NOT NULL,
                 object TEXT NOT NULL,
                 cluster TEXT NOT NULL DEFAULT ''
             ) STRICT;
             CREATE TABLE IF NOT EXISTS meta (
                 key TEXT PRIMARY KEY NOT NULL,
                 value INTEGER NOT NULL
             ) STRICT;
             CREATE INDEX IF NOT EXISTS objects_by_revision ON objects (resource, revision);",
        )?;
        Ok(Self { db })
    }
}

/// The objects, one row each, keyed by resource, guest cluster, namespace and name.
const OBJECTS_TABLE: &str = "CREATE TABLE IF NOT EXISTS objects (
        resource TEXT NOT NULL,
        cluster TEXT NOT NULL,
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        revision INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        created INTEGER NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        PRIMARY KEY (resource, cluster, namespace, name)
    ) STRICT;";

impl Backend for SqliteObjects {
    fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ObjectsError>,
    ) -> Result<(), ObjectsError> {
        let savepoint = self.db.savepoint()?;
        f(&mut SqliteTx(&savepoint))?;
        savepoint.commit()?;
        Ok(())
    }

    fn begin_batch(&mut self) -> Result<(), ObjectsError> {
        Ok(self.db.execute_batch("BEGIN IMMEDIATE")?)
    }

    fn end_batch(&mut self, keep: bool) -> Result<(), ObjectsError> {
        let ended = if keep {
            self.db.execute_batch("COMMIT")
        } else {
            self.db.execute_batch("ROLLBACK")
        };
        if ended.is_err() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
        Ok(ended?)
    }
}

/// A transaction: a savepoint of the connection.
struct SqliteTx<'a>(&'a Connection);

/// An `objects` row from the columns `resource, cluster, namespace, name, revision,
/// generation, created, body, status`.
type ObjectColumns = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    String,
);

fn object_row(r: &SqlRow<'_>) -> rusqlite::Result<ObjectColumns> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn decode_object(
    (resource, cluster, namespace, name, revision, generation, created, body, status): ObjectColumns,
) -> Result<(ObjectKey, Row), ObjectsError> {
    Ok((
        ObjectKey {
            resource: resource_of(&resource)?,
            cluster,
            namespace,
            name,
        },
        Row {
            revision: to_u64(revision),
            generation: to_u64(generation),
            created: to_u64(created),
            body: json(&body)?,
            status: json(&status)?,
        },
    ))
}

const OBJECT_COLUMNS: &str = "SELECT resource, cluster, namespace, name, revision, generation, created, body, status FROM objects";

impl Tx for SqliteTx<'_> {
    fn meta(&mut self, key: Meta) -> Result<u64, ObjectsError> {
        Ok(self
            .0
            .query_row("SELECT value FROM meta WHERE key = ?1", [key.name()], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map_or(0, to_u64))
    }

    fn set_meta(&mut self, key: Meta, value: u64) -> Result<(), ObjectsError> {
        self.0.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key.name(), to_i64(value)],
        )?;
        Ok(())
    }

    fn row(&mut self, key: &ObjectKey) -> Result<Option<Row>, ObjectsError> {
        let row = self
            .0
            .query_row(
                &format!(
                    "{OBJECT_COLUMNS} WHERE resource = ?1 AND cluster = ?2 AND namespace = ?3 AND name = ?4"
                ),
                params![key.resource.info().plural, key.cluster, key.namespace, key.name],
                object_row,
            )
            .optional()?;
        Ok(row.map(decode_object).transpose()?.map(|(_, r)| r))
    }

    fn put_row(&mut self, key: &ObjectKey, row: &Row) -> Result<(), ObjectsError> {
        self.0.execute(
            "INSERT INTO objects
                 (resource, cluster, namespace, name, revision, generation, created, body, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (resource, cluster, namespace, name) DO UPDATE SET
                 revision = excluded.revision, generation = excluded.generation,
                 created = excluded.created, body = excluded.body, status = excluded.status",
            params![
                key.resource.info().plural,
                key.cluster,
                key.namespace,
                key.name,
                to_i64(row.revision),
                to_i64(row.generation),
                to_i64(row.created),
                row.body.to_string(),
                row.status.to_string()
            ],
        )?;
        Ok(())
    }

    fn remove_row(&mut self, key: &ObjectKey) -> Result<(), ObjectsError> {
        self.0.execute(
            "DELETE FROM objects
             WHERE resource = ?1 AND cluster = ?2 AND namespace = ?3 AND name = ?4",
            params![
                key.resource.info().plural,
                key.cluster,
                key.namespace,
                key.name
            ],
        )?;
        Ok(())
    }

    fn rows(&mut self, filter: &Filter) -> Result<Vec<(ObjectKey, Row)>, ObjectsError> {
        let mut query = self.0.prepare_cached(&format!(
            "{OBJECT_COLUMNS} WHERE (?1 IS NULL OR resource = ?1) AND (?2 IS NULL OR cluster = ?2)
               AND (?3 IS NULL OR namespace = ?3) AND (?4 IS NULL OR name = ?4)"
        ))?;
        let rows = query.query_map(
            params![
                filter.resource.map(|r| r.info().plural),
                filter.cluster,
                filter.namespace,
                filter.name
            ],
            object_row,
        )?;
        rows.map(|r| decode_object(r?)).collect()
    }

    fn log(&mut self, change: &Logged) -> Result<(), ObjectsError> {
        self.0.execute(
            "INSERT INTO changes (revision, resource, cluster, namespace, name, type, object)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                to_i64(change.revision),
                change.resource,
                change.cluster,
                change.namespace,
                change.name,
                change.kind.as_str(),
                change.object.to_string()
            ],
        )?;
        Ok(())
    }

    fn changes(&mut self, after: u64, limit: usize) -> Result<Vec<Logged>, ObjectsError> {
        let mut query = self.0.prepare_cached(
            "SELECT revision, resource, cluster, namespace, name, type, object FROM changes
             WHERE revision > ?1 ORDER BY revision LIMIT ?2",
        )?;
        let rows = query.query_map(
            params![to_i64(after), i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )?;
        rows.map(|row| {
            let (revision, resource, cluster, namespace, name, kind, object) = row?;
            Ok(Logged {
                revision: to_u64(revision),
                resource,
                cluster,
                namespace,
                name,
                kind: ChangeType::parse(&kind)
                    .ok_or_else(|| ObjectsError::Corrupt(format!("change type `{kind}`")))?,
                object: json(&object)?,
            })
        })
        .collect()
    }

    fn forget_changes(&mut self, revision: u64) -> Result<(), ObjectsError> {
        self.0.execute(
            "DELETE FROM changes WHERE revision <= ?1",
            [to_i64(revision)],
        )?;
        Ok(())
    }

    fn prune_events(&mut self, keep: u64) -> Result<(), ObjectsError> {
        // Count first (on the index), and prune only past a margin: most writes delete
        // nothing.
        let count: i64 = self.0.query_row(
            "SELECT COUNT(*) FROM objects WHERE resource = ?1",
            [Resource::Event.info().plural],
            |r| r.get(0),
        )?;
        if to_u64(count) <= keep + keep / 10 {
            return Ok(());
        }
        self.0.execute(
            "DELETE FROM objects WHERE resource = ?1 AND revision <= (
                 SELECT revision FROM objects WHERE resource = ?1
                 ORDER BY revision DESC LIMIT 1 OFFSET ?2)",
            params![Resource::Event.info().plural, to_i64(keep)],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::{Filter, Objects};

    #[test]
    fn a_store_from_before_guest_clusters_were_keyed_opens_with_each_workloads_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("objects.db");
        let old = Connection::open(&path).expect("open");
        old.execute_batch(
            r#"CREATE TABLE objects (
                   resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                   revision INTEGER NOT NULL, generation INTEGER NOT NULL,
                   body TEXT NOT NULL, status TEXT NOT NULL,
                   PRIMARY KEY (resource, namespace, name)) STRICT;
               CREATE TABLE changes (
                   revision INTEGER PRIMARY KEY NOT NULL, resource TEXT NOT NULL,
                   namespace TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
                   object TEXT NOT NULL) STRICT;
               CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) STRICT;
               INSERT INTO objects VALUES ('deployments', 'shop', 'storefront', 1, 1,
                   '{"kind":"Deployment","metadata":{"name":"storefront","namespace":"shop","labels":{"plinth.dev/cluster":"prod"}}}', '{}');
               INSERT INTO objects VALUES ('clusters', '', 'prod', 2, 1,
                   '{"kind":"Cluster","metadata":{"name":"prod"}}', '{}');
               INSERT INTO changes VALUES (2, 'clusters', '', 'prod', 'ADDED', '{}');
               INSERT INTO meta VALUES ('revision', 2);"#,
        )
        .expect("an old store");
        drop(old);
        let mut objects = Objects::sqlite(&path).expect("migrated");
        let (all, revision) = objects
            .transact(|t| t.list(&Filter::default()))
            .expect("list");
        let keys: Vec<(&str, &str)> = all
            .iter()
            .map(|(k, _)| (k.cluster.as_str(), k.name.as_str()))
            .collect();
        assert_eq!(keys, [("", "prod"), ("prod", "storefront")]);
        assert_eq!(revision, 2);
        let (changes, _) = objects
            .transact(|t| t.changes_since(0, &Filter::default(), 10))
            .expect("changes");
        assert_eq!(changes.len(), 1, "the change log is kept");
        // Opened again, nothing more to migrate.
        drop(objects);
        Objects::sqlite(&path).expect("opens again");
    }
}
