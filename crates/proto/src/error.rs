//! Everything that can go wrong reading or writing a frame.

/// A frame could not be sent or was refused on receipt.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The socket failed, or a frame exceeded [`crate::MAX_FRAME_BYTES`].
    #[error("transport")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The frame is not JSON of the expected shape.
    #[error("malformed frame")]
    Malformed(#[source] serde_json::Error),
    /// The frame speaks another protocol version.
    #[error("protocol version {got}, this side speaks {want}")]
    Version {
        /// The version the frame carried.
        got: u32,
        /// The version this side speaks.
        want: u32,
    },
    /// The frame's token is not the shared token.
    #[error("unauthenticated frame: wrong token")]
    Unauthenticated,
}
