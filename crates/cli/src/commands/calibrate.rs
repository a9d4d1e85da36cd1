//! `plinth calibrate`: measures this machine's hosts through their agents and writes a
//! `Calibration` document a virtualized Environment can name (`calibration: FILE`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use plinth_qemu::calibrate::{Plan, measure, percentile};
use plinth_server::controller::Agents;
use serde_json::json;

use crate::Outcome;
use crate::commands::runtime;
use crate::output::{Overwrite, check_absent};

/// Measure the hosts and write a Calibration.
///
/// On the agents' hosts (the testbed's by default: `scripts/testbed up 2`), one after
/// another: clone and boot to Ready (--boots VMs, median and 95th percentile), the CPU and
/// memory kernels in a guest and on this machine (the hypervisor's overhead), live
/// migrations of guests of several sizes from the first host to the second (a line fitted
/// against guest memory), and a fence of the first host with its VM started again on the
/// second (HA's fence and restart steps). Only its own VMs (`calib-*`) run; a host running
/// any other VM is refused, as a fence kills every VM of its host. The document records the
/// accelerator: an Environment naming it takes the timings, and the overheads only when
/// measured under KVM. Progress goes to stderr. Exit codes: 0 written, 2 an agent, file or
/// measurement error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The agents file (`scripts/testbed up` writes it): `token PATH`, `tls DIR`, then
    /// `HOST ADDRESS` per line. The first host boots and is fenced; the second receives
    /// the migrations and the restart.
    #[arg(long, value_name = "FILE", default_value = "target/testbed/agents")]
    agents: PathBuf,
    /// Write the Calibration here (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Replace --output if it exists.
    #[arg(long, requires = "output")]
    force: bool,
    /// The Calibration's name.
    #[arg(long, default_value = "measured")]
    name: String,
    /// VMs booted one after another.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    boots: u32,
    /// Guest memory of each live migration, MiB: at least two different sizes (a line is
    /// fitted through them).
    #[arg(long, value_name = "MIB,…", value_delimiter = ',', default_values_t = [128, 256, 512],
          value_parser = clap::value_parser!(u32).range(64..=65536))]
    migrate: Vec<u32>,
    /// The node OS image the VMs boot.
    #[arg(long, default_value = plinth_proto::guest::DEFAULT_IMAGE)]
    image: String,
    /// The guest agent binary, run here for the kernels' host side (`scripts/image` builds
    /// it).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "target/x86_64-unknown-linux-gnu/release/plinth-guest"
    )]
    guest_agent: PathBuf,
}

/// Runs `plinth calibrate`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let overwrite = if args.force {
        Overwrite::Allow
    } else {
        Overwrite::Refuse
    };
    let plan = Plan {
        boots: args.boots as usize,
        migrations_mib: args.migrate.clone(),
        image: args.image.clone(),
        guest_agent: args.guest_agent.clone(),
    };
    plan.check()?;
    if let Some(path) = &args.output {
        check_absent(path, overwrite)?;
    }
    let agents = Agents::load(&args.agents).with_context(|| {
        format!(
            "reading the agents file {} (run `scripts/testbed up 2` first, or pass --agents)",
            args.agents.display()
        )
    })?;
    if !args.guest_agent.is_file() {
        anyhow::bail!(
            "no guest agent binary at {} (run `scripts/image`, which builds it, or pass --guest-agent)",
            args.guest_agent.display()
        );
    }
    let hosts: Vec<(String, std::net::SocketAddr)> = agents.hosts.clone().into_iter().collect();
    let token = plinth_proto::Token::new(&agents.token);
    let mut progress = |line: &str| crate::output::stderr(format!("{line}\n"));
    let measured = runtime()?
        .block_on(measure(
            &hosts,
            &token,
            agents.tls.as_ref(),
            &plan,
            &mut progress,
        ))
        .context("calibrating")?;
    let spec = measured.calibration();
    let mut summary = format!(
        "{} on {}: clone {} ms, boot to Ready {} ms (p95 {} ms) over {} VMs\n",
        spec.accelerator,
        measured.hosts.join(", "),
        percentile(&measured.clones, 50).unwrap_or_default(),
        percentile(&measured.boots, 50).unwrap_or_default(),
        percentile(&measured.boots, 95).unwrap_or_default(),
        measured.boots.len()
    );
    if let (Some(fence), Some(restart)) = (measured.fence, measured.restart) {
        summary.push_str(&format!(
            "HA failover by phase: detection as the Environment declares (failureDetectionTimeout), fence by the host's agent {fence} ms (used under `ha.fencing: agent`), restart elsewhere to Ready {restart} ms\n"
        ));
    }
    crate::output::stderr(summary);
    let document = json!({
        "apiVersion": "plinth.dev/v1alpha1",
        "kind": "Calibration",
        "metadata": { "name": args.name },
        "spec": serde_json::to_value(&spec)?,
    });
    let text = crate::render::to_yaml(&document);
    match &args.output {
        Some(path) => {
            crate::output::file(path, text.as_bytes(), overwrite)?;
            crate::output::stderr(format!(
                "wrote {} (name it in a virtualized Environment: `calibration: {}`)\n",
                path.display(),
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
        }
        None => crate::output::stdout(text)?,
    }
    Ok(Outcome::Success)
}
