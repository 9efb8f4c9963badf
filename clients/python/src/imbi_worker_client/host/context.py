"""The PluginContext a webhook action receives (plugins-spec §4.9).

``imbi_common.plugins.PluginContext`` when that package is importable, else
this module's model of the same fields.
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["PluginContext", "build_context"]


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


def _model() -> type[BaseModel]:
    try:
        mod = importlib.import_module("imbi_common.plugins")
        return getattr(mod, "PluginContext")  # type: ignore[no-any-return]
    except Exception:
        return PluginContext


def build_context(raw: dict[str, Any]) -> BaseModel:
    """Validate the envelope's ``context`` (nulls read as empty, §7)."""
    data = {k: v for k, v in raw.items() if v is not None}
    return _model().model_validate(data)
