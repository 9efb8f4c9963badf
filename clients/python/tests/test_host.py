"""imbi-plugin-host (wire contract §D): discovery, error classes, Fernet
keys, and the NATS service on a real nats-server, including nats-py's own
service discovery ($SRV.PING / $SRV.INFO)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import nats
import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel

from imbi_worker_client.host import (
    PluginCredentialsMissing,
    PluginHost,
    PluginRateLimited,
    PluginTimeoutError,
    PluginUnavailableError,
    classify,
    keyring_from_env,
    load_plugins,
)
from imbi_worker_client.host.logs import JSONFormatter


class _Cfg(BaseModel):
    n: int


@pytest.mark.parametrize(
    ("exc", "want"),
    [
        (PluginCredentialsMissing("x"), ("credentials_missing", None)),
        (PluginTimeoutError("x"), ("timeout", None)),
        (asyncio.TimeoutError(), ("timeout", None)),
        (PluginRateLimited(1234.5), ("rate_limited", 1234.5)),
        (PluginUnavailableError("x"), ("unavailable", None)),
        (RuntimeError("x"), ("action_failed", None)),
        (type("ValidationError", (Exception,), {})("not pydantic"), ("action_failed", None)),
    ],
)
def test_classify(exc: BaseException, want: tuple[str, float | None]) -> None:
    assert classify(exc) == want


def test_classify_pydantic_validation_error() -> None:
    with pytest.raises(Exception) as info:
        _Cfg.model_validate({"n": "x"})
    assert classify(info.value) == ("invalid_config", None)


def test_keyring_from_env_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = Fernet(old.encode()).encrypt(b"{}")
    kr = keyring_from_env({"IMBI_AUTH_ENCRYPTION_KEYS": f"{new},{old}"})
    assert kr is not None and kr.decrypt(token) == b"{}"
    kr = keyring_from_env({"IMBI_AUTH_ENCRYPTION_KEYS": new, "IMBI_AUTH_ENCRYPTION_KEY": old})
    assert kr is not None and kr.decrypt(token) == b"{}"
    assert keyring_from_env({}) is None
    with pytest.raises(ValueError, match=r"IMBI_AUTH_ENCRYPTION_KEY\b") as info:
        keyring_from_env({"IMBI_AUTH_ENCRYPTION_KEY": "short-secret"})
    assert "short-secret" not in str(info.value)


def test_entry_point_discovery() -> None:
    res = load_plugins()
    assert res.errors == {}
    assert {"example-py", "example-py-secure"} <= set(res.plugins)
    p = res.plugins["example-py"]
    assert p.package_name == "imbi-example-plugin"
    assert "record" in p.actions and p.actions["slow"].timeout_seconds == 10.0


class _EP:
    def __init__(self, name: str, obj: Any) -> None:
        self.name, self._obj, self.dist = name, obj, None

    def load(self) -> Any:
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_shape_errors_are_per_entry_point() -> None:
    class NoActions:
        manifest = {"slug": "a", "name": "A", "plugin_type": "webhook"}

    class Logs:
        manifest = {"slug": "l", "name": "L", "plugin_type": "logs"}

    class BadModel:
        manifest = {"slug": "b", "name": "B", "plugin_type": "webhook"}

        @classmethod
        def actions(cls) -> list[Any]:
            d = type("D", (), {"name": "x", "label": "X", "callable": print, "config_model": dict})
            return [d]

    res = load_plugins([_EP("boom", ImportError("nope")), _EP("noact", NoActions),
                        _EP("logs", Logs), _EP("bad", BadModel)])
    assert res.plugins == {}
    assert res.errors["boom"] == "nope"
    assert "actions()" in res.errors["noact"]
    assert "pydantic" in res.errors["bad"]
    assert "logs" not in res.errors  # other plugin types are not the host's


def _request(handler_config: Any, *, seconds: float = 5, token: str | None = None) -> bytes:
    deadline = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    doc: dict[str, Any] = {
        "action_id": "d-1.0", "attempt": 1, "deadline": deadline.isoformat(),
        "data": {"rule": {"handler": "x", "handler_config": handler_config},
                 "context": {"project_id": "p", "project_slug": "s", "org_slug": "o",
                             "team_slug": None},
                 "external_identifier": "e", "event": {"type": "push"}},
    }
    if token:
        doc["credentials"] = token
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("subject", "body", "want"),
    [
        ("imbi.plugins.v1.run.example-py.record", {"note": "missing record_to"}, "invalid_config"),
        ("imbi.plugins.v1.run.example-py.record", '{"record_to": 1}', "invalid_config"),
        ("imbi.plugins.v1.run.example-py.nope", {}, "unknown_handler"),
        ("imbi.plugins.v1.run.example-py.noop", {"label": ""}, "invalid_config"),
        ("imbi.plugins.v1.run.example-py.boom", {}, "action_failed"),
        ("imbi.plugins.v1.run.example-py.needs_credentials", {}, "credentials_missing"),
        ("imbi.plugins.v1.run.example-py-secure.use_token", {"record_to": "/dev/null"},
         "credentials_missing"),
    ],
)
async def test_execute_classes(subject: str, body: Any, want: str) -> None:
    host = PluginHost(None, load_plugins())  # type: ignore[arg-type]
    reply = await host.execute(subject, _request(body))
    assert reply["status"] == "error" and reply["class"] == want, reply


async def test_execute_noop() -> None:
    # make bench-peers' remote action: the Go benchmark's handler_config.
    host = PluginHost(None, load_plugins())  # type: ignore[arg-type]
    reply = await host.execute("imbi.plugins.v1.run.example-py.noop", _request({"label": "bench"}))
    assert reply == {"status": "ok"}


async def test_context_model_is_resolved_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # A failed import of imbi_common is not cached by Python: resolving the
    # PluginContext model per run searched sys.path on every message.
    from imbi_worker_client.host import context

    asked: list[str] = []
    real = context.importlib.import_module

    def counting(name: str, *a: Any) -> Any:
        asked.append(name)
        return real(name, *a)

    loaded = load_plugins()
    monkeypatch.setattr(context.importlib, "import_module", counting)
    host = PluginHost(None, loaded)  # type: ignore[arg-type]
    for _ in range(3):
        reply = await host.execute("imbi.plugins.v1.run.example-py.noop",
                                   _request({"label": "bench"}))
        assert reply == {"status": "ok"}
    assert asked.count("imbi_common.plugins") == 1, asked


async def test_execute_deadline_and_rate_limit(tmp_path: Path) -> None:
    host = PluginHost(None, load_plugins())  # type: ignore[arg-type]
    slow = await host.execute("imbi.plugins.v1.run.example-py.slow",
                              _request({"seconds": 5}, seconds=0.2))
    assert slow["class"] == "timeout"
    before = time.time()
    rl = await host.execute("imbi.plugins.v1.run.example-py.rate_limited",
                            _request({"seconds": 30}))
    assert rl["class"] == "rate_limited" and rl["retry_at"] >= before + 30


async def test_credentials_token_and_scrubbed_errors(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    host = PluginHost(None, load_plugins(), keyring=keyring_from_env(  # type: ignore[arg-type]
        {"IMBI_AUTH_ENCRYPTION_KEY": key.decode()}))
    rec = tmp_path / "r.jsonl"
    token = Fernet(key).encrypt(json.dumps({"api_token": "tok-canary"}).encode()).decode()
    ok = await host.execute("imbi.plugins.v1.run.example-py-secure.use_token",
                            _request({"record_to": str(rec)}, token=token))
    assert ok == {"status": "ok"}
    assert json.loads(rec.read_text())["api_token"] == "tok-canary"
    wrong = Fernet(Fernet.generate_key()).encrypt(b"{}").decode()
    bad = await host.execute("imbi.plugins.v1.run.example-py-secure.use_token",
                             _request({"record_to": str(rec)}, token=wrong))
    assert bad["class"] == "credentials_missing"


async def test_request_size_is_bounded() -> None:
    host = PluginHost(None, load_plugins(), max_request_bytes=100)  # type: ignore[arg-type]
    reply = await host.execute("imbi.plugins.v1.run.example-py.boom", _request({}))
    assert reply["class"] == "invalid_event"


def test_json_logs_redact() -> None:
    import logging

    rec = logging.makeLogRecord({"msg": "m", "headers": {"authorization": "Bearer x", "a": "b"},
                                 "credentials": {"api_token": "t"}})
    doc = json.loads(JSONFormatter().format(rec))
    assert doc["headers"] == {"authorization": "[redacted]", "a": "b"}
    assert doc["credentials"] == "[redacted]"


async def test_service_discovery_and_concurrency_bound(natsd_url: str, tmp_path: Path) -> None:
    nc = await nats.connect(natsd_url)
    host = PluginHost(nc, load_plugins(), concurrency=1)
    announced: list[Any] = []

    async def on_announce(m: Any) -> None:
        announced.append(json.loads(m.data))

    sub = await nc.subscribe("imbi.plugins.v1.announce", cb=on_announce)
    await host.start()
    try:
        ping = json.loads((await nc.request("$SRV.PING.imbi-plugin-host", b"", timeout=2)).data)
        assert ping["name"] == "imbi-plugin-host" and ping["id"] == host.id
        info = json.loads((await nc.request(f"$SRV.INFO.imbi-plugin-host.{host.id}", b"",
                                            timeout=2)).data)
        subjects = {e["subject"]: e["queue_group"] for e in info["endpoints"]}
        assert subjects == {"imbi.plugins.v1.catalog": "imbi-plugin-host",
                            "imbi.plugins.v1.run.>": "imbi-plugin-host"}
        catalog = json.loads((await nc.request("imbi.plugins.v1.catalog", b"", timeout=2)).data)
        assert "example-py#record" in {e["handler"] for e in catalog}
        await asyncio.sleep(0.1)
        assert announced and announced[0]["id"] == host.id

        # concurrency 1: a second request while one runs is 'unavailable'
        slow = asyncio.create_task(nc.request("imbi.plugins.v1.run.example-py.slow",
                                              _request({"seconds": 1}), timeout=5))
        await asyncio.sleep(0.2)
        busy = json.loads((await nc.request("imbi.plugins.v1.run.example-py.boom",
                                            _request({}), timeout=2)).data)
        assert busy["class"] == "unavailable" and "capacity" in busy["message"]
        assert json.loads((await slow).data) == {"status": "ok"}
    finally:
        await sub.unsubscribe()
        await host.stop(1)
        await nc.close()


async def test_error_messages_scrub_credentials() -> None:
    class Cfg(BaseModel):
        pass

    async def leak(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
                   action_config: Cfg, event: dict[str, Any]) -> None:
        raise RuntimeError(f"upstream said no to {credentials['api_token']}")

    class Leaky:
        manifest = {"slug": "leaky", "name": "L", "plugin_type": "webhook",
                    "credentials": [{"name": "api_token", "label": "T"}]}

        @classmethod
        def actions(cls) -> list[Any]:
            d = type("D", (), {"name": "go", "label": "Go", "description": None,
                               "callable": leak, "config_model": Cfg})
            return [d]

    key = Fernet.generate_key()
    loaded = load_plugins([_EP("leaky", Leaky)])
    host = PluginHost(None, loaded, keyring=keyring_from_env(  # type: ignore[arg-type]
        {"IMBI_AUTH_ENCRYPTION_KEY": key.decode()}))
    token = Fernet(key).encrypt(json.dumps({"api_token": "s3cr3t-canary"}).encode()).decode()
    reply = await host.execute("imbi.plugins.v1.run.leaky.go", _request({}, token=token))
    assert reply["class"] == "action_failed"
    assert "s3cr3t-canary" not in reply["message"] and "[redacted]" in reply["message"]
