"""Outcome events (wire contract v1.1 §C) read from Python.

The Go worker (built from this repository, ``imbi-worker run`` on its
embedded nats-server, no credential store) runs actions published here
with the client; ``OutcomeReader`` reads their outcomes from a durable
consumer, each validated against testdata/schemas/action-outcome.v1.json,
and the SQLite example (clients/python/examples/outcomes_to_sqlite.py)
writes them to its history table in a process of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from imbi_worker_client import ActionPublisher, Outcome, OutcomeReader
from support import REPO_ROOT, go_build

pytestmark = pytest.mark.integration

SCHEMA = REPO_ROOT / "testdata" / "schemas" / "action-outcome.v1.json"
EXAMPLE = REPO_ROOT / "clients" / "python" / "examples" / "outcomes_to_sqlite.py"


@pytest.fixture(scope="module")
def outcome_validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


class _Sink:
    """An HTTP endpoint that answers 204 to everything."""

    def __init__(self) -> None:
        class H(BaseHTTPRequestHandler):
            def _ok(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET = _ok

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def sink() -> Iterator[_Sink]:
    s = _Sink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def worker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("outcomes-worker")
    binary = go_build("./cmd/worker", tmp / "imbi-worker")
    data_dir = tmp / "data"
    log = tmp / "worker.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMBI_NEO4J_", "IMBI_NATS_"))}
    env["IMBI_HTTP_ALLOW_PRIVATE"] = "true"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(binary), "run", "--data-dir", str(data_dir), "--embedded-port", "0",
             "--admin-addr", "127.0.0.1:0", "--worker-id", "py-outcomes"],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp,
        )
    try:
        url_file = data_dir / "nats.url"
        deadline = time.monotonic() + 60
        while not (url_file.is_file() and url_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"imbi-worker run did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.1)
        url = url_file.read_text().strip()
        asyncio.run(_wait_stream(url, "IMBI_OUTCOMES"))
        yield url
    finally:
        proc.terminate()  # our own child, by pid
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _wait_stream(url: str, name: str) -> None:
    nc = await nats.connect(url)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                await nc.jetstream().stream_info(name)
                infos = await nc.jetstream().consumers_info("IMBI_ACTIONS")
                if infos:
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} was not provisioned")
            await asyncio.sleep(0.1)
    finally:
        await nc.close()


def _action(handler: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "rule": {"id": "r-1", "handler": handler, "handler_config": config, "ordinal": 0},
        "plugin": None,
        "context": {"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme"},
        "external_identifier": "acme/checkout",
        "event": {
            "type": "push",
            "third_party_service": "github",
            "metadata": {"webhook_id": "wh-py", "headers": {"authorization": "Bearer py-s3cr3t-token"}},
            "payload": {"ref": "refs/heads/main"},
        },
    }


async def _publish_three(url: str, sink: _Sink) -> dict[str, str]:
    """One success, one invalid_config and one unknown_handler; their CE
    ids by expected outcome status."""
    run = uuid.uuid4().hex[:8]
    ids: dict[str, str] = {}
    async with await ActionPublisher.connect(url) as pub:
        ok = await pub.publish_action(
            **_action("http#request", {"url": sink.url + "/hook", "method": "POST"}),
            delivery_id=f"ok-{run}",
        )
        bad = await pub.publish_action(
            **_action("http#request", {"url": 42}), delivery_id=f"cfg-{run}"
        )
        unknown = await pub.publish_action(
            **_action("nope#missing", {}), delivery_id=f"unk-{run}"
        )
    ids["succeeded"], ids["invalid_config"], ids["unknown_handler"] = (
        ok.event_id, bad.event_id, unknown.event_id,
    )
    return ids


async def test_iterator_reads_outcomes_of_published_events(
    worker_url: str, sink: _Sink, outcome_validator: Draft202012Validator
) -> None:
    ids = await _publish_three(worker_url, sink)
    want = set(ids.values())
    got: dict[str, Outcome] = {}
    raw_seen: list[dict[str, Any]] = []
    nc = await nats.connect(worker_url)
    try:
        # The stored events themselves, schema-validated.
        js = nc.jetstream()
        async with OutcomeReader(nc, durable=f"py-{uuid.uuid4().hex[:6]}", idle_timeout=20) as reader:
            async for outcome in reader:
                if outcome.action_id in want:
                    got[outcome.action_id] = outcome
                if want <= got.keys():
                    break
        for action_id in want:
            msg = await js.get_msg("IMBI_OUTCOMES", got[action_id].seq)
            raw_seen.append(json.loads(msg.data))
            # Structured mode; no Nats-Msg-Id: readers deduplicate by the
            # CloudEvent id (decision 0016).
            assert msg.headers["Content-Type"] == "application/cloudevents+json"
            assert "Nats-Msg-Id" not in msg.headers
    finally:
        await nc.close()

    assert want <= got.keys(), f"missing outcomes: {want - got.keys()}"
    ok = got[ids["succeeded"]]
    assert ok.status == "succeeded" and ok.reason is None and ok.error is None
    assert ok.handler == "http#request" and ok.subject == "imbi.outcomes.http.request"
    assert ok.id == f"{ids['succeeded']}.1" and ok.attempt == 1 and ok.worker == "py-outcomes"
    assert ok.context["project_slug"] == "checkout" and ok.event["webhook_id"] == "wh-py"
    assert ok.history_row()["status"] == "success"
    cfg = got[ids["invalid_config"]]
    assert (cfg.status, cfg.reason) == ("dead_lettered", "invalid_config")
    assert cfg.dead_letter and cfg.dead_letter["stream"] == "IMBI_ACTIONS_DLQ"
    row = cfg.history_row()
    assert row["status"] == "failed" and row["error"].startswith("invalid_config: ")
    unk = got[ids["unknown_handler"]]
    assert (unk.status, unk.reason, unk.subject) == ("dead_lettered", "unknown_handler", "imbi.outcomes.nope.missing")
    for ev in raw_seen:
        outcome_validator.validate(ev)
        assert "py-s3cr3t-token" not in json.dumps(ev)


async def test_sqlite_example_writes_history_rows(
    worker_url: str, sink: _Sink, tmp_path: Path
) -> None:
    ids = await _publish_three(worker_url, sink)
    db_path = tmp_path / "history.sqlite"
    # Its own process, as an operator would run it; it exits after 5 s
    # without a new outcome.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "clients" / "python" / "src")}
    deadline = time.monotonic() + 60
    rows: dict[str, Any] = {}
    while time.monotonic() < deadline:
        done = subprocess.run(
            [sys.executable, str(EXAMPLE), "--nats-url", worker_url, "--db", str(db_path),
             "--durable", "py-sqlite", "--idle-exit", "3"],
            capture_output=True, text=True, timeout=120, env=env,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("recorded ")
        db = sqlite3.connect(db_path)
        try:
            rows = {r[0]: r for r in db.execute(
                "SELECT action_id, handler, status, error, duration_ms, outcome FROM webhook_history"
            )}
        finally:
            db.close()
        if set(ids.values()) <= rows.keys():
            break
    assert set(ids.values()) <= rows.keys(), rows
    _, handler, status, error, duration, outcome = rows[ids["succeeded"]]
    assert (handler, status, error, outcome) == ("http#request", "success", None, "succeeded")
    assert duration >= 0
    assert rows[ids["invalid_config"]][2:4][0] == "failed"
    assert rows[ids["invalid_config"]][3].startswith("invalid_config: ")
    assert rows[ids["unknown_handler"]][5] == "dead_lettered"

    # Durable: a second run starts where the first stopped (nothing new).
    again = subprocess.run(
        [sys.executable, str(EXAMPLE), "--nats-url", worker_url, "--db", str(db_path),
         "--durable", "py-sqlite", "--idle-exit", "2"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "recorded 0 outcomes"


async def test_reader_idles_out_when_fetch_runs_out_of_time(natsd_url: str) -> None:
    """nats-py's fetch reports a timeout as nats.errors.TimeoutError or,
    when its deadline runs out between its no-wait probe and its waiting
    pull (a loaded host), as a bare asyncio.TimeoutError. Both mean "no
    outcome yet": the reader idles out instead of raising. A fetch timeout
    of a few milliseconds makes the second kind routine."""
    nc = await nats.connect(natsd_url)
    js = nc.jetstream()
    stream = f"PY_IDLE_{uuid.uuid4().hex[:6]}"
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    try:
        reader = OutcomeReader(nc, durable="idle", stream=stream, subject=f"{stream.lower()}.>",
                               fetch_timeout=0.002, idle_timeout=1.0)
        async with reader:
            got = [o async for o in reader]
        assert got == []
    finally:
        await js.delete_stream(stream)
        await nc.close()
