//! `plinth run`: builds an estate's clusters for real, as node VMs on the Inventory's hosts
//! through their agents, in the foreground with progress per cluster and node.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use plinth_control::{
    CommandId, CommandKind, ConditionChange, ControlConfig, ControlEvent, Observation, Ready, Time,
};
use plinth_proto::{MigrationStats, Token};
use plinth_qemu::bootstrap::Pools;
use plinth_qemu::{DriverConfig, Journal, Opened, QemuDriver, Session, wall_clock};
use plinth_store::SqliteStore;
use plinth_tls::LinkFiles;

use crate::Outcome;
use crate::commands::load_or_report;
use crate::input::InputArgs;

/// Build the estate's clusters for real: node VMs on the Inventory's hosts, through the
/// host agent each host names (`agent: IP:PORT`).
///
/// Runs in the foreground, printing each command and each node as it becomes Ready, and
/// keeps the clusters running (HA restarts the VMs of a lost host) until Ctrl-C. Ctrl-C
/// leaves the VMs running: the control plane's state is kept in --state, and a second
/// `plinth run` resumes from it and converges. Exit codes: 0 converged (or stopped by
/// Ctrl-C), 1 invalid input or a design that cannot run, 2 usage, I/O or store error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// File holding the agents' shared token (`scripts/testbed up` writes it).
    #[arg(long, value_name = "PATH", default_value = "target/testbed/token")]
    pub(crate) token_file: PathBuf,
    /// The agent link's certificates (`plinth certs DIR --control-plane`; `scripts/testbed
    /// up` issues them): the control plane speaks mutual TLS to every agent.
    #[arg(long, value_name = "DIR", default_value = "target/testbed/tls")]
    pub(crate) tls_dir: PathBuf,
    /// Speak to the agents over plain TCP (agents started without --tls-cert): the token
    /// then crosses the network in clear text.
    #[arg(long, conflicts_with = "tls_dir")]
    pub(crate) plaintext: bool,
    /// The control plane's state (SQLite); default: `.plinth/state.db` beside the first input.
    #[arg(long, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,
    /// Exit once every cluster is built and nothing is under way, instead of watching.
    #[arg(long)]
    pub(crate) until_converged: bool,
    /// Give up (exit 2) when not converged within this long.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub(crate) timeout: Option<Duration>,
}

/// Where the state lives by default: `.plinth/state.db` in the input directory.
fn default_state(input: &Path) -> PathBuf {
    let dir = if input.is_dir() {
        input
    } else {
        input.parent().unwrap_or(Path::new("."))
    };
    dir.join(".plinth").join("state.db")
}

/// Runs `plinth run`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    // Progress is printed; warnings (an agent refusing this control plane's certificate or
    // token, a bad frame) are logged, so a misconfigured link is said, not waited on.
    crate::commands::logging_from("warn");
    let Some((_input, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let agents = estate.inventory.spec.agents();
    if agents.is_empty() {
        crate::output::stderr(
            "no host of the Inventory names its agent: give each host `agent: IP:PORT` \
             (see examples/lab and docs/run.md)\n",
        );
        return Ok(Outcome::Invalid);
    }
    let token = std::fs::read_to_string(&args.token_file).with_context(|| {
        format!(
            "reading the agents' token {} (run `scripts/testbed up 3` first, or pass --token-file)",
            args.token_file.display()
        )
    })?;
    let tls = if args.plaintext {
        None
    } else {
        let dir = &args.tls_dir;
        Some(
            LinkFiles::control_plane(dir)
                .control_plane_config()
                .with_context(|| {
                    format!(
                        "reading the control plane's certificates in {} (run `scripts/testbed up 3` first, `plinth certs {} --control-plane`, or pass --tls-dir; --plaintext for agents started without --tls-cert)",
                        dir.display(),
                        dir.display()
                    )
                })?,
        )
    };
    let state = args
        .state
        .clone()
        .unwrap_or_else(|| default_state(&args.input.paths[0]));
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let store = SqliteStore::open(&state)
        .with_context(|| format!("opening the state {}", state.display()))?;
    let control = ControlConfig::virtualized(&estate);
    let config = DriverConfig {
        agents,
        token: Token::new(&token),
        tls,
        heartbeat: Duration::from_millis(control.ha.heartbeat_interval.max(1)),
        pools: Pools::of(&estate),
    };
    let started = wall_clock();
    let driver = QemuDriver::start(
        config,
        token.trim().as_bytes(),
        Box::new(store),
        Box::new(Progress::new(started)),
    )?;
    driver.stop_on_ctrl_c();
    let stop = driver.stop_flag();
    let (mut session, opened) = match Session::open(&estate, driver) {
        Ok(s) => s,
        Err(e @ (plinth_qemu::QemuError::Design(_) | plinth_qemu::QemuError::NoAgent { .. })) => {
            crate::output::stderr(crate::output::error_chain(&e));
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e).context("opening the control plane"),
    };
    println!(
        "{} {} cluster(s) on {} host(s); state in {}",
        match opened {
            Opened::Fresh => "building",
            Opened::Resumed => "resuming",
        },
        estate.clusters.len(),
        estate.inventory.spec.agents().len(),
        state.display()
    );
    if let Some((asked, kept)) = session.short() {
        println!(
            "note: the Inventory's hosts cannot meet the Scenario's headroom (survive {asked}); running with {kept}. `plinth plan` says what to buy"
        );
    }
    let give_up = args
        .timeout
        .map(|t| started.plus(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)));
    let mut converged_at: Option<Time> = None;
    loop {
        session.step(wall_clock().plus(250));
        if let Some(fault) = session.driver().take_fault() {
            return Err(fault).context("the control plane stopped");
        }
        if stop.load(Ordering::SeqCst) {
            println!(
                "stopped: the VMs keep running; `plinth run` again resumes from {}",
                state.display()
            );
            return Ok(Outcome::Success);
        }
        let now = wall_clock();
        match (session.control().settled(), converged_at) {
            (true, None) => {
                converged_at = Some(now);
                println!(
                    "{:>7}  converged: every cluster built, nothing under way",
                    secs(now.since(started))
                );
                if args.until_converged {
                    return Ok(Outcome::Success);
                }
                println!(
                    "         watching (HA restarts the VMs of a lost host); Ctrl-C leaves the VMs running"
                );
            }
            (false, Some(_)) => converged_at = None,
            _ => {}
        }
        if converged_at.is_none() && give_up.is_some_and(|g| now >= g) {
            bail!(
                "not converged within {}: see the conditions above",
                humantime::format_duration(args.timeout.unwrap_or_default())
            );
        }
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// Live progress: one line per command, node Ready, condition and milestone.
struct Progress {
    started: Time,
    issued: BTreeMap<CommandId, (Time, CommandKind)>,
}

impl Progress {
    fn new(started: Time) -> Self {
        Self {
            started,
            issued: BTreeMap::new(),
        }
    }

    fn line(&self, now: Time, text: &str) {
        let mut out = std::io::stdout().lock();
        // Progress is best effort: a closed stdout must not stop the control plane.
        let _ = writeln!(out, "{:>7}  {text}", secs(now.since(self.started)));
    }
}

fn describe(kind: &CommandKind) -> String {
    match kind {
        CommandKind::CreateVm { vm, host, pool } => format!("create {vm} ({pool}) on {host}"),
        CommandKind::StartVm { vm, host } => format!("start {vm} on {host}"),
        CommandKind::StopVm { vm, host } => format!("stop {vm} on {host}"),
        CommandKind::DeleteVm { vm, host } => match host {
            Some(h) => format!("delete {vm} on {h}"),
            None => format!("delete {vm}"),
        },
        CommandKind::FenceHost { host } => format!("fence {host}"),
        CommandKind::LabelNode { node, host } => format!("label {node} with host {host}"),
        other => format!("{} {}", kind_name(other), other.object()),
    }
}

fn kind_name(kind: &CommandKind) -> &'static str {
    match kind {
        CommandKind::MigrateVm { .. } => "migrate",
        CommandKind::MaintainHost { .. } => "maintain",
        CommandKind::Cordon { .. } => "cordon",
        CommandKind::Uncordon { .. } => "uncordon",
        CommandKind::LabelNode { .. } => "label",
        CommandKind::OutOfService { .. } => "taint out-of-service",
        CommandKind::InService { .. } => "untaint out-of-service",
        CommandKind::Drain { .. } => "drain",
        CommandKind::ReportInventory { .. } => "ask inventory of",
        CommandKind::ProvisionServer { .. } => "provision",
        CommandKind::RemoveNode { .. } => "remove",
        CommandKind::ReimageServer { .. } => "reimage",
        CommandKind::StartVm { .. } => "start",
        CommandKind::CreateVm { .. } => "create",
        CommandKind::DeleteVm { .. } => "delete",
        CommandKind::StopVm { .. } => "stop",
        CommandKind::FenceHost { .. } => "fence",
    }
}

impl Journal for Progress {
    fn step(&mut self, now: Time, ready: &Ready) {
        for c in &ready.commands {
            if !matches!(c.kind, CommandKind::ReportInventory { .. }) {
                self.line(now, &format!("→ {}", describe(&c.kind)));
            }
            self.issued.insert(c.id, (now, c.kind.clone()));
        }
        for change in &ready.conditions {
            if let ConditionChange::Set(c) = change {
                self.line(
                    now,
                    &format!("waiting: {} {}: {}", c.object, c.reason, c.message),
                );
            }
        }
        for e in &ready.events {
            let text = match e {
                ControlEvent::ClusterReady { cluster } => format!("cluster {cluster} Ready"),
                ControlEvent::UpgradeStarted {
                    cluster,
                    kind,
                    nodes,
                } => {
                    format!("cluster {cluster}: {kind} upgrade of {nodes} node(s) started")
                }
                ControlEvent::UpgradeFinished { cluster, kind } => {
                    format!("cluster {cluster}: {kind} upgrade finished")
                }
                ControlEvent::NodeReplaced { old, new, .. } => format!("{old} replaced by {new}"),
            };
            self.line(now, &text);
        }
    }

    fn observed(&mut self, now: Time, observation: &Observation) {
        match observation {
            Observation::CommandCompleted { id } => {
                if let Some((at, kind)) = self.issued.remove(id) {
                    let took = secs(now.since(at));
                    match kind {
                        CommandKind::CreateVm { vm, host, .. }
                        | CommandKind::StartVm { vm, host } => {
                            self.line(now, &format!("✓ {vm} Ready on {host} ({took})"));
                        }
                        CommandKind::ReportInventory { .. } => {}
                        other => self.line(now, &format!("✓ {} ({took})", describe(&other))),
                    }
                }
            }
            Observation::CommandFailed { id, error } => {
                if let Some((_, kind)) = self.issued.remove(id) {
                    self.line(now, &format!("✗ {}: {error}", describe(&kind)));
                }
            }
            Observation::HeartbeatMissed { host, .. } => {
                self.line(now, &format!("{host} is silent"));
            }
            Observation::Heartbeat { host, boot } => {
                self.line(now, &format!("{host} heard (boot {})", boot.0));
            }
            _ => {}
        }
    }

    fn migrated(&mut self, now: Time, id: CommandId, stats: &MigrationStats) {
        if let Some((_, CommandKind::MigrateVm { vm, from, to })) = self.issued.get(&id) {
            let line = format!("{vm} live-migrated {from} → {to}: {stats}");
            self.line(now, &line);
        }
    }
}
