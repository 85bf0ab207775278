//! The link between a running child and its supervisor.
//!
//! Every incarnation gets a [`ChildToken`]. Attached to the actor's context it
//! - reports the exit exactly once, from `Drop`: when the actor's context is dropped after
//!   `stopped()`, or while a panic unwinds (then `std::thread::panicking()` is true and the
//!   panic hook's record gives message and location);
//! - listens for the supervisor's stop/kill requests and turns them into `ctx.stop()` /
//!   `ctx.terminate()`; when the supervisor is gone (the channel closes) the child stops too.
//!
//! Children started by a supervisor get their token attached by the runtime. Actors whose
//! context the runtime does not create (e.g. websocket actors started by actix-web) receive a
//! token from [`crate::PoolHandle::register_external`] and call [`ChildToken::attach`] in
//! `started()`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context as TaskContext, Poll};

use actix::{Actor, ActorContext, ActorFuture, Addr, AsyncContext, Context, Recipient};
use tokio::sync::{mpsc, watch};

use crate::child_spec::ChildId;
use crate::exit::{BoxError, ErrorChain, ExitReason};
use crate::panic_hook;
use crate::supervisor::messages::{ChildAttached, ChildExited, ErasedAddr};

/// A request from the supervisor to its child.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Control {
    Stop,
    Kill,
}

/// The supervisor's end of the control channel.
#[derive(Debug, Clone)]
pub(crate) struct ChildControl {
    tx: mpsc::UnboundedSender<Control>,
}

impl ChildControl {
    pub fn stop(&self) {
        let _ = self.tx.send(Control::Stop);
    }

    pub fn kill(&self) {
        let _ = self.tx.send(Control::Kill);
    }
}

/// The exit reason a child chose for itself, read by its guard on drop.
#[derive(Debug, Default)]
struct ExitCell {
    reason: Mutex<Option<ExitReason>>,
    armed: AtomicBool,
}

impl ExitCell {
    fn set(&self, reason: ExitReason, overwrite: bool) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if overwrite || slot.is_none() {
            *slot = Some(reason);
        }
    }

    fn peek(&self) -> Option<ExitReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn take(&self) -> Option<ExitReason> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Lets a child record why it is about to stop; the next `ctx.stop()` exits with it.
#[derive(Debug, Clone)]
pub struct ExitHandle {
    cell: Arc<ExitCell>,
}

impl ExitHandle {
    /// Records a failure with `err` (and its source chain) as the exit reason.
    pub fn fail<E: Into<BoxError>>(&self, err: E) {
        self.set(ExitReason::Failed(ErrorChain::from_boxed(err.into())));
    }

    /// Records `reason` as the exit reason (the last one set wins).
    pub fn set(&self, reason: ExitReason) {
        self.cell.set(reason, true);
    }

    /// The reason recorded so far, if any.
    pub fn reason(&self) -> Option<ExitReason> {
        self.cell.peek()
    }

    pub(crate) fn set_if_unset(&self, reason: ExitReason) {
        self.cell.set(reason, false);
    }

    /// Stops the guard from reporting (a start that is rolled back never ran).
    pub(crate) fn disarm(&self) {
        self.cell.armed.store(false, Ordering::Release);
    }
}

/// Reports the exit of one incarnation exactly once, when dropped.
struct ExitGuard {
    cell: Arc<ExitCell>,
    done: watch::Sender<Option<ExitReason>>,
    notify: Option<(Recipient<ChildExited>, ChildId, u64)>,
    fail_key: Option<FailKey>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let Some(key) = self.fail_key.take() {
            unregister(key);
        }
        let reason = if std::thread::panicking() {
            let (message, location) =
                panic_hook::take_last().unwrap_or_else(|| ("unknown panic".to_owned(), None));
            ExitReason::Panicked { message, location }
        } else {
            self.cell.take().unwrap_or(ExitReason::Normal)
        };
        let armed = self.cell.armed.load(Ordering::Acquire);
        self.done.send_replace(Some(reason.clone()));
        if armed && let Some((to, child, generation)) = self.notify.take() {
            to.do_send(ChildExited {
                child,
                generation,
                reason,
            });
        }
    }
}

/// What the supervisor keeps of a token it handed out.
pub(crate) struct TokenLinks {
    pub control: ChildControl,
    pub exited: watch::Receiver<Option<ExitReason>>,
    pub exit: ExitHandle,
}

/// The exit-reporting and stop-listening link of one child incarnation; see the module docs.
pub struct ChildToken {
    guard: ExitGuard,
    rx: mpsc::UnboundedReceiver<Control>,
    on_attach: Option<(Recipient<ChildAttached>, ChildId, u64)>,
}

impl ChildToken {
    /// A token reporting to `notify`; `armed` tokens report even if never attached.
    pub(crate) fn new(
        notify: Option<(Recipient<ChildExited>, ChildId, u64)>,
        armed: bool,
    ) -> (Self, TokenLinks) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done, exited) = watch::channel(None);
        let cell = Arc::new(ExitCell {
            reason: Mutex::new(None),
            armed: AtomicBool::new(armed),
        });
        let links = TokenLinks {
            control: ChildControl { tx },
            exited,
            exit: ExitHandle { cell: cell.clone() },
        };
        let token = ChildToken {
            guard: ExitGuard {
                cell,
                done,
                notify,
                fail_key: None,
            },
            rx,
            on_attach: None,
        };
        (token, links)
    }

    /// Asks the token to send the actor's `Addr` to its supervisor when attached.
    /// A receiver that resolves with this incarnation's exit reason.
    pub(crate) fn exited(&self) -> watch::Receiver<Option<ExitReason>> {
        self.guard.done.subscribe()
    }

    pub(crate) fn report_addr_to(
        &mut self,
        to: Recipient<ChildAttached>,
        child: ChildId,
        generation: u64,
    ) {
        self.on_attach = Some((to, child, generation));
    }

    /// A handle to record the exit reason before stopping (for contexts other than
    /// `Context<Self>`, where [`crate::fail`] is not available).
    pub fn exit_handle(&self) -> ExitHandle {
        ExitHandle {
            cell: self.guard.cell.clone(),
        }
    }

    /// Links the actor owning `ctx` to its supervisor. Call once, in `started()` (or before
    /// running the context).
    pub fn attach<A>(mut self, ctx: &mut A::Context)
    where
        A: Actor,
        A::Context: AsyncContext<A> + ActorContext,
    {
        let addr = ctx.address();
        let key = fail_key(&addr);
        register(key, self.exit_handle());
        self.guard.fail_key = Some(key);
        self.guard.cell.armed.store(true, Ordering::Release);
        if let Some((to, child, generation)) = self.on_attach.take() {
            to.do_send(ChildAttached {
                child,
                generation,
                addr: Box::new(addr),
            });
        }
        ctx.spawn(ControlFut {
            rx: self.rx,
            _guard: self.guard,
            closed: false,
        });
    }
}

impl<A: Actor> ErasedAddr for Addr<A> {
    fn clone_any(&self) -> Box<dyn Any + Send> {
        Box::new(self.clone())
    }
}

/// Lives in the child's context: executes control requests, owns the exit guard.
struct ControlFut {
    rx: mpsc::UnboundedReceiver<Control>,
    _guard: ExitGuard,
    closed: bool,
}

impl<A> ActorFuture<A> for ControlFut
where
    A: Actor,
    A::Context: ActorContext,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        _act: &mut A,
        ctx: &mut A::Context,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        while !this.closed {
            match this.rx.poll_recv(task) {
                Poll::Ready(Some(Control::Stop)) => {
                    this._guard.cell.set(ExitReason::Shutdown, false);
                    ctx.stop();
                }
                Poll::Ready(Some(Control::Kill)) => {
                    this._guard.cell.set(ExitReason::Killed, true);
                    ctx.terminate();
                }
                Poll::Ready(None) => {
                    // The supervisor is gone: a linked child goes with it.
                    this.closed = true;
                    this._guard.cell.set(ExitReason::Shutdown, false);
                    ctx.stop();
                }
                Poll::Pending => break,
            }
        }
        // Never completes: dropping it (with the context) is what reports the exit.
        Poll::Pending
    }
}

/// Identity of a running actor: its type and its mailbox.
type FailKey = (TypeId, u64);

static FAIL_CELLS: LazyLock<Mutex<HashMap<FailKey, ExitHandle>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn fail_key<A: Actor>(addr: &Addr<A>) -> FailKey {
    // Addr hashes the pointer of its mailbox, unique while the actor lives.
    let mut hasher = DefaultHasher::new();
    addr.hash(&mut hasher);
    (TypeId::of::<A>(), hasher.finish())
}

fn register(key: FailKey, handle: ExitHandle) {
    FAIL_CELLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, handle);
}

fn unregister(key: FailKey) {
    FAIL_CELLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
}

fn exit_handle_of<A: Actor<Context = Context<A>>>(ctx: &Context<A>) -> Option<ExitHandle> {
    let key = fail_key(&ctx.address());
    FAIL_CELLS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned()
}

/// Stops the calling child with `Failed(err)`: its supervisor sees the error and its
/// `source()` chain. Outside a supervisor it just stops the actor.
pub fn fail<A, E>(ctx: &mut Context<A>, err: E)
where
    A: Actor<Context = Context<A>>,
    E: Into<BoxError>,
{
    exit(ctx, ExitReason::Failed(ErrorChain::from_boxed(err.into())));
}

/// Stops the calling child with `reason` (e.g. [`ExitReason::Shutdown`]).
pub fn exit<A>(ctx: &mut Context<A>, reason: ExitReason)
where
    A: Actor<Context = Context<A>>,
{
    match exit_handle_of(ctx) {
        Some(handle) => handle.set(reason),
        None => tracing::debug!(%reason, "exit reason of an unsupervised actor is dropped"),
    }
    ctx.stop();
}
