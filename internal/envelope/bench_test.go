package envelope

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

func BenchmarkDecodeStructured(b *testing.B) {
	dec := newDecoder(b)
	h := map[string][]string{"Content-Type": {wire.ContentTypeCE}, "Nats-Msg-Id": {"d-1.0"}}
	for _, c := range benchBodies(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.Decode(h, c.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidateSchema(b *testing.B) {
	v, err := newValidator()
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(validData)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.validateSchema(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeGeneric and BenchmarkEnvelopeFast compare the two
// envelope paths on the same data (docs/performance.md).
func BenchmarkEnvelopeGeneric(b *testing.B) {
	v, err := newValidator()
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(validData)
	b.ReportAllocs()
	for b.Loop() {
		if err := v.validateSchema(data); err != nil {
			b.Fatal(err)
		}
		if _, err := referenceDecode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEnvelopeFast(b *testing.B) {
	data := []byte(validData)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := decodeFast(data); !ok {
			b.Fatal("not taken by the fast path")
		}
	}
}

// benchBody is the structured CloudEvent internal/bench publishes: 1.2 KiB
// (-size 1229), the payload padded with a ~700-byte string.
func benchBody(t testing.TB) []byte {
	t.Helper()
	build := func(pad int) []byte {
		ev := map[string]any{
			"specversion": "1.0", "id": "d-1.0", "source": "/imbi-gateway/webhooks/wh-1", "type": wire.EventType,
			"subject": "bench#noop", "time": "2026-11-25T12:00:00Z", "datacontenttype": "application/json",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"data": map[string]any{
				"rule":   map[string]any{"id": "r-1", "handler": "bench#noop", "handler_config": map[string]any{"label": "bench"}, "ordinal": 0},
				"plugin": map[string]any{"id": "pl-1", "slug": "bench"},
				"context": map[string]any{"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme", "team_slug": "payments",
					"actor_user_id": nil, "assignment_options": map[string]any{"service_slug": "github", "service_endpoint": "https://api.github.com"}},
				"external_identifier": "acme/checkout",
				"event": map[string]any{"type": "push", "third_party_service": "github", "attributed_to": "",
					"metadata": map[string]any{"webhook_id": "wh-1", "headers": map[string]any{"x-github-event": "push", "authorization": "[redacted]"}},
					"payload":  map[string]any{"ref": "refs/heads/main", "sent": "1764072000000000000", "pad": strings.Repeat("x", pad)}},
			},
		}
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		return b
	}
	b := build(0)
	if pad := 1229 - len(b); pad > 0 {
		b = build(pad)
	}
	return b
}

// benchBodies: the envelope data of validData and of the benchmark's
// 1.2 KiB body, with the structured CloudEvent carrying each.
func benchBodies(b *testing.B) []struct {
	name       string
	data, body []byte
} {
	body := benchBody(b)
	var ev struct {
		Data json.RawMessage `json:"data"`
	}
	require.NoError(b, json.Unmarshal(body, &ev))
	return []struct {
		name       string
		data, body []byte
	}{
		{"validData", []byte(validData), structuredBody(b, nil)},
		{"bench1k2", ev.Data, body},
	}
}

// BenchmarkEnvelopeDecode: (*validator).decode, the envelope step of
// Decode, on both bodies.
func BenchmarkEnvelopeDecode(b *testing.B) {
	v, err := newValidator()
	require.NoError(b, err)
	for _, c := range benchBodies(b) {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.decode(c.data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
