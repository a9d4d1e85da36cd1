//! Reading one run's event log (`plinth_events`, a header first) into the facts the
//! dimensions need. Everything a dimension takes from a run comes through here, so a report
//! rebuilt from saved logs (`--from-events`) equals the one made while simulating.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;

use plinth_events::{
    Event, EventsError, Expected, LogReader, Record, ReplaceMethod, Sink, Source, UpgradeKind,
};
use plinth_model::estate::Estate;
use thiserror::Error;

use crate::design::Design;

/// A log that cannot be read.
#[derive(Debug, Error)]
pub enum LogError {
    /// A line cannot be read, the header is missing, or it is for another run.
    #[error(transparent)]
    Read(#[from] EventsError),
    /// The log has no `start` or no `end` event: it was cut short.
    #[error("the log has no `{0}` event; it is not a complete run")]
    Incomplete(&'static str),
    /// An event names an object this input does not have.
    #[error(
        "line {line}: the log names {kind} `{name}`, which this input does not have (a log of another input, or edited)"
    )]
    Unknown {
        /// 1-based line number.
        line: usize,
        /// What it names (`workload`, `cluster`, `host`, `rack`).
        kind: &'static str,
        /// The name (an excerpt).
        name: String,
    },
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
#[derive(Clone, Debug, PartialEq)]
pub struct RunFacts {
    /// Where the log comes from: the simulator or a real run.
    pub source: Source,
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

impl Default for RunFacts {
    fn default() -> Self {
        Self {
            source: Source::Simulation,
            duration_ms: 0,
            pod_minutes_unavailable: 0.0,
            availability: BTreeMap::new(),
            pods_hit: Vec::new(),
            host_failures: 0,
            hosts_patched: 0,
            maintenances: (0, 0),
            upgrades: Vec::new(),
            quorum_lost_ms: 0,
            rolled: 0,
            remediations: 0,
            hours: Vec::new(),
        }
    }
}

impl RunFacts {
    /// Years simulated.
    pub fn years(&self) -> f64 {
        self.duration_ms as f64 / (365.0 * 86_400_000.0)
    }
}

/// A run's facts, folded from its records one at a time as they are produced (while
/// simulating) or read back (`--from-events`): the one place a run's log becomes facts, so
/// both give the same report, and no log is held whole.
#[derive(Clone, Debug, Default)]
pub struct Fold {
    facts: RunFacts,
    started: bool,
    ended: bool,
    /// Per workload: (last t, available, desired, ∫available, ∫desired).
    avail: BTreeMap<String, (u64, u32, u32, f64, f64)>,
    lost_since: BTreeMap<String, u64>,
    last_failure_t: Option<u64>,
}

impl Fold {
    /// Adds one record.
    pub fn add(&mut self, record: &Record<'_>) {
        let facts = &mut self.facts;
        let t = record.t;
        match &record.event {
            Event::Header(h) => {
                facts.duration_ms = h.duration_ms;
                facts.source = h.source;
            }
            Event::Start { .. } => self.started = true,
            Event::End {
                pod_minutes_unavailable,
                ..
            } => {
                self.ended = true;
                facts.pod_minutes_unavailable = *pod_minutes_unavailable;
            }
            Event::HostFailed { .. } => {
                facts.host_failures += 1;
                if self.last_failure_t != Some(t) {
                    facts.pods_hit.push(0);
                    self.last_failure_t = Some(t);
                }
            }
            Event::NodeNotReady { pods, .. } => {
                if self.last_failure_t == Some(t)
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
                let e = match self.avail.get_mut(workload.as_ref()) {
                    Some(e) => e,
                    None => self
                        .avail
                        .entry(workload.clone().into_owned())
                        .or_insert((t, *available, *desired, 0.0, 0.0)),
                };
                let dt = t.saturating_sub(e.0) as f64;
                e.3 += f64::from(e.1) * dt;
                e.4 += f64::from(e.2) * dt;
                (e.0, e.1, e.2) = (t, *available, *desired);
            }
            Event::PatchWave { hosts, .. } => facts.hosts_patched += hosts,
            Event::MaintenanceFinished { pods_disrupted, .. } => {
                facts.maintenances.0 += 1;
                if *pods_disrupted == 0 {
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
                cluster: cluster.clone().into_owned(),
                kind: *kind,
                duration_ms: *duration_ms,
                cpu_ms_lost: *cpu_ms_lost as f64,
            }),
            Event::QuorumLost { cluster } if !self.lost_since.contains_key(cluster.as_ref()) => {
                self.lost_since.insert(cluster.clone().into_owned(), t);
            }
            Event::QuorumRestored { cluster } => {
                if let Some(since) = self.lost_since.remove(cluster.as_ref()) {
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

    /// The run's facts; a log without its `start` or `end` is not a complete run.
    pub fn finish(self) -> Result<RunFacts, LogError> {
        let mut facts = self.facts;
        if !self.started {
            return Err(LogError::Incomplete("start"));
        }
        if !self.ended {
            return Err(LogError::Incomplete("end"));
        }
        let end = facts.duration_ms;
        for since in self.lost_since.into_values() {
            facts.quorum_lost_ms += end.saturating_sub(since);
        }
        for (w, (t, a, d, ia, id)) in self.avail {
            let dt = end.saturating_sub(t) as f64;
            let (ia, id) = (ia + f64::from(a) * dt, id + f64::from(d) * dt);
            facts
                .availability
                .insert(w, if id > 0.0 { ia / id } else { 1.0 });
        }
        Ok(facts)
    }
}

impl Sink for Fold {
    fn record(&mut self, record: &Record<'_>) -> Result<(), EventsError> {
        self.add(record);
        Ok(())
    }
}

/// The names a log of this input may refer to: its workloads, clusters, hosts (owned or
/// bought by either design) and racks. A saved log naming anything else was written for
/// another input or edited.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Known {
    workloads: BTreeSet<String>,
    clusters: BTreeSet<String>,
    hosts: BTreeSet<String>,
    racks: BTreeSet<String>,
}

impl Known {
    /// The names of `estate` and of the servers and racks its `designs` use, and the names
    /// a design that merges clusters gives their workloads.
    pub fn of(estate: &Estate, designs: &[Design]) -> Self {
        let machines = || designs.iter().flat_map(|d| &d.machines);
        Self {
            workloads: estate
                .workloads
                .iter()
                .map(|w| w.id.to_string())
                .chain(designs.iter().flat_map(|d| d.renamed.keys().cloned()))
                .collect(),
            clusters: estate.clusters.iter().map(|c| c.name.clone()).collect(),
            hosts: estate
                .hosts
                .iter()
                .map(|h| h.name.clone())
                .chain(machines().map(|m| m.name.clone()))
                .collect(),
            racks: estate
                .inventory
                .spec
                .racks
                .iter()
                .map(|r| r.name.clone())
                .chain(machines().map(|m| m.rack.clone()))
                .collect(),
        }
    }

    /// The first name `event` refers to that this input does not have: (what it is, the
    /// name).
    pub fn unknown<'e>(&self, event: &'e Event<'_>) -> Option<(&'static str, &'e str)> {
        let (kind, name, set): (_, &str, _) = match event {
            Event::WorkloadAvailability { workload, .. } => ("workload", workload, &self.workloads),
            Event::PodBound { pod, .. } | Event::PodUnbound { pod, .. } => {
                ("workload", &pod.workload, &self.workloads)
            }
            Event::QuorumLost { cluster }
            | Event::QuorumRestored { cluster }
            | Event::UpgradeFinished { cluster, .. }
            | Event::PodsScheduled { cluster, .. } => ("cluster", cluster, &self.clusters),
            Event::HostFailed { host, .. }
            | Event::HostRepaired { host }
            | Event::MaintenanceRequested { host, .. }
            | Event::MaintenanceFinished { host, .. } => ("host", host, &self.hosts),
            Event::RackFailed { rack, .. } => ("rack", rack, &self.racks),
            _ => return None,
        };
        (!set.contains(name)).then_some((kind, name))
    }
}

/// Reads one run's facts from its event log, refusing a log whose header is not for the
/// `expected` run, whose digest does not match its lines, or that names an object `known`
/// does not have. The log is read line by line.
pub fn read_log(
    log: impl BufRead,
    expected: &Expected,
    known: &Known,
) -> Result<RunFacts, LogError> {
    let mut reader = LogReader::new(log)?.expect(expected)?;
    let mut fold = Fold::default();
    fold.add(&Record::new(0, Event::Header(reader.header().clone())));
    while let Some(record) = reader.next() {
        let record = record?;
        if let Some((kind, name)) = known.unknown(&record.event) {
            return Err(LogError::Unknown {
                line: reader.line(),
                kind,
                name: excerpt(name),
            });
        }
        fold.add(&record);
    }
    fold.finish()
}

/// At most 80 characters of `name`, for an error message.
fn excerpt(name: &str) -> String {
    match name.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &name[..end]),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use plinth_events::{EnvironmentType, InputDigest};

    use super::*;

    const LOG: &str = r#"{"t":0,"event":"header","formatVersion":2,"plinthVersion":"0.1.0","input":"0000000000000000000000000000000000000000000000000000000000000000","seed":3,"durationMs":1000,"design":"virtualized","source":"simulation"}
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

    /// `text`'s records written again by the log writer, so the log ends in its digest.
    fn sealed(text: &str) -> Vec<u8> {
        let mut w = plinth_events::LogWriter::new(Vec::new());
        for line in text.lines() {
            let record: Record<'_> = serde_json::from_str(line).expect("record");
            w.record(&record).expect("write");
        }
        w.finish().expect("finish").0
    }

    fn known() -> Known {
        let set = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        Known {
            workloads: set(&["w"]),
            clusters: set(&["c"]),
            hosts: set(&["h1"]),
            racks: set(&[]),
        }
    }

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
        let f = read_log(&sealed(LOG)[..], &expected(), &known()).expect("log");
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
            read_log(&sealed(&cut)[..], &expected(), &known()),
            Err(LogError::Incomplete("end"))
        ));
        let broken = LOG.replacen("\"pods\":3}", "\"pods\":-3}", 1);
        assert!(matches!(
            read_log(broken.as_bytes(), &expected(), &known()),
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
            read_log(&sealed(LOG)[..], &other, &known()),
            Err(LogError::Read(EventsError::Mismatch { line: 1, .. }))
        ));
    }

    #[test]
    fn a_log_naming_an_object_the_input_lacks_is_refused_at_its_line() {
        let phantom = Known {
            workloads: BTreeSet::new(),
            ..known()
        };
        let err = read_log(&sealed(LOG)[..], &expected(), &phantom).expect_err("phantom");
        assert!(
            matches!(err, LogError::Unknown { line: 3, kind: "workload", ref name } if name == "w"),
            "{err:?}"
        );
    }
}
