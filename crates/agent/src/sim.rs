//! Simulated VMs: the same protocol and lifecycle with no QEMU, and boot times from the
//! Environment, so the control plane and its tests can run many hosts cheaply.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use plinth_proto::guest::{GuestStatus, UserData, checksum};
use plinth_proto::{Capacity, ConsoleChunk, VmName, VmReport, VmSpec, VmState};
use tokio::sync::watch;

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
    consoles: Mutex<BTreeMap<VmName, String>>,
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
            consoles: Mutex::new(BTreeMap::new()),
        }
    }

    /// Writes a line to `vm`'s simulated console; `fresh` begins a new boot's console.
    fn console_line(&self, vm: &VmName, fresh: bool, line: &str) {
        let mut consoles = self.consoles.lock().unwrap_or_else(PoisonError::into_inner);
        let console = consoles.entry(vm.clone()).or_default();
        if fresh {
            console.clear();
        }
        console.push_str(line);
        console.push('\n');
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
        let record = self.record(vm).await?;
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
            bootstrap: Bootstrap {
                node: "legacy-0".into(),
                cluster: "legacy".into(),
                kubernetes_version: String::new(),
                join_config: String::new(),
            },
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
}
