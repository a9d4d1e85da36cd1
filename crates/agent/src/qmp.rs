//! A small typed QMP client: the commands the agent uses, as serde types.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// How long a QMP session may take to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The QMP commands the agent sends.
#[derive(Debug, Clone, Serialize)]
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
    /// Turns on the return path: the source completes only once the receiver has loaded the
    /// VM's state and says so, so a receiver that fails to load it leaves the source running.
    /// Set on both sides before the migration.
    #[serde(rename = "migrate-set-capabilities")]
    ReturnPath {
        /// `[{"capability": "return-path", "state": true}]`.
        capabilities: [Capability; 1],
    },
    /// Listens for an incoming migration (a process started with `-incoming defer`).
    #[serde(rename = "migrate-incoming")]
    MigrateIncoming {
        /// `tcp:HOST:PORT`; port 0 takes any free one.
        uri: String,
    },
    /// Starts a live migration to a listening receiver.
    #[serde(rename = "migrate")]
    Migrate {
        /// `tcp:HOST:PORT`.
        uri: String,
    },
    /// Cancels the migration under way; the VM runs on here.
    #[serde(rename = "migrate_cancel")]
    MigrateCancel,
    /// The migration's state, on either side.
    #[serde(rename = "query-migrate")]
    QueryMigrate,
}

/// One migration capability's state.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Capability {
    capability: &'static str,
    state: bool,
}

impl QmpCommand {
    /// [`QmpCommand::ReturnPath`].
    pub(crate) fn return_path() -> Self {
        Self::ReturnPath {
            capabilities: [Capability {
                capability: "return-path",
                state: true,
            }],
        }
    }
}

/// A QMP `tcp:` URI of `addr` (`[…]` around an IPv6 host, as QEMU parses it).
pub(crate) fn tcp_uri(addr: std::net::SocketAddr) -> String {
    format!("tcp:{addr}")
}

/// The answer of `query-status`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Status {
    /// `running`, `paused`, …
    pub(crate) status: String,
}

/// A migration's status, as far as the agent tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum MigrationStatus {
    /// The VM runs on the destination.
    Completed,
    /// It failed; the source runs the VM again.
    Failed,
    /// It was cancelled; the source runs the VM again.
    Cancelled,
    /// Any other state: under way (setup, active, device, …).
    #[serde(other)]
    UnderWay,
}

/// The answer of `query-migrate` (the fields the agent reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct MigrationInfo {
    /// Absent before a migration starts.
    pub(crate) status: Option<MigrationStatus>,
    /// Start to switch-over, ms (once completed).
    pub(crate) total_time: Option<u64>,
    /// The pause at the switch-over, ms (once completed).
    pub(crate) downtime: Option<u64>,
    /// RAM sent.
    pub(crate) ram: Option<RamInfo>,
    /// Why it failed.
    pub(crate) error_desc: Option<String>,
    /// Where a receiver listens (QEMU names the port it took for port 0).
    #[serde(default)]
    pub(crate) socket_address: Vec<SocketAddress>,
}

/// The RAM part of [`MigrationInfo`].
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(crate) struct RamInfo {
    /// Bytes sent.
    pub(crate) transferred: u64,
}

/// A QAPI `SocketAddress` (only `inet` is read).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(crate) enum SocketAddress {
    /// A TCP address; QAPI sends the port as a string.
    Inet {
        /// The host.
        host: String,
        /// The port.
        port: String,
    },
    /// Unix sockets, file descriptors, …
    #[serde(other)]
    Other,
}

impl SocketAddress {
    /// The TCP address, when it is one.
    pub(crate) fn inet(&self) -> Option<std::net::SocketAddr> {
        match self {
            Self::Inet { host, port } => {
                let ip = host.trim_matches(['[', ']']).parse().ok()?;
                Some(std::net::SocketAddr::new(ip, port.parse().ok()?))
            }
            Self::Other => None,
        }
    }
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
    /// QEMU serves one monitor client at a time: a second one waits, unanswered, for the
    /// first to leave. Past [`CONNECT_TIMEOUT`] it gives up rather than wait for ever.
    pub(crate) async fn connect(socket: &Path) -> Result<Self, String> {
        let session = async {
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
        };
        tokio::time::timeout(CONNECT_TIMEOUT, session)
            .await
            .map_err(|_| {
                format!(
                    "{}: no QMP greeting within {CONNECT_TIMEOUT:?} (another client holds the monitor?)",
                    socket.display()
                )
            })?
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

    /// The migration's state.
    pub(crate) async fn migration(&mut self) -> Result<MigrationInfo, String> {
        let value = self.execute(QmpCommand::QueryMigrate).await?;
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
        let to = "10.77.0.12:41000".parse().expect("address");
        assert_eq!(
            json(QmpCommand::Migrate { uri: tcp_uri(to) }),
            r#"{"execute":"migrate","arguments":{"uri":"tcp:10.77.0.12:41000"}}"#
        );
        assert_eq!(
            json(QmpCommand::return_path()),
            r#"{"execute":"migrate-set-capabilities","arguments":{"capabilities":[{"capability":"return-path","state":true}]}}"#
        );
        let v6 = "[::1]:0".parse().expect("address");
        assert_eq!(tcp_uri(v6), "tcp:[::1]:0");
    }

    #[test]
    fn query_migrate_answers_are_read_on_both_sides() {
        // As QEMU 7.2 answers: a receiver listening on the port it took, then a sender done.
        let receiver: MigrationInfo = serde_json::from_str(
            r#"{"socket-address":[{"port":"40609","ipv4":true,"host":"127.0.0.1","type":"inet"}]}"#,
        )
        .expect("parses");
        assert_eq!(receiver.status, None);
        assert_eq!(
            receiver.socket_address[0].inet(),
            Some("127.0.0.1:40609".parse().expect("address"))
        );
        let sender: MigrationInfo = serde_json::from_str(
            r#"{"status":"completed","setup-time":3,"downtime":10,"total-time":521,"ram":{"total":268513280,"transferred":72739978,"mbps":1123.7}}"#,
        )
        .expect("parses");
        assert_eq!(sender.status, Some(MigrationStatus::Completed));
        assert_eq!((sender.total_time, sender.downtime), (Some(521), Some(10)));
        assert_eq!(sender.ram.map(|r| r.transferred), Some(72_739_978));
        let active: MigrationInfo =
            serde_json::from_str(r#"{"status":"active","ram":{"transferred":5}}"#).expect("parses");
        assert_eq!(active.status, Some(MigrationStatus::UnderWay));
    }
}
