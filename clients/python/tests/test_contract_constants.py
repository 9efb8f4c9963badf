"""The Python client and the Go worker name the contract the same way.

The constants are read from the Go sources (wire/wire.go,
wire/handler.go) so a change on one side fails here until the other
side follows.
"""

from __future__ import annotations

import re

import pytest

from imbi_worker_client import (
    CONTENT_TYPE_CLOUDEVENTS,
    CONTENT_TYPE_JSON,
    DEFAULT_OUTCOMES_PREFIX,
    DEFAULT_OUTCOMES_STREAM,
    DEFAULT_STREAM,
    DEFAULT_SUBJECT_PREFIX,
    EVENT_TYPE,
    OUTCOME_EVENT_TYPE,
    OUTCOME_STATUSES,
    REDACTED,
)
from imbi_worker_client.envelope import HEADER_MSG_ID, SOURCE_PREFIX
from imbi_worker_client.handler import HANDLER_PATTERN
from support import REPO_ROOT


def go_string_const(path: str, name: str) -> str:
    src = (REPO_ROOT / path).read_text()
    m = re.search(rf'^\s*(?:const\s+)?{name}\s*=\s*"([^"]*)"', src, re.MULTILINE)
    assert m, f"{name} not found in {path}"
    return m.group(1)


@pytest.mark.parametrize(
    ("go_name", "python_value"),
    [
        ("EventType", EVENT_TYPE),
        ("SourcePrefix", SOURCE_PREFIX),
        ("ContentTypeCE", CONTENT_TYPE_CLOUDEVENTS),
        ("ContentTypeJSON", CONTENT_TYPE_JSON),
        ("DefaultStream", DEFAULT_STREAM),
        ("DefaultSubjectPrefix", DEFAULT_SUBJECT_PREFIX),
        ("HeaderMsgID", HEADER_MSG_ID),
        ("Redacted", REDACTED),
        ("OutcomeEventType", OUTCOME_EVENT_TYPE),
        ("DefaultOutcomesStream", DEFAULT_OUTCOMES_STREAM),
        ("DefaultOutcomesPrefix", DEFAULT_OUTCOMES_PREFIX),
    ],
)
def test_wire_constants_match_go(go_name: str, python_value: str) -> None:
    assert go_string_const("wire/wire.go", go_name) == python_value


def test_handler_regex_matches_go() -> None:
    src = (REPO_ROOT / "wire" / "handler.go").read_text()
    m = re.search(r"handlerPattern\s*=\s*regexp\.MustCompile\(`([^`]*)`\)", src)
    assert m, "handlerPattern not found in wire/handler.go"
    assert m.group(1) == HANDLER_PATTERN.pattern


def test_outcome_statuses_match_go() -> None:
    src = (REPO_ROOT / "wire" / "wire.go").read_text()
    go = re.findall(r'^\s*Outcome[A-Za-z]+\s+OutcomeStatus\s*=\s*"([^"]*)"', src, re.MULTILINE)
    assert go, "no OutcomeStatus constants in wire/wire.go"
    assert tuple(go) == OUTCOME_STATUSES
