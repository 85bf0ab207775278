//! `replikativ demo`: the seed's whole pipeline in one process, on embedded defaults.
//!
//! A collector node commits the compiled-in sample tweets into a CDVCS and serves it on a
//! loopback port; an analysis node subscribes, replicates it into its own store and realizes
//! it into SQLite; then the answers: count, a full-text search, the top accounts as a table
//! and an SVG chart.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::sync::watch;

use super::args::{DEFAULT_CDVCS, DEFAULT_USER, DemoArgs};
use super::query::{one_line, print_top};
use crate::collector::{self, CollectOptions, CollectReport, CollectorLink, SourceSpec};
use crate::crdt::CrdtKey;
use crate::node::Node;
use crate::tweets::{SAMPLE, SAMPLE_LICENSE, TweetDb, top_chart_svg};

/// The term the demo searches for.
const DEMO_TERM: &str = "brexit";

/// Runs `demo`.
pub fn run(args: DemoArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let dir = std::fs::canonicalize(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let source = dir.join("sample-tweets.jsonl");
    write_sample(&source, &dir)?;
    let cdvcs = DEFAULT_CDVCS
        .parse()
        .context("the default CDVCS id is not a UUID")?;
    let key = CrdtKey::new(DEFAULT_USER, cdvcs);
    for store in ["collector-store", "analysis-store"].map(|s| dir.join(s)) {
        upgrade_earlier(&store)?;
    }
    let started = Instant::now();
    actix_rt::System::new().block_on(demo(&dir, &source, key))?;
    say!("demo finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The demo's own store `dir`, left by an earlier build in an older format, is upgraded in
/// place (the old file kept beside it as a backup) rather than refused: a second run of the
/// demo after an update just works.
fn upgrade_earlier(dir: &Path) -> Result<()> {
    if !dir.join(crate::store::FILE_NAME).exists() {
        return Ok(());
    }
    let outcome = crate::store::upgrade::upgrade(dir, &mut |step| say!("demo: upgrade: {step}"))
        .with_context(|| format!("upgrading the demo's store {}", dir.display()))?;
    if let crate::store::upgrade::Upgraded::Done { backup, .. } = outcome {
        say!(
            "demo: {} was written by an earlier build; upgraded to store format {} (the old one is kept as {})",
            dir.display(),
            crate::store::FORMAT_VERSION,
            backup.display()
        );
    }
    Ok(())
}

fn write_sample(source: &Path, dir: &Path) -> Result<()> {
    let mut f =
        std::fs::File::create(source).with_context(|| format!("writing {}", source.display()))?;
    for (_, contents) in SAMPLE {
        f.write_all(contents.as_bytes())?;
        if !contents.ends_with('\n') {
            f.write_all(b"\n")?;
        }
    }
    std::fs::write(dir.join("SAMPLE-LICENSE"), SAMPLE_LICENSE)?;
    Ok(())
}

async fn demo(dir: &Path, source: &Path, key: CrdtKey) -> Result<()> {
    say!("[1/4] collector: committing the sample tweets into CDVCS {key}");
    let collector = Node::builder()
        .name("collector")
        .store_dir(dir.join("collector-store"))
        .listen("127.0.0.1:0")
        .cdvcs(key.clone())
        .start()
        .await
        .context("starting the collector node")?;
    let (report_tx, mut report) = watch::channel(CollectReport::default());
    let spec = SourceSpec::File {
        path: source.to_path_buf(),
        follow: false,
    };
    collector
        .supervisor()
        .start_child(collector::subtree(
            collector.stage(),
            collector.store().clone(),
            spec.clone(),
            CollectOptions {
                key: key.clone(),
                flush: Duration::from_millis(200),
                batch: 100,
                checkpoint_key: spec.checkpoint_key(),
            },
            report_tx,
            CollectorLink::default(),
        ))
        .await
        .context("starting the collect subtree")?;
    while !report.borrow().finished {
        tokio::time::timeout(Duration::from_secs(60), report.changed())
            .await
            .context("the collector made no progress for 60 s")?
            .context("the collector stopped")?;
    }
    let r = report.borrow().clone();
    say!(
        "      {} tweets committed in {} commits this run ({} lines skipped)",
        r.tweets,
        r.commits,
        r.skipped_lines
    );
    let addr = collector
        .listen_addr()
        .context("the collector is not listening")?;
    let url = format!("ws://{addr}/");

    say!("[2/4] analysis: replicating from {url} and realizing into SQLite");
    let sqlite = dir.join("tweets.sqlite");
    let analysis = super::analyze::start_analysis_node(
        &dir.join("analysis-store"),
        &url,
        &super::sink_target::SinkTarget::Sqlite(sqlite.clone()),
        &key,
        &Default::default(),
        None,
    )
    .await?;
    super::analyze::wait_realized(&analysis, &url, &key, Duration::from_secs(60)).await?;

    say!("[3/4] supervision trees");
    println!("{}", collector.tree().await?);
    println!("{}", analysis.tree().await?);
    analysis.shutdown().await;
    collector.shutdown().await;

    say!("[4/4] answers");
    let db = TweetDb::open(&sqlite)?;
    let stats = db.stats()?;
    println!(
        "tweets: {} distinct ({} add-tweet ops applied from {} commits)",
        stats.tweets, stats.ops_applied, stats.commits_applied
    );
    let (hits, rows) = db.search(DEMO_TERM, 3)?;
    println!("full-text search {DEMO_TERM:?}: {hits} tweets, e.g.");
    for t in rows {
        println!(
            "  @{}: {}",
            t.username.as_deref().unwrap_or("?"),
            one_line(&t.text)
        );
    }
    let top = db.top(10)?;
    println!("most active accounts:");
    print_top(&top);
    let chart = dir.join("top-accounts.svg");
    top_chart_svg(&top, &chart)?;
    println!();
    println!(
        "store (collector): {}",
        dir.join("collector-store").display()
    );
    println!(
        "store (analysis):  {}",
        dir.join("analysis-store").display()
    );
    println!("sqlite:            {}", sqlite.display());
    println!("chart:             {}", chart.display());
    println!(
        "try: replikativ query --sqlite {} search obama",
        sqlite.display()
    );
    Ok(())
}
