#!/usr/bin/env bash
# Runs every fuzz target for a bounded time each: fuzz/run.sh [SECONDS] (default 60).
#
# Installs cargo-fuzz when missing. libFuzzer instrumentation needs unstable rustc flags
# (-Zsanitizer, sancov passes): RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain; set
# FUZZ_TOOLCHAIN=nightly to use a nightly toolchain instead. Crashes land in
# fuzz/artifacts/<target>/; reproduce one with `cargo fuzz run <target> <file>`, then fix it in
# the library and add a regression test under tests/ that names the symptom.
#
# The 10-minute run recorded in README.md (Reliability, "parsers"), on a shared machine:
#     nice -n 19 fuzz/run.sh 600
# one target after the other, a single job each. A re-run resumes from fuzz/corpus/; remove it
# to start as those runs did (source_line from the 64 seed lines, wire_codec from nothing).
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

toolchain=()
if [[ -n "${FUZZ_TOOLCHAIN:-}" ]]; then
    toolchain=("+${FUZZ_TOOLCHAIN}")
fi
export RUSTC_BOOTSTRAP=1

# Seed the source target with real lines of the shipped sample data (once).
seeds=corpus/source_line
if [[ ! -d "$seeds" ]]; then
    mkdir -p "$seeds"
    n=0
    for file in ../data/tweets/*.jsonl; do
        while IFS= read -r line && ((n < 64)); do
            if ((${#line} <= 16384)); then
                printf '%s\n' "$line" >"$seeds/seed-$n"
                n=$((n + 1))
            fi
        done <"$file"
    done
fi

status=0
for target in $(cargo "${toolchain[@]}" fuzz list); do
    echo "== fuzzing $target for ${seconds}s" >&2
    if ! cargo "${toolchain[@]}" fuzz run "$target" -- \
        -max_total_time="$seconds" -max_len=16384 -rss_limit_mb=2048; then
        echo "== $target FAILED: see fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
