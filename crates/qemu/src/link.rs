//! One host's link: a task that keeps a connection to the host's agent, sends heartbeats
//! and the driver's messages, and hands every frame it receives to the driver.
//!
//! A link never decides anything: it reports `Connected`, each message, and `Lost` when
//! the connection fails or falls silent (a cut-off host's TCP connection does not close:
//! silence for [`SILENT_HEARTBEATS`] heartbeats ends it), then connects again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plinth_control::Time;
use plinth_proto::{Connection, FromAgent, Inventory, ProtoError, ToAgent, Token};
use plinth_tls::{ClientConfig, HANDSHAKE_TIMEOUT, ServerName, TlsConnector};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

use crate::driver::wall_clock;

/// Heartbeat intervals without a frame after which a link drops its connection.
pub const SILENT_HEARTBEATS: u32 = 3;

/// What a link reports to the driver.
#[derive(Debug)]
pub enum LinkEvent {
    /// A connection to the agent is open: it sent its inventory, which follows.
    Connected,
    /// A frame from the agent.
    Message(FromAgent),
    /// The connection failed or fell silent; messages sent on it may be lost.
    Lost {
        /// What was seen.
        reason: String,
    },
}

/// How a link connects.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// The host's name (for logs).
    pub host: String,
    /// Its agent's address.
    pub addr: SocketAddr,
    /// The shared token.
    pub token: Token,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Mutual TLS: the control plane's client certificate, and the authority whose
    /// certificate for the agent's address it accepts. None: plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
}

/// Runs a link until the driver drops its sender.
pub async fn run(
    config: LinkConfig,
    mut outbox: mpsc::UnboundedReceiver<ToAgent>,
    events: mpsc::UnboundedSender<(String, Time, LinkEvent)>,
) {
    // Each event carries when it was received: a driver that reads it late still knows
    // when its host was last heard.
    let report = |e: LinkEvent| events.send((config.host.clone(), wall_clock(), e)).is_ok();
    let retry = config.heartbeat.min(Duration::from_secs(1));
    // Why the last attempt failed, logged once until it changes (it repeats every retry).
    let mut failing: Option<String> = None;
    loop {
        let opened = open(config.addr, &config.token, config.tls.as_ref(), retry * 2).await;
        let failed = match opened {
            Ok((conn, inventory)) => {
                failing = None;
                match serve(&config, conn, inventory, &mut outbox, &report).await {
                    Ended::DriverGone => return,
                    Ended::Lost(reason) => {
                        tracing::info!(host = %config.host, %reason, "agent link lost");
                        if !report(LinkEvent::Lost { reason }) {
                            return;
                        }
                        None
                    }
                    // It would refuse again at once: wait as for an unreachable agent.
                    Ended::Refused(reason) => {
                        if !report(LinkEvent::Lost {
                            reason: reason.clone(),
                        }) {
                            return;
                        }
                        Some(reason)
                    }
                }
            }
            Err(e) => Some(e.to_string()),
        };
        if let Some(reason) = failed {
            if failing.as_ref() != Some(&reason) && !reason.starts_with(UNREACHABLE) {
                tracing::warn!(host = %config.host, %reason, "the agent does not serve this control plane; retrying");
            }
            failing = Some(reason);
            // Messages for an unreachable host are dropped: the driver knows the link is
            // down and answers for them.
            while let Ok(_dropped) = outbox.try_recv() {}
            if outbox.is_closed() {
                return;
            }
            tokio::time::sleep(retry).await;
        }
    }
}

/// How a connection that was served ended.
enum Ended {
    /// The driver dropped its sender.
    DriverGone,
    /// The connection failed or fell silent.
    Lost(String),
    /// The agent refused this control plane's frames (a wrong token or version).
    Refused(String),
}

/// A byte stream to an agent: TCP, or TLS over TCP.
pub trait AgentIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> AgentIo for T {}

/// A connection to an agent.
pub type AgentConnection = Connection<Box<dyn AgentIo>>;

/// The start of [`DialError`]'s text when no connection was made at all (an agent down or
/// cut off: normal, not logged on every retry).
const UNREACHABLE: &str = "unreachable";

/// Why an agent could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No TCP connection.
    #[error("unreachable: {0}")]
    Connect(#[source] std::io::Error),
    /// No TCP connection within the time given.
    #[error("unreachable: no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The TLS handshake failed, or the agent ended the connection before its first
    /// frame: a certificate one side refused, or TLS on one side only.
    #[error("no TLS session: {0}")]
    Tls(String),
    /// The agent's first frame was not its inventory.
    #[error("no inventory from the agent: {0}")]
    NoInventory(String),
}

/// Connects to the agent at `addr`: TCP within `within`, then, with `tls`, the mutual
/// TLS handshake (the agent's certificate must hold `addr`'s IP address), then the agent's
/// first frame, its inventory, within [`HANDSHAKE_TIMEOUT`]. A connection counts as made
/// only once that frame arrived: under TLS 1.3 an agent that refuses the control plane's
/// certificate says so only after the client's side of the handshake finished. The one
/// way the control plane reaches an agent: its links and its console reads.
///
/// # Errors
/// When the agent cannot be reached, the handshake fails, or no inventory comes.
pub async fn open(
    addr: SocketAddr,
    token: &Token,
    tls: Option<&Arc<ClientConfig>>,
    within: Duration,
) -> Result<(AgentConnection, Inventory), DialError> {
    let tcp = timeout(within, TcpStream::connect(addr))
        .await
        .map_err(|_| DialError::TimedOut(within))?
        .map_err(DialError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let first = async {
        let stream: Box<dyn AgentIo> = match tls {
            None => Box::new(tcp),
            Some(tls) => {
                let name = ServerName::IpAddress(addr.ip().into());
                let tls = TlsConnector::from(Arc::clone(tls))
                    .connect(name, tcp)
                    .await
                    .map_err(|e| DialError::Tls(e.to_string()))?;
                Box::new(tls)
            }
        };
        let mut conn = Connection::new(stream, token.clone());
        match conn.recv::<FromAgent>().await {
            Ok(FromAgent::Inventory(inventory)) => Ok((conn, inventory)),
            Ok(FromAgent::Refused { reason }) => Err(DialError::NoInventory(reason)),
            Ok(_) => Err(DialError::NoInventory(
                "its first frame was something else".into(),
            )),
            Err(e @ ProtoError::Io(_)) if tls.is_some() => Err(DialError::Tls(e.to_string())),
            Err(e) => Err(DialError::NoInventory(e.to_string())),
        }
    };
    timeout(HANDSHAKE_TIMEOUT, first).await.unwrap_or_else(|_| {
        Err(DialError::NoInventory(format!(
            "nothing within {} s",
            HANDSHAKE_TIMEOUT.as_secs()
        )))
    })
}

/// Serves one connection until it ends.
async fn serve(
    config: &LinkConfig,
    mut conn: AgentConnection,
    inventory: Inventory,
    outbox: &mut mpsc::UnboundedReceiver<ToAgent>,
    report: &impl Fn(LinkEvent) -> bool,
) -> Ended {
    if !report(LinkEvent::Connected) || !report(LinkEvent::Message(FromAgent::Inventory(inventory)))
    {
        return Ended::DriverGone;
    }
    let mut beat = tokio::time::interval(config.heartbeat);
    let silence = config.heartbeat * SILENT_HEARTBEATS;
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if heard.elapsed() > silence {
                    return Ended::Lost(format!("no frame for {} ms", silence.as_millis()));
                }
                if let Err(e) = conn.send(&ToAgent::Heartbeat).await {
                    return Ended::Lost(e.to_string());
                }
            }
            message = outbox.recv() => match message {
                Some(m) => if let Err(e) = conn.send(&m).await {
                    return Ended::Lost(e.to_string());
                },
                None => return Ended::DriverGone,
            },
            frame = conn.recv::<FromAgent>() => match frame {
                Ok(FromAgent::Refused { reason }) => {
                    return Ended::Refused(format!("refused by the agent: {reason}"));
                }
                Ok(message) => {
                    heard = Instant::now();
                    if !report(LinkEvent::Message(message)) {
                        return Ended::DriverGone;
                    }
                }
                Err(e) => {
                    tracing::warn!(host = %config.host, error = %e, "bad frame from the agent; reconnecting");
                    return Ended::Lost(e.to_string());
                }
            },
        }
    }
}
