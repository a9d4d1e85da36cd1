//! `plinth-agent`: Plinth's host agent. It runs the node VMs of one host — as QEMU processes
//! driven over QMP ([`QemuHypervisor`]) or as simulated VMs ([`SimulatedHypervisor`]) — builds
//! the node image ([`image`]), and speaks plinth-proto to the control plane ([`serve`]):
//! commands within their deadlines, inventories with VM generations and the host's boot id,
//! heartbeats, and self-fencing after `selfFenceTimeout` without contact.
//!
//! It must not decide anything the control plane decides: it never places, restarts or moves
//! a VM on its own; the only thing it does unasked is kill its VMs when it cannot be heard.

mod datastore;
mod error;
mod hypervisor;
pub mod image;
mod network;
mod qemu;
mod qmp;
mod server;
mod sim;
mod table;
mod tool;

pub use error::AgentError;
pub use hypervisor::Hypervisor;
pub use network::{NODE_SPACE, interface_of};
pub use qemu::{Accel, KVM_PROBE_TIMEOUT, QemuConfig, QemuHypervisor, detect_accel};
pub use server::{AgentConfig, boot_id, serve};
pub use sim::SimulatedHypervisor;
