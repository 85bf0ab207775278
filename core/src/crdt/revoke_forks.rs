//! Commits written concurrently with a revoke of their author (DESIGN §11): pure, no I/O.
//!
//! Validity is decided from a commit's ancestors only, so a writer revoked on one branch can
//! still append to a branch forked before the revoke, and every replica accepts those commits
//! alike. They are valid, but an operator should see them: `log` and `verify` flag every
//! commit whose author a revoke names when the commit is neither an ancestor nor a descendant
//! of that revoke ("concurrent with revoke of KEY").

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::crdt::authorship::key_id;
use crate::id::Id;
use crate::identity::PublicKey;

/// A valid commit by a key that a concurrent revoke names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConcurrentWrite {
    /// The commit.
    pub commit: Id,
    /// Its author (the revoked key).
    pub author: PublicKey,
    /// The commit holding the revoke it is concurrent with.
    pub revoke: Id,
}

impl std::fmt::Display for ConcurrentWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "commit {} by {} is concurrent with revoke of {} (commit {}): written on a branch \
             forked before the revoke, valid by the writer rule",
            self.commit, self.author, self.author, self.revoke
        )
    }
}

/// What the flagging needs of a history, fed commit by commit in any order.
#[derive(Debug, Default)]
pub struct History {
    graph: BTreeMap<Id, Vec<Id>>,
    authors: BTreeMap<Id, PublicKey>,
    revokes: BTreeMap<Id, BTreeSet<Id>>,
}

impl History {
    /// Adds commit `id` on `parents`, signed by `author` (None: nobody or unsigned), revoking
    /// the keys whose ids (see [`key_id`]) `revoked` names.
    pub fn add(
        &mut self,
        id: Id,
        parents: Vec<Id>,
        author: Option<PublicKey>,
        revoked: impl IntoIterator<Item = Id>,
    ) {
        self.graph.insert(id, parents);
        if let Some(author) = author {
            self.authors.insert(id, author);
        }
        let revoked: BTreeSet<Id> = revoked.into_iter().collect();
        if !revoked.is_empty() {
            self.revokes.insert(id, revoked);
        }
    }

    /// The commits by a key that a revoke names while being neither its ancestor nor its
    /// descendant. Sorted by commit, then revoke. O(revokes × history).
    pub fn concurrent_with_revokes(&self) -> Vec<ConcurrentWrite> {
        if self.revokes.is_empty() {
            return Vec::new();
        }
        let mut children: HashMap<Id, Vec<Id>> = HashMap::new();
        for (id, parents) in &self.graph {
            for parent in parents {
                children.entry(*parent).or_default().push(*id);
            }
        }
        let mut found = Vec::new();
        for (revoke, keys) in &self.revokes {
            let before = reach(*revoke, |id| self.graph.get(id).map(Vec::as_slice));
            let after = reach(*revoke, |id| children.get(id).map(Vec::as_slice));
            for (commit, author) in &self.authors {
                if keys.contains(&key_id(author))
                    && !before.contains(commit)
                    && !after.contains(commit)
                {
                    found.push(ConcurrentWrite {
                        commit: *commit,
                        author: *author,
                        revoke: *revoke,
                    });
                }
            }
        }
        found.sort();
        found
    }
}

/// Every commit reachable from `start` along `next` (`start` included).
fn reach<'a>(start: Id, next: impl Fn(&Id) -> Option<&'a [Id]>) -> BTreeSet<Id> {
    let mut seen = BTreeSet::from([start]);
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for n in next(&id).unwrap_or_default() {
            if seen.insert(*n) {
                todo.push(*n);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;
    use proptest::prelude::*;

    fn id(n: u32) -> Id {
        Id::of(&n.to_le_bytes())
    }

    fn key(n: u8) -> PublicKey {
        Keypair::from_seed([n; 32]).public()
    }

    /// The history of `graph` fed in reverse order (the order must not matter).
    fn history(
        graph: &BTreeMap<Id, Vec<Id>>,
        authors: &BTreeMap<Id, PublicKey>,
        revokes: &BTreeMap<Id, Id>,
    ) -> History {
        let mut h = History::default();
        for (id, parents) in graph.iter().rev() {
            h.add(
                *id,
                parents.clone(),
                authors.get(id).copied(),
                revokes.get(id).copied(),
            );
        }
        h
    }

    /// root 0; the owner grants K in 1; fork: 2 (revoke of K) and 3, 4 (K writes on the old
    /// branch); 5 merges 2 and 4; 6 by K after the merge (refused by the rule, never stored,
    /// so not in the graph); 7 by K before the fork is an ancestor of the revoke.
    #[test]
    fn the_fork_case_flags_only_the_writes_on_the_branch_before_the_revoke() {
        let k = key(1);
        let graph = BTreeMap::from([
            (id(0), vec![]),
            (id(7), vec![id(0)]),
            (id(1), vec![id(7)]),
            (id(2), vec![id(1)]),
            (id(3), vec![id(1)]),
            (id(4), vec![id(3)]),
            (id(5), vec![id(2), id(4)]),
        ]);
        let authors = BTreeMap::from([(id(7), k), (id(3), k), (id(4), k), (id(5), key(9))]);
        let revokes = BTreeMap::from([(id(2), key_id(&k))]);
        let found = history(&graph, &authors, &revokes).concurrent_with_revokes();
        let mut expected = vec![
            ConcurrentWrite {
                commit: id(3),
                author: k,
                revoke: id(2),
            },
            ConcurrentWrite {
                commit: id(4),
                author: k,
                revoke: id(2),
            },
        ];
        expected.sort();
        assert_eq!(found, expected);
        assert!(found[0].to_string().contains("concurrent with revoke of"));
    }

    #[test]
    fn other_keys_and_histories_without_revokes_are_not_flagged() {
        let graph = BTreeMap::from([(id(0), vec![]), (id(1), vec![id(0)]), (id(2), vec![id(0)])]);
        let authors = BTreeMap::from([(id(2), key(2))]);
        let none = history(&graph, &authors, &BTreeMap::new());
        assert!(none.concurrent_with_revokes().is_empty());
        let revokes = BTreeMap::from([(id(1), key_id(&key(1)))]);
        let other = history(&graph, &authors, &revokes);
        assert!(other.concurrent_with_revokes().is_empty());
    }

    /// A random DAG: commit i has parents among 0..i.
    fn dag() -> impl Strategy<Value = Vec<Vec<usize>>> {
        (1usize..24).prop_flat_map(|n| {
            (0..n)
                .map(|i| {
                    if i == 0 {
                        Just(Vec::new()).boxed()
                    } else {
                        proptest::collection::vec(0..i, 1..3).boxed()
                    }
                })
                .collect::<Vec<_>>()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if std::env::var_os("CI").is_some() { 64 } else { 256 }))]
        /// Against an oracle by definition: a write is flagged iff its author is revoked in a
        /// commit that is neither its ancestor nor its descendant (ancestry by naive recursion).
        #[test]
        fn flags_exactly_the_writes_unordered_with_a_revoke_of_their_author(
            parents in dag(), who in proptest::collection::vec(0u8..3, 24),
            revoked in proptest::collection::vec(proptest::option::of(0u8..3), 24),
        ) {
            let n = parents.len();
            fn is_ancestor(parents: &[Vec<usize>], a: usize, of: usize) -> bool {
                a == of || parents[of].iter().any(|p| is_ancestor(parents, a, *p))
            }
            let graph: BTreeMap<Id, Vec<Id>> = (0..n)
                .map(|i| (id(i as u32), parents[i].iter().map(|p| id(*p as u32)).collect()))
                .collect();
            let authors: BTreeMap<Id, PublicKey> =
                (0..n).map(|i| (id(i as u32), key(who[i]))).collect();
            let revokes: BTreeMap<Id, Id> = (0..n)
                .filter_map(|i| revoked[i].map(|k| (id(i as u32), key_id(&key(k)))))
                .collect();
            let mut expected = Vec::new();
            for (r, revoked_key) in revoked.iter().enumerate().take(n) {
                let Some(k) = *revoked_key else { continue };
                for (c, author) in who.iter().enumerate().take(n) {
                    if *author == k && !is_ancestor(&parents, c, r) && !is_ancestor(&parents, r, c) {
                        expected.push(ConcurrentWrite {
                            commit: id(c as u32), author: key(k), revoke: id(r as u32),
                        });
                    }
                }
            }
            expected.sort();
            let found = history(&graph, &authors, &revokes).concurrent_with_revokes();
            prop_assert_eq!(found, expected);
        }
    }
}
