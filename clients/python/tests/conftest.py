"""Shared fixtures: the repository's wire-contract files and sample inputs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
from jsonschema import Draft202012Validator
from nats.js.api import RetentionPolicy, StreamConfig

from support import REPO_ROOT, go_build, run_natsd

SCHEMAS = REPO_ROOT / "testdata" / "schemas"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def envelope_validator() -> Draft202012Validator:
    """The envelope schema the Go worker validates with (one file, both sides)."""
    schema = json.loads((SCHEMAS / "action-envelope.v1.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture(scope="session")
def sensitive_file() -> dict[str, Any]:
    return json.loads((SCHEMAS / "sensitive-headers.json").read_text())


@pytest.fixture
def inputs() -> dict[str, Any]:
    """The wire-contract §3 example as plain mappings (what a gateway has);
    a fresh copy per test."""
    inputs: dict[str, Any] = {
        "rule": {
            "id": "r-7",
            "handler": "github#create_issue",
            "handler_config": {
                "repository": "/payload/repository/full_name",
                "title": "Deploy of ${project_slug}",
            },
            "ordinal": 0,
        },
        "plugin": {"id": "pl-1", "slug": "github"},
        "context": {
            "project_id": "p-1",
            "project_slug": "checkout",
            "org_slug": "acme",
            "team_slug": "payments",
            "actor_user_id": None,
            "assignment_options": {
                "service_slug": "github",
                "service_endpoint": "https://api.github.com",
            },
        },
        "external_identifier": "acme/checkout",
        "event": {
            "type": "push",
            "third_party_service": "github",
            "attributed_to": "",
            "metadata": {
                "webhook_id": "wh-1",
                "headers": {"x-github-event": "push", "authorization": "Bearer s3cr3t"},
            },
            "payload": {"ref": "refs/heads/main"},
        },
    }
    return inputs


# --- real NATS (the worker's embedded nats-server) ---------------------------


@pytest.fixture(scope="session")
def natsd_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return go_build(
        "./clients/python/tests/testdata/natsd", tmp_path_factory.mktemp("natsd") / "natsd"
    )


@pytest.fixture(scope="session")
def natsd_url(natsd_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with run_natsd(natsd_binary, tmp_path_factory.mktemp("js")) as url:
        yield url


@pytest.fixture
async def work_stream(natsd_url: str) -> AsyncIterator[str]:
    """A fresh IMBI_ACTIONS stream (limits retention, so the tests can read
    back what was stored; 2-minute duplicate window as the worker sets)."""
    nc = await nats.connect(natsd_url)
    js = nc.jetstream()
    cfg = StreamConfig(
        name="IMBI_ACTIONS",
        subjects=["imbi.actions.>"],
        retention=RetentionPolicy.LIMITS,
        duplicate_window=120.0,
    )
    try:
        await js.delete_stream("IMBI_ACTIONS")
    except nats.js.errors.NotFoundError:
        pass
    await js.add_stream(cfg)
    try:
        yield natsd_url
    finally:
        await nc.close()
