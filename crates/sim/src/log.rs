//! The event log: JSON Lines of [`plinth_events::Record`]s, written in the order events
//! happen (virtual time, then queue sequence), so it is byte-identical for the same inputs
//! and seed. Each event is serialized straight from the typed enum, borrowing the world's
//! names, without building a JSON tree, and goes to its [`LogOutput`] as it happens: kept
//! in memory, streamed to a writer, and handed typed to a [`Sink`] — so a run need not
//! hold its log.

use std::io;

use plinth_events::{Event, EventsError, LogDigest, LogWriter, Record, Sink};

use crate::budget::EVENTS_PER_DAY;
use crate::setup::SimPod;

/// Where a run's event log goes as it is produced, and how fast it may grow: at most
/// [`LogOutput::with_budget`] events per simulated day.
pub struct LogOutput<'a> {
    /// `None`: no bytes at all, only typed records ([`LogOutput::records`]).
    bytes: Option<Bytes<'a>>,
    records: Option<&'a mut dyn Sink>,
    pub(crate) events_per_day: u64,
}

impl<'a> LogOutput<'a> {
    /// The log is kept in memory and returned in [`crate::Run::log`].
    pub fn memory() -> Self {
        Self {
            bytes: Some(Bytes::Memory(Vec::new())),
            records: None,
            events_per_day: EVENTS_PER_DAY,
        }
    }

    /// The log is written to `out` as it is produced ([`io::sink`] for none);
    /// [`crate::Run::log`] is empty.
    pub fn stream(out: impl io::Write + 'a) -> Self {
        Self {
            bytes: Some(Bytes::Stream(Box::new(out))),
            records: None,
            events_per_day: EVENTS_PER_DAY,
        }
    }

    /// Each record is handed, typed, to `sink` and to nothing else: no line is
    /// serialized or hashed, and [`crate::Summary::log_sha256`] is `None`. For a reader
    /// that folds the metrics it needs and keeps no log.
    pub fn records(sink: &'a mut dyn Sink) -> Self {
        Self {
            bytes: None,
            records: Some(sink),
            events_per_day: EVENTS_PER_DAY,
        }
    }

    /// Each record is also handed, typed, to `sink` as it is written (a fold of the
    /// metrics a reader needs).
    pub fn with_records(self, sink: &'a mut dyn Sink) -> Self {
        Self {
            records: Some(sink),
            ..self
        }
    }

    /// The run stops with [`crate::SimError::EventBudget`] once a simulated day takes more
    /// than `events_per_day` events (default [`EVENTS_PER_DAY`]).
    pub fn with_budget(self, events_per_day: u64) -> Self {
        Self {
            events_per_day,
            ..self
        }
    }
}

/// A log's bytes: kept, or streamed.
enum Bytes<'a> {
    Memory(Vec<u8>),
    Stream(Box<dyn io::Write + 'a>),
}

impl io::Write for Bytes<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Memory(v) => v.write(buf),
            Self::Stream(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Memory(v) => v.write_all(buf),
            Self::Stream(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Stream(w) => w.flush(),
        }
    }
}

/// A finished log.
pub(crate) struct Finished {
    /// Its bytes, when kept in memory.
    pub(crate) bytes: Vec<u8>,
    /// The digest of its lines before the `digest` line; `None` when no line was written
    /// ([`LogOutput::records`]).
    pub(crate) digest: Option<LogDigest>,
    /// Its lines, the `digest` line included (records, when no line was written).
    pub(crate) lines: u64,
}

/// The log of a run being written; the first error stops it (the world then ends the run).
pub(crate) struct Log<'a> {
    /// The lines' writer, unless only typed records are wanted.
    writer: Option<LogWriter<Bytes<'a>>>,
    records: Option<&'a mut dyn Sink>,
    /// Records written so far.
    lines: u64,
    error: Option<EventsError>,
}

impl<'a> Log<'a> {
    /// A log written to `output`.
    pub(crate) fn new(output: LogOutput<'a>) -> Self {
        Self {
            writer: output.bytes.map(LogWriter::new),
            records: output.records,
            lines: 0,
            error: None,
        }
    }

    /// Appends `event` at `t` ms, unless writing has failed.
    pub(crate) fn write(&mut self, t: u64, event: Event<'_>) {
        if self.error.is_some() {
            return;
        }
        let record = Record::new(t, event);
        let written = match &mut self.writer {
            Some(w) => w.record(&record),
            // The writer's own refusal, kept without it: only the log's end seals it.
            None if matches!(record.event, Event::Digest { .. }) => Err(EventsError::DigestRecord),
            None => Ok(()),
        }
        .and_then(|()| match &mut self.records {
            Some(sink) => sink.record(&record),
            None => Ok(()),
        });
        match written {
            Ok(()) => self.lines += 1,
            Err(e) => self.error = Some(e),
        }
    }

    /// Records written so far.
    pub(crate) fn lines(&self) -> u64 {
        self.lines
    }

    /// Whether writing has failed.
    pub(crate) fn failed(&self) -> bool {
        self.error.is_some()
    }

    /// Writes the trailing digest; the first error of the log, if any.
    pub(crate) fn finish(self) -> Result<Finished, EventsError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(writer) = self.writer else {
            return Ok(Finished {
                bytes: Vec::new(),
                digest: None,
                lines: self.lines,
            });
        };
        let (bytes, digest) = writer.finish()?;
        Ok(Finished {
            bytes: match bytes {
                Bytes::Memory(v) => v,
                Bytes::Stream(_) => Vec::new(),
            },
            digest: Some(digest),
            lines: self.lines + 1,
        })
    }
}

/// Each pod's ordinal among its workload's replicas (0, 1, … in the order the pods were
/// created), extended as pods are added.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodOrdinals {
    /// By pod index.
    of: Vec<u32>,
    /// By workload index: the next ordinal.
    next: Vec<u32>,
}

impl PodOrdinals {
    /// Pod `p`'s ordinal (`pods` is every pod created so far).
    pub(crate) fn get(&mut self, pods: &[SimPod], p: usize) -> u32 {
        while self.of.len() <= p {
            let Some(pod) = pods.get(self.of.len()) else {
                break;
            };
            let w = pod.workload as usize;
            if self.next.len() <= w {
                self.next.resize(w + 1, 0);
            }
            self.of.push(self.next[w]);
            self.next[w] += 1;
        }
        self.of.get(p).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use plinth_model::Resources;

    use super::*;

    fn pod(workload: u32) -> SimPod {
        SimPod {
            workload,
            cluster: 0,
            template: std::sync::Arc::default(),
            requests: Resources::ZERO,
            local: false,
            initial: None,
        }
    }

    #[test]
    fn ordinals_count_within_each_workload_as_pods_are_added() {
        let mut pods = vec![pod(0), pod(1), pod(0)];
        let mut o = PodOrdinals::default();
        assert_eq!(o.get(&pods, 2), 1);
        assert_eq!(o.get(&pods, 1), 0);
        pods.push(pod(1));
        assert_eq!(o.get(&pods, 3), 1);
        assert_eq!(o.get(&pods, 0), 0);
    }
}
