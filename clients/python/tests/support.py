"""Helpers shared by the test modules (not fixtures)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]


def go_build(package: str, out: Path) -> Path:
    """Build a Go command of this repository (the tests' only way to get a
    nats-server or the worker: no binaries are downloaded)."""
    if shutil.which("go") is None:
        pytest.fail("go is not on PATH: the integration tests build the worker")
    done = subprocess.run(
        ["go", "build", "-o", str(out), package],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        pytest.fail(f"go build {package} failed:\n{done.stderr[-4000:]}")
    return out
