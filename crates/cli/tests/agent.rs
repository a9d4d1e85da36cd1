//! `plinth agent` end to end: real QEMU VMs under TCG booted from the image `scripts/image`
//! builds, driven over plinth-proto as the control plane will.

mod agent_support;

use std::time::Duration;

use agent_support::{
    Agent, alive, command, connect, console, free_addr, image, kill_pid, node_spec, wait_inventory,
};
use plinth_proto::guest::{UserData, checksum};
use plinth_proto::{Action, CommandError, Outcome, VmName, VmState};

const BOOT: Duration = Duration::from_secs(90);

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn a_linked_clone_boots_to_ready_with_its_seed_survives_an_agent_restart_and_stops_starts_deletes()
{
    let image = image().to_path_buf();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("h1");
    let addr = free_addr();
    let args = [
        "--image",
        image.to_str().expect("utf-8"),
        "--accel",
        "tcg",
        "--self-fence-timeout",
        "120s",
    ];
    let mut agent = Agent::start(&state, addr, &args);
    let vm = VmName("vm-a".into());
    let spec = node_spec("vm-a", "node-a");
    rt().block_on(async {
        let (mut conn, inv) = connect(addr, &agent.token).await;
        assert!(inv.vms.is_empty());
        let boot_id = inv.boot_id;

        assert_eq!(
            command(&mut conn, 1, Action::CreateVm(spec.clone()), BOOT).await,
            Outcome::Done
        );
        let disk = state.join("storage/vms/vm-a.qcow2");
        let info = std::process::Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&disk)
            .output()
            .expect("qemu-img info");
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("json");
        assert_eq!(
            info["backing-filename"],
            image.join("base.qcow2").to_str().expect("utf-8"),
            "a linked clone of the base"
        );
        // The same VM again is a no-op (its first answer may have been lost); another VM
        // of the same name is refused, not made.
        assert_eq!(
            command(&mut conn, 2, Action::CreateVm(spec.clone()), BOOT).await,
            Outcome::Done
        );
        let mut other = spec.clone();
        other.memory_mib += 64;
        assert!(matches!(
            command(&mut conn, 1_000, Action::CreateVm(other), BOOT).await,
            Outcome::Failed {
                error: CommandError::Refused { .. }
            }
        ));

        assert_eq!(
            command(&mut conn, 3, Action::StartVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done
        );
        let inv =
            wait_inventory(&mut conn, BOOT, |i| i.vms.iter().any(|v| v.guest.is_some())).await;
        let report = &inv.vms[0];
        let guest = report.guest.clone().expect("guest status");
        let payload = UserData::for_node(&spec.bootstrap)
            .to_document()
            .expect("document");
        assert_eq!(guest.node, "node-a", "node name from the NoCloud meta-data");
        assert_eq!(guest.cluster, "lab");
        assert_eq!(
            guest.payload_sha256,
            checksum(&payload),
            "the bootstrap payload arrived intact"
        );
        assert_eq!(guest.payload_exit, 0);
        assert!(guest.ready);
        let pid = report.pid.expect("a QEMU pid");
        assert!(alive(pid));
        // Its serial console, as `plinth logs` reads it: the guest agent's line is there,
        // and a read from its end brings nothing new.
        let chunk = console(&mut conn, &vm, 0).await;
        assert!(
            chunk.text.contains("plinth-guest: node node-a"),
            "{}",
            chunk.text
        );
        let rest = console(&mut conn, &vm, chunk.next).await;
        assert!(rest.text.is_empty() || rest.from == chunk.next, "{rest:?}");
        drop(conn);

        // The agent dies; its VM does not. A new agent re-adopts the same process.
        agent.kill();
        assert!(alive(pid), "QEMU outlives its agent");
        agent = Agent::start(&state, addr, &args);
        let (mut conn, _) = connect(addr, &agent.token).await;
        let inv = wait_inventory(&mut conn, BOOT, |i| {
            i.vms
                .iter()
                .any(|v| v.guest.as_ref().is_some_and(|g| g.ready))
        })
        .await;
        assert_eq!(inv.vms[0].pid, Some(pid), "same QEMU process, re-adopted");
        assert_eq!(inv.vms[0].state, VmState::Running);
        assert_eq!(
            inv.boot_id, boot_id,
            "the host did not reboot: same boot id"
        );

        assert_eq!(
            command(&mut conn, 4, Action::StopVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done
        );
        assert!(!alive(pid), "stopped VM's process ended");
        let inv = wait_inventory(&mut conn, BOOT, |i| {
            i.vms.iter().all(|v| v.state == VmState::Stopped)
        })
        .await;
        assert!(inv.vms[0].generation > report.generation);

        assert_eq!(
            command(&mut conn, 5, Action::StartVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done
        );
        let inv = wait_inventory(&mut conn, BOOT, |i| i.vms.iter().any(|v| v.pid.is_some())).await;
        let second = inv.vms[0].pid.expect("pid");
        assert_ne!(second, pid);

        assert_eq!(
            command(&mut conn, 6, Action::DeleteVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done
        );
        assert!(!alive(second));
        assert!(!disk.exists(), "disk deleted");
        wait_inventory(&mut conn, BOOT, |i| i.vms.is_empty()).await;
        // An unknown VM is refused.
        assert!(matches!(
            command(&mut conn, 7, Action::StartVm { vm: vm.clone() }, BOOT).await,
            Outcome::Failed {
                error: CommandError::Refused { .. }
            }
        ));
    });
}

#[test]
fn without_contact_the_agent_kills_its_vms_after_the_self_fence_timeout() {
    let image = image().to_path_buf();
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = free_addr();
    // `auto`: the agent boots the image under KVM once and falls back to TCG here.
    let agent = Agent::start(
        &dir.path().join("h1"),
        addr,
        &[
            "--image",
            image.to_str().expect("utf-8"),
            "--accel",
            "auto",
            "--self-fence-timeout",
            "6s",
        ],
    );
    rt().block_on(async {
        let (mut conn, _) = connect(addr, &agent.token).await;
        let vm = VmName("vm-f".into());
        assert_eq!(
            command(
                &mut conn,
                1,
                Action::CreateVm(node_spec("vm-f", "node-f")),
                BOOT
            )
            .await,
            Outcome::Done
        );
        assert_eq!(
            command(&mut conn, 2, Action::StartVm { vm }, BOOT).await,
            Outcome::Done
        );
        let inv = wait_inventory(&mut conn, BOOT, |i| i.vms.iter().any(|v| v.pid.is_some())).await;
        let pid = inv.vms[0].pid.expect("pid");
        drop(conn);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(alive(pid), "still running well before the timeout");
        tokio::time::sleep(Duration::from_secs(8)).await;
        let fenced = !alive(pid);
        if !fenced {
            kill_pid(pid);
        }
        assert!(fenced, "the VM must be dead after 6 s without contact");
    });
    let log = agent.log();
    assert!(log.contains("self-fencing"), "{log}");
    assert!(
        log.contains("TCG"),
        "the accelerator decision is logged: {log}"
    );
}

#[test]
fn a_running_vm_live_migrates_to_another_host_and_a_failed_migration_leaves_it_where_it_ran() {
    let image = image().to_path_buf();
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = dir.path().join("storage");
    let args = [
        "--image",
        image.to_str().expect("utf-8"),
        "--accel",
        "tcg",
        "--storage",
        storage.to_str().expect("utf-8"),
        "--self-fence-timeout",
        "120s",
    ];
    let (addr_a, addr_b) = (free_addr(), free_addr());
    let a = Agent::start(&dir.path().join("a"), addr_a, &args);
    let mut b = Agent::start(&dir.path().join("b"), addr_b, &args);
    let vm = VmName("vm-m".into());
    rt().block_on(async {
        let (mut on_a, _) = connect(addr_a, &a.token).await;
        let (mut on_b, _) = connect(addr_b, &b.token).await;
        let spec = node_spec("vm-m", "node-m");
        assert_eq!(
            command(&mut on_a, 1, Action::CreateVm(spec), BOOT).await,
            Outcome::Done
        );
        assert_eq!(
            command(&mut on_a, 2, Action::StartVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done
        );
        let inv = wait_inventory(&mut on_a, BOOT, |i| i.vms.iter().any(|v| v.pid.is_some())).await;
        let source_pid = inv.vms[0].pid.expect("pid");
        assert!(
            console(&mut on_a, &vm, 0)
                .await
                .text
                .contains("plinth: init"),
            "the source booted the guest"
        );

        // No receiver where it is sent: refused, and the VM runs on as it did.
        let nowhere = Action::SendVm {
            vm: vm.clone(),
            to: free_addr(),
        };
        assert!(matches!(
            command(&mut on_a, 3, nowhere, BOOT).await,
            Outcome::Failed {
                error: CommandError::Refused { .. }
            }
        ));
        let inv = wait_inventory(&mut on_a, BOOT, |i| i.vms.len() == 1).await;
        assert_eq!(inv.vms[0].state, VmState::Running);
        assert_eq!(inv.vms[0].pid, Some(source_pid));

        // A receiver no sender comes to ends at its command's deadline, and is forgotten.
        let receive = Action::ReceiveVm {
            vm: vm.clone(),
            listen: addr_b.ip(),
        };
        let Outcome::Listening { .. } =
            command(&mut on_b, 4, receive.clone(), Duration::from_secs(3)).await
        else {
            panic!("the receiver listens");
        };
        wait_inventory(&mut on_b, BOOT, |i| i.vms.is_empty()).await;

        // A receiver whose agent restarts is ended by the new agent (its command died with
        // the old one), not taken for a running VM.
        let Outcome::Listening { .. } = command(&mut on_b, 40, receive.clone(), BOOT).await else {
            panic!("the receiver listens");
        };
        let inv = wait_inventory(&mut on_b, BOOT, |i| i.vms.len() == 1).await;
        assert_eq!(inv.vms[0].state, VmState::Incoming);
        let receiver = inv.vms[0].pid.expect("the receiver's pid");
        drop(on_b);
        b.kill();
        b = Agent::start(&dir.path().join("b"), addr_b, &args);
        let (again, inv) = connect(addr_b, &b.token).await;
        assert!(inv.vms.is_empty(), "{inv:?}");
        assert!(!alive(receiver), "the orphaned receiver was ended");
        on_b = again;

        // The migration: the receiver listens, the source sends, the target runs it.
        let Outcome::Listening { addr } = command(&mut on_b, 5, receive, BOOT).await else {
            panic!("the receiver listens");
        };
        assert_eq!(addr.ip(), addr_b.ip(), "on the target's own address");
        let send = Action::SendVm {
            vm: vm.clone(),
            to: addr,
        };
        let Outcome::Migrated(stats) = command(&mut on_a, 6, send, BOOT).await else {
            panic!("migrated");
        };
        assert!(
            stats.total_ms > 0 && stats.transferred_bytes > 0,
            "{stats:?}"
        );
        assert!(!alive(source_pid), "the source's process ended");
        assert_eq!(
            command(&mut on_b, 7, Action::StartVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done,
            "Ready on the target"
        );
        let inv = wait_inventory(&mut on_b, BOOT, |i| {
            i.vms
                .iter()
                .any(|v| v.guest.as_ref().is_some_and(|g| g.ready))
        })
        .await;
        assert_eq!(inv.vms[0].state, VmState::Running);
        let target_pid = inv.vms[0].pid.expect("pid");
        assert!(alive(target_pid));
        wait_inventory(&mut on_a, BOOT, |i| i.vms.is_empty()).await;
        // The guest went on where it was: the target never booted it.
        let target_console = console(&mut on_b, &vm, 0).await.text;
        assert!(!target_console.contains("plinth: init"), "{target_console}");
        eprintln!("live migration of a 192 MiB guest under TCG: {stats}");
        assert_eq!(
            command(&mut on_b, 8, Action::DeleteVm { vm: vm.clone() }, BOOT).await,
            Outcome::Done
        );
    });
}
