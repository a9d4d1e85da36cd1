//! `GET …/virtualmachines/NAME/log[?follow=true]`: a node VM's serial console, read from
//! the agent of the host it runs on (`plinth logs VM [-f]`).
//!
//! Any replica answers: the VM's host is in its reported object, the host's agent address
//! in the Host's, and the replica opens its own connection to that agent. A console read is
//! not contact from the control plane, so it never keeps a partitioned host from fencing
//! itself. Following stops when the client goes away or the service shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures_util::stream;
use plinth_proto::{FromAgent, ToAgent, Token, VmName};
use plinth_qemu::link::{AgentConnection, open};
use serde_json::Value;

use crate::Shared;
use crate::controller::Agents;
use crate::kinds::{ObjectKey, Resource};

/// The route: a VirtualMachine's `log` subresource.
pub const LOG_PATH: &str = "/apis/plinth.dev/v1alpha1/virtualmachines/{name}/log";

/// How often a followed console is read again when it had nothing new.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// The longest the agent may take to accept a connection or answer a read.
const AGENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a console cannot be streamed: an HTTP status, a reason and a message.
pub type Refusal = (StatusCode, &'static str, String);

/// The agent address of the host `vm` runs on, from the reported objects.
fn placement(
    vm: &Value,
    host: Option<&Value>,
    name: &str,
) -> Result<(String, SocketAddr), Refusal> {
    let on = vm
        .pointer("/status/host")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            (
                StatusCode::CONFLICT,
                "NotPlaced",
                format!("virtualmachine {name} is on no host yet: it has no console to read"),
            )
        })?;
    let address = host
        .and_then(|h| h.pointer("/status/agent"))
        .and_then(Value::as_str)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "NoAgent",
                format!("host {on} of virtualmachine {name} reports no agent address yet"),
            )
        })?;
    Ok((on.to_owned(), address))
}

/// A connection to the agent at `address`.
async fn connect(
    address: SocketAddr,
    agents: &Agents,
    host: &str,
) -> Result<AgentConnection, Refusal> {
    let (conn, _) = open(
        address,
        &Token::new(&agents.token),
        agents.tls.as_ref(),
        AGENT_TIMEOUT,
    )
    .await
    .map_err(|e| {
        (
            StatusCode::BAD_GATEWAY,
            "AgentUnreachable",
            format!("the agent of host {host} at {address}: {e}"),
        )
    })?;
    Ok(conn)
}

/// One read of `vm`'s console from `from`: the text (empty when nothing is new), whether
/// the console began again, and where to read next. `Err` ends the stream with its text.
async fn read(
    conn: &mut AgentConnection,
    vm: &VmName,
    from: u64,
) -> Result<(String, bool, u64), String> {
    conn.send(&ToAgent::Console {
        vm: vm.clone(),
        from,
    })
    .await
    .map_err(|e| e.to_string())?;
    loop {
        let frame = tokio::time::timeout(AGENT_TIMEOUT, conn.recv::<FromAgent>())
            .await
            .map_err(|_| "the agent did not answer".to_owned())?
            .map_err(|e| e.to_string())?;
        match frame {
            FromAgent::Console(chunk) if chunk.vm == *vm => {
                return Ok((chunk.text, chunk.from < from, chunk.next));
            }
            FromAgent::NoConsole { reason, .. } | FromAgent::Refused { reason } => {
                return Err(reason);
            }
            // Inventories and heartbeats every connection gets.
            _ => {}
        }
    }
}

/// The state of one console stream.
struct Reading {
    shared: Arc<Shared>,
    conn: AgentConnection,
    vm: VmName,
    next: u64,
    follow: bool,
    ended: bool,
}

impl Reading {
    /// The next bytes to send, or `None` at the end.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if self.ended || self.shared.closing.load(Ordering::SeqCst) {
                return None;
            }
            match read(&mut self.conn, &self.vm, self.next).await {
                Ok((text, restarted, next)) => {
                    self.next = next;
                    let mut out = String::new();
                    if restarted {
                        out.push_str("--- the console began again: the VM was restarted ---\n");
                    }
                    out.push_str(&text);
                    if !out.is_empty() {
                        return Some(Bytes::from(out));
                    }
                    if !self.follow {
                        return None;
                    }
                    tokio::time::sleep(FOLLOW_EVERY).await;
                }
                Err(reason) => {
                    self.ended = true;
                    return Some(Bytes::from(format!(
                        "--- plinth: the console of {} ended: {reason} ---\n",
                        self.vm
                    )));
                }
            }
        }
    }
}

/// Streams the console of the virtual machine `name` (its reported object `vm`, and the
/// `host` it runs on) as plain text.
///
/// # Errors
/// When the VM is unknown or unplaced, or its host's agent cannot be reached.
pub async fn stream(
    shared: Arc<Shared>,
    name: String,
    vm: Option<Value>,
    host: Option<Value>,
    follow: bool,
) -> Result<Response, Refusal> {
    let vm = vm.ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "{} not found",
                ObjectKey::global(Resource::VirtualMachine, &name)
            ),
        )
    })?;
    let (on, address) = placement(&vm, host.as_ref(), &name)?;
    let agents = shared.agents.get().cloned().ok_or_else(|| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "NoAgent",
            "this server was started without an agents file (--agents): it has no token for the agents".to_owned(),
        )
    })?;
    let conn = connect(address, &agents, &on).await?;
    let state = Reading {
        shared,
        conn,
        vm: VmName(name),
        next: 0,
        follow,
        ended: false,
    };
    let body = stream::unfold(state, |mut r| async move {
        let next = r.next().await?;
        Some((Ok::<_, std::io::Error>(next), r))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    Ok(response)
}
