//! `plinth serve`: the control plane as a service; `plinth token`: a new API token.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use plinth_server::auth::{Role, Tokens};
use plinth_server::tls::Tls;
use plinth_server::{EtcdConfig, ServeConfig, paths};

use crate::Outcome;

/// Run the control plane as a service: a REST API with watch over an embedded SQLite
/// store, and the reconcile loop that builds the applied estate's clusters on the hosts'
/// agents.
///
/// Apply manifests with `plinth apply`, follow them with `plinth get clusters -w`. The
/// first start makes an admin token in the data directory, which the CLI reads by
/// default. Hosts are reached at the `agent:` their Inventory entry gives, or at the
/// address an --agents file gives (`scripts/sim-agents` and `scripts/testbed` write one).
/// With --tls the API speaks HTTPS with a certificate of the data directory's own CA,
/// which the CLI trusts by default (--ca-file, or a context's `certificate-authority`,
/// elsewhere).
/// Runs until Ctrl-C or SIGTERM; the VMs keep running, and the next start resumes.
/// Exit codes: 0 stopped, 2 a file, store or address error.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1:7780")]
    listen: SocketAddr,
    /// The object store, the control plane's state and the default tokens; default:
    /// `~/.local/share/plinth/serve`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A tokens file (`ROLE NAME sha256:HEX` lines); default: DATA_DIR/tokens, made with
    /// one admin token when absent.
    #[arg(long, value_name = "PATH")]
    tokens: Option<PathBuf>,
    /// An agents file: `token PATH`, `tls DIR` (the agent link's certificates, `plinth
    /// certs DIR --control-plane`; without it plain TCP), then `HOST ADDRESS` lines for
    /// hosts whose Inventory entry names no `agent:`.
    #[arg(long, value_name = "PATH")]
    agents: Option<PathBuf>,
    /// Run as one replica of a control plane stored in etcd (its client URLs, comma
    /// separated) instead of SQLite: every replica serves the API, the one elected on an
    /// etcd lease runs the reconcile loop. Needs a build with `--features etcd`.
    #[arg(long, value_name = "URL,...", value_delimiter = ',')]
    etcd: Vec<String>,
    /// The etcd key prefix of this control plane (several may share one etcd).
    #[arg(
        long,
        value_name = "PREFIX",
        default_value = "/plinth/",
        requires = "etcd"
    )]
    etcd_prefix: String,
    /// This replica's name in the election; default: its --listen address.
    #[arg(long, value_name = "NAME", requires = "etcd")]
    replica: Option<String>,
    /// The leader's etcd lease: when the leader dies, another replica takes over within
    /// it (whole seconds, at least 1 s).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = humantime::parse_duration, requires = "etcd")]
    lease: std::time::Duration,
    /// Serve the API over TLS with a certificate signed by the data directory's own CA
    /// (made on the first start in DATA_DIR/tls/; clients trust its ca.crt).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    tls: bool,
    /// Further names (DNS names, IP addresses) clients reach the server by, for --tls's
    /// certificate; it always holds localhost, 127.0.0.1, ::1 and the --listen address.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', requires = "tls")]
    tls_san: Vec<String>,
    /// Serve the API over TLS with this PEM certificate (then its chain), from a CA the
    /// clients trust.
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl Args {
    /// The API's certificate: the data directory's CA's, the operator's, or none.
    fn tls(&self) -> Option<Tls> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::Given {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => self.tls.then(|| Tls::Own {
                names: self.tls_san.clone(),
            }),
        }
    }
}

/// Runs `plinth serve`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    crate::commands::logging();
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args
            .data_dir
            .clone()
            .unwrap_or_else(paths::default_data_dir),
        tokens: args.tokens.clone(),
        agents: args.agents.clone(),
        etcd: (!args.etcd.is_empty()).then(|| EtcdConfig {
            endpoints: args.etcd.clone(),
            prefix: args.etcd_prefix.clone(),
            replica: args
                .replica
                .clone()
                .unwrap_or_else(|| args.listen.to_string()),
            lease: args.lease,
        }),
        tls: args.tls(),
    };
    plinth_server::serve(&config)?;
    Ok(Outcome::Success)
}

/// Roles of `plinth token`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RoleArg {
    /// Read and watch everything.
    Reader,
    /// Also write clusters, workloads, VM sets, scenarios and price sheets.
    Operator,
    /// Also write the Inventory and Environments.
    Admin,
}

/// Make an API token: prints the secret once and adds its hash to the tokens file.
///
/// A running `plinth serve` reads the tokens file when it starts: restart it to accept
/// the new token. Exit codes: 0 made, 2 a file error.
#[derive(Debug, clap::Args)]
pub(crate) struct TokenArgs {
    /// What the token may do.
    #[arg(long, value_enum)]
    role: RoleArg,
    /// A name for it, shown in audit events.
    #[arg(long)]
    name: String,
    /// The tokens file; default: the one in `plinth serve`'s default data directory.
    #[arg(long, value_name = "PATH")]
    tokens: Option<PathBuf>,
}

/// Runs `plinth token`.
pub(crate) fn token(args: &TokenArgs) -> Result<Outcome> {
    if args.name.is_empty() || args.name.contains(char::is_whitespace) {
        anyhow::bail!("--name must be one word (it names the token in audit events)");
    }
    let role = match args.role {
        RoleArg::Reader => Role::Reader,
        RoleArg::Operator => Role::Operator,
        RoleArg::Admin => Role::Admin,
    };
    let path = args
        .tokens
        .clone()
        .unwrap_or_else(|| paths::tokens(&paths::default_data_dir()));
    let (secret, line) = Tokens::generate(role, &args.name);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| {
            format!(
                "opening the tokens file {} (start `plinth serve` once to make it)",
                path.display()
            )
        })?;
    writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))?;
    println!("{secret}");
    crate::output::stderr(format!(
        "added {role} token `{}` to {}; restart plinth serve to accept it. The secret above is not stored anywhere.\n",
        args.name,
        path.display()
    ));
    Ok(Outcome::Success)
}
