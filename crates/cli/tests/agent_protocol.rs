//! `plinth agent --simulated`: the protocol's refusals and the simulated agent's faults,
//! with no QEMU.

mod agent_support;

use std::time::Duration;

use agent_support::{Agent, command, connect, free_addr, node_spec, wait_inventory};
use plinth_proto::{
    Action, AdminRequest, Connection, FromAgent, Outcome, ToAgent, Token, VmName, VmState,
};
use tokio::net::TcpStream;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn simulated(dir: &std::path::Path, admin: std::net::SocketAddr) -> Agent {
    Agent::start(
        dir,
        free_addr(),
        &[
            "--simulated",
            "--boot-time",
            "200ms",
            "--admin-listen",
            &admin.to_string(),
            "--self-fence-timeout",
            "30s",
        ],
    )
}

async fn refused_after(agent: &Agent, send: impl AsyncFnOnce(&mut Connection<TcpStream>)) {
    let stream = TcpStream::connect(agent.addr).await.expect("connects");
    let mut conn = Connection::new(stream, agent.token.clone());
    assert!(matches!(
        conn.recv::<FromAgent>().await,
        Ok(FromAgent::Inventory(_))
    ));
    send(&mut conn).await;
    loop {
        match conn.recv::<FromAgent>().await {
            Ok(FromAgent::Refused { .. }) => break,
            Ok(FromAgent::Heartbeat(_) | FromAgent::Inventory(_)) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert!(
        conn.recv::<FromAgent>().await.is_err(),
        "the agent closes the connection"
    );
}

#[test]
fn malformed_and_unauthenticated_frames_are_refused_and_the_agent_keeps_serving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = simulated(dir.path(), free_addr());
    rt().block_on(async {
        let _ = connect(agent.addr, &agent.token).await;
        refused_after(&agent, async |c| {
            c.send_raw(b"{ not json".to_vec()).await.expect("sends")
        })
        .await;
        refused_after(&agent, async |c| {
            c.send_raw(vec![0xff; 3]).await.expect("sends")
        })
        .await;
        refused_after(&agent, async |c| {
            c.send_raw(br#"{"version":2,"token":"guess","body":{"type":"heartbeat"}}"#.to_vec())
                .await
                .expect("sends")
        })
        .await;
        refused_after(&agent, async |c| {
            c.send_raw(
                br#"{"version":2,"token":"test-token","body":{"type":"formatDisk"}}"#.to_vec(),
            )
            .await
            .expect("sends")
        })
        .await;
        refused_after(&agent, async |c| {
            c.send_raw(
                br#"{"version":9,"token":"test-token","body":{"type":"heartbeat"}}"#.to_vec(),
            )
            .await
            .expect("sends")
        })
        .await;
        // Faults are not taken on the control-plane listener.
        let (mut conn, _) = connect(agent.addr, &agent.token).await;
        conn.send(&ToAgent::Admin(AdminRequest::Kill))
            .await
            .expect("sends");
        while !matches!(
            conn.recv::<FromAgent>().await.expect("answers"),
            FromAgent::Refused { .. }
        ) {}
        // Still serving: a well-formed client gets work done.
        let (mut conn, _) = connect(agent.addr, &agent.token).await;
        let spec = node_spec("vm-1", "node-1");
        assert_eq!(
            command(&mut conn, 1, Action::CreateVm(spec), Duration::from_secs(5)).await,
            Outcome::Done
        );
    });
    let log = agent.log();
    assert!(
        log.contains("refused a frame"),
        "refusals are logged: {log}"
    );
}

async fn fault(admin: std::net::SocketAddr, request: AdminRequest) {
    let stream = TcpStream::connect(admin).await.expect("admin connects");
    let mut conn = Connection::new(stream, Token::new(agent_support::TOKEN));
    conn.send(&ToAgent::Admin(request)).await.expect("sends");
    assert!(matches!(
        conn.recv::<FromAgent>().await,
        Ok(FromAgent::Heartbeat(_))
    ));
}

#[test]
fn a_simulated_host_can_be_cut_off_and_killed_on_demand() {
    let dir = tempfile::tempdir().expect("tempdir");
    let admin = free_addr();
    let agent = simulated(dir.path(), admin);
    rt().block_on(async {
        let (mut conn, inv) = connect(agent.addr, &agent.token).await;
        let first_life = inv.boot_id;
        let vm = VmName("vm-1".into());
        let spec = node_spec("vm-1", "node-1");
        assert_eq!(
            command(&mut conn, 1, Action::CreateVm(spec), Duration::from_secs(5)).await,
            Outcome::Done
        );
        assert_eq!(
            command(&mut conn, 2, Action::StartVm { vm }, Duration::from_secs(5)).await,
            Outcome::Done
        );
        let inv = wait_inventory(&mut conn, Duration::from_secs(5), |i| {
            i.vms
                .iter()
                .any(|v| v.guest.as_ref().is_some_and(|g| g.ready))
        })
        .await;
        assert_eq!(
            inv.vms[0].guest.as_ref().map(|g| g.node.as_str()),
            Some("node-1")
        );

        // Cut off: the connection drops, no new one is answered, the VM keeps running.
        fault(admin, AdminRequest::CutOff).await;
        assert!(conn.recv::<FromAgent>().await.is_err() || conn.recv::<FromAgent>().await.is_err());
        fault(admin, AdminRequest::Restore).await;
        let (mut conn, inv) = connect(agent.addr, &agent.token).await;
        assert_eq!(inv.boot_id, first_life, "a cut-off host did not reboot");
        assert_eq!(inv.vms[0].state, VmState::Running);

        // Killed: its VMs are lost and it comes back as a new life.
        fault(admin, AdminRequest::Kill).await;
        fault(admin, AdminRequest::Restore).await;
        let (_, inv) = connect(agent.addr, &agent.token).await;
        assert_ne!(
            inv.boot_id, first_life,
            "a crashed host comes back with a new boot id"
        );
        assert_eq!(inv.vms[0].state, VmState::Stopped);
        drop(conn.send(&ToAgent::Heartbeat).await);
    });
}
