//! Replays the fuzz corpus and every crash the fuzzer saved (`fuzz/corpus/load`,
//! `fuzz/artifacts/load`) through the loader, the way the fuzz target feeds them: the
//! whole text as one source, then split in two at the place the first byte chooses.
//! Fuzzing itself needs nightly and stays out of CI; this keeps its findings fixed, and
//! fails when either directory is missing or empty (a replay of nothing proves nothing).

mod common;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use plinth_model::{Input, SourceFile, load};

/// A load that takes longer than this is a hang (real inputs take milliseconds).
const LIMIT: Duration = Duration::from_secs(20);

/// The inputs the fuzz target builds from `data`.
fn inputs(data: &[u8]) -> Vec<Input> {
    let mut one = Input::default();
    one.add(SourceFile::new(
        "fuzz.yaml",
        String::from_utf8_lossy(data).as_ref(),
    ));
    let mut out = vec![one];
    if let Some((&first, rest)) = data.split_first() {
        let rest = String::from_utf8_lossy(rest);
        let mut at = usize::from(first) * rest.len() / 255;
        while !rest.is_char_boundary(at) {
            at -= 1;
        }
        let (a, b) = rest.split_at(at);
        let mut two = Input::default();
        two.add(SourceFile::new("a.yaml", a));
        two.add(SourceFile::new("b.yaml", b));
        out.push(two);
    }
    out
}

/// Loads `data` on a worker thread; a panic, a hang or an unlocated error is a failure.
fn replay(path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("reading: {e}"))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| {
            inputs(&data)
                .iter()
                .try_for_each(|input| common::assert_located(input, &load(input)))
        })
        .unwrap_or_else(|_| Err("load panicked".into()));
        let _ = tx.send(result);
    });
    rx.recv_timeout(LIMIT)
        .unwrap_or_else(|_| Err(format!("load did not finish within {LIMIT:?}")))
}

fn replay_dir(dir: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join(dir);
    let entries = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{} cannot be replayed: {e}", root.display()));
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    let failures: Vec<String> = paths
        .iter()
        .filter_map(|p| replay(p).err().map(|e| format!("{}: {e}", p.display())))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    paths.len()
}

#[test]
fn corpus_loads_without_panic() {
    let n = replay_dir("corpus/load");
    assert!(n > 0, "the seed corpus is missing");
}

#[test]
fn saved_crashes_stay_fixed() {
    let n = replay_dir("artifacts/load");
    assert!(n > 0, "the saved crashes are missing");
}

/// Regression: a huge `count` once made `load` expand billions of hosts and never return;
/// the Inventory is now capped at `MAX_HOSTS` with a located error.
#[test]
fn huge_host_count_is_an_error_not_a_hang() {
    let text = "apiVersion: plinth.dev/v1alpha1
kind: Inventory
metadata:
  name: big
spec:
  hostClasses:
    - name: standard
      sockets: 2
      coresPerSocket: 16
      threadsPerCore: 2
      memory: 384Gi
  racks:
    - name: r1
  hosts:
    - class: standard
      rack: r1
      count: 4000000000
";
    let path = std::env::temp_dir().join("plinth-huge-host-count.yaml");
    std::fs::write(&path, text).expect("temp file");
    let result = replay(&path);
    assert!(result.is_ok(), "{result:?}");
}
