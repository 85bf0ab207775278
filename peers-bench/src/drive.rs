//! The run every system goes through: ingest the workload in batches, bring an empty reader
//! level, then reconnect after 0, 10 and 1,000 new tweets; the reader is checked level after
//! each step, and the figures are printed after each phase.

use std::time::Instant;

use anyhow::ensure;

use crate::figures::{Exchange, Reconnect, SystemFigures};
use crate::workload::{Tweet, Workload};
use crate::{BATCH, RECONNECT_NEW, rss};

/// A writer and a reader of one system.
pub trait Pair: Sized {
    /// Short name for progress lines, e.g. `yrs`.
    const NAME: &'static str;
    /// Crate and version, e.g. `yrs 0.28.1`.
    const VERSION: &'static str;
    /// How the sync is done.
    const PROTOCOL: &'static str;
    /// What is stored per tweet.
    const STORED: &'static str;
    /// The ways a reconnect is done, each run after its own batch of new tweets.
    const RECONNECTS: &'static [&'static str];

    /// An empty writer and reader.
    fn new() -> Self;
    /// Inserts `tweets` on the writer as one transaction or commit.
    fn insert(&mut self, tweets: Vec<Tweet>) -> anyhow::Result<()>;
    /// Tweets the writer holds.
    fn writer_len(&self) -> u64;
    /// Whether the reader holds `n` tweets and is level with the writer.
    fn reader_level(&mut self, n: u64) -> bool;
    /// Brings the reader level with the writer, the first time.
    fn full_sync(&mut self, payload_bytes: u64) -> anyhow::Result<Exchange>;
    /// Brings the reader level again, as a reconnect of kind `RECONNECTS[kind]`.
    fn reconnect(&mut self, kind: usize, payload_bytes: u64) -> anyhow::Result<Exchange>;
}

/// Runs ingest, full sync and the reconnects of `P`; checks the reader is level after each.
pub fn run<P: Pair>(n: u64, mut workload: Workload, source: String) -> anyhow::Result<()> {
    let rss_before_kib = rss::peak_kib();
    let mut pair = P::new();
    let name = P::NAME;

    let mut ingest_secs = 0.0;
    let mut payload_bytes = 0;
    let mut done = 0u64;
    while done < n {
        let batch = workload.batch(BATCH.min((n - done) as usize));
        done += batch.len() as u64;
        payload_bytes += batch.iter().map(Tweet::payload_len).sum::<u64>();
        let start = Instant::now();
        pair.insert(batch)?;
        ingest_secs += start.elapsed().as_secs_f64();
    }
    ensure!(
        pair.writer_len() == n,
        "writer holds {} of {n}",
        pair.writer_len()
    );
    eprintln!(
        "{name}: ingested {n} tweets in {ingest_secs:.2} s, VmHWM {} KiB",
        rss::peak_kib()
    );

    let mut figures = SystemFigures {
        system: P::VERSION.into(),
        protocol: P::PROTOCOL.into(),
        stored: P::STORED.into(),
        n,
        base_tweets: workload.base_len(),
        source,
        payload_bytes,
        ingest_secs,
        full_sync: None,
        reconnects: Vec::new(),
        rss_before_kib,
        rss_end_kib: 0,
        peak_rss_kib: 0,
        rss_after_sync_kib: 0,
        complete: false,
        note: None,
    };
    figures.emit();

    let full_sync = pair.full_sync(payload_bytes)?;
    ensure!(pair.reader_level(n), "reader not level after the full sync");
    eprintln!(
        "{name}: full sync {:.2} s, {} bytes, VmHWM {} KiB",
        full_sync.secs,
        full_sync.bytes,
        rss::peak_kib()
    );
    figures.full_sync = Some(full_sync);
    figures.rss_after_sync_kib = rss::peak_kib();
    figures.emit();

    let mut expected = n;
    for new in RECONNECT_NEW {
        for (kind, variant) in P::RECONNECTS.iter().enumerate() {
            let batch = workload.batch(new);
            let payload: u64 = batch.iter().map(Tweet::payload_len).sum();
            expected += new as u64;
            pair.insert(batch)?;
            let exchange = pair.reconnect(kind, payload)?;
            ensure!(
                pair.reader_level(expected),
                "reader not level after a reconnect ({variant}, {new} new)"
            );
            eprintln!(
                "{name}: reconnect ({variant}, {new} new) {:.3} s, VmHWM {} KiB",
                exchange.secs,
                rss::peak_kib()
            );
            figures.reconnects.push(Reconnect {
                variant: (*variant).into(),
                new_tweets: new,
                exchange,
            });
            figures.emit();
        }
    }
    figures.complete = true;
    figures.emit();
    Ok(())
}
