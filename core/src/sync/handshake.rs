//! Mutual authentication at the start of a connection (DESIGN §11), as a pure state machine:
//! no I/O, no clock, no randomness (the driver draws the nonce).
//!
//! Each side sends `Hello{version, key, nonce}` with a fresh random nonce and, once it holds
//! the peer's `Hello`, `Proof{signature}`: its signature over the [`transcript`]. A side is
//! authenticated when the peer's `Proof` verifies under the key the peer's `Hello` announced.
//! The transcript binds, and each part defeats one attack:
//!
//! - a domain-separation label: a signature made here is no signature of anything else;
//! - the protocol version;
//! - both keys, the dialler's first: a proof made towards one node is no proof towards another;
//! - both nonces: a proof recorded from an earlier handshake does not verify against this
//!   connection's fresh nonce (replay);
//! - the signer's role (dialler or acceptor): a proof cannot be reflected back to its signer;
//! - the TLS channel binding (an exporter value) when the transport has one: a handshake
//!   relayed into another TLS connection does not verify. Over plain `ws://` it is `None`,
//!   and the handshake proves who connected, not who sends the frames that follow.
//!
//! A peer presenting our own key is refused: stores copied with their `node.key` share a key.

use crate::identity::{Keypair, PublicKey};
use crate::protocol::{FixedBytes, Message, PROTOCOL_VERSION};

/// The domain-separation label that starts every transcript.
pub const TRANSCRIPT_LABEL: &[u8] = b"replikativ handshake v2\0";

/// Which side of the connection a node is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// It opened the connection.
    Dialler,
    /// It accepted the connection.
    Acceptor,
}

impl Role {
    /// The other side's role.
    pub fn peer(self) -> Role {
        match self {
            Role::Dialler => Role::Acceptor,
            Role::Acceptor => Role::Dialler,
        }
    }

    fn byte(self) -> u8 {
        match self {
            Role::Dialler => 1,
            Role::Acceptor => 2,
        }
    }
}

/// What one side of a handshake knows: key and nonce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Side {
    /// Its public key.
    pub key: PublicKey,
    /// Its nonce for this connection.
    pub nonce: [u8; 32],
}

/// The bytes `signer` signs: label, version, signer's role, dialler's then acceptor's key,
/// dialler's then acceptor's nonce, then a presence byte and the 32-byte channel binding
/// (zeros when absent). Fixed widths throughout, so no two inputs share an encoding.
pub fn transcript(
    version: u32,
    signer: Role,
    dialler: &Side,
    acceptor: &Side,
    channel_binding: Option<&[u8; 32]>,
) -> Vec<u8> {
    let mut t = Vec::with_capacity(TRANSCRIPT_LABEL.len() + 4 + 1 + 4 * 32 + 1 + 32);
    t.extend_from_slice(TRANSCRIPT_LABEL);
    t.extend_from_slice(&version.to_be_bytes());
    t.push(signer.byte());
    t.extend_from_slice(dialler.key.as_bytes());
    t.extend_from_slice(acceptor.key.as_bytes());
    t.extend_from_slice(&dialler.nonce);
    t.extend_from_slice(&acceptor.nonce);
    t.push(u8::from(channel_binding.is_some()));
    t.extend_from_slice(channel_binding.unwrap_or(&[0; 32]));
    t
}

/// Why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The peer speaks another protocol version.
    #[error(
        "the peer speaks protocol version {theirs} and this node version {ours}: run the same replikativ version on both"
    )]
    WrongVersion {
        /// Ours.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer presents this node's own key.
    #[error(
        "the peer presents this node's own key {key}: either this node dialled itself, or its store was copied with its node.key; give each node its own key (`replikativ keygen --out FILE`, then `--key FILE`)"
    )]
    OwnKey {
        /// Our key.
        key: PublicKey,
    },
    /// The peer's proof does not verify under the key it announced.
    #[error(
        "the peer announced key {key} but its proof does not verify (a replayed or forged handshake, or another key's signature)"
    )]
    BadProof {
        /// The key the peer announced.
        key: PublicKey,
    },
    /// A message arrived that the handshake does not allow now.
    #[error("unexpected {kind} message during the handshake: {detail}")]
    Unexpected {
        /// Its kind.
        kind: &'static str,
        /// What was expected.
        detail: &'static str,
    },
}

#[derive(Clone, Debug)]
enum State {
    /// Our `Hello` is out; waiting for the peer's.
    AwaitingHello,
    /// Our `Proof` is out; waiting for the peer's.
    AwaitingProof(Side),
    /// The peer proved its key.
    Done(PublicKey),
    /// Failed; every further message is refused.
    Failed,
}

/// One side of a handshake.
#[derive(Clone, Debug)]
pub struct Handshake {
    identity: Keypair,
    role: Role,
    nonce: [u8; 32],
    channel_binding: Option<[u8; 32]>,
    state: State,
}

impl Handshake {
    /// A handshake as `role` with a fresh random `nonce` (never reused) and the transport's
    /// channel binding, if it has one.
    pub fn new(
        identity: Keypair,
        role: Role,
        nonce: [u8; 32],
        channel_binding: Option<[u8; 32]>,
    ) -> Handshake {
        Handshake {
            identity,
            role,
            nonce,
            channel_binding,
            state: State::AwaitingHello,
        }
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Our public key.
    pub fn key(&self) -> PublicKey {
        self.identity.public()
    }

    /// Our `Hello`, the first message we send.
    pub fn hello(&self) -> Message {
        Message::hello(self.identity.public(), self.nonce)
    }

    /// The peer's key, once it proved it.
    pub fn peer(&self) -> Option<PublicKey> {
        match self.state {
            State::Done(key) => Some(key),
            _ => None,
        }
    }

    /// Handles one message from the peer: the peer's `Hello` is answered with our `Proof`
    /// (`Ok(Some(proof))`); the peer's valid `Proof` completes the handshake (`Ok(None)`, and
    /// [`peer`](Self::peer) is set). Anything else, or a failed check, is an error after which
    /// the handshake refuses everything.
    pub fn on_message(&mut self, msg: &Message) -> Result<Option<Message>, HandshakeError> {
        let result = self.step(msg);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self, msg: &Message) -> Result<Option<Message>, HandshakeError> {
        let unexpected = |detail| HandshakeError::Unexpected {
            kind: msg.kind(),
            detail,
        };
        match (&self.state, msg) {
            (
                State::AwaitingHello,
                Message::Hello {
                    version,
                    key,
                    nonce,
                },
            ) => {
                if *version != PROTOCOL_VERSION {
                    return Err(HandshakeError::WrongVersion {
                        ours: PROTOCOL_VERSION,
                        theirs: *version,
                    });
                }
                if *key == self.identity.public() {
                    return Err(HandshakeError::OwnKey { key: *key });
                }
                let peer = Side {
                    key: *key,
                    nonce: nonce.0,
                };
                let signature = self.identity.sign(&self.transcript(self.role, &peer));
                self.state = State::AwaitingProof(peer);
                Ok(Some(Message::Proof {
                    signature: FixedBytes(signature),
                }))
            }
            (State::AwaitingProof(peer), Message::Proof { signature }) => {
                let peer = *peer;
                let expected = self.transcript(self.role.peer(), &peer);
                if !peer.key.verifies(&expected, &signature.0) {
                    return Err(HandshakeError::BadProof { key: peer.key });
                }
                self.state = State::Done(peer.key);
                Ok(None)
            }
            (State::AwaitingHello, _) => Err(unexpected("expected the peer's hello first")),
            (State::AwaitingProof(_), _) => Err(unexpected("expected the peer's proof")),
            (State::Done(_), _) => Err(unexpected("the handshake is already complete")),
            (State::Failed, _) => Err(unexpected("the handshake has failed")),
        }
    }

    /// The transcript `signer` signs on this connection, given the peer's side.
    fn transcript(&self, signer: Role, peer: &Side) -> Vec<u8> {
        let ours = Side {
            key: self.identity.public(),
            nonce: self.nonce,
        };
        let (dialler, acceptor) = match self.role {
            Role::Dialler => (&ours, peer),
            Role::Acceptor => (peer, &ours),
        };
        transcript(
            PROTOCOL_VERSION,
            signer,
            dialler,
            acceptor,
            self.channel_binding.as_ref(),
        )
    }
}

#[cfg(test)]
#[path = "handshake/tests.rs"]
mod tests;
