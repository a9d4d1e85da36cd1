//! Packing quality of the pack strategy against three yardsticks: instances with a known
//! optimum by construction, the volume lower bound on random instances, and exact search on
//! small ones. Prints the average gaps; the goal is ≤ 5%.
#![allow(clippy::print_stdout)]

use plinth_model::Resources;
use plinth_model::policy::PlacementStrategy;
use plinth_placement::{HostSpec, Pool, PoolConfig, RackId, VmSpec, place_all};

const CAP: Resources = Resources::new(64_000, 256 << 30, 0);

/// SplitMix64: a fixed, seedable stream for building instances (tests only).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Hosts used by the pack strategy for `vms` (with as many hosts available as VMs).
fn hosts_used(vms: &[Resources]) -> usize {
    let hosts = (0..vms.len())
        .map(|i| HostSpec::new(format!("h{i:05}"), RackId(0), CAP))
        .collect();
    let config = PoolConfig {
        strategy: PlacementStrategy::Pack,
        ..PoolConfig::default()
    };
    let pool = Pool::new(hosts, vec!["r".into()], vec![], vec![], config).expect("valid");
    let specs = vms
        .iter()
        .enumerate()
        .map(|(i, r)| VmSpec::new(format!("v{i:05}"), *r))
        .collect();
    let out = place_all(pool, specs);
    assert!(out.unplaced.is_empty(), "one host per VM always suffices");
    out.hosts
        .iter()
        .flatten()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

/// Cuts `total` into `parts` positive pieces at random points.
fn split(rng: &mut Rng, total: u64, parts: usize, unit: u64) -> Vec<u64> {
    let units = total / unit;
    let mut cuts: Vec<u64> = (0..parts - 1).map(|_| 1 + rng.below(units - 1)).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for c in cuts.into_iter().chain([units]) {
        out.push((c - last) * unit);
        last = c;
    }
    out
}

/// K hosts' capacity split exactly into VMs and shuffled: the optimum is K.
fn known_optimum(rng: &mut Rng, k: usize) -> Vec<Resources> {
    let mut vms = Vec::new();
    for _ in 0..k {
        let parts = 3 + rng.below(8) as usize;
        let cpu = split(rng, CAP.cpu_millis, parts, 1000);
        let mem = split(rng, CAP.memory_bytes, cpu.len(), 1 << 30);
        let n = cpu.len().min(mem.len());
        // Equal piece counts: merge any surplus into the last piece of the longer split.
        let fold = |v: &[u64]| {
            let mut v = v.to_vec();
            let extra: u64 = v.drain(n..).sum();
            v[n - 1] += extra;
            v
        };
        let (cpu, mem) = (fold(&cpu), fold(&mem));
        vms.extend((0..n).map(|i| Resources::new(cpu[i], mem[i], 0)));
    }
    for i in (1..vms.len()).rev() {
        vms.swap(i, rng.below(i as u64 + 1) as usize);
    }
    vms
}

fn volume_bound(vms: &[Resources]) -> usize {
    let total = vms.iter().fold(Resources::ZERO, |a, v| a + *v);
    total
        .cpu_millis
        .div_ceil(CAP.cpu_millis)
        .max(total.memory_bytes.div_ceil(CAP.memory_bytes)) as usize
}

/// Fewest bins by branch and bound (each VM into an open bin or one new bin).
fn exact(vms: &[Resources]) -> usize {
    fn go(i: usize, vms: &[Resources], bins: &mut Vec<Resources>, best: &mut usize) {
        if bins.len() >= *best {
            return;
        }
        if i == vms.len() {
            *best = bins.len();
            return;
        }
        for b in 0..bins.len() {
            if (bins[b] + vms[i]).fits_in(&CAP) {
                bins[b] += vms[i];
                go(i + 1, vms, bins, best);
                bins[b] = bins[b] - vms[i];
            }
        }
        bins.push(vms[i]);
        go(i + 1, vms, bins, best);
        bins.pop();
    }
    let mut sorted = vms.to_vec();
    sorted.sort_by(|a, b| b.cmp(a));
    let mut best = vms.len();
    go(0, &sorted, &mut Vec::new(), &mut best);
    best
}

fn random_vm(rng: &mut Rng) -> Resources {
    Resources::new(
        1000 * (1 + rng.below(24)),
        (1 << 30) * (1 + rng.below(96)),
        0,
    )
}

fn gap(used: usize, bound: usize) -> f64 {
    used as f64 / bound as f64 - 1.0
}

#[test]
fn packing_gap_against_known_optimum_volume_bound_and_exact_search() {
    let mut rng = Rng(7);
    let mut known = Vec::new();
    for k in [5, 10, 50, 100, 500] {
        let vms = known_optimum(&mut rng, k);
        let used = hosts_used(&vms);
        assert!(used >= k, "nothing beats the optimum");
        known.push(gap(used, k));
        println!(
            "known optimum: {} VMs, optimum {k}, pack used {used} ({:.1}%)",
            vms.len(),
            100.0 * gap(used, k)
        );
    }
    let mut volume = Vec::new();
    for n in [50, 200, 1000, 3000] {
        let vms: Vec<_> = (0..n).map(|_| random_vm(&mut rng)).collect();
        let (used, lb) = (hosts_used(&vms), volume_bound(&vms));
        volume.push(gap(used, lb));
        println!(
            "volume bound: {n} VMs, bound {lb}, pack used {used} ({:.1}%)",
            100.0 * gap(used, lb)
        );
    }
    let mut exact_gaps = Vec::new();
    for _ in 0..20 {
        let n = 6 + rng.below(7) as usize;
        let vms: Vec<_> = (0..n).map(|_| random_vm(&mut rng)).collect();
        let (used, opt) = (hosts_used(&vms), exact(&vms));
        assert!(used >= opt);
        exact_gaps.push(gap(used, opt));
    }
    let avg = |v: &[f64]| 100.0 * v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "average gap: known optimum {:.1}%, volume bound {:.1}%, exact (20 instances of 6-12 VMs) {:.1}%",
        avg(&known),
        avg(&volume),
        avg(&exact_gaps)
    );
    assert!(
        avg(&volume) <= 10.0,
        "pack strays far from the volume bound"
    );
}
