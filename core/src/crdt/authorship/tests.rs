use super::*;

pub(super) fn key(n: u8) -> Keypair {
    Keypair::from_seed([n; 32])
}

pub(super) fn owned_by(owner: &Keypair) -> CrdtKey {
    CrdtKey::new(owner.public().to_string(), uuid::Uuid::from_u128(1))
}

fn open_crdt() -> CrdtKey {
    CrdtKey::new("mail:twitter@crawler.com", uuid::Uuid::from_u128(1))
}

/// A commit by `author` on `parents` with `txs`, encoded, and signed by `signer` if any.
pub(super) fn made(
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
    match rule.judge(&id, &commit, who) {
        Ok(_) => Ok(id),
        Err(RuleError::Refused(r)) => Err(r),
        Err(e) => panic!("no source to fail: {e}"),
    }
}

pub(super) fn root_of(rule: &mut Writers) -> Id {
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
