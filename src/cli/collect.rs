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
use crate::node::Node;

/// Runs `collect`.
pub fn run(args: CollectArgs) -> Result<()> {
    if args.batch == 0 {
        return Err(UsageError("--batch must be at least 1".into()).into());
    }
    if args.flush_ms == 0 {
        return Err(UsageError("--flush-ms must be at least 1".into()).into());
    }
    let token = match &args.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let spec = SourceSpec::parse(&args.source, args.follow, token);
    match &spec {
        SourceSpec::File { path, .. } => {
            let meta = std::fs::metadata(path)
                .with_context(|| format!("the source file {} cannot be read", path.display()))?;
            if meta.is_dir() {
                anyhow::bail!("the source {} is a directory, not a file", path.display());
            }
        }
        SourceSpec::Http { url, .. } if url.starts_with("https://") => {
            anyhow::bail!(
                "{url}: https sources are not supported by this build; use http:// (e.g. through a local TLS-terminating proxy)"
            );
        }
        _ => {}
    }
    let key = CrdtKey::new(args.crdt.user.clone(), args.crdt.cdvcs);
    actix_rt::System::new().block_on(collect(args, spec, key))
}

async fn collect(args: CollectArgs, spec: SourceSpec, key: CrdtKey) -> Result<()> {
    let mut signals = Signals::install()?;
    let mut builder = Node::builder()
        .name("collector")
        .store_dir(&args.store)
        .author(args.crdt.user.clone())
        .cdvcs(key.clone());
    if let Some(listen) = &args.listen {
        builder = builder.listen(listen.clone());
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
    node.supervisor()
        .start_child(collector::subtree(
            node.stage(),
            node.inner().store.clone(),
            spec.clone(),
            opts,
            report_tx,
            link.clone(),
        ))
        .await
        .context("starting the collector")?;
    if let Some(addr) = node.listen_addr() {
        eprintln!("serving peers at ws://{addr}/");
    }
    let follows = match &spec {
        SourceSpec::File { follow, .. } => *follow,
        SourceSpec::Stdin => false,
        SourceSpec::Http { .. } => true,
    };
    let mut progress = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = signals.recv() => {
                eprintln!("signal received: flushing and committing");
                if let Some(c) = link.addr()
                    && let Ok(Err(e)) = c.send(FlushNow).await
                {
                    tracing::error!("final flush failed: {e}");
                }
                break;
            }
            changed = report.changed() => {
                if changed.is_err() { break; }
                if report.borrow().finished && !follows { break; }
            }
            _ = progress.tick() => {
                let r = report.borrow().clone();
                eprintln!("collected {} tweets in {} commits ({} buffered, {} lines skipped)", r.tweets, r.commits, r.buffered, r.skipped_lines);
            }
        }
    }
    let r = report.borrow().clone();
    node.shutdown().await;
    println!(
        "collected {} tweets in {} commits; {} lines skipped",
        r.tweets, r.commits, r.skipped_lines
    );
    Ok(())
}
