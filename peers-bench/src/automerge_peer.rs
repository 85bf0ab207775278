//! The workload through automerge: the root map, key = tweet id, value = the params bytes as
//! `ScalarValue::Bytes`, one `commit` per batch. Sync is automerge's own protocol
//! (`automerge::sync`): both sides generate and receive messages with one `sync::State` each
//! until neither has a message, every message encoded to bytes and decoded on the other side.

use std::time::Instant;

use anyhow::{Context, bail, ensure};
use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};

use crate::figures::{Exchange, Reconnect, SystemFigures};
use crate::workload::{Tweet, Workload};
use crate::{BATCH, RECONNECT_NEW, rss};

/// The automerge version in Cargo.lock (pinned with `=` in Cargo.toml).
const VERSION: &str = "automerge 0.12.0";

/// A protocol run that has not settled by then is a bug, not a slow network.
const MAX_ROUNDS: u32 = 1_000;

/// Inserts the tweets and commits them as one change.
fn insert(doc: &mut AutoCommit, tweets: Vec<Tweet>) -> anyhow::Result<()> {
    if tweets.is_empty() {
        return Ok(());
    }
    for tweet in tweets {
        doc.put(ROOT, tweet.id, tweet.value)
            .context("putting a tweet")?;
    }
    doc.commit();
    Ok(())
}

/// Sends one message from `from` to `to` if `from` has one; returns its wire length.
fn step(
    from: &mut AutoCommit,
    from_state: &mut State,
    to: &mut AutoCommit,
    to_state: &mut State,
) -> anyhow::Result<Option<usize>> {
    let Some(message) = from.sync().generate_sync_message(from_state) else {
        return Ok(None);
    };
    let wire = message.encode();
    let message = Message::decode(&wire).context("decoding a sync message")?;
    to.sync()
        .receive_sync_message(to_state, message)
        .context("receiving a sync message")?;
    Ok(Some(wire.len()))
}

/// The reader opens (as a reconnecting client does); both sides answer until quiet.
fn sync(
    writer: &mut AutoCommit,
    writer_state: &mut State,
    reader: &mut AutoCommit,
    reader_state: &mut State,
    payload_bytes: u64,
) -> anyhow::Result<Exchange> {
    let start = Instant::now();
    let mut exchange = Exchange {
        payload_bytes,
        ..Exchange::default()
    };
    for _ in 0..MAX_ROUNDS {
        let up = step(reader, reader_state, writer, writer_state)?;
        let down = step(writer, writer_state, reader, reader_state)?;
        for len in up.iter().chain(down.iter()) {
            exchange.bytes += *len as u64;
            exchange.messages += 1;
        }
        if up.is_none() && down.is_none() {
            exchange.secs = start.elapsed().as_secs_f64();
            return Ok(exchange);
        }
    }
    bail!("sync did not settle in {MAX_ROUNDS} rounds")
}

/// A sync state as a peer keeps it across a restart: `encode` (the shared heads) and `decode`.
fn persisted(state: &State) -> anyhow::Result<State> {
    State::decode(&state.encode()).context("decoding a persisted sync state")
}

/// Runs ingest, full sync and the reconnects; checks the reader is level after each.
pub fn run(n: u64, mut workload: Workload, source: String) -> anyhow::Result<()> {
    let rss_before_kib = rss::peak_kib();
    let mut writer = AutoCommit::new();
    let mut reader = AutoCommit::new();

    let mut ingest_secs = 0.0;
    let mut payload_bytes = 0;
    let mut done = 0u64;
    while done < n {
        let batch = workload.batch(BATCH.min((n - done) as usize));
        done += batch.len() as u64;
        payload_bytes += batch.iter().map(Tweet::payload_len).sum::<u64>();
        let start = Instant::now();
        insert(&mut writer, batch)?;
        ingest_secs += start.elapsed().as_secs_f64();
    }
    ensure!(
        writer.length(ROOT) as u64 == n,
        "writer holds {} of {n}",
        writer.length(ROOT)
    );
    eprintln!(
        "automerge: ingested {n} tweets in {ingest_secs:.2} s, VmHWM {} KiB",
        rss::peak_kib()
    );

    let mut figures = SystemFigures {
        system: VERSION.into(),
        protocol: "`automerge::sync` messages (encoded, decoded) between two `sync::State`s until neither side has one".into(),
        stored: "root map: key = tweet id, value = params MessagePack bytes (`ScalarValue::Bytes`), one `commit` per batch".into(),
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

    let mut writer_state = State::new();
    let mut reader_state = State::new();
    let full_sync = sync(
        &mut writer,
        &mut writer_state,
        &mut reader,
        &mut reader_state,
        payload_bytes,
    )?;
    ensure!(
        reader.get_heads() == writer.get_heads() && reader.length(ROOT) as u64 == n,
        "reader not level after the full sync"
    );
    eprintln!(
        "automerge: full sync {:.2} s, {} bytes, VmHWM {} KiB",
        full_sync.secs,
        full_sync.bytes,
        rss::peak_kib()
    );
    figures.full_sync = Some(full_sync);
    figures.rss_after_sync_kib = rss::peak_kib();
    figures.emit();

    let mut expected = n;
    for new in RECONNECT_NEW {
        for fresh in [false, true] {
            let batch = workload.batch(new);
            let payload: u64 = batch.iter().map(Tweet::payload_len).sum();
            expected += new as u64;
            insert(&mut writer, batch)?;
            // A reconnect is a new connection: in-flight bookkeeping does not survive it.
            let (mut ws, mut rs, variant) = if fresh {
                (State::new(), State::new(), "fresh sync state (restart)")
            } else {
                (
                    persisted(&writer_state)?,
                    persisted(&reader_state)?,
                    "persisted sync state",
                )
            };
            let exchange = sync(&mut writer, &mut ws, &mut reader, &mut rs, payload)?;
            ensure!(
                reader.get_heads() == writer.get_heads() && reader.length(ROOT) as u64 == expected,
                "reader not level after a reconnect"
            );
            eprintln!(
                "automerge: reconnect ({variant}, {new} new) {:.3} s, VmHWM {} KiB",
                exchange.secs,
                rss::peak_kib()
            );
            writer_state = ws;
            reader_state = rs;
            figures.reconnects.push(Reconnect {
                variant: variant.into(),
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
