//! `plinth apply`: manifests to a running `plinth serve`, checked as `plinth validate`
//! checks them and stored all or none.

use anyhow::Result;
use plinth_server::wire::{APPLY_PATH, ApplyRequest, ApplyResponse, Source};

use crate::Outcome;
use crate::client::{Client, ClientError, ServerArgs};
use crate::input::InputArgs;

/// Apply manifests to a running `plinth serve`: every object stored, or none.
///
/// The server checks each object with `plinth validate`'s own rules and answers errors
/// located in your files, printed as `validate` prints them; what only the whole estate
/// shows (a pool naming an unknown host class) becomes the object's `Accepted` condition.
/// Applying the same files again changes nothing. Exit codes: 0 applied, 1 invalid
/// (nothing stored), 2 usage, I/O or server error (a 403 or 409 too).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    input: InputArgs,
    /// Accepted for kubectl's habit (`apply -f PATH`): the paths are the arguments.
    #[arg(short = 'f', long = "filename", hide = true)]
    filename: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// Runs `plinth apply`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    let input = args.input.read()?;
    let request = ApplyRequest {
        sources: input
            .sources
            .iter()
            .map(|s| Source {
                name: s.name.to_string(),
                text: s.text.to_string(),
            })
            .collect(),
        bindings: input
            .bindings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    let client = Client::new(&args.server)?;
    let response: ApplyResponse = match client.post(APPLY_PATH, &request) {
        Ok(r) => r,
        Err(ClientError::Api(status)) if !status.diagnostics.is_empty() => {
            let diagnostics: Vec<_> = status
                .diagnostics
                .iter()
                .map(|d| d.to_diagnostic())
                .collect();
            crate::output::stderr(crate::render::render(&input, &diagnostics));
            crate::output::stderr(format!("{}: {}\n", status.reason, status.message));
            return Ok(Outcome::Invalid);
        }
        Err(e) => return Err(e.into()),
    };
    let shown: Vec<_> = response
        .diagnostics
        .iter()
        .filter(|d| !(args.input.quiet && d.severity == "note"))
        .map(|d| d.to_diagnostic())
        .collect();
    if !shown.is_empty() {
        crate::output::stderr(crate::render::render(&input, &shown));
    }
    for s in &response.skipped {
        crate::output::stderr(format!(
            "note: skipped {} {} ({}): Plinth does not read this kind\n",
            s.count, s.kind, s.api_version
        ));
    }
    if response.objects.is_empty() {
        crate::output::stderr("error: no objects to apply: the files hold no kind Plinth reads\n");
        return Ok(Outcome::Invalid);
    }
    let mut out = String::new();
    for o in &response.objects {
        let name = if o.namespace.is_empty() {
            o.name.clone()
        } else {
            format!("{}/{}", o.namespace, o.name)
        };
        let cluster = if o.cluster.is_empty() {
            String::new()
        } else {
            format!(" (cluster {})", o.cluster)
        };
        out.push_str(&format!(
            "{}/{name}{cluster} {}\n",
            o.kind.to_ascii_lowercase(),
            o.outcome
        ));
    }
    crate::output::stdout(out)?;
    Ok(Outcome::Success)
}
