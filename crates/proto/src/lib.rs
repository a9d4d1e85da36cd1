//! `plinth-proto`: the typed, versioned messages that Plinth's control plane and its host
//! agents exchange (commands with ids and deadlines, completions with typed errors,
//! inventories with VM generations and the host's boot id, heartbeats), the messages between a
//! host agent and the guest agent inside a node VM, and their framing.
//!
//! Host traffic is length-delimited JSON over TCP: each frame is an [`Envelope`] carrying the
//! protocol version and a shared token. [`Connection::recv`] refuses a frame that is too large,
//! is not JSON of the expected shape, has another version or a wrong token, with a typed
//! [`ProtoError`]; nothing a peer sends can make it panic.
//!
//! This crate must not know any reconciler: it carries decisions, it makes none.

mod conn;
mod error;
pub mod guest;
mod ids;
mod message;
pub mod network;

pub use conn::{Connection, MAX_FRAME_BYTES, Token};
pub use error::ProtoError;
pub use ids::{BootId, CommandId, Generation, HostName, VmName};
pub use message::{
    Accelerator, Action, AdminRequest, BenchResult, CONSOLE_CHUNK_BYTES, Capacity, Command,
    CommandError, Completion, ConsoleChunk, Envelope, FromAgent, Heartbeat, Inventory,
    MigrationStats, Outcome, PROTOCOL_VERSION, ToAgent, VmReport, VmSpec, VmState,
};
