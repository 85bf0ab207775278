//! Pipelined prepared handlers give exactly the effects and failures of applying each
//! transaction in turn.

use rusqlite::Transaction;

use crate::id::Id;
use crate::realize::{HandlerError, Sink, SinkError, SqliteSink, TxParams};

/// A sink whose `put` op is prepared (params: a decimal number; "bad" fails to prepare,
/// "boom" panics preparing, "late" panics applying) and whose `mark` op takes bytes.
fn sink(dir: &tempfile::TempDir) -> SqliteSink {
    let prepare = |bytes: &[u8]| -> Result<i64, HandlerError> {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        match text {
            "bad" => Err(HandlerError::Invalid {
                reason: "not a number".into(),
            }),
            "boom" => panic!("prepare panicked"),
            "late" => Ok(-1),
            n => n.parse().map_err(|_| HandlerError::Invalid {
                reason: format!("{n:?}"),
            }),
        }
    };
    let apply = |tx: &Transaction<'_>, n: i64| -> Result<(), HandlerError> {
        assert!(n >= 0, "apply panicked");
        tx.execute("INSERT INTO log (entry) VALUES (?1)", [n])?;
        Ok(())
    };
    SqliteSink::open(dir.path().join("s.db"))
        .expect("open")
        .with_schema("CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY, entry INTEGER)")
        .expect("schema")
        .prepared_handler("put", prepare, apply)
        .bytes_handler("mark", |tx, _| {
            tx.execute("INSERT INTO log (entry) VALUES (-7)", [])?;
            Ok(())
        })
}

fn log(sink: &SqliteSink) -> Vec<i64> {
    let mut stmt = sink
        .connection()
        .prepare("SELECT entry FROM log ORDER BY seq")
        .expect("select");
    stmt.query_map([], |r| r.get(0))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

/// `n` `put` transactions with a `mark` after every tenth.
fn txs(n: usize) -> (Vec<TxParams>, Vec<i64>) {
    let (mut txs, mut expected) = (Vec::new(), Vec::new());
    for i in 0..n {
        txs.push(("put".to_string(), i.to_string().into_bytes()));
        expected.push(i as i64);
        if i % 10 == 9 {
            txs.push(("mark".to_string(), Vec::new()));
            expected.push(-7);
        }
    }
    (txs, expected)
}

#[test]
fn pipelined_and_one_by_one_commits_write_the_same_rows_in_order() {
    for n in [3, 63, 64, 1_000] {
        let dir = tempfile::tempdir().expect("dir");
        let mut sink = sink(&dir);
        let (txs, expected) = txs(n);
        sink.apply_commit(Id::of(b"c"), &txs).expect("applies");
        assert_eq!(log(&sink), expected, "{n} transactions");
        // Exactly once: the same commit again changes nothing.
        sink.apply_commit(Id::of(b"c"), &txs).expect("again");
        assert_eq!(log(&sink).len(), expected.len());
    }
}

#[test]
fn the_first_failure_by_index_fails_the_commit_and_nothing_of_it_stays() {
    for n in [20, 500] {
        for (at, poison) in [(0, "bad"), (7, "boom"), (n - 1, "late"), (n / 2, "bad")] {
            let dir = tempfile::tempdir().expect("dir");
            let mut sink = sink(&dir);
            let (mut poisoned, _) = txs(n);
            // Transaction indexes count the marks too: poison the `at`-th `put`.
            let index = poisoned
                .iter()
                .enumerate()
                .filter(|(_, (op, _))| op == "put")
                .nth(at)
                .map(|(i, _)| i)
                .expect("a put");
            poisoned[index].1 = poison.as_bytes().to_vec();
            // A later failure must not be the one reported.
            let last = poisoned.len() - 1;
            if last != index {
                poisoned[last] = ("put".to_string(), b"bad".to_vec());
            }
            let err = sink
                .apply_commit(Id::of(b"c"), &poisoned)
                .expect_err("poisoned");
            let tx = match &err {
                SinkError::Handler { tx, .. } | SinkError::HandlerPanicked { tx, .. } => *tx,
                other => panic!("{other}"),
            };
            assert_eq!(tx, index, "{n} txs, {poison} at {index}: {err}");
            match poison {
                "bad" => assert!(matches!(err, SinkError::Handler { .. }), "{err}"),
                _ => assert!(matches!(err, SinkError::HandlerPanicked { .. }), "{err}"),
            }
            assert!(log(&sink).is_empty(), "rolled back");
            assert!(sink.applied().expect("applied").is_empty());
            // The sink still works.
            let (good, expected) = txs(n);
            sink.apply_commit(Id::of(b"d"), &good)
                .expect("applies after");
            assert_eq!(log(&sink), expected);
        }
    }
}
