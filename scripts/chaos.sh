#!/usr/bin/env bash
# make chaos: the full reliability suite of docs/reliability.md with real
# processes. `make test` runs the same tests in their reduced form.
#
#   1. crash/restart: 2 imbi-worker-chaos replicas against a nats-server
#      process (file store), CHAOS_MESSAGES (100,000) messages, a replica
#      SIGKILLed every CHAOS_KILL_EVERY (3s) and restarted, one SIGTERM
#      mid-action, one nats-server SIGKILL + restart. Idempotency on, then
#      off (duplicates reported). With idempotency on, test/chaos requires
#      lost = 0 and allows only the duplicates a replica SIGKILL explains
#      (an action that ran but whose done marker the killed replica never
#      wrote): at most kills x CHAOS_CONCURRENCY of them, none after a
#      failed done-marker write and none from any other cause.
#   2. Neo4j outage: a private Neo4j stopped for CHAOS_NEO4J_OUTAGE (30s)
#      while messages that need credentials arrive; none dead-lettered.
#   3. poison corpus, secret canary, stuck actions (in process, fast).
#
# Figures are printed at the end (one JSON line per run) and kept in
# $CHAOS_REPORT (default .cache/chaos/report.jsonl).
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

mkdir -p .cache/chaos
export CHAOS_REPORT=${CHAOS_REPORT:-$top/.cache/chaos/report.jsonl}
: >"$CHAOS_REPORT"

export CHAOS_MESSAGES=${CHAOS_MESSAGES:-100000}
export CHAOS_KILL_EVERY=${CHAOS_KILL_EVERY:-3s}
export CHAOS_CONCURRENCY=${CHAOS_CONCURRENCY:-16}
export CHAOS_ACTION_MS=${CHAOS_ACTION_MS:-5}
export CHAOS_ACK_WAIT=${CHAOS_ACK_WAIT:-5s}
export CHAOS_TIMEOUT=${CHAOS_TIMEOUT:-40m}
export CHAOS_NEO4J_OUTAGE=${CHAOS_NEO4J_OUTAGE:-30s}
export CHAOS_NEO4J_MESSAGES=${CHAOS_NEO4J_MESSAGES:-600}

# The outage test needs the test Neo4j (it cuts the worker off from it
# through a proxy; it never stops the shared instance). Start one unless one
# is running, and stop only what we started.
if [ -z "${IMBI_NEO4J_URL:-}" ] && [ -x scripts/neo4j.sh ]; then
  if ! scripts/neo4j.sh status >/dev/null 2>&1; then
    trap 'scripts/neo4j.sh stop || true' EXIT
    scripts/neo4j.sh start
  fi
  eval "$(scripts/neo4j.sh env)"
fi

run() {
  echo "=== $*" >&2
  # No -race: the suite measures the worker binaries, and the orchestrator
  # is race-tested by `make test`.
  go test -count=1 -timeout 90m -v "$@" ./test/chaos/ 2>&1 |
    grep -E '^(=== RUN   Test[A-Za-z0-9]*$|--- |PASS|FAIL|ok|panic)|FIGURES|KNOWN GAP|Error|Neo4j back|before:' || true
  return "${PIPESTATUS[0]}"
}

status=0
CHAOS_IDEMPOTENCY=on run -run '^TestCrashRestart$' || status=1
CHAOS_IDEMPOTENCY=off run -run '^TestCrashRestart$' || status=1
run -run '^TestNeo4jOutage$' || status=1
run -run '^(TestPoisonCorpus|TestPoisonRefusedByServer|TestSecretCanary|TestStuckActions)$' || status=1

echo
echo "=== figures ($CHAOS_REPORT)"
cat "$CHAOS_REPORT"
exit $status
