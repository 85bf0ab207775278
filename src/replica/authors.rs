//! Who may have written what this replica stores (DESIGN §11): every commit, local or
//! remote, is checked before anything of it is stored, applied or relayed — its signature
//! against its author, and in an owned CDVCS its author against the writer rule, judged from
//! its ancestors only.

use super::{ReplicaActor, ReplicaError};
use crate::crdt::EncodedCommit;
use crate::crdt::authorship::{AuthorKeys, Authorship, Refusal, RuleError, Writers, owner_of};
use crate::crdt::commit::CrdtKey;
use crate::store::WriteBatch;

/// From this many signed commits in one batch on, their signatures are checked on two
/// threads (a catch-up receives thousands per batch; a thread costs tens of µs, a
/// signature check about 40 µs).
const PARALLEL_FROM: usize = 64;

impl ReplicaActor {
    /// The writer rule of an owned CDVCS, reading the records stored with its commits (a
    /// CDVCS stored before records were kept gets them on first use, once); `None` for an
    /// open CDVCS (any peer with write rights may add commits).
    fn writers(&mut self) -> Result<Option<&mut Writers>, ReplicaError> {
        if owner_of(self.key()).is_none() {
            return Ok(None);
        }
        if self.writers.is_none() {
            let key = self.key().clone();
            let state = self.shared.state();
            let guard = match state.read() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            let opened = crate::store::writers::open(self.store.store(), &key, &guard).map_err(
                |source| ReplicaError::History {
                    key: key.clone(),
                    source: Box::new(source),
                },
            )?;
            drop(guard);
            self.writers = Some(opened);
        }
        Ok(self.writers.as_mut())
    }

    /// The commits `ids` are stored: the writer rule may let their records go from memory.
    pub(super) fn writers_stored(&mut self, ids: impl IntoIterator<Item = crate::Id>) {
        if let Some(rule) = self.writers.as_mut() {
            rule.stored(ids);
        }
    }

    /// The write of the commits `ids` failed: the writer rule forgets what it judged of them.
    pub(super) fn writers_unstored(&mut self, ids: impl IntoIterator<Item = crate::Id>) {
        if let Some(rule) = self.writers.as_mut() {
            rule.forget_pending(ids);
        }
    }

    /// Checks `commits` (parents first) before they are stored: each signature, and in an
    /// owned CDVCS each author's right to write. The first refusal (in the order of
    /// `commits`) refuses them all. Answers the writer rule's records, to be stored in the
    /// commits' batch.
    pub(super) fn check_authors<'a>(
        &mut self,
        commits: impl IntoIterator<Item = &'a EncodedCommit>,
    ) -> Result<WriteBatch, ReplicaError> {
        let commits: Vec<&EncodedCommit> = commits.into_iter().collect();
        self.author_keys
            .learn(commits.iter().map(|c| c.commit.author.as_str()));
        let whos = signatures(&self.author_keys, self.key(), &commits);
        self.judge(&commits, whos)
    }

    /// [`Self::check_authors`] for commits this node has just made and signed with its own
    /// key: that signature is not checked again; everything else is, as for any commit.
    pub(super) fn check_own(
        &mut self,
        commits: &[EncodedCommit],
    ) -> Result<WriteBatch, ReplicaError> {
        let me = self.signer.public();
        let own = self.author.as_str();
        let whos = commits
            .iter()
            .map(|c| match &c.signature {
                Some(_) if self.signs && c.commit.author == own => Ok(Authorship::Signed(me)),
                signature => {
                    self.author_keys
                        .authorship(self.key(), &c.id, &c.commit, signature.as_ref())
                }
            })
            .collect();
        let commits: Vec<&EncodedCommit> = commits.iter().collect();
        self.judge(&commits, whos)
    }

    /// The first refusal among `whos` (each commit's authorship) and the writer rule's
    /// judgement of each commit, in order; the rule's records of them.
    fn judge(
        &mut self,
        commits: &[&EncodedCommit],
        whos: Vec<Result<Authorship, Refusal>>,
    ) -> Result<WriteBatch, ReplicaError> {
        let key = self.key().clone();
        let refused = |source| ReplicaError::Refused {
            key: key.clone(),
            source,
        };
        let mut records = Vec::new();
        // Judged here for the first time: forgotten again if the batch is refused (a peer
        // sending batches that end in a forged commit must not grow this replica's memory).
        let mut judged = Vec::new();
        let mut writers = self.writers()?;
        let mut outcome = Ok(());
        for (c, who) in commits.iter().zip(whos) {
            let who = match who {
                Ok(who) => who,
                Err(source) => {
                    outcome = Err(refused(source));
                    break;
                }
            };
            let Some(rule) = writers.as_deref_mut() else {
                continue;
            };
            let new = !rule.is_pending(&c.id);
            match rule.judge(&c.id, &c.commit, who) {
                Ok(record) => {
                    if new {
                        judged.push(c.id);
                    }
                    records.push((c.id, record));
                }
                Err(e) => {
                    outcome = Err(match e {
                        RuleError::Refused(source) => refused(source),
                        other => ReplicaError::History {
                            key: key.clone(),
                            source: Box::new(crate::store::writers::judge_error(&key, other)),
                        },
                    });
                    break;
                }
            }
        }
        if let Err(e) = outcome {
            if let Some(rule) = writers {
                rule.forget_pending(judged);
            }
            return Err(e);
        }
        Ok(crate::store::writers::records_batch(&key, &records))
    }
}

/// Each commit's authorship, in order: its signature checked against its author. Many signed
/// commits are checked on two threads (halves, each in order).
fn signatures(
    keys: &AuthorKeys,
    crdt: &CrdtKey,
    commits: &[&EncodedCommit],
) -> Vec<Result<Authorship, Refusal>> {
    let check = |cs: &[&EncodedCommit]| -> Vec<Result<Authorship, Refusal>> {
        cs.iter()
            .map(|c| keys.authorship(crdt, &c.id, &c.commit, c.signature.as_ref()))
            .collect()
    };
    let signed = commits.iter().filter(|c| c.signature.is_some()).count();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if signed < PARALLEL_FROM || threads < 2 {
        return check(commits);
    }
    let (first, second) = commits.split_at(commits.len() / 2);
    std::thread::scope(|s| {
        let Ok(other) = std::thread::Builder::new()
            .name("signatures".into())
            .spawn_scoped(s, || check(second))
        else {
            // No thread to be had: check them all here.
            return check(commits);
        };
        let mut whos = check(first);
        match other.join() {
            Ok(rest) => whos.extend(rest),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        whos
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::Commit;
    use crate::crdt::commit::Transaction;
    use crate::id::Id;
    use crate::identity::Keypair;

    /// Many signed commits are checked on two threads: every verdict lands at its commit's
    /// place, so the first refusal is the first forged commit in batch order.
    #[test]
    fn signatures_checked_on_two_threads_keep_their_order() {
        let writer = Keypair::from_seed([7; 32]);
        let other = Keypair::from_seed([8; 32]);
        let crdt = CrdtKey::new("mail:bench@replikativ.io", uuid::Uuid::from_u128(3));
        let forged = [37usize, 150, 151];
        let mut parent = Commit::root(&crdt).id;
        let commits: Vec<EncodedCommit> = (0..4 * PARALLEL_FROM)
            .map(|i| {
                let c = Commit {
                    parents: vec![parent],
                    transactions: vec![Transaction {
                        op: "add-note".into(),
                        params: Id::of(&i.to_le_bytes()),
                    }],
                    author: writer.public().to_string(),
                    ts: i as i64,
                }
                .encode();
                parent = c.id;
                c.signed(if forged.contains(&i) { &other } else { &writer })
            })
            .collect();
        let refs: Vec<&EncodedCommit> = commits.iter().collect();
        let mut keys = AuthorKeys::default();
        keys.learn(refs.iter().map(|c| c.commit.author.as_str()));
        let whos = signatures(&keys, &crdt, &refs);
        assert_eq!(whos.len(), commits.len());
        for (i, (who, c)) in whos.iter().zip(&commits).enumerate() {
            if forged.contains(&i) {
                assert!(
                    matches!(who, Err(Refusal::BadSignature { id, .. }) if *id == c.id),
                    "commit {i}: {who:?}"
                );
            } else {
                assert_eq!(*who, Ok(Authorship::Signed(writer.public())), "commit {i}");
            }
        }
    }
}
