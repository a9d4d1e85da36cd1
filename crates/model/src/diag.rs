//! Diagnostics: every problem found in an input, with its location and a suggested fix.
//!
//! Loading never stops at the first problem of an input: it collects all of them, so a
//! user fixes a file in one pass.

use std::fmt;

use crate::source::Location;

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The input is not accepted.
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
    /// Information: a document skipped, a kind parsed but not modelled.
    Note,
}

/// One problem at one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// Where it is.
    pub location: Location,
    /// What is wrong, one sentence, no trailing period.
    pub message: String,
    /// How to fix it, when we can tell (`did you mean `replicas`?`).
    pub help: Option<String>,
    /// What it is one of, when many alike are summarised in one line
    /// ([`Diagnostics::summarised`]); boxed to keep every diagnostic small.
    pub topic: Option<Box<Topic>>,
}

/// A kind of diagnostic that is summarised in one line with a count, because one input
/// may hold dozens of them (a published install holds 59 objects that run no pods).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// An object skipped because it runs no pods, by its kind and apiVersion.
    Skipped {
        /// The object's kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
        /// True for a custom resource (an API group Kubernetes does not build in).
        custom: bool,
    },
    /// A workload whose pods request no CPU and no memory: BestEffort pods.
    NoRequests,
}

/// One line standing for every diagnostic of one [`Topic`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The severity of the diagnostics it stands for.
    pub severity: Severity,
    /// What they are.
    pub topic: Topic,
    /// How many there are.
    pub count: usize,
    /// Where the first one is.
    pub first: Location,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.severity)?;
        match &self.topic {
            Topic::Skipped {
                kind,
                api_version,
                custom,
            } => {
                let what = if *custom { ", custom resource" } else { "" };
                write!(f, "skipped {} {kind} ({api_version}{what})", self.count)?;
            }
            Topic::NoRequests => write!(
                f,
                "{} workload(s) request no CPU or memory: their pods are BestEffort and are planned with zero requests",
                self.count
            )?,
        }
        write!(f, "; first at {}", self.first)
    }
}

impl Diagnostic {
    /// An error at `location`.
    pub fn error(location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            location,
            message: message.into(),
            help: None,
            topic: None,
        }
    }

    /// A warning at `location`.
    pub fn warning(location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            location,
            message: message.into(),
            help: None,
            topic: None,
        }
    }

    /// A note at `location`.
    pub fn note(location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Note,
            location,
            message: message.into(),
            help: None,
            topic: None,
        }
    }

    /// The same diagnostic, summarised with the others of `topic`.
    pub fn with_topic(mut self, topic: Topic) -> Self {
        self.topic = Some(Box::new(topic));
        self
    }

    /// The same diagnostic with a suggested fix.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Note => "note",
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.severity, self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// All the diagnostics of one load, in input order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Extend<Diagnostic> for Diagnostics {
    fn extend<I: IntoIterator<Item = Diagnostic>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl Diagnostics {
    /// Adds one diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// True when at least one diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// The number of errors.
    pub fn error_count(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Sorts by file, line and column, keeping the order of diagnostics at one place.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| a.location.cmp(&b.location));
    }

    /// The number of warnings.
    pub fn warning_count(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// `--strict`: every warning becomes an error.
    pub fn strict(&mut self) {
        for d in &mut self.0 {
            if d.severity == Severity::Warning {
                d.severity = Severity::Error;
            }
        }
    }

    /// The diagnostics to show one by one (those without a topic, in order), and one
    /// summary line per topic and severity, in order of first appearance.
    pub fn summarised(&self) -> (Vec<&Diagnostic>, Vec<Summary>) {
        let mut single = Vec::new();
        let mut lines: Vec<Summary> = Vec::new();
        for d in &self.0 {
            let Some(topic) = &d.topic else {
                single.push(d);
                continue;
            };
            match lines
                .iter_mut()
                .find(|l| l.topic == **topic && l.severity == d.severity)
            {
                Some(line) => line.count += 1,
                None => lines.push(Summary {
                    severity: d.severity,
                    topic: Topic::clone(topic),
                    count: 1,
                    first: d.location.clone(),
                }),
            }
        }
        (single, lines)
    }

    /// Iterates over the diagnostics.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Longest text a message quotes whole; longer text is cut ([`excerpt`]).
pub const EXCERPT_CHARS: usize = 80;

/// `text` as a message quotes it: whole up to [`EXCERPT_CHARS`] characters, else its
/// beginning and its length, so that a 10 MB key or name is never echoed in full.
pub fn excerpt(text: &str) -> String {
    if text.chars().nth(EXCERPT_CHARS).is_none() {
        return text.to_owned();
    }
    let head: String = text.chars().take(EXCERPT_CHARS - 20).collect();
    format!("{head}… ({} bytes)", text.len())
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo. A
/// word longer than any excerpt is no typo: it is compared with nothing.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.len() > EXCERPT_CHARS * 4 {
        return None;
    }
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_quoted_as_an_excerpt() {
        assert_eq!(excerpt("replica"), "replica");
        let long = "x".repeat(10_000_000);
        let quoted = excerpt(&long);
        assert!(
            quoted.len() < 100 && quoted.ends_with("(10000000 bytes)"),
            "{quoted}"
        );
        assert_eq!(did_you_mean(&long, ["x"]), None);
    }

    #[test]
    fn topics_summarise_in_one_line_each() {
        let at = |line| Location::new("f.yaml".into(), line, 1);
        let role = Topic::Skipped {
            kind: "ClusterRole".into(),
            api_version: "rbac.authorization.k8s.io/v1".into(),
            custom: false,
        };
        let diags = Diagnostics(vec![
            Diagnostic::note(at(3), "skipped ClusterRole a").with_topic(role.clone()),
            Diagnostic::error(at(5), "broken"),
            Diagnostic::note(at(9), "skipped ClusterRole b").with_topic(role.clone()),
            Diagnostic::warning(at(12), "no requests").with_topic(Topic::NoRequests),
        ]);
        let (single, lines) = diags.summarised();
        assert_eq!(single.len(), 1);
        let text: Vec<String> = lines.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "note: skipped 2 ClusterRole (rbac.authorization.k8s.io/v1); first at f.yaml:3:1",
                "warning: 1 workload(s) request no CPU or memory: their pods are BestEffort and are planned with zero requests; first at f.yaml:12:1",
            ]
        );
    }

    #[test]
    fn strict_turns_warnings_into_errors() {
        let at = Location::new("f.yaml".into(), 1, 1);
        let mut diags = Diagnostics(vec![
            Diagnostic::warning(at.clone(), "w"),
            Diagnostic::note(at, "n"),
        ]);
        assert!(!diags.has_errors());
        diags.strict();
        assert_eq!(diags.error_count(), 1);
        assert_eq!(diags.warning_count(), 0);
    }

    #[test]
    fn suggests_near_misses_only() {
        let fields = ["replicas", "name", "vcpu", "memory"];
        assert_eq!(did_you_mean("replica", fields), Some("replicas"));
        assert_eq!(did_you_mean("Memroy", fields), Some("memory"));
        assert_eq!(did_you_mean("zzz", fields), None);
    }
}
