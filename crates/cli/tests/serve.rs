//! `plinth serve` as a user runs it: simulated agents started by `scripts/sim-agents`,
//! the service on loopback, and the CLI verbs against it — `token`, `apply`, `get`,
//! `get -w`, `wait`, `describe`, `events`, `delete`; tokens and roles (401, 403); an invalid apply
//! answered with `plinth validate`'s own located diagnostics; optimistic concurrency
//! (409); a `kill -9` of the service that loses no acknowledged write; the API over TLS
//! (its own CA trusted by --ca-file or a context, an operator's certificate). With the `etcd`
//! feature: three replicas on a real etcd (`scripts/etcd`), the leader killed mid-build,
//! another taking over within the lease with no lost and no repeated command.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
#[cfg(feature = "etcd")]
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::plinth_streams;
use common::serve::{Agents, Served, Server, cli, root, token, wait_ready};

#[test]
fn serve_builds_the_applied_estate_and_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agents = Agents::up(dir.path().join("agents"), 17_300, "examples/small");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "").expect("tokens file");
    let admin = token(&tokens, "admin", dir.path());
    let reader = token(&tokens, "reader", dir.path());
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &tokens, &agents.file());

    // No token, an unknown token: 401; a reader writing: 403 with the role it needs.
    let nobody = dir.path().join("nobody.token");
    std::fs::write(&nobody, "not-a-token").expect("file");
    let (code, _, err) = cli(&server, &nobody, &["get", "clusters"]);
    assert_eq!(code, 2);
    assert!(err.contains("Unauthorized"), "{err}");
    let (code, _, err) = cli(&server, &reader, &["apply", "examples/small"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Forbidden") && err.contains("needs role"),
        "{err}"
    );

    // An invalid file: nothing stored, the diagnostics `plinth validate` prints.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "apiVersion: plinth.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: broken\nspec:\n  kubernetesVersion: 1.33.1\n",
    )
    .expect("file");
    let broken = broken.display().to_string();
    let (code, _, applied) = cli(&server, &admin, &["apply", &broken]);
    let (_, _, validated) = plinth_streams(&["validate", &broken]);
    assert_eq!(code, 1, "{applied}");
    // The per-object error, rendered as validate renders it; validate's cross-object
    // "no Inventory" is not apply's business (the Inventory may be applied later).
    let block = |text: &str| {
        let start = text
            .find("error: missing field `osImage`")
            .expect("the error");
        text[start..].lines().take(5).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(
        block(&applied),
        block(&validated),
        "apply:\n{applied}\nvalidate:\n{validated}"
    );
    assert!(block(&applied).contains("broken.yaml:5:1"), "{applied}");
    let (_, listed, _) = cli(&server, &admin, &["get", "clusters", "-o", "name"]);
    assert!(listed.trim().is_empty(), "nothing stored: {listed}");

    // Apply, then apply again: the second changes nothing.
    // The lab Environment's short HA timeouts, so a host failure plays out in seconds.
    let (code, out, err) = cli(
        &server,
        &admin,
        &[
            "apply",
            "-f",
            "examples/small",
            "examples/lab/environment.yaml",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("inventory/small created") && out.contains("cluster/"),
        "{out}"
    );
    let (code, again, _) = cli(
        &server,
        &admin,
        &["apply", "examples/small", "examples/lab/environment.yaml"],
    );
    assert_eq!(code, 0);
    assert!(again.lines().all(|l| l.ends_with(" unchanged")), "{again}");

    // A watch sees the cluster become Ready; `wait` returns once it is.
    let mut watch = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "get",
            "clusters",
            "-w",
            "--server",
            &server.url,
            "--token-file",
        ])
        .arg(&reader)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("get -w");
    wait_ready(&server, &reader, "120s");
    std::thread::sleep(Duration::from_millis(500));
    let _ = watch.kill();
    let watched =
        String::from_utf8_lossy(&watch.wait_with_output().expect("output").stdout).into_owned();
    assert!(watched.starts_with("NAME"), "{watched}");
    assert!(
        watched
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some("True")),
        "{watched}"
    );

    let (_, vms, _) = cli(&server, &reader, &["get", "vms"]);
    let running = vms
        .lines()
        .filter(|l| l.contains(" Running ") || l.contains("running"))
        .count();
    assert!(running >= 4, "{vms}");
    let (code, described, err) = cli(&server, &reader, &["describe", "cluster", "apps"]);
    assert_eq!(code, 0, "{err}");
    assert!(described.contains("ClusterReady"), "{described}");
    // `plinth events`: every object's, or one object's.
    let (code, all, err) = cli(&server, &reader, &["events"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        all.starts_with("TIME") && all.contains("inventory/small"),
        "{all}"
    );
    let (code, about, err) = cli(&server, &reader, &["events", "--for", "cluster/apps"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = about.lines().skip(1).collect();
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r.contains(" cluster/apps ")),
        "{about}"
    );
    assert!(about.contains("ClusterReady"), "{about}");
    let (code, _, err) = cli(&server, &reader, &["events", "--for", "apps"]);
    assert_eq!(code, 2);
    assert!(err.contains("KIND/NAME"), "{err}");

    // A node VM's serial console, read from its host's agent through the service.
    let (code, console, err) = cli(&server, &reader, &["logs", "apps-cp-0"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        console.contains("powered on") && console.contains("node apps-cp-0 of cluster apps ready"),
        "{console}"
    );
    let (code, _, err) = cli(&server, &reader, &["logs", "no-such-vm"]);
    assert_eq!(code, 2);
    assert!(err.contains("not found"), "{err}");

    // A changed spec is rolled out: a new Kubernetes version (a rolling upgrade, node by
    // node) and one more worker (a scale), until the cluster is Ready again.
    let changed = dir.path().join("cluster.yaml");
    let spec =
        std::fs::read_to_string(root().join("examples/small/cluster.yaml")).expect("cluster");
    std::fs::write(
        &changed,
        spec.replace("1.31.4", "1.32.0")
            .replace("replicas: 12", "replicas: 13"),
    )
    .expect("file");
    let (code, out, err) = cli(&server, &admin, &["apply", &changed.display().to_string()]);
    assert_eq!((code, out.trim()), (0, "cluster/apps configured"), "{err}");
    let rolled = (0..240).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        let (_, events, _) = cli(&server, &reader, &["get", "events", "-o", "json"]);
        let (_, cluster, _) = cli(&server, &reader, &["get", "cluster", "apps", "-o", "json"]);
        let cluster: serde_json::Value = serde_json::from_str(&cluster).unwrap_or_default();
        events.contains("UpgradeFinished")
            && cluster["status"]["nodes"] == 16
            && cluster["status"]["readyNodes"] == 16
            && cluster["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Progressing" && c["status"] == "False")
            })
    });
    let (_, status, _) = cli(&server, &reader, &["get", "clusters", "-o", "wide"]);
    assert!(rolled, "not rolled out and scaled: {status}");
    let (_, vms, _) = cli(&server, &reader, &["get", "vms", "-o", "name"]);
    assert!(
        !vms.contains("virtualmachine/apps-workers-0\n"),
        "the old nodes are replaced: {vms}"
    );

    // A second cluster makes the unlabelled workloads ambiguous: the estate is invalid, so a
    // change of `apps` is held back — and says so — until the second cluster goes.
    let second = dir.path().join("batch.yaml");
    std::fs::write(&second, spec.replace("name: apps", "name: batch")).expect("file");
    let (code, _, err) = cli(&server, &admin, &["apply", &second.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let shrunk = dir.path().join("shrunk.yaml");
    std::fs::write(&shrunk, spec.replace("1.31.4", "1.32.0")).expect("file");
    let (code, _, err) = cli(&server, &admin, &["apply", &shrunk.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let blocked = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        let (_, apps, _) = cli(&server, &reader, &["get", "cluster", "apps", "-o", "json"]);
        apps.contains("\"Blocked\"") && apps.contains("cannot tell which cluster")
    });
    let (_, apps, _) = cli(&server, &reader, &["get", "cluster", "apps", "-o", "wide"]);
    assert!(blocked, "{apps}");
    // A running cluster cannot be deleted; one that never ran can.
    let (code, _, err) = cli(&server, &admin, &["delete", "cluster", "apps"]);
    assert_eq!(code, 2);
    assert!(err.contains("runs 16 node VM(s)"), "{err}");
    let (code, _, err) = cli(&server, &admin, &["delete", "cluster", "batch"]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        &shrunk,
        spec.replace("1.31.4", "1.32.0")
            .replace("replicas: 12", "replicas: 13"),
    )
    .expect("file");
    let (code, _, err) = cli(&server, &admin, &["apply", &shrunk.display().to_string()]);
    assert_eq!(code, 0, "{err}");

    // A host dies: HA restarts its VMs on the others, and the cluster is Ready again.
    let (_, hosts, _) = cli(&server, &reader, &["get", "hosts", "-o", "json"]);
    let hosts: serde_json::Value = serde_json::from_str(&hosts).expect("json");
    let busiest = hosts["items"]
        .as_array()
        .and_then(|h| {
            h.iter()
                .max_by_key(|h| h["status"]["vms"].as_array().map_or(0, Vec::len))
        })
        .and_then(|h| h["metadata"]["name"].as_str())
        .expect("a host")
        .to_owned();
    agents.crash(&busiest);
    let recovered = (0..240).any(|_| {
        std::thread::sleep(Duration::from_millis(250));
        let (_, vms, _) = cli(&server, &reader, &["get", "vms", "-o", "json"]);
        let vms: serde_json::Value = serde_json::from_str(&vms).unwrap_or_default();
        vms["items"].as_array().is_some_and(|all| {
            all.len() == 16
                && all.iter().all(|v| {
                    v["status"]["phase"] == "Running" && v["status"]["host"] != busiest.as_str()
                })
        })
    });
    let (_, vms, _) = cli(&server, &reader, &["get", "vms"]);
    assert!(
        recovered,
        "the VMs of {busiest} did not run again elsewhere:\n{vms}"
    );

    // kill -9 mid-stream of writes: every acknowledged one is there after a restart.
    let mut acknowledged = Vec::new();
    for round in 0..5 {
        let file = dir.path().join(format!("pod-{round}.yaml"));
        std::fs::write(
            &file,
            format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p{round}\n  namespace: shop\nspec:\n  containers:\n  - name: a\n    image: a\n    resources: {{requests: {{cpu: 10m, memory: 16Mi}}}}\n"),
        )
        .expect("file");
        let (code, _, err) = cli(&server, &admin, &["apply", &file.display().to_string()]);
        assert_eq!(code, 0, "{err}");
        acknowledged.push(format!("p{round}"));
    }
    server.kill();
    let server = Server::start(&data, &tokens, &agents.file());
    let (_, pods, _) = cli(
        &server,
        &reader,
        &["get", "pods", "-n", "shop", "-o", "name"],
    );
    for p in &acknowledged {
        assert!(pods.contains(&format!("pod/{p}")), "{p} lost: {pods}");
    }
    wait_ready(&server, &reader, "120s");

    // Optimistic concurrency: a write naming an old resourceVersion is refused with 409.
    let (_, current, _) = cli(
        &server,
        &reader,
        &["get", "pod", "p0", "-n", "shop", "-o", "json"],
    );
    let mut object: serde_json::Value = serde_json::from_str(&current).expect("json");
    object["metadata"]["resourceVersion"] = serde_json::json!("1");
    let secret = std::fs::read_to_string(&admin).expect("token");
    let response = ureq::put(format!("{}/api/v1/namespaces/shop/pods/p0", server.url))
        .header("Authorization", format!("Bearer {}", secret.trim()))
        .config()
        .http_status_as_error(false)
        .build()
        .send_json(&object)
        .expect("answer");
    assert_eq!(response.status().as_u16(), 409);

    // Contexts: the config file names the server and the token, as a kubeconfig does.
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "current-context: lab\ncontexts:\n  - name: lab\n    server: {}\n    token-file: {}\n",
            server.url,
            reader.display()
        ),
    )
    .expect("config");
    let by_context = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(args)
            .env("PLINTH_CONFIG", &config)
            .env_remove("PLINTH_SERVER")
            .env_remove("PLINTH_TOKEN_FILE")
            .output()
            .expect("plinth runs")
    };
    let out = by_context(&["get", "clusters", "-o", "name"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "cluster/apps");
    let out = by_context(&["get", "clusters", "--context", "prod"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no context `prod`; it has: lab"));

    let (code, out, _) = cli(&server, &admin, &["delete", "pod", "p0", "-n", "shop"]);
    assert_eq!((code, out.trim()), (0, "pod/p0 deleted"));
}

/// A local etcd started by `scripts/etcd`, removed when dropped.
#[cfg(feature = "etcd")]
struct Etcd {
    dir: PathBuf,
    port: u16,
    url: String,
}

#[cfg(feature = "etcd")]
impl Etcd {
    fn script(dir: &Path, port: u16, verb: &str) -> std::process::Output {
        Command::new(root().join("scripts/etcd"))
            .arg(verb)
            .env("PLINTH_ETCD_DIR", dir)
            .env("PLINTH_ETCD_PORT", port.to_string())
            .output()
            .expect("scripts/etcd runs")
    }

    fn up(dir: PathBuf, port: u16) -> Self {
        let out = Self::script(&dir, port, "up");
        assert!(
            out.status.success(),
            "scripts/etcd up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Self { dir, port, url }
    }
}

#[cfg(feature = "etcd")]
impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = Self::script(&self.dir, self.port, "down");
    }
}

/// Whether `server` runs the reconcile loop, by its `/metrics`.
#[cfg(feature = "etcd")]
fn leads(server: &Server, token: &Path) -> bool {
    let secret = std::fs::read_to_string(token).expect("token");
    ureq::get(format!("{}/metrics", server.url))
        .header("Authorization", format!("Bearer {}", secret.trim()))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .is_some_and(|m| m.lines().any(|l| l == "plinth_leader 1"))
}

/// The command ids each VM's creation was sent under, from the simulated agents' logs.
#[cfg(feature = "etcd")]
fn creations(
    agents: &Agents,
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let mut out: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    let hosts = std::fs::read_dir(agents.dir.join("hosts")).expect("hosts");
    for host in hosts.flatten() {
        let log = std::fs::read_to_string(host.path().join("agent.log")).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("action=CreateVm")) {
            let id = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("id="))
                .unwrap_or_default();
            let vm = line
                .split("VmName(\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            out.entry(vm.to_owned()).or_default().insert(id.to_owned());
        }
    }
    out
}

#[cfg(feature = "etcd")]
#[test]
fn three_replicas_on_etcd_survive_the_leader_killed_mid_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = Etcd::up(dir.path().join("etcd"), 23_790);
    let agents = Agents::up(dir.path().join("agents"), 17_500, "examples/small");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "").expect("tokens file");
    let admin = token(&tokens, "admin", dir.path());
    let lease = Duration::from_secs(2);
    let mut replicas: Vec<Server> = ["r1", "r2", "r3"]
        .iter()
        .map(|name| {
            Server::start_with(
                &dir.path().join(name),
                &tokens,
                &agents.dir.join("agents"),
                &["--etcd", &etcd.url, "--replica", name, "--lease", "2s"],
            )
        })
        .collect();
    let leader = |replicas: &[Server]| -> Option<usize> {
        let leading: Vec<usize> = (0..replicas.len())
            .filter(|&i| leads(&replicas[i], &admin))
            .collect();
        assert!(leading.len() <= 1, "two leaders: {leading:?}");
        leading.first().copied()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(i) = leader(&replicas) {
            break i;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replica was elected"
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // Applied through a follower: every replica serves writes; the leader builds.
    let follower = (first + 1) % 3;
    let (code, out, err) = cli(
        &replicas[follower],
        &admin,
        &["apply", "examples/small", "examples/lab/environment.yaml"],
    );
    assert_eq!(code, 0, "{out}{err}");

    // Mid-build, the leader dies.
    std::thread::sleep(Duration::from_millis(300));
    replicas[first].kill();
    let killed = std::time::Instant::now();
    let next = loop {
        let alive: Vec<usize> = (0..3).filter(|&i| i != first).collect();
        if let Some(i) = alive.iter().copied().find(|&i| leads(&replicas[i], &admin)) {
            break i;
        }
        assert!(
            killed.elapsed() < lease + Duration::from_secs(3),
            "no replica took over within the lease"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let took_over = killed.elapsed();
    assert!(
        took_over <= lease + Duration::from_millis(1_500),
        "{took_over:?}"
    );

    // The new leader finishes the build; a scale-up through the other survivor is built too.
    let other = (0..3).find(|&i| i != first && i != next).expect("a third");
    wait_ready(&replicas[other], &admin, "60s");
    let scaled = dir.path().join("scaled");
    std::fs::create_dir_all(&scaled).expect("dir");
    for file in ["cluster.yaml", "inventory.yaml", "workloads.yaml"] {
        let text = std::fs::read_to_string(root().join("examples/small").join(file)).expect("read");
        let text = text.replacen("      replicas: 12", "      replicas: 13", 1);
        std::fs::write(scaled.join(file), text).expect("write");
    }
    let (code, out, err) = cli(
        &replicas[other],
        &admin,
        &["apply", &scaled.display().to_string()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cluster/apps configured"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, json, _) = cli(
            &replicas[next],
            &admin,
            &["get", "cluster", "apps", "-o", "json"],
        );
        let ready = serde_json::from_str::<serde_json::Value>(&json)
            .ok()
            .and_then(|v| {
                v.pointer("/status/readyNodes")
                    .and_then(serde_json::Value::as_u64)
            });
        if ready == Some(16) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not scaled: {json}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // No command lost (every node VM created) and none repeated (one command per VM).
    let created = creations(&agents);
    assert_eq!(created.len(), 16, "{created:?}");
    for (vm, ids) in &created {
        assert_eq!(
            ids.len(),
            1,
            "{vm} was created by {} commands: {ids:?}",
            ids.len()
        );
    }
    eprintln!("leader {first} killed; replica {next} took over in {took_over:?}");
}

/// `plinth ARGS...` with `HOME` set to `home` (so no default data directory's CA or
/// config applies) and `env`: (exit code, stderr).
fn plinth_at_home(home: &Path, env: &[(&str, &Path)], args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("PLINTH_CONFIG")
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .expect("plinth runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_api_over_tls_is_trusted_by_its_ca_and_refused_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("agent.token"), "agents-secret\n").expect("file");
    std::fs::write(path("agents"), "token agent.token\n").expect("file");
    std::fs::write(path("tokens"), "").expect("file");
    let admin = token(&path("tokens"), "admin", dir.path());
    let data = path("data");
    let server = Server::start_with(
        &data,
        &path("tokens"),
        &path("agents"),
        &["--tls", "--tls-san", "plinth.test"],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let ca = data.join("tls/ca.crt");
    let home = path("home");
    std::fs::create_dir_all(&home).expect("home");
    let get = |env: &[(&str, &Path)], extra: &[&str]| {
        let mut args = vec!["get", "hosts", "--token-file", admin.to_str().unwrap()];
        args.extend(extra);
        plinth_at_home(&home, env, &args)
    };
    let url = server.url.as_str();

    // The CA the server made, named by the flag, by PLINTH_CA_FILE, by a context.
    let (code, err) = get(&[], &["--server", url, "--ca-file", ca.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, err) = get(&[("PLINTH_CA_FILE", &ca)], &["--server", url]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(
        path("config.yaml"),
        format!(
            "current-context: lab\ncontexts:\n- name: lab\n  server: {url}\n  certificate-authority: {}\n",
            ca.display()
        ),
    )
    .expect("config");
    let (code, err) = get(&[("PLINTH_CONFIG", &path("config.yaml"))], &[]);
    assert_eq!(code, 0, "{err}");

    // Not trusted without it; plain HTTP to a TLS port: each error says what to do.
    let (code, err) = get(&[], &["--server", url]);
    assert_eq!(code, 2);
    assert!(err.contains("--ca-file"), "{err}");
    let plain = url.replace("https://", "http://");
    let (code, err) = get(&[], &["--server", &plain]);
    assert_eq!(code, 2);
    assert!(err.contains("https://"), "{err}");
    // A file that is no CA says so.
    let (code, err) = get(
        &[],
        &["--server", url, "--ca-file", admin.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(err.contains("holds no PEM CERTIFICATE"), "{err}");
    drop(server);

    // The same CA after a restart: clients need nothing new.
    let again = Server::start_with(&data, &path("tokens"), &path("agents"), &["--tls"]);
    let (code, err) = get(
        &[],
        &["--server", &again.url, "--ca-file", ca.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    drop(again);

    // An operator's certificate, signed by the operator's CA, both made with openssl.
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let p256 = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "2", "-subj", "/CN=test CA"][..],
            &p256,
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new", "-subj", "/CN=plinth.test"][..],
            &p256,
            &["-keyout", "own.key", "-out", "own.csr"],
        ]
        .concat(),
    );
    std::fs::write(path("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("file");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "own.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "own.crt",
    ]);
    let (cert, key, operator_ca) = (path("own.crt"), path("own.key"), path("ca.crt"));
    let given = Server::start_with(
        &data,
        &path("tokens"),
        &path("agents"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let (code, err) = get(
        &[],
        &[
            "--server",
            &given.url,
            "--ca-file",
            operator_ca.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    drop(given);

    // A key that is not one: serve refuses to start, naming the file and the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--tokens")
        .arg(path("tokens"))
        .args([
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            cert.to_str().unwrap(),
        ])
        .output()
        .expect("plinth serve runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("own.crt") && err.contains("--tls-key"),
        "{err}"
    );
}

/// `plinth get KIND -o json`'s items.
fn listed(server: &Server, token: &Path, kind: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = cli(server, token, &["get", kind, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    list["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_host_maintenance_is_planned_by_the_service_and_carried_out_once_asked() {
    // Three hosts, each its own declared zone, one control-plane member: no VM can leave
    // its host, and the host of the member cannot go down without losing etcd quorum.
    let estate = common::estates::estate(&common::estates::LONELY, ["ra", "rb", "rc"], 1, "");
    let estate = estate.path().to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = Served::up(dir.path(), 17_600, estate, &[estate]);
    let (server, operator, reader) = (&svc.server, svc.operator.as_path(), svc.reader.as_path());
    let member = listed(server, reader, "vms")
        .iter()
        .find(|v| v["metadata"]["name"] == "solo-cp-0")
        .and_then(|v| v["status"]["host"].as_str().map(str::to_owned))
        .expect("the control-plane member runs");

    // The service's dry run answers what the directory's does, for every host.
    for host in ["ra-standard-01", "rb-standard-01", "rc-standard-01"] {
        let ask = ["--host", host, "--dry-run"];
        let (code, served, err) = answer_json(
            Some((server, operator)),
            &[&["maintenance"], &ask[..]].concat(),
        );
        let (planned_code, planned, _) =
            answer_json(None, &[&["maintenance", estate], &ask[..]].concat());
        assert_eq!(code, planned_code, "{host}: {err}");
        assert_eq!(served["dryRun"], true);
        for field in ["plan", "safe", "refusals", "forced"] {
            assert_eq!(served[field], planned[field], "{host}: {field}");
        }
    }

    // A reader may not even plan; an unknown host is named with the hosts there are.
    let (code, _, err) = cli(
        server,
        reader,
        &["maintenance", "--host", &member, "--dry-run"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("needs role operator"), "{err}");
    let (code, _, err) = cli(
        server,
        operator,
        &["maintenance", "--host", "nope", "--dry-run"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("no host `nope`") && err.contains("ra-standard-01"),
        "{err}"
    );

    // Asked for real, the member's host is refused: etcd would lose its quorum.
    let (code, _, err) = cli(server, operator, &["maintenance", "--host", &member]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused") && err.contains("cluster solo loses etcd quorum"),
        "{err}"
    );
    let requested = |host: &str| {
        listed(server, reader, "events")
            .iter()
            .any(|e| e["involvedObject"]["name"] == host && e["reason"] == "MaintenanceRequested")
    };
    assert!(
        !requested(&member),
        "a refused maintenance is not requested"
    );

    // Forced, it is requested, with a warning naming what it breaks, and the control plane
    // starts evacuating the host (its member, which no host of its zone can take, then
    // stops with it: an etcd of one member cannot wait for a majority).
    let (code, out, err) = cli(
        server,
        operator,
        &["maintenance", "--host", &member, "--force"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("requested: the control plane evacuates"),
        "{out}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = listed(server, reader, "events");
        let about = |reason: &str| {
            events
                .iter()
                .find(|e| e["involvedObject"]["name"] == member.as_str() && e["reason"] == reason)
        };
        if let (Some(asked), Some(_)) = (about("MaintenanceRequested"), about("evacuating")) {
            break asked.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no maintenance of {member}: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(events["type"], "Warning");
    assert!(
        events["message"]
            .as_str()
            .is_some_and(|m| m.contains("forced past: cluster solo loses etcd quorum")),
        "{events}"
    );
    // The member, which no host of another zone may take, stops with its host (an etcd
    // of one member cannot wait for a majority) and says so; the maintenance was asked
    // for once.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let events = listed(server, reader, "events");
        let stopped = events.iter().any(|e| {
            e["involvedObject"]["name"] == "solo-cp-0" && e["reason"] == "stopped for maintenance"
        });
        if stopped {
            let asked = events
                .iter()
                .filter(|e| {
                    e["involvedObject"]["name"] == member.as_str()
                        && e["reason"] == "MaintenanceRequested"
                })
                .count();
            assert_eq!(asked, 1, "{events:#?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "solo-cp-0 never stopped for the maintenance of {member}: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `plinth VERB ARGS -o json` of the directory, or of the service with `token`:
/// (exit code, answer, stderr).
fn answer_json(
    server: Option<(&Server, &Path)>,
    args: &[&str],
) -> (i32, serde_json::Value, String) {
    let args = [args, &["-o", "json"]].concat();
    let (code, out, err) = match server {
        Some((server, token)) => cli(server, token, &args),
        None => plinth_streams(&args),
    };
    (code, serde_json::from_str(&out).unwrap_or_default(), err)
}

#[test]
fn an_upgrade_and_a_drs_pass_are_planned_by_the_service_as_on_the_directory_and_the_upgrade_rolls_out()
 {
    let estate = common::estates::estate(&common::estates::LONELY, ["ra", "rb", "rc"], 3, "");
    let estate = estate.path().to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = Served::up(dir.path(), 17_700, estate, &[estate]);
    let (server, operator, reader) = (&svc.server, svc.operator.as_path(), svc.reader.as_path());

    // The service's dry runs answer what the directory's do.
    let upgrade = [
        "upgrade",
        "--cluster",
        "solo",
        "--to",
        "1.32.1",
        "--dry-run",
    ];
    let (code, served, err) = answer_json(Some((server, operator)), &upgrade);
    assert_eq!(code, 0, "{err}");
    let (code, planned, err) = answer_json(None, &[&upgrade[..], &[estate]].concat());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        served, planned,
        "the service plans the upgrade as the directory does"
    );
    assert_eq!(served["replaces"], true);
    assert_eq!(served["stages"][0]["pool"], "control-plane");
    let (code, served, err) = answer_json(Some((server, reader)), &["drs", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let (code, planned, err) = answer_json(None, &["drs", "--dry-run", estate]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        served, planned,
        "the service plans DRS as the directory does"
    );

    // Refusals name the fix: a skipped minor version, an unknown cluster, a reader.
    let (code, _, err) = cli(
        server,
        operator,
        &[
            "upgrade",
            "--cluster",
            "solo",
            "--to",
            "1.33.0",
            "--dry-run",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("roll to 1.32 first"), "{err}");
    let (code, _, err) = cli(
        server,
        operator,
        &[
            "upgrade",
            "--cluster",
            "nope",
            "--to",
            "1.32.1",
            "--dry-run",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("Cluster nope is not stored") && err.contains("plinth get clusters"),
        "{err}"
    );
    let (code, _, err) = cli(
        server,
        reader,
        &[
            "upgrade",
            "--cluster",
            "solo",
            "--to",
            "1.32.1",
            "--dry-run",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs role operator"), "{err}");
    let (code, _, err) = cli(server, reader, &["drs"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pass --dry-run"), "{err}");

    // Asked for real, the Cluster asks for the version, and the control plane rolls it out.
    let (code, out, err) = cli(
        server,
        operator,
        &["upgrade", "--cluster", "solo", "--to", "1.32.1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("requested: cluster solo now asks for"),
        "{out}"
    );
    let cluster = listed(server, reader, "clusters");
    assert_eq!(cluster[0]["spec"]["kubernetesVersion"], "1.32.1");
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let events = listed(server, reader, "events");
        let seen = |reason: &str| {
            events
                .iter()
                .any(|e| e["involvedObject"]["name"] == "solo" && e["reason"] == reason)
        };
        if seen("UpgradeRequested") && seen("UpgradeFinished") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upgrade did not finish: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    svc.wait_ready();
    // Asked again, nothing is replaced: it already runs that version.
    let (code, out, err) = cli(
        server,
        operator,
        &["upgrade", "--cluster", "solo", "--to", "1.32.1"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no machine is replaced"), "{out}");
}

#[test]
fn a_maintenance_moves_vms_by_live_migration_through_the_agents_and_records_each_switch_over() {
    // Three hosts in one zone: a worker may go to any of them.
    let racks = ["name: ra", "name: rb", "name: rc"];
    let estate = common::estates::estate(&racks, ["ra", "rb", "rc"], 1, "");
    let estate = estate.path().to_str().expect("utf-8 path");
    let dir = tempfile::tempdir().expect("tempdir");
    let svc = Served::up(dir.path(), 17_800, estate, &[estate]);
    let (server, operator, reader) = (&svc.server, svc.operator.as_path(), svc.reader.as_path());
    let vms = listed(server, reader, "vms");
    let host_of = |vm: &serde_json::Value| vm["status"]["host"].as_str().map(str::to_owned);
    let member = vms
        .iter()
        .find(|v| v["metadata"]["name"] == "solo-cp-0")
        .and_then(host_of)
        .expect("the control-plane member runs");
    // A host of workers only: its maintenance moves them, and etcd is not touched.
    let (host, moving): (String, Vec<String>) = vms
        .iter()
        .filter_map(|v| Some((host_of(v)?, v["metadata"]["name"].as_str()?.to_owned())))
        .filter(|(h, _)| *h != member)
        .fold(BTreeMap::<String, Vec<String>>::new(), |mut by, (h, vm)| {
            by.entry(h).or_default().push(vm);
            by
        })
        .into_iter()
        .max_by_key(|(_, vms)| vms.len())
        .expect("a host of workers");
    let (code, _, err) = cli(server, operator, &["maintenance", "--host", &host]);
    assert_eq!(code, 0, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let migrated = loop {
        let events = listed(server, reader, "events");
        let migrated: Vec<serde_json::Value> = events
            .iter()
            .filter(|e| e["reason"] == "Migrated")
            .cloned()
            .collect();
        if migrated.len() >= moving.len() {
            break migrated;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{host}'s VMs {moving:?} were not all migrated: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    for vm in &moving {
        let event = migrated
            .iter()
            .find(|e| e["involvedObject"]["name"] == vm.as_str())
            .unwrap_or_else(|| panic!("no Migrated event of {vm}: {migrated:#?}"));
        let message = event["message"].as_str().expect("a message");
        assert!(
            message.starts_with(&format!("live-migrated from {host} to "))
                && message.contains("paused"),
            "{message}"
        );
    }
    // Topology truth: each moved node's host label follows it, with an event.
    for event in &migrated {
        let vm = event["involvedObject"]["name"].as_str().expect("a name");
        let message = event["message"].as_str().expect("a message");
        let to = message
            .split(" to ")
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .expect("the target host");
        let relabelled = format!("node {vm} is placed on {to} ");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !listed(server, reader, "events").iter().any(|e| {
            e["reason"] == "Relabelled"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&relabelled))
        }) {
            assert!(
                std::time::Instant::now() < deadline,
                "no Relabelled event `{relabelled}`"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // The host comes back at once (a simulated host needs no reboot), and DRS may move VMs
    // back to it: the cluster stays Ready throughout.
    svc.wait_ready();
}
