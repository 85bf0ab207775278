//! Erlang/OTP-style supervision trees for [actix](https://docs.rs/actix) actors.
//!
//! Children are ordinary actix actors with `Context<Self>`; no trait to implement. A
//! [`Supervisor`] starts them in order from [`ChildSpec`]s, watches every incarnation through a
//! link the runtime places in the child's context, and when one exits applies OTP's semantics:
//!
//! - **strategies** [`Strategy::OneForOne`], [`Strategy::OneForAll`], [`Strategy::RestForOne`],
//!   and a dynamic [`Pool`] (`simple_one_for_one`);
//! - **restart types** [`Restart::Permanent`], [`Restart::Transient`], [`Restart::Temporary`];
//! - **intensity**: more than `max_restarts` in `period` and the supervisor stops its children
//!   (reverse order) and exits with [`SupervisionError::IntensityExceeded`]; its parent applies
//!   its own strategy (escalation);
//! - per-child **backoff** ([`BackoffPolicy`]), counted apart from intensity; **generations** so
//!   a late exit notice of an old incarnation is ignored;
//! - ordered start with **rollback**, reverse-order **shutdown** ([`Shutdown`]);
//! - **exit reasons** ([`ExitReason`]): a child that stops itself exits `Normal`, [`fail`] exits
//!   `Failed` with the error's `source()` chain, a panicking handler exits `Panicked` with
//!   message and location (the panic ends only that actor), `Killed`, `StartFailed`;
//! - **significant** children with [`AutoShutdown`];
//! - **reports** as [`SupervisionEvent`]s ([`SupervisorHandle::subscribe`]) and `tracing`
//!   events; introspection with `which_children`, `count_children` and a printable tree.
//!
//! ```text
//!                 node (one_for_all)
//!                 ├── store       StoreActor, permanent
//!                 ├── workers (one_for_one, 3 restarts / 10 s)
//!                 │   ├── parser  permanent
//!                 │   └── indexer transient
//!                 └── peers (simple_one_for_one pool)
//!                     ├── conn-1  temporary
//!                     └── conn-2  temporary
//! ```
//!
//! # Layout
//!
//! - [`supervisor`](Supervisor): the builder, the actor, its messages and [`SupervisorHandle`]
//! - `child_spec`: [`ChildSpec`], [`ChildId`]; `pool`: [`Pool`], [`PoolHandle`]
//! - `token`: [`ChildToken`], [`fail`], [`exit`]: the link placed in each child's context
//! - `strategy`, `restart`, `backoff`, `clock`: the pure rules a supervisor decides with
//! - `exit`, `event`, `tree`, `error`: what it reports
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use actix::prelude::*;
//! use replikativ_actors::{ChildSpec, ExitReason, Strategy, Supervisor, fail};
//!
//! struct Counter(u64);
//! impl Actor for Counter {
//!     type Context = Context<Self>;
//! }
//!
//! #[derive(Message)]
//! #[rtype(result = "u64")]
//! struct Bump;
//! impl Handler<Bump> for Counter {
//!     type Result = u64;
//!     fn handle(&mut self, _: Bump, _: &mut Context<Self>) -> u64 {
//!         self.0 += 1;
//!         self.0
//!     }
//! }
//!
//! #[derive(Message)]
//! #[rtype(result = "()")]
//! struct Break;
//! impl Handler<Break> for Counter {
//!     type Result = ();
//!     fn handle(&mut self, _: Break, ctx: &mut Context<Self>) {
//!         fail(ctx, std::io::Error::other("disk on fire"));
//!     }
//! }
//!
//! actix_rt::System::new().block_on(async {
//!     let root = Supervisor::new("node")
//!         .strategy(Strategy::OneForOne)
//!         .intensity(3, Duration::from_secs(10))
//!         .child(ChildSpec::actor("counter", || Counter(0)))
//!         .start()
//!         .await
//!         .expect("children start");
//!     let mut events = root.subscribe();
//!
//!     let counter = root.lookup::<Counter>("counter").await.unwrap();
//!     assert_eq!(counter.send(Bump).await.unwrap(), 1);
//!     counter.do_send(Break);
//!
//!     // The failure is reported with its chain, then the child comes back fresh.
//!     loop {
//!         let event = events.recv().await.unwrap();
//!         if let Some(reason @ ExitReason::Failed(_)) = event.reason() {
//!             assert_eq!(reason.chain(), ["failed", "disk on fire"]);
//!             break;
//!         }
//!     }
//!     let counter = loop {
//!         match root.lookup::<Counter>("counter").await {
//!             Ok(addr) if addr.connected() => break addr,
//!             _ => actix_rt::task::yield_now().await,
//!         }
//!     };
//!     assert_eq!(counter.send(Bump).await.unwrap(), 1);
//!     println!("{}", root.tree().await.unwrap());
//!     assert!(matches!(root.shutdown().await, ExitReason::Shutdown));
//! });
//! ```

mod backoff;
mod child_spec;
mod clock;
mod error;
mod event;
mod exit;
mod panic_hook;
mod pool;
mod restart;
mod slot;
mod strategy;
mod supervisor;
mod token;
mod tree;
mod watch_cell;

pub use crate::backoff::{BackoffPolicy, ChildBackoff};
pub use child_spec::{ChildId, ChildSpec};
pub use clock::{Clock, ManualClock, TokioClock};
pub use error::SupervisionError;
pub use event::{EventKind, SupervisionEvent};
pub use exit::{BoxError, ErrorChain, ExitReason, FactoryPanicked, error_chain};
pub use panic_hook::payload_message as panic_message;
pub use pool::{Pool, PoolHandle};
pub use restart::{Intensity, Restart};
pub use slot::{Slot, SupervisorSlot};
pub use strategy::{AutoShutdown, Shutdown, Strategy};
pub use supervisor::SupervisorHandle;
pub use supervisor::builder::Supervisor;
pub use token::{ChildToken, ExitHandle, exit, fail};
pub use tree::{ChildCounts, ChildInfo, ChildState, SupervisorTree};
