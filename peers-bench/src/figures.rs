//! What one system's child process measures and hands back to the parent (as JSON).

use serde::{Deserialize, Serialize};

/// One exchange between writer and reader: everything both sides sent until neither had more.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Exchange {
    /// Wall time of the whole exchange: encode, decode and apply on both sides.
    pub secs: f64,
    /// Bytes of all messages, both directions, as encoded for the wire.
    pub bytes: u64,
    /// Number of messages, both directions.
    pub messages: u32,
    /// Key plus value bytes of the tweets the reader lacked (the content that had to move).
    pub payload_bytes: u64,
}

impl Exchange {
    /// Bytes beyond the content that had to move (negative when compression beat it).
    pub fn overhead(&self) -> i64 {
        self.bytes as i64 - self.payload_bytes as i64
    }
}

/// A reconnect after the full sync.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reconnect {
    /// Which sync state the peers start from, e.g. `"persisted sync state"`.
    pub variant: String,
    /// Tweets the writer added since the last sync.
    pub new_tweets: usize,
    /// The exchange that brought the reader level again.
    pub exchange: Exchange,
}

/// Everything measured for one system.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SystemFigures {
    /// Crate and version, e.g. `"yrs 0.28.1"`.
    pub system: String,
    /// How the sync was done.
    pub protocol: String,
    /// What was stored per tweet.
    pub stored: String,
    /// Tweets ingested before the full sync.
    pub n: u64,
    /// Distinct base tweets the workload repeats.
    pub base_tweets: usize,
    /// Where the base tweets came from.
    pub source: String,
    /// Key plus value bytes of the N tweets.
    pub payload_bytes: u64,
    /// Time to insert the N tweets, batches of 1,000, one transaction or commit each.
    pub ingest_secs: f64,
    /// Bringing an empty reader level with the writer (`None` if the run ended before).
    pub full_sync: Option<Exchange>,
    /// Reconnects after the full sync.
    pub reconnects: Vec<Reconnect>,
    /// VmHWM in KiB after loading the base tweets, before the system's documents exist.
    pub rss_before_kib: u64,
    /// VmRSS in KiB at the end, with writer and reader both alive.
    pub rss_end_kib: u64,
    /// VmHWM in KiB when these figures were emitted.
    pub peak_rss_kib: u64,
    /// VmHWM in KiB right after the full sync (ingest + full sync only).
    pub rss_after_sync_kib: u64,
    /// Every phase ran.
    pub complete: bool,
    /// Why the run is incomplete, filled in by the parent when a child dies.
    pub note: Option<String>,
}

impl SystemFigures {
    /// Refreshes the RSS figures and prints these figures as one JSON line on stdout, so the
    /// parent keeps every phase finished so far even if a later phase kills the child.
    pub fn emit(&mut self) {
        use std::io::Write;
        self.rss_end_kib = crate::rss::current_kib();
        self.peak_rss_kib = crate::rss::peak_kib();
        if let Ok(line) = serde_json::to_string(self) {
            let mut out = std::io::stdout().lock();
            // A closed stdout only loses the report, which the parent then says.
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
