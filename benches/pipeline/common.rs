//! Shared pieces of the pipeline benchmark: the tweet generator, nodes over store dirs,
//! waiting for replicas to agree, store histories built directly, and formatting.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use replikativ::crdt::{Cdvcs, CrdtKey, Transaction};
use replikativ::id::Id;
use replikativ::identity::Keypair;
use replikativ::node::Node;
use replikativ::peer::tls::{ClientTls, ServerTls};
use replikativ::replica::ReplicaShared;
use replikativ::store::{Store, WriteBatch, keys};
use replikativ::tweets::{ADD_TWEET, SAMPLE, encode_params, tweets_in_line};
use serde_json::Value;
use uuid::Uuid;

/// The CDVCS every scenario writes to.
pub fn key() -> CrdtKey {
    CrdtKey::new("mail:bench@replikativ.io", Uuid::from_u128(0xbe4c))
}

/// The shipped sample tweets, repeated with fresh ids (`<id>-<counter>`) as long as needed.
pub struct TweetGen {
    base: Vec<Value>,
    next: u64,
}

impl TweetGen {
    /// Parses every tweet of [`SAMPLE`].
    pub fn new() -> TweetGen {
        let mut base = Vec::new();
        for (_, contents) in SAMPLE {
            for line in contents.lines() {
                if let Ok(records) = tweets_in_line(line.as_bytes()) {
                    base.extend(records.into_iter().map(|r| r.params));
                }
            }
        }
        assert!(!base.is_empty(), "the compiled-in sample holds tweets");
        TweetGen { base, next: 0 }
    }

    /// Number of distinct sample tweets.
    pub fn distinct(&self) -> usize {
        self.base.len()
    }

    /// The next `n` tweets as `add-tweet` params bytes.
    pub fn batch(&mut self, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|_| {
                let i = self.next;
                self.next += 1;
                let mut params = self.base[(i % self.base.len() as u64) as usize].clone();
                let id = params["id"].as_str().unwrap_or("tweet").to_string();
                params["id"] = Value::String(format!("{id}-{i}"));
                encode_params(&params)
            })
            .collect()
    }
}

/// `(op, params)` transactions of one commit.
pub fn txs(values: Vec<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    values
        .into_iter()
        .map(|v| (ADD_TWEET.to_string(), v))
        .collect()
}

/// How a node authors its commits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authoring {
    /// The product: author = the node's key, every commit signed.
    Signed,
    /// The baseline: commits as before signing existed (author `bench`, no signature), which
    /// replicas accept in an open CDVCS such as [`key`].
    Unsigned,
}

impl Authoring {
    /// Both, in the order a round `r` (from 0) runs them: alternating which goes first.
    pub fn order(r: usize) -> [Authoring; 2] {
        if r.is_multiple_of(2) {
            [Authoring::Signed, Authoring::Unsigned]
        } else {
            [Authoring::Unsigned, Authoring::Signed]
        }
    }

    /// `signed` / `unsigned`.
    pub fn name(self) -> &'static str {
        match self {
            Authoring::Signed => "signed",
            Authoring::Unsigned => "unsigned",
        }
    }
}

/// Starts a node on `dir`, optionally listening and/or dialling `connect`.
pub async fn start_node(name: &str, dir: &Path, listen: bool, connect: Option<&str>) -> Node {
    start_node_tls(name, dir, listen, connect, None).await
}

/// [`start_node`] whose commits are authored as `authoring` says.
pub async fn start_node_as(name: &str, dir: &Path, authoring: Authoring) -> Node {
    start_node_with(name, dir, false, None, None, authoring).await
}

/// A node's TLS: its listener's certificate and the roots it verifies dialled peers against.
pub struct NodeTls {
    /// Served when the node listens.
    pub server: ServerTls,
    /// Verifies `wss://` peers.
    pub client: ClientTls,
}

/// [`start_node`] with TLS.
pub async fn start_node_tls(
    name: &str,
    dir: &Path,
    listen: bool,
    connect: Option<&str>,
    tls: Option<&NodeTls>,
) -> Node {
    start_node_with(name, dir, listen, connect, tls, Authoring::Signed).await
}

async fn start_node_with(
    name: &str,
    dir: &Path,
    listen: bool,
    connect: Option<&str>,
    tls: Option<&NodeTls>,
    authoring: Authoring,
) -> Node {
    let t = Instant::now();
    loop {
        match try_start(name, dir, listen, connect, tls, authoring).await {
            Ok(node) => return node,
            Err(replikativ::node::NodeError::Store(e))
                if matches!(*e, replikativ::store::StoreError::InUse { .. })
                    && t.elapsed() < Duration::from_secs(5) =>
            {
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("node {name} does not start: {e:?}"),
        }
    }
}

async fn try_start(
    name: &str,
    dir: &Path,
    listen: bool,
    connect: Option<&str>,
    tls: Option<&NodeTls>,
    authoring: Authoring,
) -> Result<Node, replikativ::node::NodeError> {
    let mut b = Node::builder().name(name).store_dir(dir).cdvcs(key());
    if authoring == Authoring::Unsigned {
        b = b.unsigned_commits_for_benchmark("bench");
    }
    if listen {
        b = b.listen("127.0.0.1:0");
    }
    if let Some(url) = connect {
        b = b.connect(url);
    }
    if let Some(tls) = tls {
        b = b.tls_client(tls.client.clone());
        if listen {
            b = b.tls_server(tls.server.clone());
        }
    }
    b.start().await
}

/// The websocket URL of a listening node.
pub fn url_of(node: &Node) -> String {
    format!("ws://{}/", node.listen_addr().expect("listening"))
}

/// The replica of [`key`] on `node`.
pub fn replica(node: &Node) -> Arc<ReplicaShared> {
    node.replica(&key()).expect("replica started")
}

/// Waits (polling every 200 µs) until `node`'s heads are `heads`; panics after `limit`.
pub async fn wait_heads(node: &Node, heads: &[Id], limit: Duration) {
    let shared = replica(node);
    let deadline = Instant::now() + limit;
    while shared.heads() != heads {
        assert!(
            Instant::now() < deadline,
            "replicas did not agree in {limit:?}"
        );
        actix_rt::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Waits until `node` holds `heads` and its peer has announced exactly those heads (so a
/// reconnect with nothing new has finished its exchange too).
pub async fn wait_level(node: &Node, heads: &[Id], limit: Duration) {
    let shared = replica(node);
    let k = key();
    let deadline = Instant::now() + limit;
    while shared.heads() != heads || node.peers().first_remote_heads(&k).as_deref() != Some(heads) {
        assert!(
            Instant::now() < deadline,
            "replicas did not agree in {limit:?}"
        );
        actix_rt::time::sleep(Duration::from_micros(200)).await;
    }
}

/// The wire bytes of `node` once they stopped changing for `quiet` (trailing messages of
/// the exchange counted).
pub async fn quiet_wire_bytes(node: &Node, quiet: Duration) -> u64 {
    let mut last = wire_bytes(node);
    loop {
        actix_rt::time::sleep(quiet).await;
        let now = wire_bytes(node);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Waits until `node`'s store holds a hint that `peer` has `heads`.
pub async fn wait_hint(
    node: &Node,
    peer: replikativ::identity::PublicKey,
    heads: &[Id],
    limit: Duration,
) {
    let k = key();
    let want = rmp_serde::to_vec(&heads.to_vec()).expect("encode");
    let deadline = Instant::now() + limit;
    loop {
        let got = node
            .store()
            .get_state(&keys::peer_heads(peer.as_bytes(), &k.user, &k.id))
            .expect("read hint");
        if got.as_deref() == Some(&want[..]) {
            return;
        }
        assert!(Instant::now() < deadline, "the peer hint was not saved");
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Bytes this node's connections sent and received.
pub fn wire_bytes(node: &Node) -> u64 {
    use std::sync::atomic::Ordering;
    let m = node.peers().metrics();
    m.bytes_in.load(Ordering::Relaxed) + m.bytes_out.load(Ordering::Relaxed)
}

/// Writes a linear history of `n` one-tweet commits of [`key`] straight into a fresh store in
/// `dir`, with the layout a replica persists (commit values, graph entries, heads), 10^4
/// commits per transaction. Building the history is not what is measured.
pub fn build_history(dir: &Path, n: usize) -> Vec<Id> {
    build_history_of(dir, n, None, |i| {
        encode_params(&serde_json::json!({"id": i.to_string(), "text": format!("tweet {i}")}))
    })
}

/// [`build_history`] with the params of commit `i` from `params(i)`, signed by `signer` (its
/// key is the author; the signature stored beside each commit as a replica stores it), or
/// unsigned by author `history` as before signing existed.
pub fn build_history_of(
    dir: &Path,
    n: usize,
    signer: Option<&Keypair>,
    params: impl FnMut(usize) -> Vec<u8>,
) -> Vec<Id> {
    build_history_in(dir, &key(), n, signer, None, params)
}

/// [`build_history_of`] for the CDVCS `k`. With `grant`, the first commit grants that key
/// write access instead of adding a tweet (`k` is then owned by `signer`), and every commit's
/// writer record is stored with it, as a node stores them.
pub fn build_history_in(
    dir: &Path,
    k: &CrdtKey,
    n: usize,
    signer: Option<&Keypair>,
    grant: Option<&replikativ::identity::PublicKey>,
    mut params: impl FnMut(usize) -> Vec<u8>,
) -> Vec<Id> {
    use replikativ::crdt::authorship::{AccessCommit, WriterRecord, grant_write, key_id};
    let store = Store::open(dir).expect("open store");
    let k = k.clone();
    // With a grant: the grant commit, the latest access of every commit after it.
    let mut granted: Option<Id> = None;
    let author = signer.map_or_else(|| "history".to_string(), |s| s.public().to_string());
    let (mut state, root) = Cdvcs::new(&k);
    let enc = |v: &Vec<Id>| rmp_serde::to_vec(v).expect("encode");
    let entry = |parents: &[Id], g: Option<u64>| replikativ::store::graph::entry_value(parents, g);
    let mut batch = WriteBatch::new();
    batch.put_value(root.bytes.clone());
    batch.put_state(
        keys::graph_entry(&k.user, &k.id, &root.id),
        entry(&[], Some(1)),
    );
    batch.put_state(keys::meta(&k.user, &k.id), b"cdvcs".to_vec());
    for i in 0..n {
        let tx = match grant {
            Some(w) if i == 0 => {
                let (tx, value) = grant_write(w);
                batch.put_value(value);
                tx
            }
            _ => Transaction {
                op: ADD_TWEET.into(),
                params: batch.put_value(params(i)),
            },
        };
        let (commit, op) = state
            .prepare_commit(&author, i as i64, vec![tx])
            .expect("prepare");
        let commit = match signer {
            Some(key) => commit.signed(key),
            None => commit,
        };
        batch.put_value(commit.bytes.clone());
        state.downstream(&op).expect("apply");
        batch.put_state(
            keys::graph_entry(&k.user, &k.id, &commit.id),
            entry(&commit.commit.parents, state.generation(&commit.id)),
        );
        if let Some(signature) = &commit.signature {
            batch.put_state(keys::commit_signature(&commit.id), signature.to_vec());
        }
        if let Some(w) = grant {
            let record = match granted {
                Some(g) => WriterRecord {
                    latest: vec![g],
                    access: None,
                },
                None => {
                    granted = Some(commit.id);
                    WriterRecord {
                        latest: vec![commit.id],
                        access: Some(AccessCommit {
                            grants: vec![key_id(w)],
                            ..AccessCommit::default()
                        }),
                    }
                }
            };
            batch.put_state(
                keys::writer_record(&k.user, &k.id, &commit.id),
                record.encode(),
            );
        }

        if (i + 1) % 10_000 == 0 || i + 1 == n {
            let heads: Vec<Id> = state.heads().iter().copied().collect();
            batch.put_state(keys::heads(&k.user, &k.id), enc(&heads));
            store.write(&batch).expect("write history");
            batch = WriteBatch::new();
        }
    }
    state.heads().iter().copied().collect()
}

/// Deletes every persisted per-peer hint in the store of `dir` (a restart without sync state).
pub fn forget_hints(dir: &Path) {
    let store = Store::open(dir).expect("open store");
    let mut batch = WriteBatch::new();
    for (k, _) in store.scan_state(keys::PEER_PREFIX).expect("scan") {
        batch.delete_state(k);
    }
    store.write(&batch).expect("delete hints");
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds with millisecond precision.
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// `10^k` for powers of ten, digits otherwise.
pub fn pow10(n: usize) -> String {
    let mut k = 0;
    let mut m = n;
    while m >= 10 && m.is_multiple_of(10) {
        m /= 10;
        k += 1;
    }
    if m == 1 && k > 1 {
        format!("10^{k}")
    } else {
        thousands(n as u64)
    }
}

/// User + system CPU time of this process so far (all threads).
pub fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which points to one.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail");
    // SAFETY: initialised by the successful call above (and zeroed before it).
    let usage = unsafe { usage.assume_init() };
    let of = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    of(usage.ru_utime) + of(usage.ru_stime)
}
