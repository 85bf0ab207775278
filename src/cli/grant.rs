//! `replikativ grant`: the owner of a CDVCS grants or revokes a key's write access (DESIGN
//! §11). The grant is a commit of the owner's, signed with its key: made in the owner's
//! stopped store (`--store`), or sent to a running node (`--connect`), so a live collector
//! need not stop.

use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use crate::crdt::CrdtKey;
use crate::crdt::authorship::{GRANT_WRITE, REVOKE_WRITE};
use crate::identity::{KeyFiles as _, Keypair, PublicKey};
use crate::node::Node;

/// `replikativ grant`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("change").required(true).args(["write", "revoke"]))]
#[command(group = clap::ArgGroup::new("target").required(true).args(["store", "connect"]))]
pub struct GrantArgs {
    /// The owner's store directory (stopped: no node may run on it).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// A running node holding the CDVCS (ws:// or wss://): the grant is made here and sent
    /// there as a signed commit, and confirmed once the node holds it.
    #[arg(long, value_name = "URL")]
    pub connect: Option<String>,
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
    /// The owner's secret key (default with --store: the store's `node.key`; needed with
    /// --connect).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// With --connect: authenticate the connection with this key (default: the owner's key;
    /// a node running on the owner's key itself is reached with a one-time key, which it
    /// admits only where its rules let unknown keys write, e.g. on loopback without rules).
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub peer_key: Option<PathBuf>,
    /// With --connect to wss://: also trust this CA (PEM) (repeatable).
    #[arg(long, value_name = "PEM", requires = "connect")]
    pub ca: Vec<PathBuf>,
    /// With --connect: give up after this many seconds.
    #[arg(long, default_value_t = 60, requires = "connect")]
    pub timeout: u64,
}

/// What a grant command changes.
#[derive(Clone, Copy, Debug)]
pub struct Change {
    /// The op: [`GRANT_WRITE`] or [`REVOKE_WRITE`].
    pub op: &'static str,
    /// The key whose write access changes.
    pub grantee: PublicKey,
}

impl Change {
    fn verb(&self) -> &'static str {
        if self.op == GRANT_WRITE {
            "granted"
        } else {
            "revoked"
        }
    }
}

/// Runs `grant`.
pub fn run(args: GrantArgs) -> Result<()> {
    let crdt = CrdtKey::new(args.user.to_string(), args.cdvcs);
    let change = match (args.write, args.revoke) {
        (Some(key), None) => Change {
            op: GRANT_WRITE,
            grantee: key,
        },
        (None, Some(key)) => Change {
            op: REVOKE_WRITE,
            grantee: key,
        },
        _ => bail!("give one of --write KEY or --revoke KEY"),
    };
    let commit = match (&args.store, &args.connect) {
        (Some(dir), None) => in_store(dir, &args, &crdt, change)?,
        (None, Some(url)) => {
            super::check_peer_url(url)?;
            let Some(path) = &args.key else {
                bail!(
                    "with --connect there is no store to take the owner's key from: give it \
                     with --key FILE"
                );
            };
            let signer = Keypair::read(path).context("reading --key")?;
            owner_check(&args.user, &signer, &crdt)?;
            let peer_key = match &args.peer_key {
                Some(path) => Some(Keypair::read(path).context("reading --peer-key")?),
                None => None,
            };
            let remote = super::grant_remote::Remote {
                url: url.clone(),
                tls: crate::peer::tls::ClientTls::with_cas(&args.ca)?,
                timeout: std::time::Duration::from_secs(args.timeout),
            };
            actix_rt::System::new().block_on(super::grant_remote::grant(
                &remote, &crdt, &signer, peer_key, change,
            ))?
        }
        _ => bail!("give one of --store DIR or --connect URL"),
    };
    println!(
        "{} write access to {crdt} for {} in commit {commit}",
        change.verb(),
        change.grantee
    );
    Ok(())
}

fn owner_check(owner: &PublicKey, signer: &Keypair, crdt: &CrdtKey) -> Result<()> {
    if signer.public() != *owner {
        bail!(
            "only the owner {owner} grants or revokes write access to {crdt}; this key is {} \
             (give the owner's key with --key)",
            signer.public()
        );
    }
    Ok(())
}

fn in_store(
    dir: &std::path::Path,
    args: &GrantArgs,
    crdt: &CrdtKey,
    change: Change,
) -> Result<crate::id::Id> {
    let store = super::open_existing_store(dir)?;
    let signer = match &args.key {
        Some(path) => Keypair::read(path).context("reading --key")?,
        None => Keypair::of_store(&store).context("the store's key")?,
    };
    owner_check(&args.user, &signer, crdt)?;
    // Its heads only: whether it is held, in O(1) whatever the history.
    if crate::store::graph::open(&store, crdt)?.is_none() {
        bail!("the store {} holds no CDVCS {crdt}", dir.display());
    }
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
        let done = if change.op == GRANT_WRITE {
            stage.grant_write(crdt, &change.grantee).await
        } else {
            stage.revoke_write(crdt, &change.grantee).await
        };
        node.shutdown().await;
        Ok(done?)
    })
}
