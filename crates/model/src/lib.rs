//! Plinth's resource model: the typed manifests of an estate (Inventory, Environment,
//! Cluster, workloads, VirtualMachineSet, Scenario, PriceSheet), parsed from YAML text it is
//! handed, with every error located at file:line:column, then validated into an [`Estate`].
//!
//! This crate owns the vocabulary every other crate speaks. It does no I/O: it never opens
//! a file, reads stdin or looks at a clock. Reading files and directories is the caller's job.

pub mod decode;
pub mod diag;
pub mod document;
pub mod estate;
pub mod kinds;
pub mod merge;
pub mod names;
pub mod policy;
pub mod quantity;
pub mod ranges;
pub mod schema;
pub mod source;
pub mod units;
pub mod validate;
pub mod version;
pub mod workload;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Severity, Summary, Topic};
pub use estate::{Estate, Input, Loaded, check_objects, load};
pub use source::{Location, SourceFile};
pub use units::Resources;
