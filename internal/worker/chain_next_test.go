package worker

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestChainNextStep: the continuation of a structured and of a binary
// first step is the same data with rule/plugin from next[0], the rest of
// next, position + 1, every other member kept; CE id and Nats-Msg-Id
// <chain.id>.<ordinal>, subject from the handler, traceparent of the
// current span; and the worker's decoder accepts it as position 1.
func TestChainNextStep(t *testing.T) {
	chain := chainOf("c-next", "stop", []step{{"test#ok", nil}, {"test#flaky", map[string]any{"fail_times": 1}}, {"http#request", map[string]any{"url": "http://x/"}}})
	structured := chainEvent("d-next.0", step{"test#ok", nil}, "p-next", chain)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(structured, &ev))
	ev["data"].(map[string]any)["x_extra"] = map[string]any{"kept": true}
	structured, err := json.Marshal(ev)
	require.NoError(t, err)
	data, err := json.Marshal(ev["data"])
	require.NoError(t, err)
	binaryHeaders := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {"d-next.0"}, "ce-source": {"/imbi-gateway/webhooks/wh-1"},
		"ce-type": {wire.EventType}, "ce-subject": {url.PathEscape("test#ok")}, "Content-Type": {wire.ContentTypeJSON}}

	dec := envelope.NewDecoder()
	h, err := newChainHook(nil, "imbi.actions", noop.NewMeterProvider(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, span := sdktrace.NewTracerProvider().Tracer("t").Start(context.Background(), "step 1")
	defer span.End()

	for _, tc := range []struct {
		name    string
		headers map[string][]string
		body    []byte
	}{
		{"structured", map[string][]string{"Content-Type": {wire.ContentTypeCE}}, structured},
		{"binary", binaryHeaders, data},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := dec.Decode(tc.headers, tc.body)
			require.NoError(t, err)
			require.NotNil(t, first.Chain)
			msg, err := h.nextStep(ctx, first, first.Chain)
			require.NoError(t, err)
			require.Equal(t, "imbi.actions.test.flaky", msg.Subject)
			require.Equal(t, "c-next.1", msg.Header.Get(wire.HeaderMsgID))
			require.Contains(t, msg.Header.Get(wire.HeaderTraceparent), span.SpanContext().SpanID().String())

			next, err := dec.Decode(msg.Header, msg.Data)
			require.NoError(t, err)
			require.Equal(t, first.Mode, next.Mode)
			require.Equal(t, "c-next.1", next.ID())
			require.Equal(t, "test#flaky", next.Event.Subject())
			require.Equal(t, "test#flaky", next.Data.Rule.Handler)
			require.Equal(t, 1, next.Data.Rule.Ordinal)
			require.JSONEq(t, `{"fail_times":1}`, string(next.Data.Rule.HandlerConfig))
			require.Equal(t, "test", next.Data.Plugin.Slug)
			require.Equal(t, first.Data.Context, next.Data.Context)
			require.Equal(t, first.Data.Event, next.Data.Event)
			require.Equal(t, &wire.Chain{ID: "c-next", Position: 1, OnFailure: "stop", Next: first.Chain.Next[1:]}, next.Chain)
			var body map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(next.Event.Data(), &body))
			require.JSONEq(t, `{"kept":true}`, string(body["x_extra"]), "other data members are kept")

			last, err := h.nextStep(ctx, next, next.Chain)
			require.NoError(t, err)
			decoded, err := dec.Decode(last.Header, last.Data)
			require.NoError(t, err)
			require.Equal(t, "c-next.2", decoded.ID())
			require.Equal(t, 2, decoded.Chain.Position)
			require.Empty(t, decoded.Chain.Next)
		})
	}
}
