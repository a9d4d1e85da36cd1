//! `plinth simulate` on examples/enterprise: the issue's done-when — the same seed writes a
//! byte-identical event log, another seed a different one, in both environments.

mod common;

use std::path::{Path, PathBuf};

use common::plinth;

fn simulate(env: &str, seed: &str, events: &Path) -> (i32, String) {
    simulate_at(Path::new("examples/enterprise"), env, seed, events)
}

fn simulate_at(estate: &Path, env: &str, seed: &str, events: &Path) -> (i32, String) {
    let events = events.display().to_string();
    let estate = estate.display().to_string();
    plinth(&[
        "simulate",
        &estate,
        "--env",
        env,
        "--seed",
        seed,
        "--duration",
        "365d",
        "-o",
        "json",
        "--events",
        &events,
    ])
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("plinth-simulate-{}-{name}", std::process::id()))
}

#[test]
fn same_seed_same_event_log_other_seed_other_log() {
    for env in ["virtualized", "bare-metal"] {
        let (a, b, c) = (
            tmp(&format!("{env}-a")),
            tmp(&format!("{env}-b")),
            tmp(&format!("{env}-c")),
        );
        let (code, out) = simulate(env, "42", &a);
        assert_eq!(code, 0, "{out}");
        let summary: serde_json::Value = serde_json::from_str(&out).expect("json summary");
        assert!(
            summary["hostFailures"].as_u64().is_some_and(|n| n > 0),
            "{summary}"
        );
        assert_eq!(simulate(env, "42", &b).0, 0);
        assert_eq!(simulate(env, "7", &c).0, 0);
        let (la, lb, lc) = (
            std::fs::read(&a).expect("log a"),
            std::fs::read(&b).expect("log b"),
            std::fs::read(&c).expect("log c"),
        );
        assert!(!la.is_empty());
        assert_eq!(la, lb, "{env}: seed 42 twice");
        assert_ne!(la, lc, "{env}: seeds 42 and 7");
        for p in [a, b, c] {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn the_log_starts_with_a_header_naming_the_run_and_binds_every_pod_at_the_start() {
    let path = tmp("header");
    let events = path.display().to_string();
    let (code, out) = plinth(&[
        "simulate",
        "examples/small",
        "--env",
        "bare-metal",
        "--seed",
        "5",
        "--duration",
        "2d",
        "--events",
        &events,
    ]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&path).expect("log");
    let _ = std::fs::remove_file(&path);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let header = &lines[0];
    assert_eq!(header["t"], 0, "{header}");
    assert_eq!(header["event"], "header", "{header}");
    assert_eq!(header["formatVersion"], 2, "{header}");
    assert_eq!(header["seed"], 5, "{header}");
    assert_eq!(header["durationMs"], 2 * 86_400_000u64, "{header}");
    assert_eq!(header["design"], "bareMetal", "{header}");
    assert_eq!(header["source"], "simulation", "{header}");
    assert_eq!(header["input"].as_str().map(str::len), Some(64), "{header}");
    assert_eq!(lines[1]["event"], "start");
    // One `podBound` line per pod placed at t = 0, each pod named once.
    let pods = lines[1]["pods"].as_u64().expect("pods");
    let pending: u64 = lines
        .iter()
        .filter(|l| l["t"] == 0 && l["event"] == "podsPending")
        .filter_map(|l| l["pods"].as_u64())
        .sum();
    let bound: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l["t"] == 0 && l["event"] == "podBound")
        .map(|l| l["pod"].to_string())
        .collect();
    assert!(pods > 0);
    assert_eq!(bound.len() as u64, pods - pending, "{bound:?}");
    // The last line seals the log: the SHA-256 of every line before it.
    let last = lines.last().expect("lines");
    assert_eq!(last["event"], "digest", "{last}");
    assert_eq!(last["sha256"].as_str().map(str::len), Some(64), "{last}");
    assert!(
        out.contains(last["sha256"].as_str().unwrap_or("-")),
        "{out}"
    );
}

/// A year of a three-host estate whose racks are three declared zones (one host each),
/// with a host failure every 60 days on average, plus `extra` documents: the event log.
fn zoned_year(extra: &str) -> Vec<serde_json::Value> {
    let flaky = "---
apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: flaky
spec:
  failures:
    hosts:
      mtbf: 60d
      repairTime: 8h
";
    let dir = common::estates::estate(
        &common::estates::LONELY,
        ["ra", "rb", "rc"],
        1,
        &format!("{flaky}{extra}"),
    );
    let events = dir.path().join("events.jsonl");
    let (code, out) = plinth(&[
        "simulate".as_ref(),
        dir.path().as_os_str(),
        "--env".as_ref(),
        "virtualized".as_ref(),
        "--duration".as_ref(),
        "365d".as_ref(),
        "--events".as_ref(),
        events.as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("node host labels: "), "{out}");
    std::fs::read_to_string(&events)
        .expect("event log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

#[test]
fn a_rollout_whose_drain_fails_pauses_and_its_cluster_says_so() {
    // examples/small upgraded an hour in, with a budget no drain can meet and an operator
    // who evicts anyway only after 90 minutes: past the control plane's 1 h drain deadline.
    let dir = tempfile::tempdir().expect("tempdir");
    let small = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/small");
    for f in ["cluster.yaml", "inventory.yaml", "workloads.yaml"] {
        std::fs::copy(small.join(f), dir.path().join(f)).expect("copy");
    }
    std::fs::write(
        dir.path().join("blocked.yaml"),
        r#"apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: blocked
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
    timeline:
      - at: 1h
        action: upgradeKubernetes
        cluster: apps
        version: "1.32.0"
  blockedDrain:
    forceAfter: 90m
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: batch
  namespace: shop
spec:
  replicas: 4
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
  minAvailable: 4
  selector:
    matchLabels:
      app: batch
"#,
    )
    .expect("write");
    let events = dir.path().join("events.jsonl");
    let (code, out) = plinth(&[
        "simulate".as_ref(),
        dir.path().as_os_str(),
        "--env".as_ref(),
        "virtualized".as_ref(),
        "--duration".as_ref(),
        "1d".as_ref(),
        "--events".as_ref(),
        events.as_os_str(),
    ]);
    assert_eq!(code, 0, "{out}");
    let log = std::fs::read_to_string(&events).expect("event log");
    let on_cluster: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
        .filter(|e| e["event"] == "condition" && e["object"] == "cluster/apps")
        .collect();
    let message = |e: &serde_json::Value| e["message"].as_str().unwrap_or_default().to_owned();
    let paused = on_cluster
        .iter()
        .position(|e| {
            message(e).contains("paused: drain of") && message(e).contains("failed (timed out)")
        })
        .unwrap_or_else(|| panic!("the Cluster shows the pause: {on_cluster:?}"));
    assert!(
        message(&on_cluster[paused]).contains("the rollout waits and the node is not deleted"),
        "{}",
        on_cluster[paused]
    );
    assert!(
        on_cluster[paused + 1..]
            .iter()
            .any(|e| e["change"] == "cleared" || !message(e).contains("paused")),
        "the pause ends once the node is drained"
    );
    assert!(
        log.contains("\"event\":\"upgradeFinished\""),
        "the rollout finishes"
    );
}

#[test]
fn a_node_vm_leaves_its_zone_only_as_a_recorded_exception() {
    // Zone a of two hosts, zone b of one: when zone b's host fails, its VMs have no host in
    // their zone.
    let year = |allow: bool| {
        let extra = format!(
            "---
apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: zoned
spec:
  failures:
    hosts:
      mtbf: 60d
      repairTime: 8h
---
apiVersion: plinth.dev/v1alpha1
kind: Environment
metadata:
  name: zoned
spec:
  type: virtualized
  ha:
    restartOutsideZone: {allow}
"
        );
        let racks = [
            "name: ra, zone: a",
            "name: rb, zone: a",
            "name: rc, zone: b",
        ];
        let dir = common::estates::estate(&racks, ["ra", "rb", "rc"], 3, &extra);
        let (code, out) = plinth(&[
            "simulate".as_ref(),
            dir.path().as_os_str(),
            "--env".as_ref(),
            "virtualized".as_ref(),
            "--duration".as_ref(),
            "365d".as_ref(),
        ]);
        assert_eq!(code, 0, "{out}");
        out
    };
    let allowed = year(true);
    let line = allowed
        .lines()
        .find(|l| l.starts_with("zones: "))
        .unwrap_or_else(|| panic!("a zones line: {allowed}"));
    assert!(line.ends_with(", 0 unrecorded"), "{line}");
    let recorded: u32 = line["zones: ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(recorded > 0, "{line}");
    // Refused: none leaves its zone; they wait for zone b's host.
    let refused = year(false);
    assert!(
        !refused.lines().any(|l| l.starts_with("zones: ")),
        "{refused}"
    );
}

#[test]
fn ha_restarts_beside_a_full_strict_group_only_as_a_recorded_exception_when_allowed() {
    // Three hosts for three control-plane VMs spread strictly over hosts, and no headroom:
    // when a host fails, no host the group allows can take its member.
    let scarce = |allow: bool| {
        format!(
            "---
apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: scarce
spec:
  requirements:
    hostFailuresToTolerate: 0
    hostsInMaintenance: 0
    upgradeSurge: false
  failures:
    hosts:
      mtbf: 60d
      repairTime: 8h
---
apiVersion: plinth.dev/v1alpha1
kind: Environment
metadata:
  name: scarce
spec:
  type: virtualized
  ha:
    restartBesideGroup: {allow}
"
        )
    };
    let year = |allow: bool| {
        let dir = common::estates::estate(&["name: r1"], ["r1", "r1", "r1"], 3, &scarce(allow));
        let events = dir.path().join("events.jsonl");
        let (code, out) = plinth(&[
            "simulate".as_ref(),
            dir.path().as_os_str(),
            "--env".as_ref(),
            "virtualized".as_ref(),
            "--duration".as_ref(),
            "365d".as_ref(),
            "--events".as_ref(),
            events.as_os_str(),
        ]);
        assert_eq!(code, 0, "{out}");
        // The twelve monthly patch waves ask every host for maintenance at once: the hosts
        // are emptied one at a time, the others waiting in service, and each host's member
        // (which no other host may take) stops with it, two of three running, and starts
        // again on it. Every maintenance finishes; no host ends the year waiting.
        assert!(out.contains("maintenances: 36,"), "{out}");
        assert!(!out.contains("waiting: host/"), "{out}");
        let log: Vec<serde_json::Value> = std::fs::read_to_string(&events)
            .expect("event log")
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        (out, log)
    };

    // Allowed: each such member restarts beside another, recorded and said, and the
    // exception ends (moved apart, its neighbour gone, or deleted); none is unrecorded.
    let (out, log) = year(true);
    let beside = conditions(&log, "besideGroup");
    assert!(
        !beside.is_empty(),
        "failures happened and the group was full"
    );
    assert!(
        out.contains(&format!(
            "strict spreads: {} control-plane VMs restarted beside a member of their group as recorded exceptions, 0 unrecorded",
            beside.len()
        )),
        "{out}"
    );
    for c in &beside {
        let object = c["object"].as_str().expect("object");
        let ended = log.iter().any(|e| {
            e["t"].as_u64() > c["t"].as_u64()
                && e["object"] == object
                && (e["change"] == "cleared" || e["change"] == "set")
        }) || log.iter().any(|e| {
            e["t"].as_u64() > c["t"].as_u64()
                && e["kind"] == "deleteVm"
                && Some(e["vm"].as_str().unwrap_or_default()) == object.strip_prefix("vm/")
        });
        assert!(ended, "{object}'s exception never ends");
    }
    let moved_apart = beside.iter().any(|c| {
        let vm = c["object"].as_str().and_then(|o| o.strip_prefix("vm/"));
        log.iter().any(|e| {
            e["t"].as_u64() > c["t"].as_u64() && e["kind"] == "migrateVm" && e["vm"].as_str() == vm
        })
    });
    assert!(moved_apart, "some exception healed by live migration");

    // Refused (the default): the member waits down, and says why.
    let (out, log) = year(false);
    assert!(conditions(&log, "besideGroup").is_empty());
    assert!(
        !conditions(&log, "stoppedForMaintenance").is_empty(),
        "members stop for their host's maintenance"
    );
    assert!(!out.contains("strict spreads:"), "{out}");
    let waiting = conditions(&log, "waitingForCapacity");
    assert!(
        waiting.iter().any(|c| c["message"]
            .as_str()
            .is_some_and(|m| m.contains("placement group solo-cp already on host"))),
        "{waiting:?}"
    );
}

/// Conditions set with `reason` in the log, by object.
fn conditions<'a>(log: &'a [serde_json::Value], reason: &str) -> Vec<&'a serde_json::Value> {
    log.iter()
        .filter(|e| e["event"] == "condition" && e["change"] == "set" && e["reason"] == reason)
        .collect()
}

#[test]
fn ha_restarts_outside_a_full_zone_only_as_a_recorded_exception_that_moves_home() {
    let log = zoned_year("");
    // A host's zone holds no other host: HA restarts its VMs in another zone, each one
    // recorded, its node relabelled with the host it now runs on.
    let outside = conditions(&log, "outsideZone");
    assert!(!outside.is_empty(), "failures happened and zones were full");
    // Each exception ends by a live migration back to the repaired host of its zone (or
    // by the VM's deletion in a rollout); none is open at the end.
    let mut healed = 0;
    for c in &outside {
        let vm = c["object"]
            .as_str()
            .and_then(|o| o.strip_prefix("vm/"))
            .expect("vm");
        let t = c["t"].as_u64().expect("t");
        let home = log
            .iter()
            .filter(|e| e["event"] == "hostFailed" && e["t"].as_u64() < Some(t))
            .filter(|e| {
                e["vmsLost"]
                    .as_array()
                    .is_some_and(|v| v.iter().any(|x| x == vm))
            })
            .filter_map(|e| e["host"].as_str())
            .next_back()
            .expect("the VM was lost with a host");
        let next = log
            .iter()
            .filter(|e| e["t"].as_u64() > Some(t) && e["event"] == "command")
            .find(|e| e["vm"] == vm && (e["kind"] == "migrateVm" || e["kind"] == "deleteVm"))
            .unwrap_or_else(|| panic!("{vm}'s exception never ends"));
        if next["kind"] == "migrateVm" {
            assert_eq!(next["to"], home, "{vm} goes back into its zone: {next}");
            let relabel = log.iter().find(|e| {
                e["t"].as_u64() >= next["t"].as_u64()
                    && e["kind"] == "labelNode"
                    && e["node"] == vm
                    && e["host"] == home
            });
            assert!(relabel.is_some(), "{vm}'s node is relabelled with {home}");
            healed += 1;
        }
    }
    assert!(healed > 0, "some exception healed by migration");

    // With restarts outside the zone refused, the VMs wait for their host's repair, and
    // say why.
    let refuse = "---
apiVersion: plinth.dev/v1alpha1
kind: Environment
metadata:
  name: zoned
spec:
  type: virtualized
  ha:
    restartOutsideZone: false
";
    let log = zoned_year(refuse);
    assert!(conditions(&log, "outsideZone").is_empty());
    let waiting = conditions(&log, "waitingForCapacity");
    assert!(
        waiting.iter().any(|c| c["message"]
            .as_str()
            .is_some_and(|m| m.contains("0/1 hosts of its zone are available"))),
        "{waiting:?}"
    );
}

/// The recovery of each failure, by phase and cause, as docs/recovery.md's table reports
/// it: seed 3 has host crashes and rack power failures in both environments.
#[test]
fn recovery_is_measured_by_phase_and_cause_in_both_environments() {
    let mean = |summary: &serde_json::Value, cause: &str, phase: &str| {
        let p = &summary["byCause"][cause][phase];
        assert!(
            p["count"].as_u64().is_some_and(|n| n > 0),
            "{cause} {phase}: {p}"
        );
        p["meanS"].as_f64().expect("a mean")
    };
    let mut nodes_ready = Vec::new();
    for env in ["virtualized", "bare-metal"] {
        let events = tmp(&format!("{env}-recovery"));
        let (code, out) = simulate(env, "3", &events);
        assert_eq!(code, 0, "{out}");
        let _ = std::fs::remove_file(events);
        let summary: serde_json::Value = serde_json::from_str(&out).expect("json summary");
        for cause in ["host", "rack"] {
            for phase in ["detect", "nodesReady", "podsReady"] {
                mean(&summary, cause, phase);
            }
        }
        // A host crash is fenced before anything restarts (a rack without power confirms
        // no fence: its VMs wait for the known-dead time instead).
        mean(&summary, "host", "fence");
        nodes_ready.push(mean(&summary, "host", "nodesReady"));
    }
    // HA restarts a crashed host's VMs in minutes; a crashed server's node waits for its
    // repair (hours).
    assert!(
        nodes_ready[0] * 10.0 < nodes_ready[1],
        "virtualized {} s, bare metal {} s",
        nodes_ready[0],
        nodes_ready[1]
    );
}

/// `ha.fencing: agent` (no BMC) changes what a host crash costs on the pool: nothing fences
/// the crashed host, so its VMs restart only once known dead (last heard + 1 s + 60 s +
/// 10 s), not after the detection timeout and a 10 s BMC fence. Bare metal is unchanged.
#[test]
fn without_a_bmc_a_crashed_host_s_vms_wait_until_known_dead() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tmp("no-bmc");
    std::fs::create_dir_all(&dir).expect("dir");
    for entry in std::fs::read_dir(repo.join("examples/enterprise")).expect("example") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let text = text.replace(
            "    fenceLatency: 10s\n",
            "    fencing: agent\n    fenceLatency: 10s\n",
        );
        std::fs::write(dir.join(path.file_name().expect("a name")), text).expect("write");
    }
    let by_cause = |estate: &Path, env: &str| {
        let events = tmp("no-bmc-events");
        let (code, out) = simulate_at(estate, env, "3", &events);
        assert_eq!(code, 0, "{out}");
        let _ = std::fs::remove_file(events);
        let summary: serde_json::Value = serde_json::from_str(&out).expect("json summary");
        summary["byCause"].clone()
    };
    let example = repo.join("examples/enterprise");
    // A bare-metal server is fenced through its BMC whatever the pool declares.
    assert_eq!(
        by_cause(&example, "bare-metal"),
        by_cause(&dir, "bare-metal")
    );
    let bmc = by_cause(&example, "virtualized")["host"].clone();
    let agent = by_cause(&dir, "virtualized")["host"].clone();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        bmc["fence"]["count"].as_u64().is_some_and(|n| n > 0),
        "{bmc}"
    );
    assert!(
        agent["fence"]["count"].as_u64().unwrap_or(0) == 0,
        "{agent}"
    );
    let ready = |s: &serde_json::Value| s["nodesReady"]["meanS"].as_f64().expect("a mean");
    assert!(
        ready(&agent) > ready(&bmc) + 30.0,
        "no BMC {} s, BMC {} s",
        ready(&agent),
        ready(&bmc)
    );
}
