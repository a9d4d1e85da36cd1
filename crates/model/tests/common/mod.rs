//! Helpers shared by the robustness tests: the example inputs and the located-error check.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use plinth_model::{Input, Loaded, Severity, SourceFile};

/// `examples/<name>` of the repository.
pub(crate) fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Every `.yaml` file of `dir`, sorted by name, as (file name, text).
pub(crate) fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, text)
        })
        .collect();
    files.sort();
    files
}

/// One input of the given (name, text) sources.
pub(crate) fn input_of(files: &[(String, String)]) -> Input {
    let mut input = Input::default();
    for (name, text) in files {
        input.add(SourceFile::new(name.as_str(), text.as_str()));
    }
    input
}

/// Checks the promise every user relies on: a rejected input says why, and each error
/// points at a line of one of the input's files.
pub(crate) fn assert_located(input: &Input, loaded: &Loaded) -> Result<(), String> {
    if loaded.estate.is_none() && !loaded.diagnostics.has_errors() {
        return Err("no estate, yet no error says why".into());
    }
    for d in loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
    {
        let Some(source) = input.sources.iter().find(|s| s.name == d.location.file) else {
            return Err(format!("error in a file that is not an input: {d}"));
        };
        let lines = source.text.lines().count() as u32;
        if d.location.line < 1 || d.location.line > lines + 1 || d.location.column < 1 {
            return Err(format!("error outside its file ({lines} lines): {d}"));
        }
    }
    Ok(())
}
