//! Every event survives a write and a read unchanged, and the reader refuses logs that
//! are not for the run it reads them for.

use std::borrow::Cow;

use plinth_control::{CommandKind, Condition, Reason, Time};
use plinth_events::{
    Command, CommandId, ConditionChange, EnvironmentType, Event, EventsError, EvictionReason,
    Expected, Header, Hourly, InputDigest, LogDigest, LogReader, LogWriter, PodName, Record,
    ReplaceMethod, RequestedBy, Sink, Source, TimelineAction, UnbindReason, UpgradeKind,
};

fn s(x: &str) -> Cow<'_, str> {
    Cow::Borrowed(x)
}

fn header() -> Header<'static> {
    Header::new(
        InputDigest([7; 32]),
        42,
        86_400_000,
        EnvironmentType::BareMetal,
        Source::Simulation,
    )
}

fn pod() -> PodName<'static> {
    PodName {
        workload: s("shop/default/StatefulSet/db"),
        ordinal: 2,
    }
}

/// One of every variant.
fn samples() -> Vec<Event<'static>> {
    vec![
        Event::Header(header()),
        Event::Start {
            hosts: 4,
            vms: 9,
            nodes: 8,
            pods: 30,
            vms_unplaced: vec![s("legacy-0")],
        },
        Event::End {
            host_failures: 3,
            pod_minutes_unavailable: 12.5,
            second_copies: 0,
        },
        Event::HostFailed {
            host: s("r1-std-01"),
            repair_ms: 28_800_000,
            vms_lost: vec![s("shop-workers-0"), s("shop-cp-1")],
        },
        Event::RackFailed {
            rack: s("r1"),
            hosts: vec![s("r1-std-01")],
            repair_ms: 3_600_000,
        },
        Event::HostRepaired {
            host: s("r1-std-01"),
        },
        Event::Command(Cow::Owned(Command {
            id: CommandId(17),
            deadline: Time(30_000),
            kind: CommandKind::DeleteVm {
                vm: "shop-workers-0".into(),
                host: None,
            },
        })),
        Event::Command(Cow::Owned(Command {
            id: CommandId(18),
            deadline: Time(90_000),
            kind: CommandKind::MigrateVm {
                vm: "shop-workers-0".into(),
                from: "a".into(),
                to: "b".into(),
            },
        })),
        Event::Completed { id: CommandId(17) },
        Event::Failed {
            id: CommandId(18),
            reason: s("host a was lost"),
        },
        Event::Condition(Cow::Owned(ConditionChange::Set(Condition {
            object: "node/shop-workers-1".into(),
            reason: Reason::WaitingForDisruptionBudget,
            message: "draining".into(),
            since: Time(5),
        }))),
        Event::Condition(Cow::Owned(ConditionChange::Cleared {
            object: "node/shop-workers-1".into(),
            at: Time(9),
        })),
        Event::NodeNotReady {
            node: s("shop-workers-0"),
            pods: 5,
        },
        Event::NodeReady {
            node: s("shop-workers-0"),
        },
        Event::NodeAdded {
            node: s("shop-workers-4"),
            pool: s("shop/workers"),
        },
        Event::NodeRemoved {
            node: s("shop-workers-4"),
            pool: s("shop/workers"),
            rescheduled: 3,
            pending_for_capacity: 1,
        },
        Event::PodsEvicted {
            node: s("shop-workers-0"),
            reason: EvictionReason::NodeNotReady,
            rescheduled: 2,
            pending_for_capacity: 1,
            waiting_for_node: 1,
        },
        Event::PodsScheduled {
            cluster: s("shop"),
            pods: 2,
        },
        Event::PodsPending {
            pods: 3,
            reason: s("0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules"),
        },
        Event::PodBound {
            pod: pod(),
            node: s("shop-workers-1"),
        },
        Event::PodUnbound {
            pod: pod(),
            node: s("shop-workers-1"),
            reason: UnbindReason::Drained,
        },
        Event::WorkloadAvailability {
            workload: s("shop/default/Deployment/web"),
            available: 2,
            desired: 3,
        },
        Event::MaintenanceRequested {
            host: s("r1-std-02"),
            by: RequestedBy::Timeline,
        },
        Event::PatchWave { wave: 1, hosts: 4 },
        Event::MaintenanceFinished {
            host: s("r1-std-02"),
            pods_disrupted: 0,
        },
        Event::UpgradeRequested {
            cluster: s("shop"),
            kind: UpgradeKind::Kubernetes,
            by: RequestedBy::Timeline,
            version: Some(s("1.34.1")),
        },
        Event::UpgradeRequested {
            cluster: s("shop"),
            kind: UpgradeKind::Os,
            by: RequestedBy::Schedule,
            version: None,
        },
        Event::UpgradeStarted {
            cluster: s("shop"),
            kind: UpgradeKind::Os,
            nodes: 7,
        },
        Event::NodeReplaced {
            cluster: s("shop"),
            pool: s("workers"),
            old: s("shop-workers-0"),
            new: s("shop-workers-5"),
            method: ReplaceMethod::Surge,
        },
        Event::ScaleRequested {
            cluster: s("shop"),
            pool: s("workers"),
            replicas: 6,
            by: RequestedBy::Timeline,
        },
        Event::ClusterRequested {
            cluster: s("lab"),
            by: RequestedBy::Timeline,
        },
        Event::ClusterReady {
            cluster: s("lab"),
            duration_ms: 600_000,
        },
        Event::Reimaged {
            server: s("r1-std-03"),
            duration_ms: 1_200_000,
        },
        Event::UpgradeFinished {
            cluster: s("shop"),
            kind: UpgradeKind::Kubernetes,
            duration_ms: 7_200_000,
            node_ms_unavailable: 3_600_000,
            cpu_ms_lost: u64::MAX,
            max_nodes_unavailable: 1,
        },
        Event::QuorumLost { cluster: s("shop") },
        Event::QuorumRestored { cluster: s("shop") },
        Event::Hourly(Hourly {
            hour: 3,
            cpu_capacity_milli: 256_000,
            mem_capacity_bytes: 1 << 40,
            cpu_allocated_milli: 128_000,
            mem_allocated_bytes: 1 << 39,
            cpu_used_milli: 64_000,
            mem_used_bytes: 1 << 38,
            hosts_up: 4,
            pods_pending: 0,
        }),
        Event::TimelineStepNotModelled {
            action: TimelineAction::AddCluster,
            cluster: Some(s("lab")),
            host: None,
        },
        Event::SecondCopy {
            vm: s("shop-workers-0"),
            running_on: s("a"),
            started_on: s("b"),
        },
        Event::HostPartitioned { host: s("a") },
        Event::PartitionHealed { host: s("a") },
        Event::SelfFenced {
            host: s("a"),
            vms: vec![s("shop-workers-0")],
        },
        Event::ControlPlaneRestarted { commands_lost: 2 },
    ]
}

/// Each variant's position; the match has no wildcard, so a new variant must be added
/// here, next to the count, and then to [`samples`].
fn variant(e: &Event<'_>) -> usize {
    match e {
        Event::Header(_) => 0,
        Event::Start { .. } => 1,
        Event::End { .. } => 2,
        Event::HostFailed { .. } => 3,
        Event::RackFailed { .. } => 4,
        Event::HostRepaired { .. } => 5,
        Event::Command(_) => 6,
        Event::Completed { .. } => 7,
        Event::Failed { .. } => 8,
        Event::Condition(_) => 9,
        Event::NodeNotReady { .. } => 10,
        Event::NodeReady { .. } => 11,
        Event::NodeAdded { .. } => 12,
        Event::NodeRemoved { .. } => 13,
        Event::PodsEvicted { .. } => 14,
        Event::PodsScheduled { .. } => 15,
        Event::PodsPending { .. } => 16,
        Event::PodBound { .. } => 17,
        Event::PodUnbound { .. } => 18,
        Event::WorkloadAvailability { .. } => 19,
        Event::MaintenanceRequested { .. } => 20,
        Event::PatchWave { .. } => 21,
        Event::MaintenanceFinished { .. } => 22,
        Event::UpgradeRequested { .. } => 23,
        Event::UpgradeStarted { .. } => 24,
        Event::NodeReplaced { .. } => 25,
        Event::ScaleRequested { .. } => 26,
        Event::ClusterRequested { .. } => 27,
        Event::ClusterReady { .. } => 28,
        Event::Reimaged { .. } => 29,
        Event::UpgradeFinished { .. } => 30,
        Event::QuorumLost { .. } => 31,
        Event::QuorumRestored { .. } => 32,
        Event::Hourly(_) => 33,
        Event::TimelineStepNotModelled { .. } => 34,
        Event::SecondCopy { .. } => 35,
        Event::HostPartitioned { .. } => 36,
        Event::PartitionHealed { .. } => 37,
        Event::SelfFenced { .. } => 38,
        Event::ControlPlaneRestarted { .. } => 39,
        Event::Digest { .. } => 40,
    }
}
const VARIANTS: usize = 41;

/// A finished log of `events`, the i-th at t = i ms.
fn log_of(events: &[Event<'static>]) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new());
    for (t, e) in events.iter().enumerate() {
        w.record(&Record::new(t as u64, e.clone())).expect("write");
    }
    w.finish().expect("finish").0
}

#[test]
fn every_variant_is_written_and_read_back_unchanged() {
    let samples = samples();
    let mut seen = vec![false; VARIANTS];
    for e in &samples {
        seen[variant(e)] = true;
    }
    // The writer writes the digest itself (tested below).
    seen[variant(&Event::Digest {
        sha256: LogDigest::default(),
    })] = true;
    assert!(seen.iter().all(|s| *s), "a variant has no sample: {seen:?}");
    let log = log_of(&samples);
    let reader = LogReader::new(log.as_slice()).expect("header");
    assert_eq!(reader.header(), &header());
    let back: Vec<Record<'static>> = reader.collect::<Result<_, _>>().expect("records");
    assert_eq!(back.len(), samples.len() - 1);
    for (i, (r, e)) in back.iter().zip(&samples[1..]).enumerate() {
        assert_eq!(r.t, i as u64 + 1);
        assert_eq!(&r.event, e);
    }
}

#[test]
fn a_line_is_the_records_own_serialization() {
    let digest = Event::Digest {
        sha256: LogDigest::default(),
    };
    for (t, e) in samples().into_iter().chain([digest]).enumerate() {
        let record = Record::new(t as u64 * 1_000_003, e);
        let mut line = Vec::new();
        record.write_to(&mut line).expect("write");
        let mut derived = serde_json::to_vec(&record).expect("serialize");
        derived.push(b'\n');
        assert_eq!(line, derived, "{}", String::from_utf8_lossy(&derived));
    }
}

#[test]
fn a_line_starts_with_t_and_event_then_the_fields_in_order() {
    let mut out = Vec::new();
    Record::new(
        5,
        Event::PodBound {
            pod: pod(),
            node: s("n1"),
        },
    )
    .write_to(&mut out)
    .expect("write");
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"t\":5,\"event\":\"podBound\",\"pod\":{\"workload\":\"shop/default/StatefulSet/db\",\"ordinal\":2},\"node\":\"n1\"}\n"
    );
    let header = log_of(&[Event::Header(header())]);
    let text = String::from_utf8_lossy(&header);
    assert!(
        text.starts_with(&format!(
            "{{\"t\":0,\"event\":\"header\",\"formatVersion\":2,\"plinthVersion\":\"{}\",\"input\":\"{}\",\"seed\":42,\"durationMs\":86400000,\"design\":\"bareMetal\",\"source\":\"simulation\"}}",
            plinth_events::PLINTH_VERSION,
            "07".repeat(32)
        )),
        "{text}"
    );
}

fn expected() -> Expected {
    Expected {
        input: InputDigest([7; 32]),
        seed: 42,
        duration_ms: 86_400_000,
        design: EnvironmentType::BareMetal,
    }
}

#[test]
fn the_reader_refuses_a_log_that_is_not_for_its_run() {
    let log = log_of(&samples());
    assert!(
        LogReader::new(log.as_slice())
            .and_then(|r| r.expect(&expected()))
            .is_ok()
    );
    let other = Expected {
        seed: 7,
        design: EnvironmentType::Virtualized,
        ..expected()
    };
    let err = LogReader::new(log.as_slice())
        .and_then(|r| r.expect(&other))
        .expect_err("another seed and design");
    assert!(
        matches!(err, EventsError::Mismatch { line: 1, ref differences } if differences.len() == 2)
    );
    assert_eq!(
        err.to_string(),
        "line 1: the log is for another run: seed is 42, not 7 and design is bare-metal, not virtualized"
    );
}

#[test]
fn the_reader_refuses_a_log_without_a_header_or_of_another_version() {
    let no_header = log_of(&samples()[1..]);
    assert!(matches!(
        LogReader::new(no_header.as_slice()),
        Err(EventsError::NoHeader { line: 1 })
    ));
    assert!(matches!(
        LogReader::new(&b""[..]),
        Err(EventsError::NoHeader { line: 0 })
    ));
    let old = b"{\"t\":0,\"event\":\"start\",\"env\":\"virtualized\",\"seed\":3}\n";
    assert!(matches!(
        LogReader::new(&old[..]),
        Err(EventsError::NoHeader { line: 1 })
    ));
    let v3 = String::from_utf8_lossy(&log_of(&samples())).replacen(
        "\"formatVersion\":2",
        "\"formatVersion\":3",
        1,
    );
    let err = LogReader::new(v3.as_bytes()).expect_err("version 3");
    assert!(matches!(
        err,
        EventsError::FormatVersion { line: 1, found: 3 }
    ));
    assert!(err.to_string().contains("reads version 2"), "{err}");
    let mut garbage = Vec::new();
    for (t, e) in samples()[..3].iter().enumerate() {
        Record::new(t as u64, e.clone())
            .write_to(&mut garbage)
            .expect("write");
    }
    garbage.extend_from_slice(b"{\"t\":9,\"event\":\"podBound\"}\nnot json\n");
    let errors: Vec<_> = LogReader::new(garbage.as_slice())
        .expect("header")
        .filter_map(Result::err)
        .collect();
    assert!(
        matches!(errors[0], EventsError::Line { line: 4, .. }),
        "{errors:?}"
    );
    assert!(
        matches!(errors[1], EventsError::Line { line: 5, .. }),
        "{errors:?}"
    );
}

/// Every error of reading `log` to its end.
fn errors_of(log: &[u8]) -> Vec<EventsError> {
    LogReader::new(log)
        .expect("header")
        .filter_map(Result::err)
        .collect()
}

#[test]
fn a_log_ends_in_the_digest_of_its_lines_and_reads_back_without_it() {
    let log = log_of(&samples());
    let text = String::from_utf8_lossy(&log);
    let last = text.lines().last().expect("lines");
    assert!(
        last.contains("\"event\":\"digest\",\"sha256\":\""),
        "{last}"
    );
    assert!(errors_of(&log).is_empty());
    // Blank lines at the end change nothing.
    let mut padded = log.clone();
    padded.extend_from_slice(b"\n\n");
    assert!(errors_of(&padded).is_empty());
}

#[test]
fn a_cut_edited_or_extended_log_is_refused_at_its_line() {
    let log = log_of(&samples());
    let text = String::from_utf8_lossy(&log).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let n = lines.len();

    let cut = lines[..n - 1].join("\n") + "\n";
    let errors = errors_of(cut.as_bytes());
    assert!(
        matches!(errors[..], [EventsError::NoDigest { line }] if line == n - 1),
        "{errors:?}"
    );
    assert!(errors[0].to_string().contains("cut short"), "{}", errors[0]);

    let edited = text.replacen("\"hosts\":4", "\"hosts\":40", 1);
    let errors = errors_of(edited.as_bytes());
    assert!(
        matches!(errors[..], [EventsError::DigestMismatch { line }] if line == n),
        "{errors:?}"
    );

    let joined = format!("{text}{}\n", lines[1]);
    let errors = errors_of(joined.as_bytes());
    assert!(
        matches!(errors[..], [EventsError::AfterDigest { line }] if line == n + 1),
        "{errors:?}"
    );
}

#[test]
fn only_the_writer_writes_a_digest() {
    let mut w = LogWriter::new(Vec::new());
    let digest = Event::Digest {
        sha256: LogDigest([1; 32]),
    };
    assert!(matches!(
        w.record(&Record::new(0, digest)),
        Err(EventsError::DigestRecord)
    ));
    assert_eq!(w.lines(), 0);
}

#[test]
fn a_real_runs_log_is_checked_for_its_input_and_design_only() {
    let real = Header {
        source: Source::RealRun,
        seed: 9,
        duration_ms: 5,
        ..header()
    };
    assert!(real.differences(&expected()).is_empty());
    let other_input = Expected {
        input: InputDigest([8; 32]),
        ..expected()
    };
    assert_eq!(real.differences(&other_input).len(), 1);
}
