//! A TCP proxy for network fault injection: cut a connection after N bytes, stall it, delay
//! it, or half-close it, while both endpoints are real processes with real sockets.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// What the proxy does to the connections it carries. Change it at any time.
#[derive(Debug, Default)]
pub struct Faults {
    /// Cut each connection after this many bytes (client→server + server→client); 0 = never.
    pub cut_after: AtomicU64,
    /// Delay every forwarded chunk by this many milliseconds.
    pub delay_ms: AtomicU64,
    /// While set, nothing is forwarded (the connection stays open).
    pub stall: AtomicBool,
    /// Half-close: shut down the server→client direction after `cut_after` bytes instead of
    /// closing the whole connection.
    pub half_close: AtomicBool,
    /// Refuse (close at once) new connections while set.
    pub refuse: AtomicBool,
}

/// A running proxy from a local port to `target`.
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The faults to inject.
    pub faults: Arc<Faults>,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Connections cut by a fault so far.
    pub cuts: Arc<AtomicUsize>,
    live: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Starts a proxy on a free loopback port forwarding to `target`.
    pub fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let faults = Arc::new(Faults::default());
        let accepted = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let live = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (f, a, c, l) = (faults.clone(), accepted.clone(), cuts.clone(), live.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                if f.refuse.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                if let (Ok(c1), Ok(s1)) = (client.try_clone(), server.try_clone())
                    && let Ok(mut guard) = l.lock()
                {
                    guard.push(c1);
                    guard.push(s1);
                }
                let budget = Arc::new(AtomicU64::new(0));
                spawn_pipe(
                    &client,
                    &server,
                    f.clone(),
                    budget.clone(),
                    c.clone(),
                    false,
                );
                spawn_pipe(&server, &client, f.clone(), budget, c.clone(), true);
            }
        });
        Proxy {
            addr,
            faults,
            accepted,
            cuts,
            live,
        }
    }

    /// The ws:// URL of the proxy.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// Cuts every connection open now.
    pub fn cut_all(&self) {
        if let Ok(mut guard) = self.live.lock() {
            for s in guard.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        self.cuts.fetch_add(1, Ordering::SeqCst);
    }
}

fn spawn_pipe(
    from: &TcpStream,
    to: &TcpStream,
    faults: Arc<Faults>,
    sent: Arc<AtomicU64>,
    cuts: Arc<AtomicUsize>,
    downstream: bool,
) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            while faults.stall.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            let delay = faults.delay_ms.load(Ordering::SeqCst);
            if delay > 0 {
                thread::sleep(Duration::from_millis(delay));
            }
            let limit = faults.cut_after.load(Ordering::SeqCst);
            let total = sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if limit > 0 && total > limit {
                let keep = (n as u64).saturating_sub(total - limit) as usize;
                let _ = to.write_all(&buf[..keep]);
                cuts.fetch_add(1, Ordering::SeqCst);
                if faults.half_close.load(Ordering::SeqCst) && downstream {
                    let _ = to.shutdown(Shutdown::Write);
                } else {
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                }
                return;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
