#!/usr/bin/env bash
# A throw-away Neo4j Community 5.26 (embedded, tools/neo4j) for tests, CI
# and the demo: Bolt on 127.0.0.1 only, auth on, no HTTP, no usage reports.
#
#   scripts/neo4j.sh start    build once (cached), start in the background, wait for Bolt
#   scripts/neo4j.sh stop     stop by pid (TERM, then KILL after 30 s)
#   scripts/neo4j.sh status   "running pid=… port=…" (exit 0) or "stopped" (exit 1)
#   scripts/neo4j.sh wait     wait until Bolt answers (exit 1 after $NEO4J_WAIT_SECONDS)
#   scripts/neo4j.sh env      print export lines for IMBI_NEO4J_URL/USER/PASSWORD/DATABASE and,
#                             unless one is set, a test IMBI_AUTH_ENCRYPTION_KEY
#
# Settings (environment): IMBI_NEO4J_PORT (default: first free port from
# 17687), IMBI_NEO4J_PASSWORD (default: random, kept in the state dir),
# NEO4J_HEAP (default 512m), NEO4J_PAGECACHE (default 32m),
# NEO4J_STATE_DIR (default .cache/neo4j), NEO4J_WAIT_SECONDS (default 120).
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
top=$(cd "$(dirname "$0")/.." && pwd)
src="$top/tools/neo4j"
state=${NEO4J_STATE_DIR:-"$top/.cache/neo4j"}
pidfile="$state/pid"
portfile="$state/port"
pwfile="$state/password"
log="$state/neo4j.log"
heap=${NEO4J_HEAP:-512m}
wait_seconds=${NEO4J_WAIT_SECONDS:-120}
mkdir -p "$state"

# build: copy the jars to $state/lib and compile the launcher, only when the
# pom or the launcher changed (Maven keeps the downloads in ~/.m2).
build() {
  local want have
  want=$(cat "$src/pom.xml" "$src/src/EmbeddedNeo4j.java" | sha256sum | cut -d' ' -f1)
  have=$(cat "$state/build.sha" 2>/dev/null || true)
  if [ "$want" = "$have" ] && [ -f "$state/classes/EmbeddedNeo4j.class" ]; then
    return 0
  fi
  echo "neo4j.sh: building the embedded server (first run downloads ~120 MB to ~/.m2)" >&2
  rm -rf "$state/lib" "$state/classes"
  if ! (cd "$src" && mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$state/lib") >"$state/build.log" 2>&1; then
    cat "$state/build.log" >&2
    return 1
  fi
  mkdir -p "$state/classes"
  javac --release 17 -d "$state/classes" -cp "$state/lib/*" "$src/src/EmbeddedNeo4j.java"
  echo "$want" >"$state/build.sha"
}

running_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    echo "$pid"
    return 0
  fi
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pick_port() {
  if [ -n "${IMBI_NEO4J_PORT:-}" ]; then
    echo "$IMBI_NEO4J_PORT"
    return
  fi
  local p=17687
  while port_busy "$p"; do p=$((p + 1)); done
  echo "$p"
}

password() {
  if [ -n "${IMBI_NEO4J_PASSWORD:-}" ]; then
    echo "$IMBI_NEO4J_PASSWORD"
    return
  fi
  if [ ! -s "$pwfile" ]; then
    (umask 077 && od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$pwfile")
  fi
  cat "$pwfile"
}

# wait_ready: the launcher prints READY after it has set the password with a
# real query on the system database, so READY plus an open Bolt port means
# a client can log in.
wait_ready() {
  local port deadline
  port=$(cat "$portfile" 2>/dev/null || echo 0)
  deadline=$((SECONDS + wait_seconds))
  while [ $SECONDS -lt $deadline ]; do
    if ! running_pid >/dev/null; then
      echo "neo4j.sh: server exited; last log lines:" >&2
      tail -n 30 "$log" >&2 || true
      return 1
    fi
    if grep -q '^READY ' "$log" 2>/dev/null && port_busy "$port"; then
      return 0
    fi
    sleep 0.5
  done
  echo "neo4j.sh: Bolt did not answer within ${wait_seconds}s; last log lines:" >&2
  tail -n 30 "$log" >&2 || true
  return 1
}

start() {
  if pid=$(running_pid); then
    wait_ready
    return 0
  fi
  build
  local port pw started
  port=$(pick_port)
  pw=$(password)
  echo "$port" >"$portfile"
  started=$SECONDS
  # --add-opens: the flags Neo4j's own neo4j.conf passes on Java 17+.
  NEO4J_PORT="$port" NEO4J_PASSWORD="$pw" NEO4J_DATA_DIR="$state/data" \
    NEO4J_PAGECACHE="${NEO4J_PAGECACHE:-32m}" \
    nohup java -Xms128m -Xmx"$heap" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -XX:-OmitStackTraceInFastThrow -Djdk.nio.maxCachedBufferSize=1024 \
    -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.disable.jmx=true \
    --add-opens=java.base/java.nio=ALL-UNNAMED \
    --add-opens=java.base/java.io=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
    -cp "$state/classes:$state/lib/*" EmbeddedNeo4j >"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  if ! wait_ready; then
    stop
    return 1
  fi
  echo "neo4j.sh: Neo4j ready on bolt://127.0.0.1:$port in $((SECONDS - started))s (pid $(cat "$pidfile"))" >&2
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

status() {
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid port=$(cat "$portfile" 2>/dev/null)"
    return 0
  fi
  echo "stopped"
  return 1
}

# fernet_key: a throw-away Fernet key for this test server (kept beside the
# password), so that everything started with these variables — tests that
# run `imbi-worker run` in process, the demo — has the key a configured
# credential store requires. A key already in the environment wins.
fernet_key() {
  if [ ! -s "$state/fernet.key" ]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr '+/' '-_' >"$state/fernet.key")
  fi
  cat "$state/fernet.key"
}

print_env() {
  local port
  port=$(cat "$portfile" 2>/dev/null || pick_port)
  printf 'export IMBI_NEO4J_URL=%q\n' "bolt://127.0.0.1:$port"
  printf 'export IMBI_NEO4J_USER=%q\n' neo4j
  printf 'export IMBI_NEO4J_PASSWORD=%q\n' "$(password)"
  printf 'export IMBI_NEO4J_DATABASE=%q\n' neo4j
  if [ -z "${IMBI_AUTH_ENCRYPTION_KEY:-}${IMBI_AUTH_ENCRYPTION_KEYS:-}" ]; then
    printf 'export IMBI_AUTH_ENCRYPTION_KEY=%q\n' "$(fernet_key)"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  wait) wait_ready ;;
  env) print_env ;;
  build) build ;;
  *)
    echo "usage: $0 start|stop|status|wait|env|build" >&2
    exit 2
    ;;
esac
