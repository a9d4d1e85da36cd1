//! What would change a comparison's answer: the break-even search, the per-cluster
//! what-ifs and the merge of every cluster of [`plinth_compare::sensitivity`], added to a
//! report. `plinth compare` adds
//! them this way, and so does the comparison `plinth serve` keeps for the console's Decide
//! view: one definition of which runs they take and where the other clusters stay.

use std::time::{Duration, Instant};

use plinth_compare::sensitivity::{PARAMETERS, Sweeps, WHAT_IF_CLUSTERS};
use plinth_compare::{CompareError, Options, Report};
use plinth_model::Estate;
use plinth_model::kinds::environment::EnvironmentType;

/// Runs per point of the sweeps unless asked otherwise (`plinth compare --sweep-runs`).
pub const DEFAULT_RUNS: u32 = 8;

/// How long each sweep took.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// The break-even search.
    pub break_even: Duration,
    /// The per-cluster what-ifs and the merge what-if.
    pub what_if: Duration,
}

/// The steps [`add`] takes on `estate`: one per input searched and per cluster moved, and
/// the merge of every cluster, for a progress bar.
pub fn steps(estate: &Estate) -> u64 {
    let merge = plinth_model::merge::every_cluster(estate).len();
    (PARAMETERS.len() + estate.clusters.len().min(WHAT_IF_CLUSTERS) + merge) as u64
}

/// Where the clusters not moved stay: where the report recommends (virtualized when it
/// recommends either).
fn rest_on(report: &Report) -> EnvironmentType {
    match report.recommendation.as_ref().map(|r| r.environment) {
        Some("bare-metal") => EnvironmentType::BareMetal,
        _ => EnvironmentType::Virtualized,
    }
}

/// Adds the break-even search and the per-cluster what-ifs to `report` of `estate`, each
/// point over `runs` runs of `options`' seeds and duration; `tick` after each step. Nothing
/// to add (`None`) when the report has no recommendation to change.
///
/// # Errors
/// When a design of a sweep cannot be built or a run fails.
pub fn add(
    estate: &Estate,
    options: &Options,
    runs: u32,
    report: &mut Report,
    tick: &(dyn Fn() + Sync),
) -> Result<Option<Timings>, CompareError> {
    if report.recommendation.is_none() {
        return Ok(None);
    }
    let started = Instant::now();
    let sweeps = Sweeps::new(estate, &Options { runs, ..*options })?;
    report.sensitivity = sweeps.break_even(tick)?;
    let break_even = started.elapsed();
    let started = Instant::now();
    let what_ifs = sweeps.what_if(rest_on(report), tick)?;
    report.warnings.extend(what_ifs.bound());
    report.what_if = what_ifs.moved;
    // A what-if beside the answer: one that cannot be built is said, not fatal.
    match sweeps.merge_what_if() {
        Ok(m) => report.merge_what_if = m,
        Err(e) => report.warnings.push(format!(
            "merging every cluster into one could not be evaluated: {e}"
        )),
    }
    if !plinth_model::merge::every_cluster(estate).is_empty() {
        tick();
    }
    Ok(Some(Timings {
        break_even,
        what_if: started.elapsed(),
    }))
}
