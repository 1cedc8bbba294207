#!/usr/bin/env bash
# Coverage-guided fuzzing of the protocol core (crates/core/fuzz: cargo-fuzz, libFuzzer with AddressSanitizer, debug
# assertions and overflow checks), one target after the other, each for SECONDS (default 600: a campaign; the test
# command's `fuzz` stage runs 20). docs/FUZZING.md says what each target checks and what campaigns found.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]      targets: frame endpoint client pair restore (default: all)
#
# Each target starts from its seeds (crates/core/fuzz/seeds/TARGET, in git) and a working corpus
# (crates/core/fuzz/corpus/TARGET, not in git, kept between runs). A finding stops that target: libFuzzer writes the
# input to crates/core/fuzz/artifacts/TARGET/, and `cargo +TOOLCHAIN fuzz run TARGET FILE` in crates/core/fuzz
# replays it (TOOLCHAIN: the npm build's nightly, which this script names when it starts).
# Prints per target: executions, executions per second, coverage (edges `cov`, features `ft`), corpus size; exits 1
# if any target found something.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds=${1:-600}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(frame endpoint client pair restore)
# libFuzzer takes -max_total_time=0 as "no limit".
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a whole number of at least 1, got '$seconds'"

toolchain=$(npm_toolchain) || die "no nightly-$NPM_NIGHTLY_DATE toolchain: run scripts/setup.sh"
command -v cargo-fuzz >/dev/null || die "cargo-fuzz is missing: run scripts/setup.sh"
fuzz_dir=crates/core/fuzz
mkdir -p test-output

say "cargo +$toolchain fuzz build (${targets[*]})"
for target in "${targets[@]}"; do
    (cd "$fuzz_dir" && cargo "+$toolchain" fuzz build "$target")
done

failed=()
summary=()
for target in "${targets[@]}"; do
    corpus="$fuzz_dir/corpus/$target" seeds="$fuzz_dir/seeds/$target" log="test-output/fuzz-$target.log"
    mkdir -p "$corpus" "$seeds"
    say "fuzz $target for ${seconds} s (log: $log)"
    # -timeout: one input running over 10 s is a finding (a hang); -rss_limit_mb bounds memory the same way.
    if (cd "$fuzz_dir" && cargo "+$toolchain" fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) >"$log" 2>&1; then
        status=clean
    else
        artifact=$(grep -oE "Test unit written to [^ ]+" "$log" | head -n 1 | sed 's/^Test unit written to //' || true)
        status="FOUND SOMETHING: ${artifact:-see $log}"
        failed+=("$target")
        grep -m3 -E "panicked at|^[a-z].*(failed|overflow)|ERROR: " "$log" || true
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
    final=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$final" | grep -oE '[0-9]+' || echo "?")
    ft=$(grep -oE 'ft: [0-9]+' <<<"$final" | grep -oE '[0-9]+' || echo "?")
    corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$final" | sed 's/corp: //' || echo "?")
    summary+=("$(printf '%-9s %-6s %12s runs %8s/s  cov %5s  ft %6s  corpus %s' "$target" "$status" "$runs" "$speed" "$cov" \
        "$ft" "$corp")")
done

say "fuzzing summary (${seconds} s per target)"
printf '  %s\n' "${summary[@]}"
((${#failed[@]} == 0)) || die "fuzzing found something in: ${failed[*]}"
