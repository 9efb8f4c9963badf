"""The plugin host: a NATS micro service running webhook actions (§D)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import nats.micro
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from nats.aio.client import Client
from nats.micro.request import Request
from nats.micro.service import Service
from pydantic import ValidationError

from .context import build_context, context_model
from .errors import classify
from .plugins import LoadResult

__all__ = [
    "ANNOUNCE_SUBJECT",
    "CATALOG_SUBJECT",
    "RUN_PREFIX",
    "SERVICE_NAME",
    "PluginHost",
    "keyring_from_env",
]

SERVICE_NAME = "imbi-plugin-host"
QUEUE_GROUP = "imbi-plugin-host"
CATALOG_SUBJECT = "imbi.plugins.v1.catalog"
RUN_PREFIX = "imbi.plugins.v1.run"
ANNOUNCE_SUBJECT = "imbi.plugins.v1.announce"
SERVICE_VERSION = "1.1.0"
MESSAGE_MAX = 1024  # bytes of an error message in a reply (as Imbi-Dlq-Error)

log = logging.getLogger("imbi_worker_client.host")


def keyring_from_env(env: Mapping[str, str] | None = None) -> MultiFernet | None:
    """The Fernet keys as the worker reads them (docs/credentials.md):
    ``IMBI_AUTH_ENCRYPTION_KEYS`` (comma-separated, all decrypt) plus
    ``IMBI_AUTH_ENCRYPTION_KEY`` when not listed. None when neither is set.
    Errors name the variable, never the key."""
    env = os.environ if env is None else env
    keys: list[tuple[str, str]] = []
    for i, k in enumerate((env.get("IMBI_AUTH_ENCRYPTION_KEYS") or "").split(",")):
        if k.strip():
            keys.append((f"IMBI_AUTH_ENCRYPTION_KEYS[{i + 1}]", k.strip()))
    single = (env.get("IMBI_AUTH_ENCRYPTION_KEY") or "").strip()
    if single and single not in [k for _, k in keys]:
        keys.append(("IMBI_AUTH_ENCRYPTION_KEY", single))
    if not keys:
        return None
    fernets = []
    for source, key in keys:
        try:
            fernets.append(Fernet(key))
        except Exception:
            raise ValueError(f"Invalid encryption key in {source}: want urlsafe base64 of 32 bytes") from None
    return MultiFernet(fernets)


class _Reply(Exception):
    """Ends a run with an error reply of the given class."""

    def __init__(self, cls: str, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.cls, self.message, self.retry_at = cls, message, retry_at


class PluginHost:
    """Serves ``imbi.plugins.v1.catalog`` and ``imbi.plugins.v1.run.>`` in
    queue group ``imbi-plugin-host``. At most ``concurrency`` actions run at
    once; a request beyond that is answered ``unavailable`` at once (the
    worker retries it), as is one arriving after ``stop`` began."""

    def __init__(
        self,
        nc: Client,
        loaded: LoadResult,
        *,
        concurrency: int = 16,
        max_request_bytes: int = 1 << 20,
        keyring: MultiFernet | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._nc = nc
        self._loaded = loaded
        self._concurrency = concurrency
        self._max_request = max_request_bytes
        self._keyring = keyring
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._service: Service | None = None
        self._catalog = b"[]"
        self._context_model = context_model()

    @property
    def id(self) -> str:
        return self._service.id if self._service else ""

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def catalog(self) -> list[dict[str, Any]]:
        out = []
        for p in self._loaded.plugins.values():
            for a in p.actions.values():
                entry = a.catalog_entry(p.slug, p.manifest)
                entry["package"] = p.package_name
                entry["version"] = p.package_version
                entry["host"] = self.id
                out.append(entry)
        return out

    async def start(self) -> None:
        self._service = svc = await nats.micro.add_service(
            self._nc,
            name=SERVICE_NAME,
            version=SERVICE_VERSION,
            description="Runs Imbi Python webhook plugin actions for imbi-worker",
            queue_group=QUEUE_GROUP,
        )
        self._catalog = json.dumps(self.catalog()).encode()
        await svc.add_endpoint(name="catalog", subject=CATALOG_SUBJECT, handler=self._on_catalog)
        await svc.add_endpoint(name="run", subject=RUN_PREFIX + ".>", handler=self._on_run)
        await self._nc.flush()
        handlers = [e["handler"] for e in self.catalog()]
        await self._nc.publish(
            ANNOUNCE_SUBJECT, json.dumps({"id": svc.id, "handlers": handlers}).encode()
        )
        await self._nc.flush()
        log.info("plugin host ready", extra={"service_id": svc.id, "handlers": handlers,
                                             "load_errors": self._loaded.errors})

    async def stop(self, grace: float) -> None:
        """Stop taking requests; in-flight runs get ``grace`` seconds, then
        are cancelled and answered ``unavailable`` (the worker retries)."""
        self._stopping = True
        if self._service is not None:
            await self._service.stop()
        if self._tasks:
            log.info("waiting for in-flight actions", extra={"in_flight": len(self._tasks)})
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self._nc.flush()

    async def _on_catalog(self, req: Request) -> None:
        await req.respond(self._catalog)

    async def _on_run(self, req: Request) -> None:
        # The micro endpoint calls handlers one at a time: the action runs on
        # a task of its own so requests keep flowing.
        if self._stopping:
            await _respond(req, _error("unavailable", "plugin host is shutting down"))
            return
        if len(self._tasks) >= self._concurrency:
            await _respond(req, _error("unavailable", "plugin host at capacity"))
            return
        task = asyncio.create_task(self._serve(req))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, req: Request) -> None:
        started = time.monotonic()
        try:
            reply = await self.execute(req.subject, req.data)
        except asyncio.CancelledError:
            reply = _error("unavailable", "plugin host stopped the action (shutdown grace expired)")
        log.info("action finished", extra={
            "subject": req.subject, "status": reply["status"], "class": reply.get("class"),
            "duration_ms": int((time.monotonic() - started) * 1000)})
        try:
            await _respond(req, reply)
        except Exception as exc:  # the connection went away: the worker times out and retries
            log.warning("reply failed", extra={"error": type(exc).__name__})

    async def execute(self, subject: str, body: bytes) -> dict[str, Any]:
        """Run one request; returns the reply document (never raises but
        for cancellation)."""
        creds: dict[str, str] = {}
        try:
            return await self._execute(subject, body, creds)
        except _Reply as r:
            return _error(r.cls, _scrub(r.message, creds), r.retry_at)

    async def _execute(self, subject: str, body: bytes, creds: dict[str, str]) -> dict[str, Any]:
        if len(body) > self._max_request:
            raise _Reply("invalid_event", f"request of {len(body)} bytes exceeds {self._max_request}")
        tokens = subject.split(".")
        if len(tokens) != 6:
            raise _Reply("invalid_handler", f"subject {subject!r} is not {RUN_PREFIX}.<plugin>.<action>")
        slug, name = tokens[4], tokens[5]
        plugin = self._loaded.plugins.get(slug)
        action = plugin.actions.get(name) if plugin else None
        if action is None:
            raise _Reply("unknown_handler", f"this host has no action {slug}#{name}")
        try:
            req = json.loads(body)
            data = req["data"]
            rule = data["rule"]
            deadline = datetime.fromisoformat(str(req["deadline"]).replace("Z", "+00:00"))
        except Exception as exc:
            raise _Reply("invalid_event", f"malformed run request: {type(exc).__name__}") from None

        raw_cfg = rule.get("handler_config")
        try:
            if isinstance(raw_cfg, str):
                config = action.config_model.model_validate_json(raw_cfg or "{}")
            else:
                config = action.config_model.model_validate(raw_cfg if raw_cfg is not None else {})
        except ValidationError as exc:
            raise _Reply("invalid_config", f"handler_config for action {name!r} is invalid: {exc}") from None

        token = req.get("credentials")
        if token:
            creds.update(self._decrypt(token))
        try:
            ctx = build_context(data.get("context") or {}, self._context_model)
        except ValidationError as exc:
            raise _Reply("invalid_event", f"context is invalid: {exc.error_count()} errors") from None

        remaining = deadline.timestamp() - time.time()
        if remaining <= 0:
            raise _Reply("timeout", "deadline passed before the action started")
        kwargs = {
            "ctx": ctx,
            "credentials": dict(creds),
            "external_identifier": data.get("external_identifier") or "",
            "action_config": config,
            "event": data.get("event") or {},
        }
        fn = action.callable
        try:
            if inspect.iscoroutinefunction(fn):
                await asyncio.wait_for(fn(**kwargs), remaining)
            else:
                await asyncio.wait_for(asyncio.to_thread(fn, **kwargs), remaining)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            cls, retry_at = classify(exc)
            text = str(exc) or type(exc).__name__
            if cls == "timeout" and isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
                text = f"action exceeded its deadline ({remaining:.3f}s)"
            raise _Reply(cls, text, retry_at) from None
        return {"status": "ok"}

    def _decrypt(self, token: str) -> dict[str, str]:
        if self._keyring is None:
            raise _Reply("credentials_missing",
                         "plugin host has no IMBI_AUTH_ENCRYPTION_KEY to read the credentials")
        try:
            doc = json.loads(self._keyring.decrypt(token.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise _Reply("credentials_missing",
                         "credentials token does not decrypt with the host's keys") from None
        if not isinstance(doc, dict):
            raise _Reply("credentials_missing", "credentials token is not a JSON object")
        return {str(k): str(v) for k, v in doc.items() if v is not None}


def _scrub(text: str, creds: Mapping[str, str]) -> str:
    for v in creds.values():
        if len(v) >= 4:
            text = text.replace(v, "[redacted]")
    raw = text.encode()
    if len(raw) > MESSAGE_MAX:
        text = raw[: MESSAGE_MAX - 3].decode(errors="ignore") + "..."
    return text


def _error(cls: str, message: str, retry_at: float | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"status": "error", "class": cls, "message": message}
    if retry_at is not None:
        doc["retry_at"] = retry_at
    return doc


async def _respond(req: Request, doc: dict[str, Any]) -> None:
    await req.respond(json.dumps(doc).encode())
