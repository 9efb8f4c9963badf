"""JSON logs with the repository's redaction list (testdata/schemas/)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from ..redaction import REDACTED, is_sensitive_header

__all__ = ["JSONFormatter", "configure", "redact"]

_STD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_MAX_DEPTH = 8
_MAX_FIELD = 4096  # bytes of one logged string


def redact(value: Any, depth: int = 0) -> Any:
    """A copy with values under sensitive names (the shared header list and
    anything named ``credentials``) replaced by ``[redacted]``."""
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {
            k: (REDACTED if _sensitive(str(k)) else redact(v, depth + 1)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v, depth + 1) for v in value]
    if isinstance(value, str) and len(value) > _MAX_FIELD:
        return value[:_MAX_FIELD] + "…"
    return value


def _sensitive(name: str) -> bool:
    return is_sensitive_header(name) or name.lower() in {"credentials", "token", "password"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in record.__dict__.items():
            if k not in _STD and not k.startswith("_"):
                doc[k] = v
        if record.exc_info and record.exc_info[0] is not None:
            doc["exc_type"] = record.exc_info[0].__name__
        return json.dumps(redact(doc), default=str)


def configure(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
