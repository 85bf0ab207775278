//! The browser peer (DESIGN §15, issue 19) in a real headless Chromium through the project's
//! WebDriver harness, against real processes:
//!
//! - a collector follows the repo's tweets and serves them; `peer --web` replicates them and
//!   serves the page; an analyzer realizes them into SQLite. The page shows the same count and
//!   the same search results as `replikativ query` on that SQLite file, and both equal the
//!   figures of the source computed here independently (its distinct tweet ids, its words).
//! - The peer is stopped (SIGTERM), tweets are appended, the peer restarts on the same store
//!   and port: the page catches up without a reload, receiving a few KiB bounded by the new
//!   commits' size, not the first sync's MB.
//! - The peer is stopped again and the page reloaded: IndexedDB and the service worker still
//!   show every tweet, and search works offline.
//! - `?ws=` pointed at another node does not get around that node's `Origin` rule.
//! - A hostile websocket server (the core's handshake as acceptor) sends a commit signed by
//!   another key than its author's and a value whose bytes do not hash to its id: the page
//!   keeps and shows nothing of either, its notes say so, and an honest batch on the next
//!   connection is accepted (and kept over a reload).
//!
//! `REPLIKATIV_SCREENSHOTS=1` also writes `docs/browser-peer.png` (the live page, a search
//! entered).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::browser::{Browser, docs_dir};
use crate::common::cli_support::{Proc, analyze_once, arg, query_json, tail};
use crate::common::tweets_oracle::{Expected, lines_of, source_tweets, write_lines};
use crate::common::{append_lines, data_dir, free_port, wait_port};

const T: Duration = Duration::from_secs(90);

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
fn status(br: &mut Browser) -> Value {
    br.execute(
        "return window.replikativ && window.replikativ.ready ? window.replikativ.status() : null;",
        vec![],
    )
}

/// Waits until the page is ready and `pred` holds of its status; the status.
fn wait_status(br: &mut Browser, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
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
fn notes(br: &mut Browser) -> Vec<String> {
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

/// The page's search: the count and every hit's id.
fn page_search(br: &mut Browser, term: &str) -> (u64, BTreeSet<String>) {
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
    assert_eq!(dom(br, "count"), want.to_string(), "the count shown");
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
    assert_eq!(dom(&mut br, "state"), "offline");

    // The collector's tweets, realized by an analyzer, and replicated into the page.
    analyze_to(d, pa, first);
    br.goto(&page);
    br.execute("window.notReloaded = true; return true;", vec![]);
    let synced = wait_status(&mut br, "the first sync", |s| {
        s["caught_up"] == true && s["tweets"] == first
    });
    assert_eq!(synced["invalid"], 0, "{synced}");
    assert_eq!(dom(&mut br, "state"), "live");
    check_against_query(&mut br, d, &lines, first, false);
    let first_bytes = synced["received_bytes"].as_u64().expect("bytes");
    let first_commits = synced["commits"].as_u64().expect("commits");
    assert_eq!(dom(&mut br, "bytes"), first_bytes.to_string());
    assert_eq!(dom(&mut br, "commits"), first_commits.to_string());
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
    let first = source_tweets(&lines).len() as u64;
    analyze_to(d, pa, first);
    let synced = wait_status(&mut br, "the live update", |s| {
        s["caught_up"] == true && s["tweets"] == first
    });
    assert_eq!(dom(&mut br, "state"), "live");
    check_against_query(&mut br, d, &lines, first, false);
    let first_bytes = synced["received_bytes"].as_u64().expect("bytes");
    let first_commits = synced["commits"].as_u64().expect("commits");

    let log_b = std::fs::read_to_string(d.join("b.log")).expect("b.log");
    assert!(
        !log_b.contains("refused a websocket upgrade"),
        "the page of the node connecting to the node itself passes its Origin rule:\n{log_b}"
    );

    // The peer stops; tweets are appended (the collector follows); the peer restarts.
    b.terminate_ok("peer B", &d.join("b.log"));
    wait_status(&mut br, "offline", |s| s["connected"] == false);
    let new = new_tweets("77", "browsercatchup", APPENDED);
    let new_bytes: usize = new.iter().map(|l| l.len() + 1).sum();
    append(&src, &new);
    lines.extend(new);
    let all = source_tweets(&lines).len() as u64;
    assert_eq!(all, first + APPENDED as u64);
    analyze_to(d, pa, all);
    assert_eq!(
        status(&mut br)["tweets"],
        first,
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
    let delta = caught["received_bytes"].as_u64().expect("bytes") - first_bytes;
    let new_commits = caught["commits"].as_u64().expect("commits") - first_commits;
    // What the new commits can weigh at most: their tweets' JSON (sent as MessagePack,
    // compressed in packs), up to 1 KiB of commit each (parents, author, signature), and
    // 16 KiB for the handshake, the heads each way and one ancestry sample.
    let bound = new_bytes as u64 + new_commits * 1024 + 16 * 1024;
    eprintln!(
        "browser peer: first sync {first} tweets, {first_commits} commits, {first_bytes} bytes; \
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
         (the first sync took {first_bytes})"
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
    assert_eq!(dom(&mut br, "state"), "offline");
    check_against_query(&mut br, d, &lines, all, true);
    let said = notes(&mut br);
    assert!(
        !said.iter().any(|n| n.contains("refused")),
        "no record refused: {said:?}"
    );
}

/// The hostile server's script, shared by its connections.
struct Script {
    crdt: replikativ::crdt::CrdtKey,
    /// Connection k gets `batches[min(k, last)]`: frames sent after the page's heads.
    batches: Vec<Vec<Vec<u8>>>,
    connections: AtomicUsize,
}

mod hostile {
    //! A websocket server that speaks the protocol as an acceptor (the core's [`Handshake`])
    //! and then sends whatever its script says.

    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use actix::{Actor, ActorContext as _, StreamHandler};
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use actix_web_actors::ws;
    use replikativ::identity::Keypair;
    use replikativ::protocol::{Message, decode, encode};
    use replikativ::sync::{Handshake, Role};

    use super::Script;

    struct Conn {
        shake: Handshake,
        script: Arc<Script>,
        index: usize,
        sent: bool,
    }

    impl Actor for Conn {
        type Context = ws::WebsocketContext<Self>;

        fn started(&mut self, ctx: &mut Self::Context) {
            ctx.binary(encode(&self.shake.hello()).expect("hello"));
        }
    }

    impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Conn {
        fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
            let bytes = match msg {
                Ok(ws::Message::Binary(b)) => b,
                Ok(ws::Message::Ping(p)) => return ctx.pong(&p),
                Ok(ws::Message::Close(_)) | Err(_) => return ctx.stop(),
                Ok(_) => return,
            };
            let Ok(msg) = decode(&bytes) else {
                return ctx.stop();
            };
            if self.shake.peer().is_none() {
                match self.shake.on_message(&msg) {
                    Ok(Some(proof)) => ctx.binary(encode(&proof).expect("proof")),
                    Ok(None) => {}
                    Err(_) => ctx.stop(),
                }
                return;
            }
            match msg {
                Message::Heads { crdt, .. } if crdt == self.script.crdt && !self.sent => {
                    self.sent = true;
                    let last = self.script.batches.len() - 1;
                    for frame in &self.script.batches[self.index.min(last)] {
                        ctx.binary(frame.clone());
                    }
                }
                Message::Ping(n) => ctx.binary(encode(&Message::Pong(n)).expect("pong")),
                _ => {}
            }
        }
    }

    async fn accept(
        req: HttpRequest,
        stream: web::Payload,
        script: web::Data<Arc<Script>>,
    ) -> Result<HttpResponse, actix_web::Error> {
        let script: Arc<Script> = script.get_ref().clone();
        let index = script.connections.fetch_add(1, Ordering::SeqCst);
        let key = Keypair::generate().expect("a key");
        let nonce: [u8; 32] = rand::random();
        let conn = Conn {
            shake: Handshake::new(key, Role::Acceptor, nonce, None),
            script,
            index,
            sent: false,
        };
        ws::WsResponseBuilder::new(conn, &req, stream)
            .frame_size(17 << 20)
            .start()
    }

    /// Serves `script` on 127.0.0.1:`port` in a thread of its own; stop it with the handle.
    pub fn serve(script: Arc<Script>, port: u16) -> actix_web::dev::ServerHandle {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(script.clone()))
                        .route("/", web::get().to(accept))
                })
                .workers(1)
                .bind(("127.0.0.1", port))
                .expect("bind the hostile server")
                .run();
                tx.send(server.handle()).expect("the test waits");
                server.await.expect("the hostile server");
            });
        });
        rx.recv().expect("the hostile server started")
    }
}

/// The frames of a batch: the heads, the values, the commits.
fn batch_frames(
    crdt: &replikativ::crdt::CrdtKey,
    values: Vec<replikativ::protocol::Blob>,
    commit: &replikativ::crdt::EncodedCommit,
) -> Vec<Vec<u8>> {
    use replikativ::protocol::message::FixedBytes;
    use replikativ::protocol::{Blob, Message, encode};
    [
        Message::Heads {
            crdt: crdt.clone(),
            heads: vec![commit.id],
        },
        Message::Values {
            crdt: crdt.clone(),
            values,
        },
        Message::Commits {
            crdt: crdt.clone(),
            commits: vec![Blob::new(commit.bytes.clone())],
            signatures: vec![commit.signature.map(FixedBytes)],
        },
    ]
    .iter()
    .map(|m| encode(m).expect("encode"))
    .collect()
}

/// A commit on the root of `crdt` adding the tweet `params`, authored by `author`.
fn tweet_commit(
    crdt: &replikativ::crdt::CrdtKey,
    params: &[u8],
    author: &replikativ::identity::Keypair,
    ts: i64,
) -> replikativ::crdt::Commit {
    use replikativ::crdt::{Commit, Transaction};
    use replikativ::id::Id;
    Commit {
        parents: vec![Commit::root(crdt).id],
        transactions: vec![Transaction {
            op: "add-tweet".into(),
            params: Id::of(params),
        }],
        author: author.public().to_string(),
        ts,
    }
}

#[test]
fn a_forged_commit_and_a_tampered_value_are_refused_by_the_page_and_an_honest_batch_kept() {
    use replikativ::crdt::CrdtKey;
    use replikativ::crdt::authorship::sign;
    use replikativ::identity::Keypair;
    use replikativ::protocol::Blob;
    use replikativ::protocol::ByteBuf;
    use replikativ::tweets::encode_params;

    let Some(mut br) = Browser::start("browser peer refuses forgeries") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let crdt = CrdtKey::new("mail:hostile@replikativ.io", uuid::Uuid::new_v4());
    let (x, y) = (
        Keypair::generate().expect("x"),
        Keypair::generate().expect("y"),
    );
    let tweet = |id: &str, word: &str| {
        encode_params(&json!({"id": id, "text": format!("{word} says hello"), "author_id": "1"}))
    };

    // 1. A commit authored by X, signed by Y.
    let forged_params = tweet("880000000000000001", "forgedword");
    let mut forged = tweet_commit(&crdt, &forged_params, &x, 1).encode();
    forged.signature = Some(sign(&y, &forged.id));
    // 2. X's own commit, its value's bytes altered after hashing.
    let genuine_params = tweet("880000000000000002", "tamperedword");
    let mut tampered_commit = tweet_commit(&crdt, &genuine_params, &x, 2).encode();
    tampered_commit.signature = Some(sign(&x, &tampered_commit.id));
    let mut altered = genuine_params.clone();
    let at = altered.len() - 3;
    altered[at] ^= 0x20;
    let tampered_value = Blob {
        id: replikativ::id::Id::of(&genuine_params),
        bytes: ByteBuf(altered),
    };
    // 3. An honest batch: X's commit, signed by X, with its value.
    let honest_params = tweet("880000000000000003", "honestword");
    let mut honest = tweet_commit(&crdt, &honest_params, &x, 3).encode();
    honest.signature = Some(sign(&x, &honest.id));

    let script = Arc::new(Script {
        crdt: crdt.clone(),
        batches: vec![
            batch_frames(&crdt, vec![Blob::new(forged_params)], &forged),
            batch_frames(&crdt, vec![tampered_value], &tampered_commit),
            batch_frames(&crdt, vec![Blob::new(honest_params)], &honest),
        ],
        connections: AtomicUsize::new(0),
    });
    let ph = free_port();
    let server = hostile::serve(script.clone(), ph);

    // A node serves the page; its websocket goes to the hostile server.
    let pb = free_port();
    let lb = format!("127.0.0.1:{pb}");
    let _b = Proc::spawn(
        &["peer", "--store", "b", "--listen", &lb, "--web"],
        d,
        "b.log",
    );
    wait_port(pb, T);
    let page = format!("http://{lb}/app/?crdt={crdt}&ws=ws://127.0.0.1:{ph}/");
    br.goto(&page);
    let s = wait_status(&mut br, "the honest batch after two refusals", |s| {
        s["tweets"] == 1 && s["caught_up"] == true
    });
    assert!(
        script.connections.load(Ordering::SeqCst) >= 3,
        "the page reconnected after each refusal"
    );
    assert_eq!(s["commits"], 2, "the root and the honest commit: {s}");
    assert_eq!(s["records"], 1, "only the honest batch kept: {s}");
    assert_eq!(s["heads"], json!([honest.id.to_string()]), "{s}");
    let said = notes(&mut br);
    eprintln!("browser peer, the page's notes: {said:?}");
    let forged_id = forged.id.to_string();
    let value_id = tampered_value_id(&genuine_params);
    assert!(
        said.iter()
            .any(|n| n.contains("refused") && n.contains(&forged_id) && n.contains("signature")),
        "a note refuses the forged commit {forged_id}: {said:?}"
    );
    assert!(
        said.iter()
            .any(|n| n.contains("refused") && n.contains(&value_id)),
        "a note refuses the tampered value {value_id}: {said:?}"
    );
    for word in ["forgedword", "tamperedword"] {
        assert_eq!(page_search(&mut br, word).0, 0, "{word}");
    }
    let (n, ids) = page_search(&mut br, "honestword");
    assert_eq!(
        (n, ids),
        (1, BTreeSet::from(["880000000000000003".to_owned()]))
    );

    // A reload verifies the kept record again: the honest tweet, nothing else.
    actix_rt::System::new().block_on(server.stop(false));
    br.goto(&page);
    let s = wait_status(&mut br, "the reload", |s| s["records"] == 1);
    assert_eq!(s["tweets"], 1, "{s}");
    assert_eq!(s["commits"], 2, "{s}");
    assert_eq!(page_search(&mut br, "forgedword").0, 0);
    assert_eq!(page_search(&mut br, "honestword").0, 1);
}

/// The id the tampered value claims (its genuine bytes' hash).
fn tampered_value_id(genuine: &[u8]) -> String {
    replikativ::id::Id::of(genuine).to_string()
}
