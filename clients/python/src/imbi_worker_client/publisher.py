"""Publishing action CloudEvents to JetStream (wire-contract v1)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from .envelope import (
    DEFAULT_SUBJECT_PREFIX,
    ActionRequest,
    ContentMode,
    OutboundMessage,
    build_chain_message,
    build_message,
    event_id,
)
from .errors import (
    AckTimeoutError,
    ConnectError,
    DeliveryPublishError,
    InvalidActionError,
    NoStreamError,
    NotConnectedError,
    PayloadTooLargeError,
    PublishError,
    PublishRejectedError,
)
from .handler import parse_handler
from .results import PublishResult, RuleResult
from .tracing import current_trace_headers, producer_span

__all__ = [
    "DEFAULT_STREAM",
    "ActionPublisher",
    "DeliveryResult",
    "PublishResult",
    "RuleResult",
]

#: The work stream's default name (wire-contract §2). Pass it as
#: ``stream=`` to have the server check that the subject lands in that
#: stream (``Nats-Expected-Stream``). Off by default: JetStream already
#: refuses overlapping stream subjects, and the check would tie the gateway
#: to a stream name operators may change.
DEFAULT_STREAM = "IMBI_ACTIONS"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Per-rule outcomes of :meth:`ActionPublisher.publish_delivery`, in
    ordinal order."""

    delivery_id: str
    results: tuple[RuleResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def raise_for_errors(self) -> None:
        """Raise :class:`DeliveryPublishError` if any rule failed."""
        if not self.ok:
            raise DeliveryPublishError(self.delivery_id, self.results)


class ActionPublisher:
    """Publishes one CloudEvent per matched rule and waits for the PubAck.

    Use :meth:`connect` (the publisher then owns and closes the
    connection), or wrap a connection the application already has::

        publisher = await ActionPublisher.connect("nats://nats:4222",
                                                  user_credentials="/etc/imbi/gateway.creds")
        result = await publisher.publish_action(rule, plugin, ctx, ext_id, event,
                                                delivery_id=event_row_id)

    An instance holds no per-call state and may be shared by concurrent
    requests.
    """

    def __init__(
        self,
        nc: NATS,
        *,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        stream: str | None = None,
        ack_timeout: float = 5.0,
        mode: ContentMode = ContentMode.STRUCTURED,
        owns_connection: bool = False,
    ) -> None:
        self._nc = nc
        self._js: JetStreamContext = nc.jetstream(timeout=ack_timeout)
        self._subject_prefix = subject_prefix
        self._stream = stream
        self._ack_timeout = ack_timeout
        self._mode = mode
        self._owns = owns_connection

    @classmethod
    async def connect(
        cls,
        servers: str | list[str] = "nats://127.0.0.1:4222",
        *,
        name: str = "imbi-gateway",
        user_credentials: str | None = None,
        nkeys_seed: str | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        tls_hostname: str | None = None,
        connect_timeout: float = 2.0,
        subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
        stream: str | None = None,
        ack_timeout: float = 5.0,
        mode: ContentMode = ContentMode.STRUCTURED,
        **nats_options: Any,
    ) -> ActionPublisher:
        """Connect to NATS and return a publisher that owns the connection.

        ``user_credentials`` (a ``.creds`` file), ``nkeys_seed``,
        ``user``/``password``, ``token`` and ``tls``/``tls_hostname`` are
        passed to :func:`nats.connect` as is; so is any other keyword in
        ``nats_options`` (e.g. ``max_reconnect_attempts``,
        ``error_cb``).

        :raises ConnectError: no server accepted the connection. (nats-py
            applies ``max_reconnect_attempts`` to the first connect too:
            with -1 or 0 it retries forever, so bound it with
            ``asyncio.wait_for`` or pass a positive number.)
        """
        options: dict[str, Any] = {"name": name, "connect_timeout": connect_timeout}
        for key, value in (
            ("user_credentials", user_credentials),
            ("nkeys_seed", nkeys_seed),
            ("user", user),
            ("password", password),
            ("token", token),
            ("tls", tls),
            ("tls_hostname", tls_hostname),
        ):
            if value is not None:
                options[key] = value
        options.update(nats_options)
        try:
            nc = await nats.connect(servers, **options)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            # Not chained: a driver message may quote a URL with its
            # user:password part.
            urls = [servers] if isinstance(servers, str) else list(servers)
            raise ConnectError(urls, type(exc).__name__) from None
        return cls(
            nc,
            subject_prefix=subject_prefix,
            stream=stream,
            ack_timeout=ack_timeout,
            mode=mode,
            owns_connection=True,
        )

    @property
    def connection(self) -> NATS:
        return self._nc

    async def close(self) -> None:
        """Drain and close the connection if this publisher opened it."""
        if self._owns and not self._nc.is_closed:
            await self._nc.drain()

    async def __aenter__(self) -> ActionPublisher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- building ---------------------------------------------------------

    def build(
        self,
        rule: Any,
        plugin: Any,
        context: Any,
        external_identifier: str | None,
        event: Any,
        *,
        delivery_id: str,
        received_at: datetime | None = None,
    ) -> OutboundMessage:
        """The message :meth:`publish_action` would send (no I/O)."""
        return build_message(
            rule,
            plugin,
            context,
            external_identifier,
            event,
            delivery_id=delivery_id,
            received_at=received_at,
            subject_prefix=self._subject_prefix,
            mode=self._mode,
            trace_headers=current_trace_headers(),
        )

    # --- publishing -------------------------------------------------------

    async def publish_action(
        self,
        rule: Any,
        plugin: Any,
        context: Any,
        external_identifier: str | None,
        event: Any,
        *,
        delivery_id: str,
        received_at: datetime | None = None,
        timeout: float | None = None,
    ) -> PublishResult:
        """Publish the CloudEvent of one matched rule and await its PubAck.

        :raises InvalidActionError: the input breaks the contract (nothing
            was sent).
        :raises PublishError: not acknowledged (see its subclasses).
        """
        # Build inside the span so traceparent names the PRODUCER span (the
        # parent of the worker's consumer span).
        ordinal, handler = _rule_label(rule)
        with producer_span(self._subject_hint(handler), event_id(delivery_id, ordinal)):
            msg = self.build(
                rule,
                plugin,
                context,
                external_identifier,
                event,
                delivery_id=delivery_id,
                received_at=received_at,
            )
            return await self.publish_message(msg, timeout=timeout)

    def _subject_hint(self, handler: str) -> str:
        """The work subject for span names, before the rule is validated."""
        try:
            return parse_handler(handler).subject(self._subject_prefix)
        except InvalidActionError:
            return f"{self._subject_prefix}._invalid"

    async def publish_message(
        self, msg: OutboundMessage, *, timeout: float | None = None
    ) -> PublishResult:
        """Send a built message and await its PubAck, mapping every NATS
        failure to a :class:`PublishError`."""
        nc = self._nc
        if nc.is_closed or nc.is_draining or not nc.is_connected:
            state = "closed" if nc.is_closed else "draining" if nc.is_draining else "not connected"
            raise NotConnectedError(msg.event_id, msg.subject, f"NATS connection {state}")
        size = len(msg.body) + sum(len(k) + len(v) + 4 for k, v in msg.headers.items())
        if size > nc.max_payload:
            raise PayloadTooLargeError(msg.event_id, msg.subject, size, nc.max_payload)
        try:
            ack = await self._js.publish(
                msg.subject,
                msg.body,
                timeout=self._ack_timeout if timeout is None else timeout,
                stream=self._stream,
                # nats-py adds its own headers to the dict it is given.
                headers=dict(msg.headers),
            )
        except nats.js.errors.NoStreamResponseError:
            raise NoStreamError(
                msg.event_id, msg.subject, "no JetStream stream captures this subject"
            ) from None
        except nats.js.errors.APIError as exc:
            raise PublishRejectedError(
                msg.event_id,
                msg.subject,
                str(exc.description or "API error"),
                code=exc.code,
                err_code=exc.err_code,
            ) from None
        except nats.errors.MaxPayloadError:
            raise PayloadTooLargeError(msg.event_id, msg.subject, size, nc.max_payload) from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise AckTimeoutError(msg.event_id, msg.subject, "no PubAck in time") from None
        except (
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionDrainingError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.OutboundBufferLimitError,
            nats.errors.StaleConnectionError,
        ) as exc:
            raise NotConnectedError(msg.event_id, msg.subject, type(exc).__name__) from None
        except nats.errors.Error as exc:
            raise PublishError(msg.event_id, msg.subject, type(exc).__name__) from None
        return PublishResult(
            event_id=msg.event_id,
            subject=msg.subject,
            stream=ack.stream,
            seq=ack.seq,
            duplicate=bool(ack.duplicate),
        )

    async def publish_delivery(
        self,
        actions: Iterable[ActionRequest | Mapping[str, Any]],
        *,
        delivery_id: str,
        received_at: datetime | None = None,
        timeout: float | None = None,
    ) -> DeliveryResult:
        """Publish every matched rule of one webhook delivery (one project).

        Each rule gets its own id (``<delivery_id>.<ordinal>``) and its own
        outcome: a rule that cannot be built or published never stops the
        others (the gateway's "log and skip that rule" semantics). Results
        come back in ordinal order; publishes are pipelined. Two rules with
        the same ordinal would get the same id (and JetStream would drop
        the second), so both fail with :class:`InvalidActionError`.

        Retrying a failed delivery as a whole is safe within the stream's
        2-minute duplicate window: the rules already queued come back with
        ``duplicate=True``.
        """
        when = received_at or datetime.now(timezone.utc)
        requests = [a if isinstance(a, ActionRequest) else ActionRequest(**a) for a in actions]
        labels = [_rule_label(req.rule) for req in requests]
        counts: dict[int, int] = {}
        for ordinal, _ in labels:
            counts[ordinal] = counts.get(ordinal, 0) + 1

        async def one(req: ActionRequest, ordinal: int, handler: str) -> RuleResult:
            ce_id = event_id(delivery_id, ordinal)
            if ordinal >= 0 and counts[ordinal] > 1:
                dup = InvalidActionError(
                    "rule.ordinal", f"ordinal {ordinal} appears twice in delivery {delivery_id}"
                )
                return RuleResult(ordinal, handler, None, error=dup)
            try:
                with producer_span(self._subject_hint(handler), ce_id):
                    msg = self.build(
                        req.rule,
                        req.plugin,
                        req.context,
                        req.external_identifier,
                        req.event,
                        delivery_id=delivery_id,
                        received_at=when,
                    )
                    res = await self.publish_message(msg, timeout=timeout)
            except InvalidActionError as exc:
                return RuleResult(ordinal, handler, None, error=exc)
            except PublishError as exc:
                return RuleResult(ordinal, str(msg.handler), msg.event_id, error=exc)
            return RuleResult(ordinal, str(msg.handler), msg.event_id, result=res)

        # Ordinal order: ids, results and (in practice) stream order follow
        # the rules' order. gather starts each publish in that order and
        # pipelines the PubAck waits.
        order = sorted(range(len(requests)), key=lambda i: labels[i][0])
        results = await asyncio.gather(*(one(requests[i], *labels[i]) for i in order))
        return DeliveryResult(delivery_id=delivery_id, results=tuple(results))

    async def publish_chain(
        self,
        actions: Iterable[ActionRequest | Mapping[str, Any]],
        *,
        delivery_id: str,
        chain_id: str | None = None,
        on_failure: str = "continue",
        received_at: datetime | None = None,
        timeout: float | None = None,
    ) -> PublishResult:
        """Publish the matched rules of one (delivery, project) as an ordered
        chain (wire contract §A): only the first rule is published, with
        ``data.chain`` holding the rest; the worker runs them one after
        another in ordinal order, as the gateway did. See
        :func:`build_chain_message`.

        :raises InvalidActionError: the input breaks the contract (nothing
            was sent).
        :raises PublishError: not acknowledged (see its subclasses).
        """
        requests = [a if isinstance(a, ActionRequest) else ActionRequest(**a) for a in actions]
        labels = sorted(_rule_label(req.rule) for req in requests)
        ordinal, handler = labels[0] if labels else (0, "")
        with producer_span(self._subject_hint(handler), event_id(delivery_id, ordinal)):
            msg = build_chain_message(
                requests,
                delivery_id=delivery_id,
                chain_id=chain_id,
                on_failure=on_failure,
                received_at=received_at,
                subject_prefix=self._subject_prefix,
                mode=self._mode,
                trace_headers=current_trace_headers(),
            )
            return await self.publish_message(msg, timeout=timeout)


def _rule_label(rule: Any) -> tuple[int, str]:
    """Ordinal and handler of a rule as given, before validation (never
    raises). A missing ordinal is 0, as in build_message; one that is not
    an integer is -1 (building that rule fails)."""
    get = rule.get if isinstance(rule, Mapping) else lambda k, d=None: getattr(rule, k, d)
    ordinal = get("ordinal", 0)
    if ordinal is None:
        ordinal = 0
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or ordinal < 0:
        ordinal = -1
    handler = get("handler", "")
    return ordinal, handler if isinstance(handler, str) else ""
