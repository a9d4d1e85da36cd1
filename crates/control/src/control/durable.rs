//! [`Control`]'s state as per-object records (see [`crate::store`]): written after each
//! step when the control plane is durable, only the records the step changed, and loaded
//! back by [`Control::restore`], which rebuilds every timer from the times the records
//! hold.

use std::collections::{BTreeMap, BTreeSet};

use plinth_placement::{HostId, HostStatus, PoolState, VmSpec, ZoneId};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::lifecycle::ClusterRec;
use super::resync::Locate;
use super::{Control, Health, InFlight, Leftover, Maint, Timer, VmPhase, Waiting};
use crate::command::{BootId, Condition};
use crate::control::FailureRecord;
use crate::store::{Key, StoreError, Versioned, Write};
use crate::time::Time;

#[derive(Serialize, Deserialize)]
struct MetaRecord {
    next_id: u64,
    retry_seq: u64,
    health_seq: u64,
    /// Machine health checks due: key → (node, when).
    health: BTreeMap<u64, (String, Time)>,
    /// Nodes marked out of service.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    out_of_service: BTreeSet<String>,
}

#[derive(Serialize, Deserialize)]
struct HostRecord {
    health: Health,
    maint: Maint,
    stuck: bool,
    failure: Option<usize>,
    boot: Option<BootId>,
    heard_at: Option<Time>,
    /// Its status in the desired placement (virtualized).
    status: Option<HostStatus>,
}

#[derive(Serialize, Deserialize)]
struct VmRecord {
    spec: VmSpec,
    /// Where the control plane wants it; `None` while it waits for room.
    host: Option<String>,
    phase: Option<VmPhase>,
    locate: Option<Locate>,
    /// The zone of a VM HA restarted outside it (a zone exception), by zone id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    outside_zone: Option<u32>,
    /// Where a VM waiting for room without a host may start again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    waiting: Option<WaitingRecord>,
    /// HA restarted it beside a member of its placement group (a spread exception).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    beside_group: bool,
    /// Stopped for its host's maintenance (no other host could take it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    parked: bool,
}

/// [`Waiting`], as stored.
#[derive(Serialize, Deserialize)]
struct WaitingRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    zone: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    outside_zone: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    beside_group: bool,
}

impl From<Waiting> for WaitingRecord {
    fn from(w: Waiting) -> Self {
        Self {
            zone: w.zone.map(|z| z.0),
            outside_zone: w.outside,
            beside_group: w.beside_group,
        }
    }
}

impl From<WaitingRecord> for Waiting {
    fn from(r: WaitingRecord) -> Self {
        Self {
            zone: r.zone.map(ZoneId),
            outside: r.outside_zone,
            beside_group: r.beside_group,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ClusterRecord {
    rec: ClusterRec,
    /// New VMs of its rollout → the node each replaces.
    upgrade_vms: Vec<(String, String)>,
    /// In-place replacements whose new VM waits for room.
    retry_deleted: Vec<String>,
}

fn encode<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    serde_json::to_vec(value).ok()
}

fn decode<T: DeserializeOwned>(key: &Key, v: &Versioned) -> Result<T, StoreError> {
    serde_json::from_slice(&v.value).map_err(|source| StoreError::Corrupt {
        key: key.to_string(),
        source,
    })
}

fn unknown(key: &Key, what: impl Into<String>) -> StoreError {
    StoreError::Unknown {
        key: key.to_string(),
        what: what.into(),
    }
}

impl Control {
    /// Every record of the current state.
    fn records(&self) -> BTreeMap<Key, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut put = |key: Key, value: Option<Vec<u8>>| {
            if let Some(v) = value {
                out.insert(key, v);
            }
        };
        put(
            Key::Meta,
            encode(&MetaRecord {
                next_id: self.next_id,
                retry_seq: self.retry_seq,
                health_seq: self.health_seq,
                health: self.health.clone(),
                out_of_service: self.out_of_service.clone(),
            }),
        );
        for (i, h) in self.hosts.iter().enumerate() {
            let status = self.vms.as_ref().map(|v| v.pool.status(HostId(i as u32)));
            let record = HostRecord {
                health: h.health,
                maint: h.maint,
                stuck: h.leftover != Leftover::None,
                failure: h.failure,
                boot: h.boot,
                heard_at: h.heard_at,
                status,
            };
            put(Key::Host(h.name.clone()), encode(&record));
        }
        if let Some(v) = &self.vms {
            let names = v.ids.keys().chain(v.stranded.keys());
            for name in names {
                let Some(spec) = self.vm_spec(name) else {
                    continue;
                };
                let record = VmRecord {
                    spec,
                    host: self.vm_host(name).map(str::to_owned),
                    phase: v.phase.get(name).copied(),
                    locate: self.locating.get(name).cloned(),
                    outside_zone: v.outside_zone.get(name).map(|z| z.0),
                    waiting: v.waiting.get(name).map(|&w| WaitingRecord::from(w)),
                    beside_group: v.beside_group.contains(name),
                    parked: v.parked.contains(name),
                };
                put(Key::Vm(name.clone()), encode(&record));
            }
        }
        for (id, f) in &self.pending {
            put(Key::Command(*id), encode(f));
        }
        for (k, r) in &self.retries {
            put(Key::Retry(*k), encode(r));
        }
        for (c, rec) in self.clusters.iter().enumerate() {
            let record = ClusterRecord {
                rec: rec.clone(),
                upgrade_vms: self
                    .upgrade_vms
                    .iter()
                    .filter(|(_, (x, _))| *x == c)
                    .map(|(vm, (_, old))| (vm.clone(), old.clone()))
                    .collect(),
                retry_deleted: self
                    .retry_deleted
                    .iter()
                    .filter(|(x, _)| *x == c)
                    .map(|(_, old)| old.clone())
                    .collect(),
            };
            put(Key::Cluster(rec.topology().name.clone()), encode(&record));
        }
        for s in &self.spares {
            put(Key::Spare(s.server.clone()), encode(s));
        }
        for (i, f) in self.failures.iter().enumerate() {
            put(Key::Failure(i as u64), encode(f));
        }
        for (object, c) in &self.conditions {
            put(Key::Condition(object.clone()), encode(c));
        }
        out
    }

    /// The writes that bring the store from what was persisted to the current state.
    pub(super) fn persist(&mut self) -> Vec<Write> {
        if self.persisted.is_none() {
            return Vec::new();
        }
        let now = self.records();
        let Some(persisted) = self.persisted.as_mut() else {
            return Vec::new();
        };
        let mut writes = Vec::new();
        for (key, value) in &now {
            let version = match persisted.get(key) {
                Some((_, old)) if old == value => continue,
                Some((version, _)) => version + 1,
                None => 1,
            };
            persisted.insert(key.clone(), (version, value.clone()));
            writes.push(Write {
                key: key.clone(),
                version,
                value: Some(value.clone()),
            });
        }
        let gone: Vec<Key> = persisted
            .keys()
            .filter(|k| !now.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some((version, _)) = persisted.remove(&key) {
                writes.push(Write {
                    key,
                    version: version + 1,
                    value: None,
                });
            }
        }
        writes
    }

    /// Makes the control plane durable: from the next step on, [`crate::Ready::writes`]
    /// carries the records each step changed (the first step writes them all).
    pub fn durable(mut self) -> Self {
        self.persisted = Some(BTreeMap::new());
        self
    }

    /// Loads `records` (written by a durable control plane of the same configuration,
    /// hosts and clusters) into this freshly built one, at `now`: desired state, commands
    /// in flight and their deadlines, retries, failures and conditions come back, and
    /// every timer is rebuilt from the times they hold. The result is durable. Command ids
    /// continue after the last one issued. The hosts' inventories, which their agents send
    /// when they reconnect, then resync what runs where.
    pub fn restore(
        mut self,
        records: &BTreeMap<Key, Versioned>,
        now: Time,
    ) -> Result<Self, StoreError> {
        let mut statuses = Vec::new();
        let mut placed: Vec<(VmSpec, HostId)> = Vec::new();
        let mut phases = BTreeMap::new();
        let mut stranded = BTreeMap::new();
        let mut outside_zone = BTreeMap::new();
        let mut waiting = BTreeMap::new();
        let mut beside_group = BTreeSet::new();
        let mut parked = BTreeSet::new();
        self.pending.clear();
        self.retries.clear();
        self.locating.clear();
        self.failures.clear();
        self.conditions.clear();
        self.upgrade_vms.clear();
        self.retry_deleted.clear();
        self.spares.clear();
        for (key, v) in records {
            match key {
                Key::Meta => {
                    let m: MetaRecord = decode(key, v)?;
                    self.next_id = m.next_id;
                    self.retry_seq = m.retry_seq;
                    self.health_seq = m.health_seq;
                    self.health = m.health;
                    self.out_of_service = m.out_of_service;
                }
                Key::Host(name) => {
                    let r: HostRecord = decode(key, v)?;
                    let &i = self
                        .host_index
                        .get(name)
                        .ok_or_else(|| unknown(key, format!("host {name}")))?;
                    let h = &mut self.hosts[i];
                    h.health = r.health;
                    h.maint = r.maint;
                    // Tried again at the next pass: what it saw before is not recorded.
                    h.leftover = if r.stuck {
                        Leftover::Waiting
                    } else {
                        Leftover::None
                    };
                    h.failure = r.failure;
                    h.boot = r.boot;
                    h.heard_at = r.heard_at;
                    if let Some(s) = r.status {
                        statuses.push((HostId(i as u32), s));
                    }
                }
                Key::Vm(name) => {
                    let r: VmRecord = decode(key, v)?;
                    if let Some(p) = r.phase {
                        phases.insert(name.clone(), p);
                    }
                    if let Some(l) = r.locate {
                        self.locating.insert(name.clone(), l);
                    }
                    if let Some(z) = r.outside_zone {
                        outside_zone.insert(name.clone(), ZoneId(z));
                    }
                    if let Some(w) = r.waiting {
                        waiting.insert(name.clone(), Waiting::from(w));
                    }
                    if r.beside_group {
                        beside_group.insert(name.clone());
                    }
                    if r.parked {
                        parked.insert(name.clone());
                    }
                    match r.host {
                        Some(host) => {
                            let &i = self
                                .host_index
                                .get(&host)
                                .ok_or_else(|| unknown(key, format!("host {host}")))?;
                            placed.push((r.spec, HostId(i as u32)));
                        }
                        None => {
                            stranded.insert(name.clone(), r.spec);
                        }
                    }
                }
                Key::Command(id) => {
                    let f: InFlight = decode(key, v)?;
                    self.pending.insert(*id, f);
                }
                Key::Retry(k) => {
                    let r: (Time, InFlight) = decode(key, v)?;
                    self.retries.insert(*k, r);
                }
                Key::Cluster(name) => {
                    let r: ClusterRecord = decode(key, v)?;
                    let &c = self
                        .cluster_index
                        .get(name)
                        .ok_or_else(|| unknown(key, format!("cluster {name}")))?;
                    self.clusters[c] = r.rec;
                    for (vm, old) in r.upgrade_vms {
                        self.upgrade_vms.insert(vm, (c, old));
                    }
                    for old in r.retry_deleted {
                        self.retry_deleted.push((c, old));
                    }
                }
                Key::Spare(name) => {
                    let s: crate::Spare = decode(key, v)?;
                    if !self.host_index.contains_key(name) || s.server != *name {
                        return Err(unknown(key, format!("server {name}")));
                    }
                    self.spares.push(s);
                }
                Key::Failure(_) => {
                    let f: FailureRecord = decode(key, v)?;
                    self.failures.push(f);
                }
                Key::Condition(object) => {
                    let c: Condition = decode(key, v)?;
                    self.conditions.insert(object.clone(), c);
                }
            }
        }
        if let Some(v) = &mut self.vms {
            let pool = v.pool.pool().clone();
            v.pool = PoolState::restore(pool, &statuses, placed)
                .map_err(|e| unknown(&Key::Meta, format!("placement: {e}")))?;
            v.ids = v
                .pool
                .placements()
                .filter_map(|(id, _)| v.pool.vm(id).map(|s| (s.name.clone(), id)))
                .collect();
            v.phase = phases;
            v.stranded = stranded;
            v.outside_zone = outside_zone;
            v.waiting = waiting;
            v.beside_group = beside_group;
            v.parked = parked;
        }
        for i in 0..self.hosts.len() {
            self.sync_cordon(i);
        }
        self.clock = now;
        self.drs_dirty = true;
        self.rebuild_timers(now);
        self.persisted = Some(
            records
                .iter()
                .map(|(k, v)| (k.clone(), (v.version, v.value.clone())))
                .collect(),
        );
        Ok(self)
    }

    /// Every timer, from the times the state holds.
    fn rebuild_timers(&mut self, now: Time) {
        self.timers.clear();
        self.arm_drs(now);
        for (i, h) in self.hosts.iter().enumerate() {
            match h.health {
                Health::Silent { deadline, .. } => {
                    self.timers.insert((deadline, Timer::Detect(i)));
                }
                Health::FenceFailed { retry } => {
                    self.timers.insert((retry, Timer::FenceRetry(i)));
                }
                _ => {}
            }
            if let Some(failure) = h.failure
                && matches!(h.health, Health::Fencing | Health::FenceFailed { .. })
                && let Some(f) = self.failures.get(failure)
            {
                let at = self.cfg.ha.known_dead_at(f.last_heard);
                self.timers
                    .insert((at, Timer::KnownDead { host: i, failure }));
            }
        }
        for (c, rec) in self.clusters.iter().enumerate() {
            if let Some(at) = rec.retry_at() {
                self.timers.insert((at, Timer::Rollout(c)));
            }
        }
        for (key, (_, at)) in &self.health {
            self.timers.insert((*at, Timer::Health(*key)));
        }
        for (id, f) in &self.pending {
            self.timers.insert((f.deadline, Timer::Deadline(*id)));
        }
        for (key, (at, _)) in &self.retries {
            self.timers.insert((*at, Timer::Reissue(*key)));
        }
    }
}
