//! The API's objects in SQLite: desired state as users wrote it, status and reported
//! objects as the control plane wrote them, and the log of changes that `watch` reads.
//!
//! Every write takes the next value of one revision counter (etcd's model): an object's
//! `metadata.resourceVersion` is the revision of its last write, and a watch from revision
//! R is the changes after R in order. A write that names a `resourceVersion` other than
//! the stored one is refused (optimistic concurrency). Each call is one immediate
//! transaction in WAL mode with `synchronous=FULL`: a write that was answered survives a
//! crash of the process or of the machine. The change log keeps the newest
//! [`Objects::KEEP_CHANGES`] changes; a watch from before them is told to list again.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::ObjectsError;
use crate::kinds::{ObjectKey, Resource, TABLE, Writer};

/// What happened to an object, as a watch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeType {
    /// Created.
    Added,
    /// Spec or status changed.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "ADDED" => Some(Self::Added),
            "MODIFIED" => Some(Self::Modified),
            "DELETED" => Some(Self::Deleted),
            _ => None,
        }
    }
}

/// One entry of the change log: a watch event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: ChangeType,
    /// The object after the change (before it, for a deletion), at the change's revision.
    pub object: Value,
    /// The revision of the change.
    #[serde(skip)]
    pub revision: u64,
    /// The object's key.
    #[serde(skip)]
    pub key: ObjectKey,
}

/// How an applied object compares with what was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// It was not there.
    Created,
    /// Its spec changed.
    Configured,
    /// Identical to what was stored: nothing written.
    Unchanged,
}

/// One object of an apply, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The object.
    pub key: ObjectKey,
    /// What became of it.
    pub outcome: Outcome,
    /// Its resourceVersion after the apply.
    pub resource_version: u64,
}

/// One write of a group commit ([`Objects::group`]): whether it succeeded, and what it
/// keeps for its caller.
pub type GroupedWrite<T> = Box<dyn FnOnce(&mut Objects) -> (bool, T) + Send>;

/// An object the control plane reports: its key, body and status.
pub type Reported = (ObjectKey, Value, Value);

/// Which objects a list or watch covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One resource, or every one.
    pub resource: Option<Resource>,
    /// One namespace, or every one.
    pub namespace: Option<String>,
    /// One object, or every one.
    pub name: Option<String>,
}

impl Filter {
    fn matches(&self, key: &ObjectKey) -> bool {
        self.resource.is_none_or(|r| r == key.resource)
            && self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self.name.as_ref().is_none_or(|n| *n == key.name)
    }
}

/// A stored object's row.
struct Row {
    revision: u64,
    generation: u64,
    body: Value,
    status: Value,
}

/// The object store.
#[derive(Debug)]
pub struct Objects {
    db: Connection,
}

fn resource_of(plural: &str) -> Result<Resource, ObjectsError> {
    TABLE
        .iter()
        .find(|i| i.plural == plural)
        .map(|i| i.resource)
        .ok_or_else(|| ObjectsError::Corrupt(format!("unknown resource `{plural}` stored")))
}

fn parse_json(text: &str) -> Result<Value, ObjectsError> {
    serde_json::from_str(text).map_err(|e| ObjectsError::Corrupt(format!("stored JSON: {e}")))
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// What a user wrote, without what the server owns: `status` and the server-set metadata.
pub fn desired(object: &Value) -> Value {
    let mut body = object.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for owned in [
                "resourceVersion",
                "generation",
                "uid",
                "creationTimestamp",
                "managedFields",
            ] {
                meta.remove(owned);
            }
        }
    }
    body
}

/// The `metadata.resourceVersion` an object names, if any: the version it was read at.
///
/// # Errors
/// When it is not a decimal revision.
pub fn named_version(object: &Value) -> Result<Option<u64>, String> {
    match object.pointer("/metadata/resourceVersion") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            format!("metadata.resourceVersion `{s}` is not a resourceVersion this server gave")
        }),
        Some(other) => Err(format!(
            "metadata.resourceVersion must be a string, not {other}"
        )),
    }
}

/// The object as served: the body with the server's metadata and the status.
fn served(body: &Value, revision: u64, generation: u64, status: &Value) -> Value {
    let mut object = body.clone();
    if let Some(map) = object.as_object_mut() {
        let meta = map
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), json!(revision.to_string()));
            meta.insert("generation".into(), json!(generation));
        }
        if status.as_object().is_some_and(|s| !s.is_empty()) {
            map.insert("status".into(), status.clone());
        }
    }
    object
}

impl Objects {
    /// Changes kept for watches; older ones are compacted away.
    pub const KEEP_CHANGES: u64 = 10_000;
    /// Events kept; older ones are pruned (without a change: events expire, as in
    /// Kubernetes).
    pub const KEEP_EVENTS: u64 = 2_000;

    /// Opens (creating when absent) the store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a Plinth object store.
    pub fn open(path: &Path) -> Result<Self, ObjectsError> {
        let db = Connection::open(path)?;
        db.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS objects (
                 resource TEXT NOT NULL,
                 namespace TEXT NOT NULL,
                 name TEXT NOT NULL,
                 revision INTEGER NOT NULL,
                 generation INTEGER NOT NULL,
                 body TEXT NOT NULL,
                 status TEXT NOT NULL,
                 PRIMARY KEY (resource, namespace, name)
             ) STRICT;
             CREATE TABLE IF NOT EXISTS changes (
                 revision INTEGER PRIMARY KEY NOT NULL,
                 resource TEXT NOT NULL,
                 namespace TEXT NOT NULL,
                 name TEXT NOT NULL,
                 type TEXT NOT NULL,
                 object TEXT NOT NULL
             ) STRICT;
             CREATE TABLE IF NOT EXISTS meta (
                 key TEXT PRIMARY KEY NOT NULL,
                 value INTEGER NOT NULL
             ) STRICT;",
        )?;
        Ok(Self { db })
    }

    /// Runs `writes` in one transaction, each all or none on its own (a savepoint, undone
    /// when the write says it failed): one commit, so one wait for the disk, for many
    /// writers (group commit). What each write returned, and whether the commit
    /// succeeded: a write's effect is durable only then.
    pub fn group<T>(&mut self, writes: Vec<GroupedWrite<T>>) -> (Vec<T>, Result<(), ObjectsError>) {
        let mut kept = Vec::with_capacity(writes.len());
        if let Err(e) = self.db.execute_batch("BEGIN IMMEDIATE") {
            return (kept, Err(e.into()));
        }
        let mut failed = None;
        for write in writes {
            if let Err(e) = self.db.execute_batch("SAVEPOINT write") {
                failed.get_or_insert(e);
            }
            let (ok, value) = write(self);
            let end = if ok {
                "RELEASE write"
            } else {
                "ROLLBACK TO write; RELEASE write"
            };
            if let Err(e) = self.db.execute_batch(end) {
                failed.get_or_insert(e);
            }
            kept.push(value);
        }
        let committed = match failed {
            None => self.db.execute_batch("COMMIT"),
            Some(e) => Err(e),
        };
        if committed.is_err() {
            let _ = self.db.execute_batch("ROLLBACK");
        }
        (kept, committed.map_err(ObjectsError::from))
    }

    /// The revision of the newest write.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn revision(&self) -> Result<u64, ObjectsError> {
        meta(&self.db, "revision")
    }

    /// Writes `objects` (each with its key, as a user wrote it) all or none. An object
    /// naming a `metadata.resourceVersion` must name the stored one.
    ///
    /// # Errors
    /// [`ObjectsError::Conflict`] when one names another version (nothing is written), or
    /// a database error.
    pub fn apply(&mut self, objects: &[(ObjectKey, Value)]) -> Result<Vec<Applied>, ObjectsError> {
        let tx = self.db.savepoint()?;
        let mut applied = Vec::with_capacity(objects.len());
        for (key, object) in objects {
            let expected = named_version(object).map_err(ObjectsError::Invalid)?;
            let body = desired(object);
            let row = read_row(&tx, key)?;
            if let (Some(want), Some(row)) = (expected, &row)
                && want != row.revision
            {
                return Err(ObjectsError::Conflict {
                    key: key.clone(),
                    expected: want,
                    stored: Some(row.revision),
                });
            }
            let (outcome, revision) = match row {
                Some(row) if row.body == body => (Outcome::Unchanged, row.revision),
                Some(row) => {
                    let revision = next_revision(&tx)?;
                    write_row(&tx, key, revision, row.generation + 1, &body, &row.status)?;
                    let served = served(&body, revision, row.generation + 1, &row.status);
                    log_change(&tx, revision, key, ChangeType::Modified, &served)?;
                    (Outcome::Configured, revision)
                }
                None if expected.is_some_and(|v| v > 0) => {
                    return Err(ObjectsError::Conflict {
                        key: key.clone(),
                        expected: expected.unwrap_or_default(),
                        stored: None,
                    });
                }
                None => {
                    let revision = next_revision(&tx)?;
                    let status = json!({});
                    write_row(&tx, key, revision, 1, &body, &status)?;
                    log_change(
                        &tx,
                        revision,
                        key,
                        ChangeType::Added,
                        &served(&body, revision, 1, &status),
                    )?;
                    (Outcome::Created, revision)
                }
            };
            applied.push(Applied {
                key: key.clone(),
                outcome,
                resource_version: revision,
            });
        }
        compact(&tx)?;
        tx.commit()?;
        Ok(applied)
    }

    /// Replaces the status of each object that still exists, when it differs. Returns
    /// whether anything was written.
    ///
    /// # Errors
    /// A database error.
    pub fn set_statuses(&mut self, statuses: &[(ObjectKey, Value)]) -> Result<bool, ObjectsError> {
        let tx = self.db.savepoint()?;
        let mut wrote = false;
        for (key, status) in statuses {
            let Some(row) = read_row(&tx, key)? else {
                continue;
            };
            if row.status == *status {
                continue;
            }
            let revision = next_revision(&tx)?;
            write_row(&tx, key, revision, row.generation, &row.body, status)?;
            let served = served(&row.body, revision, row.generation, status);
            log_change(&tx, revision, key, ChangeType::Modified, &served)?;
            wrote = true;
        }
        if wrote {
            compact(&tx)?;
        }
        tx.commit()?;
        Ok(wrote)
    }

    /// Makes the objects of the control plane's resource `resource` exactly `objects`
    /// (key, body, status): new ones added, changed ones modified, the rest deleted.
    /// Returns whether anything was written.
    ///
    /// # Errors
    /// A database error.
    pub fn report(
        &mut self,
        resource: Resource,
        objects: &[Reported],
    ) -> Result<bool, ObjectsError> {
        let tx = self.db.savepoint()?;
        let mut wrote = false;
        let stored = keys(&tx, resource)?;
        for (key, body, status) in objects {
            let row = read_row(&tx, key)?;
            let (generation, kind) = match &row {
                Some(r) if r.body == *body && r.status == *status => continue,
                Some(r) => (
                    r.generation + u64::from(r.body != *body),
                    ChangeType::Modified,
                ),
                None => (1, ChangeType::Added),
            };
            let revision = next_revision(&tx)?;
            write_row(&tx, key, revision, generation, body, status)?;
            log_change(
                &tx,
                revision,
                key,
                kind,
                &served(body, revision, generation, status),
            )?;
            wrote = true;
        }
        for key in stored {
            if !objects.iter().any(|(k, _, _)| *k == key) {
                delete_row(&tx, &key)?;
                wrote = true;
            }
        }
        if wrote {
            compact(&tx)?;
        }
        tx.commit()?;
        Ok(wrote)
    }

    /// Adds events, each named `e<revision>`, then prunes the oldest beyond
    /// [`Objects::KEEP_EVENTS`].
    ///
    /// # Errors
    /// A database error.
    pub fn record_events(&mut self, events: &[Value]) -> Result<(), ObjectsError> {
        if events.is_empty() {
            return Ok(());
        }
        let tx = self.db.savepoint()?;
        let status = json!({});
        for event in events {
            let revision = next_revision(&tx)?;
            let key = ObjectKey::global(Resource::Event, format!("e{revision}"));
            let mut body = event.clone();
            if let Some(map) = body.as_object_mut() {
                map.insert("metadata".into(), json!({"name": key.name}));
            }
            write_row(&tx, &key, revision, 1, &body, &status)?;
            log_change(
                &tx,
                revision,
                &key,
                ChangeType::Added,
                &served(&body, revision, 1, &status),
            )?;
        }
        tx.execute(
            "DELETE FROM objects WHERE resource = ?1 AND revision <= (
                 SELECT revision FROM objects WHERE resource = ?1
                 ORDER BY revision DESC LIMIT 1 OFFSET ?2)",
            params![Resource::Event.info().plural, to_i64(Self::KEEP_EVENTS)],
        )?;
        compact(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes an object; `expected` must be its version when given. The deleted object,
    /// or `None` when there was none.
    ///
    /// # Errors
    /// [`ObjectsError::Conflict`], or a database error.
    pub fn delete(
        &mut self,
        key: &ObjectKey,
        expected: Option<u64>,
    ) -> Result<Option<Value>, ObjectsError> {
        let tx = self.db.savepoint()?;
        let Some(row) = read_row(&tx, key)? else {
            return Ok(None);
        };
        if let Some(want) = expected.filter(|&w| w != row.revision) {
            return Err(ObjectsError::Conflict {
                key: key.clone(),
                expected: want,
                stored: Some(row.revision),
            });
        }
        let object = delete_row(&tx, key)?;
        compact(&tx)?;
        tx.commit()?;
        Ok(object)
    }

    /// One object as served.
    ///
    /// # Errors
    /// A database error.
    pub fn get(&self, key: &ObjectKey) -> Result<Option<Value>, ObjectsError> {
        Ok(read_row(&self.db, key)?.map(|r| served(&r.body, r.revision, r.generation, &r.status)))
    }

    /// The objects `filter` covers, by key, and the revision they were read at.
    ///
    /// # Errors
    /// A database error.
    pub fn list(&self, filter: &Filter) -> Result<(Vec<(ObjectKey, Value)>, u64), ObjectsError> {
        let tx = &self.db;
        let revision = meta(tx, "revision")?;
        let mut query = tx.prepare(
            "SELECT resource, namespace, name, revision, generation, body, status FROM objects
             WHERE (?1 IS NULL OR resource = ?1) AND (?2 IS NULL OR namespace = ?2)
               AND (?3 IS NULL OR name = ?3)
             ORDER BY resource, namespace,
                 CASE WHEN resource = 'events' THEN revision ELSE 0 END, name",
        )?;
        let rows = query.query_map(
            params![
                filter.resource.map(|r| r.info().plural),
                filter.namespace,
                filter.name
            ],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, String>(5)?,
                    row.get::<_, String>(6)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (resource, namespace, name, rev, generation, body, status) = row?;
            let key = ObjectKey {
                resource: resource_of(&resource)?,
                namespace,
                name,
            };
            let object = served(
                &parse_json(&body)?,
                to_u64(rev),
                to_u64(generation),
                &parse_json(&status)?,
            );
            out.push((key, object));
        }
        Ok((out, revision))
    }

    /// Every object users wrote, with its desired state only: the estate's manifests.
    ///
    /// # Errors
    /// A database error.
    pub fn desired_objects(&self) -> Result<(Vec<(ObjectKey, Value)>, u64), ObjectsError> {
        let (all, revision) = self.list(&Filter::default())?;
        let desired = all
            .into_iter()
            .filter(|(k, _)| k.resource.info().writer == Writer::User)
            .map(|(k, v)| (k, desired(&v)))
            .collect();
        Ok((desired, revision))
    }

    /// The changes after revision `after` that `filter` covers, oldest first, from at most
    /// `limit` changes read; and the revision read up to (a watch continues from there).
    ///
    /// # Errors
    /// [`ObjectsError::Expired`] when changes after `after` were compacted away, or a
    /// database error.
    pub fn changes_since(
        &self,
        after: u64,
        filter: &Filter,
        limit: usize,
    ) -> Result<(Vec<Change>, u64), ObjectsError> {
        let tx = &self.db;
        let revision = meta(tx, "revision")?;
        let compacted = meta(tx, "compacted")?;
        if after < compacted {
            return Err(ObjectsError::Expired {
                requested: after,
                oldest: compacted,
            });
        }
        let mut query = tx.prepare(
            "SELECT revision, resource, namespace, name, type, object FROM changes
             WHERE revision > ?1 AND (?2 IS NULL OR resource = ?2)
             ORDER BY revision LIMIT ?3",
        )?;
        let rows = query.query_map(
            params![
                to_i64(after),
                filter.resource.map(|r| r.info().plural),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        let mut read = 0;
        let mut last = after;
        for row in rows {
            let (at, resource, namespace, name, kind, object) = row?;
            read += 1;
            last = to_u64(at);
            let key = ObjectKey {
                resource: resource_of(&resource)?,
                namespace,
                name,
            };
            if !filter.matches(&key) {
                continue;
            }
            let kind = ChangeType::parse(&kind)
                .ok_or_else(|| ObjectsError::Corrupt(format!("change type `{kind}`")))?;
            out.push(Change {
                kind,
                object: parse_json(&object)?,
                revision: last,
                key,
            });
        }
        let read_to = if read < limit {
            revision.max(after)
        } else {
            last
        };
        Ok((out, read_to))
    }
}

fn meta(db: &Connection, key: &str) -> Result<u64, ObjectsError> {
    Ok(db
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, i64>(0)
        })
        .optional()?
        .map_or(0, to_u64))
}

fn set_meta(db: &Connection, key: &str, value: u64) -> Result<(), ObjectsError> {
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, to_i64(value)],
    )?;
    Ok(())
}

fn next_revision(db: &Connection) -> Result<u64, ObjectsError> {
    let next = meta(db, "revision")? + 1;
    set_meta(db, "revision", next)?;
    Ok(next)
}

fn read_row(db: &Connection, key: &ObjectKey) -> Result<Option<Row>, ObjectsError> {
    let row = db
        .query_row(
            "SELECT revision, generation, body, status FROM objects
             WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
            params![key.resource.info().plural, key.namespace, key.name],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()?;
    row.map(|(revision, generation, body, status)| {
        Ok(Row {
            revision: to_u64(revision),
            generation: to_u64(generation),
            body: parse_json(&body)?,
            status: parse_json(&status)?,
        })
    })
    .transpose()
}

fn keys(db: &Connection, resource: Resource) -> Result<Vec<ObjectKey>, ObjectsError> {
    let mut query = db.prepare("SELECT namespace, name FROM objects WHERE resource = ?1")?;
    let rows = query.query_map([resource.info().plural], |r| {
        Ok(ObjectKey {
            resource,
            namespace: r.get(0)?,
            name: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn write_row(
    db: &Connection,
    key: &ObjectKey,
    revision: u64,
    generation: u64,
    body: &Value,
    status: &Value,
) -> Result<(), ObjectsError> {
    db.execute(
        "INSERT INTO objects (resource, namespace, name, revision, generation, body, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (resource, namespace, name) DO UPDATE SET
             revision = excluded.revision, generation = excluded.generation,
             body = excluded.body, status = excluded.status",
        params![
            key.resource.info().plural,
            key.namespace,
            key.name,
            to_i64(revision),
            to_i64(generation),
            body.to_string(),
            status.to_string()
        ],
    )?;
    Ok(())
}

/// Deletes a stored object and logs the deletion; the object as last served.
fn delete_row(db: &Connection, key: &ObjectKey) -> Result<Option<Value>, ObjectsError> {
    let Some(row) = read_row(db, key)? else {
        return Ok(None);
    };
    db.execute(
        "DELETE FROM objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
        params![key.resource.info().plural, key.namespace, key.name],
    )?;
    let revision = next_revision(db)?;
    let object = served(&row.body, revision, row.generation, &row.status);
    log_change(db, revision, key, ChangeType::Deleted, &object)?;
    Ok(Some(object))
}

fn log_change(
    db: &Connection,
    revision: u64,
    key: &ObjectKey,
    kind: ChangeType,
    object: &Value,
) -> Result<(), ObjectsError> {
    db.execute(
        "INSERT INTO changes (revision, resource, namespace, name, type, object)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            to_i64(revision),
            key.resource.info().plural,
            key.namespace,
            key.name,
            kind.as_str(),
            object.to_string()
        ],
    )?;
    Ok(())
}

/// Drops the changes older than the newest [`Objects::KEEP_CHANGES`] and records the
/// revision a watch may start from.
fn compact(db: &Connection) -> Result<(), ObjectsError> {
    let revision = meta(db, "revision")?;
    let floor = revision.saturating_sub(Objects::KEEP_CHANGES);
    if floor > meta(db, "compacted")? {
        db.execute("DELETE FROM changes WHERE revision <= ?1", [to_i64(floor)])?;
        set_meta(db, "compacted", floor)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(name: &str, version: &str) -> (ObjectKey, Value) {
        (
            ObjectKey::global(Resource::Cluster, name),
            json!({"apiVersion": "plinth.dev/v1alpha1", "kind": "Cluster",
                   "metadata": {"name": name}, "spec": {"kubernetesVersion": version}}),
        )
    }

    fn store() -> (tempfile::TempDir, Objects) {
        let dir = tempfile::tempdir().expect("tempdir");
        let objects = Objects::open(&dir.path().join("objects.db")).expect("open");
        (dir, objects)
    }

    #[test]
    fn apply_is_idempotent_and_versions_every_change() {
        let (_dir, mut objects) = store();
        let first = objects.apply(&[cluster("a", "1.33.1")]).expect("apply");
        assert_eq!(first[0].outcome, Outcome::Created);
        let again = objects.apply(&[cluster("a", "1.33.1")]).expect("apply");
        assert_eq!(again[0].outcome, Outcome::Unchanged);
        assert_eq!(again[0].resource_version, first[0].resource_version);
        let changed = objects.apply(&[cluster("a", "1.34.0")]).expect("apply");
        assert_eq!(changed[0].outcome, Outcome::Configured);
        assert!(changed[0].resource_version > first[0].resource_version);
        let served = objects
            .get(&cluster("a", "").0)
            .expect("get")
            .expect("there");
        assert_eq!(served["metadata"]["generation"], json!(2));
        let (changes, read_to) = objects
            .changes_since(0, &Filter::default(), 100)
            .expect("changes");
        assert_eq!(read_to, changed[0].resource_version);
        let kinds: Vec<ChangeType> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeType::Added, ChangeType::Modified]);
    }

    #[test]
    fn a_stale_version_is_a_conflict_and_writes_nothing() {
        let (_dir, mut objects) = store();
        objects.apply(&[cluster("a", "1.33.1")]).expect("apply");
        let (key, mut stale) = cluster("a", "1.34.0");
        stale["metadata"]["resourceVersion"] = json!("99");
        let err = objects
            .apply(&[cluster("b", "1.33.1"), (key.clone(), stale)])
            .expect_err("conflict");
        assert!(
            matches!(
                err,
                ObjectsError::Conflict {
                    stored: Some(1),
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            objects.get(&cluster("b", "").0).expect("get").is_none(),
            "all or none"
        );
    }

    #[test]
    fn status_and_reports_do_not_touch_the_desired_state() {
        let (_dir, mut objects) = store();
        let (key, body) = cluster("a", "1.33.1");
        objects
            .apply(&[(key.clone(), body.clone())])
            .expect("apply");
        let status = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        assert!(
            objects
                .set_statuses(&[(key.clone(), status.clone())])
                .expect("status")
        );
        assert!(
            !objects
                .set_statuses(&[(key.clone(), status)])
                .expect("status")
        );
        let again = objects.apply(&[(key.clone(), body)]).expect("apply");
        assert_eq!(
            again[0].outcome,
            Outcome::Unchanged,
            "status is not desired state"
        );
        let served = objects.get(&key).expect("get").expect("there");
        assert_eq!(served["status"]["conditions"][0]["status"], json!("True"));
    }

    #[test]
    fn a_watch_from_a_compacted_revision_is_told_to_list_again() {
        let (_dir, mut objects) = store();
        let many: Vec<Value> = (0..=Objects::KEEP_CHANGES)
            .map(|i| json!({"kind": "Event", "message": format!("event {i}")}))
            .collect();
        objects.record_events(&many).expect("events");
        let err = objects
            .changes_since(0, &Filter::default(), 10)
            .expect_err("compacted");
        assert!(matches!(err, ObjectsError::Expired { .. }), "{err}");
        let (events, _) = objects
            .list(&Filter {
                resource: Some(Resource::Event),
                ..Filter::default()
            })
            .expect("list");
        assert_eq!(events.len() as u64, Objects::KEEP_EVENTS);
    }
}
