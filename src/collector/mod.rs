//! The seed's collector: a source of tweets feeding a bounded buffer that is flushed into one
//! CDVCS commit (one `add-tweet` transaction per tweet) every `flush` interval or `batch`
//! tweets, with the file position checkpointed in the same atomic batch as the commit.
//!
//! ```text
//!   SourceActor ──(reader thread: file | stdin | HTTP pipe)──► bounded channel
//!        │                                                          │
//!        └──(feeder task, on the arbiter)── Feed chunks ──► CollectorActor ──► ReplicaActor
//!        ▲ restarted with backoff by its supervisor             (buffer, flush)    (durable commit)
//! ```
//! Backpressure: the feeder waits for the collector to accept each chunk, the collector does
//! not accept while a full buffer is being committed, and the reader waits while the channel
//! is full.

pub mod actor;
mod feeder;
mod file_watch;
pub mod http;
pub mod link;
mod reader;
pub mod source;
pub mod spec;

pub use actor::{CollectOptions, CollectReport, CollectorActor, CollectorLink, FlushNow};
pub use source::{SourceActor, SourceSpec};

use std::time::Duration;

use replikativ_actors::{BackoffPolicy, ChildSpec, Restart, Shutdown, Strategy, Supervisor};
use tokio::sync::watch;

use crate::stage::Stage;
use crate::store::Store;

/// The collector subtree: `collect (rest_for_one)` over the collector (buffer) and its source.
/// A failing source restarts alone and resumes after what it fed; a failing collector
/// restarts both, and the source resumes from the durable checkpoint.
pub fn subtree(
    stage: Stage,
    store: Store,
    source: SourceSpec,
    opts: CollectOptions,
    report: watch::Sender<CollectReport>,
    link: CollectorLink,
) -> ChildSpec {
    let collector_link = link.clone();
    ChildSpec::supervisor(
        Supervisor::new("collect")
            .strategy(Strategy::RestForOne)
            .intensity(10, Duration::from_secs(60))
            .backoff(
                BackoffPolicy::exponential(Duration::from_millis(200), Duration::from_secs(60))
                    .jitter(0.3)
                    .reset_after(Duration::from_secs(30)),
            )
            .child(
                ChildSpec::actor_in("collector", link.slot(), move || {
                    CollectorActor::new(
                        stage.clone(),
                        opts.clone(),
                        collector_link.clone(),
                        report.clone(),
                    )
                })
                .shutdown(Shutdown::Timeout(Duration::from_secs(30))),
            )
            .child(
                ChildSpec::actor("source", move || {
                    SourceActor::new(source.clone(), store.clone(), link.clone())
                })
                .restart(Restart::Transient)
                .shutdown(Shutdown::Timeout(Duration::from_secs(2))),
            ),
    )
}
