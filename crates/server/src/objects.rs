//! The API's objects: desired state as users wrote it, status and reported objects as the
//! control plane wrote them, and the log of changes that `watch` reads — defined once
//! ([`Txn`]) over a [`Backend`]: SQLite in one process ([`sqlite`]), or etcd shared by
//! replicas (`etcd`, with the `etcd` feature).
//!
//! Every write takes the next value of one revision counter (etcd's model): an object's
//! `metadata.resourceVersion` is the revision of its last write, and a watch from revision
//! R is the changes after R in order. A write that names a `resourceVersion` other than
//! the stored one is refused (optimistic concurrency). Each call is one transaction; a
//! write that was answered is durable. The change log keeps the newest
//! [`Objects::KEEP_CHANGES`] changes; a watch from before them is told to list again.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::ObjectsError;
use crate::kinds::{ObjectKey, Resource, TABLE, Writer};

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod sqlite;

/// What happened to an object, as a watch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Its name on the wire and in a store.
    pub fn as_str(self) -> &'static str {
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

/// One write of a group commit ([`Objects::group`]): it runs its own transaction
/// ([`Objects::transact`]) and keeps what its caller needs once the batch is durable.
pub type GroupedWrite<T> = Box<dyn FnOnce(&mut Objects) -> T + Send>;

/// An object the control plane reports: its key, body and status.
pub type Reported = (ObjectKey, Value, Value);

/// Which objects a list or watch covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One resource, or every one.
    pub resource: Option<Resource>,
    /// One guest cluster's workloads, or every object.
    pub cluster: Option<String>,
    /// One namespace, or every one.
    pub namespace: Option<String>,
    /// One object, or every one.
    pub name: Option<String>,
}

impl Filter {
    /// Whether `key` is one of the objects covered.
    pub fn matches(&self, key: &ObjectKey) -> bool {
        self.resource.is_none_or(|r| r == key.resource)
            && self.cluster.as_ref().is_none_or(|c| *c == key.cluster)
            && self.namespace.as_ref().is_none_or(|n| *n == key.namespace)
            && self.name.as_ref().is_none_or(|n| *n == key.name)
    }
}

/// A stored object: what a backend keeps per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    /// The revision of its last write: its `resourceVersion`.
    pub revision: u64,
    /// Bumped when its desired state changes.
    pub generation: u64,
    /// The revision that created it: objects read back in this order are in the order
    /// they were applied, as an estate directory's are in file order.
    #[serde(default)]
    pub created: u64,
    /// What its writer wrote.
    pub body: Value,
    /// What the control plane reports.
    pub status: Value,
}

/// One entry of the change log as a backend keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Logged {
    /// The revision of the change.
    pub revision: u64,
    /// The resource's plural.
    pub resource: String,
    /// The guest cluster of a workload (empty for anything else).
    #[serde(default)]
    pub cluster: String,
    /// The object's namespace (empty for a global one).
    pub namespace: String,
    /// The object's name.
    pub name: String,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: ChangeType,
    /// The object as served after the change.
    pub object: Value,
}

/// A store-wide counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Meta {
    /// The revision of the newest write.
    Revision,
    /// Changes up to this revision were compacted away.
    Compacted,
}

impl Meta {
    /// Its name in a backend.
    pub fn name(self) -> &'static str {
        match self {
            Self::Revision => "revision",
            Self::Compacted => "compacted",
        }
    }
}

/// One transaction of a backend: its reads see its own writes, and nothing of it is kept
/// unless the whole succeeds.
pub trait Tx {
    /// A counter (0 when never set).
    fn meta(&mut self, key: Meta) -> Result<u64, ObjectsError>;
    /// Sets a counter.
    fn set_meta(&mut self, key: Meta, value: u64) -> Result<(), ObjectsError>;
    /// One object.
    fn row(&mut self, key: &ObjectKey) -> Result<Option<Row>, ObjectsError>;
    /// Writes one object.
    fn put_row(&mut self, key: &ObjectKey, row: &Row) -> Result<(), ObjectsError>;
    /// Removes one object.
    fn remove_row(&mut self, key: &ObjectKey) -> Result<(), ObjectsError>;
    /// The objects `filter` covers, in any order.
    fn rows(&mut self, filter: &Filter) -> Result<Vec<(ObjectKey, Row)>, ObjectsError>;
    /// Appends to the change log.
    fn log(&mut self, change: &Logged) -> Result<(), ObjectsError>;
    /// The logged changes after `after`, oldest first, at most `limit`.
    fn changes(&mut self, after: u64, limit: usize) -> Result<Vec<Logged>, ObjectsError>;
    /// Drops the logged changes up to `revision`.
    fn forget_changes(&mut self, revision: u64) -> Result<(), ObjectsError>;
    /// Removes the oldest events beyond the newest `keep`.
    fn prune_events(&mut self, keep: u64) -> Result<(), ObjectsError>;
}

/// Where the objects live: SQLite in one process ([`sqlite::SqliteObjects`]) or etcd
/// shared by replicas (`etcd::EtcdObjects`, with the `etcd` feature).
pub trait Backend: Send + std::fmt::Debug {
    /// Runs `f` as one transaction, all or none. `f` may run more than once: an optimistic
    /// backend runs it again when another writer committed first.
    ///
    /// # Errors
    /// What `f` returns, or the backend's failure.
    fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ObjectsError>,
    ) -> Result<(), ObjectsError>;

    /// Starts a batch of transactions committed together ([`Backend::end_batch`]); a
    /// backend whose every transaction is already durable ignores it.
    ///
    /// # Errors
    /// The backend's failure.
    fn begin_batch(&mut self) -> Result<(), ObjectsError> {
        Ok(())
    }

    /// Ends the batch: commits it, or undoes it when `keep` is false.
    ///
    /// # Errors
    /// The backend's failure: nothing of the batch is kept.
    fn end_batch(&mut self, keep: bool) -> Result<(), ObjectsError> {
        let _ = keep;
        Ok(())
    }
}

/// The object store: the API's semantics over a [`Backend`].
#[derive(Debug)]
pub struct Objects {
    backend: Box<dyn Backend>,
}

/// The objects as one transaction sees them.
pub struct Txn<'a> {
    tx: &'a mut dyn Tx,
}

fn resource_of(plural: &str) -> Result<Resource, ObjectsError> {
    TABLE
        .iter()
        .find(|i| i.plural == plural)
        .map(|i| i.resource)
        .ok_or_else(|| ObjectsError::Corrupt(format!("unknown resource `{plural}` stored")))
}

/// Decodes stored JSON.
///
/// # Errors
/// [`ObjectsError::Corrupt`] when it does not decode.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &[u8]) -> Result<T, ObjectsError> {
    serde_json::from_slice(text).map_err(|e| ObjectsError::Corrupt(format!("stored JSON: {e}")))
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
    /// Events kept: older ones are pruned, once a tenth more have accumulated (without a
    /// change: events expire, as in Kubernetes).
    pub const KEEP_EVENTS: u64 = 2_000;

    /// The store over `backend`.
    pub fn new(backend: Box<dyn Backend>) -> Self {
        Self { backend }
    }

    /// Opens (creating when absent) the SQLite store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or is not a Plinth object store.
    pub fn sqlite(path: &Path) -> Result<Self, ObjectsError> {
        Ok(Self::new(Box::new(sqlite::SqliteObjects::open(path)?)))
    }

    /// Runs `f` as one transaction, all or none (`f` may run more than once: see
    /// [`Backend::transact`]).
    ///
    /// # Errors
    /// What `f` returns, or the backend's failure.
    pub fn transact<T>(
        &mut self,
        mut f: impl FnMut(&mut Txn<'_>) -> Result<T, ObjectsError>,
    ) -> Result<T, ObjectsError> {
        let mut out = None;
        self.backend.transact(&mut |tx| {
            out = Some(f(&mut Txn { tx })?);
            Ok(())
        })?;
        out.ok_or_else(|| ObjectsError::Corrupt("a transaction ended without running".into()))
    }

    /// Runs `writes` as one batch: one commit, so one wait for the disk, for many writers
    /// (group commit); each write is all or none on its own. What each write returned,
    /// and whether the batch was committed: a write's effect is durable only then.
    pub fn group<T>(&mut self, writes: Vec<GroupedWrite<T>>) -> (Vec<T>, Result<(), ObjectsError>) {
        if let Err(e) = self.backend.begin_batch() {
            return (Vec::new(), Err(e));
        }
        let kept = writes.into_iter().map(|write| write(self)).collect();
        (kept, self.backend.end_batch(true))
    }
}

impl Txn<'_> {
    /// The revision of the newest write.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn revision(&mut self) -> Result<u64, ObjectsError> {
        self.tx.meta(Meta::Revision)
    }

    fn next_revision(&mut self) -> Result<u64, ObjectsError> {
        let next = self.tx.meta(Meta::Revision)? + 1;
        self.tx.set_meta(Meta::Revision, next)?;
        Ok(next)
    }

    /// Writes `row` under `key` and logs the change.
    fn write(&mut self, key: &ObjectKey, row: Row, kind: ChangeType) -> Result<(), ObjectsError> {
        self.tx.put_row(key, &row)?;
        let object = served(&row.body, row.revision, row.generation, &row.status);
        self.tx.log(&Logged {
            revision: row.revision,
            resource: key.resource.info().plural.to_owned(),
            cluster: key.cluster.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            kind,
            object,
        })
    }

    /// Deletes a stored object and logs the deletion; the object as last served.
    fn remove(&mut self, key: &ObjectKey) -> Result<Option<Value>, ObjectsError> {
        let Some(row) = self.tx.row(key)? else {
            return Ok(None);
        };
        self.tx.remove_row(key)?;
        let revision = self.next_revision()?;
        let object = served(&row.body, revision, row.generation, &row.status);
        self.tx.log(&Logged {
            revision,
            resource: key.resource.info().plural.to_owned(),
            cluster: key.cluster.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            kind: ChangeType::Deleted,
            object: object.clone(),
        })?;
        Ok(Some(object))
    }

    /// Drops the changes older than the newest [`Objects::KEEP_CHANGES`] and records the
    /// revision a watch may start from.
    fn compact(&mut self) -> Result<(), ObjectsError> {
        let floor = self
            .tx
            .meta(Meta::Revision)?
            .saturating_sub(Objects::KEEP_CHANGES);
        if floor > self.tx.meta(Meta::Compacted)? {
            self.tx.forget_changes(floor)?;
            self.tx.set_meta(Meta::Compacted, floor)?;
        }
        Ok(())
    }

    /// Writes `objects` (each with its key, as a user wrote it) all or none. An object
    /// naming a `metadata.resourceVersion` must name the stored one.
    ///
    /// # Errors
    /// [`ObjectsError::Conflict`] when one names another version (nothing is written), or
    /// a backend error.
    pub fn apply(&mut self, objects: &[(ObjectKey, Value)]) -> Result<Vec<Applied>, ObjectsError> {
        let mut applied = Vec::with_capacity(objects.len());
        for (key, object) in objects {
            let expected = named_version(object).map_err(ObjectsError::Invalid)?;
            let body = desired(object);
            let row = self.tx.row(key)?;
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
                    let revision = self.next_revision()?;
                    let new = Row {
                        revision,
                        generation: row.generation + 1,
                        created: row.created,
                        body,
                        status: row.status,
                    };
                    self.write(key, new, ChangeType::Modified)?;
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
                    let revision = self.next_revision()?;
                    let new = Row {
                        revision,
                        generation: 1,
                        created: revision,
                        body,
                        status: json!({}),
                    };
                    self.write(key, new, ChangeType::Added)?;
                    (Outcome::Created, revision)
                }
            };
            applied.push(Applied {
                key: key.clone(),
                outcome,
                resource_version: revision,
            });
        }
        self.compact()?;
        Ok(applied)
    }

    /// Replaces the status of each object that still exists, when it differs. Returns
    /// whether anything was written.
    ///
    /// # Errors
    /// A backend error.
    pub fn set_statuses(&mut self, statuses: &[(ObjectKey, Value)]) -> Result<bool, ObjectsError> {
        let mut wrote = false;
        for (key, status) in statuses {
            let Some(row) = self.tx.row(key)? else {
                continue;
            };
            if row.status == *status {
                continue;
            }
            let new = Row {
                revision: self.next_revision()?,
                status: status.clone(),
                ..row
            };
            self.write(key, new, ChangeType::Modified)?;
            wrote = true;
        }
        if wrote {
            self.compact()?;
        }
        Ok(wrote)
    }

    /// Makes the objects of the control plane's resource `resource` exactly `objects`
    /// (key, body, status): new ones added, changed ones modified, the rest deleted.
    /// Returns whether anything was written.
    ///
    /// # Errors
    /// A backend error.
    pub fn report(
        &mut self,
        resource: Resource,
        objects: &[Reported],
    ) -> Result<bool, ObjectsError> {
        let mut wrote = false;
        let stored = self.tx.rows(&Filter {
            resource: Some(resource),
            ..Filter::default()
        })?;
        for (key, body, status) in objects {
            let row = stored.iter().find(|(k, _)| k == key).map(|(_, r)| r);
            let (generation, created, kind) = match row {
                Some(r) if r.body == *body && r.status == *status => continue,
                Some(r) => (
                    r.generation + u64::from(r.body != *body),
                    Some(r.created),
                    ChangeType::Modified,
                ),
                None => (1, None, ChangeType::Added),
            };
            // A revision only for what changes: a report of the same objects writes nothing.
            let revision = self.next_revision()?;
            let new = Row {
                revision,
                generation,
                created: created.unwrap_or(revision),
                body: body.clone(),
                status: status.clone(),
            };
            self.write(key, new, kind)?;
            wrote = true;
        }
        for (key, _) in &stored {
            if !objects.iter().any(|(k, _, _)| k == key) {
                self.remove(key)?;
                wrote = true;
            }
        }
        if wrote {
            self.compact()?;
        }
        Ok(wrote)
    }

    /// Adds events, each named `e<revision>`, then prunes the oldest beyond
    /// [`Objects::KEEP_EVENTS`].
    ///
    /// # Errors
    /// A backend error.
    pub fn record_events(&mut self, events: &[Value]) -> Result<(), ObjectsError> {
        if events.is_empty() {
            return Ok(());
        }
        for event in events {
            let revision = self.next_revision()?;
            let key = ObjectKey::global(Resource::Event, format!("e{revision}"));
            let mut body = event.clone();
            if let Some(map) = body.as_object_mut() {
                map.insert("metadata".into(), json!({"name": key.name}));
            }
            let row = Row {
                revision,
                generation: 1,
                created: revision,
                body,
                status: json!({}),
            };
            self.write(&key, row, ChangeType::Added)?;
        }
        self.tx.prune_events(Objects::KEEP_EVENTS)?;
        self.compact()
    }

    /// Deletes an object; `expected` must be its version when given. The deleted object,
    /// or `None` when there was none.
    ///
    /// # Errors
    /// [`ObjectsError::Conflict`], or a backend error.
    pub fn delete(
        &mut self,
        key: &ObjectKey,
        expected: Option<u64>,
    ) -> Result<Option<Value>, ObjectsError> {
        let Some(row) = self.tx.row(key)? else {
            return Ok(None);
        };
        if let Some(want) = expected.filter(|&w| w != row.revision) {
            return Err(ObjectsError::Conflict {
                key: key.clone(),
                expected: want,
                stored: Some(row.revision),
            });
        }
        let object = self.remove(key)?;
        self.compact()?;
        Ok(object)
    }

    /// One object as served.
    ///
    /// # Errors
    /// A backend error.
    pub fn get(&mut self, key: &ObjectKey) -> Result<Option<Value>, ObjectsError> {
        Ok(self
            .tx
            .row(key)?
            .map(|r| served(&r.body, r.revision, r.generation, &r.status)))
    }

    /// The objects `filter` covers, by key (events oldest first), and the revision they
    /// were read at.
    ///
    /// # Errors
    /// A backend error.
    pub fn list(
        &mut self,
        filter: &Filter,
    ) -> Result<(Vec<(ObjectKey, Value)>, u64), ObjectsError> {
        let revision = self.tx.meta(Meta::Revision)?;
        let mut rows = self.tx.rows(filter)?;
        rows.sort_by(|(a, ra), (b, rb)| {
            let order = |k: &ObjectKey, r: &Row| {
                let by_time = if k.resource == Resource::Event {
                    r.revision
                } else {
                    0
                };
                (
                    k.resource.info().plural,
                    k.cluster.clone(),
                    k.namespace.clone(),
                    by_time,
                )
            };
            order(a, ra)
                .cmp(&order(b, rb))
                .then_with(|| a.name.cmp(&b.name))
        });
        let out = rows
            .into_iter()
            .map(|(k, r)| {
                let object = served(&r.body, r.revision, r.generation, &r.status);
                (k, object)
            })
            .collect();
        Ok((out, revision))
    }

    /// Every object users wrote, with its desired state only: the estate's manifests, in
    /// the order they were created (an applied directory's file order, which the estate's
    /// clusters and VM sets keep, as `plinth plan` of the directory does).
    ///
    /// # Errors
    /// A backend error.
    pub fn desired_objects(&mut self) -> Result<(Vec<(ObjectKey, Value)>, u64), ObjectsError> {
        let revision = self.tx.meta(Meta::Revision)?;
        let mut rows: Vec<(ObjectKey, Row)> = self
            .tx
            .rows(&Filter::default())?
            .into_iter()
            .filter(|(k, _)| k.resource.info().writer == Writer::User)
            .collect();
        rows.sort_by_key(|(_, r)| r.created);
        let desired = rows
            .into_iter()
            .map(|(k, r)| (k, desired(&r.body)))
            .collect();
        Ok((desired, revision))
    }

    /// The changes after revision `after` that `filter` covers, oldest first, from at most
    /// `limit` changes read; and the revision read up to (a watch continues from there).
    ///
    /// # Errors
    /// [`ObjectsError::Expired`] when changes after `after` were compacted away, or a
    /// backend error.
    pub fn changes_since(
        &mut self,
        after: u64,
        filter: &Filter,
        limit: usize,
    ) -> Result<(Vec<Change>, u64), ObjectsError> {
        let revision = self.tx.meta(Meta::Revision)?;
        let compacted = self.tx.meta(Meta::Compacted)?;
        if after < compacted {
            return Err(ObjectsError::Expired {
                requested: after,
                oldest: compacted,
            });
        }
        let logged = self.tx.changes(after, limit)?;
        let read = logged.len();
        let mut last = after;
        let mut out = Vec::new();
        for change in logged {
            last = change.revision;
            let key = ObjectKey {
                resource: resource_of(&change.resource)?,
                cluster: change.cluster,
                namespace: change.namespace,
                name: change.name,
            };
            if filter.matches(&key) {
                out.push(Change {
                    kind: change.kind,
                    object: change.object,
                    revision: change.revision,
                    key,
                });
            }
        }
        let read_to = if read < limit {
            revision.max(after)
        } else {
            last
        };
        Ok((out, read_to))
    }
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
        let objects = Objects::sqlite(&dir.path().join("objects.db")).expect("open");
        (dir, objects)
    }

    fn apply(
        objects: &mut Objects,
        batch: &[(ObjectKey, Value)],
    ) -> Result<Vec<Applied>, ObjectsError> {
        objects.transact(|t| t.apply(batch))
    }

    fn get(objects: &mut Objects, key: &ObjectKey) -> Option<Value> {
        objects.transact(|t| t.get(key)).expect("get")
    }

    #[test]
    fn apply_is_idempotent_and_versions_every_change() {
        let (_dir, mut objects) = store();
        let first = apply(&mut objects, &[cluster("a", "1.33.1")]).expect("apply");
        assert_eq!(first[0].outcome, Outcome::Created);
        let again = apply(&mut objects, &[cluster("a", "1.33.1")]).expect("apply");
        assert_eq!(again[0].outcome, Outcome::Unchanged);
        assert_eq!(again[0].resource_version, first[0].resource_version);
        let changed = apply(&mut objects, &[cluster("a", "1.34.0")]).expect("apply");
        assert_eq!(changed[0].outcome, Outcome::Configured);
        assert!(changed[0].resource_version > first[0].resource_version);
        let served = get(&mut objects, &cluster("a", "").0).expect("there");
        assert_eq!(served["metadata"]["generation"], json!(2));
        let (changes, read_to) = objects
            .transact(|t| t.changes_since(0, &Filter::default(), 100))
            .expect("changes");
        assert_eq!(read_to, changed[0].resource_version);
        let kinds: Vec<ChangeType> = changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, [ChangeType::Added, ChangeType::Modified]);
    }

    #[test]
    fn a_stale_version_is_a_conflict_and_writes_nothing() {
        let (_dir, mut objects) = store();
        apply(&mut objects, &[cluster("a", "1.33.1")]).expect("apply");
        let (key, mut stale) = cluster("a", "1.34.0");
        stale["metadata"]["resourceVersion"] = json!("99");
        let err =
            apply(&mut objects, &[cluster("b", "1.33.1"), (key, stale)]).expect_err("conflict");
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
            get(&mut objects, &cluster("b", "").0).is_none(),
            "all or none"
        );
    }

    #[test]
    fn status_and_reports_do_not_touch_the_desired_state() {
        let (_dir, mut objects) = store();
        let (key, body) = cluster("a", "1.33.1");
        apply(&mut objects, &[(key.clone(), body.clone())]).expect("apply");
        let status = json!({"conditions": [{"type": "Ready", "status": "True"}]});
        let statuses = [(key.clone(), status)];
        assert!(
            objects
                .transact(|t| t.set_statuses(&statuses))
                .expect("status")
        );
        assert!(
            !objects
                .transact(|t| t.set_statuses(&statuses))
                .expect("status")
        );
        let again = apply(&mut objects, &[(key.clone(), body)]).expect("apply");
        assert_eq!(
            again[0].outcome,
            Outcome::Unchanged,
            "status is not desired state"
        );
        let served = get(&mut objects, &key).expect("there");
        assert_eq!(served["status"]["conditions"][0]["status"], json!("True"));
        // A report of what is already stored writes nothing, not even a revision.
        let vm: Reported = (
            ObjectKey::global(Resource::VirtualMachine, "a-cp-0"),
            json!({"kind": "VirtualMachine", "metadata": {"name": "a-cp-0"}}),
            json!({"phase": "Running"}),
        );
        let report = |objects: &mut Objects| {
            objects
                .transact(|t| t.report(Resource::VirtualMachine, std::slice::from_ref(&vm)))
                .expect("report")
        };
        assert!(report(&mut objects));
        let revision = objects.transact(|t| t.revision()).expect("revision");
        assert!(!report(&mut objects));
        assert_eq!(
            objects.transact(|t| t.revision()).expect("revision"),
            revision
        );
    }

    #[test]
    fn a_batch_keeps_each_write_all_or_none() {
        let (_dir, mut objects) = store();
        let good: GroupedWrite<bool> =
            Box::new(|o| o.transact(|t| t.apply(&[cluster("a", "1.33.1")])).is_ok());
        let bad: GroupedWrite<bool> = Box::new(|o| {
            o.transact(|t| {
                t.apply(&[cluster("b", "1.33.1")])?;
                Err::<(), _>(ObjectsError::Refused("no".into()))
            })
            .is_ok()
        });
        let (kept, committed) = objects.group(vec![good, bad]);
        committed.expect("committed");
        assert_eq!(kept, [true, false]);
        assert!(get(&mut objects, &cluster("a", "").0).is_some());
        assert!(get(&mut objects, &cluster("b", "").0).is_none(), "undone");
    }

    #[test]
    fn a_watch_from_a_compacted_revision_is_told_to_list_again() {
        let (_dir, mut objects) = store();
        let many: Vec<Value> = (0..=Objects::KEEP_CHANGES)
            .map(|i| json!({"kind": "Event", "message": format!("event {i}")}))
            .collect();
        objects
            .transact(|t| t.record_events(&many))
            .expect("events");
        let err = objects
            .transact(|t| t.changes_since(0, &Filter::default(), 10))
            .expect_err("compacted");
        assert!(matches!(err, ObjectsError::Expired { .. }), "{err}");
        let events = Filter {
            resource: Some(Resource::Event),
            ..Filter::default()
        };
        let (events, _) = objects.transact(|t| t.list(&events)).expect("list");
        assert_eq!(events.len() as u64, Objects::KEEP_EVENTS);
        let first: u64 = events[0].1["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("version");
        let last: u64 = events[events.len() - 1].1["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .expect("version");
        assert!(first < last, "events are listed oldest first");
    }
}
