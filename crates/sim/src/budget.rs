//! The event budget: a run that takes more steps and writes more events in one simulated
//! day than any estate within the documented input ranges needs stops with an error that
//! names the input driving the rate, rather than running for hours or filling a disk.

use std::fmt;

/// Events (queue steps plus log records) one simulated day may take by default. The
/// busiest day of a year of `examples/enterprise` writes about 460 log lines, and the same
/// estate with every MTBF at its floor (1 day) and one-minute repairs about 1,700, so the
/// default is some 600 times what an estate within the input ranges needs and still ends
/// a runaway run within seconds. `--max-events-per-day` changes it.
pub const EVENTS_PER_DAY: u64 = 1_000_000;

/// One simulated day, ms.
const DAY_MS: u64 = 86_400_000;

/// What drives the events of a step: the input to look at when a day overruns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateDriver {
    /// Host crashes and repairs.
    HostFailures,
    /// Rack power events.
    RackFailures,
    /// Patch waves and the maintenances they request.
    Patching,
    /// Scheduled rollouts.
    Upgrades,
    /// Steps of the operations timeline.
    Timeline,
    /// The control plane's own work: timers, commands and their answers.
    ControlPlane,
    /// Pods evicted, rescheduled and started.
    Pods,
    /// The hourly series.
    Hourly,
    /// Simulated network faults between the control plane and host agents.
    NetworkFaults,
}

impl RateDriver {
    /// Every driver, in the order [`Budget`] counts them.
    const ALL: [Self; 9] = [
        Self::HostFailures,
        Self::RackFailures,
        Self::Patching,
        Self::Upgrades,
        Self::Timeline,
        Self::ControlPlane,
        Self::Pods,
        Self::Hourly,
        Self::NetworkFaults,
    ];

    /// The input that sets this driver's rate, and what to change.
    pub fn input(self) -> &'static str {
        match self {
            Self::HostFailures => {
                "Scenario spec.failures.hosts (mtbf, repair) and the number of hosts: raise the MTBF or use fewer hosts"
            }
            Self::RackFailures => "Scenario spec.failures.racks (mtbf, repair): raise the MTBF",
            Self::Patching => {
                "Scenario spec.osPatchingInterval and the number of hosts: patch less often"
            }
            Self::Upgrades => {
                "Scenario spec.kubernetesUpgradesPerYear and the clusters' node counts: upgrade less often"
            }
            Self::Timeline => "the Scenario's operations timeline: fewer or smaller steps",
            Self::ControlPlane => {
                "what the control plane reacts to: Scenario spec.failures (MTBFs, repair times), spec.operations and Environment drs.interval"
            }
            Self::Pods => {
                "workload replicas and the failures that evict them: fewer replicas or a higher MTBF"
            }
            Self::Hourly => "the hourly series (one event an hour)",
            Self::NetworkFaults => "the simulated network faults",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|d| *d == self).unwrap_or(0)
    }
}

impl fmt::Display for RateDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::HostFailures => "host failures",
            Self::RackFailures => "rack failures",
            Self::Patching => "OS patching",
            Self::Upgrades => "upgrades",
            Self::Timeline => "the operations timeline",
            Self::ControlPlane => "control-plane commands and timers",
            Self::Pods => "pod evictions and restarts",
            Self::Hourly => "the hourly series",
            Self::NetworkFaults => "network faults",
        };
        f.write_str(name)
    }
}

/// A simulated day that took more events than [`EVENTS_PER_DAY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overrun {
    /// The day, from 0.
    pub day: u64,
    /// Events it took before the run stopped.
    pub events: u64,
    /// What took most of them.
    pub driver: RateDriver,
}

/// Events counted per simulated day, by driver.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    limit: u64,
    day: u64,
    used: u64,
    by: [u64; RateDriver::ALL.len()],
}

impl Budget {
    /// A budget of `limit` events per simulated day.
    pub(crate) fn new(limit: u64) -> Self {
        Self {
            limit,
            day: 0,
            used: 0,
            by: [0; RateDriver::ALL.len()],
        }
    }

    /// Events a day may take.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Counts `events` at `now` ms against the day's budget; the overrun when the day has
    /// taken more than its budget.
    pub(crate) fn charge(&mut self, now: u64, driver: RateDriver, events: u64) -> Option<Overrun> {
        let day = now / DAY_MS;
        if day != self.day {
            self.day = day;
            self.used = 0;
            self.by = [0; RateDriver::ALL.len()];
        }
        self.used = self.used.saturating_add(events);
        let slot = &mut self.by[driver.index()];
        *slot = slot.saturating_add(events);
        (self.used > self.limit).then(|| Overrun {
            day,
            events: self.used,
            driver: self.top(),
        })
    }

    /// The driver that took most of the day's events (the first of equals).
    fn top(&self) -> RateDriver {
        RateDriver::ALL
            .into_iter()
            .zip(self.by)
            .fold((RateDriver::HostFailures, 0), |best, (d, n)| {
                if n > best.1 { (d, n) } else { best }
            })
            .0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_over_budget_names_what_took_most_of_it() {
        let mut b = Budget::new(10);
        assert_eq!(b.charge(0, RateDriver::Pods, 4), None);
        assert_eq!(b.charge(1, RateDriver::Patching, 6), None);
        assert_eq!(
            b.charge(2, RateDriver::Patching, 1),
            Some(Overrun {
                day: 0,
                events: 11,
                driver: RateDriver::Patching
            })
        );
    }

    #[test]
    fn each_day_starts_with_a_full_budget() {
        let mut b = Budget::new(10);
        for day in 0..5 {
            assert_eq!(
                b.charge(day * DAY_MS + 5, RateDriver::ControlPlane, 10),
                None
            );
        }
        assert!(b.charge(u64::MAX, RateDriver::Hourly, u64::MAX).is_some());
    }
}
