//! Replays the corpus of the Scenario and Environment fuzz targets and every input the
//! fuzzer saved (`fuzz/corpus/<kind>`, `fuzz/artifacts/<kind>`) through the loader, as
//! the targets build them: the file is the spec of a document of that kind beside the small
//! example's Inventory and Cluster. No panic, no hang, every error located; and each
//! seed's verdict holds: `ok-*` specs load cleanly, every `bad-*` one is refused. Fails
//! when a directory is missing or a corpus is empty (a replay of nothing proves nothing).

mod common;

#[path = "../fuzz/fuzz_targets/spec_input.rs"]
mod spec_input;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use plinth_model::{Severity, load};
use spec_input::{Kind, input};

/// A load that takes longer than this is a hang (real inputs take milliseconds).
const LIMIT: Duration = Duration::from_secs(20);

/// The files of `fuzz/<dir>/<kind>` but its README, sorted; panics if it is missing.
fn files(dir: &str, kind: Kind) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join(kind.name().to_lowercase());
    let entries =
        std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{} must exist: {e}", root.display()));
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README"))
        .collect();
    out.sort();
    out
}

/// Loads the spec in `path` on a worker thread: how many errors it got, or why the load
/// itself failed (a panic, a hang, an error without a location).
fn errors_of(kind: Kind, path: &Path) -> Result<usize, String> {
    let data = std::fs::read(path).map_err(|e| format!("reading: {e}"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| {
            let input = input(kind, &data);
            let loaded = load(&input);
            common::assert_located(&input, &loaded)?;
            Ok(loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count())
        })
        .unwrap_or_else(|_| Err("load panicked".into()));
        let _ = tx.send(result);
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| Err(format!("load did not finish within {LIMIT:?}")))
}

/// Replays the corpus of `kind` and checks each seed's verdict.
fn corpus_replays(kind: Kind) {
    let corpus = files("corpus", kind);
    assert!(!corpus.is_empty(), "the {} corpus is empty", kind.name());
    let mut failures = Vec::new();
    for path in &corpus {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match errors_of(kind, path) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(n) if name.starts_with("ok-") && n > 0 => {
                failures.push(format!("{name}: {n} errors in a valid spec"));
            }
            Ok(0) if name.starts_with("bad-") => {
                failures.push(format!("{name}: a broken spec was accepted"));
            }
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Replays the inputs the fuzzer saved for `kind`.
fn saved_inputs_replay(kind: Kind) {
    for path in files("artifacts", kind) {
        if let Err(e) = errors_of(kind, &path) {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn the_scenario_corpus_replays_with_the_expected_verdicts() {
    corpus_replays(Kind::Scenario);
}

#[test]
fn the_environment_corpus_replays_with_the_expected_verdicts() {
    corpus_replays(Kind::Environment);
}

#[test]
fn saved_scenario_and_environment_crashes_stay_fixed() {
    saved_inputs_replay(Kind::Scenario);
    saved_inputs_replay(Kind::Environment);
}
