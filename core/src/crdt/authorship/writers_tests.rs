//! The writer rule judged over random histories, in every delivery order, with its records
//! in memory or read back from a source: always the definition's verdicts.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::crdt::authorship::tests::{key, made, owned_by, root_of};
use crate::crdt::authorship::{authorship, grant_write, revoke_write};
use crate::identity::Keypair;

/// One commit of a random history: its parents (indices of earlier commits), its author
/// (index into the keys; 0 is the owner) and its access ops (grantee index, grant or revoke).
#[derive(Clone, Debug)]
struct Step {
    parents: Vec<usize>,
    author: usize,
    ops: Vec<(usize, bool)>,
}

fn history() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 1..3),
            0usize..4,
            prop::collection::vec((1usize..4, any::<bool>()), 0..2),
        ),
        1..24,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (parents, author, ops))| {
                // Index 0 is the root; commit i+1 picks parents among 0..=i.
                let mut ps: Vec<usize> = parents.iter().map(|p| p.index(i + 1)).collect();
                ps.sort_unstable();
                ps.dedup();
                Step {
                    parents: ps,
                    author,
                    ops,
                }
            })
            .collect()
    })
}

/// The definition, computed naively over full ancestor sets (independent of [`Writers`]):
/// a commit is valid when its author is the owner, or when some grant of its key among its
/// strict ancestors is not undone by a revoke among them that is not an ancestor of the
/// grant; and its access ops are the owner's.
fn oracle(steps: &[Step]) -> Vec<bool> {
    let n = steps.len() + 1;
    let mut anc: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for (i, s) in steps.iter().enumerate() {
        let mut a = BTreeSet::new();
        for &p in &s.parents {
            a.insert(p);
            a.extend(anc[p].iter().copied());
        }
        anc[i + 1] = a;
    }
    let mut valid = vec![true; n];
    for (i, s) in steps.iter().enumerate() {
        let me = i + 1;
        // Commits descend only from valid commits: an invalid parent makes the commit
        // unjudgeable, so the generator's histories are judged as far as they are valid.
        if s.parents.iter().any(|&p| !valid[p]) {
            valid[me] = false;
            continue;
        }
        if !s.ops.is_empty() && s.author != 0 {
            valid[me] = false;
            continue;
        }
        if s.author == 0 {
            continue;
        }
        let grants = |c: usize, grant: bool| {
            c > 0
                && steps[c - 1]
                    .ops
                    .iter()
                    .any(|&(k, g)| k == s.author && g == grant)
        };
        let live = anc[me].iter().any(|&g| {
            grants(g, true)
                && anc[me]
                    .iter()
                    .chain(std::iter::once(&g))
                    .filter(|&&r| grants(r, false))
                    .all(|r| anc[g].contains(r))
        });
        valid[me] = live;
    }
    valid
}

/// A store of writer records in memory, as a node's store keeps them.
#[derive(Default)]
struct Records(std::sync::Mutex<HashMap<Id, WriterRecord>>);

impl WriterSource for Records {
    fn record(&self, id: &Id) -> Result<Option<WriterRecord>, SourceError> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(id).cloned())
    }
}

/// How [`judge_in`] keeps the rule's records.
#[derive(Clone, Copy, Debug)]
enum Keeping {
    /// All in memory ([`Writers::new`]).
    Memory,
    /// In a source, a cache of one record, the rule started afresh (a restart) every
    /// `restart` commits (with `lag` 0), and each record stored `lag` commits after it was
    /// judged (a write in flight).
    Stored { restart: usize, lag: usize },
}

/// Judges the history in the order `order` (a topological order of commit indices 1..);
/// answers each commit's validity.
fn judge_in(steps: &[Step], order: &[usize], keeping: Keeping) -> Vec<bool> {
    let keys: Vec<Keypair> = (1..=4).map(key).collect();
    let crdt = owned_by(&keys[0]);
    let records = Arc::new(Records::default());
    let fresh = || match keeping {
        Keeping::Memory => Writers::new(&crdt),
        Keeping::Stored { .. } => {
            Writers::backed(&crdt, Arc::clone(&records) as Arc<dyn WriterSource>).cache_records(1)
        }
    };
    let mut rule = fresh();
    // Judged, not yet stored: (id, record), oldest first.
    let mut in_flight: std::collections::VecDeque<(Id, WriterRecord)> = Default::default();
    let mut ids = vec![root_of(&mut rule)];
    ids.resize(steps.len() + 1, Id::of(b"unset"));
    let mut valid = vec![true; steps.len() + 1];
    for &me in order {
        let s = &steps[me - 1];
        let ops: Vec<Transaction> = s
            .ops
            .iter()
            .map(|&(k, grant)| {
                let key = keys[k].public();
                if grant {
                    grant_write(&key).0
                } else {
                    revoke_write(&key).0
                }
            })
            .collect();
        let parents: Vec<Id> = s.parents.iter().map(|&p| ids[p]).collect();
        // Distinct ids per step: the step index is in the transactions.
        let mut txs = ops;
        txs.push(Transaction {
            op: "step".into(),
            params: Id::of(&(me as u64).to_le_bytes()),
        });
        let by = &keys[s.author];
        let (id, commit, sig) = made(&parents, &by.public().to_string(), txs, Some(by));
        ids[me] = id;
        if s.parents.iter().any(|&p| !valid[p]) {
            valid[me] = false;
            continue;
        }
        let who = authorship(&crdt, &id, &commit, sig.as_ref()).expect("signed");
        match rule.judge(&id, &commit, who) {
            Ok(record) => in_flight.push_back((id, record)),
            Err(RuleError::Refused(_)) => valid[me] = false,
            Err(e) => panic!("the records in memory failed: {e}"),
        }
        if let Keeping::Stored { restart, lag } = keeping {
            while in_flight.len() > lag {
                let Some((id, record)) = in_flight.pop_front() else {
                    break;
                };
                records.0.lock().expect("records").insert(id, record);
                rule.stored([id]);
            }
            if me % restart == 0 {
                // A restart (with everything judged stored, as after a clean stop).
                assert!(in_flight.is_empty(), "a restart with writes in flight");
                rule = fresh();
            }
        }
    }
    valid
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if std::env::var_os("CI").is_some() { 64 } else { 256 }))]

    /// Every replica, whatever order it receives a history in (parents first), judges every
    /// commit the same way, and that way is the definition's.
    #[test]
    fn validity_depends_on_ancestors_only(steps in history(), seed in any::<u64>()) {
        let forward: Vec<usize> = (1..=steps.len()).collect();
        let expected = oracle(&steps);
        prop_assert_eq!(&judge_in(&steps, &forward, Keeping::Memory), &expected);
        // Records read back from a store, through a cache of one, across restarts.
        let stored = Keeping::Stored { restart: 1 + (seed % 7) as usize, lag: 0 };
        prop_assert_eq!(&judge_in(&steps, &forward, stored), &expected);
        // Another topological order: repeatedly take a random ready commit.
        let mut rng = seed;
        let mut done = vec![false; steps.len() + 1];
        done[0] = true;
        let mut order = Vec::new();
        while order.len() < steps.len() {
            let ready: Vec<usize> = (1..=steps.len())
                .filter(|&i| !done[i] && steps[i - 1].parents.iter().all(|&p| done[p]))
                .collect();
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let pick = ready[(rng >> 33) as usize % ready.len()];
            done[pick] = true;
            order.push(pick);
        }
        prop_assert_eq!(&judge_in(&steps, &order, Keeping::Memory), &expected);
        // Records stored a few commits late (writes in flight), never a restart: nothing
        // judged is forgotten before it is stored.
        let late = Keeping::Stored { restart: usize::MAX, lag: 1 + (seed % 5) as usize };
        prop_assert_eq!(&judge_in(&steps, &order, late), &expected);
    }
}

/// Judgements of commits that will not be stored (their batch refused, their write failed)
/// are forgotten: nothing of them stays in memory, and a child of one is judged as a child
/// of an unknown commit, as before they were judged.
#[test]
fn forgotten_judgements_leave_nothing_behind() {
    let owner = key(1);
    let crdt = owned_by(&owner);
    let records = Arc::new(Records::default());
    let mut rule = Writers::backed(&crdt, Arc::clone(&records) as Arc<dyn WriterSource>);
    let root = crate::crdt::Commit::root(&crdt).id;
    let (grant, _) = grant_write(&key(2).public());
    let (a, ca, sa) = made(
        &[root],
        &owner.public().to_string(),
        vec![grant],
        Some(&owner),
    );
    let who = authorship(&crdt, &a, &ca, sa.as_ref()).expect("signed");
    rule.judge(&a, &ca, who).expect("the owner grants");
    assert!(rule.is_pending(&a));
    rule.forget_pending([a]);
    assert!(!rule.is_pending(&a));
    assert!(!rule.knows(&a).expect("memory and source"), "forgotten");
    let (b, cb, sb) = made(&[a], &owner.public().to_string(), vec![], Some(&owner));
    let who = authorship(&crdt, &b, &cb, sb.as_ref()).expect("signed");
    assert!(matches!(
        rule.judge(&b, &cb, who),
        Err(RuleError::Refused(Refusal::UnknownParent { .. }))
    ));
    // Stored ones are not forgotten: the source answers them.
    let record = rule
        .judge(&a, &ca, Authorship::Signed(owner.public()))
        .expect("again");
    records.0.lock().expect("records").insert(a, record);
    rule.stored([a]);
    rule.forget_pending([a]);
    assert!(rule.knows(&a).expect("source"));
}
