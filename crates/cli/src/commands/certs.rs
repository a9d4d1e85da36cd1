//! `plinth certs`: the certificates of the link between the control plane and its host
//! agents (mutual TLS), issued by a certificate authority kept in a directory.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::Outcome;
use anyhow::{Context, Result};

/// Issue the agent link's certificates: the control plane's and each agent's.
///
/// The first run makes the certificate authority in DIR (`ca.crt`, and `ca.key` readable
/// by its owner only); later runs issue more certificates from it, replacing earlier ones
/// of the same names. The control plane's are DIR/control-plane.{crt,key} (`plinth run
/// --tls-dir DIR`, or `tls DIR` in `plinth serve`'s agents file); host HOST's are
/// DIR/agents/HOST.{crt,key} (`plinth agent --tls-cert … --tls-key … --tls-client-ca
/// DIR/ca.crt`). `scripts/testbed` and `scripts/sim-agents` run this. Exit codes: 0
/// issued, 2 a usage or file error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The directory of the certificate authority and the certificates.
    dir: PathBuf,
    /// Issue the control plane's client certificate.
    #[arg(long)]
    control_plane: bool,
    /// Issue host HOST's agent certificate, for its name and the address the control plane
    /// dials (repeatable).
    #[arg(long = "agent", value_name = "HOST=IP", value_parser = parse_agent)]
    agents: Vec<(String, IpAddr)>,
}

fn parse_agent(text: &str) -> Result<(String, IpAddr), String> {
    let (host, ip) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}`: expected HOST=IP, such as h1=10.77.0.11"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IP address (HOST=IP, such as h1=10.77.0.11)"))?;
    if host.is_empty() {
        return Err(format!("`{text}`: the host name is empty"));
    }
    Ok((host.to_owned(), ip))
}

/// Runs `plinth certs`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    anyhow::ensure!(
        args.control_plane || !args.agents.is_empty(),
        "nothing to issue: give --control-plane, --agent HOST=IP, or both"
    );
    let written = plinth_tls::issue_link(&args.dir, args.control_plane, &args.agents)
        .with_context(|| format!("issuing certificates in {}", args.dir.display()))?;
    let mut out = String::new();
    for path in written {
        out.push_str(&format!("{}\n", path.display()));
    }
    crate::output::stdout(out)?;
    Ok(Outcome::Success)
}
