//! The 13 dimensions: each a headline metric with a unit and a better direction, measured
//! per run from the design's static facts and the run's event log. Formulas and sources:
//! docs/dimensions.md.

use std::collections::{BTreeMap, BTreeSet};

use plinth_control::PoolName;
use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::VolumeStorage;
use plinth_model::kinds::calibration::Accelerator;
use plinth_model::kinds::environment::{EnvironmentType, PerformanceOverhead};
use serde::Serialize;

use crate::cost::{self, Cost, units};
use crate::design::{Design, Machine};
use crate::events::RunFacts;

/// Which way a metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Better {
    /// Smaller is better.
    Lower,
    /// Larger is better.
    Higher,
}

/// A dimension's identity and headline metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// 1–13, as DESIGN.md numbers them.
    pub number: u8,
    /// The key a Scenario's `weights` uses.
    pub key: &'static str,
    /// Title.
    pub title: &'static str,
    /// The headline metric.
    pub metric: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Which way is better.
    pub better: Better,
}

const fn spec(
    number: u8,
    key: &'static str,
    title: &'static str,
    metric: &'static str,
    unit: &'static str,
    better: Better,
) -> Spec {
    Spec {
        number,
        key,
        title,
        metric,
        unit,
        better,
    }
}

/// The 13 dimensions, in DESIGN.md's order; keys match `plinth_model::DIMENSION_KEYS`.
pub const DIMENSIONS: [Spec; 13] = [
    spec(
        1,
        "osFlexibility",
        "OS & version flexibility",
        "distinct (OS, Kubernetes) stacks per server",
        "stacks",
        Better::Higher,
    ),
    spec(
        2,
        "resourceAllocation",
        "Resource access & allocation",
        "stranded CPU",
        "% of CPU",
        Better::Lower,
    ),
    spec(
        3,
        "performance",
        "Performance",
        "CPU performance kept",
        "% of bare metal",
        Better::Higher,
    ),
    spec(
        4,
        "reliability",
        "Reliability",
        "expected control-plane time without quorum",
        "hours/year",
        Better::Lower,
    ),
    spec(
        5,
        "availability",
        "Availability",
        "pod-minutes unavailable",
        "pod-min/year",
        Better::Lower,
    ),
    spec(
        6,
        "agility",
        "Agility",
        "time to add a node",
        "hours",
        Better::Lower,
    ),
    spec(
        7,
        "scalability",
        "Scalability",
        "growth each cluster can take on this inventory (mean)",
        "% of worker CPU",
        Better::Higher,
    ),
    spec(
        8,
        "utilization",
        "Resource utilization",
        "physical CPU utilization",
        "%",
        Better::Higher,
    ),
    spec(
        9,
        "isolation",
        "Security & isolation",
        "cluster pairs sharing a physical server",
        "pairs",
        Better::Lower,
    ),
    spec(
        10,
        "cost",
        "Cost (TCO)",
        "total cost of ownership over the horizon",
        "currency",
        Better::Lower,
    ),
    spec(
        11,
        "lifecycle",
        "Cluster lifecycle",
        "capacity lost to upgrades",
        "core-hours/year",
        Better::Lower,
    ),
    spec(
        12,
        "independence",
        "Kernel / storage / network independence",
        "cluster settings a cluster controls alone",
        "% of settings",
        Better::Higher,
    ),
    spec(
        13,
        "operations",
        "Operations & data protection",
        "hands-on hours",
        "hours/year",
        Better::Lower,
    ),
];

/// A secondary metric shown beside a headline.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detail {
    /// What it is.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// Its value.
    pub value: f64,
}

fn detail(name: &str, unit: &str, value: f64) -> Detail {
    Detail {
        name: name.to_owned(),
        unit: unit.to_owned(),
        value,
    }
}

/// Everything measured in one run of one design.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Measures {
    /// Headline values, in [`DIMENSIONS`] order.
    pub headline: [f64; 13],
    /// Secondary values, in [`DIMENSIONS`] order.
    pub details: [Vec<Detail>; 13],
    /// The run's cost.
    pub cost: Cost,
    /// Per workload availability, %.
    pub availability: BTreeMap<String, f64>,
    /// Availability of the least available workload, % (100 with no workload).
    pub lowest_availability: f64,
    /// Workload-hours unavailable per year: `Σ_w (1 − availability_w) · 8 760`.
    pub workload_hours_unavailable: f64,
    /// Time to add a cluster like the first, hours.
    pub add_cluster_hours: f64,
}

/// A design's facts that no run changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaticFacts {
    /// Headline values of the dimensions that do not depend on a run (NaN for the rest).
    pub headline: [f64; 13],
    /// Their secondary values.
    pub details: [Vec<Detail>; 13],
    /// Provisioning phases of adding one node: (phase, seconds).
    pub add_node: Vec<(String, f64)>,
    /// Pods each server's failure would hit, per server.
    pub pods_per_server: Vec<f64>,
    /// Time to add a cluster like the first, hours.
    pub add_cluster_hours: f64,
}

/// The CPU, memory, disk and network performance overheads the virtualized design runs
/// with, and a warning when a Calibration was set aside.
pub fn overheads(estate: &Estate) -> (PerformanceOverhead, Option<String>) {
    let default = estate.virtualized.spec.performance_overhead;
    match &estate.calibration {
        Some(c) => match (c.spec.accelerator, c.spec.overhead) {
            (Accelerator::Kvm, Some(o)) => (
                PerformanceOverhead {
                    cpu: o.cpu,
                    memory: o.memory,
                    disk: o.disk.unwrap_or(default.disk),
                    network: o.network.unwrap_or(default.network),
                },
                None,
            ),
            (Accelerator::Tcg, Some(_)) => (
                default,
                Some(format!(
                    "Calibration {} was measured under software emulation (tcg), many times \
                     slower than KVM: its overheads are ignored for performance and the \
                     Environment's defaults are used",
                    c.name
                )),
            ),
            _ => (default, None),
        },
        None => (default, None),
    }
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

/// Whether HA can restart the control-plane VMs of rack `rack` when the rack loses power:
/// the hosts outside it have the free room, CPU and memory, for what those VMs take (a
/// fluid bound: summed over hosts, not fitted host by host). A rack that holds every host
/// can restart nothing; its VMs are back only when the rack is.
pub fn restartable(machines: &[Machine], rack: &str) -> bool {
    let (need, room) =
        machines
            .iter()
            .fold((Resources::ZERO, Resources::ZERO), |(need, room), m| {
                if m.rack == rack {
                    (need + m.control_plane_footprint, room)
                } else {
                    (need, room + m.free)
                }
            });
    need.cpu_millis <= room.cpu_millis && need.memory_bytes <= room.memory_bytes
}

/// Probability that fewer than a majority of `members` (server indices, repeats allowed
/// when two members share a server) are up, servers and racks failing independently with
/// unavailabilities `u_host[server]` and `u_rack[rack of server]`. Exact enumeration over the
/// servers and racks involved (at most 20; beyond that racks are left out).
pub fn quorum_loss(members: &[usize], rack_of: &[usize], u_host: &[f64], u_rack: &[f64]) -> f64 {
    if members.is_empty() {
        return 0.0;
    }
    let hosts: Vec<usize> = members
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut racks: Vec<usize> = hosts
        .iter()
        .map(|&h| rack_of[h])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if hosts.len() + racks.len() > 20 {
        racks.clear();
    }
    let hosts = &hosts[..hosts.len().min(20)];
    let n = hosts.len() + racks.len();
    let quorum = members.len() / 2 + 1;
    let mut lost = 0.0;
    for state in 0u32..(1 << n) {
        let down = |i: usize| state & (1 << i) != 0;
        let mut p = 1.0;
        for (i, &h) in hosts.iter().enumerate() {
            p *= if down(i) { u_host[h] } else { 1.0 - u_host[h] };
        }
        for (j, &r) in racks.iter().enumerate() {
            let i = hosts.len() + j;
            p *= if down(i) { u_rack[r] } else { 1.0 - u_rack[r] };
        }
        let up = members
            .iter()
            .filter(|&&m| {
                let hi = hosts.iter().position(|&h| h == m);
                let rack_down = racks
                    .iter()
                    .position(|&r| r == rack_of[m])
                    .is_some_and(|j| down(hosts.len() + j));
                // A member on a host beyond the enumeration counts as up (the formula
                // then understates the loss; control planes have far fewer members).
                hi.is_none_or(|i| !down(i)) && !rack_down
            })
            .count();
        if up < quorum {
            lost += p;
        }
    }
    lost
}

fn unavailability(down_ms: f64, mtbf_ms: f64) -> f64 {
    if down_ms <= 0.0 {
        0.0
    } else {
        down_ms / (mtbf_ms + down_ms)
    }
}

/// Of a cluster's three settings (kernel, storage, network), how many it controls alone,
/// one definition for both designs: its kernel always (a VM or a server of its own boots
/// it); its storage unless the volumes live on `shared` storage that `others` other
/// clusters also use; its network unless it shares a physical server with another
/// cluster (`alone_on_servers` false).
pub fn settings_alone(alone_on_servers: bool, storage: VolumeStorage, others: usize) -> usize {
    let storage_alone = storage == VolumeStorage::Local || others == 0;
    1 + usize::from(storage_alone) + usize::from(alone_on_servers)
}

/// Physical CPU utilization, %, one definition for both designs: useful work over
/// capacity. `simulated` is the CPU the simulator reports busy, which on a VM pool
/// includes the hypervisor's overhead, `(1 + overhead)·work`; overhead is a cost, not
/// work, so it is divided out. `other` is work from outside the simulation (the
/// bare-metal VM pool's profile).
pub fn utilization(simulated: f64, other: f64, capacity: f64, overhead: f64) -> f64 {
    pct(simulated / (1.0 + overhead) + other, capacity)
}

/// The share of a year a bare-metal server is down for planned work:
/// `(365 d / osPatchingInterval + kubernetesUpgradesPerYear) · reimage + (365 d /
/// hostPatchingInterval) · reboot`, over a year (at most 1).
pub fn planned_unavailability(estate: &Estate) -> f64 {
    let year = 365.0 * 86_400_000.0;
    let ops = &estate.scenario.spec.operations;
    let bm = &estate.bare_metal.spec;
    let per_year =
        |interval: plinth_model::quantity::Duration| year / (interval.millis().max(1) as f64);
    let reimages = per_year(ops.os_patching_interval) + f64::from(ops.kubernetes_upgrades_per_year);
    let down = reimages * bm.reimage.millis() as f64
        + per_year(ops.host_patching_interval) * bm.reboot.millis() as f64;
    (down / year).min(1.0)
}

/// Facts of `design` that hold for every run.
pub fn static_facts(estate: &Estate, design: &Design) -> StaticFacts {
    let virt = design.env == EnvironmentType::Virtualized;
    let vs = &estate.virtualized.spec;
    let bs = &estate.bare_metal.spec;
    let scenario = &estate.scenario.spec;
    let classes = &estate.inventory.spec.host_classes;
    let mut headline = [f64::NAN; 13];
    let mut details: [Vec<Detail>; 13] = Default::default();
    let k8s: Vec<_> = design
        .machines
        .iter()
        .filter(|m| !m.clusters.is_empty())
        .collect();

    // 1. Stacks per server; clusters alone on their servers.
    headline[0] = k8s.iter().map(|m| m.stacks.len() as f64).sum::<f64>() / k8s.len().max(1) as f64;
    let shares: BTreeSet<&str> = k8s
        .iter()
        .filter(|m| m.clusters.len() > 1)
        .flat_map(|m| m.clusters.iter().map(String::as_str))
        .collect();
    let dedicated = estate
        .clusters
        .iter()
        .filter(|c| !shares.contains(c.name.as_str()))
        .count();
    details[0].push(detail(
        "clusters forced onto dedicated servers",
        "clusters",
        dedicated as f64,
    ));
    let stacks: BTreeSet<_> = k8s.iter().flat_map(|m| m.stacks.iter()).collect();
    details[0].push(detail(
        "distinct stacks in the estate",
        "stacks",
        stacks.len() as f64,
    ));

    // 2. Stranded capacity.
    let cap = design.split.capacity;
    headline[1] = pct(design.stranded.cpu_millis as f64, cap.cpu_millis as f64);
    details[1].push(detail(
        "stranded memory",
        "% of memory",
        pct(design.stranded.memory_bytes as f64, cap.memory_bytes as f64),
    ));

    // 3. Performance kept.
    let (o, _) = overheads(estate);
    let kept = |loss: f64| if virt { 100.0 * (1.0 - loss) } else { 100.0 };
    headline[2] = kept(o.cpu);
    details[2].push(detail("memory performance kept", "%", kept(o.memory)));
    details[2].push(detail("disk IOPS kept", "%", kept(o.disk)));
    details[2].push(detail("network throughput kept", "%", kept(o.network)));

    // 4. Quorum loss and blast radius.
    let racks: Vec<&str> = design
        .machines
        .iter()
        .map(|m| m.rack.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rack_of: Vec<usize> = design
        .machines
        .iter()
        .map(|m| racks.iter().position(|r| *r == m.rack).unwrap_or(0))
        .collect();
    let restart_ms = (vs.ha.expected_restart_after().millis() + vs.timings.vm_boot.millis()) as f64;
    let failures = &scenario.failures;
    // Planned work takes a bare-metal server down too (a reimage per OS patch round and
    // per Kubernetes upgrade, a reboot per host patch); a member VM is surged or migrated
    // instead, so the pool plans no control-plane downtime.
    let planned = if virt {
        0.0
    } else {
        planned_unavailability(estate)
    };
    let u_host: Vec<f64> = design
        .machines
        .iter()
        .map(|m| {
            let f = failures
                .by_class
                .get(&classes[m.class].name)
                .copied()
                .unwrap_or(failures.hosts);
            let down = if virt {
                restart_ms
            } else {
                f.repair_time.millis() as f64
            };
            let failed = unavailability(down, f.mtbf.millis() as f64);
            1.0 - (1.0 - failed) * (1.0 - planned)
        })
        .collect();
    let u_rack: Vec<f64> = racks
        .iter()
        .map(|r| {
            let rack_down = if virt && vs.ha.enabled && restartable(&design.machines, r) {
                restart_ms
            } else {
                failures.racks.repair_time.millis() as f64
            };
            unavailability(rack_down, failures.racks.mtbf.millis() as f64)
        })
        .collect();
    let mut lost_hours = 0.0;
    for c in &estate.clusters {
        let members: Vec<usize> = design
            .machines
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                let n = m.control_plane.iter().filter(|x| **x == c.name).count();
                std::iter::repeat_n(i, n)
            })
            .collect();
        lost_hours += quorum_loss(&members, &rack_of, &u_host, &u_rack) * 8_760.0;
    }
    headline[3] = lost_hours;
    let worst = |f: &dyn Fn(&crate::design::Machine) -> f64| {
        design.machines.iter().map(f).fold(0.0, f64::max)
    };
    details[3].push(detail(
        "pods hit by the worst host failure",
        "pods",
        worst(&|m| m.pods),
    ));
    details[3].push(detail(
        "nodes hit by the worst host failure",
        "nodes",
        worst(&|m| f64::from(m.nodes)),
    ));
    details[3].push(detail(
        "clusters hit by the worst host failure",
        "clusters",
        worst(&|m| m.clusters.len() as f64),
    ));
    let mut per_rack: BTreeMap<&str, (f64, BTreeSet<&str>)> = BTreeMap::new();
    for m in &design.machines {
        let e = per_rack.entry(m.rack.as_str()).or_default();
        e.0 += m.pods;
        e.1.extend(m.clusters.iter().map(String::as_str));
    }
    details[3].push(detail(
        "pods hit by the worst rack failure",
        "pods",
        per_rack.values().map(|r| r.0).fold(0.0, f64::max),
    ));
    details[3].push(detail(
        "clusters hit by the worst rack failure",
        "clusters",
        per_rack
            .values()
            .map(|r| r.1.len() as f64)
            .fold(0.0, f64::max),
    ));

    // 6. Time to add a node and a cluster.
    // A server like most of the design's: the class it would buy more of.
    let mut per_class = vec![0usize; classes.len()];
    for m in &design.machines {
        per_class[m.class] += 1;
    }
    let usual = (0..classes.len()).max_by_key(|&c| (per_class[c], std::cmp::Reverse(c)));
    let lead_ms = usual.map_or(0, |c| classes[c].lead_time.millis()) as f64;
    let headroom = &design.headroom;
    let room = |group: &str| headroom.iter().any(|h| h.group == group && h.more > 0);
    let mut add_node: Vec<(String, f64)> = Vec::new();
    if virt {
        let any_room = estate.clusters.iter().any(|c| {
            c.spec
                .node_pools
                .iter()
                .any(|p| room(&format!("{}-{}", c.name, p.name)))
        });
        if !any_room {
            add_node.push(("procure a host".into(), lead_ms / 1000.0));
            add_node.push((
                "install the hypervisor".into(),
                bs.os_install.millis() as f64 / 1000.0,
            ));
        }
        add_node.push((
            "clone the VM".into(),
            vs.timings.vm_clone.millis() as f64 / 1000.0,
        ));
        add_node.push((
            "boot and join".into(),
            vs.timings.vm_boot.millis() as f64 / 1000.0,
        ));
    } else {
        // An owned server left unused, or one of the design's own idle spares (replaced
        // later), becomes a node without waiting for a purchase.
        if design.surplus.is_empty() && design.idle_spares == 0 {
            add_node.push(("procure a server".into(), lead_ms / 1000.0));
        }
        add_node.push((
            "install the OS and join".into(),
            bs.os_install.millis() as f64 / 1000.0,
        ));
    }
    let node_s: f64 = add_node.iter().map(|p| p.1).sum();
    headline[5] = node_s / 3600.0;
    // A new cluster like the first one, its machines provisioned in parallel: on the
    // pool as fast as a node; on bare metal servers are bought unless enough are spare.
    let cluster_h = estate.clusters.first().map_or(0.0, |c| {
        if virt {
            node_s / 3600.0
        } else {
            let servers = c.spec.control_plane.replicas
                + c.spec.node_pools.iter().map(|p| p.replicas).sum::<u32>();
            let procure = if (design.surplus.len() as u32) + design.idle_spares < servers {
                lead_ms
            } else {
                0.0
            };
            (procure + bs.os_install.millis() as f64) / 3_600_000.0
        }
    });
    details[5].push(detail(
        "time to add a cluster like the first",
        "hours",
        cluster_h,
    ));

    // 7. Growth on this inventory, each cluster alone, in allocatable CPU: more node VMs
    // of its best pool on the owned hosts, or the owned servers left unused as nodes of
    // its best pool.
    let mut growth = Vec::new();
    for c in &estate.clusters {
        // A cluster merged into another grows with it.
        let own = design.cluster_of(&c.name);
        let current = design.worker_cpu.get(own).copied().unwrap_or(0) as f64;
        let added = if virt {
            c.spec
                .node_pools
                .iter()
                .map(|p| {
                    let g = format!("{}-{}", c.name, p.name);
                    let per_node = design
                        .node_cpu
                        .get(&PoolName::new(&c.name, &p.name))
                        .copied()
                        .unwrap_or(0) as f64;
                    headroom
                        .iter()
                        .find(|h| h.group == g)
                        .map_or(0.0, |h| f64::from(h.more) * per_node)
                })
                .fold(0.0, f64::max)
        } else {
            design.surplus_node_cpu.get(own).copied().unwrap_or(0) as f64
        };
        growth.push(pct(added, current));
    }
    headline[6] = growth.iter().sum::<f64>() / growth.len().max(1) as f64;
    details[6].push(detail(
        "time to scale out by one node",
        "hours",
        node_s / 3600.0,
    ));

    // 9. Cluster pairs sharing a server.
    let mut pairs = BTreeSet::new();
    for m in &k8s {
        let cs: Vec<&String> = m.clusters.iter().collect();
        for (i, a) in cs.iter().enumerate() {
            for b in &cs[i + 1..] {
                pairs.insert((*a, *b));
            }
        }
    }
    headline[8] = pairs.len() as f64;
    // The same pairs when they belong to different tenants (a cluster without one is its
    // own tenant).
    let tenant = |name: &str| {
        estate
            .cluster(name)
            .and_then(|c| c.spec.tenant.clone())
            .unwrap_or_else(|| name.to_owned())
    };
    details[8].push(detail(
        "pairs of different tenants sharing a physical server",
        "pairs",
        pairs.iter().filter(|(a, b)| tenant(a) != tenant(b)).count() as f64,
    ));
    details[8].push(detail(
        "servers where clusters and other VMs share hardware",
        "servers",
        k8s.iter().filter(|m| !m.vm_sets.is_empty()).count() as f64,
    ));

    // 12. Settings a cluster controls alone: its kernel, its storage, its network.
    let storage = if virt {
        vs.volume_storage
    } else {
        bs.volume_storage
    };
    let free: usize = estate
        .clusters
        .iter()
        .map(|c| {
            settings_alone(
                !shares.contains(c.name.as_str()),
                storage,
                estate.clusters.len() - 1,
            )
        })
        .sum();
    headline[11] = pct(free as f64, (3 * estate.clusters.len()) as f64);

    StaticFacts {
        headline,
        details,
        add_node,
        pods_per_server: design.machines.iter().map(|m| m.pods).collect(),
        add_cluster_hours: cluster_h,
    }
}

/// Measures one run of `design`.
pub fn measure(estate: &Estate, design: &Design, facts: &StaticFacts, run: &RunFacts) -> Measures {
    let mut headline = facts.headline;
    let mut details = facts.details.clone();
    let years = run.years().max(f64::MIN_POSITIVE);

    details[3].push(detail(
        "simulated time without quorum",
        "hours/year",
        run.quorum_lost_ms as f64 / 3_600_000.0 / years,
    ));
    details[3].push(detail(
        "simulated pods hit per failure (mean)",
        "pods",
        run.pods_hit.iter().map(|&p| f64::from(p)).sum::<f64>() / run.pods_hit.len().max(1) as f64,
    ));

    // 5. Availability.
    headline[4] = run.pod_minutes_unavailable / years;
    // Keyed as in the input, whatever cluster a merge moved a workload to.
    let availability: BTreeMap<String, f64> = run
        .availability
        .iter()
        .map(|(w, a)| (design.renamed.get(w).unwrap_or(w).clone(), 100.0 * a))
        .collect();
    let lowest_availability = availability.values().copied().fold(100.0, f64::min);
    details[4].push(detail(
        "lowest workload availability",
        "%",
        lowest_availability,
    ));
    let workload_hours_unavailable: f64 = availability
        .values()
        .map(|a| (100.0 - a) / 100.0 * 8_760.0)
        .sum();
    details[4].push(detail(
        "workload-hours unavailable",
        "hours/year",
        workload_hours_unavailable,
    ));

    // 8. Utilization, the bare-metal VM pool's daily profile included.
    let (mut simulated, mut other, mut capacity, mut mem_used, mut mem_cap) =
        (0.0, 0.0, 0.0, 0.0, 0.0);
    // The simulator scales a VM pool's busy CPU by the Environment's CPU overhead.
    let overhead = if design.env == EnvironmentType::Virtualized {
        estate.virtualized.spec.performance_overhead.cpu
    } else {
        0.0
    };
    let pool = design.vm_pool_capacity;
    for (h, hour) in run.hours.iter().enumerate() {
        simulated += hour.cpu_used;
        other += design.vm_pool_usage[h % 24].0;
        capacity += hour.cpu_capacity + pool.cpu_millis as f64;
        mem_used += hour.mem_used + design.vm_pool_usage[h % 24].1;
        mem_cap += hour.mem_capacity + pool.memory_bytes as f64;
    }
    headline[7] = utilization(simulated, other, capacity, overhead);
    details[7].push(detail(
        "physical CPU busy, hypervisor overhead included",
        "%",
        pct(simulated + other, capacity),
    ));
    details[7].push(detail(
        "physical memory utilization",
        "%",
        pct(mem_used, mem_cap),
    ));
    details[7].push(detail(
        "servers required",
        "servers",
        design.servers() as f64,
    ));

    // 10. Cost.
    let c = cost::cost(estate, design, run);
    headline[9] = units(c.total());
    for (name, v) in cost::Cost::CATEGORIES
        .into_iter()
        .zip(c.by_category())
        .chain([
            ("workload (OpenCost)", c.workload),
            ("idle (OpenCost)", c.idle),
            ("overhead (OpenCost)", c.overhead),
            ("capital spent (bought servers)", c.capex),
            ("operating cost in year 1", c.opex_first_year),
            ("operating cost in a later year", c.opex_later_year),
        ])
    {
        details[9].push(detail(name, "currency", units(v)));
    }

    // 11. Upgrades.
    let lost: f64 = run.upgrades.iter().map(|u| u.cpu_ms_lost).sum();
    headline[10] = lost / 1000.0 / 3_600_000.0 / years;
    details[10].push(detail(
        "mean upgrade duration",
        "hours",
        run.upgrades
            .iter()
            .map(|u| u.duration_ms as f64)
            .sum::<f64>()
            / run.upgrades.len().max(1) as f64
            / 3_600_000.0,
    ));
    details[10].push(detail(
        "upgrades",
        "per year",
        run.upgrades.len() as f64 / years,
    ));

    // 13. Hands-on hours and maintenance without downtime.
    let l = cost::labour(estate, design, run);
    headline[12] = l.per_year;
    let (done, clean) = run.maintenances;
    details[12].push(detail(
        "maintenances without workload downtime",
        "%",
        if done == 0 {
            100.0
        } else {
            pct(f64::from(clean), f64::from(done))
        },
    ));
    details[12].push(detail(
        "one-off hours (servers bought, clusters created)",
        "hours",
        l.one_off,
    ));

    Measures {
        headline,
        details,
        cost: c,
        availability,
        lowest_availability,
        workload_hours_unavailable,
        add_cluster_hours: facts.add_cluster_hours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same facts give both designs the same number: with no hypervisor overhead a VM
    /// pool's busy CPU is all work, as a server's is.
    #[test]
    fn utilization_is_one_definition_and_overhead_is_not_work() {
        let same = utilization(3_000.0, 500.0, 10_000.0, 0.0);
        assert_eq!(same, 35.0);
        // The simulator reports (1 + o)·work busy on a pool: the same work, the same number.
        assert!((utilization(3_000.0 * 1.1, 500.0, 10_000.0, 0.1) - same).abs() < 1e-9);
        // More overhead on the same busy CPU is less work, never more.
        assert!(
            utilization(3_300.0, 0.0, 10_000.0, 0.2) < utilization(3_300.0, 0.0, 10_000.0, 0.1)
        );
    }

    /// HA restarts a rack's control-plane VMs only where hosts outside the rack have room
    /// for them: never when one rack holds every host.
    #[test]
    fn a_rack_restarts_its_control_plane_only_on_room_outside_it() {
        let host = |rack: &str, free_cpu: u64, members: u64| Machine {
            rack: rack.into(),
            free: Resources::new(free_cpu, free_cpu << 20, 0),
            control_plane_footprint: Resources::new(members * 1_000, (members * 1_000) << 20, 0),
            ..Machine::default()
        };
        let one_rack = [host("r1", 50_000, 1), host("r1", 50_000, 2)];
        assert!(!restartable(&one_rack, "r1"), "no host outside the rack");
        let two_racks = [host("r1", 0, 3), host("r2", 4_000, 0)];
        assert!(restartable(&two_racks, "r1"));
        assert!(restartable(&two_racks, "r2"), "nothing to restart");
        let full = [host("r1", 0, 3), host("r2", 2_000, 0)];
        assert!(!restartable(&full, "r1"), "3 members, room for 2");
    }

    /// Independence per the article: a cluster alone on its servers with its own storage
    /// controls all three settings, on either design; shared storage costs it the storage
    /// setting only when another cluster uses that storage.
    #[test]
    fn independence_is_one_definition_for_both_designs() {
        assert_eq!(settings_alone(true, VolumeStorage::Shared, 0), 3);
        assert_eq!(settings_alone(true, VolumeStorage::Local, 5), 3);
        assert_eq!(settings_alone(true, VolumeStorage::Shared, 1), 2);
        assert_eq!(settings_alone(false, VolumeStorage::Shared, 1), 1);
        assert_eq!(settings_alone(false, VolumeStorage::Local, 1), 2);
    }
}
