//! The recommendation, weighing worth rather than counting wins: requirements first (a
//! design that violates a declared requirement, by its 95 % interval, is disqualified),
//! then money (TCO plus the declared prices of downtime and of delay), and the dimensions
//! that stay unpriced shown as trade-offs, each marked material or not
//! (docs/dimensions.md, "The recommendation").

use plinth_model::estate::Estate;
use plinth_model::kinds::scenario::Requirements;
use serde::Serialize;

use crate::dimensions::{Better, Measures};
use crate::stats::{Estimate, estimate, paired};
use crate::{DimensionResult, Winner, fmt_num};

/// A declared requirement, with the value each run of a design gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Requirement {
    /// `requirements.maxTimeToAddNode`, hours.
    MaxTimeToAddNode,
    /// `requirements.maxTimeToAddCluster`, hours.
    MaxTimeToAddCluster,
    /// `requirements.maxTimeWithoutQuorum`, hours per year.
    MaxTimeWithoutQuorum,
    /// `requirements.minAvailability`, % of the lowest workload.
    MinAvailability,
}

impl Requirement {
    /// Its field in `Scenario.spec.requirements`.
    pub fn field(self) -> &'static str {
        match self {
            Self::MaxTimeToAddNode => "maxTimeToAddNode",
            Self::MaxTimeToAddCluster => "maxTimeToAddCluster",
            Self::MaxTimeWithoutQuorum => "maxTimeWithoutQuorum",
            Self::MinAvailability => "minAvailability",
        }
    }

    /// What it limits, in words, and its unit.
    fn measure(self) -> (&'static str, &'static str) {
        match self {
            Self::MaxTimeToAddNode => ("time to add a node", "hours"),
            Self::MaxTimeToAddCluster => ("time to add a cluster", "hours"),
            Self::MaxTimeWithoutQuorum => ("control-plane time without quorum", "hours/year"),
            Self::MinAvailability => ("availability of the least available workload", "%"),
        }
    }

    /// Whether the limit is an upper bound (else a lower bound).
    fn is_maximum(self) -> bool {
        !matches!(self, Self::MinAvailability)
    }

    /// The run's value of what it limits.
    fn value(self, m: &Measures) -> f64 {
        match self {
            Self::MaxTimeToAddNode => m.headline[5],
            Self::MaxTimeToAddCluster => m.add_cluster_hours,
            Self::MaxTimeWithoutQuorum => m.headline[3],
            Self::MinAvailability => m.lowest_availability,
        }
    }
}

/// The requirements `r` declares, with their limits in the unit of [`Requirement::value`].
pub fn declared(r: &Requirements) -> Vec<(Requirement, f64)> {
    let hours = |d: plinth_model::quantity::Duration| d.millis() as f64 / 3_600_000.0;
    [
        (
            Requirement::MaxTimeToAddNode,
            r.max_time_to_add_node.map(hours),
        ),
        (
            Requirement::MaxTimeToAddCluster,
            r.max_time_to_add_cluster.map(hours),
        ),
        (
            Requirement::MaxTimeWithoutQuorum,
            r.max_time_without_quorum.map(hours),
        ),
        (Requirement::MinAvailability, r.min_availability),
    ]
    .into_iter()
    .filter_map(|(req, limit)| limit.map(|l| (req, l)))
    .collect()
}

/// A requirement a design violates.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// `virtualized` or `bare-metal`.
    pub env: &'static str,
    /// Which requirement.
    pub requirement: Requirement,
    /// The declared limit.
    pub limit: f64,
    /// The design's mean and 95 % interval.
    pub measured: Estimate,
}

impl Violation {
    /// In words: "time to add a node 0.75 hours [0.75, 0.75], the requirement is at most 0.50".
    pub fn describe(&self) -> String {
        let (what, unit) = self.requirement.measure();
        format!(
            "{what} {} {unit} (95 % interval {}–{}), the requirement `{}` is {} {} {unit}",
            fmt_num(self.measured.mean),
            fmt_num(self.measured.low),
            fmt_num(self.measured.high),
            self.requirement.field(),
            if self.requirement.is_maximum() {
                "at most"
            } else {
                "at least"
            },
            fmt_num(self.limit)
        )
    }
}

/// Whether the whole 95 % interval of `e` is on the wrong side of the limit.
fn violates(req: Requirement, limit: f64, e: &Estimate) -> bool {
    if req.is_maximum() {
        e.low > limit
    } else {
        e.high < limit
    }
}

/// The declared requirements each run set of `measured` violates.
pub fn violations(estate: &Estate, env: &'static str, measured: &[Measures]) -> Vec<Violation> {
    declared(&estate.scenario.spec.requirements)
        .into_iter()
        .filter_map(|(requirement, limit)| {
            let values: Vec<f64> = measured.iter().map(|m| requirement.value(m)).collect();
            let e = estimate(&values);
            violates(requirement, limit, &e).then_some(Violation {
                env,
                requirement,
                limit,
                measured: e,
            })
        })
        .collect()
}

/// One run's money over the horizon, currency units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// Total cost of ownership.
    pub tco: f64,
    /// Workload-hours unavailable times `downtimePerWorkloadHour`.
    pub downtime: f64,
    /// Hours waited for nodes times `delayPerNodeHour`.
    pub delay: f64,
}

impl Money {
    /// TCO + downtime + delay.
    pub fn total(&self) -> f64 {
        self.tco + self.downtime + self.delay
    }
}

/// The money of one run over the horizon `Y`:
/// `downtime = workloadHoursUnavailable/year · Y · downtimePerWorkloadHour` and
/// `delay = timeToAddNode · nodesAddedPerYear · Y · delayPerNodeHour`.
pub fn money(estate: &Estate, m: &Measures) -> Money {
    let sheet = &estate.price_sheet.spec;
    let years = f64::from(sheet.horizon_years);
    let nodes = f64::from(estate.scenario.spec.operations.nodes_added_per_year);
    Money {
        tco: m.headline[9],
        downtime: m.workload_hours_unavailable * years * sheet.downtime_per_workload_hour.as_f64(),
        delay: m.headline[5] * nodes * years * sheet.delay_per_node_hour.as_f64(),
    }
}

/// Means of one environment's money over the runs, currency units.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Priced {
    /// `virtualized` or `bare-metal`.
    pub env: &'static str,
    /// TCO.
    pub tco: f64,
    /// Price of downtime.
    pub downtime: f64,
    /// Price of delay.
    pub delay: f64,
    /// The total and its 95 % interval.
    pub total: Estimate,
}

fn priced(env: &'static str, runs: &[Money]) -> Priced {
    let n = runs.len().max(1) as f64;
    let mean = |f: fn(&Money) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let totals: Vec<f64> = runs.iter().map(Money::total).collect();
    Priced {
        env,
        tco: mean(|m| m.tco),
        downtime: mean(|m| m.downtime),
        delay: mean(|m| m.delay),
        total: estimate(&totals),
    }
}

/// What decided the recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecidedBy {
    /// One design violates a declared requirement and the other does not.
    Requirement,
    /// Both meet every requirement; the priced totals differ materially.
    Money,
    /// Both meet every requirement; the priced totals do not differ materially.
    NoMaterialDifference,
    /// Both designs violate a declared requirement.
    NeitherQualifies,
}

/// The recommendation and its reasons.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    /// `virtualized`, `bare-metal`, `either` (no material difference) or `neither` (both
    /// violate a requirement).
    pub environment: &'static str,
    /// What decided it.
    pub decided_by: DecidedBy,
    /// Priced total of bare metal minus that of virtualization, currency units (positive
    /// favours virtualization).
    pub margin: f64,
    /// Paired difference of the priced totals, virtualized − bare metal.
    pub difference: Estimate,
    /// Both environments' money, virtualized first.
    pub money: [Priced; 2],
    /// Requirements violated.
    pub violations: Vec<Violation>,
    /// Why, in words: the deciding requirement or money first, then the material
    /// trade-offs that are not priced.
    pub reasons: Vec<String>,
}

/// The environment whose name is `env`'s opposite.
fn other(env: &'static str) -> &'static str {
    if env == "virtualized" {
        "bare-metal"
    } else {
        "virtualized"
    }
}

/// How an environment reads in a sentence.
fn prose(env: &str) -> &'static str {
    if env == "virtualized" {
        "virtualization"
    } else {
        "bare metal"
    }
}

/// Whether a difference `d` between means `v` and `b` is material: its interval excludes
/// zero and `|d̄| ≥ materiality · max(|v̄|, |b̄|)`.
pub fn material(d: &Estimate, v: f64, b: f64, materiality: f64) -> bool {
    d.excludes_zero() && d.mean.abs() >= materiality * v.abs().max(b.abs())
}

/// The trade-off line of a dimension with a material difference.
fn trade_off(r: &DimensionResult, currency: &str) -> String {
    let unit = if r.spec.unit == "currency" {
        currency
    } else {
        r.spec.unit
    };
    let who = match r.winner {
        Winner::Virtualized => "virtualization",
        _ => "bare metal",
    };
    let direction = match r.spec.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    format!(
        "trade-off, not priced — {}: {who} better, {} {unit} virtualized vs {} {unit} bare metal ({}, {direction})",
        r.spec.title,
        fmt_num(r.virtualized.mean),
        fmt_num(r.bare_metal.mean),
        r.spec.metric,
    )
}

/// Keys of the dimensions whose difference is already in the money: cost always,
/// availability when downtime is priced, agility when delay is priced.
fn priced_keys(estate: &Estate) -> Vec<&'static str> {
    let sheet = &estate.price_sheet.spec;
    let mut keys = vec!["cost"];
    if sheet.downtime_per_workload_hour.0 > 0 {
        keys.push("availability");
    }
    if sheet.delay_per_node_hour.0 > 0 {
        keys.push("agility");
    }
    keys
}

/// The recommendation from both environments' runs and their dimension results.
pub fn recommend(
    estate: &Estate,
    measured: &[Vec<Measures>; 2],
    dimensions: &[DimensionResult],
) -> Recommendation {
    let envs = ["virtualized", "bare-metal"];
    let runs: [Vec<Money>; 2] =
        [0, 1].map(|k| measured[k].iter().map(|m| money(estate, m)).collect());
    let totals: [Vec<f64>; 2] = [0, 1].map(|k| runs[k].iter().map(Money::total).collect());
    let money = [priced(envs[0], &runs[0]), priced(envs[1], &runs[1])];
    let difference = paired(&totals[0], &totals[1]);
    let margin = money[1].total.mean - money[0].total.mean;
    let violations: Vec<Violation> = (0..2)
        .flat_map(|k| violations(estate, envs[k], &measured[k]))
        .collect();
    let failed = |env: &str| violations.iter().any(|v| v.env == env);
    let currency = &estate.price_sheet.spec.currency;
    let years = estate.price_sheet.spec.horizon_years;
    let mut reasons = Vec::new();
    let (environment, decided_by) = match (failed(envs[0]), failed(envs[1])) {
        (true, true) => ("neither", DecidedBy::NeitherQualifies),
        (false, true) | (true, false) => {
            let loser = if failed(envs[0]) { envs[0] } else { envs[1] };
            (other(loser), DecidedBy::Requirement)
        }
        (false, false) => {
            let larger = money[0].total.mean.abs().max(money[1].total.mean.abs());
            let m = estate.scenario.spec.materiality_of("cost");
            if material(&difference, money[0].total.mean, money[1].total.mean, m) {
                let winner = if margin > 0.0 { envs[0] } else { envs[1] };
                let share = if larger > 0.0 {
                    100.0 * margin.abs() / larger
                } else {
                    0.0
                };
                reasons.push(format!(
                    "money: {} costs {} {currency} less over {years} years ({} %): {} {currency} virtualized vs {} {currency} bare metal (TCO, downtime and delay as priced)",
                    prose(winner),
                    fmt_num(margin.abs()),
                    fmt_num(share),
                    fmt_num(money[0].total.mean),
                    fmt_num(money[1].total.mean),
                ));
                (winner, DecidedBy::Money)
            } else {
                reasons.push(format!(
                    "money: no material difference ({} {currency} virtualized vs {} {currency} bare metal, under {} % of the larger or within the runs' noise): the trade-offs below decide",
                    fmt_num(money[0].total.mean),
                    fmt_num(money[1].total.mean),
                    fmt_num(100.0 * m),
                ));
                ("either", DecidedBy::NoMaterialDifference)
            }
        }
    };
    for v in &violations {
        reasons.insert(
            0,
            format!(
                "requirement: {} is disqualified — {}",
                prose(v.env),
                v.describe()
            ),
        );
    }
    let priced = priced_keys(estate);
    reasons.extend(
        dimensions
            .iter()
            .filter(|r| r.material && !priced.contains(&r.spec.key))
            .map(|r| trade_off(r, currency)),
    );
    Recommendation {
        environment,
        decided_by,
        margin,
        difference,
        money,
        violations,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(mean: f64, low: f64, high: f64) -> Estimate {
        Estimate { mean, low, high }
    }

    #[test]
    fn a_maximum_is_violated_only_when_the_whole_interval_is_above_it() {
        let r = Requirement::MaxTimeToAddNode;
        assert!(violates(r, 1.0, &e(2.0, 1.5, 2.5)));
        assert!(!violates(r, 1.0, &e(2.0, 0.5, 3.5)));
        let a = Requirement::MinAvailability;
        assert!(violates(a, 99.9, &e(99.0, 98.0, 99.5)));
        assert!(!violates(a, 99.9, &e(99.0, 98.0, 99.95)));
    }

    #[test]
    fn a_difference_is_material_above_the_threshold_and_outside_the_noise() {
        assert!(material(&e(-10.0, -11.0, -9.0), 90.0, 100.0, 0.05));
        assert!(!material(&e(-4.0, -5.0, -3.0), 96.0, 100.0, 0.05));
        assert!(!material(&e(-10.0, -30.0, 10.0), 90.0, 100.0, 0.05));
    }
}
