//! What a supervisor knows about one child before it runs: [`ChildSpec`].
//!
//! A spec carries a factory (how to make a fresh incarnation), the restart type, the shutdown
//! policy, whether the child is significant, an optional backoff override and an optional
//! registered name. Specs are cheap to clone (the factory is shared), which is what lets a
//! supervisor restart a child, or a whole sub-tree, from scratch.

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use actix::{Actor, Context};
use tokio::sync::broadcast;

use crate::backoff::BackoffPolicy;
use crate::clock::SharedClock;
use crate::event::SupervisionEvent;
use crate::exit::{ErrorChain, FactoryPanicked};
use crate::panic_hook;
use crate::restart::Restart;
use crate::slot::{Slot, SupervisorSlot};
use crate::strategy::Shutdown;
use crate::supervisor::SupervisorHandle;
use crate::supervisor::builder::Supervisor;
use crate::supervisor::messages::ErasedAddr;
use crate::token::ChildToken;

/// The id of a child, unique within its supervisor.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChildId(Arc<str>);

impl ChildId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<&str> for ChildId {
    fn from(s: &str) -> Self {
        ChildId(Arc::from(s))
    }
}

impl From<String> for ChildId {
    fn from(s: String) -> Self {
        ChildId(Arc::from(s))
    }
}

impl PartialEq<str> for ChildId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for ChildId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

/// What a starter needs from the supervisor that starts it.
pub(crate) struct StartContext<'a> {
    pub path: &'a Arc<str>,
    pub events: &'a broadcast::Sender<SupervisionEvent>,
    pub clock: &'a SharedClock,
}

/// A started incarnation, as the supervisor stores it.
pub(crate) struct StartedChild {
    /// `Addr<A>` for workers, `SupervisorHandle` for sub-supervisors.
    pub addr: Box<dyn ErasedAddr>,
    pub sub: Option<SupervisorHandle>,
}

/// Makes one incarnation of a child and links it with `token`.
pub(crate) trait Starter: Send + Sync {
    fn start(&self, token: ChildToken, cx: &StartContext<'_>) -> Result<StartedChild, ErrorChain>;
    fn is_supervisor(&self) -> bool {
        false
    }
}

struct ActorStarter<A: Actor, F> {
    factory: F,
    slot: Option<Slot<A>>,
    _actor: PhantomData<fn() -> A>,
}

impl<A, F, E> Starter for ActorStarter<A, F>
where
    A: Actor<Context = Context<A>>,
    F: Fn() -> Result<A, E> + Send + Sync + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    fn start(&self, token: ChildToken, _cx: &StartContext<'_>) -> Result<StartedChild, ErrorChain> {
        let actor = run_factory(|| (self.factory)().map_err(ErrorChain::new))?;
        Ok(run_linked(actor, token, self.slot.as_ref()))
    }
}

/// Runs `actor` as a new incarnation linked by `token`, and publishes it in `slot`.
pub(crate) fn run_linked<A>(actor: A, token: ChildToken, slot: Option<&Slot<A>>) -> StartedChild
where
    A: Actor<Context = Context<A>>,
{
    let mut ctx = Context::new();
    token.attach::<A>(&mut ctx);
    let addr = ctx.run(actor);
    if let Some(slot) = slot {
        slot.fill(addr.clone());
    }
    StartedChild {
        addr: Box::new(addr),
        sub: None,
    }
}

/// Runs a factory; an error or a panic becomes the start failure's chain.
pub(crate) fn run_factory<A, F>(factory: F) -> Result<A, ErrorChain>
where
    F: FnOnce() -> Result<A, ErrorChain>,
{
    match catch_unwind(AssertUnwindSafe(factory)) {
        Ok(result) => result,
        Err(payload) => {
            let location = panic_hook::take_last().and_then(|(_, loc)| loc);
            Err(ErrorChain::new(FactoryPanicked {
                message: panic_hook::payload_message(&*payload),
                location,
            }))
        }
    }
}

struct SupervisorStarter {
    supervisor: Supervisor,
    slot: Option<SupervisorSlot>,
}

impl Starter for SupervisorStarter {
    fn start(&self, token: ChildToken, cx: &StartContext<'_>) -> Result<StartedChild, ErrorChain> {
        let handle = self
            .supervisor
            .clone()
            .start_linked(token, cx)
            .map_err(ErrorChain::new)?;
        if let Some(slot) = &self.slot {
            slot.fill(handle.clone());
        }
        Ok(StartedChild {
            addr: Box::new(handle.clone()),
            sub: Some(handle),
        })
    }

    fn is_supervisor(&self) -> bool {
        true
    }
}

/// The recipe for one child of a supervisor.
#[derive(Clone)]
pub struct ChildSpec {
    pub(crate) id: ChildId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) starter: Arc<dyn Starter>,
    pub(crate) restart: Restart,
    pub(crate) shutdown: Shutdown,
    pub(crate) significant: bool,
    pub(crate) backoff: Option<BackoffPolicy>,
    pub(crate) type_name: &'static str,
}

impl ChildSpec {
    /// A worker made by a fallible factory, run as an ordinary actix actor with
    /// `Context<Self>`. An `Err` from the factory is a `StartFailed` exit with its chain.
    /// Defaults: `Permanent`, `Shutdown::Timeout(5 s)`, not significant, the supervisor's backoff.
    pub fn new<A, F, E>(id: impl Into<ChildId>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn() -> Result<A, E> + Send + Sync + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::starting(id, factory, None)
    }

    /// Like [`new`](Self::new), publishing each incarnation in `slot` as it starts, so
    /// callers holding the slot reach the current one without asking the supervisor.
    pub fn new_in<A, F, E>(id: impl Into<ChildId>, slot: Slot<A>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn() -> Result<A, E> + Send + Sync + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::starting(id, factory, Some(slot))
    }

    /// Like [`actor`](Self::actor), publishing each incarnation in `slot` as it starts.
    pub fn actor_in<A, F>(id: impl Into<ChildId>, slot: Slot<A>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn() -> A + Send + Sync + 'static,
    {
        Self::new_in(id, slot, move || {
            Ok::<A, std::convert::Infallible>(factory())
        })
    }

    fn starting<A, F, E>(id: impl Into<ChildId>, factory: F, slot: Option<Slot<A>>) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn() -> Result<A, E> + Send + Sync + 'static,
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::from_starter(
            id.into(),
            Arc::new(ActorStarter {
                factory,
                slot,
                _actor: PhantomData,
            }),
            Shutdown::default(),
            type_name::<A>(),
        )
    }

    /// A worker made by an infallible factory.
    pub fn actor<A, F>(id: impl Into<ChildId>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn() -> A + Send + Sync + 'static,
    {
        Self::new(id, move || Ok::<A, std::convert::Infallible>(factory()))
    }

    /// A nested supervisor; its id is the supervisor's name. Defaults: `Permanent`,
    /// `Shutdown::Infinity`.
    pub fn supervisor(supervisor: Supervisor) -> Self {
        Self::nested(supervisor, None)
    }

    /// Like [`supervisor`](Self::supervisor), publishing each incarnation in `slot` as it
    /// starts (also when a parent's restart starts it again), so callers holding the slot
    /// reach the current one without walking the tree.
    pub fn supervisor_in(supervisor: Supervisor, slot: SupervisorSlot) -> Self {
        Self::nested(supervisor, Some(slot))
    }

    fn nested(supervisor: Supervisor, slot: Option<SupervisorSlot>) -> Self {
        let id = ChildId::from(supervisor.name().to_owned());
        Self::from_starter(
            id,
            Arc::new(SupervisorStarter { supervisor, slot }),
            Shutdown::Infinity,
            "supervisor",
        )
    }

    pub(crate) fn from_starter(
        id: ChildId,
        starter: Arc<dyn Starter>,
        shutdown: Shutdown,
        type_name: &'static str,
    ) -> Self {
        Self {
            id,
            name: None,
            starter,
            restart: Restart::Permanent,
            shutdown,
            significant: false,
            backoff: None,
            type_name,
        }
    }

    /// Restart type (default `Permanent`).
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// How the supervisor stops this child.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant for [`crate::AutoShutdown`] (must not be `Permanent`).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Overrides the supervisor's default backoff for this child.
    pub fn backoff(mut self, policy: BackoffPolicy) -> Self {
        self.backoff = Some(policy);
        self
    }

    /// Registers the child under `name` too: lookups by that name find its current incarnation.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(Arc::from(name.into()));
        self
    }

    /// The child's id.
    pub fn id(&self) -> &ChildId {
        &self.id
    }

    /// Whether the child is a supervisor.
    pub fn is_supervisor(&self) -> bool {
        self.starter.is_supervisor()
    }

    pub(crate) fn matches(&self, key: &str) -> bool {
        self.id == key || self.name.as_deref() == Some(key)
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("type", &self.type_name)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("significant", &self.significant)
            .finish_non_exhaustive()
    }
}
