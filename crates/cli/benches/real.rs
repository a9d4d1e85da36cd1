//! Real VMs on the namespaced testbed (root; QEMU under TCG on this machine), timed:
//!
//! 1. 20 node VMs created concurrently on 4 hosts through the QEMU driver (SmartX's Cluster
//!    API provider allows 20 concurrent creations): time until all are Ready.
//! 2. HA with the lab Environment (`examples/lab`, 4 hosts): a host's link is cut; the time
//!    until every one of its VMs is Ready elsewhere, split by phase, over 5 trials.
//! 3. HA with the production defaults (heartbeat 1 s, detection 15 s, self-fence 60 s, margin
//!    10 s): one trial, split by phase.
//!
//! 4. Live migration on two testbed hosts, at the agents: a 256 MiB guest moved back and forth
//!    (QEMU's total time and downtime), then a host of 4 such node VMs emptied by 4
//!    concurrent migrations, timed until all 4 are Ready on the other host.
//!
//! `cargo bench -p plinth-cli --bench real` (about 5 minutes on an idle machine).

#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;

use std::time::{Duration, Instant};

use agent_support::{command, commands, connect_over, lab_estate, node_spec, testbed};
use plinth_conformance::Lab;
use plinth_control::store::MemoryStore;
use plinth_control::{Command, CommandId, CommandKind, Observation, Ready, Time};
use plinth_proto::{Action, Outcome, Token, VmName};
use plinth_qemu::bootstrap::Pools;
use plinth_qemu::lab::QemuLab;
use plinth_qemu::{DriverConfig, NoJournal, QemuDriver, wall_clock};

const CONCURRENT: u64 = 20;
const MIGRATION_TRIALS: usize = 6;
const EVACUATED: usize = 4;
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
    let agents = estate.inventory.spec.agents();
    let hosts: Vec<String> = agents.keys().cloned().collect();
    let config = DriverConfig {
        agents,
        token: Token::new(&token),
        tls: Some(bed.tls().expect("TLS certificates")),
        heartbeat: Duration::from_millis(500),
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
    // Twenty TCG boots share two cores: give each the time that takes.
    let deadline = wall_clock().plus(300_000);
    let commands = (0..CONCURRENT)
        .map(|i| Command {
            id: CommandId(i),
            deadline,
            kind: CommandKind::CreateVm {
                vm: format!("bench-{i}"),
                host: hosts[i as usize % hosts.len()].clone(),
                pool: plinth_control::PoolName::new("apps", "workers"),
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

/// One agent command's budget in the migration bench.
const BUDGET: Duration = Duration::from_secs(120);

/// Moves `vm` from the agent on `from` to the one on `to`: receive, send, Ready there.
async fn migrate_one(
    from: &mut agent_support::Conn,
    to: &mut agent_support::Conn,
    listen: std::net::IpAddr,
    vm: &VmName,
    id: &mut u64,
) -> plinth_proto::MigrationStats {
    let mut next = || {
        *id += 1;
        *id
    };
    let receive = Action::ReceiveVm {
        vm: vm.clone(),
        listen,
    };
    let Outcome::Listening { addr } = command(to, next(), receive, BUDGET).await else {
        panic!("{vm}: no receiver");
    };
    let send = Action::SendVm {
        vm: vm.clone(),
        to: addr,
    };
    let Outcome::Migrated(stats) = command(from, next(), send, BUDGET).await else {
        panic!("{vm}: not migrated");
    };
    let start = Action::StartVm { vm: vm.clone() };
    assert_eq!(command(to, next(), start, BUDGET).await, Outcome::Done);
    stats
}

/// Live migration on two testbed hosts, straight through their agents.
fn migrations(dir: &std::path::Path) {
    let bed = testbed(dir, "600s");
    bed.run(&["up", "2"]).expect("testbed up 2");
    let token = Token::new(bed.token().expect("token").trim());
    let agents = lab_estate(false, None).inventory.spec.agents();
    let (h1, h2) = (agents["h1"], agents["h2"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tls = bed.tls().expect("TLS certificates");
    rt.block_on(async {
        let (mut a, _) = connect_over(h1, &token, Some(&tls)).await;
        let (mut b, _) = connect_over(h2, &token, Some(&tls)).await;
        let mut id = 0u64;
        let vms: Vec<VmName> = (0..EVACUATED)
            .map(|i| VmName(format!("evac-{i}")))
            .collect();
        for vm in &vms {
            let mut spec = node_spec(&vm.0, &vm.0);
            spec.memory_mib = 256;
            id += 2;
            assert_eq!(command(&mut a, id, Action::CreateVm(spec), BUDGET).await, Outcome::Done);
            let start = Action::StartVm { vm: vm.clone() };
            assert_eq!(command(&mut a, id + 1, start, BUDGET).await, Outcome::Done);
        }
        println!("Live migration of a 256 MiB guest between two testbed hosts (QEMU under TCG):");
        for trial in 0..MIGRATION_TRIALS {
            let started = Instant::now();
            let stats = if trial % 2 == 0 {
                migrate_one(&mut a, &mut b, h2.ip(), &vms[0], &mut id).await
            } else {
                migrate_one(&mut b, &mut a, h1.ip(), &vms[0], &mut id).await
            };
            println!(
                "  trial {trial}: {stats}; Ready on the target after {}",
                secs(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
            );
        }
        // Every VM on h1 again: empty it onto h2, all at once.
        let started = Instant::now();
        let mut step = |actions: Vec<Action>| {
            actions
                .into_iter()
                .map(|a| {
                    id += 1;
                    (id, a)
                })
                .collect::<Vec<_>>()
        };
        let receive = step(
            vms.iter()
                .map(|vm| Action::ReceiveVm {
                    vm: vm.clone(),
                    listen: h2.ip(),
                })
                .collect(),
        );
        let listening = commands(&mut b, receive, BUDGET).await;
        let send = step(
            vms.iter()
                .zip(listening.values())
                .map(|(vm, outcome)| match outcome {
                    Outcome::Listening { addr } => Action::SendVm {
                        vm: vm.clone(),
                        to: *addr,
                    },
                    other => panic!("{vm}: no receiver: {other:?}"),
                })
                .collect(),
        );
        let sent = commands(&mut a, send, BUDGET).await;
        let start = step(
            vms.iter()
                .map(|vm| Action::StartVm { vm: vm.clone() })
                .collect(),
        );
        let ready = commands(&mut b, start, BUDGET).await;
        assert!(ready.values().all(|o| *o == Outcome::Done), "{ready:?}");
        println!(
            "Evacuation of a host with {EVACUATED} node VMs (256 MiB each) by concurrent live migrations: all Ready on the other host after {}",
            secs(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX))
        );
        for outcome in sent.values() {
            match outcome {
                Outcome::Migrated(stats) => println!("  {stats}"),
                other => panic!("not migrated: {other:?}"),
            }
        }
    });
    bed.run(&["down"]).expect("testbed down");
}

fn main() {
    // `cargo test --all-targets` runs this binary without `--bench`: minutes of real VMs are
    // for `cargo bench` only.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    migrations(dir.path());
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
