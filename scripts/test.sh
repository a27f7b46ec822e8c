#!/usr/bin/env bash
# Runs every test of mqtt-lab on a fresh machine: installs what the tests need (the mosquitto
# broker and clients for interop tests, paho-mqtt for the WebSocket tests, chromium for the HTML
# report's test, cargo-fuzz), then the normal tests, the doctests (the Rust samples of the docs
# too), the simulation tests, the scenario library against our broker and mosquitto on loopback
# (`run --target`), the lints, and each fuzz target for FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"

step() { printf '\n==> %s\n' "$*"; }

# Every cargo test run's output is also kept here, to add up the results at the end.
RESULTS="$(mktemp)"
trap 'rm -f "$RESULTS"' EXIT
count() { tee -a "$RESULTS"; }

if ! command -v mosquitto >/dev/null || ! command -v mosquitto_pub >/dev/null; then
    step "installing mosquitto and mosquitto-clients"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto mosquitto-clients >/dev/null
fi

# tests/lab/html_report.rs loads a failing run's HTML page in headless chromium (and fails
# without it when CI is set).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    step "installing chromium"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# tests/interop/websocket.rs speaks MQTT over WebSockets with paho-mqtt (and fails without it
# when CI is set).
if ! python3 -c 'import paho.mqtt.client' 2>/dev/null; then
    step "installing paho-mqtt"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
    fi
    python3 -m pip install -q paho-mqtt==2.1.0 || python3 -m pip install -q --break-system-packages paho-mqtt==2.1.0
fi

if [ -n "${RUSTFLAGS:-}" ]; then
    echo "RUSTFLAGS is set ('$RUSTFLAGS'): it would override the simulation build's --cfg madsim; unset it." >&2
    exit 2
fi

step "format"
cargo fmt --check

step "tests (real network build)"
cargo test --all-targets 2>&1 | count

step "doctests (the Rust samples of the code and of the docs)"
cargo test --doc 2>&1 | count

step "tests (simulation build: cargo sim)"
cargo sim --all-targets 2>&1 | count

step "the scenario library against real brokers through the fault proxy (scripts/target-suite.sh)"
bash scripts/target-suite.sh

step "clippy (both builds)"
cargo clippy --all-targets -- -D warnings
cargo sim-clippy -- -D warnings

if [ "$FUZZ_SECONDS" != 0 ]; then
    step "fuzzing each target for ${FUZZ_SECONDS}s"
    bash fuzz/run-all.sh "$FUZZ_SECONDS"
fi

passed=$(grep -o '^test result: ok\. [0-9]* passed' "$RESULTS" | awk '{s += $4} END {print s + 0}')
step "all tests passed"
echo "tests: ${passed} passed, 0 failed"
