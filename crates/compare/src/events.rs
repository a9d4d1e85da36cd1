//! Reading one run's event log (`plinth_events`, a header first) into the facts the
//! dimensions need. Everything a dimension takes from a run comes through here, so a report
//! rebuilt from saved logs (`--from-events`) equals the one made while simulating.

use std::collections::BTreeMap;

use plinth_events::{Event, EventsError, Expected, LogReader, ReplaceMethod, UpgradeKind};
use thiserror::Error;

/// A log that cannot be read.
#[derive(Debug, Error)]
pub enum LogError {
    /// A line cannot be read, the header is missing, or it is for another run.
    #[error(transparent)]
    Read(#[from] EventsError),
    /// The log has no `start` or no `end` event: it was cut short.
    #[error("the log has no `{0}` event; it is not a complete run")]
    Incomplete(&'static str),
}

/// One upgrade as the log tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Upgrade {
    /// Cluster.
    pub cluster: String,
    /// What changed.
    pub kind: UpgradeKind,
    /// Start to finish, ms.
    pub duration_ms: u64,
    /// Allocatable milli-CPU × ms not schedulable during it.
    pub cpu_ms_lost: f64,
}

/// One hour of the estate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hour {
    /// Physical CPU of the hosts up, milli-CPU.
    pub cpu_capacity: f64,
    /// Physical memory of the hosts up, bytes.
    pub mem_capacity: f64,
    /// CPU used, milli-CPU.
    pub cpu_used: f64,
    /// Memory used, bytes.
    pub mem_used: f64,
}

/// What one run amounted to, read from its log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunFacts {
    /// Simulated time, ms.
    pub duration_ms: u64,
    /// Pod-minutes unavailable over the run.
    pub pod_minutes_unavailable: f64,
    /// Per workload: available pod-time over desired pod-time.
    pub availability: BTreeMap<String, f64>,
    /// Pods made unavailable by each host or rack failure, in log order.
    pub pods_hit: Vec<u32>,
    /// Host failures.
    pub host_failures: u32,
    /// Hosts patched (summed over patch waves).
    pub hosts_patched: u32,
    /// Maintenances finished, and those that disrupted no pod.
    pub maintenances: (u32, u32),
    /// Upgrades finished.
    pub upgrades: Vec<Upgrade>,
    /// Control-plane time without quorum, ms, summed over clusters.
    pub quorum_lost_ms: u64,
    /// Nodes a rollout replaced or reimaged (`nodeReplaced` with a method other than
    /// `remediate`), in either design.
    pub rolled: u32,
    /// Nodes replaced by machine-health remediation (not by a rollout).
    pub remediations: u32,
    /// Hourly estate totals.
    pub hours: Vec<Hour>,
}

impl RunFacts {
    /// Years simulated.
    pub fn years(&self) -> f64 {
        self.duration_ms as f64 / (365.0 * 86_400_000.0)
    }
}

/// Reads one run's facts from its event log, refusing a log whose header is not for the
/// `expected` run.
pub fn read_log(log: &[u8], expected: &Expected) -> Result<RunFacts, LogError> {
    let reader = LogReader::new(log)?.expect(expected)?;
    let mut facts = RunFacts {
        duration_ms: reader.header().duration_ms,
        ..RunFacts::default()
    };
    let (mut started, mut ended) = (false, false);
    // Per workload: (last t, available, desired, ∫available, ∫desired).
    let mut avail: BTreeMap<String, (u64, u32, u32, f64, f64)> = BTreeMap::new();
    let mut lost_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_failure_t: Option<u64> = None;
    for record in reader {
        let record = record?;
        let t = record.t;
        match record.event {
            Event::Start { .. } => started = true,
            Event::End {
                pod_minutes_unavailable,
                ..
            } => {
                ended = true;
                facts.pod_minutes_unavailable = pod_minutes_unavailable;
            }
            Event::HostFailed { .. } => {
                facts.host_failures += 1;
                if last_failure_t != Some(t) {
                    facts.pods_hit.push(0);
                    last_failure_t = Some(t);
                }
            }
            Event::NodeNotReady { pods, .. } => {
                if last_failure_t == Some(t)
                    && let Some(last) = facts.pods_hit.last_mut()
                {
                    *last += pods;
                }
            }
            Event::WorkloadAvailability {
                workload,
                available,
                desired,
            } => {
                let e = avail
                    .entry(workload.into_owned())
                    .or_insert((t, available, desired, 0.0, 0.0));
                let dt = t.saturating_sub(e.0) as f64;
                e.3 += f64::from(e.1) * dt;
                e.4 += f64::from(e.2) * dt;
                (e.0, e.1, e.2) = (t, available, desired);
            }
            Event::PatchWave { hosts, .. } => facts.hosts_patched += hosts,
            Event::MaintenanceFinished { pods_disrupted, .. } => {
                facts.maintenances.0 += 1;
                if pods_disrupted == 0 {
                    facts.maintenances.1 += 1;
                }
            }
            Event::UpgradeFinished {
                cluster,
                kind,
                duration_ms,
                cpu_ms_lost,
                ..
            } => facts.upgrades.push(Upgrade {
                cluster: cluster.into_owned(),
                kind,
                duration_ms,
                cpu_ms_lost: cpu_ms_lost as f64,
            }),
            Event::QuorumLost { cluster } => {
                lost_since.entry(cluster.into_owned()).or_insert(t);
            }
            Event::QuorumRestored { cluster } => {
                if let Some(since) = lost_since.remove(cluster.as_ref()) {
                    facts.quorum_lost_ms += t.saturating_sub(since);
                }
            }
            Event::NodeReplaced {
                method: ReplaceMethod::Remediate,
                ..
            } => facts.remediations += 1,
            Event::NodeReplaced { .. } => facts.rolled += 1,
            Event::Hourly(h) => facts.hours.push(Hour {
                cpu_capacity: h.cpu_capacity_milli as f64,
                mem_capacity: h.mem_capacity_bytes as f64,
                cpu_used: h.cpu_used_milli as f64,
                mem_used: h.mem_used_bytes as f64,
            }),
            _ => {}
        }
    }
    if !started {
        return Err(LogError::Incomplete("start"));
    }
    if !ended {
        return Err(LogError::Incomplete("end"));
    }
    let end = facts.duration_ms;
    for since in lost_since.into_values() {
        facts.quorum_lost_ms += end.saturating_sub(since);
    }
    for (w, (t, a, d, ia, id)) in avail {
        let dt = end.saturating_sub(t) as f64;
        let (ia, id) = (ia + f64::from(a) * dt, id + f64::from(d) * dt);
        facts
            .availability
            .insert(w, if id > 0.0 { ia / id } else { 1.0 });
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use plinth_events::{EnvironmentType, InputDigest};

    use super::*;

    const LOG: &str = r#"{"t":0,"event":"header","formatVersion":1,"plinthVersion":"0.1.0","input":"0000000000000000000000000000000000000000000000000000000000000000","seed":3,"durationMs":1000,"design":"virtualized","source":"simulation"}
{"t":0,"event":"start","hosts":2,"vms":2,"nodes":2,"pods":5,"vmsUnplaced":[]}
{"t":0,"event":"workloadAvailability","workload":"w","available":2,"desired":2}
{"t":100,"event":"hostFailed","host":"h1","repairMs":50,"vmsLost":["n1","n2"]}
{"t":100,"event":"nodeNotReady","node":"n1","pods":3}
{"t":100,"event":"nodeNotReady","node":"n2","pods":2}
{"t":100,"event":"quorumLost","cluster":"c"}
{"t":200,"event":"workloadAvailability","workload":"w","available":1,"desired":2}
{"t":300,"event":"quorumRestored","cluster":"c"}
{"t":700,"event":"workloadAvailability","workload":"w","available":2,"desired":2}
{"t":1000,"event":"end","hostFailures":1,"podMinutesUnavailable":0.5,"secondCopies":0}
"#;

    fn expected() -> Expected {
        Expected {
            input: InputDigest::default(),
            seed: 3,
            duration_ms: 1000,
            design: EnvironmentType::Virtualized,
        }
    }

    #[test]
    fn facts_of_a_small_log() {
        let f = read_log(LOG.as_bytes(), &expected()).expect("log");
        assert_eq!(f.duration_ms, 1000);
        assert_eq!(f.pods_hit, vec![5]);
        assert_eq!(f.quorum_lost_ms, 200);
        // One of two pods missing for 500 of 1000 ms: 0.75.
        assert!((f.availability["w"] - 0.75).abs() < 1e-12);
        assert_eq!(f.pod_minutes_unavailable, 0.5);
    }

    #[test]
    fn a_cut_log_is_an_error_not_a_report() {
        let cut: String = LOG.lines().take(5).collect::<Vec<_>>().join("\n");
        assert!(matches!(
            read_log(cut.as_bytes(), &expected()),
            Err(LogError::Incomplete("end"))
        ));
        let broken = LOG.replacen("\"pods\":3}", "\"pods\":-3}", 1);
        assert!(matches!(
            read_log(broken.as_bytes(), &expected()),
            Err(LogError::Read(EventsError::Line { line: 5, .. }))
        ));
    }

    #[test]
    fn a_log_of_another_run_is_refused() {
        let other = Expected {
            seed: 4,
            ..expected()
        };
        assert!(matches!(
            read_log(LOG.as_bytes(), &other),
            Err(LogError::Read(EventsError::Mismatch { line: 1, .. }))
        ));
    }
}
