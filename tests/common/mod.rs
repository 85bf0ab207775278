//! Shared test utilities: the binary under test, ports, child processes, conditions with
//! deadlines, and the fault-injecting proxy.
#![allow(dead_code)]

pub mod browser;
pub mod cli_support;
pub mod committed;
pub mod exchange;
pub mod http;
pub mod nodes;
pub mod postgres;
pub mod proxy;
pub mod raw;
pub mod stage_support;
pub mod tweets_oracle;
pub mod wait;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `replikativ` binary built for this test run.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_replikativ"))
}

/// The repo's copy of the shipped tweets.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tweets")
}

/// The name libtest knows test `name` by, for a test that re-runs itself (or a sibling) in a
/// child process with `--exact`: `module` is the caller's `module_path!()`, whose first segment
/// (the test binary) libtest leaves out.
pub fn test_name(module: &str, name: &str) -> String {
    match module.split_once("::") {
        Some((_, path)) => format!("{path}::{name}"),
        None => name.to_string(),
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits until something listens on 127.0.0.1:`port`.
pub fn wait_port(port: u16, timeout: Duration) {
    assert!(
        wait::periodic_check(|| TcpStream::connect(("127.0.0.1", port)).is_ok(), timeout),
        "nothing listens on 127.0.0.1:{port} after {timeout:?}"
    );
}

/// Runs the binary to completion with `args`, in `cwd`.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run replikativ")
}

/// Runs the binary and asserts exit 0, returning stdout.
pub fn run_ok(args: &[&str], cwd: &Path) -> String {
    let out = run(args, cwd);
    assert!(
        out.status.success(),
        "`replikativ {}` exited {:?}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs with `--json` appended and parses the last stdout line.
pub fn run_json(args: &[&str], cwd: &Path) -> serde_json::Value {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let out = run_ok(&all, cwd);
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON in {out:?}: {e}"))
}

/// Spawns the binary in the background, logging to `log` in `cwd`.
pub fn spawn(args: &[&str], cwd: &Path, log: &str) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(cwd.join(log))
        .expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn replikativ")
}

/// Kills a child with SIGKILL and reaps it.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Sends SIGTERM.
pub fn terminate(child: &Child) {
    // SAFETY: plain kill(2) on a pid we own.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

/// Waits for a child to exit within `timeout`, returning its status.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many iterations a long loop runs: `default`, capped to `ci_cap` when `CI` is set; the
/// long mode `REPLIKATIV_LONG=N` raises every loop to at least `N`.
pub fn iterations(default: usize, ci_cap: usize) -> usize {
    if let Ok(n) = std::env::var("REPLIKATIV_LONG")
        && let Ok(n) = n.parse::<usize>()
    {
        return n.max(default);
    }
    if std::env::var_os("CI").is_some() {
        default.min(ci_cap)
    } else {
        default
    }
}

/// Appends the chunks of two growing sources in turn (a chunk to each, then a pause that
/// spreads them over the writers' flushes; nothing depends on it), then the rest of each.
pub fn grow_together<'a>(
    (f1, mut chunks1): (&Path, impl Iterator<Item = &'a [String]>),
    (f2, mut chunks2): (&Path, impl Iterator<Item = &'a [String]>),
) {
    for (x, y) in chunks1.by_ref().zip(chunks2.by_ref()) {
        append_lines(f1, x);
        append_lines(f2, y);
        std::thread::sleep(Duration::from_millis(150));
    }
    for rest in chunks1 {
        append_lines(f1, rest);
    }
    for rest in chunks2 {
        append_lines(f2, rest);
    }
}

/// Appends `lines` (each ending in a newline) to `path` in one write, as a growing source.
pub fn append_lines(path: &Path, lines: &[String]) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open source");
    f.write_all(lines.concat().as_bytes()).expect("append");
}
