//! Power loss: a store over a simulated disk ([`FaultyDisk`], see its module doc for what is
//! modelled) loses its unsynced writes at a random moment, tearing the write in flight.
//! Reopened on what survived, the store must hold every acknowledged batch (`Store::write`
//! returned `Ok`), each batch wholly or not at all, and `verify` must be clean. With the
//! disk's sync doing nothing ([`FaultyDisk::set_fake_sync`], switched on once the store is
//! created), the same check must fail: the harness can see acknowledged writes that were never
//! made durable.
//!
//! The collector's checkpoint goes through the same disk: a node collecting the shipped
//! tweets loses power at a random moment; on what survived, the checkpoint covers exactly the
//! tweets of the durable commits, and a collector resumed from it ends with every source tweet
//! exactly once.
//!
//! Each case is deterministic per seed (the node case up to actor scheduling); a failure
//! prints its seed. `POWER_CUT_SEED=n` runs that one seed. Cases: 300 store cuts and 24
//! collector cuts (200 and 8 with `CI` set; `REPLIKATIV_LONG=n` runs `n` of each).

use std::collections::BTreeMap;

use crate::faulty_backend::FaultyDisk;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use replikativ::Id;
use replikativ::realize::realizer::error_chain;
use replikativ::store::{Store, WriteBatch};

/// One batch of a workload and what it adds.
struct Planned {
    batch: WriteBatch,
    values: Vec<Id>,
    blobs: Vec<Id>,
}

/// A seeded workload: groups of batches, each group one `write_group` (one transaction).
struct Plan {
    groups: Vec<Vec<Planned>>,
    /// `states[k]`: the whole state table after the first `k` batches.
    states: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rng.fill(&mut b[..]);
    b
}

impl Plan {
    fn new(rng: &mut StdRng) -> Plan {
        let n = rng.random_range(1..=24usize);
        let mut state = BTreeMap::new();
        let mut states = vec![state.clone()];
        let mut groups: Vec<Vec<Planned>> = Vec::new();
        let mut i = 0;
        while i < n {
            let size = rng.random_range(1..=3usize).min(n - i);
            let mut group = Vec::new();
            for _ in 0..size {
                let mut batch = WriteBatch::new();
                let mut values = Vec::new();
                for _ in 0..rng.random_range(0..=4) {
                    let len = if rng.random_bool(0.15) {
                        rng.random_range(10_000..200_000)
                    } else {
                        rng.random_range(1..3_000)
                    };
                    values.push(batch.put_value(random_bytes(rng, len)));
                }
                let mut blobs = Vec::new();
                if rng.random_bool(0.3) {
                    let len = rng.random_range(100..50_000);
                    blobs.push(batch.put_blob(random_bytes(rng, len)));
                }
                let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
                let ids: Vec<u8> = values
                    .iter()
                    .chain(&blobs)
                    .flat_map(|id| id.as_bytes().to_vec())
                    .collect();
                ops.push((format!("t/{i:04}").into_bytes(), Some(ids)));
                ops.push((b"last".to_vec(), Some((i as u64).to_be_bytes().to_vec())));
                let d = rng.random_range(0..3_000);
                ops.push((format!("d/{i:04}").into_bytes(), Some(random_bytes(rng, d))));
                if i > 0 && rng.random_bool(0.3) {
                    let j = rng.random_range(0..i);
                    ops.push((format!("d/{j:04}").into_bytes(), None));
                }
                if rng.random_bool(0.3) {
                    let len = rng.random_range(0..30_000);
                    ops.push((b"big".to_vec(), Some(random_bytes(rng, len))));
                }
                for (key, op) in ops {
                    match op {
                        Some(v) => {
                            batch.put_state(key.clone(), v.clone());
                            state.insert(key, v);
                        }
                        None => {
                            batch.delete_state(key.clone());
                            state.remove(&key);
                        }
                    }
                }
                states.push(state.clone());
                group.push(Planned {
                    batch,
                    values,
                    blobs,
                });
                i += 1;
            }
            groups.push(group);
        }
        Plan { groups, states }
    }

    fn batches(&self) -> impl Iterator<Item = &Planned> {
        self.groups.iter().flatten()
    }
}

fn write_group(store: &Store, group: &[Planned]) -> Result<(), replikativ::store::StoreError> {
    let refs: Vec<&WriteBatch> = group.iter().map(|p| &p.batch).collect();
    store.write_group(&refs)
}

/// Where to cut a workload whose mutating operations are `log` (1-based; `len + 1`: after the
/// last write returned): anywhere, during a sync, or during the write just before a sync (the
/// commit's header), a third of the time each.
fn cut_point(rng: &mut StdRng, log: &[u8]) -> u64 {
    let syncs: Vec<u64> = (0..log.len())
        .filter(|&i| log[i] == b's')
        .map(|i| i as u64 + 1)
        .collect();
    match rng.random_range(0..3) {
        1 if !syncs.is_empty() => syncs[rng.random_range(0..syncs.len())],
        2 if syncs.iter().any(|&s| s > 1) => {
            let before: Vec<u64> = syncs.iter().filter(|&&s| s > 1).map(|s| s - 1).collect();
            before[rng.random_range(0..before.len())]
        }
        _ => rng.random_range(1..=log.len() as u64 + 1),
    }
}

/// What one power cut showed.
#[derive(Debug, Default)]
struct Cut {
    model: String,
    acked: usize,
    /// Batches of the group in flight at the cut (0: the cut came after the last write).
    in_flight: usize,
    /// The in-flight group survived (whole).
    in_flight_kept: bool,
    /// What the cut did on the disk.
    stats: crate::faulty_backend::CutStats,
}

/// Runs one seeded case; `Err` describes a violation (lost, half-applied or damaged data).
/// With `fake_sync`, the disk's syncs do nothing once the store is created.
fn power_cut_case(seed: u64, fake_sync: bool) -> Result<Cut, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let plan = Plan::new(&mut rng);
    let fail = |what: &str, e: &dyn std::error::Error| format!("{what}: {}", error_chain(e));

    // The mutating disk operations the workload does, to cut anywhere inside it.
    let log = {
        let disk = FaultyDisk::new(seed);
        let store = Store::with_backend(disk.clone(), "calibration")
            .map_err(|e| fail("creating the store", &e))?;
        disk.set_fake_sync(fake_sync);
        let before = disk.mutating_ops();
        for group in &plan.groups {
            write_group(&store, group).map_err(|e| fail("calibration write", &e))?;
        }
        disk.op_log().split_off(before as usize)
    };
    let cut_after = cut_point(&mut rng, &log);

    let disk = FaultyDisk::new(seed);
    let store =
        Store::with_backend(disk.clone(), "faulty").map_err(|e| fail("creating the store", &e))?;
    disk.set_fake_sync(fake_sync);
    disk.cut_power_after(cut_after);
    let mut out = Cut {
        model: format!("{:?}", disk.model().0),
        ..Cut::default()
    };
    for group in &plan.groups {
        match write_group(&store, group) {
            Ok(()) => out.acked += group.len(),
            Err(e) => {
                if !disk.is_dead() {
                    return Err(fail("a write failed with the power on", &e));
                }
                out.in_flight = group.len();
                break;
            }
        }
    }
    disk.cut_power_now();
    drop(store);
    out.stats = disk.cut_stats().unwrap_or_default();
    let cut = out.stats.report.clone();

    let recovered = FaultyDisk::from_image(disk.durable_image(), seed);
    let store = Store::with_backend(recovered, "recovered")
        .map_err(|e| fail(&format!("reopening after the cut ({cut})"), &e))?;
    let state: BTreeMap<Vec<u8>, Vec<u8>> = store
        .scan_state(b"")
        .map_err(|e| fail("reading the state", &e))?
        .into_iter()
        .collect();
    let acked = out.acked;
    let k = if state == plan.states[acked] {
        acked
    } else if out.in_flight > 0 && state == plan.states[acked + out.in_flight] {
        out.in_flight_kept = true;
        acked + out.in_flight
    } else {
        let want = &plan.states[acked];
        let missing: Vec<String> = want
            .keys()
            .filter(|k| state.get(*k) != want.get(*k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let extra: Vec<String> = state
            .keys()
            .filter(|k| !want.contains_key(*k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        return Err(format!(
            "the state is neither that after the {acked} acknowledged batches nor that with the \
             {} in flight: keys missing or different {missing:?}, keys extra {extra:?} ({cut})",
            out.in_flight
        ));
    };
    for (i, p) in plan.batches().enumerate() {
        let present = i < k;
        for id in &p.values {
            let got = store
                .get_value(id)
                .map_err(|e| fail(&format!("reading value {id} of batch {i}"), &e))?;
            if got.is_some() != present {
                return Err(format!(
                    "value {id} of batch {i} is {} but the state says {k} batches are applied ({cut})",
                    if got.is_some() { "present" } else { "absent" }
                ));
            }
        }
        for id in &p.blobs {
            let got = store
                .get_blob(id)
                .map_err(|e| fail(&format!("reading blob {id} of batch {i}"), &e))?;
            if got.is_some() != present {
                return Err(format!(
                    "blob {id} of batch {i} is {} but the state says {k} batches are applied ({cut})",
                    if got.is_some() { "present" } else { "absent" }
                ));
            }
        }
    }
    let report = store.verify().map_err(|e| fail("verify", &e))?;
    let values: usize = plan.batches().take(k).map(|p| p.values.len()).sum();
    let blobs: usize = plan.batches().take(k).map(|p| p.blobs.len()).sum();
    if !report.is_ok()
        || report.values_checked != values as u64
        || report.blobs_checked != blobs as u64
    {
        return Err(format!(
            "verify after the cut: {report} (expected {values} values, {blobs} blobs) ({cut})"
        ));
    }
    // The recovered store takes writes again.
    let mut after = WriteBatch::new();
    let id = after.put_value(format!("after the cut {seed}").into_bytes());
    store
        .write(&after)
        .map_err(|e| fail("writing after the recovery", &e))?;
    if store
        .get_value(&id)
        .map_err(|e| fail("reading back", &e))?
        .is_none()
    {
        return Err("a write after the recovery is not readable".into());
    }
    Ok(out)
}

/// The seeds to run: `POWER_CUT_SEED` alone, else `0..n`.
fn seeds(normal: usize, ci: usize) -> Vec<u64> {
    if let Ok(s) = std::env::var("POWER_CUT_SEED") {
        return vec![s.parse().expect("POWER_CUT_SEED is a number")];
    }
    (0..crate::common::iterations(normal, ci) as u64).collect()
}

#[test]
fn after_a_power_cut_every_acknowledged_batch_is_there_whole_and_verify_is_clean() {
    let seeds = seeds(300, 200);
    let mut failures = Vec::new();
    let (mut kept, mut dropped, mut after_end, mut acked) = (0, 0, 0, 0);
    let (mut volatile, mut survived, mut torn, mut with_torn) = (0, 0, 0, 0);
    let mut models = BTreeMap::new();
    for &seed in &seeds {
        match power_cut_case(seed, false) {
            Ok(cut) => {
                acked += cut.acked;
                volatile += cut.stats.volatile;
                survived += cut.stats.kept;
                torn += cut.stats.torn;
                with_torn += usize::from(cut.stats.torn > 0);
                *models.entry(cut.model).or_insert(0) += 1;
                match (cut.in_flight, cut.in_flight_kept) {
                    (0, _) => after_end += 1,
                    (_, true) => kept += 1,
                    (_, false) => dropped += 1,
                }
            }
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    eprintln!(
        "{} power cuts ({models:?}): {acked} acknowledged batches, none lost; the group in \
         flight survived whole {kept} times, vanished {dropped} times; {after_end} cuts after \
         the last write; {volatile} unsynced operations at the cuts, {survived} of them \
         survived, {torn} torn ({with_torn} cuts tore a write)",
        seeds.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} power cuts lost or damaged data (rerun one with POWER_CUT_SEED=n):\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}

#[test]
fn with_syncs_faked_by_the_disk_the_same_check_catches_lost_acknowledged_writes() {
    let seeds: Vec<u64> = (0..40).collect();
    let mut caught = Vec::new();
    for &seed in &seeds {
        if let Err(e) = power_cut_case(seed, true) {
            caught.push(format!("seed {seed}: {e}"));
        }
    }
    eprintln!(
        "with faked syncs, {} of {} power cuts were caught losing data; first: {}",
        caught.len(),
        seeds.len(),
        caught.first().map(String::as_str).unwrap_or("-")
    );
    assert!(
        !caught.is_empty(),
        "with syncs that make nothing durable the harness must catch a lost acknowledged write"
    );
}

/// One line of the source as the oracle reads it: where it starts and its tweets `(id, text)`.
struct SourceLine {
    offset: u64,
    tweets: Vec<(String, String)>,
}

/// The source parsed independently of the crate (serde_json, `tweets_oracle::tweets_in`).
fn source_oracle(bytes: &[u8]) -> Vec<SourceLine> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for raw in bytes.split_inclusive(|b| *b == b'\n') {
        let line = raw.strip_suffix(b"\n").unwrap_or(raw);
        let tweets = crate::common::tweets_oracle::tweets_in(line)
            .unwrap_or_default()
            .into_iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap_or_default().to_string(),
                    t["text"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        out.push(SourceLine { offset, tweets });
        offset += raw.len() as u64;
    }
    out.push(SourceLine {
        offset,
        tweets: Vec::new(),
    });
    out
}

/// The tweets before `pos` by the oracle, or why `pos` names no place in the source.
fn tweets_before(
    oracle: &[SourceLine],
    pos: &replikativ::tweets::SourcePosition,
) -> Result<Vec<(String, String)>, String> {
    let at = usize::try_from(pos.line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|&i| i < oracle.len())
        .ok_or_else(|| format!("the checkpoint {pos:?} names no line of the source"))?;
    if oracle[at].offset != pos.offset {
        return Err(format!(
            "the checkpoint {pos:?} puts line {} at byte {}, the source at {}",
            pos.line, pos.offset, oracle[at].offset
        ));
    }
    let done = pos.tweets_done as usize;
    if done > oracle[at].tweets.len() {
        return Err(format!(
            "the checkpoint {pos:?} is past the tweets of its line"
        ));
    }
    let mut out: Vec<(String, String)> = oracle[..at]
        .iter()
        .flat_map(|l| l.tweets.iter().cloned())
        .collect();
    out.extend(oracle[at].tweets[..done].iter().cloned());
    Ok(out)
}

/// Every `add-tweet` of the CDVCS `key` in `store`, commit by commit from the root, as
/// `(id, text)` decoded from the stored params with rmp_serde.
fn stored_tweets(
    store: &Store,
    key: &replikativ::crdt::CrdtKey,
) -> Result<Vec<(String, String)>, String> {
    let Some(cdvcs) = replikativ::cli::log::load_cdvcs(store, key).map_err(|e| format!("{e:#}"))?
    else {
        return Ok(Vec::new());
    };
    if cdvcs.heads().len() > 1 {
        return Err(format!(
            "the collector's CDVCS has {} heads",
            cdvcs.heads().len()
        ));
    }
    let mut out = Vec::new();
    for (id, parents) in cdvcs.entries() {
        if parents.is_empty() {
            continue;
        }
        let bytes = store
            .get_value(&id)
            .map_err(|e| error_chain(&e))?
            .ok_or_else(|| format!("commit {id} is in the graph but not stored"))?;
        let commit = replikativ::crdt::Commit::decode(&bytes).map_err(|e| error_chain(&e))?;
        for tx in &commit.commit.transactions {
            if tx.op != replikativ::collector::actor::ADD_TWEET {
                continue;
            }
            let params = store
                .get_value(&tx.params)
                .map_err(|e| error_chain(&e))?
                .ok_or_else(|| format!("params {} of commit {id} are not stored", tx.params))?;
            let v: serde_json::Value =
                rmp_serde::from_slice(&params).map_err(|e| format!("params {}: {e}", tx.params))?;
            out.push((
                v["id"].as_str().unwrap_or_default().to_string(),
                v["text"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    Ok(out)
}

/// Collects `source` into `key` on a node over `store` with `batch`, until the collector
/// reports it finished or `stop` says so; returns the collector's last report.
async fn collect(
    store: &Store,
    key: &replikativ::crdt::CrdtKey,
    source: &std::path::Path,
    batch: usize,
    mut stop: impl FnMut() -> bool,
) -> Result<replikativ::collector::CollectReport, String> {
    use replikativ::collector::{self, CollectOptions, CollectReport, CollectorLink, SourceSpec};
    use std::time::{Duration, Instant};

    let node = replikativ::Node::builder()
        .name("collector")
        .store(replikativ::node::StoreLocation::Open(store.clone()))
        .cdvcs(key.clone())
        .start()
        .await
        .map_err(|e| format!("starting the node: {}", error_chain(&e)))?;
    let spec = SourceSpec::File {
        path: source.to_path_buf(),
        follow: false,
    };
    let (report_tx, report) = tokio::sync::watch::channel(CollectReport::default());
    let opts = CollectOptions {
        key: key.clone(),
        flush: Duration::from_millis(20),
        batch,
        checkpoint_key: spec.checkpoint_key(),
    };
    let started = node
        .supervisor()
        .start_child(collector::subtree(
            node.stage(),
            store.clone(),
            spec,
            opts,
            report_tx,
            CollectorLink::default(),
        ))
        .await;
    let mut result = started
        .map(|_| ())
        .map_err(|e| format!("starting the collector: {e}"));
    let end = Instant::now() + Duration::from_secs(60);
    while result.is_ok() && !report.borrow().finished && !stop() {
        if Instant::now() > end {
            result = Err(format!(
                "the collector neither finished nor stopped in 60 s: {:?}",
                report.borrow()
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = report.borrow().clone();
    node.shutdown().await;
    result.map(|()| last)
}

/// What one collector power cut showed.
struct CollectorCut {
    /// Tweets the collector reported durable before the cut.
    acked: u64,
    /// Tweets in the durable commits.
    durable: usize,
    /// The power failed before the node and collector had started.
    start_failed: bool,
}

fn collector_case(
    seed: u64,
    source: &std::path::Path,
    oracle: &[SourceLine],
    calibration: &mut BTreeMap<(usize, bool), u64>,
    fake_sync: bool,
) -> Result<CollectorCut, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let key = replikativ::crdt::CrdtKey::new(
        "mail:test@example.com",
        uuid::Uuid::from_u128(seed as u128),
    );
    let batch = [1, 3, 7, 10, 32][rng.random_range(0..5)];
    let all: Vec<(String, String)> = oracle.iter().flat_map(|l| l.tweets.clone()).collect();
    let rt = || actix_rt::System::new();

    // How many mutating disk operations collecting the whole source takes with this batch.
    let ops = match calibration.get(&(batch, fake_sync)) {
        Some(&n) => n,
        None => {
            let disk = FaultyDisk::new(seed);
            let store =
                Store::with_backend(disk.clone(), "calibration").map_err(|e| error_chain(&e))?;
            disk.set_fake_sync(fake_sync);
            let before = disk.mutating_ops();
            rt().block_on(collect(&store, &key, source, batch, || false))?;
            let n = disk.mutating_ops() - before;
            calibration.insert((batch, fake_sync), n);
            n
        }
    };
    let cut_after = rng.random_range(1..=ops + 1);

    let disk = FaultyDisk::new(seed);
    let store = Store::with_backend(disk.clone(), "collector").map_err(|e| error_chain(&e))?;
    disk.set_fake_sync(fake_sync);
    disk.cut_power_after(cut_after);
    let watch = disk.clone();
    // The node may fail to start, or the collector to finish, once the power is off.
    let report = rt().block_on(collect(&store, &key, source, batch, || watch.is_dead()));
    let dead = disk.is_dead();
    disk.cut_power_now();
    drop(store);
    let cut = disk.cut_stats().map(|s| s.report).unwrap_or_default();
    let ctx =
        |what: String| format!("{what} (batch {batch}, cut after {cut_after} of {ops} ops: {cut})");
    let (acked, start_failed) = match report {
        Ok(r) => (r.tweets, false),
        // Without power the node (or the collector) cannot start: nothing was acknowledged.
        Err(_) if dead => (0, true),
        Err(e) => return Err(ctx(format!("with the power on: {e}"))),
    };

    let store = Store::with_backend(
        FaultyDisk::from_image(disk.durable_image(), seed),
        "recovered",
    )
    .map_err(|e| ctx(format!("reopening: {}", error_chain(&e))))?;
    let checkpoint_key = replikativ::collector::SourceSpec::File {
        path: source.to_path_buf(),
        follow: false,
    }
    .checkpoint_key()
    .ok_or("a file source has a checkpoint key")?;
    let checkpoint = store
        .get_state(&checkpoint_key)
        .map_err(|e| ctx(error_chain(&e)))?
        .map(|raw| rmp_serde::from_slice::<replikativ::tweets::SourcePosition>(&raw))
        .transpose()
        .map_err(|e| ctx(format!("the checkpoint does not decode: {e}")))?
        .unwrap_or(replikativ::tweets::SourcePosition::START);
    let durable = stored_tweets(&store, &key).map_err(ctx)?;
    let expected = tweets_before(oracle, &checkpoint).map_err(ctx)?;
    if durable != expected {
        return Err(ctx(format!(
            "the checkpoint {checkpoint:?} covers {} tweets, the durable commits hold {} \
             (first difference at {:?})",
            expected.len(),
            durable.len(),
            durable.iter().zip(&expected).position(|(a, b)| a != b)
        )));
    }
    if (durable.len() as u64) < acked {
        return Err(ctx(format!(
            "the collector acknowledged {acked} tweets, {} are durable",
            durable.len()
        )));
    }
    let report = store.verify().map_err(|e| ctx(error_chain(&e)))?;
    if !report.is_ok() {
        return Err(ctx(format!("verify after the cut: {report}")));
    }

    // Resumed from the durable checkpoint, the collector ends with every tweet exactly once.
    let resume_batch = [1, 3, 7, 10, 32][rng.random_range(0..5)];
    rt().block_on(collect(&store, &key, source, resume_batch, || false))
        .map_err(|e| ctx(format!("resuming: {e}")))?;
    let resumed = stored_tweets(&store, &key).map_err(ctx)?;
    if resumed != all {
        let ids: BTreeMap<&str, usize> = resumed.iter().fold(BTreeMap::new(), |mut m, (id, _)| {
            *m.entry(id.as_str()).or_default() += 1;
            m
        });
        let twice = ids.values().filter(|&&n| n > 1).count();
        return Err(ctx(format!(
            "after resuming, {} tweets are stored ({twice} ids more than once), the source has {}",
            resumed.len(),
            all.len()
        )));
    }
    Ok(CollectorCut {
        acked,
        durable: durable.len(),
        start_failed,
    })
}

#[test]
fn a_power_cut_while_collecting_leaves_the_checkpoint_on_the_durable_commits_and_resumes_exactly_once()
 {
    let source =
        std::fs::canonicalize(crate::common::data_dir().join("flat.jsonl")).expect("source");
    let oracle = source_oracle(&std::fs::read(&source).expect("read source"));
    let total: usize = oracle.iter().map(|l| l.tweets.len()).sum();
    assert!(
        total >= 100,
        "the oracle finds the shipped tweets ({total})"
    );
    let seeds = seeds(24, 8);
    let mut calibration = BTreeMap::new();
    let mut failures = Vec::new();
    let (mut acked, mut durable, mut start_failed) = (0, 0, 0);
    for &seed in &seeds {
        match collector_case(seed, &source, &oracle, &mut calibration, false) {
            Ok(cut) => {
                acked += cut.acked;
                durable += cut.durable;
                start_failed += usize::from(cut.start_failed);
            }
            Err(e) => failures.push(format!("seed {seed}: {e}")),
        }
    }
    eprintln!(
        "{} power cuts while collecting {total} tweets (calibrated ops per batch size: \
         {calibration:?}): {acked} tweets acknowledged, {durable} durable, all resumed exactly \
         once; {start_failed} cuts came before the node had started",
        seeds.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} collector power cuts broke exactly-once (rerun one with POWER_CUT_SEED=n):\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}

#[test]
fn with_syncs_faked_by_the_disk_the_collector_check_catches_lost_acknowledged_tweets() {
    let source =
        std::fs::canonicalize(crate::common::data_dir().join("flat.jsonl")).expect("source");
    let oracle = source_oracle(&std::fs::read(&source).expect("read source"));
    let mut calibration = BTreeMap::new();
    let caught: Vec<String> = (0..8)
        .filter_map(|seed| {
            collector_case(seed, &source, &oracle, &mut calibration, true)
                .err()
                .map(|e| format!("seed {seed}: {e}"))
        })
        .collect();
    eprintln!(
        "with faked syncs, {} of 8 collector power cuts were caught; first: {}",
        caught.len(),
        caught.first().map(String::as_str).unwrap_or("-")
    );
    assert!(
        !caught.is_empty(),
        "with syncs that make nothing durable the collector check must catch lost acknowledged tweets"
    );
}
