#!/usr/bin/env bash
# make demo: the main job in one command, on a fresh clone, no services.
# Builds the binary, starts `imbi-worker run` on its embedded JetStream
# server in a temp data dir, publishes every sample of testdata/events/
# (one per outcome row of wire-contract §4), waits for each to settle,
# prints what happened to each next to what was expected, shows the
# dead-letter stats and stops the worker gracefully.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}  # Go 1.27.3: encoding/json/v2 in the standard library
cd "$(dirname "$0")/.."

BIN=${BIN:-bin/imbi-worker}
GO=${GO:-go}
TIMEOUT=${DEMO_TIMEOUT:-90}

[ -x "$BIN" ] || make build >/dev/null
tmp=$(mktemp -d "${TMPDIR:-/tmp}/imbi-demo.XXXXXX")
data="$tmp/data"
worker_pid= listener_pid= host_pid=
cleanup() {
  [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null && wait "$host_pid" 2>/dev/null || true
  [ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
  [ -n "$listener_pid" ] && kill "$listener_pid" 2>/dev/null && wait "$listener_pid" 2>/dev/null || true
  if [ -z "${DEMO_KEEP:-}" ]; then rm -rf "$tmp"; else echo "kept $tmp"; fi
}
trap cleanup EXIT

# 1. The local HTTP endpoint the http#request samples call.
"$GO" build -o "$tmp/demolistener" ./scripts/demolistener
"$tmp/demolistener" >"$tmp/listener.url" 2>"$tmp/listener.log" &
listener_pid=$!
for _ in $(seq 100); do [ -s "$tmp/listener.url" ] && break; sleep 0.05; done
http_url=$(head -1 "$tmp/listener.url")

# 2. The worker on the embedded server, with limits small enough for the
#    retry rows to finish in seconds (see testdata/events/README.md), and
#    http#request allowed to reach the listener on loopback.
echo "== starting imbi-worker run (embedded NATS, data dir $data)"
env -u ACTIONS_IMBI_TOKEN -u IMBI_NATS_URL IMBI_PLUGIN_TIMEOUT_SECONDS=1 \
  "$BIN" run --data-dir "$data" --embedded-port 0 --max-attempts 3 \
    --backoff-base 300ms --backoff-max 1s --shutdown-grace 5s \
    --http-allow-private \
    --log-level debug --log-format json >"$tmp/worker.out" 2>"$tmp/worker.log" &
worker_pid=$!
for _ in $(seq 200); do
  grep -q '"worker started"' "$tmp/worker.log" 2>/dev/null && break
  kill -0 "$worker_pid" 2>/dev/null || { cat "$tmp/worker.out" "$tmp/worker.log"; exit 1; }
  sleep 0.05
done
sed -n 1p "$tmp/worker.out"

# 2b. A Python plugin host (imbi-plugin-host) with examples/python-plugin
#     on the same NATS: the worker loads its catalog when it announces.
nats_url=$(grep -o 'nats://[0-9.:]*' "$tmp/worker.out" | head -1)
PY=$(scripts/pyenv.sh)
echo "== starting imbi-plugin-host (examples/python-plugin) on $nats_url"
"$PY" -m imbi_worker_client.host --nats-url "$nats_url" --shutdown-grace 5 2>"$tmp/host.log" &
host_pid=$!
for _ in $(seq 400); do
  grep -q 'remote plugin catalog loaded' "$tmp/worker.log" 2>/dev/null && break
  kill -0 "$host_pid" 2>/dev/null || { cat "$tmp/host.log"; exit 1; }
  sleep 0.05
done
"$BIN" actions --nats-url "$nats_url" | grep -E '^PLUGIN|example-py' || true

# 3. Publish every sample; remember which CloudEvent / Nats-Msg-Id it got.
echo "== publishing testdata/events/ (listener $http_url)"
: >"$tmp/published.tsv"
for expect in testdata/events/*.expect.json testdata/events/remote/*.expect.json; do
  name=$(basename "$expect" .expect.json)
  dir=$(dirname "$expect")
  file=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["file"])' "$expect")
  mapfile -t args < <(python3 -c 'import json,sys; [print(a) for a in json.load(open(sys.argv[1])).get("publish_args", [])]' "$expect")
  sed -e "s#@DEMO_HTTP_URL@#$http_url#g" -e "s#@DEMO_TMP@#$tmp#g" "$dir/$file" >"$tmp/$file"
  summary=$("$BIN" publish --data-dir "$data" --json "${args[@]}" "$tmp/$file" |
    python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)))')
  printf '%s\t%s\t%s\n' "$name" "$expect" "$summary" >>"$tmp/published.tsv"
done

# 4. Wait for every sample to settle, then report sample by sample.
echo "== waiting for the worker (up to ${TIMEOUT}s)"
status=0
python3 - "$tmp/published.tsv" "$tmp/worker.log" "$TIMEOUT" <<'PY' || status=$?
import json, sys, time

published, log_path, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
samples = []
for line in open(published):
    name, expect_path, summary = line.rstrip("\n").split("\t", 2)
    samples.append((name, json.load(open(expect_path)), json.loads(summary)))

def observe():
    """Per message id (Nats-Msg-Id, = CE id for events): what the worker did."""
    seen = {}
    for line in open(log_path):
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        key = rec.get("msg_id") or rec.get("ce_id")
        if not key:
            continue
        o = seen.setdefault(key, {"retries": [], "final": None, "attempts": 0})
        o["attempts"] = max(o["attempts"], rec.get("attempt", 0))
        msg = rec.get("msg")
        if msg == "action failed; retrying":
            o["retries"].append(rec.get("reason"))
        elif msg == "settled":
            o["final"] = ("success" if rec.get("outcome") == "ack" else rec.get("outcome"), None, None)
        elif msg == "dead-lettered":
            o["final"] = ("dead_letter", rec.get("reason"), rec.get("last_reason"))
    return seen

def verdict(exp, summ, obs):
    want = exp["outcome"]
    if want == "deduplicated":
        got = "deduplicated by the work stream" if summ.get("duplicates") else "published"
        return got, bool(summ.get("duplicates")), True
    if obs is None or obs["final"] is None:
        return "pending", False, False
    kind, reason, last = obs["final"]
    got = kind
    if kind == "dead_letter":
        got = f"dead letter {reason}" + (f" (last {last})" if last else "")
    if obs["retries"]:
        got += f" after {len(obs['retries'])} retr{'y' if len(obs['retries']) == 1 else 'ies'} ({', '.join(obs['retries'])})"
    got += f", {obs['attempts']} attempt{'s' if obs['attempts'] != 1 else ''}"
    if want in ("success", "retried_then_success"):
        ok = kind == "success" and (want == "success" or obs["retries"])
    else:
        ok = kind == "dead_letter" and reason == exp.get("reason") and last == exp.get("last_reason")
    if ok and exp.get("attempts"):
        ok = obs["attempts"] == exp["attempts"]
    return got, ok, True

deadline = time.time() + timeout
while True:
    seen = observe()
    rows = [(n, e, verdict(e, s, seen.get(s.get("first_id") or e.get("id") or ""))) for n, e, s in samples]
    if all(done for _, _, (_, _, done) in rows) or time.time() > deadline:
        break
    time.sleep(0.5)

width = max(len(n) for n, _, _ in rows)
failed = 0
print(f"{'sample':<{width}}  {'expected':<46}  observed")
for name, exp, (got, ok, _) in rows:
    want = exp["outcome"] if exp["outcome"] != "dead_letter" else f"dead letter {exp.get('reason')}" + (f" (last {exp['last_reason']})" if exp.get("last_reason") else "")
    mark = "ok " if ok else "!! "
    failed += not ok
    print(f"{name:<{width}}  {want:<46}  {mark}{got}")
print(f"\n{len(rows) - failed}/{len(rows)} samples ended as expected")
sys.exit(1 if failed else 0)
PY

echo "== what the Python action recorded ($tmp/remote-calls.jsonl)"
cat "$tmp/remote-calls.jsonl" 2>/dev/null || echo "(nothing)"

echo "== dead-letter stats"
"$BIN" dlq stats --data-dir "$data" || true

# 5. Graceful stop: SIGTERM, in-flight work finishes, exit 0.
echo "== stopping the plugin host"
kill -TERM "$host_pid"
if wait "$host_pid"; then echo "plugin host exited 0"; else echo "plugin host exited $?"; status=1; fi
host_pid=
echo "== stopping the worker"
kill -TERM "$worker_pid"
if wait "$worker_pid"; then echo "worker exited 0"; else echo "worker exited $?"; status=1; fi
worker_pid=
exit $status
