//! The messages between the control plane and a host agent.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::guest::{BenchKernel, Bootstrap, GuestStatus};
use crate::ids::{BootId, CommandId, Generation, HostName, VmName};
use crate::network::{Ipv4Net, NetworkOf, Reach};

/// The protocol version this build speaks; a frame of another version is refused.
pub const PROTOCOL_VERSION: u32 = 3;

/// One frame: the version, the shared token and the message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<T> {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub version: u32,
    /// The shared token (TLS and per-host credentials come later).
    pub token: String,
    /// The message.
    pub body: T,
}

/// From the control plane (or an operator's tool) to a host agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ToAgent {
    /// Carry out an action and answer with one [`Completion`].
    Command(Command),
    /// "I am here": resets the agent's self-fence timer; answered with a heartbeat.
    Heartbeat,
    /// Send the full inventory now.
    Resync,
    /// A fault of the simulated agent (`plinth agent --simulated` only).
    Admin(AdminRequest),
    /// Read a VM's serial console from byte `from` (an operator's `plinth logs`);
    /// answered with one [`FromAgent::Console`] or [`FromAgent::NoConsole`]. It is not
    /// contact from the control plane: it does not reset the self-fence timer.
    Console {
        /// The VM.
        vm: VmName,
        /// The offset to read from.
        from: u64,
    },
    /// From `vm`, try to reach the guest agent of whatever node holds `address` on `vm`'s
    /// network (an operator's connectivity check); answered with one
    /// [`FromAgent::Reach`]. Like a console read, it does not reset the self-fence timer.
    Reach {
        /// The VM the check starts from.
        vm: VmName,
        /// The address to reach.
        address: Ipv4Addr,
    },
    /// Run overhead kernel `kernel` in `vm`'s guest (`plinth calibrate`); answered with one
    /// [`FromAgent::Bench`]. Not contact either.
    Bench {
        /// The VM.
        vm: VmName,
        /// The kernel.
        kernel: BenchKernel,
    },
}

/// The most console bytes one [`FromAgent::Console`] carries.
pub const CONSOLE_CHUNK_BYTES: usize = 64 * 1024;

/// A command: an id unique per control plane, a deadline and an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Command {
    /// Echoed in the completion.
    pub id: CommandId,
    /// Wall-clock deadline in milliseconds since the Unix epoch: past it the agent stops
    /// working on the command and answers [`CommandError::TimedOut`].
    pub deadline_unix_ms: u64,
    /// What to do.
    pub action: Action,
}

/// What a command asks of a host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Make the VM's disk (a linked clone of the node image) and seed, without starting it.
    CreateVm(VmSpec),
    /// Start a created or stopped VM.
    StartVm {
        /// The VM.
        vm: VmName,
    },
    /// Stop a running VM (its process ends; disks are kept).
    StopVm {
        /// The VM.
        vm: VmName,
    },
    /// Stop the VM if it runs and delete its disks.
    DeleteVm {
        /// The VM.
        vm: VmName,
    },
    /// Kill every VM of the host at once (the host fences itself on request).
    Fence,
    /// Get ready to receive `vm` by live migration: start it paused, listening for its state
    /// on `listen` (this host's address, as the control plane reaches it), and answer
    /// [`Outcome::Listening`]. Its disks stay where they are, on the storage every host sees.
    /// A receiver that has not taken over the VM by the command's deadline ends.
    ReceiveVm {
        /// The VM, created on some host of the pool.
        vm: VmName,
        /// The address to listen on.
        listen: IpAddr,
    },
    /// Live-migrate the running `vm` to the receiver at `to` (the answer of a
    /// [`Action::ReceiveVm`]) and answer [`Outcome::Migrated`] once it is gone from this host.
    /// When the migration fails the VM runs on here, as before.
    SendVm {
        /// The VM.
        vm: VmName,
        /// The receiver.
        to: SocketAddr,
    },
}

impl Action {
    /// The VM it acts on; none for a fence, which acts on the whole host.
    #[must_use]
    pub fn vm(&self) -> Option<&VmName> {
        match self {
            Self::CreateVm(spec) => Some(&spec.name),
            Self::StartVm { vm }
            | Self::StopVm { vm }
            | Self::DeleteVm { vm }
            | Self::ReceiveVm { vm, .. }
            | Self::SendVm { vm, .. } => Some(vm),
            Self::Fence => None,
        }
    }
}

/// Its wire name (the `kind` tag) and its VM: `startVm node-1`.
impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tagged = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(tagged["kind"].as_str().unwrap_or("action"))?;
        match self.vm() {
            Some(vm) => write!(f, " {vm}"),
            None => Ok(()),
        }
    }
}

/// The VM a [`Action::CreateVm`] makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmSpec {
    /// Its name, unique in the pool.
    pub name: VmName,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// The node OS image it boots, by name (the Cluster's `osImage`): one of the images its
    /// host's agent was started with.
    pub image: String,
    /// What its cloud-init seed carries.
    pub bootstrap: Bootstrap,
    /// The network its one NIC joins; none: the VM has no NIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkOf>,
}

/// Sent by the simulated agent's fault interface: faults an operator injects in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "camelCase", deny_unknown_fields)]
pub enum AdminRequest {
    /// The host crashes: its VMs are lost and the agent stops answering until restored,
    /// with a new boot id.
    Kill,
    /// The host is cut off: its VMs keep running, but it neither hears nor is heard (its
    /// self-fence timer runs).
    CutOff,
    /// The host is reachable again (after a kill, as a new life).
    Restore,
}

/// From a host agent to the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum FromAgent {
    /// What the host runs: sent on connect, on [`ToAgent::Resync`] and whenever a VM changes.
    Inventory(Inventory),
    /// The host is alive; sent every heartbeat interval and in answer to one.
    Heartbeat(Heartbeat),
    /// The one answer to a command.
    Completion(Completion),
    /// The agent refused a frame (malformed, wrong version, wrong token); it closes the
    /// connection after this.
    Refused {
        /// Why, for the log.
        reason: String,
    },
    /// Bytes of a VM's serial console, the answer to [`ToAgent::Console`].
    Console(ConsoleChunk),
    /// The console asked for cannot be read (no such VM on this host).
    NoConsole {
        /// The VM.
        vm: VmName,
        /// Why.
        reason: String,
    },
    /// The answer to [`ToAgent::Bench`].
    Bench {
        /// The VM.
        vm: VmName,
        /// The kernel.
        kernel: BenchKernel,
        /// MiB per second, or why it did not run.
        result: BenchResult,
    },
    /// The answer to [`ToAgent::Reach`].
    Reach {
        /// The VM the check started from.
        vm: VmName,
        /// The address it tried.
        address: Ipv4Addr,
        /// What answered, or why nothing did (the VM is not here, has no network, …).
        reach: Reach,
    },
}

/// What an overhead kernel in a guest got through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase", deny_unknown_fields)]
pub enum BenchResult {
    /// It ran.
    Ran {
        /// MiB per second.
        mib_per_second: f64,
    },
    /// It did not run (no such VM here, a simulated VM, no answer).
    NotRun {
        /// Why.
        reason: String,
    },
}

/// Bytes of a VM's serial console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsoleChunk {
    /// The VM.
    pub vm: VmName,
    /// Where `text` starts: the offset asked for, or 0 when the console began again (the
    /// VM was restarted) since.
    pub from: u64,
    /// At most [`CONSOLE_CHUNK_BYTES`] of it, as UTF-8 (invalid bytes replaced).
    pub text: String,
    /// The offset to read from next.
    pub next: u64,
}

/// What a host is and runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inventory {
    /// The host.
    pub host: HostName,
    /// The host's current life.
    pub boot_id: BootId,
    /// What it can give to VMs.
    pub capacity: Capacity,
    /// How its VMs run.
    pub accelerator: Accelerator,
    /// Every VM the host has, by name.
    pub vms: Vec<VmReport>,
}

/// How a host's VMs run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Accelerator {
    /// QEMU on KVM: hardware virtualization.
    Kvm,
    /// QEMU's software emulation.
    Tcg,
    /// No VM runs: the simulated agent.
    Simulated,
}

/// A host's capacity for VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capacity {
    /// Logical CPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
}

/// One VM as its host sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VmReport {
    /// The VM.
    pub name: VmName,
    /// Raised by every change the agent makes to it.
    pub generation: Generation,
    /// Stopped, running, or receiving by live migration.
    pub state: VmState,
    /// The QEMU process while it runs (none for simulated VMs).
    pub pid: Option<u32>,
    /// What the guest agent last reported; `Some` with `ready` true is the VM's Ready.
    pub guest: Option<GuestStatus>,
    /// The address its NIC leased on its cluster's network, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Ipv4Net>,
}

/// A VM's lifecycle state on its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum VmState {
    /// Disks and seed exist; never started, or stopped.
    Stopped,
    /// Its process runs.
    Running,
    /// A process waits, paused, for the VM's state from another host ([`Action::ReceiveVm`]);
    /// the VM runs here once the migration switches over.
    Incoming,
}

/// The host is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Heartbeat {
    /// The host's current life: a heartbeat of an earlier life is ignored.
    pub boot_id: BootId,
}

/// The answer to one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Completion {
    /// The command's id.
    pub id: CommandId,
    /// Done, or why not.
    pub outcome: Outcome,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase", deny_unknown_fields)]
pub enum Outcome {
    /// Carried out.
    Done,
    /// A receiver listens: the answer to [`Action::ReceiveVm`].
    Listening {
        /// Where the sender sends the VM.
        addr: SocketAddr,
    },
    /// The VM left this host by live migration: the answer to [`Action::SendVm`].
    Migrated(MigrationStats),
    /// Not carried out, or not known to be.
    Failed {
        /// Why.
        error: CommandError,
    },
}

/// What a live migration took, as the hypervisor measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MigrationStats {
    /// From the start of the migration to the switch-over, ms.
    pub total_ms: u64,
    /// How long the VM was paused at the switch-over, ms.
    pub downtime_ms: u64,
    /// Bytes sent.
    pub transferred_bytes: u64,
}

impl std::fmt::Display for MigrationStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.2} s, paused {} ms, {:.1} MiB sent",
            self.total_ms as f64 / 1000.0,
            self.downtime_ms,
            self.transferred_bytes as f64 / f64::from(1u32 << 20)
        )
    }
}

/// Why a command failed, by kind, so the control plane can decide what follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum CommandError {
    /// The agent refused it without acting (unknown VM, a name taken, a bad spec).
    #[error("refused: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// The deadline passed before the command finished; its effect is unknown.
    #[error("deadline passed")]
    TimedOut,
    /// The agent acted but could not tell whether the action took effect.
    #[error("outcome unknown: {reason}")]
    OutcomeUnknown {
        /// What went wrong.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_reads_as_its_wire_name_and_vm() {
        let vm = VmName("n-1".into());
        assert_eq!(
            Action::StartVm { vm: vm.clone() }.to_string(),
            "startVm n-1"
        );
        assert_eq!(
            Action::SendVm {
                vm,
                to: "10.0.0.1:7000".parse().expect("address"),
            }
            .to_string(),
            "sendVm n-1"
        );
        assert_eq!(Action::Fence.to_string(), "fence");
    }
}
