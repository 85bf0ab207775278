//! Arbitrary bytes as a tweet source: `tweets_in_line` on them as one line, and a
//! `TweetCursor` over them as a file. Nothing may panic, params must survive the value space,
//! the sink's two readings of a tweet's row (from the JSON value, from the params bytes) must
//! agree, and the cursor's promise must hold: resuming from a position it reported after an event
//! yields exactly the tweets it yielded after that event.

#![no_main]

use libfuzzer_sys::fuzz_target;
use replikativ::tweets::{
    SourceEvent, SourcePosition, TweetColumns, TweetCursor, decode_params, encode_params,
    tweets_in_line,
};

/// Positions resumed from per input (each resume re-reads the rest of the input).
const RESUMES: usize = 16;

/// Each event of the source from `at` on: the tweet id it yielded (if a tweet) and the
/// position after it.
fn events(data: &[u8], at: SourcePosition, limit: u64) -> Vec<(Option<String>, SourcePosition)> {
    let rest = data.get(at.offset as usize..).unwrap_or_default();
    TweetCursor::new(rest, at)
        .limit(limit)
        .map(
            |event| match event.expect("reading a byte slice cannot fail") {
                SourceEvent::Tweet { record, after } => (Some(record.id), after),
                SourceEvent::Skipped { after, .. } => (None, after),
                SourceEvent::Pending { .. } => unreachable!("not in follow mode"),
            },
        )
        .collect()
}

fn tweet_ids(events: &[(Option<String>, SourcePosition)]) -> Vec<&String> {
    events.iter().filter_map(|(id, _)| id.as_ref()).collect()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = tweets_in_line(data) {
        for record in records {
            assert_eq!(record.params["id"].as_str(), Some(record.id.as_str()));
            let bytes = encode_params(&record.params);
            let back = decode_params(&bytes).expect("own encoding");
            assert_eq!(back, record.params, "params survive the value space");
            let from_value = TweetColumns::of_value(&record.params).expect("a tweet's row");
            let from_bytes = TweetColumns::of_params(&bytes).expect("the same row from bytes");
            assert_eq!(from_bytes, from_value, "both readings give the same row");
        }
    }

    // A small line limit, chosen by the input, also exercises the too-long path.
    let limit = 16 + u64::from(data.first().copied().unwrap_or(0)) * 16;
    let all = events(data, SourcePosition::START, limit);
    for k in 0..all.len().min(RESUMES) {
        let after = all[k].1;
        let resumed = events(data, after, limit);
        assert_eq!(
            tweet_ids(&resumed),
            tweet_ids(&all[k + 1..]),
            "resuming at {after:?} (after event {k})"
        );
    }
});
