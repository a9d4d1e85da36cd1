//! The placement state of one pool and its incremental operations: place one VM, remove
//! one, change a host's status. Deterministic: the same calls give the same state.

use plinth_model::Resources;
use plinth_model::policy::{PlacementStrategy, Scope};

use crate::admission::{AdmissionPolicy, AdmissionTracker, SlotReport, UpHosts, slot_report};
use crate::error::PlacementError;
use crate::explain::Explanation;
use crate::groups::GroupCounts;
use crate::hosts::{HostId, HostStatus, free_score, tight_score};
use crate::index::FreeIndex;
use crate::pool::Pool;
use crate::vm::{GroupId, VmId, VmSpec};

/// A VM the state holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VmEntry {
    pub(crate) spec: VmSpec,
    pub(crate) footprint: Resources,
    pub(crate) host: HostId,
    /// Held by an open reservation, not yet committed.
    pub(crate) reserved: bool,
}

/// Which VMs run where on a [`Pool`], with the counters that make each decision cheap: a
/// host index ordered by free capacity, members per group and domain, admission totals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolState {
    pub(crate) pool: Pool,
    pub(crate) status: Vec<HostStatus>,
    /// Hosts up that take no new VM (being emptied, or not heard from): what runs there
    /// stays, nothing is placed or moved there. See [`PoolState::cordon`].
    pub(crate) cordoned: Vec<bool>,
    pub(crate) used: Vec<Resources>,
    pub(crate) vms: Vec<Option<VmEntry>>,
    /// The ids of the VMs on each host, ascending (kept by `attach` and `detach`).
    pub(crate) on_host: Vec<Vec<u32>>,
    pub(crate) index: FreeIndex,
    pub(crate) groups: GroupCounts,
    pub(crate) admission: AdmissionTracker,
    pub(crate) up_count: u32,
    pub(crate) up_capacity: Resources,
    pub(crate) up_version: u64,
    pub(crate) failed: u32,
    pub(crate) reservations: std::collections::BTreeMap<u64, Vec<VmId>>,
    pub(crate) next_reservation: u64,
    /// Ids of removed VMs, reused by [`PoolState::place`] (last removed first), so a pool
    /// whose VMs are replaced over and over (rolling upgrades) does not grow.
    pub(crate) free_ids: Vec<u32>,
    /// Counts the times room appeared on a host: a VM removed from it or migrated off it,
    /// a reservation on it aborted, the host coming up. See [`PoolState::room_stamp`].
    pub(crate) rooms: u64,
    /// For each host, the value of `rooms` when room last appeared on it (0: never).
    pub(crate) room_at: Vec<u64>,
}

impl PoolState {
    /// An empty pool: every host up, except dedicated failover hosts, which stand by.
    pub fn new(pool: Pool) -> Self {
        let n = pool.hosts().len();
        let mut status = vec![HostStatus::Up; n];
        if let AdmissionPolicy::FailoverHosts { hosts } = &pool.config().admission {
            for h in hosts {
                status[h.index()] = HostStatus::Standby;
            }
        }
        let spread = pool.config().strategy == PlacementStrategy::Spread;
        let mut state = Self {
            index: FreeIndex::new(n, spread),
            status,
            cordoned: vec![false; n],
            used: vec![Resources::ZERO; n],
            vms: Vec::new(),
            on_host: vec![Vec::new(); n],
            groups: GroupCounts::new(
                (0..pool.groups().len() as u32)
                    .map(|g| pool.domain_count(GroupId(g)))
                    .collect(),
            ),
            admission: AdmissionTracker::default(),
            up_count: 0,
            up_capacity: Resources::ZERO,
            up_version: 0,
            failed: 0,
            reservations: Default::default(),
            next_reservation: 0,
            free_ids: Vec::new(),
            rooms: 0,
            room_at: vec![0; n],
            pool,
        };
        for h in 0..n as u32 {
            state.refresh(HostId(h));
        }
        state.recount_up();
        state
    }

    /// The state a durable record describes: hosts in `statuses` (the others up), `vms`
    /// attached on the hosts recorded for them. Nothing is decided again (no admission,
    /// no filters: the record is what was decided); each host must exist and each VM be
    /// valid for the pool. For a control plane restoring its desired placement.
    pub fn restore(
        pool: Pool,
        statuses: &[(HostId, HostStatus)],
        vms: impl IntoIterator<Item = (VmSpec, HostId)>,
    ) -> Result<Self, PlacementError> {
        let mut state = Self::new(pool);
        for &(host, status) in statuses {
            state.check_host(host)?;
            if status == HostStatus::Failed {
                state.failed += 1;
            }
            state.status[host.index()] = status;
            state.refresh(host);
        }
        state.recount_up();
        for (spec, host) in vms {
            state.check_host(host)?;
            state.pool.check_vm(&spec)?;
            let footprint = state.pool.footprint(&spec);
            let id = VmId(state.next_id()?);
            let entry = VmEntry {
                spec,
                footprint,
                host,
                reserved: false,
            };
            state.attach(id, entry);
        }
        Ok(state)
    }

    /// The pool this state places onto.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A host's status.
    pub fn status(&self, host: HostId) -> HostStatus {
        self.status[host.index()]
    }

    /// The footprint of the VMs on a host.
    pub fn used(&self, host: HostId) -> Resources {
        self.used[host.index()]
    }

    /// What is left on a host.
    pub fn free(&self, host: HostId) -> Resources {
        self.pool.host(host).capacity - self.used[host.index()]
    }

    /// Where a VM runs, if the state holds it.
    pub fn host_of(&self, vm: VmId) -> Option<HostId> {
        self.entry(vm).map(|e| e.host)
    }

    /// A VM's spec, if the state holds it.
    pub fn vm(&self, vm: VmId) -> Option<&VmSpec> {
        self.entry(vm).map(|e| &e.spec)
    }

    /// Every VM held (committed or reserved) and its host, in id order.
    pub fn placements(&self) -> impl Iterator<Item = (VmId, HostId)> + '_ {
        self.vms
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (VmId(i as u32), e.host)))
    }

    /// The VMs on a host, in id order.
    pub fn vms_on(&self, host: HostId) -> Vec<VmId> {
        self.on_host
            .get(host.index())
            .map_or_else(Vec::new, |ids| ids.iter().map(|i| VmId(*i)).collect())
    }

    /// Host failures the admission reserve still covers (the policy's number minus hosts
    /// already failed).
    pub fn failures_covered(&self) -> u32 {
        self.pool
            .config()
            .admission
            .host_failures()
            .saturating_sub(self.failed)
    }

    /// The slot policy evaluated over the hosts up and the VMs held.
    pub fn slot_report(&self) -> SlotReport {
        let caps = self.up_capacities();
        let fps: Vec<Resources> = self.vms.iter().flatten().map(|e| e.footprint).collect();
        slot_report(&caps, &fps)
    }

    /// Places one VM: admission control first, then the best host by the pool's strategy
    /// among those that pass every hard filter.
    pub fn place(&mut self, spec: VmSpec) -> Result<(VmId, HostId), PlacementError> {
        let id = self.fresh_id()?;
        let host = self.place_as(id, spec, false)?;
        Ok((id, host))
    }

    /// The id the next VM placed takes: the last freed one not in use again, else a new one.
    pub(crate) fn fresh_id(&mut self) -> Result<VmId, PlacementError> {
        while let Some(&free) = self.free_ids.last()
            && self.entry(VmId(free)).is_some()
        {
            self.free_ids.pop();
        }
        match self.free_ids.last() {
            Some(&free) => Ok(VmId(free)),
            None => Ok(VmId(self.next_id()?)),
        }
    }

    /// Removes a VM (powered off or deleted) and returns its spec; its id is reused by the
    /// next [`PoolState::place`].
    pub fn remove(&mut self, vm: VmId) -> Result<VmSpec, PlacementError> {
        match self.detach(vm) {
            Some(e) => {
                self.note_left(e.host, e.spec.group);
                self.free_ids.push(vm.0);
                Ok(e.spec)
            }
            None => Err(PlacementError::UnknownVm { id: vm.0 }),
        }
    }

    /// Cordons a host (`on`) or lifts it: a cordoned host keeps what runs on it but takes
    /// no new VM — no placement, restart, migration or surge goes there — as a host
    /// entering maintenance, or one not heard from, must not. Its status is unchanged.
    ///
    /// # Errors
    /// [`PlacementError::UnknownHost`].
    pub fn cordon(&mut self, host: HostId, on: bool) -> Result<(), PlacementError> {
        self.check_host(host)?;
        if self.cordoned[host.index()] != on {
            self.cordoned[host.index()] = on;
            if !on {
                self.note_room(host);
            }
            self.refresh(host);
        }
        Ok(())
    }

    /// Whether `host` is cordoned ([`PoolState::cordon`]).
    pub fn cordoned(&self, host: HostId) -> bool {
        self.cordoned.get(host.index()).copied().unwrap_or(false)
    }

    /// Puts an empty host into maintenance or standby, or brings a host back up.
    /// Failing a host is [`PoolState::fail_host`], which also restarts its VMs.
    pub fn set_status(&mut self, host: HostId, status: HostStatus) -> Result<(), PlacementError> {
        self.check_host(host)?;
        if status == HostStatus::Failed {
            return self.fail_host(host).map(|_| ());
        }
        if status != HostStatus::Up {
            let vms = self.vms_on(host).len();
            if vms > 0 {
                return Err(PlacementError::HostNotEmpty {
                    host: self.pool.host(host).name.clone(),
                    vms,
                });
            }
        }
        if self.status[host.index()] == HostStatus::Failed {
            self.failed = self.failed.saturating_sub(1);
        }
        self.status[host.index()] = status;
        if status == HostStatus::Up {
            self.note_room(host);
        }
        self.refresh(host);
        self.recount_up();
        Ok(())
    }

    /// A stamp of the room on the pool's hosts: it changes whenever room appears on a host
    /// (a VM removed, migrated off or lost with a failed host, a reservation aborted, a
    /// host coming up; for a group spread over racks, on every host of the rack the member
    /// left), never when a VM is placed. A decision refused for lack of room at one stamp can only come out
    /// differently once [`PoolState::room_since`] holds for one of the hosts it considered.
    pub fn room_stamp(&self) -> u64 {
        self.rooms
    }

    /// Whether room appeared on `host` after `stamp` (a [`PoolState::room_stamp`]).
    pub fn room_since(&self, host: HostId, stamp: u64) -> bool {
        self.room_at.get(host.index()).is_some_and(|&at| at > stamp)
    }

    /// Room appeared on `host` (it came up, or a VM outside any group left it).
    pub(crate) fn note_room(&mut self, host: HostId) {
        self.note_left(host, None);
    }

    /// A VM of `group` left `host`: room appeared there and, for a group spread over
    /// racks, on every host of its rack, since the group's count in that rack went down.
    pub(crate) fn note_left(&mut self, host: HostId, group: Option<GroupId>) {
        self.rooms += 1;
        let rack_wide = group
            .and_then(|g| self.pool.groups().get(g.0 as usize))
            .is_some_and(|g| g.policy.spread_over == Scope::Rack);
        if rack_wide {
            let rack = self.pool.host(host).rack;
            for (at, h) in self.room_at.iter_mut().zip(self.pool.hosts()) {
                if h.rack == rack {
                    *at = self.rooms;
                }
            }
        } else if let Some(at) = self.room_at.get_mut(host.index()) {
            *at = self.rooms;
        }
    }

    pub(crate) fn check_host(&self, host: HostId) -> Result<(), PlacementError> {
        if host.index() < self.pool.hosts().len() {
            Ok(())
        } else {
            Err(PlacementError::UnknownHost { id: host.0 })
        }
    }

    pub(crate) fn entry(&self, vm: VmId) -> Option<&VmEntry> {
        self.vms.get(vm.index()).and_then(Option::as_ref)
    }

    /// Whether `vm`'s host holds more members of its placement group than the group's hard
    /// limit allows (an HA restart beside its group, [`crate::RestartScope::beside_group`]).
    pub fn crowded(&self, vm: VmId) -> bool {
        let Some(e) = self.entry(vm) else {
            return false;
        };
        let Some(g) = e.spec.group else {
            return false;
        };
        self.pool.groups()[g.0 as usize]
            .policy
            .hard_limit()
            .is_some_and(|limit| self.groups.get(g.0, self.pool.domain(g, e.host)) > limit)
    }

    pub(crate) fn next_id(&self) -> Result<u32, PlacementError> {
        u32::try_from(self.vms.len()).map_err(|_| PlacementError::Invalid {
            reason: "too many VMs".into(),
        })
    }

    /// Admits, chooses a host and attaches `spec` under id `id`.
    pub(crate) fn place_as(
        &mut self,
        id: VmId,
        spec: VmSpec,
        reserved: bool,
    ) -> Result<HostId, PlacementError> {
        self.pool.check_vm(&spec)?;
        let footprint = self.pool.footprint(&spec);
        self.admit(&spec, &footprint)?;
        let host = self.find_host(&spec, &footprint, None)?;
        self.attach(
            id,
            VmEntry {
                spec,
                footprint,
                host,
                reserved,
            },
        );
        Ok(host)
    }

    /// HA admission control for one more VM of `footprint`.
    pub(crate) fn admit(
        &mut self,
        spec: &VmSpec,
        footprint: &Resources,
    ) -> Result<(), PlacementError> {
        let pool = &self.pool;
        let status = &self.status;
        let capacities = || {
            pool.hosts()
                .iter()
                .zip(status)
                .filter(|(_, s)| **s == HostStatus::Up)
                .map(|(h, _)| h.capacity)
                .collect::<Vec<_>>()
        };
        let up = UpHosts {
            count: self.up_count,
            capacity: self.up_capacity,
            version: self.up_version,
            capacities: &capacities,
        };
        let failures = pool
            .config()
            .admission
            .host_failures()
            .saturating_sub(self.failed);
        self.admission
            .admits(&pool.config().admission, &up, failures, footprint)
            .map_err(|reason| {
                let mut explanation = Explanation::new("hosts", pool.hosts().len());
                for _ in pool.hosts() {
                    explanation.reject(reason.clone());
                }
                PlacementError::Admission {
                    vm: spec.name.clone(),
                    explanation,
                }
            })
    }

    /// Records `entry` under `id` and updates every counter.
    pub(crate) fn attach(&mut self, id: VmId, entry: VmEntry) {
        let host = entry.host;
        self.used[host.index()] += entry.footprint;
        if let Some(g) = entry.spec.group {
            self.groups.add(g.0, self.pool.domain(g, host));
        }
        self.admission.add(&entry.footprint);
        if self.vms.len() <= id.index() {
            self.vms.resize(id.index() + 1, None);
        }
        if self.free_ids.last() == Some(&id.0) {
            self.free_ids.pop();
        }
        if let Some(ids) = self.on_host.get_mut(host.index())
            && let Err(at) = ids.binary_search(&id.0)
        {
            ids.insert(at, id.0);
        }
        self.vms[id.index()] = Some(entry);
        self.refresh(host);
    }

    /// Takes a VM out of the state and every counter.
    pub(crate) fn detach(&mut self, id: VmId) -> Option<VmEntry> {
        let entry = self.vms.get_mut(id.index())?.take()?;
        let host = entry.host;
        if let Some(ids) = self.on_host.get_mut(host.index())
            && let Ok(at) = ids.binary_search(&id.0)
        {
            ids.remove(at);
        }
        self.used[host.index()] = self.used[host.index()] - entry.footprint;
        if let Some(g) = entry.spec.group {
            self.groups.sub(g.0, self.pool.domain(g, host));
        }
        self.admission.sub(&entry.footprint);
        self.refresh(host);
        Some(entry)
    }

    /// Re-keys a host in the index after its usage or status changed.
    pub(crate) fn refresh(&mut self, host: HostId) {
        if self.status[host.index()] == HostStatus::Up && !self.cordoned[host.index()] {
            let (cap, used) = (&self.pool.host(host).capacity, &self.used[host.index()]);
            let score = match self.pool.config().strategy {
                PlacementStrategy::Spread => free_score(cap, used),
                PlacementStrategy::Pack => tight_score(cap, used),
            };
            self.index.set(host.0, self.pool.rank(host), score);
        } else {
            self.index.remove(host.0);
        }
    }

    /// Recomputes the totals of hosts up after a status change.
    pub(crate) fn recount_up(&mut self) {
        self.up_count = 0;
        self.up_capacity = Resources::ZERO;
        for (h, s) in self.pool.hosts().iter().zip(&self.status) {
            if *s == HostStatus::Up {
                self.up_count += 1;
                self.up_capacity += h.capacity;
            }
        }
        self.up_version += 1;
    }

    fn up_capacities(&self) -> Vec<Resources> {
        self.pool
            .hosts()
            .iter()
            .zip(&self.status)
            .filter(|(_, s)| **s == HostStatus::Up)
            .map(|(h, _)| h.capacity)
            .collect()
    }
}
