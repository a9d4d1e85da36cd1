//! Fuzzes the manifest loader: arbitrary bytes, read as (lossy) UTF-8, must never make
//! `plinth_model::load` panic or hang, whether given as one source or split into two.
//! Run with `cargo +nightly fuzz run load` from `crates/model`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_model::{Input, SourceFile, load};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let mut one = Input::default();
    one.add(SourceFile::new("fuzz.yaml", text.as_ref()));
    check(&load(&one));

    // The first byte chooses where the text splits into two sources of one input.
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
        check(&load(&two));
    }
});

/// Every error points at a real line.
fn check(loaded: &plinth_model::Loaded) {
    for d in loaded.diagnostics.iter() {
        if d.severity == plinth_model::Severity::Error {
            assert!(d.location.line >= 1, "error without a line: {d}");
        }
    }
}
