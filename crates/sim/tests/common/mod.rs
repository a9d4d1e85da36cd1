//! Estates the simulator's tests share (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;

use plinth_model::{Estate, Input, SourceFile, load};

/// The example `name` (`examples/<name>`), with `extra` YAML documents added.
pub(crate) fn example(name: &str, extra: &str) -> Estate {
    example_replacing(name, None, extra)
}

/// The example `name` without its file `replaced` (e.g. `inventory.yaml`), with `extra`
/// YAML documents added.
pub(crate) fn example_replacing(name: &str, replaced: Option<&str>, extra: &str) -> Estate {
    estate_in(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples")
            .join(name),
        replaced,
        extra,
    )
}

/// The test fixture `name` (`tests/fixtures/<name>`) without its file `replaced`, with
/// `extra` YAML documents added.
pub(crate) fn fixture_replacing(name: &str, replaced: Option<&str>, extra: &str) -> Estate {
    estate_in(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        replaced,
        extra,
    )
}

/// The estate of the `.yaml` files in `dir` but `replaced`, with `extra` YAML documents.
fn estate_in(dir: &Path, replaced: Option<&str>, extra: &str) -> Estate {
    let mut input = Input::default();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("estate dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| replaced.is_none_or(|r| p.file_name().is_none_or(|f| f != r)))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        input.add(SourceFile::new(f.display().to_string(), text));
    }
    if !extra.is_empty() {
        input.add(SourceFile::new("test.yaml", extra.to_owned()));
    }
    let loaded = load(&input);
    loaded
        .estate
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

/// examples/small with no random failures, no patching waves, and fencing that fails with
/// probability `fence_failure`.
pub(crate) fn small(fence_failure: f64, timeline: &str) -> Estate {
    example(
        "small",
        &format!(
            r#"apiVersion: plinth.dev/v1alpha1
kind: Scenario
metadata:
  name: test
spec:
  failures:
    hosts:
      mtbf: 100000d
      repairTime: 8h
  operations:
    hostPatchingInterval: 100000d
    timeline: {timeline}
---
apiVersion: plinth.dev/v1alpha1
kind: Environment
metadata:
  name: hci
spec:
  type: virtualized
  ha:
    fenceFailureProbability: {fence_failure}
"#
        ),
    )
}
