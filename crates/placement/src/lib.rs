//! Placement decisions as pure functions: no clock, no I/O, no randomness (ties break by name).

pub mod explain;

pub use explain::Explanation;
