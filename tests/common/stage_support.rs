//! In-process node helpers: keys, transactions, realizer specs, and waiting for the realizer's
//! status with a deadline (the polling waits are in [`super::wait`]).

use std::sync::Arc;
use std::time::Duration;

use replikativ::crdt::CrdtKey;
use replikativ::node::RealizerSpec;
use replikativ::realize::realizer::{ConflictPolicy, RealizerStatus};
use replikativ::realize::{MemorySink, Sink, SinkError};
use replikativ_actors::{ChildInfo, SupervisorHandle};
use tokio::sync::watch;
use uuid::Uuid;

/// A fresh CDVCS key.
pub fn fresh_key() -> CrdtKey {
    CrdtKey::new("mail:test@example.com", Uuid::new_v4())
}

/// One `(op, params bytes)` transaction with JSON params.
pub fn tx(op: &str, params: serde_json::Value) -> (String, Vec<u8>) {
    (op.to_string(), replikativ::tweets::encode_params(&params))
}

/// A note transaction tagged `tag` (so every op is distinguishable).
pub fn note(tag: &str) -> (String, Vec<u8>) {
    tx("note", serde_json::json!({ "tag": tag }))
}

/// A realizer into (a clone of) `sink`.
pub fn memory_realizer(
    name: &str,
    key: &CrdtKey,
    sink: &MemorySink,
    policy: ConflictPolicy,
) -> RealizerSpec {
    let sink = sink.clone();
    RealizerSpec {
        name: name.into(),
        key: key.clone(),
        open: Arc::new(move || -> Result<Box<dyn Sink>, SinkError> { Ok(Box::new(sink.clone())) }),
        policy,
    }
}

/// Waits until the realizer status satisfies `pred`; returns it.
pub async fn wait_status(
    rx: &mut watch::Receiver<RealizerStatus>,
    timeout: Duration,
    pred: impl Fn(&RealizerStatus) -> bool,
) -> RealizerStatus {
    let res = tokio::time::timeout(timeout, async {
        rx.wait_for(|s| pred(s)).await.map(|s| s.clone())
    })
    .await;
    match res {
        Ok(Ok(s)) => s,
        Ok(Err(_)) => panic!("the realizer's status channel closed"),
        Err(_) => panic!(
            "timed out after {timeout:?}; realizer status is {:?}",
            *rx.borrow()
        ),
    }
}

/// The shape of a supervision tree: `(path/child, is_supervisor, running)` for every child,
/// depth first, generations left out.
pub fn shape(
    tree: &replikativ_actors::SupervisorTree,
) -> Vec<(String, bool, replikativ_actors::ChildState)> {
    let mut out = Vec::new();
    for (info, sub) in &tree.children {
        out.push((
            format!("{}/{}", tree.path, info.id),
            info.supervisor,
            info.state,
        ));
        if let Some(sub) = sub {
            out.extend(shape(sub));
        }
    }
    out
}

/// The child `id` of `sup`, as `which_children` reports it.
pub async fn child(sup: &SupervisorHandle, id: &str) -> ChildInfo {
    sup.which_children()
        .await
        .expect("which_children")
        .into_iter()
        .find(|c| c.id.as_str() == id)
        .unwrap_or_else(|| panic!("no child {id} under {}", sup.path()))
}
