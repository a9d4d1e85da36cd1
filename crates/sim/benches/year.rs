//! One simulated year per environment of `examples/enterprise` (issue 5's target: < 0.25 s;
//! `plinth compare` runs 64 of them), and of generated estates of 100 and 1,000 hosts
//! (issue 5's target for 1,000 hosts: < 5 s). Setup (capacity plan, initial placement)
//! included.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use plinth_events::InputDigest;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::{Estate, Input, SourceFile, load};
use plinth_sim::{Options, simulate};

/// One simulated year, ms.
const YEAR_MS: u64 = 365 * 86_400_000;

/// Loads `examples/enterprise`.
fn enterprise() -> Estate {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/enterprise");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/enterprise")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut input = Input::default();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        input.add(SourceFile::new(f.display().to_string(), text));
    }
    load(&input).estate.expect("valid example")
}

/// The generated inventory: one host class of 64 threads / 1 TiB, `hosts / 20` racks of 20.
fn generated_inventory(hosts: usize) -> String {
    let racks = hosts / 20;
    let mut text = String::from(
        "apiVersion: plinth.dev/v1alpha1
kind: Inventory
metadata:
  name: gen
spec:
  hostClasses:
    - name: std
      sockets: 2
      coresPerSocket: 16
      threadsPerCore: 2
      memory: 1Ti
      disks:
        - kind: nvme
          capacity: 3.84T
          count: 2
      nicGbps: 25
      watts:
        idle: 180
        peak: 550
      leadTime: 42d
  racks:
",
    );
    for r in 0..racks {
        writeln!(text, "    - name: r{r}").expect("write to String");
    }
    text.push_str("  hosts:\n");
    for r in 0..racks {
        writeln!(text, "    - class: std\n      rack: r{r}\n      count: 20").expect("write");
    }
    text
}

/// The generated clusters: `hosts / 10` clusters of 3 control-plane VMs and one 100-VM
/// pool, each running 10 Deployments of 100 pods at 500m / 1Gi.
fn generated_clusters(hosts: usize) -> String {
    let mut docs = Vec::new();
    for c in 0..hosts / 10 {
        docs.push(format!(
            "apiVersion: plinth.dev/v1alpha1
kind: Cluster
metadata:
  name: c{c:03}
spec:
  kubernetesVersion: \"1.31.4\"
  osImage: ubuntu-24.04
  controlPlane:
    replicas: 3
  nodePools:
    - name: workers
      vcpu: 8
      memory: 32Gi
      replicas: 100
"
        ));
        for d in 0..10 {
            docs.push(format!(
                "apiVersion: apps/v1
kind: Deployment
metadata:
  name: d{d}
  namespace: ns
  labels:
    plinth.dev/cluster: c{c:03}
spec:
  replicas: 100
  selector:
    matchLabels:
      app: d{d}
  template:
    metadata:
      labels:
        app: d{d}
    spec:
      containers:
        - name: x
          image: x
          resources:
            requests:
              cpu: 500m
              memory: 1Gi
"
            ));
        }
    }
    docs.join("---\n")
}

/// The generated estate of `hosts` hosts (a multiple of 20), described in
/// docs/benchmarks.md ("Scale, from generated estates"); default Environment and Scenario.
fn generated(hosts: usize) -> Estate {
    let mut input = Input::default();
    input.add(SourceFile::new(
        "inventory.yaml",
        generated_inventory(hosts),
    ));
    input.add(SourceFile::new("clusters.yaml", generated_clusters(hosts)));
    load(&input).estate.expect("valid generated estate")
}

/// Runs one year once and prints what was simulated.
fn describe(name: &str, estate: &Estate, options: &Options) {
    let run = simulate(estate, options).expect("run");
    let s = &run.summary;
    let events = run.log.iter().filter(|&&b| b == b'\n').count();
    println!(
        "{name}: {} hosts, {} VMs, {} nodes, {} pods, {} host failures, {} migrations, \
         {} maintenances, {events} events",
        s.hosts, s.vms, s.nodes, s.pods, s.host_failures, s.migrations, s.maintenances
    );
}

/// `examples/enterprise`, one year per environment.
fn year(c: &mut Criterion) {
    let estate = enterprise();
    let mut g = c.benchmark_group("simulate_year_enterprise");
    g.sample_size(20);
    for env in EnvironmentType::ALL {
        let options = Options {
            env,
            seed: 42,
            duration: YEAR_MS,
            input: InputDigest::default(),
        };
        describe(&format!("enterprise/{}", env.cli_name()), &estate, &options);
        g.bench_function(env.cli_name(), |b| {
            b.iter(|| simulate(black_box(&estate), black_box(&options)).expect("run"))
        });
    }
    g.finish();
}

/// Generated estates of 100 and 1,000 hosts, one virtualized year each.
fn year_generated(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulate_year_generated");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(100));
    g.measurement_time(Duration::from_secs(5));
    for hosts in [100, 1_000] {
        let estate = generated(hosts);
        let options = Options {
            env: EnvironmentType::Virtualized,
            seed: 42,
            duration: YEAR_MS,
            input: InputDigest::default(),
        };
        describe(&format!("generated/{hosts}"), &estate, &options);
        g.bench_function(format!("{hosts}_hosts"), |b| {
            b.iter(|| simulate(black_box(&estate), black_box(&options)).expect("run"))
        });
    }
    g.finish();
}

criterion_group!(benches, year, year_generated);
criterion_main!(benches);
