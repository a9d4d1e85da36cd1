//! What would change the answer: the break-even of eight inputs found by bisection, and
//! what moving one cluster to the other environment would change. The input's runs at ×1
//! are simulated once ([`Sweeps`]) and reused wherever a point does not change what is
//! simulated; the what-ifs move at most [`WHAT_IF_CLUSTERS`] clusters. A last what-if
//! merges every cluster into one on bare metal ([`MergeWhatIf`]), whatever their versions.

use plinth_model::estate::Estate;
use plinth_model::estate::Named;
use plinth_model::kinds::cluster::ClusterSpec;
use plinth_model::kinds::environment::EnvironmentType;
use plinth_model::quantity::{Duration, Money};
use rayon::prelude::*;
use serde::Serialize;

use crate::design::{Design, design};
use crate::dimensions::{measure, static_facts};
use crate::events::RunFacts;
use crate::{
    CompareError, ENVS, Execution, Options, Report, Runs, compare, env_name, fmt_num, report_of,
    simulate_one, simulate_runs,
};

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
    /// Whether the simulation reads it (through the design or the world). When it does
    /// not, every multiplier's runs are the runs at ×1, which [`Sweeps`] simulates once.
    pub simulated: bool,
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
        simulated: false,
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
        simulated: true,
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
        simulated: true,
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
        simulated: true,
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
        simulated: false,
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
        simulated: false,
    },
    Parameter {
        name: "owned servers",
        range: 4.0,
        is_zero: |e| e.hosts.is_empty(),
        value: |e| format!("{} servers", e.hosts.len()),
        scale: scale_hosts,
        simulated: true,
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
        simulated: false,
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

/// Whether `answer` is a flip from `base`: another environment (or `neither`). A band
/// of "either" (no material difference) on the way is not yet a flip, unless the base
/// itself is "either".
fn flipped(base: &str, answer: &str) -> bool {
    answer != base && (base == "either" || answer != "either")
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

/// The mean totals of `runs` (one environment's runs of `estate`, in seed order) on the
/// design `d`.
fn mean_totals(estate: &Estate, d: &Design, runs: &[RunFacts], options: &Options) -> Totals {
    let facts = static_facts(estate, d);
    let sum = runs
        .iter()
        .map(|r| {
            let m = measure(estate, d, &facts, r);
            Totals {
                cost: m.headline[9],
                pod_minutes: m.headline[4],
                servers: d.servers() as f64,
                hands_on: m.headline[12],
            }
        })
        .fold(Totals::default(), |a, b| a + b);
    let n = f64::from(options.runs.max(1));
    Totals {
        cost: sum.cost / n,
        pod_minutes: sum.pod_minutes / n,
        servers: sum.servers / n,
        hands_on: sum.hands_on / n,
    }
}

/// The totals of `estate` on `env`, its runs simulated with `options`.
fn totals(
    estate: &Estate,
    env: EnvironmentType,
    options: &Options,
) -> Result<Totals, CompareError> {
    let d = design(estate, env)?;
    let seeds: Vec<u64> = options.seeds().collect();
    let runs: Vec<RunFacts> = seeds
        .par_iter()
        .map(|&seed| simulate_one(estate, env, seed, options, Execution::default()))
        .collect::<Result<_, CompareError>>()?;
    Ok(mean_totals(estate, &d, &runs, options))
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

/// Every cluster merged into one bare-metal cluster, whatever OS image and Kubernetes
/// version each runs now ([`plinth_model::merge::every_cluster`]): what consolidating them
/// would save against the report's own bare-metal design, simulated like it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MergeWhatIf {
    /// The clusters merged, in input order; the first names the merged cluster.
    pub clusters: Vec<String>,
    /// How many (OS image, Kubernetes version) pairs they run now: more than one means
    /// the merge needs them upgraded to one first.
    pub stacks: usize,
    /// The report's bare-metal design (its clusters apart, or as `shareServers` merged
    /// them).
    pub design: Totals,
    /// The clusters merged.
    pub merged: Totals,
}

impl MergeWhatIf {
    /// What the merge asks first, in words.
    pub fn versions(&self) -> String {
        if self.stacks > 1 {
            format!(
                "their {} OS/Kubernetes versions brought to one first",
                self.stacks
            )
        } else {
            "they already run one OS/Kubernetes version".to_owned()
        }
    }
}

/// Most clusters the what-ifs move: each what-if simulates the whole estate again, so
/// their cost grows with the square of the number of clusters when every one is moved.
pub const WHAT_IF_CLUSTERS: usize = 8;

/// The per-cluster what-ifs, and the clusters left out by [`WHAT_IF_CLUSTERS`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WhatIfs {
    /// One per cluster moved, in the estate's order.
    pub moved: Vec<WhatIf>,
    /// The clusters not moved, in the estate's order.
    pub left_out: Vec<String>,
}

impl WhatIfs {
    /// What was left out, in words, for the report's warnings; `None` when every cluster
    /// was moved.
    pub fn bound(&self) -> Option<String> {
        if self.left_out.is_empty() {
            return None;
        }
        let total = self.moved.len() + self.left_out.len();
        Some(format!(
            "per-cluster what-ifs: {} of {total} clusters moved (the {WHAT_IF_CLUSTERS} with the \
             most declared nodes, each a whole simulation of the estate); not moved: {}",
            self.moved.len(),
            self.left_out.join(", ")
        ))
    }
}

/// The clusters the what-ifs move: at most `limit`, those with the most declared nodes
/// (control plane and pools), ties by their order in the estate; as indices, ascending.
fn clusters_to_move(estate: &Estate, limit: usize) -> Vec<usize> {
    let nodes = |c: &Named<ClusterSpec>| {
        c.spec.control_plane.replicas + c.spec.node_pools.iter().map(|p| p.replicas).sum::<u32>()
    };
    let mut order: Vec<usize> = (0..estate.clusters.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(nodes(&estate.clusters[i])));
    order.truncate(limit);
    order.sort_unstable();
    order
}

/// The sweeps of one input: its runs at ×1 with the sweep's options, simulated once and
/// shared by the break-even points of inputs the simulation does not read and by the
/// what-ifs' "all together".
pub struct Sweeps<'a> {
    estate: &'a Estate,
    options: Options,
    designs: [Design; 2],
    runs: Runs,
    base: Report,
}

impl<'a> Sweeps<'a> {
    /// Simulates `estate` at ×1 with `options`.
    pub fn new(estate: &'a Estate, options: &Options) -> Result<Self, CompareError> {
        let runs = simulate_runs(estate, options, Execution::default(), &|| {})?;
        let designs = [design(estate, ENVS[0])?, design(estate, ENVS[1])?];
        let base = report_of(estate, options, &runs, &designs);
        Ok(Self {
            estate,
            options: *options,
            designs,
            runs,
            base,
        })
    }

    /// The environment recommended for `estate` (`none` when a design fails the service
    /// check). Unless `simulated`, `estate` differs from the input only in what neither
    /// the designs nor the runs read, and both are the input's.
    fn side(&self, estate: &Estate, simulated: bool) -> Result<&'static str, CompareError> {
        let r = if simulated {
            compare(estate, &self.options, &|| {})?
        } else {
            report_of(estate, &self.options, &self.runs, &self.designs)
        };
        Ok(r.recommendation.map_or("none", |r| r.environment))
    }

    /// Searches one input: both ends of its range, then bisection in log space from ×1 to
    /// the first end whose answer is a flip ([`flipped`]). Returns the multiplier at the
    /// flipped end of the final bracket and the answer there.
    fn search(
        &self,
        p: &Parameter,
        base: &'static str,
    ) -> Result<Option<(f64, &'static str)>, CompareError> {
        let at = |f: f64| {
            let mut e = self.estate.clone();
            (p.scale)(&mut e, f);
            self.side(&e, p.simulated)
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

    /// The break-even of each of [`PARAMETERS`], calling `progress` after each.
    pub fn break_even(&self, progress: &(dyn Fn() + Sync)) -> Result<Vec<BreakEven>, CompareError> {
        let estate = self.estate;
        let recommendation = self.base.recommendation.as_ref();
        let base = recommendation.map_or("none", |r| r.environment);
        let requirement = recommendation
            .filter(|r| r.decided_by == crate::decision::DecidedBy::Requirement)
            .and_then(|r| r.violations.first())
            .map(|v| v.requirement.field());
        let mut out = Vec::new();
        for p in &PARAMETERS {
            let flip = if (p.is_zero)(estate) {
                None
            } else {
                self.search(p, base)?
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

    /// For each cluster [`clusters_to_move`] picks, the estate split: that cluster on the
    /// other environment than `rest_on`, everything else on `rest_on`; `progress` is
    /// called after each.
    pub fn what_if(
        &self,
        rest_on: EnvironmentType,
        progress: &(dyn Fn() + Sync),
    ) -> Result<WhatIfs, CompareError> {
        let estate = self.estate;
        let options = &self.options;
        let moved_to = ENVS.into_iter().find(|e| *e != rest_on).unwrap_or(rest_on);
        let k = usize::from(rest_on != ENVS[0]);
        let all_together = mean_totals(estate, &self.designs[k], &self.runs.0[k], options);
        let chosen = clusters_to_move(estate, WHAT_IF_CLUSTERS);
        let mut out = WhatIfs::default();
        for (i, c) in estate.clusters.iter().enumerate() {
            if chosen.binary_search(&i).is_err() {
                out.left_out.push(c.name.clone());
                continue;
            }
            let split = split_totals(estate, c, rest_on, moved_to, options)?;
            progress();
            out.moved.push(WhatIf {
                cluster: c.name.clone(),
                rest_on: env_name(rest_on),
                moved_to: env_name(moved_to),
                all_together,
                split,
            });
        }
        Ok(out)
    }

    /// Every cluster merged into one on bare metal ([`MergeWhatIf`]); `None` with fewer
    /// than two clusters to merge.
    pub fn merge_what_if(&self) -> Result<Option<MergeWhatIf>, CompareError> {
        let estate = self.estate;
        let groups = plinth_model::merge::every_cluster(estate);
        let Some(group) = groups.first() else {
            return Ok(None);
        };
        let stacks: std::collections::BTreeSet<(&str, &str)> = group
            .iter()
            .map(|&i| {
                let c = &estate.clusters[i].spec;
                (c.os_image.as_str(), c.kubernetes_version.as_str())
            })
            .collect();
        let merged = plinth_model::merge::merged(estate, &groups);
        let options = &self.options;
        let k = ENVS
            .iter()
            .position(|e| *e == EnvironmentType::BareMetal)
            .unwrap_or(1);
        Ok(Some(MergeWhatIf {
            clusters: group
                .iter()
                .map(|&i| estate.clusters[i].name.clone())
                .collect(),
            stacks: stacks.len(),
            design: mean_totals(estate, &self.designs[k], &self.runs.0[k], options),
            merged: totals(&merged.estate, EnvironmentType::BareMetal, options)?,
        }))
    }

    /// How many clusters [`Sweeps::what_if`] moves.
    pub fn what_if_count(&self) -> usize {
        self.estate.clusters.len().min(WHAT_IF_CLUSTERS)
    }
}

/// The totals of `estate` with cluster `c` on `moved_to` and everything else on
/// `rest_on`.
fn split_totals(
    estate: &Estate,
    c: &Named<ClusterSpec>,
    rest_on: EnvironmentType,
    moved_to: EnvironmentType,
    options: &Options,
) -> Result<Totals, CompareError> {
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
    Ok(split)
}
