#!/usr/bin/env bash
# make bench-peers: imbi-worker against its peers (raw JetStream
# consume+ack, a Watermill router) on one standalone nats-server, each
# contestant in its own process (bench/cmd/peers; docs/performance.md).
# Extra arguments go to the harness, e.g.
#   scripts/bench-peers.sh -n 20000 -rounds 1
#   scripts/bench-peers.sh -contestants worker-off,worker -profile /tmp/prof -rounds 1
#   scripts/bench-peers.sh -json /tmp/peers.json
# BENCH_PEERS_BASE=<git rev> also builds that revision's worker as
# imbi-worker-bench-base, for an A/B in one rotated run:
#   BENCH_PEERS_BASE=main scripts/bench-peers.sh -contestants worker,worker-outcomes-off \
#     -also "base=worker bin=imbi-worker-bench-base vs=base-off" \
#     -also "base-off=worker-outcomes-off bin=imbi-worker-bench-base" -n 30000 -rounds 4
# N defaults to 100k (BENCH_PEERS_N or -n). The nats-server is installed
# once, pinned, into .cache/bin. The worker-remote rows (a no-op Python
# action through imbi-plugin-host) are in the default list: they need the
# repo's venv (scripts/pyenv.sh: python3 >= 3.11 with venv and pip; the
# client's [host] extra and examples/python-plugin), built here when a
# selected row needs it. Without Python, leave them out with -contestants.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
cd "$(dirname "$0")/.."
GO=${GO:-go}
NATS_SERVER_VERSION=v2.15.2

# Does a selected row need the plugin host? Every row runs unless
# -contestants names them; -also may derive from a remote row.
need_python=1
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	a=${args[i]}
	case "$a" in
	-contestants | --contestants) v=${args[i + 1]:-} ;;
	-contestants=* | --contestants=*) v=${a#*=} ;;
	*) continue ;;
	esac
	case "$v" in *remote*) need_python=1 ;; *) need_python=0 ;; esac
done
case " $* " in *-also*remote*) need_python=1 ;; esac
host_args=()
if [ "$need_python" = 1 ]; then
	if ! py=$(scripts/pyenv.sh); then
		echo "bench-peers: the worker-remote rows need the Python plugin host, and scripts/pyenv.sh could not build the venv (python3 >= 3.11 with venv and pip; output above)." >&2
		echo "bench-peers: install Python, or leave the rows out: -contestants raw,watermill,worker-off,worker,worker-outcomes-off" >&2
		exit 1
	fi
	host_args=(-plugin-host "$(dirname "$py")/imbi-plugin-host")
fi

root=$(pwd)
cache="$root/.cache/bin"
server="$cache/nats-server-$NATS_SERVER_VERSION"
if [ ! -x "$server" ]; then
	mkdir -p "$cache"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/nats-server-install.XXXXXX")
	GOBIN="$tmp" "$GO" install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
	mv "$tmp/nats-server" "$server"
	rm -rf "$tmp"
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/imbi-bench-peers.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$GO" build -o "$out/prepublish" ./internal/bench/prepublish
(cd bench && "$GO" build -o "$out/" ./cmd/raw ./cmd/watermill ./cmd/imbi-worker-bench ./cmd/peers)
if [ -n "${BENCH_PEERS_BASE:-}" ]; then
	base_src="$out/base-src"
	mkdir -p "$base_src"
	git archive "$BENCH_PEERS_BASE" | tar -x -C "$base_src"
	(cd "$base_src/bench" && "$GO" build -o "$out/imbi-worker-bench-base" ./cmd/imbi-worker-bench)
	echo "bench-peers: imbi-worker-bench-base is $(git rev-parse --short "$BENCH_PEERS_BASE") ($BENCH_PEERS_BASE)"
fi
"$out/peers" -nats-server "$server" -prepublish "$out/prepublish" -bin-dir "$out" -n "${BENCH_PEERS_N:-100000}" "${host_args[@]}" "$@"
