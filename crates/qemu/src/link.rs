//! One host's link: a task that keeps a connection to the host's agent, sends heartbeats
//! and the driver's messages, and hands every frame it receives to the driver.
//!
//! A link never decides anything: it reports `Connected`, each message, and `Lost` when
//! the connection fails or falls silent (a cut-off host's TCP connection does not close:
//! silence for [`SILENT_HEARTBEATS`] heartbeats ends it), then connects again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use plinth_proto::{Connection, FromAgent, ToAgent, Token};
use plinth_tls::{ClientConfig, HANDSHAKE_TIMEOUT, ServerName, TlsConnector};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Heartbeat intervals without a frame after which a link drops its connection.
pub const SILENT_HEARTBEATS: u32 = 3;

/// What a link reports to the driver.
#[derive(Debug)]
pub enum LinkEvent {
    /// The agent accepted a connection (its inventory follows).
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
    events: mpsc::UnboundedSender<(String, LinkEvent)>,
) {
    let report = |e: LinkEvent| events.send((config.host.clone(), e)).is_ok();
    let retry = config.heartbeat.min(Duration::from_secs(1));
    // Why the last attempt failed, logged once until it changes (it repeats every retry).
    let mut failing: Option<String> = None;
    loop {
        let ended = match dial(config.addr, config.tls.as_ref(), retry * 2).await {
            Ok(stream) => Ok(serve(&config, stream, &mut outbox, &report).await),
            Err(e) => {
                let reason = e.to_string();
                if matches!(e, DialError::Tls(_)) && failing.as_ref() != Some(&reason) {
                    tracing::warn!(host = %config.host, %reason, "the agent's TLS handshake failed; retrying");
                }
                Err(reason)
            }
        };
        match ended {
            Ok(Ended::DriverGone) => return,
            Ok(Ended::Lost(reason)) => {
                failing = None;
                tracing::info!(host = %config.host, %reason, "agent link lost");
                if !report(LinkEvent::Lost { reason }) {
                    return;
                }
            }
            Err(reason) => {
                failing = Some(reason);
                // Messages for an unreachable host are dropped: the driver knows the link
                // is down and answers for them.
                while let Ok(_dropped) = outbox.try_recv() {}
                if outbox.is_closed() {
                    return;
                }
                tokio::time::sleep(retry).await;
            }
        }
    }
}

/// How a connection that was served ended.
enum Ended {
    /// The driver dropped its sender.
    DriverGone,
    /// The connection failed or fell silent.
    Lost(String),
}

/// A byte stream to an agent: TCP, or TLS over TCP.
pub trait AgentIo: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> AgentIo for T {}

/// Why an agent could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// No TCP connection.
    #[error("{0}")]
    Connect(#[source] std::io::Error),
    /// No TCP connection within the time given.
    #[error("no answer within {} ms", .0.as_millis())]
    TimedOut(Duration),
    /// The TLS handshake failed: a certificate the other side refused, or none.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Connects to the agent at `addr`: TCP within `within`, then, with `tls`, the mutual
/// TLS handshake within [`HANDSHAKE_TIMEOUT`] (the agent's certificate must hold `addr`'s
/// IP address). The one way the control plane reaches an agent: its links and its console
/// reads.
///
/// # Errors
/// When the agent cannot be reached or the handshake fails.
pub async fn dial(
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    within: Duration,
) -> Result<Box<dyn AgentIo>, DialError> {
    let stream = timeout(within, TcpStream::connect(addr))
        .await
        .map_err(|_| DialError::TimedOut(within))?
        .map_err(DialError::Connect)?;
    let _ = stream.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Box::new(stream));
    };
    let name = ServerName::IpAddress(addr.ip().into());
    match timeout(
        HANDSHAKE_TIMEOUT,
        TlsConnector::from(Arc::clone(tls)).connect(name, stream),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(e)) => Err(DialError::Tls(e.to_string())),
        Err(_) => Err(DialError::Tls(format!(
            "no handshake within {} s",
            HANDSHAKE_TIMEOUT.as_secs()
        ))),
    }
}

/// Serves one connection until it ends.
async fn serve(
    config: &LinkConfig,
    stream: Box<dyn AgentIo>,
    outbox: &mut mpsc::UnboundedReceiver<ToAgent>,
    report: &impl Fn(LinkEvent) -> bool,
) -> Ended {
    if !report(LinkEvent::Connected) {
        return Ended::DriverGone;
    }
    let mut conn = Connection::new(stream, config.token.clone());
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
                    tracing::warn!(host = %config.host, %reason, "the agent refused this control plane");
                    return Ended::Lost(format!("refused by the agent: {reason}"));
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
