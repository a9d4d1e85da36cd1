//! What a host agent needs of a hypervisor; implemented by [`crate::QemuHypervisor`] and
//! [`crate::SimulatedHypervisor`].

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use plinth_proto::guest::BenchKernel;
use plinth_proto::network::Reach;
use plinth_proto::{
    Accelerator, CONSOLE_CHUNK_BYTES, Capacity, ConsoleChunk, MigrationStats, VmName, VmReport,
    VmSpec, VmState,
};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::AgentError;

/// Runs the VMs of one host.
pub trait Hypervisor: Send + Sync + 'static {
    /// Makes the VM's disk and seed without starting it; a no-op when this host or the
    /// shared storage already has the VM with this spec (a start registers it).
    fn create(&self, spec: &VmSpec) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Starts the VM and returns once its guest agent reports Ready.
    fn start(&self, vm: &VmName) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Stops the VM's process; its disks stay.
    fn stop(&self, vm: &VmName) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Stops the VM if it runs and deletes its disks.
    fn delete(&self, vm: &VmName) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Kills every VM at once (fencing).
    fn fence(&self) -> impl Future<Output = ()> + Send;
    /// Starts a paused receiver of `vm` (created on some host of the pool) listening on
    /// `listen`, and returns where it listens. The VM runs here once its sender switches
    /// over; a receiver that has not taken over by `deadline` ends and is forgotten.
    fn receive(
        &self,
        vm: &VmName,
        listen: IpAddr,
        deadline: Instant,
    ) -> impl Future<Output = Result<SocketAddr, AgentError>> + Send;
    /// Live-migrates the running `vm` to the receiver at `to`; returns once the receiver
    /// took over and the VM is gone from this host. When it fails (or `deadline` comes
    /// first, and it is cancelled) and the VM runs on here, the error is
    /// [`AgentError::NotMigrated`]; any other error leaves where it runs unknown.
    fn send(
        &self,
        vm: &VmName,
        to: SocketAddr,
        deadline: Instant,
    ) -> impl Future<Output = Result<MigrationStats, AgentError>> + Send;
    /// Every VM of the host.
    fn vms(&self) -> Vec<VmReport>;
    /// Whether any VM's process runs.
    fn any_running(&self) -> bool {
        self.vms().iter().any(|r| r.state == VmState::Running)
    }
    /// What the host can give to VMs.
    fn capacity(&self) -> Capacity;
    /// How its VMs run.
    fn accelerator(&self) -> Accelerator;
    /// Changes whenever a VM does.
    fn changes(&self) -> watch::Receiver<u64>;
    /// The VM's serial console from byte `from` of its current boot (see
    /// [`console_chunk`]).
    fn console(
        &self,
        vm: &VmName,
        from: u64,
    ) -> impl Future<Output = Result<ConsoleChunk, AgentError>> + Send;
    /// From the running `vm`, tries to reach the guest agent of the node at `address` on
    /// `vm`'s network (a connectivity check).
    fn reach(&self, vm: &VmName, address: Ipv4Addr) -> impl Future<Output = Reach> + Send;
    /// Runs overhead kernel `kernel` in the running `vm`'s guest: MiB per second, or why it
    /// did not run.
    fn bench(
        &self,
        vm: &VmName,
        kernel: BenchKernel,
    ) -> impl Future<Output = Result<f64, String>> + Send;
}

/// Where a console read of `from` starts in a console of `len` bytes: at `from`, or at 0
/// when the console is shorter (it began again: the VM was restarted).
pub(crate) fn console_start(from: u64, len: u64) -> u64 {
    if from > len { 0 } else { from }
}

/// The chunk of `bytes` read at `start`: at most [`CONSOLE_CHUNK_BYTES`] of them.
pub(crate) fn console_chunk(vm: &VmName, start: u64, bytes: &[u8]) -> ConsoleChunk {
    let bytes = &bytes[..bytes.len().min(CONSOLE_CHUNK_BYTES)];
    ConsoleChunk {
        vm: vm.clone(),
        from: start,
        text: String::from_utf8_lossy(bytes).into_owned(),
        next: start + bytes.len() as u64,
    }
}
