//! The replication wire protocol (DESIGN §6): messages and their codec. Pure: no I/O.
//!
//! - [`message`]: the [`Message`] enum, one per binary websocket frame, MessagePack-encoded as
//!   `{kind: [fields...]}`.
//! - [`codec`]: [`Codec`] with hard [`Limits`]; malformed input gets a typed
//!   [`ProtocolError`], which [`ProtocolError::reply`] turns into the [`Message::Error`] sent
//!   before a clean close.
//! - [`received`]: [`Received`], a decoded frame whose content the codec hashed once.
//!
//! ```
//! use replikativ_core::protocol::{Codec, Message};
//! let codec = Codec::default();
//! let key = replikativ_core::identity::Keypair::from_seed([1; 32]).public();
//! let msg = Message::hello(key, [7; 32]);
//! let frame = codec.encode(&msg).expect("encodes");
//! assert_eq!(codec.decode(&frame).expect("decodes"), msg);
//! ```

pub mod codec;
pub mod error;
pub mod message;
pub mod received;
mod walk;

pub use codec::{Codec, Frame, Limits, decode, encode};
pub use error::ProtocolError;
pub use message::{
    Blob, ByteBuf, ErrorCode, FixedBytes, KINDS, Message, Nonce, PROTOCOL_VERSION, Signature,
    WirePack,
};
pub use received::Received;
