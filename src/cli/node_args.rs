//! The flags every command that runs a node takes (DESIGN §8 "node flags"): its key, and who
//! may do what on it (DESIGN §11).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::UsageError;
use crate::identity::{KeyFiles as _, Keypair, PublicKey};
use crate::node::{Node, NodeBuilder};
use crate::peer::tls::{ClientTls, ServerTls};
use crate::peer::trust::Reloaded;
use crate::sync::Rights;

/// Node flags.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// The node's secret key (PKCS#8 PEM, from `replikativ keygen`). Without it the node uses
    /// `node.key` in its store directory, made on first start.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Let the peer with this public key read and write on this node (repeatable). With any
    /// rule, keys without one are refused.
    #[arg(long, value_name = "KEY")]
    pub allow: Vec<PublicKey>,
    /// Let the peer with this key subscribe to and receive this node's CDVCSs (repeatable).
    #[arg(long, value_name = "KEY")]
    pub allow_read: Vec<PublicKey>,
    /// Store and relay the commits the peer with this key sends (repeatable).
    #[arg(long, value_name = "KEY")]
    pub allow_write: Vec<PublicKey>,
    /// Rules from a file, one `KEY read|write|read,write` a line (`#` comments); re-read on
    /// SIGHUP.
    #[arg(long, value_name = "FILE")]
    pub allow_file: Option<PathBuf>,
    /// Let every key read (unknown keys read only): without rules, needed to listen beyond
    /// loopback.
    #[arg(long)]
    pub open: bool,
    /// Let web pages of this origin (e.g. https://app.example.com) open websockets here
    /// (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,

    // TLS (DESIGN §11).
    /// Serve wss:// (and HTTPS) on --listen with this PEM certificate chain (leaf first, e.g.
    /// Let's Encrypt's fullchain.pem). Needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC). Needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also trust this CA (PEM) when verifying wss:// peers and https:// sources, besides the
    /// system's CAs (repeatable). Verification is never skipped.
    #[arg(long, value_name = "PEM")]
    pub ca: Vec<PathBuf>,
    /// A file holding the bearer token that opens /healthz, /metrics and /status.json when
    /// the node listens beyond loopback (on loopback they are open; elsewhere closed without
    /// it). The token is read once at start; keep the file private.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
}

/// The token in `path`: its content without surrounding whitespace, refused when empty.
pub fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let raw = std::fs::read_to_string(path)
        .with_context(|| format!("reading the admin token file {}", path.display()))?;
    let token = raw.trim();
    if token.is_empty() {
        anyhow::bail!("the admin token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

impl NodeArgs {
    /// `builder` with these flags applied.
    pub fn apply(&self, mut builder: NodeBuilder) -> anyhow::Result<NodeBuilder> {
        if let Some(path) = &self.key {
            let key = Keypair::read(path).context("reading --key")?;
            builder = builder.key(key);
        }
        let rules = [
            (&self.allow, Rights::ALL),
            (&self.allow_read, Rights::READ),
            (&self.allow_write, Rights::WRITE),
        ];
        for (keys, rights) in rules {
            for key in keys {
                builder = builder.allow(*key, rights);
            }
        }
        if let Some(file) = &self.allow_file {
            builder = builder.allow_file(file.clone());
        }
        for origin in &self.allow_origin {
            builder = builder.allow_origin(origin.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            builder = builder.tls_server(ServerTls::load(cert, key)?);
        }
        if let Some(path) = &self.admin_token_file {
            builder = builder.admin_token(read_token(path)?);
        }
        Ok(builder.open(self.open).tls_client(self.client_tls()?))
    }

    /// The roots `wss://` peers and `https://` sources are verified against.
    pub fn client_tls(&self) -> anyhow::Result<ClientTls> {
        Ok(ClientTls::with_cas(&self.ca)?)
    }

    /// Refuses `--tls-cert` on a command that does not listen (a usage error, exit 2).
    pub fn check_tls(&self, listens: bool) -> Result<(), UsageError> {
        if self.admin_token_file.is_some() && !listens {
            return Err(UsageError(
                "--admin-token-file guards the endpoints of --listen; this command does not listen"
                    .into(),
            ));
        }
        if self.tls_cert.is_some() && !listens {
            return Err(UsageError(
                "--tls-cert and --tls-key serve wss:// on --listen; this command does not listen"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The scheme peers dial this node's listener with.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() { "wss" } else { "ws" }
    }
}

/// What SIGHUP does on a running node: re-read the allow file and the TLS certificate and
/// key, or keep what is in force and say why.
pub fn reload_on_hangup(node: &Node) -> impl FnMut() + 'static {
    let peers = node.peers().clone();
    move || {
        reload_rules(&peers);
        if let Some(server) = &peers.tls().server {
            match server.reload() {
                Ok(()) => tracing::info!("SIGHUP: re-read the TLS certificate and key"),
                Err(e) => tracing::error!(
                    "SIGHUP: keeping the TLS certificate in force: {}",
                    replikativ_actors::error_chain(&e)
                ),
            }
        }
    }
}

fn reload_rules(peers: &crate::peer::context::PeerContext) {
    match peers.trust().reload() {
        Ok(Reloaded::Rules(n)) => {
            let file = peers.trust().file().map(|f| f.display().to_string());
            tracing::info!(
                "SIGHUP: re-read the allow file {}: {n} key(s) listed",
                file.unwrap_or_default()
            );
        }
        Ok(Reloaded::NoFile) => tracing::info!("SIGHUP: there is no --allow-file to re-read"),
        Err(e) => tracing::error!(
            "SIGHUP: keeping the rules in force: {}",
            replikativ_actors::error_chain(&e)
        ),
    }
}
