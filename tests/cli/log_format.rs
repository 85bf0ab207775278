//! `--log-format json` on any command: every line on stderr is one JSON object (progress,
//! logs and the final error alike), and stdout still carries only results.

use crate::common::cli_support::arg;
use crate::common::*;

fn json_lines(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[test]
fn stderr_is_json_lines_for_progress_logs_and_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cwd = dir.path();
    let source = data_dir().join("brexit.jsonl");
    let out = run(
        &[
            "--log-format",
            "json",
            "collect",
            "--store",
            "s",
            "--source",
            arg(&source),
        ],
        cwd,
    );
    assert!(out.status.success(), "{out:?}");
    let lines = json_lines(&out.stderr);
    assert!(
        lines.iter().any(|l| l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("collected"))),
        "{lines:?}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("collected"));

    // After the subcommand too, and for a failure: the error is the last JSON line.
    let failed = run(&["log", "--store", "nowhere", "--log-format", "json"], cwd);
    assert_eq!(failed.status.code(), Some(1));
    let lines = json_lines(&failed.stderr);
    let last = lines.last().expect("an error line");
    assert_eq!(last["level"], "ERROR");
    assert!(
        last["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{last}"
    );
}
