//! Pure CRDTs: no actix, no tokio, no I/O. Values are referenced by [`Id`](crate::Id).
pub mod commit;

pub use commit::{Commit, CrdtKey, EncodedCommit, Transaction};
