//! `plinth simulate` on examples/enterprise: the done-when — the same seed writes a
//! byte-identical event log, another seed a different one, in both environments.

mod common;

use std::path::{Path, PathBuf};

use common::plinth;

fn simulate(env: &str, seed: &str, events: &Path) -> (i32, String) {
    let events = events.display().to_string();
    plinth(&[
        "simulate",
        "examples/enterprise",
        "--env",
        env,
        "--seed",
        seed,
        "--duration",
        "365d",
        "-o",
        "json",
        "--events",
        &events,
    ])
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("plinth-simulate-{}-{name}", std::process::id()))
}

#[test]
fn same_seed_same_event_log_other_seed_other_log() {
    for env in ["virtualized", "bare-metal"] {
        let (a, b, c) = (
            tmp(&format!("{env}-a")),
            tmp(&format!("{env}-b")),
            tmp(&format!("{env}-c")),
        );
        let (code, out) = simulate(env, "42", &a);
        assert_eq!(code, 0, "{out}");
        let summary: serde_json::Value = serde_json::from_str(&out).expect("json summary");
        assert!(
            summary["hostFailures"].as_u64().is_some_and(|n| n > 0),
            "{summary}"
        );
        assert_eq!(simulate(env, "42", &b).0, 0);
        assert_eq!(simulate(env, "7", &c).0, 0);
        let (la, lb, lc) = (
            std::fs::read(&a).expect("log a"),
            std::fs::read(&b).expect("log b"),
            std::fs::read(&c).expect("log c"),
        );
        assert!(!la.is_empty());
        assert_eq!(la, lb, "{env}: seed 42 twice");
        assert_ne!(la, lc, "{env}: seeds 42 and 7");
        for p in [a, b, c] {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[test]
fn the_log_starts_with_a_header_naming_the_run_and_binds_every_pod_at_the_start() {
    let path = tmp("header");
    let events = path.display().to_string();
    let (code, out) = plinth(&[
        "simulate",
        "examples/small",
        "--env",
        "bare-metal",
        "--seed",
        "5",
        "--duration",
        "2d",
        "--events",
        &events,
    ]);
    assert_eq!(code, 0, "{out}");
    let text = std::fs::read_to_string(&path).expect("log");
    let _ = std::fs::remove_file(&path);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let header = &lines[0];
    assert_eq!(header["t"], 0, "{header}");
    assert_eq!(header["event"], "header", "{header}");
    assert_eq!(header["formatVersion"], 2, "{header}");
    assert_eq!(header["seed"], 5, "{header}");
    assert_eq!(header["durationMs"], 2 * 86_400_000u64, "{header}");
    assert_eq!(header["design"], "bareMetal", "{header}");
    assert_eq!(header["source"], "simulation", "{header}");
    assert_eq!(header["input"].as_str().map(str::len), Some(64), "{header}");
    assert_eq!(lines[1]["event"], "start");
    // One `podBound` line per pod placed at t = 0, each pod named once.
    let pods = lines[1]["pods"].as_u64().expect("pods");
    let pending: u64 = lines
        .iter()
        .filter(|l| l["t"] == 0 && l["event"] == "podsPending")
        .filter_map(|l| l["pods"].as_u64())
        .sum();
    let bound: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l["t"] == 0 && l["event"] == "podBound")
        .map(|l| l["pod"].to_string())
        .collect();
    assert!(pods > 0);
    assert_eq!(bound.len() as u64, pods - pending, "{bound:?}");
    // The last line seals the log: the SHA-256 of every line before it.
    let last = lines.last().expect("lines");
    assert_eq!(last["event"], "digest", "{last}");
    assert_eq!(last["sha256"].as_str().map(str::len), Some(64), "{last}");
    assert!(
        out.contains(last["sha256"].as_str().unwrap_or("-")),
        "{out}"
    );
}
