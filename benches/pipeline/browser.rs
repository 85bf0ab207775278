//! The browser peer (`browser`, DESIGN §15): the size of the WebAssembly build (raw and
//! gzip), and a headless Chromium's catch-up of 10^4 tweets (quick: 10^3;
//! `BENCH_BROWSER_TWEETS` overrides) from a node serving the page at `/app` — from opening
//! the page until it holds the node's heads (every hash, signature and writer rule checked in
//! wasm, every batch kept in IndexedDB before it is applied) — against an empty native node
//! catching up the same history from the same node in the same run; the bytes each received
//! and the wasm heap after the catch-up (wasm32 caps it at 4 GiB).
//!
//! The tweets are the shipped sample repeated with fresh ids (unique), 1,000 per commit as a
//! collector commits them. Without Debian's `chromium` and `chromium-driver` the browser
//! figures are skipped, loudly (and with `CI` set the harness fails, as the tests do).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use replikativ::node::Node;

use crate::common::{TweetGen, key, replica, secs, thousands, txs, url_of, wait_heads};
use crate::ingest::PER_COMMIT;

#[allow(dead_code)]
#[path = "../../tests/common/browser.rs"]
mod webdriver;

/// The committed wasm build served at `/app`.
fn wasm_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("web/pkg/replikativ_web_bg.wasm")
}

/// `bytes` compressed by `gzip -9` (what a web server would send with `Content-Encoding:
/// gzip`); `None` without a gzip binary.
fn gzip_len(bytes: &[u8]) -> Option<usize> {
    let mut child = Command::new("gzip")
        .arg("-9c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    out.status.success().then_some(out.stdout.len())
}

/// What the page measured.
struct PageRun {
    /// From opening the page until `window.replikativ.ready` (wasm loaded, IndexedDB open).
    ready: Duration,
    /// From opening the page until it holds the node's heads.
    caught_up: Duration,
    status: serde_json::Value,
    heap: u64,
}

/// Opens `url` and polls the page until its heads are `heads` (hex).
fn page_catch_up(br: &mut webdriver::Browser, url: &str, heads: &[String]) -> PageRun {
    let limit = Duration::from_secs(3600);
    let start = Instant::now();
    br.goto(url);
    let mut ready = None;
    loop {
        let s = br.execute(
            "return window.replikativ && window.replikativ.ready ? \
             window.replikativ.status() : null;",
            vec![],
        );
        if !s.is_null() {
            ready.get_or_insert_with(|| start.elapsed());
            let theirs: Vec<String> = s["heads"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|h| h.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if theirs == heads && s["caught_up"] == true {
                let caught_up = start.elapsed();
                let heap = br
                    .execute("return window.replikativ.heap();", vec![])
                    .as_u64()
                    .unwrap_or(0);
                return PageRun {
                    ready: ready.unwrap_or(caught_up),
                    caught_up,
                    status: s,
                    heap,
                };
            }
        }
        assert!(
            start.elapsed() < limit,
            "the page did not catch up in {limit:?}: {s}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs the browser scenario in `dir` with `n` tweets.
pub async fn run(dir: &Path, n: usize) {
    println!("\n## browser peer (`BENCH_ONLY=browser`)\n");
    let wasm = std::fs::read(wasm_path()).expect("the committed wasm build");
    let gz = gzip_len(&wasm).map_or_else(|| "(no gzip)".to_owned(), |g| thousands(g as u64));
    println!(
        "web/pkg/replikativ_web_bg.wasm: {} bytes, gzip -9: {gz} bytes",
        thousands(wasm.len() as u64)
    );
    let Some(browser) = webdriver::Browser::start("the browser bench") else {
        return;
    };
    println!(
        "chromium: {}",
        super::shell("/usr/bin/chromium", &["--version"])
    );

    // The node that serves the history and the page.
    let a = Node::builder()
        .name("a")
        .store_dir(dir.join("a"))
        .cdvcs(key())
        .listen("127.0.0.1:0")
        .web(key())
        .start()
        .await
        .expect("node a");
    let stage = a.stage();
    let mut source = TweetGen::new();
    let mut done = 0;
    while done < n {
        let values = source.batch(PER_COMMIT.min(n - done));
        done += values.len();
        stage.transact(&key(), txs(values)).await.expect("transact");
    }
    let heads = replica(&a).heads();
    let hex: Vec<String> = heads.iter().map(|h| h.to_hex()).collect();
    let commits = n.div_ceil(PER_COMMIT);

    // The baseline: an empty native node dials and catches up (durable redb store).
    let t = Instant::now();
    let b = Node::builder()
        .name("b")
        .store_dir(dir.join("b"))
        .cdvcs(key())
        .connect(url_of(&a))
        .start()
        .await
        .expect("node b");
    wait_heads(&b, &heads, Duration::from_secs(3600)).await;
    let native = t.elapsed();
    let native_in = b.peers().metrics().bytes_in.load(Ordering::Relaxed);
    b.shutdown().await;

    // The page, in a fresh browser profile: nothing in IndexedDB.
    let url = format!(
        "http://{}/app/?crdt={}",
        a.listen_addr().expect("listening"),
        key()
    );
    let (browser, page) = tokio::task::spawn_blocking(move || {
        let mut browser = browser;
        let page = page_catch_up(&mut browser, &url, &hex);
        (browser, page)
    })
    .await
    .expect("browser thread");
    drop(browser);
    a.shutdown().await;

    let tweets = page.status["tweets"].as_u64().unwrap_or(0);
    assert_eq!(
        tweets, n as u64,
        "the page holds every tweet: {}",
        page.status
    );
    let received = page.status["received_bytes"].as_u64().unwrap_or(0);
    println!(
        "{} tweets in {commits} commits of {PER_COMMIT}; the page: ready (wasm loaded, \
         IndexedDB open) after {}, caught up {} later; {} records kept in IndexedDB",
        thousands(n as u64),
        secs(page.ready),
        secs(page.caught_up.saturating_sub(page.ready)),
        page.status["records"]
    );
    println!(
        "\n| catching up {} tweets | time | tweets/s | bytes received |",
        thousands(n as u64)
    );
    println!("|---|---:|---:|---:|");
    println!(
        "| Chromium page (wasm, IndexedDB), from opening the page | {} | {} | {} |",
        secs(page.caught_up),
        thousands((n as f64 / page.caught_up.as_secs_f64()) as u64),
        thousands(received)
    );
    println!(
        "| native node (redb), from dialling | {} | {} | {} |",
        secs(native),
        thousands((n as f64 / native.as_secs_f64()) as u64),
        thousands(native_in)
    );
    println!(
        "\nwasm heap after the catch-up: {:.1} MiB ({:.4} of the 4 GiB wasm32 limit)",
        page.heap as f64 / (1 << 20) as f64,
        page.heap as f64 / (4u64 << 30) as f64
    );
}
