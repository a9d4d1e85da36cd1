//! `plinth hosts`: the hosts an Inventory expands to.

use anyhow::Result;

use crate::Outcome;
use crate::commands::load_or_report;
use crate::input::InputArgs;

/// List the hosts an estate's Inventory expands to (`count:` entries get generated
/// names), with rack, class and agent address: one per line, or names only with --names.
///
/// `scripts/sim-agents` starts one simulated agent per name. Exit codes: 0 listed,
/// 1 invalid input, 2 usage or I/O error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// Print only the names.
    #[arg(long)]
    names: bool,
}

/// Runs `plinth hosts`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let Some((_, estate)) = load_or_report(&args.input)? else {
        return Ok(Outcome::Invalid);
    };
    let inventory = &estate.inventory.spec;
    let agents = inventory.agents();
    let mut out = String::new();
    for host in plinth_model::estate::expand_hosts(inventory) {
        if args.names {
            out.push_str(&host.name);
        } else {
            let class = &inventory.host_classes[host.class].name;
            let rack = &inventory.racks[host.rack].name;
            let agent = agents
                .get(&host.name)
                .map_or_else(|| "-".to_owned(), ToString::to_string);
            out.push_str(&format!("{}  {rack}  {class}  {agent}", host.name));
        }
        out.push('\n');
    }
    crate::output::stdout(out)?;
    Ok(Outcome::Success)
}
