package publisher_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

func sampleMessage() publisher.Message {
	team := "payments"
	return publisher.Message{
		DeliveryID: "d-42",
		ReceivedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Data: wiredata.ActionData{
			Rule: wire.Rule{
				ID: "r-7", Handler: "github#create_issue", Ordinal: 3,
				HandlerConfig: json.RawMessage(`{"title":"Deploy of ${project_slug}"}`),
			},
			Plugin: &wire.PluginRef{ID: "pl-1", Slug: "github"},
			Context: plugins.PluginContext{
				ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme", TeamSlug: &team,
			},
			ExternalIdentifier: "acme/checkout",
			Event: plugins.Event{
				Type: "push", ThirdPartyService: "github",
				Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{
					"x-github-event": "push", "Authorization": "Bearer s3cret-token",
				}},
				Payload: map[string]any{"ref": "refs/heads/main"},
			},
		},
	}
}

func TestNewEventFollowsTheContract(t *testing.T) {
	t.Parallel()
	m := sampleMessage()
	ev, err := publisher.NewEvent(m)
	require.NoError(t, err)

	require.Equal(t, "1.0", ev.SpecVersion())
	require.Equal(t, wire.EventType, ev.Type())
	require.Equal(t, "/imbi-gateway/webhooks/wh-1", ev.Source())
	require.Equal(t, "d-42.3", ev.ID())
	require.Equal(t, "github#create_issue", ev.Subject())
	require.Equal(t, m.ReceivedAt, ev.Time())
	require.Equal(t, wire.ContentTypeJSON, ev.DataContentType())

	var data wiredata.ActionData
	require.NoError(t, json.Unmarshal(ev.Data(), &data))
	require.Equal(t, wire.Redacted, data.Event.Metadata.Headers["Authorization"])
	require.Equal(t, "push", data.Event.Metadata.Headers["x-github-event"])
	require.NotContains(t, string(ev.Data()), "s3cret")
	// The caller's map is left alone.
	require.Equal(t, "Bearer s3cret-token", m.Data.Event.Metadata.Headers["Authorization"])
	requireEnvelopeValid(t, ev.Data())
}

func TestNewEventNormalisesLegacyHandlerAndEscapesSource(t *testing.T) {
	t.Parallel()
	m := sampleMessage()
	m.Data.Rule.Handler = "github:create_issue"
	m.Data.Event.Metadata.WebhookID = "wh 1/x"
	m.ID = "custom-id"
	ev, err := publisher.NewEvent(m)
	require.NoError(t, err)
	require.Equal(t, "github#create_issue", ev.Subject())
	require.Equal(t, "custom-id", ev.ID())
	require.Equal(t, "/imbi-gateway/webhooks/"+url.PathEscape("wh 1/x"), ev.Source())
	var data wiredata.ActionData
	require.NoError(t, json.Unmarshal(ev.Data(), &data))
	require.Equal(t, "github#create_issue", data.Rule.Handler)
}

func TestNewEventRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*publisher.Message)
		field string
	}{
		{"bad handler", func(m *publisher.Message) { m.Data.Rule.Handler = "GitHub/create" }, "data.rule.handler"},
		{"empty handler", func(m *publisher.Message) { m.Data.Rule.Handler = "" }, "data.rule.handler"},
		{"no webhook id", func(m *publisher.Message) { m.Data.Event.Metadata.WebhookID = "" }, "data.event.metadata.webhook_id"},
		{"no delivery id", func(m *publisher.Message) { m.DeliveryID = "" }, "delivery_id"},
		{"config not JSON", func(m *publisher.Message) { m.Data.Rule.HandlerConfig = json.RawMessage(`{nope`) }, "data.rule.handler_config"},
		{"identity", func(m *publisher.Message) {
			refresh := "refresh-secret-456"
			m.Data.Context.Identity = &plugins.IdentityCredentials{AccessToken: "tok-secret-123", RefreshToken: &refresh}
		}, "data.context.identity"},
		{"empty identity", func(m *publisher.Message) { m.Data.Context.Identity = &plugins.IdentityCredentials{} }, "data.context.identity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := sampleMessage()
			tc.edit(&m)
			_, err := publisher.NewEvent(m)
			require.ErrorIs(t, err, publisher.ErrInvalidMessage)
			var ime *publisher.InvalidMessageError
			require.ErrorAs(t, err, &ime)
			require.Equal(t, tc.field, ime.Field)
			require.NotContains(t, err.Error(), "secret")
		})
	}
}

func TestEncodeMsgStructured(t *testing.T) {
	t.Parallel()
	ev, err := publisher.NewEvent(sampleMessage())
	require.NoError(t, err)
	msg, err := publisher.EncodeMsg(context.Background(), ev, "imbi.actions.github.create_issue", publisher.Structured)
	require.NoError(t, err)
	require.Equal(t, wire.ContentTypeCE, msg.Header.Get(wire.HeaderContentType))
	require.Equal(t, "d-42.3", msg.Header.Get(wire.HeaderMsgID))
	require.Empty(t, msg.Header.Get(wire.HeaderTraceparent), "no span, no traceparent")

	var back event.Event
	require.NoError(t, back.UnmarshalJSON(msg.Data))
	require.Equal(t, ev.ID(), back.ID())
	require.JSONEq(t, string(ev.Data()), string(back.Data()))
}

func TestEncodeMsgBinary(t *testing.T) {
	t.Parallel()
	m := sampleMessage()
	m.ID = "id with space%"
	ev, err := publisher.NewEvent(m)
	require.NoError(t, err)
	msg, err := publisher.EncodeMsg(context.Background(), ev, "imbi.actions.github.create_issue", publisher.Binary)
	require.NoError(t, err)
	require.Equal(t, wire.ContentTypeJSON, msg.Header.Get(wire.HeaderContentType))
	require.Equal(t, "1.0", msg.Header.Get("ce-specversion"))
	require.Equal(t, wire.EventType, msg.Header.Get("ce-type"))
	require.Equal(t, "github#create_issue", msg.Header.Get("ce-subject"))
	require.Equal(t, "2026-11-25T10:00:00Z", msg.Header.Get("ce-time"))
	require.Equal(t, "id%20with%20space%25", msg.Header.Get("ce-id"))
	decoded, err := url.PathUnescape(msg.Header.Get("ce-id"))
	require.NoError(t, err)
	require.Equal(t, "id with space%", decoded)
	require.Equal(t, "id with space%", msg.Header.Get(wire.HeaderMsgID))
	require.Equal(t, []byte(ev.Data()), msg.Data)
}

func TestEncodeMsgInjectsTraceparentFromActiveSpan(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "publish")
	defer span.End()
	sc := span.SpanContext()
	want := fmt.Sprintf("00-%s-%s-01", sc.TraceID(), sc.SpanID())

	ev, err := publisher.NewEvent(sampleMessage())
	require.NoError(t, err)
	for _, mode := range []publisher.Mode{publisher.Structured, publisher.Binary} {
		t.Run(mode.String(), func(t *testing.T) {
			msg, err := publisher.EncodeMsg(ctx, ev, "imbi.actions.github.create_issue", mode)
			require.NoError(t, err)
			require.Equal(t, want, msg.Header.Get(wire.HeaderTraceparent))
			if mode == publisher.Binary {
				require.Equal(t, want, msg.Header.Get("ce-traceparent"))
				return
			}
			var back event.Event
			require.NoError(t, back.UnmarshalJSON(msg.Data))
			require.Equal(t, want, back.Extensions()["traceparent"])
		})
	}
	_, has := ev.Extensions()["traceparent"]
	require.False(t, has, "EncodeMsg must not modify the caller's event")
}

func TestPublishStoresAckedMessageAndDeduplicates(t *testing.T) {
	t.Parallel()
	nc, js, st := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := publisher.New(nc, publisher.Config{})
	require.NoError(t, err)
	defer p.Close()

	ack, err := p.Publish(ctx, sampleMessage())
	require.NoError(t, err)
	require.Equal(t, wire.DefaultStream, ack.Stream)
	require.False(t, ack.Duplicate)

	again, err := p.Publish(ctx, sampleMessage())
	require.NoError(t, err)
	require.True(t, again.Duplicate, "same CE id inside the duplicate window")

	raw, err := st.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	require.Equal(t, "imbi.actions.github.create_issue", raw.Subject)
	require.Equal(t, "d-42.3", raw.Header.Get(wire.HeaderMsgID))
	require.Equal(t, wire.ContentTypeCE, raw.Header.Get(wire.HeaderContentType))
	require.NotContains(t, string(raw.Data), "s3cret")
	_ = js
}

func TestPublishWithoutStreamIsPublishError(t *testing.T) {
	t.Parallel()
	nc, _, _ := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := publisher.New(nc, publisher.Config{SubjectPrefix: "nowhere"})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Publish(ctx, sampleMessage())
	var pe *publisher.PublishError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "nowhere.github.create_issue", pe.Subject)
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
}

func TestPublishAsyncBoundedPendingDeliversAll(t *testing.T) {
	t.Parallel()
	nc, _, st := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := publisher.New(nc, publisher.Config{MaxPending: 8, Mode: publisher.Binary})
	require.NoError(t, err)
	defer p.Close()

	const n = 2000
	for i := range n {
		m := sampleMessage()
		m.ID = fmt.Sprintf("load.%d", i)
		_, err := p.PublishAsync(ctx, m)
		require.NoError(t, err)
		require.LessOrEqual(t, p.Pending(), 8)
	}
	stats, err := p.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, publisher.Stats{Published: n, Acked: n}, stats)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	require.EqualValues(t, n, info.State.Msgs)
}

func TestPublishAsyncReportsFailures(t *testing.T) {
	t.Parallel()
	nc, _, _ := runJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := publisher.New(nc, publisher.Config{SubjectPrefix: "nowhere", AckTimeout: time.Second})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.PublishAsync(ctx, sampleMessage())
	require.NoError(t, err)
	stats, err := p.Wait(ctx)
	var pe *publisher.PublishError
	require.ErrorAs(t, err, &pe)
	require.EqualValues(t, 1, stats.Failed)
	require.EqualValues(t, 0, stats.Acked)
}

func TestClosedPublisherRefuses(t *testing.T) {
	t.Parallel()
	nc, _, _ := runJetStream(t)
	p, err := publisher.New(nc, publisher.Config{})
	require.NoError(t, err)
	p.Close()
	_, err = p.Publish(context.Background(), sampleMessage())
	require.True(t, errors.Is(err, publisher.ErrClosed))
	_, err = p.PublishMsgAsync(context.Background(), nats.NewMsg("x"))
	require.ErrorIs(t, err, publisher.ErrClosed)
}

// requireEnvelopeValid checks data against the envelope JSON Schema the
// worker validates with, so the publisher cannot drift from the worker.
func requireEnvelopeValid(t *testing.T, data []byte) {
	t.Helper()
	raw, err := imbiworker.Schemas.ReadFile(wire.EnvelopeSchemaV1)
	require.NoError(t, err)
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	const schemaURL = "https://imbi.io/schemas/worker/action-envelope.v1.json"
	require.NoError(t, c.AddResource(schemaURL, schemaDoc))
	schema, err := c.Compile(schemaURL)
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(data, &doc))
	require.NoError(t, schema.Validate(doc), strings.TrimSpace(string(data)))
}
