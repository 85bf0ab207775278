//! `replikativ analyze`: a client node that subscribes to a peer's CDVCS, replicates it into
//! its own store and realizes it into SQLite or PostgreSQL, exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::args::AnalyzeArgs;
use super::signals::Signals;
use super::sink_target::SinkTarget;
use crate::crdt::{Commit, CrdtKey};
use crate::id::Id;
use crate::node::{Node, RealizerSpec};
use crate::realize::realizer::{ConflictPolicy, RealizerShared, RealizerStatus};
use crate::realize::{Sink, SinkError};

/// Runs `analyze`.
pub fn run(args: AnalyzeArgs) -> Result<()> {
    super::check_peer_url(&args.connect)?;
    args.node.check_tls(args.listen.is_some())?;
    let key = CrdtKey::new(args.crdt.user.clone(), args.crdt.cdvcs);
    actix_rt::System::new().block_on(analyze(args, key))
}

/// Whether the realizer has applied everything `target` (the peer's heads when we connected)
/// holds: every target head is here and the realized state covers it. With several target
/// heads (concurrent writes not yet merged) a `Wait` realizer applies them once a merge
/// arrives: then the single local head descends from all of them and is applied.
fn caught_up(node: &Node, key: &CrdtKey, realizer: &RealizerShared, target: &[Id]) -> bool {
    let Some(replica) = node.replica(key) else {
        return false;
    };
    let state = replica.state();
    let guard = match state.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let realized =
        |h: &Id| guard.parents(h).is_some_and(|p| p.is_empty()) || realizer.is_applied(h);
    if !target.iter().all(|h| guard.contains(h)) {
        return false;
    }
    if target.iter().all(realized) {
        return true;
    }
    let heads: Vec<Id> = guard.heads().iter().copied().collect();
    match heads.as_slice() {
        [head] => realized(head) && target.iter().all(|t| guard.is_ancestor(t, head)),
        _ => false,
    }
}

/// A node realizing `key` from `url` into `target`.
pub async fn start_analysis_node(
    store: &std::path::Path,
    url: &str,
    target: &SinkTarget,
    key: &CrdtKey,
    flags: &super::node_args::NodeArgs,
    listen: Option<&str>,
) -> Result<Node> {
    // Fail early, with the database named, if it is not usable. Opening blocks (and the
    // Postgres client runs its own runtime), so not on this runtime's thread.
    let early = target.clone();
    tokio::task::spawn_blocking(move || early.open_sink().map(drop))
        .await
        .context("the thread opening the sink failed")?
        .with_context(|| format!("opening {target}"))?;
    let name = target.realizer_name();
    let target = target.clone();
    let open = Arc::new(move || -> Result<Box<dyn Sink>, SinkError> { target.open_sink() });
    let mut builder = Node::builder()
        .name("analyzer")
        .store_dir(store)
        .connect(url);
    if let Some(listen) = listen {
        builder = builder.listen(listen);
    }
    flags
        .apply(builder)?
        .realize(RealizerSpec {
            name: name.into(),
            key: key.clone(),
            open,
            policy: ConflictPolicy::Wait,
        })
        .start()
        .await
        .with_context(|| format!("starting the analysis node on {}", store.display()))
}

/// Fails at once when the connection to `url` was refused: retrying would meet the same
/// refusal until someone changes a node's rules.
fn refused(node: &Node, url: &str) -> Result<()> {
    match node.peers().refusal(url) {
        Some(why) => bail!("the connection to {url} was refused: {why}"),
        None => Ok(()),
    }
}

/// Waits until the peer's heads at connection time are replicated and realized.
pub async fn wait_realized(node: &Node, url: &str, key: &CrdtKey, timeout: Duration) -> Result<()> {
    wait_realized_into(node, url, key, timeout, "sqlite", "--sqlite FILE").await
}

/// [`wait_realized`] for the realizer `name`, naming its sink by `flag` in the advice to an
/// operator.
pub async fn wait_realized_into(
    node: &Node,
    url: &str,
    key: &CrdtKey,
    timeout: Duration,
    name: &str,
    flag: &str,
) -> Result<()> {
    let realizer = node.realizer(name).context("the realizer is missing")?;
    let root = Commit::root(key).id;
    let start = Instant::now();
    let mut status = realizer.status();
    let mut waiting_told = false;
    let target = loop {
        refused(node, url)?;
        if let Some(heads) = node.peers().first_remote_heads(key)
            && heads != [root]
        {
            break heads;
        }
        if start.elapsed() > timeout {
            match node.peers().first_remote_heads(key) {
                Some(_) => bail!(
                    "the peer at {url} has no commits of CDVCS {key} (waited {}s)",
                    timeout.as_secs()
                ),
                None => {
                    let why = node
                        .peers()
                        .last_dial_error(url)
                        .unwrap_or_else(|| "no answer".into());
                    bail!("cannot reach {url} within {}s: {why}", timeout.as_secs())
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    say!(
        "peer has {} head(s); replicating and realizing",
        target.len()
    );
    let mut progress = super::progress::Progress::default();
    loop {
        if caught_up(node, key, &realizer, &target) {
            progress.finish();
            return Ok(());
        }
        refused(node, url)?;
        match &*status.borrow() {
            RealizerStatus::Parked { commit, reason } => bail!(
                "the realizer is parked at commit {commit}: {reason}\n(skip it with `replikativ realize-skip {flag} --commit {commit}` and run analyze again)"
            ),
            RealizerStatus::Waiting { heads } if !waiting_told => {
                waiting_told = true;
                say!(
                    "the CDVCS has {} heads (concurrent writes); waiting for a writer to merge them (an operator can run `replikativ merge --store DIR` on a stopped writer's store)",
                    heads.len()
                );
            }
            _ => {}
        }
        let known = node
            .replica(key)
            .map(|r| r.state())
            .and_then(|s| s.read().ok().map(|g| g.len().saturating_sub(1)))
            .unwrap_or(0);
        progress.update(
            realizer.applied_count() as u64,
            known as u64,
            realizer.ops_applied(),
        );
        tokio::select! {
            _ = status.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

async fn analyze(args: AnalyzeArgs, key: CrdtKey) -> Result<()> {
    let mut signals = Signals::install()?;
    let target =
        SinkTarget::from_flags("analyze", args.sqlite.as_deref(), args.postgres.as_deref())?;
    let name = target.realizer_name();
    let node = start_analysis_node(
        &args.store,
        &args.connect,
        &target,
        &key,
        &args.node,
        args.listen.as_deref(),
    )
    .await?;
    if let Some(addr) = node.listen_addr() {
        say!(
            "serving peers, /status and /metrics at {}://{addr}/",
            args.node.scheme()
        );
    }
    signals.on_hangup(super::node_args::reload_on_hangup(&node));
    let timeout = Duration::from_secs(args.timeout);
    if args.follow {
        say!("following {} into {target}", args.connect);
        let realizer = node.realizer(name).context("the realizer is missing")?;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = signals.recv() => break,
                _ = tick.tick() => {
                    say!("realized {} commits", realizer.applied_count());
                }
            }
        }
    } else {
        let flag = target.flag();
        let res = tokio::select! {
            r = wait_realized_into(&node, &args.connect, &key, timeout, name, &flag) => r,
            _ = signals.recv() => {
                let applied = node.realizer(name).map_or(0, |r| r.applied_count());
                Err(anyhow::anyhow!(
                    "interrupted before catching up with {}: {applied} commits realized so far (run analyze again to go on; nothing is applied twice)",
                    args.connect
                ))
            }
        };
        if let Err(e) = res {
            node.shutdown().await;
            return Err(e);
        }
    }
    let realizer = node.realizer(name);
    node.shutdown().await;
    if let Some(r) = realizer {
        println!("realized {} commits into {target}", r.applied_count());
    }
    Ok(())
}
