#!/usr/bin/env bash
# Builds the framework examples (examples/leptos-chat, examples/yew-chat) for the browser: cargo for
# wasm32, then wasm-bindgen-cli (--target web) into examples/NAME/dist/ next to a copy of its index.html.
# Serve a dist/ with the reference server (`--www examples/NAME/dist`) and open it.
#
#   bash scripts/build-examples.sh            every example
#   bash scripts/build-examples.sh yew-chat   only these
#
# The examples are a workspace of their own (examples/Cargo.toml), so that the library's workspace never
# compiles Leptos or Yew, with a target directory of their own (target/examples): in the library's, their
# build of durable-ws (features leptos/yew) would replace the npm build's wasm (release/durable_ws.wasm).
# Release profile of examples/Cargo.toml.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_example() {
    local name=$1 dist=examples/$1/dist
    say "cargo build --release --target wasm32-unknown-unknown -p $name"
    cargo build --manifest-path examples/Cargo.toml --target-dir target/examples --release \
        --target wasm32-unknown-unknown -p "$name"
    rm -rf "$dist"
    mkdir -p "$dist"
    say "wasm-bindgen --target web --out-dir $dist"
    wasm-bindgen --target web --no-typescript --out-dir "$dist" --out-name chat \
        "target/examples/wasm32-unknown-unknown/release/$name.wasm"
    cp "examples/$name/index.html" "$dist/"
}

if (($#)); then names=("$@"); else names=(leptos-chat yew-chat); fi
for name in "${names[@]}"; do
    [[ -f examples/$name/Cargo.toml ]] || die "no example '$name' (examples/*/Cargo.toml)"
    build_example "$name"
done
