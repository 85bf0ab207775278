//! A dynamic pool (`simple_one_for_one`): children of one kind added at run time.
//!
//! Each child is made from the pool's factory and its own arguments (kept, so a `Permanent` or
//! `Transient` child can be restarted with them). Children default to `Temporary`, the right
//! type for server-side connections: a dropped client is gone and reconnects by itself.
//! Actors that actix-web (or anything else) starts itself join the pool with
//! [`PoolHandle::register_external`] and attach the returned [`ChildToken`].

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr, Context};

use crate::child_spec::{
    ChildId, ChildSpec, StartContext, StartedChild, Starter, run_factory, run_linked,
};
use crate::clock::Clock;
use crate::error::SupervisionError;
use crate::exit::ErrorChain;
use crate::restart::Restart;
use crate::slot::{Slot, SupervisorSlot};
use crate::strategy::{Shutdown, Strategy};
use crate::supervisor::SupervisorHandle;
use crate::supervisor::builder::Supervisor;
use crate::token::ChildToken;
use crate::tree::{ChildCounts, ChildInfo};

type PoolFactory<A, Args> = Arc<dyn Fn(Args) -> Result<A, ErrorChain> + Send + Sync>;
type SlotOf<A, Args> = Arc<dyn Fn(&Args) -> Slot<A> + Send + Sync>;

/// Builds a dynamic pool of `A` actors made from `Args`.
pub struct Pool<A: Actor, Args> {
    supervisor: Supervisor,
    factory: PoolFactory<A, Args>,
    slot_of: Option<SlotOf<A, Args>>,
    /// What every child is made with (restart type, shutdown, backoff, significance); each
    /// child gets its own id and starter.
    template: ChildSpec,
}

impl<A: Actor, Args> Clone for Pool<A, Args> {
    fn clone(&self) -> Self {
        Self {
            supervisor: self.supervisor.clone(),
            factory: self.factory.clone(),
            slot_of: self.slot_of.clone(),
            template: self.template.clone(),
        }
    }
}

impl<A, Args> Pool<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    /// A pool named `name` whose children are made by `factory(args)`.
    /// Defaults: children `Temporary`, `Shutdown::Timeout(5 s)`; pool intensity 1 in 5 s.
    pub fn new<F, E>(name: impl Into<String>, factory: F) -> Self
    where
        F: Fn(Args) -> Result<A, E> + Send + Sync + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        Self {
            supervisor: Supervisor::new(name).strategy(Strategy::SimpleOneForOne),
            factory: Arc::new(move |args| factory(args).map_err(ErrorChain::new)),
            slot_of: None,
            template: ChildSpec::from_starter(
                ChildId::from("template".to_owned()),
                Arc::new(TemplateOnly),
                Shutdown::default(),
                std::any::type_name::<A>(),
            )
            .restart(Restart::Temporary),
        }
    }

    /// Publishes each child's incarnations in the slot `slot_of(args)` names (e.g. a slot
    /// kept in the arguments), so callers reach a child without asking the pool.
    pub fn slots(mut self, slot_of: impl Fn(&Args) -> Slot<A> + Send + Sync + 'static) -> Self {
        self.slot_of = Some(Arc::new(slot_of));
        self
    }

    /// The options every child is made with, set on a [`ChildSpec`] (`restart`, `shutdown`,
    /// `backoff`, `significant`), e.g. `.children(|c| c.restart(Restart::Permanent))`. Each
    /// child keeps its own id and the pool's factory.
    pub fn children(mut self, options: impl FnOnce(ChildSpec) -> ChildSpec) -> Self {
        self.template = options(self.template);
        self
    }

    /// Restart intensity of the pool.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.supervisor = self.supervisor.intensity(max_restarts, period);
        self
    }

    /// Clock of the pool.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.supervisor = self.supervisor.clock(clock);
        self
    }

    /// Starts the pool as the root of its own tree.
    pub async fn start(self) -> Result<PoolHandle<A, Args>, SupervisionError> {
        let supervisor = self.supervisor.clone().start().await?;
        Ok(self.handle(supervisor))
    }

    /// The pool as a child of another supervisor (its id is the pool's name).
    pub fn child_spec(&self) -> ChildSpec {
        ChildSpec::supervisor(self.supervisor.clone())
    }

    /// Like [`child_spec`](Self::child_spec), publishing each incarnation of the pool in
    /// `slot`; [`handle`](Self::handle) turns the slot's content into a typed handle.
    pub fn child_spec_in(&self, slot: SupervisorSlot) -> ChildSpec {
        ChildSpec::supervisor_in(self.supervisor.clone(), slot)
    }

    /// A typed handle on a running incarnation of this pool, e.g. from
    /// `root.supervisor("peers").await?`.
    pub fn handle(&self, supervisor: SupervisorHandle) -> PoolHandle<A, Args> {
        PoolHandle {
            supervisor,
            pool: self.clone(),
        }
    }

    fn spec_for(&self, id: ChildId, args: Args) -> ChildSpec {
        let starter = PoolChildStarter {
            factory: self.factory.clone(),
            slot: self.slot_of.as_ref().map(|of| of(&args)),
            args,
            _actor: PhantomData,
        };
        ChildSpec {
            id,
            name: None,
            starter: Arc::new(starter),
            ..self.template.clone()
        }
    }
}

/// The starter of a pool's template, which is never started itself.
struct TemplateOnly;

#[derive(Debug, thiserror::Error)]
#[error("a pool's template is not a child; its children are started with their arguments")]
struct NotAChild;

impl Starter for TemplateOnly {
    fn start(
        &self,
        _token: ChildToken,
        _cx: &StartContext<'_>,
    ) -> Result<StartedChild, ErrorChain> {
        Err(ErrorChain::new(NotAChild))
    }
}

struct PoolChildStarter<A: Actor, Args> {
    factory: PoolFactory<A, Args>,
    slot: Option<Slot<A>>,
    args: Args,
    _actor: PhantomData<fn() -> A>,
}

impl<A, Args> Starter for PoolChildStarter<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    fn start(&self, token: ChildToken, _cx: &StartContext<'_>) -> Result<StartedChild, ErrorChain> {
        let actor = run_factory(|| (self.factory)(self.args.clone()))?;
        Ok(run_linked(actor, token, self.slot.as_ref()))
    }
}

/// A typed handle on a running pool.
pub struct PoolHandle<A: Actor, Args> {
    supervisor: SupervisorHandle,
    pool: Pool<A, Args>,
}

impl<A: Actor, Args> Clone for PoolHandle<A, Args> {
    fn clone(&self) -> Self {
        Self {
            supervisor: self.supervisor.clone(),
            pool: self.pool.clone(),
        }
    }
}

impl<A, Args> PoolHandle<A, Args>
where
    A: Actor<Context = Context<A>>,
    Args: Clone + Send + Sync + 'static,
{
    /// Starts a child `id` made from `args`; answers its address.
    pub async fn start_child(
        &self,
        id: impl Into<ChildId>,
        args: Args,
    ) -> Result<Addr<A>, SupervisionError> {
        let id = id.into();
        let spec = self.pool.spec_for(id.clone(), args);
        let addr = self.supervisor.start_child_any(spec).await?;
        addr.downcast::<Addr<A>>()
            .map(|b| *b)
            .map_err(|_| SupervisionError::WrongType {
                supervisor: Arc::from(self.supervisor.path()),
                child: id,
                expected: std::any::type_name::<A>(),
            })
    }

    /// Registers a `Temporary` child whose actor is started elsewhere (e.g. an actix-web
    /// websocket actor); the actor must call [`ChildToken::attach`] on its context in
    /// `started()`. Its exit is reported like any child's; the pool can stop or kill it.
    pub async fn register_external(
        &self,
        id: impl Into<ChildId>,
    ) -> Result<ChildToken, SupervisionError> {
        self.supervisor
            .register_external(id.into(), self.pool.template.shutdown)
            .await
    }

    /// Stops child `id` (by the pool's shutdown policy); it is not restarted.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisionError> {
        self.supervisor.terminate_child(id).await
    }

    /// The current address of child `id`.
    pub async fn lookup(&self, id: &str) -> Result<Addr<A>, SupervisionError> {
        self.supervisor.lookup::<A>(id).await
    }

    /// The pool's children.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisionError> {
        self.supervisor.which_children().await
    }

    /// Totals over the pool's children.
    pub async fn count_children(&self) -> Result<ChildCounts, SupervisionError> {
        self.supervisor.count_children().await
    }

    /// The pool's supervisor (events, tree, shutdown).
    pub fn supervisor(&self) -> &SupervisorHandle {
        &self.supervisor
    }
}
