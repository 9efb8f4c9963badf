"""Building the CloudEvent of wire-contract §3, checked byte by byte and
against the envelope schema the Go worker validates with."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote

import pytest
from jsonschema import Draft202012Validator

from imbi_worker_client import (
    EVENT_TYPE,
    REDACTED,
    ContentMode,
    EventMetadata,
    InvalidActionError,
    InvalidHandlerError,
    PluginContext,
    PluginRef,
    Rule,
    WebhookEvent,
    build_message,
    event_id,
    event_source,
)

RECEIVED = datetime(2026, 6, 5, 12, 30, 45, 123456, tzinfo=timezone.utc)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def build(inputs: dict[str, Any], **kw: Any):
    kw.setdefault("delivery_id", "dlv-1")
    kw.setdefault("received_at", RECEIVED)
    return build_message(
        inputs["rule"],
        inputs["plugin"],
        inputs["context"],
        inputs["external_identifier"],
        inputs["event"],
        **kw,
    )


def test_structured_message(inputs, envelope_validator: Draft202012Validator) -> None:
    msg = build(inputs)
    assert msg.subject == "imbi.actions.github.create_issue"
    assert msg.headers == {
        "Nats-Msg-Id": "dlv-1.0",
        "Content-Type": "application/cloudevents+json",
    }
    ce = json.loads(msg.body)
    assert {k: v for k, v in ce.items() if k != "data"} == {
        "specversion": "1.0",
        "id": "dlv-1.0",
        "type": EVENT_TYPE,
        "source": "/imbi-gateway/webhooks/wh-1",
        "subject": "github#create_issue",
        "time": "2026-06-05T12:30:45.123456Z",
        "datacontenttype": "application/json",
    }
    envelope_validator.validate(ce["data"])
    assert ce["data"] == {
        "rule": {
            "id": "r-7",
            "handler": "github#create_issue",
            "ordinal": 0,
            "handler_config": {
                "repository": "/payload/repository/full_name",
                "title": "Deploy of ${project_slug}",
            },
        },
        "plugin": {"id": "pl-1", "slug": "github"},
        "context": inputs["context"],
        "external_identifier": "acme/checkout",
        "event": {
            "type": "push",
            "third_party_service": "github",
            "attributed_to": "",
            "metadata": {
                "webhook_id": "wh-1",
                "headers": {"x-github-event": "push", "authorization": REDACTED},
            },
            "payload": {"ref": "refs/heads/main"},
        },
    }
    assert msg.data == ce["data"]
    assert msg.event_id == "dlv-1.0" and msg.ordinal == 0
    assert b"s3cr3t" not in msg.body


def test_binary_message(inputs, envelope_validator: Draft202012Validator) -> None:
    msg = build(inputs, mode=ContentMode.BINARY, trace_headers={"traceparent": TP})
    assert msg.headers["Content-Type"] == "application/json"
    assert msg.headers["Nats-Msg-Id"] == "dlv-1.0"
    ce = {k[3:]: unquote(v) for k, v in msg.headers.items() if k.startswith("ce-")}
    assert ce == {
        "specversion": "1.0",
        "id": "dlv-1.0",
        "type": EVENT_TYPE,
        "source": "/imbi-gateway/webhooks/wh-1",
        "subject": "github#create_issue",
        "time": "2026-06-05T12:30:45.123456Z",
        "traceparent": TP,
    }
    assert msg.headers["traceparent"] == TP
    data = json.loads(msg.body)
    envelope_validator.validate(data)
    assert data["rule"]["handler"] == "github#create_issue"
    assert b"s3cr3t" not in msg.body


TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_trace_headers_become_extension_and_nats_headers(inputs) -> None:
    msg = build(inputs, trace_headers={"traceparent": TP, "tracestate": "vendor=x", "x": ""})
    ce = json.loads(msg.body)
    assert ce["traceparent"] == TP and ce["tracestate"] == "vendor=x"
    assert msg.headers["traceparent"] == TP and msg.headers["tracestate"] == "vendor=x"
    assert "x" not in msg.headers


def test_no_trace_headers_without_trace(inputs) -> None:
    msg = build(inputs)
    assert "traceparent" not in json.loads(msg.body)
    assert "traceparent" not in msg.headers


@pytest.mark.parametrize(
    ("delivery", "ordinal", "want"),
    [("dlv-1", 0, "dlv-1.0"), ("V1StGXR8_Z5jdHi6B-myT", 12, "V1StGXR8_Z5jdHi6B-myT.12")],
)
def test_event_id(inputs, delivery: str, ordinal: int, want: str) -> None:
    assert event_id(delivery, ordinal) == want
    inputs["rule"]["ordinal"] = ordinal
    msg = build(inputs, delivery_id=delivery)
    assert msg.event_id == want
    assert msg.headers["Nats-Msg-Id"] == want
    assert json.loads(msg.body)["id"] == want


@pytest.mark.parametrize(
    ("webhook_id", "want"),
    [
        ("wh-1", "/imbi-gateway/webhooks/wh-1"),
        ("a b", "/imbi-gateway/webhooks/a%20b"),
        ("a/b?c", "/imbi-gateway/webhooks/a%2Fb%3Fc"),
        # Go's url.PathEscape keeps these as they are
        ("a:b@c=d&e+f$g", "/imbi-gateway/webhooks/a:b@c=d&e+f$g"),
        ("x;y,z", "/imbi-gateway/webhooks/x%3By%2Cz"),
        ("é", "/imbi-gateway/webhooks/%C3%A9"),
    ],
)
def test_event_source(webhook_id: str, want: str) -> None:
    assert event_source(webhook_id) == want


def test_time_defaults_to_now_utc_and_naive_is_utc(inputs) -> None:
    before = datetime.now(timezone.utc)
    t = json.loads(build(inputs, received_at=None).body)["time"]
    assert RFC3339.match(t)
    parsed = datetime.fromisoformat(t.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= parsed <= datetime.now(timezone.utc)

    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert json.loads(build(inputs, received_at=naive).body)["time"] == "2026-01-02T03:04:05Z"
    cet = datetime(2026, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1)))
    assert json.loads(build(inputs, received_at=cet).body)["time"] == "2026-01-02T03:04:05Z"


def test_legacy_handler_is_normalised(inputs) -> None:
    inputs["rule"]["handler"] = "github:create_issue"
    msg = build(inputs)
    ce = json.loads(msg.body)
    assert ce["subject"] == ce["data"]["rule"]["handler"] == "github#create_issue"
    assert msg.subject == "imbi.actions.github.create_issue"


def test_invalid_handler(inputs) -> None:
    inputs["rule"]["handler"] = "GitHub#x"
    with pytest.raises(InvalidHandlerError):
        build(inputs)


def test_subject_prefix(inputs) -> None:
    assert (
        build(inputs, subject_prefix="acme.actions").subject == "acme.actions.github.create_issue"
    )


@pytest.mark.parametrize(
    ("config", "want"),
    [
        ('{"title": "x"}', {"title": "x"}),  # as stored on the WebhookRule node
        (b'{"title": "x"}', {"title": "x"}),
        (
            '[{"path": "/name", "from": "/payload/repo/name"}]',
            [{"path": "/name", "from": "/payload/repo/name"}],
        ),
        ([], []),
        ((), []),
    ],
)
def test_handler_config_forms(inputs, envelope_validator, config: Any, want: Any) -> None:
    inputs["rule"]["handler_config"] = config
    data = json.loads(build(inputs).body)["data"]
    envelope_validator.validate(data)
    assert data["rule"]["handler_config"] == want


@pytest.mark.parametrize("config", [None, "", "   "])
def test_empty_handler_config_is_omitted(inputs, config: Any) -> None:
    inputs["rule"]["handler_config"] = config
    assert "handler_config" not in json.loads(build(inputs).body)["data"]["rule"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda i: i["rule"].update(handler_config="{not json"), "rule.handler_config"),
        (lambda i: i["rule"].update(handler_config='"a string"'), "rule.handler_config"),
        (lambda i: i["rule"].update(handler_config=5), "rule.handler_config"),
        (lambda i: i["rule"].update(ordinal=-1), "rule.ordinal"),
        (lambda i: i["rule"].update(ordinal=True), "rule.ordinal"),
        (lambda i: i["rule"].update(ordinal="1"), "rule.ordinal"),
        (lambda i: i["rule"].update(id=7), "rule.id"),
        (lambda i: i["event"]["metadata"].pop("webhook_id"), "event.metadata.webhook_id"),
        (lambda i: i["event"].pop("metadata"), "event.metadata.webhook_id"),
        (lambda i: i["event"]["metadata"].update(headers={"x": 1}), "event.metadata.headers"),
        (lambda i: i["event"]["metadata"].update(headers=["a"]), "event.metadata.headers"),
        (lambda i: i["event"].update(payload=[1, 2]), "event.payload"),
        (lambda i: i["event"].update(type=3), "event.type"),
        (lambda i: i["context"].pop("org_slug"), "context.org_slug"),
        (lambda i: i["context"].update(project_id=""), "context.project_id"),
        (lambda i: i["context"].update(team_slug=5), "context.team_slug"),
        (lambda i: i["context"].update(identity={"access_token": "tok"}), "context.identity"),
        (lambda i: i["plugin"].update(slug="gitlab"), "plugin.slug"),
        (lambda i: i["event"]["payload"].update(x=float("nan")), "data"),
        (lambda i: i["event"]["payload"].update(x=object()), "data"),
        (lambda i: i.update(external_identifier=5), "external_identifier"),
        (lambda i: i.update(context="p-1"), "context"),
    ],
)
def test_invalid_inputs(inputs, mutate, field: str) -> None:
    mutate(inputs)
    with pytest.raises(InvalidActionError) as info:
        build(inputs)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    # No input value is ever quoted in an error (it may be a secret).
    assert "tok" not in str(info.value)


@pytest.mark.parametrize("delivery", ["", None])
def test_delivery_id_required(inputs, delivery) -> None:
    with pytest.raises(InvalidActionError) as info:
        build(inputs, delivery_id=delivery)
    assert info.value.field == "delivery_id"


def test_inputs_are_not_modified(inputs) -> None:
    before = copy.deepcopy(inputs)
    build(inputs)
    assert inputs == before
    assert inputs["event"]["metadata"]["headers"]["authorization"] == "Bearer s3cr3t"


def test_only_contract_fields_are_published(inputs, envelope_validator) -> None:
    # What a gateway has at hand carries more than the contract: the plugin
    # row's encrypted credentials, service plugin options, CEL filters.
    inputs["plugin"] = {
        "id": "pl-1",
        "plugin_slug": "github",
        "plugin_configuration": "gAAAA-SECRET",
    }
    inputs["context"]["service_plugins"] = [{"options": {"token": "SECRET"}}]
    inputs["context"]["identity"] = None
    inputs["rule"]["filter_expression"] = 'type == "push"'
    inputs["event"]["recorded_at"] = "2026-06-05T00:00:00Z"
    msg = build(inputs)
    data = json.loads(msg.body)["data"]
    envelope_validator.validate(data)
    assert b"SECRET" not in msg.body
    assert data["plugin"] == {"id": "pl-1", "slug": "github"}
    assert "service_plugins" not in data["context"] and "identity" not in data["context"]
    assert "filter_expression" not in data["rule"]
    assert "recorded_at" not in data["event"]


def test_plugin_defaults_to_handler_slug(inputs) -> None:
    inputs["plugin"] = None
    assert json.loads(build(inputs).body)["data"]["plugin"] == {"slug": "github"}


def test_typed_inputs_equal_mappings(inputs, envelope_validator) -> None:
    typed = build_message(
        Rule(
            handler="github#create_issue",
            handler_config=inputs["rule"]["handler_config"],
            ordinal=0,
            id="r-7",
        ),
        PluginRef(slug="github", id="pl-1"),
        PluginContext(
            project_id="p-1",
            project_slug="checkout",
            org_slug="acme",
            team_slug="payments",
            assignment_options={
                "service_slug": "github",
                "service_endpoint": "https://api.github.com",
            },
        ),
        "acme/checkout",
        WebhookEvent(
            type="push",
            third_party_service="github",
            metadata=EventMetadata(
                webhook_id="wh-1",
                headers={"x-github-event": "push", "authorization": "Bearer s3cr3t"},
            ),
            payload={"ref": "refs/heads/main"},
        ),
        delivery_id="dlv-1",
        received_at=RECEIVED,
    )
    from_maps = build(inputs)
    typed_data = json.loads(typed.body)["data"]
    envelope_validator.validate(typed_data)
    # The dataclass context also carries the spec's empty defaults.
    ctx = typed_data.pop("context")
    want_ctx = json.loads(from_maps.body)["data"].pop("context")
    assert {k: v for k, v in ctx.items() if v not in ({}, [], None)} == {
        k: v for k, v in want_ctx.items() if v is not None
    }
    got = json.loads(typed.body)
    want = json.loads(from_maps.body)
    got["data"].pop("context")
    want["data"].pop("context")
    assert got == want


def test_pydantic_models_are_accepted(inputs, envelope_validator) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Ctx(pydantic.BaseModel):
        project_id: str
        project_slug: str
        org_slug: str
        team_slug: str | None = None
        actor_user_id: str | None = None
        identity: dict | None = None

    class WebhookRuleModel(pydantic.BaseModel):
        handler: str
        ordinal: int
        handler_config: str
        filter_expression: str

    msg = build_message(
        WebhookRuleModel(
            handler="github:create_issue",
            ordinal=3,
            handler_config='{"a": 1}',
            filter_expression="true",
        ),
        None,
        Ctx(project_id="p-1", project_slug="checkout", org_slug="acme"),
        "acme/checkout",
        inputs["event"],
        delivery_id="dlv-9",
    )
    data = json.loads(msg.body)["data"]
    envelope_validator.validate(data)
    assert msg.event_id == "dlv-9.3"
    assert data["rule"] == {
        "handler": "github#create_issue",
        "ordinal": 3,
        "handler_config": {"a": 1},
    }
    assert data["context"]["project_slug"] == "checkout"


def test_otel_span_is_propagated(inputs) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry import trace

    from imbi_worker_client.tracing import current_trace_headers

    assert current_trace_headers() == {}
    provider = sdk_trace.TracerProvider()
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /notifications/{id}") as span:
        headers = current_trace_headers()
        ctx = span.get_span_context()
    want = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
    assert headers == {"traceparent": want}
    msg = build(inputs, trace_headers=headers)
    assert json.loads(msg.body)["traceparent"] == want
    assert msg.headers["traceparent"] == want
    assert trace.get_current_span().get_span_context().is_valid is False


def test_random_inputs_validate_and_never_leak(inputs, envelope_validator) -> None:
    """Seeded random headers (sensitive names in random case) and payloads:
    every built event validates against the shared schema and no sensitive
    value reaches the body, in either mode."""
    import random

    from imbi_worker_client import sensitive_headers

    rng = random.Random(8)
    sensitive = sorted(sensitive_headers())
    plain = ["x-github-event", "user-agent", "content-type", "x-request-id"]
    for i in range(200):
        headers: dict[str, str] = {}
        secrets: list[str] = []
        for _ in range(rng.randint(0, 6)):
            name = rng.choice(sensitive + plain)
            name = "".join(c.upper() if rng.random() < 0.5 else c for c in name)
            value = f"v{i}-{rng.getrandbits(40):x}"
            headers[name] = value
            if name.lower() in sensitive:
                secrets.append(value)
        payload = {
            f"k{n}": rng.choice([None, True, 1.5, -3, "é✓", [1, {"a": None}], {"b": "c"}])
            for n in range(rng.randint(0, 5))
        }
        inputs["event"]["metadata"]["headers"] = headers
        inputs["event"]["payload"] = payload
        inputs["rule"]["ordinal"] = i
        mode = ContentMode.BINARY if i % 2 else ContentMode.STRUCTURED
        msg = build(inputs, mode=mode)
        data = json.loads(msg.body) if mode is ContentMode.BINARY else json.loads(msg.body)["data"]
        envelope_validator.validate(data)
        assert data["event"]["payload"] == payload
        assert msg.event_id == f"dlv-1.{i}"
        for secret in secrets:
            assert secret.encode() not in msg.body
            assert all(secret not in v for v in msg.headers.values())
