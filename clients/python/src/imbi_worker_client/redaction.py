"""Redaction of sensitive webhook headers (plugins-spec §6.5) and body keys.

The list is ``testdata/schemas/sensitive-headers.json``, the same file the
Go worker embeds (wire.IsSensitiveName, internal/redact): one list, both
sides, for header names and JSON body keys alike. Names compare
case-insensitively and with ``-`` and ``_`` equal (``access_token`` is
``Access-Token``), as in Go.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .schemas import load_json

__all__ = [
    "REDACTED",
    "is_sensitive_header",
    "is_sensitive_name",
    "redact_headers",
    "redact_json",
    "sensitive_headers",
]

_FILE = "sensitive-headers.json"


def _load() -> tuple[frozenset[str], str]:
    doc = load_json(_FILE)
    names = doc.get("headers")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{_FILE}: 'headers' must be a list of strings")
    return frozenset(n.lower() for n in names), str(doc.get("replacement", "[redacted]"))


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-")


_SENSITIVE, REDACTED = _load()
_NORMALIZED = frozenset(_normalize(n) for n in _SENSITIVE)


def sensitive_headers() -> frozenset[str]:
    """The lower-case header names whose values are redacted."""
    return _SENSITIVE


def is_sensitive_name(name: str) -> bool:
    """Whether a header's or a JSON body key's value must never leave the
    gateway. Names compare case-insensitively, ``-`` and ``_`` alike."""
    return _normalize(name) in _NORMALIZED


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value must never leave the gateway
    (:func:`is_sensitive_name`)."""
    return is_sensitive_name(name)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with sensitive values replaced by
    ``"[redacted]"``. Names are kept as given; the input is not modified."""
    return {k: (REDACTED if is_sensitive_header(k) else v) for k, v in headers.items()}


def redact_json(value: Any) -> Any:
    """A copy of a decoded JSON value with the value of every sensitive key,
    at any depth, replaced by ``"[redacted]"``. The input is not modified."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if is_sensitive_name(k) else redact_json(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_json(v) for v in value]
    return value
