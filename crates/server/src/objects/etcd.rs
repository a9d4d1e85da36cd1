//! The objects, and the control plane's records, in etcd: one store shared by the
//! replicas of `plinth serve`, which elect the one that runs the reconcile loop on an etcd
//! lease.
//!
//! Keys under a prefix (default `/plinth/`): `objects/<plural>/<namespace>/<name>` (a
//! [`Row`] as JSON), `changes/<revision, 20 digits>` (a [`Logged`] change), `meta/<name>`
//! (the counters, decimal), `control/<key>` (the control plane's records, etcd's key
//! version as the record's version) and `leader` (the election).
//!
//! A transaction is optimistic, as etcd's own STM: it reads at one etcd revision, buffers
//! its writes, and commits them in one etcd `Txn` that holds only if `meta/revision` was
//! not written meanwhile — every write of the object store bumps it, so writers from all
//! replicas are serialised; a transaction that lost the race runs again. etcd refuses a
//! `Txn` of more than `--max-txn-ops` operations (128 by default): `scripts/etcd` starts it
//! with 10,000, as a production etcd for Plinth should be.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, Txn, TxnOp,
    WatchOptions,
};
use plinth_control::store::{Key, MAX_RECORD_BYTES, Store, StoreError, Versioned, Write};

use super::{Backend, Filter, Logged, Meta, Row, Tx, parse_json, resource_of};
use crate::error::ObjectsError;
use crate::kinds::{ObjectKey, Resource, Writer};

/// Transactions that lose the race this many times in a row fail.
const MAX_TRIES: usize = 50;
/// The longest a call on etcd may take (a campaign excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to etcd with the runtime its client runs on; the blocking calls of the
/// object store and of the control plane go through it.
#[derive(Clone)]
pub struct Etcd {
    /// Shared: a client is some 3.6 KB, and each call takes its own clone.
    client: Arc<Client>,
    runtime: Arc<tokio::runtime::Runtime>,
    prefix: String,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What etcd answered, or that it did not.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// The client failed (connection, gRPC status).
    #[error("etcd at {endpoints}: {source}")]
    Client {
        /// The endpoints tried.
        endpoints: String,
        /// Why.
        #[source]
        source: etcd_client::Error,
    },
    /// etcd did not answer in time.
    #[error(
        "etcd at {endpoints} did not answer within {}",
        humantime::format_duration(REQUEST_TIMEOUT)
    )]
    Timeout {
        /// The endpoints tried.
        endpoints: String,
    },
    /// The runtime for the client could not start.
    #[error("starting the etcd client's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Another replica holds what this one lost.
    #[error("this replica is no longer the leader: its etcd lease expired")]
    NotLeader,
    /// Writers raced this one too often.
    #[error("gave up after {MAX_TRIES} conflicting writes from other replicas")]
    Contention,
}

impl From<EtcdError> for ObjectsError {
    fn from(e: EtcdError) -> Self {
        Self::Backend(Box::new(e))
    }
}

impl Etcd {
    /// Connects to `endpoints` (`http://HOST:PORT`), keeping everything under `prefix`.
    ///
    /// # Errors
    /// When the runtime cannot start or etcd does not answer within 5 s.
    pub fn connect(endpoints: &[String], prefix: &str) -> Result<Self, EtcdError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd")
            .enable_all()
            .build()
            .map_err(EtcdError::Runtime)?;
        // No timeout per request here: a campaign waits as long as another replica leads.
        // `Etcd::run` bounds every other call.
        let options = ConnectOptions::new().with_connect_timeout(Duration::from_secs(5));
        let client = runtime
            .block_on(async {
                let mut client = Client::connect(endpoints, Some(options)).await?;
                // Connecting is lazy: ask something so a wrong address fails here.
                client.status().await?;
                Ok(client)
            })
            .map_err(|source| EtcdError::Client {
                endpoints: endpoints.join(","),
                source,
            })?;
        Ok(Self {
            client: Arc::new(client),
            runtime: Arc::new(runtime),
            prefix: prefix.to_owned(),
            endpoints: endpoints.to_vec(),
        })
    }

    fn key(&self, rest: &str) -> Vec<u8> {
        format!("{}{rest}", self.prefix).into_bytes()
    }

    /// Runs `f` with a client on the connection's runtime, blocking this thread for at
    /// most [`REQUEST_TIMEOUT`].
    fn run<T>(
        &self,
        f: impl AsyncFnOnce(Client) -> Result<T, etcd_client::Error>,
    ) -> Result<T, EtcdError> {
        let client = Client::clone(&self.client);
        let answered = self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, f(client)).await });
        match answered {
            Ok(result) => result.map_err(|source| EtcdError::Client {
                endpoints: self.endpoints.join(","),
                source,
            }),
            Err(_) => Err(EtcdError::Timeout {
                endpoints: self.endpoints.join(","),
            }),
        }
    }

    /// Runs `f` like [`Etcd::run`], without a time limit (a campaign).
    fn wait<T>(
        &self,
        f: impl AsyncFnOnce(Client) -> Result<T, etcd_client::Error>,
    ) -> Result<T, EtcdError> {
        let client = Client::clone(&self.client);
        self.runtime
            .block_on(f(client))
            .map_err(|source| EtcdError::Client {
                endpoints: self.endpoints.join(","),
                source,
            })
    }

    /// Spawns `f` on the connection's runtime.
    pub fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(f);
    }

    /// A client for async callers on the connection's runtime.
    pub fn client(&self) -> Client {
        Client::clone(&self.client)
    }

    /// The key the object store bumps on every write.
    fn revision_key(&self) -> Vec<u8> {
        self.key(&format!("meta/{}", Meta::Revision.name()))
    }
}

/// The end of the range of keys starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// The object store's backend on etcd.
#[derive(Debug)]
pub struct EtcdObjects {
    etcd: Etcd,
}

impl EtcdObjects {
    /// The objects under `etcd`'s prefix.
    pub fn new(etcd: Etcd) -> Self {
        Self { etcd }
    }
}

impl Backend for EtcdObjects {
    fn transact(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), ObjectsError>,
    ) -> Result<(), ObjectsError> {
        for _ in 0..MAX_TRIES {
            let mut tx = EtcdTx::begin(&self.etcd)?;
            f(&mut tx)?;
            if tx.commit()? {
                return Ok(());
            }
        }
        Err(EtcdError::Contention.into())
    }
}

/// One optimistic transaction.
struct EtcdTx<'a> {
    etcd: &'a Etcd,
    /// The etcd revision every read is at.
    snapshot: i64,
    /// `meta/revision`'s mod revision at the snapshot (0: absent).
    revision_mod: i64,
    /// Buffered puts (`Some`) and deletes (`None`).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Buffered range deletes, `[from, to)`.
    cleared: Vec<(Vec<u8>, Vec<u8>)>,
}

impl<'a> EtcdTx<'a> {
    fn begin(etcd: &'a Etcd) -> Result<Self, ObjectsError> {
        let key = etcd.revision_key();
        let response = etcd.run(async move |mut c| c.get(key, None).await)?;
        let snapshot = response.header().map_or(0, |h| h.revision());
        let revision_mod = response.kvs().first().map_or(0, |kv| kv.mod_revision());
        Ok(Self {
            etcd,
            snapshot,
            revision_mod,
            writes: BTreeMap::new(),
            cleared: Vec::new(),
        })
    }

    /// The committed key-values of `[from, to)` at the snapshot, then the buffered
    /// writes over them.
    fn range(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        limit: i64,
    ) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, ObjectsError> {
        let options = GetOptions::new()
            .with_range(to.clone())
            .with_revision(self.snapshot)
            .with_limit(limit);
        let start = from.clone();
        let response = self
            .etcd
            .run(async move |mut c| c.get(start, Some(options)).await)?;
        let mut out: BTreeMap<Vec<u8>, Vec<u8>> = response
            .kvs()
            .iter()
            .filter(|kv| !self.is_cleared(kv.key()))
            .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
            .collect();
        for (key, value) in self.writes.range(from..to) {
            match value {
                Some(v) => out.insert(key.clone(), v.clone()),
                None => out.remove(key),
            };
        }
        Ok(out)
    }

    fn is_cleared(&self, key: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|(from, to)| key >= from.as_slice() && key < to.as_slice())
    }

    fn read(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, ObjectsError> {
        if let Some(buffered) = self.writes.get(&key) {
            return Ok(buffered.clone());
        }
        if self.is_cleared(&key) {
            return Ok(None);
        }
        let options = GetOptions::new().with_revision(self.snapshot);
        let response = self
            .etcd
            .run(async move |mut c| c.get(key, Some(options)).await)?;
        Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// `objects/<plural>/<namespace>/<name>`, or for a workload of a guest cluster
    /// `objects/<plural>/<cluster>/<namespace>/<name>` (no part holds a `/`, so the number
    /// of parts tells them apart, and keys written before clusters were kept still read).
    fn object_key(&self, key: &ObjectKey) -> Vec<u8> {
        let plural = key.resource.info().plural;
        self.etcd.key(&if key.cluster.is_empty() {
            format!("objects/{plural}/{}/{}", key.namespace, key.name)
        } else {
            format!(
                "objects/{plural}/{}/{}/{}",
                key.cluster, key.namespace, key.name
            )
        })
    }

    fn change_key(&self, revision: u64) -> Vec<u8> {
        self.etcd.key(&format!("changes/{revision:020}"))
    }

    /// Commits the buffered writes; `false` when another writer committed first.
    fn commit(self) -> Result<bool, ObjectsError> {
        if self.writes.is_empty() && self.cleared.is_empty() {
            return Ok(true);
        }
        let revision_key = self.etcd.revision_key();
        let guard = if self.revision_mod == 0 {
            Compare::version(revision_key, CompareOp::Equal, 0)
        } else {
            Compare::mod_revision(revision_key, CompareOp::Equal, self.revision_mod)
        };
        let mut ops: Vec<TxnOp> = self
            .cleared
            .into_iter()
            .map(|(from, to)| TxnOp::delete(from, Some(DeleteOptions::new().with_range(to))))
            .collect();
        ops.extend(self.writes.into_iter().map(|(key, value)| match value {
            Some(v) => TxnOp::put(key, v, None),
            None => TxnOp::delete(key, None),
        }));
        let txn = Txn::new().when([guard]).and_then(ops);
        let response = self.etcd.run(async move |mut c| c.txn(txn).await)?;
        Ok(response.succeeded())
    }
}

fn json_bytes(value: &impl serde::Serialize) -> Result<Vec<u8>, ObjectsError> {
    serde_json::to_vec(value).map_err(|e| ObjectsError::Corrupt(format!("encoding JSON: {e}")))
}

impl Tx for EtcdTx<'_> {
    fn meta(&mut self, key: Meta) -> Result<u64, ObjectsError> {
        let Some(value) = self.read(self.etcd.key(&format!("meta/{}", key.name())))? else {
            return Ok(0);
        };
        std::str::from_utf8(&value)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                ObjectsError::Corrupt(format!("etcd meta/{} is not a number", key.name()))
            })
    }

    fn set_meta(&mut self, key: Meta, value: u64) -> Result<(), ObjectsError> {
        let k = self.etcd.key(&format!("meta/{}", key.name()));
        self.writes.insert(k, Some(value.to_string().into_bytes()));
        Ok(())
    }

    fn row(&mut self, key: &ObjectKey) -> Result<Option<Row>, ObjectsError> {
        self.read(self.object_key(key))?
            .map(|v| parse_json(&v))
            .transpose()
    }

    fn put_row(&mut self, key: &ObjectKey, row: &Row) -> Result<(), ObjectsError> {
        let k = self.object_key(key);
        self.writes.insert(k, Some(json_bytes(row)?));
        Ok(())
    }

    fn remove_row(&mut self, key: &ObjectKey) -> Result<(), ObjectsError> {
        let k = self.object_key(key);
        self.writes.insert(k, None);
        Ok(())
    }

    fn rows(&mut self, filter: &Filter) -> Result<Vec<(ObjectKey, Row)>, ObjectsError> {
        let prefix = match filter.resource {
            Some(r) => self.etcd.key(&format!("objects/{}/", r.info().plural)),
            None => self.etcd.key("objects/"),
        };
        let skip = self.etcd.key("objects/").len();
        let end = prefix_end(&prefix);
        let mut out = Vec::new();
        for (key, value) in self.range(prefix, end, 0)? {
            let text = String::from_utf8_lossy(&key[skip..]).into_owned();
            let parts: Vec<&str> = text.split('/').collect();
            let (plural, cluster, namespace, name) = match parts.as_slice() {
                [plural, namespace, name] => (*plural, "", *namespace, *name),
                [plural, cluster, namespace, name] => (*plural, *cluster, *namespace, *name),
                _ => return Err(ObjectsError::Corrupt(format!("etcd key objects/{text}"))),
            };
            let key = ObjectKey {
                resource: resource_of(plural)?,
                cluster: cluster.to_owned(),
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            };
            if filter.matches(&key) {
                out.push((key, parse_json(&value)?));
            }
        }
        Ok(out)
    }

    fn log(&mut self, change: &Logged) -> Result<(), ObjectsError> {
        let k = self.change_key(change.revision);
        self.writes.insert(k, Some(json_bytes(change)?));
        Ok(())
    }

    fn changes(&mut self, after: u64, limit: usize) -> Result<Vec<Logged>, ObjectsError> {
        let from = self.change_key(after.saturating_add(1));
        let end = prefix_end(&self.etcd.key("changes/"));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.range(from, end, limit)?
            .values()
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|v| parse_json(v))
            .collect()
    }

    fn forget_changes(&mut self, revision: u64) -> Result<(), ObjectsError> {
        let from = self.etcd.key("changes/");
        let to = self.change_key(revision.saturating_add(1));
        self.writes.retain(|k, _| !(k >= &from && k < &to));
        self.cleared.push((from, to));
        Ok(())
    }

    fn prune_events(&mut self, keep: u64) -> Result<(), ObjectsError> {
        let prefix = self
            .etcd
            .key(&format!("objects/{}/", Resource::Event.info().plural));
        let end = prefix_end(&prefix);
        // Count first, and prune only past a margin, so most writes read no event keys.
        let options = GetOptions::new()
            .with_range(end.clone())
            .with_revision(self.snapshot)
            .with_count_only();
        let start = prefix.clone();
        let stored = self
            .etcd
            .run(async move |mut c| c.get(start, Some(options)).await)?
            .count();
        let added = self.writes.range(prefix.clone()..end.clone()).count();
        let count = u64::try_from(stored).unwrap_or(0) + u64::try_from(added).unwrap_or(0);
        if count <= keep + keep / 10 {
            return Ok(());
        }
        let rows = self.rows(&Filter {
            resource: Some(Resource::Event),
            ..Filter::default()
        })?;
        let mut by_age: Vec<(u64, ObjectKey)> =
            rows.into_iter().map(|(k, r)| (r.revision, k)).collect();
        by_age.sort();
        let excess = by_age
            .len()
            .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
        for (_, key) in by_age.into_iter().take(excess) {
            self.remove_row(&key)?;
        }
        Ok(())
    }
}

/// Tells this replica's watches and reconcile loop about writes from every replica: each
/// new `meta/revision` is published with `revision`, and a change to an object users write
/// calls `desired`. Runs until the watch ends (then the process should stop: a replica
/// that no longer hears the store serves stale watches).
pub async fn follow(
    etcd: Etcd,
    revision: impl Fn(u64) + Send + 'static,
    desired: impl Fn() + Send + 'static,
) -> Result<(), EtcdError> {
    let endpoints = etcd.endpoints.join(",");
    let fail = |source| EtcdError::Client {
        endpoints: endpoints.clone(),
        source,
    };
    let prefix = etcd.key("");
    let revision_key = etcd.revision_key();
    let objects = etcd.key("objects/");
    let mut client = etcd.client();
    let mut stream = client
        .watch(prefix, Some(WatchOptions::new().with_prefix()))
        .await
        .map_err(fail)?;
    while let Some(response) = stream.message().await.map_err(fail)? {
        let mut user_write = false;
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            if kv.key() == revision_key.as_slice() && event.event_type() == EventType::Put {
                if let Some(r) = std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.parse().ok())
                {
                    revision(r);
                }
            } else if let Some(rest) = kv.key().strip_prefix(objects.as_slice()) {
                let plural = rest.split(|b| *b == b'/').next().unwrap_or_default();
                user_write |= std::str::from_utf8(plural)
                    .ok()
                    .and_then(|p| resource_of(p).ok())
                    .is_some_and(|r| r.info().writer == Writer::User);
            }
        }
        if user_write {
            desired();
        }
    }
    Ok(())
}

/// This replica's leadership: held while its lease is kept alive.
#[derive(Clone, Debug)]
pub struct Leadership {
    /// The lease it holds the election key on.
    lease: i64,
    /// The election key this replica holds.
    key: Vec<u8>,
    /// That key's create revision: the fence every control write checks.
    revision: i64,
    /// Set when the lease could not be kept.
    lost: Arc<AtomicBool>,
}

impl Leadership {
    /// Whether the lease was lost (another replica may lead now).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The flag [`Leadership::lost`] reads, for a loop to stop on.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }
}

/// Campaigns for leadership as `replica` on a lease of `ttl`, blocking until elected or
/// `stop` is set (then `None`, the lease revoked); the lease is kept alive in the
/// background, and [`Leadership::lost`] turns true when it cannot be.
///
/// # Errors
/// When etcd fails.
pub fn campaign(
    etcd: &Etcd,
    replica: &str,
    ttl: Duration,
    stop: &Arc<AtomicBool>,
) -> Result<Option<Leadership>, EtcdError> {
    let seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
    let lease = etcd
        .run(async move |mut c| c.lease_grant(seconds, None).await)?
        .id();
    let lost = Arc::new(AtomicBool::new(false));
    let (mut keeper, mut replies) = etcd.run(async move |mut c| c.lease_keep_alive(lease).await)?;
    let keep_lost = lost.clone();
    let every = ttl / 3;
    etcd.spawn(async move {
        loop {
            let alive = keeper.keep_alive().await.is_ok()
                && matches!(replies.message().await, Ok(Some(r)) if r.ttl() > 0);
            if !alive {
                keep_lost.store(true, Ordering::SeqCst);
                return;
            }
            tokio::time::sleep(every).await;
        }
    });
    let name = etcd.key("leader");
    let value = replica.to_owned();
    let stopping = stop.clone();
    let elected = etcd.wait(async move |mut c| {
        tokio::select! {
            elected = c.campaign(name, value, lease) => elected.map(Some),
            () = async {
                while !stopping.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } => Ok(None),
        }
    })?;
    let Some(elected) = elected else {
        etcd.run(async move |mut c| c.lease_revoke(lease).await)?;
        return Ok(None);
    };
    let leader = elected.leader().ok_or(EtcdError::NotLeader)?;
    Ok(Some(Leadership {
        lease,
        key: leader.key().to_vec(),
        revision: leader.rev(),
        lost,
    }))
}

/// Gives up `leadership` at once (revokes its lease), so another replica need not wait
/// for it to expire.
///
/// # Errors
/// When etcd fails.
pub fn resign(etcd: &Etcd, leadership: &Leadership) -> Result<(), EtcdError> {
    let lease = leadership.lease;
    etcd.run(async move |mut c| c.lease_revoke(lease).await)?;
    Ok(())
}

/// The control plane's records in etcd, written only while `leadership` holds.
#[derive(Clone, Debug)]
pub struct EtcdStore {
    etcd: Etcd,
    leadership: Leadership,
}

impl EtcdStore {
    /// The records under `etcd`'s prefix, fenced by `leadership`.
    pub fn new(etcd: Etcd, leadership: Leadership) -> Self {
        Self { etcd, leadership }
    }

    fn record_key(&self, key: &Key) -> Vec<u8> {
        self.etcd.key(&format!("control/{key}"))
    }
}

fn store_error(e: EtcdError) -> StoreError {
    StoreError::Backend(Box::new(e))
}

impl Store for EtcdStore {
    fn load(&self) -> Result<BTreeMap<Key, Versioned>, StoreError> {
        let prefix = self.etcd.key("control/");
        let skip = prefix.len();
        let response = self
            .etcd
            .run(async move |mut c| c.get(prefix, Some(GetOptions::new().with_prefix())).await)
            .map_err(store_error)?;
        response
            .kvs()
            .iter()
            .map(|kv| {
                let text = String::from_utf8_lossy(&kv.key()[skip..]).into_owned();
                let key = Key::parse(&text).ok_or_else(|| StoreError::Unknown {
                    key: text.clone(),
                    what: "record kind".into(),
                })?;
                let version = u64::try_from(kv.version()).unwrap_or(0);
                Ok((
                    key,
                    Versioned {
                        version,
                        value: kv.value().to_vec(),
                    },
                ))
            })
            .collect()
    }

    fn write(&mut self, writes: &[Write]) -> Result<(), StoreError> {
        if self.leadership.lost() {
            return Err(store_error(EtcdError::NotLeader));
        }
        let mut compares = vec![Compare::create_revision(
            self.leadership.key.clone(),
            CompareOp::Equal,
            self.leadership.revision,
        )];
        let mut ops = Vec::with_capacity(writes.len());
        for w in writes {
            if let Some(v) = &w.value
                && v.len() > MAX_RECORD_BYTES
            {
                return Err(StoreError::TooLarge {
                    key: w.key.to_string(),
                    bytes: v.len(),
                });
            }
            let key = self.record_key(&w.key);
            let before = i64::try_from(w.version.saturating_sub(1)).unwrap_or(i64::MAX);
            compares.push(Compare::version(key.clone(), CompareOp::Equal, before));
            ops.push(match &w.value {
                Some(v) => TxnOp::put(key, v.clone(), None),
                None => TxnOp::delete(key, None),
            });
        }
        let txn = Txn::new().when(compares).and_then(ops);
        let response = self
            .etcd
            .run(async move |mut c| c.txn(txn).await)
            .map_err(store_error)?;
        if response.succeeded() {
            return Ok(());
        }
        self.explain_refusal(writes)
    }
}

impl EtcdStore {
    /// Why a write's compares failed: leadership lost, or the first record at another
    /// version.
    fn explain_refusal(&self, writes: &[Write]) -> Result<(), StoreError> {
        let fence = self.leadership.key.clone();
        let held = self
            .etcd
            .run(async move |mut c| c.get(fence, None).await)
            .map_err(store_error)?
            .kvs()
            .first()
            .is_some_and(|kv| kv.create_revision() == self.leadership.revision);
        if !held {
            self.leadership.lost.store(true, Ordering::SeqCst);
            return Err(store_error(EtcdError::NotLeader));
        }
        let stored = self.load()?;
        for w in writes {
            let found = stored.get(&w.key).map_or(0, |r| r.version);
            if w.version != found + 1 {
                return Err(StoreError::Conflict {
                    key: w.key.to_string(),
                    expected: w.version.saturating_sub(1),
                    found,
                });
            }
        }
        Err(StoreError::Backend(
            "etcd refused the write and no record explains it".into(),
        ))
    }
}
