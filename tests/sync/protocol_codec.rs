//! The wire codec under hostile input: every refusal is typed and names what was wrong, and
//! no input makes it panic or allocate by a claimed length.

use proptest::prelude::*;
use replikativ::Id;
use replikativ::crdt::CrdtKey;
use replikativ::protocol::{
    Blob, ByteBuf, Codec, ErrorCode, Frame, Limits, Message, PROTOCOL_VERSION, ProtocolError,
};
use rmpv::Value;
use uuid::Uuid;

fn key() -> CrdtKey {
    CrdtKey::new("mail:a@b.c", Uuid::from_u128(7))
}

fn raw(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, v).expect("encode value");
    out
}

fn envelope(kind: &str, body: Value) -> Value {
    Value::Map(vec![(Value::from(kind), body)])
}

fn crdt_value() -> Value {
    Value::Array(vec![
        Value::from("mail:a@b.c"),
        Value::Binary(Uuid::from_u128(7).as_bytes().to_vec()),
    ])
}

/// A pack of `values` as it goes on the wire: their ids and the pack bytes.
fn wire_pack(values: &[&[u8]]) -> replikativ::protocol::WirePack {
    replikativ::protocol::WirePack {
        ids: values.iter().map(|v| Id::of(v)).collect(),
        bytes: ByteBuf(replikativ::pack::encode(values)),
    }
}

fn all_kinds() -> Vec<Message> {
    let id = Id::of(b"x");
    vec![
        Message::hello(
            replikativ::identity::Keypair::from_seed([1; 32]).public(),
            [7; 32],
        ),
        Message::Proof {
            signature: replikativ::protocol::FixedBytes([9; 64]),
        },
        Message::Subscribe { crdts: vec![key()] },
        Message::Subscribed { crdts: vec![key()] },
        Message::Heads {
            crdt: key(),
            heads: vec![id, Id::of(b"y")],
        },
        Message::Have {
            crdt: key(),
            sample: vec![id],
        },
        Message::Known {
            crdt: key(),
            ids: vec![],
        },
        Message::Values {
            crdt: key(),
            values: vec![Blob::new(b"value".to_vec())],
        },
        Message::Packs {
            crdt: key(),
            packs: vec![wire_pack(&[b"one", b"two"])],
        },
        Message::Commits {
            crdt: key(),
            commits: vec![Blob::new(b"commit".to_vec()), Blob::new(vec![])],
            signatures: Vec::new(),
        },
        Message::Error {
            code: ErrorCode::Verification,
            message: "bad".into(),
        },
        Message::Ping(42),
        Message::Pong(u64::MAX),
        Message::Digests {
            level: 1,
            parent: 0,
            digests: (0..16u8)
                .map(|i| replikativ::protocol::FixedBytes([i; 16]))
                .collect(),
        },
    ]
}

/// Protocol 6: a digest is 16 bytes; a 64-bit one (protocol 5's) is refused, not widened.
#[test]
fn a_digest_of_other_than_128_bits_is_refused() {
    for digest in [Value::from(u64::MAX), Value::Binary(vec![1; 8])] {
        let frame = raw(&envelope(
            "digests",
            Value::Array(vec![
                Value::from(0),
                Value::from(0),
                Value::Array(vec![digest]),
            ]),
        ));
        Codec::default()
            .decode(&frame)
            .expect_err("a digest that is not 16 bytes");
    }
    let ok = raw(&envelope(
        "digests",
        Value::Array(vec![
            Value::from(0),
            Value::from(0),
            Value::Array(vec![Value::Binary(vec![1; 16])]),
        ]),
    ));
    let Message::Digests { digests, .. } = Codec::default().decode(&ok).expect("decode") else {
        panic!("a Digests message");
    };
    assert_eq!(digests, vec![replikativ::protocol::FixedBytes([1; 16])]);
}

#[test]
fn every_message_kind_round_trips() {
    let codec = Codec::default();
    for msg in all_kinds() {
        let frame = codec.encode(&msg).expect("encode");
        assert_eq!(codec.decode(&frame).expect("decode"), msg, "{}", msg.kind());
    }
}

#[test]
fn heads_message_is_compact() {
    let msg = Message::Heads {
        crdt: key(),
        heads: vec![Id::of(b"x")],
    };
    let frame = Codec::default().encode(&msg).expect("encode");
    // envelope + kind + user + 16-byte uuid + one 32-byte id
    assert!(frame.len() < 80, "{} bytes", frame.len());
}

#[test]
fn text_frames_are_refused_with_a_text_frame_error() {
    let err = Codec::default()
        .decode_frame(Frame::Text("{\"hello\": 1}"))
        .expect_err("text refused");
    assert!(matches!(err, ProtocolError::TextFrame { len: 12 }), "{err}");
    assert!(matches!(
        err.reply(),
        Message::Error {
            code: ErrorCode::TextFrame,
            ..
        }
    ));
}

#[test]
fn unknown_kinds_are_refused_by_name() {
    let frame = raw(&envelope("frobnicate", Value::Array(vec![])));
    let err = Codec::default().decode(&frame).expect_err("unknown kind");
    match &err {
        ProtocolError::UnknownKind { kind } => assert_eq!(kind, "frobnicate"),
        other => panic!("wrong error {other}"),
    }
    assert_eq!(err.code(), ErrorCode::UnknownKind);
}

#[test]
fn a_hello_with_another_version_is_refused_naming_both_versions() {
    let frame = raw(&envelope(
        "hello",
        Value::Array(vec![
            Value::from(PROTOCOL_VERSION + 1),
            Value::Binary(vec![0; 16]),
        ]),
    ));
    let err = Codec::default().decode(&frame).expect_err("wrong version");
    assert!(
        matches!(err, ProtocolError::WrongVersion { ours, theirs } if ours == PROTOCOL_VERSION && theirs == PROTOCOL_VERSION + 1),
        "{err}"
    );
    assert_eq!(err.code(), ErrorCode::WrongVersion);
}

#[test]
fn an_array32_header_claiming_2_pow_32_elements_is_refused_before_allocating() {
    // {"heads": [crdt, <array32 of 0xffffffff elements>]} with no elements following.
    let mut frame = vec![0x81, 0xa5];
    frame.extend_from_slice(b"heads");
    frame.push(0x92);
    frame.extend(raw(&crdt_value()));
    frame.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    let err = Codec::default().decode(&frame).expect_err("absurd length");
    match err {
        ProtocolError::TooManyItems { path, len, max, .. } => {
            assert_eq!(path, "heads.heads");
            assert_eq!(len, u32::MAX as u64);
            assert_eq!(max, Limits::default().max_items);
        }
        other => panic!("wrong error {other}"),
    }
    // Within the item limit but beyond the frame's bytes: truncated, still before allocating.
    let codec = Codec::new(Limits {
        max_items: usize::MAX,
        ..Limits::default()
    });
    let err = codec.decode(&frame).expect_err("absurd length");
    assert!(matches!(err, ProtocolError::Truncated { .. }), "{err}");
}

#[test]
fn a_map32_or_bin32_claiming_gigabytes_is_refused() {
    let frame = [0xdf, 0xff, 0xff, 0xff, 0xff];
    let err = Codec::default().decode(&frame).expect_err("absurd map");
    assert!(matches!(err, ProtocolError::NotAnEnvelope { .. }), "{err}");

    let mut frame = vec![0x81, 0xa6];
    frame.extend_from_slice(b"values");
    frame.push(0x92);
    frame.extend(raw(&crdt_value()));
    frame.extend_from_slice(&[0x91, 0x92, 0xc4, 32]);
    frame.extend_from_slice(&[0u8; 32]);
    frame.extend_from_slice(&[0xc6, 0xff, 0xff, 0xff, 0xff]);
    let err = Codec::default().decode(&frame).expect_err("absurd bin");
    match err {
        ProtocolError::ValueTooLarge { path, len, .. } => {
            assert_eq!(path, "values.values[0][1]");
            assert_eq!(len, u32::MAX as u64);
        }
        other => panic!("wrong error {other}"),
    }
}

#[test]
fn deep_nesting_is_refused() {
    let mut frame = vec![0x81, 0xa5];
    frame.extend_from_slice(b"heads");
    frame.extend(std::iter::repeat_n(0x91, 100_000));
    frame.push(0xc0);
    let err = Codec::default().decode(&frame).expect_err("too deep");
    assert!(
        matches!(err, ProtocolError::TooDeep { max, .. } if max == Limits::default().max_depth),
        "{err}"
    );
}

#[test]
fn a_64_mib_frame_is_refused_before_it_is_read() {
    let frame = vec![0u8; 64 << 20];
    let err = Codec::default().decode(&frame).expect_err("too large");
    assert!(
        matches!(err, ProtocolError::FrameTooLarge { len, max } if len == 64 << 20 && max == 16 << 20),
        "{err}"
    );
}

#[test]
fn encoding_refuses_a_frame_over_the_limit() {
    let codec = Codec::new(Limits {
        max_frame: 1024,
        ..Limits::default()
    });
    let msg = Message::Values {
        crdt: key(),
        values: vec![Blob::new(vec![7; 2000])],
    };
    let err = codec.encode(&msg).expect_err("too large");
    assert!(
        matches!(err, ProtocolError::FrameTooLarge { max: 1024, .. }),
        "{err}"
    );
}

#[test]
fn every_truncation_of_a_valid_frame_is_refused() {
    let codec = Codec::default();
    for msg in all_kinds() {
        let frame = codec.encode(&msg).expect("encode");
        for cut in 0..frame.len() {
            let err = codec.decode(&frame[..cut]);
            assert!(err.is_err(), "{} cut at {cut} accepted", msg.kind());
        }
    }
}

#[test]
fn trailing_bytes_and_invalid_markers_are_named() {
    let codec = Codec::default();
    let mut frame = codec.encode(&Message::Ping(1)).expect("encode");
    let len = frame.len();
    frame.extend_from_slice(&[1, 2, 3]);
    let err = codec.decode(&frame).expect_err("trailing");
    assert!(
        matches!(err, ProtocolError::TrailingBytes { at, extra: 3 } if at == len),
        "{err}"
    );
    let mut frame = vec![0x81, 0xa4];
    frame.extend_from_slice(b"ping");
    frame.push(0xc1);
    let err = codec.decode(&frame).expect_err("marker");
    assert!(
        matches!(err, ProtocolError::InvalidMarker { byte: 0xc1, at: 6 }),
        "{err}"
    );
}

/// An ext header whose type byte is cut off: the walk moved past the end of the frame and
/// reporting the "trailing bytes" overflowed (a panic in debug builds). Found by
/// `cargo fuzz run wire_codec` (2026-11-29); the fuzzer's input is the second case.
#[test]
fn an_ext_header_cut_off_before_its_type_byte_is_truncated_not_a_panic() {
    let codec = Codec::default();
    // `{"error": ext}` with ext8/ext16/ext32 of length 0 and no type byte after the length.
    for ext in [
        &[0xc7, 0x00][..],
        &[0xc8, 0x00, 0x00],
        &[0xc9, 0x00, 0x00, 0x00, 0x00],
    ] {
        let mut frame = vec![0x81, 0xa5];
        frame.extend_from_slice(b"error");
        frame.extend_from_slice(ext);
        let err = codec.decode(&frame).expect_err("truncated ext");
        assert!(
            matches!(err, ProtocolError::Truncated { at: 7, needed: 1 }),
            "marker 0x{:02x}: {err}",
            ext[0]
        );
    }
    let found: [u8; 64] = [
        0x81, 0xd9, 0x05, 0x65, 0x72, 0x72, 0x6f, 0x72, 0x88, 0xa2, 0xcd, 0xcd, 0xcd, 0xdf, 0x00,
        0x27, 0xcd, 0xcf, 0x00, 0x27, 0x61, 0x1c, 0xb6, 0x64, 0xa6, 0x2f, 0x00, 0xa6, 0xc0, 0x80,
        0x01, 0x00, 0x02, 0xcd, 0xcd, 0xdf, 0x00, 0x27, 0xcd, 0xcf, 0x00, 0x27, 0x61, 0x1c, 0xb6,
        0x64, 0xa6, 0x2f, 0x00, 0xa6, 0xc0, 0x80, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0xde, 0x00,
        0x01, 0x24, 0xc7, 0x00,
    ];
    let err = codec.decode(&found).expect_err("fuzzer input");
    assert!(
        matches!(err, ProtocolError::Truncated { at: 62, needed: 1 }),
        "{err}"
    );
}

#[test]
fn a_body_that_does_not_fit_the_schema_names_the_kind() {
    let frame = raw(&envelope(
        "heads",
        Value::Array(vec![Value::from("not a key"), Value::from(3)]),
    ));
    let err = Codec::default().decode(&frame).expect_err("schema");
    assert!(
        matches!(&err, ProtocolError::Schema { kind, .. } if kind == "heads"),
        "{err}"
    );
}

#[test]
fn forged_ids_are_refused_naming_claimed_and_actual_id() {
    let codec = Codec::default();
    for kind in ["values", "commits"] {
        let forged = Blob {
            id: Id::of(b"what I claim"),
            bytes: ByteBuf(b"what I send".to_vec()),
        };
        let blobs = vec![Blob::new(b"honest".to_vec()), forged];
        let msg = if kind == "values" {
            Message::Values {
                crdt: key(),
                values: blobs,
            }
        } else {
            Message::Commits {
                crdt: key(),
                commits: blobs,
                signatures: Vec::new(),
            }
        };
        let frame = codec.encode(&msg).expect("encode");
        let err = codec.decode(&frame).expect_err("forged");
        match err {
            ProtocolError::ForgedId {
                kind: k,
                claimed,
                actual,
            } => {
                assert_eq!(k, kind);
                assert_eq!(claimed, Id::of(b"what I claim"));
                assert_eq!(actual, Id::of(b"what I send"));
            }
            other => panic!("wrong error {other}"),
        }
    }
}

/// Protocol 4: a pack's values are each hashed against the id sent for it, on decode and on
/// receipt (where they become a verified pack); a pack declaring more than a pack may hold is
/// refused before decompressing, a frame inflating beyond its header while, and ids that do
/// not match the values' count are refused. Each names the pack.
#[test]
fn packs_are_decoded_within_their_bound_and_every_value_is_hashed_against_its_id() {
    use replikativ::pack::{MAX_PACK_BYTES, PackCheckError, PackError};
    let codec = Codec::default();
    let honest = wire_pack(&[b"one", b"two", b"three"]);
    let frame = codec
        .encode(&Message::Packs {
            crdt: key(),
            packs: vec![honest.clone()],
        })
        .expect("encode");
    match codec.receive(&frame).expect("honest") {
        replikativ::protocol::Received::Packs { packs, .. } => {
            assert_eq!(packs.len(), 1);
            assert_eq!(packs[0].ids(), &honest.ids[..]);
            assert_eq!(packs[0].bytes(), &honest.bytes.0[..]);
            assert_eq!(packs[0].id(), Id::of(&honest.bytes.0));
        }
        other => panic!("not packs: {other:?}"),
    }
    let refused = |pack: replikativ::protocol::WirePack| {
        let frame = codec
            .encode(&Message::Packs {
                crdt: key(),
                packs: vec![pack],
            })
            .expect("encode");
        let decoded = codec.decode(&frame).expect_err("refused on decode");
        let received = codec.receive(&frame).expect_err("refused on receipt");
        assert_eq!(decoded.to_string(), received.to_string());
        assert_eq!(received.code(), ErrorCode::Verification);
        match received {
            ProtocolError::Pack(e) => e,
            other => panic!("wrong error {other}"),
        }
    };
    let mut forged = honest.clone();
    forged.ids[1] = Id::of(b"what I claim");
    match refused(forged) {
        PackCheckError::Forged {
            index,
            claimed,
            actual,
            ..
        } => assert_eq!(
            (index, claimed, actual),
            (1, Id::of(b"what I claim"), Id::of(b"two"))
        ),
        other => panic!("wrong error {other}"),
    }
    let mut short = honest.clone();
    short.ids.pop();
    assert!(matches!(
        refused(short),
        PackCheckError::Count {
            values: 3,
            ids: 2,
            ..
        }
    ));
    // A header declaring more than a pack may hold: refused before any decompression.
    let mut huge = replikativ::pack::MAGIC.to_vec();
    huge.push(replikativ::pack::VERSION);
    huge.extend_from_slice(&[1, 0x81, 0x80, 0x80, 0x02]); // one value of 4 MiB + 1
    huge.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(MAX_PACK_BYTES, 4 << 20);
    let too_large = replikativ::protocol::WirePack {
        ids: vec![Id::of(b"x")],
        bytes: ByteBuf(huge),
    };
    match refused(too_large) {
        PackCheckError::Pack {
            source: PackError::TooLarge { declared, max },
            ..
        } => assert_eq!((declared, max), (MAX_PACK_BYTES as u64 + 1, MAX_PACK_BYTES)),
        other => panic!("wrong error {other}"),
    }
}

#[test]
fn an_error_code_from_a_newer_peer_decodes_as_other() {
    let frame = raw(&envelope(
        "error",
        Value::Array(vec![
            Value::from("quota_exceeded"),
            Value::from("slow down"),
        ]),
    ));
    let msg = Codec::default().decode(&frame).expect("decode");
    assert_eq!(
        msg,
        Message::Error {
            code: ErrorCode::Other,
            message: "slow down".into()
        }
    );
}

fn cases() -> u32 {
    if std::env::var_os("CI").is_some() {
        64
    } else {
        512
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Codec::default().decode(&bytes);
    }

    #[test]
    fn mutated_valid_frames_never_panic_the_decoder(
        which in 0usize..11,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let codec = Codec::default();
        let mut frame = codec.encode(&all_kinds()[which]).expect("encode");
        for (at, byte) in edits {
            let i = at % frame.len();
            frame[i] = byte;
        }
        if let Ok(msg) = codec.decode(&frame) {
            // Whatever decodes re-encodes to a frame that decodes to the same message.
            let again = codec.encode(&msg).expect("re-encode");
            prop_assert_eq!(codec.decode(&again).expect("re-decode"), msg);
        }
    }
}
