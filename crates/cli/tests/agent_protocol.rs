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

/// The observations a driver gives within `ms`.
fn observed(driver: &mut plinth_qemu::QemuDriver, ms: u64) -> Vec<plinth_control::Observation> {
    let until = plinth_qemu::wall_clock().plus(ms);
    std::iter::from_fn(|| driver.poll(None, until).map(|(_, o)| o)).collect()
}

/// A control plane that was busy for longer than the detection timeout (a slow step, a
/// blocking call) first reads what its links received meanwhile: no host it heard is reported
/// silent, and a host that did fall silent is reported with the time it was last heard.
#[test]
fn a_busy_control_plane_does_not_take_its_own_pause_for_silent_hosts() {
    use plinth_control::Observation;
    use plinth_qemu::{DriverConfig, NoJournal, QemuDriver, wall_clock};

    let dir = tempfile::tempdir().expect("tempdir");
    let admin = free_addr();
    let agent = simulated(dir.path(), admin);
    let config = DriverConfig {
        agents: [("h1".to_owned(), agent.addr)].into(),
        token: agent.token.clone(),
        tls: None,
        heartbeat: Duration::from_millis(200),
        pools: plinth_qemu::bootstrap::Pools::default(),
    };
    let mut driver = QemuDriver::start(
        config,
        b"secret",
        Box::new(plinth_control::store::MemoryStore::default()),
        Box::new(NoJournal),
    )
    .expect("driver starts");
    let first = observed(&mut driver, 5_000);
    assert!(
        first
            .iter()
            .any(|o| matches!(o, Observation::Heartbeat { .. })),
        "h1 heard: {first:?}"
    );

    // Busy for 7 heartbeat intervals: the agent kept beating, so nothing is missed.
    std::thread::sleep(Duration::from_millis(1_400));
    let after_pause = observed(&mut driver, 500);
    assert!(
        !after_pause
            .iter()
            .any(|o| matches!(o, Observation::HeartbeatMissed { .. })),
        "the control plane's pause is not the host's silence: {after_pause:?}"
    );

    // Cut off, then busy again: the silence is reported, dated from the last frame heard.
    rt().block_on(fault(admin, AdminRequest::CutOff));
    let cut_at = wall_clock();
    std::thread::sleep(Duration::from_millis(1_400));
    let missed = observed(&mut driver, 3_000)
        .into_iter()
        .find_map(|o| match o {
            Observation::HeartbeatMissed { last_heard, .. } => Some(last_heard),
            _ => None,
        })
        .expect("the cut-off host's silence is reported");
    assert!(
        missed <= cut_at,
        "last heard {missed}, cut at {cut_at}: the silence is dated from the host, not from when the control plane looked"
    );
}

/// `plinth certs ARGS`: exit code and standard error.
fn certs(args: &[&std::ffi::OsStr]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .arg("certs")
        .args(args)
        .output()
        .expect("plinth certs runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A simulated agent for host h1 serving mutual TLS with the certificates `plinth certs`
/// issued in `tls`.
fn tls_agent(state: &std::path::Path, tls: &std::path::Path) -> Agent {
    let file = |f: &str| tls.join("agents").join(f).display().to_string();
    let ca = tls.join("ca.crt").display().to_string();
    Agent::start(
        state,
        free_addr(),
        &[
            "--simulated",
            "--tls-cert",
            &file("h1.crt"),
            "--tls-key",
            &file("h1.key"),
            "--tls-client-ca",
            &ca,
        ],
    )
}

/// A TLS client of `addr` that trusts `ca` and presents `client` (certificate, key), if
/// any, expecting a certificate for `name`: the first frame it receives with `token`.
async fn first_frame_over_tls(
    addr: std::net::SocketAddr,
    ca: &std::path::Path,
    client: Option<(std::path::PathBuf, std::path::PathBuf)>,
    name: std::net::IpAddr,
    token: &Token,
) -> Result<Connection<plinth_tls::client::TlsStream<TcpStream>>, String> {
    use std::sync::Arc;
    let config = match client {
        Some((cert, key)) => plinth_tls::LinkFiles {
            ca: ca.to_owned(),
            cert,
            key,
        }
        .control_plane_config()
        .expect("client config"),
        None => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in plinth_tls::read_chain(ca).expect("ca") {
                roots.add(cert).expect("root");
            }
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        }
    };
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let stream = plinth_tls::TlsConnector::from(config)
        .connect(plinth_tls::ServerName::IpAddress(name.into()), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut conn = Connection::new(stream, token.clone());
    match tokio::time::timeout(Duration::from_secs(5), conn.recv::<FromAgent>()).await {
        Ok(Ok(FromAgent::Inventory(_))) => Ok(conn),
        Ok(Ok(other)) => Err(format!("unexpected first frame {other:?}")),
        Ok(Err(e)) => Err(format!("refused: {e}")),
        Err(_) => Err("no frame within 5 s".into()),
    }
}

/// Runs a driver link to `addr` with the control plane's certificate of `dir` for 2 s:
/// how many times it connected, and how many inventories it passed on.
async fn link_events(
    addr: std::net::SocketAddr,
    dir: &std::path::Path,
    token: &Token,
) -> (usize, usize) {
    use plinth_qemu::link::{LinkConfig, LinkEvent, run};
    let config = LinkConfig {
        host: "h1".into(),
        addr,
        token: token.clone(),
        heartbeat: Duration::from_millis(200),
        tls: Some(
            plinth_tls::LinkFiles::control_plane(dir)
                .control_plane_config()
                .expect("client config"),
        ),
    };
    let (outbox, rx) = tokio::sync::mpsc::unbounded_channel();
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let link = tokio::spawn(run(config, rx, events_tx));
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(outbox);
    link.abort();
    let (mut connected, mut inventories) = (0, 0);
    while let Ok((_, _, event)) = events.try_recv() {
        match event {
            LinkEvent::Connected => connected += 1,
            LinkEvent::Message(FromAgent::Inventory(_)) => inventories += 1,
            _ => {}
        }
    }
    (connected, inventories)
}

#[test]
fn with_tls_an_agent_serves_only_a_control_plane_its_authority_vouches_for_and_with_the_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, other) = (dir.path().join("tls"), dir.path().join("other"));
    let ok = certs(&[
        tls.as_os_str(),
        "--control-plane".as_ref(),
        "--agent".as_ref(),
        "h1=127.0.0.1".as_ref(),
    ]);
    assert_eq!(ok.0, 0, "{}", ok.1);
    let ok = certs(&[other.as_os_str(), "--control-plane".as_ref()]);
    assert_eq!(ok.0, 0, "{}", ok.1);
    // Bad input names the flag and the fix.
    let (code, err) = certs(&[tls.as_os_str(), "--agent".as_ref(), "h1".as_ref()]);
    assert_eq!(code, 2);
    assert!(err.contains("HOST=IP"), "{err}");
    let (code, err) = certs(&[tls.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("--control-plane, --agent"), "{err}");

    let agent = tls_agent(&dir.path().join("h1"), &tls);
    let ours = Some((tls.join("control-plane.crt"), tls.join("control-plane.key")));
    let theirs = Some((
        other.join("control-plane.crt"),
        other.join("control-plane.key"),
    ));
    let (ca, localhost) = (tls.join("ca.crt"), std::net::IpAddr::from([127, 0, 0, 1]));
    rt().block_on(async {
        // The control plane with its certificate and the token: served.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match first_frame_over_tls(agent.addr, &ca, ours.clone(), localhost, &agent.token).await
            {
                Ok(conn) => break conn,
                Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let spec = node_spec("vm-1", "node-1");
        assert_eq!(
            command(&mut conn, 1, Action::CreateVm(spec), Duration::from_secs(5)).await,
            Outcome::Done
        );

        // Plain TCP, even with the token: no answer but a closed connection.
        let plain = TcpStream::connect(agent.addr).await.expect("connects");
        let mut plain = Connection::new(plain, agent.token.clone());
        plain.send(&ToAgent::Heartbeat).await.expect("sends");
        let answer = tokio::time::timeout(Duration::from_secs(5), plain.recv::<FromAgent>()).await;
        assert!(matches!(answer, Ok(Err(_))), "{answer:?}");

        // TLS without a client certificate, or with another authority's: refused.
        for (client, what) in [
            (None, "no certificate"),
            (theirs.clone(), "another authority's"),
        ] {
            let refused =
                first_frame_over_tls(agent.addr, &ca, client, localhost, &agent.token).await;
            assert!(refused.is_err(), "{what}: served");
        }

        // The right certificate with a wrong token: the frame is refused.
        let mut wrong =
            first_frame_over_tls(agent.addr, &ca, ours.clone(), localhost, &agent.token)
                .await
                .expect("the certificate is right");
        let guess = format!(
            r#"{{"version":{},"token":"guess","body":{{"type":"heartbeat"}}}}"#,
            plinth_proto::PROTOCOL_VERSION
        );
        wrong.send_raw(guess.into_bytes()).await.expect("sends");
        loop {
            match wrong.recv::<FromAgent>().await {
                Ok(FromAgent::Refused { .. }) => break,
                Ok(FromAgent::Heartbeat(_) | FromAgent::Inventory(_)) => {}
                other => panic!("expected a refusal, got {other:?}"),
            }
        }

        // The control plane refuses an agent whose certificate another authority issued,
        // or that is not for the address it dialled.
        let elsewhere = std::net::IpAddr::from([10, 9, 9, 9]);
        for (trusted, client, name) in [
            (other.join("ca.crt"), theirs.clone(), localhost),
            (ca.clone(), ours.clone(), elsewhere),
        ] {
            let refused =
                first_frame_over_tls(agent.addr, &trusted, client, name, &agent.token).await;
            assert!(
                matches!(&refused, Err(e) if e.starts_with("handshake")),
                "trusting {} for {name}: {:?}",
                trusted.display(),
                refused.err()
            );
        }

        // The driver's link with another authority's certificate never counts as connected
        // (TLS 1.3: the agent refuses it after the client's side of the handshake) and
        // retries at its pace; with its own, it connects and hands over the inventory.
        assert_eq!(link_events(agent.addr, &other, &agent.token).await, (0, 0));
        let (connected, inventories) = link_events(agent.addr, &tls, &agent.token).await;
        assert_eq!(connected, 1);
        assert!(inventories >= 1);

        // Still serving the control plane.
        let mut conn = first_frame_over_tls(agent.addr, &ca, ours, localhost, &agent.token)
            .await
            .expect("served again");
        conn.send(&ToAgent::Heartbeat).await.expect("sends");
    });
    let log = agent.log();
    assert!(
        log.contains("refused a peer: TLS handshake failed"),
        "{log}"
    );
}

#[test]
fn a_control_plane_without_its_certificates_says_how_to_issue_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, agent_support::TOKEN).expect("token");
    let missing = dir.path().join("no-certs");
    let plinth = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(args)
            .output()
            .expect("plinth runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let lab = agent_support::repo().join("examples/lab");
    let (code, err) = plinth(&[
        "run".as_ref(),
        lab.as_os_str(),
        "--token-file".as_ref(),
        token.as_os_str(),
        "--tls-dir".as_ref(),
        missing.as_os_str(),
        "--state".as_ref(),
        dir.path().join("state.db").as_os_str(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("no-certs") && err.contains("plinth certs") && err.contains("--plaintext"),
        "{err}"
    );

    let agents = dir.path().join("agents");
    std::fs::write(&agents, "token token\ntls no-certs\nh1 127.0.0.1:1\n").expect("agents");
    let (code, err) = plinth(&[
        "serve".as_ref(),
        "--agents".as_ref(),
        agents.as_os_str(),
        "--data-dir".as_ref(),
        dir.path().join("data").as_os_str(),
        "--listen".as_ref(),
        free_addr().to_string().as_ref(),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("line 2") && err.contains("plinth certs"),
        "{err}"
    );
}

#[test]
fn plinth_run_says_when_an_agent_refuses_its_certificate_rather_than_waiting_silently() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (tls, other) = (dir.path().join("tls"), dir.path().join("other"));
    // The agent's certificate from one authority, the control plane's from another.
    let (code, err) = certs(&[tls.as_os_str(), "--agent".as_ref(), "h1=127.0.0.1".as_ref()]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = certs(&[other.as_os_str(), "--control-plane".as_ref()]);
    assert_eq!(code, 0, "{err}");
    let agent = tls_agent(&dir.path().join("h1"), &tls);
    // The lab estate, its h1 at this agent, h2 and h3 where nothing listens.
    let lab = dir.path().join("lab");
    std::fs::create_dir(&lab).expect("lab dir");
    for entry in std::fs::read_dir(agent_support::repo().join("examples/lab")).expect("lab") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path)
            .expect("a manifest")
            .replace("10.77.0.11:7700", &agent.addr.to_string())
            .replace("10.77.0.12:7700", &free_addr().to_string())
            .replace("10.77.0.13:7700", &free_addr().to_string());
        std::fs::write(lab.join(path.file_name().expect("name")), text).expect("write");
    }
    let token = dir.path().join("token");
    std::fs::write(&token, agent_support::TOKEN).expect("token");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .arg("run")
        .arg(&lab)
        .arg("--token-file")
        .arg(&token)
        .arg("--tls-dir")
        .arg(&other)
        .arg("--state")
        .arg(dir.path().join("state.db"))
        .args(["--until-converged", "--timeout", "4s"])
        .output()
        .expect("plinth run runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("does not serve this control plane") && err.contains("h1"),
        "the refusal is said: {err}"
    );
}

/// `plinth calibrate` on a simulated agent: a plan that cannot make a migration line is
/// refused before any host is touched; a measurement that fails (a simulated VM runs no
/// kernel) leaves none of its VMs behind; a host running another VM is refused.
#[test]
fn plinth_calibrate_refuses_what_it_cannot_measure_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = simulated(&dir.path().join("h1"), free_addr());
    let agents = dir.path().join("agents");
    std::fs::write(
        &agents,
        format!(
            "token {}\nh1 {}\n",
            agent.state.join("token").display(),
            agent.addr
        ),
    )
    .expect("agents file");
    let calibrate = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
            .arg("calibrate")
            .arg("--agents")
            .arg(&agents)
            .arg("--guest-agent")
            .arg(&agents)
            .args(["--boots", "1"])
            .args(extra)
            .output()
            .expect("plinth runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = calibrate(&["--migrate", "256,256"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("two different guest sizes"), "{err}");
    assert!(!err.contains("boot 1/1"), "refused before measuring: {err}");

    let (code, err) = calibrate(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("boot 1/1 on h1") && err.contains("runs no kernel"),
        "{err}"
    );
    let rt = rt();
    let (mut conn, _) = rt.block_on(connect(agent.addr, &agent.token));
    let left = rt.block_on(wait_inventory(&mut conn, Duration::from_secs(10), |_| true));
    assert!(left.vms.is_empty(), "left behind: {:?}", left.vms);

    let spec = node_spec("other", "other-node");
    assert!(matches!(
        rt.block_on(command(
            &mut conn,
            1,
            Action::CreateVm(spec),
            Duration::from_secs(5)
        )),
        Outcome::Done
    ));
    drop(conn);
    let (code, err) = calibrate(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("host h1 runs other"), "{err}");
}
