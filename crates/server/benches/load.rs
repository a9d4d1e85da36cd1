//! The API under load on loopback: GET throughput and p99, apply (`PUT` of one object,
//! group-committed) throughput and p99, with 4 to 64 clients; and watch fan-out to 100
//! watchers. Bounded in count and time; prints its figures.
//!
//! `cargo bench -p plinth-server --bench load` (SQLite); with `--features etcd` and
//! `PLINTH_BENCH_ETCD=http://127.0.0.1:2379` (`scripts/etcd up`), the same against etcd.

#![allow(missing_docs, clippy::print_stdout, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use plinth_server::Shared;
use plinth_server::auth::{Role, Tokens};
use plinth_server::objects::Objects;
use serde_json::json;

const RUN: Duration = Duration::from_secs(5);
const WATCHERS: usize = 100;

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[(times.len() * 99 / 100).min(times.len().saturating_sub(1))]
}

/// Runs `each(client, i)` from `clients` threads for `RUN`: requests per second and p99.
fn load(clients: usize, each: impl Fn(&ureq::Agent, usize) + Sync) -> (f64, Duration) {
    let started = Instant::now();
    let times: Vec<Vec<Duration>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let each = &each;
                s.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                    let mut times = Vec::new();
                    let mut i = c * 1_000_000;
                    while started.elapsed() < RUN {
                        let t = Instant::now();
                        each(&agent, i);
                        times.push(t.elapsed());
                        i += 1;
                    }
                    times
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<Duration> = times.into_iter().flatten().collect();
    (all.len() as f64 / started.elapsed().as_secs_f64(), p99(all))
}

/// The store to load: etcd when asked for (and built in), else SQLite in `dir`.
fn objects(dir: &std::path::Path) -> (Objects, String) {
    #[cfg(feature = "etcd")]
    if let Ok(url) = std::env::var("PLINTH_BENCH_ETCD") {
        use plinth_server::objects::etcd::{Etcd, EtcdObjects};
        let prefix = format!("/bench-{}/", std::process::id());
        let etcd = Etcd::connect(std::slice::from_ref(&url), &prefix).unwrap();
        return (
            Objects::new(Box::new(EtcdObjects::new(etcd))),
            format!("etcd at {url} (under {prefix})"),
        );
    }
    (
        Objects::sqlite(&dir.join("objects.db")).unwrap(),
        "SQLite, synchronous=FULL".into(),
    )
}

fn main() {
    // `cargo test --all-targets` runs this without `--bench`: the load is for `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (secret, line) = Tokens::generate(Role::Admin, "bench");
    let (objects, store) = objects(dir.path());
    println!("store: {store}");
    let shared = Arc::new(Shared::new(objects, Tokens::parse(&line).unwrap()).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Kept here, so the store (and an etcd client's runtime) is dropped on this thread
    // after the server's runtime, not on one of its workers.
    let router = plinth_server::api::router(shared.clone());
    runtime.spawn(async move { axum::serve(listener, router).await });
    let auth = format!("Bearer {secret}");
    let pod = |name: String| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "bench"}, "spec": {"containers": [{"name": "a", "image": "a", "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}});
    let put = |agent: &ureq::Agent, name: String| {
        agent
            .put(format!("{base}/api/v1/namespaces/bench/pods/{name}"))
            .header("Authorization", &auth)
            .send_json(pod(name))
            .unwrap();
    };
    put(&ureq::Agent::new_with_defaults(), "c0".into());

    for clients in [4, 16] {
        let (rate, tail) = load(clients, |agent, _| {
            agent
                .get(format!("{base}/api/v1/namespaces/bench/pods/c0"))
                .header("Authorization", &auth)
                .call()
                .unwrap();
        });
        println!(
            "GET one object, {clients} clients, {}s: {rate:.0} requests/s, p99 {:.1} ms",
            RUN.as_secs(),
            tail.as_secs_f64() * 1e3
        );
    }
    for clients in [4, 16, 64] {
        let (rate, tail) = load(clients, |agent, i| put(agent, format!("c{clients}-{i}")));
        println!(
            "apply (PUT of one object; group commit), {clients} clients, {}s: {rate:.0} requests/s, p99 {:.1} ms",
            RUN.as_secs(),
            tail.as_secs_f64() * 1e3
        );
    }

    // Watch fan-out: 100 watchers from now; 100 changes; time until every watcher has all.
    let from: serde_json::Value = ureq::get(format!("{base}/api/v1/pods"))
        .header("Authorization", &auth)
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let rv = from["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = Arc::new(AtomicUsize::new(0));
    let changes = 100;
    for _ in 0..WATCHERS {
        let (base, auth, rv, seen) = (base.clone(), auth.clone(), rv.clone(), seen.clone());
        std::thread::spawn(move || {
            let response = ureq::get(format!(
                "{base}/api/v1/pods?watch=true&resourceVersion={rv}"
            ))
            .header("Authorization", &auth)
            .call()
            .unwrap();
            let reader = BufReader::new(response.into_body().into_reader());
            for _ in reader.lines().take(changes) {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let agent = ureq::Agent::new_with_defaults();
    for i in 0..changes {
        put(&agent, format!("w{i}"));
    }
    while seen.load(Ordering::Relaxed) < WATCHERS * changes
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "watch fan-out: {WATCHERS} watchers × {changes} changes = {} events delivered in {:.2} s",
        seen.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    drop(runtime);
    drop(shared);
}
