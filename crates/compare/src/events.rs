//! Reading one run's event log (JSON Lines, `docs/architecture.md`) into the facts the
//! dimensions need. Everything a dimension takes from a run comes through here, so a report
//! rebuilt from saved logs (`--from-events`) equals the one made while simulating.

use std::collections::BTreeMap;

use serde::Deserialize;
use thiserror::Error;

/// A log that cannot be read.
#[derive(Debug, Error)]
pub enum LogError {
    /// A line is not a JSON event.
    #[error("line {line}: {source}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The log has no `start` or no `end` event: it was cut short.
    #[error("the log has no `{0}` event; it is not a complete run")]
    Incomplete(&'static str),
}

#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "camelCase")]
enum Event {
    #[serde(rename_all = "camelCase")]
    Start {
        env: String,
        seed: u64,
        duration_ms: u64,
    },
    #[serde(rename_all = "camelCase")]
    End {
        pod_minutes_unavailable: f64,
    },
    HostFailed {
        t: u64,
    },
    NodeNotReady {
        t: u64,
        pods: u32,
    },
    WorkloadAvailability {
        t: u64,
        workload: String,
        available: u32,
        desired: u32,
    },
    PatchWave {
        hosts: u32,
    },
    #[serde(rename_all = "camelCase")]
    MaintenanceFinished {
        pods_disrupted: u32,
    },
    #[serde(rename_all = "camelCase")]
    UpgradeFinished {
        cluster: String,
        kind: String,
        duration_ms: u64,
        cpu_ms_lost: f64,
    },
    QuorumLost {
        t: u64,
        cluster: String,
    },
    QuorumRestored {
        t: u64,
        cluster: String,
    },
    Reimaged {},
    NodeReplaced {
        method: String,
    },
    #[serde(rename_all = "camelCase")]
    Hourly {
        cpu_capacity_milli: f64,
        mem_capacity_bytes: f64,
        cpu_used_milli: f64,
        mem_used_bytes: f64,
    },
    #[serde(other)]
    Other,
}

/// One upgrade as the log tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Upgrade {
    /// Cluster.
    pub cluster: String,
    /// `kubernetes` or `os`.
    pub kind: String,
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
    /// `virtualized` or `bare-metal`.
    pub env: String,
    /// Seed.
    pub seed: u64,
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
    /// Bare-metal reimages.
    pub reimages: u32,
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

/// Reads one run's facts from its event log.
pub fn read_log(log: &[u8]) -> Result<RunFacts, LogError> {
    let mut facts = RunFacts::default();
    let (mut started, mut ended) = (false, false);
    // Per workload: (last t, available, desired, ∫available, ∫desired).
    let mut avail: BTreeMap<String, (u64, u32, u32, f64, f64)> = BTreeMap::new();
    let mut lost_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut last_failure_t: Option<u64> = None;
    for (i, line) in log.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let event: Event = serde_json::from_slice(line).map_err(|source| LogError::Line {
            line: i + 1,
            source,
        })?;
        match event {
            Event::Start {
                env,
                seed,
                duration_ms,
            } => {
                started = true;
                facts.env = env;
                facts.seed = seed;
                facts.duration_ms = duration_ms;
            }
            Event::End {
                pod_minutes_unavailable,
            } => {
                ended = true;
                facts.pod_minutes_unavailable = pod_minutes_unavailable;
            }
            Event::HostFailed { t } => {
                facts.host_failures += 1;
                if last_failure_t != Some(t) {
                    facts.pods_hit.push(0);
                    last_failure_t = Some(t);
                }
            }
            Event::NodeNotReady { t, pods } => {
                if last_failure_t == Some(t)
                    && let Some(last) = facts.pods_hit.last_mut()
                {
                    *last += pods;
                }
            }
            Event::WorkloadAvailability {
                t,
                workload,
                available,
                desired,
            } => {
                let e = avail
                    .entry(workload)
                    .or_insert((t, available, desired, 0.0, 0.0));
                let dt = (t - e.0) as f64;
                e.3 += f64::from(e.1) * dt;
                e.4 += f64::from(e.2) * dt;
                (e.0, e.1, e.2) = (t, available, desired);
            }
            Event::PatchWave { hosts } => facts.hosts_patched += hosts,
            Event::MaintenanceFinished { pods_disrupted } => {
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
            } => facts.upgrades.push(Upgrade {
                cluster,
                kind,
                duration_ms,
                cpu_ms_lost,
            }),
            Event::QuorumLost { t, cluster } => {
                lost_since.entry(cluster).or_insert(t);
            }
            Event::QuorumRestored { t, cluster } => {
                if let Some(since) = lost_since.remove(&cluster) {
                    facts.quorum_lost_ms += t - since;
                }
            }
            Event::Reimaged {} => facts.reimages += 1,
            Event::NodeReplaced { method } => {
                if method == "remediate" {
                    facts.remediations += 1;
                }
            }
            Event::Hourly {
                cpu_capacity_milli,
                mem_capacity_bytes,
                cpu_used_milli,
                mem_used_bytes,
            } => facts.hours.push(Hour {
                cpu_capacity: cpu_capacity_milli,
                mem_capacity: mem_capacity_bytes,
                cpu_used: cpu_used_milli,
                mem_used: mem_used_bytes,
            }),
            Event::Other => {}
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
    use super::*;

    const LOG: &str = r#"{"t":0,"event":"start","env":"virtualized","seed":3,"durationMs":1000}
{"t":0,"event":"workloadAvailability","workload":"w","available":2,"desired":2}
{"t":100,"event":"hostFailed","host":"h1"}
{"t":100,"event":"nodeNotReady","node":"n1","pods":3}
{"t":100,"event":"nodeNotReady","node":"n2","pods":2}
{"t":100,"event":"quorumLost","cluster":"c"}
{"t":200,"event":"workloadAvailability","workload":"w","available":1,"desired":2}
{"t":300,"event":"quorumRestored","cluster":"c"}
{"t":700,"event":"workloadAvailability","workload":"w","available":2,"desired":2}
{"t":800,"event":"somethingNew","x":1}
{"t":1000,"event":"end","podMinutesUnavailable":0.5}
"#;

    #[test]
    fn facts_of_a_small_log() {
        let f = read_log(LOG.as_bytes()).expect("log");
        assert_eq!(f.env, "virtualized");
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
            read_log(cut.as_bytes()),
            Err(LogError::Incomplete("end"))
        ));
        assert!(matches!(
            read_log(b"{\"t\":0,\"event\":\"start\"\n"),
            Err(LogError::Line { line: 1, .. })
        ));
    }
}
