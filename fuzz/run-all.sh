#!/usr/bin/env bash
# Runs every fuzz target for SECONDS seconds each on the stable toolchain (no sanitizer),
# starting from the committed seeds. Usage: fuzz/run-all.sh [SECONDS]   (default 60)
# FUZZ_TARGET_DIR overrides the build directory (default fuzz/target).
# A crash is left in fuzz/artifacts/<target>/ and the script exits non-zero; copy it into
# fuzz/regressions/<target>/ so that `cargo test` replays it from then on.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
target_dir=(--target-dir "${FUZZ_TARGET_DIR:-fuzz/target}")
cargo fuzz build -s none --fuzz-dir fuzz "${target_dir[@]}"
status=0
for t in decode_v311 decode_v5 decode_bytes framer_chunks round_trip broker_core client_core; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzzing $t for ${seconds}s"
    if ! cargo fuzz run -s none --fuzz-dir fuzz "${target_dir[@]}" "$t" \
        "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -dict=fuzz/mqtt.dict -print_final_stats=1 \
        > "fuzz/last-$t.log" 2>&1; then
        tail -n 40 "fuzz/last-$t.log"
        echo "!! $t failed: inputs in fuzz/artifacts/$t"
        status=1
    else
        grep -E "^(stat::number_of_executed_units|Done [0-9]+ runs)" "fuzz/last-$t.log" || true
    fi
done
exit "$status"
