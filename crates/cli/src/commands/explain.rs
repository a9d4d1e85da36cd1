//! `plinth explain`: the documentation of a kind or field, like `kubectl explain`.

use anyhow::Result;

use crate::Outcome;
use crate::output;

/// Show the documentation of a kind or field: its type, default and meaning.
///
/// Examples: `plinth explain Cluster`, `plinth explain Cluster.spec.nodePools.placement`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// KIND or KIND.field.path (Inventory, Environment, Cluster, VirtualMachineSet, Scenario, PriceSheet, Calibration).
    pub(crate) target: String,
}

/// Runs `plinth explain`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let text = plinth_model::schema::explain(&args.target)?;
    output::stdout(text)?;
    Ok(Outcome::Success)
}
