//! `/metrics`: the Prometheus text format, rendered by `prometheus-client` from a snapshot
//! taken at each scrape (so a series exists, at 0, from the moment its CDVCS, child or
//! connection does). Counters get `_total` from the crate.
//!
//! Past [`PER_CDVCS_LIMIT`] CDVCSs the per-CDVCS series are summed into one series labelled
//! `user="*",cdvcs="*"` (10^4 CDVCSs × 2 series would make every scrape megabytes).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::status::{Status, TreeJson};

/// More CDVCSs than this are reported as one aggregate series.
pub const PER_CDVCS_LIMIT: usize = 1_000;

/// Byte counters of the node's connections (all connections since start).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes {
    /// Frame bytes sent.
    pub sent: u64,
    /// Frame bytes received.
    pub received: u64,
}

type Labels = Vec<(String, String)>;

/// What the snapshot does not hold: counters kept by the node and its applications.
#[derive(Debug, Default)]
pub struct Extra {
    /// Durations of the store's durable group commits.
    pub commit_seconds: Option<Histogram>,
    /// Counters registered by applications (e.g. the collector): name (without `_total`),
    /// help, value.
    pub counters: Vec<(String, String, u64)>,
}

/// The Prometheus text of `status`, `bytes` and `extra`.
pub fn render(status: &Status, bytes: Bytes, extra: Extra) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();

    let commits = Family::<Labels, Gauge>::default();
    let heads = Family::<Labels, Gauge>::default();
    if status.cdvcs.len() > PER_CDVCS_LIMIT {
        let all = vec![("user".into(), "*".into()), ("cdvcs".into(), "*".into())];
        commits
            .get_or_create(&all)
            .set(status.cdvcs.iter().map(|c| c.commits as i64).sum());
        heads
            .get_or_create(&all)
            .set(status.cdvcs.iter().map(|c| c.heads.len() as i64).sum());
    } else {
        for c in &status.cdvcs {
            let labels = vec![
                ("user".into(), c.user.clone()),
                ("cdvcs".into(), c.id.clone()),
            ];
            commits.get_or_create(&labels).set(c.commits as i64);
            heads.get_or_create(&labels).set(c.heads.len() as i64);
        }
    }
    registry.register(
        "replikativ_commits",
        "Commits of a CDVCS held here (root not counted)",
        commits,
    );
    registry.register("replikativ_heads", "Heads of a CDVCS held here", heads);

    let peers = Gauge::<i64>::default();
    peers.set(status.connections.len() as i64);
    registry.register(
        "replikativ_peers_connected",
        "Authenticated connections",
        peers,
    );

    let lag = Family::<Labels, Gauge>::default();
    for c in &status.connections {
        let peer = ("peer".to_owned(), c.peer.clone());
        if status.cdvcs.len() > PER_CDVCS_LIMIT {
            let all = vec![
                peer,
                ("user".into(), "*".into()),
                ("cdvcs".into(), "*".into()),
            ];
            lag.get_or_create(&all)
                .set(c.lag.iter().map(|l| l.commits as i64).sum());
            continue;
        }
        for l in &c.lag {
            let labels = vec![
                peer.clone(),
                ("user".to_owned(), l.user.clone()),
                ("cdvcs".to_owned(), l.cdvcs.clone()),
            ];
            lag.get_or_create(&labels).set(l.commits as i64);
        }
    }
    registry.register(
        "replikativ_sync_lag_commits",
        "Commits of a CDVCS not yet sent to a peer nor known to be held by it",
        lag,
    );

    let sent = Counter::<u64>::default();
    sent.inc_by(bytes.sent);
    registry.register("replikativ_bytes_sent", "Websocket frame bytes sent", sent);
    let received = Counter::<u64>::default();
    received.inc_by(bytes.received);
    registry.register(
        "replikativ_bytes_received",
        "Websocket frame bytes received",
        received,
    );

    let restarts = Family::<Labels, Counter>::default();
    add_restarts(&status.tree, &restarts);
    registry.register(
        "replikativ_child_restarts",
        "Restarts of a supervised child",
        restarts,
    );

    let applied = Family::<Labels, Counter>::default();
    let ops = Family::<Labels, Counter>::default();
    let parked = Family::<Labels, Gauge>::default();
    for r in &status.realizers {
        let labels = vec![("realizer".to_owned(), r.name.clone())];
        applied.get_or_create(&labels).inc_by(r.applied_commits);
        ops.get_or_create(&labels).inc_by(r.ops_applied);
        parked
            .get_or_create(&labels)
            .set(i64::from(r.parked.is_some()));
    }
    registry.register(
        "replikativ_realized_commits",
        "Commits a realizer applied (or an operator skipped)",
        applied,
    );
    registry.register(
        "replikativ_realized_ops",
        "Transactions a realizer applied since the node started",
        ops,
    );
    registry.register(
        "replikativ_realizer_parked",
        "1 while a realizer is parked at a failing commit",
        parked,
    );

    if let Some(h) = extra.commit_seconds {
        registry.register(
            "replikativ_store_commit_seconds",
            "Durations of the store's durable group commits",
            h,
        );
    }
    for (name, help, value) in extra.counters {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        registry.register(name, help, c);
    }

    let mut out = String::new();
    encode(&mut out, &registry)?;
    Ok(out)
}

fn add_restarts(tree: &TreeJson, family: &Family<Labels, Counter>) {
    for child in &tree.children {
        let labels = vec![
            ("supervisor".to_owned(), tree.path.clone()),
            ("child".to_owned(), child.id.clone()),
        ];
        family
            .get_or_create(&labels)
            .inc_by(u64::from(child.restarts));
        if let Some(sub) = &child.tree {
            add_restarts(sub, family);
        }
    }
}
