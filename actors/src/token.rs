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
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context as TaskContext, Poll};

use actix::{Actor, ActorContext, ActorFuture, Addr, AsyncContext, Context, Recipient};
use futures_util::task::AtomicWaker;

use crate::child_spec::ChildId;
use crate::exit::{BoxError, ErrorChain, ExitReason};
use crate::panic_hook;
use crate::supervisor::messages::{ChildAttached, ChildExited, ErasedAddr};
use crate::watch_cell::WatchCell;

/// Control requests, as bits of [`ControlShared::flags`].
const STOP: u8 = 1;
const KILL: u8 = 2;
/// The supervisor's end is gone: a linked child stops with it.
const CLOSED: u8 = 4;

/// State shared by a child's control link: request flags plus the child task's waker.
/// Cheaper than a channel on the child's hot path: a poll is one atomic load.
#[derive(Debug, Default)]
struct ControlShared {
    flags: AtomicU8,
    waker: AtomicWaker,
}

impl ControlShared {
    fn raise(&self, flag: u8) {
        self.flags.fetch_or(flag, Ordering::AcqRel);
        self.waker.wake();
    }
}

/// The supervisor's end of the control link; dropping it stops the child.
#[derive(Debug)]
pub(crate) struct ChildControl {
    shared: Arc<ControlShared>,
}

impl ChildControl {
    pub fn stop(&self) {
        self.shared.raise(STOP);
    }

    pub fn kill(&self) {
        self.shared.raise(KILL);
    }
}

impl Drop for ChildControl {
    fn drop(&mut self) {
        self.shared.raise(CLOSED);
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
    done: WatchCell<Option<ExitReason>>,
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
        self.done.replace(Some(reason.clone()));
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
    pub exited: WatchCell<Option<ExitReason>>,
    pub exit: ExitHandle,
}

/// The exit-reporting and stop-listening link of one child incarnation; see the module docs.
pub struct ChildToken {
    guard: ExitGuard,
    control: Arc<ControlShared>,
    on_attach: Option<(Recipient<ChildAttached>, ChildId, u64)>,
}

impl ChildToken {
    /// A token reporting to `notify`; `armed` tokens report even if never attached.
    pub(crate) fn new(
        notify: Option<(Recipient<ChildExited>, ChildId, u64)>,
        armed: bool,
    ) -> (Self, TokenLinks) {
        let control = Arc::new(ControlShared::default());
        let done = WatchCell::new(None);
        let exited = done.clone();
        let cell = Arc::new(ExitCell {
            reason: Mutex::new(None),
            armed: AtomicBool::new(armed),
        });
        let links = TokenLinks {
            control: ChildControl {
                shared: control.clone(),
            },
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
            control,
            on_attach: None,
        };
        (token, links)
    }

    /// Asks the token to send the actor's `Addr` to its supervisor when attached.
    /// A receiver that resolves with this incarnation's exit reason.
    pub(crate) fn exited(&self) -> WatchCell<Option<ExitReason>> {
        self.guard.done.clone()
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
            control: self.control,
            guard: self.guard,
            registered: false,
            seen: 0,
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
    control: Arc<ControlShared>,
    guard: ExitGuard,
    /// Whether the task's waker is registered (the task's waker is stable; only a wake,
    /// which consumes it, requires registering again).
    registered: bool,
    /// Flags already acted on.
    seen: u8,
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
        loop {
            // A wake consumes the registered waker, so register again after every raise seen.
            if !this.registered {
                this.control.waker.register(task.waker());
                this.registered = true;
            }
            let flags = this.control.flags.load(Ordering::Acquire);
            let new = flags & !this.seen;
            if new == 0 {
                break;
            }
            this.seen |= flags;
            this.registered = false;
            if new & KILL != 0 {
                this.guard.cell.set(ExitReason::Killed, true);
                ctx.terminate();
            } else if new & (STOP | CLOSED) != 0 {
                this.guard.cell.set(ExitReason::Shutdown, false);
                ctx.stop();
            }
        }
        // Never completes: dropping it (with the context) is what reports the exit.
        Poll::Pending
    }
}

/// Identity of a running actor: its type and its mailbox's address.
type FailKey = (TypeId, u64);

/// Exit handles of attached actors, by identity. `fail` reads it on every failure and
/// `attach` writes it on every start, so it hashes cheaply (see [`MixHasher`]).
static FAIL_CELLS: LazyLock<Mutex<HashMap<FailKey, ExitHandle, BuildHasherDefault<MixHasher>>>> =
    LazyLock::new(|| Mutex::new(HashMap::default()));

fn fail_key<A: Actor>(addr: &Addr<A>) -> FailKey {
    // `Addr` hashes exactly the pointer of its mailbox, unique while the actor lives; the
    // identity hasher keeps that pointer as it is, so two live actors never share a key.
    let mut pointer = IdentityHasher(0);
    addr.hash(&mut pointer);
    (TypeId::of::<A>(), pointer.0)
}

/// Keeps the last integer written: turns `Addr`'s hash (one pointer) back into the pointer.
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_ne_bytes(word);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

/// A multiplicative hasher for keys that are already unique integers (no attacker picks
/// them: they are pointers and type ids).
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u128(&mut self, n: u128) {
        self.write_u64(n as u64);
        self.write_u64((n >> 64) as u64);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
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
