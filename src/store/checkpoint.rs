//! Checkpoints as typed records in the state space: where a source stopped, written in the
//! same atomic batch as the commit that took it, read back when the source starts again.
//!
//! The record's type belongs to its owner (e.g. the collector's file position); this module
//! only knows how such a record lies in the store.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::store::{Store, StoreError, WriteBatch};

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Reading the store failed.
    #[error("reading the checkpoint")]
    Store(#[source] StoreError),
    /// The stored record does not decode as the expected type.
    #[error("the stored checkpoint is damaged ({detail})")]
    Damaged {
        /// What the decoder said.
        detail: String,
    },
}

/// Adds `value` as the checkpoint under state key `key` to `batch`. A value that cannot be
/// encoded (not possible for the plain records checkpoints are) is logged and left out: a
/// checkpoint that does not advance is safe, the source only reads again what was committed.
pub fn put<T: Serialize>(batch: &mut WriteBatch, key: Vec<u8>, value: &T) {
    match rmp_serde::to_vec(value) {
        Ok(bytes) => batch.put_state(key, bytes),
        Err(e) => tracing::error!(error = %e, "cannot encode a checkpoint; it stays where it was"),
    }
}

/// The checkpoint under state key `key`, if one was written.
pub fn get<T: DeserializeOwned>(store: &Store, key: &[u8]) -> Result<Option<T>, CheckpointError> {
    match store.get_state(key).map_err(CheckpointError::Store)? {
        None => Ok(None),
        Some(raw) => rmp_serde::from_slice(&raw)
            .map(Some)
            .map_err(|e| CheckpointError::Damaged {
                detail: e.to_string(),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Position {
        offset: u64,
        line: u64,
    }

    #[test]
    fn a_checkpoint_round_trips_and_a_damaged_one_is_named() {
        let store = Store::in_memory().expect("store");
        assert_eq!(get::<Position>(&store, b"source/x").expect("read"), None);
        let mut batch = WriteBatch::new();
        let at = Position {
            offset: 10,
            line: 2,
        };
        put(&mut batch, b"source/x".to_vec(), &at);
        store.write(&batch).expect("write");
        assert_eq!(
            get::<Position>(&store, b"source/x").expect("read"),
            Some(at)
        );
        let mut batch = WriteBatch::new();
        batch.put_state(b"source/y".to_vec(), b"\xc1".to_vec());
        store.write(&batch).expect("write");
        let err = get::<Position>(&store, b"source/y").expect_err("damaged");
        assert!(matches!(err, CheckpointError::Damaged { .. }), "{err}");
    }
}
