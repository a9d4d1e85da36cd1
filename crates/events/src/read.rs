//! Reading a log: the header first, checked, then one record per line, then the trailing
//! digest, checked against every line before it.

use std::fmt;
use std::io::BufRead;

use serde::Deserialize;

use crate::digest::LineHasher;
use crate::{
    EnvironmentType, Event, EventsError, FORMAT_VERSION, Header, InputDigest, LogDigest, Record,
    Source,
};

/// What a reader expects a log's header to say: the run it is read for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The input's digest.
    pub input: InputDigest,
    /// The seed.
    pub seed: u64,
    /// The duration, ms.
    pub duration_ms: u64,
    /// The design.
    pub design: EnvironmentType,
}

/// One header field that contradicts the run a log is read for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The header field (`seed`, `design`, `durationMs`, `input`).
    pub field: &'static str,
    /// What the run expects.
    pub expected: String,
    /// What the header says.
    pub found: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}, not {}", self.field, self.found, self.expected)
    }
}

/// `a, b and c`.
pub(crate) fn list(differences: &[Difference]) -> String {
    let parts: Vec<String> = differences.iter().map(ToString::to_string).collect();
    match parts.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => parts.concat(),
    }
}

fn design_name(d: EnvironmentType) -> &'static str {
    match d {
        EnvironmentType::Virtualized => "virtualized",
        EnvironmentType::BareMetal => "bare-metal",
    }
}

impl Header<'_> {
    /// Every field of the header that contradicts `expected`, in header order. A real
    /// run's log is checked for its input and design only: its seed is the one its
    /// scenario named and its duration is however long it ran.
    pub fn differences(&self, expected: &Expected) -> Vec<Difference> {
        let simulated = self.source == Source::Simulation;
        let mut out = Vec::new();
        let mut check = |field, same: bool, expected: String, found: String| {
            if !same {
                out.push(Difference {
                    field,
                    expected,
                    found,
                });
            }
        };
        check(
            "input",
            self.input == expected.input,
            expected.input.to_string(),
            self.input.to_string(),
        );
        check(
            "seed",
            !simulated || self.seed == expected.seed,
            expected.seed.to_string(),
            self.seed.to_string(),
        );
        check(
            "durationMs",
            !simulated || self.duration_ms == expected.duration_ms,
            expected.duration_ms.to_string(),
            self.duration_ms.to_string(),
        );
        check(
            "design",
            self.design == expected.design,
            design_name(expected.design).to_owned(),
            design_name(self.design).to_owned(),
        );
        out
    }
}

/// Only what tells a header of any version apart.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    event: String,
    format_version: Option<u64>,
}

/// Reads a log: [`LogReader::new`] reads and checks the header, then the reader yields the
/// records that follow, each error naming its line. The trailing `digest` line is checked
/// against every line before it and not yielded; a log without one ends in
/// [`EventsError::NoDigest`]. Lines are read one at a time into one buffer, so memory does
/// not grow with the log.
///
/// The digest is a checksum, not a signature: it catches a log cut short, edited or
/// reordered, not one whose digest was computed again after the edit.
#[derive(Debug)]
pub struct LogReader<R> {
    input: R,
    line: usize,
    buf: String,
    hasher: LineHasher,
    header: Header<'static>,
    header_line: usize,
    /// Time of the last record read, ms.
    last_t: u64,
    /// Where the log stands after the lines read.
    state: State,
}

/// Where a reader stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the `digest` line.
    Records,
    /// After a `digest` line that matched: only blank lines may follow.
    Sealed,
    /// An error that ends the log was reported.
    Done,
}

/// Reads the next line into `buf` and adds it to `hasher`: `Ok(false)` at the end.
fn next_line(
    input: &mut impl BufRead,
    buf: &mut String,
    line: &mut usize,
    hasher: &mut LineHasher,
) -> Result<bool, EventsError> {
    buf.clear();
    *line += 1;
    let n = input.read_line(buf).map_err(|source| EventsError::Io {
        line: *line,
        source,
    })?;
    hasher.add(buf.as_bytes());
    Ok(n > 0)
}

impl<R: BufRead> LogReader<R> {
    /// Reads the header: the first line that is not blank must be a `header` event of
    /// [`FORMAT_VERSION`].
    pub fn new(mut input: R) -> Result<Self, EventsError> {
        let mut buf = String::new();
        let mut line = 0;
        let mut hasher = LineHasher::default();
        loop {
            if !next_line(&mut input, &mut buf, &mut line, &mut hasher)? {
                return Err(EventsError::NoHeader { line: 0 });
            }
            if !buf.trim().is_empty() {
                break;
            }
        }
        let probe: Probe =
            serde_json::from_str(&buf).map_err(|source| EventsError::Line { line, source })?;
        if probe.event != "header" {
            return Err(EventsError::NoHeader { line });
        }
        match probe.format_version {
            Some(v) if v == u64::from(FORMAT_VERSION) => {}
            found => {
                return Err(EventsError::FormatVersion {
                    line,
                    found: found.unwrap_or(0),
                });
            }
        }
        let record: Record<'static> =
            serde_json::from_str(&buf).map_err(|source| EventsError::Line { line, source })?;
        let Event::Header(header) = record.event else {
            return Err(EventsError::NoHeader { line });
        };
        Ok(Self {
            input,
            line,
            buf,
            hasher,
            header,
            header_line: line,
            last_t: 0,
            state: State::Records,
        })
    }

    /// The log's header.
    pub fn header(&self) -> &Header<'static> {
        &self.header
    }

    /// Refuses the log if its header contradicts `expected`, naming every field that
    /// differs.
    pub fn expect(self, expected: &Expected) -> Result<Self, EventsError> {
        let differences = self.header.differences(expected);
        if differences.is_empty() {
            Ok(self)
        } else {
            Err(EventsError::Mismatch {
                line: self.header_line,
                differences,
            })
        }
    }

    /// Checks that `record` is no earlier than the one before it and within the run's
    /// duration: a simulator writes events in time order, so a log that is not was
    /// reordered or edited.
    fn in_order(&mut self, record: Record<'static>) -> Result<Record<'static>, EventsError> {
        let line = self.line;
        if record.t < self.last_t {
            return Err(EventsError::OutOfOrder {
                line,
                t: record.t,
                previous: self.last_t,
            });
        }
        if record.t > self.header.duration_ms {
            return Err(EventsError::AfterEnd {
                line,
                t: record.t,
                duration_ms: self.header.duration_ms,
            });
        }
        self.last_t = record.t;
        Ok(record)
    }

    /// The number of the last line read.
    pub fn line(&self) -> usize {
        self.line
    }
}

impl<R: BufRead> LogReader<R> {
    /// Reads up to the next line that is not blank: the digest of every line before it,
    /// or `None` at the end.
    fn next_nonblank(&mut self) -> Result<Option<LogDigest>, EventsError> {
        loop {
            let before = self.hasher.digest();
            if !next_line(
                &mut self.input,
                &mut self.buf,
                &mut self.line,
                &mut self.hasher,
            )? {
                return Ok(None);
            }
            if !self.buf.trim().is_empty() {
                return Ok(Some(before));
            }
        }
    }

    /// The next record, or the end, checking the digest on the way.
    fn step(&mut self) -> Result<Option<Record<'static>>, EventsError> {
        loop {
            let Some(before) = self.next_nonblank()? else {
                return match self.state {
                    State::Records => Err(EventsError::NoDigest {
                        line: self.line.saturating_sub(1),
                    }),
                    State::Sealed | State::Done => Ok(None),
                };
            };
            let line = self.line;
            if self.state == State::Sealed {
                return Err(EventsError::AfterDigest { line });
            }
            let record: Record<'static> = serde_json::from_str(&self.buf)
                .map_err(|source| EventsError::Line { line, source })?;
            let record = self.in_order(record)?;
            match record.event {
                Event::Digest { sha256 } if sha256 == before => self.state = State::Sealed,
                Event::Digest { .. } => return Err(EventsError::DigestMismatch { line }),
                _ => return Ok(Some(record)),
            }
        }
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<Record<'static>, EventsError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == State::Done {
            return None;
        }
        match self.step() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => None,
            Err(e) => {
                // A bad line is reported and reading goes on; the end of the log, a digest
                // that does not match and lines after it end the log.
                if matches!(
                    e,
                    EventsError::NoDigest { .. }
                        | EventsError::DigestMismatch { .. }
                        | EventsError::AfterDigest { .. }
                        | EventsError::Io { .. }
                ) {
                    self.state = State::Done;
                }
                Some(Err(e))
            }
        }
    }
}
