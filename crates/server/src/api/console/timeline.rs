//! The timeline: host failures as their phases with durations (from the events that give
//! them), then the newest events.
//!
//! The control plane records the detection (`HeartbeatMissed`), the wait for the fence
//! (`waiting for fence`) and each restart HA issues (`restarting`, naming the failed host)
//! as events, and `ClusterReady` when a cluster is built. The page fills in the phases the
//! events do not give from the changes it watches (a host's VMs running elsewhere, their
//! clusters Ready).

use std::time::{Duration, SystemTime};

use maud::{Markup, html};

use super::objects::{Event, Snapshot};

/// Events shown, newest first.
const SHOWN: usize = 200;

/// A phase of a host failure, in the order they happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Its heartbeats stopped: the control plane saw it silent.
    Detected,
    /// Declared failed; its VMs wait for it to be fenced.
    Fencing,
    /// Its VMs are started on other hosts.
    Restarting,
    /// Every cluster it hit is Ready again.
    Ready,
}

impl Phase {
    const ALL: [Self; 4] = [Self::Detected, Self::Fencing, Self::Restarting, Self::Ready];

    fn name(self) -> &'static str {
        match self {
            Self::Detected => "detected",
            Self::Fencing => "fenced",
            Self::Restarting => "restarted",
            Self::Ready => "Ready",
        }
    }

    /// The phase `event` marks in the failure of `host`, if any.
    fn of(event: &Event, host: &str) -> Option<Self> {
        let about_host = event.involved_object.name == host || event.message.contains(host);
        match event.reason.as_str() {
            "HeartbeatMissed" if event.involved_object.name == host => Some(Self::Detected),
            "waiting for fence" if about_host => Some(Self::Fencing),
            // It names the failed host and the restart's target: only the first counts.
            "restarting" if event.message.starts_with(&format!("host {host} failed;")) => {
                Some(Self::Restarting)
            }
            "ClusterReady" => Some(Self::Ready),
            _ => None,
        }
    }
}

/// One host failure: when each phase was first seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The host.
    pub(crate) host: String,
    /// Each phase seen, with its time, in phase order.
    pub(crate) phases: Vec<(Phase, SystemTime)>,
}

fn time(event: &Event) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(&event.event_time).ok()
}

/// The host failures `events` (oldest first) show: each starts at a host's missed
/// heartbeat and takes, per later phase, the first event that marks it.
pub(crate) fn failures(events: &[Event]) -> Vec<Failure> {
    let mut out: Vec<Failure> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if e.reason != "HeartbeatMissed" || e.involved_object.kind != "Host" {
            continue;
        }
        let host = &e.involved_object.name;
        let Some(start) = time(e) else { continue };
        let mut phases = vec![(Phase::Detected, start)];
        for later in &events[i + 1..] {
            if later.reason == "HeartbeatMissed" && later.involved_object.name == *host {
                break;
            }
            let Some(phase) = Phase::of(later, host) else {
                continue;
            };
            let last = phases.last().map_or(Phase::Detected, |(p, _)| *p);
            if phase > last
                && let Some(t) = time(later)
            {
                phases.push((phase, t));
            }
        }
        out.push(Failure {
            host: host.clone(),
            phases,
        });
    }
    out
}

/// A span as a person reads it: `850 ms`, `4.2 s`, `3 min 5 s`.
pub(crate) fn span(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", d.as_secs_f64()),
        _ => format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60),
    }
}

fn clock(event: &Event) -> &str {
    // `2026-11-29T13:40:01.123Z` → `13:40:01.123`
    event
        .event_time
        .get(11..23)
        .unwrap_or(event.event_time.as_str())
}

fn failure_row(f: &Failure) -> Markup {
    let start = f.phases.first().map(|(_, t)| *t);
    html! {
        li.failure data-host=(f.host) {
            strong { (f.host) }
            ol.phases {
                @for phase in Phase::ALL {
                    @let seen = f.phases.iter().find(|(p, _)| *p == phase);
                    li.phase.seen[seen.is_some()] data-phase=(phase.name()) {
                        span.phase-name { (phase.name()) }
                        span.phase-at {
                            @match (seen, start) {
                                (Some((_, t)), Some(s)) => { "+" (span(t.duration_since(s).unwrap_or_default())) }
                                _ => { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The timeline of `snapshot`.
pub(crate) fn render(snapshot: &Snapshot) -> Markup {
    let failures = failures(&snapshot.events);
    html! {
        section.failures aria-label="Host failures" {
            h3 { "Host failures" }
            @if failures.is_empty() {
                p.note { "No host has failed." }
            } @else {
                ol.failure-list { @for f in failures.iter().rev() { (failure_row(f)) } }
            }
        }
        section.events aria-label="Events" {
            h3 { "Events" " " span.note { "(newest first)" } }
            div.event-scroll tabindex="0" aria-label="Events, newest first" {
                table.event-table {
                    thead { tr { th scope="col" { "Time" } th scope="col" { "Type" } th scope="col" { "Object" } th scope="col" { "Reason" } th scope="col" { "Message" } } }
                    tbody {
                        @for e in snapshot.events.iter().rev().take(SHOWN) {
                            tr.event data-reason=(e.reason) class=(format!("type-{}", e.severity.to_lowercase())) {
                                td.time { (clock(e)) }
                                td { (e.severity) }
                                td { (e.involved_object.kind.to_lowercase()) "/" (e.involved_object.name) }
                                td { (e.reason) }
                                td.message { (e.message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::console::objects::Involved;

    fn event(at: &str, kind: &str, name: &str, reason: &str, message: &str) -> Event {
        Event {
            involved_object: Involved {
                kind: kind.into(),
                name: name.into(),
            },
            reason: reason.into(),
            message: message.into(),
            severity: "Warning".into(),
            event_time: format!("2026-11-29T13:{at}Z"),
        }
    }

    #[test]
    fn a_host_failure_is_shown_as_its_phases_with_the_time_from_detection() {
        let events = [
            event("00:00.000", "Cluster", "apps", "ClusterReady", "built"),
            event("00:10.000", "Host", "h1", "HeartbeatMissed", "h1 is silent"),
            event(
                "00:12.500",
                "VirtualMachine",
                "w0",
                "waiting for fence",
                "host h1 is being fenced",
            ),
            event(
                "00:12.600",
                "VirtualMachine",
                "w9",
                "waiting for fence",
                "host h2",
            ),
            event(
                "00:13.000",
                "VirtualMachine",
                "w0",
                "restarting",
                "host h1 failed; HA restarts it on h3",
            ),
            event("00:20.000", "Cluster", "apps", "ClusterReady", "built"),
        ];
        let found = failures(&events);
        assert_eq!(found.len(), 1);
        let at: Vec<(Phase, String)> = found[0]
            .phases
            .iter()
            .map(|(p, t)| {
                let since = t.duration_since(found[0].phases[0].1).unwrap_or_default();
                (*p, span(since))
            })
            .collect();
        assert_eq!(
            at,
            [
                (Phase::Detected, "0 ms".to_owned()),
                (Phase::Fencing, "2.5 s".to_owned()),
                (Phase::Restarting, "3.0 s".to_owned()),
                (Phase::Ready, "10.0 s".to_owned()),
            ]
        );
    }
}
