//! Writing a log as it is produced: a [`Sink`] takes one record at a time, and
//! [`LogWriter`] turns records into lines sealed by a trailing digest.

use std::io;

use crate::digest::LineHasher;
use crate::{Event, EventsError, LogDigest, Record};

/// What takes a run's records one by one, as they are produced: a [`LogWriter`], or a
/// reader's fold of the metrics it needs, so nothing holds a whole log.
pub trait Sink {
    /// Takes one record; an error stops the writer.
    fn record(&mut self, record: &Record<'_>) -> Result<(), EventsError>;
}

impl<S: Sink + ?Sized> Sink for &mut S {
    fn record(&mut self, record: &Record<'_>) -> Result<(), EventsError> {
        (**self).record(record)
    }
}

/// Both sinks, in order.
impl<A: Sink, B: Sink> Sink for (A, B) {
    fn record(&mut self, record: &Record<'_>) -> Result<(), EventsError> {
        self.0.record(record)?;
        self.1.record(record)
    }
}

/// Writes records as JSON Lines over `W` and, when finished, the trailing `digest` line
/// of everything written before it. Each line is serialized into one reused buffer, so
/// memory does not grow with the log.
#[derive(Debug)]
pub struct LogWriter<W> {
    out: W,
    line: Vec<u8>,
    hasher: LineHasher,
    lines: u64,
    last_t: u64,
}

impl<W: io::Write> LogWriter<W> {
    /// A writer of a new log over `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            line: Vec::new(),
            hasher: LineHasher::default(),
            lines: 0,
            last_t: 0,
        }
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Writes the trailing `digest` line (at the time of the last record) and flushes:
    /// the output, and the digest of every line before the `digest` line.
    pub fn finish(mut self) -> Result<(W, LogDigest), EventsError> {
        let digest = self.hasher.digest();
        self.line.clear();
        Record::new(self.last_t, Event::Digest { sha256: digest }).write_to(&mut self.line)?;
        self.out
            .write_all(&self.line)
            .and_then(|()| self.out.flush())
            .map_err(|source| EventsError::Write { source })?;
        Ok((self.out, digest))
    }
}

impl<W: io::Write> Sink for LogWriter<W> {
    fn record(&mut self, record: &Record<'_>) -> Result<(), EventsError> {
        if matches!(record.event, Event::Digest { .. }) {
            return Err(EventsError::DigestRecord);
        }
        self.line.clear();
        record.write_to(&mut self.line)?;
        self.out
            .write_all(&self.line)
            .map_err(|source| EventsError::Write { source })?;
        self.hasher.add(&self.line);
        self.lines += 1;
        self.last_t = record.t;
        Ok(())
    }
}
