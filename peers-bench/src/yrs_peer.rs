//! The workload through yrs: a root map `tweets`, key = tweet id, value = the params bytes as
//! `Any::Buffer`. Sync is the Yjs step 1/step 2 exchange in one direction: the reader sends its
//! state vector (v1), the writer answers with `encode_diff_v1` of it, the reader applies it.

use std::time::Instant;

use anyhow::Context;
use yrs::updates::decoder::Decode;
use yrs::updates::encoder::Encode;
use yrs::{Doc, Map, MapRef, ReadTxn, StateVector, Transact, Update};

use crate::drive::Pair;
use crate::figures::Exchange;
use crate::workload::Tweet;

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

/// The writer and the reader.
pub struct Yrs {
    writer: Peer,
    reader: Peer,
}

impl Pair for Yrs {
    const NAME: &'static str = "yrs";
    const VERSION: &'static str = VERSION;
    const PROTOCOL: &'static str =
        "reader state vector (v1) → writer `encode_diff_v1` → reader `apply_update`";
    const STORED: &'static str =
        "root map `tweets`: key = tweet id, value = params MessagePack bytes (`Any::Buffer`)";
    const RECONNECTS: &'static [&'static str] = &["stateless (state vector each time)"];

    fn new() -> Self {
        Yrs {
            writer: Peer::new(),
            reader: Peer::new(),
        }
    }

    fn insert(&mut self, tweets: Vec<Tweet>) -> anyhow::Result<()> {
        self.writer.insert(tweets);
        Ok(())
    }

    fn writer_len(&self) -> u64 {
        u64::from(self.writer.len())
    }

    fn reader_level(&mut self, n: u64) -> bool {
        u64::from(self.reader.len()) == n && self.reader.len() == self.writer.len()
    }

    fn full_sync(&mut self, payload_bytes: u64) -> anyhow::Result<Exchange> {
        sync(&self.writer, &self.reader, payload_bytes)
    }

    fn reconnect(&mut self, _kind: usize, payload_bytes: u64) -> anyhow::Result<Exchange> {
        sync(&self.writer, &self.reader, payload_bytes)
    }
}
