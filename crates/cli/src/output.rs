//! Every byte a command writes, through one place: results to stdout, diagnostics to
//! stderr, reports and event logs to files. A closed stdout (`plinth … | head`) ends the
//! command quietly with exit 0, as other Unix tools do; any other write error (a full
//! disk, a file that exists without `--force`) is a one-line error with exit 2.

use std::fmt::Display;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why output could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OutputError {
    /// The reader of stdout went away (a closed pipe). Not a failure: exit 0, no message.
    #[error("standard output was closed")]
    Closed,
    /// Stdout could not be written for another reason (a full disk, an I/O error).
    #[error("cannot write to standard output")]
    Stdout(#[source] io::Error),
    /// A file could not be created or written.
    #[error("cannot write `{path}`")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A file exists and the command was not told to replace it.
    #[error("`{0}` exists: pass --force to overwrite it")]
    Exists(PathBuf),
}

impl OutputError {
    /// A failure to write stdout: [`OutputError::Closed`] for a closed pipe.
    pub(crate) fn of_stdout(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Self::Closed
        } else {
            Self::Stdout(e)
        }
    }
}

/// Writes `text` to stdout and flushes it.
pub(crate) fn stdout(text: impl Display) -> Result<(), OutputError> {
    let mut out = io::stdout().lock();
    write!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(OutputError::of_stdout)
}

/// Writes `text` to stderr. A closed or failing stderr is ignored: there is nowhere left
/// to report it, and the exit code still tells the outcome.
pub(crate) fn stderr(text: impl Display) {
    let _ = write!(io::stderr().lock(), "{text}");
}

/// Whether an existing file may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Overwrite {
    /// Refuse a file that exists ([`OutputError::Exists`]).
    Refuse,
    /// Replace it (`--force`).
    Allow,
}

/// Creates the file at `path` for writing; an existing file is replaced only with
/// [`Overwrite::Allow`].
pub(crate) fn create(path: &Path, overwrite: Overwrite) -> Result<File, OutputError> {
    let mut options = OpenOptions::new();
    options.write(true);
    match overwrite {
        Overwrite::Refuse => options.create_new(true),
        Overwrite::Allow => options.create(true).truncate(true),
    };
    options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            OutputError::Exists(path.to_owned())
        } else {
            OutputError::File {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// Refuses `path` if it exists and may not be replaced, before any work that would write
/// it is done.
pub(crate) fn check_absent(path: &Path, overwrite: Overwrite) -> Result<(), OutputError> {
    match overwrite {
        Overwrite::Refuse if path.symlink_metadata().is_ok() => {
            Err(OutputError::Exists(path.to_owned()))
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` to the file at `path`, creating it; an existing file is replaced only
/// with [`Overwrite::Allow`].
pub(crate) fn file(path: &Path, bytes: &[u8], overwrite: Overwrite) -> Result<(), OutputError> {
    create(path, overwrite)?
        .write_all(bytes)
        .map_err(|source| OutputError::File {
            path: path.to_owned(),
            source,
        })
}

/// Whether `error` (or any error in its chain) is a closed stdout, which ends a command
/// quietly with exit 0.
pub(crate) fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|e| matches!(e.downcast_ref::<OutputError>(), Some(OutputError::Closed)))
}

/// `error` and its causes, one per line, as every command reports a failure on stderr.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = format!("error: {error}\n");
    let mut source = error.source();
    while let Some(s) = source {
        out.push_str(&format!("  caused by: {s}\n"));
        source = s.source();
    }
    out
}
