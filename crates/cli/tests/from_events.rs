//! `compare --from-events` refuses logs that were reordered, edited, cut short, written for
//! another input or that name objects the input does not have, rather than printing a
//! different report with exit 0 — each case through the real binary, each with the
//! message that names what is wrong.

mod common;

use std::path::Path;

use common::plinth_streams;
use plinth_events::{LogWriter, Record, Sink};

const FLAGS: [&str; 9] = [
    "--seed",
    "1",
    "--seeds",
    "2",
    "--duration",
    "2d",
    "--no-sweep",
    "-o",
    "json",
];

/// The log every case edits.
const LOG: &str = "virtualized-seed-1.jsonl";

/// Writes the logs of `examples/small` into `dir` and returns the JSON report.
fn write_logs(dir: &Path) -> String {
    let dir_arg = dir.to_str().expect("utf-8 path");
    let (code, out, err) = plinth_streams(
        &[
            &["compare", "examples/small", "--events", dir_arg][..],
            &FLAGS,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    out
}

/// `compare INPUT --from-events DIR` with the same flags: (exit code, stdout, stderr).
fn from_events(input: &str, dir: &Path) -> (i32, String, String) {
    let dir_arg = dir.to_str().expect("utf-8 path");
    plinth_streams(&[&["compare", input, "--from-events", dir_arg][..], &FLAGS].concat())
}

/// The lines of `text` written again by the log writer, so they end in a digest that
/// matches them (an edit the digest alone cannot catch).
fn resealed(lines: &[&str]) -> Vec<u8> {
    let mut w = LogWriter::new(Vec::new());
    for line in lines {
        let record: Record<'_> = serde_json::from_str(line).expect("record");
        w.record(&record).expect("write");
    }
    w.finish().expect("finish").0
}

/// The records of `text`: every line but the trailing digest.
fn records(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    let digest = lines.pop().expect("a digest line");
    assert!(digest.contains("\"event\":\"digest\""), "{digest}");
    lines
}

/// How each hostile log is made from the real one, and a fragment of the refusal.
type Edit = fn(&str) -> Vec<u8>;

fn reversed(text: &str) -> Vec<u8> {
    let mut lines = records(text);
    lines[1..].reverse();
    resealed(&lines)
}

fn edited(text: &str) -> Vec<u8> {
    let at = text.find("\"cpuCapacityMilli\":").expect("an hourly line");
    let end = at + text[at..].find(',').expect("a comma");
    format!("{}\"cpuCapacityMilli\":0{}", &text[..at], &text[end..]).into_bytes()
}

fn cut(text: &str) -> Vec<u8> {
    (records(text).join("\n") + "\n").into_bytes()
}

fn phantom(text: &str) -> Vec<u8> {
    let renamed = text.replace("\"workload\":\"apps/", "\"workload\":\"ghost/");
    resealed(&records(&renamed))
}

fn joined(text: &str) -> Vec<u8> {
    let last = records(text).pop().expect("a record").to_owned();
    format!("{text}{last}\n").into_bytes()
}

#[test]
fn hostile_logs_are_refused_with_what_is_wrong() {
    let cases: [(&str, Edit, &str); 5] = [
        ("reversed", reversed, "out of order"),
        ("capacity zeroed", edited, "do not match its digest"),
        ("digest cut off", cut, "without its `digest` line"),
        ("unknown workload", phantom, "names workload `ghost/"),
        (
            "a line after the digest",
            joined,
            "follows the log's `digest` line",
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let report = write_logs(dir.path());
    let (code, rebuilt, err) = from_events("examples/small", dir.path());
    assert_eq!((code, &rebuilt), (0, &report), "{err}");
    let path = dir.path().join(LOG);
    let original = std::fs::read_to_string(&path).expect("log");
    for (name, edit, message) in cases {
        std::fs::write(&path, edit(&original)).expect("write");
        let (code, out, err) = from_events("examples/small", dir.path());
        assert_eq!(code, 2, "{name}: {out}{err}");
        assert!(out.is_empty(), "{name}: a report was printed: {out}");
        assert!(err.contains(LOG), "{name}: {err}");
        assert!(err.contains(message), "{name}: {err}");
    }
}

#[test]
fn a_log_of_another_input_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_logs(dir.path());
    let (code, out, err) = from_events("examples/enterprise", dir.path());
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("the log is for another run: input is "),
        "{err}"
    );
}
