"""Rule handlers: ``<plugin_slug>#<action_name>`` (plugins-spec §6.2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidHandlerError

__all__ = ["HANDLER_PATTERN", "Handler", "parse_handler"]

#: The gateway's handler regex; the Go worker uses the same one
#: (plugins/handler.go). Both tokens are valid NATS subject tokens.
HANDLER_PATTERN = re.compile(r"^[a-z][a-z0-9-]*#[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class Handler:
    """A parsed rule handler."""

    plugin: str
    action: str

    def __str__(self) -> str:
        return f"{self.plugin}#{self.action}"

    def subject(self, prefix: str = "imbi.actions") -> str:
        """The work subject, ``<prefix>.<plugin_slug>.<action_name>``."""
        return f"{prefix}.{self.plugin}.{self.action}"


def parse_handler(value: str) -> Handler:
    """Parse and validate a rule handler.

    The legacy ``<slug>:<action>`` form (imbi-common before 2.5.0) is
    accepted and normalised to ``#``, exactly as the worker does: only when
    there is no ``#`` and exactly one ``:``.
    """
    if not isinstance(value, str):
        raise InvalidHandlerError(repr(value))
    canonical = value
    if "#" not in value and value.count(":") == 1:
        canonical = value.replace(":", "#", 1)
    # fullmatch, not match: '$' in Python also matches before a final '\n'.
    if not HANDLER_PATTERN.fullmatch(canonical):
        raise InvalidHandlerError(value)
    plugin, _, action = canonical.partition("#")
    return Handler(plugin=plugin, action=action)
