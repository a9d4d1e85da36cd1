//! `plinth compare`: both designs from one input, simulated over paired seeds, measured on
//! 13 dimensions, with a recommendation, what would change it, and an HTML report.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use plinth_compare::decision::DecidedBy;
use plinth_compare::{
    CompareError, ENVS, Execution, Options, Report, Runs, Winner, fmt_num, html, log_file_name,
    read_runs, report, simulate_runs,
};
use plinth_events::InputDigest;
use plinth_model::quantity::Duration;
use plinth_model::ranges;
use plinth_server::sweeps;

use crate::Outcome;
use crate::commands::{self, load_or_report};
use crate::input::InputArgs;
use crate::output::{self, Overwrite};
use crate::render::to_yaml;

/// `-o` values of `compare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Tables for a terminal.
    Table,
    /// JSON for machines.
    Json,
    /// YAML for machines.
    Yaml,
}

/// Compare virtualized and bare-metal nodes for this input on 13 dimensions.
///
/// Builds both designs, simulates them over paired seeds (run i gives both the same
/// hardware failure times), and reports each dimension's mean and 95 % interval, the
/// paired difference and the winner, a recommendation, the break-even of six inputs and
/// what moving each cluster would change. Exit codes: 0 compared, 1 invalid input or a
/// design that cannot be built, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// Seed of run 0; run i uses seed + i (default: the Scenario's).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Paired runs per environment, 2 to 1000 (default: the Scenario's, 32).
    #[arg(long, value_name = "RUNS", value_parser = commands::runs_arg)]
    pub(crate) seeds: Option<u32>,
    /// Simulated time per run, e.g. `365d`, from 1m to 100y (default: the Scenario's).
    #[arg(long, value_parser = commands::duration_arg)]
    pub(crate) duration: Option<Duration>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
    /// Also write the report as one self-contained HTML file.
    #[arg(long, value_name = "PATH")]
    pub(crate) html: Option<PathBuf>,
    /// Keep every run's event log in DIR (`<env>-seed-<n>.jsonl`); existing logs are refused unless --force.
    #[arg(long, value_name = "DIR", conflicts_with = "from_events")]
    pub(crate) events: Option<PathBuf>,
    /// Overwrite event logs that exist in the --events directory.
    #[arg(long, requires = "events")]
    pub(crate) force: bool,
    /// Rebuild the report from the event logs in DIR instead of simulating.
    #[arg(long, value_name = "DIR")]
    pub(crate) from_events: Option<PathBuf>,
    /// Runs per point of the break-even search and the per-cluster what-ifs (2 to 1000; default 8).
    #[arg(long, value_name = "RUNS", conflicts_with = "no_sweep", value_parser = commands::runs_arg)]
    pub(crate) sweep_runs: Option<u32>,
    /// Stop a run, with an error naming the input behind it, once a simulated day takes more
    /// events than this (default 1000000; the sweeps keep the default).
    #[arg(long, value_name = "EVENTS", value_parser = commands::events_per_day_arg)]
    pub(crate) max_events_per_day: Option<u64>,
    /// Skip the break-even search and the per-cluster what-ifs.
    #[arg(long)]
    pub(crate) no_sweep: bool,
}

/// One year of simulated time, ms.
const YEAR_MS: u64 = 365 * 86_400_000;

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!("{{bar:40}} {{pos}}/{{len}} {what} ({{elapsed}})"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Reads the runs back from the logs in `dir`, one file at a time, line by line.
fn read_events(
    estate: &plinth_model::Estate,
    dir: &Path,
    options: &Options,
) -> Result<Runs, CompareError> {
    let open = |env, seed| -> std::io::Result<Box<dyn BufRead>> {
        let file = std::fs::File::open(dir.join(log_file_name(env, seed)))?;
        Ok(Box::new(BufReader::new(file)))
    };
    read_runs(estate, options, &open)
}

/// Simulates the runs, each log streamed to its file in `dir` (when given) as it is
/// written. Existing logs are refused before anything runs, unless `overwrite` allows.
fn simulate_events(
    estate: &plinth_model::Estate,
    dir: Option<&Path>,
    overwrite: Overwrite,
    execution: Execution<'_>,
    options: &Options,
    progress: &(dyn Fn() + Sync),
) -> Result<Result<Runs, CompareError>> {
    let Some(dir) = dir else {
        return Ok(simulate_runs(estate, options, execution, progress));
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for seed in options.seeds() {
        for env in ENVS {
            output::check_absent(&dir.join(log_file_name(env, seed)), overwrite)
                .context("writing the event logs")?;
        }
    }
    let open = |env, seed| -> std::io::Result<Box<dyn Write>> {
        let file = output::create(&dir.join(log_file_name(env, seed)), overwrite)
            .map_err(std::io::Error::other)?;
        Ok(Box::new(file))
    };
    let execution = Execution {
        save: Some(&open),
        ..execution
    };
    Ok(simulate_runs(estate, options, execution, progress))
}

/// Whether a comparison failed because of its input (exit 1) rather than of the machine:
/// a design that cannot be built, a run over its event budget.
fn input_error(e: &CompareError) -> bool {
    match e {
        CompareError::Design { .. } => true,
        CompareError::Run { source, .. } => {
            matches!(source, plinth_sim::SimError::EventBudget { .. })
        }
        _ => false,
    }
}

/// Runs `plinth compare`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let Some((input, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let scenario = &estate.scenario.spec;
    let options = Options {
        seed: args.seed.unwrap_or(scenario.seed),
        runs: args.seeds.unwrap_or(scenario.runs),
        duration_ms: args.duration.unwrap_or(scenario.duration).millis(),
        input: InputDigest::of(&input),
    };
    if options.runs < 2 {
        bail!(
            "a comparison needs at least 2 paired runs to estimate an interval; the Scenario \
             sets runs: {}: pass --seeds 2 or more, or raise Scenario.spec.runs",
            options.runs
        );
    }
    let run_years = u64::from(options.runs).saturating_mul(options.duration_ms) / YEAR_MS;
    if !ranges::RUN_YEARS.contains(run_years) {
        bail!(
            "{} runs of {} are {run_years} simulated run-years, out of range: expected at most {} \
             ({}); pass fewer --seeds or a shorter --duration",
            options.runs,
            Duration(options.duration_ms),
            ranges::RUN_YEARS.max,
            ranges::RUN_YEARS.why
        );
    }
    let started = Instant::now();
    let overwrite = if args.force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    let runs = match &args.from_events {
        // A saved log that is missing, unreadable or of another run is a usage error: the
        // flags do not match what wrote the directory.
        Some(dir) => read_events(&estate, dir, &options).with_context(|| {
            format!(
                "rebuilding the report from {} (written by `--events` from the same input \
                 with the same --seed, --seeds and --duration?)",
                dir.display()
            )
        })?,
        None => {
            let progress = bar(u64::from(options.runs) * 2, "runs simulated");
            let runs = simulate_events(
                &estate,
                args.events.as_deref(),
                overwrite,
                Execution {
                    save: None,
                    events_per_day: args
                        .max_events_per_day
                        .unwrap_or(plinth_sim::budget::EVENTS_PER_DAY),
                },
                &options,
                &|| progress.inc(1),
            )?;
            progress.finish_and_clear();
            match runs {
                Ok(r) => r,
                Err(e) if input_error(&e) => {
                    output::stderr(output::error_chain(&e));
                    return Ok(Outcome::Invalid);
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let mut report = match report(&estate, &options, &runs) {
        Ok(r) => r,
        Err(e) => {
            output::stderr(output::error_chain(&e));
            return Ok(Outcome::Invalid);
        }
    };
    let compared = started.elapsed();
    let mut timings = vec![("13 dimensions and the recommendation", compared)];
    if !args.no_sweep {
        let progress = bar(
            sweeps::steps(&estate),
            "break-even inputs and clusters moved",
        );
        let runs = args.sweep_runs.unwrap_or(sweeps::DEFAULT_RUNS);
        let swept = sweeps::add(&estate, &options, runs, &mut report, &|| progress.inc(1))?;
        progress.finish_and_clear();
        if let Some(t) = swept {
            timings.push(("break-even search", t.break_even));
            timings.push(("per-cluster what-ifs", t.what_if));
        }
    }
    if let Some(path) = &args.html {
        let title = format!(
            "Plinth: virtualized vs bare-metal Kubernetes nodes for {}",
            estate.inventory.name
        );
        output::file(
            path,
            html::render(&report, &title).as_bytes(),
            Overwrite::Allow,
        )
        .context("writing the HTML report")?;
    }
    let text = match args.output {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
        Format::Yaml => to_yaml(&serde_json::to_value(&report)?),
        Format::Table => table(&report),
    };
    output::stdout(text)?;
    for (what, d) in timings {
        output::stderr(format!("{what}: {:.2} s\n", d.as_secs_f64()));
    }
    Ok(Outcome::Success)
}

fn ci(e: &plinth_compare::stats::Estimate) -> String {
    if e.low == e.high {
        fmt_num(e.mean)
    } else {
        format!("{} ±{}", fmt_num(e.mean), fmt_num((e.high - e.low) / 2.0))
    }
}

/// Why each design has its servers: one row per role, both designs.
fn roles_table(r: &Report) -> String {
    let mut t = commands::table(140, vec!["design", "cluster", "role", "servers", "why"]);
    for d in &r.designs {
        for row in &d.roles {
            t.add_row(vec![
                d.env.to_owned(),
                row.cluster.clone(),
                row.role.clone(),
                row.servers.to_string(),
                row.why.clone(),
            ]);
        }
    }
    format!("{t}\n")
}

/// The terminal report.
fn table(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{} paired runs from seed {}, {} days each; costs in {} over {} years\n",
        r.options.runs,
        r.options.seed,
        fmt_num(r.options.duration_ms as f64 / 86_400_000.0),
        r.currency,
        r.horizon_years
    ));
    for d in &r.designs {
        out.push_str(&format!(
            "{}: {} servers ({} owned, {} to buy), {} owned unused, {} nodes{}\n",
            d.env,
            d.servers,
            d.owned,
            d.bought,
            d.surplus,
            d.nodes,
            if d.failures.is_empty() {
                String::new()
            } else {
                format!("; FAILS the service check: {}", d.failures.join("; "))
            }
        ));
    }
    out.push_str(&roles_table(r));
    let mut t = commands::table(
        140,
        vec![
            "#",
            "dimension",
            "metric (unit)",
            "virtualized",
            "bare metal",
            "difference (95% CI)",
            "better",
        ],
    );
    for d in &r.dimensions {
        t.add_row(vec![
            d.spec.number.to_string(),
            d.spec.title.to_owned(),
            format!(
                "{} ({})",
                d.spec.metric,
                if d.spec.unit == "currency" {
                    r.currency.as_str()
                } else {
                    d.spec.unit
                }
            ),
            ci(&d.virtualized),
            ci(&d.bare_metal),
            format!(
                "{} [{}, {}]",
                fmt_num(d.difference.mean),
                fmt_num(d.difference.low),
                fmt_num(d.difference.high)
            ),
            match (d.winner, d.material) {
                (Winner::Tie, _) => "tie",
                (_, false) => "not material",
                (Winner::Virtualized, true) => "virtualized",
                (Winner::BareMetal, true) => "bare metal",
            }
            .to_owned(),
        ]);
    }
    if !r.dimensions.is_empty() {
        out.push_str(&format!("{t}\n"));
    }
    match &r.recommendation {
        Some(rec) => {
            out.push_str(&format!(
                "recommendation: {} (decided by {})\n",
                rec.environment,
                match rec.decided_by {
                    DecidedBy::Requirement => "a requirement",
                    DecidedBy::Money => "money",
                    DecidedBy::NoMaterialDifference => "nothing: no material difference",
                    DecidedBy::NeitherQualifies => "requirements both designs violate",
                }
            ));
            for reason in &rec.reasons {
                out.push_str(&format!("  - {reason}\n"));
            }
        }
        None => out.push_str("no recommendation: a design fails the service check\n"),
    }
    if !r.sensitivity.is_empty() {
        out.push_str("what would change the answer:\n");
        for b in &r.sensitivity {
            out.push_str(&format!(
                "  - {} (now {}): {}\n",
                b.parameter, b.value, b.summary
            ));
        }
    }
    for w in &r.what_if {
        out.push_str(&format!(
            "moving {} to {}: cost {} → {}, pod-min/year {} → {}, servers {} → {}\n",
            w.cluster,
            w.moved_to,
            fmt_num(w.all_together.cost),
            fmt_num(w.split.cost),
            fmt_num(w.all_together.pod_minutes),
            fmt_num(w.split.pod_minutes),
            fmt_num(w.all_together.servers),
            fmt_num(w.split.servers),
        ));
    }
    if let Some(m) = &r.merge_what_if {
        out.push_str(&format!(
            "merging all {} clusters into one on bare metal ({}): cost {} → {}, pod-min/year {} → {}, servers {} → {}, hands-on h/year {} → {}\n",
            m.clusters.len(),
            m.versions(),
            fmt_num(m.design.cost),
            fmt_num(m.merged.cost),
            fmt_num(m.design.pod_minutes),
            fmt_num(m.merged.pod_minutes),
            fmt_num(m.design.servers),
            fmt_num(m.merged.servers),
            fmt_num(m.design.hands_on),
            fmt_num(m.merged.hands_on),
        ));
    }
    for w in &r.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let unsourced = r.provenance.iter().filter(|p| !p.sourced).count();
    out.push_str(&format!(
        "{} values came from defaults ({} without a published source): see -o json or --html\n",
        r.provenance.len(),
        unsourced
    ));
    out
}
