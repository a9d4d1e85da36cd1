//! A small typed QMP client: the commands the agent uses, as serde types.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// The QMP commands the agent sends.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "execute", content = "arguments")]
pub(crate) enum QmpCommand {
    /// Leaves capabilities negotiation mode.
    #[serde(rename = "qmp_capabilities")]
    Capabilities,
    /// The run state.
    #[serde(rename = "query-status")]
    QueryStatus,
    /// Ends the process at once.
    #[serde(rename = "quit")]
    Quit,
}

/// The answer of `query-status`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Status {
    /// `running`, `paused`, …
    pub(crate) status: String,
}

/// One line QEMU sends.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Reply {
    Return {
        #[serde(rename = "return")]
        value: serde_json::Value,
    },
    Error {
        error: QmpErrorBody,
    },
    /// An event or the greeting: not an answer.
    Other(serde::de::IgnoredAny),
}

#[derive(Debug, Deserialize)]
struct QmpErrorBody {
    class: String,
    desc: String,
}

/// A QMP session on one VM's socket.
#[derive(Debug)]
pub(crate) struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects and negotiates capabilities.
    pub(crate) async fn connect(socket: &Path) -> Result<Self, String> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("connect {}: {e}", socket.display()))?;
        let (r, w) = stream.into_split();
        let mut qmp = Self {
            reader: BufReader::new(r),
            writer: w,
        };
        qmp.execute(QmpCommand::Capabilities).await?;
        Ok(qmp)
    }

    /// Sends a command and waits for its return value, skipping events and the greeting.
    pub(crate) async fn execute(&mut self, cmd: QmpCommand) -> Result<serde_json::Value, String> {
        let mut line = serde_json::to_vec(&cmd).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let mut text = String::new();
            let n = self
                .reader
                .read_line(&mut text)
                .await
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("QMP socket closed".into());
            }
            match serde_json::from_str::<Reply>(&text) {
                Ok(Reply::Return { value }) => return Ok(value),
                Ok(Reply::Error { error }) => {
                    return Err(format!("{}: {}", error.class, error.desc));
                }
                Ok(Reply::Other(_)) => {}
                Err(e) => return Err(format!("unreadable QMP line: {e}")),
            }
        }
    }

    /// The VM's run state.
    pub(crate) async fn status(&mut self) -> Result<Status, String> {
        let value = self.execute(QmpCommand::QueryStatus).await?;
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_serialize_as_qmp_expects() {
        let json = |c| serde_json::to_string(&c).expect("serializes");
        assert_eq!(
            json(QmpCommand::Capabilities),
            r#"{"execute":"qmp_capabilities"}"#
        );
        assert_eq!(
            json(QmpCommand::QueryStatus),
            r#"{"execute":"query-status"}"#
        );
    }
}
