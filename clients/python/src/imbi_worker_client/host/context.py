"""The PluginContext a webhook action receives (plugins-spec §4.9).

``imbi_common.plugins.PluginContext`` when that package is importable, else
this module's model of the same fields.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["PluginContext", "build_context", "context_model"]


class PluginContext(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    project_id: str
    project_slug: str
    org_slug: str
    team_slug: str | None = None
    environment: str | None = None
    assignment_options: dict[str, Any] = {}
    project_links: dict[str, str] = {}
    project_type_slugs: list[str] = []
    environment_config: dict[str, Any] = {}
    actor_user_id: str | None = None
    identity: Any | None = None


def context_model() -> type[BaseModel]:
    """imbi_common's PluginContext if importable, else this module's.
    Resolve it once (the host does, at start): a failed import is not
    cached by Python, so asking per run searched sys.path every time
    (about 100 µs a run, docs/performance.md §1)."""
    try:
        mod = importlib.import_module("imbi_common.plugins")
        return getattr(mod, "PluginContext")  # type: ignore[no-any-return]
    except Exception:
        return PluginContext


def build_context(raw: dict[str, Any], model: type[BaseModel] | None = None) -> BaseModel:
    """Validate the envelope's ``context`` (nulls read as empty, §7) with
    ``model`` (default: ``context_model()``)."""
    data = {k: v for k, v in raw.items() if v is not None}
    return (model or context_model()).model_validate(data)
