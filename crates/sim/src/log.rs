//! The event log: JSON Lines, one object per event with `t` (ms) and `event` first, written
//! in the order events happen (virtual time, then queue sequence), so it is byte-identical
//! for the same inputs and seed.

use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
struct Line<'a> {
    t: u64,
    event: &'a str,
    #[serde(flatten)]
    body: Value,
}

/// An in-memory JSON Lines log.
#[derive(Clone, Debug, Default)]
pub(crate) struct Log {
    pub(crate) buf: Vec<u8>,
    pub(crate) lines: u64,
}

/// One `workloadAvailability` line, serialized without building a JSON tree (the most
/// frequent event); keys in the same (sorted) order as the other lines' bodies.
#[derive(Serialize)]
struct AvailabilityLine<'a> {
    t: u64,
    event: &'static str,
    available: u32,
    desired: u32,
    workload: &'a str,
}

/// One `hourly` line (8,761 a year), serialized without building a JSON tree; keys in the
/// order of the documented event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Hourly {
    pub(crate) hour: u64,
    pub(crate) cpu_capacity_milli: u64,
    pub(crate) mem_capacity_bytes: u64,
    pub(crate) cpu_allocated_milli: u64,
    pub(crate) mem_allocated_bytes: u64,
    pub(crate) cpu_used_milli: u64,
    pub(crate) mem_used_bytes: u64,
    pub(crate) hosts_up: u32,
    pub(crate) pods_pending: u64,
}

/// One `completed` line (one per command answered), serialized without building a JSON
/// tree.
#[derive(Serialize)]
struct CompletedLine {
    t: u64,
    event: &'static str,
    id: u64,
}

#[derive(Serialize)]
struct HourlyLine<'a> {
    t: u64,
    event: &'static str,
    #[serde(flatten)]
    body: &'a Hourly,
}

impl Log {
    /// Appends one line serialized from `line` (which starts with `t` and `event`).
    fn line(&mut self, line: &impl Serialize) {
        if serde_json::to_writer(&mut self.buf, line).is_ok() {
            self.buf.push(b'\n');
            self.lines += 1;
        }
    }

    /// Appends an `hourly` line.
    pub(crate) fn hourly(&mut self, t: u64, body: &Hourly) {
        self.line(&HourlyLine {
            t,
            event: "hourly",
            body,
        });
    }

    /// Appends a `completed` line: command `id` succeeded.
    pub(crate) fn completed(&mut self, t: u64, id: u64) {
        self.line(&CompletedLine {
            t,
            event: "completed",
            id,
        });
    }

    /// Appends a `workloadAvailability` line.
    pub(crate) fn availability(&mut self, t: u64, workload: &str, available: u32, desired: u32) {
        self.line(&AvailabilityLine {
            t,
            event: "workloadAvailability",
            available,
            desired,
            workload,
        });
    }

    /// Appends one event; `body` must be a JSON object (or null).
    pub(crate) fn write(&mut self, t: u64, event: &str, body: Value) {
        let body = if body.is_null() {
            Value::Object(Default::default())
        } else {
            body
        };
        self.line(&Line { t, event, body });
    }
}
