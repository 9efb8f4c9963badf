"""Building the CloudEvent of one matched rule (wire-contract v1, §3).

Pure functions, no I/O: :func:`build_message` turns the gateway's inputs
into the NATS subject, headers and body the worker expects. The publisher
only sends what this returns, so tests can check every byte without a
server.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from .errors import InvalidActionError
from .handler import Handler, parse_handler
from .redaction import redact_headers

__all__ = [
    "CONTENT_TYPE_CLOUDEVENTS",
    "CONTENT_TYPE_JSON",
    "DEFAULT_SUBJECT_PREFIX",
    "EVENT_TYPE",
    "SOURCE_PREFIX",
    "ActionRequest",
    "ContentMode",
    "EventMetadata",
    "OutboundMessage",
    "PluginContext",
    "PluginRef",
    "Rule",
    "WebhookEvent",
    "build_message",
    "event_id",
    "event_source",
]

EVENT_TYPE = "io.imbi.webhook.action.v1"
SOURCE_PREFIX = "/imbi-gateway/webhooks/"
CONTENT_TYPE_CLOUDEVENTS = "application/cloudevents+json"
CONTENT_TYPE_JSON = "application/json"
DEFAULT_SUBJECT_PREFIX = "imbi.actions"
HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_CONTENT_TYPE = "Content-Type"
#: Ordered rule chains (wire contract §A, v1.1): at most this many steps.
MAX_CHAIN_STEPS = 64
CHAIN_CONTINUE = "continue"
CHAIN_STOP = "stop"
_MAX_CHAIN_ID = 200

# PluginContext fields (plugins-spec §4.9) that go on the wire. A whitelist,
# not a pass-through: a gateway context object may carry more (service
# plugin options, an identity with an access token) and nothing beyond the
# contract should reach the stream or a dead letter.
_CONTEXT_FIELDS = (
    "project_id",
    "project_slug",
    "org_slug",
    "team_slug",
    "environment",
    "assignment_options",
    "project_links",
    "project_type_slugs",
    "environment_config",
    "actor_user_id",
)
_CONTEXT_REQUIRED = ("project_id", "project_slug", "org_slug")


class ContentMode(enum.Enum):
    """CloudEvents NATS binding mode."""

    #: ``Content-Type: application/cloudevents+json``, body = the JSON event.
    #: What the gateway sends.
    STRUCTURED = "structured"
    #: ``ce-*`` headers, body = data, ``Content-Type: application/json``.
    BINARY = "binary"


# --- typed inputs ------------------------------------------------------------
# The gateway may pass these dataclasses, plain mappings, or its own pydantic
# models (anything with ``model_dump``); only the contract's fields are read.


@dataclass(frozen=True, slots=True)
class Rule:
    """The matched ``WebhookRule``."""

    handler: str
    #: A JSON object/array, or the JSON string stored on the WebhookRule node.
    handler_config: Any = None
    ordinal: int = 0
    id: str | None = None


@dataclass(frozen=True, slots=True)
class PluginRef:
    """The ``Plugin`` node holding the credentials (never the credentials)."""

    slug: str | None = None
    id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginContext:
    """What the action knows about the project (plugins-spec §4.9)."""

    project_id: str
    project_slug: str
    org_slug: str
    team_slug: str | None = None
    environment: str | None = None
    assignment_options: Mapping[str, Any] = field(default_factory=dict)
    project_links: Mapping[str, str] = field(default_factory=dict)
    project_type_slugs: tuple[str, ...] = ()
    environment_config: Mapping[str, Any] = field(default_factory=dict)
    actor_user_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventMetadata:
    webhook_id: str
    #: Lower-cased request header names; sensitive values are redacted by
    #: :func:`build_message` whatever the caller passes.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """The ``event`` an action receives (plugins-spec §6.5)."""

    metadata: EventMetadata
    type: str = ""
    third_party_service: str = ""
    attributed_to: str = ""
    #: The body if it is a JSON object, otherwise ``{}``.
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One matched rule of a delivery, for :meth:`ActionPublisher.publish_delivery`."""

    rule: Rule | Mapping[str, Any] | Any
    plugin: PluginRef | Mapping[str, Any] | Any | None
    context: PluginContext | Mapping[str, Any] | Any
    external_identifier: str | None
    event: WebhookEvent | Mapping[str, Any] | Any


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A built NATS message: what goes on the wire, byte for byte."""

    subject: str
    headers: dict[str, str]
    body: bytes
    event_id: str
    handler: Handler
    ordinal: int
    #: The CloudEvent data (already redacted), for logging by id/handler or
    #: for tests; never log it whole (the payload is third-party data).
    data: dict[str, Any]


# --- helpers -----------------------------------------------------------------


def event_id(delivery_id: str, ordinal: int) -> str:
    """The CloudEvent id, ``<delivery_id>.<ordinal>``: unique per (delivery,
    rule), the worker's idempotency key and the JetStream ``Nats-Msg-Id``.
    Same rule as the Go publisher (publisher.EventID)."""
    return f"{delivery_id}.{ordinal}"


def event_source(webhook_id: str) -> str:
    """``/imbi-gateway/webhooks/<webhook_id>``, the id escaped as one path
    segment exactly like Go's ``url.PathEscape`` (the Go publisher)."""
    return SOURCE_PREFIX + quote(webhook_id, safe="$&+:=@")


def _as_dict(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic v2 models (the gateway's own types)
        out = dump(mode="json", by_alias=True)
        if isinstance(out, dict):
            return out
    raise InvalidActionError(what, "must be a mapping, a dataclass or a pydantic model")


def _plain(value: Any) -> Any:
    """Nested dataclasses/mappings/tuples to JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def _optional_str(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidActionError(what, "must be a string or null")


def _build_rule(rule: Any) -> tuple[dict[str, Any], Handler, int]:
    r = _as_dict(rule, "rule")
    handler = parse_handler(r.get("handler"))  # type: ignore[arg-type]
    ordinal = r.get("ordinal", 0)
    if ordinal is None:
        ordinal = 0
    # bool is an int in Python; the schema (and Go) say integer.
    if isinstance(ordinal, bool) or not isinstance(ordinal, int) or ordinal < 0:
        raise InvalidActionError("rule.ordinal", "must be a non-negative integer")
    out: dict[str, Any] = {"handler": str(handler), "ordinal": ordinal}
    rule_id = _optional_str(r.get("id"), "rule.id")
    if rule_id:
        out = {"id": rule_id, **out}
    config = r.get("handler_config")
    if isinstance(config, (str, bytes)):
        # As stored on the WebhookRule node (the API json.dumps it). Parsed
        # here so a broken rule fails in the gateway, not as a dead letter.
        try:
            config = json.loads(config) if config.strip() else None
        except ValueError:
            raise InvalidActionError("rule.handler_config", "not valid JSON") from None
    if config is not None:
        config = _plain(config)
        if not isinstance(config, (dict, list)):
            raise InvalidActionError("rule.handler_config", "must be a JSON object or array")
        out["handler_config"] = config
    return out, handler, ordinal


def _build_plugin(plugin: Any, handler: Handler) -> dict[str, Any]:
    # Only id and slug are read: a gateway plugin row also carries
    # plugin_configuration (the encrypted credentials), which must never be
    # published.
    p = {} if plugin is None else _as_dict(plugin, "plugin")
    slug = _optional_str(p.get("slug", p.get("plugin_slug")), "plugin.slug")
    plugin_id = _optional_str(p.get("id"), "plugin.id")
    if slug and slug != handler.plugin:
        raise InvalidActionError(
            "plugin.slug", f"'{slug}' is not the handler's plugin '{handler.plugin}'"
        )
    out: dict[str, Any] = {"slug": handler.plugin}
    if plugin_id:
        out = {"id": plugin_id, **out}
    return out


def _build_context(context: Any) -> dict[str, Any]:
    c = _as_dict(context, "context")
    if c.get("identity") is not None:
        raise InvalidActionError(
            "context.identity",
            "holds user credentials and is never published; the worker resolves identities itself",
        )
    for name in _CONTEXT_REQUIRED:
        if not isinstance(c.get(name), str) or not c[name]:
            raise InvalidActionError(f"context.{name}", "required non-empty string")
    out = {name: _plain(c[name]) for name in _CONTEXT_FIELDS if name in c}
    for name in ("team_slug", "environment", "actor_user_id"):
        if name in out:
            _optional_str(out[name], f"context.{name}")
    return out


def _build_event(event: Any) -> tuple[dict[str, Any], str]:
    e = _as_dict(event, "event")
    meta = e.get("metadata")
    meta = {} if meta is None else _as_dict(meta, "event.metadata")
    webhook_id = meta.get("webhook_id")
    if not isinstance(webhook_id, str) or not webhook_id:
        raise InvalidActionError(
            "event.metadata.webhook_id", "required (it names the CloudEvent source)"
        )
    headers = meta.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise InvalidActionError("event.metadata.headers", "must be a mapping")
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            # The value is not quoted: it may be a secret.
            raise InvalidActionError("event.metadata.headers", "names and values must be strings")
    payload = e.get("payload")
    payload = {} if payload is None else _plain(payload)
    if not isinstance(payload, dict):
        raise InvalidActionError(
            "event.payload", "must be a JSON object (the gateway sends {} for other bodies)"
        )
    out = {
        "type": _optional_str(e.get("type"), "event.type") or "",
        "third_party_service": _optional_str(
            e.get("third_party_service"), "event.third_party_service"
        )
        or "",
        "attributed_to": _optional_str(e.get("attributed_to"), "event.attributed_to") or "",
        # Redacted here too: the gateway already redacts, but a caller that
        # forgets must not put a secret on the wire.
        "metadata": {"webhook_id": webhook_id, "headers": redact_headers(headers)},
        "payload": payload,
    }
    return out, webhook_id


def build_message(
    rule: Rule | Mapping[str, Any] | Any,
    plugin: PluginRef | Mapping[str, Any] | Any | None,
    context: PluginContext | Mapping[str, Any] | Any,
    external_identifier: str | None,
    event: WebhookEvent | Mapping[str, Any] | Any,
    *,
    delivery_id: str,
    received_at: datetime | None = None,
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
    mode: ContentMode = ContentMode.STRUCTURED,
    trace_headers: Mapping[str, str] | None = None,
    chain: Mapping[str, Any] | None = None,
) -> OutboundMessage:
    """Build the NATS message of one matched rule.

    :param delivery_id: the webhook delivery; the CloudEvent id is
        ``<delivery_id>.<rule ordinal>``. When one delivery fans out to
        several projects, pass a per-project id (the gateway's recorded
        Event row id is one).
    :param received_at: when the gateway received the webhook (CloudEvent
        ``time``); default now. A naive datetime is taken as UTC.
    :param trace_headers: ``traceparent``/``tracestate`` to propagate (the
        publisher passes the active span's).
    :raises InvalidActionError: the input breaks the contract.
    """
    if not isinstance(delivery_id, str) or not delivery_id:
        raise InvalidActionError("delivery_id", "required non-empty string")
    rule_data, handler, ordinal = _build_rule(rule)
    event_data, webhook_id = _build_event(event)
    ext = "" if external_identifier is None else external_identifier
    if not isinstance(ext, str):
        raise InvalidActionError("external_identifier", "must be a string or null")
    data: dict[str, Any] = {
        "rule": rule_data,
        "plugin": _build_plugin(plugin, handler),
        "context": _build_context(context),
        "external_identifier": ext,
        "event": event_data,
    }
    if chain is not None:
        data["chain"] = dict(chain)  # built by build_chain_message
    try:
        # Fail here, with our own words, on what the SDK's encoder would
        # choke on (or, for NaN, silently emit as invalid JSON).
        json.dumps(data, allow_nan=False)
    except (TypeError, ValueError) as exc:
        kind = "a non-finite number" if isinstance(exc, ValueError) else "a value that is not JSON"
        raise InvalidActionError("data", f"contains {kind}") from None

    when = received_at or datetime.now(timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ce_id = event_id(delivery_id, ordinal)
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "id": ce_id,
        "type": EVENT_TYPE,
        "source": event_source(webhook_id),
        "subject": str(handler),
        "time": when.astimezone(timezone.utc),
        "datacontenttype": CONTENT_TYPE_JSON,
    }
    trace = {k: v for k, v in (trace_headers or {}).items() if v}
    attributes.update(trace)  # distributed-tracing extension attributes
    try:
        ce: BaseCloudEvent = CloudEvent(attributes, data)
    except BaseCloudEventException as exc:
        raise InvalidActionError("event", f"not a valid CloudEvent: {exc}") from None

    fmt = JSONFormat()
    headers: dict[str, str] = {HEADER_MSG_ID: ce_id}
    if mode is ContentMode.STRUCTURED:
        headers[HEADER_CONTENT_TYPE] = CONTENT_TYPE_CLOUDEVENTS
        body = fmt.write(ce)
    elif mode is ContentMode.BINARY:
        # The NATS binding maps attributes to headers exactly as the HTTP
        # binding does (ce-<name>, percent-encoded; datacontenttype ->
        # Content-Type).
        binary = to_binary(ce, fmt)
        for name, value in binary.headers.items():
            # The SDK spells it "content-type"; NATS header lookup is
            # case-sensitive in some clients, so use the canonical form.
            headers[HEADER_CONTENT_TYPE if name.lower() == "content-type" else name] = value
        body = binary.body
    else:  # pragma: no cover - enum exhausted
        raise InvalidActionError("mode", f"unknown content mode {mode!r}")
    headers.update(trace)  # also as plain NATS headers (wire-contract §3)
    return OutboundMessage(
        subject=handler.subject(subject_prefix),
        headers=headers,
        body=body,
        event_id=ce_id,
        handler=handler,
        ordinal=ordinal,
        data=data,
    )


_CHAIN_ID = re.compile(r"^[!-~]{1,%d}$" % _MAX_CHAIN_ID)


def build_chain_message(
    actions: Iterable[ActionRequest | Mapping[str, Any]],
    *,
    delivery_id: str,
    chain_id: str | None = None,
    on_failure: str = CHAIN_CONTINUE,
    received_at: datetime | None = None,
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
    mode: ContentMode = ContentMode.STRUCTURED,
    trace_headers: Mapping[str, str] | None = None,
) -> OutboundMessage:
    """Build the first step of an ordered rule chain (wire contract §A).

    ``actions`` are the matched rules of one (delivery, project), taken in
    ordinal order; the first is built as :func:`build_message` builds one
    rule, with ``data.chain`` holding the rest. The worker publishes each
    next rule only when the one before it reached a terminal outcome.
    Context, external identifier and event are the first action's (shared
    by every step). Same rules as the Go ``publisher.NewChainEvent``.

    :param chain_id: unique per (delivery, project); default
        ``<delivery_id>.<context.project_id>``. Later steps' CloudEvent
        ids are ``<chain_id>.<ordinal>``.
    :param on_failure: ``"continue"`` (the gateway's behaviour) or
        ``"stop"``.
    :raises InvalidActionError: the input breaks the contract.
    """
    requests = [a if isinstance(a, ActionRequest) else ActionRequest(**a) for a in actions]
    if not requests:
        raise InvalidActionError("actions", "a chain needs at least one rule")
    if len(requests) > MAX_CHAIN_STEPS:
        raise InvalidActionError("actions", f"{len(requests)} rules, more than {MAX_CHAIN_STEPS}")
    if on_failure not in (CHAIN_CONTINUE, CHAIN_STOP):
        raise InvalidActionError("on_failure", f"{on_failure!r} is not continue or stop")
    built = [_build_rule(req.rule) for req in requests]
    order = sorted(range(len(requests)), key=lambda i: built[i][2])
    for prev, cur in zip(order, order[1:]):
        if built[cur][2] == built[prev][2]:
            raise InvalidActionError(
                "rule.ordinal", f"ordinal {built[cur][2]} appears twice in the chain"
            )
    if chain_id is None:
        project = _as_dict(requests[0].context, "context").get("project_id")
        if not isinstance(project, str) or not project or not delivery_id:
            raise InvalidActionError(
                "chain_id", "required when delivery_id or context.project_id is missing"
            )
        chain_id = f"{delivery_id}.{project}"
    if not isinstance(chain_id, str) or not _CHAIN_ID.match(chain_id):
        raise InvalidActionError(
            "chain_id", f"must be 1-{_MAX_CHAIN_ID} printable ASCII characters without spaces"
        )
    first = requests[order[0]]
    nxt = []
    for i in order[1:]:
        rule_data, handler, _ = built[i]
        nxt.append({"rule": rule_data, "plugin": _build_plugin(requests[i].plugin, handler)})
    chain: dict[str, Any] = {"id": chain_id, "position": 0, "on_failure": on_failure, "next": nxt}
    return build_message(
        first.rule,
        first.plugin,
        first.context,
        first.external_identifier,
        first.event,
        delivery_id=delivery_id,
        received_at=received_at,
        subject_prefix=subject_prefix,
        mode=mode,
        trace_headers=trace_headers,
        chain=chain,
    )
