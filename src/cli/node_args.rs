//! The flags every command that runs a node takes (DESIGN §8 "node flags").

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::UsageError;
use crate::identity::Keypair;
use crate::node::NodeBuilder;
use crate::peer::tls::{ClientTls, ServerTls};

/// Node flags.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// The node's secret key (PKCS#8 PEM, from `replikativ keygen`). Without it the node uses
    /// `node.key` in its store directory, made on first start.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

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
}

impl NodeArgs {
    /// `builder` with these flags applied.
    pub fn apply(&self, mut builder: NodeBuilder) -> anyhow::Result<NodeBuilder> {
        if let Some(path) = &self.key {
            let key = Keypair::read(path).context("reading --key")?;
            builder = builder.key(key);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            builder = builder.tls_server(ServerTls::load(cert, key)?);
        }
        Ok(builder.tls_client(self.client_tls()?))
    }

    /// The roots `wss://` peers and `https://` sources are verified against.
    pub fn client_tls(&self) -> anyhow::Result<ClientTls> {
        Ok(ClientTls::with_cas(&self.ca)?)
    }

    /// Refuses `--tls-cert` on a command that does not listen (a usage error, exit 2).
    pub fn check_tls(&self, listens: bool) -> Result<(), UsageError> {
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
