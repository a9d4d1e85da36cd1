//! Real VMs on the namespaced testbed (root; QEMU under TCG on this machine), timed:
//!
//! 1. 20 node VMs created concurrently on 4 hosts through the QEMU driver (SmartX's Cluster
//!    API provider allows 20 concurrent creations): time until all are Ready.
//! 2. HA with the lab Environment (`examples/lab`, 4 hosts): a host's link is cut; the time
//!    until every one of its VMs is Ready elsewhere, split by phase, over 5 trials.
//! 3. HA with the production defaults (heartbeat 1 s, detection 15 s, self-fence 60 s, margin
//!    10 s): one trial, split by phase.
//!
//! `cargo bench -p plinth-cli --bench real` (about 4 minutes on an idle machine).

#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;

use std::time::{Duration, Instant};

use agent_support::{lab_estate, testbed};
use plinth_conformance::Lab;
use plinth_control::store::MemoryStore;
use plinth_control::{Command, CommandId, CommandKind, ControlConfig, Observation, Ready, Time};
use plinth_proto::Token;
use plinth_qemu::bootstrap::Pools;
use plinth_qemu::lab::QemuLab;
use plinth_qemu::{DriverConfig, NoJournal, QemuDriver, wall_clock};

const CONCURRENT: u64 = 20;
const HA_TRIALS: usize = 5;
const CAP_MS: u64 = 600_000;

const PRODUCTION: &str = "apiVersion: plinth.dev/v1alpha1
kind: Environment
metadata:
  name: production-ha
spec:
  type: virtualized
  hypervisorReservation: {cpu: 500m, memory: 256Mi}
  perVmOverhead: {memory: 64Mi}
  storage: {cpu: 0, memory: 0}
  drs: {enabled: false}
  timings: {vmClone: 1s, vmBoot: 10s}
";

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// 20 creations at once on 4 hosts, through the driver alone.
fn concurrent_creations(dir: &std::path::Path) {
    let bed = testbed(dir, "60s");
    bed.run(&["up", "4"]).expect("testbed up 4");
    let estate = lab_estate(true, None);
    let token = bed.token().expect("token");
    let mut deadlines = ControlConfig::virtualized(&estate).deadlines;
    // Twenty TCG boots share two cores: give each the time that takes.
    deadlines.vm_boot = 300_000;
    let agents = estate.inventory.spec.agents();
    let hosts: Vec<String> = agents.keys().cloned().collect();
    let config = DriverConfig {
        agents,
        token: Token::new(&token),
        heartbeat: Duration::from_millis(500),
        deadlines,
        pools: Pools::of(&estate),
    };
    let mut driver = QemuDriver::start(
        config,
        token.trim().as_bytes(),
        Box::new(MemoryStore::default()),
        Box::new(NoJournal),
    )
    .expect("driver");
    while !driver.all_heard() {
        driver.poll(None, wall_clock().plus(100));
    }
    let commands = (0..CONCURRENT)
        .map(|i| Command {
            id: CommandId(i),
            kind: CommandKind::CreateVm {
                vm: format!("bench-{i}"),
                host: hosts[i as usize % hosts.len()].clone(),
                pool: "apps/workers".into(),
            },
        })
        .collect();
    let started = Instant::now();
    let now = wall_clock();
    plinth_control::Driver::apply(
        &mut driver,
        now,
        Ready {
            commands,
            ..Ready::default()
        },
    );
    let (mut ready, mut failed) = (0, 0);
    let mut last = Duration::ZERO;
    while ready + failed < CONCURRENT && started.elapsed() < Duration::from_millis(CAP_MS) {
        match driver.poll(None, wall_clock().plus(1000)) {
            Some((_, Observation::CommandCompleted { .. })) => {
                ready += 1;
                last = started.elapsed();
            }
            Some((_, Observation::CommandFailed { error, .. })) => {
                eprintln!("  a creation failed: {error}");
                failed += 1;
            }
            _ => {}
        }
    }
    println!(
        "{CONCURRENT} VMs created concurrently on {} hosts: {ready} Ready, {failed} failed, all Ready after {}",
        hosts.len(),
        secs(u64::try_from(last.as_millis()).unwrap_or(u64::MAX))
    );
    drop(driver);
    bed.run(&["down"]).expect("testbed down");
}

/// Cuts the busiest host `trials` times; prints each trial's phases.
fn ha(
    dir: &std::path::Path,
    name: &str,
    self_fence: &str,
    environment: Option<&str>,
    trials: usize,
) {
    let bed = testbed(dir, self_fence);
    bed.run(&["up", "4"]).expect("testbed up 4");
    let mut lab = QemuLab::new(&lab_estate(true, environment), bed.clone(), CAP_MS).expect("lab");
    assert!(lab.run_until(CAP_MS, &|l| l.settled()), "built");
    println!("HA, {name}: cut → detected (declared failed) → known dead → Ready elsewhere");
    for trial in 0..trials {
        let host = lab
            .hosts()
            .into_iter()
            .max_by_key(|h| lab.running(h).len())
            .expect("a host");
        let cut = wall_clock();
        lab.partition(&host);
        let done = lab.run_until(CAP_MS, &|l| {
            l.failure_of(&host, cut)
                .is_some_and(|f| f.recovered_at.is_some())
        });
        let f = lab.failure_of(&host, cut).expect("a failure record");
        let at = |t: Option<Time>| t.map_or(0, |t| t.since(cut));
        println!(
            "  trial {trial}: {host}, {} VMs: detected {}, known dead {}, Ready elsewhere {}{}",
            f.vms_restarted,
            secs(f.declared_at.since(cut)),
            secs(at(f.known_dead_at)),
            secs(at(f.recovered_at)),
            if done { "" } else { " — NOT RECOVERED" }
        );
        lab.heal(&host);
        lab.run_until(CAP_MS, &|l| l.settled());
    }
    bed.run(&["down"]).expect("testbed down");
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: minutes of real VMs are
    // for `cargo bench` only.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    concurrent_creations(dir.path());
    ha(
        dir.path(),
        "lab Environment (examples/lab)",
        "3s",
        None,
        HA_TRIALS,
    );
    ha(
        dir.path(),
        "production defaults",
        "60s",
        Some(PRODUCTION),
        1,
    );
}
