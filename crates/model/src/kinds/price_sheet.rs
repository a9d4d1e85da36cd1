//! `PriceSheet`: money and labour — server prices and how owned hardware is counted,
//! support contracts, licences with their units and minimums, power, hands-on hours per
//! operation, and the prices of downtime and of delay.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::quantity::Money;

/// The spec of a `PriceSheet`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceSheetSpec {
    /// ISO currency code, for display (default USD).
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Cost horizon in years; annual figures scale to it (default 5).
    #[serde(default = "default_horizon")]
    pub horizon_years: u32,
    /// Purchase price per host class.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerPrice>,
    /// Purchase price of a class not listed (default 15000; no published figure).
    #[serde(default = "default_server_price")]
    pub default_server_price: Money,
    /// How servers the estate already owns are counted, the same way in both designs
    /// (default `bookValue`: finance carries owned servers at their depreciation; a
    /// policy choice).
    #[serde(default)]
    pub owned_hardware: OwnedHardware,
    /// Yearly hardware support contract as a fraction of each used server's purchase
    /// price (default 0: no contract; an assumption, set yours, 0.1 is common).
    #[serde(default)]
    pub support_fraction: f64,
    /// Price of one workload-hour unavailable (default 0: downtime is not priced and
    /// availability stays a trade-off; a choice only the owner can make).
    #[serde(default)]
    pub downtime_per_workload_hour: Money,
    /// Price of one hour waited for a node to be added (default 0: delay is not priced;
    /// a choice only the owner can make).
    #[serde(default)]
    pub delay_per_node_hour: Money,
    /// Virtualization licence (virtualized design, and a bare-metal design's VM pool)
    /// (default: vSphere Foundation, $135 per core per year, 16 cores per CPU minimum,
    /// 72-core minimum order, REFERENCES.md §5).
    #[serde(default = "default_virtualization_licence")]
    pub virtualization_licence: Licence,
    /// Operating system licence.
    #[serde(default = "default_os_licence")]
    pub os_licence: Licence,
    /// Kubernetes platform subscription, per environment.
    #[serde(default)]
    pub kubernetes_subscription: KubernetesSubscription,
    /// Power.
    #[serde(default)]
    pub power: Power,
    /// Rack space.
    #[serde(default)]
    pub rack_space: RackSpace,
    /// Labour.
    #[serde(default)]
    pub labour: Labour,
}

fn default_currency() -> String {
    "USD".to_owned()
}
fn default_horizon() -> u32 {
    5
}
fn default_server_price() -> Money {
    Money::from_units(15_000)
}

/// How owned servers are counted in the total cost of ownership.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OwnedHardware {
    /// Already paid for: every owned server costs nothing in either design.
    Sunk,
    /// Every owned server, used or not, is charged its depreciation over the horizon in
    /// both designs (an unused one is still on the books).
    #[default]
    BookValue,
}

/// A server's price and how fast it is written off.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerPrice {
    /// Purchase price.
    pub price: Money,
    /// Depreciation period in years (default 5).
    #[serde(default = "default_horizon")]
    pub depreciation_years: u32,
}

/// What a licence is counted per.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LicenceUnit {
    /// Per physical core (with `minCoresPerSocket`).
    Core,
    /// Per CPU socket.
    Socket,
    /// Per pair of sockets in one server (at least one per server).
    SocketPair,
    /// Per 2 physical cores or 4 vCPUs.
    CorePair,
    /// Per host (server).
    Host,
    /// Per virtual machine.
    Vm,
    /// Per Kubernetes node.
    Node,
    /// Per Kubernetes cluster (or per virtualization pool).
    Cluster,
    /// One flat subscription for the whole design, whatever its size.
    Subscription,
}

/// A yearly licence: price per unit, and minimums.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Licence {
    /// What one unit is.
    pub per: LicenceUnit,
    /// Price per unit per year.
    pub price_per_year: Money,
    /// Cores counted per socket at least (per-core licences; e.g. 16).
    #[serde(default)]
    pub min_cores_per_socket: u32,
    /// Units per order at least (e.g. 72 cores).
    #[serde(default)]
    pub minimum_units: u32,
}

/// vSphere Foundation ≈ $135 per core per year, 16 cores per CPU minimum, 72-core minimum
/// order (REFERENCES.md §5, redresscompliance.com, Jun 2026).
fn default_virtualization_licence() -> Licence {
    Licence {
        per: LicenceUnit::Core,
        price_per_year: Money::from_units(135),
        min_cores_per_socket: 16,
        minimum_units: 72,
    }
}

/// A free community Linux: no OS licence by default (no published figure needed).
fn default_os_licence() -> Licence {
    Licence {
        per: LicenceUnit::Host,
        price_per_year: Money(0),
        min_cores_per_socket: 0,
        minimum_units: 0,
    }
}

/// The Kubernetes platform subscription, whose unit differs per environment (OpenShift:
/// core-pairs for VMs, socket-pairs for bare metal).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesSubscription {
    /// On VMs.
    pub virtualized: Licence,
    /// On bare metal.
    pub bare_metal: Licence,
}

/// Upstream Kubernetes: no subscription by default. OpenShift's units are defined in
/// REFERENCES.md §5 but no list price was found; set yours.
impl Default for KubernetesSubscription {
    fn default() -> Self {
        let free = |per| Licence {
            per,
            price_per_year: Money(0),
            min_cores_per_socket: 0,
            minimum_units: 0,
        };
        Self {
            virtualized: free(LicenceUnit::CorePair),
            bare_metal: free(LicenceUnit::SocketPair),
        }
    }
}

/// Power price and data-centre efficiency.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Power {
    /// Price per kWh (default 0.15; an assumption, no source in REFERENCES.md).
    #[serde(default = "default_kwh")]
    pub price_per_kwh: Money,
    /// Power usage effectiveness (default 1.58, Uptime Institute 2023 industry average).
    #[serde(default = "default_pue")]
    pub pue: f64,
}

fn default_kwh() -> Money {
    Money(150_000)
}
fn default_pue() -> f64 {
    1.58
}

impl Default for Power {
    fn default() -> Self {
        Self {
            price_per_kwh: default_kwh(),
            pue: default_pue(),
        }
    }
}

/// What a rack unit costs: the space a server takes in a cabinet, power aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RackSpace {
    /// Price of one rack unit per year (default 143: a 42U cabinet at $500 a month, the
    /// low end of REFERENCES.md §9's $500–2,000 range, whose upper end includes power;
    /// power is priced separately here).
    #[serde(default = "default_rack_unit_price")]
    pub price_per_unit_per_year: Money,
}

fn default_rack_unit_price() -> Money {
    Money::from_units(143)
}

impl Default for RackSpace {
    fn default() -> Self {
        Self {
            price_per_unit_per_year: default_rack_unit_price(),
        }
    }
}

/// Labour rate and hands-on hours per operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Labour {
    /// Price of one hour (default 43.52: US sysadmin median, BLS May 2022).
    #[serde(default = "default_rate")]
    pub rate_per_hour: Money,
    /// Hands-on hours per operation, by operation key (see [`LABOUR_OPERATIONS`]); unlisted
    /// ones use its defaults.
    #[serde(default)]
    pub hours: BTreeMap<String, f64>,
}

fn default_rate() -> Money {
    Money(43_520_000)
}

/// Operations that take hands-on time, with default hours and why. REFERENCES.md §5 found
/// no published hours-per-operation figures: every default is an assumption, kept an input.
pub const LABOUR_OPERATIONS: [(&str, f64, &str); 8] = [
    (
        "serverInstall",
        2.0,
        "rack, cable and first install of a server; assumption",
    ),
    (
        "hardwareRepair",
        3.0,
        "diagnose, swap parts or a spare server, return it; assumption",
    ),
    (
        "nodeReplacement",
        0.5,
        "a node that automation could not heal, on either design; assumption",
    ),
    (
        "reimage",
        0.0,
        "a node a rollout replaces or reimages, on either design: automation (Cluster API, \
         Metal3) by default; assumption",
    ),
    (
        "clusterUpgrade",
        4.0,
        "plan, run and verify one Kubernetes minor upgrade of a cluster; assumption",
    ),
    (
        "osPatching",
        1.0,
        "one node OS patch round of a cluster; assumption",
    ),
    (
        "hostPatching",
        0.5,
        "one host firmware or hypervisor patch, per host; assumption",
    ),
    ("clusterCreate", 8.0, "stand up one new cluster; assumption"),
];

impl Labour {
    /// Hours for `operation`: the sheet's value, else the default from [`LABOUR_OPERATIONS`].
    pub fn hours_for(&self, operation: &str) -> Option<f64> {
        self.hours.get(operation).copied().or_else(|| {
            LABOUR_OPERATIONS
                .iter()
                .find(|(k, _, _)| *k == operation)
                .map(|(_, h, _)| *h)
        })
    }
}

impl Default for Labour {
    fn default() -> Self {
        Self {
            rate_per_hour: default_rate(),
            hours: BTreeMap::new(),
        }
    }
}

impl Default for PriceSheetSpec {
    fn default() -> Self {
        Self {
            currency: default_currency(),
            horizon_years: default_horizon(),
            servers: BTreeMap::new(),
            default_server_price: default_server_price(),
            owned_hardware: OwnedHardware::default(),
            support_fraction: 0.0,
            downtime_per_workload_hour: Money(0),
            delay_per_node_hour: Money(0),
            virtualization_licence: default_virtualization_licence(),
            os_licence: default_os_licence(),
            kubernetes_subscription: KubernetesSubscription::default(),
            power: Power::default(),
            rack_space: RackSpace::default(),
            labour: Labour::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labour_hours_fall_back_to_documented_defaults() {
        let mut labour = Labour::default();
        assert_eq!(labour.hours_for("clusterUpgrade"), Some(4.0));
        labour.hours.insert("clusterUpgrade".into(), 6.5);
        assert_eq!(labour.hours_for("clusterUpgrade"), Some(6.5));
        assert_eq!(labour.hours_for("coffee"), None);
    }
}
