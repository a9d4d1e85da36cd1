//! Choosing a host for one VM: hard filters (status, must rule, capacity, group limits),
//! then preferences (soft group, should rule), then the strategy's order; and the
//! per-host explanation when nothing passes.

use std::fmt;

use plinth_model::Resources;
use plinth_model::policy::{RuleKind, Scope, SpreadMode};

use crate::error::PlacementError;
use crate::explain::Explanation;
use crate::hosts::{HostId, HostStatus, tight_floor};
use crate::state::PoolState;
use crate::vm::{GroupId, VmSpec};

/// Why one host cannot take one VM (the first hard filter that rejects it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason<'a> {
    Status(HostStatus),
    AlreadyThere,
    Cordoned,
    NotInRule(&'a str),
    Cpu,
    Memory,
    Disk,
    GroupFull {
        group: &'a str,
        scope: Scope,
        limit: u32,
    },
}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(HostStatus::Failed) => f.write_str("host failed"),
            Self::Status(HostStatus::Maintenance) => f.write_str("host in maintenance"),
            Self::Status(HostStatus::Standby) => f.write_str("dedicated failover host"),
            Self::Status(HostStatus::Up) => f.write_str("host up"),
            Self::AlreadyThere => f.write_str("VM already on host"),
            Self::Cordoned => f.write_str("host cordoned: being emptied or not heard from"),
            Self::NotInRule(rule) => write!(f, "not in must rule {rule}"),
            Self::Cpu => f.write_str("insufficient cpu"),
            Self::Memory => f.write_str("insufficient memory"),
            Self::Disk => f.write_str("insufficient disk"),
            Self::GroupFull {
                group,
                scope,
                limit,
            } => {
                let scope = match scope {
                    Scope::Host => "host",
                    Scope::Rack => "rack",
                };
                if *limit == 1 {
                    write!(f, "placement group {group} already on {scope}")
                } else {
                    write!(f, "placement group {group} has {limit} on {scope}")
                }
            }
        }
    }
}

impl PoolState {
    /// The host `spec` (of `footprint`) goes to, or why none can take it.
    pub(crate) fn find_host(
        &self,
        spec: &VmSpec,
        footprint: &Resources,
        exclude: Option<HostId>,
    ) -> Result<HostId, PlacementError> {
        let rule = spec.rule.map(|r| &self.pool.rules()[r.0 as usize]);
        let found = match rule {
            Some(rule) if rule.kind == RuleKind::Must => {
                self.best_among(&rule.hosts, spec, footprint, exclude)
            }
            Some(rule) => self
                .best_among(&rule.hosts, spec, footprint, exclude)
                .or_else(|| self.best_indexed(spec, footprint, exclude)),
            None => self.best_indexed(spec, footprint, exclude),
        };
        found.ok_or_else(|| PlacementError::Unplaceable {
            vm: spec.name.clone(),
            explanation: self.explain(spec, footprint, exclude),
        })
    }

    /// The first hard filter that rejects `host` for `spec` as a choice of where to put
    /// it, if any: a cordoned host is never chosen.
    pub(crate) fn reject(
        &self,
        host: HostId,
        spec: &VmSpec,
        footprint: &Resources,
        exclude: Option<HostId>,
    ) -> Option<Reason<'_>> {
        if self.cordoned[host.index()] && self.status[host.index()] == HostStatus::Up {
            return Some(Reason::Cordoned);
        }
        self.admits(host, spec, footprint, exclude)
    }

    /// The first hard filter that rejects `host` for `spec`, cordons aside: what an
    /// explicit move to `host` must pass (a move put back where the VM still runs goes
    /// onto a cordoned host).
    pub(crate) fn admits(
        &self,
        host: HostId,
        spec: &VmSpec,
        footprint: &Resources,
        exclude: Option<HostId>,
    ) -> Option<Reason<'_>> {
        let status = self.status[host.index()];
        if status != HostStatus::Up {
            return Some(Reason::Status(status));
        }
        if exclude == Some(host) {
            return Some(Reason::AlreadyThere);
        }
        if let Some(r) = spec.rule {
            let rule = &self.pool.rules()[r.0 as usize];
            if rule.kind == RuleKind::Must && rule.hosts.binary_search(&host).is_err() {
                return Some(Reason::NotInRule(&rule.name));
            }
        }
        let cap = &self.pool.host(host).capacity;
        let after = self.used[host.index()] + *footprint;
        if after.cpu_millis > cap.cpu_millis {
            return Some(Reason::Cpu);
        }
        if after.memory_bytes > cap.memory_bytes {
            return Some(Reason::Memory);
        }
        if after.disk_bytes > cap.disk_bytes {
            return Some(Reason::Disk);
        }
        if let Some(g) = spec.group {
            let group = &self.pool.groups()[g.0 as usize];
            if let Some(limit) = group.policy.hard_limit()
                && self.groups.get(g.0, self.pool.domain(g, host)) >= limit
            {
                return Some(Reason::GroupFull {
                    group: &group.name,
                    scope: group.policy.spread_over,
                    limit,
                });
            }
        }
        None
    }

    /// Every host's reason, aggregated.
    pub(crate) fn explain(
        &self,
        spec: &VmSpec,
        footprint: &Resources,
        exclude: Option<HostId>,
    ) -> Explanation {
        let mut e = Explanation::new("hosts", self.pool.hosts().len());
        for h in 0..self.pool.hosts().len() as u32 {
            if let Some(reason) = self.reject(HostId(h), spec, footprint, exclude) {
                e.reject(reason.to_string());
            }
        }
        e
    }

    fn soft_group(&self, spec: &VmSpec) -> Option<GroupId> {
        spec.group
            .filter(|g| self.pool.groups()[g.0 as usize].policy.mode == SpreadMode::Soft)
    }

    fn members_near(&self, group: Option<GroupId>, host: HostId) -> u32 {
        group.map_or(0, |g| self.groups.get(g.0, self.pool.domain(g, host)))
    }

    /// Best of a listed set of hosts: fewest soft-group members nearby, then strategy order.
    pub(crate) fn best_among(
        &self,
        hosts: &[HostId],
        spec: &VmSpec,
        footprint: &Resources,
        exclude: Option<HostId>,
    ) -> Option<HostId> {
        let soft = self.soft_group(spec);
        let mut best: Option<(u32, (u64, u32), HostId)> = None;
        for &h in hosts {
            if self.reject(h, spec, footprint, exclude).is_some() {
                continue;
            }
            let Some(key) = self.index.key(h.0) else {
                continue;
            };
            let near = self.members_near(soft, h);
            let better = match best {
                None => true,
                Some((bn, bk, _)) => near < bn || (near == bn && self.index.prefers(key, bk)),
            };
            if better {
                best = Some((near, key, h));
            }
        }
        best.map(|(_, _, h)| h)
    }

    /// Best host in strategy order from the index (pack starts at the lowest tight score
    /// that could fit); a soft group first looks for a domain with the fewest members of
    /// any (none, until every domain has one), then for the one with the fewest among the
    /// hosts that pass.
    fn best_indexed(
        &self,
        spec: &VmSpec,
        footprint: &Resources,
        exclude: Option<HostId>,
    ) -> Option<HostId> {
        let floor = tight_floor(footprint, &self.pool.max_capacity());
        let soft = self.soft_group(spec);
        // No host does better than this: the first that reaches it is the answer.
        let least = soft.map_or(0, |g| self.groups.fewest(g.0));
        let mut fallback: Option<(u32, HostId)> = None;
        for h in self.index.walk(floor).map(HostId) {
            if self.reject(h, spec, footprint, exclude).is_some() {
                continue;
            }
            let near = self.members_near(soft, h);
            if near <= least {
                return Some(h);
            }
            if fallback.is_none_or(|(n, _)| near < n) {
                fallback = Some((near, h));
            }
        }
        fallback.map(|(_, h)| h)
    }
}
