//! Raw websocket clients for hostile-peer tests: one that speaks frames directly (awc) and
//! one that writes websocket bytes by hand over TCP (for headers no well-formed client sends).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::BoxedSocket;
use awc::ws;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use replikativ::crdt::CrdtKey;
use replikativ::identity::{Keypair, PublicKey};
use replikativ::protocol::{ErrorCode, FixedBytes, Message, PROTOCOL_VERSION, decode, encode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The signer-role byte of a dialler in the handshake transcript.
pub const DIALLER: u8 = 1;
/// The signer-role byte of an acceptor.
pub const ACCEPTOR: u8 = 2;

/// The handshake transcript as DESIGN §11 and `sync::handshake` describe it, written out
/// here independently: label, version (u32 big-endian), signer role, dialler's key,
/// acceptor's key, dialler's nonce, acceptor's nonce, then no channel binding (a zero byte
/// and 32 zero bytes). `dialler` and `acceptor` are (key, nonce).
pub fn transcript(
    signer: u8,
    dialler: (PublicKey, [u8; 32]),
    acceptor: (PublicKey, [u8; 32]),
) -> Vec<u8> {
    let mut t = b"replikativ handshake v2\0".to_vec();
    t.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    t.push(signer);
    t.extend_from_slice(dialler.0.as_bytes());
    t.extend_from_slice(acceptor.0.as_bytes());
    t.extend_from_slice(&dialler.1);
    t.extend_from_slice(&acceptor.1);
    t.push(0);
    t.extend_from_slice(&[0; 32]);
    t
}

/// A `Hello` of `key` with `nonce`.
pub fn hello(key: PublicKey, nonce: [u8; 32]) -> Message {
    Message::Hello {
        version: PROTOCOL_VERSION,
        key,
        nonce: FixedBytes(nonce),
    }
}

/// A `Proof` carrying `signature`.
pub fn proof(signature: [u8; 64]) -> Message {
    Message::Proof {
        signature: FixedBytes(signature),
    }
}

/// What a raw client received.
#[derive(Debug)]
pub enum Got {
    /// A protocol message.
    Msg(Message),
    /// A binary frame that did not decode.
    Undecodable(usize),
    /// A close frame with its reason.
    Close(String),
    /// The stream ended or failed.
    Ended(String),
}

/// A websocket client that sends whatever the test says.
pub struct RawClient {
    io: Framed<BoxedSocket, ws::Codec>,
}

impl RawClient {
    /// Connects to `url` (frames up to 17 MiB accepted).
    pub async fn connect(url: &str) -> RawClient {
        let (_resp, io) = awc::Client::new()
            .ws(url)
            .max_frame_size(17 << 20)
            .connect()
            .await
            .expect("raw websocket connect");
        RawClient { io }
    }

    /// Sends one binary frame; false when the connection is already gone.
    pub async fn send_bytes(&mut self, bytes: Vec<u8>) -> bool {
        self.io
            .send(ws::Message::Binary(Bytes::from(bytes)))
            .await
            .is_ok()
    }

    /// Sends one text frame.
    pub async fn send_text(&mut self, text: &str) -> bool {
        self.io
            .send(ws::Message::Text(text.to_string().into()))
            .await
            .is_ok()
    }

    /// Encodes and sends `msg`.
    pub async fn send(&mut self, msg: &Message) -> bool {
        self.send_bytes(encode(msg).expect("encode")).await
    }

    /// Completes the handshake as a dialler with a fresh key, then subscribes to `crdts`.
    pub async fn hello_subscribe(&mut self, crdts: Vec<CrdtKey>) {
        let key = Keypair::generate().expect("a key");
        self.handshake(&key).await;
        assert!(self.send(&Message::Subscribe { crdts }).await);
    }

    /// Authenticates as `key` (a dialler): `Hello`, the server's `Hello`, our `Proof`, the
    /// server's `Proof`, checked with [`transcript`]. Returns the server's key.
    pub async fn handshake(&mut self, key: &Keypair) -> PublicKey {
        let nonce: [u8; 32] = rand::random();
        assert!(self.send(&hello(key.public(), nonce)).await);
        let server = self
            .expect(Duration::from_secs(30), |m| {
                matches!(m, Message::Hello { .. })
            })
            .await;
        let Message::Hello {
            key: theirs,
            nonce: their_nonce,
            ..
        } = server
        else {
            unreachable!()
        };
        let ours = (key.public(), nonce);
        let signed = transcript(DIALLER, ours, (theirs, their_nonce.0));
        assert!(self.send(&proof(key.sign(&signed))).await);
        let answer = self
            .expect(Duration::from_secs(30), |m| {
                matches!(m, Message::Proof { .. })
            })
            .await;
        let Message::Proof { signature } = answer else {
            unreachable!()
        };
        let expected = transcript(ACCEPTOR, ours, (theirs, their_nonce.0));
        assert!(
            theirs.verifies(&expected, &signature.0),
            "the server's proof verifies under the key its hello announced"
        );
        theirs
    }

    /// The next frame within `timeout` (answering websocket pings), or None on timeout.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Got> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let item = tokio::time::timeout(left, self.io.next()).await.ok()?;
            return Some(match item {
                None => Got::Ended("stream ended".into()),
                Some(Err(e)) => Got::Ended(e.to_string()),
                Some(Ok(ws::Frame::Binary(b))) => match decode(&b) {
                    Ok(m) => Got::Msg(m),
                    Err(_) => Got::Undecodable(b.len()),
                },
                Some(Ok(ws::Frame::Close(r))) => {
                    Got::Close(r.and_then(|r| r.description).unwrap_or_default())
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = self.io.send(ws::Message::Pong(p)).await;
                    continue;
                }
                Some(Ok(_)) => continue,
            });
        }
    }

    /// Reads until the server closes, answering protocol pings; returns the `Error` message
    /// it sent (if any) and the close reason. Panics if it does not close within `timeout`.
    pub async fn until_closed(
        &mut self,
        timeout: Duration,
    ) -> (Option<(ErrorCode, String)>, String) {
        let end = Instant::now() + timeout;
        let mut error = None;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                None => panic!("the server did not close the connection within {timeout:?}"),
                Some(Got::Msg(Message::Error { code, message })) => error = Some((code, message)),
                Some(Got::Msg(Message::Ping(n))) => {
                    let _ = self.send(&Message::Pong(n)).await;
                }
                Some(Got::Msg(_)) | Some(Got::Undecodable(_)) => {}
                Some(Got::Close(why)) | Some(Got::Ended(why)) => return (error, why),
            }
        }
    }

    /// Waits for a message matching `pred`, answering protocol pings; panics on close/timeout.
    pub async fn expect(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&Message) -> bool,
    ) -> Message {
        let end = Instant::now() + timeout;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                None => panic!("no expected message within {timeout:?}"),
                Some(Got::Msg(m)) if pred(&m) => return m,
                Some(Got::Msg(Message::Ping(n))) => {
                    let _ = self.send(&Message::Pong(n)).await;
                }
                Some(Got::Msg(_)) | Some(Got::Undecodable(_)) => {}
                Some(other) => panic!("connection ended while waiting: {other:?}"),
            }
        }
    }
}

/// A websocket written byte by byte over TCP, for frame headers awc would never send.
pub struct RawTcp {
    stream: tokio::net::TcpStream,
}

impl RawTcp {
    /// Connects and completes the websocket handshake at `/`.
    pub async fn connect(addr: SocketAddr) -> RawTcp {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("tcp connect");
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("handshake");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).await.expect("handshake reply");
            assert!(n == 1, "server closed during the handshake");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "handshake refused: {head}"
        );
        RawTcp { stream }
    }

    /// Writes a masked binary frame header declaring `len` payload bytes.
    pub async fn frame_header(&mut self, len: u64) -> std::io::Result<()> {
        let mut h = vec![0x82u8];
        if len < 126 {
            h.push(0x80 | len as u8);
        } else if len <= u16::MAX as u64 {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
        h.extend_from_slice(&[0, 0, 0, 0]); // zero mask: payload bytes go as they are
        self.stream.write_all(&h).await
    }

    /// Writes `n` payload bytes in 64 KiB chunks; returns how many were accepted before the
    /// peer closed.
    pub async fn payload(&mut self, n: u64) -> u64 {
        let chunk = vec![0xc1u8; 64 << 10];
        let mut sent = 0u64;
        while sent < n {
            let len = (n - sent).min(chunk.len() as u64) as usize;
            let write = self.stream.write_all(&chunk[..len]);
            match tokio::time::timeout(Duration::from_secs(5), write).await {
                Ok(Ok(())) => sent += len as u64,
                _ => break,
            }
        }
        sent
    }

    /// Whether the server closes the connection (EOF or reset, after draining any close
    /// frame) within `timeout`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut buf = [0u8; 4096];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// Sends a websocket upgrade request for `/` to `addr` with `headers` (`Host` among them
/// when the test wants one) and returns the response's status line and body (the body is
/// read only for a refusal; a `101` switches protocols and has none).
pub async fn upgrade(addr: SocketAddr, headers: &[(&str, &str)]) -> (String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("tcp connect");
    let mut req = String::from(
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    );
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte))
            .await
            .expect("a response within 30 s")
            .expect("read");
        assert!(n == 1, "the server closed before its response head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or_default().to_string();
    if status.starts_with("HTTP/1.1 101") {
        return (status, String::new());
    }
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    tokio::time::timeout(Duration::from_secs(30), stream.read_exact(&mut body))
        .await
        .expect("a body within 30 s")
        .expect("read the body");
    (status, String::from_utf8_lossy(&body).into_owned())
}
