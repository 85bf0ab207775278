//! Why a CDVCS operation was refused. A refused operation leaves the state unchanged.

use crate::id::Id;

/// Why a CDVCS operation was refused; the state is unchanged whenever one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CdvcsError {
    /// A commit needs exactly one head; merge first.
    #[error("cannot commit while there are {} heads; merge them first", heads.len())]
    MultipleHeads {
        /// The current heads, sorted.
        heads: Vec<Id>,
    },
    /// The state has no commit at all (an empty replica that has not synced yet).
    #[error("the CDVCS has no head yet")]
    NoHead,
    /// A commit needs at least one transaction.
    #[error("a commit needs at least one transaction")]
    NoTransactions,
    /// The heads given to a merge are not exactly the current heads.
    #[error("merge heads {given:?} are not the current heads {current:?}")]
    StaleHeads {
        /// The heads the caller gave, in its order.
        given: Vec<Id>,
        /// The current heads, sorted.
        current: Vec<Id>,
    },
    /// A merge needs at least two heads.
    #[error("nothing to merge: the only head is {head}")]
    NothingToMerge {
        /// The single head.
        head: Id,
    },
    /// A commit lists parents that are neither in the op nor in the state.
    #[error("commit {commit} references parents {missing:?} that are not known")]
    MissingParents {
        /// The commit whose parents are missing.
        commit: Id,
        /// The missing parent ids.
        missing: Vec<Id>,
    },
    /// A head in an op or in persisted state is not a known commit.
    #[error("head {head} is not a commit of the graph")]
    UnknownHead {
        /// The unknown head.
        head: Id,
    },
    /// A persisted head has a child, so it cannot be a head.
    #[error("head {head} has a child in the graph")]
    HeadHasChild {
        /// The head that has a child.
        head: Id,
    },
    /// An op carries a commit this state already has, with different parents.
    #[error("commit {commit} is known with parents {known:?}, the op says {given:?}")]
    ParentsMismatch {
        /// The commit.
        commit: Id,
        /// Its parents in this state.
        known: Vec<Id>,
        /// Its parents in the op.
        given: Vec<Id>,
    },
    /// Entries of an op or persisted graph form a cycle among themselves.
    #[error("commits {commits:?} form a parent cycle")]
    Cycle {
        /// The commits on or behind the cycle, sorted.
        commits: Vec<Id>,
    },
    /// A commit id is not in the CDVCS it was looked up in.
    #[error("commit {id} is not in the CDVCS")]
    UnknownCommit {
        /// The id.
        id: Id,
    },
    /// A pull to a commit this state already has.
    #[error("pull unnecessary: {at} is already here")]
    PullUnnecessary {
        /// The requested tip.
        at: Id,
    },
    /// A pull where the remote does not know one of our heads: we have commits it lacks.
    #[error("not a fast-forward: the remote does not know our head {head}")]
    NotFastForward {
        /// Our head the remote lacks.
        head: Id,
        /// The requested tip.
        at: Id,
    },
    /// A pull whose tip does not descend from one of our heads: it would leave several heads.
    #[error("pulling {at} would conflict with our head {head}")]
    WouldConflict {
        /// Our head that `at` does not descend from.
        head: Id,
        /// The requested tip.
        at: Id,
    },
    /// The backing store could not answer a lookup of `id`.
    #[error("looking up commit {id} in the backing store: {detail}")]
    Source {
        /// The commit looked up.
        id: Id,
        /// The store's error.
        detail: String,
    },
}
