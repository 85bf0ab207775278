//! `/status.json`: a snapshot of a running node for operators (DESIGN §14). Its top level is
//! small and stable: `node`, `tree`, `connections`, `cdvcs`, `realizers`, `events`.

use std::collections::VecDeque;

use serde::Serialize;

use replikativ_actors::SupervisorTree;

/// The whole snapshot.
#[derive(Debug, Serialize)]
pub struct Status {
    /// The node's public key.
    pub node: String,
    /// The supervision tree from the root.
    pub tree: TreeJson,
    /// Authenticated connections.
    pub connections: Vec<ConnectionJson>,
    /// CDVCSs this node holds.
    pub cdvcs: Vec<CdvcsJson>,
    /// Realizers.
    pub realizers: Vec<RealizerJson>,
    /// Recent supervision events, oldest first.
    pub events: Vec<EventJson>,
}

/// One supervisor with its children.
#[derive(Debug, Serialize)]
pub struct TreeJson {
    /// Its path, e.g. `node/peers`.
    pub path: String,
    /// Its strategy.
    pub strategy: String,
    /// Its children in start order.
    pub children: Vec<ChildJson>,
}

/// One child.
#[derive(Debug, Serialize)]
pub struct ChildJson {
    /// Its id.
    pub id: String,
    /// `running`, `restarting` or `stopped`.
    pub state: String,
    /// Latest incarnation (1 = first start).
    pub generation: u64,
    /// Restarts so far.
    pub restarts: u32,
    /// Whether it is a supervisor.
    pub supervisor: bool,
    /// Its last abnormal exit, with the error chain (outermost first), if any was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<Vec<String>>,
    /// Its own children, when it is a running supervisor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<TreeJson>,
}

/// One connection.
#[derive(Debug, Serialize)]
pub struct ConnectionJson {
    /// The peer's key.
    pub peer: String,
    /// The socket's remote address, or the URL dialled.
    pub remote: String,
    /// Whether this node dialled it.
    pub dialled: bool,
    /// `read`, `write`, `read,write` or `none`.
    pub rights: String,
    /// Frame bytes received.
    pub bytes_in: u64,
    /// Frame bytes sent.
    pub bytes_out: u64,
    /// When it was admitted (ms since the Unix epoch).
    pub since_ms: i64,
    /// Per shared CDVCS, commits not yet sent to the peer nor known to be held by it.
    pub lag: Vec<LagJson>,
}

/// How far behind a peer is on one CDVCS.
#[derive(Debug, Serialize)]
pub struct LagJson {
    /// The CDVCS's user.
    pub user: String,
    /// The CDVCS's id.
    pub cdvcs: String,
    /// Commits behind.
    pub commits: u64,
}

/// One CDVCS.
#[derive(Debug, Serialize)]
pub struct CdvcsJson {
    /// Its user.
    pub user: String,
    /// Its id.
    pub id: String,
    /// Its heads (hex).
    pub heads: Vec<String>,
    /// Commits, the root not counted.
    pub commits: u64,
}

/// One realizer.
#[derive(Debug, Serialize)]
pub struct RealizerJson {
    /// Its name.
    pub name: String,
    /// The CDVCS it follows.
    pub cdvcs: String,
    /// `starting`, `applying`, `idle`, `waiting` or `parked`.
    pub state: String,
    /// Commits applied (or skipped) so far.
    pub applied_commits: u64,
    /// Transactions applied since the node started.
    pub ops_applied: u64,
    /// Where it is parked, why, and the command that skips it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parked: Option<ParkedJson>,
}

/// A parked realizer's commit.
#[derive(Debug, Serialize)]
pub struct ParkedJson {
    /// The commit (hex).
    pub commit: String,
    /// The last failure.
    pub reason: String,
    /// What an operator runs to skip it (the sink's location left as a placeholder: it may
    /// hold credentials).
    pub skip: String,
}

/// One supervision event.
#[derive(Debug, Clone, Serialize)]
pub struct EventJson {
    /// When it was seen (ms since the Unix epoch).
    pub at_ms: i64,
    /// The supervisor it happened in.
    pub supervisor: String,
    /// The child it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
    /// What happened, e.g. `restart scheduled`.
    pub event: String,
    /// The incarnation it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The exit reason's chain, outermost first, when the exit was abnormal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Vec<String>>,
}

/// The tree as JSON; `events` supply each child's last abnormal exit.
pub fn tree_json(tree: &SupervisorTree, events: &VecDeque<EventJson>) -> TreeJson {
    let path = tree.path.to_string();
    TreeJson {
        strategy: tree.strategy.to_string(),
        children: tree
            .children
            .iter()
            .map(|(info, sub)| {
                let id = info.id.to_string();
                let last_exit = events
                    .iter()
                    .rev()
                    .find(|e| {
                        e.supervisor == path
                            && e.child.as_deref() == Some(&id)
                            && e.reason.is_some()
                    })
                    .and_then(|e| e.reason.clone());
                ChildJson {
                    state: info.state.to_string(),
                    generation: info.generation,
                    restarts: info.restarts,
                    supervisor: info.supervisor,
                    last_exit,
                    tree: sub.as_ref().map(|t| tree_json(t, events)),
                    id,
                }
            })
            .collect(),
        path,
    }
}
