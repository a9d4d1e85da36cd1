//! The agent's errors.

use std::path::PathBuf;

use plinth_proto::VmName;

/// What can go wrong in the host agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file or directory could not be read or written.
    #[error("{path}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A tool (qemu-img, mkfs.vfat, apt-get, …) could not be started or failed.
    #[error("`{tool}` failed: {detail}")]
    Tool {
        /// The program.
        tool: String,
        /// Its exit status and the end of its stderr, or why it could not start.
        detail: String,
    },
    /// A QMP exchange failed.
    #[error("QMP of VM {vm}: {detail}")]
    Qmp {
        /// The VM.
        vm: VmName,
        /// What went wrong.
        detail: String,
    },
    /// The command names a VM this host does not have.
    #[error("no VM {0} on this host")]
    UnknownVm(VmName),
    /// The command would create a VM this host already has.
    #[error("VM {0} exists already, with another spec")]
    VmExists(VmName),
    /// The VM names a node OS image this host was not given.
    #[error(
        "no node image {image:?} on this host (it has: {known}); start its agent with --image for it"
    )]
    UnknownImage {
        /// The image asked for.
        image: String,
        /// The ones the host has.
        known: String,
    },
    /// The VM name is not one path component.
    #[error("invalid VM name {0:?}")]
    InvalidName(VmName),
    /// A live migration did not happen, and the VM is where it was: it runs on its source,
    /// and a receiver that was started ends by itself.
    #[error("VM {vm} not migrated: {detail}")]
    NotMigrated {
        /// The VM.
        vm: VmName,
        /// Why.
        detail: String,
    },
    /// A VM did not get where it was asked to in time.
    #[error("VM {vm}: {detail}")]
    Vm {
        /// The VM.
        vm: VmName,
        /// What happened.
        detail: String,
    },
    /// A node network could not be given its slot, or an address on it.
    #[error("{network}: {detail}")]
    BadNetwork {
        /// The network.
        network: plinth_proto::network::NetworkOf,
        /// What went wrong.
        detail: String,
    },
    /// The listener could not be bound.
    #[error("listen on {addr}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl AgentError {
    /// A [`AgentError::File`] for `path`.
    pub(crate) fn file(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::File { path, source }
    }
}
