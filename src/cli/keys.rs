//! `replikativ keygen` and `replikativ id`: make a node key, show a public key.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::identity::{KeyFiles as _, Keypair, NODE_KEY_FILE, PublicKey};

/// `replikativ keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the new secret key (PKCS#8 PEM, mode 0600); never overwritten.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Print `{"public_key":"ed25519:…"}` as the last line instead.
    #[arg(long)]
    pub json: bool,
}

/// `replikativ id`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("whose").required(true).args(["key", "store"]))]
pub struct IdArgs {
    /// A secret key file.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// A node's store directory (its `node.key`); works while the node runs.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Print `{"public_key":"ed25519:…"}` as the last line instead.
    #[arg(long)]
    pub json: bool,
}

fn print(key: &PublicKey, json: bool) {
    if json {
        println!("{}", serde_json::json!({ "public_key": key.to_string() }));
    } else {
        println!("{key}");
    }
}

/// Writes a new key and prints its public key.
pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let key = Keypair::generate()?;
    key.write_new(&args.out)?;
    say!("wrote a new secret key to {}", args.out.display());
    print(&key.public(), args.json);
    Ok(())
}

/// Prints the public key of a key file or of a store's node key.
pub fn id(args: IdArgs) -> anyhow::Result<()> {
    let path = match (&args.key, &args.store) {
        (Some(key), _) => key.clone(),
        (None, Some(store)) => {
            let path = store.join(NODE_KEY_FILE);
            if !path.exists() {
                anyhow::bail!(
                    "the store {} has no key ({} is missing): a node makes it on its first \
                     start, or give one with --key",
                    store.display(),
                    NODE_KEY_FILE
                );
            }
            path
        }
        (None, None) => anyhow::bail!("give --key FILE or --store DIR"),
    };
    let key = Keypair::read(&path).with_context(|| format!("reading {}", path.display()))?;
    print(&key.public(), args.json);
    Ok(())
}
