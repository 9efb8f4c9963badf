"""imbi-plugin-host: runs Imbi Python webhook plugins for imbi-worker over
NATS request/reply (wire contract §D). Install with the ``host`` extra."""

from .errors import (
    PluginCredentialsMissing,
    PluginRateLimited,
    PluginTimeoutError,
    PluginUnavailableError,
    classify,
)
from .plugins import ENTRY_POINT_GROUP, LoadedAction, LoadedPlugin, LoadResult, load_plugins
from .service import (
    ANNOUNCE_SUBJECT,
    CATALOG_SUBJECT,
    RUN_PREFIX,
    SERVICE_NAME,
    PluginHost,
    keyring_from_env,
)

__all__ = [
    "ANNOUNCE_SUBJECT",
    "CATALOG_SUBJECT",
    "ENTRY_POINT_GROUP",
    "RUN_PREFIX",
    "SERVICE_NAME",
    "LoadResult",
    "LoadedAction",
    "LoadedPlugin",
    "PluginCredentialsMissing",
    "PluginHost",
    "PluginRateLimited",
    "PluginTimeoutError",
    "PluginUnavailableError",
    "classify",
    "keyring_from_env",
    "load_plugins",
]
