//! `plinth agent`: the host agent. Runs this host's node VMs as QEMU processes (or, with
//! `--simulated`, as simulated VMs) and serves the control plane over plinth-proto.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use plinth_agent::image::Images;
use plinth_agent::{
    Accel, AgentConfig, KVM_PROBE_TIMEOUT, QemuConfig, QemuHypervisor, SimulatedHypervisor,
    detect_accel, interface_of, serve,
};
use plinth_proto::{Capacity, HostName, Token};
use plinth_tls::LinkFiles;

use crate::Outcome;
use crate::commands::runtime;

/// Run the host agent of this host until killed.
///
/// VMs are QEMU processes that outlive the agent: a restarted agent re-adopts them. Without
/// a valid frame from the control plane for --self-fence-timeout, the agent kills its VMs.
/// Exit codes: 0 never (it runs until killed), 2 a usage, file or listen error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// This host's name, as in the Inventory.
    #[arg(long)]
    host: String,
    /// Address the control plane connects to.
    #[arg(long, default_value = "0.0.0.0:7700")]
    listen: SocketAddr,
    /// File holding the shared token.
    #[arg(long, value_name = "PATH")]
    token_file: PathBuf,
    /// Runtime files: VM records, sockets, pid files, serial logs, the host's boot id.
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// VM disks and seeds: a directory all hosts see (default: <state-dir>/storage).
    #[arg(long, value_name = "DIR")]
    storage: Option<PathBuf>,
    /// A node OS image directory (`plinth image build` prints one per image); repeat it for
    /// each image this host's VMs may boot. Not with --simulated.
    #[arg(long, value_name = "DIR", required_unless_present = "simulated")]
    image: Vec<PathBuf>,
    /// The accelerator: `auto` boots the image under KVM once and falls back to TCG.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    accel: AccelArg,
    /// Heartbeat interval.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    heartbeat: Duration,
    /// Kill every VM after this long without a valid frame from the control plane.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    self_fence_timeout: Duration,
    /// CPUs offered to VMs (default: this machine's).
    #[arg(long)]
    cpus: Option<u32>,
    /// Memory offered to VMs in MiB (default: this machine's).
    #[arg(long)]
    memory_mib: Option<u64>,
    /// The interface cluster networks are joined to other hosts over (VXLAN). Default: the
    /// one holding the --listen address; with none (loopback, 0.0.0.0) a cluster network
    /// spans this host only.
    #[arg(long, value_name = "DEV", conflicts_with = "simulated")]
    underlay: Option<String>,
    /// Simulated VMs: no QEMU, Ready after --boot-time.
    #[arg(long)]
    simulated: bool,
    /// Boot time of a simulated VM.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s", requires = "simulated")]
    boot_time: Duration,
    /// The simulated agent's fault interface (kill, cut off, restore).
    #[arg(long, requires = "simulated")]
    admin_listen: Option<SocketAddr>,
    /// This agent's PEM certificate (`plinth certs DIR --agent HOST=IP` issues it): with
    /// --tls-key and --tls-client-ca, the control plane must speak mutual TLS.
    #[arg(long, value_name = "PATH", requires_all = ["tls_key", "tls_client_ca"])]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The certificate authority a control plane's client certificate must come from
    /// (DIR/ca.crt of `plinth certs`).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
}

/// `--accel` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum AccelArg {
    /// Boot under KVM once; TCG if that fails.
    Auto,
    /// KVM, untested.
    Kvm,
    /// Software emulation.
    Tcg,
}

/// Runs `plinth agent`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let text = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("reading the token {}", args.token_file.display()))?;
    let tls = match (&args.tls_cert, &args.tls_key, &args.tls_client_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(
            LinkFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }
            .agent_config()
            .context("the agent's TLS (--tls-cert, --tls-key, --tls-client-ca)")?,
        ),
        _ => None,
    };
    std::fs::create_dir_all(&args.state_dir)
        .with_context(|| format!("creating {}", args.state_dir.display()))?;
    let config = AgentConfig {
        host: HostName(args.host.clone()),
        listen: args.listen,
        token: Token::new(&text),
        heartbeat: args.heartbeat,
        self_fence_timeout: args.self_fence_timeout,
        boot_id_file: Some(args.state_dir.join("boot-id")),
        admin_listen: args.admin_listen,
        tls,
    };
    let capacity = Capacity {
        cpus: args.cpus.unwrap_or_else(host_cpus),
        memory_mib: args.memory_mib.unwrap_or_else(host_memory_mib),
    };
    runtime()?.block_on(async {
        if args.simulated {
            let hv = SimulatedHypervisor::new(args.boot_time, capacity).with_storage(
                args.storage
                    .clone()
                    .unwrap_or_else(|| args.state_dir.join("storage")),
            );
            serve(config, Arc::new(hv)).await
        } else {
            let images = Images::open(&args.image).context("opening the node images")?;
            let probe = images.any().context("--image is required")?;
            let accel = match args.accel {
                AccelArg::Auto => detect_accel(probe, KVM_PROBE_TIMEOUT).await,
                AccelArg::Kvm => Accel::Kvm,
                AccelArg::Tcg => Accel::Tcg,
            };
            let underlay = match (&args.underlay, args.listen.ip()) {
                (Some(dev), _) => Some(dev.clone()),
                (None, IpAddr::V4(ip)) if !ip.is_loopback() && !ip.is_unspecified() => Some(
                    interface_of(ip)
                        .await
                        .context("finding the underlay of cluster networks")?,
                ),
                (None, _) => None,
            };
            let hv = QemuHypervisor::open(QemuConfig {
                images,
                storage: args
                    .storage
                    .clone()
                    .unwrap_or_else(|| args.state_dir.join("storage")),
                state_dir: args.state_dir.clone(),
                accel,
                capacity,
                underlay,
            })
            .await?;
            serve(config, Arc::new(hv)).await
        }
        .context("serving")
    })?;
    Ok(Outcome::Success)
}

fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}
