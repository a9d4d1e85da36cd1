//! Replays the event-log reader's fuzz corpus and every crash the fuzzer saved
//! (`fuzz/corpus/read`, `fuzz/artifacts/read`) through `LogReader`, as the fuzz target
//! feeds them. Fuzzing itself needs nightly and stays out of CI; this keeps its findings
//! fixed. It fails when either directory is missing or the corpus is empty (a replay of
//! nothing proves nothing), and checks the seeds' verdicts: the logs the simulator wrote
//! (`small-*`) read cleanly, every edited one is refused.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use plinth_events::LogReader;

/// A read that takes longer than this is a hang (the corpus files are a few KB).
const LIMIT: Duration = Duration::from_secs(20);

/// Reads `data` to its end on a worker thread: the errors it reported, or why the read
/// itself failed (a panic or a hang).
fn errors_of(data: Vec<u8>) -> Result<usize, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| match LogReader::new(data.as_slice()) {
            Err(_) => 1,
            Ok(reader) => reader.filter(Result::is_err).count(),
        })
        .map_err(|_| "the reader panicked".to_owned());
        let _ = tx.send(result);
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| Err(format!("the read did not finish within {LIMIT:?}")))
}

/// The files of `fuzz/<dir>/read`, failing if the directory is missing.
fn files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(dir)
        .join("read");
    let entries =
        std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{} must exist: {e}", root.display()));
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "README"))
        .collect();
    out.sort();
    out
}

#[test]
fn the_corpus_replays_with_the_expected_verdicts() {
    let corpus = files("corpus");
    assert!(!corpus.is_empty(), "the fuzz corpus is empty");
    let mut failures = Vec::new();
    for path in &corpus {
        let data = std::fs::read(path).expect("corpus file");
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let clean = name.starts_with("small-");
        match errors_of(data) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(0) if !clean => failures.push(format!("{name}: an edited log was accepted")),
            Ok(n) if n > 0 && clean => failures.push(format!("{name}: {n} errors in a real log")),
            Ok(_) => {}
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn saved_crashes_stay_fixed() {
    for path in files("artifacts") {
        let data = std::fs::read(&path).expect("artifact");
        if let Err(e) = errors_of(data) {
            panic!("{}: {e}", path.display());
        }
    }
}
