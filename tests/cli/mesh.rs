//! A mesh of `replikativ peer` processes under faults (DESIGN §6, §11, §12, §16; issue 17):
//! ten or more peers in a random connected topology (every peer has two or three links),
//! two collectors attached at two of them writing the same open CDVCS from two growing
//! files, and two analyzers attached at the far ends of the mesh. While the files grow,
//! peers are SIGKILLed and restarted and links are cut (a fault proxy on every link) at
//! random, for a bounded number of rounds. Then every process holds the same single head,
//! every store holds every tweet of both files once, and each analyzer's SQLite holds every
//! tweet once with the non-idempotent per-author counters at the oracle's figures. All of it
//! authenticated: every process has its own key and admits only the keys of an allow file.
//!
//! Oracles: the tweet ids of the two source files, parsed with serde_json independently of
//! the crate's parser. The topology and the fault schedule come from a seed, printed; set
//! `REPLIKATIV_SEED` to replay one (the timing of the processes still varies). `CI` caps the
//! fault rounds; `REPLIKATIV_LONG=N` runs N rounds on a larger mesh. The test prints the
//! mesh's convergence time after the last fault.
//!
//! Besides, two collectors three relays apart, with slow hops, settle on one head without
//! their merges chasing each other (what the mesh test found).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom as _, SliceRandom as _};
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Map, Value};

use crate::common::cli_support::{Proc, account_ops, arg, tail};
use crate::common::committed::{
    CDVCS, USER, sqlite_ops_applied, sqlite_tweet_ids, store_tweet_ids,
};
use crate::common::proxy::Proxy;
use crate::common::tweets_oracle::{check_each_once, per_author, source_tweets};
use crate::common::wait::periodic_check;
use crate::common::{append_lines, data_dir, free_port, iterations, run_json, run_ok};

/// How long processes get to start listening, and to exit after SIGTERM.
const T: Duration = Duration::from_secs(60);

/// Tweets per line of the sources: the shipped pages are split so that the files grow in
/// many small appends.
const PER_PAGE: usize = 8;

#[test]
fn a_mesh_of_peers_converges_under_kills_and_cut_links_and_far_analyzers_realize_each_tweet_once() {
    let long = std::env::var_os("REPLIKATIV_LONG").is_some();
    let peers = if long { 14 } else { 10 };
    let rounds = iterations(40, 24);
    let seed: u64 = match std::env::var("REPLIKATIV_SEED") {
        Ok(s) => s.parse().expect("REPLIKATIV_SEED is a number"),
        Err(_) => rand::random(),
    };
    eprintln!(
        "mesh: seed {seed} (REPLIKATIV_SEED={seed} to replay), {peers} peers, {rounds} rounds"
    );
    mesh(seed, peers, rounds);
}

/// The collectors' merges must not chase each other: two writers three relays apart, each
/// hop slower than their flush interval, with nothing more to write, settle on one head
/// (found by the mesh test: with a join at every tick, each writer merged the other's
/// previous merge, two heads again at every arrival, for minutes).
#[test]
fn two_collectors_three_relays_apart_settle_on_one_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let one = repaged(
        &["brexit.jsonl", "kpop.jsonl", "geo_tweets.jsonl"],
        PER_PAGE,
    );
    let two = repaged(
        &["flat.jsonl", "withheld.jsonl", "entities_test.jsonl"],
        PER_PAGE,
    );
    let (ids1, ids2) = (ids_of(&one), ids_of(&two));
    assert!(
        ids1.keys().all(|id| !ids2.contains_key(id)),
        "disjoint files"
    );
    let mut all = ids1.clone();
    all.extend(ids2);
    let names = ["c0", "r1", "r2", "r3", "c1"];
    let mut allow = String::new();
    for name in names {
        let key = last_line(&run_ok(&["keygen", "--out", &format!("{name}.pem")], d));
        allow.push_str(&format!("{key} read,write\n"));
    }
    std::fs::write(d.join("allow.txt"), allow).expect("write the allow file");
    let (f0, f1) = (d.join("one.jsonl"), d.join("two.jsonl"));
    let rounds = 12;
    let (mut chunks0, mut chunks1) = (
        one.chunks(one.len().div_ceil(rounds)),
        two.chunks(two.len().div_ceil(rounds)),
    );
    append_lines(&f0, chunks0.next().expect("a chunk"));
    append_lines(&f1, chunks1.next().expect("a chunk"));
    // A chain c0 ← r1 ← r2 ← r3 ← c1 (each dials the one before through a proxy that holds
    // every chunk back 20 ms).
    let ports: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let proxies: Vec<Proxy> = ports[..4]
        .iter()
        .map(|p| {
            let proxy = Proxy::start(([127, 0, 0, 1], *p).into());
            proxy
                .faults
                .delay_ms
                .store(20, std::sync::atomic::Ordering::SeqCst);
            proxy
        })
        .collect();
    let mut procs: Vec<Proc> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let listen = format!("127.0.0.1:{}", ports[i]);
        let key = format!("{name}.pem");
        let url = (i > 0).then(|| proxies[i - 1].url());
        let mut args: Vec<&str> = match *name {
            "c0" | "c1" => vec![
                "collect",
                "--source",
                if i == 0 { arg(&f0) } else { arg(&f1) },
                "--follow",
                "--flush-ms",
                "50",
                "--batch",
                "7",
            ],
            _ => vec!["peer"],
        };
        args.extend([
            "--store",
            name,
            "--listen",
            &listen,
            "--allow-file",
            "allow.txt",
            "--key",
            &key,
        ]);
        if let Some(url) = &url {
            args.extend(["--connect", url]);
        }
        procs.push(Proc::spawn(&args, d, &format!("{name}.log")));
        crate::common::wait_port(ports[i], T);
    }
    crate::common::grow_together((&f0, chunks0), (&f1, chunks1));
    // Settled: every process holds one head, the same.
    let heads =
        || -> Vec<Option<BTreeSet<String>>> { ports.iter().map(|p| status_heads(*p)).collect() };
    let settled = periodic_check(
        || {
            let h = heads();
            h[0].as_ref().is_some_and(|h| h.len() == 1) && h.iter().all(|x| *x == h[0])
        },
        T,
    );
    assert!(
        settled,
        "the chain did not settle on one head within {T:?}: {:?}; logs:\n{}\n{}",
        heads(),
        tail(&d.join("c0.log")),
        tail(&d.join("c1.log"))
    );
    for (p, name) in procs.iter_mut().zip(names) {
        p.terminate_ok(name, &d.join(format!("{name}.log")));
    }
    let logs: Vec<Value> = names
        .iter()
        .map(|s| run_json(&["log", "--store", s], d))
        .collect();
    for (log, name) in logs.iter().zip(names) {
        assert_eq!(log["heads"], logs[0]["heads"], "{name}: {log}");
        if let Err(e) = check_each_once(all.keys(), &store_tweet_ids(&d.join(name))) {
            panic!("store {name}: {e}");
        }
    }
    // The writers joined each other's commits, but their merges did not chase each other:
    // fewer joins than commits written (without the idle-join backoff: 284 to 415 joins for
    // about 150 commits).
    let (joined, writes) = graph_counts(&d.join("c0"));
    eprintln!(
        "chain: {} tweets, {writes} commits written, {joined} joins",
        all.len()
    );
    assert!(
        (1..=writes).contains(&joined),
        "{joined} joins for {writes} commits written: the writers' merges chased each other"
    );
}

/// A `replikativ peer` of the mesh.
struct Peer {
    /// `p0`, `p1`, …: its store directory, key file and log are named after it.
    name: String,
    port: u16,
    args: Vec<String>,
    proc: Option<Proc>,
    /// When a killed peer is started again.
    restart_at: Option<Instant>,
}

impl Peer {
    fn start(&mut self, d: &Path) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.proc = Some(Proc::spawn(&args, d, &format!("{}.log", self.name)));
        self.restart_at = None;
    }
}

/// A link through a fault proxy (forwarding to the listener of the peer dialled).
struct Link {
    proxy: Proxy,
    /// When a cut link admits connections again.
    heal_at: Option<Instant>,
}

impl Link {
    fn cut(&mut self, until: Instant) {
        self.proxy
            .faults
            .refuse
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.proxy.cut_all();
        self.heal_at = Some(until);
    }

    fn heal(&mut self) {
        self.proxy
            .faults
            .refuse
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.heal_at = None;
    }
}

/// Lines of `files` with their pages split into pages of at most `per_page` tweets (each
/// with the users it names), every line ending in a newline. Flat lines stay as they are.
fn repaged(files: &[&str], per_page: usize) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(data_dir().join(f)).expect("shipped tweets");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).expect("the shipped lines are JSON");
            let (Some(Value::Array(data)), users) = (
                v.get("data"),
                v.pointer("/includes/users").and_then(Value::as_array),
            ) else {
                out.push(format!("{line}\n"));
                continue;
            };
            for page in data.chunks(per_page) {
                let authors: Vec<&Value> = page.iter().filter_map(|t| t.get("author_id")).collect();
                let named: Vec<&Value> = users
                    .into_iter()
                    .flatten()
                    .filter(|u| u.get("id").is_some_and(|id| authors.contains(&id)))
                    .collect();
                let mut o = Map::new();
                o.insert("data".into(), Value::Array(page.to_vec()));
                o.insert("includes".into(), serde_json::json!({ "users": named }));
                out.push(format!("{}\n", Value::Object(o)));
            }
        }
    }
    out
}

/// The distinct tweet ids of `lines` with their author keys, by the oracle's parser.
fn ids_of(lines: &[String]) -> BTreeMap<String, String> {
    let bytes: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| l.trim_end().as_bytes().to_vec())
        .collect();
    source_tweets(&bytes)
}

/// A random connected graph on `n` nodes where each node has two or three links: a cycle
/// through the nodes in random order, plus random chords between nodes that still have two.
fn topology(n: usize, rng: &mut StdRng) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let mut edges: BTreeSet<(usize, usize)> = BTreeSet::new();
    let key = |a: usize, b: usize| (a.min(b), a.max(b));
    for i in 0..n {
        edges.insert(key(order[i], order[(i + 1) % n]));
    }
    let mut degree = vec![2usize; n];
    let chords = rng.random_range(n / 4..=n / 2);
    for _ in 0..chords * 4 {
        if edges.len() >= n + chords {
            break;
        }
        let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
        if a == b || degree[a] >= 3 || degree[b] >= 3 || edges.contains(&key(a, b)) {
            continue;
        }
        edges.insert(key(a, b));
        degree[a] += 1;
        degree[b] += 1;
    }
    edges.into_iter().collect()
}

/// Hop distances between every pair of nodes of the graph.
fn distances(n: usize, edges: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut adj = vec![Vec::new(); n];
    for &(a, b) in edges {
        adj[a].push(b);
        adj[b].push(a);
    }
    (0..n)
        .map(|s| {
            let mut dist = vec![usize::MAX; n];
            dist[s] = 0;
            let mut queue = VecDeque::from([s]);
            while let Some(u) = queue.pop_front() {
                for &v in &adj[u] {
                    if dist[v] == usize::MAX {
                        dist[v] = dist[u] + 1;
                        queue.push_back(v);
                    }
                }
            }
            dist
        })
        .collect()
}

/// The heads of the default CDVCS in the `/status.json` of the node listening on `port`;
/// None while it cannot be reached or does not hold the CDVCS.
fn status_heads(port: u16) -> Option<BTreeSet<String>> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!("GET /status.json HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (_, body) = raw.split_once("\r\n\r\n")?;
    let status: Value = serde_json::from_str(body).ok()?;
    status["cdvcs"]
        .as_array()?
        .iter()
        .find(|c| c["user"] == USER && c["id"] == CDVCS)?["heads"]
        .as_array()?
        .iter()
        .map(|h| h.as_str().map(str::to_owned))
        .collect()
}

/// How many commits of the default CDVCS in the (stopped) store at `dir` join two or more
/// parents, and how many carry transactions (the writers' commits).
fn graph_counts(dir: &Path) -> (usize, usize) {
    use replikativ::store::{Store, keys};
    let store = Store::open(dir).expect("open store");
    let crdt: uuid::Uuid = CDVCS.parse().expect("uuid");
    let (mut joins, mut writes) = (0, 0);
    for (k, _) in store
        .scan_state(&keys::graph_prefix(USER, &crdt))
        .expect("graph")
    {
        let id = keys::graph_entry_commit(&k).expect("graph key");
        let bytes = store.get_value(&id).expect("read").expect("commit");
        let commit = replikativ::crdt::Commit::decode(&bytes)
            .expect("decode")
            .commit;
        if commit.parents.len() >= 2 {
            joins += 1;
        } else if !commit.parents.is_empty() && !commit.transactions.is_empty() {
            writes += 1;
        }
    }
    (joins, writes)
}

/// The part of `lines` appended before the first of `rounds` rounds (`None`: at least one
/// line) or at round `r`: the rest spread evenly over the rounds.
fn part(lines: &[String], rounds: usize, round: Option<usize>) -> &[String] {
    let first = (lines.len() / (rounds + 1)).max(1);
    let Some(r) = round else {
        return &lines[..first];
    };
    let rest = &lines[first..];
    &rest[r * rest.len() / rounds..(r + 1) * rest.len() / rounds]
}

/// `n` free loopback ports below the kernel's ephemeral range, for peers that listen again
/// on theirs after a SIGKILL: an outgoing connection cannot take one meanwhile.
fn listen_ports(n: usize, rng: &mut StdRng) -> Vec<u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut ports = Vec::new();
    for _ in 0..10_000 {
        if ports.len() == n {
            return ports;
        }
        let port = rng.random_range(10_000..low.max(10_001));
        if !ports.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    panic!("no {n} free ports below {low}");
}

fn last_line(out: &str) -> String {
    out.lines().last().unwrap_or_default().to_owned()
}

/// Waits until the process listens on `port`, failing early (with its log) if it exited.
fn wait_listening(d: &Path, proc: &mut Proc, name: &str, port: u16) {
    let mut exited = None;
    let up = periodic_check(
        || {
            if let Ok(Some(st)) = proc.child.try_wait() {
                exited = Some(st);
                return true;
            }
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        },
        T,
    );
    assert!(
        up && exited.is_none(),
        "{name} does not listen on {port} (exit {exited:?}); log:\n{}",
        tail(&d.join(format!("{name}.log")))
    );
}

fn mesh(seed: u64, n: usize, rounds: usize) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut rng = StdRng::seed_from_u64(seed);

    // The two growing sources and the oracle: their tweet ids, disjoint (checked).
    let one = repaged(
        &["brexit.jsonl", "kpop.jsonl", "geo_tweets.jsonl"],
        PER_PAGE,
    );
    let two = repaged(
        &["flat.jsonl", "withheld.jsonl", "entities_test.jsonl"],
        PER_PAGE,
    );
    let (ids1, ids2) = (ids_of(&one), ids_of(&two));
    let common: Vec<&String> = ids1.keys().filter(|id| ids2.contains_key(*id)).collect();
    assert!(common.is_empty(), "the files share tweet ids {common:?}");
    assert!(!ids1.is_empty() && !ids2.is_empty());
    let mut all = ids1.clone();
    all.extend(ids2.clone());
    let total = all.len() as u64;

    // Keys: one per process; peers and collectors read and write, analyzers read.
    let peer_names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    let mut allow = String::from("# the mesh\n");
    for name in peer_names.iter().chain(&["c0".to_owned(), "c1".to_owned()]) {
        let key = last_line(&run_ok(&["keygen", "--out", &format!("{name}.pem")], d));
        allow.push_str(&format!("{key} read,write # {name}\n"));
    }
    for name in ["a0", "a1"] {
        let key = last_line(&run_ok(&["keygen", "--out", &format!("{name}.pem")], d));
        allow.push_str(&format!("{key} read # {name}\n"));
    }
    std::fs::write(d.join("allow.txt"), allow).expect("write the allow file");
    let node_flags = |name: &str| -> Vec<String> {
        vec![
            "--key".into(),
            format!("{name}.pem"),
            "--allow-file".into(),
            "allow.txt".into(),
        ]
    };

    // The topology; analyzers at the two ends of a longest shortest path, collectors at two
    // other peers, as far from the analyzers as there are.
    let edges = topology(n, &mut rng);
    let dist = distances(n, &edges);
    assert!(
        dist.iter().flatten().all(|d| *d != usize::MAX),
        "the topology is connected: {edges:?}"
    );
    let diameter = *dist.iter().flatten().max().expect("nodes");
    let ends: Vec<(usize, usize)> = (0..n)
        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
        .filter(|&(a, b)| dist[a][b] == diameter)
        .collect();
    let &(an0, an1) = ends.choose(&mut rng).expect("a longest path");
    let rest: Vec<usize> = (0..n).filter(|p| *p != an0 && *p != an1).collect();
    let away = |p: usize| dist[p][an0].min(dist[p][an1]);
    let farthest = rest.iter().map(|p| away(*p)).max().expect("other peers");
    let mut candidates: Vec<usize> = rest
        .iter()
        .copied()
        .filter(|p| away(*p) + 1 >= farthest)
        .collect();
    if candidates.len() < 2 {
        candidates = rest.clone();
    }
    candidates.shuffle(&mut rng);
    let (co0, co1) = (candidates[0], candidates[1]);
    eprintln!(
        "mesh: links {edges:?}, diameter {diameter}; collectors at p{co0}, p{co1}; analyzers at p{an0}, p{an1} ({} hops apart)",
        dist[an0][an1]
    );

    // Every link goes through its own fault proxy; the dialling side is chosen at random.
    let ports = listen_ports(n, &mut rng);
    let proxy_to = |p: usize| Proxy::start(([127, 0, 0, 1], ports[p]).into());
    let mut links: Vec<Link> = Vec::new();
    let mut dials: Vec<Vec<String>> = vec![Vec::new(); n];
    for &(a, b) in &edges {
        let (from, to) = if rng.random_bool(0.5) { (a, b) } else { (b, a) };
        let proxy = proxy_to(to);
        dials[from].push(proxy.url());
        links.push(Link {
            proxy,
            heal_at: None,
        });
    }
    let mut attach = |p: usize| -> String {
        let proxy = proxy_to(p);
        let url = proxy.url();
        links.push(Link {
            proxy,
            heal_at: None,
        });
        url
    };
    let (c0_url, c1_url) = (attach(co0), attach(co1));
    let (a0_url, a1_url) = (attach(an0), attach(an1));

    let mut mesh: Vec<Peer> = (0..n)
        .map(|i| {
            let name = peer_names[i].clone();
            let mut args: Vec<String> = vec![
                "peer".into(),
                "--store".into(),
                name.clone(),
                "--listen".into(),
                format!("127.0.0.1:{}", ports[i]),
            ];
            for url in &dials[i] {
                args.extend(["--connect".into(), url.clone()]);
            }
            args.extend(node_flags(&name));
            Peer {
                name,
                port: ports[i],
                args,
                proc: None,
                restart_at: None,
            }
        })
        .collect();
    for peer in &mut mesh {
        peer.start(d);
    }
    for peer in &mut mesh {
        let (name, port) = (peer.name.clone(), peer.port);
        wait_listening(d, peer.proc.as_mut().expect("started"), &name, port);
    }

    // The sources start with a first part and grow at every fault round, the rest of them
    // spread evenly over the rounds (so tweets flow until the last fault).
    let (f1, f2) = (d.join("one.jsonl"), d.join("two.jsonl"));
    append_lines(&f1, part(&one, rounds, None));
    append_lines(&f2, part(&two, rounds, None));
    let c_ports = [free_port(), free_port()];
    let mut collectors: Vec<Proc> = [("c0", &f1, &c0_url), ("c1", &f2, &c1_url)]
        .iter()
        .zip(c_ports)
        .map(|((name, src, url), port)| {
            let mut args: Vec<String> = [
                "collect",
                "--store",
                name,
                "--source",
                arg(src),
                "--connect",
                url,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--follow",
                "--flush-ms",
                "50",
                "--batch",
                "7",
            ]
            .map(str::to_owned)
            .to_vec();
            args.extend(node_flags(name));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Proc::spawn(&args, d, &format!("{name}.log"))
        })
        .collect();
    let dbs = [d.join("a0.sqlite"), d.join("a1.sqlite")];
    let mut analyzers: Vec<Proc> = [("a0", &a0_url), ("a1", &a1_url)]
        .iter()
        .zip(&dbs)
        .map(|((name, url), db)| {
            let mut args: Vec<String> = [
                "analyze",
                "--store",
                name,
                "--connect",
                url,
                "--sqlite",
                arg(db),
                "--follow",
            ]
            .map(str::to_owned)
            .to_vec();
            args.extend(node_flags(name));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            Proc::spawn(&args, d, &format!("{name}.log"))
        })
        .collect();
    let logs_of = |names: &[&str]| -> String {
        names
            .iter()
            .map(|n| format!("--- {n}.log:\n{}", tail(&d.join(format!("{n}.log")))))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // The mesh carries tweets end to end before the faults begin.
    assert!(
        periodic_check(
            || dbs.iter().all(|db| sqlite_ops_applied(db) > 0),
            Duration::from_secs(120)
        ),
        "seed {seed}: the analyzers realized nothing before the faults; logs:\n{}",
        logs_of(&["c0", "c1", "a0", "a1"])
    );

    // Faults at random for `rounds` rounds while the files grow: a peer SIGKILLed and started
    // again a moment later (at most `max_down` down at once), or a link cut and refusing
    // connections for a moment (at most `max_cut` at once).
    let (max_down, max_cut) = if n > 10 { (3, 4) } else { (2, 3) };
    let (mut kills, mut cuts, mut mid_way) = (0usize, 0usize, 0usize);
    for round in 0..rounds {
        append_lines(&f1, part(&one, rounds, Some(round)));
        append_lines(&f2, part(&two, rounds, Some(round)));
        let now = Instant::now();
        let down = mesh.iter().filter(|p| p.proc.is_none()).count();
        let cut = links.iter().filter(|l| l.heal_at.is_some()).count();
        if rng.random_bool(0.5) && down < max_down {
            let alive: Vec<usize> = (0..n).filter(|i| mesh[*i].proc.is_some()).collect();
            let victim = *alive.choose(&mut rng).expect("a live peer");
            let mut p = mesh[victim].proc.take().expect("alive");
            crate::common::kill(&mut p.child);
            mesh[victim].restart_at =
                Some(now + Duration::from_millis(rng.random_range(100..1500)));
            kills += 1;
            let realized = sqlite_ops_applied(&dbs[0]);
            if realized > 0 && realized < total {
                mid_way += 1;
            }
        } else if cut < max_cut {
            let intact: Vec<usize> = (0..links.len())
                .filter(|i| links[*i].heal_at.is_none())
                .collect();
            let victim = *intact.choose(&mut rng).expect("an intact link");
            links[victim].cut(now + Duration::from_millis(rng.random_range(100..2500)));
            cuts += 1;
        }
        // The pace of the faults (nothing waits on it).
        std::thread::sleep(Duration::from_millis(rng.random_range(50..400)));
        let now = Instant::now();
        for peer in &mut mesh {
            if peer.restart_at.is_some_and(|at| at <= now) {
                peer.start(d);
            }
        }
        for link in &mut links {
            if link.heal_at.is_some_and(|at| at <= now) {
                link.heal();
            }
        }
    }
    // The last fault ends: every peer runs, every link carries (the files are complete).
    for peer in &mut mesh {
        if peer.proc.is_none() {
            peer.start(d);
        }
    }
    for link in &mut links {
        link.heal();
    }
    let healed = Instant::now();
    for peer in &mut mesh {
        let (name, port) = (peer.name.clone(), peer.port);
        wait_listening(d, peer.proc.as_mut().expect("started"), &name, port);
    }

    // Converged: both analyzers realized every tweet, and every peer and both collectors
    // hold one head, the same.
    let status_ports: Vec<(String, u16)> = mesh
        .iter()
        .map(|p| (p.name.clone(), p.port))
        .chain([("c0".to_owned(), c_ports[0]), ("c1".to_owned(), c_ports[1])])
        .collect();
    // (When the analyzers first held everything, for the figures.)
    let mut realized_at = None;
    let converged = || {
        if realized_at.is_none() && dbs.iter().all(|db| sqlite_ops_applied(db) == total) {
            realized_at = Some(healed.elapsed());
        }
        realized_at.is_some() && {
            let mut heads = status_ports.iter().map(|(_, port)| status_heads(*port));
            let first = heads.next().flatten();
            first.as_ref().is_some_and(|h| h.len() == 1) && heads.all(|h| h.is_some() && h == first)
        }
    };
    let deadline = if std::env::var_os("REPLIKATIV_LONG").is_some() {
        Duration::from_secs(600)
    } else {
        Duration::from_secs(180)
    };
    if !periodic_check(converged, deadline) {
        let heads: Vec<String> = status_ports
            .iter()
            .map(|(name, port)| format!("{name}: {:?}", status_heads(*port)))
            .collect();
        panic!(
            "seed {seed}: no convergence {deadline:?} after the last fault: analyzers applied {:?} of {total}; heads:\n{}\nlogs:\n{}",
            dbs.iter()
                .map(|db| sqlite_ops_applied(db))
                .collect::<Vec<_>>(),
            heads.join("\n"),
            logs_of(&["c0", "c1", "a0", "a1"])
        );
    }
    let convergence = healed.elapsed();

    for (p, name) in analyzers.iter_mut().zip(["a0", "a1"]) {
        p.terminate_ok(name, &d.join(format!("{name}.log")));
    }
    for (p, name) in collectors.iter_mut().zip(["c0", "c1"]) {
        p.terminate_ok(name, &d.join(format!("{name}.log")));
    }
    for peer in &mut mesh {
        let log = d.join(format!("{}.log", peer.name));
        peer.proc
            .as_mut()
            .expect("running")
            .terminate_ok(&peer.name, &log);
    }

    // Every process's store: the same single head, every tweet of both files once.
    let stores: Vec<String> = peer_names
        .iter()
        .cloned()
        .chain(["c0", "c1", "a0", "a1"].map(str::to_owned))
        .collect();
    let mut first_heads: Option<Value> = None;
    for store in &stores {
        let log = run_json(&["log", "--store", store], d);
        let heads = log["heads"].clone();
        assert_eq!(
            heads.as_array().map(Vec::len),
            Some(1),
            "seed {seed}: store {store} ends with one head: {log}"
        );
        match &first_heads {
            None => first_heads = Some(heads),
            Some(first) => assert_eq!(
                &heads, first,
                "seed {seed}: store {store} has the heads of {}",
                stores[0]
            ),
        }
        if let Err(e) = check_each_once(all.keys(), &store_tweet_ids(&d.join(store))) {
            panic!("seed {seed}: store {store}: {e}");
        }
    }
    // Each analyzer realized every tweet once: the ids, and the per-author counters bumped
    // on every applied op (a double apply would show there).
    for (db, name) in dbs.iter().zip(["a0", "a1"]) {
        let realized: BTreeMap<String, u64> =
            sqlite_tweet_ids(db).into_iter().map(|id| (id, 1)).collect();
        if let Err(e) = check_each_once(all.keys(), &realized) {
            panic!("seed {seed}: {name}'s SQLite: {e}");
        }
        assert_eq!(
            sqlite_ops_applied(db),
            total,
            "seed {seed}: {name} applied each op once"
        );
        assert_eq!(
            account_ops(db),
            per_author(&all),
            "seed {seed}: {name}'s per-author counters: each op applied once"
        );
    }
    // The collectors did write concurrently: their branches were joined.
    let (joined, _) = graph_counts(&d.join("c0"));
    eprintln!(
        "mesh: seed {seed}, {n} peers, {} links, {rounds} rounds: {kills} kills ({mid_way} while tweets flowed), {cuts} cuts; {} + {} tweets, {joined} joins; converged {} ms after the last fault (analyzers complete after {} ms); {:.1} s in all",
        links.len(),
        ids1.len(),
        ids2.len(),
        convergence.as_millis(),
        realized_at.unwrap_or_default().as_millis(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        joined >= 1,
        "seed {seed}: no concurrent commits were joined"
    );
    assert!(
        kills >= 3 && cuts >= 3 && mid_way >= 3,
        "seed {seed}: too few faults landed while tweets flowed: {kills} kills ({mid_way} mid-way), {cuts} cuts"
    );
}
