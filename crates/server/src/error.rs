//! The server's errors.

use crate::kinds::ObjectKey;

/// What the object store refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// An object named a resourceVersion other than the stored one.
    #[error(
        "{key} was changed since it was read: it names resourceVersion {expected}, {}; read it again and retry",
        match stored { Some(v) => format!("the stored one is {v}"), None => "and it does not exist".to_owned() }
    )]
    Conflict {
        /// The object.
        key: ObjectKey,
        /// The version it named.
        expected: u64,
        /// The version stored, if it exists.
        stored: Option<u64>,
    },
    /// The change would leave running VMs unmanaged.
    #[error("{0}")]
    Refused(String),
    /// A watch asked for changes that were compacted away.
    #[error(
        "too old resource version: {requested} (the oldest this server keeps is {oldest}); list again and watch from the list's resourceVersion"
    )]
    Expired {
        /// The revision asked for.
        requested: u64,
        /// The oldest revision a watch may start from.
        oldest: u64,
    },
    /// The request named something malformed.
    #[error("{0}")]
    Invalid(String),
    /// A group commit failed: the write is not stored.
    #[error("the write was not committed: {0}")]
    Commit(String),
    /// The database holds something this server did not write.
    #[error("the object store is corrupt: {0}")]
    Corrupt(String),
    /// The backend (SQLite, etcd) failed.
    #[error("object store: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<rusqlite::Error> for ObjectsError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Backend(Box::new(e))
    }
}

/// A file of the data directory, the tokens, the agents or the TLS certificates that
/// could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
pub struct FileError {
    /// What was being done.
    pub what: &'static str,
    /// The path.
    pub path: std::path::PathBuf,
    /// Why it failed.
    pub source: std::io::Error,
}

/// What stops `plinth serve`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory or a file in it.
    #[error(transparent)]
    Io(#[from] FileError),
    /// The tokens file.
    #[error("tokens file {path}, line {line}: {message}")]
    Tokens {
        /// The file.
        path: std::path::PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong, with the fix.
        message: String,
    },
    /// The agents file.
    #[error("agents file {path}: {message}")]
    Agents {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong, with the fix.
        message: String,
    },
    /// The object store.
    #[error(transparent)]
    Objects(#[from] ObjectsError),
    /// `--etcd` given to a build without the `etcd` feature.
    #[error(
        "this plinth was built without etcd support: build it with `cargo build --release --features etcd` (which needs protoc: `apt-get install protobuf-compiler`), or leave out --etcd to use the embedded SQLite store"
    )]
    NoEtcd,
    /// A replica of a replicated control plane stopped: etcd failed, or the lease was lost.
    #[error("replica {replica}: {message}")]
    Replica {
        /// The replica.
        replica: String,
        /// What happened, with the fix.
        message: String,
    },
    /// The API's TLS certificate or key.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Listening.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: std::net::SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
}
