//! [`Session`]: an estate's durable control plane over the QEMU driver — the one control
//! loop, opened fresh (every cluster requested) or resumed from its store.

use plinth_control::{Control, Driver, Observation, Time};
use plinth_model::Estate;
use plinth_sim::{Greenfield, Headroom};

use crate::driver::{QemuDriver, wall_clock};
use crate::error::QemuError;

/// How long a fresh session waits to hear every host before it builds anything, ms.
const CONNECT_WAIT_MS: u64 = 5_000;

/// The design of `estate` on its owned hosts, each of which `driver` has an agent for.
fn design(estate: &Estate, driver: &QemuDriver) -> Result<Greenfield, QemuError> {
    let design = plinth_sim::greenfield(estate).map_err(QemuError::Design)?;
    let hosts = design
        .control
        .pool()
        .map(|p| p.pool().hosts())
        .unwrap_or_default();
    match hosts.iter().find(|h| !driver.knows(&h.name)) {
        Some(host) => Err(QemuError::NoAgent {
            host: host.name.clone(),
        }),
        None => Ok(design),
    }
}

/// Whether a session started from nothing or from its store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Nothing was stored: every cluster of the estate was requested.
    Fresh,
    /// The control plane was restored from its store (a second `plinth run`).
    Resumed,
}

/// A durable control plane and the driver it runs over.
#[derive(Debug)]
pub struct Session {
    control: Control,
    /// When the owned hosts cannot meet the Scenario's headroom: what it asks, and what the
    /// running design keeps.
    short: Option<(Headroom, Headroom)>,
    /// The control plane as built from the estate, restored into after a crash.
    fresh: Control,
    driver: QemuDriver,
}

impl Session {
    /// The control plane of `estate` over `driver`: restored from the driver's store when it
    /// holds records, else built from nothing with every cluster requested.
    ///
    /// # Errors
    /// When the design cannot be planned, a planned host has no agent in the driver, or the
    /// store does not load or restore.
    pub fn open(estate: &Estate, mut driver: QemuDriver) -> Result<(Self, Opened), QemuError> {
        let Greenfield {
            control: fresh,
            short,
        } = design(estate, &driver)?;
        let records = driver.store().load().map_err(QemuError::Store)?;
        let (control, opened) = if records.is_empty() {
            let mut control = fresh.clone().durable();
            // Hear the hosts first (each link's first heartbeat and inventory), so the
            // first commands do not race the connections.
            let until = wall_clock().plus(CONNECT_WAIT_MS);
            while !driver.all_heard() {
                let Some((now, observation)) = driver.poll(control.next_wakeup(), until) else {
                    break;
                };
                let ready = control.handle(now, observation);
                driver.apply(now, ready);
            }
            (control, Opened::Fresh)
        } else {
            let control = fresh
                .clone()
                .restore(&records, wall_clock())
                .map_err(QemuError::Store)?;
            (control, Opened::Resumed)
        };
        let mut session = Self {
            control,
            short,
            fresh,
            driver,
        };
        // Every cluster of a fresh start; a resumed one's added while no control plane ran.
        session.request_unbuilt();
        Ok((session, opened))
    }

    /// Takes a changed estate while running: plans it, restores the control plane's
    /// records into the new design, requests the clusters it adds and scales the pools
    /// whose planned size changed. Returns the clusters asked.
    ///
    /// # Errors
    /// When the new design cannot be planned, needs a host without an agent, or the
    /// records do not fit it (a cluster or host that is running was removed); the session
    /// then runs on as before.
    pub fn replan(&mut self, estate: &Estate) -> Result<Vec<String>, QemuError> {
        let Greenfield {
            control: fresh,
            short,
        } = design(estate, &self.driver)?;
        let records = self.driver.store().load().map_err(QemuError::Store)?;
        let control = fresh
            .clone()
            .restore(&records, wall_clock())
            .map_err(QemuError::Store)?;
        self.control = control;
        self.short = short;
        self.fresh = fresh;
        self.driver.set_pools(crate::bootstrap::Pools::of(estate));
        let mut requested = self.request_unbuilt();
        requested.extend(self.resize());
        Ok(requested)
    }

    /// Scales each built, idle cluster's pools to the size the design plans: a pool whose
    /// planned size changed (its workloads or its `replicas` did) since it was built.
    /// Level-triggered, like [`Session::replan`]'s other requests. Returns the clusters
    /// asked.
    fn resize(&mut self) -> Vec<String> {
        let mut wanted = Vec::new();
        for planned in self.fresh.clusters() {
            let idle = self
                .control
                .cluster_state(&planned.name)
                .is_some_and(|s| s.nodes > 0 && !s.busy);
            let Some(now) = self.control.cluster(&planned.name).filter(|_| idle) else {
                continue;
            };
            for (pool, running) in planned.pools.iter().zip(&now.pools) {
                if let Some((size, _)) = pool.create
                    && usize::try_from(size).ok() != Some(running.nodes.len())
                {
                    wanted.push((planned.name.clone(), pool.name.clone(), size));
                }
            }
        }
        let mut asked = Vec::new();
        for (cluster, pool, replicas) in wanted {
            self.request(Observation::ScaleRequested {
                cluster: cluster.clone(),
                pool,
                replicas,
            });
            asked.push(cluster);
        }
        asked
    }

    /// Requests every cluster that has no node and nothing under way: level-triggered, so
    /// a cluster added to the estate while no control plane ran is built on the next start.
    fn request_unbuilt(&mut self) -> Vec<String> {
        let unbuilt: Vec<String> = self
            .control
            .clusters()
            .map(|c| c.name.clone())
            .filter(|c| {
                self.control
                    .cluster_state(c)
                    .is_some_and(|s| s.nodes == 0 && !s.busy)
            })
            .collect();
        for cluster in &unbuilt {
            self.request(Observation::ClusterRequested {
                cluster: cluster.clone(),
            });
        }
        unbuilt
    }

    /// Handles the next observation before `until`; false when none came (or the run was
    /// stopped or failed).
    pub fn step(&mut self, until: Time) -> bool {
        let Some((now, observation)) = self.driver.poll(self.control.next_wakeup(), until) else {
            return false;
        };
        let ready = self.control.handle(now, observation);
        if !ready.is_empty() {
            self.driver.apply(now, ready);
        }
        true
    }

    /// Hands the control plane a desired-state change now.
    pub fn request(&mut self, change: Observation) {
        let now = wall_clock();
        let ready = self.control.handle(now, change);
        self.driver.apply(now, ready);
    }

    /// Crashes the control plane and restores it from its store, as a new process would.
    ///
    /// # Errors
    /// When the store does not load or restore.
    pub fn restart_control_plane(&mut self) -> Result<(), QemuError> {
        self.driver.forget_in_flight();
        let records = self.driver.store().load().map_err(QemuError::Store)?;
        self.control = self
            .fresh
            .clone()
            .restore(&records, wall_clock())
            .map_err(QemuError::Store)?;
        Ok(())
    }

    /// When the owned hosts cannot meet the Scenario's headroom: what it asks, and what
    /// the running design keeps.
    pub fn short(&self) -> Option<(Headroom, Headroom)> {
        self.short
    }

    /// The control plane.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// What each pool's VMs, and each VirtualMachineSet's, are made from.
    pub fn pools(&self) -> &crate::bootstrap::Pools {
        self.driver.pools()
    }

    /// The driver.
    pub fn driver(&mut self) -> &mut QemuDriver {
        &mut self.driver
    }
}
