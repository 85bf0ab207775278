//! Replication: bring an empty peer level with one holding the ingested tweets, over loopback
//! websockets with durable stores on both sides; against a raw websocket transfer of the same
//! number of bytes in 4 MiB frames (awc client → actix-web-actors sink), in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use actix_web_actors::ws;
use futures_util::{SinkExt, StreamExt};

use crate::common::{secs, start_node, thousands, url_of, wait_heads, wire_bytes};

/// Frame size of the raw baseline (the sync layer's batch size).
const RAW_FRAME: usize = 4 << 20;

/// What one replication run measured.
pub struct Replication {
    /// Node start of the holder (store open with integrity check, replica load).
    pub holder_start: Duration,
    /// From starting the empty node (dialling) until its heads equal the holder's.
    pub sync: Duration,
    /// Frame bytes in and out on the receiving node.
    pub wire: u64,
}

/// Replicates the store in `holder_dir` (holding `tweets`) to a fresh node in `empty_dir`.
pub async fn node_replication(holder_dir: &Path, empty_dir: &Path) -> Replication {
    let t = Instant::now();
    let holder = start_node("holder", holder_dir, true, None).await;
    let holder_start = t.elapsed();
    let heads = crate::common::replica(&holder).heads();
    let url = url_of(&holder);
    let t = Instant::now();
    let empty = start_node("empty", empty_dir, false, Some(&url)).await;
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

/// Sends `total` bytes over a loopback websocket in [`RAW_FRAME`] frames until the receiver
/// confirms it has them all.
pub async fn raw_transfer(total: usize) -> Duration {
    let data = web::Data::new(total);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/", web::get().to(accept))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    let frame = bytes::Bytes::from(vec![0x5au8; RAW_FRAME]);
    let t = Instant::now();
    let (_resp, mut framed) = awc::Client::new()
        .ws(format!("ws://{addr}/"))
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

/// Runs both and prints the table row.
pub async fn run(holder_dir: &Path, empty_dir: &Path, tweets: usize, payload: u64) -> Replication {
    let r = node_replication(holder_dir, empty_dir).await;
    let raw = raw_transfer(r.wire as usize).await;
    let mb = |d: Duration| r.wire as f64 / 1e6 / d.as_secs_f64();
    println!(
        "| {} | {:.1} MB | {:.1} MB | {} | {} tweets/s | {:.0} MB/s | {} | {:.0} MB/s | {:.2} |",
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
    r
}

/// The table header.
pub fn header() {
    println!("\n### Replication to an empty peer (durable stores both sides, loopback)\n");
    println!(
        "| tweets | params bytes | wire bytes | time | tweets/s | MB/s | raw ws same bytes | raw MB/s | node/raw throughput |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
}
