//! The HTTP source: a JSON-lines stream fetched with awc (on the actix arbiter, since awc's
//! client is `!Send`) and piped to the reader thread through a bounded channel.
//!
//! 429 and 5xx answers wait for `Retry-After` (seconds) or back off exponentially (capped);
//! a dropped or stalled stream (nothing for 90 s) is re-requested the same way. Lines cut by a drop are terminated with a
//! newline, so the reader reports them as damaged lines instead of gluing them to the next.

use std::io::{self, BufRead, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// Chunks buffered between the fetcher and the reader (bounded: the fetcher waits).
const PIPE_CHUNKS: usize = 64;
/// A stream that sends nothing (not even a keep-alive newline) for this long is reconnected.
const STALL_TIMEOUT: Duration = Duration::from_secs(90);
/// The longest wait between attempts.
const MAX_WAIT: Duration = Duration::from_secs(900);

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
pub fn start_fetcher(url: String, token: Option<String>, stop: Arc<AtomicBool>) -> PipeReader {
    let (tx, rx) = mpsc::channel(PIPE_CHUNKS);
    actix_rt::spawn(fetch_loop(url, token, stop, tx));
    PipeReader {
        rx,
        buf: Bytes::new(),
    }
}

/// The delay before attempt `n` (0-based) when the server gave no `Retry-After`.
pub fn backoff_delay(n: u32) -> Duration {
    let secs = 1u64 << n.min(10);
    Duration::from_secs(secs).min(MAX_WAIT)
}

async fn fetch_loop(
    url: String,
    token: Option<String>,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Bytes>,
) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let mut failures: u32 = 0;
    while !stop.load(Ordering::SeqCst) && !tx.is_closed() {
        let mut req = client.get(&url);
        if let Some(t) = &token {
            req = req.bearer_auth(t);
        }
        let wait = match req.send().await {
            Err(e) => {
                tracing::warn!(%url, "HTTP source: request failed: {e}");
                Some(backoff_delay(failures))
            }
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    failures = 0;
                    let mut body = resp;
                    let mut got_any = false;
                    let mut last_nl = true;
                    loop {
                        let chunk = match tokio::time::timeout(STALL_TIMEOUT, body.next()).await {
                            Ok(Some(chunk)) => chunk,
                            Ok(None) => break,
                            Err(_) => {
                                tracing::warn!(%url, "HTTP source: no data for {STALL_TIMEOUT:?}; reconnecting");
                                break;
                            }
                        };
                        match chunk {
                            Ok(bytes) if !bytes.is_empty() => {
                                got_any = true;
                                last_nl = bytes.last() == Some(&b'\n');
                                if tx.send(bytes).await.is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(%url, "HTTP source: stream dropped: {e}");
                                break;
                            }
                        }
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                    }
                    if !last_nl && tx.send(Bytes::from_static(b"\n")).await.is_err() {
                        return;
                    }
                    tracing::info!(%url, "HTTP source: stream ended; reconnecting");
                    if got_any {
                        None
                    } else {
                        Some(backoff_delay(failures))
                    }
                } else if status.as_u16() == 429 || status.is_server_error() {
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let wait = retry_after
                        .unwrap_or_else(|| backoff_delay(failures))
                        .min(MAX_WAIT);
                    tracing::warn!(%url, status = status.as_u16(), wait_secs = wait.as_secs_f64(), "HTTP source: server asks us to wait");
                    Some(wait)
                } else {
                    tracing::error!(%url, status = status.as_u16(), "HTTP source: refused; retrying with backoff");
                    Some(backoff_delay(failures))
                }
            }
        };
        if let Some(wait) = wait {
            failures = failures.saturating_add(1);
            let end = tokio::time::Instant::now() + wait;
            while tokio::time::Instant::now() < end {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100).min(wait)).await;
            }
        }
    }
}
