//! Capacity planning for a virtualization pool: the fewest hosts that hold an estate under
//! the headroom rule — capacity, hard placement groups, one upgrade surge, hosts in
//! maintenance and HA (admission control plus `host_failures` of the largest hosts lost) —
//! using owned hosts first, then buying the class that makes the purchase cheapest.
//!
//! A plan is minimal in a checked sense: [`CapacityPlan::one_fewer`] names the condition
//! the plan fails with one host fewer.

use std::fmt;

use plinth_model::Resources;
use plinth_model::policy::SpreadMode;

use crate::admission::AdmissionPolicy;
use crate::error::PlacementError;
use crate::hosts::{HostSpec, RackId};
use crate::place_all::place_all;
use crate::pool::{Pool, PoolConfig};
use crate::vm::{Group, VmSpec};

/// A server model that can be bought.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostClass {
    /// Class name.
    pub name: String,
    /// What VMs may use on one host of the class (after hypervisor and storage reservations).
    pub capacity: Resources,
    /// Price of one host, in the price sheet's unit.
    pub price: u64,
}

/// A host already owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedHost {
    /// Host name.
    pub name: String,
    /// Index into [`CapacityProblem::classes`].
    pub class: usize,
    /// Its rack.
    pub rack: RackId,
}

/// The headroom rule every plan must meet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadroomRule {
    /// Host failures to survive (largest hosts first) with every VM restarted.
    pub host_failures: u32,
    /// Hosts in maintenance at the same time as the failures.
    pub maintenance: u32,
    /// Extra copies of the largest VM during a rolling upgrade (surge nodes).
    pub surge: u32,
}

/// The demand to plan for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityProblem {
    /// Classes that can be bought (and that owned hosts belong to).
    pub classes: Vec<HostClass>,
    /// Hosts already owned.
    pub owned: Vec<OwnedHost>,
    /// Rack names; bought hosts are spread over them in turn (one rack `new` if empty).
    pub racks: Vec<String>,
    /// Placement groups the VMs refer to.
    pub groups: Vec<Group>,
    /// The VMs (VM→host rules are ignored: hosts are not known yet).
    pub vms: Vec<VmSpec>,
    /// Overcommit, overhead, strategy and admission control.
    pub config: PoolConfig,
    /// The headroom rule.
    pub rule: HeadroomRule,
}

/// A named condition a set of hosts can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Condition {
    /// The VMs do not fit at all.
    Capacity,
    /// They fit, but not with hard placement groups respected.
    PlacementGroup,
    /// They do not fit with the upgrade surge added.
    Surge,
    /// They do not fit with hosts in maintenance.
    Maintenance,
    /// Admission control refuses them, or they do not survive the host failures.
    HaReserve,
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Capacity => "capacity",
            Self::PlacementGroup => "placement group",
            Self::Surge => "surge",
            Self::Maintenance => "maintenance",
            Self::HaReserve => "HA reserve",
        })
    }
}

/// Why a set of hosts is not enough.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortfall {
    /// The first condition failed.
    pub condition: Condition,
    /// The placement error behind it.
    pub detail: String,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.condition, self.detail)
    }
}

/// Hosts of one class in a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassUsage {
    /// Class name.
    pub class: String,
    /// Owned hosts the plan uses.
    pub owned_used: u32,
    /// Owned hosts the plan leaves spare.
    pub owned_spare: u32,
    /// Hosts to buy.
    pub to_buy: u32,
}

/// The fewest hosts that meet the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CapacityPlan {
    /// Hosts used (owned plus bought).
    pub hosts: u32,
    /// Per class, in class order.
    pub per_class: Vec<ClassUsage>,
    /// Total price of the hosts to buy.
    pub cost_to_buy: u64,
    /// The hosts of the plan, owned first.
    pub host_names: Vec<String>,
    /// What fails with one host fewer (`None` when the plan has no hosts).
    pub one_fewer: Option<Shortfall>,
}

/// The fewest hosts, owned first, then of the class that makes the purchase cheapest (ties:
/// fewer hosts, then class name). Errors only when no class can hold the largest VM.
pub fn plan_capacity(problem: &CapacityProblem) -> Result<CapacityPlan, PlacementError> {
    let owned = owned_largest_first(problem);
    let mut best: Option<(u64, u32, CapacityPlan)> = None;
    let mut last_error = None;
    let mut classes: Vec<usize> = (0..problem.classes.len()).collect();
    classes.sort_by(|a, b| problem.classes[*a].name.cmp(&problem.classes[*b].name));
    for class in classes {
        match plan_with(problem, &owned, class) {
            Ok(plan) => {
                let key = (plan.cost_to_buy, plan.hosts);
                if best.as_ref().is_none_or(|(c, h, _)| key < (*c, *h)) {
                    best = Some((key.0, key.1, plan));
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    match (best, last_error) {
        (Some((_, _, plan)), _) => Ok(plan),
        (None, Some(e)) => Err(e),
        (None, None) => Err(PlacementError::Invalid {
            reason: "no host class to plan with".into(),
        }),
    }
}

/// Whether `hosts` meet the rule for the problem's VMs; the first condition failed if not.
pub fn check_hosts(problem: &CapacityProblem, hosts: &[HostSpec]) -> Result<(), Shortfall> {
    let no_admission = PoolConfig {
        admission: AdmissionPolicy::Disabled,
        ..problem.config.clone()
    };
    let relaxed: Vec<Group> = problem
        .groups
        .iter()
        .map(|g| Group {
            policy: plinth_model::policy::PlacementPolicy {
                mode: SpreadMode::Soft,
                ..g.policy
            },
            ..g.clone()
        })
        .collect();
    let vms: Vec<VmSpec> = problem
        .vms
        .iter()
        .map(|v| VmSpec {
            rule: None,
            ..v.clone()
        })
        .collect();
    let run = |hosts: &[HostSpec], groups: &[Group], config: &PoolConfig, vms: &[VmSpec]| {
        let pool = problem
            .pool(hosts.to_vec(), groups.to_vec(), config.clone())
            .map_err(|e| vec![e])?;
        let out = place_all(pool, vms.to_vec());
        if out.unplaced.is_empty() {
            Ok(())
        } else {
            Err(out.unplaced.into_iter().map(|(_, e)| e).collect::<Vec<_>>())
        }
    };
    let fail = |condition, errors: Vec<PlacementError>| Shortfall {
        condition,
        detail: errors.first().map(ToString::to_string).unwrap_or_default(),
    };
    run(hosts, &relaxed, &no_admission, &vms).map_err(|e| fail(Condition::Capacity, e))?;
    run(hosts, &problem.groups, &no_admission, &vms)
        .map_err(|e| fail(Condition::PlacementGroup, e))?;
    let with_surge = add_surge(problem, &vms);
    run(hosts, &problem.groups, &no_admission, &with_surge)
        .map_err(|e| fail(Condition::Surge, e))?;
    if problem.config.admission != AdmissionPolicy::Disabled {
        run(hosts, &problem.groups, &problem.config, &with_surge)
            .map_err(|e| fail(Condition::HaReserve, e))?;
    }
    let mut largest: Vec<&HostSpec> = hosts.iter().collect();
    largest.sort_by(|a, b| {
        size_key(b)
            .cmp(&size_key(a))
            .then_with(|| a.name.cmp(&b.name))
    });
    let without = |k: usize| -> Vec<HostSpec> {
        let gone: Vec<&str> = largest.iter().take(k).map(|h| h.name.as_str()).collect();
        hosts
            .iter()
            .filter(|h| !gone.contains(&h.name.as_str()))
            .cloned()
            .collect()
    };
    let m = problem.rule.maintenance as usize;
    if m > 0 {
        run(&without(m), &problem.groups, &no_admission, &with_surge)
            .map_err(|e| fail(Condition::Maintenance, e))?;
    }
    let f = problem.rule.host_failures as usize;
    if f > 0 {
        run(&without(m + f), &problem.groups, &no_admission, &with_surge)
            .map_err(|e| fail(Condition::HaReserve, e))?;
    }
    Ok(())
}

fn size_key(h: &HostSpec) -> (u64, u64) {
    (h.capacity.memory_bytes, h.capacity.cpu_millis)
}

impl CapacityProblem {
    /// A pool of `hosts` in the problem's racks, with `groups` and `config` and no VM→host
    /// rules.
    pub fn pool(
        &self,
        hosts: Vec<HostSpec>,
        groups: Vec<Group>,
        config: PoolConfig,
    ) -> Result<Pool, PlacementError> {
        Pool::new(hosts, racks(self), groups, Vec::new(), config)
    }
}

fn racks(problem: &CapacityProblem) -> Vec<String> {
    if problem.racks.is_empty() {
        vec!["new".to_string()]
    } else {
        problem.racks.clone()
    }
}

/// A host's size, largest first: memory, then CPU.
fn size(problem: &CapacityProblem, h: &OwnedHost) -> std::cmp::Reverse<(u64, u64)> {
    let c = problem.classes[h.class].capacity;
    std::cmp::Reverse((c.memory_bytes, c.cpu_millis))
}

/// Owned hosts in the order a plan takes them: largest first and, among hosts of one size,
/// round-robin over their racks (the first of each rack in rack order, then the second, …;
/// by name within a rack), so that a design that needs only some of them spreads over the
/// racks, as its bought hosts do. A plan lists the hosts it took by size, then name.
fn owned_largest_first(problem: &CapacityProblem) -> Vec<&OwnedHost> {
    let mut owned: Vec<&OwnedHost> = problem
        .owned
        .iter()
        .filter(|h| h.class < problem.classes.len())
        .collect();
    owned.sort_by_key(|h| (size(problem, h), h.rack, &h.name));
    let mut ranked: Vec<(usize, &OwnedHost)> = Vec::with_capacity(owned.len());
    for h in owned {
        let rank = match ranked.last() {
            Some((r, prev)) if prev.rack == h.rack && size(problem, prev) == size(problem, h) => {
                r + 1
            }
            _ => 0,
        };
        ranked.push((rank, h));
    }
    ranked.sort_by_key(|(rank, h)| (size(problem, h), *rank, h.rack, &h.name));
    ranked.into_iter().map(|(_, h)| h).collect()
}

/// What `vm` takes from a host under the problem's overcommit and overhead.
fn footprint(problem: &CapacityProblem, vm: &VmSpec) -> Resources {
    problem
        .config
        .overcommit
        .footprint(&vm.demand, &problem.config.vm_overhead)
}

/// The problem's VMs plus `surge` copies of the largest one (memory, then CPU; ties by
/// name), in its group: the node a rolling upgrade adds before it removes one.
fn add_surge(problem: &CapacityProblem, vms: &[VmSpec]) -> Vec<VmSpec> {
    let mut out = vms.to_vec();
    let key = |v: &VmSpec| {
        let f = footprint(problem, v);
        (f.memory_bytes, f.cpu_millis)
    };
    let largest = (0..vms.len()).max_by(|&a, &b| {
        key(&vms[a])
            .cmp(&key(&vms[b]))
            .then_with(|| vms[b].name.cmp(&vms[a].name))
    });
    if let Some(i) = largest {
        for k in 0..problem.rule.surge {
            out.push(VmSpec {
                name: format!("{}-surge-{}", vms[i].name, k + 1),
                ..vms[i].clone()
            });
        }
    }
    out
}

/// The first `n` candidate hosts: owned largest first, then bought hosts of `class`.
fn candidates(
    problem: &CapacityProblem,
    owned: &[&OwnedHost],
    class: usize,
    n: usize,
) -> Vec<HostSpec> {
    let racks = racks(problem).len();
    let mut taken: Vec<&OwnedHost> = owned.iter().take(n).copied().collect();
    taken.sort_by_key(|h| (size(problem, h), &h.name));
    let mut hosts: Vec<HostSpec> = taken
        .into_iter()
        .map(|h| {
            HostSpec::new(
                h.name.clone(),
                if (h.rack.0 as usize) < racks {
                    h.rack
                } else {
                    RackId(0)
                },
                problem.classes[h.class].capacity,
            )
        })
        .collect();
    let c = &problem.classes[class];
    for i in 0..n.saturating_sub(owned.len()) {
        hosts.push(HostSpec::new(
            format!("buy-{}-{:03}", c.name, i + 1),
            RackId((i % racks) as u32),
            c.capacity,
        ));
    }
    hosts
}

fn plan_with(
    problem: &CapacityProblem,
    owned: &[&OwnedHost],
    class: usize,
) -> Result<CapacityPlan, PlacementError> {
    let c = &problem.classes[class];
    if let Some(v) = problem
        .vms
        .iter()
        .find(|v| !footprint(problem, v).fits_in(&c.capacity))
    {
        let mut explanation = crate::Explanation::new("host classes", 1);
        explanation.reject(format!("{} too small", c.name));
        return Err(PlacementError::Unplaceable {
            vm: v.name.clone(),
            explanation,
        });
    }
    let check = |n: usize| check_hosts(problem, &candidates(problem, owned, class, n));
    // Volume lower bound on bought hosts, as a starting point for doubling.
    let total = problem
        .vms
        .iter()
        .fold(Resources::ZERO, |acc, v| acc + footprint(problem, v));
    let per = |t: u64, c: u64| if c == 0 { 0 } else { t.div_ceil(c) };
    let volume = per(total.cpu_millis, c.capacity.cpu_millis)
        .max(per(total.memory_bytes, c.capacity.memory_bytes)) as usize;
    let limit = owned.len() + 4 * (volume + problem.vms.len()) + 16;
    let mut fail = 0usize;
    let mut pass = volume.max(1);
    if check(0).is_ok() {
        pass = 0;
    } else {
        loop {
            match check(pass) {
                Ok(()) => break,
                Err(shortfall) => {
                    fail = pass;
                    if pass >= limit {
                        return Err(PlacementError::Invalid {
                            reason: format!("no plan with up to {limit} hosts: {shortfall}"),
                        });
                    }
                    pass = (pass * 2).min(limit);
                }
            }
        }
        while pass - fail > 1 {
            let mid = fail + (pass - fail) / 2;
            if check(mid).is_ok() {
                pass = mid
            } else {
                fail = mid
            }
        }
    }
    let one_fewer = if pass == 0 {
        None
    } else {
        check(pass - 1).err()
    };
    let hosts = candidates(problem, owned, class, pass);
    let bought = pass.saturating_sub(owned.len()) as u32;
    let per_class = problem
        .classes
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let owned_total = owned.iter().filter(|h| h.class == i).count() as u32;
            let owned_used = owned.iter().take(pass).filter(|h| h.class == i).count() as u32;
            ClassUsage {
                class: k.name.clone(),
                owned_used,
                owned_spare: owned_total - owned_used,
                to_buy: if i == class { bought } else { 0 },
            }
        })
        .collect();
    Ok(CapacityPlan {
        hosts: pass as u32,
        per_class,
        cost_to_buy: u64::from(bought) * c.price,
        host_names: hosts.into_iter().map(|h| h.name).collect(),
        one_fewer,
    })
}
