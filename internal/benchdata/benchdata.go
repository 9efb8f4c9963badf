// Package benchdata builds the CloudEvent the benchmark publishes
// (internal/bench), so the package benchmarks that quote per-event costs
// (internal/envelope) measure the very same bytes.
package benchdata

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// Size is the benchmark's default event size: 1.2 KiB.
const Size = 1229

// Handler is the benchmark's Go no-op action (bench/noop).
const Handler = "bench#noop"

// Event returns one structured action CloudEvent for Handler of about
// size bytes (the payload padded with a string), with the given id and
// the send time in payload.sent.
func Event(id string, size int, sentNanos int64) []byte {
	return EventFor(id, Handler, size, sentNanos)
}

// EventFor is Event for another handler ("<slug>#<action>", whose
// handler_config accepts {"label": "bench"}, e.g. the example Python
// plugin's example-py#noop); the padding keeps the size.
func EventFor(id, handler string, size int, sentNanos int64) []byte {
	slug, _, _ := strings.Cut(handler, "#")
	build := func(pad int) []byte {
		ev := map[string]any{
			"specversion": "1.0", "id": id, "source": "/imbi-gateway/webhooks/wh-1", "type": wire.EventType,
			"subject": handler, "time": "2026-11-25T12:00:00Z", "datacontenttype": "application/json",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"data": map[string]any{
				"rule":   map[string]any{"id": "r-1", "handler": handler, "handler_config": map[string]any{"label": "bench"}, "ordinal": 0},
				"plugin": map[string]any{"id": "pl-1", "slug": slug},
				"context": map[string]any{"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme", "team_slug": "payments",
					"actor_user_id": nil, "assignment_options": map[string]any{"service_slug": "github", "service_endpoint": "https://api.github.com"}},
				"external_identifier": "acme/checkout",
				"event": map[string]any{"type": "push", "third_party_service": "github", "attributed_to": "",
					"metadata": map[string]any{"webhook_id": "wh-1", "headers": map[string]any{"x-github-event": "push", "authorization": "[redacted]"}},
					"payload":  map[string]any{"ref": "refs/heads/main", "sent": strconv.FormatInt(sentNanos, 10), "pad": strings.Repeat("x", pad)}},
			},
		}
		b, err := json.Marshal(ev)
		if err != nil {
			panic(err) // a map of strings, numbers and maps always encodes
		}
		return b
	}
	b := build(0)
	if pad := size - len(b); pad > 0 {
		b = build(pad)
	}
	return b
}
