//! VMs onto hosts at sizes from 10 to the targets: 10,000 VMs onto 1,000 hosts with
//! anti-affinity groups (< 100 ms) and 100,000 VMs onto 10,000 hosts (< 2 s).
#![allow(missing_docs, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use plinth_model::Resources;
use plinth_model::policy::{PlacementPolicy, PlacementStrategy, Scope, SpreadMode};
use plinth_model::units::GIB;
use plinth_placement::{Group, GroupId, HostSpec, Pool, PoolConfig, RackId, VmSpec, place_all};

/// `hosts` hosts of 64 threads / 512 GiB in racks of 20; `vms` VMs of 1–8 vCPU and 2–48 GiB
/// (about 70% of memory); with `groups`, every VM is in a group of 5: strict over hosts
/// for every third group, soft for the others.
fn problem(
    vms: usize,
    hosts: usize,
    groups: bool,
    strategy: PlacementStrategy,
) -> (Pool, Vec<VmSpec>) {
    let host_specs: Vec<HostSpec> = (0..hosts)
        .map(|i| {
            HostSpec::new(
                format!("host-{i:05}"),
                RackId((i / 20) as u32),
                Resources::new(64_000, 512 * GIB, 8192 * GIB),
            )
        })
        .collect();
    let racks = (0..hosts.div_ceil(20))
        .map(|r| format!("rack-{r:03}"))
        .collect();
    let group_count = if groups { vms.div_ceil(5) } else { 0 };
    let group_specs = (0..group_count)
        .map(|g| Group {
            name: format!("group-{g:05}"),
            policy: PlacementPolicy {
                spread_over: Scope::Host,
                mode: if g % 3 == 0 {
                    SpreadMode::Strict
                } else {
                    SpreadMode::Soft
                },
                max_per_domain: None,
            },
        })
        .collect();
    let vm_specs = (0..vms)
        .map(|i| {
            let k = (i as u64).wrapping_mul(2_654_435_761) % 97;
            let cpu = 1000 * (1 + k % 8);
            let mem = GIB * (2 + (k * 7) % 47);
            let vm = VmSpec::new(format!("vm-{i:06}"), Resources::new(cpu, mem, 20 * GIB));
            if groups {
                vm.in_group(GroupId((i / 5) as u32))
            } else {
                vm
            }
        })
        .collect();
    let config = PoolConfig {
        strategy,
        ..PoolConfig::default()
    };
    let pool = Pool::new(host_specs, racks, group_specs, vec![], config).expect("valid pool");
    (pool, vm_specs)
}

fn bench_sizes(c: &mut Criterion, name: &str, sizes: &[(usize, usize)], groups: bool) {
    let mut g = c.benchmark_group(name);
    for &(vms, hosts) in sizes {
        if vms >= 10_000 {
            g.sample_size(10);
            g.measurement_time(Duration::from_secs(if vms >= 100_000 { 20 } else { 5 }));
        }
        for strategy in [PlacementStrategy::Spread, PlacementStrategy::Pack] {
            let (pool, specs) = problem(vms, hosts, groups, strategy);
            let check = place_all(pool.clone(), specs.clone());
            let used = check
                .hosts
                .iter()
                .flatten()
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            println!(
                "{name}/{strategy:?}: placed {} of {vms} VMs onto {used} of {hosts} hosts ({} groups)",
                vms - check.unplaced.len(),
                pool.groups().len()
            );
            let id = BenchmarkId::new(format!("{strategy:?}"), format!("{vms}vms_{hosts}hosts"));
            g.bench_with_input(id, &(pool, specs), |b, (pool, specs)| {
                b.iter_batched(
                    || (pool.clone(), specs.clone()),
                    |(p, v)| black_box(place_all(p, v)),
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

fn vms_onto_hosts(c: &mut Criterion) {
    bench_sizes(
        c,
        "anti_affinity",
        &[(10, 5), (100, 10), (1_000, 100), (10_000, 1_000)],
        true,
    );
    bench_sizes(
        c,
        "plain",
        &[(10, 2), (1_000, 100), (10_000, 1_000), (100_000, 10_000)],
        false,
    );
}

criterion_group!(benches, vms_onto_hosts);
criterion_main!(benches);
