from __future__ import annotations

from typing import Any

import pytest

from imbi_worker_client import (
    REDACTED,
    is_sensitive_header,
    is_sensitive_name,
    redact_headers,
    redact_json,
    sensitive_headers,
)
from imbi_worker_client.schemas import load_json, repository_schemas_dir


def test_list_is_the_shared_file(sensitive_file: dict[str, Any]) -> None:
    assert sensitive_headers() == frozenset(sensitive_file["headers"])
    assert REDACTED == sensitive_file["replacement"] == "[redacted]"


def test_plugins_spec_list_is_covered() -> None:
    # plugins-spec §6.5: the gateway's list. The shared file may add more,
    # never fewer.
    spec = {
        "authorization",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        "x-hub-signature",
        "x-hub-signature-256",
        "x-gitlab-token",
        "x-pagerduty-signature",
        "x-sonar-webhook-hmac-sha256",
    }
    assert spec <= sensitive_headers()


def test_source_checkout_reads_the_repository_file(repo_root) -> None:
    assert repository_schemas_dir() == repo_root / "testdata" / "schemas"
    assert load_json("sensitive-headers.json")["headers"]


@pytest.mark.parametrize("name", sorted(sensitive_headers()))
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_every_sensitive_header_is_redacted_in_any_case(name: str, case) -> None:
    header = case(name)
    assert is_sensitive_header(header)
    assert redact_headers({header: "s3cr3t", "x-github-event": "push"}) == {
        header: REDACTED,
        "x-github-event": "push",
    }


def test_redact_does_not_modify_input() -> None:
    given = {"Authorization": "Bearer t", "User-Agent": "GitHub-Hookshot"}
    out = redact_headers(given)
    assert given == {"Authorization": "Bearer t", "User-Agent": "GitHub-Hookshot"}
    assert out == {"Authorization": REDACTED, "User-Agent": "GitHub-Hookshot"}


@pytest.mark.parametrize("name", ["x-github-event", "content-type", "x-hub", "authorizations"])
def test_other_headers_are_kept(name: str) -> None:
    assert not is_sensitive_header(name)
    assert redact_headers({name: "v"}) == {name: "v"}


# Issue 12 §3: one list for headers and body keys, as in Go.
@pytest.mark.parametrize(
    "name",
    [
        "x-api-key",
        "X_API_KEY",
        "x-auth-token",
        "Private-Token",
        "api_key",
        "API-Key",
        "access_token",
        "Access-Token",
        "refresh_token",
        "password",
        "secret",
        "client_secret",
    ],
)
def test_credential_names_are_sensitive(name: str) -> None:
    assert is_sensitive_name(name)
    assert is_sensitive_header(name)


def test_redact_json_any_depth() -> None:
    doc = {
        "payload": {"items": [{"password": "s3cr3t", "n": 1}], "api_key": {"k": "s3cr3t"}},
        "context": {"identity": {"access_token": "a", "refresh_token": "r", "token_type": "Bearer"}},
        "ok": "v",
    }
    out = redact_json(doc)
    assert "s3cr3t" not in repr(out)
    assert out["context"]["identity"] == {"access_token": REDACTED, "refresh_token": REDACTED, "token_type": "Bearer"}
    assert out["payload"]["items"][0] == {"password": REDACTED, "n": 1}
    assert out["ok"] == "v"
    assert doc["payload"]["items"][0]["password"] == "s3cr3t"
