"""The wheel carries the shared data files byte for byte (one source of
truth: testdata/schemas), plus py.typed."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

SHARED = ("sensitive-headers.json", "action-envelope.v1.json", "action-outcome.v1.json")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> zipfile.ZipFile:
    pytest.importorskip("hatchling", reason="hatchling builds the wheel (requirements-dev.txt)")
    out = tmp_path_factory.mktemp("wheel")
    # --no-build-isolation: hatchling from the venv, no network needed.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(repo_root / "clients" / "python"),
        ],
        check=True,
        timeout=300,
    )
    (path,) = out.glob("imbi_worker_client-*.whl")
    with zipfile.ZipFile(path) as zf:
        yield zf


@pytest.mark.parametrize("name", SHARED)
def test_wheel_data_equals_repository_file(
    wheel: zipfile.ZipFile, repo_root: Path, name: str
) -> None:
    packaged = wheel.read(f"imbi_worker_client/_data/{name}")
    assert packaged == (repo_root / "testdata" / "schemas" / name).read_bytes()


def test_wheel_is_typed(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "imbi_worker_client/py.typed" in names
    assert "imbi_worker_client/__init__.py" in names
    assert not [n for n in names if "/tests/" in n or n.startswith("tests/")]
