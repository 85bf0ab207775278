//! The browser peer (DESIGN §15, issue 19) in a real headless Chromium through the project's
//! WebDriver harness, against real processes:
//!
//! - a collector follows the repo's tweets and serves them; `peer --web` replicates them and
//!   serves the page; an analyzer realizes them into SQLite. The page shows the same count and
//!   the same search results as `replikativ query` on that SQLite file, and both equal the
//!   figures of the source computed here independently (its distinct tweet ids, its words).
//!   Tweets appended to the followed source reach the open page live.
//! - The peer is stopped (SIGTERM), tweets are appended, the peer restarts on the same store
//!   and port: the page catches up without a reload, receiving a few KiB bounded by the new
//!   commits' size (the first sync took about half a MB).
//! - The peer is stopped again and the page reloaded: IndexedDB and the service worker still
//!   show every tweet, and search works offline.
//! - `?ws=` pointed at another node does not get around that node's `Origin` rule.
//!
//! Forgeries sent to the page: `browser_forgery`.
//!
//! `REPLIKATIV_SCREENSHOTS=1` also writes `docs/browser-peer.png` (the live page, a search
//! entered).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::browser::{Browser, docs_dir};
use crate::common::cli_support::{Proc, analyze_once, arg, query_json, tail};
use crate::common::tweets_oracle::{Expected, lines_of, source_tweets, write_lines};
use crate::common::{append_lines, data_dir, free_port, wait_port};

pub(crate) const T: Duration = Duration::from_secs(90);

/// The words searched on the page and with `query search` (each in some tweets of the repo's
/// data, one only in the appended tweets).
const TERMS: &[&str] = &[
    "the",
    "brexit",
    "obama",
    "love",
    "browserlive",
    "browsercatchup",
];

/// The tweets appended while everything runs (the page updates live).
const LIVE: usize = 5;

/// The tweets appended while the peer is down.
const APPENDED: usize = 25;

/// The repo's tweets: every line of every `data/tweets/*.jsonl`, in name order.
fn repo_tweets() -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .expect("data/tweets")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files.iter().flat_map(|f| lines_of(f)).collect()
}

/// `n` new tweets with ids no repo tweet has (`prefix` and a counter), each with `word`.
fn new_tweets(prefix: &str, word: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            json!({
                "id": format!("{prefix}{i:017}"),
                "text": format!("{word} tweet {i}: appended to the followed source"),
                "created_at": "2026-11-29T12:00:00.000Z",
                "author_id": "4242",
                "author": {"id": "4242", "username": "catchup"},
            })
            .to_string()
            .into_bytes()
        })
        .collect()
}

/// The page's `window.replikativ.status()`, or `Null` before the page is ready.
pub(crate) fn status(br: &mut Browser) -> Value {
    br.execute(
        "return window.replikativ && window.replikativ.ready ? window.replikativ.status() : null;",
        vec![],
    )
}

/// Waits until the page is ready and `pred` holds of its status; the status.
pub(crate) fn wait_status(br: &mut Browser, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let s = status(br);
        if !s.is_null() && pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < T,
            "the page never showed {what} within {T:?}; status {s}, notes {}, page:\n{}",
            notes(br).join(" | "),
            br.text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The page's notes.
pub(crate) fn notes(br: &mut Browser) -> Vec<String> {
    let v = br.execute(
        "return window.replikativ && window.replikativ.notes ? window.replikativ.notes() : [];",
        vec![],
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The text of the element with DOM id `id`.
fn dom(br: &mut Browser, id: &str) -> String {
    br.execute(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : null;",
        vec![json!(id)],
    )
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Waits until `script` (run in the page, `arguments` holding `args`) answers true: the page
/// draws on its next animation frame, so what it shows lags its status a little.
fn wait_page(br: &mut Browser, what: &str, script: &str, args: Vec<Value>) {
    let start = Instant::now();
    while br.execute(script, args.clone()) != true {
        assert!(
            start.elapsed() < T,
            "the page never showed {what} within {T:?}; status {}, page:\n{}",
            status(br),
            br.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the element `id` shows `text`.
fn wait_dom(br: &mut Browser, id: &str, text: &str) {
    wait_page(
        br,
        &format!("{text:?} in #{id}"),
        "const e = document.getElementById(arguments[0]); return !!e && e.textContent === arguments[1];",
        vec![json!(id), json!(text)],
    );
}

/// The page's search: the count and every hit's id.
pub(crate) fn page_search(br: &mut Browser, term: &str) -> (u64, BTreeSet<String>) {
    let found = br.execute(
        "return window.replikativ.search(arguments[0], arguments[1]);",
        vec![json!(term), json!(1_000_000)],
    );
    ids_of(&found)
}

/// `count` and the set of `tweets[].id` of a search answer (the page's or `query search`'s).
fn ids_of(found: &Value) -> (u64, BTreeSet<String>) {
    let ids = found["tweets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tweets in {found}"))
        .iter()
        .map(|t| t["id"].as_str().expect("a string id").to_owned())
        .collect();
    (found["count"].as_u64().expect("a count"), ids)
}

/// The ids of the tweets of `lines` having the word `term` (the oracle's tokens).
fn oracle_hits(lines: &[Vec<u8>], term: &str) -> BTreeSet<String> {
    use crate::common::tweets_oracle::{MAX_LINE, tokens, tweets_in};
    let mut seen = BTreeSet::new();
    let mut hits = BTreeSet::new();
    for raw in lines.iter().filter(|l| l.len() <= MAX_LINE) {
        for t in tweets_in(raw).unwrap_or_default() {
            let id = t["id"].as_str().unwrap_or_default().to_owned();
            if seen.insert(id.clone())
                && tokens(t["text"].as_str().unwrap_or_default()).contains(term)
            {
                hits.insert(id);
            }
        }
    }
    hits
}

/// Runs `analyze` against the collector until `query count` says `want` tweets.
fn analyze_to(d: &Path, port: u16, want: u64) {
    let db = d.join("analysis.sqlite");
    let mut last = Value::Null;
    let done = crate::common::wait::periodic_check(
        || {
            let out = analyze_once(d, &d.join("analysis"), port, &db);
            if !out.status.success() {
                return false;
            }
            last = query_json(d, &db, &["count"]);
            last["count"].as_u64() == Some(want)
        },
        T,
    );
    assert!(done, "the analyzer never realized {want} tweets: {last}");
}

/// The page, SQLite and the source agree on the count and on every term's hits.
fn check_against_query(br: &mut Browser, d: &Path, lines: &[Vec<u8>], want: u64, offline: bool) {
    let db = d.join("analysis.sqlite");
    let count = query_json(d, &db, &["count"]);
    assert_eq!(count["count"].as_u64(), Some(want), "query count: {count}");
    wait_dom(br, "count", &want.to_string());
    for term in TERMS {
        let oracle = oracle_hits(lines, term);
        let query = query_json(d, &db, &["search", term, "--limit", "1000000"]);
        let (q_count, q_ids) = ids_of(&query);
        let (p_count, p_ids) = page_search(br, term);
        assert_eq!(q_count, oracle.len() as u64, "query search {term}");
        assert_eq!(q_ids, oracle, "query search {term}: ids");
        assert_eq!(
            p_count, q_count,
            "the page's search for {term} (offline: {offline})"
        );
        assert_eq!(
            p_ids, q_ids,
            "the page's hits for {term} (offline: {offline})"
        );
    }
}

/// Types `term` into the page's search box; waits until the page shows its count.
fn type_search(br: &mut Browser, term: &str, count: u64) {
    br.execute(
        "const s = document.getElementById('search'); s.value = arguments[0]; \
         s.dispatchEvent(new Event('input')); return true;",
        vec![json!(term)],
    );
    let want = format!("{count} found");
    let start = Instant::now();
    while !dom(br, "found").contains(&want) {
        assert!(
            start.elapsed() < T,
            "the page never showed {want:?}: {}",
            dom(br, "found")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let shown = br.execute(
        "return document.getElementById('results').children.length;",
        vec![],
    );
    assert_eq!(shown.as_u64(), Some(count.min(20)), "results listed");
}

/// Waits until `log` (a file in `d`) contains `needle`.
fn wait_log(d: &Path, log: &str, needle: &str) {
    let path = d.join(log);
    let found = crate::common::wait::periodic_check(
        || std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle)),
        T,
    );
    assert!(found, "{log} never said {needle:?}:\n{}", tail(&path));
}

/// Appends `tweets` (JSON lines) to the source file.
fn append(src: &Path, tweets: &[Vec<u8>]) {
    let lines: Vec<String> = tweets
        .iter()
        .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
        .collect();
    append_lines(src, &lines);
}

fn spawn_peer(d: &Path, listen: &str, collector: &str) -> Proc {
    Proc::spawn(
        &[
            "peer",
            "--store",
            "b",
            "--listen",
            listen,
            "--connect",
            collector,
            "--web",
        ],
        d,
        "b.log",
    )
}

#[test]
fn the_page_replicates_searches_catches_up_by_delta_and_works_offline() {
    let Some(mut br) = Browser::start("browser peer end to end") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut lines = repo_tweets();
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let first = source_tweets(&lines).len() as u64;
    assert!(first > 1000, "the repo's tweets: {first}");
    for term in TERMS.iter().filter(|t| !t.starts_with("browser")) {
        assert!(Expected::of(&lines, term).hits > 0, "{term} is in the data");
    }

    let (pa, pb) = (free_port(), free_port());
    let (la, lb) = (format!("127.0.0.1:{pa}"), format!("127.0.0.1:{pb}"));
    let url_a = format!("ws://{la}/");
    let _a = Proc::spawn(
        &[
            "collect",
            "--store",
            "a",
            "--source",
            arg(&src),
            "--listen",
            &la,
            "--follow",
            "--flush-ms",
            "50",
            "--batch",
            "100",
        ],
        d,
        "a.log",
    );
    wait_port(pa, T);

    // `?ws=` does not get around another node's Origin rule: the collector refuses a page of
    // the peer's origin, and the page holds nothing.
    let mut b = spawn_peer(d, &lb, &url_a);
    wait_port(pb, T);
    let page = format!("http://{lb}/app/");
    br.goto(&format!("{page}?ws={url_a}"));
    wait_log(
        d,
        "a.log",
        &format!("web pages of origin http://{lb} may not open websockets"),
    );
    let s = wait_status(&mut br, "a refused connection", |s| s["connected"] == false);
    assert_eq!(s["tweets"], 0, "{s}");
    wait_dom(&mut br, "state", "offline");

    // The collector's tweets, realized by an analyzer, and replicated into the page.
    analyze_to(d, pa, first);
    br.goto(&page);
    br.execute("window.notReloaded = true; return true;", vec![]);
    let synced = wait_status(&mut br, "the first sync", |s| {
        s["caught_up"] == true && s["tweets"] == first
    });
    assert_eq!(synced["invalid"], 0, "{synced}");
    wait_dom(&mut br, "state", "live");
    check_against_query(&mut br, d, &lines, first, false);
    let first_commits = synced["commits"].as_u64().expect("commits");
    // The header shows the replica's state (read with it in one script: frames such as a
    // late `Heads` may still arrive after the catch-up, and the page redraws on each).
    wait_page(
        &mut br,
        "its bytes and commits in the header",
        "const s = window.replikativ.status();
         return String(s.received_bytes) === document.getElementById('bytes').textContent
           && String(s.commits) === document.getElementById('commits').textContent
           && s.commits >= arguments[0];",
        vec![first_commits.into()],
    );
    // The live page with a search entered.
    type_search(
        &mut br,
        "brexit",
        oracle_hits(&lines, "brexit").len() as u64,
    );
    if std::env::var_os("REPLIKATIV_SCREENSHOTS").is_some() {
        br.screenshot(&docs_dir().join("browser-peer.png"));
    }

    // Tweets appended while everything runs: the page shows them live.
    let live = new_tweets("78", "browserlive", LIVE);
    append(&src, &live);
    lines.extend(live);
    let before = source_tweets(&lines).len() as u64;
    analyze_to(d, pa, before);
    let synced = wait_status(&mut br, "the live update", |s| {
        s["caught_up"] == true && s["tweets"] == before
    });
    wait_dom(&mut br, "state", "live");
    check_against_query(&mut br, d, &lines, before, false);
    let before_bytes = synced["received_bytes"].as_u64().expect("bytes");
    let before_commits = synced["commits"].as_u64().expect("commits");

    let log_b = std::fs::read_to_string(d.join("b.log")).expect("b.log");
    assert!(
        !log_b.contains("refused a websocket upgrade"),
        "the page of the node connecting to the node itself passes its Origin rule:\n{log_b}"
    );

    // The page hands each transaction over once it is kept: count the new tweets' ids.
    br.execute(
        "window.handed = [];
         window.replikativ.onTransactions((txs) => {
           for (const t of txs) if (t.op === 'add-tweet' && t.params) window.handed.push(t.params.id);
         });
         return true;",
        vec![],
    );

    // The peer stops; tweets are appended (the collector follows); the peer restarts.
    b.terminate_ok("peer B", &d.join("b.log"));
    wait_status(&mut br, "offline", |s| s["connected"] == false);
    let new = new_tweets("77", "browsercatchup", APPENDED);
    let new_bytes: usize = new.iter().map(|l| l.len() + 1).sum();
    append(&src, &new);
    lines.extend(new);
    let all = source_tweets(&lines).len() as u64;
    assert_eq!(all, before + APPENDED as u64);
    analyze_to(d, pa, all);
    assert_eq!(
        status(&mut br)["tweets"],
        before,
        "nothing new while the peer is down"
    );
    let mut b = spawn_peer(d, &lb, &url_a);
    wait_port(pb, T);
    let caught = wait_status(&mut br, "the catch-up", |s| {
        s["caught_up"] == true && s["tweets"] == all
    });
    assert_eq!(
        br.execute("return window.notReloaded === true;", vec![]),
        true,
        "the page caught up without a reload"
    );
    check_against_query(&mut br, d, &lines, all, false);
    let handed: BTreeSet<String> = br
        .execute("return window.handed;", vec![])
        .as_array()
        .expect("handed ids")
        .iter()
        .map(|v| v.as_str().expect("an id").to_owned())
        .collect();
    let appended: BTreeSet<String> = source_tweets(&lines[lines.len() - APPENDED..])
        .into_keys()
        .collect();
    assert_eq!(
        handed, appended,
        "the new tweets, handed to the page's script once kept"
    );
    let delta = caught["received_bytes"].as_u64().expect("bytes") - before_bytes;
    let new_commits = caught["commits"].as_u64().expect("commits") - before_commits;
    // What the new commits can weigh at most: their tweets' JSON (sent as MessagePack,
    // compressed in packs), up to 1 KiB of commit each (parents, author, signature), and
    // 16 KiB for the handshake, the heads each way and one ancestry sample.
    let bound = new_bytes as u64 + new_commits * 1024 + 16 * 1024;
    eprintln!(
        "browser peer: before the restart {before} tweets, {before_commits} commits, \
         {before_bytes} bytes received; \
         catch-up {APPENDED} tweets ({new_bytes} bytes of JSON), {new_commits} commits, \
         {delta} bytes (bound {bound})"
    );
    assert!(
        (1..=APPENDED as u64).contains(&new_commits),
        "{new_commits} new commits"
    );
    assert!(
        delta <= bound,
        "the catch-up received {delta} bytes, more than the new commits' bound {bound} \
         (everything before took {before_bytes})"
    );
    assert!(delta > 0);

    // The peer stops again; a reload shows everything from IndexedDB, served by the service
    // worker, and searches offline.
    b.terminate_ok("peer B", &d.join("b.log"));
    wait_status(&mut br, "offline again", |s| s["connected"] == false);
    br.goto(&page);
    let reloaded = wait_status(&mut br, "the reload from IndexedDB", |s| s["tweets"] == all);
    assert_eq!(
        br.execute("return window.notReloaded === undefined;", vec![]),
        true,
        "this is a fresh page"
    );
    assert_eq!(reloaded["connected"], false, "{reloaded}");
    assert_eq!(reloaded["received_bytes"], 0, "nothing fetched: {reloaded}");
    assert_eq!(reloaded["commits"], caught["commits"], "{reloaded}");
    assert_eq!(reloaded["invalid"], 0, "{reloaded}");
    wait_dom(&mut br, "state", "offline");
    check_against_query(&mut br, d, &lines, all, true);
    let said = notes(&mut br);
    assert!(
        !said.iter().any(|n| n.contains("refused")),
        "no record refused: {said:?}"
    );
}
