"""Plugin exceptions and their wire-contract §4 classes (§D).

A plugin raises the ``imbi_common.plugins`` exceptions when that package is
installed; otherwise it may raise the classes below, which have the same
names and constructor shapes. The host maps by class *name* along the MRO,
so either family maps the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = [
    "PluginCredentialsMissing",
    "PluginRateLimited",
    "PluginTimeoutError",
    "PluginUnavailableError",
    "classify",
]


class PluginCredentialsMissing(Exception):
    """Required credentials are absent (permanent: ``credentials_missing``)."""


class PluginTimeoutError(Exception):
    """A plugin call exceeded its deadline (retryable: ``timeout``)."""


class PluginUnavailableError(Exception):
    """The plugin or its upstream cannot be reached now (retryable: ``unavailable``)."""


class PluginRateLimited(Exception):
    """The upstream's rate limit is exhausted; ``retry_at`` is a Unix epoch
    (``time.time()``-comparable) at which work may resume (``rate_limited``)."""

    def __init__(self, retry_at: float, message: str = "") -> None:
        self.retry_at: float = retry_at
        super().__init__(message or f"Rate limited until epoch {retry_at:.0f}")


_BY_NAME = {
    "PluginCredentialsMissing": "credentials_missing",
    "PluginTimeoutError": "timeout",
    "PluginRateLimited": "rate_limited",
    "PluginUnavailableError": "unavailable",
    "ValidationError": "invalid_config",
}


def classify(exc: BaseException) -> tuple[str, float | None]:
    """The §4 reason code for an exception a plugin raised, and the
    ``retry_at`` epoch for ``rate_limited`` (None otherwise)."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout", None
    for cls in type(exc).__mro__:
        code = _BY_NAME.get(cls.__name__)
        if code is None:
            continue
        if code == "invalid_config" and not _is_pydantic(cls):
            continue
        if code == "rate_limited":
            return code, _retry_at(exc)
        return code, None
    return "action_failed", None


def _is_pydantic(cls: type) -> bool:
    return cls.__module__.startswith("pydantic")


def _retry_at(exc: Any) -> float | None:
    value = getattr(exc, "retry_at", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    ts = getattr(value, "timestamp", None)  # a datetime
    if callable(ts):
        return float(ts())
    return None
