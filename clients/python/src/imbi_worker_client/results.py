"""Per-event and per-rule publish outcomes.

A leaf module (standard library only): :mod:`.errors` names
:class:`RuleResult` in :class:`~.errors.DeliveryPublishError` and
:mod:`.publisher` builds both, so keeping them here leaves the package's
import graph without a cycle. Import them from the package root or from
:mod:`.publisher` as before.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PublishResult", "RuleResult"]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """The JetStream acknowledgement of one event."""

    event_id: str
    subject: str
    stream: str
    seq: int
    #: True when the server already had this ``Nats-Msg-Id`` inside its
    #: duplicate window and dropped the copy (not an error: the event is
    #: queued once).
    duplicate: bool


@dataclass(frozen=True, slots=True)
class RuleResult:
    """Outcome of one rule of a delivery: ``result`` xor ``error``."""

    ordinal: int
    handler: str
    event_id: str | None
    result: PublishResult | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
