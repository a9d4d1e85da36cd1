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
    /// The Calibration these measurements make: medians for the timings, the fitted line
    /// for migrations, `1 − guest / host` for each overhead.
    #[must_use]
    pub fn calibration(&self) -> CalibrationSpec {
        let ms = |v: u64| Span(v);
        let migration = fit(&self
            .migrations
            .iter()
            .map(|(mib, s)| (f64::from(*mib) / 1024.0, s.total_ms as f64))
            .collect::<Vec<_>>())
        .map(|(intercept, ms_per_gib)| MeasuredMigration {
            // A slope at or under zero (no growth with memory over the sizes tried) is the
            // fastest the model takes.
            gbps: if ms_per_gib > 0.0 {
                (GIB_BITS / 1e9 / (ms_per_gib / 1000.0)).min(MAX_GBPS)
            } else {
                MAX_GBPS
            },
            switchover: ms(intercept.max(0.0).round() as u64),
        });
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
    conn: AgentConnection,
    next: u64,
}

/// The longest any one action may take.
const BUDGET: Duration = Duration::from_secs(120);
/// How often an agent hears from the calibration while it waits (it must not self-fence).
const HEARTBEAT: Duration = Duration::from_millis(500);

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Agent {
    /// Carries out `action` and waits for its answer (heartbeating); the outcome.
    async fn act(&mut self, action: Action) -> Result<Outcome, CalibrateError> {
        let what = action_name(&action);
        self.next += 1;
        let id = CommandId(self.next);
        let command = ToAgent::Command(Command {
            id,
            deadline_unix_ms: unix_ms() + BUDGET.as_millis() as u64,
            action,
        });
        self.send(&command).await?;
        let outcome = self
            .wait(|m| match m {
                FromAgent::Completion(c) if c.id == id => Some(c.outcome),
                _ => None,
            })
            .await?;
        match outcome {
            Outcome::Failed { error } => Err(CalibrateError::Failed {
                host: self.host.clone(),
                action: what,
                error,
            }),
            done => Ok(done),
        }
    }

    /// `action`, timed: ms from sending to its answer.
    async fn timed(&mut self, action: Action) -> Result<(u64, Outcome), CalibrateError> {
        let t0 = Instant::now();
        let outcome = self.act(action).await?;
        Ok((millis(t0.elapsed()), outcome))
    }

    async fn send(&mut self, message: &ToAgent) -> Result<(), CalibrateError> {
        self.conn
            .send(message)
            .await
            .map_err(|e| CalibrateError::Lost {
                host: self.host.clone(),
                detail: e.to_string(),
            })
    }

    /// Reads frames (heartbeating) until `pick` takes one, within [`BUDGET`].
    async fn wait<T>(
        &mut self,
        pick: impl Fn(FromAgent) -> Option<T>,
    ) -> Result<T, CalibrateError> {
        let deadline = tokio::time::Instant::now() + BUDGET;
        let mut tick = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                frame = self.conn.recv::<FromAgent>() => {
                    let frame = frame.map_err(|e| CalibrateError::Lost {
                        host: self.host.clone(),
                        detail: e.to_string(),
                    })?;
                    if let Some(found) = pick(frame) {
                        return Ok(found);
                    }
                }
                _ = tick.tick() => self.send(&ToAgent::Heartbeat).await?,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(CalibrateError::Lost {
                        host: self.host.clone(),
                        detail: format!("no answer within {BUDGET:?}"),
                    });
                }
            }
        }
    }

    /// Runs `kernel` in `vm`'s guest: MiB per second.
    async fn bench(&mut self, vm: &VmName, kernel: BenchKernel) -> Result<f64, CalibrateError> {
        self.send(&ToAgent::Bench {
            vm: vm.clone(),
            kernel,
        })
        .await?;
        let result = self
            .wait(|m| match m {
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

fn action_name(action: &Action) -> String {
    match action {
        Action::CreateVm(spec) => format!("createVm {}", spec.name),
        Action::StartVm { vm } => format!("startVm {vm}"),
        Action::StopVm { vm } => format!("stopVm {vm}"),
        Action::DeleteVm { vm } => format!("deleteVm {vm}"),
        Action::Fence => "fence".to_owned(),
        Action::ReceiveVm { vm, .. } => format!("receiveVm {vm}"),
        Action::SendVm { vm, .. } => format!("sendVm {vm}"),
    }
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

/// Measures `plan` on `agents` (host, address), reporting each step to `progress`.
///
/// # Errors
/// When an agent cannot be reached, runs other VMs, or fails an action; the calibration's
/// own VMs are deleted first where the agent still answers.
pub async fn measure(
    agents: &[(String, SocketAddr)],
    token: &Token,
    tls: Option<&Arc<ClientConfig>>,
    plan: &Plan,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<Measured, CalibrateError> {
    if agents.is_empty() {
        return Err(CalibrateError::NoHosts);
    }
    let mut links = Vec::new();
    let mut measured = Measured::default();
    for (host, addr) in agents {
        let (conn, inventory) = open(*addr, token, tls, Duration::from_secs(10))
            .await
            .map_err(|source| CalibrateError::Dial {
                host: host.clone(),
                source,
            })?;
        let others: Vec<String> = inventory
            .vms
            .iter()
            .filter(|v| !v.name.0.starts_with(PREFIX))
            .map(|v| v.name.0.clone())
            .collect();
        if !others.is_empty() {
            return Err(CalibrateError::Busy {
                host: host.clone(),
                vms: others.join(", "),
            });
        }
        measured.accelerator.get_or_insert(inventory.accelerator);
        measured.hosts.push(host.clone());
        let mut agent = Agent {
            host: host.clone(),
            conn,
            next: unix_ms(),
        };
        // What an earlier, interrupted calibration left.
        for v in inventory.vms {
            agent.act(Action::DeleteVm { vm: v.name }).await?;
        }
        links.push(agent);
    }
    let (first, rest) = links.split_at_mut(1);
    let a = &mut first[0];

    for i in 0..plan.boots {
        let vm = spec(&format!("{PREFIX}boot-{i}"), VM_MIB, &plan.image);
        let name = vm.name.clone();
        let (clone, _) = a.timed(Action::CreateVm(vm)).await?;
        let (boot, _) = a.timed(Action::StartVm { vm: name.clone() }).await?;
        a.act(Action::DeleteVm { vm: name }).await?;
        progress(&format!(
            "boot {}/{} on {}: clone {clone} ms, boot to Ready {boot} ms",
            i + 1,
            plan.boots,
            a.host
        ));
        measured.clones.push(clone);
        measured.boots.push(boot);
    }

    let vm = spec(&format!("{PREFIX}bench"), VM_MIB, &plan.image);
    let name = vm.name.clone();
    a.act(Action::CreateVm(vm)).await?;
    a.act(Action::StartVm { vm: name.clone() }).await?;
    for kernel in BenchKernel::ALL {
        let guest = a.bench(&name, kernel).await?;
        let host = host_bench(&plan.guest_agent, kernel).await?;
        progress(&format!(
            "{} kernel: {guest:.0} MiB/s in a guest, {host:.0} MiB/s on this machine",
            kernel.name()
        ));
        match kernel {
            BenchKernel::Cpu => measured.cpu = Some((guest, host)),
            BenchKernel::Memory => measured.memory = Some((guest, host)),
        }
    }
    a.act(Action::DeleteVm { vm: name }).await?;

    let Some(b) = rest.first_mut() else {
        progress("one host: no migration or restart elsewhere measured");
        return Ok(measured);
    };
    for &mib in &plan.migrations_mib {
        let vm = spec(&format!("{PREFIX}move-{mib}"), mib, &plan.image);
        let name = vm.name.clone();
        a.act(Action::CreateVm(vm)).await?;
        a.act(Action::StartVm { vm: name.clone() }).await?;
        let listen = agents[1].1.ip();
        let Outcome::Listening { addr } = b
            .act(Action::ReceiveVm {
                vm: name.clone(),
                listen,
            })
            .await?
        else {
            return Err(lost(b, "receiveVm answered without an address"));
        };
        let Outcome::Migrated(stats) = a
            .act(Action::SendVm {
                vm: name.clone(),
                to: addr,
            })
            .await?
        else {
            return Err(lost(a, "sendVm answered without its figures"));
        };
        b.act(Action::DeleteVm { vm: name }).await?;
        progress(&format!(
            "migration of a {mib} MiB guest {} → {}: {} ms, paused {} ms, {:.1} MiB sent",
            a.host,
            b.host,
            stats.total_ms,
            stats.downtime_ms,
            stats.transferred_bytes as f64 / 1_048_576.0
        ));
        measured.migrations.push((mib, stats));
    }

    let vm = spec(&format!("{PREFIX}failover"), VM_MIB, &plan.image);
    let name = vm.name.clone();
    a.act(Action::CreateVm(vm)).await?;
    a.act(Action::StartVm { vm: name.clone() }).await?;
    let (fence, _) = a.timed(Action::Fence).await?;
    let (restart, _) = b.timed(Action::StartVm { vm: name.clone() }).await?;
    b.act(Action::DeleteVm { vm: name.clone() }).await?;
    // The fenced host still has the VM's record (stopped): it goes too.
    a.act(Action::DeleteVm { vm: name }).await?;
    progress(&format!(
        "failover: fence of {} {fence} ms, restart on {} to Ready {restart} ms",
        a.host, b.host
    ));
    measured.fence = Some(fence);
    measured.restart = Some(restart);
    Ok(measured)
}

fn lost(agent: &Agent, detail: &str) -> CalibrateError {
    CalibrateError::Lost {
        host: agent.host.clone(),
        detail: detail.to_owned(),
    }
}

/// Runs `kernel` on this machine with the guest agent binary: MiB per second.
async fn host_bench(guest_agent: &PathBuf, kernel: BenchKernel) -> Result<f64, CalibrateError> {
    let failed = |detail: String| CalibrateError::Bench {
        kernel: kernel.name(),
        where_: "on this machine",
        detail,
    };
    let out = tokio::process::Command::new(guest_agent)
        .args(["bench", kernel.name()])
        .output()
        .await
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
    }
}
