//! Total cost of ownership over the PriceSheet's horizon, in integer micro-currency: six
//! categories ([`Cost::CATEGORIES`]: hardware, support, licences, power, rack space,
//! labour), the cash a finance team sees (capital spent on bought servers, operating cost
//! per year), and the OpenCost split of
//! the same total into workload, idle and overhead, each part priced from its own
//! allocation so that `total = workload + idle + overhead` holds exactly
//! (docs/dimensions.md, dimension 10).

use plinth_events::UpgradeKind;
use plinth_model::Resources;
use plinth_model::estate::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::kinds::price_sheet::{
    Labour as PriceLabour, Licence, LicenceUnit, OwnedHardware, PriceSheetSpec,
};
use plinth_model::quantity::Money;
use serde::Serialize;

use crate::design::{Design, Split};
use crate::events::RunFacts;

/// Hours in a year.
const YEAR_HOURS: f64 = 8_760.0;

/// A design's cost over the horizon, micro-currency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cost {
    /// Servers, written off straight-line over their depreciation period: the bought
    /// ones, and the owned ones unless `ownedHardware` is `sunk`.
    pub hardware: i64,
    /// Hardware support contracts of the servers used.
    pub support: i64,
    /// Virtualization, OS and Kubernetes subscriptions.
    pub licences: i64,
    /// Energy at the facility's PUE.
    pub power: i64,
    /// Rack units of the servers used.
    pub rack_space: i64,
    /// Hands-on hours at the labour rate.
    pub labour: i64,
    /// The capacity that workloads requested.
    pub workload: i64,
    /// The capacity nothing requested.
    pub idle: i64,
    /// The capacity the platform holds: hypervisor, control planes, reservations.
    pub overhead: i64,
    /// Capital expenditure: the purchase price of the bought servers, spent in year 1.
    pub capex: i64,
    /// Operating expenditure in year 1 (support, licences, power, rack space, recurring
    /// and one-off labour).
    pub opex_first_year: i64,
    /// Operating expenditure in each later year (support, licences, power, rack space,
    /// recurring labour).
    pub opex_later_year: i64,
}

impl Cost {
    /// The categories that add up to the total, in the order of [`Cost::by_category`].
    pub const CATEGORIES: [&str; 6] = [
        "hardware",
        "support",
        "licences",
        "power",
        "rack space",
        "labour",
    ];

    /// Each category's amount, in the order of [`Cost::CATEGORIES`].
    pub fn by_category(&self) -> [i64; 6] {
        [
            self.hardware,
            self.support,
            self.licences,
            self.power,
            self.rack_space,
            self.labour,
        ]
    }

    /// The sum of the categories (saturating: prices are validated, their sum over
    /// thousands of servers need not fit).
    pub fn total(&self) -> i64 {
        self.by_category().into_iter().fold(0, i64::saturating_add)
    }
}

/// Hands-on hours of one run, per year, and one-off hours over the horizon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Labour {
    /// Recurring hours per year.
    pub per_year: f64,
    /// One-off hours (installing bought servers, creating clusters).
    pub one_off: f64,
}

/// Recurring hands-on hours of one run, one definition for both designs: every count is
/// of events both designs log the same way (a node rolled is `nodeReplaced` by a rollout,
/// whether a VM was cloned or a server reimaged).
pub fn recurring_hours(labour: &PriceLabour, run: &RunFacts) -> f64 {
    let h = |op: &str| labour.hours_for(op).unwrap_or(0.0);
    let count = |kind| run.upgrades.iter().filter(|u| u.kind == kind).count() as f64;
    f64::from(run.host_failures) * h("hardwareRepair")
        + count(UpgradeKind::Kubernetes) * h("clusterUpgrade")
        + count(UpgradeKind::Os) * h("osPatching")
        + f64::from(run.hosts_patched) * h("hostPatching")
        + f64::from(run.rolled) * h("reimage")
        + f64::from(run.remediations) * h("nodeReplacement")
}

/// The hands-on hours a run implies (`LABOUR_OPERATIONS` in the PriceSheet).
pub fn labour(estate: &Estate, design: &Design, run: &RunFacts) -> Labour {
    let l = &estate.price_sheet.spec.labour;
    let h = |op: &str| l.hours_for(op).unwrap_or(0.0);
    let years = run.years().max(f64::MIN_POSITIVE);
    let bought = design.machines.iter().filter(|m| !m.owned).count() as f64;
    Labour {
        per_year: recurring_hours(l, run) / years,
        one_off: bought * h("serverInstall")
            + design.cluster_count(estate) as f64 * h("clusterCreate"),
    }
}

/// Licence units for a set of servers (`classes` of the inventory, one entry per server).
fn server_units(estate: &Estate, licence: &Licence, servers: &[usize]) -> u64 {
    let classes = &estate.inventory.spec.host_classes;
    servers
        .iter()
        .map(|&c| {
            let class = &classes[c];
            let sockets = u64::from(class.sockets);
            match licence.per {
                LicenceUnit::Core => {
                    sockets * u64::from(class.cores_per_socket.max(licence.min_cores_per_socket))
                }
                LicenceUnit::Socket => sockets,
                LicenceUnit::SocketPair => sockets.div_ceil(2).max(1),
                LicenceUnit::CorePair => u64::from(class.cores()).div_ceil(2),
                LicenceUnit::Host
                | LicenceUnit::Vm
                | LicenceUnit::Node
                | LicenceUnit::Cluster
                | LicenceUnit::Subscription => 1,
            }
        })
        .sum()
}

/// Units of a licence over a whole design: `base` units of what it covers (servers or
/// VMs, from [`server_units`] or [`vm_units`]), `clusters` clusters or pools; a
/// subscription is one unit when it covers anything.
fn design_units(licence: &Licence, base: u64, clusters: u64) -> u64 {
    match licence.per {
        LicenceUnit::Cluster if base > 0 => clusters,
        LicenceUnit::Subscription => u64::from(base > 0),
        _ => base,
    }
}

/// Licence units for `count` VMs with `vcpus` vCPUs together.
fn vm_units(licence: &Licence, count: u64, vcpus: u64) -> u64 {
    match licence.per {
        LicenceUnit::Core => vcpus,
        LicenceUnit::CorePair => vcpus.div_ceil(4),
        _ => count,
    }
}

/// Yearly price of `units` of `licence`, minimum order applied, micro-currency.
fn yearly(licence: &Licence, units: u64) -> i64 {
    if units == 0 {
        return 0;
    }
    let units = units.max(u64::from(licence.minimum_units));
    licence
        .price_per_year
        .0
        .saturating_mul(i64::try_from(units).unwrap_or(i64::MAX))
}

fn licences_per_year(estate: &Estate, design: &Design) -> i64 {
    let sheet = &estate.price_sheet.spec;
    let clusters = design.cluster_count(estate) as u64;
    let k8s: Vec<usize> = design
        .machines
        .iter()
        .filter(|m| m.nodes > 0 || !m.control_plane.is_empty())
        .map(|m| m.class)
        .collect();
    let on_servers = |l: &Licence, servers: &[usize], clusters: u64| {
        yearly(
            l,
            design_units(l, server_units(estate, l, servers), clusters),
        )
    };
    match design.env {
        EnvironmentType::Virtualized => {
            let all: Vec<usize> = design.machines.iter().map(|m| m.class).collect();
            let members: u64 = design
                .machines
                .iter()
                .map(|m| m.control_plane.len() as u64)
                .sum();
            let nodes = u64::from(design.nodes);
            let on_vms = |l: &Licence, count: u64, vcpus: u64| {
                yearly(l, design_units(l, vm_units(l, count, vcpus), clusters))
            };
            on_servers(&sheet.virtualization_licence, &all, 1)
                + on_vms(
                    &sheet.os_licence,
                    nodes + members,
                    design.node_vcpus + design.control_plane_vcpus,
                )
                + on_vms(
                    &sheet.kubernetes_subscription.virtualized,
                    nodes,
                    design.node_vcpus,
                )
        }
        EnvironmentType::BareMetal => {
            let pool: Vec<usize> = design
                .machines
                .iter()
                .filter(|m| !m.vm_sets.is_empty())
                .map(|m| m.class)
                .collect();
            on_servers(&sheet.virtualization_licence, &pool, 1)
                + on_servers(&sheet.os_licence, &k8s, clusters)
                + on_servers(&sheet.kubernetes_subscription.bare_metal, &k8s, clusters)
        }
    }
}

/// A class's purchase price and depreciation years (the class's entry, else the default
/// price over 5 years).
fn price_of(sheet: &PriceSheetSpec, class: &str) -> (Money, u32) {
    sheet
        .servers
        .get(class)
        .map_or((sheet.default_server_price, 5), |s| {
            (s.price, s.depreciation_years.max(1))
        })
}

/// Depreciation of one server over the horizon: `⌊price / D⌋ · min(Y, D)`.
fn written_off(sheet: &PriceSheetSpec, class: &str) -> i64 {
    let (price, years) = price_of(sheet, class);
    price.0 / i64::from(years) * i64::from(sheet.horizon_years.min(years))
}

/// Hardware over the horizon: every bought server's depreciation, and every owned one's
/// (used or not, the same in both designs) unless owned hardware is sunk.
fn hardware(estate: &Estate, design: &Design) -> i64 {
    let sheet = &estate.price_sheet.spec;
    let classes = &estate.inventory.spec.host_classes;
    let bought: i64 = design
        .machines
        .iter()
        .filter(|m| !m.owned)
        .map(|m| written_off(sheet, &classes[m.class].name))
        .sum();
    let owned: i64 = match sheet.owned_hardware {
        OwnedHardware::Sunk => 0,
        OwnedHardware::BookValue => estate
            .hosts
            .iter()
            .map(|h| written_off(sheet, &classes[h.class].name))
            .sum(),
    };
    bought + owned
}

/// Purchase price of the servers a design buys (capital spent in year 1).
fn capex(estate: &Estate, design: &Design) -> i64 {
    let sheet = &estate.price_sheet.spec;
    let classes = &estate.inventory.spec.host_classes;
    design
        .machines
        .iter()
        .filter(|m| !m.owned)
        .map(|m| price_of(sheet, &classes[m.class].name).0.0)
        .sum()
}

/// Yearly support contracts of the servers a design uses: `supportFraction · price`.
fn support_per_year(estate: &Estate, design: &Design) -> i64 {
    let sheet = &estate.price_sheet.spec;
    let classes = &estate.inventory.spec.host_classes;
    design
        .machines
        .iter()
        .map(|m| {
            let (price, _) = price_of(sheet, &classes[m.class].name);
            (price.0 as f64 * sheet.support_fraction).round() as i64
        })
        .sum()
}

/// Yearly rack space of the servers a design uses: `rackUnits · pricePerUnitPerYear`.
fn space_per_year(estate: &Estate, design: &Design) -> i64 {
    let price = estate.price_sheet.spec.rack_space.price_per_unit_per_year.0;
    let classes = &estate.inventory.spec.host_classes;
    design
        .machines
        .iter()
        .map(|m| i64::from(classes[m.class].rack_units).saturating_mul(price))
        .fold(0, i64::saturating_add)
}

/// Energy over the horizon, Wh at the wall (PUE applied), from the run's hourly CPU
/// utilization: each server draws idle + (peak − idle) × utilization.
pub fn energy_wh(estate: &Estate, design: &Design, run: &RunFacts) -> f64 {
    let classes = &estate.inventory.spec.host_classes;
    let (mut idle, mut swing, mut pool_idle, mut pool_swing) = (0.0, 0.0, 0.0, 0.0);
    for m in &design.machines {
        let w = classes[m.class].watts;
        let (i, s) = (f64::from(w.idle), f64::from(w.peak.saturating_sub(w.idle)));
        if m.vm_sets.is_empty() || design.env == EnvironmentType::Virtualized {
            idle += i;
            swing += s;
        } else {
            pool_idle += i;
            pool_swing += s;
        }
    }
    let horizon = f64::from(estate.price_sheet.spec.horizon_years);
    let scale = YEAR_HOURS * horizon * estate.price_sheet.spec.power.pue;
    if run.hours.is_empty() {
        // A log without hourly totals: every server at idle draw.
        return (idle + pool_idle) * scale;
    }
    let mut wh = 0.0;
    for (h, hour) in run.hours.iter().enumerate() {
        let u = if hour.cpu_capacity > 0.0 {
            (hour.cpu_used / hour.cpu_capacity).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let pool_cap = design.vm_pool_capacity.cpu_millis as f64;
        let pu = if pool_cap > 0.0 {
            (design.vm_pool_usage[h % 24].0 / pool_cap).clamp(0.0, 1.0)
        } else {
            0.0
        };
        wh += idle + swing * u + pool_idle + pool_swing * pu;
    }
    wh / run.hours.len() as f64 * scale
}

/// One category priced over the split.
struct Priced {
    total: i64,
    workload: i64,
    idle: i64,
    overhead: i64,
}

/// Prices `amount` of a category over the split: half by CPU (milli-CPU), half by memory
/// (MiB), each at an integer rate per unit. Every part is its rate times its own units,
/// and the units add up to the capacity, so `total = workload + idle + overhead` exactly;
/// the total is the rates times the capacity, which rounds `amount` down by less than
/// one micro-unit per unit of capacity.
fn split_category(amount: i64, split: &Split) -> Priced {
    let (w, o) = split.physical();
    let units = |r: &Resources| (r.cpu_millis as i64, (r.memory_bytes >> 20) as i64);
    let (cap_c, cap_m) = units(&split.capacity);
    let (w_c, w_m) = units(&w);
    let (o_c, o_m) = units(&o);
    let (i_c, i_m) = (cap_c - w_c - o_c, cap_m - w_m - o_m);
    let rate_c = if cap_c > 0 { amount / 2 / cap_c } else { 0 };
    let rate_m = if cap_m > 0 {
        (amount - amount / 2) / cap_m
    } else {
        0
    };
    let part = |c: i64, m: i64| rate_c * c + rate_m * m;
    Priced {
        total: part(cap_c, cap_m),
        workload: part(w_c, w_m),
        idle: part(i_c, i_m),
        overhead: part(o_c, o_m),
    }
}

/// The cost of `design` over the horizon, given one run.
pub fn cost(estate: &Estate, design: &Design, run: &RunFacts) -> Cost {
    let sheet = &estate.price_sheet.spec;
    let horizon = i64::from(sheet.horizon_years.max(1));
    let hardware = hardware(estate, design);
    let support_year = support_per_year(estate, design);
    let space_year = space_per_year(estate, design);
    let licences_year = licences_per_year(estate, design);
    let power_total = (energy_wh(estate, design, run) / 1000.0 * sheet.power.price_per_kwh.0 as f64)
        .round() as i64;
    let l = labour(estate, design, run);
    let rate = sheet.labour.rate_per_hour.0 as f64;
    let recurring_year = (l.per_year * rate).round() as i64;
    let one_off = (l.one_off * rate).round() as i64;
    let opex_later_year = [
        support_year,
        licences_year,
        power_total / horizon,
        space_year,
        recurring_year,
    ]
    .into_iter()
    .fold(0, i64::saturating_add);
    let priced = [
        hardware,
        support_year.saturating_mul(horizon),
        licences_year.saturating_mul(horizon),
        power_total,
        space_year.saturating_mul(horizon),
        recurring_year
            .saturating_mul(horizon)
            .saturating_add(one_off),
    ]
    .map(|amount| split_category(amount, &design.split));
    let sum = |f: fn(&Priced) -> i64| priced.iter().map(f).sum();
    let [hardware, support, licences, power, rack_space, labour] =
        priced.each_ref().map(|p| p.total);
    Cost {
        hardware,
        support,
        licences,
        power,
        rack_space,
        labour,
        workload: sum(|p| p.workload),
        idle: sum(|p| p.idle),
        overhead: sum(|p| p.overhead),
        capex: capex(estate, design),
        opex_first_year: opex_later_year.saturating_add(one_off),
        opex_later_year,
    }
}

/// Currency units of a micro-currency amount.
pub fn units(micros: i64) -> f64 {
    micros as f64 / Money::MICROS as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rollout of 6 nodes costs the same hands-on hours on both designs: one definition,
    /// fed the same facts (before, a bare-metal reimage cost 0.5 h and a VM clone 0).
    #[test]
    fn a_rolled_node_costs_the_same_hands_on_hours_on_both_designs() {
        let mut labour = PriceLabour::default();
        labour.hours.insert("reimage".into(), 0.5);
        let vm_rollout = RunFacts {
            rolled: 6,
            ..RunFacts::default()
        };
        let reimage_rollout = RunFacts {
            rolled: 6,
            ..RunFacts::default()
        };
        assert_eq!(recurring_hours(&labour, &vm_rollout), 3.0);
        assert_eq!(
            recurring_hours(&labour, &vm_rollout),
            recurring_hours(&labour, &reimage_rollout)
        );
        // By default a rollout is automation on both designs.
        assert_eq!(recurring_hours(&PriceLabour::default(), &vm_rollout), 0.0);
    }
}
