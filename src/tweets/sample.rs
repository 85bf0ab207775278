//! Sample tweets compiled into the binary for `replikativ demo` (DocNow's twarc test data,
//! MIT licensed; see `data/tweets/LICENSE`). The largest files are left out to keep the
//! binary small.

/// `(file name, contents)` of the compiled-in sample files.
pub const SAMPLE: &[(&str, &str)] = &[
    ("flat.jsonl", include_str!("../../data/tweets/flat.jsonl")),
    (
        "brexit.jsonl",
        include_str!("../../data/tweets/brexit.jsonl"),
    ),
    ("kpop.jsonl", include_str!("../../data/tweets/kpop.jsonl")),
    (
        "geo_tweets.jsonl",
        include_str!("../../data/tweets/geo_tweets.jsonl"),
    ),
    (
        "withheld.jsonl",
        include_str!("../../data/tweets/withheld.jsonl"),
    ),
];

/// The license the sample data is shipped under.
pub const SAMPLE_LICENSE: &str = include_str!("../../data/tweets/LICENSE");
