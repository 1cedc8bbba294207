# Sourced by the other scripts: runs them from the repository root with the project's tools on PATH.
# (wasm-pack looks up wasm-bindgen, wasm-opt and chromedriver on PATH; wasm-opt comes from npm's binaryen.)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
export PATH="$HOME/.cargo/bin:$REPO_ROOT/node_modules/.bin:$PATH"

# WebKitGTK's browser for automation (apt webkit2gtk-driver pulls it in), driven by WebKitWebDriver.
MINIBROWSER=/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# The version of the `wasm-bindgen` crate in Cargo.lock: wasm-bindgen-cli must match it exactly.
locked_wasm_bindgen_version() {
    awk '
        /^\[\[package\]\]/ { in_bindgen = 0 }
        $0 == "name = \"wasm-bindgen\"" { in_bindgen = 1; next }
        in_bindgen && /^version = / { gsub(/version = |"/, ""); print; exit }
    ' Cargo.lock
}

# Extra cargo arguments for wasm builds of the root crate: its `js` feature (the JS/TS API) when it has one.
wasm_feature_args() {
    if awk '/^\[features\]/ { f = 1; next } /^\[/ { f = 0 } f && /^[[:space:]]*js[[:space:]]*=/ { found = 1 } END { exit !found }' Cargo.toml; then
        printf '%s\n' -- --no-default-features --features js
    fi
}

# Builds the npm package into pkg/ (web target: `import init, { DurableWebSocket } from "durable-ws"; await init();`
# works in Vite and webpack 5, which resolve its `new URL("durable_ws_bg.wasm", import.meta.url)`), completes its
# package.json and README for npm (scripts/pkg-json.mjs, pkg-readme.md), and, when www/ exists, copies it to www/pkg/
# for the demo (the same build: loadable with a plain <script type="module">).
build_wasm_packages() {
    local -a extra
    mapfile -t extra < <(wasm_feature_args)
    say "wasm-pack build --target web --out-dir pkg ${extra[*]}"
    rm -rf pkg # wasm-pack leaves files of earlier builds (another target's glue) in place
    # A target directory of its own: a cdylib's file name has no feature hash, so any other release wasm32 build
    # that compiles durable-ws (with other features, e.g. as a dependency of a benchmark) would replace
    # target/wasm32-unknown-unknown/release/durable_ws.wasm, and cargo would take that for this build's output.
    CARGO_TARGET_DIR="$REPO_ROOT/target/npm-package" \
        wasm-pack build --mode no-install --release --target web --out-dir pkg "${extra[@]}"
    node scripts/pkg-json.mjs pkg
    if [[ -d www ]]; then
        say "copy pkg/ to www/pkg/"
        rm -rf www/pkg
        cp -R pkg www/pkg
    fi
}

# Builds the demo's copy of the package (web target: loadable with a plain <script type="module">) into www/pkg/.
build_demo_package() {
    local -a extra
    mapfile -t extra < <(wasm_feature_args)
    say "wasm-pack build --target web --out-dir www/pkg ${extra[*]}"
    CARGO_TARGET_DIR="$REPO_ROOT/target/npm-package" \
        wasm-pack build --mode no-install --release --target web --out-dir www/pkg "${extra[@]}"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Waits until something accepts TCP connections on 127.0.0.1:$1, giving up after $2 seconds or when process $3 exits.
wait_for_port() {
    local port=$1 seconds=$2 pid=$3 i
    for ((i = 0; i < seconds * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}
