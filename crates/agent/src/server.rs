//! The agent's side of plinth-proto: a TCP listener, one task per control-plane connection,
//! commands carried out against a [`Hypervisor`] within their deadlines, heartbeats and
//! inventories, the self-fence watchdog, and the simulated agent's fault interface.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plinth_proto::network::Reach;
use plinth_proto::{
    Action, AdminRequest, BenchResult, BootId, Command, CommandError, CommandId, Completion,
    Connection, FromAgent, Heartbeat, HostName, Inventory, Outcome, ProtoError, ToAgent, Token,
};
use plinth_tls::{HANDSHAKE_TIMEOUT, ServerConfig, TlsAcceptor};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::error::AgentError;
use crate::hypervisor::Hypervisor;

/// How many answered commands the agent remembers, to answer a duplicate the same way.
const REMEMBERED_COMPLETIONS: usize = 4096;

/// How the agent serves.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The host's name in the Inventory.
    pub host: HostName,
    /// The control-plane listener.
    pub listen: SocketAddr,
    /// The shared token.
    pub token: Token,
    /// How often a heartbeat is sent on each connection.
    pub heartbeat: Duration,
    /// Without a valid frame from the control plane for this long, the agent kills its VMs.
    pub self_fence_timeout: Duration,
    /// Where the host's boot id is kept across agent restarts (none: a new one each start).
    pub boot_id_file: Option<PathBuf>,
    /// The simulated agent's fault interface (`plinth agent --simulated` only).
    pub admin_listen: Option<SocketAddr>,
    /// Mutual TLS on the control-plane listener: the agent's certificate, and the
    /// authority a control plane's client certificate must come from. None: plain TCP.
    pub tls: Option<Arc<ServerConfig>>,
}

/// State shared by the connections.
struct Shared<H> {
    config: AgentConfig,
    hv: Arc<H>,
    boot_id: Mutex<BootId>,
    last_contact: watch::Sender<Instant>,
    completions: Mutex<BTreeMap<CommandId, Outcome>>,
    /// Simulated faults: cut off (no traffic either way) and crashed (until restored).
    cut_off: watch::Sender<bool>,
    fenced: AtomicBool,
}

impl<H: Hypervisor> Shared<H> {
    fn boot_id(&self) -> BootId {
        *self.boot_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inventory(&self) -> Inventory {
        Inventory {
            host: self.config.host.clone(),
            boot_id: self.boot_id(),
            capacity: self.hv.capacity(),
            accelerator: self.hv.accelerator(),
            vms: self.hv.vms(),
        }
    }

    fn contact(&self) {
        self.last_contact.send_replace(Instant::now());
        self.fenced.store(false, Ordering::SeqCst);
    }

    fn remembered(&self, id: CommandId) -> Option<Outcome> {
        self.completions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    fn remember(&self, id: CommandId, outcome: &Outcome) {
        let mut done = self
            .completions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        done.insert(id, outcome.clone());
        while done.len() > REMEMBERED_COMPLETIONS {
            done.pop_first();
        }
    }
}

/// The boot id of this life of the host: the recorded one when a VM survived the agent's
/// restart (the host did not reboot), else the next one (the first when none is recorded),
/// recorded.
pub async fn boot_id<H: Hypervisor>(file: Option<&PathBuf>, hv: &H) -> BootId {
    let recorded = match file {
        Some(f) => tokio::fs::read_to_string(f)
            .await
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(BootId),
        None => None,
    };
    match recorded {
        Some(id) if hv.any_running() => id,
        recorded => {
            let id = recorded.map_or(BootId::FIRST, BootId::next);
            if let Some(f) = file
                && let Err(e) = tokio::fs::write(f, id.to_string()).await
            {
                tracing::warn!(file = %f.display(), error = %e, "boot id not recorded");
            }
            id
        }
    }
}

/// Serves the control plane for ever.
///
/// # Errors
/// When a listener cannot be bound.
pub async fn serve<H: Hypervisor>(config: AgentConfig, hv: Arc<H>) -> Result<(), AgentError> {
    let listener = bind(config.listen).await?;
    let admin = match config.admin_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let boot = boot_id(config.boot_id_file.as_ref(), hv.as_ref()).await;
    tracing::info!(host = %config.host, listen = %config.listen, tls = config.tls.is_some(), boot_id = %boot, vms = hv.vms().len(), "agent serving");
    if config.tls.is_none() {
        tracing::warn!(
            "serving the control plane without TLS: whoever learns the token can command this host's VMs; give --tls-cert, --tls-key and --tls-client-ca"
        );
    }
    let shared = Arc::new(Shared {
        boot_id: Mutex::new(boot),
        last_contact: watch::Sender::new(Instant::now()),
        completions: Mutex::new(BTreeMap::new()),
        cut_off: watch::Sender::new(false),
        fenced: AtomicBool::new(false),
        config,
        hv,
    });
    tokio::spawn(watchdog(Arc::clone(&shared)));
    if let Some(admin) = admin {
        tokio::spawn(admin_loop(admin, Arc::clone(&shared)));
    }
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        if *shared.cut_off.borrow() {
            drop(stream);
            continue;
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let ended = match shared.config.tls.clone() {
                None => connection(stream, &shared).await,
                Some(tls) => {
                    let handshake = TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(stream)) => connection(stream, &shared).await,
                        Ok(Err(e)) => {
                            tracing::warn!(%peer, error = %e, "refused a peer: TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(%peer, "refused a peer: no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs());
                            return;
                        }
                    }
                }
            };
            match ended {
                Ok(()) => tracing::info!(%peer, "control plane disconnected"),
                Err(e) => tracing::warn!(%peer, error = %e, "connection ended"),
            }
        });
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, AgentError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Listen {
            addr: addr.to_string(),
            source,
        })
}

/// Kills the VMs once `self_fence_timeout` passes with no valid frame from the control plane
/// (Proxmox's watchdog rule: the control plane restarts them elsewhere only after this).
async fn watchdog<H: Hypervisor>(shared: Arc<Shared<H>>) {
    let timeout = shared.config.self_fence_timeout;
    let mut tick = tokio::time::interval(Duration::from_millis(100).min(timeout / 4));
    loop {
        tick.tick().await;
        let silent = shared.last_contact.borrow().elapsed();
        if silent >= timeout
            && shared.hv.any_running()
            && !shared.fenced.swap(true, Ordering::SeqCst)
        {
            tracing::warn!(
                silent_ms = silent.as_millis(),
                "no contact with the control plane: self-fencing, killing every VM"
            );
            shared.hv.fence().await;
        }
    }
}

/// One control-plane connection: frames in, completions, heartbeats and inventories out.
async fn connection<H: Hypervisor, S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    shared: &Arc<Shared<H>>,
) -> Result<(), ProtoError> {
    let mut conn = Connection::new(stream, shared.config.token.clone());
    let mut changes = shared.hv.changes();
    let mut cut = shared.cut_off.subscribe();
    let (done_tx, mut done_rx) = mpsc::channel::<Completion>(64);
    let (reply_tx, mut reply_rx) = mpsc::channel::<FromAgent>(16);
    let mut heartbeat = tokio::time::interval(shared.config.heartbeat);
    conn.send(&FromAgent::Inventory(shared.inventory())).await?;
    loop {
        tokio::select! {
            frame = conn.recv::<ToAgent>() => match frame {
                // An operator's read, not the control plane: no contact, no watchdog reset.
                Ok(ToAgent::Console { vm, from }) => {
                    let reply = match shared.hv.console(&vm, from).await {
                        Ok(chunk) => FromAgent::Console(chunk),
                        Err(e) => FromAgent::NoConsole { vm, reason: e.to_string() },
                    };
                    conn.send(&reply).await?;
                }
                // A kernel takes seconds too.
                Ok(ToAgent::Bench { vm, kernel }) => {
                    let shared = Arc::clone(shared);
                    let replies = reply_tx.clone();
                    tokio::spawn(async move {
                        let result = match shared.hv.bench(&vm, kernel).await {
                            Ok(mib_per_second) => BenchResult::Ran { mib_per_second },
                            Err(reason) => BenchResult::NotRun { reason },
                        };
                        let _ = replies.send(FromAgent::Bench { vm, kernel, result }).await;
                    });
                }
                // A check takes seconds: it is answered when done, beside everything else.
                Ok(ToAgent::Reach { vm, address }) => {
                    let shared = Arc::clone(shared);
                    let replies = reply_tx.clone();
                    tokio::spawn(async move {
                        let reach = shared.hv.reach(&vm, address).await;
                        let _ = replies.send(FromAgent::Reach { vm, address, reach }).await;
                    });
                }
                Ok(message) => {
                    shared.contact();
                    if let Some(reply) = handle(message, shared, &done_tx) {
                        conn.send(&reply).await?;
                    }
                }
                Err(ProtoError::Closed) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "refused a frame; closing the connection");
                    let _ = conn.send(&FromAgent::Refused { reason: e.to_string() }).await;
                    return Err(e);
                }
            },
            Some(done) = done_rx.recv() => conn.send(&FromAgent::Completion(done)).await?,
            Some(reply) = reply_rx.recv() => conn.send(&reply).await?,
            _ = heartbeat.tick() => {
                conn.send(&FromAgent::Heartbeat(Heartbeat { boot_id: shared.boot_id() })).await?;
            }
            Ok(()) = changes.changed() => conn.send(&FromAgent::Inventory(shared.inventory())).await?,
            Ok(()) = cut.changed() => if *cut.borrow() { return Ok(()) },
        }
    }
}

/// Acts on one message; an immediate reply, if any.
fn handle<H: Hypervisor>(
    message: ToAgent,
    shared: &Arc<Shared<H>>,
    done: &mpsc::Sender<Completion>,
) -> Option<FromAgent> {
    match message {
        ToAgent::Heartbeat => Some(FromAgent::Heartbeat(Heartbeat {
            boot_id: shared.boot_id(),
        })),
        ToAgent::Resync => Some(FromAgent::Inventory(shared.inventory())),
        ToAgent::Admin(_) => Some(FromAgent::Refused {
            reason: "faults are accepted only on the simulated agent's admin listener".into(),
        }),
        // Answered where frames are read, without counting as contact.
        ToAgent::Console { vm, .. } => Some(FromAgent::NoConsole {
            vm,
            reason: "console reads are answered by the connection".into(),
        }),
        ToAgent::Bench { vm, kernel } => Some(FromAgent::Bench {
            vm,
            kernel,
            result: BenchResult::NotRun {
                reason: "kernels are run by the connection".into(),
            },
        }),
        ToAgent::Reach { vm, address } => Some(FromAgent::Reach {
            vm,
            address,
            reach: Reach::NotChecked {
                reason: "reachability checks are answered by the connection".into(),
            },
        }),
        ToAgent::Command(cmd) => {
            if let Some(outcome) = shared.remembered(cmd.id) {
                return Some(FromAgent::Completion(Completion {
                    id: cmd.id,
                    outcome,
                }));
            }
            let shared = Arc::clone(shared);
            let done = done.clone();
            tokio::spawn(async move {
                let id = cmd.id;
                let outcome = execute(cmd, &shared).await;
                shared.remember(id, &outcome);
                let _ = done.send(Completion { id, outcome }).await;
            });
            None
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Carries out one command within its deadline.
async fn execute<H: Hypervisor>(cmd: Command, shared: &Shared<H>) -> Outcome {
    let left = Duration::from_millis(cmd.deadline_unix_ms.saturating_sub(now_unix_ms()));
    tracing::info!(id = %cmd.id, action = ?cmd.action, left_ms = left.as_millis(), "command");
    let hv = shared.hv.as_ref();
    let deadline = tokio::time::Instant::now() + left;
    let done = |r: Result<(), AgentError>| r.map(|()| Outcome::Done);
    let work = async {
        match &cmd.action {
            Action::CreateVm(spec) => done(hv.create(spec).await),
            Action::StartVm { vm } => done(hv.start(vm).await),
            Action::StopVm { vm } => done(hv.stop(vm).await),
            Action::DeleteVm { vm } => done(hv.delete(vm).await),
            Action::Fence => {
                hv.fence().await;
                Ok(Outcome::Done)
            }
            Action::ReceiveVm { vm, listen } => hv
                .receive(vm, *listen, deadline)
                .await
                .map(|addr| Outcome::Listening { addr }),
            Action::SendVm { vm, to } => hv.send(vm, *to, deadline).await.map(Outcome::Migrated),
        }
    };
    let outcome = match tokio::time::timeout(left, work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Failed {
            error: classify(&e),
        },
        Err(_) => Outcome::Failed {
            error: CommandError::TimedOut,
        },
    };
    tracing::info!(id = %cmd.id, outcome = ?outcome, "completed");
    outcome
}

/// Refused when the agent did nothing; outcome unknown when it acted and could not tell.
fn classify(e: &AgentError) -> CommandError {
    let reason = error_chain(e);
    match e {
        AgentError::UnknownVm(_)
        | AgentError::VmExists(_)
        | AgentError::InvalidName(_)
        | AgentError::UnknownImage { .. }
        | AgentError::NotMigrated { .. } => CommandError::Refused { reason },
        _ => CommandError::OutcomeUnknown { reason },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The simulated agent's fault interface: one [`AdminRequest`] per connection.
async fn admin_loop<H: Hypervisor>(listener: TcpListener, shared: Arc<Shared<H>>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let mut conn = Connection::new(stream, shared.config.token.clone());
        match conn.recv::<ToAgent>().await {
            Ok(ToAgent::Admin(request)) => {
                fault(request, &shared).await;
                let _ = conn
                    .send(&FromAgent::Heartbeat(Heartbeat {
                        boot_id: shared.boot_id(),
                    }))
                    .await;
            }
            Ok(other) => {
                tracing::warn!(%peer, message = ?other, "admin listener takes faults only");
                let _ = conn
                    .send(&FromAgent::Refused {
                        reason: "not a fault".into(),
                    })
                    .await;
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "refused an admin frame");
                let _ = conn
                    .send(&FromAgent::Refused {
                        reason: e.to_string(),
                    })
                    .await;
            }
        }
    }
}

async fn fault<H: Hypervisor>(request: AdminRequest, shared: &Shared<H>) {
    tracing::warn!(fault = ?request, "simulated fault");
    match request {
        AdminRequest::Kill => {
            shared.cut_off.send_replace(true);
            shared.hv.fence().await;
        }
        AdminRequest::CutOff => {
            shared.cut_off.send_replace(true);
        }
        AdminRequest::Restore => {
            if !shared.hv.any_running() {
                // The host comes back as a new life: nothing it said before counts.
                let mut boot = shared
                    .boot_id
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                *boot = boot.next();
            }
            shared.cut_off.send_replace(false);
        }
    }
}
