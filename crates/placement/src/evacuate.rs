//! HA restart: when a host fails, its VMs are restarted on the others by restart priority
//! (then name), respecting placement groups, rules and what is left of the admission
//! reserve (the policy's failures minus the hosts already failed).

use crate::admission::AdmissionPolicy;
use crate::error::PlacementError;
use crate::hosts::{HostId, HostStatus};
use crate::state::PoolState;
use crate::vm::{VmId, VmSpec};

/// What HA did after a host failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evacuation {
    /// VMs restarted, in restart order, with their new host.
    pub restarted: Vec<(VmId, HostId)>,
    /// VMs left powered off (removed from the state), with why.
    pub stranded: Vec<(VmId, VmSpec, PlacementError)>,
}

impl PoolState {
    /// Marks `host` failed, brings dedicated failover hosts up, and restarts its VMs.
    pub fn fail_host(&mut self, host: HostId) -> Result<Evacuation, PlacementError> {
        self.check_host(host)?;
        if self.status[host.index()] == HostStatus::Failed {
            return Ok(Evacuation::default());
        }
        self.status[host.index()] = HostStatus::Failed;
        self.failed += 1;
        self.refresh(host);
        if let AdmissionPolicy::FailoverHosts { hosts } = &self.pool.config().admission {
            for h in hosts.clone() {
                if self.status[h.index()] == HostStatus::Standby {
                    self.status[h.index()] = HostStatus::Up;
                    self.note_room(h);
                    self.refresh(h);
                }
            }
        }
        self.recount_up();

        let mut victims: Vec<_> = self
            .vms_on(host)
            .into_iter()
            .filter_map(|v| self.detach(v).map(|e| (v, e)))
            .collect();
        for (_, e) in &victims {
            self.note_left(host, e.spec.group);
        }
        victims.sort_by(|(va, a), (vb, b)| {
            b.spec
                .restart_priority
                .cmp(&a.spec.restart_priority)
                .then_with(|| a.spec.name.cmp(&b.spec.name))
                .then(va.cmp(vb))
        });
        let mut out = Evacuation::default();
        for (vm, mut entry) in victims {
            if entry.spec.restart_priority == crate::vm::RestartPriority::Disabled {
                let name = entry.spec.name.clone();
                out.stranded
                    .push((vm, entry.spec, PlacementError::RestartDisabled { vm: name }));
                continue;
            }
            let placed = self
                .admit(&entry.spec, &entry.footprint)
                .and_then(|()| self.find_host(&entry.spec, &entry.footprint, None));
            match placed {
                Ok(h) => {
                    entry.host = h;
                    self.attach(vm, entry);
                    out.restarted.push((vm, h));
                }
                Err(e) => out.stranded.push((vm, entry.spec, e)),
            }
        }
        Ok(out)
    }
}
