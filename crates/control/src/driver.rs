//! The driver interface both drivers implement, and the one control loop over it.
//!
//! A driver owns time and the world: the simulator pops its virtual-time queue, the QEMU
//! driver waits on agent messages or the wall clock. The control plane only sees what the
//! driver hands it.

use crate::command::{Command, ConditionChange, ControlEvent, Observation};
use crate::control::Control;
use crate::time::Time;

/// What the control loop needs from a driver.
pub trait Driver {
    /// The next observation and its time: whatever the world reports first, or
    /// [`Observation::Timer`] at `wakeup` if nothing comes before it. `None` ends the run.
    fn next(&mut self, wakeup: Option<Time>) -> Option<(Time, Observation)>;

    /// Carries out `command` (issued at `now`); its outcome comes back later from
    /// [`Driver::next`] as exactly one `CommandCompleted` or `CommandFailed`.
    fn submit(&mut self, now: Time, command: Command);

    /// Conditions the control plane set or cleared at `now` (the simulator logs them; a
    /// real driver stores them for users to read).
    fn publish(&mut self, now: Time, changes: Vec<ConditionChange>);

    /// Milestones the control plane reached at `now` (upgrade started or finished, node
    /// replaced), before the commands of the same step are submitted.
    fn record(&mut self, now: Time, events: Vec<ControlEvent>);
}

/// Runs `control` against `driver` until the driver ends the run.
pub fn run(control: &mut Control, driver: &mut impl Driver) {
    while let Some((now, observation)) = driver.next(control.next_wakeup()) {
        let commands = control.handle(now, observation);
        let changes = control.take_condition_changes();
        if !changes.is_empty() {
            driver.publish(now, changes);
        }
        let events = control.take_events();
        if !events.is_empty() {
            driver.record(now, events);
        }
        for command in commands {
            driver.submit(now, command);
        }
    }
}
