//! How long loading an estate takes: `examples/enterprise` plus N generated Deployments
//! (N = 10, 100, 1000), each bound by the `plinth.dev/cluster` label to a cluster of the
//! example, with realistic requests, node affinity and pod anti-affinity.
//! Target (issue 3): enterprise + 1,000 workloads in under 100 ms.
//!
//! `cargo bench -p plinth-model --bench load`

use std::fmt::Write as _;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use plinth_model::{Estate, Input, SourceFile, load};

/// Workload counts generated on top of the example.
const SIZES: [usize; 3] = [10, 100, 1000];

fn enterprise() -> Vec<SourceFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/enterprise");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            SourceFile::new(p.display().to_string(), text)
        })
        .collect()
}

/// `n` Deployments spread over the clusters of `estate`, pinned to an untainted pool by
/// its labels when it has some, each with a few replicas that prefer separate hosts.
fn generated(estate: &Estate, n: usize) -> SourceFile {
    const CPU: [&str; 5] = ["100m", "250m", "500m", "1", "1500m"];
    const MEMORY: [&str; 5] = ["128Mi", "256Mi", "512Mi", "1Gi", "2Gi"];
    let mut text = String::with_capacity(n * 1200);
    for i in 0..n {
        let cluster = &estate.clusters[i % estate.clusters.len()];
        let pool = cluster
            .spec
            .node_pools
            .iter()
            .find(|p| p.taints.is_empty() && !p.labels.is_empty());
        let app = format!("gen-{i:04}");
        let _ = write!(
            text,
            "---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  namespace: team-{team}
  labels:
    plinth.dev/cluster: {cluster}
  annotations:
    plinth.dev/usage-mean: \"0.{mean}\"
    plinth.dev/usage-peak: \"0.9\"
    plinth.dev/usage-peak-hours: \"08-18\"
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
        tier: backend
    spec:
      containers:
        - name: main
          image: registry.example.com/team-{team}/{app}:1.{i}.0
          resources:
            requests:
              cpu: {cpu}
              memory: {memory}
            limits:
              memory: {memory}
      affinity:
        podAntiAffinity:
          preferredDuringSchedulingIgnoredDuringExecution:
            - weight: 100
              podAffinityTerm:
                topologyKey: kubernetes.io/hostname
                labelSelector:
                  matchLabels:
                    app: {app}
",
            team = i % 17,
            cluster = cluster.name,
            mean = 1 + i % 5,
            replicas = 1 + i % 4,
            cpu = CPU[i % CPU.len()],
            memory = MEMORY[(i / 5) % MEMORY.len()],
        );
        if let Some((key, value)) = pool.and_then(|p| p.labels.iter().next()) {
            let _ = write!(
                text,
                "        nodeAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            nodeSelectorTerms:
              - matchExpressions:
                  - key: {key}
                    operator: In
                    values: [\"{value}\"]
"
            );
        }
    }
    SourceFile::new(format!("generated-{n}.yaml"), text)
}

fn input(base: &[SourceFile], extra: Option<&SourceFile>) -> Input {
    let mut input = Input::default();
    for s in base.iter().chain(extra) {
        input.add(s.clone());
    }
    input
}

fn loading(c: &mut Criterion) {
    let base = enterprise();
    let plain = load(&input(&base, None));
    let estate = plain
        .estate
        .unwrap_or_else(|| panic!("examples/enterprise does not load:\n{}", plain.diagnostics));
    let mut group = c.benchmark_group("load");
    for n in SIZES {
        let extra = generated(&estate, n);
        let input = input(&base, Some(&extra));
        let loaded = load(&input);
        let Some(e) = &loaded.estate else {
            panic!(
                "enterprise + {n} generated workloads does not load:\n{}",
                loaded.diagnostics
            );
        };
        println!(
            "load/enterprise+{n}: {} sources, {} KiB: {} hosts, {} clusters, {} workloads ({} pods), {} VM sets, {} PDBs",
            input.sources.len(),
            input.sources.iter().map(|s| s.text.len()).sum::<usize>() / 1024,
            e.hosts.len(),
            e.clusters.len(),
            e.workloads.len(),
            e.workloads
                .iter()
                .map(|w| u64::from(w.replicas))
                .sum::<u64>(),
            e.vm_sets.len(),
            e.disruption_budgets.len(),
        );
        group.bench_with_input(BenchmarkId::new("enterprise+", n), &input, |b, input| {
            b.iter(|| load(input))
        });
    }
    group.finish();
}

criterion_group!(benches, loading);
criterion_main!(benches);
