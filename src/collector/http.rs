//! The HTTP source: a JSON-lines stream fetched with awc (on the actix arbiter, since awc's
//! client is `!Send`) and piped to the reader thread through a bounded channel.
//!
//! A stream that ends, drops, stalls (nothing for [`STALL_TIMEOUT`]) or is refused is
//! requested again after a capped, jittered exponential backoff ([`reconnect_policy`]). The
//! sequence starts again only after a stream stayed up delivering data for
//! [`STABLE_UPTIME`], so a server that closes at once, or serves a finite file, is asked
//! less and less often instead of in a tight loop. A 429 or 5xx answer's `Retry-After`
//! (seconds) lengthens the wait, never shortens it. Lines cut by a drop are terminated with a
//! newline, so the reader reports them as damaged lines instead of gluing them to the next.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use replikativ_actors::{BackoffPolicy, ChildBackoff};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Chunks buffered between the fetcher and the reader (bounded: the fetcher waits).
const PIPE_CHUNKS: usize = 64;
/// A stream that sends nothing (not even a keep-alive newline) for this long is reconnected.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(90);
/// The first wait before a stream is requested again.
pub const RECONNECT_INITIAL: Duration = Duration::from_secs(1);
/// Growth of the wait from one attempt to the next.
pub const RECONNECT_MULTIPLIER: f64 = 2.0;
/// Random spread of each wait, as a fraction (0.2 = ±20 %).
pub const RECONNECT_JITTER: f64 = 0.2;
/// The longest wait between attempts, jitter and `Retry-After` included (the seed waited 15
/// minutes on rate limits).
pub const MAX_WAIT: Duration = Duration::from_secs(900);
/// A stream that delivered data for this long was healthy: the next wait is the initial one.
pub const STABLE_UPTIME: Duration = Duration::from_secs(30);

/// The waits between requests of a stream.
pub fn reconnect_policy() -> BackoffPolicy {
    BackoffPolicy::exponential(RECONNECT_INITIAL, MAX_WAIT)
        .multiplier(RECONNECT_MULTIPLIER)
        .jitter(RECONNECT_JITTER)
        .reset_after(STABLE_UPTIME)
}

/// The reader end of the pipe.
pub struct PipeReader {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for PipeReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.buf = chunk,
                None => return Ok(&[]),
            }
        }
        Ok(&self.buf)
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.buf.len());
        let _ = self.buf.split_to(amt);
    }
}

/// Starts fetching `url` on the current arbiter; returns the reader end.
///
/// `stop` drops the stream at once; `halt` (SIGTERM) ends it too, and the reader end then
/// reads what was already fetched up to its end, so nothing fetched is left unread.
pub fn start_fetcher(
    url: String,
    token: Option<String>,
    tls: Arc<rustls::ClientConfig>,
    stop: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
) -> PipeReader {
    let (tx, rx) = mpsc::channel(PIPE_CHUNKS);
    let stop = Stop { stop, halt };
    actix_rt::spawn(fetch_loop(url, token, tls, stop, tx));
    PipeReader {
        rx,
        buf: Bytes::new(),
    }
}

/// Why a request of the stream is over.
#[derive(Debug)]
enum StreamEnd {
    /// The source is stopping, or its reader is gone: do not request again.
    Stopped,
    /// Over; request again after a wait.
    Over {
        why: String,
        /// How long the stream delivered data (from its answer to its last chunk).
        delivered_for: Duration,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

impl StreamEnd {
    fn failed(why: String) -> StreamEnd {
        StreamEnd::Over {
            why,
            delivered_for: Duration::ZERO,
            retry_after: None,
        }
    }
}

/// The wait before the next request: the backoff's, lengthened to the server's
/// `Retry-After`, capped at [`MAX_WAIT`].
fn next_wait(
    backoff: &mut ChildBackoff,
    delivered_for: Duration,
    retry_after: Option<Duration>,
) -> Duration {
    backoff
        .next_delay(delivered_for)
        .max(retry_after.unwrap_or_default())
        .min(MAX_WAIT)
}

/// Why the fetcher must end: the source stops, or the command halts it.
struct Stop {
    stop: Arc<AtomicBool>,
    halt: Arc<AtomicBool>,
}

impl Stop {
    fn load(&self, order: Ordering) -> bool {
        self.stop.load(order) || self.halt.load(order)
    }
}

/// How often a fetcher waiting for data looks at its stop flags.
const STOP_POLL: Duration = Duration::from_millis(100);

async fn fetch_loop(
    url: String,
    token: Option<String>,
    tls: Arc<rustls::ClientConfig>,
    stop: Stop,
    tx: mpsc::Sender<Bytes>,
) {
    // `https://` is verified against the system's CAs and `--ca` (never skipped).
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .connector(awc::Connector::new().rustls_0_23(tls))
        .finish();
    let mut backoff = ChildBackoff::new(reconnect_policy());
    let mut attempt: u64 = 0;
    while !stop.load(Ordering::SeqCst) && !tx.is_closed() {
        attempt += 1;
        let (why, delivered_for, retry_after) =
            match fetch_once(&client, &url, token.as_deref(), &stop, &tx).await {
                StreamEnd::Stopped => return,
                StreamEnd::Over {
                    why,
                    delivered_for,
                    retry_after,
                } => (why, delivered_for, retry_after),
            };
        let wait = next_wait(&mut backoff, delivered_for, retry_after);
        tracing::warn!(
            %url,
            attempt,
            delivered_secs = delivered_for.as_secs_f64(),
            wait_secs = wait.as_secs_f64(),
            "HTTP source: {why}; requesting again in {wait:.1?}"
        );
        let end = Instant::now() + wait;
        while Instant::now() < end {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100).min(wait)).await;
        }
    }
}

/// One request of the stream, piped to `tx` until it is over.
async fn fetch_once(
    client: &awc::Client,
    url: &str,
    token: Option<&str>,
    stop: &Stop,
    tx: &mpsc::Sender<Bytes>,
) -> StreamEnd {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let mut resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => {
            // awc's errors do not chain their sources: look into the connect error itself.
            let tls = match &e {
                awc::error::SendRequestError::Connect(awc::error::ConnectError::Io(io)) => {
                    crate::peer::tls::find_rustls_error(io)
                }
                _ => None,
            };
            let host = url.parse::<awc::http::Uri>().ok();
            let host = host.as_ref().and_then(|u| u.host()).unwrap_or(url);
            let why = match tls {
                Some(tls) => crate::peer::tls::describe(tls, host),
                None => format!("request failed: {e}"),
            };
            return StreamEnd::failed(why);
        }
    };
    let status = resp.status();
    if !status.is_success() {
        let retry_after = (status.as_u16() == 429 || status.is_server_error())
            .then(|| {
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
            })
            .flatten();
        return StreamEnd::Over {
            why: format!("the server answered {status}"),
            delivered_for: Duration::ZERO,
            retry_after,
        };
    }
    let answered = Instant::now();
    let mut delivered_for = Duration::ZERO;
    let mut last_nl = true;
    let why = loop {
        let waiting = Instant::now();
        let next = loop {
            // Short waits, so a stop or halt is seen while the stream is quiet.
            match tokio::time::timeout(STOP_POLL, resp.next()).await {
                Ok(next) => break Some(next),
                Err(_) if stop.load(Ordering::SeqCst) => return StreamEnd::Stopped,
                Err(_) if waiting.elapsed() >= STALL_TIMEOUT => break None,
                Err(_) => {}
            }
        };
        let chunk = match next {
            Some(Some(Ok(bytes))) => bytes,
            Some(Some(Err(e))) => break format!("the stream dropped: {e}"),
            Some(None) => break "the stream ended".to_string(),
            None => break format!("no data for {STALL_TIMEOUT:?}"),
        };
        if !chunk.is_empty() {
            delivered_for = answered.elapsed();
            last_nl = chunk.last() == Some(&b'\n');
            if tx.send(chunk).await.is_err() {
                return StreamEnd::Stopped;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return StreamEnd::Stopped;
        }
    };
    if !last_nl && tx.send(Bytes::from_static(b"\n")).await.is_err() {
        return StreamEnd::Stopped;
    }
    StreamEnd::Over {
        why,
        delivered_for,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The jitter band of the `n`th wait of a sequence that never resets (with a millisecond
    /// of slack for the backoff crate's float arithmetic).
    fn band(n: i32) -> (Duration, Duration) {
        let nominal = RECONNECT_INITIAL
            .mul_f64(RECONNECT_MULTIPLIER.powi(n))
            .min(MAX_WAIT);
        let slack = Duration::from_millis(1);
        (
            nominal.mul_f64(1.0 - RECONNECT_JITTER) - slack,
            nominal.mul_f64(1.0 + RECONNECT_JITTER).min(MAX_WAIT) + slack,
        )
    }

    #[test]
    fn waits_grow_while_streams_end_quickly_and_restart_after_a_stable_stream() {
        let mut backoff = ChildBackoff::new(reconnect_policy());
        let brief = STABLE_UPTIME / 2;
        for n in 0..4 {
            let (lo, hi) = band(n);
            let wait = next_wait(&mut backoff, brief, None);
            assert!(
                lo <= wait && wait <= hi,
                "wait {n}: {wait:?} not in {lo:?}..={hi:?}"
            );
        }
        let (lo, hi) = band(0);
        let wait = next_wait(&mut backoff, STABLE_UPTIME, None);
        assert!(lo <= wait && wait <= hi, "after a stable stream: {wait:?}");
    }

    #[test]
    fn retry_after_lengthens_a_wait_and_everything_stays_under_the_cap() {
        let mut backoff = ChildBackoff::new(reconnect_policy());
        let asked = Duration::from_secs(60);
        assert_eq!(next_wait(&mut backoff, Duration::ZERO, Some(asked)), asked);
        let wait = next_wait(&mut backoff, Duration::ZERO, Some(Duration::ZERO));
        assert!(
            wait >= band(1).0,
            "Retry-After: 0 does not cut the backoff: {wait:?}"
        );
        assert_eq!(
            next_wait(&mut backoff, Duration::ZERO, Some(MAX_WAIT * 4)),
            MAX_WAIT
        );
        for _ in 0..40 {
            assert!(next_wait(&mut backoff, Duration::ZERO, None) <= MAX_WAIT);
        }
    }
}
