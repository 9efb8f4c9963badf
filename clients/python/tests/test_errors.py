from __future__ import annotations

import pytest

from imbi_worker_client import (
    AckTimeoutError,
    ConnectError,
    DeliveryPublishError,
    DeliveryResult,
    ImbiWorkerClientError,
    InvalidActionError,
    InvalidHandlerError,
    NoStreamError,
    NotConnectedError,
    PayloadTooLargeError,
    PublishError,
    PublishRejectedError,
    PublishResult,
    RuleResult,
)


@pytest.mark.parametrize(
    ("err", "retryable"),
    [
        (NotConnectedError("d.0", "imbi.actions.a.b", "closed"), True),
        (NoStreamError("d.0", "imbi.actions.a.b", "no stream"), True),
        (AckTimeoutError("d.0", "imbi.actions.a.b", "timeout"), True),
        (PayloadTooLargeError("d.0", "imbi.actions.a.b", 2048, 1024), False),
        (
            PublishRejectedError(
                "d.0", "imbi.actions.a.b", "jetstream not available", code=503, err_code=10008
            ),
            True,
        ),
        (
            PublishRejectedError(
                "d.0",
                "imbi.actions.a.b",
                "expected stream does not match",
                code=400,
                err_code=10060,
            ),
            False,
        ),
    ],
)
def test_publish_errors(err: PublishError, retryable: bool) -> None:
    assert isinstance(err, PublishError)
    assert isinstance(err, ImbiWorkerClientError)
    assert not isinstance(err, ValueError)
    assert err.retryable is retryable
    assert err.event_id == "d.0" and err.subject == "imbi.actions.a.b"
    assert str(err).startswith("publish d.0 to imbi.actions.a.b: ")


def test_rejected_error_carries_server_codes() -> None:
    err = PublishRejectedError("d.0", "s", "maximum messages exceeded", code=503, err_code=10077)
    assert (err.code, err.err_code) == (503, 10077)
    assert "maximum messages exceeded" in str(err)


def test_payload_too_large_reports_sizes() -> None:
    err = PayloadTooLargeError("d.0", "s", 2048, 1024)
    assert (err.size, err.limit) == (2048, 1024)
    assert "2048" in str(err) and "1024" in str(err)


def test_invalid_errors_are_value_errors_not_publish_errors() -> None:
    for err in (InvalidActionError("rule.ordinal", "bad"), InvalidHandlerError("x")):
        assert isinstance(err, ValueError)
        assert isinstance(err, ImbiWorkerClientError)
        assert not isinstance(err, PublishError)
    assert str(InvalidActionError("rule.ordinal", "bad")) == "invalid rule.ordinal: bad"
    assert InvalidHandlerError("x").field == "rule.handler"


def _ok(ordinal: int) -> RuleResult:
    ack = PublishResult(f"d.{ordinal}", "imbi.actions.a.b", "IMBI_ACTIONS", ordinal + 1, False)
    return RuleResult(ordinal, "a#b", f"d.{ordinal}", result=ack)


def test_delivery_result_ok() -> None:
    res = DeliveryResult("d", (_ok(0), _ok(1)))
    assert res.ok and res.failed == ()
    res.raise_for_errors()  # no error


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (AckTimeoutError("d.1", "s", "timeout"), True),
        (InvalidActionError("rule.handler_config", "not valid JSON"), False),
    ],
)
def test_delivery_result_failed(error: Exception, retryable: bool) -> None:
    bad = RuleResult(1, "a#b", "d.1", error=error)
    res = DeliveryResult("d", (_ok(0), bad, _ok(2)))
    assert not res.ok
    assert res.failed == (bad,)
    with pytest.raises(DeliveryPublishError) as info:
        res.raise_for_errors()
    err = info.value
    assert isinstance(err, PublishError)
    assert err.failed == (bad,) and len(err.results) == 3
    assert err.retryable is retryable
    assert str(err) == "delivery d: 1 of 3 rules not published (d.1)"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://user:secret@nats-1:4222", "nats://nats-1:4222"),
        ("tls://tok@nats-1:4222", "tls://nats-1:4222"),
        ("nats-1:4222", "nats-1:4222"),
        ("nats://nats-1:4222", "nats://nats-1:4222"),
    ],
)
def test_connect_error_never_shows_userinfo(url: str, shown: str) -> None:
    err = ConnectError([url], "NoServersError")
    assert err.servers == (shown,)
    assert str(err) == f"cannot connect to NATS {shown}: NoServersError"
    assert isinstance(err, ImbiWorkerClientError) and not isinstance(err, PublishError)
