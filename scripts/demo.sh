#!/usr/bin/env bash
# Builds the demo's wasm package and serves the demo with the reference server (faults enabled, so the page can
# cut connections and watch the socket resume). DEMO_LISTEN=host:port changes the address (default 127.0.0.1:8080).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

listen=${DEMO_LISTEN:-127.0.0.1:8080}

bash scripts/setup.sh
[[ -d www ]] || die "no www/ directory: the demo page is missing"
build_demo_package
say "cargo build --release -p durable-ws-reference -p durable-ws-testkit"
cargo build --release -p durable-ws-reference -p durable-ws-testkit

say "demo: open http://$listen/ (Ctrl-C stops the server)"
exec target/release/durable-ws-server --listen "$listen" --enable-faults --www www
