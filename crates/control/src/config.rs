//! The control plane's settings, taken from the Environment.

use plinth_model::Estate;

use crate::command::CommandKind;

/// Host failure detection and fencing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HaConfig {
    /// Whether failed hosts' VMs are restarted elsewhere.
    pub enabled: bool,
    /// Silence (since the last heartbeat) after which a host is declared failed, ms.
    pub detection_timeout: u64,
    /// Wait before a failed fence is tried again, ms.
    pub fence_retry: u64,
    /// Interval between a host's heartbeats, ms: its agent may have had contact up to
    /// this long after the last heartbeat the control plane heard.
    pub heartbeat_interval: u64,
    /// Silence after which a host's own agent kills its VMs (its watchdog), ms.
    pub self_fence_timeout: u64,
    /// Added to `self_fence_timeout` before a silent, unfenced host's VMs count as dead:
    /// the agent's own detection interval and clock drift, ms.
    pub self_fence_margin: u64,
    /// Whether a VM no host of its zone can take restarts outside it (a zone exception)
    /// rather than waiting down; only with declared zones ([`crate::Control::with_zones`]).
    pub restart_outside_zone: bool,
    /// Whether a VM no host its strict placement group allows can take restarts beside a
    /// member of its group (a spread exception) rather than waiting down.
    pub restart_beside_group: bool,
}

impl HaConfig {
    /// When the VMs of a host last heard at `last_heard` are dead even without a fence:
    /// its agent, whose last contact was at most one heartbeat interval later, has killed
    /// them by then.
    pub fn known_dead_at(&self, last_heard: crate::Time) -> crate::Time {
        last_heard
            + self
                .heartbeat_interval
                .saturating_add(self.self_fence_timeout)
                .saturating_add(self.self_fence_margin)
    }
}

/// How long the control plane waits for each kind of command before it times it out
/// ([`crate::CommandError::TimedOut`]). Each deadline is twice the expected duration
/// from the Environment's timings plus [`Deadlines::SLACK_MS`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deadlines {
    /// VM boot to a Ready node, ms.
    pub vm_boot: u64,
    /// VM clone from its template, ms.
    pub vm_clone: u64,
    /// A fence: a power-off through the BMC, or the host's agent killing its VMs
    /// (`ha.fencing`), ms.
    pub fence: u64,
    /// Host or server reboot (maintenance), ms.
    pub reboot: u64,
    /// OS install on a server, ms.
    pub install: u64,
    /// Reimage of a server, ms.
    pub reimage: u64,
    /// Live-migration bandwidth, Gbit/s.
    pub migration_gbps: f64,
    /// Memory dirtied per unit of bandwidth during pre-copy (0..1).
    pub dirty_rate: f64,
    /// The switch-over that ends a live migration, ms.
    pub switchover: u64,
}

impl Deadlines {
    /// Added to every deadline, ms: an API round trip and the driver's own latency.
    pub const SLACK_MS: u64 = 30_000;
    /// A drain evicts pods that may wait for disruption budgets; Kubernetes sets it no
    /// deadline, the control plane gives it an hour before it calls it failed.
    pub const DRAIN_MS: u64 = 3_600_000;
    /// A migration whose pre-copy cannot converge is given this long, ms.
    pub const NO_CONVERGENCE_MS: u64 = 600_000;

    /// The deadline of `kind`, ms after it was issued; `memory_bytes` is the VM's memory
    /// for a migration.
    pub fn of(&self, kind: &CommandKind, memory_bytes: u64) -> u64 {
        let expected = match kind {
            CommandKind::StartVm { .. } => self.vm_boot,
            CommandKind::CreateVm { .. } => self.vm_clone.saturating_add(self.vm_boot),
            CommandKind::MigrateVm { .. } => self.migration(memory_bytes),
            CommandKind::FenceHost { .. } => self.fence,
            CommandKind::MaintainHost { .. } => self.reboot,
            CommandKind::ProvisionServer { .. } => self.install,
            CommandKind::ReimageServer { .. } => self.reimage,
            CommandKind::Drain { .. } => return Self::DRAIN_MS,
            CommandKind::StopVm { .. }
            | CommandKind::DeleteVm { .. }
            | CommandKind::Cordon { .. }
            | CommandKind::Uncordon { .. }
            | CommandKind::LabelNode { .. }
            | CommandKind::OutOfService { .. }
            | CommandKind::InService { .. }
            | CommandKind::RemoveNode { .. }
            | CommandKind::ReportInventory { .. } => 0,
        };
        expected.saturating_mul(2).saturating_add(Self::SLACK_MS)
    }

    /// Expected time of a live migration of `memory_bytes` at this bandwidth: the pre-copy
    /// plus the switch-over. The simulator's migrations take this long, and the dry runs
    /// predict with it.
    pub fn expected_migration(&self, memory_bytes: u64) -> u64 {
        self.migration(memory_bytes).saturating_add(self.switchover)
    }

    /// Whether a live migration's pre-copy converges at all (memory is dirtied slower than
    /// it is sent).
    pub fn migration_converges(&self) -> bool {
        self.dirty_rate < 1.0
    }

    /// Expected pre-copy time of `memory_bytes`: M/B × (1 + d + d² + …) = M/B / (1 − d).
    fn migration(&self, memory_bytes: u64) -> u64 {
        if self.dirty_rate >= 1.0 {
            return Self::NO_CONVERGENCE_MS;
        }
        let bits_per_ms = self.migration_gbps.max(0.001) * 1e6;
        (memory_bytes as f64 * 8.0 / bits_per_ms / (1.0 - self.dirty_rate)) as u64
    }
}

/// DRS settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DrsConfig {
    /// Whether DRS runs.
    pub enabled: bool,
    /// Standard deviation of per-host CPU allocation / capacity above which DRS moves VMs.
    pub threshold: f64,
    /// Time between DRS passes, ms.
    pub interval: u64,
    /// Moves per pass at most.
    pub max_moves: u32,
}

/// Everything the control plane is configured with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ControlConfig {
    /// HA.
    pub ha: HaConfig,
    /// DRS (ignored on bare metal).
    pub drs: DrsConfig,
    /// Command deadlines.
    pub deadlines: Deadlines,
}

impl ControlConfig {
    /// The virtualized Environment's settings.
    pub fn virtualized(estate: &Estate) -> Self {
        let env = &estate.virtualized.spec;
        let bm = &estate.bare_metal.spec;
        Self {
            ha: HaConfig {
                enabled: env.ha.enabled,
                detection_timeout: env.ha.failure_detection_timeout.millis(),
                fence_retry: env.ha.self_fence_timeout.millis().max(1),
                heartbeat_interval: env.ha.heartbeat_interval.millis(),
                self_fence_timeout: env.ha.self_fence_timeout.millis(),
                self_fence_margin: env.ha.self_fence_margin.millis(),
                restart_outside_zone: env.ha.restart_outside_zone,
                restart_beside_group: env.ha.restart_beside_group,
            },
            drs: DrsConfig {
                enabled: env.drs.enabled,
                threshold: env.drs.threshold,
                interval: env.drs.interval.millis().max(1),
                max_moves: env.drs.max_moves_per_interval,
            },
            deadlines: Deadlines {
                vm_boot: env.timings.vm_boot.millis(),
                vm_clone: env.timings.vm_clone.millis(),
                fence: env.ha.fence_latency.millis(),
                reboot: bm.reboot.millis(),
                install: bm.os_install.millis(),
                reimage: bm.reimage.millis(),
                migration_gbps: env.timings.migration_gbps,
                dirty_rate: env.timings.dirty_rate,
                switchover: env.timings.migration_switchover.millis(),
            },
        }
    }

    /// The bare-metal settings: the same detection timeout (the BMC or node agent heartbeats
    /// like a hypervisor host), no DRS.
    pub fn bare_metal(estate: &Estate) -> Self {
        let mut c = Self::virtualized(estate);
        c.drs.enabled = false;
        c
    }
}
