#!/usr/bin/env bash
# The one test command (make test, .ci/run). It installs what the tests need
# (Python venv, Neo4j via scripts/neo4j.sh, Chromium via scripts/chromium.sh), starts the services, runs every
# suite and stops the services again, whatever happens.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# --- Python venv (foreign clients: cryptography, cloudevents, nats-py) ---
IMBI_TEST_PYTHON=$(scripts/pyenv.sh)
export IMBI_TEST_PYTHON

# --- Neo4j (started here, stopped on exit) ---
if [ -x scripts/neo4j.sh ]; then
  trap 'scripts/neo4j.sh stop || true' EXIT
  scripts/neo4j.sh start
  eval "$(scripts/neo4j.sh env)"
fi

# --- Chromium (the console's browser test; installed when missing) ---
CHROMIUM_BIN=$(scripts/chromium.sh)
export CHROMIUM_BIN

# --- Go ---
# -json through tools/testsummary: the usual per-package ok/FAIL lines, then
# every skipped test with its reason and "N passed, N failed, N skipped".
# Under CI=true a skip of a test that needs Neo4j, Python or NATS
# (internal/testenv) fails the run.
go build -o "$top/bin/testsummary" ./tools/testsummary
go test -json -race -count=1 -timeout 20m ./... | "$top/bin/testsummary"

# --- example plugin module (its own go.mod) ---
# -mod=mod: the example requires this checkout through a replace, so its
# go.mod/go.sum must follow every dependency the main module adds; let go
# fill them in rather than fail with "updates to go.mod needed".
for d in examples/plugins/*/; do
  [ -f "$d/go.mod" ] && (cd "$d" && GOFLAGS=-mod=mod go test -count=1 ./...)
done

# --- the benchmark harness's own unit tests (bench/, its own go.mod) ---
# Only the harness's pure helpers (paired ratios, the median's interval,
# -also parsing): no benchmark runs here.
(cd bench && GOFLAGS=-mod=mod go test -count=1 ./cmd/peers)

# --- Python client ---
if [ -d clients/python/tests ]; then
  "$IMBI_TEST_PYTHON" -m pytest -q -rs clients/python/tests  # -rs: list skip reasons
fi

# --- fuzz targets, briefly (make fuzz runs them longer) ---
if [ "${CI:-}" = "true" ] && [ -x scripts/fuzz.sh ]; then
  FUZZTIME=${FUZZTIME:-5s} scripts/fuzz.sh
fi
