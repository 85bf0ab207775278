//! The PostgreSQL sink against a real server (a throwaway cluster per test, see
//! `common::postgres`): the same answers as the SQLite sink, schema creation and refusals,
//! rights, credentials and TLS, two sinks sharing one database. Skipped loudly without the
//! server binaries (a failure under `CI`).

use std::collections::BTreeMap;

use replikativ::Id;
use replikativ::realize::postgres::PgTarget;
use replikativ::realize::{Sink, TxParams};
use replikativ::tweets::pg_schema::pg_text;
use replikativ::tweets::{
    ADD_TWEET, PgLoad, PgTweetDb, SourceEvent, SourcePosition, TweetCursor, TweetDb, TweetQueries,
    encode_params, open_pg_sink, open_pg_sink_with, open_sink, words,
};
use serde_json::json;

use crate::common::postgres::{PASSWORD, PgCluster};
use crate::tweets_support::{fts5_hits, smoke_source};

/// `url` with the superuser's password from a stand-in environment (never in the URL).
pub(crate) fn target(cluster: &PgCluster, db: &str) -> PgTarget {
    target_as(cluster, "postgres", PASSWORD, db)
}

pub(crate) fn target_as(cluster: &PgCluster, user: &str, password: &str, db: &str) -> PgTarget {
    let password = password.to_string();
    PgTarget::parse_with(&cluster.url(user, db), &move |k| {
        (k == "PGPASSWORD").then(|| password.clone())
    })
    .expect("target")
}

/// The edge cases of the word rule, as tweets of their own (ids `e0`, `e1`, …).
fn edge_tweets() -> Vec<serde_json::Value> {
    let long = "x".repeat(5000);
    [
        "read https://t.co/AbC12?utm=Obama and www.example.org/path/To/file.html",
        "mail Jane.Doe@Example.org or obama@whitehouse.gov",
        "CAFÉ, café and cafe\u{301}: l'été à Paris",
        "#Brexit #obama @user_name snake_case_words",
        "don't won't O'Brien rock'n'roll",
        "Straße ΣΊΣΥΦΟΣ Ærø 日本語 🙂 x² ½",
        "nul\u{0}byte and tab\there",
        &format!("a very long word {long} ends"),
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| json!({"id": format!("e{i}"), "text": text, "author_id": "edge"}))
    .collect()
}

/// A commit's id and transactions.
pub(crate) type Commit = (Id, Vec<TxParams>);

/// The smoke source in commits of 40, then the edge cases (one repeated) as a last commit.
pub(crate) fn commits() -> Vec<Commit> {
    let (_, bytes) = smoke_source();
    let mut out = Vec::new();
    let mut batch = Vec::new();
    for event in TweetCursor::new(&bytes[..], SourcePosition::START) {
        if let SourceEvent::Tweet { record, .. } = event.expect("read") {
            batch.push((ADD_TWEET.to_string(), encode_params(&record.params)));
            if batch.len() == 40 {
                out.push(std::mem::take(&mut batch));
            }
        }
    }
    out.push(batch);
    let mut edges: Vec<_> = edge_tweets()
        .iter()
        .map(|t| (ADD_TWEET.to_string(), encode_params(t)))
        .collect();
    edges.push(edges[0].clone());
    out.push(edges);
    out.into_iter()
        .enumerate()
        .map(|(i, txs)| (Id::of(format!("c{i}").as_bytes()), txs))
        .collect()
}

pub(crate) fn realize(sink: &mut dyn Sink, commits: &[Commit]) {
    for (id, txs) in commits {
        sink.apply_commit_by(*id, "unsigned", txs).expect("apply");
    }
}

#[test]
fn both_sinks_give_the_same_answers_on_the_shared_tweets_and_the_edge_cases() {
    let Some(pg) = PgCluster::start("both_sinks_give_the_same_answers") else {
        return;
    };
    pg.createdb("tweets");
    let dir = tempfile::tempdir().expect("tmp");
    let commits = commits();
    let mut lite = open_sink(dir.path().join("a.sqlite")).expect("sqlite");
    realize(&mut lite, &commits);
    let mut sink = open_pg_sink(&target(&pg, "tweets")).expect("postgres sink");
    realize(&mut sink, &commits);
    // A second application of everything changes nothing (the checkpoint).
    realize(&mut sink, &commits);

    let mut a = TweetDb::open(dir.path().join("a.sqlite")).expect("sqlite db");
    let mut b = PgTweetDb::open(&target(&pg, "tweets")).expect("postgres db");
    let (a, b): (&mut dyn TweetQueries, &mut dyn TweetQueries) = (&mut a, &mut b);
    assert_eq!(a.count().expect("count"), 310);
    assert_eq!(a.count().expect("count"), b.count().expect("count"));
    assert_eq!(a.stats().expect("stats"), b.stats().expect("stats"));
    assert_eq!(a.top(50).expect("top"), b.top(50).expect("top"));
    assert_eq!(a.account_ops("edge").expect("ops"), 9);
    assert_eq!(b.account_ops("edge").expect("ops"), 9);

    // Every word of every text, and terms around the edges.
    let (lines, _) = smoke_source();
    let mut terms: Vec<String> = edge_tweets()
        .iter()
        .flat_map(|t| words(t["text"].as_str().expect("text")).collect::<Vec<_>>())
        .collect();
    for raw in &lines {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) {
            for t in v["data"].as_array().into_iter().flatten().chain([&v]) {
                terms.extend(
                    t["text"]
                        .as_str()
                        .map(|s| words(s).collect::<Vec<_>>())
                        .unwrap_or_default(),
                );
            }
        }
    }
    terms.sort();
    terms.dedup();
    terms.extend(
        [
            "#Obama",
            "OBAMÁ",
            "e-mail",
            "obama*",
            "",
            "\"",
            "user_name",
            "whitehouse.gov",
            "\0",
        ]
        .map(String::from),
    );
    assert!(terms.len() > 1500, "{} terms", terms.len());
    let mut found = 0;
    for term in &terms {
        let (mut x, y) = (
            a.search(term, 5).expect("search"),
            b.search(term, 5).expect("search"),
        );
        // Postgres text cannot hold U+0000: it is stored as U+FFFD (documented).
        x.1.iter_mut()
            .for_each(|r| r.text = pg_text(&r.text).into_owned());
        assert_eq!(x, y, "search {term:?}");
        found += u64::from(x.0 > 0);
    }
    assert!(found > 1500, "{found} terms found something");
    // Against FTS5 itself on the shared tweets, and the edge cases by hand.
    let mut with_edges = lines.clone();
    with_edges.push(serde_json::to_vec(&json!({ "data": edge_tweets() })).expect("json"));
    for term in ["obama", "brexit", "the", "ü", "#Obama", "cafe", "x²"] {
        let want = fts5_hits(&with_edges, term);
        assert_eq!(b.search(term, 0).expect("search").0, want, "{term}");
    }
    for (term, ids) in [
        ("abc12", &["e0"][..]),
        ("to", &["e0"]),
        ("doe", &["e1"]),
        ("gov", &["e1"]),
        ("cafe", &["e2"]),
        ("ete", &["e2"]),
        ("brexit", &["e3"]),
        ("user", &["e3"]),
        ("case", &["e3"]),
        ("t", &["e0", "e4"]),
        ("brien", &["e4"]),
        ("σίσυφοσ", &["e5"]),
        ("🙂", &["e5"]),
        ("byte", &["e6"]),
        (&"x".repeat(5000), &["e7"]),
    ] {
        let (_, rows) = b.search(term, 1000).expect("search");
        let edge: Vec<&str> = rows
            .iter()
            .map(|r| r.id.as_str())
            .filter(|i| i.starts_with('e'))
            .collect();
        assert_eq!(edge, ids, "{term}");
    }
}

#[test]
fn copy_and_row_inserts_write_the_same_rows() {
    let Some(pg) = PgCluster::start("copy_and_row_inserts_write_the_same_rows") else {
        return;
    };
    pg.createdb("by_copy");
    pg.createdb("by_insert");
    let commits = commits();
    realize(
        &mut open_pg_sink_with(&target(&pg, "by_copy"), PgLoad::Copy).expect("sink"),
        &commits,
    );
    realize(
        &mut open_pg_sink_with(&target(&pg, "by_insert"), PgLoad::Insert).expect("sink"),
        &commits,
    );
    let dump = |db: &str| {
        let tweets = pg.psql(
            db,
            "SELECT string_agg(t::text, E'\\n' ORDER BY n) FROM (SELECT id, text, created_at,
             author_id, username, retweet_count, like_count, lang, raw, commit_author, words,
             seq AS n FROM replikativ.tweets) t",
        );
        let ops = pg.psql(
            db,
            "SELECT string_agg(a::text, ',' ORDER BY author_id) FROM replikativ.account_ops a",
        );
        format!("{tweets}\n{ops}")
    };
    let copied = dump("by_copy");
    assert!(copied.lines().count() > 300, "{copied}");
    assert_eq!(copied, dump("by_insert"));
}

#[test]
fn two_sinks_sharing_one_database_apply_each_commit_once() {
    let Some(pg) = PgCluster::start("two_sinks_sharing_one_database") else {
        return;
    };
    pg.createdb("shared");
    let commits = commits();
    let t = target(&pg, "shared");
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let (t, mut commits) = (t.clone(), commits.clone());
            if i == 1 {
                commits.reverse();
            }
            std::thread::spawn(move || {
                let mut sink = open_pg_sink(&t).expect("sink");
                for (id, txs) in &commits {
                    // A race on one tweet is a transient failure: retry it, as the realizer does.
                    let mut tries = 0;
                    while let Err(e) = sink.apply_commit_by(*id, "unsigned", txs) {
                        assert!(!e.is_deterministic() && tries < 20, "{e:?}");
                        tries += 1;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("sink thread");
    }
    let mut db = PgTweetDb::open(&t).expect("db");
    let stats = db.stats().expect("stats");
    let ops: usize = commits.iter().map(|(_, txs)| txs.len()).sum();
    assert_eq!(
        (stats.tweets, stats.ops_applied, stats.commits_applied),
        (310, ops as u64, commits.len() as u64)
    );
    let per_author: BTreeMap<String, i64> = pg
        .psql(
            "shared",
            "SELECT author_id || '=' || ops FROM replikativ.account_ops",
        )
        .lines()
        .map(|l| {
            let (a, n) = l.rsplit_once('=').expect("row");
            (a.to_string(), n.parse().expect("number"))
        })
        .collect();
    assert_eq!(
        per_author.values().sum::<i64>(),
        ops as i64,
        "every op counted once"
    );
    assert_eq!(per_author["edge"], 9);
}
