//! `plinth logs VM [-f]`: a node VM's serial console, from its host's agent through
//! `plinth serve`.

use anyhow::Result;

use crate::Outcome;
use crate::client::{Client, ServerArgs};

/// Print a node VM's serial console (the kernel and the guest agent write there), read
/// from the agent of the host it runs on.
///
/// `-f` keeps printing what the console writes until Ctrl-C; a line says when the VM was
/// restarted and its console began again. Exit codes: 0 printed, 2 no such VM, no host
/// yet, or its agent cannot be reached.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The VM (`plinth get vms` lists them).
    vm: String,
    /// Keep printing what the console writes.
    #[arg(long, short = 'f')]
    follow: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth logs`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let name_like = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    if args.vm.is_empty() || !args.vm.chars().all(name_like) {
        anyhow::bail!(
            "`{}` is not a VM name (lower-case letters, digits, `-` and `.`): `plinth get vms` lists them",
            args.vm
        );
    }
    let client = Client::new(&args.server)?;
    let mut path = plinth_server::serial::LOG_PATH.replace("{name}", &args.vm);
    if args.follow {
        path.push_str("?follow=true");
    }
    client.stream(&path, &mut std::io::stdout().lock())?;
    Ok(Outcome::Success)
}
