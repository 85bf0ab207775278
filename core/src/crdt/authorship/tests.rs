use super::*;
use proptest::prelude::*;

fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

fn owned_by(owner: &Keypair) -> CrdtKey {
    CrdtKey::new(owner.public().to_string(), uuid::Uuid::from_u128(1))
}

fn open_crdt() -> CrdtKey {
    CrdtKey::new("mail:twitter@crawler.com", uuid::Uuid::from_u128(1))
}

/// A commit by `author` on `parents` with `txs`, encoded, and signed by `signer` if any.
fn made(
    parents: &[Id],
    author: &str,
    txs: Vec<Transaction>,
    signer: Option<&Keypair>,
) -> (Id, Commit, Option<Signature>) {
    let encoded = Commit {
        parents: parents.to_vec(),
        transactions: txs,
        author: author.to_owned(),
        ts: 1,
    }
    .encode();
    let signature = signer.map(|k| sign(k, &encoded.id));
    (encoded.id, encoded.commit, signature)
}

fn note() -> Vec<Transaction> {
    vec![Transaction {
        op: "add-note".into(),
        params: Id::of(b"note"),
    }]
}

/// Signs and judges one commit by `by` on `parents`; answers its id or the refusal.
fn write(
    rule: &mut Writers,
    parents: &[Id],
    by: &Keypair,
    txs: Vec<Transaction>,
) -> Result<Id, Refusal> {
    let crdt = rule.crdt.clone();
    let (id, commit, sig) = made(parents, &by.public().to_string(), txs, Some(by));
    let who = authorship(&crdt, &id, &commit, sig.as_ref())?;
    rule.judge(&id, &commit, who).map(|()| id)
}

fn root_of(rule: &mut Writers) -> Id {
    let root = Commit::root(&rule.crdt.clone());
    let who = authorship(&rule.crdt.clone(), &root.id, &root.commit, None).expect("root");
    assert_eq!(who, Authorship::Nobody);
    rule.judge(&root.id, &root.commit, who)
        .expect("root judged");
    root.id
}

#[test]
fn signatures_must_be_the_authors_over_this_id() {
    let (a, b) = (key(1), key(2));
    let crdt = open_crdt();
    let (id, commit, sig) = made(&[Id::of(b"p")], &a.public().to_string(), note(), Some(&a));
    assert_eq!(
        authorship(&crdt, &id, &commit, sig.as_ref()),
        Ok(Authorship::Signed(a.public()))
    );
    // Forged: signed by another key than the author it names.
    let forged = sign(&b, &id);
    assert!(matches!(
        authorship(&crdt, &id, &commit, Some(&forged)),
        Err(Refusal::BadSignature { .. })
    ));
    // A genuine signature of another commit.
    let other = sign(&a, &Id::of(b"another commit"));
    assert!(matches!(
        authorship(&crdt, &id, &commit, Some(&other)),
        Err(Refusal::BadSignature { .. })
    ));
    // Stripped: a key's commit without its signature.
    assert!(matches!(
        authorship(&crdt, &id, &commit, None),
        Err(Refusal::Unsigned { .. })
    ));
    // Signed, but the author is not a key.
    let (id2, legacy, _) = made(&[Id::of(b"p")], "replikativ", note(), None);
    assert!(matches!(
        authorship(&crdt, &id2, &legacy, Some(&sign(&a, &id2))),
        Err(Refusal::AuthorNotAKey { .. })
    ));
    // Unsigned legacy commit: accepted in an open CDVCS, refused in an owned one.
    assert_eq!(
        authorship(&crdt, &id2, &legacy, None),
        Ok(Authorship::Unsigned)
    );
    assert!(matches!(
        authorship(&owned_by(&a), &id2, &legacy, None),
        Err(Refusal::Unsigned { .. })
    ));
}

#[test]
fn roots_and_deterministic_merges_need_no_signature_but_other_roots_do() {
    let owner = key(1);
    let crdt = owned_by(&owner);
    let root = Commit::root(&crdt);
    assert_eq!(
        authorship(&crdt, &root.id, &root.commit, None),
        Ok(Authorship::Nobody)
    );
    let merge = Commit::merge_of(vec![Id::of(b"x"), Id::of(b"y")]).encode();
    assert_eq!(
        authorship(&crdt, &merge.id, &merge.commit, None),
        Ok(Authorship::Nobody)
    );
    // Another CDVCS's root is a parentless commit like any other here.
    let foreign = Commit::root(&open_crdt());
    assert!(matches!(
        authorship(&crdt, &foreign.id, &foreign.commit, None),
        Err(Refusal::Unsigned { .. })
    ));
}

#[test]
fn in_an_owned_cdvcs_only_the_owner_and_keys_it_granted_write() {
    let (owner, b, c) = (key(1), key(2), key(3));
    let mut rule = Writers::new(&owned_by(&owner));
    let root = root_of(&mut rule);
    let first = write(&mut rule, &[root], &owner, note()).expect("the owner writes");
    assert!(matches!(
        write(&mut rule, &[first], &b, note()),
        Err(Refusal::NotAWriter { .. })
    ));
    // A grant by a non-owner is refused: no re-delegation.
    let (grant_c, _) = grant_write(&c.public());
    assert!(matches!(
        write(&mut rule, &[first], &b, vec![grant_c.clone()]),
        Err(Refusal::AccessByNonOwner { .. })
    ));
    let (grant_b, value) = grant_write(&b.public());
    assert_eq!(
        Id::of(&value),
        grant_b.params,
        "the value holds the grantee's key"
    );
    let granted = write(&mut rule, &[first], &owner, vec![grant_b]).expect("owner grants");
    let by_b = write(&mut rule, &[granted], &b, note()).expect("b writes after the grant");
    // c was never granted, even on top of b's commit.
    assert!(matches!(
        write(&mut rule, &[by_b], &c, note()),
        Err(Refusal::NotAWriter { .. })
    ));
    // A grant in a branch that does not lead to the commit does not count.
    assert!(matches!(
        write(&mut rule, &[first], &b, note()),
        Err(Refusal::NotAWriter { .. })
    ));
    // Revoked: refused after; a re-grant after the revoke stands.
    let (revoke_b, _) = revoke_write(&b.public());
    let revoked = write(&mut rule, &[by_b], &owner, vec![revoke_b]).expect("owner revokes");
    assert!(matches!(
        write(&mut rule, &[revoked], &b, note()),
        Err(Refusal::NotAWriter { .. })
    ));
    let (again, _) = grant_write(&b.public());
    let regranted = write(&mut rule, &[revoked], &owner, vec![again]).expect("re-grant");
    write(&mut rule, &[regranted], &b, note()).expect("b writes after the re-grant");
    // Forked before the revoke: still valid by the rule (the documented limit).
    write(&mut rule, &[by_b], &b, note()).expect("a branch forked before the revoke");
}

#[test]
fn a_revoke_concurrent_with_a_grant_wins_where_they_meet() {
    let (owner, b) = (key(1), key(2));
    let mut rule = Writers::new(&owned_by(&owner));
    let root = root_of(&mut rule);
    let (revoke, _) = revoke_write(&b.public());
    let (grant, _) = grant_write(&b.public());
    let revoked = write(&mut rule, &[root], &owner, vec![revoke]).expect("revoke");
    let granted = write(&mut rule, &[root], &owner, vec![grant]).expect("grant");
    write(&mut rule, &[granted], &b, note()).expect("the grant's own branch");
    let merge = Commit::merge_of(vec![revoked, granted]).encode();
    let who = authorship(&rule.crdt.clone(), &merge.id, &merge.commit, None).expect("merge");
    rule.judge(&merge.id, &merge.commit, who)
        .expect("merge judged");
    assert!(matches!(
        write(&mut rule, &[merge.id], &b, note()),
        Err(Refusal::NotAWriter { .. })
    ));
}

#[test]
fn a_commit_on_an_unjudged_parent_is_refused() {
    let owner = key(1);
    let mut rule = Writers::new(&owned_by(&owner));
    assert!(matches!(
        write(&mut rule, &[Id::of(b"nowhere")], &owner, note()),
        Err(Refusal::UnknownParent { .. })
    ));
}

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

/// Judges the history in the order `order` (a topological order of commit indices 1..);
/// answers each commit's validity.
fn judge_in(steps: &[Step], order: &[usize]) -> Vec<bool> {
    let keys: Vec<Keypair> = (1..=4).map(key).collect();
    let crdt = owned_by(&keys[0]);
    let mut rule = Writers::new(&crdt);
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
        valid[me] = rule.judge(&id, &commit, who).is_ok();
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
        prop_assert_eq!(&judge_in(&steps, &forward), &expected);
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
        prop_assert_eq!(&judge_in(&steps, &order), &expected);
    }
}

/// A replica checks with the authors' keys decoded once (`AuthorKeys`): the same verdict as
/// `authorship` for every kind of commit, whether the cache has learned the author or not,
/// and after it started over.
#[test]
fn decoded_author_keys_give_the_verdicts_of_authorship() {
    let (a, b) = (key(1), key(2));
    let open = open_crdt();
    let owned = owned_by(&a);
    let p = [Id::of(b"p")];
    let (id, commit, sig) = made(&p, &a.public().to_string(), note(), Some(&a));
    let (id2, legacy, _) = made(&p, "replikativ", note(), None);
    let (id3, junk, _) = made(&p, "ed25519:not-a-key", note(), None);
    let root = Commit::root(&owned);
    let merge = Commit::merge_of(vec![Id::of(b"x"), Id::of(b"y")]).encode();
    // (crdt, id, commit, signature, expected verdict: Ok(author) / the refusal's kind)
    type Case<'a> = (&'a CrdtKey, Id, &'a Commit, Option<Signature>, &'a str);
    let cases: Vec<Case> = vec![
        (&open, id, &commit, sig, "signed by a"),
        (&owned, id, &commit, sig, "signed by a"),
        (&open, id, &commit, Some(sign(&b, &id)), "bad signature"),
        (&open, id, &commit, None, "unsigned"),
        (
            &open,
            id2,
            &legacy,
            Some(sign(&a, &id2)),
            "author not a key",
        ),
        (&open, id2, &legacy, None, "unsigned, accepted"),
        (&owned, id2, &legacy, None, "unsigned"),
        (&open, id3, &junk, Some(sign(&a, &id3)), "author not a key"),
        (&owned, root.id, &root.commit, None, "nobody"),
        (&owned, merge.id, &merge.commit, None, "nobody"),
    ];
    let kind = |r: &Result<Authorship, Refusal>| match r {
        Ok(Authorship::Signed(k)) if *k == a.public() => "signed by a",
        Ok(Authorship::Unsigned) => "unsigned, accepted",
        Ok(Authorship::Nobody) => "nobody",
        Err(Refusal::BadSignature { .. }) => "bad signature",
        Err(Refusal::Unsigned { .. }) => "unsigned",
        Err(Refusal::AuthorNotAKey { .. }) => "author not a key",
        _ => "other",
    };
    let mut learned = AuthorKeys::default();
    learned.learn(cases.iter().map(|c| c.2.author.as_str()));
    let unlearned = AuthorKeys::default();
    // Filled past its bound: it starts over and still answers.
    let mut overflowed = AuthorKeys::default();
    let many: Vec<String> = (0..=AUTHOR_KEYS_MAX)
        .map(|i| format!("author {i}"))
        .collect();
    overflowed.learn(cases.iter().map(|c| c.2.author.as_str()));
    overflowed.learn(many.iter().map(String::as_str));
    for (crdt, id, commit, sig, expected) in &cases {
        let plain = authorship(crdt, id, commit, sig.as_ref());
        assert_eq!(kind(&plain), *expected, "authorship of {expected}");
        for keys in [&learned, &unlearned, &overflowed] {
            assert_eq!(keys.authorship(crdt, id, commit, sig.as_ref()), plain);
        }
    }
}
