//! `replikativ grant`: the owner of a CDVCS grants or revokes a key's write access (DESIGN
//! §11). The grant is a commit of the owner's, signed with its key, in the owner's store.

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::crdt::CrdtKey;
use crate::identity::{Keypair, PublicKey};
use crate::node::Node;

/// `replikativ grant`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).args(["write", "revoke"]))]
pub struct GrantArgs {
    /// The owner's store directory (stopped: no node may run on it).
    #[arg(long)]
    pub store: std::path::PathBuf,
    /// The owned CDVCS's user: the owner's public key, `ed25519:…`.
    #[arg(long)]
    pub user: PublicKey,
    /// The CDVCS id.
    #[arg(long, default_value = super::args::DEFAULT_CDVCS)]
    pub cdvcs: uuid::Uuid,
    /// Grant this key write access.
    #[arg(long, value_name = "KEY")]
    pub write: Option<PublicKey>,
    /// Revoke this key's write access.
    #[arg(long, value_name = "KEY")]
    pub revoke: Option<PublicKey>,
    /// The owner's secret key (default: the store's `node.key`).
    #[arg(long, value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
}

/// Runs `grant`.
pub fn run(args: GrantArgs) -> Result<()> {
    let crdt = CrdtKey::new(args.user.to_string(), args.cdvcs);
    let store = super::open_existing_store(&args.store)?;
    let signer = match &args.key {
        Some(path) => Keypair::read(path).context("reading --key")?,
        None => Keypair::of_store(&store).context("the store's key")?,
    };
    if signer.public() != args.user {
        bail!(
            "only the owner {} grants or revokes write access to {crdt}; this key is {} \
             (give the owner's key with --key)",
            args.user,
            signer.public()
        );
    }
    if crate::store::cdvcs::load(&store, &crdt)?.is_none() {
        bail!("the store {} holds no CDVCS {crdt}", args.store.display());
    }
    let (grant, grantee) = match (args.write, args.revoke) {
        (Some(key), None) => (true, key),
        (None, Some(key)) => (false, key),
        _ => bail!("give one of --write KEY or --revoke KEY"),
    };
    actix_rt::System::new().block_on(async move {
        let node = Node::builder()
            .name("grant")
            .store(crate::node::StoreLocation::Open(store))
            .key(signer)
            .cdvcs(crdt.clone())
            .start()
            .await
            .context("starting a node on the store")?;
        let stage = node.stage();
        let done = if grant {
            stage.grant_write(&crdt, &grantee).await
        } else {
            stage.revoke_write(&crdt, &grantee).await
        };
        node.shutdown().await;
        let commit = done?;
        let what = if grant { "granted" } else { "revoked" };
        println!("{what} write access to {crdt} for {grantee} in commit {commit}");
        Ok(())
    })
}
