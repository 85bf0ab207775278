//! The `replikativ` command line end to end (DESIGN §8), with the real binary, real processes
//! and real signals. Expected figures come from an independent oracle (`tweets_oracle`, a
//! port of cli_smoke.py's rules), never from the code under test.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::cli_support::{
    Proc, analyze_once, analyze_until, arg, mentions_line, ops_applied, query_json, tail,
};
use crate::common::tweets_oracle::{Expected, MAX_LINE, shipped_source, write_lines};
use crate::common::wait::periodic_check;
use crate::common::{data_dir, free_port, run, run_json, run_ok, wait_port};

/// The term searched for, as in cli_smoke.
const TERM: &str = "obama";

fn lines_of(file: &str) -> Vec<Vec<u8>> {
    crate::common::tweets_oracle::lines_of(&data_dir().join(file))
}

/// `log --json` of a store.
fn log_json(cwd: &Path, store: &Path) -> serde_json::Value {
    run_json(&["log", "--store", arg(store)], cwd)
}

fn assert_log(cwd: &Path, store: &Path, transactions: u64) {
    let log = log_json(cwd, store);
    assert_eq!(
        log["transactions"].as_u64(),
        Some(transactions),
        "log {log}: expected {transactions} transactions"
    );
    assert_eq!(
        log["heads"].as_array().map(Vec::len),
        Some(1),
        "log {log}: expected one head"
    );
}

/// Serves `store` with `peer` on a fresh port.
fn serve(cwd: &Path, store: &Path) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let peer = Proc::spawn(
        &["peer", "--store", arg(store), "--listen", &listen],
        cwd,
        "peer.log",
    );
    wait_port(port, Duration::from_secs(30));
    (peer, port)
}

#[test]
fn collect_peer_analyze_query_gives_the_independently_computed_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let exp = Expected::of(&lines, TERM);
    assert!(exp.records > 100 && exp.hits > 0 && exp.user_counts.len() >= 5);

    let store = d.join("collector");
    let out = run_ok(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--flush-ms",
            "50",
            "--batch",
            "40",
        ],
        d,
    );
    assert!(out.contains("3 lines skipped"), "collect said {out:?}");
    assert_log(d, &store, exp.records);
    let commits = log_json(d, &store)["commits"].as_u64();

    let (peer, port) = serve(d, &store);
    let db = d.join("analysis.sqlite");
    let out = analyze_once(d, &d.join("analysis"), port, &db);
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(peer);

    let stats = query_json(d, &db, &["stats"]);
    assert_eq!(stats["ops_applied"].as_u64(), Some(exp.records), "{stats}");
    assert_eq!(stats["tweets"].as_u64(), Some(exp.distinct), "{stats}");
    assert_eq!(stats["commits_applied"].as_u64(), commits, "{stats}");
    assert_eq!(
        query_json(d, &db, &["count"]),
        serde_json::json!({ "count": exp.distinct })
    );
    let search = query_json(d, &db, &["search", TERM]);
    assert_eq!(search["count"].as_u64(), Some(exp.hits), "{search}");
    let shown = search["tweets"].as_array().expect("tweets array");
    assert_eq!(shown.len() as u64, exp.hits.min(10));
    for t in shown {
        let text = t["text"].as_str().expect("text").to_lowercase();
        assert!(text.contains(TERM), "{t} does not mention {TERM}");
    }

    let chart = d.join("top.svg");
    let top = query_json(d, &db, &["top", "5", "--chart", arg(&chart)]);
    let counts: Vec<u64> = top["top"]
        .as_array()
        .expect("top array")
        .iter()
        .map(|r| r["tweets"].as_u64().expect("tweets"))
        .collect();
    assert_eq!(counts, exp.user_counts[..5], "{top}");
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(
        svg.contains("<svg"),
        "not an SVG: {}",
        &svg[..svg.len().min(200)]
    );

    // Options after the query words.
    let after = run_json(&["query", "top", "5", "--sqlite", arg(&db)], d);
    assert_eq!(after, top);
}

#[test]
fn garbage_and_oversized_lines_are_skipped_reported_by_line_number_and_exit_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let flat = lines_of("flat.jsonl");
    let geo = lines_of("geo_tweets.jsonl");
    let mut huge = br#"{"id":"huge","text":""#.to_vec();
    huge.resize(MAX_LINE + 100, b'a');
    huge.extend_from_slice(br#""}"#);
    let lines: Vec<Vec<u8>> = vec![
        flat[0].clone(),                                               // 1
        Vec::new(),                                                    // 2 empty
        b"not json".to_vec(),                                          // 3
        b"\xff\xfe{\"id\":\"x\",\"text\":\"y\"}".to_vec(),             // 4 not UTF-8
        br#"{"data": [{"id": "1", "username": "no text"}]}"#.to_vec(), // 5 no tweet
        b"[1, 2, 3]".to_vec(),                                         // 6 JSON, no object
        huge,                                                          // 7 over 16 MiB
        flat[1].clone(),                                               // 8
        geo[0].clone(),                                                // 9
    ];
    let garbage = [2, 3, 4, 5, 6, 7];
    let src = d.join("garbage.jsonl");
    write_lines(&src, &lines);
    let exp = Expected::of(&lines, TERM);
    assert!(exp.records >= 3);

    let store = d.join("store");
    let out = run(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--flush-ms",
            "50",
        ],
        d,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    for n in garbage {
        assert!(
            mentions_line(&stderr, n),
            "line {n} not reported:\n{stderr}"
        );
    }
    // Exactly the garbage lines are reported: the first line number of each report.
    let reported: Vec<u64> = stderr
        .lines()
        .filter(|l| l.contains("skipping"))
        .filter_map(|l| {
            let after = &l[l.find("line ")? + 5..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect();
    assert_eq!(reported, garbage, "stderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("{} lines skipped", garbage.len())),
        "stdout: {stdout}"
    );
    // The oversized line holds a valid tweet: it must not have been collected.
    assert_log(d, &store, exp.records);
}

#[test]
fn collect_follow_picks_up_appended_lines_including_a_line_written_in_two_parts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let flat = lines_of("flat.jsonl");
    let brexit = lines_of("brexit.jsonl");
    let src = d.join("tail.jsonl");
    write_lines(&src, &flat[..40]);

    let store = d.join("collector");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = d.join("collect.log");
    let mut collect = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--follow",
            "--listen",
            &listen,
            "--flush-ms",
            "50",
            "--batch",
            "25",
        ],
        d,
        "collect.log",
    );
    wait_port(port, Duration::from_secs(30));
    let (astore, db) = (d.join("analysis"), d.join("a.sqlite"));
    let wait = |lines: &[Vec<u8>], what: &str| {
        let want = Expected::of(lines, TERM).records;
        let got = analyze_until(d, &astore, port, &db, want, Duration::from_secs(90));
        assert_eq!(got, Some(want), "{what}; collector log:\n{}", tail(&log));
    };
    wait(&flat[..40], "the initial lines");

    // Append complete lines and half of the next one.
    let (head, rest) = brexit[0].split_at(brexit[0].len() / 2);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .expect("open source");
    for l in &flat[40..] {
        f.write_all(l)
            .and_then(|()| f.write_all(b"\n"))
            .expect("append");
    }
    f.write_all(head).expect("append half a line");
    f.flush().expect("flush");
    wait(&flat, "the appended complete lines");

    // Finish the line: its tweets arrive, and it was never reported as damaged.
    f.write_all(rest)
        .and_then(|()| f.write_all(b"\n"))
        .expect("append");
    f.flush().expect("flush");
    let mut all = flat.clone();
    all.push(brexit[0].clone());
    wait(&all, "the line finished after a pause");

    collect.terminate_ok("collect --follow", &log);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("skipping source line"),
        "a line was reported as skipped:\n{text}"
    );
    assert_log(d, &store, Expected::of(&all, TERM).records);
}

#[test]
fn sigterm_commits_tweets_read_from_a_stdin_that_stays_open() {
    // Regression: the reader held up to 64 tweets while blocked on stdin, so SIGTERM
    // committed nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let flat = lines_of("flat.jsonl");
    let fed = &flat[..30];
    let store = d.join("store");
    let log = d.join("collect.log");
    let out = std::fs::File::create(&log).expect("log");
    let child = Command::new(crate::common::bin())
        .args([
            "collect",
            "--store",
            arg(&store),
            "--source",
            "-",
            "--flush-ms",
            "600000",
        ])
        .current_dir(d)
        .stdin(Stdio::piped())
        .stdout(out.try_clone().expect("log"))
        .stderr(out)
        .spawn()
        .expect("spawn collect");
    let mut collect = Proc { child };
    let mut stdin = collect.child.stdin.take().expect("stdin");
    for l in fed {
        stdin
            .write_all(l)
            .and_then(|()| stdin.write_all(b"\n"))
            .expect("feed stdin");
    }
    stdin.flush().expect("flush stdin");
    // The collector's progress report shows them buffered (read, not yet committed).
    let buffered = format!("({} buffered", fed.len());
    assert!(
        periodic_check(
            || std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&buffered)),
            Duration::from_secs(30)
        ),
        "the collector never reported {buffered}; log:\n{}",
        tail(&log)
    );
    collect.terminate_ok("collect --source -", &log);
    drop(stdin);
    assert_log(d, &store, Expected::of(fed, TERM).records);
}

#[test]
fn query_answers_while_analyze_follow_writes() {
    // The realization is made to pause half-way by construction (the collector tails a file
    // that holds half the source), so queries are known to land while `analyze --follow`
    // runs with the file open, before and while it writes the second half.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let lines = shipped_source(&data_dir());
    let (first, second) = lines.split_at(lines.len() / 2);
    let half = Expected::of(first, TERM).records;
    let exp = Expected::of(&lines, TERM);
    assert!(0 < half && half < exp.records, "{half} of {}", exp.records);
    let src = d.join("source.jsonl");
    write_lines(&src, first);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let collect_log = d.join("collect.log");
    // One tweet per commit: the realizer writes many small transactions.
    let mut collect = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(&d.join("collector")),
            "--source",
            arg(&src),
            "--follow",
            "--listen",
            &listen,
            "--flush-ms",
            "20",
            "--batch",
            "1",
        ],
        d,
        "collect.log",
    );
    wait_port(port, Duration::from_secs(30));
    let db = d.join("a.sqlite");
    let url = format!("ws://127.0.0.1:{port}/");
    let log = d.join("analyze.log");
    let mut analyze = Proc::spawn(
        &[
            "analyze",
            "--store",
            arg(&d.join("analysis")),
            "--connect",
            &url,
            "--sqlite",
            arg(&db),
            "--follow",
        ],
        d,
        "analyze.log",
    );
    // The file exists and answers once its schema is written.
    assert!(
        periodic_check(|| ops_applied(d, &db).is_some(), Duration::from_secs(30)),
        "query never answered; analyze log:\n{}",
        tail(&log)
    );
    let mut seen = Vec::new();
    let mut query_until = |want: u64, what: &str| {
        let done = periodic_check(
            || {
                let out = run(&["query", "--sqlite", arg(&db), "stats", "--json"], d);
                assert!(
                    out.status.success(),
                    "query failed while analyze writes: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: serde_json::Value = serde_json::from_str(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .last()
                        .unwrap_or_default(),
                )
                .expect("stats JSON");
                let ops = v["ops_applied"].as_u64().expect("ops_applied");
                seen.push(ops);
                ops == want
            },
            Duration::from_secs(120),
        );
        assert!(
            done,
            "realization of {what} stalled at {:?} of {want}; analyze log:\n{}",
            seen.last(),
            tail(&log)
        );
    };
    query_until(half, "the first half");
    assert!(
        analyze.child.try_wait().expect("try_wait").is_none(),
        "analyze --follow exited; log:\n{}",
        tail(&log)
    );
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&src)
        .expect("open source");
    for l in second {
        f.write_all(l)
            .and_then(|()| f.write_all(b"\n"))
            .expect("append");
    }
    f.flush().expect("flush");
    query_until(exp.records, "the whole source");
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "ops went backwards: {seen:?}"
    );
    analyze.terminate_ok("analyze --follow", &log);
    collect.terminate_ok("collect --follow", &collect_log);
}

/// What the test HTTP server saw.
#[derive(Default)]
struct Seen {
    heads: Vec<String>,
}

/// Reads one request head (up to the blank line).
fn read_head(s: &mut std::net::TcpStream) -> String {
    use std::io::Read as _;
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

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| [l.as_slice(), b"\n".as_slice()].concat())
        .collect()
}

const OK_CHUNKED: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

/// A stream server: 429 (Retry-After: 1), 503, then `first` plus the first half of `cut`
/// and a dropped connection, then `rest` on a stream that stays open; later requests get an
/// open, empty stream.
fn http_server(
    first: Vec<Vec<u8>>,
    cut: Vec<u8>,
    rest: Vec<Vec<u8>>,
) -> (u16, std::sync::Arc<std::sync::Mutex<Seen>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut s) = stream else { continue };
            let head = read_head(&mut s);
            seen2.lock().expect("seen").heads.push(head);
            let reply: Vec<u8> = match n {
                0 => b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                1 => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                2 => {
                    let mut body = joined(&first);
                    body.extend_from_slice(&cut[..cut.len() / 2]);
                    [OK_CHUNKED, chunk(&body).as_slice()].concat()
                }
                3 => [OK_CHUNKED, chunk(&joined(&rest)).as_slice()].concat(),
                _ => OK_CHUNKED.to_vec(),
            };
            let _ = s.write_all(&reply).and_then(|()| s.flush());
            if n >= 3 {
                // The stream never ends: keep the connection open.
                held.push(s);
            }
            // Otherwise dropping `s` closes it (mid-chunk for n == 2: a dropped stream).
        }
    });
    (port, seen)
}

#[test]
fn http_source_survives_429_503_and_a_dropped_stream_losing_only_the_cut_line() {
    // Expectation: a streaming API resumes with new lines after a reconnect, so the line cut
    // by the drop is lost (its first half is reported as a damaged line, never glued to the
    // next); every other valid tweet arrives exactly once, and garbage is skipped.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let flat = lines_of("flat.jsonl");
    let geo = lines_of("geo_tweets.jsonl");
    let first = flat[..30].to_vec();
    let cut = flat[30].clone();
    let mut rest = flat[31..].to_vec();
    rest.insert(5, b"not json".to_vec());
    rest.insert(10, Vec::new());
    rest.insert(
        12,
        br#"{"data": [{"id": "1", "username": "no text"}]}"#.to_vec(),
    );
    rest.extend(geo.iter().cloned());
    let (port, seen) = http_server(first.clone(), cut, rest.clone());
    let delivered: Vec<Vec<u8>> = first.iter().chain(&rest).cloned().collect();
    let want = Expected::of(&delivered, TERM).records;

    let token = "s3cret-token";
    let token_file = d.join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    let store = d.join("collector");
    let listen_port = free_port();
    let listen = format!("127.0.0.1:{listen_port}");
    let url = format!("http://127.0.0.1:{port}/stream");
    let log = d.join("collect.log");
    let mut collect = Proc::spawn(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            &url,
            "--token-file",
            arg(&token_file),
            "--listen",
            &listen,
            "--flush-ms",
            "50",
            "--batch",
            "20",
        ],
        d,
        "collect.log",
    );
    wait_port(listen_port, Duration::from_secs(30));
    let got = analyze_until(
        d,
        &d.join("analysis"),
        listen_port,
        &d.join("a.sqlite"),
        want,
        Duration::from_secs(90),
    );
    assert_eq!(got, Some(want), "collector log:\n{}", tail(&log));
    collect.terminate_ok("collect from HTTP", &log);
    assert_log(d, &store, want);

    let heads = &seen.lock().expect("seen").heads;
    assert!(heads.len() >= 4, "only {} requests", heads.len());
    for h in heads {
        assert!(
            h.lines().any(|l| {
                l.split_once(':').is_some_and(|(k, v)| {
                    k.eq_ignore_ascii_case("authorization") && v.trim() == format!("Bearer {token}")
                })
            }),
            "request without the bearer token:\n{h}"
        );
    }
}

#[test]
fn demo_run_from_another_directory_writes_its_chart_under_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let out_dir = dir.path().join("demo-out");
    let out = run_ok(&["demo", "--dir", arg(&out_dir)], &elsewhere);
    let chart: PathBuf = out
        .lines()
        .find_map(|l| l.strip_prefix("chart:"))
        .map(|p| PathBuf::from(p.trim()))
        .unwrap_or_else(|| panic!("no chart path printed:\n{out}"));
    assert!(
        chart.starts_with(std::fs::canonicalize(&out_dir).expect("out dir")),
        "chart {} not under --dir",
        chart.display()
    );
    let svg = std::fs::read_to_string(&chart).expect("chart exists");
    assert!(svg.contains("<svg"));
    assert_eq!(
        std::fs::read_dir(&elsewhere).expect("cwd").count(),
        0,
        "demo wrote into its current directory"
    );
}

/// A node's store is closed cleanly when its process ends — `demo` (two nodes with a
/// connection between them) and a `peer` stopped by SIGTERM while another is connected — or
/// the next start would have redb repair the whole file first (a read-only open refuses such
/// a store, so it tells). The listener's server once outlived the node and held the store.
#[test]
fn stores_are_closed_cleanly_when_a_process_ends_with_a_peer_connected() {
    use crate::common::cli_support::{Proc, tail};
    use replikativ::store::Store;
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    run_ok(&["demo", "--dir", "demo"], d);
    for s in ["collector-store", "analysis-store"] {
        if let Err(e) = Store::open_read_only(&d.join("demo").join(s)) {
            panic!("the demo's {s}: {e}");
        }
    }
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut holder = Proc::spawn(
        &["peer", "--store", "h", "--listen", &listen],
        d,
        "holder.log",
    );
    wait_port(port, Duration::from_secs(30));
    let url = format!("ws://{listen}/");
    let mut dialler = Proc::spawn(
        &["peer", "--store", "p", "--connect", &url],
        d,
        "dialler.log",
    );
    assert!(
        periodic_check(
            || tail(&d.join("holder.log")).contains("peer authenticated"),
            Duration::from_secs(30)
        ),
        "the dialler never connected; holder log:\n{}",
        tail(&d.join("holder.log"))
    );
    holder.terminate_ok("the holder", &d.join("holder.log"));
    if let Err(e) = Store::open_read_only(&d.join("h")) {
        panic!("the holder's store, a peer connected at SIGTERM: {e}");
    }
    dialler.terminate_ok("the dialler", &d.join("dialler.log"));
    if let Err(e) = Store::open_read_only(&d.join("p")) {
        panic!("the dialler's store: {e}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    for args in [
        &["query", "--sqlite", "x.sqlite"][..],
        &["query", "--sqlite", "x.sqlite", "count", "--frobnicate"][..],
        &["collect", "--store", "s", "--source", "f", "--frobnicate"][..],
        &["collect", "--store", "s", "--source", "f", "--batch", "0"][..],
        &["nonsense"][..],
    ] {
        let out = run(args, d);
        assert_eq!(
            out.status.code(),
            Some(2),
            "`replikativ {}`: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn failures_exit_1_naming_what_was_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let check = |args: &[&str], names: &str| {
        let out = run(args, d);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "`{}`: {stderr}", args.join(" "));
        assert!(
            stderr.contains(names),
            "`{}` does not name {names}: {stderr}",
            args.join(" ")
        );
    };
    check(
        &[
            "collect",
            "--store",
            "s",
            "--source",
            "no-such-tweets.jsonl",
        ],
        "no-such-tweets.jsonl",
    );
    check(
        &["query", "--sqlite", "no-such.sqlite", "count"],
        "no-such.sqlite",
    );
    assert!(!d.join("no-such.sqlite").exists(), "query created the file");

    let url = format!("ws://127.0.0.1:{}/", free_port());
    let sqlite = d.join("a.sqlite");
    let store = d.join("a");
    let mut analyze = Proc::spawn(
        &[
            "analyze",
            "--store",
            arg(&store),
            "--connect",
            &url,
            "--sqlite",
            arg(&sqlite),
            "--timeout",
            "2",
        ],
        d,
        "analyze.log",
    );
    let status = crate::common::wait_exit(&mut analyze.child, Duration::from_secs(30))
        .expect("analyze --timeout 2 gave up within 30 s");
    let log = std::fs::read_to_string(d.join("analyze.log")).unwrap_or_default();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains(&url), "the error does not name {url}: {log}");
}
