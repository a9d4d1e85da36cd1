//! Estates the simulator's tests share.

use std::path::Path;

use plinth_model::{Estate, Input, SourceFile, load};

/// The example `name` (`examples/<name>`), with `extra` YAML documents added.
pub(crate) fn example(name: &str, extra: &str) -> Estate {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name);
    let mut input = Input::default();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("example dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
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
