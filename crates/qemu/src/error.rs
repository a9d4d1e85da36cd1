//! Everything that can stop the QEMU driver or its lab.

use plinth_control::store::StoreError;

/// Why the driver or the lab could not go on.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// The async runtime could not start.
    #[error("cannot start the driver's runtime")]
    Runtime(#[source] std::io::Error),
    /// The store refused a step's records: the step's commands were not sent.
    #[error("the control plane's store refused a write")]
    Store(#[source] StoreError),
    /// The estate's virtualized design cannot be built.
    #[error("the virtualized design cannot be run")]
    Design(#[source] plinth_sim::SimError),
    /// A host of the design has no agent address.
    #[error(
        "host {host} has no agent: give it `agent: IP:PORT` in the Inventory (a host the plan would buy does not exist yet: add it, or lower the Scenario's requirements)"
    )]
    NoAgent {
        /// The host.
        host: String,
    },
    /// The testbed script failed.
    #[error("scripts/testbed {args} failed: {detail}")]
    Testbed {
        /// Its arguments.
        args: String,
        /// What it printed or why it did not run.
        detail: String,
    },
}
