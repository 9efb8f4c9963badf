"""Reading outcome events (wire contract v1.1 §C) from the worker.

The worker publishes one CloudEvent (``io.imbi.webhook.action.outcome.v1``)
per settle decision to the ``IMBI_OUTCOMES`` stream. :class:`OutcomeReader`
is an async iterator over a **durable** pull consumer of that stream: a
gateway restarted mid-way resumes where it stopped, and an outcome is acked
only after the loop body that received it finished, so one that was not
written (the body raised, the process died) is delivered again.

>>> async with await OutcomeReader.connect(url, durable="imbi-gateway") as reader:
...     async for outcome in reader:
...         await store(outcome.history_row())
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

__all__ = [
    "DEFAULT_OUTCOMES_PREFIX",
    "DEFAULT_OUTCOMES_STREAM",
    "OUTCOME_EVENT_TYPE",
    "OUTCOME_STATUSES",
    "TERMINAL_STATUSES",
    "Outcome",
    "OutcomeReader",
]

OUTCOME_EVENT_TYPE = "io.imbi.webhook.action.outcome.v1"
DEFAULT_OUTCOMES_STREAM = "IMBI_OUTCOMES"
DEFAULT_OUTCOMES_PREFIX = "imbi.outcomes"
OUTCOME_STATUSES = ("succeeded", "retrying", "dead_lettered", "deduplicated", "paused")
#: No later outcome of the same action follows one of these (but for a
#: replay of its dead letter, which starts over).
TERMINAL_STATUSES = frozenset({"succeeded", "dead_lettered", "deduplicated"})

#: How the gateway's history ``status`` reads each outcome status.
HISTORY_STATUS = {
    "succeeded": "success",
    "deduplicated": "success",  # the action succeeded on an earlier delivery
    "dead_lettered": "failed",
    "retrying": "pending",
    "paused": "pending",
}


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Outcome:
    """One outcome event: the CloudEvent's id and time and its data."""

    id: str
    time: datetime
    action_id: str
    handler: str
    status: str
    attempt: int
    duration_ms: int
    worker: str
    reason: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    dead_letter: Mapping[str, Any] | None = None
    rule: Mapping[str, Any] | None = None
    chain: Mapping[str, Any] | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    event: Mapping[str, Any] = field(default_factory=dict)
    subject: str = ""
    #: The event's sequence in the outcome stream (0 when not read from it).
    seq: int = 0

    @classmethod
    def from_event(cls, ev: Mapping[str, Any], subject: str = "", seq: int = 0) -> Outcome:
        """Build from the structured CloudEvent (a parsed JSON object)."""
        if ev.get("type") != OUTCOME_EVENT_TYPE:
            raise ValueError(f"not an outcome event: type {ev.get('type')!r}")
        d = ev["data"]
        t = _time(ev["time"])
        assert t is not None
        return cls(
            id=ev["id"],
            time=t,
            action_id=d["action_id"],
            handler=d["handler"],
            status=d["status"],
            attempt=int(d["attempt"]),
            duration_ms=int(d["duration_ms"]),
            worker=d.get("worker", ""),
            reason=d.get("reason"),
            error=d.get("error"),
            next_attempt_at=_time(d.get("next_attempt_at")),
            dead_letter=d.get("dead_letter"),
            rule=d.get("rule"),
            chain=d.get("chain"),
            context=d.get("context") or {},
            event=d.get("event") or {},
            subject=subject,
            seq=seq,
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def history_row(self) -> dict[str, Any]:
        """The gateway's webhook-history row for this outcome:
        ``{handler, status, error, duration_ms}`` plus the keys to upsert
        it by (``action_id``) and order it (``attempt``, ``time``).

        ``status`` is ``success`` (succeeded, deduplicated), ``failed``
        (dead_lettered) or ``pending`` (retrying, paused); ``error`` is
        ``"<reason>: <redacted error>"`` when there is one."""
        error = None
        if self.reason:
            error = f"{self.reason}: {self.error}" if self.error else self.reason
        return {
            "action_id": self.action_id,
            "handler": self.handler,
            "status": HISTORY_STATUS.get(self.status, self.status),
            "error": error,
            "duration_ms": self.duration_ms,
            "attempt": self.attempt,
            "outcome": self.status,
            "time": self.time.isoformat(),
            "project_id": self.context.get("project_id"),
            "project_slug": self.context.get("project_slug"),
            "webhook_id": self.event.get("webhook_id"),
        }


class OutcomeReader:
    """Async iterator over a durable pull consumer of the outcome stream.

    Each outcome is acked when the loop asks for the next one, i.e. once
    the body that received it finished; leaving the loop with an exception
    leaves it unacked (redelivered after ``ack_wait``). ``idle_timeout``
    ends the iteration after that many seconds without an outcome (None:
    iterate until cancelled). Events that are not outcome events are acked
    and skipped.
    """

    def __init__(
        self,
        nc: NATS,
        *,
        durable: str = "imbi-gateway-outcomes",
        stream: str = DEFAULT_OUTCOMES_STREAM,
        subject: str = DEFAULT_OUTCOMES_PREFIX + ".>",
        batch: int = 64,
        fetch_timeout: float = 1.0,
        ack_wait: float = 30.0,
        idle_timeout: float | None = None,
        owns_connection: bool = False,
    ) -> None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self._nc = nc
        self._js = nc.jetstream()
        self._durable = durable
        self._stream = stream
        self._subject = subject
        self._batch = batch
        self._fetch_timeout = fetch_timeout
        self._ack_wait = ack_wait
        self._idle_timeout = idle_timeout
        self._owns = owns_connection
        self._sub: Any = None

    @classmethod
    async def connect(cls, servers: str | list[str], **kwargs: Any) -> OutcomeReader:
        """Connect to NATS and return a reader that closes the connection
        with itself."""
        nc = await nats.connect(servers)
        return cls(nc, owns_connection=True, **kwargs)

    async def __aenter__(self) -> OutcomeReader:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # the connection may be gone already
                pass
            self._sub = None
        if self._owns and not self._nc.is_closed:
            await self._nc.close()

    async def _subscription(self) -> Any:
        if self._sub is None:
            self._sub = await self._js.pull_subscribe(
                self._subject,
                durable=self._durable,
                stream=self._stream,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self._ack_wait,
                    deliver_policy=DeliverPolicy.ALL,
                    max_ack_pending=max(self._batch * 4, 256),
                ),
            )
        return self._sub

    def __aiter__(self) -> AsyncIterator[Outcome]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Outcome]:
        sub = await self._subscription()
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while True:
            try:
                msgs: list[Msg] = await sub.fetch(self._batch, timeout=self._fetch_timeout)
            except TimeoutError:
                # nats.errors.TimeoutError (a TimeoutError), or a bare
                # asyncio.TimeoutError (TimeoutError itself) when fetch's
                # deadline ran out between its no-wait probe and its
                # waiting pull, as on a loaded host: no outcome yet.
                msgs = []
            if not msgs:
                if self._idle_timeout is not None and loop.time() - idle_since >= self._idle_timeout:
                    return
                continue
            idle_since = loop.time()
            for msg in msgs:
                try:
                    outcome = Outcome.from_event(
                        json.loads(msg.data), msg.subject, msg.metadata.sequence.stream
                    )
                except (ValueError, KeyError, TypeError):
                    await msg.ack()  # not an outcome event: nothing to record
                    continue
                yield outcome  # the body runs here; an exception leaves msg unacked
                await msg.ack()
