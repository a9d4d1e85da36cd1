//! The driver interface both drivers implement, and the one control loop over it.
//!
//! A driver owns time and the world: the simulator pops its virtual-time queue, the QEMU
//! driver waits on agent messages or the wall clock. The control plane only sees what the
//! driver hands it.

use crate::command::{Observation, Ready};
use crate::control::Control;
use crate::time::Time;

/// What the control loop needs from a driver.
pub trait Driver {
    /// The next observation and its time: whatever the world reports first, or
    /// [`Observation::Timer`] at `wakeup` if nothing comes before it. `None` ends the run.
    fn next(&mut self, wakeup: Option<Time>) -> Option<(Time, Observation)>;

    /// Carries out one step of the control plane, taken at `now`: first keeps its
    /// conditions and events (the simulator logs them; a real driver persists them for
    /// users to read), then sends its commands. Each command's outcome comes back later
    /// from [`Driver::next`] as at most one `CommandCompleted` or `CommandFailed`; the
    /// control plane times out the ones that never answer.
    fn apply(&mut self, now: Time, ready: Ready);
}

/// Runs `control` against `driver` until the driver ends the run.
pub fn run(control: &mut Control, driver: &mut impl Driver) {
    while let Some((now, observation)) = driver.next(control.next_wakeup()) {
        let ready = control.handle(now, observation);
        if !ready.is_empty() {
            driver.apply(now, ready);
        }
    }
}
