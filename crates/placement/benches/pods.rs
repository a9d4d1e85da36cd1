//! Pods onto nodes at scale: every feasible node filtered and scored for every pod.
//!
//! Run: `cargo bench -p plinth-placement --bench pods`. Each case prints what it scheduled
//! and the pods/s of one timed run next to criterion's figures; `memory` prints the peak
//! heap of 1,000 hosts + 5,000 nodes + 150,000 bound pods, measured by `peak_alloc`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use peak_alloc::PeakAlloc;
use plinth_model::Resources;
use plinth_model::units::{GIB, MIB};
use plinth_placement::pods::{Node, PodAffinityTerm, PodTemplate, Scheduler, ScoringStrategy};

#[global_allocator]
static PEAK: PeakAlloc = PeakAlloc;

/// Replicas per workload (fewer on clusters smaller than that, so that required
/// anti-affinity per node can hold).
const REPLICAS: usize = 100;
/// Pods per node in every size (150,000 pods onto 5,000 nodes at the largest).
const PODS_PER_NODE: usize = 30;
/// Nodes per physical host (5,000 nodes on 1,000 hosts).
const NODES_PER_HOST: usize = 5;
/// Hosts per rack (a node's zone is its host's rack).
const HOSTS_PER_RACK: usize = 50;

fn nodes(count: usize) -> Vec<Node> {
    (0..count)
        .map(|i| {
            let host = i / NODES_PER_HOST;
            Node::new(
                format!("node-{i:05}"),
                format!("host-{host:04}"),
                format!("rack-{:02}", host / HOSTS_PER_RACK),
                Resources::new(16_000, 64 * GIB, 200 * GIB),
            )
        })
        .collect()
}

/// One template per workload; requests vary by workload (100–500m CPU, 256 MiB–1 GiB).
fn workloads(pods: usize, replicas: usize, anti_affinity: bool) -> Vec<(PodTemplate, u32)> {
    (0..pods.div_ceil(replicas))
        .map(|w| {
            let requests = Resources::new(
                100 + (w as u64 * 37) % 401,
                256 * MIB + (w as u64 * 97 % 769) * MIB,
                GIB,
            );
            let mut pod = PodTemplate::new(format!("app-{w:05}"), requests);
            if anti_affinity {
                pod.pod_anti_affinity
                    .push(PodAffinityTerm::per_node(pod.own_selector()));
            }
            (pod, u32::try_from(replicas).expect("small"))
        })
        .collect()
}

fn run(nodes: Vec<Node>, workloads: &[(PodTemplate, u32)]) -> Scheduler {
    let mut s = Scheduler::new(nodes, ScoringStrategy::LeastAllocated).expect("unique node names");
    for (pod, replicas) in workloads {
        let outcome = s.schedule_replicas(pod, *replicas).expect("valid template");
        assert_eq!(outcome.pending, 0, "{:?}", outcome.explanation);
    }
    s
}

fn sizes() -> [usize; 4] {
    [10, 100, 1_000, 5_000]
}

fn bench_case(c: &mut Criterion, name: &str, anti_affinity: bool) {
    let mut group = c.benchmark_group(name);
    for nodes_n in sizes() {
        let pods = nodes_n * PODS_PER_NODE;
        let templates = workloads(pods, REPLICAS.min(nodes_n), anti_affinity);
        let start = Instant::now();
        let s = run(nodes(nodes_n), &templates);
        let elapsed = start.elapsed();
        println!(
            "{name}: {} pods of {} workloads onto {nodes_n} nodes, every feasible node filtered and scored: \
             {:.1} ms, {:.0} pods/s",
            s.pod_count(),
            templates.len(),
            elapsed.as_secs_f64() * 1e3,
            s.pod_count() as f64 / elapsed.as_secs_f64()
        );
        if nodes_n >= 1_000 {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(if nodes_n >= 5_000 { 40 } else { 10 }));
        }
        group.throughput(Throughput::Elements(pods as u64));
        group.bench_with_input(BenchmarkId::new("nodes", nodes_n), &nodes_n, |b, &n| {
            b.iter_batched(
                || nodes(n),
                |ns| black_box(run(ns, &templates)),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn resources_only(c: &mut Criterion) {
    bench_case(c, "pods_resources_only", false);
}

fn required_anti_affinity(c: &mut Criterion) {
    bench_case(c, "pods_required_anti_affinity", true);
}

/// Peak heap while 5,000 nodes on 1,000 hosts hold 150,000 pods.
fn memory(c: &mut Criterion) {
    let before = PEAK.current_usage();
    PEAK.reset_peak_usage();
    let templates = workloads(150_000, REPLICAS, true);
    let s = run(nodes(5_000), &templates);
    let peak = PEAK.peak_usage().saturating_sub(before);
    println!(
        "memory: 1,000 hosts + {} nodes + {} pods (required anti-affinity): peak heap {:.1} MiB",
        s.node_count(),
        s.pod_count(),
        peak as f64 / MIB as f64
    );
    drop(s);
    let mut group = c.benchmark_group("pods_memory");
    group.sample_size(10);
    group.bench_function("build_5000_nodes", |b| {
        b.iter(|| {
            black_box(Scheduler::new(
                nodes(5_000),
                ScoringStrategy::LeastAllocated,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, memory, resources_only, required_anti_affinity);
criterion_main!(benches);
