//! Who a node is: its Ed25519 key pair (DESIGN §11).
//!
//! A node's identity is its public key, written `ed25519:<base64url without padding>`. The
//! secret key lives in a PKCS#8 PEM file with mode 0600 — `replikativ keygen --out FILE`, or
//! `node.key` in a store directory, made on a node's first start so its identity is stable.
//! Key files are never overwritten.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};

/// How a public key is written.
const PREFIX: &str = "ed25519:";

/// Why a key could not be read, written or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Reading or writing a key file failed.
    #[error("key file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file exists: keys are never overwritten.
    #[error(
        "key file {path} exists; a key is never overwritten (choose another --out, or remove it)"
    )]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// The key file is not an Ed25519 secret key in PKCS#8 PEM.
    #[error("key file {path} is not an Ed25519 secret key in PKCS#8 PEM ({detail})")]
    NotAKey {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// A public key is not `ed25519:<base64url, 32 bytes>`.
    #[error("{text:?} is not a public key: {detail} (expected ed25519:<43 base64url characters>)")]
    BadPublicKey {
        /// What was given.
        text: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The system's random source failed.
    #[error("cannot draw random bytes for a new key")]
    Random(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A node's public key: its identity towards peers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key from its 32 bytes (`None` when they are not a valid Ed25519 point).
    pub fn from_bytes(bytes: [u8; 32]) -> Option<PublicKey> {
        Verifier::from_bytes(bytes).map(|v| v.public())
    }

    /// Whether `signature` is this key's signature of `message` (strict verification: no
    /// malleable or small-order forms). Decodes the key each time: to check many signatures
    /// by one key, decode it once with [`PublicKey::verifier`].
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.verifier()
            .is_some_and(|v| v.verifies(message, signature))
    }

    /// This key decoded for checking signatures.
    pub fn verifier(&self) -> Option<Verifier> {
        Verifier::from_bytes(self.0)
    }
}

/// A public key decoded for checking signatures. Decoding a key decompresses a curve point
/// (about a tenth of a signature check, `benches/crdt.rs`): decode once, check many.
#[derive(Clone, Copy, Debug)]
pub struct Verifier {
    key: PublicKey,
    decoded: ed25519_dalek::VerifyingKey,
}

impl Verifier {
    /// The key of 32 bytes, decoded (`None` when they are not a valid Ed25519 point).
    pub fn from_bytes(bytes: [u8; 32]) -> Option<Verifier> {
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .ok()
            .map(|decoded| Verifier {
                key: PublicKey(bytes),
                decoded,
            })
    }

    /// The key.
    pub fn public(&self) -> PublicKey {
        self.key
    }

    /// Whether `signature` is this key's signature of `message`: exactly
    /// [`PublicKey::verifies`] (strict verification).
    pub fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.decoded.verify_strict(message, &signature).is_ok()
    }
}

impl FromStr for Verifier {
    type Err = KeyError;

    /// Parses `ed25519:<base64url>` and decodes the key (one decompression).
    fn from_str(text: &str) -> Result<Verifier, KeyError> {
        let bad = |detail: &str| KeyError::BadPublicKey {
            text: text.to_owned(),
            detail: detail.to_owned(),
        };
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("it does not start with ed25519:"))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|e| bad(&format!("not base64url without padding: {e}")))?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| bad(&format!("{} bytes, not 32", b.len())))?;
        Verifier::from_bytes(bytes).ok_or_else(|| bad("not a valid Ed25519 public key"))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<PublicKey, KeyError> {
        text.parse::<Verifier>().map(|v| v.public())
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let bytes: serde_bytes_array::Bytes32 = serde::Deserialize::deserialize(d)?;
        PublicKey::from_bytes(bytes.0)
            .ok_or_else(|| serde::de::Error::custom("not a valid Ed25519 public key"))
    }
}

/// 32 bytes as MessagePack `bin`, without another crate.
mod serde_bytes_array {
    pub struct Bytes32(pub [u8; 32]);

    impl<'de> serde::Deserialize<'de> for Bytes32 {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Bytes32, D::Error> {
            struct Visitor;
            impl serde::de::Visitor<'_> for Visitor {
                type Value = Bytes32;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("32 bytes")
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes32, E> {
                    v.try_into()
                        .map(Bytes32)
                        .map_err(|_| E::invalid_length(v.len(), &self))
                }
            }
            d.deserialize_bytes(Visitor)
        }
    }
}

/// A node's key pair. Cheap to clone (the secret is shared, never copied out).
#[derive(Clone)]
pub struct Keypair {
    secret: Arc<ed25519_dalek::SigningKey>,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// A new key pair from the operating system's random source (feature `native`; the
    /// browser draws its seed with the Web Crypto API and calls [`Keypair::from_seed`]).
    #[cfg(feature = "native")]
    pub fn generate() -> Result<Keypair, KeyError> {
        use rand::TryRngCore as _;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| KeyError::Random(Box::new(e)))?;
        Ok(Keypair::from_seed(seed))
    }

    /// The key pair of a 32-byte secret seed (tests and fixtures).
    pub fn from_seed(seed: [u8; 32]) -> Keypair {
        Keypair {
            secret: Arc::new(ed25519_dalek::SigningKey::from_bytes(&seed)),
        }
    }

    /// The key pair of a secret key in PKCS#8 PEM; `path` names where the text came from.
    pub fn from_pkcs8_pem(text: &str, path: &std::path::Path) -> Result<Keypair, KeyError> {
        let secret =
            ed25519_dalek::SigningKey::from_pkcs8_pem(text).map_err(|e| KeyError::NotAKey {
                path: path.to_path_buf(),
                detail: e.to_string(),
            })?;
        Ok(Keypair {
            secret: Arc::new(secret),
        })
    }

    /// The secret key in PKCS#8 PEM (LF line endings), to be written to `path`.
    pub fn to_pkcs8_pem(
        &self,
        path: &std::path::Path,
    ) -> Result<zeroize::Zeroizing<String>, KeyError> {
        let pem = self
            .secret
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| KeyError::NotAKey {
                path: path.to_path_buf(),
                detail: format!("encoding: {e}"),
            })?;
        Ok(pem)
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.secret.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.secret.sign(message).to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_key_round_trips_through_its_text_form() {
        let key = Keypair::from_seed([7; 32]).public();
        let text = key.to_string();
        assert!(text.starts_with("ed25519:"));
        assert_eq!(text.len(), "ed25519:".len() + 43);
        assert_eq!(text.parse::<PublicKey>().expect("parses"), key);
        let bytes = rmp_serde::to_vec(&key).expect("encodes");
        assert_eq!(
            rmp_serde::from_slice::<PublicKey>(&bytes).expect("decodes"),
            key
        );
    }

    #[test]
    fn malformed_public_keys_are_refused_saying_why() {
        for (text, why) in [
            ("ed25519", "does not start"),
            ("rsa:AAAA", "does not start"),
            ("ed25519:!!!", "base64url"),
            ("ed25519:AAAA", "3 bytes"),
        ] {
            let err = text.parse::<PublicKey>().expect_err(text).to_string();
            assert!(err.contains(why), "{text}: {err}");
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_message() {
        let a = Keypair::from_seed([1; 32]);
        let b = Keypair::from_seed([2; 32]);
        let sig = a.sign(b"transcript");
        assert!(a.public().verifies(b"transcript", &sig));
        assert!(!a.public().verifies(b"transcript!", &sig));
        assert!(!b.public().verifies(b"transcript", &sig));
        let mut flipped = sig;
        flipped[10] ^= 1;
        assert!(!a.public().verifies(b"transcript", &flipped));
    }
}
