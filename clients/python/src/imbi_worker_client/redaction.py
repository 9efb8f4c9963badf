"""Redaction of sensitive webhook headers (plugins-spec §6.5).

The list is ``testdata/schemas/sensitive-headers.json``, the same file the
Go worker embeds (wire.SensitiveHeaders): one list, both sides.
"""

from __future__ import annotations

from collections.abc import Mapping

from .schemas import load_json

__all__ = ["REDACTED", "is_sensitive_header", "redact_headers", "sensitive_headers"]

_FILE = "sensitive-headers.json"


def _load() -> tuple[frozenset[str], str]:
    doc = load_json(_FILE)
    names = doc.get("headers")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{_FILE}: 'headers' must be a list of strings")
    return frozenset(n.lower() for n in names), str(doc.get("replacement", "[redacted]"))


_SENSITIVE, REDACTED = _load()


def sensitive_headers() -> frozenset[str]:
    """The lower-case header names whose values are redacted."""
    return _SENSITIVE


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value must never leave the gateway.
    Names compare case-insensitively (HTTP header names do)."""
    return name.lower() in _SENSITIVE


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with sensitive values replaced by
    ``"[redacted]"``. Names are kept as given; the input is not modified."""
    return {k: (REDACTED if is_sensitive_header(k) else v) for k, v in headers.items()}
