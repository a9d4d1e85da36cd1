//! `compare --from-events` refuses logs that were reordered or edited in time, rather
//! than printing a different report with exit 0.

mod common;

use common::plinth_streams;

#[test]
fn a_reordered_log_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    let logs_arg = logs.to_str().expect("utf-8 path");
    let flags = [
        "--seeds",
        "2",
        "--duration",
        "2d",
        "--no-sweep",
        "-o",
        "json",
    ];
    let (code, _, err) = plinth_streams(
        &[
            &["compare", "examples/small", "--events", logs_arg][..],
            &flags,
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let log = logs.join("virtualized-seed-1.jsonl");
    let text = std::fs::read_to_string(&log).expect("log");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[1..].reverse();
    std::fs::write(&log, lines.join("\n") + "\n").expect("rewrite");
    let (code, out, err) = plinth_streams(
        &[
            &["compare", "examples/small", "--from-events", logs_arg][..],
            &flags,
        ]
        .concat(),
    );
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("out of order"), "{err}");
}
