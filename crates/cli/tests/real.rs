//! Run it for real, on a namespaced testbed of real host agents and QEMU VMs (TCG here):
//!
//! - `plinth run examples/lab` on `scripts/testbed up 3` builds both clusters, the
//!   control-plane members of `apps` on three different hosts; a second `plinth run`
//!   resumes from its state and converges at once.
//! - The conformance suite's create / scale / host-failure / partition / control-plane-
//!   restart / maintenance bodies, the same as on the simulator (`crates/sim/tests/conformance.rs`), on the
//!   QEMU driver (four hosts, so a lost host's control-plane member has somewhere to go).
//! - A rolling upgrade moves a cluster from one node OS image to the other: every new node's
//!   QEMU process boots the new image's kernel.
//! - `plinth calibrate` measures two testbed hosts; an Environment naming its Calibration
//!   takes the measured timings, and the comparison follows them.
//! - Fencing trials: a host's link is cut while its VMs run; every VM runs again elsewhere
//!   exactly once, and its old QEMU process was gone before the new one started.
//!
//! - Cluster networks: after `plinth run examples/lab`, every node VM reaches the guest agent
//!   of every node of its own cluster, on its host or another, and no node of the other
//!   cluster; the same after one of them moves by live migration.
//! - The README's "run the control plane" on the testbed: `plinth serve --agents`, `plinth
//!   apply -f examples/lab`, `plinth wait clusters --for condition=Ready`, and a node VM's
//!   console through `plinth logs`.
//!
//! The testbed's names are global (namespaces plinth-h*, bridge plinth-br0): the tests of
//! this binary take turns ([`agent_support::on_testbed`]).

mod agent_support;

use std::path::Path;
use std::process::Command;

use agent_support::{
    Node, command, connect_over, lab_estate, nodes, on_testbed, reach_all, repo, testbed,
    testbed_agent,
};
use plinth_conformance::{self as suite, Lab};
use plinth_model::Estate;
use plinth_qemu::lab::QemuLab;

/// Fencing trials in CI; `PLINTH_FENCING_TRIALS` asks for more (the stress command).
const TRIALS: usize = 20;

/// Wall-clock cap of one wait of a body: far above what each takes (seconds).
const CAP_MS: u64 = 180_000;

/// Runs `body` on a fresh lab of `examples/lab` on four hosts (both clusters built), and
/// takes the testbed down whatever happens.
fn on_fresh_lab(body: impl FnOnce(&mut QemuLab)) {
    on_fresh_lab_of(&lab_estate(true, None), body);
}

/// [`on_fresh_lab`] of another estate.
fn on_fresh_lab_of(estate: &Estate, body: impl FnOnce(&mut QemuLab)) {
    on_testbed(4, "3s", |dir, _| {
        let mut lab = QemuLab::new(estate, testbed(dir, "3s"), CAP_MS).expect("the lab starts");
        suite::control_plane_spread_by_a_strict_group(&mut lab);
        body(&mut lab);
    });
}

#[test]
fn conformance_on_the_qemu_driver() {
    // One test, the bodies in turn: each on a fresh testbed, as the simulator's each get a
    // fresh world.
    on_fresh_lab(|_| {});
    on_fresh_lab(suite::pool_scaled);
    on_fresh_lab(suite::host_failure_with_ha_restart);
    on_fresh_lab(suite::host_partition_with_self_fence_and_restart_elsewhere);
    on_fresh_lab(suite::control_plane_restart_mid_rollout);
}

/// The suite's rolling upgrade moves `apps` from `plinth-node` to `plinth-node-2`, and
/// what only a real lab can show: every new node's QEMU process boots the other image.
#[test]
fn a_rolling_upgrade_moves_a_pool_to_the_other_node_image() {
    on_fresh_lab(|lab| {
        let cluster = suite::rolling_upgrade_to_another_image(lab, "plinth-node-2");
        let topo = lab.cluster(&cluster).expect("the cluster");
        for vm in std::iter::once(&topo.control_plane)
            .chain(&topo.pools)
            .flat_map(|p| &p.nodes)
        {
            let dir = lab.image_dir_of(vm).expect("it runs");
            let image = plinth_agent::image::Image::open(&dir).expect("an image");
            assert_eq!(image.name, "plinth-node-2", "{vm} boots {}", dir.display());
        }
    });
}

#[test]
fn maintenance_moves_vms_by_live_migration_and_drs_brings_them_back() {
    on_fresh_lab_of(&lab_with_drs(), maintenance_by_live_migration_and_back);
}

/// `examples/lab` on four hosts with DRS on, every minute (its shortest interval), and
/// balancing closely: the lab's VMs are small beside its hosts, so an emptied host is off
/// the mean by less than the default threshold (0.1).
fn lab_with_drs() -> Estate {
    let path = repo().join("examples/lab/environment.yaml");
    let text = std::fs::read_to_string(&path).expect("the lab's Environment");
    let off = "  drs:\n    enabled: false\n";
    assert!(
        text.contains(off),
        "{} no longer says {off:?}",
        path.display()
    );
    let on = text.replace(
        off,
        "  drs:\n    enabled: true\n    interval: 1m\n    threshold: 0.01\n",
    );
    lab_estate(true, Some(&on))
}

/// The suite's maintenance body, then DRS brings VMs back to the maintained host; and what
/// only a real lab can show: no VM was booted again anywhere (each kept its one QEMU process
/// until a receiver took it over), and every move was a live migration, each with its
/// measured switch-over.
fn maintenance_by_live_migration_and_back(lab: &mut QemuLab) {
    let before: Vec<String> = lab
        .lives()
        .into_iter()
        .filter(|l| l.alive)
        .map(|l| l.vm)
        .collect();
    suite::host_maintenance_by_live_migration(lab);
    let hosts = lab.hosts();
    let emptied: Vec<&String> = hosts.iter().filter(|h| lab.running(h).is_empty()).collect();
    assert!(!emptied.is_empty(), "the maintained host is empty");
    let back = lab.run_until(CAP_MS, &|l| {
        emptied.iter().all(|h| !l.running(h).is_empty())
    });
    assert!(back, "DRS moves VMs back to {emptied:?}");
    let lives = lab.lives();
    for vm in &before {
        let booted = lives.iter().filter(|l| &l.vm == vm && !l.incoming).count();
        assert_eq!(booted, 1, "{vm} was booted again: {lives:?}");
    }
    let migrations = lab.migrations();
    assert!(!migrations.is_empty(), "moved by live migration");
    assert!(
        migrations.iter().all(|m| m.transferred_bytes > 0),
        "{migrations:?}"
    );
}

#[test]
fn fencing_trials_never_run_a_vm_twice() {
    let trials = std::env::var("PLINTH_FENCING_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(TRIALS);
    on_fresh_lab(|lab| {
        for trial in 0..trials {
            let hosts = lab.hosts();
            let host = hosts[trial % hosts.len()].clone();
            let vms = lab.running(&host);
            let cut_at = plinth_qemu::wall_clock();
            lab.partition(&host);
            let moved = lab.run_until(CAP_MS, &|l| {
                vms.iter()
                    .all(|vm| l.running_on(vm).is_some_and(|on| on != host))
            });
            assert!(
                moved,
                "trial {trial}: the VMs of {host} ({vms:?}) run elsewhere"
            );
            lab.heal(&host);
            let settled = lab.run_until(CAP_MS, &|l| {
                l.conditions().is_empty() && l.running(&host).is_empty()
            });
            assert!(
                settled,
                "trial {trial}: settled after the heal: conditions {:?}; still on {host}: {:?}; lives {:?}",
                lab.conditions(),
                lab.running(&host),
                lab.lives()
            );
            // Every VM of the cut host: its old process ended before its new one started.
            let lives = lab.lives();
            for vm in &vms {
                let mine: Vec<_> = lives
                    .iter()
                    .filter(|l| &l.vm == vm && l.last_seen >= cut_at)
                    .collect();
                let old = mine
                    .iter()
                    .find(|l| l.host == host)
                    .expect("the old process");
                let new = mine
                    .iter()
                    .find(|l| l.host != host)
                    .expect("the new process");
                assert!(
                    old.last_seen < new.first_seen,
                    "trial {trial}: {vm}: old on {} seen until {:?}, new on {} from {:?}",
                    old.host,
                    old.last_seen,
                    new.host,
                    new.first_seen
                );
            }
            assert_eq!(lab.double_starts(), 0, "trial {trial}: a VM ran twice");
        }
    });
}

fn plinth_run(state: &Path, extra: &[&str], token: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_plinth"))
        .arg("run")
        .arg(repo().join("examples/lab"))
        .arg("--state")
        .arg(state)
        .arg("--token-file")
        .arg(token)
        .arg("--tls-dir")
        .arg(token.with_file_name("tls"))
        .args(["--until-converged", "--timeout", "180s"])
        .args(extra)
        .output()
        .expect("plinth runs")
}

#[test]
fn plinth_run_builds_the_lab_and_a_second_run_resumes() {
    on_testbed(3, "3s", |dir, _| {
        let state = dir.join("state.db");
        let token = dir.join("token");
        let first = plinth_run(&state, &[], &token);
        let text = String::from_utf8_lossy(&first.stdout);
        assert!(
            first.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&first.stderr)
        );
        for line in [
            "building 2 cluster(s) on 3 host(s)",
            "cluster apps Ready",
            "cluster ci Ready",
            "converged",
        ] {
            assert!(text.contains(line), "`{line}` in:\n{text}");
        }
        // The control-plane members of apps on three different hosts, seen in the output.
        let mut cp_hosts: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("✓ apps-cp-"))
            .filter_map(|l| l.split(" on ").nth(1)?.split(' ').next())
            .collect();
        cp_hosts.sort_unstable();
        cp_hosts.dedup();
        assert_eq!(cp_hosts.len(), 3, "{text}");
        let second = plinth_run(&state, &[], &token);
        let again = String::from_utf8_lossy(&second.stdout);
        assert!(second.status.success(), "{again}");
        assert!(again.contains("resuming 2 cluster(s)"), "{again}");
        assert!(
            !again.contains("→ create"),
            "nothing is created twice:\n{again}"
        );
    });
}

#[test]
fn each_cluster_has_its_own_network_across_hosts_and_after_a_live_migration() {
    // The agents outlive `plinth run` by far: the checks are made after it exits.
    on_testbed(3, "300s", |dir, bed| {
        let token = dir.join("token");
        let run = plinth_run(&dir.join("state.db"), &[], &token);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let before = nodes(bed, 3).await;
            assert_eq!(before.len(), 7, "every node VM has an address: {before:?}");
            // One subnet per cluster, in the node address space; and the two clusters run
            // the two node OS images examples/lab names, each with its own kernel.
            for n in &before {
                assert!(plinth_agent::NODE_SPACE.contains(n.address.addr()), "{n:?}");
                for m in &before {
                    let same_subnet = n.address.network() == m.address.network();
                    assert_eq!(same_subnet, n.cluster == m.cluster, "{n:?} / {m:?}");
                    assert_eq!(n.os == m.os, n.cluster == m.cluster, "{n:?} / {m:?}");
                }
                let release = if n.cluster == "apps" {
                    "Plinth node 1"
                } else {
                    "Plinth node 2"
                };
                assert!(
                    n.os.starts_with(release) && n.os.contains(&n.kernel),
                    "{n:?}"
                );
            }
            apart(&reach_all(bed, &before).await);

            // A worker of `apps` moves to another host by live migration, as a maintenance
            // or DRS moves it: it keeps its address and its network follows it.
            let moved = before
                .iter()
                .find(|n| n.vm.0.starts_with("apps-workers-"))
                .expect("a worker of apps")
                .clone();
            let to = moved.host % 3 + 1;
            let (token, tls) = (
                plinth_proto::Token::new(&bed.token().expect("token")),
                bed.tls().expect("tls"),
            );
            let (mut source, _) = connect_over(testbed_agent(moved.host), &token, Some(&tls)).await;
            let (mut target, _) = connect_over(testbed_agent(to), &token, Some(&tls)).await;
            let budget = std::time::Duration::from_secs(60);
            let receive = plinth_proto::Action::ReceiveVm {
                vm: moved.vm.clone(),
                listen: testbed_agent(to).ip(),
            };
            let plinth_proto::Outcome::Listening { addr } =
                command(&mut target, 1, receive, budget).await
            else {
                panic!("the receiver listens");
            };
            let send = plinth_proto::Action::SendVm {
                vm: moved.vm.clone(),
                to: addr,
            };
            let outcome = command(&mut source, 2, send, budget).await;
            assert!(
                matches!(outcome, plinth_proto::Outcome::Migrated(_)),
                "{outcome:?}"
            );
            let start = plinth_proto::Action::StartVm {
                vm: moved.vm.clone(),
            };
            assert_eq!(
                command(&mut target, 3, start, budget).await,
                plinth_proto::Outcome::Done
            );
            let after = nodes(bed, 3).await;
            let there = after
                .iter()
                .find(|n| n.vm == moved.vm)
                .expect("still a node");
            assert_eq!(
                (there.host, there.address),
                (to, moved.address),
                "{there:?}"
            );
            apart(&reach_all(bed, &after).await);
        });
    });
}

/// Every check between two nodes of one cluster was answered, in full, by the node asked
/// for; every check between clusters found nothing on the VM's segment (not a refusal, not
/// a check left unmade). Checks of both kinds were made on one host (separate bridges) and
/// across hosts (separate VXLAN ids).
fn apart(checks: &[(Node, Node, plinth_proto::network::Reach)]) {
    use plinth_proto::network::Reach;
    let mut seen = std::collections::BTreeSet::new();
    for (from, to, reach) in checks {
        let what = format!(
            "{} ({} on h{}) → {} ({} on h{} at {})",
            from.vm, from.cluster, from.host, to.vm, to.cluster, to.host, to.address
        );
        let same = from.cluster == to.cluster;
        if same {
            assert_eq!(
                reach,
                &Reach::Answered {
                    node: to.node.clone()
                },
                "{what}"
            );
        } else {
            assert!(
                matches!(reach, Reach::Unreachable { .. }),
                "{what}: {reach:?}"
            );
        }
        seen.insert((same, from.host == to.host));
    }
    assert_eq!(
        seen.len(),
        4,
        "checks within and between clusters, on one host and across: {seen:?}"
    );
}

/// `plinth calibrate` on two testbed hosts writes a Calibration of what it measured; an
/// Environment that names it has its timings replaced (`validate` says so) and the
/// comparison's time to add a node follows the measured clone and boot.
#[test]
fn plinth_calibrate_measures_the_testbed_and_the_comparison_takes_its_timings() {
    on_testbed(2, "60s", |dir, _| {
        let lab = dir.join("lab");
        std::fs::create_dir(&lab).expect("mkdir");
        for f in [
            "clusters.yaml",
            "environment.yaml",
            "inventory.yaml",
            "scenario.yaml",
        ] {
            std::fs::copy(repo().join("examples/lab").join(f), lab.join(f)).expect("copy");
        }
        // Written beside the lab, not in it: a directory's every document is input.
        let calibration = dir.join("calibration.yaml");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo().join("target"), Into::into);
        let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .arg("calibrate")
            .arg("--agents")
            .arg(dir.join("agents"))
            .args(["--boots", "3", "--migrate", "128,256", "-o"])
            .arg(&calibration)
            .arg("--guest-agent")
            .arg(target.join("x86_64-unknown-linux-gnu/release/plinth-guest"))
            .output()
            .expect("plinth calibrate runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        for line in [
            "boot 3/3 on h1",
            "cpu kernel:",
            "memory kernel:",
            "migration of a 256 MiB guest h1 → h2",
            "HA failover by phase",
            "tcg on h1, h2",
        ] {
            assert!(err.contains(line), "`{line}` in:\n{err}");
        }
        // Every measured field is there; `plinth validate` below shows the file loads.
        let text = std::fs::read_to_string(&calibration).expect("written");
        for key in [
            "Calibration",
            "tcg",
            "vmClone",
            "vmBoot",
            "vmBootP95",
            "migration",
            "switchover",
            "fenceLatency",
            "overhead",
        ] {
            assert!(text.contains(key), "`{key}` in:\n{text}");
        }
        let again = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["calibrate", "--agents"])
            .arg(dir.join("agents"))
            .arg("-o")
            .arg(&calibration)
            .output()
            .expect("runs");
        assert_eq!(
            again.status.code(),
            Some(2),
            "an existing file is not replaced without --force"
        );

        let agility = |lab: &Path| -> f64 {
            let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
                .arg("compare")
                .arg(lab)
                .args([
                    "-o",
                    "json",
                    "--no-sweep",
                    "--seeds",
                    "2",
                    "--duration",
                    "1d",
                ])
                .output()
                .expect("plinth compare runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            report["dimensions"]
                .as_array()
                .and_then(|d| d.iter().find(|d| d["key"] == "agility"))
                .and_then(|d| d["virtualized"]["mean"].as_f64())
                .expect("agility")
        };
        let declared = agility(&lab);
        std::fs::copy(&calibration, lab.join("calibration.yaml")).expect("copy");
        let env = lab.join("environment.yaml");
        let text = std::fs::read_to_string(&env).expect("read");
        let named = text.replacen("spec:\n", "spec:\n  calibration: calibration.yaml\n", 1);
        std::fs::write(&env, named).expect("write");
        let validate = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .arg("validate")
            .arg(&lab)
            .output()
            .expect("plinth validate runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&validate.stdout),
            String::from_utf8_lossy(&validate.stderr)
        );
        assert!(validate.status.success(), "{said}");
        assert!(
            said.contains(
                "Calibration `measured` (tcg) replaces the virtualized Environment's vmClone 1s"
            ),
            "{said}"
        );
        let measured = agility(&lab);
        // The lab declares 1 s to clone and 10 s to boot; a TCG boot here takes 2-4 s.
        assert!(
            measured < declared,
            "{measured} h with the Calibration, {declared} h without"
        );
    });
}

/// `plinth VERB ARGS... --server URL --token-file TOKEN`: (exit code, stdout, stderr).
fn against(url: &str, token: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .args(["--server", url, "--token-file"])
        .arg(token)
        .current_dir(repo())
        .output()
        .expect("plinth runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn plinth_serve_builds_the_lab_on_the_testbed_as_the_readme_says() {
    use std::io::{BufRead, BufReader};
    on_testbed(3, "3s", |dir, _| {
        let data = dir.join("serve");
        let mut server = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .arg("--agents")
            .arg(dir.join("agents"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("plinth serve starts");
        let mut first = String::new();
        BufReader::new(server.stdout.take().expect("stdout"))
            .read_line(&mut first)
            .expect("a first line");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("its URL")
            .trim_end_matches(';')
            .to_owned();
        let token = data.join("admin.token");
        let outcome = std::panic::catch_unwind(|| {
            let (code, out, err) = against(&url, &token, &["apply", "-f", "examples/lab"]);
            assert_eq!(code, 0, "{out}{err}");
            let (code, out, err) = against(
                &url,
                &token,
                &[
                    "wait",
                    "clusters",
                    "--for",
                    "condition=Ready",
                    "--timeout",
                    "240s",
                ],
            );
            assert_eq!(code, 0, "{out}{err}");
            let (_, clusters, _) = against(&url, &token, &["get", "clusters"]);
            assert_eq!(
                clusters.lines().filter(|l| l.contains(" True ")).count(),
                2,
                "{clusters}"
            );
            // A real node VM's serial console through the service: the guest agent's line.
            let (code, console, err) = against(&url, &token, &["logs", "apps-cp-0"]);
            assert_eq!(code, 0, "{err}");
            assert!(
                console.contains("plinth-guest: node apps-cp-0"),
                "{console}"
            );
        });
        let _ = server.kill();
        let _ = server.wait();
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
}
