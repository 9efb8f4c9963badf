"""Ordered rule chains (wire contract §A): build_chain_message builds the
first step with data.chain holding the rest, valid against the envelope
schema the Go worker validates with, with the Go publisher's rules."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from imbi_worker_client import (
    MAX_CHAIN_STEPS,
    InvalidActionError,
    InvalidHandlerError,
    build_chain_message,
)


def actions(inputs: dict[str, Any], n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        a = copy.deepcopy(inputs)
        a["rule"] = {
            "id": f"r-{i}",
            "handler": "gateway-actions:step" if i else "github#create_issue",
            "handler_config": json.dumps({"n": i}),
            "ordinal": 10 + i,
        }
        a["plugin"] = {"id": f"pl-{i}"} if i else inputs["plugin"]
        out.append(a)
    return out


def test_first_step_carries_the_rest(
    inputs: dict[str, Any], envelope_validator: Draft202012Validator
) -> None:
    acts = actions(inputs, 3)
    msg = build_chain_message(list(reversed(acts)), delivery_id="dlv-1", on_failure="stop")
    envelope_validator.validate(msg.data)
    assert msg.event_id == "dlv-1.10"
    assert msg.headers["Nats-Msg-Id"] == "dlv-1.10"
    assert msg.subject == "imbi.actions.github.create_issue"
    chain = msg.data["chain"]
    assert chain["id"] == "dlv-1.p-1"
    assert chain["position"] == 0
    assert chain["on_failure"] == "stop"
    assert [s["rule"]["ordinal"] for s in chain["next"]] == [11, 12]
    assert chain["next"][0]["rule"]["handler"] == "gateway-actions#step"
    assert chain["next"][0]["rule"]["handler_config"] == {"n": 1}
    assert chain["next"][1]["plugin"] == {"id": "pl-2", "slug": "gateway-actions"}
    body = json.loads(msg.body)
    assert body["data"]["chain"] == chain


def test_single_rule_and_explicit_id(inputs: dict[str, Any]) -> None:
    msg = build_chain_message(actions(inputs, 1), delivery_id="dlv-1", chain_id="c-1")
    assert msg.data["chain"] == {"id": "c-1", "position": 0, "on_failure": "continue", "next": []}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda a: a.clear(), "actions"),
        (lambda a: a.append(copy.deepcopy(a[0])), "rule.ordinal"),
        (lambda a: a[2]["rule"].update(ordinal=10), "rule.ordinal"),
        (lambda a: a[0]["context"].update(project_id=""), "chain_id"),
    ],
)
def test_rejects(inputs: dict[str, Any], mutate: Any, field: str) -> None:
    acts = actions(inputs, 3)
    mutate(acts)
    with pytest.raises(InvalidActionError) as exc:
        build_chain_message(acts, delivery_id="dlv-1")
    assert exc.value.field == field


def test_bounds_and_options(inputs: dict[str, Any]) -> None:
    assert build_chain_message(actions(inputs, MAX_CHAIN_STEPS), delivery_id="d")
    with pytest.raises(InvalidActionError) as exc:
        build_chain_message(actions(inputs, MAX_CHAIN_STEPS + 1), delivery_id="d")
    assert exc.value.field == "actions"
    with pytest.raises(InvalidActionError) as exc:
        build_chain_message(actions(inputs, 2), delivery_id="d", on_failure="retry")
    assert exc.value.field == "on_failure"
    with pytest.raises(InvalidActionError) as exc:
        build_chain_message(actions(inputs, 2), delivery_id="d", chain_id="has space")
    assert exc.value.field == "chain_id"
    bad = actions(inputs, 2)
    bad[1]["rule"]["handler"] = "nope"
    with pytest.raises(InvalidHandlerError):
        build_chain_message(bad, delivery_id="d")
