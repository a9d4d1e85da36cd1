//! `plinth schema`: JSON Schemas of Plinth's kinds, for editors.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use plinth_model::document::PLINTH_KINDS;
use plinth_model::schema::json_schema;

use crate::Outcome;
use crate::output::{self, Overwrite};

/// Write the JSON Schema of each kind, generated from the same types the loader uses.
///
/// With `--out DIR`, writes `DIR/<Kind>.json` for every kind; else prints the one KIND asked
/// for. With `--openapi`, prints the OpenAPI document of `plinth serve`'s API instead
/// (`docs/openapi.json`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Print only this kind's schema.
    #[arg(required_unless_present_any = ["out", "openapi"], conflicts_with_all = ["out", "openapi"])]
    pub(crate) kind: Option<String>,
    /// Print the OpenAPI 3.1 document of `plinth serve`'s API.
    #[arg(long, conflicts_with = "out")]
    pub(crate) openapi: bool,
    /// Write every kind's schema into this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
}

/// Runs `plinth schema`.
pub(crate) fn run(args: &Args) -> Result<Outcome> {
    if args.openapi {
        let text = serde_json::to_string_pretty(&plinth_server::openapi::document())?;
        output::stdout(format!("{text}\n"))?;
        return Ok(Outcome::Success);
    }
    if let Some(kind) = &args.kind {
        output::stdout(format!(
            "{}\n",
            serde_json::to_string_pretty(&json_schema(kind)?)?
        ))?;
        return Ok(Outcome::Success);
    }
    if let Some(dir) = &args.out {
        fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
        for kind in PLINTH_KINDS {
            let path = dir.join(format!("{kind}.json"));
            let text = serde_json::to_string_pretty(&json_schema(kind)?)?;
            output::file(&path, (text + "\n").as_bytes(), Overwrite::Allow)?;
            output::stdout(format!("wrote {}\n", path.display()))?;
        }
    }
    Ok(Outcome::Success)
}
