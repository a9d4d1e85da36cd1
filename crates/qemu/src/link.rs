//! One host's link: a task that keeps a connection to the host's agent, sends heartbeats
//! and the driver's messages, and hands every frame it receives to the driver.
//!
//! A link never decides anything: it reports `Connected`, each message, and `Lost` when
//! the connection fails or falls silent (a cut-off host's TCP connection does not close:
//! silence for [`SILENT_HEARTBEATS`] heartbeats ends it), then connects again.

use std::net::SocketAddr;
use std::time::Duration;

use plinth_proto::{Connection, FromAgent, ToAgent, Token};
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
}

/// Runs a link until the driver drops its sender.
pub async fn run(
    config: LinkConfig,
    mut outbox: mpsc::UnboundedReceiver<ToAgent>,
    events: mpsc::UnboundedSender<(String, LinkEvent)>,
) {
    let report = |e: LinkEvent| events.send((config.host.clone(), e)).is_ok();
    let retry = config.heartbeat.min(Duration::from_secs(1));
    loop {
        let stream = match timeout(retry * 2, TcpStream::connect(config.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) | Err(_) => {
                // Messages for an unreachable host are dropped: the driver knows the link
                // is down and answers for them.
                while let Ok(_dropped) = outbox.try_recv() {}
                if outbox.is_closed() {
                    return;
                }
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if !report(LinkEvent::Connected) {
            return;
        }
        let reason = serve(&config, stream, &mut outbox, &report).await;
        match reason {
            None => return,
            Some(reason) => {
                tracing::info!(host = %config.host, %reason, "agent link lost");
                if !report(LinkEvent::Lost { reason }) {
                    return;
                }
            }
        }
    }
}

/// Serves one connection; why it ended, or `None` when the driver is gone.
async fn serve(
    config: &LinkConfig,
    stream: TcpStream,
    outbox: &mut mpsc::UnboundedReceiver<ToAgent>,
    report: &impl Fn(LinkEvent) -> bool,
) -> Option<String> {
    let mut conn = Connection::new(stream, config.token.clone());
    let mut beat = tokio::time::interval(config.heartbeat);
    let silence = config.heartbeat * SILENT_HEARTBEATS;
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            _ = beat.tick() => {
                if heard.elapsed() > silence {
                    return Some(format!("no frame for {} ms", silence.as_millis()));
                }
                if let Err(e) = conn.send(&ToAgent::Heartbeat).await {
                    return Some(e.to_string());
                }
            }
            message = outbox.recv() => match message {
                Some(m) => if let Err(e) = conn.send(&m).await {
                    return Some(e.to_string());
                },
                None => return None,
            },
            frame = conn.recv::<FromAgent>() => match frame {
                Ok(FromAgent::Refused { reason }) => {
                    tracing::warn!(host = %config.host, %reason, "the agent refused this control plane");
                    return Some(format!("refused by the agent: {reason}"));
                }
                Ok(message) => {
                    heard = Instant::now();
                    if !report(LinkEvent::Message(message)) {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::warn!(host = %config.host, error = %e, "bad frame from the agent; reconnecting");
                    return Some(e.to_string());
                }
            },
        }
    }
}
