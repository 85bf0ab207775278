//! Dialling `wss://` with awc while keeping the TLS connection's channel binding.
//!
//! awc runs TLS inside its connector and hands the upgraded websocket back as a boxed
//! `dyn AsyncRead + AsyncWrite`, so the rustls connection (and its exporter) cannot be reached
//! after the upgrade. For `wss://` the dialler therefore gives awc a custom connector
//! ([`TlsDial`], through awc's public `Connector::connector`) that opens the TCP connection,
//! runs the rustls handshake itself with the peers' client configuration (system roots plus
//! `--ca`, TLS 1.3, ALPN `http/1.1`), records the channel binding, and hands awc the encrypted
//! stream. awc is given the same URL with the `ws` scheme so that it does not wrap the stream
//! in TLS a second time; the request line and `Host` header it sends are the URL's own.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_rt::net::{ActixStream, Ready, TcpStream};
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use awc::http::Uri;
use futures_util::future::LocalBoxFuture;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tls::{ChannelBinding, describe, find_rustls_error};

/// Where a `wss://` URL points, and the URL awc is given instead.
#[derive(Clone, Debug)]
pub struct Target {
    /// The host as dialled (no brackets around an IPv6 address).
    pub host: String,
    /// The port (443 when the URL names none).
    pub port: u16,
    /// The same URL with the `ws` scheme and the port spelled out only if it was.
    pub plain_url: String,
}

impl Target {
    /// Parses a `wss://` URL.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("wss://")
            .ok_or_else(|| "it must start with wss://".to_string())?;
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        let host = uri
            .host()
            .ok_or_else(|| "it names no host".to_string())?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Target {
            host,
            port: uri.port_u16().unwrap_or(443),
            plain_url: format!("ws://{rest}"),
        })
    }
}

/// What the connector learnt: the binding of the connection it made, or why it failed.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The channel binding of the established connection.
    pub binding: Option<ChannelBinding>,
    /// A TLS failure, described for a person.
    pub tls_error: Option<String>,
}

/// The connector awc calls for a `wss://` dial (one per dial).
#[derive(Clone)]
pub struct TlsDial {
    config: Arc<ClientConfig>,
    target: Target,
    outcome: Rc<RefCell<Outcome>>,
}

impl TlsDial {
    /// A connector for `target`; read what it learnt from [`TlsDial::outcome`].
    pub fn new(config: Arc<ClientConfig>, target: Target) -> TlsDial {
        TlsDial {
            config,
            target,
            outcome: Rc::new(RefCell::new(Outcome::default())),
        }
    }

    /// What the connector learnt (shared with the clones awc holds).
    pub fn outcome(&self) -> Rc<RefCell<Outcome>> {
        self.outcome.clone()
    }
}

impl Service<ConnectInfo<Uri>> for TlsDial {
    type Response = Connection<Uri, TlsIo>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    actix_service::always_ready!();

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let (config, target, outcome) = (
            self.config.clone(),
            self.target.clone(),
            self.outcome.clone(),
        );
        Box::pin(async move {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|e| ConnectError::Io(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
            let tcp = TcpStream::connect((target.host.as_str(), target.port))
                .await
                .map_err(ConnectError::Io)?;
            let _ = tcp.set_nodelay(true);
            let tls = match tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
            {
                Ok(tls) => tls,
                Err(e) => {
                    if let Some(r) = find_rustls_error(&e) {
                        outcome.borrow_mut().tls_error = Some(describe(r, &target.host));
                    } else if e.kind() == io::ErrorKind::UnexpectedEof {
                        outcome.borrow_mut().tls_error = Some(format!(
                            "{} closed the connection during the TLS handshake; is it a plain ws:// listener?",
                            target.host
                        ));
                    }
                    return Err(ConnectError::Io(e));
                }
            };
            outcome.borrow_mut().binding = ChannelBinding::of(tls.get_ref().1);
            Ok(Connection::new(req.request().clone(), TlsIo(tls)))
        })
    }
}

/// A client TLS stream as awc's connector needs it.
pub struct TlsIo(tokio_rustls::client::TlsStream<TcpStream>);

impl std::fmt::Debug for TlsIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsIo")
    }
}

impl AsyncRead for TlsIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// Readiness of the TCP stream underneath (as actix-tls's own TLS streams report it).
impl ActixStream for TlsIo {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        <TcpStream as ActixStream>::poll_read_ready(self.0.get_ref().0, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        <TcpStream as ActixStream>::poll_write_ready(self.0.get_ref().0, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wss_url_keeps_its_path_and_port_and_defaults_to_443() {
        let t = Target::parse("wss://example.org/").expect("parses");
        assert_eq!((t.host.as_str(), t.port), ("example.org", 443));
        assert_eq!(t.plain_url, "ws://example.org/");
        let t = Target::parse("wss://127.0.0.1:8443/x").expect("parses");
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 8443));
        assert_eq!(t.plain_url, "ws://127.0.0.1:8443/x");
        let t = Target::parse("wss://[::1]:9000/").expect("parses");
        assert_eq!((t.host.as_str(), t.port), ("::1", 9000));
        assert!(Target::parse("ws://example.org/").is_err());
    }
}
