#!/usr/bin/env bash
# Runs every test stage, goes on after a failure, prints a summary and ends with `N passed, M failed`
# (exit status 1 when a stage failed). Each stage's output is also written to test-output/NN-stage.log.
#
#   bash scripts/test.sh              all stages
#   bash scripts/test.sh STAGE...     only these (the reference server is started when a stage needs it)
#
# Stages whose tests do not exist yet are not listed. The conformance, browser and end-to-end stages run against the
# real reference server on a free port of 127.0.0.1, started once and stopped on exit. They get its address in
# DURABLE_WS_SERVER (ws://127.0.0.1:PORT) and DURABLE_WS_HTTP (http://127.0.0.1:PORT), and the directory of the
# server's binaries (durable-ws-server, chaos-proxy) in DURABLE_WS_BIN_DIR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# ---------------------------------------------------------------------------------------------------------------
# Stages. Each runs in its own `bash -euo pipefail`, so any failing command fails the stage.

stage_setup() {
    bash scripts/setup.sh
}

stage_build() {
    cargo build --workspace --all-targets
}

# Every feature combination of the root crate a user can pick (comma-separated; "" is --no-default-features alone).
# `typed` is internal (enabled by the others); alone it is the typed API with a codec of the user's own.
ROOT_FEATURE_SETS=("" json postcard json,postcard typed js js,json leptos leptos,json leptos,postcard yew yew,json
    yew,postcard js,json,postcard,leptos,yew)

# Every combination builds (`cargo check` of the library: what a dependent compiles), for wasm32 and natively (the
# driver is for browsers, but a native build is what server-side rendering with the Leptos or Yew feature compiles).
stage_features() {
    local features target
    for target in wasm32-unknown-unknown native; do
        local -a target_args=()
        if [[ $target != native ]]; then target_args=(--target "$target"); fi
        for features in "${ROOT_FEATURE_SETS[@]}"; do
            say "cargo check -p durable-ws --lib ($target) --no-default-features --features '$features'"
            cargo check -q -p durable-ws --lib "${target_args[@]}" --no-default-features --features "$features"
        done
    done
    # The server library alone, in its feature combinations (the workspace build enables them all at once).
    for features in "" redis postcard faults "redis,postcard,faults"; do
        say "cargo clippy -p durable-ws-server --lib --features '$features'"
        cargo clippy -q -p durable-ws-server --lib --no-default-features --features "$features" -- -D warnings
    done
}

# Lints: build output ignored by git, rustfmt (rustfmt.toml) over everything, clippy with warnings as errors over the
# workspace natively, and for wasm32 over the root crate's library in every feature combination and its browser
# tests in the features each is run with. Goes on after a failure, so one run lists every finding.
stage_lint() {
    local failed=0 dir features file
    say "build output is ignored by git"
    for dir in target examples/target bench/rust-api/target pkg crates/core/fuzz/target crates/core/fuzz/corpus \
        crates/core/fuzz/artifacts; do
        git check-ignore -q "$dir/x" || { warn "$dir/ is not ignored by git"; failed=1; }
    done
    say "cargo fmt --check (workspace, examples/, bench/rust-api/)"
    cargo fmt --all --check || failed=1
    cargo fmt --manifest-path examples/Cargo.toml --all --check || failed=1
    cargo fmt --manifest-path bench/rust-api/Cargo.toml --check || failed=1
    cargo fmt --manifest-path crates/core/fuzz/Cargo.toml --check || failed=1
    say "cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy -q --workspace --all-targets -- -D warnings || failed=1
    for features in "${ROOT_FEATURE_SETS[@]}"; do
        say "cargo clippy -p durable-ws --lib --target wasm32-unknown-unknown --no-default-features --features '$features'"
        cargo clippy -q -p durable-ws --lib --target wasm32-unknown-unknown --no-default-features --features "$features" \
            -- -D warnings || failed=1
    done
    for file in tests/browser_*.rs; do
        features=$(gating_features "$file")
        say "cargo clippy --target wasm32-unknown-unknown --test $(basename "$file" .rs) (features: ${features:-default})"
        local -a feature_args=()
        if [[ -n $features ]]; then feature_args=(--no-default-features --features "$features"); fi
        cargo clippy -q --target wasm32-unknown-unknown "${feature_args[@]}" --test "$(basename "$file" .rs)" \
            -- -D warnings || failed=1
    done
    ((failed == 0)) || die "lint findings above"
}

# The root crate is the browser driver: its tests run in Chromium, Firefox and WebKit (browser-tests); its doctests
# run natively.
stage_native_tests() {
    if command -v cargo-nextest >/dev/null; then
        cargo nextest run --workspace --exclude durable-ws --no-fail-fast
    else
        cargo test --workspace --exclude durable-ws --lib --bins --tests --no-fail-fast
    fi
}

stage_doctests() {
    cargo test --workspace --doc --no-fail-fast
}

# Coverage-guided fuzzing of the protocol core, briefly: each target of crates/core/fuzz for 20 s from its seeds
# (scripts/fuzz.sh; DURABLE_WS_FUZZ_SECONDS sets another time). A campaign is `bash scripts/fuzz.sh 600`.
stage_fuzz() {
    bash scripts/fuzz.sh "${DURABLE_WS_FUZZ_SECONDS:-20}"
}

# Builds the reference server and the test kit's binaries (chaos-proxy, loadgen, durable-ws-conformance); after it
# the reference server is started for the stages that need it.
stage_server() {
    local profile_flag=()
    if [[ $server_profile == release ]]; then profile_flag=(--release); fi
    cargo build -p durable-ws-reference -p durable-ws-testkit -p axum-app "${profile_flag[@]}"
}

# The durable.v1 conformance suite (crates/testkit/src/conformance, docs/PROTOCOL.md "Conformance") against the
# shared reference server's /echo (with its fault endpoints for the expiry case), then its auth cases against a
# second reference server of its own started with --auth-token. Both runs go to the end; either failing fails it.
stage_conformance() {
    local bin="target/$server_profile/durable-ws-conformance" server="target/$server_profile/durable-ws-server"
    local rc=0 port auth_pid
    say "$bin --url $DURABLE_WS_SERVER/echo --admin-url $DURABLE_WS_HTTP"
    "$bin" --url "$DURABLE_WS_SERVER/echo" --admin-url "$DURABLE_WS_HTTP" || rc=1
    port=$(free_port)
    say "$server --listen 127.0.0.1:$port --auth-token alice=... --auth-token bob=... (auth cases)"
    "$server" --listen "127.0.0.1:$port" --www www --auth-token alice=conformance-a --auth-token bob=conformance-b \
        >test-output/conformance-auth.server.log 2>&1 </dev/null &
    auth_pid=$!
    trap 'kill "$auth_pid" 2>/dev/null || true' EXIT
    if wait_for_port "$port" 30 "$auth_pid"; then
        "$bin" --url "ws://127.0.0.1:$port/echo?access_token=conformance-a" --only auth/ \
            --no-credentials-url "ws://127.0.0.1:$port/echo" \
            --bad-credentials-url "ws://127.0.0.1:$port/echo?access_token=wrong" \
            --other-identity-url "ws://127.0.0.1:$port/echo?access_token=conformance-b" || rc=1
    else
        warn "the auth server did not start on 127.0.0.1:$port"
        rc=1
    fi
    kill "$auth_pid" 2>/dev/null || true
    wait "$auth_pid" 2>/dev/null || true
    trap - EXIT
    return $rc
}

stage_wasm_package() {
    build_wasm_packages
}

# The npm package's size (wasm + minified glue, gzip -9) against the budget in scripts/size-budget.mjs.
stage_size_budget() {
    [[ -f pkg/durable_ws_bg.wasm ]] || die "pkg/ is not built: run the wasm-package stage first"
    node scripts/size-budget.mjs
}

stage_types() {
    tsc --noEmit -p tests/types
}

# The features a browser test file is gated on (`#![cfg(... feature = "js" ...)]`), comma-separated; empty for none.
# A line `// browser-test-features: dep/feature,...` adds features of dependencies that only the test needs (no `cfg`
# can name them), e.g. Yew's renderer `yew/csr`.
gating_features() {
    {
        grep -m1 '^#!\[cfg(' "$1" | grep -o 'feature = "[^"]*"' | sed 's/feature = "\(.*\)"/\1/'
        grep -m1 '^// browser-test-features:' "$1" | sed 's/^[^:]*: *//; s/ .*//' | tr ',' '\n'
    } | paste -sd, - || true
}

# The engines of the browser suites (this stage and the chaos suite, tests/support/browser.mjs): Chromium, Firefox ESR
# and WebKitGTK (the engine of Safari; MiniBrowser, on a virtual X display). DURABLE_WS_ENGINES=firefox,webkit (say)
# picks some of them.
# Sets the array `engines` (not a subshell's output, so that a wrong name stops the stage).
browser_engines() {
    local engine
    IFS=, read -ra engines <<<"${DURABLE_WS_ENGINES:-chromium,firefox,webkit}"
    for engine in "${engines[@]}"; do
        [[ $engine == chromium || $engine == firefox || $engine == webkit ]] || die "DURABLE_WS_ENGINES: unknown engine '$engine'"
    done
    ((${#engines[@]})) || die "DURABLE_WS_ENGINES names no engine"
}

# Runs a command whose wasm-bindgen-test-runner is to drive engine $1 (over WebDriver: the runner takes the first of
# GECKODRIVER, SAFARIDRIVER, CHROMEDRIVER it finds, so the other two are unset). The runner's Safari support drives
# WebKitWebDriver, whose default browser is WebKitGTK's MiniBrowser in automation mode.
in_engine() {
    local engine=$1
    shift
    case $engine in
        chromium) env -u GECKODRIVER -u SAFARIDRIVER CHROMEDRIVER="$(command -v chromedriver)" "$@" ;;
        firefox) env -u SAFARIDRIVER -u CHROMEDRIVER GECKODRIVER="$(command -v geckodriver)" "$@" ;;
        webkit) env -u GECKODRIVER -u CHROMEDRIVER SAFARIDRIVER="$(command -v WebKitWebDriver)" xvfb-run -a "$@" ;;
    esac
}

# Each tests/browser_*.rs runs in every engine (browser_engines), built once with exactly the features its `#![cfg]`
# asks for (none: the default features), so the JS API's tests run against the npm build's feature set. A test file
# that runs no test fails the stage; every engine runs to the end, and the stage prints the seconds each one took. The
# server URL reaches the test crates at compile time (`option_env!("DURABLE_WS_SERVER")`).
stage_browser_tests() {
    export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-600}
    local -A groups=() seconds=() failures=()
    local file features output engine started failed=0
    local -a engines
    browser_engines
    for file in tests/browser_*.rs; do
        features=$(gating_features "$file")
        groups[${features:-default}]+=" --test $(basename "$file" .rs)"
    done
    output=$(mktemp)
    for features in "${!groups[@]}"; do
        local -a cargo_args=()
        if [[ $features != default ]]; then cargo_args=(--no-default-features --features "$features"); fi
        read -ra targets <<<"${groups[$features]}"
        say "build browser tests (features: $features):${groups[$features]}"
        cargo test --no-run --target wasm32-unknown-unknown "${cargo_args[@]}" "${targets[@]}"
        for engine in "${engines[@]}"; do
            say "browser tests in $engine (features: $features):${groups[$features]}"
            started=$SECONDS
            # What `wasm-pack test --headless --chrome` does, minus its `cargo build --tests`, which would also
            # build the test files meant for other features.
            if ! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner in_engine "$engine" \
                cargo test --target wasm32-unknown-unknown "${cargo_args[@]}" "${targets[@]}" 2>&1 | tee -a "$output"; then
                failures[$engine]+=" $features"
                failed=1
            fi
            seconds[$engine]=$((${seconds[$engine]:-0} + SECONDS - started))
        done
    done
    for engine in "${engines[@]}"; do
        say "browser tests in $engine: ${seconds[$engine]} s${failures[$engine]:+, FAILED (features:${failures[$engine]})}"
    done
    if grep -q "no tests to run" "$output"; then
        rm -f "$output"
        die "a browser test file ran no test (is its #![cfg] satisfied by the features above?)"
    fi
    rm -f "$output"
    ((failed == 0)) || die "browser tests failed in: ${!failures[*]}"
}

# End-to-end tests with stages of their own (they need a build first) are left out here.
OWN_STAGE_E2E_TESTS=(tests/e2e/frameworks.test.mjs tests/e2e/npm-consumer.test.mjs tests/e2e/react.test.mjs)

e2e_test_files() {
    local file
    for file in tests/e2e/*.test.mjs; do
        [[ " ${OWN_STAGE_E2E_TESTS[*]} " == *" $file "* ]] || echo "$file"
    done
}

stage_e2e_tests() {
    local -a files
    mapfile -t files < <(e2e_test_files)
    node --test "${files[@]}"
}

# The code blocks of README.md and pkg-readme.md that say `<!-- example: PATH -->` are that source, verbatim.
stage_readme_examples() {
    node scripts/check-readme-examples.mjs
}

# The Leptos and Yew examples: built for wasm32 (a failing build fails the stage), then chatting with each other
# in Chromium, unmounting and navigating away (tests/e2e/frameworks.test.mjs starts a server of its own from
# DURABLE_WS_BIN_DIR with --www examples).
stage_examples() {
    bash scripts/build-examples.sh
    node --test tests/e2e/frameworks.test.mjs
}

# The npm package as applications get it, each installing the tarball that `npm pack` makes of pkg/ (with --no-save:
# package.json and the lockfile stay as committed; dependencies pinned by the lockfile), type-checked and built:
# - tests/npm-consumer (Vite + TypeScript): the README snippet in Chromium against /echo, built and under `vite`;
# - tests/react-app (React 19 in StrictMode, `durable-ws/react`): rendered on the server (Vite SSR) and hydrated in
#   Chromium, against a reference server of its own (tests/e2e/react.test.mjs).
# In the test app $1: `npm ci` (its lockfile's pins), then the tarball `npm pack` makes of pkg/, installed with
# --no-save (package.json and the lockfile stay as committed).
install_packed_package() {
    local app=$1 tarball
    [[ -f pkg/package.json && -f pkg/durable_ws_bg.wasm ]] || die "pkg/ is not built: run the wasm-package stage first"
    rm -f "$app"/durable-ws-*.tgz
    say "npm ci (in $app)"
    (cd "$app" && npm ci --prefer-offline --no-audit --no-fund)
    say "npm pack pkg"
    tarball=$(cd "$app" && npm pack ../../pkg --silent | tail -n 1)
    say "npm install --no-save ./$tarball (in $app)"
    (cd "$app" && npm install --no-save --prefer-offline --no-audit --no-fund "./$tarball")
}

stage_npm_consumer() {
    local app
    for app in tests/npm-consumer tests/react-app; do
        rm -rf "$app/dist"
        install_packed_package "$app"
        say "tsc --noEmit (in $app)"
        (cd "$app" && ./node_modules/.bin/tsc --noEmit)
    done
    say "vite build (in tests/npm-consumer)"
    (cd tests/npm-consumer && ./node_modules/.bin/vite build)
    say "vite build, for the browser and for the server (in tests/react-app)"
    (cd tests/react-app && npm run build)
    local rc=0
    node --test tests/e2e/npm-consumer.test.mjs || rc=1
    node --test tests/e2e/react.test.mjs || rc=1
    return $rc
}

# The npm package in every runtime with a WebSocket: tests/runtimes (ws, and Node 22, Deno 2 and Bun as the npm
# packages `node`, `deno` and `bun`, pinned by its package-lock.json) installs the tarball that `npm pack` makes of
# pkg/ (with --no-save), then tests/runtimes/runtimes.test.mjs runs the README's code in Node 20 (the system's, with
# ws), Node 22, Deno, Bun and Chromium's Worker and SharedWorker against a reference server of its own (from
# target/$server_profile, which the server stage builds) behind a cutting chaos proxy, and prints each runtime's
# figures.
stage_runtimes() {
    export DURABLE_WS_BIN_DIR="$REPO_ROOT/target/$server_profile"
    [[ -x $DURABLE_WS_BIN_DIR/durable-ws-server && -x $DURABLE_WS_BIN_DIR/chaos-proxy ]] ||
        die "no durable-ws-server and chaos-proxy in $DURABLE_WS_BIN_DIR: run the server stage first"
    install_packed_package tests/runtimes
    node --test tests/runtimes/runtimes.test.mjs
}

# Ready to publish (issue 22). The crates meant for crates.io (the workspace members without `publish = false`) are
# packaged by `cargo package` (in dependency order, each built from its .crate with the others in a local registry,
# as crates.io would have them) and their .crate files checked by scripts/check-packages.mjs: licenses, readme,
# nothing from fuzz/ or fixtures, no large file, no placeholder URL. Their docs build with warnings as errors: the
# workspace's libraries (bins left out: the reference server's bin is named like the server library), then the root
# crate with every feature, as docs.rs builds it (package.metadata.docs.rs), and the server with every feature. The npm
# package pkg/ (the wasm-package stage builds it) is packed and checked: contents, the `exports` map, its types with
# TypeScript under moduleResolution bundler and node16. The Node.js package node/ is checked by the node-server stage,
# which builds it. Every check runs; any failure fails the stage.
stage_packages() {
    local failed=0 name file
    local -a selection=() crates=()
    while read -r name file; do
        selection+=(-p "$name")
        crates+=("$file")
    done < <(node scripts/check-packages.mjs --publishable-crates)
    ((${#crates[@]})) || die "no workspace member is meant for crates.io"
    # Cargo verifies a crate against the others from a local registry, taken as unchanged whenever their version is:
    # a second run in this checkout would build against the first run's sources (extracted into
    # $CARGO_HOME/registry/src, compiled into target/). These crates are not on crates.io: such copies are leftovers.
    local published
    for file in "${crates[@]}"; do
        published=$(basename "$file" .crate)
        rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$published"
    done
    cargo clean -q "${selection[@]}"
    # --allow-dirty: what would be packaged from the working tree, committed or not.
    say "cargo package --allow-dirty ${selection[*]}"
    if cargo package --allow-dirty "${selection[@]}"; then
        node scripts/check-packages.mjs "${crates[@]}" || failed=1
    else
        failed=1
    fi
    say "cargo doc --workspace --no-deps --lib (RUSTDOCFLAGS=-D warnings)"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --lib || failed=1
    for name in durable-ws durable-ws-server; do
        say "cargo doc -p $name --no-deps --all-features (RUSTDOCFLAGS=-D warnings)"
        RUSTDOCFLAGS="-D warnings" cargo doc -p "$name" --no-deps --lib --all-features || failed=1
    done
    if [[ -f pkg/package.json && -f pkg/durable_ws_bg.wasm ]]; then
        say "node scripts/check-packages.mjs pkg"
        node scripts/check-packages.mjs pkg || failed=1
    else
        warn "pkg/ is not built: run the wasm-package stage first"
        failed=1
    fi
    ((failed == 0)) || die "package checks failed (see above)"
}

# The Node.js server (node/, `durable-ws-server` on npm: crates/node, the core's server Endpoint in wasm, under a
# TypeScript driver over ws): built (npm ci, wasm + tsc), then the conformance suite against its reference program
# as against the Rust server (/echo with the fault endpoints, then the auth cases against a second one with
# --auth-token), its API tests (node/test), then its end-to-end tests (tests/e2e/node-*.test.mjs: the chaos suite in Chromium, the Express
# example under cuts), then the package as published (scripts/check-packages.mjs node). Everything goes to the end;
# any failure fails the stage.
stage_node_server() {
    local bin="target/$server_profile/durable-ws-conformance" rc=0 port pid
    say "npm ci && npm run build (in node/)"
    (cd node && npm ci --prefer-offline --no-audit --no-fund && npm run build)
    say "npm test (in node/: the API against raw durable.v1 frames, the README's example verbatim)"
    (cd node && npm test) || rc=1
    say "npm ci (in examples/express-app)"
    (cd examples/express-app && npm ci --prefer-offline --no-audit --no-fund)
    node_conformance() {
        local label=$1
        shift
        port=$(free_port)
        say "node node/dist/bin.js --listen 127.0.0.1:$port $* ($label)"
        node node/dist/bin.js --listen "127.0.0.1:$port" --www www "$@" >"test-output/node-server-$label.log" 2>&1 </dev/null &
        pid=$!
        if ! wait_for_port "$port" 30 "$pid"; then
            warn "the Node server did not start on 127.0.0.1:$port"
            rc=1
            return
        fi
    }
    node_conformance echo --enable-faults
    if [[ $rc == 0 ]]; then
        "$bin" --url "ws://127.0.0.1:$port/echo" --admin-url "http://127.0.0.1:$port" || rc=1
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local before=$rc
    node_conformance auth --auth-token alice=conformance-a --auth-token bob=conformance-b
    if [[ $rc == "$before" ]]; then
        "$bin" --url "ws://127.0.0.1:$port/echo?access_token=conformance-a" --only auth/ \
            --no-credentials-url "ws://127.0.0.1:$port/echo" \
            --bad-credentials-url "ws://127.0.0.1:$port/echo?access_token=wrong" \
            --other-identity-url "ws://127.0.0.1:$port/echo?access_token=conformance-b" || rc=1
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    DURABLE_WS_NODE_TESTS=1 node --test tests/e2e/node-*.test.mjs || rc=1
    # The package as published (see stage_packages): contents, licenses, types with TypeScript.
    say "node scripts/check-packages.mjs node"
    node scripts/check-packages.mjs node || rc=1
    return $rc
}

has_browser_tests() { compgen -G 'tests/browser_*.rs' >/dev/null; }
has_e2e_tests() { [[ -n $(e2e_test_files) ]]; }

all_stages() {
    printf '%s\n' setup lint features build native-tests doctests fuzz wasm-package size-budget
    if [[ -d tests/types ]]; then echo types; fi
    if [[ -f scripts/check-readme-examples.mjs ]]; then echo readme-examples; fi
    printf '%s\n' server conformance
    if has_browser_tests; then echo browser-tests; fi
    if has_e2e_tests; then echo e2e-tests; fi
    if [[ -f examples/Cargo.toml ]]; then echo examples; fi
    if [[ -d tests/npm-consumer ]]; then echo npm-consumer; fi
    if [[ -d tests/runtimes ]]; then echo runtimes; fi
    if [[ -f scripts/check-packages.mjs ]]; then echo packages; fi
    if [[ -f node/package.json ]]; then echo node-server; fi
}

needs_server() { [[ $1 == conformance || $1 == browser-tests || $1 == e2e-tests || $1 == examples || $1 == npm-consumer || $1 == node-server ]]; }

# Upper bounds (seconds) so that a hung stage cannot eat CI's time; a first run on a new machine compiles a lot.
stage_time_limit() {
    case $1 in
        setup) echo 2400 ;;
        build | lint | features) echo 1800 ;;
        wasm-package | browser-tests | examples) echo 1500 ;;
        server) echo 1200 ;;
        types | readme-examples | size-budget) echo 300 ;;
        *) echo 900 ;;
    esac
}

# The debug build of the reference server reuses what the build stage compiled;
# DURABLE_WS_SERVER_PROFILE=release tests the optimised one.
server_profile=${DURABLE_WS_SERVER_PROFILE:-debug}

# Entry point of the child process that runs one stage.
if [[ ${1:-} == --run-stage ]]; then
    "stage_${2//-/_}"
    exit
fi

# ---------------------------------------------------------------------------------------------------------------
# The reference server, shared by the browser and end-to-end stages.

server_pid=""
blackhole_pid=""

stop_server() {
    local pid
    for pid in "$server_pid" "$blackhole_pid"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    server_pid=""
    blackhole_pid=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

server_running() { [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; }

# Starts the server (built by the server stage) in the background of this shell, so the EXIT trap can stop it.
launch_server() {
    local log=$1 server_log=${1%.log}.server.log port
    note() { say "$*" | tee -a "$log"; }
    port=$(free_port)
    mkdir -p www
    note "target/$server_profile/durable-ws-server --listen 127.0.0.1:$port --enable-faults --www www (log: $server_log)"
    "target/$server_profile/durable-ws-server" --listen "127.0.0.1:$port" --enable-faults --www www \
        >"$server_log" 2>&1 </dev/null &
    server_pid=$!
    if ! wait_for_port "$port" 60 "$server_pid"; then
        note "the reference server did not start listening on 127.0.0.1:$port; the end of its log:"
        tail -n 40 "$server_log" | tee -a "$log"
        stop_server
        return 1
    fi
    # A listener that accepts connections and never answers the WebSocket upgrade (connect-timeout tests).
    local silent_port
    silent_port=$(free_port)
    python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64); held = []
while True:
    held.append(s.accept()[0])' "$silent_port" </dev/null >/dev/null 2>&1 &
    blackhole_pid=$!
    wait_for_port "$silent_port" 10 "$blackhole_pid" || { note "the silent listener did not start"; stop_server; return 1; }
    export DURABLE_WS_BLACKHOLE="ws://127.0.0.1:$silent_port/"
    export DURABLE_WS_SERVER="ws://127.0.0.1:$port"
    export DURABLE_WS_HTTP="http://127.0.0.1:$port"
    export DURABLE_WS_BIN_DIR="$REPO_ROOT/target/$server_profile"
    note "reference server listening on $DURABLE_WS_HTTP"
}

# ---------------------------------------------------------------------------------------------------------------

mapfile -t known < <(all_stages)
if (($#)); then
    selected=()
    for name in "$@"; do
        [[ " ${known[*]} " == *" $name "* ]] || die "unknown or unavailable stage '$name' (available: ${known[*]})"
        if needs_server "$name" && [[ " ${selected[*]} " != *" server "* ]]; then selected+=(server); fi
        selected+=("$name")
    done
else
    selected=("${known[@]}")
fi

rm -rf test-output
mkdir -p test-output
names=() results=() times=() logs=()
index=0

for name in "${selected[@]}"; do
    log=$(printf 'test-output/%02d-%s.log' "$index" "$name")
    index=$((index + 1))
    limit=$(stage_time_limit "$name")
    printf '\n======== stage %s (limit %ss, log %s) ========\n' "$name" "$limit" "$log"
    started=$SECONDS
    set +e
    if needs_server "$name" && ! server_running; then
        echo "not run: the reference server is not running (see the server stage)" | tee "$log"
        rc=1
    else
        timeout -k 30 "$limit" bash "$REPO_ROOT/scripts/test.sh" --run-stage "$name" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        if [[ $name == server && $rc == 0 ]]; then
            launch_server "$log"
            rc=$?
        fi
    fi
    set -e
    case $rc in
        0) result=PASS ;;
        124 | 137) result=TIMEOUT ;;
        *) result=FAIL ;;
    esac
    names+=("$name") results+=("$result") times+=($((SECONDS - started))) logs+=("$log")
done

stop_server

failed=0
printf '\n%-16s %-8s %8s  %s\n' stage result seconds log
for i in "${!names[@]}"; do
    printf '%-16s %-8s %8s  %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}" "${logs[$i]}"
    [[ ${results[$i]} == PASS ]] || failed=$((failed + 1))
done
echo
echo "$((${#names[@]} - failed)) passed, $failed failed"
((failed == 0)) || exit 1
