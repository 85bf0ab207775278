//! Who may have written what this replica stores (DESIGN §11): every commit, local or
//! remote, is checked before anything of it is stored, applied or relayed — its signature
//! against its author, and in an owned CDVCS its author against the writer rule, judged from
//! its ancestors only.

use super::{ReplicaActor, ReplicaError};
use crate::crdt::EncodedCommit;
use crate::crdt::authorship::{Writers, authorship, owner_of};

impl ReplicaActor {
    /// The writer rule of an owned CDVCS, judged over the stored history on first use;
    /// `None` for an open CDVCS (any peer with write rights may add commits).
    fn writers(&mut self) -> Result<Option<&mut Writers>, ReplicaError> {
        if owner_of(self.key()).is_none() {
            return Ok(None);
        }
        if self.writers.is_none() {
            // Judged over the history this replica holds in memory (no second load).
            let key = self.key().clone();
            let state = self.shared.state();
            let guard = match state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let judged = crate::store::cdvcs::judge_history(self.store.store(), &key, &guard)
                .map_err(|source| ReplicaError::History {
                    key: key.clone(),
                    source: Box::new(source),
                })?;
            drop(guard);
            self.writers = Some(judged);
        }
        Ok(self.writers.as_mut())
    }

    /// Checks `commits` (parents first) before they are stored: each signature, and in an
    /// owned CDVCS each author's right to write. The first refusal refuses them all.
    pub(super) fn check_authors<'a>(
        &mut self,
        commits: impl IntoIterator<Item = &'a EncodedCommit>,
    ) -> Result<(), ReplicaError> {
        let key = self.key().clone();
        let refused = |source| ReplicaError::Refused {
            key: key.clone(),
            source,
        };
        let commits: Vec<&EncodedCommit> = commits.into_iter().collect();
        let mut writers = self.writers()?;
        for c in commits {
            let who = authorship(&key, &c.id, &c.commit, c.signature.as_ref()).map_err(refused)?;
            if let Some(rule) = writers.as_deref_mut() {
                rule.judge(&c.id, &c.commit, who).map_err(refused)?;
            }
        }
        Ok(())
    }
}
