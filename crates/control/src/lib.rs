//! The control plane core: reconcilers as pure functions of (desired, observed, now) that
//! return commands, behind one sans-I/O state machine, [`Control`].
//!
//! This crate owns *decisions*: when a silent host is declared failed, that it is fenced
//! before its VMs restart, where they restart ([`ha`]), which VMs DRS moves ([`drs`]), how
//! a host is evacuated for maintenance ([`maintenance`]), how a cluster's nodes are rolled
//! to a new version or image ([`upgrade`]). It must not sleep, spawn, read a
//! clock, draw random numbers or do I/O, and it never sees the world's ground truth: a
//! driver (the simulator in `plinth-sim`, later the QEMU driver) feeds it
//! [`Observation`]s stamped with the time and carries out the [`Command`]s it returns.
//! Ties break by name, so the same observations give the same commands.

mod command;
pub mod config;
mod control;
pub mod driver;
pub mod drs;
mod error;
pub mod ha;
pub mod maintenance;
pub mod store;
#[cfg(test)]
mod testing;
mod time;
pub mod upgrade;

pub use command::{
    BootId, Command, CommandError, CommandId, CommandKind, Condition, ConditionChange,
    ControlEvent, Observation, PoolName, Ready, Reason, ReplaceMethod, UpgradeKind,
};
pub use config::{ControlConfig, Deadlines, DrsConfig, HaConfig};
pub use control::{ClusterState, Control, FailureRecord, HostState, VmPhase};
pub use driver::{Driver, run};
pub use error::ControlError;
pub use time::{Span, Time};
pub use upgrade::{ClusterTopology, PoolTopology, Spare, Strategy};
