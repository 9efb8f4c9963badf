package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestTracingContinuesPublisherTrace: one consumer span per message in
// the publisher's trace (from the CE traceparent extension or the NATS
// header), with decode/resolve/validate_config/action children and the
// messaging attributes.
func TestTracingContinuesPublisherTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	rec := tracetest.NewSpanRecorder()
	cfg := e.config()
	cfg.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	_, _ = e.start(cfg)

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	seq := e.publishRaw("imbi.actions.test.ok", map[string]string{
		"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "traced",
		"Traceparent": "00-" + traceID + "-" + parent + "-01",
	}, event("traced", "test#ok", nil, "traced"))
	require.Eventually(t, func() bool { return e.gone(seq) }, 10*time.Second, 10*time.Millisecond)

	var names []string
	require.Eventually(t, func() bool {
		names = names[:0]
		for _, s := range rec.Ended() {
			names = append(names, s.Name())
		}
		return len(names) >= 5
	}, 5*time.Second, 10*time.Millisecond)
	var consumer sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		require.Equal(t, traceID, s.SpanContext().TraceID().String(), s.Name())
		if s.Name() == "process imbi.actions.test.ok" {
			consumer = s
		}
	}
	require.NotNil(t, consumer, "spans: %v", names)
	require.Equal(t, parent, consumer.Parent().SpanID().String())
	attrs := map[string]string{}
	for _, a := range consumer.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	require.Equal(t, "nats", attrs["messaging.system"])
	require.Equal(t, "imbi.actions.test.ok", attrs["messaging.destination.name"])
	require.Equal(t, "traced", attrs["messaging.message.id"])
	require.Equal(t, "1", attrs["messaging.message.delivery_count"])
	require.Equal(t, "test#ok", attrs["handler"])
	require.Equal(t, "ack", attrs["outcome"])
	require.Subset(t, names, []string{"decode", "resolve", "validate_config", "action"})
}
