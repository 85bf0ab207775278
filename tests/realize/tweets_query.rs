//! Queries over a realized tweet database: the smoke test's figures, hostile search terms,
//! files that are not ours, the JSON shapes, and the chart.

use std::path::{Path, PathBuf};

use crate::tweets_support::{expected, fts5_hits, smoke_source, tokens};
use replikativ::Id;
use replikativ::realize::Sink;
use replikativ::tweets::{
    ADD_TWEET, CountJson, QueryError, SearchJson, SourceEvent, SourcePosition, Stats, TopJson,
    TweetCursor, TweetDb, encode_params, open_sink, top_chart_svg,
};

/// Realizes the smoke source in commits of 40 tweets, as `collect --batch 40` would.
fn realize_smoke(dir: &Path) -> PathBuf {
    let (_, bytes) = smoke_source();
    let db = dir.join("analysis.sqlite");
    let mut sink = open_sink(&db).expect("sink");
    let mut batch = Vec::new();
    let mut n = 0u32;
    let mut flush = |batch: &mut Vec<(String, Vec<u8>)>| {
        if !batch.is_empty() {
            n += 1;
            sink.apply_commit(Id::of(format!("c{n}").as_bytes()), batch)
                .expect("apply");
            batch.clear();
        }
    };
    for event in TweetCursor::new(&bytes[..], SourcePosition::START) {
        if let SourceEvent::Tweet { record, .. } = event.expect("read") {
            batch.push((ADD_TWEET.to_string(), encode_params(&record.params)));
            if batch.len() == 40 {
                flush(&mut batch);
            }
        }
    }
    flush(&mut batch);
    db
}

#[test]
fn the_smoke_composition_gives_the_figures_cli_smoke_computes() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TweetDb::open(realize_smoke(dir.path())).expect("open");
    let (lines, _) = smoke_source();
    let want = expected(&lines, "obama");
    // The same figures as cli_smoke.py printed for this data: 302, 302, 83, [10, 3, 2, 2, 2].
    assert_eq!((want.records, want.distinct, want.hits), (302, 302, 83));
    assert_eq!(want.top, [10, 3, 2, 2, 2]);

    let stats = db.stats().expect("stats");
    assert_eq!(
        stats,
        Stats {
            tweets: want.distinct,
            ops_applied: want.records,
            commits_applied: want.records.div_ceil(40),
        }
    );
    assert_eq!(db.count().expect("count"), want.distinct);
    let (total, first) = db.search("obama", 10).expect("search");
    assert_eq!(total, want.hits);
    assert_eq!(first.len(), 10);
    assert!(first.iter().all(|t| tokens(&t.text).contains("obama")));
    assert_eq!(
        db.search("OBAMA", 0).expect("search").0,
        want.hits,
        "case-insensitive"
    );
    let top = db.top(5).expect("top");
    assert_eq!(top.iter().map(|(_, n)| *n).collect::<Vec<_>>(), want.top);
    for (user, n) in &top {
        assert_eq!(want.per_user.get(user), Some(n), "{user}");
    }
    // Ties are ordered by username.
    for pair in top.windows(2) {
        assert!(pair[0].1 > pair[1].1 || pair[0].0 < pair[1].0, "{pair:?}");
    }
}

#[test]
fn hostile_search_terms_never_cause_an_fts_syntax_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TweetDb::open(realize_smoke(dir.path())).expect("open");
    let (lines, _) = smoke_source();
    for term in [
        "\"",
        "AND",
        "and",
        "OR",
        "NOT",
        "*",
        "(",
        ")",
        "obama*",
        "\"obama",
        "obama OR trump",
        "NEAR(obama trump)",
        "-",
        "'",
        "",
        " ",
        "text:obama",
        "^obama",
        "\0",
        "{obama}",
        "the",
        "ü",
        "✓",
        "#Obama",
        "OBAMÁ",
        "e-mail",
    ] {
        let (total, _) = db
            .search(term, 3)
            .unwrap_or_else(|e| panic!("{term:?}: {e}"));
        // A term is searched for as its one word (`obama*` as `obama`, `#x` as `x`); one of
        // no word or several finds nothing. FTS5's own tokenizer judges.
        let want = fts5_hits(&lines, term);
        assert_eq!(total, want, "{term:?}");
    }
}

#[test]
fn queries_name_a_missing_or_foreign_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let missing = dir.path().join("nope.sqlite");
    let err = TweetDb::open(&missing).expect_err("missing");
    assert!(matches!(err, QueryError::Missing { .. }));
    assert!(err.to_string().contains("nope.sqlite"), "{err}");
    assert!(!missing.exists(), "opening must not create the file");

    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, b"this is not a database at all, just some bytes....").expect("write");
    let err = TweetDb::open(&junk).expect_err("junk");
    assert!(matches!(err, QueryError::NotReplikativ { .. }), "{err}");
    assert!(err.to_string().contains("junk.sqlite"), "{err}");

    let other = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&other)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
        .expect("other db");
    assert!(matches!(
        TweetDb::open(&other),
        Err(QueryError::NotReplikativ { .. })
    ));
}

#[test]
fn json_outputs_have_exactly_the_documented_shapes() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TweetDb::open(realize_smoke(dir.path())).expect("open");
    let count = serde_json::to_value(CountJson {
        count: db.count().expect("count"),
    })
    .expect("json");
    assert_eq!(count, serde_json::json!({"count": 302}));
    let (total, tweets) = db.search("obama", 2).expect("search");
    let search = serde_json::to_value(SearchJson {
        count: total,
        tweets,
    })
    .expect("json");
    assert_eq!(search["count"], 83);
    assert_eq!(search["tweets"].as_array().expect("array").len(), 2);
    assert!(search["tweets"][0]["text"].is_string() && search["tweets"][0]["id"].is_string());
    let top = serde_json::to_value(TopJson::from(db.top(2).expect("top"))).expect("json");
    let first = top["top"][0].as_object().expect("object");
    assert_eq!(first.keys().collect::<Vec<_>>(), ["tweets", "username"]);
    assert_eq!(first["tweets"], 10);
    let stats = serde_json::to_string(&db.stats().expect("stats")).expect("json");
    assert_eq!(
        stats,
        r#"{"tweets":302,"ops_applied":302,"commits_applied":8}"#
    );
}

#[test]
fn the_top_chart_is_an_svg_naming_every_account_and_count() {
    let dir = tempfile::tempdir().expect("tmp");
    let db = TweetDb::open(realize_smoke(dir.path())).expect("open");
    let rows = db.top(5).expect("top");
    let chart = dir.path().join("top.svg");
    top_chart_svg(&rows, &chart).expect("chart");
    let svg = std::fs::read_to_string(&chart).expect("read");
    assert!(svg.contains("<svg"));
    assert!(svg.contains("Most active accounts"));
    for (user, n) in &rows {
        assert!(svg.contains(user.as_str()), "{user} missing");
        assert!(
            svg.contains(&format!(">\n {n}\n</text>")),
            "count {n} missing"
        );
    }
    let empty = dir.path().join("empty.svg");
    top_chart_svg(&[], &empty).expect("empty chart");
    assert!(
        std::fs::read_to_string(&empty)
            .expect("read")
            .contains("<svg")
    );
    let err = top_chart_svg(&rows, &dir.path().join("no/such/dir/x.svg")).expect_err("bad path");
    assert!(err.to_string().contains("x.svg"), "{err}");
}
