//! The seed's program ("Replicating with Datomic", 2017), in Rust with this library's API.
//!
//! A collector peer buffers a stream of tweets and every few seconds commits the batch into a
//! CDVCS; an analysis peer replicates that CDVCS over a websocket and realizes every
//! `add-tweet` transaction, exactly once, into SQLite, where we ask it questions.
//!
//! ```text
//! cargo run --example collector -- [TWEETS.jsonl] [WORK_DIR]
//! ```
//! Without arguments it collects the repo's `data/tweets/brexit.jsonl` into a temp directory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use replikativ::collector::{self, CollectOptions, CollectReport, CollectorLink, SourceSpec};
use replikativ::crdt::CrdtKey;
use replikativ::node::{Node, RealizerSpec};
use replikativ::realize::realizer::ConflictPolicy;
use replikativ::realize::{Sink, SinkError};
use replikativ::tweets::{TweetDb, open_sink};

#[actix_rt::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let source = args.next().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/tweets/brexit.jsonl").to_string()
    });
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("replikativ-collector-{}", std::process::id())),
    };
    // The CDVCS of the seed: user and id.
    let tweets = CrdtKey::new(
        "mail:twitter@crawler.com",
        "12d49511-e733-4007-937b-460c3794fae9".parse()?,
    );

    // The collector peer: a store, the CDVCS, a websocket server for other peers, and the
    // collect subtree (source → buffer → commit every 10 s or 1000 tweets).
    let collector_peer = Node::builder()
        .name("collector")
        .store_dir(dir.join("collector"))
        .listen("127.0.0.1:0")
        .cdvcs(tweets.clone())
        .start()
        .await?;
    let (report, mut progress) = tokio::sync::watch::channel(CollectReport::default());
    let spec = SourceSpec::parse(&source, false, None);
    let opts = CollectOptions {
        key: tweets.clone(),
        flush: Duration::from_secs(10),
        batch: 1000,
        checkpoint_key: spec.checkpoint_key(),
    };
    let stage = collector_peer.stage();
    let store = collector_peer.store().clone();
    let link = CollectorLink::default();
    collector_peer
        .supervisor()
        .start_child(collector::subtree(stage, store, spec, opts, report, link))
        .await?;
    while !progress.borrow().finished {
        progress.changed().await?;
    }
    println!("collected {} tweets", progress.borrow().tweets);

    // The analysis peer: subscribes to the CDVCS and streams it into SQLite. The handler for
    // `add-tweet` is the seed's eval-fn; the checkpoint commits with the effects.
    let url = format!(
        "ws://{}/",
        collector_peer.listen_addr().context("listening")?
    );
    let sqlite = dir.join("tweets.sqlite");
    let sink_path = sqlite.clone();
    let analysis_peer = Node::builder()
        .name("analysis")
        .store_dir(dir.join("analysis"))
        .connect(url.as_str())
        .realize(RealizerSpec {
            name: "sqlite".into(),
            key: tweets.clone(),
            open: Arc::new(move || -> Result<Box<dyn Sink>, SinkError> {
                Ok(Box::new(open_sink(&sink_path)?))
            }),
            policy: ConflictPolicy::Wait,
        })
        .start()
        .await?;
    let head = collector_peer.stage().heads(&tweets).await?;
    let realizer = analysis_peer.realizer("sqlite").context("realizer")?;
    while !head.iter().all(|h| realizer.is_applied(h)) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Ask questions, as the seed did with Datalog.
    let db = TweetDb::open(&sqlite)?;
    println!("{} tweets realized", db.count()?);
    for (user, n) in db.top(5)? {
        println!("  @{user}: {n}");
    }
    println!("{}", analysis_peer.tree().await?);
    analysis_peer.shutdown().await;
    collector_peer.shutdown().await;
    Ok(())
}
