"""Optional OpenTelemetry integration.

opentelemetry-api is not a dependency: when it is importable, every publish
runs in a PRODUCER span and the active trace context goes on the wire as
``traceparent``/``tracestate`` (CloudEvents distributed-tracing extension
and NATS headers), so the worker's spans join the gateway's trace. Without
it, or without an active span, nothing is added.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["TRACE_HEADERS", "current_trace_headers", "producer_span"]

#: The W3C trace-context keys, in the order they are set.
TRACE_HEADERS = ("traceparent", "tracestate")

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from opentelemetry import trace as _trace
    from opentelemetry.trace.propagation.tracecontext import (
        TraceContextTextMapPropagator as _TraceContext,
    )
except ImportError:  # pragma: no cover
    _trace = None  # type: ignore[assignment]
    _TraceContext = None  # type: ignore[assignment,misc]


def current_trace_headers() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the active span, or ``{}``.

    The W3C propagator is used directly, not the global one: the contract
    wants traceparent whenever a span is active, whatever propagators the
    process configured (mirrors the Go publisher).
    """
    if _trace is None or _TraceContext is None:
        return {}
    if not _trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _TraceContext().inject(carrier)
    return {k: carrier[k] for k in TRACE_HEADERS if carrier.get(k)}


@contextlib.contextmanager
def producer_span(subject: str, event_id: str) -> Iterator[None]:
    """A PRODUCER span around one publish (messaging semantic conventions).

    With only the API installed (no SDK) the span is non-recording and
    carries its parent's context, so traceparent still names the caller's
    span.
    """
    if _trace is None:
        yield
        return
    tracer = _trace.get_tracer("imbi_worker_client")
    with tracer.start_as_current_span(
        f"publish {subject}",
        kind=_trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": subject,
            "messaging.message.id": event_id,
        },
    ):
        yield
