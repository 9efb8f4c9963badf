"""End to end: events published from Python are run by the Go worker.

The worker binary is built from this repository and started with
``imbi-worker run`` on its embedded nats-server (temp ``--data-dir``). Its
credentials come from the real Neo4j the repo's test command starts
(scripts/neo4j.sh): the Plugin node is seeded here with a Fernet token made
by Python's ``cryptography``, as imbi does. The action is the built-in
``http#request``, pointed at an HTTP server in this process, so every
assertion is on what the worker really did.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest

from imbi_worker_client import ActionPublisher, PluginRef, event_source
from support import REPO_ROOT, go_build

pytestmark = pytest.mark.integration

WORK_STREAM = "IMBI_ACTIONS"
DLQ_STREAM = "IMBI_ACTIONS_DLQ"
URL_RE = re.compile(r"nats://127\.0\.0\.1:\d+")


# --- an HTTP endpoint the http#request action calls -------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Sink:
    """Records every request; answers 204 (or what ``status`` says)."""

    def __init__(self) -> None:
        self.requests: queue.Queue[Received] = queue.Queue()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                sink.requests.put(
                    Received(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                self.send_response(204)
                self.end_headers()

            do_POST = do_PUT = do_PATCH = do_GET = _record

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    async def wait_for(
        self, path: str, worker: Worker | None = None, timeout: float = 30.0
    ) -> Received:
        """The next request to ``path`` (others are put back)."""
        deadline = time.monotonic() + timeout
        seen: list[Received] = []
        try:
            while time.monotonic() < deadline:
                try:
                    r = self.requests.get_nowait()
                except queue.Empty:
                    await asyncio.sleep(0.05)
                    continue
                if r.path == path:
                    return r
                seen.append(r)
            raise AssertionError(
                f"no request to {path} within {timeout}s" + (worker.tail() if worker else "")
            )
        finally:
            for r in seen:
                self.requests.put(r)

    def count(self, path: str) -> int:
        items = []
        while True:
            try:
                items.append(self.requests.get_nowait())
            except queue.Empty:
                break
        for r in items:
            self.requests.put(r)
        return sum(1 for r in items if r.path == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink()
    yield s
    s.close()


# --- Neo4j: the Plugin node that holds the credentials ------------------------


def neo4j_env() -> dict[str, str]:
    """IMBI_NEO4J_* from the environment (scripts/test.sh exports them), or
    from scripts/neo4j.sh when it is already running (a developer's run)."""
    keys = ("IMBI_NEO4J_URL", "IMBI_NEO4J_USER", "IMBI_NEO4J_PASSWORD")
    if all(os.environ.get(k) for k in keys):
        return {k: v for k, v in os.environ.items() if k.startswith("IMBI_NEO4J_")}
    script = REPO_ROOT / "scripts" / "neo4j.sh"
    status = subprocess.run([str(script), "status"], capture_output=True, text=True)
    if status.returncode != 0:
        pytest.fail("Neo4j is not running: run the tests with scripts/test.sh (it starts Neo4j)")
    out = subprocess.run([str(script), "env"], capture_output=True, text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        m = re.match(r"^(?:export\s+)?(IMBI_NEO4J_[A-Z_]+)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = m.group(2).strip("'\"")
    return env


@dataclass(frozen=True)
class Graph:
    env: dict[str, str]
    fernet_key: str
    service_slug: str
    plugin_id: str
    token: str


@pytest.fixture(scope="module")
def graph() -> Iterator[Graph]:
    from cryptography.fernet import Fernet
    from neo4j import GraphDatabase

    env = neo4j_env()
    key = Fernet.generate_key().decode()
    run = uuid.uuid4().hex[:10]
    g = Graph(
        env=env,
        fernet_key=key,
        service_slug=f"pyclient-{run}",
        plugin_id=f"pyclient-http-{run}",
        token=f"tok-{run}",
    )
    blob = Fernet(key.encode()).encrypt(json.dumps({"token": g.token}).encode()).decode()
    driver = GraphDatabase.driver(
        env["IMBI_NEO4J_URL"], auth=(env["IMBI_NEO4J_USER"], env["IMBI_NEO4J_PASSWORD"])
    )
    database = env.get("IMBI_NEO4J_DATABASE") or None
    try:
        driver.execute_query(
            "MERGE (t:ThirdPartyService {slug: $tps}) "
            "MERGE (p:Plugin {id: $pid}) "
            "SET p.plugin_slug = 'http', p.plugin_configuration = $blob "
            "MERGE (t)-[:HAS_PLUGIN]->(p)",
            tps=g.service_slug,
            pid=g.plugin_id,
            blob=blob,
            database_=database,
        )
        yield g
    finally:
        driver.execute_query(
            "MATCH (n) WHERE (n:Plugin AND n.id = $pid) OR (n:ThirdPartyService AND n.slug = $tps) "
            "DETACH DELETE n",
            pid=g.plugin_id,
            tps=g.service_slug,
            database_=database,
        )
        driver.close()


# --- the worker ---------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        """The end of the worker's log, for failure messages."""
        return "\n--- imbi-worker log (tail) ---\n" + self.log.read_text(errors="replace")[-chars:]


def _read_url(log: Path, data_dir: Path) -> str | None:
    for candidate in (data_dir / "nats.url", data_dir / "nats-url"):
        if candidate.is_file():
            text = candidate.read_text().strip()
            if text:
                return text
    m = URL_RE.search(log.read_text(errors="replace")) if log.exists() else None
    return m.group(0) if m else None


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, graph: Graph) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("worker")
    # IMBI_TEST_WORKER_PACKAGE: another main package with the same `run`
    # interface (a custom binary: cli.Main plus its own plugins).
    package = os.environ.get("IMBI_TEST_WORKER_PACKAGE", "./cmd/worker")
    binary = go_build(package, tmp / "imbi-worker")
    data_dir = tmp / "data"
    log = tmp / "worker.log"
    env = {
        **os.environ,
        **graph.env,
        "IMBI_AUTH_ENCRYPTION_KEY": graph.fernet_key,
        # Short backoff so a retry test does not wait seconds.
        "IMBI_PLUGIN_TIMEOUT_SECONDS": "5",
        # The sink is on loopback, which http#request refuses by default.
        "IMBI_HTTP_ALLOW_PRIVATE": "true",
    }
    env.pop("IMBI_NATS_URL", None)  # the embedded default
    with log.open("wb") as out:
        proc = subprocess.Popen(
            # Free ports, not the defaults (4222, 9090): other test runs on
            # the host may hold them.
            [
                str(binary),
                "run",
                "--data-dir",
                str(data_dir),
                "--embedded-port",
                "0",
                "--admin-addr",
                "127.0.0.1:0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp,
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while time.monotonic() < deadline and url is None:
            if proc.poll() is not None:
                pytest.fail(f"imbi-worker run exited {proc.returncode}:\n{log.read_text()[-4000:]}")
            url = _read_url(log, data_dir)
            time.sleep(0.1)
        if url is None:
            pytest.fail(f"imbi-worker run printed no NATS URL:\n{log.read_text()[-4000:]}")
        asyncio.run(_wait_provisioned(url))
        yield Worker(url=url, proc=proc, log=log)
    finally:
        proc.terminate()  # our own child, by pid
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait_provisioned(url: str, timeout: float = 30.0) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                await js.stream_info(WORK_STREAM)
                await js.stream_info(DLQ_STREAM)
                infos = await js.consumers_info(WORK_STREAM)
                if infos:
                    return
            except nats.js.errors.NotFoundError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the worker did not provision its streams and consumer")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


@pytest.fixture
async def publisher(worker: Worker) -> AsyncIterator[ActionPublisher]:
    pub = await ActionPublisher.connect(worker.url)
    try:
        yield pub
    finally:
        await pub.close()


# --- helpers ------------------------------------------------------------------


def action(
    graph: Graph, sink: Sink, path: str, *, plugin: Any = "id", **config: Any
) -> dict[str, Any]:
    """publish_action arguments for http#request to ``sink``/``path``."""
    handler_config = {
        "url": sink.url + path,
        "headers": {"X-Event": "{{ .event.type }}", "X-Project": "{{ .context.project_slug }}"},
        **config,
    }
    return {
        "rule": {
            "handler": "http#request",
            "handler_config": json.dumps(handler_config),
            "ordinal": 0,
        },
        "plugin": PluginRef(id=graph.plugin_id) if plugin == "id" else plugin,
        "context": {"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme"},
        "external_identifier": "acme/checkout",
        "event": {
            "type": "push",
            "third_party_service": graph.service_slug,
            "metadata": {
                "webhook_id": "wh-1",
                "headers": {"x-github-event": "push", "authorization": "Bearer gh-s3cr3t"},
            },
            "payload": {"ref": "refs/heads/main"},
        },
    }


async def stream_state(url: str, stream: str) -> Any:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(stream)).state
    finally:
        await nc.close()


async def wait_drained(url: str, timeout: float = 30.0) -> None:
    """The work-queue stream is empty: every message was acked."""
    deadline = time.monotonic() + timeout
    while (await stream_state(url, WORK_STREAM)).messages:
        if time.monotonic() > deadline:
            raise AssertionError("work stream not drained")
        await asyncio.sleep(0.1)


async def dead_letter(worker: Worker, subject: str, event_id: str, timeout: float = 30.0) -> Any:
    """The dead letter of ``event_id`` on ``subject``."""
    nc = await nats.connect(worker.url)
    js = nc.jetstream()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                msg = await js.get_last_msg(DLQ_STREAM, subject)
                if msg.headers and msg.headers.get("Nats-Msg-Id", "").startswith(event_id):
                    return msg
                if msg.data and json.loads(msg.data).get("id") == event_id:
                    return msg
            except nats.js.errors.NotFoundError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"no dead letter for {event_id} on {subject}" + worker.tail())
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


async def dlq_ids(url: str) -> set[str]:
    """CloudEvent ids of every dead letter (structured bodies)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    ids: set[str] = set()
    try:
        state = (await js.stream_info(DLQ_STREAM)).state
        if not state.messages:
            return ids
        for seq in range(max(state.first_seq, 1), state.last_seq + 1):
            try:
                msg = await js.get_msg(DLQ_STREAM, seq)
            except nats.js.errors.NotFoundError:
                continue
            ids.add((msg.headers or {}).get("Nats-Msg-Id", ""))
    finally:
        await nc.close()
    return ids


def assert_forwarded(req: Received) -> None:
    """The http#request action ran with what the client published."""
    assert req.method == "POST"
    assert req.headers["x-event"] == "push"
    assert req.headers["x-project"] == "checkout"
    body = json.loads(req.body)
    assert body["context"]["project_slug"] == "checkout"
    assert body["external_identifier"] == "acme/checkout"
    assert body["event"]["payload"] == {"ref": "refs/heads/main"}
    # Redacted by the client before publishing; the secret never left.
    assert body["event"]["metadata"]["headers"]["authorization"] == "[redacted]"
    assert b"gh-s3cr3t" not in req.body


# --- tests --------------------------------------------------------------------


async def test_structured_event_is_run_by_the_worker(
    worker: Worker, publisher, graph, sink
) -> None:
    a = action(graph, sink, "/structured")
    res = await publisher.publish_action(**a, delivery_id=f"s-{uuid.uuid4().hex}")
    assert not res.duplicate and res.stream == WORK_STREAM
    req = await sink.wait_for("/structured", worker)
    assert_forwarded(req)
    await wait_drained(worker.url)
    assert res.event_id not in await dlq_ids(worker.url)


async def test_credentials_from_neo4j_reach_the_action(
    worker: Worker, publisher, graph, sink
) -> None:
    # plugin.id names the Plugin node; the worker decrypts the Fernet token
    # Python wrote there (same key) and the action sends it as a bearer token.
    a = action(graph, sink, "/with-credentials")
    await publisher.publish_action(**a, delivery_id=f"c-{uuid.uuid4().hex}")
    req = await sink.wait_for("/with-credentials", worker)
    assert_forwarded(req)
    assert req.headers.get("authorization") == f"Bearer {graph.token}", worker.tail()


async def test_plugin_found_by_service_when_no_id(worker: Worker, publisher, graph, sink) -> None:
    # plugin.id absent: the worker finds the Plugin through
    # (:ThirdPartyService {slug: event.third_party_service})-[:HAS_PLUGIN]->.
    a = action(graph, sink, "/by-service", plugin=None)
    await publisher.publish_action(**a, delivery_id=f"n-{uuid.uuid4().hex}")
    req = await sink.wait_for("/by-service", worker)
    assert_forwarded(req)
    assert req.headers.get("authorization") == f"Bearer {graph.token}", worker.tail()


async def test_binary_event_built_by_hand_is_run(worker: Worker, graph, sink) -> None:
    a = action(graph, sink, "/binary")
    data = {
        "rule": {
            "handler": "http#request",
            "handler_config": json.loads(a["rule"]["handler_config"]),
            "ordinal": 0,
        },
        "plugin": {"id": graph.plugin_id, "slug": "http"},
        "context": a["context"],
        "external_identifier": a["external_identifier"],
        "event": {
            **a["event"],
            "metadata": {"webhook_id": "wh 1", "headers": {"authorization": "[redacted]"}},
        },
    }
    ce_id = f"b-{uuid.uuid4().hex}.0"
    headers = {
        "ce-specversion": "1.0",
        "ce-id": ce_id,
        "ce-source": "/imbi-gateway/webhooks/wh%201",  # percent-encoded, as the binding says
        "ce-type": "io.imbi.webhook.action.v1",
        "ce-subject": "http#request",
        "ce-time": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "Content-Type": "application/json",
        "Nats-Msg-Id": ce_id,
    }
    assert event_source("wh 1") == "/imbi-gateway/webhooks/wh%201"
    nc = await nats.connect(worker.url)
    try:
        ack = await nc.jetstream().publish(
            "imbi.actions.http.request", json.dumps(data).encode(), headers=headers
        )
    finally:
        await nc.close()
    assert ack.stream == WORK_STREAM
    req = await sink.wait_for("/binary", worker)
    assert_forwarded(req)
    await wait_drained(worker.url)
    assert ce_id not in await dlq_ids(worker.url)


@pytest.mark.parametrize(
    ("rule", "reason", "dlq_subject"),
    [
        # no such plugin in the worker's registry
        ({"handler": "nosuch#thing"}, "unknown_handler", "imbi.dlq.actions.nosuch.thing"),
        # the plugin exists, the action does not
        ({"handler": "http#nosuch"}, "unknown_handler", "imbi.dlq.actions.http.nosuch"),
        # handler_config fails http#request's schema (url is required)
        (
            {"handler": "http#request", "handler_config": {"method": "GET"}},
            "invalid_config",
            "imbi.dlq.actions.http.request",
        ),
    ],
)
@pytest.mark.parametrize("expected_stream", [None, WORK_STREAM], ids=["plain", "expected-stream"])
async def test_poison_event_is_dead_lettered(
    worker: Worker,
    graph,
    sink,
    rule: dict[str, Any],
    reason: str,
    dlq_subject: str,
    expected_stream: str | None,
) -> None:
    # With expected_stream the stored message carries Nats-Expected-Stream:
    # IMBI_ACTIONS; the worker must not copy that precondition into the
    # dead-letter publish (it did, and the message could never leave).
    a = action(graph, sink, "/poison")
    a["rule"] = {**rule, "ordinal": 0}
    async with await ActionPublisher.connect(worker.url, stream=expected_stream) as publisher:
        msg = publisher.build(**a, delivery_id=f"p-{uuid.uuid4().hex}")
        res = await publisher.publish_message(msg)
    assert not res.duplicate
    dead = await dead_letter(worker, dlq_subject, msg.event_id)
    assert dead.headers["Imbi-Dlq-Reason"] == reason
    assert dead.headers["Imbi-Dlq-Original-Subject"] == msg.subject
    assert dead.headers["Imbi-Dlq-Original-Seq"] == str(res.seq)
    assert dead.headers["Content-Type"] == "application/cloudevents+json"
    # The original message, byte for byte.
    assert dead.data == msg.body
    # No secret in any dead-letter header.
    assert not [v for v in dead.headers.values() if "s3cr3t" in v]
    await wait_drained(worker.url)
    assert sink.count("/poison") == 0


async def test_non_cloudevent_from_python_is_dead_lettered_invalid(worker: Worker) -> None:
    nc = await nats.connect(worker.url)
    try:
        msg_id = f"junk-{uuid.uuid4().hex}"
        await nc.jetstream().publish(
            "imbi.actions.http.request", b"not a cloudevent", headers={"Nats-Msg-Id": msg_id}
        )
    finally:
        await nc.close()
    dead = await dead_letter(worker, "imbi.dlq.actions._invalid", msg_id)
    assert dead.headers["Imbi-Dlq-Reason"] == "invalid_event"
    assert dead.data == b"not a cloudevent"


async def test_duplicate_publish_is_dropped_by_the_worker_stream(
    worker: Worker, publisher, graph, sink
) -> None:
    a = action(graph, sink, "/dedup")
    delivery = f"d-{uuid.uuid4().hex}"
    first = await publisher.publish_action(**a, delivery_id=delivery)
    last_seq = (await stream_state(worker.url, WORK_STREAM)).last_seq
    second = await publisher.publish_action(**a, delivery_id=delivery)
    assert first.duplicate is False
    assert second.duplicate is True and second.seq == first.seq
    assert (await stream_state(worker.url, WORK_STREAM)).last_seq == last_seq
    await sink.wait_for("/dedup", worker)
    await wait_drained(worker.url)
    await asyncio.sleep(0.5)
    assert sink.count("/dedup") == 0  # ran once: no second request queued up


async def test_publish_delivery_runs_every_rule(worker: Worker, publisher, graph, sink) -> None:
    rules = []
    for ordinal in range(3):
        a = action(graph, sink, f"/delivery/{ordinal}")
        a["rule"]["ordinal"] = ordinal
        rules.append(a)
    result = await publisher.publish_delivery(rules, delivery_id=f"m-{uuid.uuid4().hex}")
    assert result.ok, result.failed
    for ordinal in range(3):
        assert_forwarded(await sink.wait_for(f"/delivery/{ordinal}", worker))
    await wait_drained(worker.url)
