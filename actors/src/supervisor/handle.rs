//! [`SupervisorHandle`]: what callers hold to talk to a running supervisor.

use std::any::{Any, type_name};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix::{Actor, Addr};
use tokio::sync::broadcast;

use super::SupervisorActor;
use super::messages::{
    DeleteChild, Describe, ErasedAddr, Lookup, RegisterExternal, RestartChild, StartChild,
    StopSupervisor, TerminateChild,
};
use crate::child_spec::{ChildId, ChildSpec};
use crate::error::SupervisionError;
use crate::event::SupervisionEvent;
use crate::exit::ExitReason;
use crate::strategy::Shutdown;
use crate::token::ChildToken;
use crate::tree::{ChildCounts, ChildInfo, SupervisorTree};
use crate::watch_cell::WatchCell;

/// A handle to one running supervisor (cheap to clone; does not keep it alive).
#[derive(Clone)]
pub struct SupervisorHandle {
    addr: Addr<SupervisorActor>,
    path: Arc<str>,
    events: broadcast::Sender<SupervisionEvent>,
    exited: WatchCell<Option<ExitReason>>,
}

/// Two handles are equal when they reach the same incarnation.
impl PartialEq for SupervisorHandle {
    fn eq(&self, other: &Self) -> bool {
        self.addr == other.addr
    }
}

impl ErasedAddr for SupervisorHandle {
    fn clone_any(&self) -> Box<dyn Any + Send> {
        Box::new(self.clone())
    }
}

impl std::fmt::Debug for SupervisorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorHandle")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SupervisorHandle {
    pub(crate) fn new(
        addr: Addr<SupervisorActor>,
        path: Arc<str>,
        events: broadcast::Sender<SupervisionEvent>,
        token: &ChildToken,
    ) -> Self {
        Self {
            addr,
            path,
            events,
            exited: token.exited(),
        }
    }

    fn gone(&self) -> SupervisionError {
        SupervisionError::SupervisorGone {
            supervisor: self.path.clone(),
        }
    }

    /// The supervisor's path in the tree, e.g. `node/peers`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Subscribes to the events of the whole tree this supervisor belongs to.
    pub fn subscribe(&self) -> broadcast::Receiver<SupervisionEvent> {
        self.events.subscribe()
    }

    /// Whether this incarnation of the supervisor is still running.
    pub fn is_running(&self) -> bool {
        self.exited.read(Option::is_none)
    }

    /// The children in start order: id, state, generation, restarts.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisionError> {
        let described = self.addr.send(Describe).await.map_err(|_| self.gone())?;
        Ok(described.into_iter().map(|(info, _)| info).collect())
    }

    /// Totals over the children.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisionError> {
        Ok(ChildCounts::of(&self.which_children().await?))
    }

    /// The current `Addr` of the child registered as `key` (its id or name). Ask again after a
    /// restart: each incarnation has a new address.
    pub async fn lookup<A: Actor>(&self, key: &str) -> Result<Addr<A>, SupervisionError> {
        self.lookup_any::<Addr<A>>(key).await
    }

    /// The handle of the running sub-supervisor `key`.
    pub async fn supervisor(&self, key: &str) -> Result<SupervisorHandle, SupervisionError> {
        self.lookup_any::<SupervisorHandle>(key).await
    }

    /// Like [`Self::lookup`] through nested supervisors: `"peers/conn-3"`.
    pub async fn lookup_path<A: Actor>(&self, path: &str) -> Result<Addr<A>, SupervisionError> {
        let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let last = segments.pop().unwrap_or_default();
        let mut sup = self.clone();
        for segment in segments {
            sup = sup.supervisor(segment).await?;
        }
        sup.lookup::<A>(last).await
    }

    async fn lookup_any<T: Any + Send>(&self, key: &str) -> Result<T, SupervisionError> {
        let found = self
            .addr
            .send(Lookup {
                key: key.to_owned(),
            })
            .await
            .map_err(|_| self.gone())??;
        found
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| SupervisionError::WrongType {
                supervisor: self.path.clone(),
                child: ChildId::from(key),
                expected: type_name::<T>(),
            })
    }

    /// Adds a child at run time and starts it (after the existing ones).
    pub async fn start_child(&self, spec: ChildSpec) -> Result<(), SupervisionError> {
        self.start_child_any(spec).await.map(|_| ())
    }

    pub(crate) async fn start_child_any(
        &self,
        spec: ChildSpec,
    ) -> Result<Box<dyn Any + Send>, SupervisionError> {
        self.addr
            .send(StartChild { spec })
            .await
            .map_err(|_| self.gone())?
    }

    pub(crate) async fn register_external(
        &self,
        id: ChildId,
        shutdown: Shutdown,
    ) -> Result<ChildToken, SupervisionError> {
        self.addr
            .send(RegisterExternal { id, shutdown })
            .await
            .map_err(|_| self.gone())?
    }

    /// Stops a child by its shutdown policy; it is not restarted (a temporary child is forgotten).
    pub async fn terminate_child(&self, key: &str) -> Result<(), SupervisionError> {
        self.addr
            .send(TerminateChild {
                key: key.to_owned(),
            })
            .await
            .map_err(|_| self.gone())?
    }

    /// Starts a stopped child again.
    pub async fn restart_child(&self, key: &str) -> Result<(), SupervisionError> {
        self.addr
            .send(RestartChild {
                key: key.to_owned(),
            })
            .await
            .map_err(|_| self.gone())?
    }

    /// Forgets a stopped child.
    pub async fn delete_child(&self, key: &str) -> Result<(), SupervisionError> {
        self.addr
            .send(DeleteChild {
                key: key.to_owned(),
            })
            .await
            .map_err(|_| self.gone())?
    }

    /// A snapshot of this supervisor and all supervisors below it; `Display` draws it.
    pub fn tree(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<SupervisorTree, SupervisionError>> + '_>> {
        Box::pin(async move {
            let described = self.addr.send(Describe).await.map_err(|_| self.gone())?;
            let mut children = Vec::with_capacity(described.len());
            for (info, sub) in described {
                let subtree = match sub {
                    // A sub-supervisor that stops meanwhile is drawn without its children.
                    Some(sub) => sub.tree().await.ok(),
                    None => None,
                };
                children.push((info, subtree));
            }
            Ok(SupervisorTree {
                path: self.path.clone(),
                strategy: self.strategy().await?,
                children,
            })
        })
    }

    async fn strategy(&self) -> Result<crate::strategy::Strategy, SupervisionError> {
        self.addr
            .send(super::messages::GetStrategy)
            .await
            .map_err(|_| self.gone())
    }

    /// Shuts the supervisor down: its children stop in reverse start order, each by its
    /// shutdown policy; resolves with the supervisor's exit reason. On a nested supervisor this
    /// acts like an exit of that child (its parent may restart it); use the parent's
    /// `terminate_child` to stop it for good.
    pub async fn shutdown(&self) -> ExitReason {
        self.addr.do_send(StopSupervisor);
        self.join().await
    }

    /// Waits until the supervisor has stopped; resolves with its exit reason.
    pub async fn join(&self) -> ExitReason {
        self.exited.wait_for(Option::clone).await
    }
}
