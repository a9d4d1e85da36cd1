//! Loading inputs and running comparisons for the compare tests.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};

use plinth_compare::{Options, Report, compare};
use plinth_model::{Estate, Input, SourceFile, load};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Loads every `.yaml` under each of `dirs` (relative to the repository root) as one input.
pub fn estate(dirs: &[&str]) -> Estate {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| root().join(d)).collect();
    estate_at(&dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>())
}

/// Loads every `.yaml` under each of `dirs` as one input.
pub fn estate_at(dirs: &[&Path]) -> Estate {
    let mut input = Input::default();
    for dir in dirs {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("input dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            input.add(SourceFile::new(f.display().to_string(), text));
        }
    }
    let loaded = load(&input);
    loaded
        .estate
        .unwrap_or_else(|| panic!("{:?}", loaded.diagnostics))
}

/// `runs` paired runs of `days` simulated days from seed 1.
pub fn options(runs: u32, days: u64) -> Options {
    Options {
        seed: 1,
        runs,
        duration_ms: days * 86_400_000,
        input: plinth_events::InputDigest::default(),
    }
}

/// Compares `estate`, panicking with the error if it cannot.
pub fn report(estate: &Estate, options: &Options) -> Report {
    compare(estate, options, &|| {}).unwrap_or_else(|e| panic!("compare: {e}"))
}

/// The dimension with `key`.
pub fn dimension<'a>(report: &'a Report, key: &str) -> &'a plinth_compare::DimensionResult {
    report
        .dimensions
        .iter()
        .find(|d| d.spec.key == key)
        .unwrap_or_else(|| panic!("no dimension {key}"))
}
