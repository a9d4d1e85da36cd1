//! Runs the real `plinth` binary from the repository root, as a user would.

use std::path::Path;
use std::process::Command;

/// Runs `plinth ARGS...` from the repository root: (exit code, stdout).
pub(crate) fn plinth<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("plinth runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}
