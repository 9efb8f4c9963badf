#!/usr/bin/env bash
# make bench: raw JetStream consume+ack vs the full worker pipeline on one
# embedded server (internal/bench). Extra arguments go to the program,
# e.g. scripts/bench.sh -n 20000 -cpuprofile /tmp/worker.prof
# Results are recorded in docs/performance.md.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
cd "$(dirname "$0")/.."
GO=${GO:-go}
out=$(mktemp -d "${TMPDIR:-/tmp}/imbi-bench.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$GO" build -o "$out/bench" ./internal/bench
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime)"
"$out/bench" "$@"
