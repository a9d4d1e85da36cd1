//! The control plane's settings, taken from the Environment.

use plinth_model::Estate;

/// Host failure detection and fencing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HaConfig {
    /// Whether failed hosts' VMs are restarted elsewhere.
    pub enabled: bool,
    /// Silence (since the last heartbeat) after which a host is declared failed, ms.
    pub detection_timeout: u64,
    /// Wait before a failed fence is tried again, ms.
    pub fence_retry: u64,
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
}

impl ControlConfig {
    /// The virtualized Environment's settings.
    pub fn virtualized(estate: &Estate) -> Self {
        let env = &estate.virtualized.spec;
        Self {
            ha: HaConfig {
                enabled: env.ha.enabled,
                detection_timeout: env.ha.failure_detection_timeout.millis(),
                fence_retry: env.ha.self_fence_timeout.millis().max(1),
            },
            drs: DrsConfig {
                enabled: env.drs.enabled,
                threshold: env.drs.threshold,
                interval: env.drs.interval.millis().max(1),
                max_moves: env.drs.max_moves_per_interval,
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
