//! HA admission control as vSphere defines it: `percentage`, `slots` and `failoverHosts`.
//!
//! The pure functions ([`slot_size`], [`slots_per_host`], [`failover_capacity`],
//! [`slot_report`], [`percentage_holds`]) compute the policies from capacities and VM
//! footprints; [`PoolState`](crate::PoolState) applies them to every power-on.

use std::collections::BTreeMap;

use plinth_model::Resources;
use plinth_model::units::{format_bytes, format_cpu};

use crate::hosts::HostId;

/// How much capacity HA keeps free for restarting the VMs of failed hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdmissionPolicy {
    /// No reserve: every VM that fits is admitted.
    #[default]
    Disabled,
    /// Reserve `host_failures / N` of the pool's CPU and memory (N = hosts up).
    Percentage {
        /// Host failures to tolerate.
        host_failures: u32,
    },
    /// Keep enough slots that the `host_failures` largest hosts can fail.
    Slots {
        /// Host failures to tolerate.
        host_failures: u32,
    },
    /// Dedicated, idle failover hosts that take VMs only after a failure.
    FailoverHosts {
        /// The dedicated hosts.
        hosts: Vec<HostId>,
    },
}

impl AdmissionPolicy {
    /// Host failures the policy is sized for.
    pub fn host_failures(&self) -> u32 {
        match self {
            Self::Disabled => 0,
            Self::Percentage { host_failures } | Self::Slots { host_failures } => *host_failures,
            Self::FailoverHosts { hosts } => u32::try_from(hosts.len()).unwrap_or(u32::MAX),
        }
    }
}

/// The slot policy evaluated over a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotReport {
    /// Slot size: the largest CPU and the largest memory footprint of any powered-on VM.
    pub slot: Resources,
    /// Slots each host holds, in the order the capacities were given.
    pub slots_per_host: Vec<u64>,
    /// Sum of `slots_per_host`.
    pub total_slots: u64,
    /// Slots in use: one per powered-on VM.
    pub used_slots: u64,
    /// How many of the largest hosts can fail with the rest still holding every VM.
    pub failover_capacity: u32,
}

/// Slot size: part-wise largest CPU and memory footprint (each at least 1, disk ignored).
/// A footprint's CPU is already vCPU ÷ the CPU overcommit ratio.
pub fn slot_size<'a>(footprints: impl IntoIterator<Item = &'a Resources>) -> Resources {
    let max = footprints
        .into_iter()
        .fold(Resources::ZERO, |acc, fp| crate::hosts::max_each(&acc, fp));
    Resources::new(max.cpu_millis.max(1), max.memory_bytes.max(1), 0)
}

/// Slots one host holds: min(CPU ÷ slot CPU, memory ÷ slot memory).
pub fn slots_per_host(capacity: &Resources, slot: &Resources) -> u64 {
    (capacity.cpu_millis / slot.cpu_millis.max(1))
        .min(capacity.memory_bytes / slot.memory_bytes.max(1))
}

/// How many hosts can fail, largest first, while the remaining slots still hold `vms`.
pub fn failover_capacity(slots_per_host: &[u64], vms: u64) -> u32 {
    let mut slots = slots_per_host.to_vec();
    slots.sort_unstable_by(|a, b| b.cmp(a));
    let mut remaining: u64 = slots.iter().sum();
    let mut failures = 0;
    for s in slots {
        remaining -= s;
        if remaining < vms {
            break;
        }
        failures += 1;
    }
    failures
}

/// The slot policy over hosts of `capacities` running VMs of `footprints`.
pub fn slot_report(capacities: &[Resources], footprints: &[Resources]) -> SlotReport {
    let slot = slot_size(footprints);
    let slots_per_host: Vec<u64> = capacities
        .iter()
        .map(|c| slots_per_host(c, &slot))
        .collect();
    let used_slots = footprints.len() as u64;
    SlotReport {
        slot,
        total_slots: slots_per_host.iter().sum(),
        failover_capacity: failover_capacity(&slots_per_host, used_slots),
        slots_per_host,
        used_slots,
    }
}

/// Whether `used` stays within `capacity × (hosts − host_failures) / hosts` on CPU and
/// memory: the percentage policy with the reserve set to F/N.
pub fn percentage_holds(
    capacity: &Resources,
    used: &Resources,
    hosts: u32,
    host_failures: u32,
) -> bool {
    percentage_violation(capacity, used, hosts, host_failures).is_none()
}

fn percentage_violation(
    capacity: &Resources,
    used: &Resources,
    hosts: u32,
    failures: u32,
) -> Option<String> {
    if failures == 0 {
        return None;
    }
    if hosts <= failures {
        if used.cpu_millis == 0 && used.memory_bytes == 0 {
            return None;
        }
        return Some(format!(
            "HA admission control (percentage): reserving {failures} host failures leaves nothing of {hosts} hosts"
        ));
    }
    let keep = u128::from(hosts - failures);
    let n = u128::from(hosts);
    let over = |used: u64, cap: u64| u128::from(used) * n > u128::from(cap) * keep;
    let pct = (100 * u64::from(failures)).div_ceil(u64::from(hosts));
    let what = if over(used.cpu_millis, capacity.cpu_millis) {
        "CPU"
    } else if over(used.memory_bytes, capacity.memory_bytes) {
        "memory"
    } else {
        return None;
    };
    Some(format!(
        "HA admission control (percentage): {what} would cut into the {pct}% reserved for {failures} of {hosts} hosts failing"
    ))
}

/// The hosts that are up, as admission control needs them.
pub(crate) struct UpHosts<'a> {
    /// Number of hosts up.
    pub count: u32,
    /// Sum of their capacities.
    pub capacity: Resources,
    /// Changes whenever the set of hosts up changes.
    pub version: u64,
    /// Their capacities (computed only when the slot cache misses).
    pub capacities: &'a dyn Fn() -> Vec<Resources>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SlotCache {
    slot: Resources,
    version: u64,
    failures: u32,
    surviving: u64,
}

/// Running totals of powered-on VMs for admission checks in O(1) (slot policy: amortized).
#[derive(Clone, Debug, Default)]
pub(crate) struct AdmissionTracker {
    used: Resources,
    vms: u64,
    cpu: BTreeMap<u64, u32>,
    mem: BTreeMap<u64, u32>,
    cache: Option<SlotCache>,
}

/// Equal when the totals are equal; the slot cache is not part of the state.
impl PartialEq for AdmissionTracker {
    fn eq(&self, other: &Self) -> bool {
        self.used == other.used
            && self.vms == other.vms
            && self.cpu == other.cpu
            && self.mem == other.mem
    }
}

impl Eq for AdmissionTracker {}

impl AdmissionTracker {
    pub(crate) fn add(&mut self, fp: &Resources) {
        self.used += *fp;
        self.vms += 1;
        *self.cpu.entry(fp.cpu_millis).or_insert(0) += 1;
        *self.mem.entry(fp.memory_bytes).or_insert(0) += 1;
    }

    pub(crate) fn sub(&mut self, fp: &Resources) {
        self.used = self.used - *fp;
        self.vms = self.vms.saturating_sub(1);
        for (map, key) in [
            (&mut self.cpu, fp.cpu_millis),
            (&mut self.mem, fp.memory_bytes),
        ] {
            if let Some(n) = map.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&key);
                }
            }
        }
    }

    /// The current slot size.
    pub(crate) fn slot(&self) -> Resources {
        let cpu = self.cpu.last_key_value().map_or(0, |(k, _)| *k);
        let mem = self.mem.last_key_value().map_or(0, |(k, _)| *k);
        Resources::new(cpu.max(1), mem.max(1), 0)
    }

    /// Whether one more VM of footprint `fp` keeps the reserve for `failures` more host
    /// failures; the reason when it does not.
    pub(crate) fn admits(
        &mut self,
        policy: &AdmissionPolicy,
        up: &UpHosts<'_>,
        failures: u32,
        fp: &Resources,
    ) -> Result<(), String> {
        match policy {
            AdmissionPolicy::Disabled | AdmissionPolicy::FailoverHosts { .. } => Ok(()),
            AdmissionPolicy::Percentage { .. } => {
                match percentage_violation(&up.capacity, &(self.used + *fp), up.count, failures) {
                    Some(reason) => Err(reason),
                    None => Ok(()),
                }
            }
            AdmissionPolicy::Slots { .. } => {
                if failures == 0 {
                    return Ok(());
                }
                let current = self.slot();
                let slot = Resources::new(
                    current.cpu_millis.max(fp.cpu_millis),
                    current.memory_bytes.max(fp.memory_bytes),
                    0,
                );
                let surviving = self.surviving_slots(slot, up, failures);
                if surviving > self.vms {
                    Ok(())
                } else {
                    Err(format!(
                        "HA admission control (slots): {} VMs would need more than the {surviving} slots of {} CPU, {} left after {failures} host failures",
                        self.vms + 1,
                        format_cpu(slot.cpu_millis),
                        format_bytes(slot.memory_bytes)
                    ))
                }
            }
        }
    }

    fn surviving_slots(&mut self, slot: Resources, up: &UpHosts<'_>, failures: u32) -> u64 {
        if let Some(c) = &self.cache
            && c.slot == slot
            && c.version == up.version
            && c.failures == failures
        {
            return c.surviving;
        }
        let mut slots: Vec<u64> = (up.capacities)()
            .iter()
            .map(|c| slots_per_host(c, &slot))
            .collect();
        slots.sort_unstable_by(|a, b| b.cmp(a));
        let surviving = slots.iter().skip(failures as usize).sum();
        self.cache = Some(SlotCache {
            slot,
            version: up.version,
            failures,
            surviving,
        });
        surviving
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_model::units::GIB;

    /// vSphere documentation, "Slot Policy Admission Control": 1 GHz is 1000 millis.
    #[test]
    fn vsphere_worked_example() {
        let hosts = [
            Resources::new(9000, 9 * GIB, 0),
            Resources::new(9000, 6 * GIB, 0),
            Resources::new(6000, 6 * GIB, 0),
        ];
        let vms = [
            Resources::new(2000, GIB, 0),
            Resources::new(2000, GIB, 0),
            Resources::new(1000, 2 * GIB, 0),
            Resources::new(1000, GIB, 0),
            Resources::new(1000, GIB, 0),
        ];
        let report = slot_report(&hosts, &vms);
        assert_eq!(report.slot, Resources::new(2000, 2 * GIB, 0));
        assert_eq!(report.slots_per_host, vec![4, 3, 3]);
        assert_eq!(report.total_slots, 10);
        assert_eq!(report.used_slots, 5);
        assert_eq!(report.failover_capacity, 1);
    }

    #[test]
    fn percentage_reserves_f_over_n() {
        let cap = Resources::new(3000, 3000, 0);
        assert!(percentage_holds(&cap, &Resources::new(2000, 2000, 0), 3, 1));
        assert!(!percentage_holds(&cap, &Resources::new(2001, 0, 0), 3, 1));
        assert!(!percentage_holds(&cap, &Resources::new(0, 1, 0), 1, 1));
        assert!(percentage_holds(&cap, &cap, 3, 0));
    }

    #[test]
    fn failover_capacity_counts_largest_hosts_first() {
        assert_eq!(failover_capacity(&[4, 3, 3], 0), 3);
        assert_eq!(failover_capacity(&[4, 3, 3], 7), 0);
        assert_eq!(failover_capacity(&[1, 1, 10], 2), 1);
    }
}
