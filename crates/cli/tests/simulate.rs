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
