//! The flags every command that runs a node takes (DESIGN §8 "node flags").

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::identity::Keypair;
use crate::node::NodeBuilder;

/// Node flags.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// The node's secret key (PKCS#8 PEM, from `replikativ keygen`). Without it the node uses
    /// `node.key` in its store directory, made on first start.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
}

impl NodeArgs {
    /// `builder` with these flags applied.
    pub fn apply(&self, mut builder: NodeBuilder) -> anyhow::Result<NodeBuilder> {
        if let Some(path) = &self.key {
            let key = Keypair::read(path).context("reading --key")?;
            builder = builder.key(key);
        }
        Ok(builder)
    }
}
