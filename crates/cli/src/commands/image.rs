//! `plinth image build`: builds the node OS image (kernel, initramfs with busybox and the
//! guest agent, qcow2 base disk) into a cache keyed by content hash, and prints its directory.

use std::path::PathBuf;

use anyhow::{Context, Result};
use plinth_agent::image::{ImageInputs, build};

use crate::Outcome;
use crate::commands::runtime;

/// Node OS images.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ImageCommand {
    /// Build the node image (or find it in the cache) and print its directory.
    ///
    /// The kernel comes from Debian's linux-image-cloud-amd64 (downloaded with `apt-get
    /// download` unless --kernel-deb is given); busybox from busybox-static; the guest agent
    /// is the static binary `scripts/image` builds. Exit codes: 0 built, 2 a tool or file
    /// failed.
    Build(BuildArgs),
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The static guest agent binary (`plinth-guest`).
    #[arg(long, value_name = "PATH")]
    guest_agent: PathBuf,
    /// A static busybox.
    #[arg(long, value_name = "PATH", default_value = "/bin/busybox")]
    busybox: PathBuf,
    /// The kernel package's .deb (default: downloaded into the cache).
    #[arg(long, value_name = "PATH")]
    kernel_deb: Option<PathBuf>,
    /// The cache directory (default: ~/.cache/plinth).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

/// Runs `plinth image`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let ImageCommand::Build(args) = &args.command;
    let cache = match &args.cache {
        Some(dir) => dir.clone(),
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/plinth"))
            .context("no --cache and no $HOME")?,
    };
    let inputs = ImageInputs {
        guest_agent: args.guest_agent.clone(),
        busybox: args.busybox.clone(),
        kernel_deb: args.kernel_deb.clone(),
        cache,
    };
    let image = runtime()?
        .block_on(build(&inputs))
        .context("building the node image")?;
    let dir = image
        .kernel
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    crate::output::stdout(format!("{dir}\n"))?;
    Ok(Outcome::Success)
}
