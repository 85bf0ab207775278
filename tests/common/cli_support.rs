//! Helpers for the command-line tests: processes that are killed when a test fails, paths as
//! arguments, and the analysis side of a pipeline (analyze + query).

use std::path::Path;
use std::process::{Child, Output};
use std::time::Duration;

/// A child process that is SIGKILLed and reaped when dropped (a failing test leaves no
/// process behind).
pub struct Proc {
    /// The process.
    pub child: Child,
}

impl Proc {
    /// Spawns the binary (see [`super::spawn`]).
    pub fn spawn(args: &[&str], cwd: &Path, log: &str) -> Proc {
        Proc {
            child: super::spawn(args, cwd, log),
        }
    }

    /// Sends SIGTERM and waits for the exit, asserting status 0.
    pub fn terminate_ok(&mut self, what: &str, log: &Path) {
        super::terminate(&self.child);
        let status = super::wait_exit(&mut self.child, Duration::from_secs(60))
            .unwrap_or_else(|| panic!("{what} did not exit within 60 s of SIGTERM"));
        assert_eq!(
            status.code(),
            Some(0),
            "{what} exited {status:?} after SIGTERM; log:\n{}",
            tail(log)
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        super::kill(&mut self.child);
    }
}

/// A path as a command-line argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// The last few KiB of a log file, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    let start = text.len().saturating_sub(4000);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Whether `text` names line `n` ("line 12", not "line 123").
pub fn mentions_line(text: &str, n: u64) -> bool {
    let needle = format!("line {n}");
    text.match_indices(&needle).any(|(i, _)| {
        !text[i + needle.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// Runs `analyze` (without --follow) against 127.0.0.1:`port` once.
pub fn analyze_once(cwd: &Path, store: &Path, port: u16, sqlite: &Path) -> Output {
    let url = format!("ws://127.0.0.1:{port}/");
    super::run(
        &[
            "analyze",
            "--store",
            arg(store),
            "--connect",
            &url,
            "--sqlite",
            arg(sqlite),
            "--timeout",
            "30",
        ],
        cwd,
    )
}

/// `query --sqlite F <words> --json`, parsed.
pub fn query_json(cwd: &Path, sqlite: &Path, words: &[&str]) -> serde_json::Value {
    let mut args = vec!["query", "--sqlite", arg(sqlite)];
    args.extend_from_slice(words);
    super::run_json(&args, cwd)
}

/// `ops_applied` of the SQLite file, or None when it cannot be read yet.
pub fn ops_applied(cwd: &Path, sqlite: &Path) -> Option<u64> {
    let out = super::run(&["query", "--sqlite", arg(sqlite), "stats", "--json"], cwd);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last()?).ok()?;
    v["ops_applied"].as_u64()
}

/// Runs `analyze` against a peer until the SQLite file has applied `ops` records (or the
/// deadline passes); returns the last count seen.
pub fn analyze_until(
    cwd: &Path,
    store: &Path,
    port: u16,
    sqlite: &Path,
    ops: u64,
    timeout: Duration,
) -> Option<u64> {
    let mut last = None;
    super::wait::periodic_check(
        || {
            let out = analyze_once(cwd, store, port, sqlite);
            if out.status.success() {
                last = ops_applied(cwd, sqlite);
            }
            last == Some(ops)
        },
        timeout,
    );
    last
}

/// The per-account op counters of a realized SQLite file (`account_ops`, bumped on every
/// `add-tweet`: a non-idempotent effect that proves exactly-once).
pub fn account_ops(db: &Path) -> std::collections::BTreeMap<String, u64> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open sqlite");
    let mut stmt = conn
        .prepare("SELECT author_id, ops FROM account_ops")
        .expect("account_ops table");
    stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .expect("query")
        .map(|r| {
            let (a, n) = r.expect("row");
            (a, u64::try_from(n).expect("non-negative"))
        })
        .collect()
}
