//! `plinth image build`: builds the node OS images (kernel, initramfs with busybox and the
//! guest agent, qcow2 base disk) into a cache keyed by content hash, and prints their
//! directories.

use std::path::PathBuf;

use anyhow::{Context, Result};
use plinth_agent::image::{ImageInputs, RECIPES, Recipe, build, recipe};

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
    /// Build the node OS images (or find them in the cache) and print their directories,
    /// one per line.
    ///
    /// Two images: `plinth-node` (release 1, Debian's previous cloud kernel) and
    /// `plinth-node-2` (release 2, its newest cloud kernel, its own kernel command line).
    /// Kernels come from Debian's linux-image-cloud-amd64 (downloaded with `apt-get download`
    /// unless --kernel-deb is given); busybox from busybox-static; the guest agent is the
    /// static binary `scripts/image` builds. Exit codes: 0 built, 2 a tool or file failed.
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
    /// Build only this image (repeatable): plinth-node, plinth-node-2.
    #[arg(long, value_name = "NAME", value_parser = image_name)]
    name: Vec<String>,
    /// The versioned kernel package's .deb of the one image --name names (default: the
    /// image's, downloaded into the cache).
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
    let recipes: Vec<Recipe> = if args.name.is_empty() {
        RECIPES.to_vec()
    } else {
        args.name
            .iter()
            .filter_map(|n| recipe(n))
            .copied()
            .collect()
    };
    if args.kernel_deb.is_some() && recipes.len() != 1 {
        anyhow::bail!("--kernel-deb is the kernel of one image: name it with one --name");
    }
    let rt = runtime()?;
    let mut out = String::new();
    for recipe in recipes {
        let inputs = ImageInputs {
            recipe,
            guest_agent: args.guest_agent.clone(),
            busybox: args.busybox.clone(),
            kernel_deb: args.kernel_deb.clone(),
            cache: cache.clone(),
        };
        let image = rt
            .block_on(build(&inputs))
            .with_context(|| format!("building the node image {}", recipe.name))?;
        if let Some(dir) = image.kernel.parent() {
            out.push_str(&format!("{}\n", dir.display()));
        }
    }
    crate::output::stdout(out)?;
    Ok(Outcome::Success)
}

/// `--name`: one of [`RECIPES`].
fn image_name(name: &str) -> Result<String, String> {
    match recipe(name) {
        Some(r) => Ok(r.name.to_owned()),
        None => Err(format!(
            "no image {name:?}: Plinth builds {}",
            RECIPES.map(|r| r.name).join(", ")
        )),
    }
}
