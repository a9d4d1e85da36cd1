//! `plinth calibrate`: measures on real host agents what the simulator otherwise takes from
//! documented defaults — clone and boot to Ready, live migration against guest memory, a
//! host's fence and its VMs' restart elsewhere, and the hypervisor's CPU and memory
//! overhead (the same kernels in a guest and on the host) — and sums it up as a
//! `Calibration` ([`Measured::calibration`], a pure function of what was measured).
//!
//! It runs only its own VMs (`calib-*`), on hosts that run nothing else: a fence kills every
//! VM of its host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plinth_model::kinds::calibration::{
    Accelerator as CalibratedOn, CalibrationSpec, MeasuredMigration, MeasuredOverhead,
};
use plinth_model::quantity::Duration as Span;
use plinth_proto::guest::{BenchKernel, Bootstrap};
use plinth_proto::{
    Accelerator, Action, BenchResult, Command, CommandError, CommandId, FromAgent, MigrationStats,
    Outcome, ToAgent, Token, VmName, VmSpec,
};
use plinth_tls::ClientConfig;

use crate::link::{AgentConnection, DialError, open};

/// What `plinth calibrate` measures.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Boots measured, one after another, on the first host.
    pub boots: usize,
    /// Guest memory of each migration measured (MiB), from the first host to the second.
    pub migrations_mib: Vec<u32>,
    /// The node OS image the VMs boot.
    pub image: String,
    /// The guest agent binary, run on this machine for the overhead kernels' host side.
    pub guest_agent: PathBuf,
}

/// Why a calibration could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    /// No agent was given.
    #[error("no agents: the agents file names no host")]
    NoHosts,
    /// An agent could not be reached.
    #[error("host {host}")]
    Dial {
        /// The host.
        host: String,
        /// Why.
        #[source]
        source: DialError,
    },
    /// A host runs VMs that are not the calibration's: a fence would kill them.
    #[error("host {host} runs {vms}: calibrate on idle hosts (a fence kills every VM of its host)")]
    Busy {
        /// The host.
        host: String,
        /// Its VMs.
        vms: String,
    },
    /// A host's agent answered an action with a failure.
    #[error("{action} on {host}: {error}")]
    Failed {
        /// The host.
        host: String,
        /// What was asked.
        action: String,
        /// The answer.
        error: CommandError,
    },
    /// A host's agent stopped answering.
    #[error("host {host}: {detail}")]
    Lost {
        /// The host.
        host: String,
        /// What happened.
        detail: String,
    },
    /// Migrations of fewer than two different guest sizes cannot make a line.
    #[error(
        "migrations of {0:?} MiB: a line needs at least two different guest sizes (e.g. --migrate 128,256,512)"
    )]
    MigrationSizes(Vec<u32>),
    /// An overhead kernel did not run, in a guest or on this machine.
    #[error("the {kernel} kernel {where_}: {detail}")]
    Bench {
        /// The kernel.
        kernel: &'static str,
        /// In a guest or on the host.
        where_: &'static str,
        /// Why.
        detail: String,
    },
}

/// Everything measured, in milliseconds and MiB per second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Measured {
    /// How the hosts' VMs ran (the first host's).
    pub accelerator: Option<Accelerator>,
    /// The hosts measured on.
    pub hosts: Vec<String>,
    /// Each clone (create), ms.
    pub clones: Vec<u64>,
    /// Each boot to Ready, ms.
    pub boots: Vec<u64>,
    /// Each live migration: guest memory (MiB) and QEMU's figures.
    pub migrations: Vec<(u32, MigrationStats)>,
    /// A fence of the first host, ms.
    pub fence: Option<u64>,
    /// The fenced VM's start on the second host, ms (HA's restart step).
    pub restart: Option<u64>,
    /// The CPU kernel in a guest and on the host, MiB/s.
    pub cpu: Option<(f64, f64)>,
    /// The memory kernel in a guest and on the host, MiB/s.
    pub memory: Option<(f64, f64)>,
}

/// The `p`-th percentile (0–100) of `values` by nearest rank.
#[must_use]
pub fn percentile(values: &[u64], p: u32) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let rank = (u64::from(p) * n as u64).div_ceil(100).max(1);
    sorted.get(usize::try_from(rank).unwrap_or(n) - 1).copied()
}

/// The least-squares line through `points`: (intercept, slope); none for fewer than two
/// distinct x.
#[must_use]
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    if points.len() < 2 || sxx <= f64::EPSILON {
        return None;
    }
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    Some((my - slope * mx, slope))
}

/// Bits in a GiB.
const GIB_BITS: f64 = 8.0 * 1_073_741_824.0;

/// The fastest migration bandwidth a Calibration may record (the model's limit).
const MAX_GBPS: f64 = 10_000.0;

/// The largest overhead a Calibration may record (the model's limit).
const MAX_OVERHEAD: f64 = 0.99;

impl Measured {
    /// The line fitted through the migrations' total times against guest memory: none
    /// when the time did not grow with memory over the sizes tried (the Environment's
    /// figures stay).
    #[must_use]
    pub fn migration_line(&self) -> Option<MeasuredMigration> {
        fit(&self
            .migrations
            .iter()
            .map(|(mib, s)| (f64::from(*mib) / 1024.0, s.total_ms as f64))
            .collect::<Vec<_>>())
        .filter(|&(_, ms_per_gib)| ms_per_gib > 0.0)
        .map(|(intercept, ms_per_gib)| MeasuredMigration {
            gbps: (GIB_BITS / 1e9 / (ms_per_gib / 1000.0)).min(MAX_GBPS),
            switchover: Span(intercept.max(0.0).round() as u64),
        })
    }

    /// The Calibration these measurements make: medians for the timings, the fitted line
    /// for migrations, `1 − guest / host` for each overhead.
    #[must_use]
    pub fn calibration(&self) -> CalibrationSpec {
        let ms = |v: u64| Span(v);
        let migration = self.migration_line();
        let overhead = |pair: Option<(f64, f64)>| {
            pair.map(|(guest, host)| {
                (1.0 - guest / host.max(f64::MIN_POSITIVE)).clamp(0.0, MAX_OVERHEAD)
            })
        };
        let on = match self.accelerator {
            Some(Accelerator::Kvm) => CalibratedOn::Kvm,
            _ => CalibratedOn::Tcg,
        };
        CalibrationSpec {
            accelerator: on,
            description: format!(
                "plinth calibrate on {}: {} boots, {} migrations",
                self.hosts.join(", "),
                self.boots.len(),
                self.migrations.len()
            ),
            vm_clone: percentile(&self.clones, 50).map(ms),
            vm_boot: percentile(&self.boots, 50).map(ms),
            vm_boot_p95: percentile(&self.boots, 95).map(ms),
            migration,
            fence_latency: self.fence.map(ms),
            overhead: match (overhead(self.cpu), overhead(self.memory)) {
                (Some(cpu), Some(memory)) => Some(MeasuredOverhead {
                    cpu,
                    memory,
                    disk: None,
                    network: None,
                }),
                _ => None,
            },
        }
    }
}

/// One agent, as `plinth calibrate` talks to it.
struct Agent {
    host: String,
    addr: SocketAddr,
    conn: AgentConnection,
    next: u64,
    /// False once its link broke: it is not written to again.
    alive: bool,
}

/// The agents of a calibration. Whichever one is awaited (or none, while the host side of
/// a kernel runs), every live one hears from the calibration every [`HEARTBEAT`], so none
/// self-fences while another works, and what the others sent meanwhile is read, so no link
/// fills up.
struct Agents(Vec<Agent>);

/// The longest any one action may take.
const BUDGET: Duration = Duration::from_secs(120);
/// How often every agent hears from the calibration while it waits.
const HEARTBEAT: Duration = Duration::from_millis(500);
/// The longest one frame to an agent may take to send.
const SEND: Duration = Duration::from_secs(5);
/// The most frames of an agent not awaited read at one heartbeat.
const DRAIN: usize = 64;
/// The longest the clean-up after a failed calibration waits on one agent.
const CLEAN_UP: Duration = Duration::from_secs(30);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Agents {
    /// Agent `i` carries out `action`; its outcome.
    async fn act(&mut self, i: usize, action: Action) -> Result<Outcome, CalibrateError> {
        let what = action.to_string();
        let a = &mut self.0[i];
        if !a.alive {
            return Err(lost(a, "its link broke earlier"));
        }
        a.next += 1;
        let id = CommandId(a.next);
        let command = ToAgent::Command(Command {
            id,
            deadline_unix_ms: unix_ms() + BUDGET.as_millis() as u64,
            action,
        });
        self.send(i, &command).await?;
        let outcome = self
            .wait(i, |m| match m {
                FromAgent::Completion(c) if c.id == id => Some(c.outcome),
                _ => None,
            })
            .await?;
        match outcome {
            Outcome::Failed { error } => Err(CalibrateError::Failed {
                host: self.0[i].host.clone(),
                action: what,
                error,
            }),
            done => Ok(done),
        }
    }

    /// `action` on agent `i`, timed: ms from sending to its answer.
    async fn timed(&mut self, i: usize, action: Action) -> Result<u64, CalibrateError> {
        let t0 = Instant::now();
        self.act(i, action).await?;
        Ok(millis(t0.elapsed()))
    }

    async fn send(&mut self, i: usize, message: &ToAgent) -> Result<(), CalibrateError> {
        let a = &mut self.0[i];
        match tokio::time::timeout(SEND, a.conn.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(lost(a, &e.to_string())),
            Err(_) => Err(lost(a, &format!("a frame took over {SEND:?} to send"))),
        }
    }

    /// One heartbeat to every live agent, after reading what those not `awaited` sent
    /// (dropped: only the awaited agent's frames answer anything). An agent whose link
    /// broke is left alone from then on; the awaited one's is an error.
    async fn tend(&mut self, awaited: Option<usize>) -> Result<(), CalibrateError> {
        for j in 0..self.0.len() {
            if !self.0[j].alive {
                continue;
            }
            let mut broken = None;
            if Some(j) != awaited {
                for _ in 0..DRAIN {
                    // A zero timeout polls the read once: a frame there now, or nothing.
                    match tokio::time::timeout(Duration::ZERO, self.0[j].conn.recv::<FromAgent>())
                        .await
                    {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            broken = Some(lost(&self.0[j], &e.to_string()));
                            break;
                        }
                        Err(_) => break,
                    }
                }
            }
            if broken.is_none() {
                broken = self.send(j, &ToAgent::Heartbeat).await.err();
            }
            if let Some(e) = broken {
                if Some(j) == awaited {
                    return Err(e);
                }
                tracing::warn!(error = %e, "an agent's link broke; it is no longer heard");
                self.0[j].alive = false;
            }
        }
        Ok(())
    }

    /// Awaits `work` (done here, not by an agent), tending the agents meanwhile.
    async fn alongside<T>(
        &mut self,
        work: impl Future<Output = Result<T, CalibrateError>>,
    ) -> Result<T, CalibrateError> {
        tokio::pin!(work);
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => self.tend(None).await?,
            }
        }
    }

    /// Reads agent `i`'s frames until `pick` takes one, within [`BUDGET`], heartbeating
    /// every agent meanwhile.
    async fn wait<T>(
        &mut self,
        i: usize,
        pick: impl Fn(FromAgent) -> Option<T>,
    ) -> Result<T, CalibrateError> {
        let deadline = tokio::time::Instant::now() + BUDGET;
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                frame = self.0[i].conn.recv::<FromAgent>() => {
                    let frame = frame.map_err(|e| lost(&self.0[i], &e.to_string()))?;
                    if let Some(found) = pick(frame) {
                        return Ok(found);
                    }
                }
                _ = tick.tick() => self.tend(Some(i)).await?,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(lost(&self.0[i], &format!("no answer within {BUDGET:?}")));
                }
            }
        }
    }

    /// The VMs agent `i` has now.
    async fn vms(&mut self, i: usize) -> Result<Vec<VmName>, CalibrateError> {
        self.send(i, &ToAgent::Resync).await?;
        self.wait(i, |m| match m {
            FromAgent::Inventory(inv) => Some(inv.vms.into_iter().map(|v| v.name).collect()),
            _ => None,
        })
        .await
    }

    /// Agent `i`'s VMs: the calibration's own, and the others.
    async fn ours_and_others(
        &mut self,
        i: usize,
    ) -> Result<(Vec<VmName>, Vec<VmName>), CalibrateError> {
        Ok(self
            .vms(i)
            .await?
            .into_iter()
            .partition(|v| v.0.starts_with(PREFIX)))
    }

    /// Refuses agent `i`'s host when it runs a VM that is not the calibration's: a fence
    /// would kill it.
    async fn only_ours(&mut self, i: usize) -> Result<(), CalibrateError> {
        let (_, others) = self.ours_and_others(i).await?;
        if others.is_empty() {
            return Ok(());
        }
        let vms: Vec<&str> = others.iter().map(|v| v.0.as_str()).collect();
        Err(CalibrateError::Busy {
            host: self.0[i].host.clone(),
            vms: vms.join(", "),
        })
    }

    /// Deletes the calibration's VMs on agent `i` (an interrupted run's, or this one's).
    async fn delete_ours(&mut self, i: usize) -> Result<(), CalibrateError> {
        for vm in self.ours_and_others(i).await?.0 {
            self.act(i, Action::DeleteVm { vm }).await?;
        }
        Ok(())
    }

    /// After a failure: deletes the calibration's VMs wherever an agent still answers,
    /// whatever else its host runs, within [`CLEAN_UP`] each; what it cannot is left for
    /// the next run to delete.
    async fn clean_up(&mut self) {
        for i in 0..self.0.len() {
            if self.0[i].alive {
                let _ = tokio::time::timeout(CLEAN_UP, self.delete_ours(i)).await;
            }
        }
    }

    /// Runs `kernel` in `vm`'s guest on agent `i`: MiB per second.
    async fn bench(
        &mut self,
        i: usize,
        vm: &VmName,
        kernel: BenchKernel,
    ) -> Result<f64, CalibrateError> {
        self.send(
            i,
            &ToAgent::Bench {
                vm: vm.clone(),
                kernel,
            },
        )
        .await?;
        let result = self
            .wait(i, |m| match m {
                FromAgent::Bench {
                    vm: v,
                    kernel: k,
                    result,
                } if v == *vm && k == kernel => Some(result),
                _ => None,
            })
            .await?;
        match result {
            BenchResult::Ran { mib_per_second } => Ok(mib_per_second),
            BenchResult::NotRun { reason } => Err(CalibrateError::Bench {
                kernel: kernel.name(),
                where_: "in a guest",
                detail: reason,
            }),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A calibration VM of `memory_mib`.
fn spec(name: &str, memory_mib: u32, image: &str) -> VmSpec {
    VmSpec {
        name: VmName(name.to_owned()),
        vcpus: 1,
        memory_mib,
        image: image.to_owned(),
        bootstrap: Bootstrap {
            node: name.to_owned(),
            cluster: "calibration".to_owned(),
            kubernetes_version: String::new(),
            join_config: "kind: JoinConfiguration\n".to_owned(),
        },
        network: None,
    }
}

/// The prefix of the calibration's VMs.
const PREFIX: &str = "calib-";

/// The memory of the boot and overhead VMs, MiB (room for the memory kernel's 64 MiB).
const VM_MIB: u32 = 256;

/// The first host: it boots, runs the kernels, sends the migrations and is fenced.
const A: usize = 0;
/// The second host: it receives the migrations and restarts the fenced VM.
const B: usize = 1;

impl Plan {
    /// Whether the plan can be measured: migrations need two different guest sizes (a line
    /// needs two points), or none at all.
    ///
    /// # Errors
    /// [`CalibrateError::MigrationSizes`] when fewer than two sizes differ.
    pub fn check(&self) -> Result<(), CalibrateError> {
        let sizes: std::collections::BTreeSet<u32> = self.migrations_mib.iter().copied().collect();
        if sizes.len() == 1 {
            return Err(CalibrateError::MigrationSizes(self.migrations_mib.clone()));
        }
        Ok(())
    }
}

/// Measures `plan` on `agents` (host, address), reporting each step to `progress`.
///
/// # Errors
/// When the plan cannot be measured, an agent cannot be reached, runs other VMs, or fails
/// an action; the calibration's own VMs are deleted first where the agents still answer.
pub async fn measure(
    agents: &[(String, SocketAddr)],
    token: &Token,
    tls: Option<&Arc<ClientConfig>>,
    plan: &Plan,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Measured, CalibrateError> {
    plan.check()?;
    if agents.is_empty() {
        return Err(CalibrateError::NoHosts);
    }
    let mut links = Agents(Vec::new());
    let mut measured = Measured::default();
    for (host, addr) in agents {
        let (conn, inventory) = open(*addr, token, tls, Duration::from_secs(10))
            .await
            .map_err(|source| CalibrateError::Dial {
                host: host.clone(),
                source,
            })?;
        measured.accelerator.get_or_insert(inventory.accelerator);
        measured.hosts.push(host.clone());
        links.0.push(Agent {
            host: host.clone(),
            addr: *addr,
            conn,
            next: unix_ms(),
            alive: true,
        });
    }
    let result = run(&mut links, plan, progress, &mut measured).await;
    if result.is_err() {
        links.clean_up().await;
    }
    result.map(|()| measured)
}

/// The measurements, one after another, into `measured`.
async fn run(
    links: &mut Agents,
    plan: &Plan,
    progress: &mut (dyn FnMut(&str) + Send),
    measured: &mut Measured,
) -> Result<(), CalibrateError> {
    for i in 0..links.0.len() {
        links.only_ours(i).await?;
        links.delete_ours(i).await?;
    }
    let host = |links: &Agents, i: usize| links.0[i].host.clone();

    for i in 0..plan.boots {
        let vm = spec(&format!("{PREFIX}boot-{i}"), VM_MIB, &plan.image);
        let name = vm.name.clone();
        let clone = links.timed(A, Action::CreateVm(vm)).await?;
        let boot = links.timed(A, Action::StartVm { vm: name.clone() }).await?;
        links.act(A, Action::DeleteVm { vm: name }).await?;
        progress(&format!(
            "boot {}/{} on {}: clone {clone} ms, boot to Ready {boot} ms",
            i + 1,
            plan.boots,
            host(links, A)
        ));
        measured.clones.push(clone);
        measured.boots.push(boot);
    }

    let vm = spec(&format!("{PREFIX}bench"), VM_MIB, &plan.image);
    let name = vm.name.clone();
    links.act(A, Action::CreateVm(vm)).await?;
    links.act(A, Action::StartVm { vm: name.clone() }).await?;
    for kernel in BenchKernel::ALL {
        let guest = links.bench(A, &name, kernel).await?;
        let on_host = links
            .alongside(host_bench(&plan.guest_agent, kernel))
            .await?;
        progress(&format!(
            "{} kernel: {guest:.0} MiB/s in a guest, {on_host:.0} MiB/s on this machine",
            kernel.name()
        ));
        match kernel {
            BenchKernel::Cpu => measured.cpu = Some((guest, on_host)),
            BenchKernel::Memory => measured.memory = Some((guest, on_host)),
        }
    }
    links.act(A, Action::DeleteVm { vm: name }).await?;

    if links.0.len() <= B {
        progress("one host: no migration or restart elsewhere measured");
        return Ok(());
    }
    for &mib in &plan.migrations_mib {
        let vm = spec(&format!("{PREFIX}move-{mib}"), mib, &plan.image);
        let name = vm.name.clone();
        links.act(A, Action::CreateVm(vm)).await?;
        links.act(A, Action::StartVm { vm: name.clone() }).await?;
        let listen = links.0[B].addr.ip();
        let Outcome::Listening { addr } = links
            .act(
                B,
                Action::ReceiveVm {
                    vm: name.clone(),
                    listen,
                },
            )
            .await?
        else {
            return Err(lost(&links.0[B], "receiveVm answered without an address"));
        };
        let Outcome::Migrated(stats) = links
            .act(
                A,
                Action::SendVm {
                    vm: name.clone(),
                    to: addr,
                },
            )
            .await?
        else {
            return Err(lost(&links.0[A], "sendVm answered without its figures"));
        };
        links.act(B, Action::DeleteVm { vm: name }).await?;
        progress(&format!(
            "migration of a {mib} MiB guest {} → {}: {stats}",
            host(links, A),
            host(links, B),
        ));
        measured.migrations.push((mib, stats));
    }
    match measured.migration_line() {
        Some(line) => progress(&format!(
            "migration line: {} + memory × 8 / {:.1} Gbit/s",
            line.switchover, line.gbps
        )),
        None if !measured.migrations.is_empty() => progress(
            "migration: the time did not grow with memory over the sizes tried, so no line is recorded (try sizes further apart)",
        ),
        None => {}
    }

    let vm = spec(&format!("{PREFIX}failover"), VM_MIB, &plan.image);
    let name = vm.name.clone();
    links.act(A, Action::CreateVm(vm)).await?;
    links.act(A, Action::StartVm { vm: name.clone() }).await?;
    // Nothing else may have started on the host since the start: the fence kills it all.
    links.only_ours(A).await?;
    let fence = links.timed(A, Action::Fence).await?;
    let restart = links.timed(B, Action::StartVm { vm: name.clone() }).await?;
    links.act(B, Action::DeleteVm { vm: name.clone() }).await?;
    // The fenced host still has the VM's record (stopped): it goes too.
    links.act(A, Action::DeleteVm { vm: name }).await?;
    progress(&format!(
        "failover: fence of {} by its agent {fence} ms, restart on {} to Ready {restart} ms",
        host(links, A),
        host(links, B)
    ));
    measured.fence = Some(fence);
    measured.restart = Some(restart);
    Ok(())
}

fn lost(agent: &Agent, detail: &str) -> CalibrateError {
    CalibrateError::Lost {
        host: agent.host.clone(),
        detail: detail.to_owned(),
    }
}

/// Runs `kernel` on this machine with the guest agent binary, within [`BUDGET`]: MiB per
/// second.
async fn host_bench(guest_agent: &PathBuf, kernel: BenchKernel) -> Result<f64, CalibrateError> {
    let failed = |detail: String| CalibrateError::Bench {
        kernel: kernel.name(),
        where_: "on this machine",
        detail,
    };
    let run = tokio::process::Command::new(guest_agent)
        .args(["bench", kernel.name()])
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BUDGET, run)
        .await
        .map_err(|_| {
            failed(format!(
                "{} gave no result within {BUDGET:?}",
                guest_agent.display()
            ))
        })?
        .map_err(|e| failed(format!("{}: {e}", guest_agent.display())))?;
    if !out.status.success() {
        return Err(failed(format!(
            "{} exited {}",
            guest_agent.display(),
            out.status
        )));
    }
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .map_err(|e| failed(format!("its output: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=20).collect();
        assert_eq!(percentile(&v, 50), Some(10));
        assert_eq!(percentile(&v, 95), Some(19));
        assert_eq!(percentile(&[7], 95), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[30, 10, 20], 50), Some(20), "unsorted input");
    }

    #[test]
    fn a_line_is_fitted_through_the_points() {
        let (a, b) = fit(&[(0.125, 600.0), (0.25, 700.0), (0.5, 900.0)]).expect("a line");
        assert!(
            (a - 500.0).abs() < 1e-6 && (b - 800.0).abs() < 1e-6,
            "{a} {b}"
        );
        assert_eq!(fit(&[(1.0, 5.0)]), None);
        assert_eq!(fit(&[(1.0, 5.0), (1.0, 6.0)]), None);
    }

    #[test]
    fn measurements_make_a_calibration_the_model_accepts() {
        let stats = |total_ms| MigrationStats {
            total_ms,
            downtime_ms: 5,
            transferred_bytes: 1,
        };
        let measured = Measured {
            accelerator: Some(Accelerator::Tcg),
            hosts: vec!["h1".into(), "h2".into()],
            clones: vec![40, 30, 50],
            boots: vec![2000, 2500, 2100],
            migrations: vec![(128, stats(600)), (256, stats(700)), (512, stats(900))],
            fence: Some(20),
            restart: Some(2200),
            cpu: Some((50.0, 1000.0)),
            memory: Some((500.0, 400.0)),
        };
        let c = measured.calibration();
        assert_eq!(c.accelerator, CalibratedOn::Tcg);
        assert_eq!(
            (c.vm_clone, c.vm_boot, c.vm_boot_p95),
            (Some(Span(40)), Some(Span(2100)), Some(Span(2500)))
        );
        let m = c.migration.expect("fitted");
        // 800 ms per GiB: 8.59 Gbit in 0.8 s.
        assert!((m.gbps - GIB_BITS / 1e9 / 0.8).abs() < 1e-6, "{m:?}");
        assert_eq!(m.switchover, Span(500));
        let o = c.overhead.expect("both kernels");
        assert!((o.cpu - 0.95).abs() < 1e-9);
        assert_eq!(o.memory, 0.0, "a guest faster than its host is no overhead");
        assert_eq!(c.fence_latency, Some(Span(20)));

        // Times that do not grow with memory make no line (not the fastest bandwidth).
        let flat = Measured {
            migrations: vec![(128, stats(700)), (512, stats(650))],
            ..measured
        };
        assert_eq!(flat.calibration().migration, None);
    }

    #[test]
    fn migrations_need_two_different_sizes_or_none() {
        let plan = |migrations_mib: Vec<u32>| Plan {
            boots: 1,
            migrations_mib,
            image: "plinth-node".into(),
            guest_agent: PathBuf::new(),
        };
        assert!(plan(vec![128, 256]).check().is_ok());
        assert!(plan(Vec::new()).check().is_ok());
        let err = plan(vec![256, 256]).check().expect_err("one size");
        assert!(
            err.to_string().contains("two different guest sizes"),
            "{err}"
        );
    }
}
