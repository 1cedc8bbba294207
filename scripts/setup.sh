#!/usr/bin/env bash
# Installs what building, testing and the demo need; installs only what is missing and says what it installs.
#   Rust target wasm32-unknown-unknown, the npm build's nightly with rust-src, wasm-bindgen-cli (exactly the version in Cargo.lock), wasm-pack,
#   cargo-fuzz (the fuzz targets, scripts/fuzz.sh),
#   Chromium + chromedriver and redis-server (apt), and the root package.json's dev tools (npm: playwright-core, binaryen's
#   wasm-opt, typescript, esbuild, reconnecting-websocket).
# The other browser engines: Firefox ESR (apt) + geckodriver (crates.io), WebKitGTK's WebKitWebDriver and MiniBrowser
# (apt webkit2gtk-driver; the engine of Safari) + xvfb (apt).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

installed=()

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

apt_updated=false
apt_install() {
    if ! $apt_updated; then
        say "apt-get update"
        as_root apt-get update
        apt_updated=true
    fi
    say "apt-get install -y $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
    installed+=("$*")
}

command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup) first"
command -v rustup >/dev/null || die "rustup not found: it is needed to add the wasm32-unknown-unknown target"

# Rust target for the browser library.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
    installed+=("rust target wasm32-unknown-unknown")
fi

# The npm build's toolchain (scripts/common.sh): a dated nightly with the std sources (it rebuilds std).
if ! toolchain=$(npm_toolchain); then
    toolchain="nightly-$NPM_NIGHTLY_DATE"
    say "rustup toolchain install $toolchain --profile minimal --component rust-src"
    rustup toolchain install "$toolchain" --profile minimal --component rust-src
    installed+=("rust $toolchain")
fi
if ! rustup +"$toolchain" component list --installed | grep -q '^rust-src'; then
    say "rustup component add rust-src --toolchain $toolchain"
    rustup component add rust-src --toolchain "$toolchain"
    installed+=("rust-src for $toolchain")
fi
# -Zbuild-std rebuilds std from rust-src; the prebuilt wasm32 target is added too, as a precaution: a nightly
# without it has not been tried on these machines.
if ! rustup +"$toolchain" target list --installed | grep -qx wasm32-unknown-unknown; then
    say "rustup target add wasm32-unknown-unknown --toolchain $toolchain"
    rustup target add wasm32-unknown-unknown --toolchain "$toolchain"
    installed+=("rust target wasm32-unknown-unknown for $toolchain")
fi

# wasm-bindgen-cli must match the wasm-bindgen crate exactly (wasm-pack would otherwise try to download one).
bindgen_version=$(locked_wasm_bindgen_version)
[[ -n $bindgen_version ]] || die "no wasm-bindgen package in Cargo.lock"
have_bindgen=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [[ $have_bindgen != "$bindgen_version" ]] || ! command -v wasm-bindgen-test-runner >/dev/null; then
    say "cargo install wasm-bindgen-cli --version $bindgen_version (found: ${have_bindgen:-none})"
    cargo install wasm-bindgen-cli --version "$bindgen_version"
    installed+=("wasm-bindgen-cli $bindgen_version")
fi

if ! command -v wasm-pack >/dev/null; then
    say "cargo install wasm-pack --locked"
    cargo install wasm-pack --locked
    installed+=("wasm-pack")
fi

# Headless browser for the wasm-bindgen browser tests and the Playwright tests.
if [[ ! -x /usr/bin/chromium ]] || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver
fi

# Redis for the scale-out tests and benchmarks (they start their own redis-server on a free loopback port;
# no system service is used).
if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
fi

# The Prometheus client's own text-format parser (Debian's python3), which the metrics test reads each scrape with.
if ! /usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null; then
    apt_install python3-prometheus-client
fi

# Node.js runs Playwright, tsc and esbuild.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi

# Firefox and WebKit (the engine of Safari) for the same browser and chaos suites, over W3C WebDriver: Firefox ESR
# through geckodriver, WebKitGTK's MiniBrowser through WebKitWebDriver under a virtual X display (xvfb-run).
# (Playwright cannot drive these two here.)
if ! command -v firefox-esr >/dev/null || [[ ! -x $MINIBROWSER ]] || ! command -v WebKitWebDriver >/dev/null ||
    ! command -v xvfb-run >/dev/null; then
    apt_install firefox-esr webkit2gtk-driver xvfb
fi
# An unoptimised build: it only relays WebDriver commands, and it compiles in about 60 % of the optimised one's time.
if ! command -v geckodriver >/dev/null; then
    say "cargo install geckodriver --locked --debug"
    cargo install geckodriver --locked --debug
    installed+=("geckodriver")
fi

# cargo-fuzz for the fuzz targets of the protocol core (scripts/fuzz.sh; built with the npm build's nightly).
if [[ $(cargo-fuzz --version 2>/dev/null | awk '{print $2}') != "$CARGO_FUZZ_VERSION" ]]; then
    say "cargo install cargo-fuzz --locked --version $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
    installed+=("cargo-fuzz")
fi

# npm dev tools: reinstalled only when package.json or package-lock.json changed since the last install.
npm_stamp=node_modules/.durable-ws-setup-stamp
npm_inputs=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
if [[ ! -f $npm_stamp || $(cat "$npm_stamp") != "$npm_inputs" ]]; then
    if [[ -f package-lock.json ]]; then
        say "npm ci"
        npm ci --no-audit --no-fund
    else
        say "npm install"
        npm install --no-audit --no-fund
        npm_inputs=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
    fi
    echo "$npm_inputs" >"$npm_stamp"
    installed+=("npm dev dependencies")
fi

# Everything must now be on PATH.
for tool in wasm-bindgen wasm-bindgen-test-runner wasm-pack wasm-opt chromedriver geckodriver WebKitWebDriver xvfb-run \
    firefox-esr node tsc esbuild cargo-fuzz; do
    command -v "$tool" >/dev/null || die "$tool is still missing after setup"
done
if command -v cargo-nextest >/dev/null; then
    test_runner="cargo-nextest $(cargo-nextest --version 2>/dev/null | awk 'NR == 1 {print $2}')"
else
    test_runner="cargo test (cargo-nextest not installed)"
fi

if ((${#installed[@]})); then
    say "setup installed: $(IFS=,; echo "${installed[*]}")"
else
    say "setup: everything already present"
fi
say "wasm-bindgen $bindgen_version, $(wasm-pack --version), $(wasm-opt --version | awk '{print $1, $3}'), $test_runner, $(/usr/bin/chromium --version 2>/dev/null | head -1), $(firefox-esr --version 2>/dev/null | head -1), $(geckodriver --version 2>/dev/null | head -1), WebKitGTK $(dpkg-query -W -f='${Version}' libwebkit2gtk-4.1-0 2>/dev/null || echo '?'), node $(node --version)"
