//! Pods placed with kube-scheduler's semantics on the user's path: `plinth plan` sizes pools
//! so every pod's required constraints can be met (or reports the pods Pending with the
//! scheduler's message at the pool's `max`), and places them by those constraints.
//! Fixture: `tests/estates/scheduling` (six servers in three racks).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

const ESTATE: &str = "tests/estates/scheduling";

fn plan_json(args: &[&str]) -> (i32, Value) {
    let (code, text) = common::plinth(&[&["plan", "-o", "json"], args].concat());
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (code, v)
}

/// The placement entry of workload `name` (`<Kind>/<name>` suffix of its id).
fn placement<'a>(design: &'a Value, name: &str) -> &'a Value {
    design["placement"]
        .as_array()
        .and_then(|p| {
            p.iter()
                .find(|w| w["workload"].as_str().is_some_and(|id| id.ends_with(name)))
        })
        .unwrap_or_else(|| panic!("no placement of {name}: {design}"))
}

fn pool<'a>(design: &'a Value, name: &str) -> &'a Value {
    design["pools"]
        .as_array()
        .and_then(|p| p.iter().find(|x| x["pool"] == name))
        .unwrap_or_else(|| panic!("no pool {name}: {design}"))
}

fn counts(v: &Value) -> Vec<u64> {
    let mut c: Vec<u64> = v
        .as_object()
        .map(|o| o.values().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    c.sort_unstable();
    c
}

/// A copy of the fixture with `cluster.yaml` edited by `edit`, in a fresh directory.
fn variant(name: &str, edit: impl Fn(&str) -> String) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    fs::create_dir_all(&dir).expect("temp dir");
    for f in ["inventory.yaml", "workloads.yaml", "cluster.yaml"] {
        let text = fs::read_to_string(root.join(ESTATE).join(f)).expect("fixture");
        let text = if f == "cluster.yaml" {
            edit(&text)
        } else {
            text
        };
        fs::write(dir.join(f), text).expect("write");
    }
    dir
}

#[test]
fn required_anti_affinity_grows_the_pool_to_one_node_per_replica() {
    for design in ["virtualized", "bareMetal"] {
        let (code, v) = plan_json(&[ESTATE]);
        assert_eq!(code, 0, "{v}");
        let d = &v[design];
        let general = pool(d, "general");
        if design == "virtualized" {
            assert_eq!(general["byRequests"], 2, "declared 2: {general}");
        }
        assert_eq!(
            general["byScheduling"], 5,
            "{design}: five replicas that may not share a node need five nodes: {general}"
        );
        let db = placement(d, "StatefulSet/db");
        assert_eq!(db["pending"], 0, "{db}");
        assert_eq!(
            counts(&db["nodes"]),
            vec![1, 1, 1, 1, 1],
            "{design}: one replica per node: {db}"
        );
    }
}

#[test]
fn at_the_pools_max_the_replicas_left_are_pending_with_the_schedulers_reason() {
    let dir = variant("scheduling-max", |c| {
        c.replace(
            "      replicas: 2\n    - name: gpu",
            "      replicas: 2\n      max: 3\n    - name: gpu",
        )
    });
    let dir = dir.to_str().expect("utf-8 path");
    let (code, v) = plan_json(&[dir, "--env", "virtualized"]);
    assert_eq!(code, 1, "pods that fit nowhere fail the plan: {v}");
    let d = &v["virtualized"];
    let general = pool(d, "general");
    assert_eq!(general["byScheduling"], 3, "{general}");
    assert_eq!(general["atMax"], true, "{general}");
    let pending = d["pending"].as_array().expect("pending");
    let db = pending
        .iter()
        .find(|p| {
            p["workload"]
                .as_str()
                .is_some_and(|w| w.ends_with("StatefulSet/db"))
        })
        .unwrap_or_else(|| panic!("db is pending: {d}"));
    assert_eq!(db["pods"], 2, "{db}");
    let reason = db["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("0/5 nodes are available")
            && reason.contains("3 node(s) didn't match pod anti-affinity rules")
            && reason.contains("2 node(s) had untolerated taint {gpu: true}"),
        "kube-scheduler's own kind of message: {reason}"
    );
    // The table says the same.
    let (code, text) = common::plinth(&["plan", dir, "--env", "virtualized"]);
    assert_eq!(code, 1);
    assert!(
        text.contains(
            "pending: 2 pod(s) of StatefulSet data/db in cluster kv: 0/5 nodes are available"
        ),
        "{text}"
    );
}

#[test]
fn a_zone_spread_with_do_not_schedule_places_one_replica_per_rack() {
    let (code, v) = plan_json(&[ESTATE]);
    assert_eq!(code, 0, "{v}");
    for design in ["virtualized", "bareMetal"] {
        let web = placement(&v[design], "Deployment/web");
        assert_eq!(
            counts(&web["zones"]),
            vec![1, 1, 1],
            "{design}: 1/1/1 over r1, r2, r3: {web}"
        );
        assert_eq!(web["zones"].as_object().map(|z| z.len()), Some(3), "{web}");
    }
}

#[test]
fn a_taint_without_a_toleration_keeps_pods_off_the_pool() {
    let (code, v) = plan_json(&[ESTATE]);
    assert_eq!(code, 0, "{v}");
    let d = &v["virtualized"];
    let batch = placement(d, "Deployment/batch");
    let nodes: Vec<&String> = batch["nodes"].as_object().expect("nodes").keys().collect();
    assert!(
        !nodes.is_empty() && nodes.iter().all(|n| n.starts_with("kv-general-")),
        "batch does not tolerate gpu=true:NoSchedule: {batch}"
    );
    let trainer = placement(d, "Deployment/trainer");
    let nodes: Vec<&String> = trainer["nodes"]
        .as_object()
        .expect("nodes")
        .keys()
        .collect();
    assert!(
        !nodes.is_empty() && nodes.iter().all(|n| n.starts_with("kv-gpu-")),
        "trainer tolerates the taint and selects accelerator=gpu: {trainer}"
    );
}

/// A Scenario with frequent host failures, so every run reschedules after failures, drains
/// (patching) and rollouts.
const HARSH: &str = "apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: harsh
spec:
  failures:
    hosts:
      mtbf: 20d
      repairTime: 8h
  operations:
    kubernetesUpgradesPerYear: 4
    osPatchingInterval: 60d
    hostPatchingInterval: 45d
";

/// Replays a `simulate --events` log: pod → node at every moment, checking at each binding
/// that the pod's required constraints still hold where it lands.
fn check_log(log: &str, design: &str, seed: u64) -> (u32, u32) {
    let mut at: std::collections::BTreeMap<(String, u64), String> = Default::default();
    let (mut bound, mut unbound) = (0, 0);
    for line in log.lines() {
        let v: Value = serde_json::from_str(line).expect("a JSON line");
        let pod = || {
            let p = &v["pod"];
            (
                p["workload"].as_str().unwrap_or_default().to_owned(),
                p["ordinal"].as_u64().unwrap_or_default(),
            )
        };
        match v["event"].as_str() {
            Some("podBound") => {
                bound += 1;
                let (w, i) = pod();
                let node = v["node"].as_str().expect("node").to_owned();
                if w.ends_with("StatefulSet/db") {
                    let twin = at
                        .iter()
                        .find(|((o, _), n)| o == &w && **n == node)
                        .map(|((_, j), _)| *j);
                    assert!(
                        twin.is_none(),
                        "{design} seed {seed}: db-{i} bound to {node}, which runs db-{twin:?}: {line}"
                    );
                }
                if design == "virtualized" {
                    if w.ends_with("Deployment/batch") {
                        assert!(!node.starts_with("kv-gpu-"), "{design} seed {seed}: {line}");
                    }
                    if w.ends_with("Deployment/trainer") {
                        assert!(node.starts_with("kv-gpu-"), "{design} seed {seed}: {line}");
                    }
                }
                at.insert((w, i), node);
            }
            Some("podUnbound") => {
                unbound += 1;
                at.remove(&pod());
            }
            _ => {}
        }
    }
    (bound, unbound)
}

#[test]
fn the_simulators_reschedules_keep_the_constraints_over_seeds() {
    let dir = variant("scheduling-harsh", |c| c.to_owned());
    fs::write(dir.join("scenario.yaml"), HARSH).expect("scenario");
    let dir = dir.to_str().expect("utf-8 path");
    let mut rescheduled = 0;
    for env in ["virtualized", "bare-metal"] {
        for seed in 1..=6u64 {
            let log =
                Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("sched-{env}-{seed}.jsonl"));
            let seed_arg = seed.to_string();
            let (code, out) = common::plinth(&[
                "simulate",
                dir,
                "--env",
                env,
                "--seed",
                &seed_arg,
                "--duration",
                "180d",
                "--events",
                log.to_str().expect("utf-8"),
                "--force",
            ]);
            assert_eq!(code, 0, "{env} seed {seed}: {out}");
            let text = fs::read_to_string(&log).expect("log");
            let (bound, unbound) = check_log(&text, env, seed);
            assert!(
                bound >= 14,
                "{env} seed {seed}: every pod bound at the start"
            );
            rescheduled += unbound;
        }
    }
    assert!(
        rescheduled > 0,
        "the harsh scenario makes the simulator unbind and rebind pods"
    );
}
