//! What replaces redb's full-file integrity check on open (issue 16): a clean open trusts the
//! file, so every read finds damage itself.
//!
//! - Values and blobs are re-hashed against their ids on every read (`read.rs`, `packs.rs`).
//! - State records are sealed: each is stored as its bytes followed by a 4-byte checksum of
//!   its key and bytes ([`seal`]), checked on every read ([`unseal`]); a record that fails is
//!   [`StoreError::StateDamaged`], naming the record ([`crate::store::keys::describe`]), never
//!   silently used. (A 32-bit BLAKE3 prefix: damage passes unseen with odds of 2^-32.)
//! - redb trusts a cleanly closed file and may panic on a damaged page; every store operation
//!   runs through [`guarded`], which turns such a panic into [`StoreError::Damaged`] naming
//!   the operation. While a guarded operation runs on a thread, the process's panic hook stays
//!   quiet for that thread: the panic is reported once, as the error, not also on stderr.
//!
//! After an unclean shutdown redb repairs the file by itself on open (it rebuilds its
//! allocator state from the last durable commit, checking that commit's checksums).

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;

use crate::store::error::StoreError;
use crate::store::keys;

/// Bytes of checksum after each state record's bytes.
pub const SEAL_BYTES: usize = 4;

fn checksum(key: &[u8], value: &[u8]) -> [u8; SEAL_BYTES] {
    let mut h = blake3::Hasher::new();
    // Keys are far shorter than 4 GiB (redb's own limit on a key).
    h.update(&(key.len() as u32).to_be_bytes());
    h.update(key);
    h.update(value);
    let mut out = [0u8; SEAL_BYTES];
    out.copy_from_slice(&h.finalize().as_bytes()[..SEAL_BYTES]);
    out
}

/// The stored form of state record `key` → `value`: the bytes, then their checksum.
pub fn seal(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + SEAL_BYTES);
    out.extend_from_slice(value);
    out.extend_from_slice(&checksum(key, value));
    out
}

/// The bytes of the stored state record `key` → `stored`, after checking its checksum.
pub fn unseal<'a>(key: &[u8], stored: &'a [u8]) -> Result<&'a [u8], StoreError> {
    let damaged = |detail: &str| StoreError::StateDamaged {
        record: keys::describe(key),
        detail: detail.to_string(),
    };
    let Some(at) = stored.len().checked_sub(SEAL_BYTES) else {
        return Err(damaged("shorter than its checksum"));
    };
    let (value, sum) = stored.split_at(at);
    if sum != checksum(key, value) {
        return Err(damaged("its checksum does not match its bytes"));
    }
    Ok(value)
}

thread_local! {
    /// Guarded operations running on this thread (they nest).
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Installs (once per process) a panic hook that stays quiet on a thread running a guarded
/// operation and otherwise hands every panic to the hook that was there before.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let quiet = GUARDED.try_with(|g| g.get() > 0).unwrap_or(false);
            if !quiet {
                previous(info);
            }
        }));
    });
}

/// Runs the store operation `op` (named `what`) on the store `shown`; a panic in it (redb on
/// a damaged page) becomes [`StoreError::Damaged`].
pub(crate) fn guarded<T>(
    shown: &Path,
    what: &str,
    op: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    install_quiet_hook();
    let _ = GUARDED.try_with(|g| g.set(g.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(op));
    let _ = GUARDED.try_with(|g| g.set(g.get().saturating_sub(1)));
    result.unwrap_or_else(|payload| {
        Err(StoreError::Damaged {
            path: shown.to_path_buf(),
            detail: format!(
                "redb failed on a damaged page while {what} ({})",
                replikativ_actors::panic_message(payload.as_ref())
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_record_unseals_and_any_flipped_bit_is_named() {
        let key = crate::store::keys::heads("alice", &uuid::Uuid::from_u128(1));
        let sealed = seal(&key, b"\x91\xc4\x01x");
        assert_eq!(unseal(&key, &sealed).expect("intact"), b"\x91\xc4\x01x");
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let err = unseal(&key, &flipped).expect_err("flipped");
            assert!(err.to_string().contains("heads of CDVCS alice/"), "{err}");
        }
        // The same bytes under another key are not that key's record.
        let other = crate::store::keys::heads("bob", &uuid::Uuid::from_u128(1));
        assert!(unseal(&other, &sealed).is_err());
        assert!(unseal(&key, b"abc").is_err());
    }

    #[test]
    fn a_panic_inside_a_guarded_operation_is_a_damaged_store() {
        let err = guarded(Path::new("s"), "reading", || -> Result<(), StoreError> {
            panic!("index out of bounds")
        })
        .expect_err("caught");
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("index out of bounds"), "{err}");
        assert_eq!(GUARDED.with(Cell::get), 0);
        assert_eq!(guarded(Path::new("s"), "reading", || Ok(7)).ok(), Some(7));
    }
}
