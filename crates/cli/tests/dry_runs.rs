//! `plinth maintenance`, `plinth upgrade` and `plinth drs` with `--dry-run` on the bundled
//! examples and on small estates made for the case: what an operator relies on before
//! taking a host down, rolling a cluster or letting DRS move VMs.

mod common;

use common::estates::{self, LONELY};
use serde_json::Value;

fn json(args: &[&str]) -> (i32, Value, String) {
    let (code, out, err) = common::plinth_streams(&[args, &["-o", "json"]].concat());
    let v = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, v, err)
}

#[test]
fn maintenance_moves_every_vm_of_the_host_to_other_hosts() {
    let host = "r1-general-01";
    let (code, v, err) = json(&[
        "maintenance",
        "examples/enterprise",
        "--host",
        host,
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}\n{v}");
    let plan = &v["plan"];
    let moves = plan["moves"].as_array().expect("moves");
    assert!(!moves.is_empty(), "the host runs VMs: {plan}");
    for m in moves {
        let to = m["to"].as_str().expect("to");
        assert_ne!(to, host);
    }
    let targets: std::collections::BTreeSet<&str> =
        moves.iter().filter_map(|m| m["to"].as_str()).collect();
    assert!(
        targets.len() > 1,
        "spread over hosts with headroom: {targets:?}"
    );
    assert_eq!(plan["stops"].as_array().map(Vec::len), Some(0), "{plan}");
    let quorum = plan["quorum"].as_array().expect("quorum");
    assert_eq!(quorum.len(), 5, "every cluster judged: {plan}");
    assert!(quorum.iter().all(|q| q["holds"] == true));
    assert!(plan["budgets"].as_array().is_some_and(|b| !b.is_empty()));
    assert_eq!(plan["parallel"], 8, "25 Gbit/s: 8 migrations at a time");
    assert!(plan["completionMs"].as_u64().is_some_and(|t| t > 0));
    assert_eq!(v["safe"], true);
}

#[test]
fn maintenance_prints_a_table_with_the_verdict_by_default() {
    let (code, out, err) = common::plinth_streams(&[
        "maintenance",
        "examples/small",
        "--host",
        "r1-standard-02",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("maintenance of r1-standard-02"), "{out}");
    assert!(
        out.contains("safe: no etcd quorum or PodDisruptionBudget breaks"),
        "{out}"
    );
}

#[test]
fn an_unknown_host_is_an_error_naming_the_hosts() {
    let (code, _, err) = common::plinth_streams(&[
        "maintenance",
        "examples/small",
        "--host",
        "r9-nope",
        "--dry-run",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no host `r9-nope`"), "{err}");
    assert!(err.contains("r1-standard-01, r1-standard-02"), "{err}");
}

#[test]
fn without_dry_run_an_estate_directory_has_nothing_to_carry_it_out() {
    for args in [
        &["maintenance", "examples/small", "--host", "r1-standard-01"][..],
        &[
            "upgrade",
            "examples/small",
            "--cluster",
            "apps",
            "--to",
            "1.32.0",
        ],
        &["drs", "examples/small"],
    ] {
        let (code, out, err) = common::plinth_streams(args);
        assert_eq!(code, 2, "{args:?}: {out}");
        assert!(err.contains("pass --dry-run"), "{err}");
    }
}

#[test]
fn maintenance_that_would_lose_etcd_quorum_is_refused_unless_forced() {
    // One control-plane member and no host to move it to.
    let dir = estates::estate(&LONELY, ["ra", "rb", "rc"], 1, "");
    let estate = dir.path().to_str().expect("utf-8 path");
    let hosts = ["ra-standard-01", "rb-standard-01", "rc-standard-01"];
    let mut refused = None;
    for host in hosts {
        let (code, v, err) = json(&["maintenance", estate, "--host", host, "--dry-run"]);
        let stops = v["plan"]["stops"].as_array().cloned().unwrap_or_default();
        assert!(
            !stops.is_empty(),
            "{host}: its VMs have nowhere to go: {err}\n{v}"
        );
        assert!(stops.iter().all(|s| s["reason"]
            == "no other host of its zone is up and open (not cordoned or in maintenance)"));
        if stops.iter().any(|s| s["vm"] == "solo-cp-0") {
            assert_eq!(code, 1, "{v}");
            assert_eq!(v["safe"], false);
            let reasons = v["refusals"].to_string();
            assert!(
                reasons.contains("cluster solo loses etcd quorum"),
                "{reasons}"
            );
            refused = Some(host);
        }
    }
    let host = refused.expect("one host runs the only control-plane member");
    // Racks that declare no zone do not confine moves: the same VMs find other racks.
    let open = estates::estate(
        &["name: ra", "name: rb", "name: rc"],
        ["ra", "rb", "rc"],
        1,
        "",
    );
    let (code, v, err) = json(&[
        "maintenance",
        open.path().to_str().expect("utf-8 path"),
        "--host",
        host,
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}\n{v}");
    assert_eq!(v["plan"]["stops"].as_array().map(Vec::len), Some(0), "{v}");
    // With one zone declared, the racks that declare none share one: rb's VMs go to rc,
    // ra's have nowhere to go.
    let mixed = estates::estate(
        &["name: ra, zone: a", "name: rb", "name: rc"],
        ["ra", "rb", "rc"],
        1,
        "",
    );
    let stops = |host: &str| {
        let (_, v, err) = json(&[
            "maintenance",
            mixed.path().to_str().expect("utf-8 path"),
            "--host",
            host,
            "--dry-run",
            "--force",
        ]);
        v["plan"]["stops"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_else(|| panic!("{err}"))
    };
    assert_eq!(stops("rb-standard-01"), 0);
    assert!(stops("ra-standard-01") > 0);
    let (code, out, _) =
        common::plinth_streams(&["maintenance", estate, "--host", host, "--dry-run"]);
    assert_eq!(code, 1);
    assert!(out.contains("refused: pass --force"), "{out}");
    let (code, v, err) = json(&[
        "maintenance",
        estate,
        "--host",
        host,
        "--dry-run",
        "--force",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["forced"], true);
}

#[test]
fn upgrade_replaces_the_control_plane_first_then_each_pool_in_name_order() {
    let (code, v, err) = json(&[
        "upgrade",
        "examples/enterprise",
        "--cluster",
        "prod",
        "--to",
        "1.32.0",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["replaces"], true);
    assert_eq!(v["change"]["kind"], "kubernetes");
    assert_eq!(v["change"]["to"], "1.32.0");
    let stages = v["stages"].as_array().expect("stages");
    assert_eq!(stages[0]["pool"], "control-plane");
    assert!(stages.len() > 1, "{v}");
    for s in stages {
        let order: Vec<&str> = s["order"]
            .as_array()
            .expect("order")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(order, sorted);
        let nodes = order.len() as u64;
        let min = s["minAvailable"].as_u64().expect("min");
        let in_place = s["inPlace"].as_u64().expect("inPlace");
        assert_eq!(min, nodes - in_place, "{s}");
        assert!(["surge", "removeThenAdd", "mixed"].contains(&s["method"].as_str().unwrap_or("")));
    }
    let total: u64 = stages.iter().filter_map(|s| s["durationMs"].as_u64()).sum();
    assert_eq!(v["durationMs"].as_u64(), Some(total));
    assert!(total > 0);
}

#[test]
fn upgrade_that_skips_a_minor_version_or_goes_back_is_refused() {
    // prod runs 1.31.4.
    for (to, says) in [
        ("1.33.1", "skips a minor version"),
        ("1.30.8", "is a downgrade"),
    ] {
        let (code, out, err) = common::plinth_streams(&[
            "upgrade",
            "examples/enterprise",
            "--cluster",
            "prod",
            "--to",
            to,
            "--dry-run",
        ]);
        assert_eq!(code, 1, "{to}: {out}{err}");
        assert!(err.contains(says), "{to}: {err}");
        assert!(out.is_empty(), "no plan for a refused version: {out}");
    }
}

#[test]
fn upgrade_to_what_the_cluster_runs_replaces_nothing() {
    let (code, out, err) = common::plinth_streams(&[
        "upgrade",
        "examples/small",
        "--cluster",
        "apps",
        "--to",
        "ubuntu-24.04",
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no machine is replaced"), "{out}");
}

#[test]
fn upgrade_of_an_unknown_cluster_names_the_clusters() {
    let (code, _, err) = common::plinth_streams(&[
        "upgrade",
        "examples/enterprise",
        "--cluster",
        "prd",
        "--to",
        "1.32.0",
        "--dry-run",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("no cluster `prd`; the clusters are: prod, staging"),
        "{err}"
    );
}

#[test]
fn drs_shows_its_moves_and_the_imbalance_before_and_after() {
    let (code, v, err) = json(&["drs", "examples/enterprise", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let before = v["imbalanceBefore"].as_f64().expect("before");
    let after = v["imbalanceAfter"].as_f64().expect("after");
    assert!(after <= before, "{v}");
    let moves = v["moves"].as_array().expect("moves");
    assert!(moves.len() as u64 <= v["maxMovesPerInterval"].as_u64().expect("max"));
    if before <= v["threshold"].as_f64().expect("threshold") {
        assert!(moves.is_empty(), "balanced: no moves");
    }
    let control_plane = moves
        .iter()
        .filter(|m| !m["controlPlaneOf"].is_null())
        .count();
    assert!(
        control_plane <= 1,
        "control-plane VMs move one at a time: {v}"
    );
}

#[test]
fn upgrade_without_room_for_a_surge_goes_remove_then_add() {
    // Three hosts, no headroom bought: a fourth control-plane member has nowhere to go.
    let tight = "---
apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: tight
spec:
  requirements:
    hostFailuresToTolerate: 0
    hostsInMaintenance: 0
    upgradeSurge: false
";
    let dir = estates::estate(&["name: r1"], ["r1", "r1", "r1"], 3, tight);
    let estate = dir.path().to_str().expect("utf-8 path");
    let args = [
        "upgrade",
        estate,
        "--cluster",
        "solo",
        "--to",
        "flatcar-4081",
        "--dry-run",
    ];
    let (code, v, err) = json(&args);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["change"]["kind"], "os");
    let cp = &v["stages"][0];
    assert_eq!(cp["pool"], "control-plane");
    assert_eq!(cp["method"], "removeThenAdd", "{v}");
    assert_eq!(
        cp["minAvailable"], 2,
        "one member at a time: etcd keeps 2 of 3"
    );
    assert_eq!(v["stages"][1]["method"], "surge", "workers have room: {v}");
}

#[test]
fn drs_moves_other_vms_first_within_the_interval_bound() {
    // Packed placement, a low threshold and two large legacy VMs: DRS has work to do.
    let packed = "---
apiVersion: plinth.dev/v1alpha1
kind: Environment
metadata:
  name: packed
spec:
  type: virtualized
  placementStrategy: pack
  drs:
    threshold: 0.01
    maxMovesPerInterval: 4
---
apiVersion: plinth.dev/v1alpha1
kind: VirtualMachineSet
metadata:
  name: big
spec:
  count: 2
  vcpu: 20
  memory: 16Gi
  disk: 100Gi
---
apiVersion: plinth.dev/v1alpha1
kind: VirtualMachineSet
metadata:
  name: small
spec:
  count: 2
  vcpu: 2
  memory: 8Gi
  disk: 50Gi
";
    let dir = estates::estate(&["name: r1"], ["r1", "r1", "r1"], 3, packed);
    let estate = dir.path().to_str().expect("utf-8 path");
    let (code, v, err) = json(&["drs", estate, "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let moves = v["moves"].as_array().expect("moves");
    assert!(!moves.is_empty(), "{v}");
    assert!(moves.len() <= 4);
    assert!(
        v["imbalanceAfter"].as_f64() < v["imbalanceBefore"].as_f64(),
        "{v}"
    );
    assert!(
        moves.iter().all(|m| m["controlPlaneOf"].is_null()),
        "workers move before any control-plane VM: {v}"
    );
}
