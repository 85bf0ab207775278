//! Both readings of a tweet row agree; bytes are refused as `decode_params` refuses them.
//! Case counts are bounded and smaller when `CI` is set.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::tweets::{decode_params, encode_params, sample_tweets};

fn cases() -> u32 {
    if std::env::var_os("CI").is_some() {
        48
    } else {
        256
    }
}

/// JSON values whose objects use the keys a row reads (and one it does not).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec!["1", "17", "u", "é \"q\" \u{1}\n"]).prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
    ];
    let keys = vec![
        "id",
        "text",
        "created_at",
        "author_id",
        "lang",
        "public_metrics",
        "retweet_count",
        "like_count",
        "author",
        "username",
        "other",
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(keys.clone()), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.into(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn both_readings_of_any_json_value_give_the_same_row(
        value in json_value(), tweet in any::<bool>(),
    ) {
        let mut value = value;
        if let (true, Value::Object(fields)) = (tweet, &mut value) {
            fields.insert("id".into(), "1".into());
            fields.insert("text".into(), "t".into());
        }
        let bytes = encode_params(&value);
        match (TweetColumns::of_params(&bytes), TweetColumns::of_value(&value)) {
            (Ok(from_bytes), Ok(from_value)) => prop_assert_eq!(from_bytes, from_value),
            (Err(HandlerError::Invalid { reason: a }), Err(HandlerError::Invalid { reason: b })) => {
                prop_assert_eq!(a, b)
            }
            (a, b) => prop_assert!(false, "bytes gave {:?}, the value {:?}", a, b),
        }
    }

    #[test]
    fn bytes_are_refused_exactly_when_decode_params_refuses_them(
        value in json_value(),
        edits in prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..3), 0..4),
    ) {
        let mut bytes = encode_params(&value);
        for (at, byte, kind) in edits {
            let at = usize::from(at) % (bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => {}
            }
        }
        let refused = matches!(TweetColumns::of_params(&bytes), Err(HandlerError::BadParams(_)));
        prop_assert_eq!(refused, decode_params(&bytes).is_err(), "{:?}", bytes);
    }
}

#[test]
fn the_username_counts_only_when_the_author_id_equals_the_author_s_id() {
    let ids = [
        json!("17"),
        json!(17),
        json!(17.0),
        json!(-1),
        json!(null),
        json!(true),
        json!([17]),
        json!({"a": 17}),
    ];
    for (i, author_id) in ids.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            let tweet = json!({"id": "1", "text": "t", "author_id": author_id,
                               "author": {"id": id, "username": "u"}});
            let bytes = encode_params(&tweet);
            let row = TweetColumns::of_params(&bytes).expect("row");
            assert_eq!(row.username, (i == j).then_some("u"), "{author_id} vs {id}");
            assert_eq!(row, TweetColumns::of_value(&tweet).expect("value row"));
        }
    }
}

#[test]
fn repeated_keys_count_by_their_last_occurrence() {
    // {"id":"1","text":"a","id":"2","text":7,"text":"b"}, which no JSON value encodes.
    let mut bytes = vec![0x85];
    for (key, value) in [
        ("id", &[0xa1, b'1'][..]),
        ("text", &[0xa1, b'a']),
        ("id", &[0xa1, b'2']),
        ("text", &[0x07]),
        ("text", &[0xa1, b'b']),
    ] {
        bytes.push(0xa0 | key.len() as u8);
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(value);
    }
    let row = TweetColumns::of_params(&bytes).expect("row");
    assert_eq!((row.id, row.text), ("2", "b"));
    assert_eq!(
        row.raw,
        r#"{"id":"1","text":"a","id":"2","text":7,"text":"b"}"#
    );
    let last = decode_params(&bytes).expect("decodes");
    assert_eq!((&last["id"], &last["text"]), (&json!("2"), &json!("b")));
}

#[test]
fn both_readings_of_every_sample_tweet_give_the_same_row() {
    for record in sample_tweets() {
        let bytes = encode_params(&record.params);
        let from_value = TweetColumns::of_value(&record.params).expect("value");
        let from_bytes = TweetColumns::of_params(&bytes).expect("bytes");
        assert_eq!(from_bytes, from_value, "tweet {}", record.id);
    }
}

#[test]
fn numbers_floats_and_escapes_are_written_as_serde_json_writes_them() {
    let v = json!({"id":"1","text":"a \"q\" \u{1} é","author_id":17,"created_at":1.5,
                   "n":[-3, 18446744073709551615u64, 0.1, 1e300, null, true, {}],
                   "author":{"id":17,"username":"u"}});
    let bytes = encode_params(&v);
    let row = TweetColumns::of_params(&bytes).expect("row");
    assert_eq!(row, TweetColumns::of_value(&v).expect("value row"));
    assert_eq!(row.username, Some("u"));
    assert_eq!(row.author_id.as_deref(), Some("17"));
}

#[test]
fn bytes_that_are_no_json_value_are_bad_params_and_a_tweet_without_text_is_invalid() {
    for bytes in [
        &[0xc1][..],
        &[0x81, 0x01, 0x02],
        &[0xc4, 0x01, 0x00],
        &[0x92, 0x90],
    ] {
        assert!(
            matches!(
                TweetColumns::of_params(bytes),
                Err(HandlerError::BadParams(_))
            ),
            "{bytes:?}"
        );
    }
    let no_text = encode_params(&json!({"id":"1"}));
    assert!(matches!(
        TweetColumns::of_params(&no_text),
        Err(HandlerError::Invalid { .. })
    ));
}

#[test]
fn a_value_nested_as_deep_as_json_text_allows_reads_the_same_both_ways() {
    // serde_json parses at most 127 nested arrays or objects; a tweet sits one level down.
    let deep = (0..126).fold(json!(1), |inner, _| json!([inner]));
    let tweet = json!({"id": "1", "text": "t", "deep": deep});
    let bytes = encode_params(&tweet);
    let row = TweetColumns::of_params(&bytes).expect("row");
    assert_eq!(row, TweetColumns::of_value(&tweet).expect("value row"));
    assert_eq!(decode_params(&bytes).expect("decodes"), tweet);
}

#[test]
fn nesting_deeper_than_json_text_allows_is_refused_both_ways() {
    // JSON text nests at most 127 arrays or objects (serde_json's limit); params nest as deep
    // and no deeper (a deeper value would only come from a hostile writer, and decoding it
    // could exhaust a thread's stack).
    for (depth, refused) in [(127, false), (128, true), (5_000, true)] {
        let mut bytes = vec![0x91; depth];
        bytes.push(0x01);
        assert_eq!(decode_params(&bytes).is_err(), refused, "depth {depth}");
        assert_eq!(
            matches!(
                TweetColumns::of_params(&bytes),
                Err(HandlerError::BadParams(_))
            ),
            refused,
            "depth {depth}"
        );
    }
}
