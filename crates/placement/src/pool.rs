//! The immutable description of a virtualization pool: hosts, racks, placement groups,
//! VM→host rules and the environment's settings.

use plinth_model::Resources;
use plinth_model::policy::{PlacementStrategy, Scope};

use crate::admission::AdmissionPolicy;
use crate::error::PlacementError;
use crate::hosts::{HostId, HostSpec, Overcommit};
use crate::vm::{Group, GroupId, HostRuleSpec, RuleId, VmSpec};

/// The environment's placement settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// CPU and memory overcommit.
    pub overcommit: Overcommit,
    /// Hypervisor overhead added to every VM's footprint.
    pub vm_overhead: Resources,
    /// Spread (least allocated) or pack (most allocated).
    pub strategy: PlacementStrategy,
    /// HA admission control.
    pub admission: AdmissionPolicy,
}

/// A validated pool. Hosts keep the caller's indices; ties break by host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    hosts: Vec<HostSpec>,
    racks: Vec<String>,
    groups: Vec<Group>,
    rules: Vec<HostRuleSpec>,
    config: PoolConfig,
    /// Host → its position in name order.
    rank: Vec<u32>,
    /// Part-wise largest host capacity.
    max_capacity: Resources,
}

impl Pool {
    /// Validates and builds a pool: rack, host and group references must be in range, host
    /// names unique, `atMost` limits at least 1, failover hosts real hosts.
    pub fn new(
        hosts: Vec<HostSpec>,
        racks: Vec<String>,
        groups: Vec<Group>,
        mut rules: Vec<HostRuleSpec>,
        config: PoolConfig,
    ) -> Result<Self, PlacementError> {
        let invalid = |reason: String| PlacementError::Invalid { reason };
        if u32::try_from(hosts.len()).is_err() {
            return Err(invalid(format!(
                "{} hosts is more than placement handles",
                hosts.len()
            )));
        }
        for h in &hosts {
            if h.rack.0 as usize >= racks.len() {
                return Err(invalid(format!(
                    "host {} is in rack #{}, but there are {} racks",
                    h.name,
                    h.rack.0,
                    racks.len()
                )));
            }
        }
        let mut order: Vec<u32> = (0..hosts.len() as u32).collect();
        order.sort_by(|a, b| hosts[*a as usize].name.cmp(&hosts[*b as usize].name));
        if let Some(w) = order
            .windows(2)
            .find(|w| hosts[w[0] as usize].name == hosts[w[1] as usize].name)
        {
            return Err(invalid(format!(
                "host name {} is used twice",
                hosts[w[0] as usize].name
            )));
        }
        let mut rank = vec![0; hosts.len()];
        for (r, h) in order.iter().enumerate() {
            rank[*h as usize] = r as u32;
        }
        for rule in &mut rules {
            rule.hosts.sort();
            rule.hosts.dedup();
            if let Some(h) = rule.hosts.iter().find(|h| h.index() >= hosts.len()) {
                return Err(invalid(format!(
                    "rule {} names host #{}, but there are {} hosts",
                    rule.name,
                    h.0,
                    hosts.len()
                )));
            }
        }
        if let AdmissionPolicy::FailoverHosts { hosts: spares } = &config.admission
            && let Some(h) = spares.iter().find(|h| h.index() >= hosts.len())
        {
            return Err(invalid(format!("failover host #{} does not exist", h.0)));
        }
        let max_capacity = hosts.iter().fold(Resources::ZERO, |acc, h| {
            crate::hosts::max_each(&acc, &h.capacity)
        });
        Ok(Self {
            hosts,
            racks,
            groups,
            rules,
            config,
            rank,
            max_capacity,
        })
    }

    /// The hosts, indexed by [`HostId`].
    pub fn hosts(&self) -> &[HostSpec] {
        &self.hosts
    }

    /// One host.
    pub fn host(&self, id: HostId) -> &HostSpec {
        &self.hosts[id.index()]
    }

    /// Rack names, indexed by [`RackId`](crate::RackId).
    pub fn racks(&self) -> &[String] {
        &self.racks
    }

    /// Placement groups, indexed by [`GroupId`].
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// VM→host rules, indexed by [`RuleId`].
    pub fn rules(&self) -> &[HostRuleSpec] {
        &self.rules
    }

    /// The environment's settings.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// What `vm` takes from a host after overcommit and overhead.
    pub fn footprint(&self, vm: &VmSpec) -> Resources {
        self.config
            .overcommit
            .footprint(&vm.demand, &self.config.vm_overhead)
    }

    /// Part-wise largest host capacity.
    pub fn max_capacity(&self) -> Resources {
        self.max_capacity
    }

    /// The host's position in name order (the tie-breaker).
    pub fn rank(&self, host: HostId) -> u32 {
        self.rank[host.index()]
    }

    /// The failure domain of `host` for `group`: the host itself or its rack.
    pub(crate) fn domain(&self, group: GroupId, host: HostId) -> u32 {
        match self.groups[group.0 as usize].policy.spread_over {
            Scope::Host => host.0,
            Scope::Rack => self.hosts[host.index()].rack.0,
        }
    }

    /// How many failure domains `group` spreads over: the pool's hosts or its racks.
    pub(crate) fn domain_count(&self, group: GroupId) -> u32 {
        let n = match self.groups[group.0 as usize].policy.spread_over {
            Scope::Host => self.hosts.len(),
            Scope::Rack => self.racks.len(),
        };
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Checks that a VM's group and rule exist.
    pub(crate) fn check_vm(&self, vm: &VmSpec) -> Result<(), PlacementError> {
        if let Some(GroupId(g)) = vm.group
            && g as usize >= self.groups.len()
        {
            return Err(PlacementError::Invalid {
                reason: format!("VM {} is in group #{g}, which does not exist", vm.name),
            });
        }
        if let Some(RuleId(r)) = vm.rule
            && r as usize >= self.rules.len()
        {
            return Err(PlacementError::Invalid {
                reason: format!("VM {} has rule #{r}, which does not exist", vm.name),
            });
        }
        Ok(())
    }
}
