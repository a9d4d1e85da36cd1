//! [`SimLab`]: the simulator as a [`plinth_conformance::Lab`], so the conformance suite's
//! bodies run on it (and later, unchanged, on the QEMU driver).

use plinth_conformance::Lab;
use plinth_control::store::{MemoryStore, Store};
use plinth_control::{
    ClusterTopology, Condition, Control, Driver, FailureRecord, Observation, Ready, Time,
    UpgradeKind,
};
use plinth_events::InputDigest;
use plinth_model::Estate;
use plinth_model::kinds::environment::EnvironmentType;

use crate::world::World;
use crate::{Options, SimError, setup};

/// Ten years: a lab's world never ends on its own.
const HORIZON: u64 = 10 * 365 * 86_400_000;

/// The simulated world of an estate's virtualized design, a durable control plane over
/// it and its store.
pub struct SimLab {
    world: World<'static>,
    control: Control,
    /// The control plane as built from the estate, restored into after a crash.
    fresh: Control,
    store: MemoryStore,
    /// The lab's virtual clock: where the last run ended (the world's own clock stays at
    /// its last event).
    clock: u64,
}

impl SimLab {
    /// The virtualized design of `estate`, seeded with `seed`.
    pub fn new(estate: &Estate, seed: u64) -> Result<Self, SimError> {
        let options = Options {
            env: EnvironmentType::Virtualized,
            seed,
            duration: HORIZON,
            input: InputDigest::default(),
        };
        let s = setup(estate, &options)?;
        let fresh = s.control.clone();
        Ok(Self {
            world: World::new(s, &options, |_| {}),
            control: fresh.clone().durable(),
            fresh,
            store: MemoryStore::default(),
            clock: 0,
        })
    }

    /// One step of the control loop on `observation` at `now`: persist, then send.
    fn step(&mut self, now: Time, observation: Observation) {
        let ready = self.control.handle(now, observation);
        self.persist(&ready);
        self.world.apply(now, ready);
    }

    fn persist(&mut self, ready: &Ready) {
        // A memory store refuses only a write that does not build on its version, which
        // this single writer never makes.
        if let Err(e) = self.store.write(&ready.writes) {
            panic!("the lab's store refused a write: {e}");
        }
    }
}

impl SimLab {
    /// Runs every event up to virtual time `until`; the lab's clock is then `until`, even
    /// when the world had nothing to do meanwhile.
    fn run_to(&mut self, until: u64) {
        self.clock = until;
        loop {
            let wakeup = self.control.next_wakeup();
            let next = [self.world.next_at(), wakeup.map(Time::millis)]
                .into_iter()
                .flatten()
                .min();
            if next.is_none_or(|t| t > until) {
                break;
            }
            let Some((now, observation)) = self.world.next(wakeup) else {
                break;
            };
            self.step(now, observation);
        }
    }
}

/// How often [`SimLab::run_until`] checks its condition, virtual ms.
const CHECK_EVERY_MS: u64 = 1_000;

impl Lab for SimLab {
    fn run_until(&mut self, ms: u64, done: &dyn Fn(&Self) -> bool) -> bool {
        let start = self.clock.max(self.world.now());
        let until = start.saturating_add(ms);
        let mut t = start;
        while !done(self) {
            if t >= until {
                return false;
            }
            t = t.saturating_add(CHECK_EVERY_MS).min(until);
            self.run_to(t);
        }
        true
    }

    fn now(&self) -> u64 {
        self.clock.max(self.world.now())
    }

    fn request(&mut self, change: Observation) {
        let now = Time(self.world.now());
        self.step(now, change);
    }

    /// The simulated nodes carry no image of their own: the rollout is the change.
    fn change_image(&mut self, cluster: &str, _image: &str) {
        self.request(Observation::UpgradeRequested {
            cluster: cluster.to_owned(),
            upgrade: UpgradeKind::Os,
        });
    }

    fn crash(&mut self, host: &str) {
        let now = self.world.now();
        self.world.schedule_failure(host, now);
    }

    fn partition(&mut self, host: &str) {
        self.world.partition_for(host, HORIZON);
    }

    fn heal(&mut self, host: &str) {
        self.world.heal_now(host);
    }

    fn restart_control_plane(&mut self) {
        let now = Time(self.world.now());
        let records = match self.store.load() {
            Ok(r) => r,
            Err(e) => panic!("the lab's store does not load: {e}"),
        };
        self.control = match self.fresh.clone().restore(&records, now) {
            Ok(c) => c,
            Err(e) => panic!("the control plane does not restore: {e}"),
        };
        self.world.control_restarted(0);
    }

    fn clusters(&self) -> Vec<String> {
        self.control.clusters().map(|c| c.name.clone()).collect()
    }

    fn cluster(&self, name: &str) -> Option<ClusterTopology> {
        self.control.cluster(name).cloned()
    }

    fn hosts(&self) -> Vec<String> {
        self.world.host_names()
    }

    fn running_on(&self, vm: &str) -> Option<String> {
        self.world.vm_host(vm).map(str::to_owned)
    }

    fn running(&self, host: &str) -> Vec<String> {
        self.world.running(host)
    }

    fn double_starts(&self) -> u64 {
        self.world.second_copies()
    }

    fn conditions(&self) -> Vec<Condition> {
        self.control.conditions().cloned().collect()
    }

    fn settled(&self) -> bool {
        self.control.settled()
    }

    fn failures(&self) -> Vec<FailureRecord> {
        self.control.failures().to_vec()
    }
}
