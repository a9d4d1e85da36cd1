//! Hosts of a virtualization pool and the arithmetic of fitting VMs onto them: overcommit
//! ratios, per-VM overhead and the free-capacity score that orders hosts.

use plinth_model::Resources;

/// Index of a host in [`Pool::hosts`](crate::Pool::hosts).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct HostId(pub u32);

impl HostId {
    /// The position in the pool's host vector.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Index of a rack in [`Pool::racks`](crate::Pool::racks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RackId(pub u32);

/// A host as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    /// Unique name; ties between equally good hosts break by it.
    pub name: String,
    /// The rack (power and failure domain) the host stands in.
    pub rack: RackId,
    /// What VMs may use, already reduced by the caller for the hypervisor's and the
    /// hyperconverged storage's reservations. CPU is physical threads × 1000.
    pub capacity: Resources,
}

impl HostSpec {
    /// A host called `name` in `rack` offering `capacity`.
    pub fn new(name: impl Into<String>, rack: RackId, capacity: Resources) -> Self {
        Self {
            name: name.into(),
            rack,
            capacity,
        }
    }
}

/// Whether a host takes VMs.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum HostStatus {
    /// Running and accepting VMs.
    #[default]
    Up,
    /// Failed; its VMs were restarted elsewhere or stranded.
    Failed,
    /// In maintenance mode: accepts no VMs.
    Maintenance,
    /// A dedicated failover host (admission policy `failoverHosts`): idle until a failure.
    Standby,
}

/// CPU and memory overcommit ratios in thousandths (1000 = no overcommit, 4000 = 4:1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Overcommit {
    /// vCPUs per physical thread, × 1000.
    pub cpu_permille: u32,
    /// Guest memory per byte of host memory, × 1000.
    pub memory_permille: u32,
}

impl Default for Overcommit {
    fn default() -> Self {
        Self::NONE
    }
}

impl Overcommit {
    /// No overcommit on either resource.
    pub const NONE: Self = Self {
        cpu_permille: 1000,
        memory_permille: 1000,
    };

    /// What a VM of `demand` (vCPU millis, guest memory, disk) takes from a host: CPU and
    /// memory divided by their ratios (rounded up, so a ratio is never exceeded), plus the
    /// hypervisor's per-VM `overhead`, which is not overcommitted.
    pub fn footprint(&self, demand: &Resources, overhead: &Resources) -> Resources {
        Resources {
            cpu_millis: div_ceil_scaled(demand.cpu_millis, self.cpu_permille),
            memory_bytes: div_ceil_scaled(demand.memory_bytes, self.memory_permille),
            disk_bytes: demand.disk_bytes,
        } + *overhead
    }
}

/// `value × 1000 / permille`, rounded up; a zero ratio counts as 1:1.
fn div_ceil_scaled(value: u64, permille: u32) -> u64 {
    let permille = if permille == 0 {
        1000
    } else {
        u128::from(permille)
    };
    let scaled = (u128::from(value) * 1000).div_ceil(permille);
    u64::try_from(scaled).unwrap_or(u64::MAX)
}

/// Part-wise maximum of two bundles.
pub(crate) fn max_each(a: &Resources, b: &Resources) -> Resources {
    Resources {
        cpu_millis: a.cpu_millis.max(b.cpu_millis),
        memory_bytes: a.memory_bytes.max(b.memory_bytes),
        disk_bytes: a.disk_bytes.max(b.disk_bytes),
    }
}

/// Fixed-point scale of a free-capacity fraction in [`free_score`].
pub(crate) const SCORE_SCALE: u128 = 1 << 20;

fn fraction(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        0
    } else {
        // part ≤ whole in every use, so the quotient fits in u64.
        u64::try_from(u128::from(part) * SCORE_SCALE / u128::from(whole)).unwrap_or(u64::MAX)
    }
}

/// kube-scheduler's LeastAllocated score without the averaging: free CPU fraction plus
/// free memory fraction, fixed point. Highest = emptiest (spread), lowest = fullest (pack).
pub(crate) fn free_score(capacity: &Resources, used: &Resources) -> u64 {
    let free = capacity.saturating_sub(used);
    fraction(
        free.cpu_millis.min(capacity.cpu_millis),
        capacity.cpu_millis,
    ) + fraction(
        free.memory_bytes.min(capacity.memory_bytes),
        capacity.memory_bytes,
    )
}

/// A lower bound on the [`free_score`] of any host that can hold `footprint`, given the
/// largest capacity of any host: lets pack mode skip hosts that are too full.
pub(crate) fn score_floor(footprint: &Resources, max_capacity: &Resources) -> u64 {
    fraction(
        footprint.cpu_millis.min(max_capacity.cpu_millis),
        max_capacity.cpu_millis,
    ) + fraction(
        footprint.memory_bytes.min(max_capacity.memory_bytes),
        max_capacity.memory_bytes,
    )
}

/// The pack order's key: the smaller of the free CPU and free memory fractions, so a host
/// with either resource exhausted sorts as full (most allocated = tightest dimension).
pub(crate) fn tight_score(capacity: &Resources, used: &Resources) -> u64 {
    let free = capacity.saturating_sub(used);
    fraction(
        free.cpu_millis.min(capacity.cpu_millis),
        capacity.cpu_millis,
    )
    .min(fraction(
        free.memory_bytes.min(capacity.memory_bytes),
        capacity.memory_bytes,
    ))
}

/// A lower bound on the [`tight_score`] of any host that can hold `footprint`.
pub(crate) fn tight_floor(footprint: &Resources, max_capacity: &Resources) -> u64 {
    fraction(
        footprint.cpu_millis.min(max_capacity.cpu_millis),
        max_capacity.cpu_millis,
    )
    .min(fraction(
        footprint.memory_bytes.min(max_capacity.memory_bytes),
        max_capacity.memory_bytes,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_model::units::GIB;

    #[test]
    fn footprint_divides_by_ratio_and_adds_overhead() {
        let oc = Overcommit {
            cpu_permille: 4000,
            memory_permille: 1500,
        };
        let fp = oc.footprint(
            &Resources::new(2000, 3 * GIB, 10),
            &Resources::new(10, 100, 0),
        );
        assert_eq!(fp, Resources::new(510, 2 * GIB + 100, 10));
    }

    #[test]
    fn footprint_rounds_up_so_the_ratio_holds() {
        let oc = Overcommit {
            cpu_permille: 3000,
            memory_permille: 1000,
        };
        let fp = oc.footprint(&Resources::new(1000, 0, 0), &Resources::ZERO);
        assert_eq!(fp.cpu_millis, 334);
        assert!(fp.cpu_millis * 3 >= 1000);
    }

    #[test]
    fn score_orders_by_free_fraction() {
        let cap = Resources::new(1000, 1000, 0);
        let empty = free_score(&cap, &Resources::ZERO);
        let half = free_score(&cap, &Resources::new(500, 500, 0));
        assert!(empty > half);
        assert!(score_floor(&Resources::new(500, 500, 0), &cap) <= half);
        let cpu_full = tight_score(&cap, &Resources::new(1000, 0, 0));
        assert_eq!(
            cpu_full, 0,
            "an exhausted resource makes the host full for pack"
        );
        assert!(
            tight_floor(&Resources::new(500, 100, 0), &cap)
                <= tight_score(&cap, &Resources::new(500, 500, 0))
        );
    }
}
