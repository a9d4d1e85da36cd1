//! Fuzzes the event-log reader: arbitrary bytes must never make `LogReader` panic or
//! hang, and it must end (every line read, or an error that ends the log).
//! Run with `cargo +nightly fuzz run read` from `crates/events`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plinth_events::LogReader;

fuzz_target!(|data: &[u8]| {
    if let Ok(reader) = LogReader::new(data) {
        for record in reader {
            let _ = record;
        }
    }
});
