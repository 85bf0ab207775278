//! TLS between real processes (DESIGN §11): `peer --tls-cert --tls-key` serves `wss://`,
//! `analyze --connect wss://… --ca` verifies it (and fails with a certificate error without
//! the CA), a plain-text upgrade on the TLS listener is refused, the listener speaks HTTP/1.1
//! only, and bad TLS files stop a command at start (`https://` sources and README's commands:
//! `tls_sources.rs`). Certificates
//! are made in the test with rcgen; the HTTPS source's server is plain rustls, independent of
//! the code under test.

use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, ServerName};

use crate::common::cli_support::{Proc, arg, tail};
use crate::common::committed::sqlite_tweet_ids;
use crate::common::tweets_oracle::{shipped_source, source_tweets, write_lines};
use crate::common::{data_dir, free_port, run, run_ok, wait_port};

/// Deadline for conditions the test waits on.
pub(crate) const T: Duration = Duration::from_secs(60);

/// A test CA and a certificate it signed for `localhost` and 127.0.0.1, as PEM files.
pub(crate) struct Pki {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// The same certificate and key, for a server built in the test.
    pub(crate) chain_der: Vec<CertificateDer<'static>>,
    pub(crate) key_der: Vec<u8>,
}

pub(crate) fn pki(dir: &Path) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "replikativ test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("leaf certificate");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    Pki {
        ca: write("ca.pem", ca.pem()),
        cert: write("cert.pem", cert.pem()),
        key: write("key.pem", key.serialize_pem()),
        chain_der: vec![cert.der().clone()],
        key_der: key.serialize_der(),
    }
}

/// A store collected from the shipped tweets, and the tweet ids of its source (the oracle).
pub(crate) fn collected(d: &Path) -> (PathBuf, BTreeSet<String>) {
    let lines = shipped_source(&data_dir());
    let src = d.join("source.jsonl");
    write_lines(&src, &lines);
    let store = d.join("collector");
    run_ok(
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            arg(&src),
            "--flush-ms",
            "50",
        ],
        d,
    );
    let ids = source_tweets(&lines).into_keys().collect();
    (store, ids)
}

/// `peer` serving `store` over TLS on a fresh port.
pub(crate) fn serve_tls(d: &Path, store: &Path, pki: &Pki) -> (Proc, u16) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let peer = Proc::spawn(
        &[
            "peer",
            "--store",
            arg(store),
            "--listen",
            &listen,
            "--tls-cert",
            arg(&pki.cert),
            "--tls-key",
            arg(&pki.key),
        ],
        d,
        "peer.log",
    );
    wait_port(port, T);
    (peer, port)
}

/// `analyze` (without --follow) from `url` into `db`, with `extra` flags.
pub(crate) fn analyze(d: &Path, name: &str, url: &str, extra: &[&str]) -> (Output, PathBuf) {
    let db = d.join(format!("{name}.sqlite"));
    let store = d.join(name);
    let mut args = vec![
        "analyze",
        "--store",
        arg(&store),
        "--connect",
        url,
        "--sqlite",
        arg(&db),
    ];
    args.extend_from_slice(extra);
    (run(&args, d), db)
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn wss_replication_works_with_the_ca_and_fails_with_a_certificate_error_without_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = pki(d);
    let (store, ids) = collected(d);
    let (_peer, port) = serve_tls(d, &store, &pki);

    // Without the CA: the certificate is not trusted; analyze gives up at its --timeout, exit
    // 1, saying why and what to do.
    let url = format!("wss://localhost:{port}/");
    let (out, db) = analyze(d, "untrusted", &url, &["--timeout", "3"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains("not signed by a trusted CA") && err.contains("--ca FILE"),
        "stderr:\n{err}"
    );
    assert!(
        !db.exists() || sqlite_tweet_ids(&db).is_empty(),
        "nothing is realized from an unverified peer"
    );

    // With it, by name and by address: every tweet of the source, once.
    for (name, host) in [("by-name", "localhost"), ("by-address", "127.0.0.1")] {
        let url = format!("wss://{host}:{port}/");
        let (out, db) = analyze(d, name, &url, &["--ca", arg(&pki.ca), "--timeout", "60"]);
        assert!(out.status.success(), "{url}: {}", stderr(&out));
        assert_eq!(sqlite_tweet_ids(&db), ids, "{url}: realized ids");
    }
}

#[test]
fn a_plain_text_upgrade_on_the_tls_listener_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = pki(d);
    let (store, ids) = collected(d);
    let (peer, port) = serve_tls(d, &store, &pki);

    // A raw websocket upgrade in plain text gets no HTTP answer at all. The listener may
    // reset the connection while the request is still being written: that is no answer too.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(T)).expect("timeout");
    let _sent = write!(
        s,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "the TLS listener answered plain HTTP: {:?}",
        String::from_utf8_lossy(&answer)
    );

    // The dialler says what went wrong.
    let url = format!("ws://127.0.0.1:{port}/");
    let (out, _) = analyze(d, "plain", &url, &["--timeout", "3"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{err}");
    assert!(
        err.contains("does the peer serve wss://?"),
        "stderr:\n{err}"
    );

    // The listener still serves wss://.
    let url = format!("wss://localhost:{port}/");
    let (out, db) = analyze(d, "tls", &url, &["--ca", arg(&pki.ca)]);
    assert!(
        out.status.success(),
        "{}\npeer log:\n{}",
        stderr(&out),
        tail(&d.join("peer.log"))
    );
    assert_eq!(sqlite_tweet_ids(&db), ids);
    drop(peer);
}

/// A TLS client of `127.0.0.1:port` for `localhost`, trusting `pki`'s CA and offering
/// `alpn`; the stream once the handshake is done, or the handshake's error.
fn tls_connect(
    pki: &Pki,
    port: u16,
    alpn: &[&[u8]],
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(&pki.ca).expect("CA");
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(T)).expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

#[test]
fn the_tls_listener_speaks_http_1_1_only_and_answers_https() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = pki(d);
    let (_peer, port) = serve_tls(d, &d.join("empty-store"), &pki);
    let mut tls = tls_connect(&pki, port, &[b"h2", b"http/1.1"]).expect("handshake");
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    // HTTPS on the same listener: the hint at any other path.
    write!(
        tls,
        "GET /x HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 404") && answer.contains("speak websocket at path /"),
        "{answer}"
    );
    // A client that speaks only h2 is refused.
    let refused = tls_connect(&pki, port, &[b"h2"]);
    assert!(refused.is_err(), "an h2-only client was accepted");
}

#[test]
fn tls_usage_errors_exit_2_and_bad_files_exit_1_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let pki = pki(d);
    let store = d.join("s");
    for args in [
        &[
            "peer",
            "--store",
            arg(&store),
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            arg(&pki.cert),
        ][..],
        &[
            "peer",
            "--store",
            arg(&store),
            "--listen",
            "127.0.0.1:0",
            "--tls-key",
            arg(&pki.key),
        ][..],
        &[
            "analyze",
            "--store",
            arg(&store),
            "--connect",
            "wss://localhost:1/",
            "--sqlite",
            "x.db",
            "--tls-cert",
            arg(&pki.cert),
            "--tls-key",
            arg(&pki.key),
        ][..],
        &[
            "collect",
            "--store",
            arg(&store),
            "--source",
            "-",
            "--tls-cert",
            arg(&pki.cert),
            "--tls-key",
            arg(&pki.key),
        ][..],
    ] {
        let out = run(args, d);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let missing = d.join("missing.pem");
    for (args, named) in [
        (
            vec![
                "peer",
                "--store",
                arg(&store),
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                arg(&missing),
                "--tls-key",
                arg(&pki.key),
            ],
            "missing.pem",
        ),
        (
            vec![
                "peer",
                "--store",
                arg(&store),
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                arg(&pki.cert),
                "--tls-key",
                arg(&pki.cert),
            ],
            "cert.pem",
        ),
        (
            vec![
                "analyze",
                "--store",
                arg(&store),
                "--connect",
                "wss://localhost:1/",
                "--sqlite",
                "x.db",
                "--ca",
                arg(&pki.key),
            ],
            "key.pem",
        ),
    ] {
        let out = run(&args, d);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?} does not name {named}: {err}");
    }
}
