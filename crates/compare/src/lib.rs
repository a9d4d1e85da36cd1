//! `plinth compare`: the operator's question — should Kubernetes run on VMs or on bare
//! metal, for this inventory, these clusters and these workloads? — answered with numbers.
//!
//! One input gives two designs ([`design`]), each the placement engine's capacity plan for
//! its environment. Both are simulated over the same paired seeds (run *i* gives both the
//! same hardware failure times); every run's event log is read back ([`events`]) and
//! measured on 13 dimensions ([`dimensions`]), with cost in integer micro-currency
//! ([`cost`]). Each dimension gets a mean and 95 % interval per environment and a paired
//! difference ([`stats`]); a winner is named only when that interval excludes zero. The
//! recommendation ([`decision`]) weighs worth: declared requirements first, then money
//! (TCO and the declared prices of downtime and delay), the rest shown as material or
//! immaterial trade-offs; [`sensitivity`] finds the break-even of eight inputs and what
//! moving one cluster to the other environment would change. [`html`] writes the
//! report a manager reads. Formulas: docs/dimensions.md.

pub mod cost;
pub mod decision;
pub mod design;
pub mod dimensions;
pub mod events;
pub mod html;
mod provenance;
pub mod sensitivity;
pub mod stats;

use std::collections::BTreeMap;
use std::io;

use plinth_events::{Expected, InputDigest, Source};
use plinth_model::estate::Estate;
use plinth_model::kinds::environment::EnvironmentType;
use rayon::prelude::*;
use serde::Serialize;
use thiserror::Error;

use crate::design::{Design, design};
use crate::dimensions::{DIMENSIONS, Detail, Measures, Spec, StaticFacts, measure, static_facts};
use crate::events::{Fold, Known, LogError, RunFacts, read_log};
use crate::stats::{Estimate, estimate, paired};

pub use decision::Recommendation;
pub use provenance::{Provenance, provenance};

/// Why a comparison could not be made.
#[derive(Debug, Error)]
pub enum CompareError {
    /// A design cannot be built at all.
    #[error("the {env} design cannot be built")]
    Design {
        /// `virtualized` or `bare-metal`.
        env: &'static str,
        /// Why.
        #[source]
        source: plinth_sim::SimError,
    },
    /// A run stopped before its end (its event budget, or its log could not be written).
    #[error("the {env} run of seed {seed} stopped")]
    Run {
        /// `virtualized` or `bare-metal`.
        env: &'static str,
        /// Its seed.
        seed: u64,
        /// Why.
        #[source]
        source: plinth_sim::SimError,
    },
    /// The simulator's setup is of another design than the one asked for (a bug).
    #[error("the simulator set up another design than {env}")]
    WrongDesign {
        /// The design asked for.
        env: &'static str,
    },
    /// An event log cannot be read, or is not of the run it is read for.
    #[error("cannot use the event log {name}")]
    Log {
        /// Its file name (`<env>-seed-<n>.jsonl`).
        name: String,
        /// What is wrong with it.
        source: LogError,
    },
    /// A run's event log cannot be opened (to read it back, or to save it).
    #[error("cannot open the event log {name}")]
    OpenLog {
        /// Its file name (`<env>-seed-<n>.jsonl`).
        name: String,
        /// Why.
        source: io::Error,
    },
}

/// How many runs, from which seed, how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    /// Run *i* uses seed `seed + i` in both environments.
    pub seed: u64,
    /// Paired runs.
    pub runs: u32,
    /// Simulated time per run, ms.
    pub duration_ms: u64,
    /// The digest of the input (every run's log header carries it; a saved log of
    /// another input is refused).
    pub input: InputDigest,
}

impl Options {
    /// The seeds of the runs, in order.
    pub fn seeds(&self) -> impl Iterator<Item = u64> + use<> {
        let seed = self.seed;
        (0..u64::from(self.runs)).map(move |i| seed.wrapping_add(i))
    }
}

/// The two environments, in report order.
pub const ENVS: [EnvironmentType; 2] = [EnvironmentType::Virtualized, EnvironmentType::BareMetal];

/// The name an environment has in logs, files and reports.
pub fn env_name(env: EnvironmentType) -> &'static str {
    match env {
        EnvironmentType::Virtualized => "virtualized",
        EnvironmentType::BareMetal => "bare-metal",
    }
}

/// The file name `--events` gives the log of one run: `virtualized-seed-7.jsonl`.
pub fn log_file_name(env: EnvironmentType, seed: u64) -> String {
    format!("{}-seed-{seed}.jsonl", env_name(env))
}

/// Opens the writer a run's event log is saved to as it is produced (`--events`).
pub type SaveLog<'a> = &'a (dyn Fn(EnvironmentType, u64) -> io::Result<Box<dyn io::Write>> + Sync);

/// Opens a saved run's event log for reading (`--from-events`).
pub type OpenLog<'a> = &'a dyn Fn(EnvironmentType, u64) -> io::Result<Box<dyn io::BufRead>>;

/// How runs are carried out: where their logs are saved as they are written, and the
/// event budget of each simulated day.
#[derive(Clone, Copy)]
pub struct Execution<'a> {
    /// Opens each run's log file (`--events`); `None` keeps no log.
    pub save: Option<SaveLog<'a>>,
    /// Events a simulated day may take before the run stops
    /// ([`plinth_sim::LogOutput::with_budget`]).
    pub events_per_day: u64,
}

impl Default for Execution<'_> {
    fn default() -> Self {
        Self {
            save: None,
            events_per_day: plinth_sim::budget::EVENTS_PER_DAY,
        }
    }
}

/// Every run's facts, per environment in [`ENVS`] order, each in seed order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Runs(pub [Vec<RunFacts>; 2]);

impl Runs {
    /// Runs whose log came from a real run rather than the simulator.
    pub fn real(&self) -> usize {
        self.0
            .iter()
            .flatten()
            .filter(|r| r.source == Source::RealRun)
            .count()
    }
}

/// The jobs of a comparison: every seed in both environments, seed-major.
fn jobs(options: &Options) -> Vec<(u64, EnvironmentType)> {
    options
        .seeds()
        .flat_map(|seed| ENVS.map(|env| (seed, env)))
        .collect()
}

/// Sorts per-job results (in [`jobs`] order) into [`Runs`].
fn into_runs(results: Vec<((u64, EnvironmentType), RunFacts)>) -> Runs {
    let mut runs = Runs::default();
    for ((_, env), facts) in results {
        let k = usize::from(env != ENVS[0]);
        runs.0[k].push(facts);
    }
    runs
}

/// Simulates both designs over the paired seeds, in parallel, calling `progress` after
/// each run. Each run's metrics are folded from its events as they are produced, so memory
/// is that of the runs in flight, not of their logs; with `execution.save`, each log is
/// also written to the writer it opens.
pub fn simulate_runs(
    estate: &Estate,
    options: &Options,
    execution: Execution<'_>,
    progress: &(dyn Fn() + Sync),
) -> Result<Runs, CompareError> {
    let results = jobs(options)
        .into_par_iter()
        .map(|(seed, env)| {
            let facts = simulate_one(estate, env, seed, options, execution)?;
            progress();
            Ok(((seed, env), facts))
        })
        .collect::<Result<Vec<_>, CompareError>>()?;
    Ok(into_runs(results))
}

/// Simulates one run of one design and folds its facts as its events are produced.
pub(crate) fn simulate_one(
    estate: &Estate,
    env: EnvironmentType,
    seed: u64,
    options: &Options,
    execution: Execution<'_>,
) -> Result<RunFacts, CompareError> {
    let name = || log_file_name(env, seed);
    let mut fold = Fold::default();
    // Lines are serialized and hashed only for a log that is saved.
    let output = match execution.save {
        Some(open) => {
            let file = open(env, seed).map_err(|source| CompareError::OpenLog {
                name: name(),
                source,
            })?;
            plinth_sim::LogOutput::stream(io::BufWriter::new(file)).with_records(&mut fold)
        }
        None => plinth_sim::LogOutput::records(&mut fold),
    }
    .with_budget(execution.events_per_day);
    let sim_options = plinth_sim::Options {
        env,
        seed,
        duration: options.duration_ms,
        input: options.input,
    };
    plinth_sim::simulate_into(estate, &sim_options, output, |_| {}).map_err(
        |source| match source {
            plinth_sim::SimError::Design { .. } => CompareError::Design {
                env: env_name(env),
                source,
            },
            _ => CompareError::Run {
                env: env_name(env),
                seed,
                source,
            },
        },
    )?;
    fold.finish().map_err(|source| CompareError::Log {
        name: name(),
        source,
    })
}

/// Reads every run's facts back from saved event logs, in parallel: each must be of this
/// input and of its run of `options` (a real run's log of its input only), sealed by its
/// digest, and name only objects this input has.
pub fn read_runs(
    estate: &Estate,
    options: &Options,
    open: OpenLog<'_>,
) -> Result<Runs, CompareError> {
    let designs = [design(estate, ENVS[0])?, design(estate, ENVS[1])?];
    let known = Known::of(estate, &designs);
    let results = jobs(options)
        .into_iter()
        .map(|(seed, env)| {
            let name = || log_file_name(env, seed);
            let log = open(env, seed).map_err(|source| CompareError::OpenLog {
                name: name(),
                source,
            })?;
            let expected = Expected {
                input: options.input,
                seed,
                duration_ms: options.duration_ms,
                design: env,
            };
            let facts = read_log(log, &expected, &known).map_err(|source| CompareError::Log {
                name: name(),
                source,
            })?;
            Ok(((seed, env), facts))
        })
        .collect::<Result<Vec<_>, CompareError>>()?;
    Ok(into_runs(results))
}

/// Who wins a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Winner {
    /// Virtualization is better and the paired interval excludes zero.
    Virtualized,
    /// Bare metal is better and the paired interval excludes zero.
    BareMetal,
    /// The paired interval contains zero.
    Tie,
}

/// A secondary metric of both environments.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DetailPair {
    /// What it is.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Mean over the virtualized runs.
    pub virtualized: f64,
    /// Mean over the bare-metal runs.
    pub bare_metal: f64,
}

/// One dimension's result.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DimensionResult {
    /// Which dimension.
    #[serde(flatten)]
    pub spec: Spec,
    /// Virtualized mean and interval.
    pub virtualized: Estimate,
    /// Bare-metal mean and interval.
    pub bare_metal: Estimate,
    /// Paired difference, virtualized − bare metal.
    pub difference: Estimate,
    /// The winner.
    pub winner: Winner,
    /// Whether the difference is material: a winner, and `|difference| ≥ materiality ·
    /// larger mean` (`Scenario.spec.materiality`).
    pub material: bool,
    /// Secondary metrics.
    pub details: Vec<DetailPair>,
}

/// A design in brief.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DesignSummary {
    /// Environment.
    pub env: &'static str,
    /// Servers used, owned and bought.
    pub servers: usize,
    /// Of those, owned.
    pub owned: usize,
    /// Of those, bought.
    pub bought: usize,
    /// Owned active servers left unused.
    pub surplus: usize,
    /// Kubernetes nodes.
    pub nodes: u32,
    /// Why it fails the service check; empty when it passes.
    pub failures: Vec<String>,
    /// Why each server is there, by role.
    pub roles: Vec<design::RoleRow>,
}

/// Per-workload availability of both environments, %.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadAvailability {
    /// Workload id.
    pub workload: String,
    /// Virtualized, mean over runs.
    pub virtualized: f64,
    /// Bare metal, mean over runs.
    pub bare_metal: f64,
}

/// Per-environment series for the charts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Series {
    /// Physical CPU utilization per day, %, mean over runs: (day's mean, lowest hour,
    /// highest hour).
    pub daily_cpu: Vec<(f64, f64, f64)>,
    /// Cost by category over the horizon ([`cost::Cost::CATEGORIES`]), mean over runs,
    /// currency units.
    pub cost: [f64; 6],
    /// Cash per year of the horizon, mean over runs, currency units: (capital, operating).
    pub cash: Vec<(f64, f64)>,
    /// Pods each server's failure would hit.
    pub pods_per_server: Vec<f64>,
    /// Phases of adding a node, seconds.
    pub add_node: Vec<(String, f64)>,
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Seeds, runs and duration.
    pub options: Options,
    /// ISO currency of money values.
    pub currency: String,
    /// Cost horizon, years.
    pub horizon_years: u32,
    /// Both designs, virtualized first.
    pub designs: Vec<DesignSummary>,
    /// The 13 dimensions (empty when a design fails the service check).
    pub dimensions: Vec<DimensionResult>,
    /// What to do (absent when a design fails the service check).
    pub recommendation: Option<Recommendation>,
    /// Per workload availability.
    pub availability: Vec<WorkloadAvailability>,
    /// Chart series, virtualized first.
    pub series: Vec<Series>,
    /// Break-even of eight inputs (empty unless asked for).
    pub sensitivity: Vec<sensitivity::BreakEven>,
    /// Moving one cluster to the other environment (empty unless asked for).
    pub what_if: Vec<sensitivity::WhatIf>,
    /// Every cluster merged into one on bare metal (absent unless asked for, or with
    /// fewer than two clusters).
    pub merge_what_if: Option<sensitivity::MergeWhatIf>,
    /// Every value that came from a default, with its source.
    pub provenance: Vec<Provenance>,
    /// Things the reader should know.
    pub warnings: Vec<String>,
}

fn summary(design: &Design) -> DesignSummary {
    let owned = design.machines.iter().filter(|m| m.owned).count();
    DesignSummary {
        env: env_name(design.env),
        servers: design.machines.len(),
        owned,
        bought: design.machines.len() - owned,
        surplus: design.surplus.len(),
        nodes: design.nodes,
        failures: design.failures.clone(),
        roles: design.roles.clone(),
    }
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { s / n as f64 }
}

fn daily_cpu(runs: &[events::RunFacts], design: &Design) -> Vec<(f64, f64, f64)> {
    let days = runs.iter().map(|r| r.hours.len() / 24).min().unwrap_or(0);
    let pool = design.vm_pool_capacity.cpu_millis as f64;
    // Utilization of hour `h` of run `r`, %, the bare-metal VM pool included.
    let at = |r: &events::RunFacts, h: usize| {
        let hour = &r.hours[h];
        let cap = hour.cpu_capacity + pool;
        if cap > 0.0 {
            100.0 * (hour.cpu_used + design.vm_pool_usage[h % 24].0) / cap
        } else {
            0.0
        }
    };
    (0..days)
        .map(|d| {
            let hours = d * 24..d * 24 + 24;
            let of_run = |r: &events::RunFacts| {
                hours
                    .clone()
                    .map(|h| at(r, h))
                    .fold((0.0, f64::INFINITY, f64::NEG_INFINITY), |(s, lo, hi), u| {
                        (s + u / 24.0, lo.min(u), hi.max(u))
                    })
            };
            let per_run: Vec<(f64, f64, f64)> = runs.iter().map(of_run).collect();
            (
                mean(per_run.iter().map(|p| p.0)),
                mean(per_run.iter().map(|p| p.1)),
                mean(per_run.iter().map(|p| p.2)),
            )
        })
        .collect()
}

fn winner(spec: &Spec, difference: &Estimate) -> Winner {
    if !difference.excludes_zero() {
        return Winner::Tie;
    }
    let virtualized_higher = difference.mean > 0.0;
    match (spec.better, virtualized_higher) {
        (dimensions::Better::Higher, true) | (dimensions::Better::Lower, false) => {
            Winner::Virtualized
        }
        _ => Winner::BareMetal,
    }
}

/// An estimate of a non-negative metric: the interval cut at zero, and no −0 (which an
/// empty float sum yields) in the report.
fn non_negative(e: Estimate) -> Estimate {
    Estimate {
        mean: e.mean + 0.0,
        low: e.low.max(0.0),
        high: e.high + 0.0,
    }
}

fn compare_dimensions(estate: &Estate, measured: &[Vec<Measures>; 2]) -> Vec<DimensionResult> {
    let scenario = &estate.scenario.spec;
    let mut results = Vec::new();
    for (i, spec) in DIMENSIONS.iter().enumerate() {
        let v: Vec<f64> = measured[0].iter().map(|m| m.headline[i]).collect();
        let b: Vec<f64> = measured[1].iter().map(|m| m.headline[i]).collect();
        // Every headline metric is non-negative: an interval is cut at zero.
        let (ev, eb, d) = (
            non_negative(estimate(&v)),
            non_negative(estimate(&b)),
            paired(&v, &b),
        );
        let w = winner(spec, &d);
        let details = measured[0]
            .first()
            .map(|m| &m.details[i])
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(k, first): (usize, &Detail)| {
                let at = |runs: &[Measures]| {
                    mean(
                        runs.iter()
                            .filter_map(|m| m.details[i].get(k).map(|d| d.value)),
                    )
                };
                DetailPair {
                    name: first.name.clone(),
                    unit: first.unit.clone(),
                    virtualized: at(&measured[0]),
                    bare_metal: at(&measured[1]),
                }
            })
            .collect();
        results.push(DimensionResult {
            spec: *spec,
            virtualized: ev,
            bare_metal: eb,
            difference: d,
            winner: w,
            material: w != Winner::Tie
                && decision::material(&d, ev.mean, eb.mean, scenario.materiality_of(spec.key)),
            details,
        });
    }
    results
}

/// Capital and operating cash per year of the horizon, mean over runs, currency units.
fn cash(runs: &[Measures], horizon: u32) -> Vec<(f64, f64)> {
    (0..horizon.max(1))
        .map(|year| {
            let of = |m: &Measures| {
                if year == 0 {
                    (m.cost.capex, m.cost.opex_first_year)
                } else {
                    (0, m.cost.opex_later_year)
                }
            };
            (
                mean(runs.iter().map(|m| cost::units(of(m).0))),
                mean(runs.iter().map(|m| cost::units(of(m).1))),
            )
        })
        .collect()
}

/// A number with as many decimals as its size deserves.
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a == 0.0 {
        "0".into()
    } else if a >= 1000.0 {
        let s = format!("{:.0}", x.abs());
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        if x < 0.0 { format!("-{out}") } else { out }
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 0.01 {
        format!("{x:.2}")
    } else {
        format!("{x:.2e}")
    }
}

/// Builds the report from the runs' facts (simulated now or read back from saved logs).
pub fn report(estate: &Estate, options: &Options, runs: &Runs) -> Result<Report, CompareError> {
    let designs = [design(estate, ENVS[0])?, design(estate, ENVS[1])?];
    Ok(report_of(estate, options, runs, &designs))
}

/// [`report`] with the designs of `estate` already built, in [`ENVS`] order.
pub(crate) fn report_of(
    estate: &Estate,
    options: &Options,
    runs: &Runs,
    designs: &[Design; 2],
) -> Report {
    let mut warnings = Vec::new();
    if let (_, Some(w)) = dimensions::overheads(estate) {
        warnings.push(w);
    }
    let statics: Vec<StaticFacts> = designs.iter().map(|d| static_facts(estate, d)).collect();
    let real = runs.real();
    if real > 0 {
        warnings.push(format!(
            "{real} of the runs are logs of a real run, not of the simulator: their seeds and \
             durations are their own"
        ));
    }
    let runs = &runs.0;
    let measured: [Vec<Measures>; 2] = [0, 1].map(|k| {
        runs[k]
            .iter()
            .map(|r| measure(estate, &designs[k], &statics[k], r))
            .collect()
    });
    let passes = designs.iter().all(|d| d.failures.is_empty());
    let (dimensions, recommendation) = if passes {
        let d = compare_dimensions(estate, &measured);
        let r = decision::recommend(estate, &measured, &d);
        (d, Some(r))
    } else {
        warnings.push(
            "a design fails the service check, so no dimension is compared: see its failures"
                .into(),
        );
        (Vec::new(), None)
    };
    let mut availability: BTreeMap<&str, [f64; 2]> = BTreeMap::new();
    for (k, ms) in measured.iter().enumerate() {
        for m in ms {
            for (w, a) in &m.availability {
                availability.entry(w.as_str()).or_default()[k] += a / ms.len() as f64;
            }
        }
    }
    let series = (0..2)
        .map(|k| Series {
            daily_cpu: daily_cpu(&runs[k], &designs[k]),
            cost: std::array::from_fn(|i| {
                mean(
                    measured[k]
                        .iter()
                        .map(|m| cost::units(m.cost.by_category()[i])),
                )
            }),
            cash: cash(&measured[k], estate.price_sheet.spec.horizon_years),
            pods_per_server: statics[k].pods_per_server.clone(),
            add_node: statics[k].add_node.clone(),
        })
        .collect();
    Report {
        options: *options,
        currency: estate.price_sheet.spec.currency.clone(),
        horizon_years: estate.price_sheet.spec.horizon_years,
        designs: designs.iter().map(summary).collect(),
        dimensions,
        recommendation,
        availability: availability
            .into_iter()
            .map(|(w, [v, b])| WorkloadAvailability {
                workload: w.to_owned(),
                virtualized: v,
                bare_metal: b,
            })
            .collect(),
        series,
        sensitivity: Vec::new(),
        what_if: Vec::new(),
        merge_what_if: None,
        provenance: provenance(estate),
        warnings,
    }
}

/// Simulates and reports in one step.
pub fn compare(
    estate: &Estate,
    options: &Options,
    progress: &(dyn Fn() + Sync),
) -> Result<Report, CompareError> {
    report(
        estate,
        options,
        &simulate_runs(estate, options, Execution::default(), progress)?,
    )
}
