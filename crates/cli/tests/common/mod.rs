//! Runs the real `plinth` binary from the repository root, as a user would.

pub(crate) mod estates;
pub(crate) mod serve;

use std::path::Path;
use std::process::Command;

/// Runs `plinth ARGS...` from the repository root: (exit code, stdout, stderr). Stdout is
/// the command's result, stderr its diagnostics, notes and warnings.
pub(crate) fn plinth_streams<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("plinth runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `plinth ARGS...` from the repository root: (exit code, stdout).
#[allow(
    dead_code,
    reason = "each test crate compiles this module; some read stderr too"
)]
pub(crate) fn plinth<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String) {
    let (code, stdout, _) = plinth_streams(args);
    (code, stdout)
}
