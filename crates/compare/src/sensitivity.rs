//! What would change the answer: the break-even of six inputs found by bisection, and what
//! moving one cluster to the other environment would change.

use plinth_model::estate::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::quantity::{Duration, Money};
use rayon::prelude::*;
use serde::Serialize;

use crate::design::design;
use crate::dimensions::{measure, static_facts};
use crate::{CompareError, ENVS, Execution, Options, compare, env_name, fmt_num, simulate_one};

/// Multipliers searched: ×0.1 to ×10.
const RANGE: f64 = 10.0;
/// Bisection steps in log space: ×10^(1/128) ≈ 1.8 % resolution.
const STEPS: u32 = 7;

/// An input whose multiplier the break-even search varies.
pub struct Parameter {
    /// What it is.
    pub name: &'static str,
    /// Its value in `estate`, for display.
    pub value: fn(&Estate) -> String,
    /// Multiplies it in `estate`.
    pub scale: fn(&mut Estate, f64),
}

fn money(m: Money, f: f64) -> Money {
    Money((m.0 as f64 * f).round() as i64)
}

fn duration(d: Duration, f: f64) -> Duration {
    Duration((d.0 as f64 * f).round().max(1.0) as u64)
}

/// The six inputs of issue 6: virtualization licence price, server price, hypervisor CPU
/// overhead, host MTBF, labour rate and power price.
pub const PARAMETERS: [Parameter; 6] = [
    Parameter {
        name: "virtualization licence price",
        value: |e| {
            format!(
                "{} per unit per year",
                e.price_sheet
                    .spec
                    .virtualization_licence
                    .price_per_year
                    .as_f64()
            )
        },
        scale: |e, f| {
            let l = &mut e.price_sheet.spec.virtualization_licence;
            l.price_per_year = money(l.price_per_year, f);
        },
    },
    Parameter {
        name: "server price",
        value: |e| {
            format!(
                "{} (default class)",
                e.price_sheet.spec.default_server_price.as_f64()
            )
        },
        scale: |e, f| {
            let s = &mut e.price_sheet.spec;
            s.default_server_price = money(s.default_server_price, f);
            for p in s.servers.values_mut() {
                p.price = money(p.price, f);
            }
        },
    },
    Parameter {
        name: "hypervisor CPU overhead",
        value: |e| format!("{}", crate::dimensions::overheads(e).0.cpu),
        scale: |e, f| {
            let o = &mut e.virtualized.spec.performance_overhead;
            o.cpu = (o.cpu * f).min(0.95);
            if let Some(m) = e
                .calibration
                .as_mut()
                .and_then(|c| c.spec.overhead.as_mut())
            {
                m.cpu = (m.cpu * f).min(0.95);
            }
        },
    },
    Parameter {
        name: "host MTBF",
        value: |e| format!("{}", e.scenario.spec.failures.hosts.mtbf),
        scale: |e, f| {
            let failures = &mut e.scenario.spec.failures;
            failures.hosts.mtbf = duration(failures.hosts.mtbf, f);
            for c in failures.by_class.values_mut() {
                c.mtbf = duration(c.mtbf, f);
            }
        },
    },
    Parameter {
        name: "labour rate",
        value: |e| {
            format!(
                "{} per hour",
                e.price_sheet.spec.labour.rate_per_hour.as_f64()
            )
        },
        scale: |e, f| {
            let l = &mut e.price_sheet.spec.labour;
            l.rate_per_hour = money(l.rate_per_hour, f);
        },
    },
    Parameter {
        name: "power price",
        value: |e| {
            format!(
                "{} per kWh",
                e.price_sheet.spec.power.price_per_kwh.as_f64()
            )
        },
        scale: |e, f| {
            let p = &mut e.price_sheet.spec.power;
            p.price_per_kwh = money(p.price_per_kwh, f);
        },
    },
];

/// Where one input flips the recommendation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakEven {
    /// The input.
    pub parameter: &'static str,
    /// Its value now.
    pub value: String,
    /// The verdict at ×1 (with the runs of the search).
    pub verdict: f64,
    /// The multiplier at which the verdict changes sign, if within ×0.1–×10.
    pub flips_at: Option<f64>,
    /// What the answer becomes beyond it.
    pub flips_to: Option<&'static str>,
    /// In words.
    pub summary: String,
}

fn verdict(estate: &Estate, options: &Options) -> Result<f64, CompareError> {
    Ok(compare(estate, options, &|| {})?
        .recommendation
        .map_or(0.0, |r| r.verdict))
}

fn side(v: f64) -> &'static str {
    if v > 0.0 {
        "virtualized"
    } else if v < 0.0 {
        "bare-metal"
    } else {
        "either"
    }
}

/// The break-even of each of [`PARAMETERS`], each point simulated with `options`.
pub fn break_even(
    estate: &Estate,
    options: &Options,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<BreakEven>, CompareError> {
    let base = verdict(estate, options)?;
    let mut out = Vec::new();
    for p in &PARAMETERS {
        let at = |f: f64| {
            let mut e = estate.clone();
            (p.scale)(&mut e, f);
            verdict(&e, options)
        };
        let mut flip = None;
        for end in [1.0 / RANGE, RANGE] {
            let v = at(end)?;
            if side(v) != side(base) {
                // Bisect on log(multiplier) between 0 (×1) and log(end).
                let (mut good, mut bad) = (0.0f64, end.ln());
                let mut beyond = v;
                for _ in 0..STEPS {
                    let mid = (good + bad) / 2.0;
                    let vm = at(mid.exp())?;
                    if side(vm) == side(base) {
                        good = mid;
                    } else {
                        bad = mid;
                        beyond = vm;
                    }
                }
                flip = Some((bad.exp(), side(beyond)));
                break;
            }
        }
        progress();
        let value = (p.value)(estate);
        let summary = match flip {
            Some((f, to)) => format!("{to} from ×{} ({})", fmt_num(f), p.name),
            None => "no flip within ×0.1–×10".to_owned(),
        };
        out.push(BreakEven {
            parameter: p.name,
            value,
            verdict: base,
            flips_at: flip.map(|f| f.0),
            flips_to: flip.map(|f| f.1),
            summary,
        });
    }
    Ok(out)
}

/// Totals of one environment over the runs, for the what-ifs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Total cost of ownership over the horizon, currency units.
    pub cost: f64,
    /// Pod-minutes unavailable per year.
    pub pod_minutes: f64,
    /// Servers used.
    pub servers: f64,
    /// Hands-on hours per year.
    pub hands_on: f64,
}

impl std::ops::Add for Totals {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            cost: self.cost + o.cost,
            pod_minutes: self.pod_minutes + o.pod_minutes,
            servers: self.servers + o.servers,
            hands_on: self.hands_on + o.hands_on,
        }
    }
}

fn totals(
    estate: &Estate,
    env: EnvironmentType,
    options: &Options,
) -> Result<Totals, CompareError> {
    let d = design(estate, env)?;
    let facts = static_facts(estate, &d);
    let seeds: Vec<u64> = options.seeds().collect();
    let runs: Vec<Totals> = seeds
        .par_iter()
        .map(|&seed| {
            let r = simulate_one(estate, env, seed, options, Execution::default())?;
            let m = measure(estate, &d, &facts, &r);
            Ok(Totals {
                cost: m.headline[9],
                pod_minutes: m.headline[4],
                servers: d.servers() as f64,
                hands_on: m.headline[12],
            })
        })
        .collect::<Result<_, CompareError>>()?;
    let sum = runs.into_iter().fold(Totals::default(), |a, b| a + b);
    let n = f64::from(options.runs.max(1));
    Ok(Totals {
        cost: sum.cost / n,
        pod_minutes: sum.pod_minutes / n,
        servers: sum.servers / n,
        hands_on: sum.hands_on / n,
    })
}

/// Moving one cluster to the other environment.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WhatIf {
    /// The cluster moved.
    pub cluster: String,
    /// Where the rest stays.
    pub rest_on: &'static str,
    /// Where the cluster goes.
    pub moved_to: &'static str,
    /// Everything on `rest_on`.
    pub all_together: Totals,
    /// The cluster on `moved_to`, the rest on `rest_on` (the moved cluster takes the owned
    /// servers first; the rest gets what is left).
    pub split: Totals,
}

/// For each cluster, the estate split: that cluster on the other environment than
/// `rest_on`, everything else on `rest_on`.
pub fn what_if(
    estate: &Estate,
    rest_on: EnvironmentType,
    options: &Options,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<WhatIf>, CompareError> {
    let moved_to = ENVS.into_iter().find(|e| *e != rest_on).unwrap_or(rest_on);
    let all_together = totals(estate, rest_on, options)?;
    let mut out = Vec::new();
    for c in &estate.clusters {
        let only = Estate {
            clusters: vec![c.clone()],
            workloads: estate
                .workloads
                .iter()
                .filter(|w| w.id.cluster == c.name)
                .cloned()
                .collect(),
            vm_sets: Vec::new(),
            ..estate.clone()
        };
        let moved = design(&only, moved_to)?;
        let taken: std::collections::BTreeSet<&str> =
            moved.machines.iter().map(|m| m.name.as_str()).collect();
        let rest = Estate {
            clusters: estate
                .clusters
                .iter()
                .filter(|x| x.name != c.name)
                .cloned()
                .collect(),
            workloads: estate
                .workloads
                .iter()
                .filter(|w| w.id.cluster != c.name)
                .cloned()
                .collect(),
            hosts: estate
                .hosts
                .iter()
                .filter(|h| !taken.contains(h.name.as_str()))
                .cloned()
                .collect(),
            ..estate.clone()
        };
        let mut split = totals(&only, moved_to, options)?;
        if !rest.clusters.is_empty() || !rest.vm_sets.is_empty() {
            split = split + totals(&rest, rest_on, options)?;
        }
        progress();
        out.push(WhatIf {
            cluster: c.name.clone(),
            rest_on: env_name(rest_on),
            moved_to: env_name(moved_to),
            all_together,
            split,
        });
    }
    Ok(out)
}
