#!/usr/bin/env bash
# Mutation testing of the broker and client cores with the lab alone as the test command:
# cargo-mutants changes one thing at a time in src/broker/ and src/client/ (the fuzz harnesses
# and unit tests left out), builds the simulation build with the `mutants` profile, and runs
# tests/lab/mutation.rs, which runs every library scenario over its first seeds. A mutant the
# lab does not fail survives. Results go to mutants.out/ (outcomes.json, caught.txt,
# missed.txt, ...). Arguments go to cargo-mutants, e.g. `--shard 3/20` or `--list`;
# MQTT_LAB_MUTANT_SEEDS sets the seeds per scenario (default 2). docs/testing.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-mutants >/dev/null; then
    cargo install --locked cargo-mutants
fi

# The mutants are built in cargo-mutants' own copy of the tree, so the cfg set here reaches
# only that build (target/ is untouched).
export RUSTFLAGS="--cfg madsim" MQTT_LAB_SIM=1
exec cargo mutants \
    -f 'src/broker/**/*.rs' -f 'src/client/**/*.rs' \
    -e 'src/broker/fuzz.rs' -e 'src/client/fuzz.rs' \
    --profile mutants \
    "$@" \
    -- --test lab -- --ignored --exact mutation::the_library_passes_its_first_seeds
