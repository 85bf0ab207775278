//! TLS beyond peers (DESIGN §11): `collect --source https://…` verifies its server against
//! the system's CAs and `--ca` (the server is plain rustls, independent of the code under
//! test), and README's TLS commands run as written.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustls_pki_types::PrivateKeyDer;

use crate::common::cli_support::{Proc, arg, tail};
use crate::common::committed::{sqlite_tweet_ids, store_exists, store_tweet_ids};
use crate::common::tweets_oracle::{check_each_once, shipped_source, source_tweets};
use crate::common::wait::periodic_check;
use crate::common::{data_dir, free_port, run, wait_exit, wait_port};
use crate::tls::{Pki, T, collected, pki, stderr};

/// A loopback HTTPS server answering every request with `body` (then closing), stopped when
/// dropped.
struct HttpsServer {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl HttpsServer {
    fn start(pki: &Pki, body: Vec<u8>) -> HttpsServer {
        let key = PrivateKeyDer::Pkcs8(pki.key_der.clone().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(pki.chain_der.clone(), key)
        .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                // A client that refuses the certificate ends the handshake: next connection.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                if !head.starts_with(b"GET ") {
                    continue;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls
                    .write_all(answer.as_bytes())
                    .and_then(|()| tls.write_all(&body))
                    .and_then(|()| tls.flush());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        HttpsServer { port, stop }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Runs `collect --source URL` with `extra` flags until `done(log)` holds, then SIGTERMs
/// it; returns the log.
fn collect_until(d: &Path, store: &Path, url: &str, extra: &[&str], done: &str) -> String {
    let name = store
        .file_name()
        .and_then(|n| n.to_str())
        .expect("store name");
    let log_name = format!("{name}.log");
    let log = d.join(&log_name);
    let mut args = vec![
        "collect",
        "--store",
        arg(store),
        "--source",
        url,
        "--flush-ms",
        "50",
    ];
    args.extend_from_slice(extra);
    let mut collect = Proc::spawn(&args, d, &log_name);
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        periodic_check(|| text().contains(done), T),
        "the collector never logged {done:?}; log:\n{}",
        tail(&log)
    );
    crate::common::terminate(&collect.child);
    let status = wait_exit(&mut collect.child, T).expect("collect exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", tail(&log));
    text()
}

#[test]
fn an_https_source_is_verified_against_the_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = pki(d);
    let lines = shipped_source(&data_dir());
    let source = source_tweets(&lines);
    let body: Vec<u8> = lines
        .iter()
        .flat_map(|l| [l.as_slice(), b"\n"].concat())
        .collect();
    let server = HttpsServer::start(&pki, body);
    let url = format!("https://localhost:{}/tweets.jsonl", server.port);

    // Without the CA: the collector says why it gets nothing, and stores nothing.
    let untrusted = d.join("untrusted");
    collect_until(d, &untrusted, &url, &[], "not signed by a trusted CA");
    assert!(
        !store_exists(&untrusted) || store_tweet_ids(&untrusted).is_empty(),
        "tweets from an unverified server"
    );

    // With it: every tweet, once (the progress line shows them all collected).
    let trusted = d.join("trusted");
    let done = format!("collected {} tweets", source.len());
    collect_until(d, &trusted, &url, &["--ca", arg(&pki.ca)], &done);
    if let Err(e) = check_each_once(source.keys(), &store_tweet_ids(&trusted)) {
        panic!("over https: {e}");
    }
}

/// The commands of README's "TLS" block: the shell lines (OpenSSL) run as written, the
/// `replikativ` lines with the binary under test and, so that parallel tests cannot collide,
/// a free port instead of 8443.
#[test]
fn the_readme_tls_commands_work_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| *l != "### TLS")
        .skip_while(|l| *l != "```sh")
        .skip(1)
        .take_while(|l| *l != "```")
        .collect();
    let (ours, shell): (Vec<&str>, Vec<&str>) =
        block.iter().partition(|l| l.starts_with("replikativ "));
    assert_eq!(ours.len(), 2, "a peer and an analyze line: {ours:?}");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = std::process::Command::new("sh")
        .args(["-e", "-c", &shell.join("\n")])
        .current_dir(d)
        .output()
        .expect("sh (and openssl) are needed for this test");
    assert!(
        out.status.success(),
        "the README's shell lines failed: {}",
        stderr(&out)
    );
    // The store the block serves, collected as in "Collecting your own stream".
    let (store, ids) = collected(d);
    assert_eq!(
        store,
        d.join("collector"),
        "the store the block's peer serves"
    );
    let port = free_port().to_string();
    let words = |line: &str| -> Vec<String> {
        line.split_whitespace()
            .skip(1)
            .map(|w| w.replace("8443", &port))
            .collect()
    };
    let peer_args = words(ours[0]);
    assert_eq!(peer_args[0], "peer");
    let peer_args: Vec<&str> = peer_args.iter().map(String::as_str).collect();
    let peer = Proc::spawn(&peer_args, d, "readme-peer.log");
    wait_port(port.parse().expect("port"), T);
    let analyze_args = words(ours[1]);
    assert_eq!(analyze_args[0], "analyze");
    let analyze_args: Vec<&str> = analyze_args.iter().map(String::as_str).collect();
    let out = run(&analyze_args, d);
    assert!(
        out.status.success(),
        "{}\npeer log:\n{}",
        stderr(&out),
        tail(&d.join("readme-peer.log"))
    );
    assert_eq!(sqlite_tweet_ids(&d.join("tweets.sqlite")), ids);
    drop(peer);
}
