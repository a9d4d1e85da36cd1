//! `plinth serve` as a user runs it: simulated agents started by `scripts/sim-agents`,
//! the service on loopback, tokens made with `plinth token`, and the CLI against it.
#![allow(
    dead_code,
    reason = "each test crate compiles this module; only those that start a server use it"
)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::plinth_streams;

/// The repository's root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Simulated agents for an estate, on their own ports and directory; down when dropped.
pub(crate) struct Agents {
    /// Their directory (`agents` is the agents file for `plinth serve --agents`).
    pub(crate) dir: PathBuf,
    port: u16,
}

impl Agents {
    /// Runs `scripts/sim-agents ARGS` for these agents.
    pub(crate) fn script(&self, args: &[&str]) -> std::process::Output {
        Command::new(root().join("scripts/sim-agents"))
            .args(args)
            .env("PLINTH", env!("CARGO_BIN_EXE_plinth"))
            .env("PLINTH_SIM_AGENTS_DIR", &self.dir)
            .env("PLINTH_SIM_AGENTS_PORT", self.port.to_string())
            .env("PLINTH_SIM_BOOT_TIME", "300ms")
            // examples/lab's Environment, applied with the estate, says 3 s too.
            .env("PLINTH_SELF_FENCE_TIMEOUT", "3s")
            .output()
            .expect("scripts/sim-agents runs")
    }

    /// One agent per host of `estate`, the first listening on `port`.
    pub(crate) fn up(dir: PathBuf, port: u16, estate: &str) -> Self {
        let agents = Self { dir, port };
        let out = agents.script(&["up", estate]);
        assert!(
            out.status.success(),
            "sim-agents up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        agents
    }

    /// The agents file for `plinth serve --agents`.
    pub(crate) fn file(&self) -> PathBuf {
        self.dir.join("agents")
    }

    /// Host `host` loses power: its agent dies, and its VMs with it.
    pub(crate) fn crash(&self, host: &str) {
        let out = self.script(&["crash", host]);
        assert!(
            out.status.success(),
            "sim-agents crash: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        let _ = self.script(&["down"]);
    }
}

/// A running `plinth serve`, killed when dropped.
pub(crate) struct Server {
    child: Child,
    /// Where it listens, `http://127.0.0.1:PORT` (`https://` with `--tls`).
    pub(crate) url: String,
}

impl Server {
    /// Starts `plinth serve` on a free loopback port.
    pub(crate) fn start(data: &Path, tokens: &Path, agents: &Path) -> Self {
        Self::start_with(data, tokens, agents, &[])
    }

    /// Starts `plinth serve` on a free loopback port, with `extra` arguments.
    pub(crate) fn start_with(data: &Path, tokens: &Path, agents: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .arg("--tokens")
            .arg(tokens)
            .arg("--agents")
            .arg(agents)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("plinth serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("a first line");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("no URL in `{first}`"))
            .trim_end_matches(';')
            .to_owned();
        Self { child, url }
    }

    /// Kills it at once, as `kill -9` does.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `plinth VERB ARGS... --server URL --token-file TOKEN`.
pub(crate) fn cli(server: &Server, token: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    all.extend([
        "--server".into(),
        server.url.clone(),
        "--token-file".into(),
        token.display().to_string(),
    ]);
    plinth_streams(&all)
}

/// A token of `role` added to `tokens` with `plinth token`, its secret in a file.
pub(crate) fn token(tokens: &Path, role: &str, dir: &Path) -> PathBuf {
    let (code, secret, err) = plinth_streams(&[
        "token",
        "--role",
        role,
        "--name",
        role,
        "--tokens",
        &tokens.display().to_string(),
    ]);
    assert_eq!(code, 0, "{err}");
    let path = dir.join(format!("{role}.token"));
    std::fs::write(&path, secret).expect("token file");
    path
}

/// An estate served as a user runs it: simulated agents for `hosts_of`, tokens of the three
/// roles, `plinth serve`, `plinth apply APPLY...`, and every cluster Ready. The service
/// stops before its agents.
pub(crate) struct Served {
    pub(crate) server: Server,
    pub(crate) agents: Agents,
    pub(crate) admin: PathBuf,
    pub(crate) operator: PathBuf,
    pub(crate) reader: PathBuf,
}

impl Served {
    /// Serves in `dir`, the agents listening from `port` on.
    pub(crate) fn up(dir: &Path, port: u16, hosts_of: &str, apply: &[&str]) -> Self {
        let agents = Agents::up(dir.join("agents"), port, hosts_of);
        let tokens = dir.join("tokens");
        std::fs::write(&tokens, "").expect("tokens file");
        let admin = token(&tokens, "admin", dir);
        let operator = token(&tokens, "operator", dir);
        let reader = token(&tokens, "reader", dir);
        let server = Server::start(&dir.join("data"), &tokens, &agents.file());
        let served = Self {
            server,
            agents,
            admin,
            operator,
            reader,
        };
        let (code, _, err) = cli(&served.server, &served.admin, &[&["apply"], apply].concat());
        assert_eq!(code, 0, "{err}");
        served.wait_ready();
        served
    }

    /// Waits (two minutes at most) for every cluster to be Ready.
    pub(crate) fn wait_ready(&self) {
        wait_ready(&self.server, &self.reader, "120s");
    }
}

/// `plinth wait clusters --for condition=Ready --timeout TIMEOUT` with `token`: every
/// cluster Ready in time.
pub(crate) fn wait_ready(server: &Server, token: &Path, timeout: &str) {
    let (code, out, err) = cli(
        server,
        token,
        &[
            "wait",
            "clusters",
            "--for",
            "condition=Ready",
            "--timeout",
            timeout,
        ],
    );
    assert_eq!(code, 0, "every cluster Ready within {timeout}: {out}{err}");
}
