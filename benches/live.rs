//! Live latency through the command line (issue 16): a line appended to the file that
//! `collect --follow --flush-ms 1 --batch 1 --listen` tails → the tweet's row in the SQLite
//! file of `analyze --follow` connected to it (redb durable on both sides, SQLite as shipped).
//!
//! Two runs in the same process, same data: the followed file watched by change notification
//! (as shipped) and polled (`REPLIKATIV_FOLLOW_POLL=1`, the fallback, which was the only way
//! before). The clock starts just before the append (write + flush of one line) and stops when
//! a reader sees the row (SQLite polled every 0.5 ms from this process, so that much is
//! included). Release binary of this build; plain timing (`harness = false`).
//!
//! Then the same path in one process without the command line: one tweet transacted on node A
//! (`Stage::transact`, durable) → its row in node B's SQLite (B replicates A over a loopback
//! websocket into its own durable store and realizes it with the shipped tweet sink).
//!
//! `BENCH_QUICK=1`: 10 samples per mode (seconds, for CI). Default: 100.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_replikativ"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Kills its process when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], cwd: &Path, poll: bool, log: &str) -> Proc {
    let log = std::fs::File::create(cwd.join(log)).expect("log file");
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if poll {
        cmd.env("REPLIKATIV_FOLLOW_POLL", "1");
    }
    Proc(cmd.spawn().expect("spawn replikativ"))
}

/// Sample tweets (one per line of the shipped flat file) as JSON objects.
fn templates() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tweets/flat.jsonl");
    let text = std::fs::read_to_string(&path).expect("data/tweets/flat.jsonl");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("id").is_some_and(Value::is_string))
        .collect()
}

/// Tweet `n` of run `run`: a sample tweet under a fresh id.
fn line(templates: &[Value], run: &str, n: usize) -> (String, String) {
    let mut t = templates[n % templates.len()].clone();
    let id = format!("{run}{n:09}");
    t["id"] = Value::String(id.clone());
    (id, format!("{t}\n"))
}

fn has_row(db: &Path, id: &str) -> bool {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return false;
    };
    conn.query_row("SELECT 1 FROM tweets WHERE id = ?1", [id], |_| Ok(()))
        .is_ok()
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// Latencies (ms) of `samples` appended lines, in order.
fn measure(poll: bool, samples: usize, templates: &[Value]) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let source = cwd.join("source.jsonl");
    let run = if poll { "7" } else { "8" };
    let (first_id, first) = line(templates, run, 0);
    std::fs::write(&source, first).expect("write source");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let url = format!("ws://{listen}/");
    let _collector = spawn(
        &[
            "collect",
            "--store",
            "c",
            "--source",
            "source.jsonl",
            "--follow",
            "--flush-ms",
            "1",
            "--batch",
            "1",
            "--listen",
            &listen,
        ],
        cwd,
        poll,
        "collect.log",
    );
    let db = cwd.join("a.sqlite");
    wait_for("the collector to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&listen).is_ok()
    });
    let _analyzer = spawn(
        &[
            "analyze",
            "--store",
            "a",
            "--connect",
            &url,
            "--sqlite",
            "a.sqlite",
            "--follow",
        ],
        cwd,
        poll,
        "analyze.log",
    );
    wait_for("the first tweet", Duration::from_secs(60), || {
        has_row(&db, &first_id)
    });
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&source)
        .expect("open source");
    let mut out = Vec::with_capacity(samples);
    for n in 1..=samples {
        let (id, text) = line(templates, run, n);
        let start = Instant::now();
        file.write_all(text.as_bytes()).expect("append");
        file.flush().expect("flush");
        wait_for("an appended tweet", Duration::from_secs(30), || {
            has_row(&db, &id)
        });
        out.push(start.elapsed().as_secs_f64() * 1e3);
        // Appends spaced apart, so each is measured alone (not behind the previous one).
        std::thread::sleep(Duration::from_millis(20));
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// In-process latencies (ms): transact one tweet on A → row in B's SQLite.
fn measure_nodes(samples: usize, templates: &[Value]) -> (Vec<f64>, Vec<f64>) {
    use replikativ::crdt::CrdtKey;
    use replikativ::node::{Node, RealizerSpec};
    use replikativ::realize::realizer::ConflictPolicy;
    use replikativ::realize::{Sink, SinkError};
    use std::sync::Arc;

    let dir = tempfile::tempdir().expect("temp dir");
    let key = CrdtKey::new("mail:bench@replikativ.io", uuid::Uuid::from_u128(0x11fe));
    let db = dir.path().join("b.sqlite");
    let sink_path = db.clone();
    let open = Arc::new(move || -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(replikativ::tweets::open_sink(&sink_path)?))
    });
    actix_rt::System::new().block_on(async {
        let a = Node::builder()
            .name("a")
            .store_dir(dir.path().join("a"))
            .listen("127.0.0.1:0")
            .cdvcs(key.clone())
            .start()
            .await
            .expect("node a");
        let url = format!("ws://{}/", a.listen_addr().expect("listening"));
        let b = Node::builder()
            .name("b")
            .store_dir(dir.path().join("b"))
            .connect(url)
            .realize(RealizerSpec {
                name: "sqlite".into(),
                key: key.clone(),
                open,
                policy: ConflictPolicy::Wait,
            })
            .start()
            .await
            .expect("node b");
        let stage = a.stage();
        stage.create_cdvcs(&key).await.expect("create");
        let mut out = Vec::with_capacity(samples);
        let mut local = Vec::with_capacity(samples);
        for n in 0..=samples {
            let (id, text) = line(templates, "6", n);
            let records = replikativ::tweets::tweets_in_line(text.trim_end().as_bytes())
                .expect("a tweet line");
            let params = replikativ::tweets::encode_params(&records[0].params);
            let start = Instant::now();
            stage
                .transact(
                    &key,
                    vec![(replikativ::tweets::ADD_TWEET.to_string(), params)],
                )
                .await
                .expect("transact");
            let committed = start.elapsed();
            let limit = Duration::from_secs(30);
            while !has_row(&db, &id) {
                assert!(start.elapsed() < limit, "timed out waiting for tweet {id}");
                actix_rt::time::sleep(Duration::from_micros(500)).await;
            }
            // The first sample also waits for the connection; it is not counted.
            if n > 0 {
                out.push(start.elapsed().as_secs_f64() * 1e3);
                local.push(committed.as_secs_f64() * 1e3);
            }
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        b.shutdown().await;
        a.shutdown().await;
        (out, local)
    })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let samples = if quick { 10 } else { 100 };
    let templates = templates();
    let (mut lat, mut local) = measure_nodes(samples, &templates);
    lat.sort_by(f64::total_cmp);
    local.sort_by(f64::total_cmp);
    println!(
        "## Live latency between two nodes (transact on A → row in B's SQLite), {samples} samples\n"
    );
    println!("| path | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    println!(
        "| transact → replicate → realize | {:.1} | {:.1} | {:.1} | {:.1} |",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat[lat.len() - 1]
    );
    println!(
        "| baseline: the durable commit on A alone (`transact` returning) | {:.1} | {:.1} | {:.1} | {:.1} |\n",
        percentile(&local, 0.5),
        percentile(&local, 0.9),
        percentile(&local, 0.99),
        local[local.len() - 1]
    );
    println!(
        "end to end p50 / local commit p50 = {:.2}\n",
        percentile(&lat, 0.5) / percentile(&local, 0.5).max(f64::MIN_POSITIVE)
    );
    println!(
        "## Live latency through the CLI (append → row in analyze's SQLite), {samples} samples\n"
    );
    println!("| followed file | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    let mut p50s = Vec::new();
    for (name, poll) in [
        ("watched (inotify, shipped)", false),
        ("polled (fallback)", true),
    ] {
        let mut lat = measure(poll, samples, &templates);
        lat.sort_by(f64::total_cmp);
        let p50 = percentile(&lat, 0.5);
        p50s.push(p50);
        println!(
            "| {name} | {p50:.1} | {:.1} | {:.1} | {:.1} |",
            percentile(&lat, 0.9),
            percentile(&lat, 0.99),
            lat[lat.len() - 1]
        );
    }
    println!(
        "\nwatched p50 / polled p50 = {:.2}",
        p50s[0] / p50s[1].max(f64::MIN_POSITIVE)
    );
}
