"""imbi-worker publisher client: what imbi-gateway uses to queue webhook
actions for the Go worker instead of running them inline.

One matched rule of one webhook delivery = one CloudEvent
(``io.imbi.webhook.action.v1``, wire contract v1) published to
``imbi.actions.<plugin_slug>.<action_name>`` on NATS JetStream.
"""

from .envelope import (
    CONTENT_TYPE_CLOUDEVENTS,
    CONTENT_TYPE_JSON,
    DEFAULT_SUBJECT_PREFIX,
    EVENT_TYPE,
    ActionRequest,
    ContentMode,
    EventMetadata,
    OutboundMessage,
    PluginContext,
    PluginRef,
    Rule,
    WebhookEvent,
    build_message,
    event_id,
    event_source,
)
from .errors import (
    AckTimeoutError,
    ConnectError,
    DeliveryPublishError,
    ImbiWorkerClientError,
    InvalidActionError,
    InvalidHandlerError,
    NoStreamError,
    NotConnectedError,
    PayloadTooLargeError,
    PublishError,
    PublishRejectedError,
)
from .handler import Handler, parse_handler
from .publisher import (
    DEFAULT_STREAM,
    ActionPublisher,
    DeliveryResult,
    PublishResult,
    RuleResult,
)
from .redaction import (
    REDACTED,
    is_sensitive_header,
    is_sensitive_name,
    redact_headers,
    redact_json,
    sensitive_headers,
)

__version__ = "1.0.0"

__all__ = [
    "CONTENT_TYPE_CLOUDEVENTS",
    "CONTENT_TYPE_JSON",
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT_PREFIX",
    "EVENT_TYPE",
    "REDACTED",
    "AckTimeoutError",
    "ActionPublisher",
    "ActionRequest",
    "ConnectError",
    "ContentMode",
    "DeliveryPublishError",
    "DeliveryResult",
    "EventMetadata",
    "Handler",
    "ImbiWorkerClientError",
    "InvalidActionError",
    "InvalidHandlerError",
    "NoStreamError",
    "NotConnectedError",
    "OutboundMessage",
    "PayloadTooLargeError",
    "PluginContext",
    "PluginRef",
    "PublishError",
    "PublishRejectedError",
    "PublishResult",
    "Rule",
    "RuleResult",
    "WebhookEvent",
    "build_message",
    "event_id",
    "event_source",
    "is_sensitive_header",
    "is_sensitive_name",
    "parse_handler",
    "redact_headers",
    "redact_json",
    "sensitive_headers",
]
