//! Scenario tests with asserted outcomes: the control plane driven by the simulator.

mod common;

use common::{example, example_replacing, small};

use std::collections::{BTreeMap, BTreeSet};

use plinth_control::{
    CommandKind, Control, ControlEvent, Driver, Observation, PoolName, Ready, ReplaceMethod, Time,
    UpgradeKind,
};
use plinth_events::InputDigest;
use plinth_model::Estate;
use plinth_model::kinds::cluster::UpgradeStrategy;
use plinth_model::kinds::environment::{EnvironmentType, Fencing};
use plinth_sim::{Options, POD_START_MS, Run, World, run_world, setup, simulate};

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn run_with_failure(
    estate: &Estate,
    env: EnvironmentType,
    pick: impl Fn(&plinth_sim::Setup) -> String,
    at: u64,
    duration: u64,
) -> (Run, String) {
    let options = Options {
        env,
        seed: 1,
        duration,
        input: InputDigest::default(),
    };
    let s = setup(estate, &options).expect("setup");
    let victim = pick(&s);
    let control = s.control.clone();
    let mut world = World::new(s, &options, |_| {});
    assert!(world.schedule_failure(&victim, at));
    (run_world(control, world).expect("run"), victim)
}

/// The host running the most VMs.
fn busiest(s: &plinth_sim::Setup) -> String {
    let mut count = vec![0; s.hosts.len()];
    for h in s.vms.values() {
        count[*h] += 1;
    }
    let best = (0..count.len())
        .max_by_key(|i| (count[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0);
    s.hosts[best].name.clone()
}

fn log_lines(run: &Run) -> Vec<serde_json::Value> {
    String::from_utf8(run.log.clone())
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn events<'a>(lines: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

/// Live migrations from hosts that were not being emptied for maintenance: DRS's.
fn drs_moves(lines: &[serde_json::Value]) -> usize {
    let mut maintaining = std::collections::BTreeSet::new();
    let mut moves = 0;
    for l in lines {
        if l["event"] == "condition"
            && let Some(host) = l["object"].as_str().and_then(|o| o.strip_prefix("host/"))
        {
            if l["change"] == "set"
                && (l["reason"] == "evacuating" || l["reason"] == "inMaintenance")
            {
                maintaining.insert(host.to_owned());
            } else if l["change"] == "cleared" {
                maintaining.remove(host);
            }
        }
        if l["event"] == "command"
            && l["kind"] == "migrateVm"
            && l["from"].as_str().is_some_and(|f| !maintaining.contains(f))
        {
            moves += 1;
        }
    }
    moves
}

#[test]
fn same_seed_gives_a_byte_identical_log_and_another_seed_a_different_one() {
    let mut estate = example("enterprise", "");
    // The example's pool stays within its DRS threshold all year; a tighter one makes DRS
    // part of what the hash pins down.
    estate.virtualized.spec.drs.threshold = 0.03;
    for env in [EnvironmentType::Virtualized, EnvironmentType::BareMetal] {
        let opts = |seed| Options {
            env,
            seed,
            duration: 365 * DAY,
            input: InputDigest::default(),
        };
        let a = simulate(&estate, &opts(42)).expect("run");
        let b = simulate(&estate, &opts(42)).expect("run");
        let c = simulate(&estate, &opts(43)).expect("run");
        assert_eq!(
            a.summary.log_sha256, b.summary.log_sha256,
            "{env:?} seed 42 twice"
        );
        assert_eq!(a.log, b.log);
        assert_ne!(
            a.summary.log_sha256, c.summary.log_sha256,
            "{env:?} seeds 42 and 43"
        );
        // The year exercised what the hash is meant to pin down.
        let lines = log_lines(&a);
        assert!(
            !events(&lines, "hostFailed").is_empty(),
            "{env:?}: a host failure"
        );
        assert!(a.summary.maintenances > 0, "{env:?}: maintenance");
        for event in [
            "upgradeStarted",
            "upgradeFinished",
            "nodeReplaced",
            "maintenanceFinished",
            "hourly",
        ] {
            assert!(!events(&lines, event).is_empty(), "{env:?}: {event}");
        }
        assert_eq!(
            events(&lines, "hourly").len() as u64,
            365 * 24 + 1,
            "{env:?}: one hourly line per hour, both ends included"
        );
        if env == EnvironmentType::BareMetal {
            assert!(!events(&lines, "reimaged").is_empty(), "reimages");
        }
        if env == EnvironmentType::Virtualized {
            assert!(
                events(&lines, "command")
                    .iter()
                    .any(|c| c["kind"] == "migrateVm"),
                "live migrations"
            );
            assert!(
                events(&lines, "command")
                    .iter()
                    .any(|c| c["kind"] == "fenceHost"),
                "fencing"
            );
            assert!(drs_moves(&lines) > 0, "DRS moved VMs");
        }
        assert_eq!(a.summary.second_copies, 0);
    }
}

#[test]
fn ha_restarts_the_vms_within_detection_fence_and_boot_and_pods_recover() {
    let estate = small(0.0, "[]");
    let (run, victim) = run_with_failure(&estate, EnvironmentType::Virtualized, busiest, HOUR, DAY);
    let s = &run.summary;
    assert_eq!(s.host_failures, 1);
    let f = &s.failures[0];
    assert_eq!(f.host, victim);
    let env = &estate.virtualized.spec;
    let bound = env.ha.heartbeat_interval.millis()
        + env.ha.failure_detection_timeout.millis()
        + env.ha.fence_latency.millis()
        + env.timings.vm_boot.millis();
    let ready = f.nodes_ready_at.expect("VMs restarted") - f.crashed_at;
    assert!(
        ready <= bound,
        "VMs running {ready} ms after the crash, bound {bound}"
    );
    assert!(ready >= env.timings.vm_boot.millis(), "a boot takes time");
    assert!(f.pods_hit > 0, "the busiest host ran worker pods");
    assert!(f.pods_ready_at.is_some(), "workloads recovered");
    assert_eq!(s.second_copies, 0);
    assert!(s.conditions_at_end.is_empty(), "{:?}", s.conditions_at_end);
    assert_eq!(s.pods_pending_at_end, 0);
    let lines = log_lines(&run);
    assert_relabelled(&lines, s);
    // Fenced: the restarted nodes were out of service from the fence until their VMs ran
    // again, and their pods went at once rather than after the toleration.
    let fenced = f.fenced_at.expect("fenced");
    let evicted = events(&lines, "podsEvicted");
    assert!(
        evicted
            .iter()
            .any(|e| e["reason"] == "outOfService" && e["t"] == fenced + 1_000),
        "{evicted:?}"
    );
    let count = |kind: &str| {
        events(&lines, "command")
            .iter()
            .filter(|c| c["kind"] == kind)
            .count()
    };
    assert!(count("outOfService") > 0);
    assert_eq!(
        count("outOfService"),
        count("inService"),
        "every taint lifted"
    );
}

#[test]
fn an_unfenceable_host_s_vms_restart_only_once_its_agent_has_killed_them() {
    // Its BMC's every fence fails.
    restart_once_known_dead(&small(1.0, "[]"));
    // It has no BMC: only its agent could fence it, and that died with it.
    let mut estate = small(0.0, "[]");
    estate.virtualized.spec.ha.fencing = Fencing::Agent;
    restart_once_known_dead(&estate);
}

/// A crashed host's VMs start elsewhere exactly when they are known dead.
fn restart_once_known_dead(estate: &Estate) {
    let (run, victim) = run_with_failure(
        estate,
        EnvironmentType::Virtualized,
        busiest,
        HOUR,
        3 * HOUR,
    );
    let s = &run.summary;
    assert!(
        s.fences_failed >= 1,
        "every fence fails: {}",
        s.fences_failed
    );
    assert_eq!(s.second_copies, 0);
    let ha = &estate.virtualized.spec.ha;
    // The host was last heard at its last heartbeat before the crash; its VMs count as
    // dead once its own agent has killed them: + a heartbeat interval + selfFenceTimeout
    // + the margin.
    let last_heard = HOUR / ha.heartbeat_interval.millis() * ha.heartbeat_interval.millis();
    let dead_at = last_heard
        + ha.heartbeat_interval.millis()
        + ha.self_fence_timeout.millis()
        + ha.self_fence_margin.millis();
    let lines = log_lines(&run);
    let starts: Vec<u64> = events(&lines, "command")
        .iter()
        .filter(|c| c["kind"] == "startVm")
        .map(|c| c["t"].as_u64().expect("t"))
        .collect();
    assert!(!starts.is_empty(), "the VMs of {victim} restart elsewhere");
    assert!(
        starts.iter().all(|t| *t >= dead_at),
        "no VM starts before {dead_at} ms: {starts:?}"
    );
    assert_eq!(starts[0], dead_at);
    assert!(s.failures[0].nodes_ready_at.is_some());
    assert!(s.conditions_at_end.is_empty(), "{:?}", s.conditions_at_end);
}

#[test]
fn bare_metal_node_stays_down_for_the_repair_time_and_pods_move_only_where_capacity_exists() {
    let mut estate = small(0.0, "[]");
    // No machine health check: no spare is installed, the node waits for its repair (the
    // spare case is `bare_metal_machine_health_installs_a_spare_...`).
    estate.clusters[0].spec.kubernetes.machine_health_timeout =
        plinth_model::quantity::Duration::from_days(1000);
    let worker = |s: &plinth_sim::Setup| {
        s.nodes
            .iter()
            .find(|n| n.pool.pool == "workers")
            .expect("a worker node")
            .name
            .clone()
    };
    let (run, victim) = run_with_failure(&estate, EnvironmentType::BareMetal, worker, HOUR, DAY);
    let s = &run.summary;
    let f = &s.failures[0];
    let repair = estate.scenario.spec.failures.hosts.repair_time.millis();
    assert_eq!(f.repaired_at, Some(f.crashed_at + repair));
    assert_eq!(
        f.nodes_ready_at,
        Some(f.crashed_at + repair),
        "down for exactly the repair time"
    );
    let lines = log_lines(&run);
    let ready: Vec<_> = events(&lines, "nodeReady");
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0]["node"], victim.as_str());
    assert_eq!(ready[0]["t"], f.crashed_at + repair);
    // The server is fenced through its BMC and its node marked out of service: its pods
    // go at once, not after the 300 s not-ready toleration.
    let fenced = f.fenced_at.expect("fenced");
    let evicted = events(&lines, "podsEvicted");
    let e = evicted[0];
    assert_eq!(e["reason"], "outOfService", "{e}");
    let t = e["t"].as_u64().expect("t");
    assert_eq!(t, fenced + 1_000, "one API call after the fence");
    assert!(
        t < f.crashed_at + 60_000,
        "well before grace + toleration (350 s)"
    );
    // Every evicted pod is either rescheduled onto spare capacity, pending for capacity,
    // or (local volume) waiting for its node: none vanish.
    let total = e["rescheduled"].as_u64().unwrap_or(0)
        + e["pendingForCapacity"].as_u64().unwrap_or(0)
        + e["waitingForNode"].as_u64().unwrap_or(0);
    assert!(total > 0);
    assert!(f.pods_ready_at.is_some_and(|t| t >= fenced));
    let taints: Vec<_> = events(&lines, "command")
        .into_iter()
        .filter(|c| c["node"] == victim.as_str())
        .filter_map(|c| c["kind"].as_str())
        .filter(|k| k.ends_with("Service"))
        .collect();
    assert_eq!(
        taints,
        ["outOfService", "inService"],
        "tainted, then untainted once repaired"
    );
}

#[test]
fn maintenance_evacuates_by_live_migration_with_no_workload_downtime() {
    let probe = small(0.0, "[]");
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 1,
        duration: DAY,
        input: InputDigest::default(),
    };
    let host = busiest(&setup(&probe, &options).expect("setup"));
    let estate = small(
        0.0,
        &format!("[{{at: 1h, action: hostMaintenance, host: {host}}}]"),
    );
    let run = simulate(&estate, &options).expect("run");
    let s = &run.summary;
    assert_eq!(s.maintenances, 1);
    assert!(s.migrations > 0);
    assert_eq!(
        s.pod_minutes_unavailable, 0.0,
        "no pod was ever unavailable"
    );
    let lines = log_lines(&run);
    assert!(events(&lines, "nodeNotReady").is_empty());
    let targets: std::collections::BTreeSet<&str> = events(&lines, "command")
        .iter()
        .filter(|c| c["kind"] == "migrateVm" && c["from"] == host.as_str())
        .filter_map(|c| c["to"].as_str())
        .collect();
    assert!(
        targets.len() >= 2,
        "evacuated VMs spread over hosts: {targets:?}"
    );
    assert!(s.conditions_at_end.is_empty(), "{:?}", s.conditions_at_end);
    assert_relabelled(&lines, s);
}

/// Every node VM that moved (a live migration landed, or HA restarted it elsewhere) was
/// relabelled with its new host, and no node's host label was wrong for longer than the
/// relabel's own API call.
fn assert_relabelled(lines: &[serde_json::Value], s: &plinth_sim::Summary) {
    let commands = events(lines, "command");
    let labels: Vec<(&str, &str)> = commands
        .iter()
        .filter(|c| c["kind"] == "labelNode")
        .map(|c| {
            (
                c["node"].as_str().unwrap_or(""),
                c["host"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let migrated_nodes: Vec<(&str, &str)> = commands
        .iter()
        .filter(|c| c["kind"] == "migrateVm" || c["kind"] == "startVm")
        .filter_map(|c| Some((c["vm"].as_str()?, c["to"].as_str().or(c["host"].as_str())?)))
        .filter(|(vm, _)| labels.iter().any(|(n, _)| n == vm))
        .collect();
    assert!(
        !labels.is_empty(),
        "node VMs moved, so nodes were relabelled"
    );
    for moved in &migrated_nodes {
        assert!(
            labels.contains(moved),
            "{moved:?} was relabelled: {labels:?}"
        );
    }
    assert!(s.relabels > 0, "the worker nodes' labels changed");
    assert!(
        s.topology_stale_longest_ms <= 1_000,
        "a host label stale for {} ms",
        s.topology_stale_longest_ms
    );
}

#[test]
fn a_strict_control_plane_group_keeps_etcd_quorum_through_any_single_host_failure() {
    let estate = small(0.0, "[]");
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 1,
        duration: 2 * HOUR,
        input: InputDigest::default(),
    };
    let hosts: Vec<String> = setup(&estate, &options)
        .expect("setup")
        .hosts
        .iter()
        .map(|h| h.name.clone())
        .collect();
    let members = estate.clusters[0].spec.control_plane.replicas as usize;
    assert_eq!(members, 3);
    let mut lost_total = 0;
    for host in hosts {
        let (run, _) = run_with_failure(
            &estate,
            EnvironmentType::Virtualized,
            |_| host.clone(),
            HOUR,
            2 * HOUR,
        );
        let lines = log_lines(&run);
        let failed = events(&lines, "hostFailed");
        assert_eq!(failed.len(), 1);
        let lost_cp = failed[0]["vmsLost"]
            .as_array()
            .expect("vmsLost")
            .iter()
            .filter(|v| v.as_str().is_some_and(|v| v.contains("-cp-")))
            .count();
        lost_total += lost_cp;
        assert!(
            members - lost_cp > members / 2,
            "{host}: {lost_cp} of {members} control-plane members lost"
        );
        assert!(
            events(&lines, "quorumLost").is_empty(),
            "{host}: the world saw quorum lost"
        );
        // The lost member is back: nothing waits at the end.
        assert!(
            run.summary.conditions_at_end.is_empty(),
            "{host}: {:?}",
            run.summary.conditions_at_end
        );
        assert_eq!(run.summary.second_copies, 0);
    }
    assert_eq!(
        lost_total, members,
        "every member was on some host that failed"
    );
}

#[test]
fn a_rack_power_event_takes_all_its_hosts_down_together_for_the_rack_repair_time() {
    let estate = example(
        "small",
        r#"apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: racks
spec:
  failures:
    hosts:
      mtbf: 100000d
    racks:
      mtbf: 2d
      repairTime: 3h
  operations:
    hostPatchingInterval: 100000d
"#,
    );
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 5,
        duration: 10 * DAY,
        input: InputDigest::default(),
    };
    let run = simulate(&estate, &options).expect("run");
    let lines = log_lines(&run);
    let racks = events(&lines, "rackFailed");
    assert!(!racks.is_empty(), "a rack event in 10 days at a 2-day MTBF");
    for r in &racks {
        let t = r["t"].as_u64().expect("t");
        let hosts: Vec<&str> = r["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .filter_map(|h| h.as_str())
            .collect();
        assert_eq!(
            hosts.len() as u32,
            run.summary.hosts,
            "the one rack holds every host (owned and bought)"
        );
        for h in hosts {
            assert!(
                events(&lines, "hostFailed")
                    .iter()
                    .any(|f| f["t"] == t && f["host"] == h),
                "{h} failed with its rack at {t}"
            );
            if t + 3 * HOUR <= options.duration {
                assert!(
                    events(&lines, "hostRepaired")
                        .iter()
                        .any(|f| f["t"] == t + 3 * HOUR && f["host"] == h),
                    "{h} back after the rack's repair time"
                );
            }
        }
    }
    // With every host down, nothing can restart: VMs wait, and no copy is ever doubled.
    assert!(
        events(&lines, "condition")
            .iter()
            .any(|c| c["reason"] == "waitingForCapacity")
    );
    assert_eq!(run.summary.second_copies, 0);
    // The summary's recovery phases are by cause: every failure here was a rack's.
    let by_cause = &run.summary.by_cause;
    assert_eq!(
        by_cause.keys().collect::<Vec<_>>(),
        [&plinth_sim::FailureCause::Rack]
    );
    assert_eq!(
        by_cause[&plinth_sim::FailureCause::Rack].detect.count as usize,
        events(&lines, "hostFailed").len()
    );
    // A BMC in a rack without power confirms no fence: none is counted as fenced.
    assert_eq!(
        by_cause[&plinth_sim::FailureCause::Rack].fence.count,
        0,
        "{by_cause:?}"
    );
    assert!(run.summary.failures.iter().all(|f| f.fenced_at.is_none()));
}

/// Pod-minutes unavailable recomputed from the log's change points alone.
fn pod_minutes_from_log(lines: &[serde_json::Value], end: u64) -> f64 {
    let mut state: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    let mut total: u128 = 0;
    for l in lines {
        if l["event"] != "workloadAvailability" {
            continue;
        }
        let t = l["t"].as_u64().expect("t");
        let w = l["workload"].as_str().expect("workload").to_owned();
        let (avail, desired) = (
            l["available"].as_u64().expect("available"),
            l["desired"].as_u64().expect("desired"),
        );
        if let Some((since, a, d)) = state.get(&w) {
            total += u128::from((d - a) * (t - since));
        }
        state.insert(w, (t, avail, desired));
    }
    for (since, a, d) in state.values() {
        total += u128::from((d - a) * (end - since));
    }
    total as f64 / 60_000.0
}

#[test]
fn availability_metrics_can_be_recomputed_from_the_event_log() {
    let estate = example("enterprise", "");
    for env in [EnvironmentType::Virtualized, EnvironmentType::BareMetal] {
        let options = Options {
            env,
            seed: 42,
            duration: 365 * DAY,
            input: InputDigest::default(),
        };
        let run = simulate(&estate, &options).expect("run");
        let lines = log_lines(&run);
        let from_log = pod_minutes_from_log(&lines, options.duration);
        assert!(
            run.summary.pod_minutes_unavailable > 0.0,
            "{env:?}: failures cost pod-minutes"
        );
        assert!(
            (from_log - run.summary.pod_minutes_unavailable).abs() < 1e-6,
            "{env:?}: log {from_log} vs summary {}",
            run.summary.pod_minutes_unavailable
        );
    }
}

/// Randomized: many seeds of a harsh year (host MTBF 30 days, racks 120 days, a fence in
/// five fails) must keep the safety properties. A failing seed is printed; pin it as a test.
#[test]
fn harsh_failure_seeds_never_double_a_vm_and_answer_every_command_once() {
    let mut estate = example("enterprise", "");
    let f = &mut estate.scenario.spec.failures;
    f.hosts.mtbf = plinth_model::quantity::Duration::from_days(30);
    f.by_class.clear();
    f.racks.mtbf = plinth_model::quantity::Duration::from_days(120);
    estate.virtualized.spec.ha.fence_failure_probability = 0.2;
    let mut fences_failed = 0;
    for env in [EnvironmentType::Virtualized, EnvironmentType::BareMetal] {
        for seed in 0..16 {
            let options = Options {
                env,
                seed,
                duration: 180 * DAY,
                input: InputDigest::default(),
            };
            let run = simulate(&estate, &options).expect("run");
            let lines = log_lines(&run);
            let s = &run.summary;
            assert_eq!(s.second_copies, 0, "{env:?} seed {seed}: a VM ran twice");
            fences_failed += s.fences_failed;
            assert!(s.host_failures > 10, "{env:?} seed {seed}: a harsh year");
            let issued: std::collections::BTreeSet<u64> = events(&lines, "command")
                .iter()
                .filter_map(|c| c["id"].as_u64())
                .collect();
            let mut answered = std::collections::BTreeSet::new();
            for a in events(&lines, "completed")
                .into_iter()
                .chain(events(&lines, "failed"))
            {
                let id = a["id"].as_u64().expect("id");
                assert!(
                    issued.contains(&id),
                    "{env:?} seed {seed}: answer to unknown {id}"
                );
                assert!(
                    answered.insert(id),
                    "{env:?} seed {seed}: {id} answered twice"
                );
            }
            let open = issued.len() - answered.len();
            assert!(
                open <= 64,
                "{env:?} seed {seed}: {open} commands never answered"
            );
            // Rollouts make progress through the failures: every one started more than
            // 20 days before the end finished.
            let finished: Vec<(String, u64)> = events(&lines, "upgradeFinished")
                .iter()
                .map(|e| {
                    (
                        e["cluster"].as_str().unwrap_or("").to_owned(),
                        e["t"].as_u64().unwrap_or(0),
                    )
                })
                .collect();
            for st in events(&lines, "upgradeStarted") {
                let t = st["t"].as_u64().expect("t");
                let cluster = st["cluster"].as_str().expect("cluster");
                if t + 20 * DAY < options.duration {
                    assert!(
                        finished.iter().any(|(c, f)| c == cluster && *f >= t),
                        "{env:?} seed {seed}: rollout of {cluster} at {t} never finished"
                    );
                }
            }
            // Every failure the control plane saw ended, or is in its last repair window.
            for f in &s.failures {
                if f.crashed_at + 2 * DAY < options.duration {
                    assert!(
                        f.declared_at.is_some(),
                        "{env:?} seed {seed}: failure of {} at {} never declared",
                        f.host,
                        f.crashed_at
                    );
                }
            }
        }
    }
    assert!(fences_failed > 0, "the seeds exercised failed fences");
}

// --- rolling upgrades: one body for any driver ---------------------------------------------

/// Ground truth a rolling-upgrade test reads besides the [`Driver`] interface, what a user
/// would check with kubectl and etcdctl. The simulator implements it from its world; a
/// real driver would from the Kubernetes API.
trait Observe: Driver {
    /// Ready, schedulable nodes of `pool`.
    fn schedulable(&self, pool: &PoolName) -> u32;
    /// Running control-plane members of `cluster`.
    fn control_plane_running(&self, cluster: &str) -> u32;
}

impl Observe for World<'_> {
    fn schedulable(&self, pool: &PoolName) -> u32 {
        self.schedulable_nodes(pool)
    }
    fn control_plane_running(&self, cluster: &str) -> u32 {
        World::control_plane_running(self, cluster).unwrap_or(0)
    }
}

/// What one rollout did, as seen through [`Observe`] after every step of the loop.
#[derive(Debug, Default)]
struct RolloutReport {
    finished_at: Option<Time>,
    /// Largest (pool size − schedulable nodes) of any pool while the rollout ran.
    max_unavailable: u32,
    /// Fewest control-plane members running while the rollout ran.
    min_control_plane: u32,
    replaced: Vec<(String, String, ReplaceMethod)>,
    /// Issue and answer time of every command, by id.
    commands: BTreeMap<u64, (Time, Option<Time>, CommandKind)>,
}

/// One turn of the control loop ([`plinth_control::run`]'s body), noting what it did.
fn rollout_step<D: Observe>(
    report: &mut RolloutReport,
    driver: &mut D,
    cluster: &str,
    now: Time,
    ready: Ready,
) {
    for e in &ready.events {
        match e {
            ControlEvent::UpgradeFinished { cluster: c, .. } if c == cluster => {
                report.finished_at = Some(now);
            }
            ControlEvent::NodeReplaced {
                old, new, method, ..
            } => report.replaced.push((old.clone(), new.clone(), *method)),
            _ => {}
        }
    }
    for c in &ready.commands {
        report.commands.insert(c.id.0, (now, None, c.kind.clone()));
    }
    driver.apply(now, ready);
}

/// Requests a `kind` rollout of `cluster` at the driver's start and runs the loop to the
/// end, watching every pool of `pools` (pool, size) and the control plane.
fn rolling_upgrade<D: Observe>(
    control: &mut Control,
    driver: &mut D,
    cluster: &str,
    pools: &[(PoolName, u32)],
    kind: UpgradeKind,
) -> RolloutReport {
    let mut report = RolloutReport {
        min_control_plane: u32::MAX,
        ..RolloutReport::default()
    };
    let mut upgrading = true;
    let first = control.handle(
        Time::ZERO,
        Observation::UpgradeRequested {
            cluster: cluster.to_owned(),
            upgrade: kind,
        },
    );
    rollout_step(&mut report, driver, cluster, Time::ZERO, first);
    while let Some((now, obs)) = driver.next(control.next_wakeup()) {
        if let Observation::CommandCompleted { id } | Observation::CommandFailed { id, .. } = &obs
            && let Some(c) = report.commands.get_mut(&id.0)
        {
            c.1 = Some(now);
        }
        let ready = control.handle(now, obs);
        rollout_step(&mut report, driver, cluster, now, ready);
        if upgrading {
            for (pool, size) in pools {
                let short = size.saturating_sub(driver.schedulable(pool));
                report.max_unavailable = report.max_unavailable.max(short);
            }
            report.min_control_plane = report
                .min_control_plane
                .min(driver.control_plane_running(cluster));
            upgrading = report.finished_at.is_none();
        }
    }
    report
}

/// examples/small with no random failures and no recurring operations; `strategy` for the
/// `workers` pool and `extra` documents (workloads, budgets).
fn quiet_small(strategy: UpgradeStrategy, extra: &str) -> Estate {
    let mut estate = example("small", &quiet(extra));
    estate.clusters[0].spec.node_pools[0].upgrade = strategy;
    estate
}

/// A Scenario with no random failures and no recurring operations, then `extra` (more of
/// its spec, or more documents).
fn quiet(extra: &str) -> String {
    format!(
        r#"apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: test
spec:
  failures:
    hosts:
      mtbf: 100000d
    racks:
      mtbf: 100000d
  operations:
    kubernetesUpgradesPerYear: 0
    osPatchingInterval: 100000d
    hostPatchingInterval: 100000d
{extra}"#
    )
}

fn upgrade_run(
    estate: &Estate,
    env: EnvironmentType,
) -> (RolloutReport, Run, Vec<(PoolName, u32)>) {
    let options = Options {
        env,
        seed: 1,
        duration: DAY,
        input: InputDigest::default(),
    };
    let s = setup(estate, &options).expect("setup");
    let mut pools: BTreeMap<PoolName, u32> = BTreeMap::new();
    for n in &s.nodes {
        *pools.entry(n.pool.clone()).or_insert(0) += 1;
    }
    let pools: Vec<(PoolName, u32)> = pools.into_iter().collect();
    let mut control = s.control.clone();
    let mut world = World::new(s, &options, |_| {});
    let report = rolling_upgrade(
        &mut control,
        &mut world,
        "apps",
        &pools,
        UpgradeKind::Kubernetes,
    );
    (report, world.finish(&control).expect("run"), pools)
}

#[test]
fn a_surge_rollout_replaces_every_node_without_losing_capacity_or_quorum() {
    let estate = quiet_small(
        UpgradeStrategy {
            max_surge: 1,
            max_unavailable: 0,
        },
        "",
    );
    let (report, run, pools) = upgrade_run(&estate, EnvironmentType::Virtualized);
    assert!(report.finished_at.is_some(), "the rollout finished");
    assert_eq!(
        report.max_unavailable, 0,
        "maxUnavailable 0: never a node short"
    );
    assert!(
        report.min_control_plane >= 2,
        "3 members, never below a majority: {}",
        report.min_control_plane
    );
    let workers: u32 = pools.iter().map(|(_, n)| n).sum();
    assert_eq!(
        report.replaced.len() as u32,
        workers + 3,
        "every node replaced"
    );
    assert!(
        report
            .replaced
            .iter()
            .all(|(old, new, m)| old != new && *m == ReplaceMethod::Surge)
    );
    let lines = log_lines(&run);
    assert!(events(&lines, "quorumLost").is_empty());
    let done = events(&lines, "upgradeFinished");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["cluster"], "apps");
    assert_eq!(done[0]["kind"], "kubernetes");
    assert_eq!(done[0]["maxNodesUnavailable"], 0);
    assert_eq!(done[0]["nodeMsUnavailable"], 0);
    // Control plane one member at a time: a new member runs before each old one goes.
    let mut cp_creates = 0;
    for (issued, answered, kind) in report.commands.values() {
        if let CommandKind::CreateVm { pool, .. } = kind
            && pool.is_control_plane()
        {
            cp_creates += 1;
            let answered = answered.expect("answered");
            let overlapping = report.commands.values().any(|(i, a, k)| {
                matches!(k, CommandKind::CreateVm { pool, .. } if pool.is_control_plane())
                    && *i > *issued
                    && *i < answered
                    && a.is_some()
            });
            assert!(!overlapping, "two control-plane members replaced at once");
        }
    }
    assert_eq!(cp_creates, 3);
    assert_eq!(run.summary.second_copies, 0);
    assert!(
        run.summary.conditions_at_end.is_empty(),
        "{:?}",
        run.summary.conditions_at_end
    );
}

#[test]
fn a_rolling_upgrade_never_has_more_than_max_unavailable_nodes_unavailable() {
    let estate = quiet_small(
        UpgradeStrategy {
            max_surge: 0,
            max_unavailable: 2,
        },
        "",
    );
    let (report, run, _) = upgrade_run(&estate, EnvironmentType::Virtualized);
    assert!(report.finished_at.is_some());
    // Reaches the budget (so the bound is tested) and never exceeds it.
    assert_eq!(report.max_unavailable, 2);
    assert!(
        report
            .replaced
            .iter()
            .filter(|(old, _, _)| !old.contains("-cp-"))
            .all(|(_, _, m)| *m == ReplaceMethod::Recreate)
    );
    let lines = log_lines(&run);
    let done = events(&lines, "upgradeFinished");
    assert_eq!(done[0]["maxNodesUnavailable"], 2);
    let node_ms = done[0]["nodeMsUnavailable"].as_u64().expect("nodeMs");
    let cpu_ms = done[0]["cpuMsLost"].as_u64().expect("cpuMs");
    let env = &estate.virtualized.spec;
    // Each recreated node is short at least for its clone and boot.
    let boot = env.timings.vm_clone.millis() + env.timings.vm_boot.millis();
    assert!(node_ms >= 4 * boot, "{node_ms} < 4 × {boot}");
    let unit = run_unit_cpu(&estate);
    assert_eq!(
        cpu_ms,
        node_ms * unit,
        "capacity lost = node-ms × allocatable CPU"
    );
}

/// Allocatable milli-CPU of a `workers` node of examples/small on the virtualized design.
fn run_unit_cpu(estate: &Estate) -> u64 {
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 1,
        duration: HOUR,
        input: InputDigest::default(),
    };
    let s = setup(estate, &options).expect("setup");
    s.nodes
        .iter()
        .find(|n| n.pool == PoolName::new("apps", "workers"))
        .expect("worker")
        .allocatable
        .cpu_millis
}

/// `scenario` (lines of the Scenario's spec), then a Deployment shop/batch of `replicas`
/// pods and its PodDisruptionBudget (`budget`: one `minAvailable` or `maxUnavailable` line).
fn batch_with_budget(scenario: &str, replicas: u32, budget: &str) -> String {
    format!(
        r#"{scenario}---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: batch
  namespace: shop
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: batch
  template:
    metadata:
      labels:
        app: batch
    spec:
      containers:
        - name: b
          image: b
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: batch
  namespace: shop
spec:
  {budget}
  selector:
    matchLabels:
      app: batch
"#
    )
}

#[test]
fn a_disruption_budget_holds_a_drain_until_the_evicted_pod_is_back() {
    let estate = quiet_small(
        UpgradeStrategy {
            max_surge: 1,
            max_unavailable: 0,
        },
        &batch_with_budget("", 8, "maxUnavailable: 1"),
    );
    let (report, run, _) = upgrade_run(&estate, EnvironmentType::Virtualized);
    assert!(report.finished_at.is_some());
    let lines = log_lines(&run);
    let held: Vec<_> = events(&lines, "condition")
        .into_iter()
        .filter(|c| c["reason"] == "waitingForDisruptionBudget")
        .collect();
    assert!(!held.is_empty(), "a drain waited for the budget");
    let msg = held[0]["message"].as_str().expect("message");
    assert!(msg.contains("shop/batch"), "{msg}");
    let node = held[0]["object"].as_str().expect("object");
    assert!(
        events(&lines, "condition")
            .iter()
            .any(|c| c["object"] == node && c["change"] == "cleared"),
        "the wait ended"
    );
    // The held drain took at least one pod start; the budget was never broken.
    let drains: Vec<_> = report
        .commands
        .values()
        .filter(
            |(_, _, k)| matches!(k, CommandKind::Drain { node: n } if format!("node/{n}") == node),
        )
        .collect();
    assert_eq!(drains.len(), 1);
    let (issued, answered, _) = drains[0];
    assert!(answered.expect("drained").since(*issued) >= POD_START_MS);
    for a in events(&lines, "workloadAvailability") {
        if a["workload"] == "apps/shop/Deployment/batch" {
            assert!(a["available"].as_u64().expect("available") >= 7, "{a}");
        }
    }
}

#[test]
fn a_budget_that_can_never_be_met_holds_a_drain_until_force_after_then_the_eviction_is_recorded() {
    let estate = quiet_small(
        UpgradeStrategy {
            max_surge: 1,
            max_unavailable: 0,
        },
        &batch_with_budget(
            "  blockedDrain:\n    forceAfter: 90m\n",
            4,
            "minAvailable: 4",
        ),
    );
    // Longer than the control plane's drain deadline (1 h): the drain it sends again goes
    // on from where the first began.
    let (report, run, _) = upgrade_run(&estate, EnvironmentType::Virtualized);
    assert!(
        report.finished_at.is_some(),
        "the rollout is not stuck for ever"
    );
    let lines = log_lines(&run);
    let conditions = events(&lines, "condition");
    let message = |c: &serde_json::Value| c["message"].as_str().unwrap_or_default().to_owned();
    let held = conditions
        .iter()
        .find(|c| c["reason"] == "waitingForDisruptionBudget" && message(c).contains("would leave"))
        .expect("a drain waited for the budget");
    assert!(
        message(held).contains("pod(s) of apps/shop/Deployment/batch")
            && message(held).contains("shop/batch")
            && message(held).contains("evicting anyway after 90 min"),
        "{held}"
    );
    let node = held["object"].clone();
    let forced = conditions
        .iter()
        .find(|c| c["object"] == node && message(c).contains("anyway after 90 min (Scenario"))
        .expect("the forced eviction is recorded on the node");
    assert!(message(forced).contains("below 4 available"), "{forced}");
    let waited = forced["since"].as_u64().expect("since") - held["since"].as_u64().expect("since");
    assert!(waited >= 90 * 60_000, "forced after {waited} ms");
    // At the control plane's drain deadline the drain fails: the rollout pauses, and its
    // Cluster says so until the node is drained.
    let node_name = node
        .as_str()
        .and_then(|n| n.strip_prefix("node/"))
        .expect("a node");
    let cluster: Vec<_> = conditions
        .iter()
        .filter(|c| c["object"] == "cluster/apps")
        .collect();
    let paused = cluster
        .iter()
        .position(|c| message(c).contains(&format!("paused: drain of {node_name} failed")))
        .expect("the Cluster shows the pause");
    let since = cluster[paused]["t"].as_u64().expect("t");
    assert!(
        since >= held["since"].as_u64().expect("since") + 3_600_000,
        "{}",
        cluster[paused]
    );
    assert!(
        cluster[paused + 1..]
            .iter()
            .any(|c| c["change"] == "cleared" || !message(c).contains("paused")),
        "the pause ends once the node is drained"
    );
}

#[test]
fn bare_metal_reimages_in_place_one_node_at_a_time_for_the_reimage_time() {
    let mut estate = quiet_small(
        UpgradeStrategy {
            max_surge: 1,
            max_unavailable: 0,
        },
        "",
    );
    // No spare servers (none for a surge, none for a failure): every node is reimaged in
    // place.
    let r = &mut estate.scenario.spec.requirements;
    r.upgrade_surge = false;
    r.host_failures_to_tolerate = 0;
    let (report, run, pools) = upgrade_run(&estate, EnvironmentType::BareMetal);
    assert!(report.finished_at.is_some());
    let nodes: u32 = pools.iter().map(|(_, n)| n).sum();
    assert_eq!(report.replaced.len() as u32, nodes + 3);
    assert!(
        report
            .replaced
            .iter()
            .all(|(old, new, m)| old == new && *m == ReplaceMethod::Reimage)
    );
    assert_eq!(
        report.max_unavailable, 1,
        "maxUnavailable 0 without a spare: one at a time"
    );
    assert!(report.min_control_plane >= 2);
    let reimage = estate.bare_metal.spec.reimage.millis();
    let mut reimages = 0;
    for (issued, answered, kind) in report.commands.values() {
        if matches!(kind, CommandKind::ReimageServer { .. }) {
            reimages += 1;
            assert_eq!(answered.expect("answered").since(*issued), reimage);
        }
    }
    assert_eq!(reimages, nodes + 3);
    let lines = log_lines(&run);
    let done = events(&lines, "upgradeFinished");
    assert!(done[0]["durationMs"].as_u64().expect("duration") >= u64::from(nodes + 3) * reimage);
    assert!(done[0]["nodeMsUnavailable"].as_u64().expect("node-ms") >= u64::from(nodes) * reimage);
}

#[test]
fn bare_metal_with_a_spare_server_surges_instead() {
    let estate = quiet_small(
        UpgradeStrategy {
            max_surge: 1,
            max_unavailable: 0,
        },
        "",
    );
    let (report, run, _) = upgrade_run(&estate, EnvironmentType::BareMetal);
    assert!(report.finished_at.is_some());
    let workers: Vec<_> = report
        .replaced
        .iter()
        .filter(|(old, _, _)| !run.summary.failures.iter().any(|f| &f.host == old))
        .filter(|(_, _, m)| *m == ReplaceMethod::Surge)
        .collect();
    assert!(
        !workers.is_empty(),
        "the surge server was used: {:?}",
        report.replaced
    );
    assert_eq!(report.max_unavailable, 0);
}

// --- machine health remediation ------------------------------------------------------------

/// The worker node VM on the host running the most worker VMs.
fn busiest_worker_host(s: &plinth_sim::Setup) -> String {
    let mut count = vec![0; s.hosts.len()];
    for (vm, h) in &s.vms {
        if vm.contains("-workers-") {
            count[*h] += 1;
        }
    }
    let best = (0..count.len())
        .max_by_key(|i| (count[*i], std::cmp::Reverse(*i)))
        .unwrap_or(0);
    s.hosts[best].name.clone()
}

#[test]
fn with_ha_off_machine_health_replaces_the_lost_nodes_after_its_timeout() {
    let mut estate = quiet_small(UpgradeStrategy::default(), "");
    estate.virtualized.spec.ha.enabled = false;
    let (run, victim) = run_with_failure(
        &estate,
        EnvironmentType::Virtualized,
        busiest_worker_host,
        HOUR,
        6 * HOUR,
    );
    let lines = log_lines(&run);
    let lost: Vec<String> = events(&lines, "hostFailed")[0]["vmsLost"]
        .as_array()
        .expect("vmsLost")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|v| v.contains("-workers-"))
        .collect();
    assert!(!lost.is_empty(), "{victim} ran workers");
    let remediated: Vec<_> = events(&lines, "nodeReplaced")
        .into_iter()
        .filter(|e| e["method"] == "remediate")
        .collect();
    assert_eq!(remediated.len(), lost.len(), "every lost worker replaced");
    let timeout = estate.clusters[0]
        .spec
        .kubernetes
        .machine_health_timeout
        .millis();
    let env = &estate.virtualized.spec;
    let declared = run.summary.failures[0].declared_at.expect("declared");
    let conditions = events(&lines, "condition");
    for e in &remediated {
        assert!(lost.iter().any(|l| e["old"] == l.as_str()));
        // The ladder's last step is said on the new node until it runs.
        let new = format!("vm/{}", e["new"].as_str().expect("new"));
        let replacing = conditions
            .iter()
            .find(|c| c["object"] == new.as_str() && c["reason"] == "replacing")
            .unwrap_or_else(|| panic!("{new} says it replaces a node"));
        assert!(
            replacing["message"]
                .as_str()
                .is_some_and(|m| m.contains(e["old"].as_str().unwrap_or("?"))),
            "{replacing}"
        );
        assert!(
            conditions
                .iter()
                .any(|c| c["object"] == new.as_str() && c["change"] == "cleared"),
            "{new}'s condition ends when it runs"
        );
        // Created after the timeout, Ready a clone and a boot later; long before repair.
        let t = e["t"].as_u64().expect("t");
        assert_eq!(
            t,
            declared + timeout + env.timings.vm_clone.millis() + env.timings.vm_boot.millis()
        );
    }
    assert!(run.summary.pods_pending_at_end == 0);
    assert_eq!(run.summary.second_copies, 0);
}

#[test]
fn with_ha_on_machine_health_leaves_host_failures_to_ha() {
    let estate = quiet_small(UpgradeStrategy::default(), "");
    let (run, _) = run_with_failure(
        &estate,
        EnvironmentType::Virtualized,
        busiest_worker_host,
        HOUR,
        6 * HOUR,
    );
    let lines = log_lines(&run);
    assert!(
        !events(&lines, "command")
            .iter()
            .any(|c| c["kind"] == "createVm"),
        "HA restarted the VMs in time: no replacement"
    );
    assert!(run.summary.failures[0].nodes_ready_at.is_some());
    // Each restarted worker said the ladder's restart step and what would follow.
    let restarting: Vec<_> = events(&lines, "condition")
        .into_iter()
        .filter(|c| c["reason"] == "restarting")
        .collect();
    assert!(!restarting.is_empty());
    assert!(
        restarting.iter().any(|c| c["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed; HA restarts it on")
                && m.contains("the machine health check replaces it"))),
        "{restarting:?}"
    );
}

#[test]
fn bare_metal_machine_health_installs_a_spare_and_the_repaired_server_becomes_the_spare() {
    let estate = quiet_small(UpgradeStrategy::default(), "");
    let worker = |s: &plinth_sim::Setup| {
        s.nodes
            .iter()
            .find(|n| n.pool.pool == "workers")
            .expect("a worker node")
            .name
            .clone()
    };
    let (run, victim) = run_with_failure(&estate, EnvironmentType::BareMetal, worker, HOUR, DAY);
    let lines = log_lines(&run);
    let remediated: Vec<_> = events(&lines, "nodeReplaced")
        .into_iter()
        .filter(|e| e["method"] == "remediate")
        .collect();
    assert_eq!(remediated.len(), 1);
    assert_eq!(remediated[0]["old"], victim.as_str());
    let spare = remediated[0]["new"].as_str().expect("new");
    let declared = run.summary.failures[0].declared_at.expect("declared");
    let timeout = estate.clusters[0]
        .spec
        .kubernetes
        .machine_health_timeout
        .millis();
    let install = estate.bare_metal.spec.os_install.millis();
    assert_eq!(
        remediated[0]["t"].as_u64().expect("t"),
        declared + timeout + install,
        "the spare is a node one install after the timeout"
    );
    assert!(
        events(&lines, "nodeReady")
            .iter()
            .any(|e| e["node"] == spare),
        "the spare joined"
    );
    // Repaired 8 h later, the old server does not rejoin: it is the cluster's spare now.
    assert!(
        !events(&lines, "nodeReady")
            .iter()
            .any(|e| e["node"] == victim.as_str()),
        "{victim} rejoined"
    );
}

// --- scaling a pool ------------------------------------------------------------------------

fn scale_steps(steps: &[(u64, u32)]) -> Vec<plinth_model::kinds::scenario::TimelineStep> {
    steps
        .iter()
        .map(
            |(at, replicas)| plinth_model::kinds::scenario::TimelineStep {
                at: plinth_model::quantity::Duration::from_secs(at / 1000),
                action: plinth_model::kinds::scenario::TimelineAction::ScalePool,
                cluster: Some("apps".into()),
                pool: Some("workers".into()),
                replicas: Some(*replicas),
                version: None,
                host: None,
            },
        )
        .collect()
}

/// On `examples/small`'s 12-node pool, where `apps-workers-9` sorts after `apps-workers-13`
/// by text: up by two and back, the two new nodes go (by index), no original one.
#[test]
fn scale_pool_adds_node_vms_then_drains_and_deletes_the_last_ones() {
    let mut estate = example_replacing("small", None, &quiet(""));
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 1,
        duration: 6 * HOUR,
        input: InputDigest::default(),
    };
    let before = setup(&estate, &options)
        .expect("setup")
        .nodes
        .iter()
        .filter(|n| n.pool == PoolName::new("apps", "workers"))
        .count() as u32;
    estate.scenario.spec.operations.timeline =
        scale_steps(&[(HOUR, before + 2), (3 * HOUR, before)]);
    let run = simulate(&estate, &options).expect("run");
    let lines = log_lines(&run);
    let added: Vec<_> = events(&lines, "nodeAdded");
    assert_eq!(added.len(), 2);
    let env = &estate.virtualized.spec;
    for a in &added {
        assert_eq!(
            a["t"].as_u64().expect("t"),
            HOUR + env.timings.vm_clone.millis() + env.timings.vm_boot.millis()
        );
    }
    let removed: Vec<_> = events(&lines, "nodeRemoved");
    let names: BTreeSet<&str> = removed.iter().filter_map(|r| r["node"].as_str()).collect();
    let new: BTreeSet<&str> = added.iter().filter_map(|a| a["node"].as_str()).collect();
    assert_eq!(
        names,
        new,
        "down to {before} from {}: the newest go",
        before + 2
    );
    let drained: BTreeSet<&str> = events(&lines, "command")
        .iter()
        .filter(|c| c["kind"] == "drain")
        .filter_map(|c| c["node"].as_str())
        .collect();
    assert_eq!(drained, new, "nodes are drained before they go");
    assert_eq!(run.summary.pods_pending_at_end, 0);
    assert!(
        run.summary.conditions_at_end.is_empty(),
        "{:?}",
        run.summary.conditions_at_end
    );
}

#[test]
fn scale_pool_on_bare_metal_takes_spare_servers_and_says_when_there_are_none() {
    let mut estate = quiet_small(UpgradeStrategy::default(), "");
    estate.scenario.spec.operations.timeline = scale_steps(&[(HOUR, 40)]);
    let options = Options {
        env: EnvironmentType::BareMetal,
        seed: 1,
        duration: 6 * HOUR,
        input: InputDigest::default(),
    };
    let run = simulate(&estate, &options).expect("run");
    let lines = log_lines(&run);
    let added = events(&lines, "nodeAdded");
    assert!(!added.is_empty(), "the cluster's spare joined");
    let install = estate.bare_metal.spec.os_install.millis();
    assert_eq!(added[0]["t"].as_u64().expect("t"), HOUR + install);
    assert!(
        run.summary
            .conditions_at_end
            .iter()
            .any(|c| c.contains("pool/apps/workers") && c.contains("no spare server")),
        "{:?}",
        run.summary.conditions_at_end
    );
}

// --- quorum, maintenance disruption, hourly series -----------------------------------------

#[test]
fn losing_two_of_three_control_plane_hosts_loses_quorum_until_ha_restarts_a_member() {
    let estate = quiet_small(UpgradeStrategy::default(), "");
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 1,
        duration: 3 * HOUR,
        input: InputDigest::default(),
    };
    let s = setup(&estate, &options).expect("setup");
    let cp_hosts: Vec<String> = ["apps-cp-0", "apps-cp-1"]
        .iter()
        .map(|vm| s.hosts[s.vms[*vm]].name.clone())
        .collect();
    assert_ne!(cp_hosts[0], cp_hosts[1], "strict spread");
    let control = s.control.clone();
    let mut world = World::new(s, &options, |_| {});
    for h in &cp_hosts {
        assert!(world.schedule_failure(h, HOUR));
    }
    let run = run_world(control, world).expect("run");
    let lines = log_lines(&run);
    let lost = events(&lines, "quorumLost");
    let restored = events(&lines, "quorumRestored");
    assert_eq!(lost.len(), 1, "{lost:?}");
    assert_eq!(lost[0]["cluster"], "apps");
    assert_eq!(lost[0]["t"], HOUR);
    assert_eq!(restored.len(), 1);
    let env = &estate.virtualized.spec;
    let bound = env.ha.heartbeat_interval.millis()
        + env.ha.failure_detection_timeout.millis()
        + env.ha.fence_latency.millis()
        + env.timings.vm_boot.millis();
    let back = restored[0]["t"].as_u64().expect("t") - HOUR;
    assert!(back <= bound, "quorum back {back} ms after, bound {bound}");
}

#[test]
fn maintenance_reports_the_pods_it_disrupted_none_with_live_migration() {
    let estate = small(
        0.0,
        "[{at: 1h, action: hostMaintenance, host: r1-standard-01}]",
    );
    for env in [EnvironmentType::Virtualized, EnvironmentType::BareMetal] {
        let options = Options {
            env,
            seed: 1,
            duration: DAY,
            input: InputDigest::default(),
        };
        let run = simulate(&estate, &options).expect("run");
        let lines = log_lines(&run);
        let done = events(&lines, "maintenanceFinished");
        assert_eq!(done.len(), 1, "{env:?}");
        assert_eq!(done[0]["host"], "r1-standard-01");
        let disrupted = done[0]["podsDisrupted"].as_u64().expect("pods");
        match env {
            EnvironmentType::Virtualized => assert_eq!(disrupted, 0, "live migration"),
            EnvironmentType::BareMetal => {
                // The drained pods restarted elsewhere: each was unavailable a while.
                let evicted: u64 = events(&lines, "podsEvicted")
                    .iter()
                    .filter(|e| e["node"] == "r1-standard-01")
                    .map(|e| {
                        e["rescheduled"].as_u64().unwrap_or(0)
                            + e["pendingForCapacity"].as_u64().unwrap_or(0)
                            + e["waitingForNode"].as_u64().unwrap_or(0)
                    })
                    .sum();
                assert_eq!(disrupted, evicted, "{env:?}");
            }
        }
    }
}

#[test]
fn hourly_lines_follow_the_documented_formula() {
    let estate = quiet_small(UpgradeStrategy::default(), "");
    let options = Options {
        env: EnvironmentType::Virtualized,
        seed: 1,
        duration: DAY,
        input: InputDigest::default(),
    };
    let s = setup(&estate, &options).expect("setup");
    let run = simulate(&estate, &options).expect("run");
    let lines = log_lines(&run);
    let hourly = events(&lines, "hourly");
    assert_eq!(hourly.len(), 25);
    let overhead = 1.0 + estate.virtualized.spec.performance_overhead.cpu;
    let used = |h: u8| -> f64 {
        s.pods
            .iter()
            .map(|p| p.requests.cpu_millis as f64 * s.workload_usage[p.workload as usize].at(h))
            .sum::<f64>()
            * overhead
    };
    let capacity: u64 = s.hosts.iter().map(|h| h.capacity.cpu_millis).sum();
    let allocated: u64 = s
        .vms
        .keys()
        .map(|vm| s.vm_size[vm].0.cpu_millis)
        .sum::<u64>()
        + s.vms.len() as u64 * estate.virtualized.spec.per_vm_overhead.cpu.0;
    for (hour, line) in hourly.iter().enumerate() {
        assert_eq!(line["t"], hour as u64 * HOUR);
        assert_eq!(line["hour"], hour as u64);
        assert_eq!(line["cpuCapacityMilli"], capacity);
        assert_eq!(line["cpuAllocatedMilli"], allocated);
        assert_eq!(line["hostsUp"], s.hosts.len() as u64);
        assert_eq!(line["podsPending"], 0);
        let expected = used((hour % 24) as u8).round() as u64;
        assert_eq!(line["cpuUsedMilli"], expected, "hour {hour}");
    }
    // The web and api peaks (08-20, 08-18) are inside the day, not at midnight.
    let at = |h: usize| hourly[h]["cpuUsedMilli"].as_u64().expect("used");
    assert!(at(12) > at(0), "peak {} vs night {}", at(12), at(0));
}

// --- adding a cluster ----------------------------------------------------------------------

#[test]
fn add_cluster_builds_the_control_plane_first_then_the_pools_then_deploys_its_workloads() {
    let mut estate = example("enterprise", "");
    let f = &mut estate.scenario.spec.failures;
    f.hosts.mtbf = plinth_model::quantity::Duration::from_days(100_000);
    f.by_class.clear();
    f.racks.mtbf = plinth_model::quantity::Duration::from_days(100_000);
    let ops = &mut estate.scenario.spec.operations;
    ops.kubernetes_upgrades_per_year = 0;
    ops.os_patching_interval = plinth_model::quantity::Duration::from_days(100_000);
    ops.host_patching_interval = plinth_model::quantity::Duration::from_days(100_000);
    ops.timeline = vec![plinth_model::kinds::scenario::TimelineStep {
        at: plinth_model::quantity::Duration::from_hours(1),
        action: plinth_model::kinds::scenario::TimelineAction::AddCluster,
        cluster: Some("dev".into()),
        pool: None,
        replicas: None,
        version: None,
        host: None,
    }];
    for env in [EnvironmentType::Virtualized, EnvironmentType::BareMetal] {
        let options = Options {
            env,
            seed: 1,
            duration: DAY,
            input: InputDigest::default(),
        };
        let s = setup(&estate, &options).expect("setup");
        assert!(
            s.nodes.iter().all(|n| n.pool.cluster != "dev"),
            "{env:?}: no dev node before the step"
        );
        let run = simulate(&estate, &options).expect("run");
        let lines = log_lines(&run);
        let requested = events(&lines, "clusterRequested");
        assert_eq!(requested.len(), 1, "{env:?}");
        assert_eq!(requested[0]["t"], HOUR);
        let ready = events(&lines, "clusterReady");
        assert_eq!(ready.len(), 1, "{env:?}");
        // Two stages one after the other: the control plane, then the pools.
        let stage = match env {
            EnvironmentType::Virtualized => {
                let t = &estate.virtualized.spec.timings;
                t.vm_clone.millis() + t.vm_boot.millis()
            }
            EnvironmentType::BareMetal => estate.bare_metal.spec.os_install.millis(),
        };
        assert_eq!(ready[0]["durationMs"], 2 * stage, "{env:?}");
        let creates: Vec<_> = events(&lines, "command")
            .into_iter()
            .filter(|c| c["pool"].as_str().is_some_and(|p| p.starts_with("dev/")))
            .collect();
        let cp_last = creates
            .iter()
            .filter(|c| c["pool"] == "dev/control-plane")
            .map(|c| c["t"].as_u64().expect("t"))
            .max()
            .expect("control plane created");
        let pools_first = creates
            .iter()
            .filter(|c| c["pool"] != "dev/control-plane")
            .map(|c| c["t"].as_u64().expect("t"))
            .min()
            .expect("pools created");
        assert!(
            pools_first >= cp_last + stage,
            "{env:?}: pools after the control plane"
        );
        // Its workloads run once it is ready, and none of them counted as down before.
        let t_ready = ready[0]["t"].as_u64().expect("t");
        let dev: Vec<_> = events(&lines, "workloadAvailability")
            .into_iter()
            .filter(|a| {
                a["workload"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("dev/"))
            })
            .collect();
        assert!(!dev.is_empty());
        for a in &dev {
            if a["t"].as_u64().expect("t") < t_ready {
                assert_eq!(a["desired"], 0, "{env:?}: {a}");
            }
        }
        assert!(
            dev.iter()
                .any(|a| a["available"] == a["desired"] && a["desired"].as_u64() > Some(0)),
            "{env:?}: dev workloads available"
        );
        assert!(events(&lines, "quorumLost").is_empty(), "{env:?}");
    }
}

/// Issue 12, item 3: a timeline step that scales a pool to 16 declared nodes (16 VMs of the
/// pool's size) asks a bare-metal design for the servers that capacity and the pods need,
/// not for 16 whole servers: `examples/small`'s 16-vCPU node VMs are a quarter of one of
/// its 64-thread servers.
#[test]
fn a_scale_step_asks_bare_metal_for_the_servers_the_declared_capacity_needs() {
    let estate = quiet_small(
        UpgradeStrategy::default(),
        "    timeline:\n      - at: 1d\n        action: scalePool\n        cluster: apps\n        pool: workers\n        replicas: 16\n",
    );
    let options = Options {
        env: EnvironmentType::BareMetal,
        seed: 1,
        duration: 2 * 86_400_000,
        input: InputDigest::default(),
    };
    let s = setup(&estate, &options).expect("setup");
    let plinth_placement::plan::DesignPlan::BareMetal(b) = &s.design else {
        panic!("a bare-metal design");
    };
    let servers = b
        .servers
        .allocations
        .iter()
        .find(|a| {
            a.cluster.as_deref() == Some("apps")
                && a.role == plinth_placement::baremetal::Role::Pool("workers".into())
        })
        .map(|a| a.nodes)
        .expect("the pool's servers");
    let run = simulate(&estate, &options).expect("run");
    let lines = log_lines(&run);
    let asked = events(&lines, "scaleRequested");
    assert_eq!(asked.len(), 1, "one scale step");
    let replicas = asked[0]["replicas"].as_u64().unwrap_or(u64::MAX);
    // 16 × 16 vCPU is 256 vCPU, the threads of four servers: the pool's servers and one
    // more at most, never 16 servers.
    assert!(
        replicas <= u64::from(servers) + 1,
        "asked for {replicas} servers; the pool has {servers}"
    );
}
