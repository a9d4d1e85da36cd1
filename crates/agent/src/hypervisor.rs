//! What a host agent needs of a hypervisor; implemented by [`crate::QemuHypervisor`] and
//! [`crate::SimulatedHypervisor`].

use std::future::Future;

use plinth_proto::{Capacity, VmName, VmReport, VmSpec, VmState};
use tokio::sync::watch;

use crate::error::AgentError;

/// Runs the VMs of one host.
pub trait Hypervisor: Send + Sync + 'static {
    /// Makes the VM's disk and seed without starting it.
    fn create(&self, spec: &VmSpec) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Starts the VM and returns once its guest agent reports Ready.
    fn start(&self, vm: &VmName) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Stops the VM's process; its disks stay.
    fn stop(&self, vm: &VmName) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Stops the VM if it runs and deletes its disks.
    fn delete(&self, vm: &VmName) -> impl Future<Output = Result<(), AgentError>> + Send;
    /// Kills every VM at once (fencing).
    fn fence(&self) -> impl Future<Output = ()> + Send;
    /// Every VM of the host.
    fn vms(&self) -> Vec<VmReport>;
    /// Whether any VM's process runs.
    fn any_running(&self) -> bool {
        self.vms().iter().any(|r| r.state == VmState::Running)
    }
    /// What the host can give to VMs.
    fn capacity(&self) -> Capacity;
    /// Changes whenever a VM does.
    fn changes(&self) -> watch::Receiver<u64>;
}
