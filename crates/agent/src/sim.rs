//! Simulated VMs: the same protocol and lifecycle with no QEMU, and boot times from the
//! Environment, so the control plane and its tests can run many hosts cheaply.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use plinth_proto::guest::{BenchKernel, GuestStatus, UserData, checksum};
use plinth_proto::network::Reach;
use plinth_proto::{Capacity, ConsoleChunk, MigrationStats, VmName, VmReport, VmSpec, VmState};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::datastore;
use crate::error::AgentError;
use crate::hypervisor::{Hypervisor, console_chunk, console_start};
use crate::table::{VmRecord, VmTable};

/// The simulated hypervisor of one host.
#[derive(Debug)]
pub struct SimulatedHypervisor {
    table: Arc<VmTable>,
    boot: Duration,
    capacity: Capacity,
    /// The storage every host sees, where VM configurations live: a VM created on one
    /// host can be started on another (an HA restart). `None`: this host's VMs only.
    storage: Option<PathBuf>,
    /// Each VM's simulated serial console since its last start.
    consoles: Arc<Consoles>,
}

impl SimulatedHypervisor {
    /// A host with no VMs whose VMs take `boot` to become Ready.
    #[must_use]
    pub fn new(boot: Duration, capacity: Capacity) -> Self {
        Self {
            table: Arc::new(VmTable::default()),
            boot,
            capacity,
            storage: None,
            consoles: Arc::default(),
        }
    }

    /// Writes a line to `vm`'s simulated console; `fresh` begins a new boot's console.
    fn console_line(&self, vm: &VmName, fresh: bool, line: &str) {
        console_line(&self.consoles, vm, fresh, line);
    }

    /// The same host, keeping VM configurations on `storage`, shared with other hosts.
    #[must_use]
    pub fn with_storage(mut self, storage: PathBuf) -> Self {
        self.storage = Some(storage);
        self
    }

    /// `vm`'s record: this host's, or registered from the shared storage.
    async fn record(&self, vm: &VmName) -> Result<VmRecord, AgentError> {
        if let Some(record) = self.table.get(vm) {
            return Ok(record);
        }
        let storage = self
            .storage
            .as_ref()
            .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
        let (spec, _) = datastore::read(storage, vm).await?;
        self.table.insert(VmRecord::new(spec));
        tracing::info!(vm = %vm, "registered from the shared storage");
        self.table
            .get(vm)
            .ok_or_else(|| AgentError::UnknownVm(vm.clone()))
    }
}

/// Each VM's simulated serial console since its last start.
type Consoles = Mutex<BTreeMap<VmName, String>>;

/// Writes a line to `vm`'s simulated console; `fresh` begins a new boot's console.
fn console_line(consoles: &Consoles, vm: &VmName, fresh: bool, line: &str) {
    let mut consoles = consoles.lock().unwrap_or_else(PoisonError::into_inner);
    let console = consoles.entry(vm.clone()).or_default();
    if fresh {
        console.clear();
    }
    console.push_str(line);
    console.push('\n');
}

/// What a real guest agent would report for this spec: its node, its cluster and the
/// checksum of the user-data the host agent writes.
fn guest_status(spec: &VmSpec) -> Result<GuestStatus, AgentError> {
    let payload = UserData::for_node(&spec.bootstrap)
        .to_document()
        .map_err(|e| AgentError::Vm {
            vm: spec.name.clone(),
            detail: e.to_string(),
        })?;
    Ok(GuestStatus {
        node: spec.bootstrap.node.clone(),
        cluster: spec.bootstrap.cluster.clone(),
        payload_sha256: checksum(&payload),
        payload_exit: 0,
        ready: true,
        network_error: None,
        os: format!("{} (simulated)", spec.image),
        kernel: "simulated".into(),
    })
}

impl Hypervisor for SimulatedHypervisor {
    async fn create(&self, spec: &VmSpec) -> Result<(), AgentError> {
        if !spec.name.is_valid() {
            return Err(AgentError::InvalidName(spec.name.clone()));
        }
        if let Some(storage) = &self.storage
            && self.table.get(&spec.name).is_none()
            && datastore::holds(storage, spec).await
        {
            return Ok(());
        }
        if self.table.insert(VmRecord::new(spec.clone())) {
            if let Some(storage) = &self.storage {
                datastore::write(storage, spec).await?;
            }
            return Ok(());
        }
        // A repeated create (its first answer was lost) is a no-op.
        match self.table.get(&spec.name) {
            Some(existing) if existing.spec == *spec => Ok(()),
            _ => Err(AgentError::VmExists(spec.name.clone())),
        }
    }

    async fn start(&self, vm: &VmName) -> Result<(), AgentError> {
        let mut record = self.record(vm).await?;
        // A receiver runs the VM once its sender hands it over, or is forgotten.
        let mut changes = self.table.subscribe();
        while record.state == VmState::Incoming {
            if changes.changed().await.is_err() {
                break;
            }
            record = self
                .table
                .get(vm)
                .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
        }
        if record.state == VmState::Running {
            return Ok(());
        }
        self.table.update(vm, true, |r| r.state = VmState::Running);
        let spec = &record.spec;
        self.console_line(
            vm,
            true,
            &format!(
                "plinth simulated VM {vm}: powered on, {} vCPU(s), {} MiB; booting the node image of Kubernetes {}",
                spec.vcpus, spec.memory_mib, spec.bootstrap.kubernetes_version
            ),
        );
        tokio::time::sleep(self.boot).await;
        let status = guest_status(&record.spec)?;
        let still_running = self
            .table
            .get(vm)
            .is_some_and(|r| r.state == VmState::Running);
        if !still_running {
            return Err(AgentError::Vm {
                vm: vm.clone(),
                detail: "stopped before Ready".into(),
            });
        }
        self.console_line(
            vm,
            false,
            &format!(
                "plinth-guest: node {} of cluster {} ready (user-data sha256 {})",
                status.node, status.cluster, status.payload_sha256
            ),
        );
        self.table.update(vm, false, |r| r.guest = Some(status));
        Ok(())
    }

    async fn stop(&self, vm: &VmName) -> Result<(), AgentError> {
        let stopped = self.table.update(vm, true, |r| {
            r.state = VmState::Stopped;
            r.guest = None;
        });
        if stopped {
            self.console_line(vm, false, &format!("plinth simulated VM {vm}: powered off"));
            Ok(())
        } else {
            Err(AgentError::UnknownVm(vm.clone()))
        }
    }

    async fn delete(&self, vm: &VmName) -> Result<(), AgentError> {
        self.stop(vm).await?;
        self.table.remove(vm);
        if let Some(storage) = &self.storage {
            datastore::remove(storage, vm).await;
        }
        Ok(())
    }

    async fn fence(&self) {
        for vm in self.table.names() {
            let mut was_running = false;
            self.table.update(&vm, true, |r| {
                was_running = r.state == VmState::Running;
                r.state = VmState::Stopped;
                r.guest = None;
            });
            if was_running {
                tracing::warn!(vm = %vm, "killed by fencing");
                self.console_line(
                    &vm,
                    false,
                    &format!("plinth simulated VM {vm}: killed (its host fenced itself)"),
                );
            }
        }
    }

    async fn receive(
        &self,
        vm: &VmName,
        listen: IpAddr,
        deadline: Instant,
    ) -> Result<SocketAddr, AgentError> {
        let record = self.record(vm).await?;
        record.receivable()?;
        let listener = TcpListener::bind(SocketAddr::new(listen, 0))
            .await
            .map_err(|source| AgentError::Listen {
                addr: listen.to_string(),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| AgentError::Listen {
            addr: listen.to_string(),
            source,
        })?;
        self.table.update(vm, true, |r| r.state = VmState::Incoming);
        let table = Arc::clone(&self.table);
        let vm = vm.clone();
        let status = guest_status(&record.spec)?;
        let consoles = Arc::clone(&self.consoles);
        tokio::spawn(async move {
            let took_over =
                tokio::time::timeout_at(deadline, take_over(&listener, &vm, &table, status))
                    .await
                    .is_ok_and(|r| r.is_ok());
            if took_over {
                console_line(
                    &consoles,
                    &vm,
                    true,
                    &format!("plinth simulated VM {vm}: received by live migration; running"),
                );
            } else if table.get(&vm).is_some_and(|r| r.state == VmState::Incoming) {
                tracing::warn!(vm = %vm, "the receiver got nothing by its deadline; ending it");
                table.remove(&vm);
            }
        });
        Ok(addr)
    }

    async fn send(
        &self,
        vm: &VmName,
        to: SocketAddr,
        deadline: Instant,
    ) -> Result<MigrationStats, AgentError> {
        let record = self
            .table
            .get(vm)
            .ok_or_else(|| AgentError::UnknownVm(vm.clone()))?;
        let not_migrated = |detail: String| AgentError::NotMigrated {
            vm: vm.clone(),
            detail,
        };
        record.sendable()?;
        let started = Instant::now();
        let handed = match tokio::time::timeout_at(deadline, hand_over(vm, to)).await {
            Ok(Ok(handed)) => handed,
            Ok(Err(HandOverError::NotSent(e))) => return Err(not_migrated(e.to_string())),
            // Named to the receiver, which may have taken it over: nobody knows where it runs.
            Ok(Err(HandOverError::Unacknowledged(e))) => {
                return Err(AgentError::Vm {
                    vm: vm.clone(),
                    detail: format!("handed over with no acknowledgement: {e}"),
                });
            }
            Err(_) => {
                return Err(AgentError::Vm {
                    vm: vm.clone(),
                    detail: "its deadline came during the hand-over".into(),
                });
            }
        };
        self.table.remove(vm);
        Ok(MigrationStats {
            total_ms: millis(started.elapsed()),
            downtime_ms: millis(handed.pause),
            transferred_bytes: handed.bytes,
        })
    }

    fn vms(&self) -> Vec<VmReport> {
        self.table.reports()
    }

    fn capacity(&self) -> Capacity {
        self.capacity
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.table.subscribe()
    }

    async fn console(&self, vm: &VmName, from: u64) -> Result<ConsoleChunk, AgentError> {
        let consoles = self.consoles.lock().unwrap_or_else(PoisonError::into_inner);
        match consoles.get(vm) {
            Some(text) => {
                let start = console_start(from, text.len() as u64);
                let at = usize::try_from(start).unwrap_or(usize::MAX).min(text.len());
                Ok(console_chunk(vm, start, &text.as_bytes()[at..]))
            }
            None if self.table.get(vm).is_some() => Ok(console_chunk(vm, 0, &[])),
            None => Err(AgentError::UnknownVm(vm.clone())),
        }
    }

    fn accelerator(&self) -> plinth_proto::Accelerator {
        plinth_proto::Accelerator::Simulated
    }

    async fn bench(&self, vm: &VmName, _kernel: BenchKernel) -> Result<f64, String> {
        Err(format!(
            "{vm} is a simulated VM: it runs no kernel to measure"
        ))
    }

    async fn reach(&self, vm: &VmName, _address: Ipv4Addr) -> Reach {
        Reach::NotChecked {
            reason: match self.table.get(vm) {
                Some(_) => format!("{vm} is a simulated VM: it has no NIC to reach from"),
                None => AgentError::UnknownVm(vm.clone()).to_string(),
            },
        }
    }
}

/// A simulated live migration: the sender connects to the receiver's listener and names the
/// VM; the receiver runs it and acknowledges; the sender then forgets it. Real TCP between
/// the hosts' addresses, so a migration crosses the same network a QEMU one does.
async fn take_over(
    listener: &TcpListener,
    vm: &VmName,
    table: &VmTable,
    status: GuestStatus,
) -> std::io::Result<()> {
    let (stream, _) = listener.accept().await?;
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    BufReader::new(r).take(256).read_line(&mut line).await?;
    if line.trim_end() != vm.0 {
        return Err(std::io::Error::other(format!(
            "a sender offered {line:?}, not {vm}"
        )));
    }
    // Stopped or fenced meanwhile: it does not take the VM over.
    let mut taken = false;
    table.update(vm, true, |r| {
        if r.state == VmState::Incoming {
            r.state = VmState::Running;
            r.guest = Some(status);
            taken = true;
        }
    });
    if !taken {
        return Err(std::io::Error::other("the receiver was stopped"));
    }
    w.write_all(b"ok\n").await
}

/// What a simulated hand-over took.
struct Handed {
    /// From naming the VM to the receiver's acknowledgement: the simulated pause.
    pause: Duration,
    /// Bytes sent.
    bytes: u64,
}

/// Why a simulated hand-over failed: before the receiver was named the VM (nothing
/// changed), or after (the receiver may have taken it over).
enum HandOverError {
    NotSent(std::io::Error),
    Unacknowledged(std::io::Error),
}

/// The sender's side of [`take_over`].
async fn hand_over(vm: &VmName, to: SocketAddr) -> Result<Handed, HandOverError> {
    let stream = TcpStream::connect(to)
        .await
        .map_err(HandOverError::NotSent)?;
    let (r, mut w) = stream.into_split();
    let line = format!("{vm}\n");
    let paused = Instant::now();
    w.write_all(line.as_bytes())
        .await
        .map_err(HandOverError::Unacknowledged)?;
    let mut ack = String::new();
    BufReader::new(r)
        .take(16)
        .read_line(&mut ack)
        .await
        .map_err(HandOverError::Unacknowledged)?;
    if ack.trim_end() != "ok" {
        return Err(HandOverError::Unacknowledged(std::io::Error::other(
            "the receiver did not take it over",
        )));
    }
    Ok(Handed {
        pause: paused.elapsed(),
        bytes: line.len() as u64,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plinth_proto::guest::Bootstrap;

    fn spec() -> VmSpec {
        VmSpec {
            name: VmName("legacy-0".into()),
            vcpus: 2,
            memory_mib: 512,
            image: "plinth-node".into(),
            bootstrap: Bootstrap {
                node: "legacy-0".into(),
                cluster: "legacy".into(),
                kubernetes_version: String::new(),
                join_config: String::new(),
            },
            network: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_create_of_a_vm_the_pool_has_registers_it_rather_than_making_another() {
        let storage = tempfile::tempdir().expect("tempdir");
        let host = |dir: &tempfile::TempDir| {
            let capacity = Capacity {
                cpus: 8,
                memory_mib: 8192,
            };
            SimulatedHypervisor::new(Duration::from_millis(1), capacity)
                .with_storage(dir.path().to_owned())
        };
        let (a, b) = (host(&storage), host(&storage));
        a.create(&spec()).await.expect("made on a");
        b.create(&spec()).await.expect("a no-op on b");
        assert!(b.vms().is_empty(), "b made nothing");
        b.start(&VmName("legacy-0".into()))
            .await
            .expect("registered and started");
        assert_eq!(b.vms()[0].state, VmState::Running);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_simulated_vm_is_handed_over_by_tcp_and_a_receiver_nobody_sends_to_is_forgotten() {
        let storage = tempfile::tempdir().expect("tempdir");
        let host = || {
            let capacity = Capacity {
                cpus: 8,
                memory_mib: 8192,
            };
            SimulatedHypervisor::new(Duration::from_millis(1), capacity)
                .with_storage(storage.path().to_owned())
        };
        let (a, b) = (host(), host());
        let vm = VmName("legacy-0".into());
        a.create(&spec()).await.expect("made on a");
        a.start(&vm).await.expect("runs on a");
        let loopback = IpAddr::from([127, 0, 0, 1]);
        let soon = Instant::now() + Duration::from_millis(200);
        b.receive(&vm, loopback, soon).await.expect("listens");
        assert_eq!(b.vms()[0].state, VmState::Incoming);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(b.vms().is_empty(), "forgotten at its deadline");

        let later = Instant::now() + Duration::from_secs(30);
        let to = b.receive(&vm, loopback, later).await.expect("listens");
        let stats = a.send(&vm, to, later).await.expect("handed over");
        assert!(stats.transferred_bytes > 0);
        assert!(a.vms().is_empty(), "gone from a");
        b.start(&vm).await.expect("Ready on b");
        let on_b = &b.vms()[0];
        assert_eq!(on_b.state, VmState::Running);
        assert!(on_b.guest.as_ref().is_some_and(|g| g.ready));
        // Sent again, from where it no longer runs: refused.
        assert!(matches!(
            a.send(&vm, to, later).await,
            Err(AgentError::UnknownVm(_))
        ));
    }
}
