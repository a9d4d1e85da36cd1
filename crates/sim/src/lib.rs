//! The simulation driver: the world behind the control plane, in virtual time.
//!
//! This crate owns the *simulated world*: a virtual clock and an event queue ordered by
//! (time, sequence), seeded host failure and repair processes, the latencies of every
//! command (VM boot, live migration from memory size and bandwidth with a dirty-page term,
//! fencing with its chance to fail, bare-metal install and reboot), heartbeats, and the
//! Kubernetes behaviour on top (a lost node's pods are unavailable, then evicted after the
//! node-monitor grace period and the not-ready toleration, or at once when the control
//! plane marks the node out of service, and rescheduled where capacity exists; pods with
//! local volumes wait for their node). It writes a JSON Lines event log
//! in a stable order and a summary. It must not read the wall clock or any entropy source:
//! the same estate, environment, seed and duration give a byte-identical log.
//!
//! Decisions are not made here: [`plinth_control::Control`] makes them, and this driver
//! only carries out its commands and reports what a real estate would report.

pub mod budget;
mod failures;
pub mod faults;
mod lab;
mod log;
mod setup;
mod world;

pub use failures::FailureStream;
pub use lab::SimLab;
pub use log::LogOutput;
pub use setup::{
    Greenfield, Headroom, Setup, SimControlPlane, SimError, Usage, greenfield, owned_setup, setup,
};
pub use world::{FailureCause, POD_START_MS, PhaseStats, Phases, SimFailure, Summary, World};

use plinth_control::store::Store;
use plinth_control::{Control, Driver, Ready, Time, run};
use plinth_events::InputDigest;
use plinth_model::Estate;
use plinth_model::kinds::environment::EnvironmentType;

/// What one run is asked to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Which design to simulate.
    pub env: EnvironmentType,
    /// Seed of every random stream.
    pub seed: u64,
    /// Simulated time, ms.
    pub duration: u64,
    /// The digest of the input the estate was loaded from, written into the log's header
    /// so a reader can tell the log belongs to it (the estate itself has no canonical
    /// serialization to hash; see [`InputDigest`]).
    pub input: InputDigest,
}

/// A finished run: the event log (JSON Lines of [`plinth_events::Record`], a header first,
/// a digest last) and its summary.
#[derive(Clone, Debug)]
pub struct Run {
    /// The event log, one JSON object per line, in (time, sequence) order; empty when it
    /// was streamed elsewhere ([`LogOutput::stream`]).
    pub log: Vec<u8>,
    /// Totals and recovery times.
    pub summary: Summary,
}

/// Simulates `estate` under `options`.
pub fn simulate(estate: &Estate, options: &Options) -> Result<Run, SimError> {
    simulate_with(estate, options, |_| {})
}

/// [`simulate`], calling `progress` with the virtual time reached (ms) now and then.
pub fn simulate_with(
    estate: &Estate,
    options: &Options,
    progress: impl FnMut(u64),
) -> Result<Run, SimError> {
    simulate_into(estate, options, LogOutput::memory(), progress)
}

/// [`simulate_with`], the event log going to `output` as it is written: a run's memory
/// does not grow with its log unless `output` keeps it.
pub fn simulate_into<'a>(
    estate: &Estate,
    options: &Options,
    output: LogOutput<'a>,
    progress: impl FnMut(u64) + 'a,
) -> Result<Run, SimError> {
    let s = setup(estate, options)?;
    let mut control = s.control.clone();
    let mut world = World::with_output(s, options, output, progress);
    run(&mut control, &mut world);
    world.finish(&control)
}

/// Runs `control` durably against `world` through `store`, and crashes it at each time of
/// `crashes` (ms, ascending): the step being taken has its records written but its
/// commands are never sent — the worst case the persist-before-send rule allows — and a
/// control plane built by `fresh` is restored from the store and carries on, while every
/// agent reconnects. For testing that a restart loses nothing and doubles nothing.
pub fn run_restarting(
    fresh: impl Fn() -> Control,
    mut world: World<'_>,
    store: &mut impl Store,
    crashes: &[u64],
) -> Result<Run, SimError> {
    let store_error = |source| SimError::Store { source };
    let mut control = fresh().durable();
    let mut crashes = crashes.iter().copied().peekable();
    while let Some((now, observation)) = world.next(control.next_wakeup()) {
        let ready = control.handle(now, observation);
        store.write(&ready.writes).map_err(store_error)?;
        if crashes.next_if(|t| *t <= now.millis()).is_some() {
            let lost = ready.commands.len();
            world.apply(
                now,
                Ready {
                    commands: Vec::new(),
                    ..ready
                },
            );
            control = fresh()
                .restore(&store.load().map_err(store_error)?, Time(now.millis()))
                .map_err(store_error)?;
            world.control_restarted(lost);
            continue;
        }
        world.apply(now, ready);
    }
    world.finish(&control)
}

/// Runs an already built world and control to the end (for tests that shape the estate).
pub fn run_world(mut control: Control, mut world: World<'_>) -> Result<Run, SimError> {
    run(&mut control, &mut world);
    world.finish(&control)
}
