//! Storage faults: truncated and bit-flipped store files give a clear error (exit 1), never a
//! panic (exit 101) and never wrong data; a failed store write fails its caller with context
//! and restarts the store actor and everything after it, losing no acknowledged write.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::stage_support::{
    child, eventually, eventually_async, fresh_key, memory_realizer, note,
};
use replikativ::Node;
use replikativ::node::StoreLocation;
use replikativ::realize::MemorySink;
use replikativ::realize::realizer::{ConflictPolicy, error_chain};
use replikativ::store::{FILE_NAME, Store};
use replikativ_actors::{ChildState, EventKind, ExitReason};

const T: Duration = Duration::from_secs(30);

/// A store filled by `collect` from the shipped flat tweets, and its `log --json` line.
fn collected_store(cwd: &Path) -> (PathBuf, String) {
    let source = common::data_dir().join("flat.jsonl");
    common::run_ok(
        &[
            "collect",
            "--store",
            "good",
            "--source",
            source.to_str().expect("utf-8"),
            "--batch",
            "10",
        ],
        cwd,
    );
    let log = last_line(&common::run(&["log", "--store", "good", "--json"], cwd));
    (cwd.join("good"), log)
}

fn last_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

/// A copy of `good` named `name` whose store file `damage` rewrites.
fn damaged_copy(good: &Path, name: &str, damage: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let dir = good.with_file_name(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut bytes = std::fs::read(good.join(FILE_NAME)).expect("read store file");
    damage(&mut bytes);
    std::fs::write(dir.join(FILE_NAME), bytes).expect("write damaged copy");
    dir
}

/// Runs `verify` and `log --json` on `dir`: each either fails cleanly (exit 1, a message on
/// stderr) or succeeds; `log` succeeding must print exactly the undamaged answer, and a
/// store `verify` passes must read back exactly as the original. Returns verify's exit code.
fn check_damaged(cwd: &Path, dir: &Path, what: &str, good_log: &str) -> i32 {
    let d = dir.to_str().expect("utf-8");
    let verify = common::run(&["verify", "--store", d], cwd);
    let log = common::run(&["log", "--store", d, "--json"], cwd);
    for (cmd, out) in [("verify", &verify), ("log", &log)] {
        let code = out.status.code().expect("exit code");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("panicked") && code != 101,
            "{cmd} on {what} panicked:\n{stderr}"
        );
        assert!(
            code == 0 || code == 1,
            "{cmd} on {what} exited {code}:\n{stderr}"
        );
        if code == 1 {
            assert!(
                stderr.trim().len() > 10,
                "{cmd} on {what} failed without saying why"
            );
        }
    }
    if log.status.success() {
        assert_eq!(
            last_line(&log),
            good_log,
            "log on {what} printed wrong data"
        );
    }
    let code = verify.status.code().expect("exit code");
    if code == 0 {
        assert!(
            log.status.success(),
            "verify passed {what} but log failed: {}",
            String::from_utf8_lossy(&log.stderr)
        );
    }
    code
}

#[test]
fn a_truncated_store_file_fails_verify_and_log_cleanly_never_with_a_panic_or_wrong_data() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    let (good, good_log) = collected_store(cwd);
    assert!(good_log.contains("\"commits\":10"), "{good_log}");
    let len = std::fs::metadata(good.join(FILE_NAME)).expect("meta").len() as usize;
    let mut failed = 0;
    for (i, keep) in [0, 16, 512, 4096, len / 4, len / 2, len * 3 / 4, len - 1]
        .into_iter()
        .enumerate()
    {
        let dir = damaged_copy(&good, &format!("trunc-{i}"), |b| b.truncate(keep));
        let code = check_damaged(
            cwd,
            &dir,
            &format!("the file cut to {keep} of {len} bytes"),
            &good_log,
        );
        failed += usize::from(code == 1);
    }
    assert!(
        failed >= 4,
        "most truncations must be reported by verify ({failed})"
    );
}

#[test]
fn a_bit_flip_in_a_value_is_named_by_verify_and_random_flips_never_panic_or_lie() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    let (good, good_log) = collected_store(cwd);
    let bytes = std::fs::read(good.join(FILE_NAME)).expect("read");

    // A flip inside a tweet's stored params: verify names the damaged value.
    let first_text = std::fs::read_to_string(common::data_dir().join("flat.jsonl"))
        .expect("data")
        .lines()
        .find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            Some(v["text"].as_str()?.to_string())
        })
        .expect("a tweet text");
    let needle = &first_text.as_bytes()[..first_text.len().min(24)];
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the tweet's text is stored verbatim");
    let dir = damaged_copy(&good, "flip-value", |b| b[at + 3] ^= 0x10);
    let verify = common::run(&["verify", "--store", dir.to_str().expect("utf-8")], cwd);
    let stdout = String::from_utf8_lossy(&verify.stdout);
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert_eq!(verify.status.code(), Some(1), "{stdout}{stderr}");
    // Either redb's page checksums refuse the file on open, or the re-hash names the value.
    assert!(
        stdout.contains("damaged:") || stderr.contains("is damaged"),
        "verify names the damage:\n{stdout}{stderr}"
    );
    check_damaged(cwd, &dir, "a flipped value byte", &good_log);

    // Flips spread over the whole file, a few per page region.
    let n = common::iterations(48, 24);
    for i in 0..n {
        let at = (bytes.len() - 1) * i / (n - 1);
        let bit = 1u8 << (i % 8);
        let dir = damaged_copy(&good, &format!("flip-{i}"), |b| b[at] ^= bit);
        check_damaged(
            cwd,
            &dir,
            &format!("bit {} flipped at byte {at}", i % 8),
            &good_log,
        );
    }
}

#[test]
fn a_failed_store_write_fails_the_caller_with_context_and_restarts_the_store_and_its_dependents() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let key = fresh_key();
    let sink = MemorySink::new();
    let mut acked = Vec::new();
    actix_rt::System::new().block_on(async {
        let store = Store::open(tmp.path()).expect("open");
        let node = Node::builder()
            .store(StoreLocation::Open(store.clone()))
            .listen("127.0.0.1:0")
            .realize(memory_realizer("mem", &key, &sink, ConflictPolicy::Wait))
            .start()
            .await
            .expect("start");
        let root = node.supervisor().clone();
        let before: Vec<(String, u64)> = root
            .which_children()
            .await
            .expect("children")
            .into_iter()
            .map(|c| (c.id.to_string(), c.generation))
            .collect();
        let stage = node.stage();
        for i in 0..5 {
            acked.push(
                stage
                    .transact(&key, vec![note(&format!("a{i}"))])
                    .await
                    .expect("ok"),
            );
        }
        let mut events = node.events();

        store.inject_write_failures(1);
        let err = stage
            .transact(&key, vec![note("refused")])
            .await
            .expect_err("the injected failure reaches the caller");
        let chain = error_chain(&err);
        assert!(chain.contains(&key.to_string()), "names the CDVCS: {chain}");
        assert!(
            chain.contains("injected write failure"),
            "names the cause: {chain}"
        );

        // The store exits failed and is restarted; rest-for-one restarts what follows it.
        let mut store_failed = false;
        let mut restarted = Vec::new();
        while restarted.len() < 4 {
            let ev = tokio::time::timeout(T, events.recv())
                .await
                .expect("supervision events within the deadline")
                .expect("event");
            if &*ev.supervisor != root.path() {
                continue;
            }
            match ev.kind {
                EventKind::ChildExited { child, reason, .. } if child.as_str() == "store" => {
                    assert!(matches!(reason, ExitReason::Failed(_)), "{reason:?}");
                    let chain = reason.chain().join(": ");
                    assert!(chain.contains("injected"), "{chain}");
                    store_failed = true;
                }
                EventKind::ChildRestarted { child, .. } => restarted.push(child.to_string()),
                _ => {}
            }
        }
        assert!(store_failed);
        assert_eq!(restarted, ["store", "replicas", "peers", "realizers"]);
        for (id, generation) in &before {
            eventually_async(
                "every root child to run its second incarnation",
                T,
                || async {
                    let c = child(&root, id).await;
                    c.state == ChildState::Running && c.generation == generation + 1
                },
            )
            .await;
        }

        // Transacting works again (once the replica is back), on top of every acked commit.
        let mut after = None;
        let end = std::time::Instant::now() + T;
        while after.is_none() {
            match stage.transact(&key, vec![note("after")]).await {
                Ok(id) => after = Some(id),
                Err(e) => {
                    assert!(std::time::Instant::now() < end, "no recovery: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        let after = after.expect("recovered");
        acked.push(after);
        let history = stage.history(&key, &after).await.expect("history");
        for id in &acked {
            assert!(history.contains(id), "acknowledged commit {id} lost");
        }
        let realizer = node.realizer("mem").expect("mem");
        eventually("the realizer to catch up", T, || {
            realizer.is_applied(&after)
        })
        .await;
        assert_eq!(
            sink.snapshot().ops.len(),
            acked.len(),
            "each op applied once"
        );
        node.shutdown().await;
    });

    // Reopened from disk, the store still holds every acknowledged commit.
    // The old writer thread lets go of the file just after shutdown returns (it is never
    // joined from an arbiter); wait for that, with a deadline.
    assert!(
        common::periodic_check(|| Store::open(tmp.path()).is_ok(), T),
        "the store file is still held after the node shut down"
    );
    actix_rt::System::new().block_on(async {
        let node = Node::builder()
            .store_dir(tmp.path())
            .start()
            .await
            .expect("reopen");
        let stage = node.stage();
        let heads = stage.heads(&key).await.expect("heads");
        assert_eq!(heads, vec![*acked.last().expect("acked")]);
        let history = stage.history(&key, &heads[0]).await.expect("history");
        assert!(acked.iter().all(|id| history.contains(id)));
        node.shutdown().await;
    });
}
