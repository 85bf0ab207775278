#!/usr/bin/env bash
# Rebuilds the browser peer's committed JS and wasm (web/pkg) and its STAMP, which CI checks
# (web/tests/stamp.rs). Needs the wasm32 target and wasm-bindgen-cli of exactly the version of
# the wasm-bindgen crate in Cargo.lock:
#   rustup target add wasm32-unknown-unknown
#   cargo install wasm-bindgen-cli --version <that version>
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
bindgen=${WASM_BINDGEN:-wasm-bindgen}
if ! command -v "$bindgen" >/dev/null; then
  echo "web/build.sh: wasm-bindgen not found; cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
have=$("$bindgen" --version | awk '{ print $2 }')
if [ "$have" != "$want" ]; then
  echo "web/build.sh: wasm-bindgen $have, but Cargo.lock has $want; cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
target=${CARGO_TARGET_DIR:-$root/target}
# No paths of this machine in the build; no debug info (the release profile keeps some).
RUSTFLAGS="--remap-path-prefix=$root=/replikativ --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_OPT_LEVEL=s \
  cargo build -p replikativ-web --target wasm32-unknown-unknown --release --locked
rm -rf web/pkg.new
"$bindgen" --target web --no-typescript --out-dir web/pkg.new \
  "$target/wasm32-unknown-unknown/release/replikativ_web.wasm"
rm -rf web/pkg && mv web/pkg.new web/pkg
WRITE_STAMP=1 cargo test -p replikativ-web --locked --test stamp -q
ls -l web/pkg
