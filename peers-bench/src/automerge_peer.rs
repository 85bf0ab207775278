//! The workload through automerge: the root map, key = tweet id, value = the params bytes as
//! `ScalarValue::Bytes`, one `commit` per batch. Sync is automerge's own protocol
//! (`automerge::sync`): both sides generate and receive messages with one `sync::State` each
//! until neither has a message, every message encoded to bytes and decoded on the other side.

use std::time::Instant;

use anyhow::{Context, bail};
use automerge::sync::{Message, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc};

use crate::drive::Pair;
use crate::figures::Exchange;
use crate::workload::Tweet;

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

/// The writer and the reader, with the sync states they keep between connections.
pub struct Automerge {
    writer: AutoCommit,
    reader: AutoCommit,
    writer_state: State,
    reader_state: State,
}

impl Pair for Automerge {
    const NAME: &'static str = "automerge";
    const VERSION: &'static str = VERSION;
    const PROTOCOL: &'static str = "`automerge::sync` messages (encoded, decoded) between two `sync::State`s until neither side has one";
    const STORED: &'static str = "root map: key = tweet id, value = params MessagePack bytes (`ScalarValue::Bytes`), one `commit` per batch";
    const RECONNECTS: &'static [&'static str] =
        &["persisted sync state", "fresh sync state (restart)"];

    fn new() -> Self {
        Automerge {
            writer: AutoCommit::new(),
            reader: AutoCommit::new(),
            writer_state: State::new(),
            reader_state: State::new(),
        }
    }

    fn insert(&mut self, tweets: Vec<Tweet>) -> anyhow::Result<()> {
        insert(&mut self.writer, tweets)
    }

    fn writer_len(&self) -> u64 {
        self.writer.length(ROOT) as u64
    }

    fn reader_level(&mut self, n: u64) -> bool {
        self.reader.get_heads() == self.writer.get_heads() && self.reader.length(ROOT) as u64 == n
    }

    fn full_sync(&mut self, payload_bytes: u64) -> anyhow::Result<Exchange> {
        sync(
            &mut self.writer,
            &mut self.writer_state,
            &mut self.reader,
            &mut self.reader_state,
            payload_bytes,
        )
    }

    fn reconnect(&mut self, kind: usize, payload_bytes: u64) -> anyhow::Result<Exchange> {
        // A reconnect is a new connection: in-flight bookkeeping does not survive it.
        let (mut ws, mut rs) = if kind == 1 {
            (State::new(), State::new())
        } else {
            (
                persisted(&self.writer_state)?,
                persisted(&self.reader_state)?,
            )
        };
        let exchange = sync(
            &mut self.writer,
            &mut ws,
            &mut self.reader,
            &mut rs,
            payload_bytes,
        )?;
        self.writer_state = ws;
        self.reader_state = rs;
        Ok(exchange)
    }
}
