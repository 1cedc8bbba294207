#!/usr/bin/env bash
# Builds the protocol core for Node.js: crates/node (the core's server Endpoint behind wasm-bindgen) for
# wasm32-unknown-unknown, its JS glue with `wasm-bindgen --target nodejs` (wasm-bindgen-cli must match the
# crate's pinned wasm-bindgen), then `wasm-opt -O3`. Output: node/wasm/. Cargo runs under `nice`, in its own
# target directory (target/node) so that it does not wait on the workspace's lock.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target/node}"
cd "$root"
# The workspace's release profile is opt-level "z" (for the browser bundle); the server core is built for speed.
CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-3}" CARGO_TARGET_DIR="$target" nice -n 10 cargo build --release --target wasm32-unknown-unknown -p durable-ws-node
rm -rf "$here/wasm"
wasm-bindgen --target nodejs --out-dir "$here/wasm" --out-name durable_ws_node \
    "$target/wasm32-unknown-unknown/release/durable_ws_node.wasm"
opt="$root/node_modules/.bin/wasm-opt"
command -v "$opt" >/dev/null || opt="$(command -v wasm-opt || true)"
if [[ -n $opt ]]; then
    "$opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
        "$here/wasm/durable_ws_node_bg.wasm" -o "$here/wasm/durable_ws_node_bg.wasm"
else
    echo "wasm-opt not found: the wasm is left unoptimised" >&2
fi
ls -l "$here/wasm/durable_ws_node_bg.wasm"
