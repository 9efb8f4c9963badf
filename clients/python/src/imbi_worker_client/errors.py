"""Typed errors of the imbi-worker publisher client.

Two families, so callers can tell "fix the input" from "try again":

* :class:`InvalidActionError` (a ``ValueError``): the input cannot become a
  wire-contract CloudEvent, so nothing was published. Retrying does not help.
* :class:`PublishError`: the server did not acknowledge the publish. The
  message may or may not be stored; publishing it again with the same
  ``Nats-Msg-Id`` inside the stream's duplicate window (2 minutes) is safe,
  JetStream drops the copy.

No error text ever carries a header value, a credential or the payload:
only ids, subjects, field names and the server's own description.
"""

from __future__ import annotations

from collections.abc import Sequence

from .results import RuleResult

__all__ = [
    "AckTimeoutError",
    "ConnectError",
    "DeliveryPublishError",
    "ImbiWorkerClientError",
    "InvalidActionError",
    "InvalidHandlerError",
    "NoStreamError",
    "NotConnectedError",
    "PayloadTooLargeError",
    "PublishError",
    "PublishRejectedError",
]


class ImbiWorkerClientError(Exception):
    """Base of every error this package raises."""


class ConnectError(ImbiWorkerClientError):
    """No NATS server of the list accepted the connection (unreachable,
    TLS or authorization failure). ``servers`` are the URLs without any
    user:password part."""

    def __init__(self, servers: Sequence[str], detail: str) -> None:
        self.servers = tuple(_without_userinfo(s) for s in servers)
        self.detail = detail
        super().__init__(f"cannot connect to NATS {', '.join(self.servers)}: {detail}")


def _without_userinfo(url: str) -> str:
    """nats://user:secret@host:4222 -> nats://host:4222 (for error texts)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    host = rest.rpartition("@")[2]
    return f"{scheme}{sep}{host}"


class InvalidActionError(ImbiWorkerClientError, ValueError):
    """The input breaks the wire contract; nothing was published."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {field}: {reason}")


class InvalidHandlerError(InvalidActionError):
    """A rule handler that is not ``<plugin_slug>#<action_name>``.

    The message matches the gateway's and the Go worker's wording.
    """

    def __init__(self, value: str) -> None:
        self.value = value
        ImbiWorkerClientError.__init__(
            self, f"handler '{value}' must be '<plugin_slug>#<action_name>'"
        )
        self.field = "rule.handler"
        self.reason = "not <plugin_slug>#<action_name>"


class PublishError(ImbiWorkerClientError):
    """JetStream did not acknowledge the publish of one event.

    ``retryable`` says whether publishing the same event again may succeed
    without anyone changing configuration or input.
    """

    retryable: bool = True

    def __init__(self, event_id: str, subject: str, detail: str) -> None:
        self.event_id = event_id
        self.subject = subject
        self.detail = detail
        super().__init__(f"publish {event_id} to {subject}: {detail}")


class NotConnectedError(PublishError):
    """The NATS connection is closed, draining or reconnecting."""


class NoStreamError(PublishError):
    """No JetStream stream captures the subject (no responders).

    Retryable: the worker provisions its streams at start, so this is also
    what a publish sees before the first worker (or ``imbi-worker streams
    apply``) ran.
    """


class AckTimeoutError(PublishError):
    """No PubAck arrived in time. The message may still have been stored."""


class PayloadTooLargeError(PublishError):
    """The encoded event exceeds the server's ``max_payload``."""

    retryable = False

    def __init__(self, event_id: str, subject: str, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(event_id, subject, f"message of {size} bytes exceeds max_payload {limit}")


class PublishRejectedError(PublishError):
    """The JetStream API answered with an error (stream limits, wrong
    expected stream, ...). ``code``/``err_code`` are the server's."""

    def __init__(
        self,
        event_id: str,
        subject: str,
        description: str,
        code: int | None = None,
        err_code: int | None = None,
    ) -> None:
        self.code = code
        self.err_code = err_code
        super().__init__(
            event_id,
            subject,
            f"rejected by JetStream (code={code} err_code={err_code}): {description}",
        )

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        # 503 is "JetStream temporarily unavailable" (no quorum, leader
        # election); everything else needs a configuration change.
        return self.code == 503


class DeliveryPublishError(PublishError):
    """At least one rule of a delivery was not published.

    Raised by :meth:`DeliveryResult.raise_for_errors`; ``results`` holds the
    per-rule outcome, so a caller can retry only the failed rules (or the
    whole delivery: the published ones are dropped as duplicates).
    """

    def __init__(self, delivery_id: str, results: Sequence[RuleResult]) -> None:
        self.delivery_id = delivery_id
        self.results = tuple(results)
        failed = [r for r in self.results if r.error is not None]
        self.failed = tuple(failed)
        ids = ", ".join(r.event_id or f"ordinal {r.ordinal}" for r in failed)
        summary = f"{len(failed)} of {len(self.results)} rules not published"
        ImbiWorkerClientError.__init__(self, f"delivery {delivery_id}: {summary} ({ids})")
        self.event_id = delivery_id
        self.subject = ""
        self.detail = str(self)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        return all(isinstance(r.error, PublishError) and r.error.retryable for r in self.failed)
