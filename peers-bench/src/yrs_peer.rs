//! The workload through yrs: a root map `tweets`, key = tweet id, value = the params bytes as
//! `Any::Buffer`. Sync is the Yjs step 1/step 2 exchange in one direction: the reader sends its
//! state vector (v1), the writer answers with `encode_diff_v1` of it, the reader applies it.

use std::time::Instant;

use anyhow::{Context, ensure};
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, MapRef, ReadTxn, StateVector, Transact, Update};

use crate::figures::{Exchange, Reconnect, SystemFigures};
use crate::workload::{Tweet, Workload};
use crate::{BATCH, RECONNECT_NEW, rss};

/// The yrs version in Cargo.lock (pinned with `=` in Cargo.toml).
const VERSION: &str = "yrs 0.28.1";

struct Peer {
    doc: Doc,
    map: MapRef,
}

impl Peer {
    fn new() -> Peer {
        let doc = Doc::new();
        let map = doc.get_or_insert_map("tweets");
        Peer { doc, map }
    }

    /// Inserts the tweets in one transaction (committed when it drops).
    fn insert(&self, tweets: Vec<Tweet>) {
        let mut txn = self.doc.transact_mut();
        for tweet in tweets {
            self.map.insert(&mut txn, tweet.id, tweet.value);
        }
    }

    fn len(&self) -> u32 {
        self.map.len(&self.doc.transact())
    }
}

/// Reader sends its state vector; writer answers with the diff; reader applies it.
fn sync(writer: &Peer, reader: &Peer, payload_bytes: u64) -> anyhow::Result<Exchange> {
    let start = Instant::now();
    let sv_bytes = reader.doc.transact().state_vector().encode_v1();
    let sv = StateVector::decode_v1(&sv_bytes).context("decoding the state vector")?;
    let diff = writer.doc.transact().encode_diff_v1(&sv);
    let update = Update::decode_v1(&diff).context("decoding the update")?;
    reader
        .doc
        .transact_mut()
        .apply_update(update)
        .context("applying the update")?;
    Ok(Exchange {
        secs: start.elapsed().as_secs_f64(),
        bytes: (sv_bytes.len() + diff.len()) as u64,
        messages: 2,
        payload_bytes,
    })
}

/// Runs ingest, full sync and the reconnects; checks the reader is level after each.
pub fn run(n: u64, mut workload: Workload, source: String) -> anyhow::Result<()> {
    let rss_before_kib = rss::peak_kib();
    let writer = Peer::new();
    let reader = Peer::new();

    let mut ingest_secs = 0.0;
    let mut payload_bytes = 0;
    let mut done = 0u64;
    while done < n {
        let batch = workload.batch(BATCH.min((n - done) as usize));
        done += batch.len() as u64;
        payload_bytes += batch.iter().map(Tweet::payload_len).sum::<u64>();
        let start = Instant::now();
        writer.insert(batch);
        ingest_secs += start.elapsed().as_secs_f64();
    }
    ensure!(
        writer.len() as u64 == n,
        "writer holds {} of {n}",
        writer.len()
    );
    eprintln!(
        "yrs: ingested {n} tweets in {ingest_secs:.2} s, VmHWM {} KiB",
        rss::peak_kib()
    );

    let mut figures = SystemFigures {
        system: VERSION.into(),
        protocol: "reader state vector (v1) → writer `encode_diff_v1` → reader `apply_update`"
            .into(),
        stored:
            "root map `tweets`: key = tweet id, value = params MessagePack bytes (`Any::Buffer`)"
                .into(),
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

    let full_sync = sync(&writer, &reader, payload_bytes)?;
    ensure!(
        reader.len() == writer.len(),
        "reader not level after the full sync"
    );
    eprintln!(
        "yrs: full sync {:.2} s, {} bytes, VmHWM {} KiB",
        full_sync.secs,
        full_sync.bytes,
        rss::peak_kib()
    );
    figures.full_sync = Some(full_sync);
    figures.rss_after_sync_kib = rss::peak_kib();
    figures.emit();

    let mut expected = n;
    for new in RECONNECT_NEW {
        let batch = workload.batch(new);
        let payload: u64 = batch.iter().map(Tweet::payload_len).sum();
        expected += new as u64;
        writer.insert(batch);
        let exchange = sync(&writer, &reader, payload)?;
        ensure!(
            reader.len() as u64 == expected,
            "reader holds {} of {expected} after a reconnect",
            reader.len()
        );
        figures.reconnects.push(Reconnect {
            variant: "stateless (state vector each time)".into(),
            new_tweets: new,
            exchange,
        });
        figures.emit();
    }
    figures.complete = true;
    figures.emit();
    Ok(())
}
