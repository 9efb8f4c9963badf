#!/usr/bin/env bash
# Runs every Go fuzz target of the main module, one after the other, each for
# $FUZZTIME (default 30s; `make fuzz`). CI (scripts/test.sh with CI=true) runs
# each for 5s. Targets are discovered, not listed here, so a new Fuzz* function
# is fuzzed without editing this script.
#
#   FUZZTIME=2m scripts/fuzz.sh            # longer run
#   FUZZ_MATCH=Envelope scripts/fuzz.sh    # only targets whose name matches
#
# A failing input is written by `go test` under <pkg>/testdata/fuzz/<Target>/;
# commit it: it then runs as a regression seed in every plain `go test`.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

fuzztime=${FUZZTIME:-30s}
match=${FUZZ_MATCH:-}

# `go test -list` prints a package's matching names followed by its
# "ok  <pkg>  <time>" line; pair each name with the package that follows it.
# -list compiles every test binary: a package whose tests do not compile
# fails here rather than being skipped silently.
list=$(go test -list '^Fuzz' ./... 2>&1) || {
  echo "fuzz.sh: go test -list failed:" >&2
  echo "$list" >&2
  exit 1
}
targets=$(awk '
  /^Fuzz[A-Za-z0-9_]*$/ { names[n++] = $1; next }
  /^ok[ \t]/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0 }
' <<<"$list")

if [ -n "$match" ]; then
  targets=$(grep -E -- " .*${match}" <<<"$targets" || true)
fi
if [ -z "$targets" ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi

count=$(wc -l <<<"$targets")
echo "fuzz.sh: $count target(s), ${fuzztime} each"
# fuzz_once runs one target; its output goes to the terminal and to $log.
# -run '^$' skips the package's unit tests (go test ./... runs them); the
# target's own seed corpus still runs first.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
fuzz_once() {
  go test -run '^$' -fuzz "^${2}\$" -fuzztime "$fuzztime" "$1" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

# deadline_flake: Go 1.26's fuzz coordinator can report its own -fuzztime
# deadline as a failure ("context deadline exceeded", no input written;
# golang/go#75804, fixed in Go 1.27). Only that exact signature is retried,
# once; a written failing input, a panic or a test error always fails.
deadline_flake() {
  grep -q 'context deadline exceeded' "$log" &&
    ! grep -q -e 'Failing input written to' -e 'panic:' -e '_test.go:[0-9]*:' "$log"
}

failed=()
while read -r pkg name; do
  echo "=== fuzz $name ($pkg)"
  if ! fuzz_once "$pkg" "$name"; then
    if deadline_flake; then
      echo "fuzz.sh: $name hit the fuzz coordinator's deadline race (golang/go#75804); retrying once"
      fuzz_once "$pkg" "$name" || failed+=("$pkg $name")
    else
      failed+=("$pkg $name")
    fi
  fi
done <<<"$targets"

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} of $count target(s) FAILED:" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz.sh: all $count target(s) passed"
