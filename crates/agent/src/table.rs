//! The VMs of this host as the agent knows them, shared by both hypervisors, with a change
//! counter the server watches to send inventories.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use plinth_proto::guest::GuestStatus;
use plinth_proto::network::Ipv4Net;
use plinth_proto::{Generation, VmName, VmReport, VmSpec, VmState};
use tokio::sync::watch;

use crate::error::AgentError;

/// One VM's record.
#[derive(Debug, Clone)]
pub(crate) struct VmRecord {
    pub(crate) spec: VmSpec,
    pub(crate) generation: Generation,
    pub(crate) state: VmState,
    pub(crate) pid: Option<u32>,
    pub(crate) guest: Option<GuestStatus>,
    /// Its NIC's address on its cluster's network, once leased.
    pub(crate) address: Option<Ipv4Net>,
}

impl VmRecord {
    pub(crate) fn new(spec: VmSpec) -> Self {
        Self {
            spec,
            generation: Generation(1),
            state: VmState::Stopped,
            pid: None,
            guest: None,
            address: None,
        }
    }

    /// Whether this host may receive the VM by live migration: it has no copy of it running
    /// or receiving.
    pub(crate) fn receivable(&self) -> Result<(), AgentError> {
        if self.state == VmState::Stopped {
            return Ok(());
        }
        Err(AgentError::NotMigrated {
            vm: self.spec.name.clone(),
            detail: format!("this host has it {:?} already", self.state),
        })
    }

    /// Whether this host may send the VM by live migration: it runs it.
    pub(crate) fn sendable(&self) -> Result<(), AgentError> {
        if self.state == VmState::Running {
            return Ok(());
        }
        Err(AgentError::NotMigrated {
            vm: self.spec.name.clone(),
            detail: "it does not run on this host".into(),
        })
    }

    fn report(&self) -> VmReport {
        VmReport {
            name: self.spec.name.clone(),
            generation: self.generation,
            state: self.state,
            pid: self.pid,
            guest: self.guest.clone(),
            address: self.address,
        }
    }
}

/// The table: records by name and a change counter.
#[derive(Debug)]
pub(crate) struct VmTable {
    vms: Mutex<BTreeMap<VmName, VmRecord>>,
    changes: watch::Sender<u64>,
}

impl Default for VmTable {
    fn default() -> Self {
        Self {
            vms: Mutex::new(BTreeMap::new()),
            changes: watch::Sender::new(0),
        }
    }
}

impl VmTable {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<VmName, VmRecord>> {
        // A panic elsewhere cannot leave a record half-written: every update is one statement.
        self.vms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every VM, by name.
    pub(crate) fn reports(&self) -> Vec<VmReport> {
        self.lock().values().map(VmRecord::report).collect()
    }

    /// A copy of one record.
    pub(crate) fn get(&self, vm: &VmName) -> Option<VmRecord> {
        self.lock().get(vm).cloned()
    }

    /// The names of the VMs.
    pub(crate) fn names(&self) -> Vec<VmName> {
        self.lock().keys().cloned().collect()
    }

    /// Adds a record; false when the name is taken.
    pub(crate) fn insert(&self, record: VmRecord) -> bool {
        let added = {
            let mut vms = self.lock();
            if vms.contains_key(&record.spec.name) {
                false
            } else {
                vms.insert(record.spec.name.clone(), record);
                true
            }
        };
        if added {
            self.changed();
        }
        added
    }

    /// Removes a record.
    pub(crate) fn remove(&self, vm: &VmName) {
        self.lock().remove(vm);
        self.changed();
    }

    /// Applies `f` to a record; `bump` raises its generation (a change the agent made, not a
    /// guest report). False when there is no such VM.
    pub(crate) fn update(&self, vm: &VmName, bump: bool, f: impl FnOnce(&mut VmRecord)) -> bool {
        let found = {
            let mut vms = self.lock();
            vms.get_mut(vm).map(|r| {
                f(r);
                if bump {
                    r.generation = r.generation.next();
                }
            })
        };
        if found.is_some() {
            self.changed();
        }
        found.is_some()
    }

    /// Subscribes to changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}
