//! Node scores with kube-scheduler's plugins and default weights. Every plugin yields 0–100
//! per node; the node's score is the weighted sum; the highest wins, ties go to the node
//! whose name sorts first.
//!
//! Scores are computed in `f64` (IEEE arithmetic is deterministic) and are not truncated to
//! integers as kube-scheduler does, so fewer nodes tie.

use plinth_model::units::MIB;

/// kube-scheduler's largest plugin score.
pub const MAX_NODE_SCORE: f64 = 100.0;
/// Weight of NodeResourcesFit (LeastAllocated / MostAllocated).
pub const WEIGHT_FIT: f64 = 1.0;
/// Weight of NodeResourcesBalancedAllocation.
pub const WEIGHT_BALANCED: f64 = 1.0;
/// Weight of InterPodAffinity (preferred pod affinity and anti-affinity).
pub const WEIGHT_INTER_POD_AFFINITY: f64 = 2.0;
/// Weight of PodTopologySpread (`ScheduleAnyway` constraints).
pub const WEIGHT_TOPOLOGY_SPREAD: f64 = 2.0;
/// Weight of NodeAffinity (preferred node affinity).
pub const WEIGHT_NODE_AFFINITY: f64 = 2.0;
/// Weight of TaintToleration (untolerated `PreferNoSchedule` taints).
pub const WEIGHT_TAINT_TOLERATION: f64 = 3.0;
/// The CPU a pod without a CPU request counts as when scoring (kube's non-zero default).
pub const DEFAULT_CPU_REQUEST_MILLIS: u64 = 100;
/// The memory a pod without a memory request counts as when scoring.
pub const DEFAULT_MEMORY_REQUEST_BYTES: u64 = 200 * MIB;

/// How NodeResourcesFit scores nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ScoringStrategy {
    /// Prefer the emptiest nodes (kube-scheduler's default): spreads load.
    #[default]
    LeastAllocated,
    /// Prefer the fullest nodes: packs pods, frees whole nodes.
    MostAllocated,
}

/// The request a pod counts as when scoring: zero CPU or memory becomes kube's default.
pub const fn non_zero(cpu_millis: u64, memory_bytes: u64) -> (u64, u64) {
    (
        if cpu_millis == 0 {
            DEFAULT_CPU_REQUEST_MILLIS
        } else {
            cpu_millis
        },
        if memory_bytes == 0 {
            DEFAULT_MEMORY_REQUEST_BYTES
        } else {
            memory_bytes
        },
    )
}

/// NodeResourcesFit for CPU and memory, equally weighted. `cpu` and `mem` are the fractions
/// of allocatable requested once the pod is added (non-zero requests).
#[inline]
pub fn fit(strategy: ScoringStrategy, cpu: f64, mem: f64) -> f64 {
    match strategy {
        ScoringStrategy::LeastAllocated => {
            (MAX_NODE_SCORE / 2.0) * ((1.0 - cpu).max(0.0) + (1.0 - mem).max(0.0))
        }
        ScoringStrategy::MostAllocated => (MAX_NODE_SCORE / 2.0) * (cpu.min(1.0) + mem.min(1.0)),
    }
}

/// NodeResourcesBalancedAllocation: 100 × (1 − standard deviation of the CPU and memory
/// fractions), fractions of actual requests capped at 1.
#[inline]
pub fn balanced(cpu: f64, mem: f64) -> f64 {
    MAX_NODE_SCORE * (1.0 - (cpu.min(1.0) - mem.min(1.0)).abs() / 2.0)
}

/// kube's DefaultNormalizeScore: scales raw scores so the largest becomes 100 (reversed:
/// the smallest becomes 100). All-zero input stays zero (reversed: all 100).
pub fn normalize(raw: &mut [f64], reverse: bool) {
    let max = raw.iter().copied().fold(0.0_f64, f64::max);
    for s in raw.iter_mut() {
        let scaled = if max > 0.0 {
            MAX_NODE_SCORE * *s / max
        } else {
            0.0
        };
        *s = if reverse {
            MAX_NODE_SCORE - scaled
        } else {
            scaled
        };
    }
}

/// InterPodAffinity's normalization: min..max mapped onto 0..100 (all equal → 0).
pub fn normalize_min_max(raw: &mut [f64]) {
    let max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = raw.iter().copied().fold(f64::INFINITY, f64::min);
    let diff = max - min;
    for s in raw.iter_mut() {
        *s = if diff > 0.0 {
            MAX_NODE_SCORE * (*s - min) / diff
        } else {
            0.0
        };
    }
}

/// PodTopologySpread's normalization: fewer matching pods is better,
/// `100 × (max + min − s) / max`; nodes without the topology label (`None`) score 0.
pub fn normalize_spread(raw: &mut [f64], missing: &[bool]) {
    let mut max = 0.0_f64;
    let mut min = f64::INFINITY;
    for (s, m) in raw.iter().zip(missing) {
        if !*m {
            max = max.max(*s);
            min = min.min(*s);
        }
    }
    for (s, m) in raw.iter_mut().zip(missing) {
        *s = if *m {
            0.0
        } else if max == 0.0 {
            MAX_NODE_SCORE
        } else {
            MAX_NODE_SCORE * (max + min - *s) / max
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_scores_match_kube_examples() {
        // kube docs: node 4 CPU / 10 GiB, requested 3 CPU / 5 GiB after the pod.
        let (c, m) = (3.0 / 4.0, 5.0 / 10.0);
        assert!((fit(ScoringStrategy::LeastAllocated, c, m) - 37.5).abs() < 1e-9);
        assert!((fit(ScoringStrategy::MostAllocated, c, m) - 62.5).abs() < 1e-9);
        assert!((balanced(c, m) - 87.5).abs() < 1e-9);
        assert_eq!(fit(ScoringStrategy::LeastAllocated, 1.5, 0.0), 50.0);
        assert_eq!(balanced(0.5, 0.5), 100.0);
    }

    #[test]
    fn normalizers() {
        let mut v = vec![0.0, 5.0, 10.0];
        normalize(&mut v, false);
        assert_eq!(v, vec![0.0, 50.0, 100.0]);
        let mut v = vec![0.0, 1.0, 2.0];
        normalize(&mut v, true);
        assert_eq!(v, vec![100.0, 50.0, 0.0]);
        let mut v = vec![-4.0, 0.0, 4.0];
        normalize_min_max(&mut v);
        assert_eq!(v, vec![0.0, 50.0, 100.0]);
        let mut v = vec![0.0, 2.0, 4.0, 9.0];
        normalize_spread(&mut v, &[false, false, false, true]);
        assert_eq!(v, vec![100.0, 50.0, 0.0, 0.0]);
        assert_eq!(non_zero(0, 0), (100, 200 * MIB));
    }
}
