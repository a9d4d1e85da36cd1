//! The placement crate's error type.

use thiserror::Error;

use crate::explain::Explanation;

/// Why a placement operation did not happen. Unplaceable results carry a kube-scheduler
/// style [`Explanation`] of every candidate's rejection.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum PlacementError {
    /// No candidate passes the filters.
    #[error("{vm} cannot be placed: {explanation}")]
    Unplaceable {
        /// The VM (or node, or server role) that found no place.
        vm: String,
        /// Every candidate's reason.
        explanation: Explanation,
    },
    /// HA admission control refused the placement: it would break the failover reserve.
    #[error("{vm} refused by HA admission control: {explanation}")]
    Admission {
        /// The VM refused.
        vm: String,
        /// The reserve that would break, counted against every candidate.
        explanation: Explanation,
    },
    /// HA does not restart a VM whose restart priority is `disabled`.
    #[error("{vm} has restart priority disabled")]
    RestartDisabled {
        /// The VM left powered off.
        vm: String,
    },
    /// A VM id that the state does not hold.
    #[error("no VM with id {id}")]
    UnknownVm {
        /// The id asked for.
        id: u32,
    },
    /// A host id outside the pool.
    #[error("no host with id {id}")]
    UnknownHost {
        /// The id asked for.
        id: u32,
    },
    /// A reservation already committed, aborted or never made.
    #[error("reservation {id} is not open")]
    UnknownReservation {
        /// The reservation's id.
        id: u64,
    },
    /// A migration plan that does not match the state it is applied to.
    #[error("plan moves {vm} from {from}, but it runs on {actual}")]
    StalePlan {
        /// The VM moved.
        vm: String,
        /// Where the plan says it is.
        from: String,
        /// Where it is.
        actual: String,
    },
    /// A host that still runs VMs cannot change to the requested status.
    #[error("host {host} still runs {vms} VMs")]
    HostNotEmpty {
        /// The host.
        host: String,
        /// How many VMs it runs.
        vms: usize,
    },
    /// The problem refers to something that does not exist or is out of range.
    #[error("invalid placement problem: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}
