//! HA restart: when a host fails, its VMs are restarted on the others by restart priority
//! (then name), respecting placement groups, rules and what is left of the admission
//! reserve (the policy's failures minus the hosts already failed), inside the failed
//! host's zone when the estate declares zones.

use plinth_model::Resources;
use plinth_model::policy::RuleKind;

use crate::admission::AdmissionPolicy;
use crate::error::PlacementError;
use crate::explain::Explanation;
use crate::hosts::{HostId, HostStatus};
use crate::state::PoolState;
use crate::vm::{VmId, VmSpec};

/// What HA did after a host failure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evacuation {
    /// VMs restarted, in restart order, with their new host.
    pub restarted: Vec<(VmId, HostId)>,
    /// Of those, the VMs restarted outside the failed host's zone because no host of the
    /// zone could take them: zone exceptions ([`RestartScope::outside`]).
    pub outside_zone: Vec<VmId>,
    /// Of those, the VMs restarted beside a member of their strict (or `atMost`) placement
    /// group because no host the group allows could take them: spread exceptions
    /// ([`RestartScope::beside_group`]).
    pub beside_group: Vec<VmId>,
    /// VMs left powered off (removed from the state), with why.
    pub stranded: Vec<(VmId, VmSpec, PlacementError)>,
}

/// Where HA may restart the VMs of a failed host.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestartScope<'a> {
    /// The hosts of the failed host's zone: its VMs restart on one of them. Empty: the
    /// pool is one zone.
    pub zone: &'a [HostId],
    /// VMs whose zone is not the failed host's (HA restarted them there outside their own
    /// earlier), by name, with their own zone's hosts: they restart in theirs.
    pub homes: &'a [(&'a str, &'a [HostId])],
    /// Whether a VM that no host of the zone can take restarts outside it (recorded as a
    /// zone exception) instead of staying down with the reason.
    pub outside: bool,
    /// Whether a VM that no host its placement group allows can take restarts beside a
    /// member of its group (recorded as a spread exception) instead of staying down with
    /// the reason: one more etcd member running beside another survives the failure of
    /// every host but that one, a member down survives none.
    pub beside_group: bool,
}

impl<'a> RestartScope<'a> {
    /// The scope of VM `vm`: inside its own zone.
    fn of(self, vm: &str) -> Self {
        match self.homes.iter().find(|(name, _)| *name == vm) {
            Some(&(_, zone)) => Self { zone, ..self },
            None => self,
        }
    }
}

/// How a restarted VM breaks a rule it normally keeps, if it does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exceptions {
    /// Outside its zone.
    pub outside_zone: bool,
    /// Beside a member of its placement group, past the group's limit.
    pub beside_group: bool,
}

impl PoolState {
    /// Marks `host` failed, brings dedicated failover hosts up, and restarts its VMs
    /// anywhere in the pool.
    pub fn fail_host(&mut self, host: HostId) -> Result<Evacuation, PlacementError> {
        self.fail_host_in(host, RestartScope::default())
    }

    /// [`PoolState::fail_host`], restarting the VMs inside `scope`.
    pub fn fail_host_in(
        &mut self,
        host: HostId,
        scope: RestartScope<'_>,
    ) -> Result<Evacuation, PlacementError> {
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
            let placed = self.admit(&entry.spec, &entry.footprint).and_then(|()| {
                self.restart_host(&entry.spec, &entry.footprint, scope.of(&entry.spec.name))
            });
            match placed {
                Ok((h, broken)) => {
                    entry.host = h;
                    self.attach(vm, entry);
                    out.restarted.push((vm, h));
                    if broken.outside_zone {
                        out.outside_zone.push(vm);
                    }
                    if broken.beside_group {
                        out.beside_group.push(vm);
                    }
                }
                Err(e) => out.stranded.push((vm, entry.spec, e)),
            }
        }
        Ok(out)
    }

    /// Places a VM that waited for room (a failed host's that no host could take, or one
    /// stopped for its host's maintenance) as HA restarts one: inside `scope` (its zone, and
    /// outside it or beside its group only as the scope allows), with the exceptions made.
    ///
    /// # Errors
    /// As [`PoolState::place`] when no host its rules and the scope allow has room.
    pub fn place_in(
        &mut self,
        spec: VmSpec,
        scope: RestartScope<'_>,
    ) -> Result<(VmId, HostId, Exceptions), PlacementError> {
        self.pool.check_vm(&spec)?;
        let footprint = self.pool.footprint(&spec);
        self.admit(&spec, &footprint)?;
        let (host, broken) = self.restart_host(&spec, &footprint, scope.of(&spec.name))?;
        let id = self.fresh_id()?;
        self.attach(
            id,
            crate::state::VmEntry {
                spec,
                footprint,
                host,
                reserved: false,
            },
        );
        Ok((id, host, broken))
    }

    /// Where a VM of a failed host restarts: where its rules allow ([`Self::zone_host`]),
    /// else, when the scope allows, beside a member of its placement group: the host that
    /// would take it if its group set no limit, with the fewest members of the group (a
    /// spread exception).
    fn restart_host(
        &self,
        spec: &VmSpec,
        footprint: &Resources,
        scope: RestartScope<'_>,
    ) -> Result<(HostId, Exceptions), PlacementError> {
        let kept = self.zone_host(spec, footprint, scope);
        let Some(g) = spec.group.filter(|_| scope.beside_group && kept.is_err()) else {
            return kept;
        };
        let unlimited = VmSpec {
            group: None,
            ..spec.clone()
        };
        let members = |h: HostId| self.groups.get(g.0, self.pool.domain(g, h));
        // Of `hosts`, the best that takes the VM among those with the fewest members.
        let beside = |hosts: &[HostId]| {
            let fits: Vec<HostId> = hosts
                .iter()
                .copied()
                .filter(|&h| self.reject(h, &unlimited, footprint, None).is_none())
                .collect();
            let fewest = fits.iter().map(|&h| members(h)).min()?;
            let least: Vec<HostId> = fits.into_iter().filter(|&h| members(h) == fewest).collect();
            self.best_among(&least, &unlimited, footprint, None)
        };
        let all: Vec<HostId> = (0..self.pool.hosts().len() as u32).map(HostId).collect();
        let zoned = !scope.zone.is_empty();
        if let Some(h) = beside(if zoned { scope.zone } else { &all }) {
            return Ok((
                h,
                Exceptions {
                    outside_zone: false,
                    beside_group: true,
                },
            ));
        }
        match (zoned && scope.outside).then(|| beside(&all)).flatten() {
            Some(h) => Ok((
                h,
                Exceptions {
                    outside_zone: true,
                    beside_group: true,
                },
            )),
            None => kept,
        }
    }

    /// Where a VM of a failed host restarts under its rules: the best host of its zone that
    /// takes it (of its rule's hosts there first), else, when the scope allows, the best one
    /// outside (a zone exception).
    fn zone_host(
        &self,
        spec: &VmSpec,
        footprint: &Resources,
        scope: RestartScope<'_>,
    ) -> Result<(HostId, Exceptions), PlacementError> {
        let kept = Exceptions::default();
        if scope.zone.is_empty() {
            return self.find_host(spec, footprint, None).map(|h| (h, kept));
        }
        let rule = spec.rule.map(|r| &self.pool.rules()[r.0 as usize]);
        let ruled: Vec<HostId> = rule.map_or_else(Vec::new, |r| {
            scope
                .zone
                .iter()
                .copied()
                .filter(|h| r.hosts.contains(h))
                .collect()
        });
        let in_zone = match rule {
            Some(r) if r.kind == RuleKind::Must => self.best_among(&ruled, spec, footprint, None),
            Some(_) => self
                .best_among(&ruled, spec, footprint, None)
                .or_else(|| self.best_among(scope.zone, spec, footprint, None)),
            None => self.best_among(scope.zone, spec, footprint, None),
        };
        if let Some(h) = in_zone {
            return Ok((h, kept));
        }
        if scope.outside {
            return self.find_host(spec, footprint, None).map(|h| {
                (
                    h,
                    Exceptions {
                        outside_zone: true,
                        ..kept
                    },
                )
            });
        }
        let mut explanation = Explanation::new("hosts of its zone", scope.zone.len());
        for &h in scope.zone {
            match self.reject(h, spec, footprint, None) {
                Some(reason) => explanation.reject(reason.to_string()),
                None => explanation.reject("not allowed by its VM-host rule"),
            }
        }
        Err(PlacementError::Unplaceable {
            vm: spec.name.clone(),
            explanation,
        })
    }
}
