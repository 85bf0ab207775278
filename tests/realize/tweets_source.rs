//! Reading tweet sources: parsing every shipped file, skip reasons, the 16 MiB line limit,
//! and resuming from a checkpoint inside a page.

use std::io::{Cursor, Seek, SeekFrom};

use crate::tweets_support::{data, expected, file_lines, smoke_source, tweets_in, usernames};
use replikativ::tweets::{
    MAX_LINE_BYTES, SAMPLE, SkipReason, SourceEvent, SourcePosition, TweetCursor, TweetRecord,
    decode_params, encode_params, open_file_at,
};
use serde_json::Value;

fn events(bytes: &[u8], at: SourcePosition) -> Vec<SourceEvent> {
    let mut reader = Cursor::new(bytes.to_vec());
    reader.seek(SeekFrom::Start(at.offset)).expect("seek");
    TweetCursor::new(reader, at)
        .collect::<std::io::Result<_>>()
        .expect("read")
}

fn tweets(events: &[SourceEvent]) -> Vec<(TweetRecord, SourcePosition)> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Tweet { record, after } => Some((record.clone(), *after)),
            _ => None,
        })
        .collect()
}

const SHIPPED: [(&str, usize); 9] = [
    ("2sets.jsonl", 200),
    ("brexit.jsonl", 100),
    ("entities_test.jsonl", 474),
    ("flat.jsonl", 100),
    ("geo_tweets.jsonl", 2),
    ("kpop.jsonl", 100),
    ("media_policy_violation_off.jsonl", 100),
    ("media_policy_violation_on.jsonl", 100),
    ("withheld.jsonl", 215),
];

#[test]
fn every_shipped_file_yields_the_tweets_the_independent_rule_finds_with_their_authors() {
    for (name, python_count) in SHIPPED {
        let cursor = open_file_at(&data(name), SourcePosition::START).expect("open");
        let got = tweets(&cursor.collect::<std::io::Result<Vec<_>>>().expect("read"));
        let mut want = Vec::new();
        for line in file_lines(name) {
            let users = usernames(&line);
            for t in tweets_in(&line) {
                let author = t.get("author_id").and_then(|a| users.get(&a.to_string()));
                want.push((
                    t["id"].as_str().expect("id").to_string(),
                    author.cloned(),
                    t,
                ));
            }
        }
        assert_eq!(want.len(), python_count, "{name}: the independent rule");
        assert_eq!(got.len(), want.len(), "{name}: tweets found");
        for ((record, _), (id, author, tweet)) in got.iter().zip(&want) {
            assert_eq!(&record.id, id, "{name}");
            let params = record.params.as_object().expect("object");
            // The tweet whole, plus its author; never the page around it.
            for (k, v) in tweet {
                if k != "author" {
                    assert_eq!(params.get(k), Some(v), "{name} {id}: field {k}");
                }
            }
            assert!(!params.contains_key("includes"), "{name} {id}");
            let attached = params
                .get("author")
                .and_then(|a| a.get("username"))
                .and_then(Value::as_str);
            assert_eq!(attached, author.as_deref(), "{name} {id}: author");
            assert_eq!(
                decode_params(&encode_params(&record.params)).expect("decode"),
                record.params
            );
        }
    }
}

#[test]
fn the_compiled_in_sample_holds_the_demo_files_exactly() {
    let names: Vec<&str> = SAMPLE.iter().map(|(n, _)| *n).collect();
    for required in [
        "flat.jsonl",
        "brexit.jsonl",
        "kpop.jsonl",
        "geo_tweets.jsonl",
        "withheld.jsonl",
    ] {
        assert!(names.contains(&required), "{required} missing from SAMPLE");
    }
    for (name, contents) in SAMPLE {
        let on_disk = std::fs::read(data(name)).expect("read");
        assert_eq!(contents.as_bytes(), on_disk.as_slice(), "{name}");
    }
}

#[test]
fn lines_holding_no_tweet_are_reported_with_number_and_reason() {
    let (lines, bytes) = smoke_source();
    let all = events(&bytes, SourcePosition::START);
    let skipped: Vec<(u64, SkipReason)> = all
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Skipped { line, reason, .. } => Some((*line, reason.clone())),
            _ => None,
        })
        .collect();
    let n = lines.len() as u64;
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0], (n - 2, SkipReason::Empty));
    assert!(matches!(skipped[1], (l, SkipReason::NotJson { .. }) if l == n - 1));
    assert!(matches!(skipped[2], (l, SkipReason::NoTweet { .. }) if l == n));
    assert_eq!(tweets(&all).len() as u64, expected(&lines, "obama").records);
    let bad = events(
        b"\xc3\x28{\"id\":\"1\",\"text\":\"x\"}\n",
        SourcePosition::START,
    );
    assert!(matches!(
        bad[0],
        SourceEvent::Skipped {
            line: 1,
            reason: SkipReason::NotUtf8 { valid_up_to: 0 },
            ..
        }
    ));
}

#[test]
fn a_line_of_16_mib_plus_one_is_skipped_with_its_number_and_reading_goes_on() {
    let mut bytes = br#"{"id":"1","text":"before"}"#.to_vec();
    bytes.push(b'\n');
    bytes.extend(std::iter::repeat_n(b'a', MAX_LINE_BYTES as usize + 1));
    bytes.push(b'\n');
    bytes.extend_from_slice(br#"{"id":"3","text":"after"}"#);
    let all = events(&bytes, SourcePosition::START);
    assert_eq!(all.len(), 3);
    match &all[1] {
        SourceEvent::Skipped { line, reason, .. } => {
            assert_eq!(*line, 2);
            assert_eq!(
                *reason,
                SkipReason::TooLong {
                    len: MAX_LINE_BYTES + 1,
                    limit: MAX_LINE_BYTES
                }
            );
        }
        other => panic!("expected the long line skipped, got {other:?}"),
    }
    match &all[2] {
        SourceEvent::Tweet { record, after } => {
            assert_eq!(record.id, "3");
            assert_eq!(after.line, 4);
            assert_eq!(after.offset, bytes.len() as u64);
        }
        other => panic!("expected the last tweet, got {other:?}"),
    }
    // Exactly at the limit the line is still read (and here found not to be JSON).
    let mut at_limit = vec![b'a'; MAX_LINE_BYTES as usize];
    at_limit.push(b'\n');
    let all = events(&at_limit, SourcePosition::START);
    assert!(matches!(
        &all[0],
        SourceEvent::Skipped {
            reason: SkipReason::NotJson { .. },
            ..
        }
    ));
}

#[test]
fn resuming_from_any_position_inside_a_page_yields_exactly_the_remaining_tweets() {
    let (_, bytes) = smoke_source();
    let full = tweets(&events(&bytes, SourcePosition::START));
    let ids: Vec<&str> = full.iter().map(|(r, _)| r.id.as_str()).collect();
    // Positions: the start, inside the flat file, every kind of point inside the brexit page
    // (100 tweets on line 101), its end, and inside the kpop page.
    let picks = [
        0usize,
        1,
        57,
        99,
        100,
        101,
        136,
        198,
        199,
        200,
        250,
        ids.len() - 1,
    ];
    for pick in picks {
        let at = if pick == 0 {
            SourcePosition::START
        } else {
            full[pick - 1].1
        };
        let rest = tweets(&events(&bytes, at));
        let rest_ids: Vec<&str> = rest.iter().map(|(r, _)| r.id.as_str()).collect();
        assert_eq!(
            rest_ids,
            ids[pick..].to_vec(),
            "resumed at {at:?} (after {pick})"
        );
        // The positions reported after a resume are those of the uninterrupted run.
        let positions: Vec<SourcePosition> = rest.iter().map(|(_, p)| *p).collect();
        let want: Vec<SourcePosition> = full[pick..].iter().map(|(_, p)| *p).collect();
        assert_eq!(positions, want);
    }
    // A position inside a page names that page's line and the tweets already done.
    let mid = full[150].1;
    assert_eq!((mid.line, mid.tweets_done), (101, 51));
}

#[test]
fn a_follower_waits_for_a_line_the_writer_has_not_finished() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("growing.jsonl");
    std::fs::write(&path, b"{\"id\":\"1\",\"text\":\"a\"}\n{\"id\":\"2\",\"te").expect("write");
    let mut cursor = open_file_at(&path, SourcePosition::START)
        .expect("open")
        .follow(true);
    assert!(matches!(
        cursor.next_event(),
        Ok(Some(SourceEvent::Tweet { .. }))
    ));
    let at = match cursor.next_event().expect("read") {
        Some(SourceEvent::Pending { at }) => at,
        other => panic!("expected pending, got {other:?}"),
    };
    assert_eq!((at.offset, at.line, at.tweets_done), (22, 2, 0));
    // The writer completes the line; the same cursor picks it up.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("append");
    std::io::Write::write_all(&mut file, b"xt\":\"b\"}\n").expect("write");
    match cursor.next_event().expect("read") {
        Some(SourceEvent::Tweet { record, after }) => {
            assert_eq!(record.id, "2");
            assert_eq!(
                (after.line, after.offset),
                (3, std::fs::metadata(&path).expect("meta").len())
            );
        }
        other => panic!("expected the finished tweet, got {other:?}"),
    }
    assert!(matches!(cursor.next_event(), Ok(None)));
}
