// Package envelope decodes a NATS message into an imbi action CloudEvent
// (wire-contract §3): either binding mode, the CloudEvents 1.0 attributes
// checked by sdk-go, the type checked, data decoded into wiredata.ActionData as
// the envelope JSON Schema allows, JSON read strictly by encoding/json/v2
// and jsontext (decision 0008). It knows nothing about JetStream.
package envelope

import (
	"bytes"
	"encoding/json/jsontext"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/aweber-imbi/imbi-worker/internal/chain"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// Mode is the CloudEvents NATS binding mode a message arrived in.
type Mode int

const (
	// Structured: the body is the JSON event (application/cloudevents+json).
	Structured Mode = iota + 1
	// Binary: attributes in ce-* headers, the body is data.
	Binary
)

func (m Mode) String() string {
	switch m {
	case Structured:
		return "structured"
	case Binary:
		return "binary"
	}
	return "unknown"
}

// Message is a decoded, validated action CloudEvent.
type Message struct {
	Mode  Mode
	Event event.Event
	// Data is the validated envelope (wire-contract §3 data).
	Data wiredata.ActionData
	// Chain is data.chain (wire-contract §A), validated; nil without one.
	Chain *wire.Chain
	// Traceparent and Tracestate are the W3C trace context: the CloudEvent
	// distributed-tracing extension when set, else the NATS header.
	Traceparent string
	Tracestate  string
}

// ID is the CloudEvent id, the idempotency key.
func (m *Message) ID() string { return m.Event.ID() }

// Error is a decode failure. Reason is the dead-letter reason code
// (invalid_event or unsupported_type); both are permanent.
type Error struct {
	Reason wire.Reason
	Err    error
}

func (e *Error) Error() string { return string(e.Reason) + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the dead-letter reason of a Decode error
// (invalid_event for errors that are not *Error).
func ReasonOf(err error) wire.Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return wire.ReasonInvalidEvent
}

func invalid(format string, args ...any) *Error {
	return &Error{Reason: wire.ReasonInvalidEvent, Err: fmt.Errorf(format, args...)}
}

// Decoder decodes and validates messages; safe for concurrent use.
type Decoder struct{}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder { return &Decoder{} }

// headerView is the subset of headers the decoder reads, found in one
// case-insensitive pass: nats.go's Header.Get is case-sensitive but the
// CloudEvents binding says names are not.
type headerView struct {
	contentType string
	traceparent string
	tracestate  string
	ce          map[string]string // lower-case attribute name (without "ce-") -> raw value
}

func viewHeaders(h map[string][]string) headerView {
	var v headerView
	for name, vals := range h {
		if len(vals) == 0 {
			continue
		}
		switch {
		case len(name) > 3 && strings.EqualFold(name[:3], wire.CEHeaderPrefix):
			if v.ce == nil {
				v.ce = make(map[string]string, 8)
			}
			v.ce[strings.ToLower(name[3:])] = vals[0]
		case strings.EqualFold(name, wire.HeaderContentType):
			v.contentType = vals[0]
		case strings.EqualFold(name, wire.HeaderTraceparent):
			v.traceparent = vals[0]
		case strings.EqualFold(name, wire.HeaderTracestate):
			v.tracestate = vals[0]
		}
	}
	return v
}

// Decode detects the binding mode (wire-contract §3), decodes the
// CloudEvent and validates it. On a validation failure after the
// attributes were read it returns the partial Message (Event set, Data
// zero) with the error, so callers can log the CloudEvent id.
// headers is a nats.Header (or any map of header values).
func (d *Decoder) Decode(headers map[string][]string, body []byte) (*Message, error) {
	hv := viewHeaders(headers)
	m := &Message{}
	var err error
	var data wiredata.ActionData
	var rawChain jsontext.Value
	decoded := false // data decoded while the structured body was scanned
	switch {
	case hv.ce["specversion"] != "":
		m.Mode = Binary
		err = decodeBinary(&m.Event, hv, body)
	case isStructured(hv.contentType, body):
		m.Mode = Structured
		decoded, err = decodeStructured(&m.Event, body, &data, &rawChain)
	default:
		return nil, invalid("not a CloudEvent: no ce-specversion header and content type %q is not %s", truncate(hv.contentType, 64), wire.ContentTypeCE)
	}
	if err != nil {
		return nil, err
	}
	m.Traceparent, m.Tracestate = hv.traceparent, hv.tracestate
	if tp, ok := stringExtension(m.Event, "traceparent"); ok {
		m.Traceparent = tp
		m.Tracestate, _ = stringExtension(m.Event, "tracestate")
	}
	if m.Event.Type() != wire.EventType {
		return m, &Error{Reason: wire.ReasonUnsupportedType, Err: fmt.Errorf("CloudEvent type %q is not %s", truncate(m.Event.Type(), 128), wire.EventType)}
	}
	// application/json, as sent, needs no second media type parse (sdk-go's
	// Validate parsed it once).
	if ct := m.Event.DataContentType(); ct != "" && ct != wire.ContentTypeJSON {
		if mt := m.Event.DataMediaType(); !isJSONMediaType(mt) {
			return m, invalid("datacontenttype %q is not JSON", truncate(mt, 64))
		}
	}
	if !decoded {
		if data, rawChain, err = decodeEnvelope(m.Event.Data()); err != nil {
			return m, err
		}
	}
	m.Data = data
	if m.Chain, err = chain.Parse(rawChain, m.Event.ID(), data.Rule); err != nil {
		return m, &Error{Reason: wire.ReasonInvalidEvent, Err: err} // a bad chain (wire-contract §A)
	}
	return m, nil
}

// isStructured: a cloudevents content type, or no content type and a body
// that is a JSON object naming specversion.
func isStructured(contentType string, body []byte) bool {
	if contentType != "" {
		const ce = "application/cloudevents"
		ct := strings.TrimSpace(contentType)
		return len(ct) >= len(ce) && strings.EqualFold(ct[:len(ce)], ce)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{' && bytes.Contains(body, []byte(`"specversion"`))
}

func decodeBinary(ev *event.Event, hv headerView, body []byte) error {
	attrs := make(map[string]string, len(hv.ce))
	for k, raw := range hv.ce {
		v, err := url.PathUnescape(raw)
		if err != nil {
			return invalid("header ce-%s: bad percent-encoding", truncate(k, 64))
		}
		attrs[k] = v
	}
	if attrs["specversion"] != event.CloudEventsVersionV1 {
		return invalid("specversion %q is not %s", truncate(attrs["specversion"], 16), event.CloudEventsVersionV1)
	}
	*ev = event.New(event.CloudEventsVersionV1)
	for k, v := range attrs {
		switch k {
		case "specversion":
		case "id":
			ev.SetID(v)
		case "source":
			ev.SetSource(v)
		case "type":
			ev.SetType(v)
		case "subject":
			ev.SetSubject(v)
		case "dataschema":
			ev.SetDataSchema(v)
		case "time":
			t, err := types.ParseTime(v)
			if err != nil {
				return invalid("header ce-time: %v", err)
			}
			ev.SetTime(t)
		case "datacontenttype":
			// The binding carries it in Content-Type; tolerate both.
			ev.SetDataContentType(v)
		default:
			ev.SetExtension(k, v)
		}
	}
	if hv.contentType != "" {
		ev.SetDataContentType(hv.contentType)
	}
	if !utf8.Valid(body) {
		return invalid("data is not UTF-8")
	}
	ev.DataEncoded = body
	return checkEvent(ev)
}

func checkEvent(ev *event.Event) error {
	if ev.SpecVersion() != event.CloudEventsVersionV1 {
		return invalid("specversion %q is not %s", truncate(ev.SpecVersion(), 16), event.CloudEventsVersionV1)
	}
	if err := ev.Validate(); err != nil {
		return invalid("CloudEvent attributes: %v", err)
	}
	return nil
}

func stringExtension(ev event.Event, name string) (string, bool) {
	ec, _ := ev.Context.(*event.EventContextV1) // checkEvent: always 1.0; Extensions() copies
	if ec == nil {
		return "", false
	}
	v, ok := ec.Extensions[name]
	if !ok { // ToString(nil) would build an error to say so
		return "", false
	}
	s, err := types.ToString(v)
	return s, err == nil && s != ""
}

func isJSONMediaType(ct string) bool {
	return ct == wire.ContentTypeJSON || strings.HasSuffix(ct, "+json") || ct == "text/json"
}

// truncate bounds attacker-controlled text copied into error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
