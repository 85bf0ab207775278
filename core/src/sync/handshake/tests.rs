use super::*;

fn key(seed: u8) -> Keypair {
    Keypair::from_seed([seed; 32])
}

fn dialler(nonce: u8) -> Handshake {
    Handshake::new(key(1), Role::Dialler, [nonce; 32], None)
}

fn acceptor(nonce: u8) -> Handshake {
    Handshake::new(key(2), Role::Acceptor, [nonce; 32], None)
}

fn proof(answer: Result<Option<Message>, HandshakeError>) -> Message {
    match answer {
        Ok(Some(m @ Message::Proof { .. })) => m,
        other => panic!("expected a proof, got {other:?}"),
    }
}

/// Runs a whole handshake; returns what each side sent (hello, proof).
fn complete(d: &mut Handshake, a: &mut Handshake) -> [(Message, Message); 2] {
    let (dh, ah) = (d.hello(), a.hello());
    let dp = proof(d.on_message(&ah));
    let ap = proof(a.on_message(&dh));
    assert_eq!(a.on_message(&dp), Ok(None));
    assert_eq!(d.on_message(&ap), Ok(None));
    [(dh, dp), (ah, ap)]
}

#[test]
fn both_sides_authenticate_each_other_whichever_hello_arrives_first() {
    let (mut d, mut a) = (dialler(10), acceptor(20));
    complete(&mut d, &mut a);
    assert_eq!(d.peer(), Some(key(2).public()));
    assert_eq!(a.peer(), Some(key(1).public()));

    // The acceptor hears the dialler's hello and proof before sending anything of its own.
    let (mut d, mut a) = (dialler(11), acceptor(21));
    let dh = d.hello();
    let ap = proof(a.on_message(&dh));
    let dp = proof(d.on_message(&a.hello()));
    assert_eq!(a.on_message(&dp), Ok(None));
    assert_eq!(d.on_message(&ap), Ok(None));
    assert_eq!(
        (d.peer(), a.peer()),
        (Some(key(2).public()), Some(key(1).public()))
    );
}

#[test]
fn a_proof_replayed_from_a_recorded_handshake_is_refused() {
    let (mut d, mut a) = (dialler(10), acceptor(20));
    let [(dh, dp), _] = complete(&mut d, &mut a);
    // An eavesdropper replays the dialler's hello and proof to the same acceptor key on a
    // new connection: the acceptor's nonce is fresh, so the old proof does not verify.
    let mut fresh = acceptor(21);
    proof(fresh.on_message(&dh));
    assert_eq!(
        fresh.on_message(&dp),
        Err(HandshakeError::BadProof {
            key: key(1).public()
        })
    );
    assert_eq!(fresh.peer(), None);
    // Replayed to a fresh dialler, the acceptor's recorded proof fails the same way.
    let [_, (ah, ap)] = complete(&mut dialler(12), &mut acceptor(22));
    let mut fresh = dialler(13);
    proof(fresh.on_message(&ah));
    assert!(matches!(
        fresh.on_message(&ap),
        Err(HandshakeError::BadProof { .. })
    ));
}

#[test]
fn a_proof_signed_by_another_key_than_the_announced_one_is_refused() {
    let mut a = acceptor(20);
    let claimed = key(1).public();
    let nonce = [10; 32];
    proof(a.on_message(&Message::hello(claimed, nonce)));
    // Mallory signs the right transcript with her own key.
    let transcript = transcript(
        PROTOCOL_VERSION,
        Role::Dialler,
        &Side {
            key: claimed,
            nonce,
        },
        &Side {
            key: key(2).public(),
            nonce: [20; 32],
        },
        None,
    );
    let forged = Message::Proof {
        signature: FixedBytes(key(66).sign(&transcript)),
    };
    assert_eq!(
        a.on_message(&forged),
        Err(HandshakeError::BadProof { key: claimed })
    );
    // The same transcript signed by the announced key passes: the refusal was the key.
    let mut a = acceptor(20);
    proof(a.on_message(&Message::hello(claimed, nonce)));
    let honest = Message::Proof {
        signature: FixedBytes(key(1).sign(&transcript)),
    };
    assert_eq!(a.on_message(&honest), Ok(None));
}

#[test]
fn a_proof_reflected_back_to_its_signer_or_made_for_the_other_role_is_refused() {
    // The acceptor's own proof, echoed back to it by a dialler claiming some key.
    let (mut d, mut a) = (dialler(10), acceptor(20));
    let ap = proof(a.on_message(&d.hello()));
    proof(d.on_message(&a.hello()));
    assert!(matches!(
        a.on_message(&ap),
        Err(HandshakeError::BadProof { .. })
    ));
    // The dialler's key signing the transcript with the acceptor's role byte.
    let mut a = acceptor(20);
    let (dk, nonce) = (key(1), [10; 32]);
    proof(a.on_message(&Message::hello(dk.public(), nonce)));
    let wrong_role = transcript(
        PROTOCOL_VERSION,
        Role::Acceptor,
        &Side {
            key: dk.public(),
            nonce,
        },
        &Side {
            key: key(2).public(),
            nonce: [20; 32],
        },
        None,
    );
    let msg = Message::Proof {
        signature: FixedBytes(dk.sign(&wrong_role)),
    };
    assert!(matches!(
        a.on_message(&msg),
        Err(HandshakeError::BadProof { .. })
    ));
}

#[test]
fn a_different_channel_binding_on_each_side_fails_the_handshake() {
    for (ours, theirs) in [
        (Some([1; 32]), Some([2; 32])),
        (Some([1; 32]), None),
        (None, Some([2; 32])),
    ] {
        let mut d = Handshake::new(key(1), Role::Dialler, [10; 32], ours);
        let mut a = Handshake::new(key(2), Role::Acceptor, [20; 32], theirs);
        let dp = proof(d.on_message(&a.hello()));
        proof(a.on_message(&d.hello()));
        assert!(matches!(
            a.on_message(&dp),
            Err(HandshakeError::BadProof { .. })
        ));
    }
    let mut d = Handshake::new(key(1), Role::Dialler, [10; 32], Some([3; 32]));
    let mut a = Handshake::new(key(2), Role::Acceptor, [20; 32], Some([3; 32]));
    complete(&mut d, &mut a);
    assert!(d.peer().is_some() && a.peer().is_some());
}

#[test]
fn our_own_key_is_refused_naming_keygen_and_the_key_flag() {
    let mut a = acceptor(20);
    let err = a
        .on_message(&Message::hello(key(2).public(), [10; 32]))
        .expect_err("own key");
    assert_eq!(
        err,
        HandshakeError::OwnKey {
            key: key(2).public()
        }
    );
    let text = err.to_string();
    assert!(text.contains("keygen") && text.contains("--key"), "{text}");
    assert!(text.contains(&key(2).public().to_string()), "{text}");
}

#[test]
fn another_protocol_version_is_refused_naming_both_versions() {
    let mut a = acceptor(20);
    let hello = Message::Hello {
        version: 99,
        key: key(1).public(),
        nonce: FixedBytes([10; 32]),
    };
    let err = a.on_message(&hello).expect_err("version 99");
    assert_eq!(
        err,
        HandshakeError::WrongVersion {
            ours: PROTOCOL_VERSION,
            theirs: 99
        }
    );
    let text = err.to_string();
    assert!(
        text.contains("99") && text.contains(&PROTOCOL_VERSION.to_string()),
        "{text}"
    );
}

#[test]
fn messages_out_of_order_are_refused_and_a_failed_handshake_stays_failed() {
    let some_proof = Message::Proof {
        signature: FixedBytes([0; 64]),
    };
    // A proof before the hello.
    let mut a = acceptor(20);
    assert!(matches!(
        a.on_message(&some_proof),
        Err(HandshakeError::Unexpected { kind: "proof", .. })
    ));
    // The hello it lacked does not revive it.
    assert!(matches!(
        a.on_message(&dialler(10).hello()),
        Err(HandshakeError::Unexpected { kind: "hello", .. })
    ));
    // Replication before the proof.
    let mut a = acceptor(20);
    proof(a.on_message(&dialler(10).hello()));
    assert!(matches!(
        a.on_message(&Message::Subscribe { crdts: Vec::new() }),
        Err(HandshakeError::Unexpected {
            kind: "subscribe",
            ..
        })
    ));
    // A second hello instead of a proof.
    let mut a = acceptor(20);
    proof(a.on_message(&dialler(10).hello()));
    assert!(matches!(
        a.on_message(&dialler(11).hello()),
        Err(HandshakeError::Unexpected { kind: "hello", .. })
    ));
    assert_eq!(a.peer(), None);
    // Anything after completion.
    let (mut d, mut a) = (dialler(10), acceptor(20));
    let [(dh, dp), _] = complete(&mut d, &mut a);
    assert!(a.on_message(&dh).is_err() && a.on_message(&dp).is_err());
}

#[test]
fn the_transcript_binds_every_input() {
    let side = |k: u8, n: u8| Side {
        key: key(k).public(),
        nonce: [n; 32],
    };
    let base = transcript(2, Role::Dialler, &side(1, 10), &side(2, 20), None);
    let variants = [
        transcript(3, Role::Dialler, &side(1, 10), &side(2, 20), None),
        transcript(2, Role::Acceptor, &side(1, 10), &side(2, 20), None),
        transcript(2, Role::Dialler, &side(2, 10), &side(1, 20), None),
        transcript(2, Role::Dialler, &side(1, 11), &side(2, 20), None),
        transcript(2, Role::Dialler, &side(1, 10), &side(2, 21), None),
        transcript(2, Role::Dialler, &side(1, 10), &side(2, 20), Some(&[0; 32])),
        transcript(2, Role::Dialler, &side(1, 20), &side(2, 10), None),
    ];
    for (i, v) in variants.iter().enumerate() {
        assert_ne!(&base, v, "variant {i}");
        assert_eq!(base.len(), v.len(), "fixed widths");
    }
    assert!(base.starts_with(TRANSCRIPT_LABEL));
}
