#!/usr/bin/env bash
# Envelope decode A/B (issue 13 §3, docs/performance.md "envelope decode, json/v2"):
# the working tree against the same tree with internal/envelope from
#   hand = 23acc76, the last commit with the hand-written scanners (transplanted: the
#          type moved to wire/wiredata since, and it parses no data.chain);
#   orig = cd7620f, json/v2 struct shapes (before the token walk);
# all else equal. Two measurements, each rotated A/B/C per round:
#   1. CPU time (user+sys of the process, GC included) per Decode of the 1.2 KiB
#      benchmark body: BenchmarkDecodeStructured/bench1k2 run -benchtime Nx, minus a 1x run;
#   2. internal/bench -phases off: the full pipeline's CPU µs per message (process).
# With AB_BASE=<rev> a fourth side, base, is the whole tree at <rev> (e.g. the
# main branch before a change to internal/envelope).
# Usage: scripts/bench-envelope-ab.sh [rounds] [bench messages] [decode iterations]
# Prints every sample with the load average, then median and min per side.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
cd "$(dirname "$0")/.."
GO=${GO:-go}
rounds=${1:-8} n=${2:-20000} iters=${3:-100000}
root=$(pwd)
out=$(mktemp -d "${TMPDIR:-/tmp}/imbi-envelope-ab.XXXXXX")
trap 'rm -rf "$out"' EXIT

tree() { # tree <name> <commit of internal/envelope or "">: a copy of the working tree
	mkdir -p "$out/$1"
	git ls-files -z | tar --null -T - -c | tar -x -C "$out/$1"
	if [ -n "$2" ]; then
		rm -rf "$out/$1/internal/envelope"
		git archive "$2" internal/envelope | tar -x -C "$out/$1"
		# today's callers take NewDecoder's one result
		sed -i 's/^func NewDecoder() (\*Decoder, error) {/func newDecoderErr() (*Decoder, error) {/' "$out/$1/internal/envelope/envelope.go"
		printf '\nfunc NewDecoder() *Decoder {\n\td, err := newDecoderErr()\n\tif err != nil {\n\t\tpanic(err)\n\t}\n\treturn d\n}\n' >>"$out/$1/internal/envelope/envelope.go"
	fi
}
tree now ""
tree orig cd7620f
tree hand 23acc76
if [ -n "${AB_BASE:-}" ]; then
	mkdir -p "$out/base"
	git archive "$AB_BASE" | tar -x -C "$out/base"
fi
( # adapt the hand-written scanners to today's types; the bench publishes no chains
	cd "$out/hand/internal/envelope"
	sed -i 's/wire\.ActionData/wiredata.ActionData/g' ./*.go
	for f in envelope.go fastpath.go validate.go; do
		sed -i 's#^\t"github.com/aweber-imbi/imbi-worker/wire"$#&\n\t"github.com/aweber-imbi/imbi-worker/wire/wiredata"#' "$f"
	done
	sed -i 's#^\t"github.com/aweber-imbi/imbi-worker/wire"$#\t"github.com/aweber-imbi/imbi-worker/wire/wiredata"#' structured.go
	sed -i 's#^\tTracestate  string$#&\n\tChain       *wire.Chain // A/B transplant: data.chain is not parsed#' envelope.go
)
sides=(hand orig now)
[ -n "${AB_BASE:-}" ] && sides+=(base)
for s in "${sides[@]}"; do # one benchmark, the same source on each side
	rm -f "$out/$s"/internal/envelope/*_test.go
	cat >"$out/$s/internal/envelope/ab_test.go" <<'GO'
package envelope

import (
	"testing"

	"github.com/aweber-imbi/imbi-worker/internal/benchdata"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func BenchmarkDecodeStructured(b *testing.B) {
	dec := newDecoderAB(b)
	h := map[string][]string{"Content-Type": {wire.ContentTypeCE}, "Nats-Msg-Id": {"d-1.0"}}
	body := benchdata.Event("d-1.0", benchdata.Size, 1764072000000000000)
	b.Run("bench1k2", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := dec.Decode(h, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
GO
	if grep -q 'func NewDecoder() \*Decoder' "$out/$s/internal/envelope/envelope.go"; then
		printf 'package envelope\n\nimport "testing"\n\nfunc newDecoderAB(testing.TB) *Decoder { return NewDecoder() }\n' >"$out/$s/internal/envelope/ab_new_test.go"
	else # before NewDecoder lost its error
		printf 'package envelope\n\nimport "testing"\n\nfunc newDecoderAB(b testing.TB) *Decoder {\n\td, err := NewDecoder()\n\tif err != nil {\n\t\tb.Fatal(err)\n\t}\n\treturn d\n}\n' >"$out/$s/internal/envelope/ab_new_test.go"
	fi
done
for s in "${sides[@]}"; do
	(cd "$out/$s" && "$GO" build -o "$out/bench-$s" ./internal/bench && "$GO" test -c -o "$out/env-$s.test" ./internal/envelope)
done

cpu() { # cpu <test binary> <dir> <iterations>: user+sys seconds of one run
	local TIMEFORMAT='%U %S'
	{ time (cd "$2" && "$1" -test.run '^$' -test.bench '^BenchmarkDecodeStructured$/^bench1k2$' -test.benchtime "$3x" >/dev/null 2>&1); } 2>&1 |
		awk '{print $1 + $2}'
}
samples="$out/samples"
for i in $(seq 0 $((rounds - 1))); do
	for j in "${!sides[@]}"; do
		s=${sides[$(((i + j) % ${#sides[@]}))]}
		dir="$out/$s/internal/envelope"
		base=$(cpu "$out/env-$s.test" "$dir" 1) # process start, schema compile
		full=$(cpu "$out/env-$s.test" "$dir" "$iters")
		dec=$(awk -v a="$base" -v b="$full" -v n="$iters" 'BEGIN {printf "%.0f", (b - a) / n * 1e9}')
		pipe=$(cd "$out/$s" && "$out/bench-$s" -n "$n" -phases off 2>&1 | sed -n 's/.*off: \([0-9.]*\) µs CPU.*/\1/p' | head -1 || true)
		load=$(cut -d' ' -f1 /proc/loadavg)
		echo "round $i $s decode_cpu_ns=$dec pipeline_cpu_us=${pipe:-FAIL} load=$load" | tee -a "$samples"
	done
done
echo
for key in decode_cpu_ns pipeline_cpu_us; do
	for s in "${sides[@]}"; do
		grep " $s " "$samples" | sed -n "s/.*$key=\([0-9.]*\).*/\1/p" | sort -n |
			awk -v s="$s" -v k="$key" '{v[NR]=$1} END {if (NR == 0) exit; m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%-16s %-5s median %8.1f  min %8.1f  n=%d\n", k, s, m, v[1], NR}'
	done
done
