"""ActionPublisher against a real nats-server with JetStream (the worker's
embedded server, built from this repository): acks, dedup, per-rule
delivery results, and every PublishError subclass from a real failure."""

from __future__ import annotations

import copy
import json
from typing import Any

import nats
import pytest

from imbi_worker_client import (
    DEFAULT_STREAM,
    AckTimeoutError,
    ActionPublisher,
    ActionRequest,
    ConnectError,
    InvalidActionError,
    InvalidHandlerError,
    NoStreamError,
    NotConnectedError,
    PayloadTooLargeError,
    PublishRejectedError,
)
from support import run_natsd


def args(inputs: dict[str, Any]) -> tuple[Any, ...]:
    return (
        inputs["rule"],
        inputs["plugin"],
        inputs["context"],
        inputs["external_identifier"],
        inputs["event"],
    )


async def stored(url: str, seq: int) -> Any:
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().get_msg("IMBI_ACTIONS", seq)
    finally:
        await nc.close()


async def stream_count(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info("IMBI_ACTIONS")
        return info.state.messages
    finally:
        await nc.close()


async def test_publish_action_is_acked_and_stored_as_built(work_stream: str, inputs) -> None:
    async with await ActionPublisher.connect(work_stream) as pub:
        built = pub.build(*args(inputs), delivery_id="dlv-a")
        res = await pub.publish_action(*args(inputs), delivery_id="dlv-a")
    assert (res.event_id, res.subject, res.stream, res.duplicate) == (
        "dlv-a.0",
        "imbi.actions.github.create_issue",
        "IMBI_ACTIONS",
        False,
    )
    msg = await stored(work_stream, res.seq)
    assert msg.subject == "imbi.actions.github.create_issue"
    assert msg.headers["Nats-Msg-Id"] == "dlv-a.0"
    assert "Nats-Expected-Stream" not in msg.headers  # off by default
    assert msg.headers["Content-Type"] == "application/cloudevents+json"
    ce = json.loads(msg.data)
    want = json.loads(built.body)
    ce.pop("time"), want.pop("time")
    assert ce == want
    assert b"s3cr3t" not in msg.data


async def test_duplicate_publish_is_dropped(work_stream: str, inputs) -> None:
    async with await ActionPublisher.connect(work_stream) as pub:
        first = await pub.publish_action(*args(inputs), delivery_id="dlv-dup")
        count = await stream_count(work_stream)
        second = await pub.publish_action(*args(inputs), delivery_id="dlv-dup")
        assert await stream_count(work_stream) == count
        other = await pub.publish_action(*args(inputs), delivery_id="dlv-other")
        assert await stream_count(work_stream) == count + 1
    assert first.duplicate is False
    assert second.duplicate is True and second.seq == first.seq
    assert other.duplicate is False


async def test_publish_delivery_per_rule_results(work_stream: str, inputs) -> None:
    def req(handler: str, ordinal: Any, **rule: Any) -> ActionRequest:
        r = {**copy.deepcopy(inputs["rule"]), "handler": handler, "ordinal": ordinal, **rule}
        return ActionRequest(r, None, inputs["context"], "acme/checkout", inputs["event"])

    requests = [
        req("github#create_issue", 2),
        req("http#request", 0, handler_config={"url": "http://127.0.0.1:1/x"}),
        req("Not A Handler", 1),
        req("github#comment", 3, handler_config="{broken"),
        req("github#create_issue", 5),
        req("github#close_issue", 5),  # same ordinal: same id, both refused
    ]
    async with await ActionPublisher.connect(work_stream) as pub:
        result = await pub.publish_delivery(requests, delivery_id="dlv-d")
    rows = [(r.ordinal, r.handler, r.event_id, r.ok) for r in result.results]
    assert rows == [
        (0, "http#request", "dlv-d.0", True),
        (1, "Not A Handler", None, False),
        (2, "github#create_issue", "dlv-d.2", True),
        (3, "github#comment", None, False),
        (5, "github#create_issue", None, False),
        (5, "github#close_issue", None, False),
    ]
    errors = [type(r.error) for r in result.failed]
    assert errors == [
        InvalidHandlerError,
        InvalidActionError,
        InvalidActionError,
        InvalidActionError,
    ]
    assert not result.ok
    ok = [r.result for r in result.results if r.ok]
    assert [o.subject for o in ok] == [
        "imbi.actions.http.request",
        "imbi.actions.github.create_issue",
    ]
    assert ok[0].seq < ok[1].seq  # ordinal order on the stream too
    with pytest.raises(Exception) as info:
        result.raise_for_errors()
    assert "4 of 6 rules not published" in str(info.value)


async def test_publish_delivery_accepts_mappings_and_is_retry_safe(
    work_stream: str, inputs
) -> None:
    reqs = [dict(inputs, rule={**inputs["rule"], "ordinal": n}) for n in range(3)]
    async with await ActionPublisher.connect(work_stream) as pub:
        first = await pub.publish_delivery(reqs, delivery_id="dlv-r")
        again = await pub.publish_delivery(reqs, delivery_id="dlv-r")
    assert first.ok and again.ok
    assert [r.result.duplicate for r in first.results] == [False] * 3
    assert [r.result.duplicate for r in again.results] == [True] * 3
    assert [r.event_id for r in again.results] == ["dlv-r.0", "dlv-r.1", "dlv-r.2"]


async def test_no_stream(work_stream: str, inputs) -> None:
    async with await ActionPublisher.connect(work_stream, subject_prefix="nostream.actions") as pub:
        with pytest.raises(NoStreamError) as info:
            await pub.publish_action(*args(inputs), delivery_id="dlv-n")
    assert info.value.retryable
    assert info.value.subject == "nostream.actions.github.create_issue"
    assert info.value.event_id == "dlv-n.0"


async def test_expected_stream(work_stream: str, inputs) -> None:
    async with await ActionPublisher.connect(work_stream, stream=DEFAULT_STREAM) as pub:
        res = await pub.publish_action(*args(inputs), delivery_id="dlv-s1")
    assert res.stream == DEFAULT_STREAM
    msg = await stored(work_stream, res.seq)
    assert msg.headers["Nats-Expected-Stream"] == DEFAULT_STREAM


async def test_wrong_expected_stream_is_rejected(work_stream: str, inputs) -> None:
    before = await stream_count(work_stream)
    async with await ActionPublisher.connect(work_stream, stream="SOMETHING_ELSE") as pub:
        with pytest.raises(PublishRejectedError) as info:
            await pub.publish_action(*args(inputs), delivery_id="dlv-s")
    assert info.value.code == 400 and info.value.err_code == 10060
    assert not info.value.retryable
    assert await stream_count(work_stream) == before


async def test_ack_timeout(work_stream: str, inputs) -> None:
    # A plain subscriber that never answers: the publish is delivered but
    # no PubAck ever comes.
    sink = await nats.connect(work_stream)
    got: list[bytes] = []

    async def swallow(msg: Any) -> None:
        got.append(msg.data)

    await sink.subscribe("silent.actions.>", cb=swallow)
    await sink.flush()
    try:
        async with await ActionPublisher.connect(
            work_stream, subject_prefix="silent.actions", ack_timeout=0.2
        ) as pub:
            with pytest.raises(AckTimeoutError) as info:
                await pub.publish_action(*args(inputs), delivery_id="dlv-t")
    finally:
        await sink.close()
    assert info.value.retryable and len(got) == 1


async def test_payload_too_large(work_stream: str, inputs) -> None:
    before = await stream_count(work_stream)
    async with await ActionPublisher.connect(work_stream) as pub:
        limit = pub.connection.max_payload
        inputs["event"]["payload"] = {"sbom": "x" * (limit + 1)}
        with pytest.raises(PayloadTooLargeError) as info:
            await pub.publish_action(*args(inputs), delivery_id="dlv-big")
        assert info.value.limit == limit and info.value.size > limit
        assert not info.value.retryable
        assert pub.connection.is_connected  # refused before sending
    assert await stream_count(work_stream) == before


async def test_closed_connection(work_stream: str, inputs) -> None:
    pub = await ActionPublisher.connect(work_stream)
    await pub.close()
    with pytest.raises(NotConnectedError) as info:
        await pub.publish_action(*args(inputs), delivery_id="dlv-c")
    assert "closed" in str(info.value)


async def test_borrowed_connection_is_not_closed(work_stream: str, inputs) -> None:
    nc = await nats.connect(work_stream)
    try:
        async with ActionPublisher(nc) as pub:
            await pub.publish_action(*args(inputs), delivery_id="dlv-b")
        assert nc.is_connected
    finally:
        await nc.close()


async def test_connect_passes_options_through(work_stream: str) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    pub = await ActionPublisher.connect(
        [work_stream], name="gateway-test", error_cb=on_error, max_reconnect_attempts=1
    )
    try:
        assert pub.connection.options["name"] == "gateway-test"
        assert pub.connection.options["max_reconnect_attempts"] == 1
    finally:
        await pub.close()
    assert pub.connection.is_closed


async def test_traceparent_on_the_wire(work_stream: str, inputs) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    from opentelemetry import trace

    # The request span comes from the application's tracer (here a local
    # SDK provider); the client's PRODUCER span is a child of it, and the
    # traceparent on the wire belongs to that trace.
    tracer = sdk_trace.TracerProvider().get_tracer("gateway")
    async with await ActionPublisher.connect(work_stream) as pub:
        with tracer.start_as_current_span("POST /notifications/{id}") as parent:
            res = await pub.publish_action(*args(inputs), delivery_id="dlv-tp")
            ctx = parent.get_span_context()
    msg = await stored(work_stream, res.seq)
    tp = msg.headers["traceparent"]
    version, trace_id, span_id, flags = tp.split("-")
    assert (version, trace_id) == ("00", f"{ctx.trace_id:032x}")
    assert len(span_id) == 16 and int(flags, 16) & 1 == 1
    assert json.loads(msg.data)["traceparent"] == tp
    assert trace.get_current_span().get_span_context().is_valid is False


async def test_no_traceparent_without_span(work_stream: str, inputs) -> None:
    async with await ActionPublisher.connect(work_stream) as pub:
        res = await pub.publish_action(*args(inputs), delivery_id="dlv-notp")
    msg = await stored(work_stream, res.seq)
    assert "traceparent" not in (msg.headers or {})
    assert "traceparent" not in json.loads(msg.data)


async def test_token_auth_is_passed_through(natsd_binary, tmp_path, inputs) -> None:
    with run_natsd(natsd_binary, tmp_path, "--token", "t0k3n") as url:
        nc = await nats.connect(url, token="t0k3n")
        await nc.jetstream().add_stream(name="IMBI_ACTIONS", subjects=["imbi.actions.>"])
        await nc.close()
        async with await ActionPublisher.connect(
            url, token="t0k3n", max_reconnect_attempts=1
        ) as pub:
            res = await pub.publish_action(*args(inputs), delivery_id="dlv-auth")
        assert res.stream == "IMBI_ACTIONS" and not res.duplicate

        with pytest.raises(ConnectError) as info:
            await ActionPublisher.connect(url, token="wrong", max_reconnect_attempts=1)
        assert info.value.servers == (url,)
        assert "wrong" not in str(info.value) and "t0k3n" not in str(info.value)


async def test_unreachable_server_is_connect_error() -> None:
    with pytest.raises(ConnectError) as info:
        await ActionPublisher.connect(
            ["nats://gateway:pa55w0rd@127.0.0.1:1"], connect_timeout=0.5, max_reconnect_attempts=1
        )
    assert info.value.servers == ("nats://127.0.0.1:1",)
    assert "pa55w0rd" not in str(info.value)
    assert info.value.__cause__ is None
