//! Running the Debian tools the agent relies on (qemu-img, mkfs.vfat, mcopy, apt-get, …).

use std::ffi::OsStr;
use std::process::Output;

use tokio::process::Command;

use crate::error::AgentError;

/// Runs `program args…` to completion; an error names the tool and the end of its stderr.
pub(crate) async fn run<I, S>(program: &str, args: I) -> Result<Output, AgentError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = Command::new(program)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| AgentError::Tool {
            tool: program.to_owned(),
            detail: e.to_string(),
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
        Err(AgentError::Tool {
            tool: program.to_owned(),
            detail: format!("{}: {tail}", output.status),
        })
    }
}
