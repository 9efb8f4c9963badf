// Package publisher builds and publishes the CloudEvents of the imbi-worker
// wire contract (v1, docs: wire-contract §3) from typed inputs: the Go side
// of what imbi-gateway does in Python. Tests, load tools and a future Go
// gateway use it so that every publisher in this repository produces the
// same bytes the worker expects.
//
// One Message is one matched rule of one webhook delivery. NewEvent turns it
// into a CloudEvent (type io.imbi.webhook.action.v1, id
// "<delivery_id>.<ordinal>", subject = the rule's handler); EncodeMsg puts
// an event into a NATS message in structured (the default) or binary mode;
// Publisher publishes to JetStream, synchronously (acked) or asynchronously
// with a bounded number of unacknowledged messages.
package publisher

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// Message is the typed input of one CloudEvent.
type Message struct {
	// DeliveryID identifies the webhook delivery. The CloudEvent id is
	// "<DeliveryID>.<Data.Rule.Ordinal>", unique per (delivery, rule): it is
	// the worker's idempotency key and the JetStream Nats-Msg-Id.
	DeliveryID string
	// ID, when set, is used as the CloudEvent id instead of the derived one
	// (load tools give each copy its own id).
	ID string
	// ReceivedAt is when the gateway received the webhook (the CloudEvent
	// time). Zero means now.
	ReceivedAt time.Time
	// Data is the event data. Data.Rule.Handler is required (the legacy
	// "<slug>:<action>" form is normalised to '#'), and so is
	// Data.Event.Metadata.WebhookID (it names the CloudEvent source).
	// Sensitive headers in Data.Event.Metadata.Headers are redacted in the
	// event; the caller's map is not modified.
	Data wiredata.ActionData
	// Chain is data.chain (wire-contract §A); PublishChain sets it.
	Chain *wire.Chain
}

// EventID is the CloudEvent id the contract derives from a delivery and a
// rule ordinal.
func EventID(deliveryID string, ordinal int) string {
	return deliveryID + "." + strconv.Itoa(ordinal)
}

// Source is the CloudEvent source of a webhook.
func Source(webhookID string) string {
	return wire.SourcePrefix + url.PathEscape(webhookID)
}

// NewEvent builds the CloudEvent of m. Errors are *InvalidMessageError.
func NewEvent(m Message) (event.Event, error) {
	data := m.Data
	h, err := wire.ParseHandler(data.Rule.Handler)
	if err != nil {
		return event.Event{}, &InvalidMessageError{Field: "data.rule.handler", Reason: "not <plugin_slug>#<action_name>", Err: err}
	}
	data.Rule.Handler = h.String()
	if data.Context.Identity != nil {
		// As the Python client (InvalidActionError "context.identity"): a
		// user's access and refresh tokens must not reach the stream or a
		// dead letter.
		return event.Event{}, &InvalidMessageError{Field: "data.context.identity",
			Reason: "holds user credentials and is never published; the worker resolves identities itself"}
	}
	if data.Event.Metadata.WebhookID == "" {
		return event.Event{}, &InvalidMessageError{Field: "data.event.metadata.webhook_id", Reason: "required (it names the CloudEvent source)"}
	}
	id := m.ID
	if id == "" {
		if m.DeliveryID == "" {
			return event.Event{}, &InvalidMessageError{Field: "delivery_id", Reason: "required when no explicit id is given"}
		}
		id = EventID(m.DeliveryID, data.Rule.Ordinal)
	}
	if len(data.Rule.HandlerConfig) > 0 && !json.Valid(data.Rule.HandlerConfig) {
		return event.Event{}, &InvalidMessageError{Field: "data.rule.handler_config", Reason: "not valid JSON"}
	}
	if data.Event.Metadata.Headers != nil {
		// Redact here too: the gateway already does, but a publisher that
		// forgets must not put a secret on the wire.
		data.Event.Metadata.Headers = wire.RedactHeaders(maps.Clone(data.Event.Metadata.Headers))
	}
	when := m.ReceivedAt
	if when.IsZero() {
		when = time.Now()
	}

	ev := event.New()
	ev.SetID(id)
	ev.SetType(wire.EventType)
	ev.SetSource(Source(data.Event.Metadata.WebhookID))
	ev.SetSubject(h.String())
	ev.SetTime(when.UTC())
	var payload any = data
	if m.Chain != nil {
		payload = struct {
			wiredata.ActionData
			Chain *wire.Chain `json:"chain"`
		}{data, m.Chain}
	}
	if err := ev.SetData(wire.ContentTypeJSON, payload); err != nil {
		return event.Event{}, &InvalidMessageError{Field: "data", Reason: "cannot encode as JSON", Err: err}
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, &InvalidMessageError{Field: "event", Reason: "not a valid CloudEvent", Err: err}
	}
	return ev, nil
}

// SubjectFor is the work subject of an event: <prefix>.<plugin>.<action>
// from the CloudEvent subject (the handler). prefix "" means the default
// (imbi.actions). An event whose subject is not a handler has no work
// subject; publish such a test event with an explicit subject.
func SubjectFor(prefix string, ev event.Event) (string, error) {
	if prefix == "" {
		prefix = wire.DefaultSubjectPrefix
	}
	h, err := wire.ParseHandler(ev.Subject())
	if err != nil {
		return "", &InvalidMessageError{Field: "subject", Reason: fmt.Sprintf("CloudEvent subject %q is not a handler", ev.Subject()), Err: err}
	}
	return wire.Subject(prefix, h), nil
}
