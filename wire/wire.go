// Package wire is the imbi-worker wire contract (docs: wire-contract v1) in
// Go: subjects, CloudEvent attributes, header names, dead-letter reasons and
// the typed envelope. Publishers and the worker both use it, so the two
// sides cannot drift.
package wire

import (
	"encoding/json"
	"strings"
)

// Contract version and CloudEvent attributes (wire-contract §3).
const (
	ContractVersion   = 1
	EventType         = "io.imbi.webhook.action.v1"
	SourcePrefix      = "/imbi-gateway/webhooks/"
	ContentTypeCE     = "application/cloudevents+json"
	ContentTypeJSON   = "application/json"
	EnvelopeSchemaV1  = "testdata/schemas/action-envelope.v1.json"
	SensitiveHdrsFile = "testdata/schemas/sensitive-headers.json"
)

// Default stream, subject and consumer names (wire-contract §2).
const (
	DefaultStream        = "IMBI_ACTIONS"
	DefaultSubjectPrefix = "imbi.actions"
	DefaultDLQStream     = "IMBI_ACTIONS_DLQ"
	DefaultDLQPrefix     = "imbi.dlq.actions"
	DefaultConsumer      = "imbi-worker"
	DefaultDoneBucket    = "imbi_actions_done"
	// DefaultLanesBucket holds rate-limit lane pauses (v1.1 §B).
	DefaultLanesBucket = "imbi_lanes"
	InvalidToken       = "_invalid"
)

// Outcome events (wire-contract v1.1 §C): one CloudEvent per settle
// decision on IMBI_OUTCOMES, subjects <prefix>.<plugin>.<action> (or
// <prefix>._invalid).
const (
	DefaultOutcomesStream = "IMBI_OUTCOMES"
	DefaultOutcomesPrefix = "imbi.outcomes"
	OutcomeEventType      = "io.imbi.webhook.action.outcome.v1"
	OutcomeSourcePrefix   = "/imbi-worker/"
	OutcomeSchemaV1       = "testdata/schemas/action-outcome.v1.json"
)

// OutcomeStatus is an outcome event's data.status.
type OutcomeStatus string

// Outcome statuses (v1.1 §C).
const (
	OutcomeSucceeded    OutcomeStatus = "succeeded"
	OutcomeRetrying     OutcomeStatus = "retrying"
	OutcomeDeadLettered OutcomeStatus = "dead_lettered"
	OutcomeDeduplicated OutcomeStatus = "deduplicated"
	OutcomePaused       OutcomeStatus = "paused"
)

// OutcomeStatuses lists every status.
var OutcomeStatuses = []OutcomeStatus{OutcomeSucceeded, OutcomeRetrying, OutcomeDeadLettered, OutcomeDeduplicated, OutcomePaused}

// Subject is the work subject of a handler: <prefix>.<plugin>.<action>.
func Subject(prefix string, h Handler) string {
	return prefix + "." + h.Plugin + "." + h.Action
}

// NATS and CloudEvents header names.
const (
	HeaderContentType = "Content-Type"
	HeaderMsgID       = "Nats-Msg-Id"
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
	CEHeaderPrefix    = "ce-"
)

// DLQHeaderPrefix starts every dead-letter header. Header names compare
// case-insensitively (IsDLQHeader).
const DLQHeaderPrefix = "Imbi-Dlq-"

// IsDLQHeader reports whether a header is one of the Imbi-Dlq-* headers,
// in any letter case: a replay drops them, a new dead-lettering replaces
// them.
func IsDLQHeader(name string) bool {
	return len(name) >= len(DLQHeaderPrefix) && strings.EqualFold(name[:len(DLQHeaderPrefix)], DLQHeaderPrefix)
}

// Dead-letter headers added to the original message (wire-contract §5).
const (
	DLQReason          = "Imbi-Dlq-Reason"
	DLQLastReason      = "Imbi-Dlq-Last-Reason"
	DLQError           = "Imbi-Dlq-Error"
	DLQAttempts        = "Imbi-Dlq-Attempts"
	DLQOriginalSubject = "Imbi-Dlq-Original-Subject"
	DLQOriginalSeq     = "Imbi-Dlq-Original-Seq"
	DLQFirstReceived   = "Imbi-Dlq-First-Received"
	DLQDeadAt          = "Imbi-Dlq-Dead-At"
	DLQWorker          = "Imbi-Dlq-Worker"
	DLQErrorMaxBytes   = 1024
)

// DLQRedacted is set on a dead letter whose body is not byte for byte the
// original: it lists (comma-separated JSON paths from the body's root) the
// sensitive webhook header values the worker replaced by "[redacted]"
// (wire-contract §5, decision 0006).
const DLQRedacted = "Imbi-Dlq-Redacted"

// DLQBodyOmitted is set on a dead letter stored without the event's body:
// the event was larger than the worker's --max-event-bytes and was neither
// decoded nor kept (no unredacted secret can be stored that way). Its
// value is the body's size in bytes. Such a letter cannot be replayed.
const DLQBodyOmitted = "Imbi-Dlq-Body-Omitted"

// Reason is a dead-letter reason code (wire-contract §4).
type Reason string

const (
	ReasonInvalidEvent       Reason = "invalid_event"
	ReasonUnsupportedType    Reason = "unsupported_type"
	ReasonInvalidHandler     Reason = "invalid_handler"
	ReasonUnknownHandler     Reason = "unknown_handler"
	ReasonInvalidConfig      Reason = "invalid_config"
	ReasonCredentialsMissing Reason = "credentials_missing"
	ReasonTimeout            Reason = "timeout"
	ReasonUnavailable        Reason = "unavailable"
	ReasonRateLimited        Reason = "rate_limited"
	ReasonPanic              Reason = "panic"
	ReasonActionFailed       Reason = "action_failed"
	ReasonMaxAttempts        Reason = "max_attempts"
	// ReasonUnsettled is the Last-Reason of a crash-looping message.
	ReasonUnsettled Reason = "unsettled"
)

// Reasons lists every reason code, for docs and metric label checks.
var Reasons = []Reason{
	ReasonInvalidEvent, ReasonUnsupportedType, ReasonInvalidHandler,
	ReasonUnknownHandler, ReasonInvalidConfig, ReasonCredentialsMissing,
	ReasonTimeout, ReasonUnavailable, ReasonRateLimited, ReasonPanic,
	ReasonActionFailed, ReasonMaxAttempts,
}

// Rule is the matched WebhookRule.
type Rule struct {
	ID            string          `json:"id,omitempty"`
	Handler       string          `json:"handler"`
	HandlerConfig json.RawMessage `json:"handler_config,omitempty"`
	Ordinal       int             `json:"ordinal"`
}

// PluginRef names the Plugin node that holds the credentials.
type PluginRef struct {
	ID   string `json:"id,omitempty"`
	Slug string `json:"slug,omitempty"`
}

// IsSensitiveHeader reports whether a header's value must be redacted
// (IsSensitiveName: one list for headers and body keys).
func IsSensitiveHeader(name string) bool { return IsSensitiveName(name) }

// Redacted is the value that replaces a sensitive header's.
const Redacted = "[redacted]"
