//! The reconcile loop of `plinth serve`: the stored objects form an estate; once it is
//! valid, the one control plane (the same `Control` as `plinth run` and the simulator)
//! runs it over the host agents, durable in its own store (SQLite, or etcd while this
//! replica leads); what it sees goes back
//! into the objects' status, the reported VMs and hosts, and events.
//!
//! Level-triggered: every change of desired state re-reads the whole estate. A valid
//! change is planned and restored into the running control plane (a new cluster is
//! built); an invalid one leaves the last valid estate running, and the objects' `Accepted`
//! conditions say why.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use plinth_control::drs;
use plinth_control::maintenance::{Budget, Review};
use plinth_control::store::Store;
use plinth_control::upgrade::RolloutPlan;
use plinth_control::{
    CommandId, CommandKind, ConditionChange, ControlConfig, ControlError, ControlEvent, HostState,
    Observation, Ready, Reason, Time, UpgradeKind,
};
use plinth_model::kinds::cluster::ClusterSpec;
use plinth_model::{Diagnostic, Estate, Severity as DiagSeverity};
use plinth_proto::{MigrationStats, Token};
use plinth_qemu::bootstrap::Pools;
use plinth_qemu::{DriverConfig, Journal, QemuDriver, Session, wall_clock};
use plinth_store::SqliteStore;
use plinth_tls::{ClientConfig, LinkFiles};
use serde_json::{Value, json};

use crate::Shared;
use crate::api::ApiError;
use crate::error::ServeError;
use crate::events::{Reporter, Severity, event};
use crate::kinds::{ObjectKey, PLINTH_GROUP_VERSION, Resource};
use crate::manifests;
use crate::objects::Reported;

/// How often the status of clusters, VMs and hosts is written while something changes.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);
/// The longest one step of the loop waits for an observation.
const STEP_MS: u64 = 100;

/// How to reach the hosts' agents, besides the `agent:` the Inventory may give a host.
#[derive(Clone, Debug, Default)]
pub struct Agents {
    /// The agents' shared token.
    pub token: String,
    /// Agent address by host name.
    pub hosts: BTreeMap<String, SocketAddr>,
    /// Mutual TLS to the agents, from the `tls DIR` line; None: plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Agents {
    /// Reads an agents file: `token PATH` and optionally `tls DIR` (paths relative to the
    /// file; DIR is what `plinth certs DIR --control-plane` wrote), then `HOST ADDRESS` per
    /// line; `#` starts a comment. `scripts/sim-agents` and `scripts/testbed` write one.
    ///
    /// # Errors
    /// When the file or its token cannot be read, or a line is malformed.
    pub fn load(path: &Path) -> Result<Self, ServeError> {
        let bad = |message: String| ServeError::Agents {
            path: path.to_owned(),
            message,
        };
        let text =
            std::fs::read_to_string(path).map_err(crate::io("reading the agents file", path))?;
        let mut agents = Self::default();
        let mut token_file = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let Some((first, rest)) = line.split_once(char::is_whitespace) else {
                if line.is_empty() {
                    continue;
                }
                return Err(bad(format!(
                    "line {}: expected `token PATH`, `tls DIR` or `HOST ADDRESS`",
                    i + 1
                )));
            };
            let rest = rest.trim();
            let relative = || path.parent().unwrap_or(Path::new(".")).join(rest);
            if first == "token" {
                token_file = Some(relative());
                continue;
            }
            if first == "tls" {
                let dir = relative();
                let config = LinkFiles::control_plane(&dir)
                    .control_plane_config()
                    .map_err(|e| {
                        bad(format!(
                            "line {}: {e} (`plinth certs {} --control-plane` issues the control plane's certificate)",
                            i + 1,
                            dir.display()
                        ))
                    })?;
                agents.tls = Some(config);
                continue;
            }
            let address = rest.parse().map_err(|_| {
                bad(format!(
                    "line {}: `{rest}` is not an address like 127.0.0.1:7700",
                    i + 1
                ))
            })?;
            agents.hosts.insert(first.to_owned(), address);
        }
        let token_file = token_file.ok_or_else(|| bad("no `token PATH` line".to_owned()))?;
        agents.token = std::fs::read_to_string(&token_file)
            .map_err(crate::io("reading the agents' token", &token_file))?
            .trim()
            .to_owned();
        Ok(agents)
    }
}

/// Where the control plane keeps its records.
#[derive(Clone, Debug)]
pub enum StateStore {
    /// A SQLite file of this process.
    Sqlite(PathBuf),
    /// etcd, written only while this replica leads.
    #[cfg(feature = "etcd")]
    Etcd(crate::objects::etcd::EtcdStore),
}

impl StateStore {
    fn open(&self) -> Result<Box<dyn Store + Send>, String> {
        match self {
            Self::Sqlite(path) => SqliteStore::open(path)
                .map(|s| Box::new(s) as Box<dyn Store + Send>)
                .map_err(|e| format!("opening the control plane's state {}: {e}", path.display())),
            #[cfg(feature = "etcd")]
            Self::Etcd(store) => Ok(Box::new(store.clone())),
        }
    }
}

/// The reconcile loop's settings.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// How to reach agents the Inventory does not name.
    pub agents: Agents,
    /// The control plane's records.
    pub state: StateStore,
}

/// Where the reconcile loop sends the answer to an [`Ask`].
pub(crate) type Reply<T> = tokio::sync::oneshot::Sender<Result<T, ApiError>>;

/// A question for the running control plane from an API request, answered by the
/// reconcile loop between two of its steps.
#[derive(Debug)]
pub(crate) enum Ask {
    /// `POST …/hosts/NAME/maintenance`: plan the host's maintenance on the placement as it
    /// is now and, unless `dry_run`, carry it out when it is safe or `force`d.
    Maintenance {
        /// The host.
        host: String,
        /// Go ahead even when an etcd quorum or a PodDisruptionBudget breaks.
        force: bool,
        /// Only plan.
        dry_run: bool,
        /// Where the answer goes.
        reply: Reply<Review>,
    },
    /// `POST …/clusters/NAME/upgrade`: plan the cluster's rolling upgrade to `to` on the
    /// placement as it is now.
    Upgrade {
        /// The cluster.
        cluster: String,
        /// Its spec as stored: the version and image it asks for now.
        spec: Box<ClusterSpec>,
        /// The Kubernetes version or OS image.
        to: String,
        /// Where the answer goes.
        reply: Reply<RolloutPlan>,
    },
    /// `POST …/drs`: the DRS pass the control plane would make now.
    Drs {
        /// Where the answer goes.
        reply: Reply<drs::Review>,
    },
}

impl Ask {
    /// Its request stopped waiting for the answer.
    pub(crate) fn abandoned(&self) -> bool {
        match self {
            Self::Maintenance { reply, .. } => reply.is_closed(),
            Self::Upgrade { reply, .. } => reply.is_closed(),
            Self::Drs { reply } => reply.is_closed(),
        }
    }
}

/// A planning question's refusal as the API answers it.
fn refused(e: ControlError) -> ApiError {
    match e {
        ControlError::UnknownHost { .. } | ControlError::UnknownCluster { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "NotFound", e.to_string())
        }
        ControlError::VersionSkew { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", e.to_string())
        }
        ControlError::NoVmPool { .. } => {
            ApiError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
        }
    }
}

/// The control plane running one estate.
struct Running {
    session: Session,
    /// The estate it runs.
    estate: Estate,
    /// The desired objects it was planned from.
    desired: Vec<(ObjectKey, Value)>,
    /// The PodDisruptionBudgets with their pods by node as the plan bound them, made when
    /// a maintenance is first asked for (the guests report no pods).
    budgets: Option<Vec<Budget>>,
    /// Each host's agent address, as the driver reaches it.
    agents: BTreeMap<String, SocketAddr>,
}

impl Running {
    /// Plans the maintenance of `host` on the placement as it is now
    /// ([`plinth_control::Control::maintenance_review`], what `plinth maintenance
    /// --dry-run` prints); unless `dry_run`, requests it from the control plane when it
    /// is safe or `force`d.
    fn maintenance(&mut self, host: &str, force: bool, dry_run: bool) -> Result<Review, ApiError> {
        let budgets = match &mut self.budgets {
            Some(b) => b,
            None => {
                let setup = plinth_sim::owned_setup(&self.estate).map_err(|e| {
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "Conflict",
                        format!("the running estate's pods could not be planned: {e}"),
                    )
                })?;
                self.budgets.insert(setup.budgets())
            }
        };
        let review = self
            .session
            .control()
            .maintenance_review(host, budgets, force)
            .map_err(refused)?;
        if dry_run {
            return Ok(review);
        }
        let state = self.session.control().host_state(host);
        if state != Some(HostState::Up) {
            let state = state.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "Conflict",
                format!(
                    "host {host} is {state}: only a host that is up can be taken down for maintenance; `plinth get hosts` shows the states"
                ),
            ));
        }
        if review.refused() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "Refused",
                format!(
                    "the maintenance of {host} is refused: {}; ask with dryRun=All to see the plan, or with force=true to take the host down anyway",
                    review.refusals.join("; ")
                ),
            ));
        }
        self.session.request(Observation::MaintenanceRequested {
            host: host.to_owned(),
        });
        Ok(review)
    }

    /// Plans the rolling upgrade of `cluster`, whose stored spec is `spec`, to `to` on the
    /// placement as it is now ([`plinth_control::Control::upgrade_plan`], what `plinth
    /// upgrade --dry-run` prints).
    fn upgrade(
        &self,
        cluster: &str,
        spec: &ClusterSpec,
        to: &str,
    ) -> Result<RolloutPlan, ApiError> {
        self.session
            .control()
            .upgrade_plan(cluster, spec, to)
            .map_err(refused)
    }
}

/// The reconcile loop.
pub struct Controller {
    shared: Arc<Shared>,
    config: ControllerConfig,
    stop: Vec<Arc<AtomicBool>>,
    running: Option<Running>,
    /// Per desired object, its `Accepted` condition.
    accepted: BTreeMap<ObjectKey, Value>,
    /// Why nothing runs, when nothing does.
    not_running: Option<String>,
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
    })
}

fn messages(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(|d| match &d.help {
            Some(h) => format!("{}: {} ({h})", d.severity, d.message),
            None => format!("{}: {}", d.severity, d.message),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The object a control-plane condition or event is about (`cluster/NAME`, `pool/C/P`,
/// `vm/NAME`, `node/NAME`, `host/NAME`).
fn involved(object: &str) -> ObjectKey {
    match object.split_once('/') {
        Some(("cluster", name)) => ObjectKey::global(Resource::Cluster, name),
        Some(("pool", rest)) => {
            ObjectKey::global(Resource::Cluster, rest.split('/').next().unwrap_or(rest))
        }
        Some(("vm" | "node", name)) => ObjectKey::global(Resource::VirtualMachine, name),
        Some((_, name)) => ObjectKey::global(Resource::Host, name),
        None => ObjectKey::global(Resource::Host, object),
    }
}

/// A command's kind as the control plane's own encoding names it (`createVm`).
fn command_name(kind: &CommandKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.get("kind").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// The rolling upgrades a change of desired state asks for: a Cluster whose
/// `kubernetesVersion` or `osImage` changed.
fn upgrades(
    before: &[(ObjectKey, Value)],
    after: &[(ObjectKey, Value)],
) -> Vec<(String, UpgradeKind)> {
    let mut out = Vec::new();
    for (key, new) in after
        .iter()
        .filter(|(k, _)| k.resource == Resource::Cluster)
    {
        let Some((_, old)) = before.iter().find(|(k, _)| k == key) else {
            continue;
        };
        for (field, kind) in [
            ("/spec/kubernetesVersion", UpgradeKind::Kubernetes),
            ("/spec/osImage", UpgradeKind::Os),
        ] {
            if old.pointer(field) != new.pointer(field) {
                out.push((key.name.clone(), kind));
            }
        }
    }
    out
}

/// The object a command acts on.
fn command_object(kind: &CommandKind) -> ObjectKey {
    let resource = match kind {
        CommandKind::FenceHost { .. }
        | CommandKind::MaintainHost { .. }
        | CommandKind::ReportInventory { .. }
        | CommandKind::ProvisionServer { .. }
        | CommandKind::ReimageServer { .. } => Resource::Host,
        _ => Resource::VirtualMachine,
    };
    ObjectKey::global(resource, kind.object())
}

impl Controller {
    /// A loop over `shared`'s objects; it ends when any of `stop` is set.
    pub fn new(shared: Arc<Shared>, config: ControllerConfig, stop: Vec<Arc<AtomicBool>>) -> Self {
        Self {
            shared,
            config,
            stop,
            running: None,
            accepted: BTreeMap::new(),
            not_running: None,
        }
    }

    /// Runs until stopped.
    pub fn run(mut self) {
        let mut seen = None;
        let mut published = Instant::now();
        while !self.stop.iter().any(|s| s.load(Ordering::SeqCst)) {
            let desired = self.shared.desired.load(Ordering::SeqCst);
            if seen != Some(desired) {
                seen = Some(desired);
                self.reassess();
                self.publish();
                published = Instant::now();
            }
            for ask in self.shared.take_asks() {
                self.answer(ask);
            }
            match &mut self.running {
                Some(r) => {
                    let started = Instant::now();
                    r.session.step(wall_clock().plus(STEP_MS));
                    self.shared.metrics.step(started.elapsed());
                    if let Some(fault) = r.session.driver().take_fault() {
                        tracing::error!(error = %fault, "the control plane stopped");
                        self.not_running = Some(format!("the control plane stopped: {fault}"));
                        self.running = None;
                    }
                    if published.elapsed() >= PUBLISH_EVERY {
                        self.publish();
                        published = Instant::now();
                    }
                }
                None => std::thread::sleep(Duration::from_millis(STEP_MS)),
            }
        }
    }

    /// Re-reads the estate; starts or re-plans the control plane when it is valid.
    fn reassess(&mut self) {
        let desired = match self.shared.with_objects(|o| o.desired_objects()) {
            Ok((d, _)) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the desired state");
                return;
            }
        };
        let (estate, problems) = manifests::assemble(&desired);
        self.accepted = desired
            .iter()
            .map(|(key, _)| {
                let c = match problems.get(key) {
                    Some(p) if p.iter().any(|d| d.severity == DiagSeverity::Error) => {
                        condition("Accepted", false, "Invalid", &messages(p))
                    }
                    Some(p) => condition("Accepted", true, "ValidWithWarnings", &messages(p)),
                    None => condition("Accepted", true, "Valid", ""),
                };
                (key.clone(), c)
            })
            .collect();
        let Some(estate) = estate else {
            match &self.running {
                None => {
                    self.not_running = Some(
                        "the estate is not valid yet: see the objects' Accepted conditions".into(),
                    );
                }
                // The last valid estate keeps running: say so on every change it holds back.
                Some(r) => {
                    let blocker = problems
                        .iter()
                        .find_map(|(k, ds)| {
                            ds.iter()
                                .find(|d| d.severity == DiagSeverity::Error)
                                .map(|d| format!("{k}: {}", d.message))
                        })
                        .unwrap_or_default();
                    let message = format!(
                        "not applied while the estate has an error elsewhere ({blocker}); the running estate is unchanged"
                    );
                    for (key, object) in &desired {
                        let running = r.desired.iter().any(|(k, v)| k == key && v == object);
                        let own = self
                            .accepted
                            .get(key)
                            .is_some_and(|c| c["status"] == "False");
                        if !running && !own {
                            self.accepted.insert(
                                key.clone(),
                                condition("Accepted", false, "Blocked", &message),
                            );
                        }
                    }
                }
            }
            return;
        };
        match &mut self.running {
            None => self.start(&estate, desired),
            Some(r) if r.desired == desired => {}
            Some(r) => match r.session.replan(&estate) {
                Ok(asked) => {
                    tracing::info!(?asked, "estate changed; control plane re-planned");
                    for (cluster, upgrade) in upgrades(&r.desired, &desired) {
                        r.session
                            .request(Observation::UpgradeRequested { cluster, upgrade });
                    }
                    r.desired = desired;
                    r.estate = estate;
                    r.budgets = None;
                }
                Err(e) => {
                    let message = format!(
                        "not applied to the running control plane: {}; the previous estate keeps running",
                        plinth_qemu_error_chain(&e)
                    );
                    tracing::warn!(%message);
                    for c in self.accepted.values_mut() {
                        *c = condition("Accepted", false, "NotApplied", &message);
                    }
                }
            },
        }
    }

    /// Answers `ask` from the running control plane; an ask whose request gave up waiting
    /// (it timed out: the client was told nothing was done) is dropped, never acted on.
    fn answer(&mut self, ask: Ask) {
        if ask.abandoned() {
            return;
        }
        let idle = || {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                format!(
                    "no control plane runs, so there is no placement to plan on: {}",
                    self.not_running.as_deref().unwrap_or("it is starting")
                ),
            )
        };
        // A request that gave up waiting meanwhile has nothing to be told: sends may fail.
        match (ask, &mut self.running) {
            (
                Ask::Maintenance {
                    host,
                    force,
                    dry_run,
                    reply,
                },
                running,
            ) => {
                let _ = reply.send(match running {
                    Some(r) => r.maintenance(&host, force, dry_run),
                    None => Err(idle()),
                });
            }
            (
                Ask::Upgrade {
                    cluster,
                    spec,
                    to,
                    reply,
                },
                running,
            ) => {
                let _ = reply.send(match running {
                    Some(r) => r.upgrade(&cluster, &spec, &to),
                    None => Err(idle()),
                });
            }
            (Ask::Drs { reply }, running) => {
                let _ = reply.send(match running {
                    Some(r) => r.session.control().drs_review().map_err(refused),
                    None => Err(idle()),
                });
            }
        }
    }

    fn start(&mut self, estate: &Estate, desired: Vec<(ObjectKey, Value)>) {
        match self.open(estate) {
            Ok((session, agents)) => {
                self.not_running = None;
                self.running = Some(Running {
                    session,
                    estate: estate.clone(),
                    desired,
                    budgets: None,
                    agents,
                });
            }
            Err(message) => {
                tracing::warn!(%message, "the control plane cannot start yet");
                self.not_running = Some(message);
            }
        }
    }

    /// Starts the control plane of `estate`; it and each host's agent address.
    fn open(&self, estate: &Estate) -> Result<(Session, BTreeMap<String, SocketAddr>), String> {
        let mut agents = self.config.agents.hosts.clone();
        agents.extend(estate.inventory.spec.agents());
        let control = ControlConfig::virtualized(estate);
        let token = &self.config.agents.token;
        let config = DriverConfig {
            agents: agents.clone(),
            token: Token::new(token),
            tls: self.config.agents.tls.clone(),
            heartbeat: Duration::from_millis(control.ha.heartbeat_interval.max(1)),
            pools: Pools::of(estate),
        };
        let store = self.config.state.open()?;
        let journal = ServerJournal {
            shared: self.shared.clone(),
            issued: BTreeMap::new(),
        };
        let driver = QemuDriver::start(config, token.as_bytes(), store, Box::new(journal))
            .map_err(|e| plinth_qemu_error_chain(&e))?;
        let (session, opened) =
            Session::open(estate, driver).map_err(|e| plinth_qemu_error_chain(&e))?;
        tracing::info!(
            ?opened,
            clusters = estate.clusters.len(),
            "control plane running"
        );
        Ok((session, agents))
    }

    /// Writes the status of every desired object, and the reported VMs and hosts.
    fn publish(&mut self) {
        let mut statuses: Vec<(ObjectKey, Value)> = Vec::new();
        let running = self.running.as_ref().map(|r| r.session.control());
        for (key, accepted) in &self.accepted {
            let mut conditions = vec![accepted.clone()];
            let mut status = serde_json::Map::new();
            if key.resource == Resource::Inventory
                && let Some(r) = &self.running
            {
                let c = match r.session.short() {
                    Some((asked, kept)) => condition(
                        "HeadroomMet",
                        false,
                        "FewerHostsThanAsked",
                        &format!(
                            "the hosts cannot meet the Scenario's headroom (survive {asked}): running with {kept}; `plinth plan` says what to buy"
                        ),
                    ),
                    None => condition("HeadroomMet", true, "AsAsked", ""),
                };
                conditions.push(c);
            }
            if key.resource == Resource::Cluster {
                match running.and_then(|c| c.cluster_state(&key.name).map(|s| (c, s))) {
                    Some((control, state)) => {
                        let waiting: Vec<String> = control
                            .conditions()
                            .filter(|c| {
                                involved(&c.object) == *key || self.vm_of(&key.name, &c.object)
                            })
                            .map(|c| format!("{}: {}", c.reason, c.message))
                            .collect();
                        let summary = format!("{}/{} node VMs running", state.running, state.nodes);
                        let message = if waiting.is_empty() {
                            summary
                        } else {
                            format!("{summary}; {}", waiting.join("; "))
                        };
                        let reason = if state.ready() {
                            "NodesRunning"
                        } else if state.busy {
                            "Building"
                        } else {
                            "Degraded"
                        };
                        conditions.push(condition("Ready", state.ready(), reason, &message));
                        conditions.push(condition(
                            "Progressing",
                            state.busy,
                            if state.busy { "Reconciling" } else { "Idle" },
                            "",
                        ));
                        status.insert("nodes".into(), json!(state.nodes));
                        status.insert("readyNodes".into(), json!(state.running));
                    }
                    None => {
                        let why = self
                            .not_running
                            .clone()
                            .unwrap_or_else(|| "not part of the running estate yet".into());
                        conditions.push(condition("Ready", false, "NotRunning", &why));
                    }
                }
            }
            status.insert("conditions".into(), Value::Array(conditions));
            statuses.push((key.clone(), Value::Object(status)));
        }
        let (vms, hosts) = self.reported();
        let result = self.shared.with_objects(|o| {
            o.set_statuses(&statuses)?;
            o.report(Resource::VirtualMachine, &vms)?;
            o.report(Resource::Host, &hosts)
        });
        if let Err(e) = result {
            tracing::error!(error = %e, "writing status");
        }
    }

    /// Whether a control-plane condition's object is a node VM of `cluster`.
    fn vm_of(&self, cluster: &str, object: &str) -> bool {
        let Some(("vm" | "node", vm)) = object.split_once('/') else {
            return false;
        };
        self.running
            .as_ref()
            .and_then(|r| r.session.control().cluster(cluster))
            .is_some_and(|t| {
                std::iter::once(&t.control_plane)
                    .chain(&t.pools)
                    .any(|p| p.nodes.iter().any(|n| n == vm))
            })
    }

    /// The VMs and hosts as the control plane sees them, as objects.
    fn reported(&self) -> (Vec<Reported>, Vec<Reported>) {
        let Some(r) = &self.running else {
            return (Vec::new(), Vec::new());
        };
        let control = r.session.control();
        let mut vms = Vec::new();
        let mut on_host: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut phases: BTreeMap<String, u64> = BTreeMap::new();
        let mut vm = |name: &str, spec: Value| {
            let host = control.vm_host(name).map(str::to_owned);
            let phase = control
                .vm_phase(name)
                .and_then(|p| serde_json::to_value(p).ok())
                .unwrap_or(json!("Pending"));
            *phases
                .entry(phase.as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
            if let Some(h) = &host {
                on_host.entry(h.clone()).or_default().push(name.to_owned());
            }
            let body = json!({
                "apiVersion": PLINTH_GROUP_VERSION,
                "kind": "VirtualMachine",
                "metadata": {"name": name},
                "spec": spec,
            });
            let status = json!({"phase": phase, "host": host});
            vms.push((
                ObjectKey::global(Resource::VirtualMachine, name),
                body,
                status,
            ));
        };
        for topo in control.clusters() {
            for pool in std::iter::once(&topo.control_plane).chain(&topo.pools) {
                for name in &pool.nodes {
                    vm(name, json!({"cluster": topo.name, "pool": pool.name}));
                }
            }
        }
        for (name, set) in r.session.pools().set_members() {
            vm(&name, json!({"virtualMachineSet": set}));
        }
        let mut states: BTreeMap<String, u64> = BTreeMap::new();
        let names: BTreeSet<String> = control
            .pool()
            .map(|p| p.pool().hosts().iter().map(|h| h.name.clone()).collect())
            .unwrap_or_default();
        let hosts = names
            .into_iter()
            .map(|name| {
                let state = control
                    .host_state(&name)
                    .and_then(|s| serde_json::to_value(s).ok())
                    .unwrap_or(Value::Null);
                *states
                    .entry(state.as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
                let body = json!({
                    "apiVersion": PLINTH_GROUP_VERSION,
                    "kind": "Host",
                    "metadata": {"name": name},
                });
                let status = json!({
                    "state": state,
                    "vms": on_host.remove(&name).unwrap_or_default(),
                    "agent": r.agents.get(&name).map(ToString::to_string),
                });
                (ObjectKey::global(Resource::Host, name), body, status)
            })
            .collect();
        self.shared.metrics.set_gauges("vms", &phases);
        self.shared.metrics.set_gauges("hosts", &states);
        (vms, hosts)
    }
}

fn plinth_qemu_error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns what the control plane does into events and command metrics.
struct ServerJournal {
    shared: Arc<Shared>,
    issued: BTreeMap<CommandId, CommandKind>,
}

impl ServerJournal {
    fn record(&self, events: &[Value]) {
        if let Err(e) = self.shared.with_objects(|o| o.record_events(events)) {
            tracing::error!(error = %e, "recording events");
        }
    }
}

impl Journal for ServerJournal {
    fn step(&mut self, _: Time, ready: &Ready) {
        let mut events = Vec::new();
        for c in &ready.commands {
            self.issued.insert(c.id, c.kind.clone());
        }
        for change in &ready.conditions {
            if let ConditionChange::Set(c) = change {
                let message = c.message.clone();
                // Planned work is news; anything else waits on something.
                let severity = match c.reason {
                    Reason::Upgrading | Reason::Evacuating | Reason::InMaintenance => {
                        Severity::Normal
                    }
                    _ => Severity::Warning,
                };
                events.push(event(
                    &involved(&c.object),
                    &c.reason.to_string(),
                    &message,
                    severity,
                    Reporter::ControlPlane,
                ));
            }
        }
        for e in &ready.events {
            let (key, reason, message) = match e {
                ControlEvent::ClusterReady { cluster } => (
                    ObjectKey::global(Resource::Cluster, cluster),
                    "ClusterReady",
                    format!("cluster {cluster} built: every node VM running"),
                ),
                ControlEvent::UpgradeStarted {
                    cluster,
                    kind,
                    nodes,
                } => (
                    ObjectKey::global(Resource::Cluster, cluster),
                    "UpgradeStarted",
                    format!("{kind} upgrade of {nodes} node(s) started"),
                ),
                ControlEvent::UpgradeFinished { cluster, kind } => (
                    ObjectKey::global(Resource::Cluster, cluster),
                    "UpgradeFinished",
                    format!("{kind} upgrade finished"),
                ),
                ControlEvent::NodeReplaced { old, new, .. } => (
                    ObjectKey::global(Resource::VirtualMachine, new),
                    "NodeReplaced",
                    format!("{new} replaced {old}"),
                ),
            };
            events.push(event(
                &key,
                reason,
                &message,
                Severity::Normal,
                Reporter::ControlPlane,
            ));
        }
        self.record(&events);
    }

    fn observed(&mut self, _: Time, observation: &Observation) {
        match observation {
            Observation::CommandCompleted { id } => {
                if let Some(kind) = self.issued.remove(id) {
                    self.shared.metrics.command(&command_name(&kind), "done");
                    // Topology truth: every change of where a node is placed is news, once
                    // its labels were set (for an HA restart, before the VM runs there).
                    if let CommandKind::LabelNode { node, host } = &kind {
                        self.record(&[event(
                            &ObjectKey::global(Resource::VirtualMachine, node),
                            "Relabelled",
                            &format!("node {node} is placed on {host} (a live migration or an HA restart): its plinth.dev/host and plinth.dev/rack labels follow it (its zone label stays)"),
                            Severity::Normal,
                            Reporter::ControlPlane,
                        )]);
                    }
                }
            }
            Observation::CommandFailed { id, error } => {
                if let Some(kind) = self.issued.remove(id) {
                    let name = command_name(&kind);
                    let outcome = serde_json::to_value(error)
                        .ok()
                        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_else(|| "failed".into());
                    self.shared.metrics.command(&name, &outcome);
                    let key = command_object(&kind);
                    self.record(&[event(
                        &key,
                        "CommandFailed",
                        &format!("{name}: {error}"),
                        Severity::Warning,
                        Reporter::ControlPlane,
                    )]);
                }
            }
            Observation::HeartbeatMissed { host, .. } => {
                self.record(&[event(
                    &ObjectKey::global(Resource::Host, host),
                    "HeartbeatMissed",
                    &format!("{host} is silent"),
                    Severity::Warning,
                    Reporter::ControlPlane,
                )]);
            }
            _ => {}
        }
    }

    fn migrated(&mut self, _: Time, id: CommandId, stats: &MigrationStats) {
        if let Some(CommandKind::MigrateVm { vm, from, to }) = self.issued.get(&id) {
            self.record(&[event(
                &ObjectKey::global(Resource::VirtualMachine, vm),
                "Migrated",
                &format!("live-migrated from {from} to {to}: {stats}"),
                Severity::Normal,
                Reporter::ControlPlane,
            )]);
        }
    }
}
