from __future__ import annotations

import pytest

from imbi_worker_client import Handler, InvalidActionError, InvalidHandlerError, parse_handler


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("github#create_issue", Handler("github", "create_issue")),
        ("gateway-actions#update_project", Handler("gateway-actions", "update_project")),
        ("a#b", Handler("a", "b")),
        ("p1-x#a_2", Handler("p1-x", "a_2")),
        # legacy separator, normalised
        ("github:create_issue", Handler("github", "create_issue")),
    ],
)
def test_parse_handler_valid(value: str, want: Handler) -> None:
    got = parse_handler(value)
    assert got == want
    assert str(got) == f"{want.plugin}#{want.action}"
    assert got.subject() == f"imbi.actions.{want.plugin}.{want.action}"
    assert got.subject("x.y") == f"x.y.{want.plugin}.{want.action}"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "github",
        "github#",
        "#create_issue",
        "GitHub#create_issue",
        "github#Create",
        "github#create-issue",  # '-' only in the slug
        "1github#x",
        "github#_x",
        "git.hub#x",  # a '.' would split the NATS subject
        "github#x.y",
        "github#x\n",  # Python's '$' matches before a final newline; Go's does not
        "a:b:c",  # legacy form needs exactly one ':'
        "a#b:c",
        "a#b#c",
        "imbi.plugins.github:run",  # the old ImportString form
        " github#x",
    ],
)
def test_parse_handler_invalid(value: str) -> None:
    with pytest.raises(InvalidHandlerError) as info:
        parse_handler(value)
    assert str(info.value) == f"handler '{value}' must be '<plugin_slug>#<action_name>'"
    assert info.value.value == value
    assert isinstance(info.value, InvalidActionError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value", [None, 3, b"a#b"])
def test_parse_handler_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidHandlerError):
        parse_handler(value)  # type: ignore[arg-type]
