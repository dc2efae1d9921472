#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need when
# it is missing, then runs every test. Used by .ci/run and by developers.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Servers the integration tests start, installed only when missing; later
# connectors add theirs here.
# tests/dashboards.rs: a real Prometheus, and promtool for the alert rules.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  need_apt+=(prometheus)
fi
# tests/top.rs: reads `sluice top` off a tmux pseudo-terminal.
command -v tmux >/dev/null || need_apt+=(tmux)
# tests/redis.rs and the observability tests: a real redis-server (with TLS),
# and openssl to make the TLS test's certificates.
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v openssl >/dev/null || need_apt+=(openssl)
for pkg in "$@"; do need_apt+=("$pkg"); done
if [ ${#need_apt[@]} -gt 0 ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing ${need_apt[*]} ..."
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# tests/ingest_sdk.rs: the official Segment libraries, from PyPI and npm.
command -v python3 >/dev/null || need_py=(python3 python3-pip)
command -v node >/dev/null && command -v npm >/dev/null || need_node=(nodejs npm)
if [ -n "${need_py[*]:-}${need_node[*]:-}" ]; then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "installing ${need_py[*]:-} ${need_node[*]:-} ..."
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${need_py[@]+"${need_py[@]}"} ${need_node[@]+"${need_node[@]}"} >/dev/null
fi
if ! python3 -c "import segment.analytics" 2>/dev/null; then
  echo "installing segment-analytics-python ..."
  # Debian's python refuses system-wide pip installs unless told otherwise.
  python3 -m pip install -q segment-analytics-python 2>/dev/null \
    || python3 -m pip install -q --break-system-packages segment-analytics-python
fi
if [ ! -d tests/sdk/node_modules/@segment/analytics-node ]; then
  echo "installing @segment/analytics-node into tests/sdk ..."
  npm install --prefix tests/sdk --no-audit --no-fund --silent
fi

command -v cargo >/dev/null || { echo "cargo is required (rustup)"; exit 1; }
cargo build --release --bin sluice
cargo test --release --no-fail-fast -- --test-threads="${SLUICE_TEST_THREADS:-2}"
