//! `collect --source http://…` against a real loopback HTTP/1.1 server started by the test
//! (DESIGN §8). A stream that ends or fails is requested again, but after a growing wait
//! (`collector::http::reconnect_policy`), so a server that closes at once or serves a finite
//! file is not hammered.
//!
//! Regression (issue 12): a finite JSON-lines file served over HTTP was requested about 450
//! times in 20 s, because a stream that ended after delivering data reset the backoff.
//!
//! The request bound is derived from the reconnect constants and the process's measured
//! lifetime: the waits have a lower edge, so a slow machine can only make fewer requests.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use replikativ::collector::http::{
    MAX_WAIT, RECONNECT_INITIAL, RECONNECT_JITTER, RECONNECT_MULTIPLIER,
};

use crate::common::cli_support::{Proc, arg, tail};
use crate::common::committed::{store_exists, store_tweet_ids};
use crate::common::tweets_oracle::{check_each_once, shipped_source, source_tweets};
use crate::common::wait::periodic_check;
use crate::common::{data_dir, wait_exit};

/// How long each collector runs before SIGTERM.
const WINDOW: Duration = Duration::from_secs(8);
/// Deadline for conditions the test waits on.
const T: Duration = Duration::from_secs(60);

/// How the server answers every request.
#[derive(Clone)]
enum Reply {
    /// 200 with this body (Content-Length), then the connection closes.
    Body(Vec<u8>),
    /// Closes the connection without answering.
    Hangup,
    /// 200 with this body, then the connection stays open (an endless stream gone quiet).
    Open(Vec<u8>),
}

/// A loopback HTTP/1.1 server that answers every request with one [`Reply`] and counts the
/// requests; it stops when dropped.
struct Server {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(reply: Reply) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut s) = conn else { continue };
                if !read_head(&mut s).starts_with("GET ") {
                    continue;
                }
                counted.fetch_add(1, Ordering::SeqCst);
                if let Reply::Open(body) = &reply {
                    // Chunked: one chunk with the body, and no last chunk (the stream goes on).
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
                         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                        body.len()
                    );
                    let _ = s
                        .write_all(head.as_bytes())
                        .and_then(|()| s.write_all(body))
                        .and_then(|()| s.write_all(b"\r\n"))
                        .and_then(|()| s.flush());
                    let held = stopped.clone();
                    std::thread::spawn(move || {
                        while !held.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        drop(s);
                    });
                    continue;
                }
                if let Reply::Body(body) = &reply {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s
                        .write_all(head.as_bytes())
                        .and_then(|()| s.write_all(body))
                        .and_then(|()| s.flush());
                }
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        });
        Server {
            port,
            requests,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sample.jsonl", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request head (up to the blank line).
fn read_head(s: &mut TcpStream) -> String {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The most requests of one stream within `window` of the collector's start: the first at
/// once, each later one after at least the lower jitter edge of its wait (with 1 s doubling
/// and 20 % jitter: after 0.8, 2.4, 5.6, 12 s…, so 4 in an 8 s window). No stream here
/// delivers data for anything near `STABLE_UPTIME` (each body is sent at once), so the
/// sequence never starts again.
fn max_requests(window: Duration) -> usize {
    let slack = Duration::from_millis(1);
    let (mut n, mut at, mut nominal) = (1, Duration::ZERO, RECONNECT_INITIAL);
    loop {
        at += nominal.min(MAX_WAIT).mul_f64(1.0 - RECONNECT_JITTER) - slack;
        if at > window {
            return n;
        }
        n += 1;
        nominal = nominal.mul_f64(RECONNECT_MULTIPLIER);
    }
}

/// Runs `collect` from `server` for [`WINDOW`] (longer when `ready` takes longer to hold),
/// then SIGTERMs it and asserts exit 0 and the request bound; returns the log's text.
fn collect_for_a_window(
    d: &Path,
    store: &Path,
    server: &Server,
    ready: impl Fn(&str) -> bool,
) -> String {
    let log = d.join("collect.log");
    let started = Instant::now();
    let mut collect = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(store),
            "--source",
            &server.url(),
            "--flush-ms",
            "50",
        ],
        d,
        "collect.log",
    );
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        periodic_check(|| server.requests() >= 2 && ready(&text()), T),
        "the stream was requested {} times and the collector is not ready; log:\n{}",
        server.requests(),
        tail(&log)
    );
    // The observation window: how often the collector asks in this time is the figure
    // under test, so this is a fixed span rather than a condition.
    std::thread::sleep(WINDOW.saturating_sub(started.elapsed()));
    crate::common::terminate(&collect.child);
    let status = wait_exit(&mut collect.child, T).expect("collect exits after SIGTERM");
    let lived = started.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "collect exited {status:?}; log:\n{}",
        tail(&log)
    );
    let (requests, bound) = (server.requests(), max_requests(lived));
    eprintln!("{requests} requests in {lived:?} (at most {bound} under the backoff)");
    assert!(
        requests <= bound,
        "{requests} requests in {lived:?}: at most {bound} fit the reconnect backoff; log:\n{}",
        tail(&log)
    );
    let text = text();
    let logged = text.matches("requesting again in").count();
    assert!(
        logged + 1 >= requests,
        "{requests} requests but {logged} reconnects logged with their wait; log:\n{}",
        tail(&log)
    );
    text
}

/// The tweets the collector reports as collected so far (its progress line).
fn collected(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| {
            l.strip_prefix("collected ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_finite_file_served_over_http_is_requested_with_backoff_and_each_tweet_committed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let source = source_tweets(&lines);
    let total = source.len() as u64;
    let body: Vec<u8> = lines
        .iter()
        .flat_map(|l| [l.as_slice(), b"\n"].concat())
        .collect();
    let server = Server::start(Reply::Body(body));
    let store = d.join("store");
    // SIGTERM once the whole file was read at least once and committed (the collector's
    // progress line shows at least as many tweets as the source holds).
    collect_for_a_window(d, &store, &server, |log| collected(log) >= total);
    // Every request served the whole file again: each tweet id is still committed once.
    if let Err(e) = check_each_once(source.keys(), &store_tweet_ids(&store)) {
        panic!("after {} requests of the same file: {e}", server.requests());
    }
}

#[test]
fn a_server_that_answers_an_empty_body_is_not_hammered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = Server::start(Reply::Body(Vec::new()));
    let store = d.join("store");
    collect_for_a_window(d, &store, &server, |_| true);
    assert!(
        !store_exists(&store) || store_tweet_ids(&store).is_empty(),
        "tweets from an empty body"
    );
}

#[test]
fn a_server_that_hangs_up_without_answering_is_not_hammered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let server = Server::start(Reply::Hangup);
    collect_for_a_window(d, &d.join("store"), &server, |_| true);
}

/// The tweets the collector holds uncommitted (its progress line's "N buffered").
fn buffered(log: &str) -> u64 {
    log.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(" commits (")?;
            rest.split(' ').next()?.parse().ok()
        })
        .next_back()
        .unwrap_or(0)
}

/// SIGTERM commits what an HTTP stream delivered (it cannot be read again): a stream that
/// stays open and quiet, a collector that would only flush in ten minutes.
#[test]
fn sigterm_commits_every_tweet_an_endless_stream_delivered_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let source = source_tweets(&lines);
    let total = source.len() as u64;
    let body: Vec<u8> = lines
        .iter()
        .flat_map(|l| [l.as_slice(), b"\n"].concat())
        .collect();
    let server = Server::start(Reply::Open(body));
    let store = d.join("store");
    let log = d.join("collect.log");
    let mut collect = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            &server.url(),
            "--flush-ms",
            "600000",
            "--batch",
            "100000",
        ],
        d,
        "collect.log",
    );
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        periodic_check(|| buffered(&text()) == total, T),
        "the collector never held all {total} tweets; log:\n{}",
        tail(&log)
    );
    crate::common::terminate(&collect.child);
    let status = wait_exit(&mut collect.child, T).expect("collect exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", tail(&log));
    if let Err(e) = check_each_once(source.keys(), &store_tweet_ids(&store)) {
        panic!("after SIGTERM: {e}");
    }
    assert_eq!(server.requests(), 1, "the open stream was requested once");
}
