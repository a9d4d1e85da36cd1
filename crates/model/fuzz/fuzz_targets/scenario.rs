//! Fuzzes the Scenario decoder: arbitrary bytes as the spec of a `Scenario` beside the small
//! example's Inventory and Cluster must never make `plinth_model::load` panic or hang,
//! and every error must point at a line. Run with `cargo +nightly fuzz run scenario` from
//! `crates/model/fuzz`.

#![no_main]

mod spec_input;

use libfuzzer_sys::fuzz_target;
use plinth_model::{Severity, load};
use spec_input::{Kind, input};

fuzz_target!(|data: &[u8]| {
    let loaded = load(&input(Kind::Scenario, data));
    for d in loaded.diagnostics.iter() {
        if d.severity == Severity::Error {
            assert!(d.location.line >= 1, "error without a line: {d}");
        }
    }
});
