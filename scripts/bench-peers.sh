#!/usr/bin/env bash
# make bench-peers: imbi-worker against its peers (raw JetStream
# consume+ack, a Watermill router) on one standalone nats-server, each
# contestant in its own process (bench/cmd/peers; docs/performance.md).
# Extra arguments go to the harness, e.g.
#   scripts/bench-peers.sh -n 20000 -rounds 1
#   scripts/bench-peers.sh -contestants worker-off,worker -profile /tmp/prof -rounds 1
#   scripts/bench-peers.sh -json /tmp/peers.json
# N defaults to 100k (BENCH_PEERS_N or -n). The nats-server is installed
# once, pinned, into .cache/bin.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
cd "$(dirname "$0")/.."
GO=${GO:-go}
NATS_SERVER_VERSION=v2.15.2
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
"$out/peers" -nats-server "$server" -prepublish "$out/prepublish" -bin-dir "$out" -n "${BENCH_PEERS_N:-100000}" "$@"
