//! What would change the answer: the break-even of eight inputs found by bisection, and
//! what moving one cluster to the other environment would change.

use plinth_model::estate::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::quantity::{Duration, Money};
use rayon::prelude::*;
use serde::Serialize;

use crate::design::design;
use crate::dimensions::{measure, static_facts};
use crate::{CompareError, ENVS, Execution, Options, compare, env_name, fmt_num, simulate_one};

/// Bisection steps in log space: over ×0.1–×10, ×10^(1/128) ≈ 1.8 % resolution.
const STEPS: u32 = 7;

/// An input whose multiplier the break-even search varies.
pub struct Parameter {
    /// What it is.
    pub name: &'static str,
    /// Multipliers searched: ×1/range to ×range.
    pub range: f64,
    /// Whether the input is zero in `estate` (then no multiplier moves it).
    pub is_zero: fn(&Estate) -> bool,
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

/// The owned servers scaled by `f`: the first `⌈n·f⌉` kept when `f < 1`, copies added
/// round-robin (named `<name>-copy-<k>`) when `f > 1`.
fn scale_hosts(e: &mut Estate, f: f64) {
    let n = e.hosts.len();
    let want = ((n as f64 * f).ceil() as usize).max(1);
    if want <= n {
        e.hosts.truncate(want);
        return;
    }
    let copies: Vec<_> = (n..want)
        .map(|i| {
            let mut h = e.hosts[i % n].clone();
            h.name = format!("{}-copy-{}", h.name, i / n);
            h
        })
        .collect();
    e.hosts.extend(copies);
}

fn never_zero(_: &Estate) -> bool {
    false
}

/// The inputs of issue 6 and issue 12: virtualization licence price, server price,
/// hypervisor CPU overhead, host MTBF, labour rate, power price, owned server count and
/// price of downtime.
pub const PARAMETERS: [Parameter; 8] = [
    Parameter {
        name: "virtualization licence price",
        range: 100.0,
        is_zero: |e| e.price_sheet.spec.virtualization_licence.price_per_year.0 == 0,
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
        range: 10.0,
        is_zero: never_zero,
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
        range: 10.0,
        is_zero: |e| crate::dimensions::overheads(e).0.cpu == 0.0,
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
        range: 10.0,
        is_zero: never_zero,
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
        range: 10.0,
        is_zero: |e| e.price_sheet.spec.labour.rate_per_hour.0 == 0,
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
        range: 10.0,
        is_zero: |e| e.price_sheet.spec.power.price_per_kwh.0 == 0,
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
    Parameter {
        name: "owned servers",
        range: 4.0,
        is_zero: |e| e.hosts.is_empty(),
        value: |e| format!("{} servers", e.hosts.len()),
        scale: scale_hosts,
    },
    Parameter {
        name: "price of downtime",
        range: 100.0,
        is_zero: |e| e.price_sheet.spec.downtime_per_workload_hour.0 == 0,
        value: |e| {
            format!(
                "{} per workload-hour",
                e.price_sheet.spec.downtime_per_workload_hour.as_f64()
            )
        },
        scale: |e, f| {
            let p = &mut e.price_sheet.spec;
            p.downtime_per_workload_hour = money(p.downtime_per_workload_hour, f);
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
    /// The recommendation at ×1 (with the runs of the search).
    pub base: &'static str,
    /// The multipliers searched: ×1/range to ×range.
    pub range: f64,
    /// The multiplier at which the recommendation changes, if within the range.
    pub flips_at: Option<f64>,
    /// What the answer becomes beyond it.
    pub flips_to: Option<&'static str>,
    /// In words, and why when nothing flips.
    pub summary: String,
}

/// The environment recommended for `estate` (`none` when a design fails the service
/// check).
fn side(estate: &Estate, options: &Options) -> Result<&'static str, CompareError> {
    Ok(compare(estate, options, &|| {})?
        .recommendation
        .map_or("none", |r| r.environment))
}

/// Whether `answer` is a flip from `base`: another environment (or `neither`). A band
/// of "either" (no material difference) on the way is not yet a flip, unless the base
/// itself is "either".
fn flipped(base: &str, answer: &str) -> bool {
    answer != base && (base == "either" || answer != "either")
}

/// Searches one input: both ends of its range, then bisection in log space from ×1 to the
/// first end whose answer is a flip ([`flipped`]). Returns the multiplier at the flipped
/// end of the final bracket and the answer there.
fn search(
    estate: &Estate,
    options: &Options,
    p: &Parameter,
    base: &'static str,
) -> Result<Option<(f64, &'static str)>, CompareError> {
    let at = |f: f64| {
        let mut e = estate.clone();
        (p.scale)(&mut e, f);
        side(&e, options)
    };
    for end in [1.0 / p.range, p.range] {
        let beyond_end = at(end)?;
        if !flipped(base, beyond_end) {
            continue;
        }
        let (mut good, mut bad) = (0.0f64, end.ln());
        let mut beyond = beyond_end;
        for _ in 0..STEPS {
            let mid = (good + bad) / 2.0;
            let s = at(mid.exp())?;
            if !flipped(base, s) {
                good = mid;
            } else {
                bad = mid;
                beyond = s;
            }
        }
        return Ok(Some((bad.exp(), beyond)));
    }
    Ok(None)
}

/// Why an input moves nothing, in words.
fn insensitive(
    estate: &Estate,
    p: &Parameter,
    base: &'static str,
    decided: Option<&str>,
) -> String {
    let range = format!("×{}–×{}", fmt_num(1.0 / p.range), fmt_num(p.range));
    if (p.is_zero)(estate) {
        return "no flip: the input is 0, and no multiplier moves it (set it to test it)"
            .to_owned();
    }
    match decided {
        Some(requirement) => format!(
            "no flip within {range}: {base} is kept by the requirement `{requirement}`, which this input does not change"
        ),
        None => format!(
            "no flip within {range}: the difference that decides ({base}) is larger than this input can close"
        ),
    }
}

/// The break-even of each of [`PARAMETERS`], each point simulated with `options`.
pub fn break_even(
    estate: &Estate,
    options: &Options,
    progress: &(dyn Fn() + Sync),
) -> Result<Vec<BreakEven>, CompareError> {
    let report = compare(estate, options, &|| {})?;
    let base = report
        .recommendation
        .as_ref()
        .map_or("none", |r| r.environment);
    let requirement = report
        .recommendation
        .as_ref()
        .filter(|r| r.decided_by == crate::decision::DecidedBy::Requirement)
        .and_then(|r| r.violations.first())
        .map(|v| v.requirement.field());
    let mut out = Vec::new();
    for p in &PARAMETERS {
        let flip = if (p.is_zero)(estate) {
            None
        } else {
            search(estate, options, p, base)?
        };
        progress();
        let summary = match flip {
            Some((f, to)) => format!("{to} from ×{} ({})", fmt_num(f), p.name),
            None => insensitive(estate, p, base, requirement),
        };
        out.push(BreakEven {
            parameter: p.name,
            value: (p.value)(estate),
            base,
            range: p.range,
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
        // Owned servers at book value are counted once: the moved side owns what it uses,
        // the rest owns the others.
        let only = Estate {
            hosts: estate
                .hosts
                .iter()
                .filter(|h| taken.contains(h.name.as_str()))
                .cloned()
                .collect(),
            ..only
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
