"""Access to the wire-contract data files shared with the Go worker.

The files live once, in the repository's ``testdata/schemas/`` (the Go
binary embeds them). A wheel carries a copy made at build time (pyproject
``force-include``); an editable install or a source checkout reads the
repository file itself. There is no third copy to drift.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["SchemaFileNotFound", "load_json", "repository_schemas_dir"]

_PACKAGE_DATA = "_data"
_REPO_RELATIVE = Path("testdata") / "schemas"


class SchemaFileNotFound(FileNotFoundError):
    """Neither the packaged copy nor the repository file exists."""


def repository_schemas_dir() -> Path | None:
    """``testdata/schemas`` of the repository this source file sits in, if
    any (editable installs and tests)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / _REPO_RELATIVE
        if (candidate / "sensitive-headers.json").is_file():
            return candidate
    return None


def _read_bytes(name: str) -> bytes:
    packaged = resources.files(__package__).joinpath(_PACKAGE_DATA, name)
    if packaged.is_file():
        return packaged.read_bytes()
    repo = repository_schemas_dir()
    if repo is not None and (repo / name).is_file():
        return (repo / name).read_bytes()
    raise SchemaFileNotFound(
        f"{name}: not packaged in imbi_worker_client/{_PACKAGE_DATA} and no "
        f"repository {_REPO_RELATIVE} above {Path(__file__).parent}"
    )


@cache
def load_json(name: str) -> Any:
    """Parse a shared data file (``sensitive-headers.json``,
    ``action-envelope.v1.json``). Cached: the files never change at run
    time. Callers must not mutate the result."""
    return json.loads(_read_bytes(name))
