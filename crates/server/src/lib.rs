//! `plinth serve`: the control plane as a long-lived service.
//!
//! Owns the HTTP API ([`api`]: Kubernetes-style resources with `resourceVersion` and
//! watch, bearer tokens with roles, audit events), the object store ([`objects`]: SQLite)
//! and the reconcile loop ([`controller`]) that runs the one control plane over host
//! agents. It holds no decisions of its own: what to build where is `plinth-control`'s,
//! what a manifest means is `plinth-model`'s.

pub mod api;
pub mod auth;
pub mod controller;
pub mod error;
pub mod events;
pub mod kinds;
pub mod manifests;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod serial;
pub mod sweeps;
pub mod tls;
pub mod watch_cache;
pub mod wire;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub use error::{FileError, ObjectsError, ServeError};

use crate::auth::{Role, Tokens};
use crate::controller::{Agents, Controller, ControllerConfig, StateStore};
use crate::metrics::Metrics;
use crate::objects::{GroupedWrite, Objects, Txn};

/// What the API handlers and the reconcile loop share.
pub struct Shared {
    /// The object store.
    pub objects: Mutex<Objects>,
    /// The tokens accepted.
    pub tokens: Tokens,
    /// The newest revision written, for watches to wait on.
    pub revisions: tokio::sync::watch::Sender<u64>,
    /// Bumped on every write of desired state: the reconcile loop re-reads the estate.
    pub desired: AtomicU64,
    /// `/metrics`.
    pub metrics: Metrics,
    /// Writes waiting for the next group commit.
    queue: Mutex<Vec<QueuedWrite>>,
    /// The service is stopping: watches end so the last connections close.
    pub closing: AtomicBool,
    /// How to reach the hosts' agents (token, TLS), for reading VM consoles (set once,
    /// from `--agents`).
    pub agents: std::sync::OnceLock<Agents>,
    /// The recent changes, read once for every watch.
    pub watch_cache: watch_cache::WatchCache,
    /// Questions for the running control plane, answered by the reconcile loop.
    asks: Mutex<Vec<controller::Ask>>,
}

/// A write waiting for a group commit: it runs its own transaction in the batch and
/// returns how to answer once the batch's outcome is known.
type QueuedWrite = GroupedWrite<Answer>;
/// Answers a queued write with the commit's outcome.
type Answer = Box<dyn FnOnce(Result<(), String>) + Send>;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("revision", &*self.revisions.borrow())
            .field("desired", &self.desired)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Shares `objects` and `tokens`.
    ///
    /// # Errors
    /// When the store's revision cannot be read.
    pub fn new(mut objects: Objects, tokens: Tokens) -> Result<Self, ObjectsError> {
        let revision = objects.transact(|t| t.revision())?;
        Ok(Self {
            objects: Mutex::new(objects),
            tokens,
            revisions: tokio::sync::watch::Sender::new(revision),
            desired: AtomicU64::new(0),
            metrics: Metrics::default(),
            queue: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
            agents: std::sync::OnceLock::new(),
            watch_cache: watch_cache::WatchCache::default(),
            asks: Mutex::new(Vec::new()),
        })
    }

    /// Leaves `ask` for the reconcile loop, which answers it between two steps. Asks
    /// whose requests gave up waiting are dropped (a replica that does not lead has no loop
    /// to take them).
    pub(crate) fn ask(&self, ask: controller::Ask) {
        let mut asks = self
            .asks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        asks.retain(|a| !a.abandoned());
        asks.push(ask);
    }

    /// The questions asked since the last call.
    fn take_asks(&self) -> Vec<controller::Ask> {
        std::mem::take(
            &mut *self
                .asks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Runs the write `f` in the next group commit: every write queued meanwhile shares
    /// one commit and one wait for the disk. Resolves once the commit is durable; `f`'s
    /// own failure undoes only `f`. `f` may run more than once (see [`Objects::transact`]).
    ///
    /// # Errors
    /// What `f` returns, or the commit's failure.
    pub async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnMut(&mut Txn<'_>) -> Result<T, ObjectsError> + Send + 'static,
    ) -> Result<T, ObjectsError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let write: QueuedWrite = Box::new(move |objects| {
            let result = objects.transact(f);
            Box::new(move |committed: Result<(), String>| {
                let _ = tx.send(committed.map_err(ObjectsError::Commit).and(result));
            })
        });
        self.queue
            .lock()
            .map_err(|_| ObjectsError::Corrupt("the write queue's lock is poisoned".into()))?
            .push(write);
        let shared = self.clone();
        // Whoever takes the store's lock first commits every write queued by then.
        tokio::task::spawn_blocking(move || shared.commit_queued());
        rx.await
            .unwrap_or_else(|_| Err(ObjectsError::Commit("the writer stopped".into())))
    }

    /// Commits every queued write in one transaction, then answers each.
    fn commit_queued(&self) {
        let started = std::time::Instant::now();
        let Ok(mut objects) = self.objects.lock() else {
            return;
        };
        let writes: Vec<QueuedWrite> = match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        if writes.is_empty() {
            return;
        }
        let (answers, committed) = objects.group(writes);
        let revision = objects.transact(|t| t.revision());
        drop(objects);
        self.metrics.store(started.elapsed());
        let committed = committed.map_err(|e| e.to_string());
        for answer in answers {
            answer(committed.clone());
        }
        if let Ok(revision) = revision {
            self.publish(revision);
        }
    }

    /// Tells the watches about `revision`.
    pub fn publish(&self, revision: u64) {
        self.revisions.send_if_modified(|r| {
            let newer = revision > *r;
            *r = (*r).max(revision);
            newer
        });
    }

    /// Runs `f` as one transaction of the object store (blocking: SQLite waits for
    /// fsync, etcd for its quorum), then tells the watches about the new revision.
    ///
    /// # Errors
    /// What `f` returns, or a poisoned lock.
    pub fn with_objects<T>(
        &self,
        f: impl FnMut(&mut Txn<'_>) -> Result<T, ObjectsError>,
    ) -> Result<T, ObjectsError> {
        let started = std::time::Instant::now();
        let mut objects = self.objects.lock().map_err(|_| {
            ObjectsError::Corrupt("a writer panicked while holding the store".into())
        })?;
        let out = objects.transact(f);
        let revision = objects.transact(|t| t.revision());
        drop(objects);
        self.metrics.store(started.elapsed());
        if let Ok(revision) = revision {
            self.publish(revision);
        }
        out
    }

    /// Desired state changed: the reconcile loop re-reads the estate.
    pub fn desired_changed(&self) {
        self.desired.fetch_add(1, Ordering::SeqCst);
    }
}

/// `plinth serve`'s settings.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where the API listens.
    pub listen: SocketAddr,
    /// The object store, the control plane's state and the default tokens live here.
    pub data_dir: PathBuf,
    /// A tokens file; default: `DATA_DIR/tokens`, made with one admin token when absent.
    pub tokens: Option<PathBuf>,
    /// An agents file (`token PATH`, `HOST ADDRESS` lines) for hosts the Inventory does
    /// not give an `agent:`.
    pub agents: Option<PathBuf>,
    /// A replica of a control plane replicated on etcd, instead of SQLite in `data_dir`.
    pub etcd: Option<EtcdConfig>,
    /// Serve the API over TLS with this certificate; plain HTTP when `None`.
    pub tls: Option<tls::Tls>,
}

/// A replica of a control plane whose store is etcd.
#[derive(Clone, Debug)]
pub struct EtcdConfig {
    /// etcd's client URLs (`http://HOST:PORT`).
    pub endpoints: Vec<String>,
    /// Every key of this control plane starts with it.
    pub prefix: String,
    /// This replica's name, as the election shows it.
    pub replica: String,
    /// The leader's lease: another replica takes over within it when the leader dies.
    pub lease: std::time::Duration,
}

/// The files of a data directory.
pub mod paths {
    use std::path::{Path, PathBuf};

    /// The object store.
    pub fn objects(data: &Path) -> PathBuf {
        data.join("objects.db")
    }
    /// The control plane's records.
    pub fn state(data: &Path) -> PathBuf {
        data.join("control.db")
    }
    /// The default tokens file.
    pub fn tokens(data: &Path) -> PathBuf {
        data.join("tokens")
    }
    /// The admin token made with the default tokens file.
    pub fn admin_token(data: &Path) -> PathBuf {
        data.join("admin.token")
    }
    /// Where `plinth serve` keeps its data, and the CLI looks for the admin token, when
    /// no directory is given: `$XDG_DATA_HOME/plinth/serve`, else
    /// `~/.local/share/plinth/serve`, else `.plinth/serve`.
    pub fn default_data_dir() -> PathBuf {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        match base {
            Some(b) => b.join("plinth").join("serve"),
            None => PathBuf::from(".plinth").join("serve"),
        }
    }
}

/// Makes the error of `what` failing on `path`.
pub(crate) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Writes `text` to a new file readable by its owner only.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), FileError> {
    plinth_tls::write_private(path, text).map_err(io("writing", path))
}

/// The tokens to accept: the given file, or the data directory's, made with one admin
/// token (written beside it) when absent. The path of a new admin token, if one was made.
fn tokens(config: &ServeConfig) -> Result<(Tokens, Option<PathBuf>), ServeError> {
    if let Some(path) = &config.tokens {
        return Ok((Tokens::load(path)?, None));
    }
    let path = paths::tokens(&config.data_dir);
    let mut made = None;
    if !path.exists() {
        let (secret, line) = Tokens::generate(Role::Admin, "admin");
        let admin = paths::admin_token(&config.data_dir);
        let _ = std::fs::remove_file(&admin);
        write_private(&admin, &format!("{secret}\n"))?;
        write_private(
            &path,
            &format!(
                "# ROLE NAME sha256:HEX — `plinth token --role ROLE --name NAME --tokens THIS_FILE` adds one\n{line}\n"
            ),
        )?;
        made = Some(admin);
    }
    Ok((Tokens::load(&path)?, made))
}

/// Tells whoever reads standard output: a line, flushed; a closed or full standard output
/// does not stop the service.
fn say(line: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "plinth serve: {line}");
    let _ = out.flush();
}

/// Why a replica must stop, once something makes it (the first reason is kept).
#[derive(Debug, Default)]
struct Fatal {
    reason: Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl Fatal {
    #[cfg(feature = "etcd")]
    fn raise(&self, reason: String) {
        tracing::error!(%reason, "stopping");
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert(reason);
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|mut r| r.take())
    }
}

/// The reconcile loop as this process runs it: always (one process on SQLite), or while
/// it leads (a replica on etcd).
enum Mode {
    Single(PathBuf),
    #[cfg(feature = "etcd")]
    Replica(objects::etcd::Etcd, EtcdConfig),
}

/// Opens the object store the configuration names.
fn open_store(config: &ServeConfig) -> Result<(Objects, Mode), ServeError> {
    let Some(etcd) = &config.etcd else {
        let objects = Objects::sqlite(&paths::objects(&config.data_dir))?;
        return Ok((objects, Mode::Single(paths::state(&config.data_dir))));
    };
    #[cfg(feature = "etcd")]
    {
        let connection =
            objects::etcd::Etcd::connect(&etcd.endpoints, &etcd.prefix).map_err(|e| {
                ServeError::Replica {
                    replica: etcd.replica.clone(),
                    message: format!("{e}; is etcd running (`scripts/etcd up`)?"),
                }
            })?;
        let objects = Objects::new(Box::new(objects::etcd::EtcdObjects::new(
            connection.clone(),
        )));
        Ok((objects, Mode::Replica(connection, etcd.clone())))
    }
    #[cfg(not(feature = "etcd"))]
    {
        let _ = etcd;
        Err(ServeError::NoEtcd)
    }
}

/// Starts the reconcile loop's thread for `mode`.
fn start_loop(
    mode: Mode,
    shared: &Arc<Shared>,
    agents: Agents,
    stop: &Arc<AtomicBool>,
    fatal: &Arc<Fatal>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let shared = shared.clone();
    let stop = stop.clone();
    match mode {
        Mode::Single(state) => {
            // Nothing stops a single process but a signal.
            let _ = fatal;
            shared.metrics.set_leading(true);
            let config = ControllerConfig {
                agents,
                state: StateStore::Sqlite(state),
            };
            std::thread::Builder::new()
                .name("reconcile".into())
                .spawn(move || Controller::new(shared, config, vec![stop]).run())
        }
        #[cfg(feature = "etcd")]
        Mode::Replica(etcd, replica) => {
            let fatal = fatal.clone();
            follow(&etcd, &shared, &replica.replica, &fatal);
            std::thread::Builder::new()
                .name("reconcile".into())
                .spawn(move || lead(&etcd, &replica, shared, agents, &stop, &fatal))
        }
    }
}

/// Keeps this replica's watches and reconcile loop told of every replica's writes.
#[cfg(feature = "etcd")]
fn follow(etcd: &objects::etcd::Etcd, shared: &Arc<Shared>, replica: &str, fatal: &Arc<Fatal>) {
    let (published, desired) = (shared.clone(), shared.clone());
    let (fatal, replica, connection) = (fatal.clone(), replica.to_owned(), etcd.clone());
    etcd.spawn(async move {
        let ended = objects::etcd::follow(
            connection,
            move |r| published.publish(r),
            move || desired.desired_changed(),
        )
        .await;
        let why = match ended {
            Ok(()) => "etcd ended the watch".to_owned(),
            Err(e) => e.to_string(),
        };
        fatal.raise(format!(
            "replica {replica} no longer hears etcd ({why}): stopping rather than serve stale watches"
        ));
    });
}

/// Campaigns, then runs the reconcile loop while this replica leads.
#[cfg(feature = "etcd")]
fn lead(
    etcd: &objects::etcd::Etcd,
    config: &EtcdConfig,
    shared: Arc<Shared>,
    agents: Agents,
    stop: &Arc<AtomicBool>,
    fatal: &Fatal,
) {
    use objects::etcd;
    let leadership = match etcd::campaign(etcd, &config.replica, config.lease, stop) {
        Ok(Some(l)) => l,
        Ok(None) => return,
        Err(e) => return fatal.raise(format!("campaigning for leadership: {e}")),
    };
    say(&format!(
        "replica {} leads (lease {}); running the reconcile loop",
        config.replica,
        humantime::format_duration(config.lease)
    ));
    shared.metrics.set_leading(true);
    let controller = ControllerConfig {
        agents,
        state: StateStore::Etcd(etcd::EtcdStore::new(etcd.clone(), leadership.clone())),
    };
    Controller::new(
        shared.clone(),
        controller,
        vec![stop.clone(), leadership.lost_flag()],
    )
    .run();
    shared.metrics.set_leading(false);
    if leadership.lost() {
        fatal.raise(format!(
            "lost the leadership (its etcd lease of {} expired): another replica leads; restart this one to stand again",
            humantime::format_duration(config.lease)
        ));
    } else if let Err(e) = etcd::resign(etcd, &leadership) {
        tracing::warn!(error = %e, "resigning: the next leader waits for the lease to expire");
    }
}

/// Runs the service until Ctrl-C or SIGTERM (or, for a replica, until it loses etcd or
/// its leadership).
///
/// # Errors
/// When the data directory, the tokens or agents file, the store or the address fail.
pub fn serve(config: &ServeConfig) -> Result<(), ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(io("creating", &config.data_dir))?;
    let (tokens, made) = tokens(config)?;
    let agents = match &config.agents {
        Some(path) => Agents::load(path)?,
        None => Agents::default(),
    };
    let (objects, mode) = open_store(config)?;
    let shared = Arc::new(Shared::new(objects, tokens)?);
    if config.agents.is_some() {
        let _ = shared.agents.set(agents.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let fatal = Arc::new(Fatal::default());
    let loop_thread = start_loop(mode, &shared, agents, &stop, &fatal)
        .map_err(io("starting the reconcile loop in", &config.data_dir))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io("starting the runtime for", &config.data_dir))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Listen {
                address: config.listen,
                source,
            })?;
        let address = listener.local_addr().map_err(|source| ServeError::Listen {
            address: config.listen,
            source,
        })?;
        let store = match &config.etcd {
            Some(e) => format!(
                "objects in etcd {} under {}, as replica {}",
                e.endpoints.join(","),
                e.prefix,
                e.replica
            ),
            None => format!("data in {}", config.data_dir.display()),
        };
        let tls = match &config.tls {
            Some(tls) => Some(tls::server_config(tls, &config.data_dir, address)?),
            None => None,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        say(&format!("listening on {scheme}://{address}; {store}"));
        match &tls {
            Some((_, Some(ca))) => say(&format!(
                "clients trust the CA {} (the CLI's --ca-file, or a context's certificate-authority)",
                ca.display()
            )),
            Some((_, None)) => {}
            None if !address.ip().is_loopback() => say(
                "tokens cross the network in clear text: serve over TLS with --tls (or --tls-cert and --tls-key)",
            ),
            None => {}
        }
        if let Some(admin) = &made {
            say(&format!("made an admin token in {}", admin.display()));
        }
        let listen = |source| ServeError::Listen { address, source };
        match tls {
            Some((tls, _)) => {
                let listener = tls::TlsListener::new(listener, tls).map_err(listen)?;
                run_api(listener, shared.clone(), fatal.clone()).await.map_err(listen)
            }
            None => run_api(listener, shared.clone(), fatal.clone()).await.map_err(listen),
        }
    });
    stop.store(true, Ordering::SeqCst);
    // The loop ends at its next step.
    let _ = loop_thread.join();
    served?;
    match (fatal.take(), &config.etcd) {
        (Some(message), Some(e)) => Err(ServeError::Replica {
            replica: e.replica.clone(),
            message,
        }),
        _ => Ok(()),
    }
}

/// Serves the API on `listener` until [`shutdown`].
async fn run_api<L>(listener: L, shared: Arc<Shared>, fatal: Arc<Fatal>) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, api::router(shared.clone()))
        .with_graceful_shutdown(shutdown(shared, fatal))
        .await
}

/// Resolves on Ctrl-C, SIGTERM or a fatal error, after telling the watches to end.
async fn shutdown(shared: Arc<Shared>, fatal: Arc<Fatal>) {
    tokio::select! {
        () = signal() => {}
        () = fatal.notify.notified() => {}
    }
    say("shutting down (the VMs keep running; the next start resumes)");
    shared.closing.store(true, Ordering::SeqCst);
    shared.revisions.send_modify(|_| {});
    shared.watch_cache.wake_all();
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
