#!/usr/bin/env bash
# Mutation testing of the broker and client cores with the lab alone as the test command:
# cargo-mutants changes one thing at a time in src/broker/ and src/client/, builds the
# simulation build (the `test` profile: optimised, rebuilt incrementally, a few seconds per
# mutant) and runs tests/lab/mutation.rs, which runs every library scenario over its first
# seeds. A mutant the lab does not fail survives.
#
# Left out, because the lab never feeds them and other tests judge them: the fuzz harnesses,
# the configuration checks (client/config.rs, broker/config.rs: a scenario is validated before
# a world is built, tests/scenario/ judges the wording) and the file formats (the password file,
# the ACL file's parser: unit tests beside them and tests/scenario/), and the journal's
# reference model applying changes (`ModelTables::apply`, which only tests and the fuzz
# harness call to check the journal).
#
# The mutants are tested in place, so run it in a checkout of its own (a git worktree):
#   git worktree add ../mqtt-lab-mutants && cd ../mqtt-lab-mutants && scripts/mutants.sh
# Results go to mutants.out/ (outcomes.json, caught.txt, missed.txt, ...). Arguments go to
# cargo-mutants, e.g. `--sharding round-robin --shard 3/20`, `--iterate` (only what was not caught before) or `--list`;
# MQTT_LAB_MUTANT_SEEDS sets the seeds per scenario (default 2). docs/testing.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-mutants >/dev/null; then
    cargo install --locked cargo-mutants
fi

export RUSTFLAGS="--cfg madsim" MQTT_LAB_SIM=1 CARGO_TARGET_DIR=target/sim
exec cargo mutants --in-place --timeout 120 \
    -f 'src/broker/**/*.rs' -f 'src/client/**/*.rs' \
    -e 'src/broker/fuzz.rs' -e 'src/client/fuzz.rs' \
    -e 'src/client/config.rs' -e 'src/broker/config.rs' -e 'src/broker/auth/password.rs' \
    -E 'Acl::parse' -E 'ModelTables::apply' \
    "$@" \
    -- --test lab -- --ignored --exact mutation::the_library_passes_its_first_seeds
