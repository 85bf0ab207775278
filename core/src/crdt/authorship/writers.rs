//! The writer rule of an owned CDVCS (DESIGN §11), judged incrementally from each commit's
//! ancestors, with each judged commit's record kept — in memory, or by a store beside the
//! commit so a replica judges new commits without its history in memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::{Authorship, GRANT_WRITE, Refusal, is_access_op, key_id, owner_of};
use crate::crdt::cdvcs::SourceError;
use crate::crdt::commit::{Commit, CrdtKey, Transaction};
use crate::id::Id;
use crate::identity::PublicKey;

/// What the writer rule keeps of one judged commit. A store keeps it beside the commit, so
/// a replica judges new commits from their parents' records, without its history in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WriterRecord {
    /// The latest grant or revoke commits at this commit: those among its ancestors (itself
    /// included) that no other among them descends from. Empty before the first grant.
    pub latest: Vec<Id>,
    /// When the commit itself grants or revokes: what, and which such commits precede it.
    pub access: Option<AccessCommit>,
}

/// A commit holding grants or revokes of write access, as the writer rule keeps it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessCommit {
    /// The key ids it grants write access to.
    pub grants: Vec<Id>,
    /// The key ids it revokes write access from.
    pub revokes: Vec<Id>,
    /// Every grant or revoke commit among its ancestors (itself excluded).
    pub before: BTreeSet<Id>,
}

impl WriterRecord {
    /// The record's bytes (msgpack).
    pub fn encode(&self) -> Vec<u8> {
        // Ids, vectors and sets of ids always encode.
        rmp_serde::to_vec(self).unwrap_or_default()
    }

    /// A record from its bytes.
    pub fn decode(bytes: &[u8]) -> Result<WriterRecord, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// Where the writer rule finds the records of commits it does not hold in memory (e.g. the
/// store's): every judged and stored commit has one.
pub trait WriterSource: Send + Sync {
    /// The record of commit `id`; `None` when none is kept (not judged, or judged before
    /// records were kept).
    fn record(&self, id: &Id) -> Result<Option<WriterRecord>, SourceError>;
}

/// Why the writer rule could not accept a commit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The commit is refused.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A kept record could not be read: nothing was decided.
    #[error("the writer rule's record of commit {id} could not be read")]
    Source {
        /// The commit whose record was read.
        id: Id,
        /// What the source answered.
        #[source]
        source: SourceError,
    },
}

/// Whether and how a key may write at a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The owner of the CDVCS.
    Owner,
    /// Granted by a grant no revoke among the ancestors undoes.
    Writer,
    /// Never granted, or every grant undone.
    NotAWriter,
}

/// Records a [`Writers`] with a source keeps in memory before it starts over.
const CACHE_RECORDS: usize = 1 << 14;

/// The writer rule of one owned CDVCS, judged incrementally: commits are judged parents
/// first (as they are applied), each in O(parents + grant or revoke commits before it).
///
/// Without a source every judged commit's record stays in memory (a browser replica holds
/// its history anyway). With one ([`Writers::backed`]) a judged commit's record stays until
/// its owner says it is stored ([`Writers::stored`]); then at most [`CACHE_RECORDS`] stay
/// and the others are read back, so memory is flat in history.
pub struct Writers {
    pub(super) crdt: CrdtKey,
    owner: Option<PublicKey>,
    root: Id,
    /// The latest grant/revoke commits per judged commit (all, or a cache with a source).
    latest: HashMap<Id, Arc<[Id]>>,
    /// With a source: those of commits judged but not yet stored (kept until they are).
    pending: HashMap<Id, Arc<[Id]>>,
    /// Every grant or revoke commit met, with what it does.
    access: HashMap<Id, Arc<AccessCommit>>,
    source: Option<Arc<dyn WriterSource>>,
    /// Records the cache holds before it starts over (with a source).
    cache_max: usize,
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("crdt", &self.crdt)
            .field("in_memory", &self.latest.len())
            .field("pending", &self.pending.len())
            .field("access_commits", &self.access.len())
            .field("backed", &self.source.is_some())
            .finish()
    }
}

impl Writers {
    /// The rule for `crdt` (its owner is its user when that is a key), every record in
    /// memory.
    pub fn new(crdt: &CrdtKey) -> Writers {
        Writers {
            crdt: crdt.clone(),
            owner: owner_of(crdt),
            root: crate::crdt::Commit::root(crdt).id,
            latest: HashMap::new(),
            pending: HashMap::new(),
            access: HashMap::new(),
            source: None,
            cache_max: CACHE_RECORDS,
        }
    }

    /// The rule for `crdt` reading the records of commits judged before from `source`.
    pub fn backed(crdt: &CrdtKey, source: Arc<dyn WriterSource>) -> Writers {
        Writers {
            source: Some(source),
            ..Writers::new(crdt)
        }
    }

    /// At most `n` stored records in memory (default 16,384) with a source; for tests of the
    /// reading path.
    pub fn cache_records(mut self, n: usize) -> Writers {
        self.cache_max = n.max(1);
        self
    }

    /// Whether a commit has been judged, as far as memory and the source tell.
    pub fn knows(&mut self, id: &Id) -> Result<bool, RuleError> {
        Ok(self.latest_at(id)?.is_some())
    }

    /// The record of judged commit `id` (from memory or the source); `None` when not judged.
    pub fn record(&mut self, id: &Id) -> Result<Option<WriterRecord>, RuleError> {
        let Some(latest) = self.latest_at(id)? else {
            return Ok(None);
        };
        let access = self.access.get(id).map(|a| (**a).clone());
        Ok(Some(WriterRecord {
            latest: latest.to_vec(),
            access,
        }))
    }

    /// The record the source holds for `id`, when there is a source.
    fn read(&self, id: &Id) -> Result<Option<WriterRecord>, RuleError> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        source
            .record(id)
            .map_err(|source| RuleError::Source { id: *id, source })
    }

    /// Keeps `id`'s latest set (and its access commit) in memory: in the bounded cache when
    /// read from the source, else until [`Writers::stored`] (with a source).
    fn remember(&mut self, id: Id, latest: Arc<[Id]>, access: Option<AccessCommit>, read: bool) {
        if let Some(a) = access {
            self.access.insert(id, Arc::new(a));
        }
        if self.source.is_some() && !read {
            self.pending.insert(id, latest);
            return;
        }
        self.cache(id, latest);
    }

    fn cache(&mut self, id: Id, latest: Arc<[Id]>) {
        if self.source.is_some() && self.latest.len() >= self.cache_max {
            self.latest.clear();
        }
        self.latest.insert(id, latest);
    }

    /// Whether `id` was judged and is waiting to be stored (memory only, no read).
    pub fn is_pending(&self, id: &Id) -> bool {
        self.pending.contains_key(id)
    }

    /// Forgets the judgements of `ids` that wait to be stored: their commits will not be
    /// (refused with their batch, or their write failed), so memory must not keep them.
    pub fn forget_pending(&mut self, ids: impl IntoIterator<Item = Id>) {
        for id in ids {
            if self.pending.remove(&id).is_some() {
                self.access.remove(&id);
            }
        }
    }

    /// The records of `ids` are stored with their commits: the source answers them from now
    /// on, so memory may let them go.
    pub fn stored(&mut self, ids: impl IntoIterator<Item = Id>) {
        for id in ids {
            if let Some(latest) = self.pending.remove(&id) {
                self.cache(id, latest);
            }
        }
    }

    /// The latest grant/revoke commits at `id` as memory holds them (the root's are none).
    fn in_memory(&self, id: &Id) -> Option<Arc<[Id]>> {
        if *id == self.root {
            return Some(Arc::from(Vec::new()));
        }
        self.pending
            .get(id)
            .or_else(|| self.latest.get(id))
            .cloned()
    }

    /// The latest grant/revoke commits at judged commit `id`; `None` when not judged.
    fn latest_at(&mut self, id: &Id) -> Result<Option<Arc<[Id]>>, RuleError> {
        if let Some(l) = self.in_memory(id) {
            return Ok(Some(l));
        }
        let Some(record) = self.read(id)? else {
            return Ok(None);
        };
        let latest: Arc<[Id]> = Arc::from(record.latest);
        self.remember(*id, Arc::clone(&latest), record.access, true);
        Ok(Some(latest))
    }

    /// The grant or revoke commit `id` (named by a judged commit's record).
    fn access_commit(&mut self, id: &Id) -> Result<Arc<AccessCommit>, RuleError> {
        if let Some(a) = self.access.get(id) {
            return Ok(Arc::clone(a));
        }
        let damaged = |why: &str| RuleError::Source {
            id: *id,
            source: SourceError(format!(
                "a record names it as a grant or revoke commit, but {why}"
            )),
        };
        let record = self.read(id)?.ok_or_else(|| damaged("it has no record"))?;
        let access = record
            .access
            .ok_or_else(|| damaged("its record holds no grant or revoke"))?;
        let access = Arc::new(access);
        self.access.insert(*id, Arc::clone(&access));
        Ok(access)
    }

    /// Where `parents` meet: every grant or revoke commit among their ancestors (themselves
    /// included), and the latest of them. `Ok(Err(parent))` names a parent not judged yet.
    #[allow(clippy::type_complexity)]
    fn meet(&mut self, parents: &[Id]) -> Result<Result<(BTreeSet<Id>, Vec<Id>), Id>, RuleError> {
        let mut tops = BTreeSet::new();
        for parent in parents {
            match self.latest_at(parent)? {
                Some(latest) => tops.extend(latest.iter().copied()),
                None => return Ok(Err(*parent)),
            }
        }
        let mut all = tops.clone();
        let mut covered = BTreeSet::new();
        for top in &tops {
            let access = self.access_commit(top)?;
            all.extend(access.before.iter().copied());
            covered.extend(tops.iter().filter(|t| access.before.contains(t)).copied());
        }
        let latest = tops.difference(&covered).copied().collect();
        Ok(Ok((all, latest)))
    }

    /// Whether `key` may write on top of `parents` (all judged before); `Ok(Err(parent))`
    /// names a parent not judged yet.
    pub fn verdict(
        &mut self,
        parents: &[Id],
        key: &PublicKey,
    ) -> Result<Result<Verdict, Id>, RuleError> {
        if self.owner.as_ref() == Some(key) {
            return Ok(Ok(Verdict::Owner));
        }
        let all = match self.meet(parents)? {
            Ok((all, _)) => all,
            Err(parent) => return Ok(Err(parent)),
        };
        let key = key_id(key);
        let mut grants = Vec::new();
        let mut revokes = Vec::new();
        for id in &all {
            let access = self.access_commit(id)?;
            if access.revokes.contains(&key) {
                revokes.push(*id);
            }
            if access.grants.contains(&key) {
                grants.push(access);
            }
        }
        let live = grants
            .iter()
            .any(|grant| revokes.iter().all(|r| grant.before.contains(r)));
        Ok(Ok(if live {
            Verdict::Writer
        } else {
            Verdict::NotAWriter
        }))
    }

    /// Judges commit `id` made by `who`: in an owned CDVCS its author must be a writer on top
    /// of its parents, and only the owner grants or revokes. Answers the commit's record (to
    /// be kept beside it) and keeps it for its descendants. A judged commit is not judged
    /// again: its record is answered.
    pub fn judge(
        &mut self,
        id: &Id,
        commit: &Commit,
        who: Authorship,
    ) -> Result<WriterRecord, RuleError> {
        // Judged before and still in memory: its record. Not read from the source: a commit
        // being judged is usually new (a read per commit would be wasted), and judging a
        // stored one again gives the same record.
        if let Some(latest) = self.in_memory(id) {
            let access = self.access.get(id).map(|a| (**a).clone());
            return Ok(WriterRecord {
                latest: latest.to_vec(),
                access,
            });
        }
        let unknown = |parent| RuleError::Refused(Refusal::UnknownParent { id: *id, parent });
        let access_txs: Vec<&Transaction> = commit
            .transactions
            .iter()
            .filter(|t| is_access_op(&t.op))
            .collect();
        let by_owner = matches!(who, Authorship::Signed(k) if Some(k) == self.owner);
        if !access_txs.is_empty() && !by_owner {
            return Err(Refusal::AccessByNonOwner {
                id: *id,
                author: commit.author.clone(),
                crdt: self.crdt.clone(),
            }
            .into());
        }
        if self.owner.is_some()
            && let Authorship::Signed(author) = who
            && self.verdict(&commit.parents, &author)?.map_err(unknown)? == Verdict::NotAWriter
        {
            return Err(Refusal::NotAWriter {
                id: *id,
                author,
                crdt: self.crdt.clone(),
            }
            .into());
        }
        let (before, latest) = self.meet(&commit.parents)?.map_err(unknown)?;
        let record = if access_txs.is_empty() {
            WriterRecord {
                latest,
                access: None,
            }
        } else {
            let mut access = AccessCommit {
                before,
                ..AccessCommit::default()
            };
            for tx in access_txs {
                let side = if tx.op == GRANT_WRITE {
                    &mut access.grants
                } else {
                    &mut access.revokes
                };
                if !side.contains(&tx.params) {
                    side.push(tx.params);
                }
            }
            WriterRecord {
                latest: vec![*id],
                access: Some(access),
            }
        };
        self.remember(
            *id,
            Arc::from(record.latest.clone()),
            record.access.clone(),
            false,
        );
        Ok(record)
    }
}

#[cfg(test)]
#[path = "writers_tests.rs"]
mod tests;
