//! `grant --connect`: a grant or revoke sent to a running node as a commit signed by the
//! owner's key, so a live collector need not stop (DESIGN §11).
//!
//! A node on an in-memory store connects to the URL, replicates the CDVCS, makes the commit
//! on top of its heads (joining several heads first, as a writer does), signs it with the
//! owner's key and imports it like a commit from a peer, which it then relays. It is confirmed
//! on a fresh connection: the node's heads there must be the commit or descend from it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::grant::Change;
use crate::crdt::{Commit, CrdtKey, Transaction};
use crate::id::Id;
use crate::identity::Keypair;
use crate::node::{Node, StoreLocation};
use crate::peer::tls::ClientTls;

/// Where the grant goes.
pub struct Remote {
    /// The node's URL.
    pub url: String,
    /// Roots for `wss://`.
    pub tls: ClientTls,
    /// How long to wait in all.
    pub timeout: Duration,
}

/// Why an attempt ended without the grant.
enum Failure {
    /// The node runs on the key this attempt connected with.
    OwnKey,
    /// Anything else, said.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Other(e)
    }
}

/// Sends `change` of `crdt`, signed by `owner`, to the node at `remote`; answers the commit
/// once that node holds it. The connection authenticates with `peer_key`, else with the
/// owner's key, falling back to a one-time key when the node runs on the owner's key itself.
pub async fn grant(
    remote: &Remote,
    crdt: &CrdtKey,
    owner: &Keypair,
    peer_key: Option<Keypair>,
    change: Change,
) -> Result<Id> {
    let deadline = Instant::now() + remote.timeout;
    let explicit = peer_key.is_some();
    let mut identity = peer_key.unwrap_or_else(|| owner.clone());
    loop {
        match attempt(remote, crdt, owner, identity.clone(), change, deadline).await {
            Ok(id) => return Ok(id),
            Err(Failure::OwnKey) if !explicit && identity.public() == owner.public() => {
                say!(
                    "the node at {} runs on the owner's key itself; connecting with a one-time key",
                    remote.url
                );
                identity = Keypair::generate().context("making a one-time key")?;
            }
            Err(Failure::OwnKey) => bail!(
                "the node at {} runs on the key this connection used ({}); give --peer-key FILE \
                 with another key it admits to write",
                remote.url,
                identity.public()
            ),
            Err(Failure::Other(e)) => return Err(e),
        }
    }
}

async fn attempt(
    remote: &Remote,
    crdt: &CrdtKey,
    owner: &Keypair,
    identity: Keypair,
    change: Change,
    deadline: Instant,
) -> Result<Id, Failure> {
    let node = Node::builder()
        .name("grant")
        .store(StoreLocation::Memory)
        .key(identity)
        .tls_client(remote.tls.clone())
        .connect(remote.url.clone())
        .cdvcs(crdt.clone())
        .start()
        .await
        .context("starting a node for the grant")?;
    let done = send(&node, remote, crdt, owner, change, deadline).await;
    node.shutdown().await;
    done
}

async fn send(
    node: &Node,
    remote: &Remote,
    crdt: &CrdtKey,
    owner: &Keypair,
    change: Change,
    deadline: Instant,
) -> Result<Id, Failure> {
    let url = &remote.url;
    let heads = caught_up(node, url, crdt, None, deadline).await?;
    if heads == [Commit::root(crdt).id] {
        return Err(Failure::Other(anyhow::anyhow!(
            "the node at {url} holds no commits of CDVCS {crdt}: grant in the owner's store \
             with --store DIR, or once the CDVCS has commits"
        )));
    }
    let commits = {
        let replica = node.replica(crdt).context("the replica is missing")?;
        let state = replica.state();
        let guard = match state.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let tx = Transaction {
            op: change.op.to_owned(),
            params: crate::crdt::authorship::key_id(&change.grantee),
        };
        let (commits, _) = guard
            .prepare_commit_merging(
                &owner.public().to_string(),
                crate::replica::now_ms(),
                vec![tx],
            )
            .context("making the commit")?;
        commits
            .into_iter()
            .map(|c| {
                if c.commit.is_deterministic_merge() {
                    c
                } else {
                    c.signed(owner)
                }
            })
            .collect::<Vec<_>>()
    };
    let id = commits.last().map(|c| c.id).context("no commit made")?;
    node.stage()
        .import(crdt, commits, vec![change.grantee.as_bytes().to_vec()])
        .await
        .context("storing the commit")?;
    tracing::info!(commit = %id, %url, "sent; confirming on a fresh connection");
    loop {
        let before = node.peers().newest_remote_heads(crdt).map(|(c, _)| c);
        node.stage()
            .connect(url)
            .await
            .context("opening a confirming connection")?;
        let heads = caught_up(node, url, crdt, before, deadline).await?;
        if holds(node, crdt, &id, &heads) {
            return Ok(id);
        }
        if Instant::now() > deadline {
            return Err(Failure::Other(anyhow::anyhow!(
                "the node at {url} did not take commit {id} within {}s (does it admit this \
                 key to write? see its log)",
                remote.timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether one of the node's `heads` is `id` or descends from it.
fn holds(node: &Node, crdt: &CrdtKey, id: &Id, heads: &[Id]) -> bool {
    with_state(node, crdt, |g| {
        heads.iter().any(|h| h == id || g.is_ancestor(id, h))
    })
}

/// `f` of the local replica of `crdt` (false while there is none).
fn with_state(node: &Node, crdt: &CrdtKey, f: impl FnOnce(&crate::crdt::Cdvcs) -> bool) -> bool {
    let Some(replica) = node.replica(crdt) else {
        return false;
    };
    let state = replica.state();
    let guard = match state.read() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    f(&guard)
}

/// Waits until a connection newer than `after` announced the node's heads and this node
/// holds them all; answers those heads.
async fn caught_up(
    node: &Node,
    url: &str,
    crdt: &CrdtKey,
    after: Option<u64>,
    deadline: Instant,
) -> Result<Vec<Id>, Failure> {
    loop {
        if let Some(why) = node.peers().refusal(url) {
            if why.contains("own key") {
                return Err(Failure::OwnKey);
            }
            return Err(Failure::Other(anyhow::anyhow!(
                "the connection to {url} was refused: {why}"
            )));
        }
        if let Some((conn, heads)) = node.peers().newest_remote_heads(crdt)
            && after.is_none_or(|a| conn > a)
            && holds_all(node, crdt, &heads)
        {
            return Ok(heads);
        }
        if Instant::now() > deadline {
            let why = node
                .peers()
                .last_dial_error(url)
                .unwrap_or_else(|| "no answer".into());
            return Err(Failure::Other(anyhow::anyhow!(
                "could not replicate CDVCS {crdt} from {url} in time: {why}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn holds_all(node: &Node, crdt: &CrdtKey, heads: &[Id]) -> bool {
    with_state(node, crdt, |g| heads.iter().all(|h| g.contains(h)))
}
