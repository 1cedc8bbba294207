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

# The toolchain of the npm build: nightly, for `-Cpanic=immediate-abort` with a std rebuilt for size (no panic
# handler, no `core::fmt`, no panic-location strings: about 4 KB gzip of a 40 KB build). scripts/setup.sh installs it
# with rust-src; the crates build on stable too (then without these flags).
NPM_NIGHTLY_DATE=2026-05-19

# cargo-fuzz, for scripts/fuzz.sh (the fuzz targets build with the npm build's nightly: sanitizers need one).
CARGO_FUZZ_VERSION=0.13.2

# The installed toolchain for the npm build: nightly-$NPM_NIGHTLY_DATE, or a plain `nightly` of that date.
npm_toolchain() {
    local name
    for name in "nightly-$NPM_NIGHTLY_DATE" nightly; do
        if rustc "+$name" -V 2>/dev/null | grep -q " $NPM_NIGHTLY_DATE)"; then
            echo "$name"
            return
        fi
    done
    return 1
}

# Compiles crates/npm to $NPM_WASM (before wasm-bindgen).
NPM_WASM="$REPO_ROOT/target/npm-package/wasm32-unknown-unknown/release/durable_ws_npm.wasm"
build_npm_wasm() {
    local toolchain
    toolchain=$(npm_toolchain) || die "no nightly-$NPM_NIGHTLY_DATE toolchain: run scripts/setup.sh"
    say "cargo +$toolchain build -p durable-ws-npm --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort"
    # A target directory of its own: the flags rebuild std, and no other wasm32 release build may replace the output.
    CARGO_TARGET_DIR="$REPO_ROOT/target/npm-package" RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort" \
        cargo "+$toolchain" build -q -p durable-ws-npm --release --target wasm32-unknown-unknown \
        -Zbuild-std=std,panic_abort
}

# Builds the npm package (crates/npm: the root crate's `js` feature as a cdylib with its allocator) into $1
# (web target: `import init, { DurableWebSocket } from "durable-ws"; await init();` works in Vite and webpack 5,
# which resolve its `new URL("durable_ws_bg.wasm", import.meta.url)`): cargo (nightly, std rebuilt with
# immediate-abort panics), wasm-bindgen, then scripts/minify-pkg.mjs (wasm-opt -Oz with minified import/export names,
# the glue rewritten to match and bundled with the class, src/js/face.js).
build_npm_package() {
    local out=$1
    build_npm_wasm
    rm -rf "$out" # no files of earlier builds (another target's glue) stay behind
    say "wasm-bindgen --target web --out-dir $out --out-name durable_ws"
    wasm-bindgen --target web --out-dir "$out" --out-name durable_ws "$NPM_WASM"
    node scripts/minify-pkg.mjs "$out"
}

# Builds the npm package into pkg/, completes its package.json and README for npm (scripts/pkg-json.mjs,
# pkg-readme.md), and, when www/ exists, copies it to www/pkg/ for the demo (the same build: loadable with a plain
# <script type="module">).
build_wasm_packages() {
    build_npm_package pkg
    node scripts/pkg-json.mjs pkg
    if [[ -d www ]]; then
        say "copy pkg/ to www/pkg/"
        rm -rf www/pkg
        cp -R pkg www/pkg
    fi
}

# Builds the demo's copy of the package into www/pkg/.
build_demo_package() {
    build_npm_package www/pkg
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
