//! Supervision benchmarks (harness-free; `BENCH_QUICK=1` for a few-second run).
//!
//! - restart latency: a child fails → its successor answers a message (p50/p99);
//! - message throughput through a supervised actor vs. a bare actix actor, same run, for
//!   ask (`send().await`) and tell (`do_send`, flushed by one final ask).

use std::time::{Duration, Instant};

use actix::prelude::*;
use replikativ_actors::{BackoffPolicy, ChildSpec, Slot, Supervisor, fail};

struct Echo(u64);

impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

impl Handler<Ping> for Echo {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.0 += 1;
        self.0
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Crash;

impl Handler<Crash> for Echo {
    type Result = ();
    fn handle(&mut self, _: Crash, ctx: &mut Context<Self>) {
        fail(ctx, std::io::Error::other("injected"));
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn asks(addr: &Addr<Echo>, n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let _ = addr.send(Ping).await;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

async fn tells(addr: &Addr<Echo>, n: u64) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        addr.do_send(Ping);
    }
    let _ = addr.send(Ping).await;
    n as f64 / start.elapsed().as_secs_f64()
}

/// Crashes the child `restarts` times; each sample runs from the crash to the first `Ping`
/// its successor (as `find` resolves it) answers.
async fn restart_latency<F, Fut>(mut addr: Addr<Echo>, restarts: usize, find: F) -> Vec<Duration>
where
    F: Fn(Addr<Echo>) -> Fut,
    Fut: std::future::Future<Output = Option<Addr<Echo>>>,
{
    let mut samples = Vec::with_capacity(restarts);
    for _ in 0..restarts {
        let start = Instant::now();
        addr.do_send(Crash);
        let next = loop {
            if let Some(next) = find(addr.clone()).await
                && next != addr
                && next.send(Ping).await.is_ok()
            {
                break next;
            }
        };
        samples.push(start.elapsed());
        addr = next;
    }
    samples.sort();
    samples
}

fn report(what: &str, restarts: usize, samples: Vec<Duration>) {
    println!(
        "{what}, {restarts} restarts: p50 {:?}, p99 {:?}, max {:?}",
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    // The benchmark runs as a task on the System's arbiter, as every caller in a node does
    // (actors and their spawned futures). The System's `block_on` future itself is special:
    // each wake-up of it goes through the runtime's I/O driver (an eventfd write and an
    // `epoll_wait`), which measured ~1.7 µs more per restart than the same loop in a task.
    System::new().block_on(async move {
        actix_rt::spawn(run(quick_sizes(quick)))
            .await
            .expect("benchmark task");
    });
}

fn quick_sizes(quick: bool) -> (usize, u64, usize) {
    if quick {
        (2_000, 20_000, 4)
    } else {
        (20_000, 200_000, 8)
    }
}

async fn run((restarts, messages, rounds): (usize, u64, usize)) {
    let slot: Slot<Echo> = Slot::new();
    let sup = Supervisor::new("bench")
        .backoff(BackoffPolicy::none())
        .intensity(u32::MAX, Duration::from_secs(1))
        .child(ChildSpec::actor("echo", || Echo(0)))
        .child(ChildSpec::actor_in("named", slot.clone(), || Echo(0)))
        .start()
        .await
        .expect("bench supervisor starts");

    // Restart latency: a caller holding the child's name asks its supervisor for the
    // new incarnation (lookup round trip) ...
    let first = sup.lookup::<Echo>("echo").await.expect("echo runs");
    let by_lookup = restart_latency(first, restarts, |_old| async {
        sup.lookup::<Echo>("echo").await.ok()
    })
    .await;
    report(
        "restart latency (fail -> successor answers, found by lookup)",
        restarts,
        by_lookup,
    );
    // ... or reads the child's slot, which the runtime fills as the successor starts.
    let first = slot.get().expect("named runs");
    let by_slot = restart_latency(first, restarts, |old| {
        let slot = slot.clone();
        async move { slot.wait_next(&old, Duration::from_secs(5)).await }
    })
    .await;
    report(
        "restart latency by name through a Slot (fail -> successor answers)",
        restarts,
        by_slot,
    );

    // Throughput, bare vs supervised, interleaved rounds.
    let bare = Echo(0).start();
    let supervised = sup.lookup::<Echo>("echo").await.expect("echo runs");
    let (mut bare_ask, mut sup_ask, mut bare_tell, mut sup_tell) = (vec![], vec![], vec![], vec![]);
    // Warm both up, then alternate which goes first so neither profits from order.
    asks(&bare, messages / 10).await;
    asks(&supervised, messages / 10).await;
    for round in 0..rounds {
        if round % 2 == 0 {
            bare_ask.push(asks(&bare, messages).await);
            sup_ask.push(asks(&supervised, messages).await);
            bare_tell.push(tells(&bare, messages).await);
            sup_tell.push(tells(&supervised, messages).await);
        } else {
            sup_ask.push(asks(&supervised, messages).await);
            bare_ask.push(asks(&bare, messages).await);
            sup_tell.push(tells(&supervised, messages).await);
            bare_tell.push(tells(&bare, messages).await);
        }
    }
    let (ba, sa, bt, st) = (
        median(bare_ask),
        median(sup_ask),
        median(bare_tell),
        median(sup_tell),
    );
    println!(
        "ask  (send().await), {messages} msgs x {rounds} rounds: bare {ba:.0}/s, supervised {sa:.0}/s, ratio {:.3}",
        sa / ba
    );
    println!(
        "tell (do_send),      {messages} msgs x {rounds} rounds: bare {bt:.0}/s, supervised {st:.0}/s, ratio {:.3}",
        st / bt
    );
    sup.shutdown().await;
}
