//! In-process nodes for replication tests: start, commit, wait for conditions, realize into a
//! `MemorySink`, and read the process's resident memory.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use replikativ::crdt::CrdtKey;
use replikativ::id::Id;
use replikativ::node::{Node, RealizerSpec, StoreLocation};
use replikativ::realize::realizer::ConflictPolicy;
use replikativ::realize::{MemorySink, Sink};

use super::wait::wait_until;

/// A fresh CDVCS key of `user`.
pub fn key(user: &str) -> CrdtKey {
    CrdtKey::new(user, uuid::Uuid::new_v4())
}

/// One `add` transaction whose params are `{"n": n}` (unique per `n`, so never deduplicated).
pub fn op(n: u64) -> (String, Vec<u8>) {
    let params = rmp_serde::to_vec(&serde_json::json!({ "n": n })).expect("encode params");
    ("add".into(), params)
}

/// An `add` transaction carrying `n` and `size` bytes of padding.
pub fn big_op(n: u64, size: usize) -> (String, Vec<u8>) {
    let pad = "x".repeat(size);
    let params =
        rmp_serde::to_vec(&serde_json::json!({ "n": n, "pad": pad })).expect("encode params");
    ("add".into(), params)
}

/// A node on an in-memory store listening on a free loopback port, holding `key`.
pub async fn server(key: &CrdtKey) -> Node {
    Node::builder()
        .name("server")
        .store(StoreLocation::Memory)
        .listen("127.0.0.1:0")
        .cdvcs(key.clone())
        .start()
        .await
        .expect("start server node")
}

/// A node on an in-memory store connected to `url`, holding `key`.
pub async fn client(url: &str, key: &CrdtKey) -> Node {
    Node::builder()
        .name("client")
        .store(StoreLocation::Memory)
        .connect(url)
        .cdvcs(key.clone())
        .start()
        .await
        .expect("start client node")
}

/// A client node connected to `url` that realizes `key` into a fresh `MemorySink` (with
/// `Union`, so concurrent branches are applied too).
pub async fn realizing_client(url: &str, key: &CrdtKey) -> (Node, MemorySink) {
    realizing_client_with(url, key, |b| b).await
}

/// Like [`realizing_client`], with the builder adjusted by `configure` (e.g. TLS roots).
pub async fn realizing_client_with(
    url: &str,
    key: &CrdtKey,
    configure: impl FnOnce(replikativ::node::NodeBuilder) -> replikativ::node::NodeBuilder,
) -> (Node, MemorySink) {
    let sink = MemorySink::new();
    let opener = sink.clone();
    let node = configure(Node::builder())
        .name("realizing-client")
        .store(StoreLocation::Memory)
        .connect(url)
        .realize(RealizerSpec {
            name: "memory".into(),
            key: key.clone(),
            open: Arc::new(move || Ok(Box::new(opener.clone()) as Box<dyn Sink>)),
            policy: ConflictPolicy::Union,
        })
        .start()
        .await
        .expect("start realizing node");
    (node, sink)
}

/// The ws:// URL a listening node serves.
pub fn url(node: &Node) -> String {
    format!("ws://{}/", node.listen_addr().expect("node listens"))
}

/// The node's current heads of `key` (empty when it does not hold it).
pub fn heads(node: &Node, key: &CrdtKey) -> BTreeSet<Id> {
    node.replica(key)
        .map(|r| r.heads().into_iter().collect())
        .unwrap_or_default()
}

/// How many commits (root included) the node holds for `key`.
pub fn commit_count(node: &Node, key: &CrdtKey) -> usize {
    node.replica(key)
        .map(|r| r.state().read().map(|s| s.len()).unwrap_or(0))
        .unwrap_or(0)
}

/// Commits `op(n)` for each `n` in `range` on `node`, one commit each.
pub async fn commit_range(node: &Node, key: &CrdtKey, range: std::ops::Range<u64>) -> Vec<Id> {
    let stage = node.stage();
    let mut ids = Vec::new();
    for n in range {
        ids.push(stage.transact(key, vec![op(n)]).await.expect("transact"));
    }
    ids
}

/// Waits until both nodes hold the same heads of `key`, and those are `expect` when given.
pub async fn wait_converged(a: &Node, b: &Node, key: &CrdtKey, timeout: Duration) {
    wait_until(
        "two nodes to hold the same heads",
        timeout,
        || {
            let (ha, hb) = (heads(a, key), heads(b, key));
            !ha.is_empty() && ha == hb
        },
        || {
            format!(
                "a: {} commits {:?}, b: {} commits {:?}",
                commit_count(a, key),
                heads(a, key),
                commit_count(b, key),
                heads(b, key)
            )
        },
    )
    .await;
}

/// Waits until a realizer has applied exactly `ops` ops and checks they are `n`s `0..ops`,
/// each once.
pub async fn wait_realized_exactly(sink: &MemorySink, ops: usize, timeout: Duration) {
    wait_until(
        "the realizer to apply every op",
        timeout,
        || sink.snapshot().ops.len() >= ops,
        || format!("{} of {ops} ops applied", sink.snapshot().ops.len()),
    )
    .await;
    let snap = sink.snapshot();
    let mut ns: Vec<u64> = snap
        .ops
        .iter()
        .map(|o| o.params["n"].as_u64().expect("n"))
        .collect();
    ns.sort_unstable();
    let expect: Vec<u64> = (0..ops as u64).collect();
    assert_eq!(ns, expect, "every op realized exactly once");
}

/// Runs `fut` with a deadline, panicking with `what` on timeout.
pub async fn within<T>(what: &str, timeout: Duration, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(timeout, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {timeout:?}"),
    }
}

/// The process's resident set size in KiB (VmRSS).
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Samples the process's resident memory every few milliseconds until [`RssPeak::finish`].
pub struct RssPeak {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl RssPeak {
    /// Starts sampling.
    pub fn start() -> RssPeak {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = rss_kib();
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(rss_kib());
                std::thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss_kib())
        });
        RssPeak { stop, handle }
    }

    /// Stops sampling; the highest resident size seen, in KiB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.join().expect("sampler")
    }
}

/// Serializes the tests of one binary that measure memory (they share the process).
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}
