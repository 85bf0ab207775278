//! Replication: bring an empty peer level with one holding the ingested tweets, over loopback
//! websockets with durable stores on both sides, over `ws://` and over `wss://` (TLS 1.3,
//! certificates made in the run with rcgen); each against a raw websocket transfer of the
//! same number of bytes over the same transport in 4 MiB frames (awc client →
//! actix-web-actors sink), in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_web_actors::ws;
use futures_util::{SinkExt, StreamExt};

use replikativ::peer::tls::{ClientTls, ServerTls};

use crate::common::{NodeTls, secs, start_node_tls, thousands, url_of, wait_heads, wire_bytes};

/// Frame size of the raw baseline (the sync layer's batch size).
const RAW_FRAME: usize = 4 << 20;

/// What one replication run measured.
pub struct Replication {
    /// Node start of the holder (store open, replica load).
    pub holder_start: Duration,
    /// From starting the empty node (dialling) until its heads equal the holder's.
    pub sync: Duration,
    /// Frame bytes in and out on the receiving node.
    pub wire: u64,
}

/// A test CA and a certificate for `localhost` it signed, written to `dir` and loaded the way
/// `--tls-cert`, `--tls-key` and `--ca` load them.
pub fn test_tls(dir: &Path) -> NodeTls {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    std::fs::create_dir_all(dir).expect("TLS dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("certificate");
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    NodeTls {
        server: ServerTls::load(
            write("cert.pem", cert.pem()),
            write("key.pem", key.serialize_pem()),
        )
        .expect("server TLS"),
        client: ClientTls::with_cas(&[write("ca.pem", ca.pem())]).expect("CA"),
    }
}

/// Replicates the store in `holder_dir` (holding `tweets`) to a fresh node in `empty_dir`,
/// over `wss://` when `tls` is given.
pub async fn node_replication(
    holder_dir: &Path,
    empty_dir: &Path,
    tls: Option<&NodeTls>,
) -> Replication {
    let t = Instant::now();
    let holder = start_node_tls("holder", holder_dir, true, None, tls).await;
    let holder_start = t.elapsed();
    let heads = crate::common::replica(&holder).heads();
    let url = match tls {
        Some(_) => format!(
            "wss://localhost:{}/",
            holder.listen_addr().expect("listening").port()
        ),
        None => url_of(&holder),
    };
    let t = Instant::now();
    let empty = start_node_tls("empty", empty_dir, false, Some(&url), tls).await;
    wait_heads(&empty, &heads, Duration::from_secs(600)).await;
    let sync = t.elapsed();
    let wire = wire_bytes(&empty);
    empty.shutdown().await;
    holder.shutdown().await;
    Replication {
        holder_start,
        sync,
        wire,
    }
}

struct Sink {
    total: usize,
    got: usize,
}

impl Actor for Sink {
    type Context = ws::WebsocketContext<Self>;
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for Sink {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        if let Ok(ws::Message::Binary(b)) = msg {
            self.got += b.len();
            if self.got >= self.total {
                ctx.text("done");
            }
        }
    }
}

async fn accept(
    req: HttpRequest,
    stream: web::Payload,
    total: web::Data<usize>,
) -> Result<HttpResponse, actix_web::Error> {
    let sink = Sink {
        total: **total,
        got: 0,
    };
    ws::WsResponseBuilder::new(sink, &req, stream)
        .frame_size(RAW_FRAME * 2)
        .start()
}

/// Sends `total` bytes over a loopback websocket (`wss://` with `tls`) in [`RAW_FRAME`]
/// frames until the receiver confirms it has them all.
pub async fn raw_transfer(total: usize, tls: Option<&NodeTls>) -> Duration {
    let data = web::Data::new(total);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/", web::get().to(accept))
    })
    .workers(1);
    let server = match tls {
        Some(tls) => server.bind_rustls_0_23(
            "127.0.0.1:0",
            tls.server.server_config().expect("TLS config"),
        ),
        None => server.bind("127.0.0.1:0"),
    }
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let frame = bytes::Bytes::from(vec![0x5au8; RAW_FRAME]);
    let t = Instant::now();
    let (client, url) = match tls {
        Some(tls) => (
            awc::Client::builder()
                .connector(awc::Connector::new().rustls_0_23(tls.client.peers()))
                .finish(),
            format!("wss://localhost:{}/", addr.port()),
        ),
        None => (awc::Client::new(), format!("ws://{addr}/")),
    };
    let (_resp, mut framed) = client
        .ws(url)
        .max_frame_size(RAW_FRAME * 2)
        .connect()
        .await
        .expect("connect");
    let mut sent = 0;
    while sent < total {
        let n = RAW_FRAME.min(total - sent);
        framed
            .send(awc::ws::Message::Binary(frame.slice(..n)))
            .await
            .expect("send");
        sent += n;
    }
    while let Some(item) = framed.next().await {
        if let Ok(awc::ws::Frame::Text(_)) = item {
            break;
        }
    }
    let elapsed = t.elapsed();
    handle.stop(true).await;
    elapsed
}

/// Runs the node replication over `ws://`, then (into a second empty store) over `wss://`,
/// then the raw transfer, and prints a row for each transport.
pub async fn run(holder_dir: &Path, empty_dir: &Path, tweets: usize, payload: u64) -> Replication {
    let r = node_replication(holder_dir, empty_dir, None).await;
    let tls = test_tls(&empty_dir.with_extension("tls"));
    let tls_dir = empty_dir.with_extension("wss");
    let over_tls = node_replication(holder_dir, &tls_dir, Some(&tls)).await;
    std::fs::remove_dir_all(&tls_dir).ok();
    let raw = raw_transfer(r.wire as usize, None).await;
    let raw_tls = raw_transfer(r.wire as usize, Some(&tls)).await;
    row("ws://", &r, raw, tweets, payload);
    row("wss://", &over_tls, raw_tls, tweets, payload);
    r
}

fn row(transport: &str, r: &Replication, raw: Duration, tweets: usize, payload: u64) {
    let mb = |d: Duration| r.wire as f64 / 1e6 / d.as_secs_f64();
    println!(
        "| {transport} | {} | {:.1} MB | {:.1} MB | {} | {} tweets/s | {:.0} MB/s | {} | {:.0} MB/s | {:.2} |",
        thousands(tweets as u64),
        payload as f64 / 1e6,
        r.wire as f64 / 1e6,
        secs(r.sync),
        thousands((tweets as f64 / r.sync.as_secs_f64()) as u64),
        mb(r.sync),
        secs(raw),
        mb(raw),
        raw.as_secs_f64() / r.sync.as_secs_f64(),
    );
}

/// The table header.
pub fn header() {
    println!("\n### Replication to an empty peer (durable stores both sides, loopback)\n");
    println!(
        "| transport | tweets | params bytes | wire bytes | time | tweets/s | MB/s | raw, same transport and bytes | raw MB/s | node/raw throughput |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}
