//! Pure CRDTs: no actix, no tokio, no I/O. Values are referenced by [`Id`](crate::Id).
//!
//! - [`commit`]: the CDVCS commit record and the `(user, crdt-id)` key.
//! - [`authorship`]: commit signatures and who may write an owned CDVCS.
//! - [`cdvcs`]: the commit graph with heads: commit, merge, pull, join, history, LCA, and the
//!   delta-sync helpers replication uses.
//! - [`revoke_forks`]: commits written concurrently with a revoke of their author (flagged).
//! - [`ormap`]: observed-remove map with unique tags.
//! - [`lwwr`]: last-writer-wins register.
pub mod authorship;
pub mod cdvcs;
pub mod commit;
pub mod lwwr;
pub mod ormap;
pub mod revoke_forks;

pub use cdvcs::{Cdvcs, CdvcsError, CdvcsOp};
pub use commit::{Commit, CrdtKey, EncodedCommit, Transaction};
pub use lwwr::{Lwwr, LwwrOp};
pub use ormap::{OrMap, OrMapError, OrMapOp, Tag};
