//! [`QemuLab`]: the QEMU driver and a namespaced testbed (`scripts/testbed`) as a
//! [`Lab`], so the conformance suite's bodies run on real VMs. Ground truth is read from
//! the kernel, not from the agents: every `qemu-system-x86` process, the VM its `-name`
//! names and the host whose network namespace holds it. A VM started while another QEMU
//! process of the same VM is alive counts as a double start; a live migration's receiver (a
//! process started with `-incoming`) is not a start: it runs the VM only once its source
//! has paused it for good.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use plinth_conformance::Lab;
use plinth_control::store::MemoryStore;
use plinth_control::{
    ClusterTopology, CommandId, Condition, ControlConfig, FailureRecord, Observation, Ready, Time,
    UpgradeKind,
};
use plinth_model::Estate;
use plinth_proto::{MigrationStats, Token};
use plinth_tls::{ClientConfig, LinkFiles};

use crate::bootstrap::Pools;
use crate::driver::{DriverConfig, Journal, QemuDriver, wall_clock};
use crate::error::QemuError;
use crate::session::Session;

/// A crashed host boots again (its agent starts, a new life) after this long, ms.
pub const REPAIR_MS: u64 = 10_000;
/// The command name of a QEMU process.
const QEMU: &str = "qemu-system-x86";
/// Ground truth is read at most this often, ms.
const TRUTH_EVERY_MS: u64 = 100;

/// `scripts/testbed` of a checkout, with the environment it runs with.
#[derive(Clone, Debug)]
pub struct Testbed {
    /// The script.
    pub script: PathBuf,
    /// Its directory (`PLINTH_TESTBED_DIR`): the token, the hosts' state, the storage.
    pub dir: PathBuf,
    /// Extra environment (`PLINTH`, `PLINTH_SELF_FENCE_TIMEOUT`, …).
    pub env: Vec<(String, String)>,
}

impl Testbed {
    /// Runs the script with `args`; its standard output.
    ///
    /// # Errors
    /// When it cannot run or exits non-zero.
    pub fn run(&self, args: &[&str]) -> Result<String, QemuError> {
        let out = self
            .command(args)
            .output()
            .map_err(|e| Self::failed(args, e.to_string()))?;
        if !out.status.success() {
            return Err(Self::failed(
                args,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts the script with `args` and returns at once: for what must not hold up the
    /// caller (a host booting again while the control plane keeps running).
    ///
    /// # Errors
    /// When it cannot start.
    pub fn spawn(&self, args: &[&str]) -> Result<Running, QemuError> {
        let child = self
            .command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Self::failed(args, e.to_string()))?;
        Ok(Running {
            args: args.join(" "),
            child,
        })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.script);
        command
            .args(args)
            .env("PLINTH_TESTBED_DIR", &self.dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn failed(args: &[&str], detail: String) -> QemuError {
        QemuError::Testbed {
            args: args.join(" "),
            detail,
        }
    }

    /// The namespace of testbed host `i` (1-based).
    pub fn namespace(i: usize) -> String {
        format!("plinth-h{i}")
    }

    /// The shared token `up` wrote.
    ///
    /// # Errors
    /// When it cannot be read.
    pub fn token(&self) -> Result<String, QemuError> {
        std::fs::read_to_string(self.dir.join("token")).map_err(|e| QemuError::Testbed {
            args: "up".into(),
            detail: format!("no token: {e}"),
        })
    }

    /// The control plane's mutual TLS to the agents, from the certificates `up` issued.
    ///
    /// # Errors
    /// When they cannot be read.
    pub fn tls(&self) -> Result<Arc<ClientConfig>, QemuError> {
        LinkFiles::control_plane(&self.dir.join("tls"))
            .control_plane_config()
            .map_err(|e| QemuError::Testbed {
                args: "up".into(),
                detail: format!("no TLS certificates: {e}"),
            })
    }
}

/// One QEMU process as seen in `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Life {
    /// The VM.
    pub vm: String,
    /// The host whose namespace holds it.
    pub host: String,
    /// First and last time it was seen alive.
    pub first_seen: Time,
    /// Last time it was seen alive.
    pub last_seen: Time,
    /// Whether it is alive at the last look.
    pub alive: bool,
    /// Whether it was started as a live migration's receiver.
    pub incoming: bool,
    /// The kernel it boots (its `-kernel`): the node OS image it runs is that file's
    /// directory.
    pub kernel: PathBuf,
}

/// What really runs, read from the kernel.
#[derive(Debug, Default)]
struct Truth {
    /// Network-namespace inode → host.
    namespaces: BTreeMap<u64, String>,
    /// `(pid, start time in clock ticks)` → its life.
    lives: BTreeMap<(u32, u64), Life>,
    double_starts: u64,
    read_at: Time,
}

/// `/proc/<pid>/stat`'s parent (field 4) and start time (field 22), read after the command
/// name's closing paren.
fn parent_and_start(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
    let parent = fields.nth(1)?.parse().ok()?;
    let start = fields.nth(17)?.parse().ok()?;
    Some((parent, start))
}

/// A process's command name.
fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// The argument after `flag` in a QEMU command line (`-name`: the VM it runs; `-kernel`:
/// what it boots).
fn argument(cmdline: &[u8], flag: &str) -> Option<String> {
    let mut args = cmdline.split(|b| *b == 0);
    args.by_ref().find(|a| *a == flag.as_bytes())?;
    Some(String::from_utf8_lossy(args.next()?).into_owned())
}

/// Whether a QEMU command line starts a live migration's receiver.
fn is_receiver(cmdline: &[u8]) -> bool {
    cmdline.split(|b| *b == 0).any(|a| a == b"-incoming")
}

impl Truth {
    fn look(&mut self, now: Time) {
        self.read_at = now;
        for life in self.lives.values_mut() {
            life.alive = false;
        }
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let dir = entry.path();
            if comm(pid).as_deref() != Some(QEMU) {
                continue;
            }
            let (Some((parent, ticks)), Ok(cmdline), Ok(ns)) = (
                parent_and_start(pid),
                std::fs::read(dir.join("cmdline")),
                std::fs::metadata(dir.join("ns/net")),
            ) else {
                continue;
            };
            // A VM is its daemonized QEMU process: `-daemonize` forks twice, and the process
            // the agent launched and the one between live only until the daemon is up. The
            // daemon's parent is neither the agent nor a QEMU process.
            if matches!(comm(parent).as_deref(), Some(QEMU | "plinth")) {
                continue;
            }
            let (Some(vm), Some(host)) =
                (argument(&cmdline, "-name"), self.namespaces.get(&ns.ino()))
            else {
                continue;
            };
            let key = (pid, ticks);
            if let Some(life) = self.lives.get_mut(&key) {
                life.alive = true;
                life.last_seen = now;
                continue;
            }
            let incoming = is_receiver(&cmdline);
            if !incoming && self.lives.values().any(|l| l.vm == vm && l.alive) {
                self.double_starts += 1;
            }
            let host = host.clone();
            self.lives.insert(
                key,
                Life {
                    vm,
                    host,
                    first_seen: now,
                    last_seen: now,
                    alive: true,
                    incoming,
                    kernel: argument(&cmdline, "-kernel").unwrap_or_default().into(),
                },
            );
        }
    }

    fn alive(&self) -> impl Iterator<Item = &Life> {
        self.lives.values().filter(|l| l.alive)
    }

    /// The process that runs `vm`: the oldest alive (while a live migration's receiver
    /// waits, its source is older).
    fn running(&self, vm: &str) -> Option<&Life> {
        self.alive()
            .filter(|l| l.vm == vm)
            .min_by_key(|l| l.first_seen)
    }
}

/// The live migrations a lab's driver reported, in order.
#[derive(Clone, Debug, Default)]
struct Migrations(Arc<Mutex<Vec<MigrationStats>>>);

impl Journal for Migrations {
    fn step(&mut self, _: Time, _: &Ready) {}
    fn observed(&mut self, _: Time, _: &Observation) {}
    fn migrated(&mut self, _: Time, _: CommandId, stats: &MigrationStats) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(*stats);
    }
}

/// A testbed script started by [`Testbed::spawn`].
#[derive(Debug)]
pub struct Running {
    args: String,
    child: Child,
}

impl Running {
    /// Whether it has ended: `Ok(false)` while it runs.
    ///
    /// # Errors
    /// When it ended with a failure (its standard error), or cannot be waited for.
    pub fn ended(&mut self) -> Result<bool, QemuError> {
        let failed = |detail: String| QemuError::Testbed {
            args: self.args.clone(),
            detail,
        };
        match self.child.try_wait() {
            Ok(None) => Ok(false),
            Ok(Some(status)) if status.success() => Ok(true),
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = self.child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                Err(failed(format!("{status}: {stderr}")))
            }
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// The QEMU driver over a testbed, as a conformance [`Lab`].
#[derive(Debug)]
pub struct QemuLab {
    session: Session,
    /// The desired state, as changed by the suite.
    estate: Estate,
    testbed: Testbed,
    /// Host names in testbed order: `hosts[i]` is testbed host `i + 1`.
    hosts: Vec<String>,
    truth: Truth,
    /// Crashed hosts and when they boot again.
    repairs: Vec<(Time, usize)>,
    /// Hosts booting again (`scripts/testbed start`, which takes as long as the agent's
    /// accelerator probe): the control plane keeps running meanwhile, as it would.
    booting: Vec<Running>,
    /// Most wall-clock time one `run_until` may take, ms.
    cap_ms: u64,
    migrations: Migrations,
}

impl QemuLab {
    /// A lab over `testbed` (already `up`), whose hosts are `estate`'s Inventory hosts in
    /// testbed order, with a fresh in-memory store; `run_until` never waits longer than
    /// `cap_ms`.
    ///
    /// # Errors
    /// When the driver cannot start or the estate cannot run.
    pub fn new(estate: &Estate, testbed: Testbed, cap_ms: u64) -> Result<Self, QemuError> {
        let token = testbed.token()?;
        let agents = estate.inventory.spec.agents();
        let hosts: Vec<String> = agents.keys().cloned().collect();
        let control = ControlConfig::virtualized(estate);
        let config = DriverConfig {
            agents,
            token: Token::new(&token),
            tls: Some(testbed.tls()?),
            heartbeat: std::time::Duration::from_millis(control.ha.heartbeat_interval.max(1)),
            pools: Pools::of(estate),
        };
        let migrations = Migrations::default();
        let driver = QemuDriver::start(
            config,
            token.trim().as_bytes(),
            Box::new(MemoryStore::default()),
            Box::new(migrations.clone()),
        )?;
        let (session, _) = Session::open(estate, driver)?;
        let mut truth = Truth::default();
        for (i, host) in hosts.iter().enumerate() {
            let path = Path::new("/run/netns").join(Testbed::namespace(i + 1));
            let ns = std::fs::metadata(&path).map_err(|e| QemuError::Testbed {
                args: "up".into(),
                detail: format!("{}: {e}", path.display()),
            })?;
            truth.namespaces.insert(ns.ino(), host.clone());
        }
        Ok(Self {
            session,
            estate: estate.clone(),
            testbed,
            hosts,
            truth,
            repairs: Vec::new(),
            booting: Vec::new(),
            cap_ms,
            migrations,
        })
    }

    /// The directory of the node OS image `vm` really runs (its QEMU process's kernel's),
    /// if it runs.
    pub fn image_dir_of(&self, vm: &str) -> Option<PathBuf> {
        self.truth
            .running(vm)
            .and_then(|l| l.kernel.parent().map(Path::to_path_buf))
    }

    /// Every live migration that switched over, as its source measured it, in order.
    pub fn migrations(&self) -> Vec<MigrationStats> {
        self.migrations
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every QEMU process seen, by VM, in the order they were first seen.
    pub fn lives(&self) -> Vec<Life> {
        let mut lives: Vec<Life> = self.truth.lives.values().cloned().collect();
        lives.sort_by_key(|l| (l.vm.clone(), l.first_seen));
        lives
    }

    /// The failure of `host` the control plane declared after `since`, if any.
    pub fn failure_of(&self, host: &str, since: Time) -> Option<&FailureRecord> {
        self.session
            .control()
            .failures()
            .iter()
            .rev()
            .find(|f| f.host == host && f.declared_at >= since)
    }

    fn testbed_index(&self, host: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h == host).map(|i| i + 1)
    }

    fn testbed(&self, verb: &str, host: &str) {
        let Some(i) = self.testbed_index(host) else {
            panic!("{host} is not a testbed host");
        };
        if let Err(e) = self.testbed.run(&[verb, &i.to_string()]) {
            panic!("the testbed failed: {e}");
        }
    }
}

impl Lab for QemuLab {
    fn run_until(&mut self, ms: u64, done: &dyn Fn(&Self) -> bool) -> bool {
        let until = wall_clock().plus(ms.min(self.cap_ms));
        loop {
            let now = wall_clock();
            if now.since(self.truth.read_at) >= TRUTH_EVERY_MS {
                self.truth.look(now);
            }
            let due: Vec<usize> = self
                .repairs
                .iter()
                .filter(|(at, _)| *at <= now)
                .map(|(_, i)| *i)
                .collect();
            self.repairs.retain(|(at, _)| *at > now);
            for i in due {
                match self.testbed.spawn(&["start", &i.to_string()]) {
                    Ok(running) => self.booting.push(running),
                    Err(e) => panic!("the testbed failed: {e}"),
                }
            }
            self.booting.retain_mut(|b| match b.ended() {
                Ok(ended) => !ended,
                Err(e) => panic!("the testbed failed: {e}"),
            });
            if done(self) {
                return true;
            }
            if now >= until {
                return false;
            }
            self.session.step(now.plus(TRUTH_EVERY_MS));
            if let Some(fault) = self.session.driver().take_fault() {
                panic!("the control plane stopped: {fault}");
            }
        }
    }

    fn request(&mut self, change: Observation) {
        self.session.request(change);
    }

    fn now(&self) -> u64 {
        wall_clock().millis()
    }

    fn change_image(&mut self, cluster: &str, image: &str) {
        let Some(c) = self.estate.clusters.iter_mut().find(|c| c.name == cluster) else {
            panic!("no cluster {cluster} in the lab's estate");
        };
        c.spec.os_image = image.to_owned();
        if let Err(e) = self.session.replan(&self.estate) {
            panic!("the estate with {cluster} on {image} does not plan: {e}");
        }
        self.request(Observation::UpgradeRequested {
            cluster: cluster.to_owned(),
            upgrade: UpgradeKind::Os,
        });
    }

    fn crash(&mut self, host: &str) {
        self.testbed("crash", host);
        if let Some(i) = self.testbed_index(host) {
            self.repairs.push((wall_clock().plus(REPAIR_MS), i));
        }
    }

    fn partition(&mut self, host: &str) {
        self.testbed("cut", host);
    }

    fn heal(&mut self, host: &str) {
        self.testbed("heal", host);
    }

    fn restart_control_plane(&mut self) {
        if let Err(e) = self.session.restart_control_plane() {
            panic!("the control plane does not restore: {e}");
        }
    }

    fn clusters(&self) -> Vec<String> {
        self.session
            .control()
            .clusters()
            .map(|c| c.name.clone())
            .collect()
    }

    fn cluster(&self, name: &str) -> Option<ClusterTopology> {
        self.session.control().cluster(name).cloned()
    }

    fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }

    fn running_on(&self, vm: &str) -> Option<String> {
        self.truth.running(vm).map(|l| l.host.clone())
    }

    fn running(&self, host: &str) -> Vec<String> {
        let mut vms: Vec<String> = self
            .truth
            .alive()
            .filter(|l| l.host == host && self.truth.running(&l.vm) == Some(l))
            .map(|l| l.vm.clone())
            .collect();
        vms.sort();
        vms
    }

    fn double_starts(&self) -> u64 {
        self.truth.double_starts
    }

    fn conditions(&self) -> Vec<Condition> {
        self.session.control().conditions().cloned().collect()
    }

    fn settled(&self) -> bool {
        self.session.control().settled()
    }

    fn failures(&self) -> Vec<FailureRecord> {
        self.session.control().failures().to_vec()
    }
}
