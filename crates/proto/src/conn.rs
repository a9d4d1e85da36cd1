//! Length-delimited JSON frames over any byte stream (TCP in practice).

use std::fmt;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::error::ProtoError;
use crate::message::{Envelope, PROTOCOL_VERSION};

/// The largest frame either side accepts (an inventory of a few thousand VMs fits).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The shared secret both sides put in every frame. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token from its text (surrounding whitespace, such as a file's newline, is dropped).
    #[must_use]
    pub fn new(text: &str) -> Self {
        Self(text.trim().to_owned())
    }

    /// Whether `candidate` is this token, compared in time independent of where they differ.
    fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(..)")
    }
}

/// One side of a connection: sends `Envelope<S>` frames, receives `Envelope<R>` frames.
#[derive(Debug)]
pub struct Connection<T> {
    frames: Framed<T, LengthDelimitedCodec>,
    token: Token,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Connection<T> {
    /// Frames `stream` with the shared token.
    pub fn new(stream: T, token: Token) -> Self {
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_FRAME_BYTES)
            .new_codec();
        Self {
            frames: Framed::new(stream, codec),
            token,
        }
    }

    /// Sends one message in an envelope with this side's version and token.
    ///
    /// # Errors
    /// When the socket fails or the peer is gone.
    pub async fn send<M: Serialize>(&mut self, body: &M) -> Result<(), ProtoError> {
        let envelope = Envelope {
            version: PROTOCOL_VERSION,
            token: self.token.0.clone(),
            body,
        };
        let bytes = serde_json::to_vec(&envelope).map_err(ProtoError::Malformed)?;
        self.frames.send(Bytes::from(bytes)).await?;
        Ok(())
    }

    /// Sends raw bytes as one frame, for tests of what a broken peer sends.
    ///
    /// # Errors
    /// When the socket fails.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ProtoError> {
        self.frames.send(Bytes::from(bytes)).await?;
        Ok(())
    }

    /// Receives one message, refusing frames that are malformed, of another version or
    /// unauthenticated.
    ///
    /// # Errors
    /// [`ProtoError::Closed`] at the end of the stream, else why the frame was refused.
    pub async fn recv<M: DeserializeOwned>(&mut self) -> Result<M, ProtoError> {
        let frame = self.frames.next().await.ok_or(ProtoError::Closed)??;
        open(&frame, &self.token)
    }
}

/// Checks and opens one frame: version first (another version's body may not parse), then the
/// token, then the body.
fn open<M: DeserializeOwned>(frame: &[u8], token: &Token) -> Result<M, ProtoError> {
    let envelope: Envelope<serde_json::Value> =
        serde_json::from_slice(frame).map_err(ProtoError::Malformed)?;
    if envelope.version != PROTOCOL_VERSION {
        return Err(ProtoError::Version {
            got: envelope.version,
            want: PROTOCOL_VERSION,
        });
    }
    if !token.matches(&envelope.token) {
        return Err(ProtoError::Unauthenticated);
    }
    serde_json::from_value(envelope.body).map_err(ProtoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Action, Command, ToAgent};
    use crate::{CommandId, VmName};

    fn token() -> Token {
        Token::new("secret\n")
    }

    fn frame(version: u32, token: &str, body: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"version": version, "token": token, "body": body}))
            .expect("serializes")
    }

    #[test]
    fn a_well_formed_frame_opens() {
        let cmd = ToAgent::Command(Command {
            id: CommandId(7),
            deadline_unix_ms: 1,
            action: Action::StartVm {
                vm: VmName("a".into()),
            },
        });
        let bytes = frame(
            PROTOCOL_VERSION,
            "secret",
            serde_json::to_value(&cmd).expect("value"),
        );
        assert_eq!(open::<ToAgent>(&bytes, &token()).expect("opens"), cmd);
    }

    #[test]
    fn garbage_wrong_token_version_and_shape_are_refused() {
        let ok_body = serde_json::json!({"type": "heartbeat"});
        assert!(matches!(
            open::<ToAgent>(b"\xff\x00not json", &token()),
            Err(ProtoError::Malformed(_))
        ));
        assert!(matches!(
            open::<ToAgent>(&frame(PROTOCOL_VERSION, "guess", ok_body.clone()), &token()),
            Err(ProtoError::Unauthenticated)
        ));
        // A peer of the previous version (no live migration) is refused, not misread.
        let old = PROTOCOL_VERSION - 1;
        assert!(matches!(
            open::<ToAgent>(&frame(old, "secret", ok_body), &token()),
            Err(ProtoError::Version { got, want: PROTOCOL_VERSION }) if got == old
        ));
        assert!(matches!(
            open::<ToAgent>(
                &frame(
                    PROTOCOL_VERSION,
                    "secret",
                    serde_json::json!({"type": "formatDisk"})
                ),
                &token()
            ),
            Err(ProtoError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn an_oversized_frame_is_an_error_not_an_allocation() {
        let (a, b) = tokio::io::duplex(64);
        let mut reader = Connection::new(b, token());
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut a = a;
            // A length prefix of 2 GiB and nothing behind it.
            let _ = a.write_all(&0x8000_0000u32.to_be_bytes()).await;
            a
        });
        assert!(matches!(
            reader.recv::<ToAgent>().await,
            Err(ProtoError::Io(_))
        ));
        drop(writer.await);
    }
}
