//! Every dimension moves when the input it measures moves (a metric no input can move is a
//! defect), and the cost identity holds exactly. Each test changes one input of a small
//! estate and asserts the direction of the change, in the environment the input concerns.

mod common;

use common::{dimension, estate, options, report};
use plinth_compare::cost::cost;
use plinth_compare::design::design;
use plinth_compare::{ENVS, Execution, Options, simulate_runs};
use plinth_model::Estate;

const V: usize = 0;
const B: usize = 1;

fn opts() -> Options {
    options(3, 60)
}

/// Headline mean of dimension `key` in environment `env` (0 virtualized, 1 bare metal).
fn metric(estate: &Estate, key: &str, env: usize) -> f64 {
    let r = report(estate, &opts());
    let d = dimension(&r, key);
    if env == V {
        d.virtualized.mean
    } else {
        d.bare_metal.mean
    }
}

fn b() -> Estate {
    estate(&["tests/estates/b"])
}

/// Asserts that `change` moves `key` in `env` of estate B up (`rises`) or down.
fn moves(key: &str, env: usize, rises: bool, change: impl FnOnce(&mut Estate)) {
    moves_from(b(), key, env, rises, change);
}

/// Asserts that `change` moves `key` in `env` of `base` up (`rises`) or down.
fn moves_from(base: Estate, key: &str, env: usize, rises: bool, change: impl FnOnce(&mut Estate)) {
    let before = metric(&base, key, env);
    let mut changed = base.clone();
    change(&mut changed);
    let after = metric(&changed, key, env);
    assert!(
        if rises {
            after > before
        } else {
            after < before
        },
        "{key} in env {env}: {before} → {after}, expected it to {}",
        if rises { "rise" } else { "fall" }
    );
}

#[test]
fn one_stack_for_every_cluster_lowers_stacks_per_server() {
    moves("osFlexibility", V, false, |e| {
        for c in &mut e.clusters {
            c.spec.os_image = "ubuntu-24.04".into();
            c.spec.kubernetes_version = "1.33.1".into();
        }
    });
}

#[test]
fn more_pods_strand_less_bare_metal_cpu() {
    moves("resourceAllocation", B, false, |e| {
        for w in &mut e.workloads {
            w.replicas *= 3;
        }
    });
}

/// Stranded CPU has one definition: a node VM, like a server, strands what its pods do
/// not request.
#[test]
fn fewer_pods_strand_more_virtualized_cpu() {
    moves("resourceAllocation", V, true, |e| {
        for w in &mut e.workloads {
            w.replicas = (w.replicas / 2).max(1);
        }
    });
}

#[test]
fn a_larger_hypervisor_overhead_keeps_less_performance() {
    moves("performance", V, false, |e| {
        e.virtualized.spec.performance_overhead.cpu = 0.2;
    });
}

#[test]
fn longer_repairs_lose_bare_metal_quorum_longer() {
    moves("reliability", B, true, |e| {
        e.scenario.spec.failures.hosts.repair_time.0 *= 4;
    });
}

#[test]
fn more_frequent_failures_cost_more_pod_minutes() {
    moves("availability", B, true, |e| {
        e.scenario.spec.failures.hosts.mtbf.0 /= 20;
    });
}

#[test]
fn a_slower_boot_slows_adding_a_node() {
    moves("agility", V, true, |e| {
        e.virtualized.spec.timings.vm_boot.0 *= 3;
    });
}

#[test]
fn fewer_owned_hosts_leave_less_room_to_grow() {
    moves("scalability", V, false, |e| {
        e.hosts.truncate(8);
    });
}

#[test]
fn busier_workloads_raise_utilization() {
    moves("utilization", V, true, |e| {
        for w in &mut e.workloads {
            w.usage.mean = (w.usage.mean * 2.0).min(1.0);
            w.usage.peak = (w.usage.peak * 1.2).min(1.0);
        }
    });
}

#[test]
fn fewer_clusters_share_fewer_servers() {
    moves("isolation", V, false, |e| {
        let keep: Vec<String> = e.clusters.iter().take(2).map(|c| c.name.clone()).collect();
        e.clusters.retain(|c| keep.contains(&c.name));
        e.workloads.retain(|w| keep.contains(&w.id.cluster));
    });
}

#[test]
fn dearer_power_costs_more() {
    moves("cost", B, true, |e| {
        e.price_sheet.spec.power.price_per_kwh.0 *= 10;
    });
}

/// Without spare servers (no failure, maintenance or surge to absorb), bare-metal upgrades
/// reimage nodes in place and lose capacity (with them, a spare server takes each node's
/// place and nothing is lost).
#[test]
fn more_upgrades_lose_more_capacity() {
    let mut base = b();
    let r = &mut base.scenario.spec.requirements;
    r.upgrade_surge = false;
    r.host_failures_to_tolerate = 0;
    r.hosts_in_maintenance = 0;
    moves_from(base, "lifecycle", B, true, |e| {
        e.scenario.spec.operations.kubernetes_upgrades_per_year *= 4;
    });
}

#[test]
fn storage_shared_between_clusters_takes_bare_metal_independence_away() {
    moves("independence", B, false, |e| {
        e.bare_metal.spec.volume_storage = plinth_model::kinds::VolumeStorage::Shared;
    });
}

#[test]
fn slower_repairs_by_hand_cost_more_hands_on_hours() {
    moves("operations", B, true, |e| {
        e.price_sheet
            .spec
            .labour
            .hours
            .insert("hardwareRepair".into(), 30.0);
    });
}

/// OpenCost's identity, exactly, in integer micro-currency, for every run of both designs.
#[test]
fn total_equals_workload_plus_idle_plus_overhead_exactly() {
    for e in [b(), estate(&["tests/estates/b", "tests/estates/c"])] {
        let o = opts();
        let runs = simulate_runs(&e, &o, Execution::default(), &|| {}).expect("runs");
        for (env, facts) in ENVS.into_iter().zip(&runs.0) {
            let d = design(&e, env).expect("design");
            for f in facts {
                let c = cost(&e, &d, f);
                assert_eq!(c.total(), c.workload + c.idle + c.overhead, "{c:?}");
                assert!(c.workload > 0 && c.idle >= 0 && c.overhead > 0, "{c:?}");
            }
        }
    }
}

/// A Calibration measured under KVM sets the performance overhead; one measured under
/// software emulation is set aside with a warning, and the default is used.
#[test]
fn a_kvm_calibration_sets_performance_and_a_tcg_one_is_set_aside() {
    let calibration = |accelerator: &str| {
        let e = estate_with_calibration(accelerator, true);
        assert!(e.calibration.is_some(), "the Calibration was not loaded");
        e
    };
    let kvm = report(&calibration("kvm"), &opts());
    assert!((dimension(&kvm, "performance").virtualized.mean - 70.0).abs() < 1e-9);
    assert!(kvm.warnings.is_empty(), "{:?}", kvm.warnings);
    let tcg = report(&calibration("tcg"), &opts());
    assert!((dimension(&tcg, "performance").virtualized.mean - 97.7).abs() < 1e-9);
    assert!(
        tcg.warnings.iter().any(|w| w.contains("tcg")),
        "{:?}",
        tcg.warnings
    );
}

/// A Calibration no Environment names changes nothing: the declared figures stay.
#[test]
fn a_calibration_no_environment_names_is_not_applied() {
    let e = estate_with_calibration("kvm", false);
    assert!(e.calibration.is_none());
    let r = report(&e, &opts());
    assert!((dimension(&r, "performance").virtualized.mean - 97.7).abs() < 1e-9);
}

/// Estate `b` with a Calibration of `accelerator`, named by a virtualized Environment when
/// `named`.
fn estate_with_calibration(accelerator: &str, named: bool) -> Estate {
    let dir = std::env::temp_dir().join(format!(
        "plinth-calibration-{}-{accelerator}-{named}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("calibration.yaml"),
        format!(
            "apiVersion: plinth.dev/v1alpha1\nkind: Calibration\nmetadata:\n  name: lab\n\
             spec:\n  accelerator: {accelerator}\n  description: test\n  overhead:\n    \
             cpu: 0.3\n    memory: 0.1\n    disk: 0.2\n    network: 0.1\n"
        ),
    )
    .expect("write");
    if named {
        std::fs::write(
            dir.join("environment.yaml"),
            "apiVersion: plinth.dev/v1alpha1\nkind: Environment\nmetadata:\n  name: pool\n\
             spec:\n  type: virtualized\n  calibration: calibration.yaml\n",
        )
        .expect("write");
    }
    let b = common::root().join("tests/estates/b");
    let e = common::estate_at(&[&b, &dir]);
    std::fs::remove_dir_all(&dir).ok();
    e
}
