//! # replikativ-web
//!
//! The browser peer (DESIGN §15): the pure core compiled to WebAssembly replicates one CDVCS
//! of tweets from a node over a websocket, verifying every hash, signature and writer rule in
//! Rust, and answers the page's questions (count, newest, search by the sinks' word rule).
//!
//! The JavaScript side (`web/app/app.js`) owns the websocket and IndexedDB; this crate is the
//! [`Peer`] it drives:
//!
//! 1. `new Peer(seed, crdt)`: `seed` is 32 random bytes kept in the browser (the key pair's
//!    secret; draw it once with `crypto.getRandomValues`), `crdt` is `user/uuid`.
//! 2. `restore(record)` for each kept record, in the order kept (each is verified again).
//! 3. On the websocket's open: `connect(nonce)` (32 fresh random bytes); on each binary
//!    message: `receive(bytes)`. Each returns an [`Output`]: send its frames, keep its records
//!    in order and call `stored(ticket)` once each is durable, show its notes, and close the
//!    socket when it says so. On close: `disconnected()`.
//! 4. Ask `count()`, `newest(n)`, `search(term, limit)`, `status()` (JSON strings). Each
//!    output's `transactions()` hands over the transactions it applied, once durable (the
//!    page asks only when a script registered with `window.replikativ.onTransactions(f)`).

pub mod driver;
pub mod replica;
pub mod tweets;

use replikativ_core::crdt::CrdtKey;
use replikativ_core::identity::Keypair;
use wasm_bindgen::prelude::*;

use crate::driver::Driver;
use crate::replica::Replica;

/// Parses `user/uuid` (the form `replikativ` prints a CDVCS in).
pub fn parse_crdt(text: &str) -> Result<CrdtKey, String> {
    let (user, id) = text
        .rsplit_once('/')
        .ok_or_else(|| format!("{text:?} is not a CDVCS: expected user/uuid"))?;
    let id = uuid::Uuid::parse_str(id).map_err(|e| format!("{text:?}: bad uuid: {e}"))?;
    Ok(CrdtKey::new(user, id))
}

fn array32(bytes: &[u8], what: &str) -> Result<[u8; 32], JsError> {
    bytes
        .try_into()
        .map_err(|_| JsError::new(&format!("{what} must be 32 bytes, not {}", bytes.len())))
}

/// The browser peer of one CDVCS.
#[wasm_bindgen]
pub struct Peer {
    driver: Driver,
}

/// What the page must do after a call (see the crate docs).
#[wasm_bindgen]
pub struct Output {
    inner: driver::Output,
}

#[wasm_bindgen]
impl Output {
    /// How many frames to send.
    pub fn sends(&self) -> usize {
        self.inner.send.len()
    }
    /// Frame `i` to send.
    pub fn send(&self, i: usize) -> Vec<u8> {
        self.inner.send.get(i).cloned().unwrap_or_default()
    }
    /// How many records to keep.
    pub fn stores(&self) -> usize {
        self.inner.store.len()
    }
    /// The ticket of record `i`.
    pub fn ticket(&self, i: usize) -> u32 {
        self.inner.store.get(i).map_or(u32::MAX, |s| s.0)
    }
    /// Record `i` to keep.
    pub fn record(&self, i: usize) -> Vec<u8> {
        self.inner
            .store
            .get(i)
            .map(|s| s.1.clone())
            .unwrap_or_default()
    }
    /// Messages for the page, one per line.
    pub fn notes(&self) -> String {
        self.inner.notes.join("\n")
    }
    /// The transactions this call applied (durable in IndexedDB), as a JSON array of
    /// `{"commit","author","op","params"}` (`params` null for a value that arrived before).
    pub fn transactions(&self) -> String {
        json_array(&self.inner.applied)
    }
    /// Why to close the websocket, or `undefined` to keep it.
    pub fn close(&self) -> Option<String> {
        self.inner.close.clone()
    }
}

/// The applied transactions as a JSON array, each decoded only while it is written.
fn json_array(applied: &[replica::Applied]) -> String {
    let mut out = String::from("[");
    for (i, a) in applied.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&a.to_json().to_string());
    }
    out.push(']');
    out
}

fn out(inner: driver::Output) -> Output {
    Output { inner }
}

#[wasm_bindgen]
impl Peer {
    /// A peer with the key pair of `seed` (32 bytes) replicating `crdt` (`user/uuid`).
    #[wasm_bindgen(constructor)]
    pub fn new(seed: &[u8], crdt: &str) -> Result<Peer, JsError> {
        let key = parse_crdt(crdt).map_err(|e| JsError::new(&e))?;
        let keypair = Keypair::from_seed(array32(seed, "the key seed")?);
        Ok(Peer {
            driver: Driver::new(keypair, Replica::new(key)),
        })
    }

    /// Our public key, `ed25519:…` (grant it read on a node that has rules).
    pub fn public_key(&self) -> String {
        self.driver.keypair().public().to_string()
    }

    /// Verifies and applies record number `index` kept earlier; its transactions as JSON
    /// (as [`Output::transactions`]).
    pub fn restore(&mut self, index: usize, record: &[u8]) -> Result<String, JsError> {
        let applied = self
            .driver
            .replica_mut()
            .restore(index, record)
            .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(json_array(&applied))
    }

    /// The websocket opened: starts a session (`nonce`: 32 fresh random bytes).
    pub fn connect(&mut self, nonce: &[u8]) -> Result<Output, JsError> {
        Ok(out(self.driver.connect(array32(nonce, "the nonce")?)))
    }

    /// A binary message arrived.
    pub fn receive(&mut self, frame: &[u8]) -> Output {
        out(self.driver.receive(frame))
    }

    /// Record `ticket` is durable in IndexedDB.
    pub fn stored(&mut self, ticket: u32) -> Output {
        out(self.driver.stored(ticket))
    }

    /// Keeping record `ticket` failed.
    pub fn store_failed(&mut self, ticket: u32, reason: &str) -> Output {
        out(self.driver.store_failed(ticket, reason))
    }

    /// The websocket closed.
    pub fn disconnected(&mut self) {
        self.driver.disconnected();
    }

    /// Distinct tweets held.
    pub fn count(&self) -> usize {
        self.driver.replica().tweets().count()
    }

    /// The `n` newest tweets, as a JSON array.
    pub fn newest(&self, n: usize) -> String {
        serde_json::to_string(&self.driver.replica().tweets().newest(n)).unwrap_or_default()
    }

    /// `{"count":N,"tweets":[…]}` for a one-word search (the sinks' word rule).
    pub fn search(&self, term: &str, limit: usize) -> String {
        serde_json::to_string(&self.driver.replica().tweets().search(term, limit))
            .unwrap_or_default()
    }

    /// `{"connected","caught_up","commits","records","tweets","invalid","received_bytes","heads"}`.
    pub fn status(&self) -> String {
        let r = self.driver.replica();
        let heads: Vec<String> = r.graph().heads().iter().map(|h| h.to_hex()).collect();
        serde_json::json!({
            "connected": self.driver.connected(),
            "caught_up": self.driver.caught_up(),
            "commits": r.graph().len(),
            "records": r.records(),
            "tweets": r.tweets().count(),
            "invalid": r.tweets().invalid(),
            "received_bytes": self.driver.received_bytes(),
            "heads": heads,
        })
        .to_string()
    }
}
