//! Fidelity of the calibrated simulator: the same actions on real VMs and in the simulator,
//! side by side, on `scripts/testbed up 4` (root; QEMU under TCG on this machine).
//!
//! 1. `plinth_qemu::calibrate` measures two of the hosts (boots, migrations, fence), and
//!    `examples/lab` on four hosts takes the Calibration's timings, as an Environment naming
//!    it does.
//! 2. The same three actions run on the QEMU lab and on the simulator's lab of that estate:
//!    **create** (a worker pool scaled up by one, until its new node runs), **migrate** (the
//!    busiest host's maintenance, until its VMs run elsewhere by live migration) and **host
//!    failure** (another host crashes, until the control plane records its VMs running
//!    elsewhere). `examples/lab` declares `ha.fencing: agent`, as the testbed has no BMC: a
//!    crashed host's VMs restart once known dead, in both labs. An action that starts
//!    VMs ends when the control plane has nothing under way (every node running as its
//!    agent reports it: Ready, on real VMs).
//! 3. Each action's real and predicted duration and their ratio are printed; the goal is
//!    within 20 %. A host failure is shown by phase, from the control plane's record of it
//!    (declared failed, VMs known dead, VMs running elsewhere), each timed from the crash.
//!    The simulator's lab looks at its world every virtual second, so a prediction is
//!    rounded up to a whole second.
//!
//! `cargo bench -p plinth-cli --bench fidelity` (about 4 minutes). Under `cargo test` (no
//! `--bench`) one small case runs (one boot, two migrations) and only checks that every
//! number is produced and finite: TCG timings on two shared cores are too noisy to assert.

#![allow(missing_docs, clippy::print_stdout, clippy::print_stderr)]

#[path = "../tests/agent_support/mod.rs"]
mod agent_support;

use agent_support::{images, lab_estate, on_testbed, repo, testbed, testbed_agent};
use plinth_conformance::Lab;
use plinth_control::Observation;
use plinth_model::Estate;
use plinth_qemu::calibrate::{Plan, measure};
use plinth_qemu::lab::QemuLab;
use plinth_sim::SimLab;

/// Most wall-clock time one wait of the real lab may take.
const CAP_MS: u64 = 300_000;

/// One hour, ms: the simulator's lab may take that long, in virtual time.
const HOUR_MS: u64 = 3_600_000;

/// One action's duration, ms, on a lab.
struct Timed {
    create: u64,
    migrate: u64,
    failure: Failover,
}

/// A host failure's phases, ms after the crash, from the control plane's record of it.
struct Failover {
    /// The host declared failed (its last heartbeat + the detection timeout).
    declared: u64,
    /// Its VMs known dead (fenced, or by the known-dead rule), so restarted elsewhere.
    dead: u64,
    /// Every VM restarted was running (Ready) elsewhere.
    running: u64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    on_testbed(4, "3s", |dir, bed| {
        let estate = calibrated(bed, full);
        let lab = QemuLab::new(&estate, testbed(dir, "3s"), CAP_MS).expect("the lab");
        let real = actions(lab);
        let sim = SimLab::new(&estate, 1).expect("the simulator's lab");
        let predicted = actions(sim);
        println!("| action | real (s) | predicted (s) | predicted / real |");
        println!("|---|---:|---:|---:|");
        let (rf, pf) = (&real.failure, &predicted.failure);
        for (name, r, p) in [
            ("add a node to a pool", real.create, predicted.create),
            (
                "empty a host by live migration",
                real.migrate,
                predicted.migrate,
            ),
            ("a host crash: declared failed", rf.declared, pf.declared),
            ("… its VMs known dead", rf.dead, pf.dead),
            (
                "… its VMs running elsewhere (the failover)",
                rf.running,
                pf.running,
            ),
        ] {
            let (r, p) = (r as f64 / 1000.0, p as f64 / 1000.0);
            let ratio = p / r;
            println!("| {name} | {r:.1} | {p:.1} | {ratio:.2} |");
            assert!(
                r.is_finite() && p.is_finite() && ratio.is_finite(),
                "{name}: {r} {p}"
            );
        }
    });
}

/// `examples/lab` on four hosts, with the timings `plinth calibrate` measures on two of them.
fn calibrated(bed: &plinth_qemu::lab::Testbed, full: bool) -> Estate {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let hosts: Vec<(String, std::net::SocketAddr)> = (1..=2)
        .map(|i| (format!("h{i}"), testbed_agent(i)))
        .collect();
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), Into::into);
    images();
    let plan = Plan {
        boots: if full { 10 } else { 1 },
        migrations_mib: if full {
            vec![128, 256, 512]
        } else {
            vec![128, 256]
        },
        image: plinth_proto::guest::DEFAULT_IMAGE.into(),
        guest_agent: target.join("x86_64-unknown-linux-gnu/release/plinth-guest"),
    };
    let token = plinth_proto::Token::new(&bed.token().expect("token"));
    let tls = bed.tls().expect("tls");
    let mut progress = |line: &str| eprintln!("calibrate: {line}");
    let measured = rt
        .block_on(measure(&hosts, &token, Some(&tls), &plan, &mut progress))
        .expect("calibrated");
    let calibration = measured.calibration();
    let mut estate = lab_estate(true, None);
    let env = &mut estate.virtualized.spec;
    for (field, was, now) in calibration.apply(&mut env.timings, &mut env.ha) {
        eprintln!("calibrated: {field} {was} → {now}");
    }
    estate
}

/// The three actions on `lab`, timed on its own clock. An action ends when the control
/// plane has nothing under way ([`Lab::settled`]: every node running, as its agent reports
/// it, Ready on real VMs), the one definition both labs share; a maintenance ends when its
/// host is empty.
fn actions<L: Lab>(mut lab: L) -> Timed {
    assert!(
        lab.run_until(CAP_MS, &|l| l.settled()),
        "both clusters built"
    );

    let (cluster, pool, replicas) = lab
        .clusters()
        .into_iter()
        .find_map(|c| {
            let topo = lab.cluster(&c)?;
            let p = topo.pools.first()?;
            Some((c, p.name.clone(), p.nodes.len() as u32))
        })
        .expect("a cluster with a worker pool");
    let t = lab.now();
    lab.request(Observation::ScaleRequested {
        cluster: cluster.clone(),
        pool,
        replicas: replicas + 1,
    });
    let grown = |l: &L| {
        l.settled()
            && l.cluster(&cluster)
                .and_then(|c| c.pools.first().map(|p| p.nodes.len() as u32))
                == Some(replicas + 1)
    };
    assert!(lab.run_until(CAP_MS, &grown), "{cluster} grew by a node");
    let create = lab.now() - t;

    let busiest = |lab: &L, but: Option<&str>| {
        lab.hosts()
            .into_iter()
            .filter(|h| Some(h.as_str()) != but)
            .max_by_key(|h| lab.running(h).len())
            .expect("a host")
    };
    let moved_off = |l: &L, vms: &[String], host: &str| {
        vms.iter()
            .all(|vm| l.running_on(vm).is_some_and(|h| h != host))
    };

    let host = busiest(&lab, None);
    let vms = lab.running(&host);
    let t = lab.now();
    lab.request(Observation::MaintenanceRequested { host: host.clone() });
    assert!(
        lab.run_until(CAP_MS, &|l| l.running(&host).is_empty()
            && moved_off(l, &vms, &host)),
        "{host} emptied"
    );
    let migrate = lab.now() - t;
    // The maintenance ends (the host back, nothing waiting) before the next action: in the
    // simulator it lasts the host's reboot, the real driver's hosts come back at once.
    assert!(
        lab.run_until(4 * HOUR_MS, &|l| l.conditions().is_empty() && l.settled()),
        "the maintenance ended: {:?}",
        lab.conditions()
    );

    let failed = busiest(&lab, Some(&host));
    let vms = lab.running(&failed);
    let t = lab.now();
    lab.crash(&failed);
    // This crash's failure, recovered: declared after it (an earlier failure of the host,
    // recovered, would end the wait at once).
    let this_crash = |f: &&plinth_control::FailureRecord| {
        f.host == failed && f.declared_at.millis() >= t && f.recovered_at.is_some()
    };
    let recovered = |l: &L| l.failures().iter().any(|f| this_crash(&f));
    // Each VM runs again: elsewhere, or on the crashed host itself when it came back (the
    // lab repairs it after `REPAIR_MS`) before another host had room.
    let running_again = |l: &L| vms.iter().all(|vm| l.running_on(vm).is_some());
    assert!(
        lab.run_until(CAP_MS, &|l| running_again(l) && recovered(l)),
        "{failed}'s VMs restarted: {:?}; failures {:?}; conditions {:?}",
        vms.iter()
            .map(|vm| (vm, lab.running_on(vm)))
            .collect::<Vec<_>>(),
        lab.failures(),
        lab.conditions()
    );
    let failures = lab.failures();
    let record = failures
        .iter()
        .find(this_crash)
        .unwrap_or_else(|| panic!("the crash's failure record: {failures:?}"));
    let after = |at: plinth_control::Time| at.millis().saturating_sub(t);
    let (Some(dead), Some(running)) = (record.known_dead_at, record.recovered_at) else {
        panic!("the crash's failure known dead before any restart: {failures:?}");
    };
    let failure = Failover {
        declared: after(record.declared_at),
        dead: after(dead),
        running: after(running),
    };
    Timed {
        create,
        migrate,
        failure,
    }
}
