//! `replikativ collect`: a collector node (store, CDVCS, optional listener) plus the
//! `collect` subtree reading the source.

use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio::sync::watch;

use super::UsageError;
use super::args::CollectArgs;
use super::signals::Signals;
use crate::collector::{self, CollectOptions, CollectReport, CollectorLink, FlushNow, SourceSpec};
use crate::crdt::CrdtKey;
use crate::crdt::authorship::{Verdict, owner_of};
use crate::identity::{KeyFiles as _, Keypair};
use crate::node::Node;

/// Runs `collect`.
pub fn run(args: CollectArgs) -> Result<()> {
    if args.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    if args.flush_ms == 0 {
        return Err(UsageError("--flush-ms must be at least 1".into()).into());
    }
    for url in &args.connect {
        super::check_peer_url(url)?;
    }
    args.node.check_tls(args.listen.is_some())?;
    let token = match &args.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let spec =
        SourceSpec::parse(&args.source, args.follow, token).with_tls(args.node.client_tls()?);
    if let SourceSpec::File { path, .. } = &spec {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("the source file {} cannot be read", path.display()))?;
        if meta.is_dir() {
            anyhow::bail!("the source {} is a directory, not a file", path.display());
        }
    }
    let signer = node_key(&args)?;
    let user = if args.owned {
        signer.public().to_string()
    } else {
        args.crdt.user.clone()
    };
    let key = CrdtKey::new(user, args.crdt.cdvcs);
    may_write(&args, &key, &signer)?;
    actix_rt::System::new().block_on(collect(args, spec, key))
}

/// The key this collector's node will run as: `--key`, else the store's `node.key`.
fn node_key(args: &CollectArgs) -> Result<Keypair> {
    match &args.node.key {
        Some(path) => Keypair::read(path).context("reading --key"),
        None => {
            std::fs::create_dir_all(&args.store).with_context(|| {
                format!("creating the store directory {}", args.store.display())
            })?;
            Keypair::load_or_create_in(&args.store).context("the store's node key")
        }
    }
}

/// Refuses, before anything is read, to collect into an owned CDVCS this node's key may not
/// write, judged from the owner's key and the grants this store holds.
fn may_write(args: &CollectArgs, key: &CrdtKey, signer: &Keypair) -> Result<()> {
    let Some(owner) = owner_of(key) else {
        return Ok(());
    };
    let me = signer.public();
    if owner == me {
        return Ok(());
    }
    let refuse = || {
        anyhow::anyhow!(
            "this node's key {me} may not write {key}: its owner has not granted it write              access in the history this store holds (the owner runs `replikativ grant --user              {owner} --write {me}`; then sync this store from a peer that holds the grant)"
        )
    };
    if !args.store.join(crate::store::FILE_NAME).exists() {
        return Err(refuse());
    }
    let store = crate::store::Store::open(&args.store)
        .with_context(|| format!("opening the store {}", args.store.display()))?;
    // The heads and the writer records stored with them: O(1) reads, whatever the history.
    let Some(cdvcs) = crate::store::graph::open(&store, key)
        .with_context(|| format!("opening {key} in {}", args.store.display()))?
    else {
        return Err(refuse());
    };
    let mut writers = crate::store::writers::open(&store, key, &cdvcs)?;
    let heads: Vec<crate::Id> = cdvcs.heads().iter().copied().collect();
    match writers.verdict(&heads, &me) {
        Ok(Ok(Verdict::Owner | Verdict::Writer)) => Ok(()),
        Ok(_) => Err(refuse()),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "judging whether {me} may write {key} in {}",
            args.store.display()
        ))),
    }
}

/// How long SIGTERM waits for the source to feed what it has already read.
const HALT_GRACE: Duration = Duration::from_secs(10);

async fn collect(args: CollectArgs, spec: SourceSpec, key: CrdtKey) -> Result<()> {
    let mut signals = Signals::install()?;
    let mut builder = Node::builder()
        .name("collector")
        .store_dir(&args.store)
        .cdvcs(key.clone());
    builder = args.node.apply(builder)?;
    if let Some(listen) = &args.listen {
        builder = builder.listen(listen.clone());
    }
    for url in &args.connect {
        builder = builder.connect(url.clone());
    }
    let (report_tx, mut report) = watch::channel(CollectReport::default());
    let link = CollectorLink::default();
    let opts = CollectOptions {
        key: key.clone(),
        flush: Duration::from_millis(args.flush_ms),
        batch: args.batch,
        checkpoint_key: spec.checkpoint_key(),
    };
    // The subtree needs the stage, which exists once the node does: build it in two steps.
    let node = builder
        .start()
        .await
        .with_context(|| format!("starting the collector node on {}", args.store.display()))?;
    signals.on_hangup(super::node_args::reload_on_hangup(&node));
    for (name, help, read) in [
        (
            "replikativ_collected_tweets",
            "Tweets collected and committed durably",
            (|r: &CollectReport| r.tweets) as fn(&CollectReport) -> u64,
        ),
        (
            "replikativ_skipped_lines",
            "Source lines skipped (unreadable or without a tweet)",
            |r: &CollectReport| r.skipped_lines,
        ),
    ] {
        let report = report.clone();
        node.ops()
            .add_counter(name, help, move || read(&report.borrow()));
    }
    node.supervisor()
        .start_child(collector::subtree(
            node.stage(),
            node.store().clone(),
            spec.clone(),
            opts,
            report_tx,
            link.clone(),
        ))
        .await
        .context("starting the collector")?;
    if let Some(addr) = node.listen_addr() {
        say!("serving peers at {}://{addr}/", args.node.scheme());
    }
    let follows = match &spec {
        SourceSpec::File { follow, .. } => *follow,
        SourceSpec::Stdin => false,
        SourceSpec::Http { .. } => true,
    };
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    let mut final_flush = Ok(());
    let mut signalled = false;
    // Tweets collected and when, at the last progress line: its rate is since then.
    let mut rate = (0u64, std::time::Instant::now());
    loop {
        tokio::select! {
            _ = signals.recv() => {
                say!("signal received: committing what was read");
                signalled = true;
                final_flush = finish(&link).await;
                break;
            }
            changed = report.changed() => {
                if changed.is_err() { break; }
                if report.borrow().finished && !follows { break; }
            }
            _ = progress.tick() => {
                let r = report.borrow().clone();
                let now = std::time::Instant::now();
                let secs = now.duration_since(rate.1).as_secs_f64().max(1e-3);
                let per_second = r.tweets.saturating_sub(rate.0) as f64 / secs;
                rate = (r.tweets, now);
                say!("collected {} tweets in {} commits ({} buffered, {} repeats, {} lines skipped; {per_second:.0} tweets/s)", r.tweets, r.commits, r.buffered, r.repeats, r.skipped_lines);
            }
        }
    }
    let r = report.borrow().clone();
    if final_flush.is_ok() && !follows && !r.finished && !signalled {
        final_flush = Err(match &r.last_error {
            Some(e) => format!("the collector gave up before the end of the source: {e}"),
            None => "the collector stopped before the end of the source".into(),
        });
    }
    // A writer leaves its store joined: stop taking commits from peers, then join what they
    // sent meanwhile (the same deterministic merge the peers make).
    let joined = join_before_exit(&node, &key).await;
    node.shutdown().await;
    println!(
        "collected {} tweets in {} commits; {} repeats left out; {} lines skipped",
        r.tweets, r.commits, r.repeats, r.skipped_lines
    );
    uncommitted(&spec, &r, final_flush)?;
    joined.map_err(|e| {
        anyhow::anyhow!(
            "every tweet is committed, but joining concurrent heads before exiting failed: {e}; run `replikativ merge --store {}`",
            args.store.display()
        )
    })
}

/// Stops the peer connections, then joins concurrent heads they left.
async fn join_before_exit(node: &Node, key: &CrdtKey) -> Result<(), String> {
    if let Err(e) = node.supervisor().terminate_child("peers").await {
        tracing::warn!("stopping the peer connections before the last join: {e}");
    }
    match node.stage().join_heads(key).await {
        Ok(Some(merge)) => {
            tracing::info!(merge = %merge.short(), "joined concurrent heads before exiting");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(crate::realize::realizer::error_chain(&e)),
    }
}

/// SIGTERM/SIGINT: stop the source, let it feed what it has read, then commit it and join
/// concurrent heads.
async fn finish(link: &CollectorLink) -> Result<(), String> {
    link.halt();
    let deadline = tokio::time::Instant::now() + HALT_GRACE;
    while link.readers() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if link.readers() > 0 {
        tracing::warn!("the source did not stop within {HALT_GRACE:?}; committing what it fed");
    }
    let Some(collector) = link.addr() else {
        return Err("the collector is not running (it is being restarted after a failure)".into());
    };
    match collector.send(FlushNow).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(crate::realize::realizer::error_chain(&e)),
        Err(_) => Err("the collector stopped before committing".into()),
    }
}

/// Exit status 1, saying how many tweets were not committed and why, when the final flush
/// failed or tweets were left uncommitted (DESIGN §8).
fn uncommitted(
    spec: &SourceSpec,
    r: &CollectReport,
    final_flush: Result<(), String>,
) -> Result<()> {
    let rewinds = matches!(spec, SourceSpec::File { .. });
    let left = r.buffered + if rewinds { 0 } else { r.failed };
    if final_flush.is_ok() && left == 0 {
        return Ok(());
    }
    let why = match (&final_flush, &r.last_error) {
        (Err(e), Some(last)) => Some(format!("{e}; the last commit failed: {last}")),
        (Err(e), None) => Some(e.clone()),
        (Ok(()), Some(e)) if left > 0 => Some(e.clone()),
        (Ok(()), _) if left > 0 => Some("the collector stopped before committing".into()),
        _ => None,
    };
    let Some(why) = why else {
        return Ok(());
    };
    let again = if rewinds {
        "; the file source's checkpoint has them read again on the next run"
    } else {
        "; standard input and HTTP sources cannot be read again"
    };
    let count = if left > 0 {
        left.to_string()
    } else {
        "some".into()
    };
    anyhow::bail!("{count} tweets were not committed: {why}{again}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> SourceSpec {
        SourceSpec::File {
            path: "x.jsonl".into(),
            follow: true,
        }
    }

    #[test]
    fn a_clean_stop_exits_zero() {
        let r = CollectReport::default();
        assert!(uncommitted(&file(), &r, Ok(())).is_ok());
        assert!(uncommitted(&SourceSpec::Stdin, &r, Ok(())).is_ok());
    }

    #[test]
    fn a_failed_final_flush_exits_one_saying_how_many_and_why() {
        let r = CollectReport {
            buffered: 7,
            ..CollectReport::default()
        };
        let err = uncommitted(&file(), &r, Err("store: disk full".into())).expect_err("fails");
        let text = err.to_string();
        assert!(
            text.starts_with("7 tweets were not committed: store: disk full"),
            "{text}"
        );
        assert!(text.contains("read again"), "{text}");
    }

    #[test]
    fn tweets_a_failed_commit_dropped_count_only_for_sources_that_cannot_rewind() {
        let r = CollectReport {
            failed: 5,
            last_error: Some("CDVCS x: store".into()),
            ..CollectReport::default()
        };
        // A file source reads them again from its checkpoint: nothing is left uncommitted.
        assert!(uncommitted(&file(), &r, Ok(())).is_ok());
        let err = uncommitted(&SourceSpec::Stdin, &r, Ok(())).expect_err("stdin lost them");
        let text = err.to_string();
        assert!(
            text.starts_with("5 tweets were not committed: CDVCS x: store"),
            "{text}"
        );
        assert!(text.contains("cannot be read again"), "{text}");
    }
}
