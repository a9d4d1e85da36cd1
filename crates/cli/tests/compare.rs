//! `plinth compare` as a user runs it: the report rebuilt from saved event logs is
//! identical, every output format parses, and bad flags get clear errors.

mod common;

use std::path::PathBuf;

use common::plinth;

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("plinth-compare-{}-{name}", std::process::id()))
}

const SHORT: [&str; 7] = [
    "--seeds",
    "3",
    "--duration",
    "90d",
    "--no-sweep",
    "-o",
    "json",
];

/// A report is the same whether its runs' events were folded as they were produced
/// (without a line written), written to files as well, or read back from those files.
#[test]
fn a_report_rebuilt_from_saved_events_is_identical() {
    let dir = tmp("events");
    let dir_arg = dir.display().to_string();
    let mut args = vec!["compare", "examples/enterprise"];
    args.extend(SHORT);
    let (code, simulated) = plinth(&[&args[..], &["--events", &dir_arg]].concat());
    assert_eq!(code, 0, "{simulated}");
    let logs = std::fs::read_dir(&dir).expect("events dir").count();
    assert_eq!(logs, 6, "three runs of two environments");
    let (code, rebuilt) = plinth(&[&args[..], &["--from-events", &dir_arg]].concat());
    assert_eq!(code, 0, "{rebuilt}");
    assert_eq!(simulated, rebuilt);
    // Without --events no line is written or hashed, only the typed records folded: the
    // same report.
    let (code, folded) = plinth(&args);
    assert_eq!(code, 0, "{folded}");
    assert_eq!(folded, rebuilt);
    let report: serde_json::Value = serde_json::from_str(&rebuilt).expect("JSON report");
    assert_eq!(report["dimensions"].as_array().map(Vec::len), Some(13));
    std::fs::remove_dir_all(&dir).ok();
}

/// `plinth compare examples/small` over 2 runs of 30 days, no sweep, in `format`.
fn small(format: &str) -> (i32, String) {
    plinth(&[
        "compare",
        "examples/small",
        "--seeds",
        "2",
        "--duration",
        "30d",
        "--no-sweep",
        "-o",
        format,
    ])
}

#[test]
fn the_table_names_a_recommendation_and_yaml_carries_the_same_report() {
    let (code, table) = small("table");
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("recommendation: "), "{table}");
    for n in 1..=13 {
        assert!(
            table.contains(&format!("│ {n} ")),
            "row {n} missing:\n{table}"
        );
    }
    let (code, yaml) = small("yaml");
    assert_eq!(code, 0, "{yaml}");
    let (code, json) = small("json");
    assert_eq!(code, 0);
    let (docs, error) =
        plinth_model::yaml::parse_documents(&plinth_model::SourceFile::new("report.yaml", yaml));
    assert!(error.is_none(), "{error:?}");
    let from_yaml = &docs[0].value;
    let from_json: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(numbers_as_f64(from_yaml.clone()), numbers_as_f64(from_json));
}

/// The same report with every number as a float: YAML reads `1.0` and `-0.0` by its own
/// typing rules, which is not a difference in the report.
fn numbers_as_f64(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Value::Array(a) => Value::Array(a.into_iter().map(numbers_as_f64).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, numbers_as_f64(v))).collect())
        }
        other => other,
    }
}

#[test]
fn missing_event_logs_are_named_with_the_fix() {
    let dir = tmp("empty");
    std::fs::create_dir_all(&dir).expect("dir");
    let dir_arg = dir.display().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "compare",
            "examples/small",
            "--seeds",
            "2",
            "--no-sweep",
            "--from-events",
            &dir_arg,
        ])
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("plinth runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("virtualized-seed-1.jsonl"), "{err}");
    assert!(err.contains("--events"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn one_run_is_refused_with_how_to_ask_for_more() {
    let (code, _) = plinth(&["compare", "examples/small", "--seeds", "1"]);
    assert_eq!(code, 2);
    let (code, _) = plinth(&["compare", "examples/small", "--duration", "soon"]);
    assert_eq!(code, 2);
}

/// `plinth compare PATH --from-events DIR` over 2 runs of 2 days from seed 1: (exit code,
/// stderr).
fn from_events(path: &str, dir: &str) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
        .args([
            "compare",
            path,
            "--seed",
            "1",
            "--seeds",
            "2",
            "--duration",
            "2d",
            "--no-sweep",
            "--from-events",
            dir,
        ])
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("plinth runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_saved_log_of_another_seed_design_or_input_is_refused_with_its_file_and_line() {
    let dir = tmp("other-run");
    let dir_arg = dir.display().to_string();
    let (code, out) = plinth(&[
        "compare",
        "examples/small",
        "--seed",
        "1",
        "--seeds",
        "2",
        "--duration",
        "2d",
        "--no-sweep",
        "--events",
        &dir_arg,
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(from_events("examples/small", &dir_arg).0, 0);

    // Another input: every header names the digest of examples/small.
    let (code, err) = from_events("examples/enterprise", &dir_arg);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("virtualized-seed-1.jsonl"), "{err}");
    assert!(
        err.contains("line 1: the log is for another run: input is "),
        "{err}"
    );

    // Another design and another seed under the expected file name.
    let file = |name: &str| dir.join(name);
    let virtualized = std::fs::read(file("virtualized-seed-1.jsonl")).expect("log");
    std::fs::copy(
        file("bare-metal-seed-2.jsonl"),
        file("virtualized-seed-1.jsonl"),
    )
    .expect("copy");
    let (code, err) = from_events("examples/small", &dir_arg);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("virtualized-seed-1.jsonl"), "{err}");
    assert!(
        err.contains("line 1: the log is for another run: seed is 2, not 1 and design is bare-metal, not virtualized"),
        "{err}"
    );

    // A log without a header (written before the format had one).
    std::fs::write(file("virtualized-seed-1.jsonl"), &virtualized).expect("write");
    let log = std::fs::read_to_string(file("bare-metal-seed-1.jsonl")).expect("log");
    let headless: String = log.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(file("bare-metal-seed-1.jsonl"), headless).expect("write");
    let (code, err) = from_events("examples/small", &dir_arg);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 1: the log does not start with a `header` event"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
