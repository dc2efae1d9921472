#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need when
# it is missing, then runs every test. Used by .ci/run and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Later connectors add their servers here (redis-server, prometheus, ...).
for pkg in "$@"; do need_apt+=("$pkg"); done
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
cargo build --release --bin sluice
cargo test --release -- --test-threads="${SLUICE_TEST_THREADS:-2}"
