//! Placement decisions as pure functions: no clock, no I/O, no randomness (ties break by name).
//!
//! This crate owns *where things go*: VMs onto hypervisor hosts ([`PoolState`],
//! [`place_all`]) with placement groups, VM→host rules, overcommit and HA admission
//! control ([`admission`]); servers onto bare-metal clusters ([`baremetal`]); the fewest
//! servers an estate needs and how much more fits ([`capacity`], [`headroom`]). Inputs are
//! compact indexed problem types built by the caller from the manifests; this crate never
//! reads manifests, files or the clock, and it must not depend on the manifest types beyond
//! [`plinth_model::Resources`] and the policy vocabulary.

pub mod admission;
pub mod baremetal;
mod batch;
pub mod capacity;
pub mod designs;
pub mod error;
mod evacuate;
pub mod explain;
mod groups;
pub mod headroom;
pub mod hosts;
mod index;
mod migrate;
pub mod nodes;
mod place_all;
pub mod plan;
pub mod pods;
pub mod pool;
mod select;
mod state;
pub mod vm;

pub use admission::{AdmissionPolicy, SlotReport};
pub use baremetal::{BareMetalPlan, BareMetalProblem, allocate_servers};
pub use batch::Reservation;
pub use capacity::{CapacityPlan, CapacityProblem, Condition, HeadroomRule, plan_capacity};
pub use error::PlacementError;
pub use evacuate::{Evacuation, Exceptions, RestartScope};
pub use explain::Explanation;
pub use headroom::{Headroom, headroom};
pub use hosts::{HostId, HostSpec, HostStatus, Overcommit, RackId};
pub use migrate::Migration;
pub use place_all::{PlacementOutcome, place_all};
pub use pool::{Pool, PoolConfig};
pub use state::PoolState;
pub use vm::{Group, GroupId, HostRuleSpec, RestartPriority, RuleId, VmId, VmSpec, ZoneId};
