"""Webhook plugin discovery for the host (wire contract §D).

Plugins are found as Python Imbi finds them: entry points in group
``imbi.plugins``. A plugin is an ``imbi_common.plugins.WebhookActionPlugin``
subclass when that package is importable, or any object of the same shape:
a ``manifest`` whose ``plugin_type`` is ``'webhook'`` and an ``actions()``
returning descriptors with ``name``, ``label``, ``description``,
``callable`` and ``config_model`` (a pydantic model class). Descriptors may
also set ``timeout_seconds`` (the host's addition; the worker applies it).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

__all__ = ["ENTRY_POINT_GROUP", "LoadedAction", "LoadedPlugin", "LoadResult", "load_plugins"]

ENTRY_POINT_GROUP = "imbi.plugins"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_SLUG = re.compile(r"^[a-z][a-z0-9-]*$")

log = logging.getLogger("imbi_worker_client.host")


@dataclass(frozen=True)
class LoadedAction:
    name: str
    label: str
    description: str | None
    callable: Callable[..., Any]
    config_model: type[BaseModel]
    timeout_seconds: float | None

    def catalog_entry(self, slug: str, manifest: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "handler": f"{slug}#{self.name}",
            "label": self.label,
            "description": self.description,
            "config_schema": self.config_model.model_json_schema(),
            "manifest": dict(manifest),
            "timeout_seconds": self.timeout_seconds,
        }


@dataclass(frozen=True)
class LoadedPlugin:
    slug: str
    entry_point: str
    manifest: dict[str, Any]
    package_name: str
    package_version: str
    actions: dict[str, LoadedAction] = field(default_factory=dict)


@dataclass
class LoadResult:
    plugins: dict[str, LoadedPlugin] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _webhook_base() -> type | None:
    try:
        mod = importlib.import_module("imbi_common.plugins")
    except Exception:  # not installed (or broken): shape checks only
        return None
    return getattr(mod, "WebhookActionPlugin", None)


def _resolve(value: Any) -> Any:
    """Import strings (``pkg.mod:attr`` or ``pkg.mod.attr``) become objects."""
    if not isinstance(value, str):
        return value
    if value.count(":") > 1:
        raise ValueError("Import strings should have at most one ':'")
    mod_name, _, attr = value.partition(":") if ":" in value else value.rpartition(".")
    return getattr(importlib.import_module(mod_name), attr)


def _manifest_dict(manifest: Any) -> dict[str, Any]:
    if isinstance(manifest, BaseModel):
        return manifest.model_dump(mode="json")
    if isinstance(manifest, Mapping):
        return dict(manifest)
    raise ValueError("Missing or invalid manifest attribute")


def _load_one(obj: Any) -> tuple[dict[str, Any], dict[str, LoadedAction]]:
    base = _webhook_base()
    manifest = getattr(obj, "manifest", None)
    if manifest is None:
        raise ValueError("Missing or invalid manifest attribute")
    m = _manifest_dict(manifest)
    if m.get("plugin_type") != "webhook":
        raise _NotWebhook(str(m.get("plugin_type")))
    if base is not None and inspect.isclass(obj) and not issubclass(obj, base):
        log.warning("plugin %r has the webhook shape but does not subclass WebhookActionPlugin", obj)
    slug = m.get("slug")
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise ValueError(f"manifest slug {slug!r} must match {_SLUG.pattern}")
    actions_fn = getattr(obj, "actions", None)
    if not callable(actions_fn):
        raise ValueError("webhook plugin has no actions()")
    try:
        descriptors = actions_fn()
    except Exception as exc:
        raise ValueError(f"actions() raised: {exc}") from exc
    if not isinstance(descriptors, list):
        raise ValueError("actions() must return list[ActionDescriptor]")
    actions: dict[str, LoadedAction] = {}
    for d in descriptors:
        name = getattr(d, "name", None)
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError("actions() must return list[ActionDescriptor]")
        if name in actions:
            raise ValueError(f"Duplicate action names within plugin: ['{name}']")
        fn = _resolve(getattr(d, "callable", None))
        model = _resolve(getattr(d, "config_model", None))
        if not callable(fn):
            raise ValueError(f"action {name!r}: callable is not callable")
        if not (inspect.isclass(model) and issubclass(model, BaseModel)):
            raise ValueError(f"action {name!r}: config_model is not a pydantic model class")
        timeout = getattr(d, "timeout_seconds", None)
        actions[name] = LoadedAction(
            name=name,
            label=str(getattr(d, "label", "") or name),
            description=getattr(d, "description", None),
            callable=fn,
            config_model=model,
            timeout_seconds=float(timeout) if timeout else None,
        )
    return m, actions


class _NotWebhook(Exception):
    pass


def load_plugins(entry_points: Iterable[Any] | None = None) -> LoadResult:
    """Load every webhook plugin of group ``imbi.plugins``. Other plugin
    types are skipped silently (the host runs webhook actions only); broken
    entry points land in ``errors`` keyed by entry-point name."""
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    res = LoadResult()
    for ep in entry_points:
        try:
            obj = ep.load()
            manifest, actions = _load_one(obj)
        except _NotWebhook:
            continue
        except Exception as exc:
            res.errors[ep.name] = str(exc)
            log.error("failed to load plugin", extra={"entry_point": ep.name, "error": str(exc)})
            continue
        slug = manifest["slug"]
        if slug in res.plugins:
            res.errors[ep.name] = f"Duplicate plugin slug: {slug}"
            continue
        dist = getattr(ep, "dist", None)
        res.plugins[slug] = LoadedPlugin(
            slug=slug,
            entry_point=ep.name,
            manifest=manifest,
            package_name=getattr(dist, "name", None) or "unknown",
            package_version=getattr(dist, "version", None) or "unknown",
            actions=actions,
        )
    return res
