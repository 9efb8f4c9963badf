"""Helpers shared by the test modules (not fixtures)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
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


@contextlib.contextmanager
def run_natsd(binary: Path, data_dir: Path, *args: str) -> Iterator[str]:
    """A real nats-server with JetStream on 127.0.0.1 (random port); yields
    its URL and stops it (our own child, by closing its stdin)."""
    proc = subprocess.Popen(
        [str(binary), "--data-dir", str(data_dir), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("nats://"):
            pytest.fail(f"natsd did not start (printed {url!r})")
        yield url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
