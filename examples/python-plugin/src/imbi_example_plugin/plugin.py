"""Two webhook plugins written to imbi_common.plugins' interface.

With imbi-common installed (Python >= 3.14) they subclass its
``WebhookActionPlugin`` and use its ``PluginManifest``, ``ActionDescriptor``
and errors; without it they are plain classes of the same shape and raise
imbi_worker_client.host's errors of the same names. The host accepts both.

- ``example-py`` declares no credentials. Its actions: ``record`` (appends
  what it received to ``config.record_to``), ``rate_limited`` (raises
  PluginRateLimited with ``retry_at`` = now + ``config.seconds``),
  ``needs_credentials`` (raises PluginCredentialsMissing), ``unavailable``,
  ``slow`` (sleeps ``config.seconds``; ``timeout_seconds`` 10) and ``boom``
  (an unexpected error) and ``noop`` (does nothing: the smallest action,
  whose config mirrors the Go benchmark's ``bench#noop``; `make bench-peers`
  measures the host with it). With IMBI_EXAMPLE_PLUGIN_VARIANT=2 the catalog is
  the plugin's next version: ``retired`` is gone and ``added`` is new.
- ``example-py-secure`` requires an ``api_token`` credential; ``use_token``
  records which token it was given (a test canary, never a real secret).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

try:  # the real library, when installed
    from imbi_common.plugins import (  # type: ignore[import-not-found]
        ActionDescriptor,
        PluginCredentialsMissing,
        PluginManifest,
        PluginRateLimited,
        PluginUnavailableError,
        WebhookActionPlugin,
    )

    HAVE_IMBI_COMMON = True
except ImportError:
    from imbi_worker_client.host.errors import (
        PluginCredentialsMissing,
        PluginRateLimited,
        PluginUnavailableError,
    )

    HAVE_IMBI_COMMON = False

    class WebhookActionPlugin:  # type: ignore[no-redef]
        """Stand-in base of the same shape."""

    @dataclass(frozen=True)
    class ActionDescriptor:  # type: ignore[no-redef]
        name: str
        label: str
        callable: Any
        config_model: type[BaseModel]
        description: str | None = None

    def PluginManifest(**kw: Any) -> dict[str, Any]:  # type: ignore[no-redef]  # noqa: N802
        return kw


class RecordConfig(BaseModel):
    record_to: str
    note: str = ""


class DelayConfig(BaseModel):
    seconds: float = 1.0
    record_to: str | None = None


class EmptyConfig(BaseModel):
    pass


class NoopConfig(BaseModel):
    label: str = Field(min_length=1)


def _record(path: str | None, doc: dict[str, Any]) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(doc) + "\n")


async def record(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
                 action_config: RecordConfig, event: dict[str, Any]) -> None:
    _record(action_config.record_to, {
        "action": "record", "pid": os.getpid(), "note": action_config.note,
        "project_slug": ctx.project_slug, "external_identifier": external_identifier,
        "event_type": event.get("type"), "credential_names": sorted(credentials),
    })


async def rate_limited(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
                       action_config: DelayConfig, event: dict[str, Any]) -> None:
    _record(action_config.record_to, {"action": "rate_limited", "pid": os.getpid()})
    raise PluginRateLimited(time.time() + action_config.seconds)


async def needs_credentials(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
                            action_config: EmptyConfig, event: dict[str, Any]) -> None:
    raise PluginCredentialsMissing("example-py has no token for this project")


async def unavailable(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
                      action_config: EmptyConfig, event: dict[str, Any]) -> None:
    raise PluginUnavailableError("upstream is down")


async def slow(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
               action_config: DelayConfig, event: dict[str, Any]) -> None:
    _record(action_config.record_to, {"action": "slow", "phase": "start", "pid": os.getpid()})
    await asyncio.sleep(action_config.seconds)
    _record(action_config.record_to, {"action": "slow", "phase": "done", "pid": os.getpid()})


async def boom(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
               action_config: EmptyConfig, event: dict[str, Any]) -> None:
    raise RuntimeError("something unexpected")


async def noop(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
               action_config: NoopConfig, event: dict[str, Any]) -> None:
    """Does nothing (the benchmark's remote action)."""


async def use_token(*, ctx: Any, credentials: dict[str, str], external_identifier: str,
                    action_config: RecordConfig, event: dict[str, Any]) -> None:
    token = credentials.get("api_token")
    if not token:
        raise PluginCredentialsMissing("api_token is required")
    _record(action_config.record_to, {"action": "use_token", "api_token": token})


def _descriptor(name: str, label: str, fn: Any, model: type[BaseModel],
                timeout: float | None = None) -> Any:
    d = ActionDescriptor(name=name, label=label, callable=fn, config_model=model,
                         description=(fn.__doc__ or None))
    if timeout is not None and not HAVE_IMBI_COMMON:
        object.__setattr__(d, "timeout_seconds", timeout)
    return d


class ExamplePlugin(WebhookActionPlugin):
    manifest = PluginManifest(slug="example-py", name="Example (Python)", plugin_type="webhook",
                              description="imbi-worker's example Python webhook plugin")

    @classmethod
    def actions(cls) -> list[Any]:
        out = [
            _descriptor("record", "Record the call", record, RecordConfig),
            _descriptor("rate_limited", "Rate limited", rate_limited, DelayConfig),
            _descriptor("needs_credentials", "Credentials missing", needs_credentials, EmptyConfig),
            _descriptor("unavailable", "Upstream unavailable", unavailable, EmptyConfig),
            _descriptor("slow", "Sleep", slow, DelayConfig, timeout=10.0),
            _descriptor("boom", "Unexpected error", boom, EmptyConfig),
            _descriptor("noop", "No-op", noop, NoopConfig),
        ]
        if os.environ.get("IMBI_EXAMPLE_PLUGIN_VARIANT") == "2":
            out.append(_descriptor("added", "Added in version 2", record, RecordConfig))
        else:
            out.append(_descriptor("retired", "Removed in version 2", record, RecordConfig))
        return out


class SecurePlugin(WebhookActionPlugin):
    manifest = PluginManifest(
        slug="example-py-secure", name="Example with credentials (Python)", plugin_type="webhook",
        credentials=[{"name": "api_token", "label": "API token", "required": True}],
    )

    @classmethod
    def actions(cls) -> list[Any]:
        return [_descriptor("use_token", "Use the API token", use_token, RecordConfig)]
