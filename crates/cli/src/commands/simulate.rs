//! `plinth simulate`: runs the control plane against the deterministic simulator for one
//! environment and prints the summary; `--events` writes the JSON Lines event log
//! (`plinth_events`: a header naming the input, seed, duration and design, then the events).

use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use plinth_events::InputDigest;
use plinth_model::quantity::Duration;
use plinth_sim::{LogOutput, Options, SimError, simulate_into};

use crate::Outcome;
use crate::commands::{self, EnvArg, OutputFormat, load_or_report};
use crate::input::InputArgs;
use crate::output::{self, Overwrite};

/// Simulate one environment: failures, HA, DRS, maintenance and Kubernetes recovery.
///
/// The same inputs and seed give a byte-identical event log. Exit codes: 0 simulated,
/// 1 invalid input or a design that cannot be built, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    /// The environment to simulate.
    #[arg(long, value_enum)]
    pub(crate) env: EnvArg,
    /// Seed of the failure streams (default: the Scenario's).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Simulated time, e.g. `365d`, `12h`, from 1m to 100y (default: the Scenario's).
    #[arg(long, value_parser = commands::duration_arg)]
    pub(crate) duration: Option<Duration>,
    /// Write the event log (JSON Lines) here; an existing file is refused unless --force.
    #[arg(long, value_name = "PATH")]
    pub(crate) events: Option<PathBuf>,
    /// Overwrite the --events file if it exists.
    #[arg(long, requires = "events")]
    pub(crate) force: bool,
    /// Stop the run, with an error naming the input behind it, once a simulated day takes
    /// more events than this (default 1000000, some 600 times what an estate within the
    /// input ranges needs).
    #[arg(long, value_name = "EVENTS", value_parser = commands::events_per_day_arg)]
    pub(crate) max_events_per_day: Option<u64>,
    /// Output format of the summary.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) output: OutputFormat,
}

/// Runs `plinth simulate`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let Some((input, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let options = Options {
        env: args.env.into(),
        seed: args.seed.unwrap_or(estate.scenario.spec.seed),
        duration: args
            .duration
            .unwrap_or(estate.scenario.spec.duration)
            .millis(),
        input: InputDigest::of(&input),
    };
    let overwrite = if args.force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    // The log is streamed to its file as the run writes it, never held whole.
    let output = match &args.events {
        Some(path) => LogOutput::stream(BufWriter::new(
            output::create(path, overwrite).context("writing the event log")?,
        )),
        None => LogOutput::stream(std::io::sink()),
    }
    .with_budget(
        args.max_events_per_day
            .unwrap_or(plinth_sim::budget::EVENTS_PER_DAY),
    );
    let bar = ProgressBar::new(options.duration / 86_400_000);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} simulated days")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let result = simulate_into(&estate, &options, output, |ms| {
        bar.set_position(ms / 86_400_000);
    });
    bar.finish_and_clear();
    let run = match result {
        Ok(r) => r,
        Err(e @ SimError::Log { .. }) => {
            return Err(anyhow::Error::new(e).context("writing the event log"));
        }
        Err(e) => {
            output::stderr(output::error_chain(&e));
            return Ok(Outcome::Invalid);
        }
    };
    let s = &run.summary;
    let text = match args.output {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(s)?),
        OutputFormat::Table => summary_table(s),
    };
    output::stdout(text)?;
    Ok(Outcome::Success)
}

/// The summary as a terminal shows it.
fn summary_table(s: &plinth_sim::Summary) -> String {
    let mut out = format!(
        "{} · seed {} · {:.0} days: {} hosts, {} VMs ({} unplaced), {} nodes, {} pods\n",
        s.env,
        s.seed,
        s.duration_ms as f64 / 86_400_000.0,
        s.hosts,
        s.vms,
        s.vms_unplaced,
        s.nodes,
        s.pods
    );
    out.push_str(&format!(
        "host failures: {} (fences failed: {}, second copies: {})\n",
        s.host_failures, s.fences_failed, s.second_copies
    ));
    for (cause, phases) in &s.by_cause {
        out.push_str(&format!("  {}:\n", cause.label()));
        for (name, p) in phases.named() {
            if p.count > 0 {
                out.push_str(&format!(
                    "    {name:<12} {:>4} × mean {:>9.1} s, max {:>9.1} s\n",
                    p.count, p.mean_s, p.max_s
                ));
            }
        }
    }
    out.push_str(&format!(
        "migrations: {}, maintenances: {}, evictions: {}\n",
        s.migrations, s.maintenances, s.evictions
    ));
    if s.relabels > 0 || s.topology_stale_ms > 0 {
        out.push_str(&format!(
            "node host labels: {} relabels, stale {:.1} s in all, at most {:.1} s\n",
            s.relabels,
            s.topology_stale_ms as f64 / 1000.0,
            s.topology_stale_longest_ms as f64 / 1000.0
        ));
    }
    if s.spread_exceptions > 0 || s.anti_affinity_violations > 0 {
        out.push_str(&format!(
            "strict spreads: {} control-plane VMs restarted beside a member of their group as recorded exceptions, {} unrecorded\n",
            s.spread_exceptions, s.anti_affinity_violations
        ));
    }
    if s.zone_exceptions > 0 || s.zone_violations > 0 {
        out.push_str(&format!(
            "zones: {} node VMs restarted outside their node's zone as recorded exceptions, {} unrecorded\n",
            s.zone_exceptions, s.zone_violations
        ));
    }
    out.push_str(&format!(
        "pod-minutes unavailable: {:.1}; pods pending at the end: {}\n",
        s.pod_minutes_unavailable, s.pods_pending_at_end
    ));
    for c in &s.conditions_at_end {
        out.push_str(&format!("waiting: {c}\n"));
    }
    if let Some(sha256) = s.log_sha256 {
        out.push_str(&format!(
            "event log: {} lines, sha256 {sha256}\n",
            s.log_lines
        ));
    }
    out
}
