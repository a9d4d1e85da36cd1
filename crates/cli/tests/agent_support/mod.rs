//! Starts real `plinth agent` processes and talks plinth-proto to them, as a control plane
//! would.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use plinth_model::{Estate, Input, SourceFile, load};
use plinth_proto::guest::Bootstrap;
use plinth_proto::{
    Action, Command as Cmd, CommandId, Connection, ConsoleChunk, FromAgent, Inventory, Outcome,
    ToAgent, Token, VmName, VmSpec,
};
use plinth_qemu::lab::Testbed;
use plinth_qemu::link::{AgentConnection, open};
use plinth_tls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite};

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The node images (`plinth-node`, then `plinth-node-2`), built once per test binary by the
/// project's own `scripts/image`.
pub(crate) fn images() -> &'static [PathBuf] {
    static IMAGES: OnceLock<Vec<PathBuf>> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let out = Command::new(repo().join("scripts/image"))
            .env("PLINTH", env!("CARGO_BIN_EXE_plinth"))
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/image runs");
        assert!(out.status.success(), "scripts/image failed");
        let dirs: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(PathBuf::from)
            .collect();
        assert_eq!(dirs.len(), 2, "two images: {dirs:?}");
        dirs
    })
}

/// The `plinth-node` image.
pub(crate) fn image() -> &'static Path {
    &images()[0]
}

/// The testbed's names are global (namespaces plinth-h*, bridge plinth-br0): the tests of
/// one binary take turns.
static TESTBED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `body` on `scripts/testbed up HOSTS` in a fresh directory (its agents self-fence
/// after `self_fence`), with the directory and the testbed, and takes the testbed down
/// whatever happens; a panic of `body` is raised again after.
pub(crate) fn on_testbed(hosts: u32, self_fence: &str, body: impl FnOnce(&Path, &Testbed)) {
    let _turn = TESTBED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    let bed = testbed(dir.path(), self_fence);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bed.run(&["up", &hosts.to_string()])
            .unwrap_or_else(|e| panic!("testbed up {hosts}: {e}"));
        body(dir.path(), &bed);
    }));
    bed.run(&["down"]).expect("testbed down");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// `scripts/testbed` with this build's `plinth`, the node image, and agents that self-fence
/// after `self_fence` (examples/lab/environment.yaml declares 3s).
pub(crate) fn testbed(dir: &Path, self_fence: &str) -> Testbed {
    Testbed {
        script: repo().join("scripts/testbed"),
        dir: dir.to_owned(),
        env: vec![
            ("PLINTH".into(), env!("CARGO_BIN_EXE_plinth").into()),
            (
                "PLINTH_IMAGE".into(),
                images()
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            ("PLINTH_SELF_FENCE_TIMEOUT".into(), self_fence.into()),
        ],
    }
}

/// examples/lab, with a fourth host (`h4`, `testbed up 4`) when `four`, and `environment`
/// (an Environment document) in place of the lab's when given.
pub(crate) fn lab_estate(four: bool, environment: Option<&str>) -> Estate {
    let dir = repo().join("examples/lab");
    let mut input = Input::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/lab")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| environment.is_none() || !p.ends_with("environment.yaml"))
        .collect();
    files.sort();
    for f in files {
        let mut text = std::fs::read_to_string(&f).expect("read");
        if four && f.ends_with("inventory.yaml") {
            text.push_str(
                "    - name: h4\n      class: lab\n      rack: r1\n      agent: 10.77.0.14:7700\n",
            );
        }
        // Four hosts can keep room for one failure: the plan then puts all four in the
        // pool (a host the headroom rule does not need is left out of the design).
        if four && f.ends_with("scenario.yaml") {
            text = text.replace("hostFailuresToTolerate: 0", "hostFailuresToTolerate: 1");
        }
        input.add(SourceFile::new(f.display().to_string(), text));
    }
    if let Some(env) = environment {
        input.add(SourceFile::new("environment.yaml", env.to_owned()));
    }
    let loaded = load(&input);
    loaded
        .estate
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

/// A free local port.
pub(crate) fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("binds");
    l.local_addr().expect("has an address")
}

/// A running `plinth agent`, killed (the agent only) on drop.
pub(crate) struct Agent {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) token: Token,
    pub(crate) state: PathBuf,
    pub(crate) log: PathBuf,
}

pub(crate) const TOKEN: &str = "test-token";

impl Agent {
    /// Starts an agent on `state` (a directory that outlives restarts) with extra args.
    pub(crate) fn start(state: &Path, addr: SocketAddr, extra: &[&str]) -> Self {
        std::fs::create_dir_all(state).expect("state dir");
        let token = state.join("token");
        std::fs::write(&token, TOKEN).expect("token");
        let log = state.join("agent.log");
        let child = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["agent", "--host", "h1", "--listen", &addr.to_string()])
            .arg("--token-file")
            .arg(&token)
            .arg("--state-dir")
            .arg(state)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .expect("log"),
            )
            .spawn()
            .expect("plinth agent starts");
        Self {
            child,
            addr,
            token: Token::new(TOKEN),
            state: state.to_path_buf(),
            log,
        }
    }

    /// Kills the agent process abruptly (its QEMU processes live on).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The agent's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A control-plane connection.
pub(crate) type Conn = AgentConnection;

/// Connects over plain TCP (retrying while the agent starts) and returns the first inventory.
pub(crate) async fn connect(addr: SocketAddr, token: &Token) -> (Conn, Inventory) {
    connect_over(addr, token, None).await
}

/// Connects as the control plane does (`open`: TCP, then mutual TLS with `tls`, then the
/// agent's inventory), retrying while the agent starts.
pub(crate) async fn connect_over(
    addr: SocketAddr,
    token: &Token,
    tls: Option<&Arc<ClientConfig>>,
) -> (Conn, Inventory) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match open(addr, token, tls, Duration::from_secs(2)).await {
            Ok(opened) => return opened,
            Err(e) => assert!(Instant::now() < deadline, "no agent on {addr}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Sends a command with `budget` and waits for its completion, sending heartbeats meanwhile
/// (as a control plane does) so the agent does not self-fence.
pub(crate) async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    id: u64,
    action: Action,
    budget: Duration,
) -> Outcome {
    let mut outcomes = commands(conn, vec![(id, action)], budget).await;
    outcomes.remove(&id).expect("answered")
}

/// Sends several commands at once, each with `budget`, and waits for all their completions
/// (heartbeating meanwhile); the outcomes by id.
pub(crate) async fn commands<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Connection<S>,
    actions: Vec<(u64, Action)>,
    budget: Duration,
) -> std::collections::BTreeMap<u64, Outcome> {
    let mut waiting = std::collections::BTreeSet::new();
    for (id, action) in actions {
        let cmd = ToAgent::Command(Cmd {
            id: CommandId(id),
            deadline_unix_ms: unix_ms() + budget.as_millis() as u64,
            action,
        });
        conn.send(&cmd).await.expect("sends");
        waiting.insert(id);
    }
    let mut outcomes = std::collections::BTreeMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while !waiting.is_empty() {
        tokio::select! {
            msg = conn.recv::<FromAgent>() => {
                if let FromAgent::Completion(c) = msg.expect("agent answers")
                    && waiting.remove(&c.id.0)
                {
                    outcomes.insert(c.id.0, c.outcome);
                }
            }
            _ = tick.tick() => conn.send(&ToAgent::Heartbeat).await.expect("sends"),
        }
    }
    outcomes
}

/// Waits (heartbeating) for an inventory that satisfies `pred`.
pub(crate) async fn wait_inventory(
    conn: &mut Conn,
    within: Duration,
    pred: impl Fn(&Inventory) -> bool,
) -> Inventory {
    conn.send(&ToAgent::Resync).await.expect("sends");
    let deadline = tokio::time::Instant::now() + within;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            msg = conn.recv::<FromAgent>() => {
                if let FromAgent::Inventory(inv) = msg.expect("agent answers")
                    && pred(&inv)
                {
                    return inv;
                }
            }
            _ = tick.tick() => conn.send(&ToAgent::Heartbeat).await.expect("sends"),
            _ = tokio::time::sleep_until(deadline) => panic!("no such inventory within {within:?}"),
        }
    }
}

/// `vm`'s serial console from byte `from`, as `plinth logs` reads it.
pub(crate) async fn console(conn: &mut Conn, vm: &VmName, from: u64) -> ConsoleChunk {
    conn.send(&ToAgent::Console {
        vm: vm.clone(),
        from,
    })
    .await
    .expect("sends");
    loop {
        match conn.recv::<FromAgent>().await.expect("agent answers") {
            FromAgent::Console(chunk) => return chunk,
            FromAgent::NoConsole { reason, .. } => panic!("no console: {reason}"),
            _ => {}
        }
    }
}

/// A small node VM: 1 vCPU, 192 MiB.
pub(crate) fn node_spec(name: &str, node: &str) -> VmSpec {
    VmSpec {
        name: VmName(name.into()),
        vcpus: 1,
        memory_mib: 192,
        image: "plinth-node".into(),
        bootstrap: Bootstrap {
            node: node.into(),
            cluster: "lab".into(),
            kubernetes_version: "1.33.1".into(),
            join_config: "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n".into(),
        },
        network: None,
    }
}

/// Whether `pid` runs (a zombie does not).
pub(crate) fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Kills a leftover QEMU by pid (test cleanup).
pub(crate) fn kill_pid(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// One node VM running on a testbed host, as its agent reports it.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) vm: VmName,
    pub(crate) host: usize,
    pub(crate) cluster: String,
    pub(crate) node: String,
    pub(crate) address: plinth_proto::network::Ipv4Net,
    /// The node OS and kernel release the guest reports.
    pub(crate) os: String,
    pub(crate) kernel: String,
}

/// Every Ready node VM with an address on testbed hosts `1..=hosts`, read from their agents
/// (mutual TLS, as the control plane connects).
pub(crate) async fn nodes(bed: &Testbed, hosts: usize) -> Vec<Node> {
    let (token, tls) = (
        Token::new(&bed.token().expect("token")),
        bed.tls().expect("tls"),
    );
    let mut out = Vec::new();
    for host in 1..=hosts {
        let (_, inventory) = connect_over(testbed_agent(host), &token, Some(&tls)).await;
        for v in inventory.vms {
            if let (Some(guest), Some(address)) = (v.guest.filter(|g| g.ready), v.address) {
                out.push(Node {
                    vm: v.name,
                    host,
                    cluster: guest.cluster,
                    node: guest.node,
                    address,
                    os: guest.os,
                    kernel: guest.kernel,
                });
            }
        }
    }
    out
}

/// Testbed host `i`'s agent (`scripts/testbed`: 10.77.0.<10+i>:7700).
pub(crate) fn testbed_agent(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 77, 0, 10 + i as u8], 7700))
}

/// From every node VM of `nodes`, a reachability check of every other one's address (a
/// host's all at once, heartbeating its agent meanwhile); (from, to, what answered).
pub(crate) async fn reach_all(
    bed: &Testbed,
    nodes: &[Node],
) -> Vec<(Node, Node, plinth_proto::network::Reach)> {
    let (token, tls) = (
        Token::new(&bed.token().expect("token")),
        bed.tls().expect("tls"),
    );
    let mut hosts: Vec<usize> = nodes.iter().map(|n| n.host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut answers = Vec::new();
    for host in hosts {
        let (mut conn, _) = connect_over(testbed_agent(host), &token, Some(&tls)).await;
        let mut asked = Vec::new();
        for from in nodes.iter().filter(|n| n.host == host) {
            for to in nodes.iter().filter(|n| n.vm != from.vm) {
                let address = to.address.addr();
                let ask = ToAgent::Reach {
                    vm: from.vm.clone(),
                    address,
                };
                conn.send(&ask).await.expect("sends");
                asked.push((from.clone(), to.clone()));
            }
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !asked.is_empty() {
            tokio::select! {
                msg = conn.recv::<FromAgent>() => {
                    if let FromAgent::Reach { vm, address, reach } = msg.expect("agent answers") {
                        let i = asked
                            .iter()
                            .position(|(f, t)| f.vm == vm && t.address.addr() == address)
                            .expect("a check that was asked");
                        let (from, to) = asked.remove(i);
                        answers.push((from, to, reach));
                    }
                }
                _ = tick.tick() => conn.send(&ToAgent::Heartbeat).await.expect("sends"),
                _ = tokio::time::sleep_until(deadline) => panic!("checks unanswered on h{host}: {asked:?}"),
            }
        }
    }
    answers
}
