package publisher

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Mode is a CloudEvents NATS binding mode (wire-contract §3).
type Mode int

const (
	// Structured: Content-Type application/cloudevents+json, body = the
	// JSON event. What imbi-gateway sends; the default.
	Structured Mode = iota
	// Binary: ce-* headers, body = data, Content-Type application/json.
	// The worker accepts it too; tests use it.
	Binary
)

func (m Mode) String() string {
	if m == Binary {
		return "binary"
	}
	return "structured"
}

// traceContext is the W3C propagator. It is used directly rather than
// otel.GetTextMapPropagator(), whose default is a no-op: the contract
// wants traceparent whenever a span is active, whatever the process set up.
var traceContext = propagation.TraceContext{}

// EncodeMsg puts ev into a NATS message for subject in the given mode, with
// Nats-Msg-Id = the CloudEvent id (JetStream deduplicates on it). When ctx
// carries a valid span, its traceparent (and tracestate) become both a
// CloudEvent extension and NATS headers. ev itself is not modified.
func EncodeMsg(ctx context.Context, ev event.Event, subject string, mode Mode) (*nats.Msg, error) {
	if subject == "" {
		return nil, &InvalidMessageError{Field: "subject", Reason: "empty NATS subject"}
	}
	ev = ev.Clone()
	traceHeaders := injectTrace(ctx, &ev)
	if err := ev.Validate(); err != nil {
		return nil, &InvalidMessageError{Field: "event", Reason: "not a valid CloudEvent", Err: err}
	}

	msg := nats.NewMsg(subject)
	msg.Header.Set(wire.HeaderMsgID, ev.ID())
	for k, v := range traceHeaders {
		msg.Header.Set(k, v)
	}
	switch mode {
	case Structured:
		body, err := ev.MarshalJSON()
		if err != nil {
			return nil, &InvalidMessageError{Field: "event", Reason: "cannot encode", Err: err}
		}
		msg.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
		msg.Data = body
	case Binary:
		if err := writeBinary(ev, msg); err != nil {
			return nil, err
		}
	default:
		return nil, &InvalidMessageError{Field: "mode", Reason: fmt.Sprintf("unknown mode %d", int(mode))}
	}
	return msg, nil
}

// injectTrace adds the span of ctx to ev as the distributed-tracing
// extension and returns the same values as NATS headers. Without a valid
// span it keeps whatever traceparent ev already carries (a replayed or
// forwarded event keeps its trace).
func injectTrace(ctx context.Context, ev *event.Event) map[string]string {
	out := map[string]string{}
	if trace.SpanContextFromContext(ctx).IsValid() {
		carrier := propagation.MapCarrier{}
		traceContext.Inject(ctx, carrier)
		for _, k := range []string{wire.HeaderTraceparent, wire.HeaderTracestate} {
			if v := carrier.Get(k); v != "" {
				ev.SetExtension(k, v)
			}
		}
	}
	for _, k := range []string{wire.HeaderTraceparent, wire.HeaderTracestate} {
		if v, ok := ev.Extensions()[k]; ok {
			if s, ok := v.(string); ok && s != "" {
				out[k] = s
			}
		}
	}
	return out
}

// writeBinary fills msg in binary mode: every context attribute and
// extension as a ce-<name> header (values percent-encoded as the
// CloudEvents HTTP/NATS bindings require), body = the data bytes.
func writeBinary(ev event.Event, msg *nats.Msg) error {
	set := func(name, value string) {
		if value != "" {
			msg.Header.Set(wire.CEHeaderPrefix+name, percentEncode(value))
		}
	}
	set("specversion", ev.SpecVersion())
	set("id", ev.ID())
	set("source", ev.Source())
	set("type", ev.Type())
	set("subject", ev.Subject())
	if !ev.Time().IsZero() {
		set("time", ev.Time().UTC().Format("2006-01-02T15:04:05.999999999Z07:00"))
	}
	set("dataschema", ev.DataSchema())
	for name, v := range ev.Extensions() {
		s, err := extensionString(v)
		if err != nil {
			return &InvalidMessageError{Field: "extension " + name, Reason: "cannot encode", Err: err}
		}
		set(name, s)
	}
	ct := ev.DataContentType()
	if ct == "" {
		ct = wire.ContentTypeJSON
	}
	msg.Header.Set(wire.HeaderContentType, ct)
	msg.Data = ev.Data()
	return nil
}

func extensionString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case fmt.Stringer:
		return x.String(), nil
	default:
		b, err := json.Marshal(x)
		return strings.Trim(string(b), `"`), err
	}
}

// percentEncode escapes what the CloudEvents HTTP binding (§3.1.3.2, which
// the NATS binding follows) requires: space, '"', '%' and every byte outside
// printable ASCII.
func percentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f || c == '"' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
