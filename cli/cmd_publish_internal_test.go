package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

var publishInputNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestDecodePublishInput(t *testing.T) {
	t.Parallel()
	envelope := `{"rule":{"handler":"http:request","ordinal":2},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{"metadata":{"webhook_id":"wh-9","headers":{"Cookie":"c=1"}}}}`
	tests := []struct {
		name    string
		in      string
		wantErr string
		check   func(t *testing.T, id, subject, typ, source string, data []byte)
	}{
		{name: "cloud event kept as is", in: `{"specversion":"1.0","id":"e-1","type":"com.example.other","source":"/x","subject":"not a handler","data":{"a":1}}`,
			check: func(t *testing.T, id, subject, typ, source string, data []byte) {
				require.Equal(t, "e-1", id)
				require.Equal(t, "com.example.other", typ)
				require.Equal(t, "not a handler", subject)
				require.JSONEq(t, `{"a":1}`, string(data))
			}},
		{name: "event spec", in: `{"delivery_id":"dlv","time":"2026-01-02T03:04:05Z","data":` + envelope + `}`,
			check: func(t *testing.T, id, subject, typ, source string, data []byte) {
				require.Equal(t, "dlv.2", id)
				require.Equal(t, "http#request", subject, "legacy handler normalised")
				require.Equal(t, wire.EventType, typ)
				require.Equal(t, "/imbi-gateway/webhooks/wh-9", source)
				var d wiredata.ActionData
				require.NoError(t, json.Unmarshal(data, &d))
				require.Equal(t, wire.Redacted, d.Event.Metadata.Headers["Cookie"])
			}},
		{name: "spec with explicit id", in: `{"id":"fixed","data":` + envelope + `}`,
			check: func(t *testing.T, id, _, _, _ string, _ []byte) { require.Equal(t, "fixed", id) }},
		{name: "bare envelope gets a delivery id", in: envelope,
			check: func(t *testing.T, id, _, _, _ string, _ []byte) {
				require.Regexp(t, `^cli-20261125T120000-[0-9a-f]{8}\.2$`, id)
			}},
		{name: "not json", in: `nope`, wantErr: "not a JSON object"},
		{name: "array", in: `[1]`, wantErr: "not a JSON object"},
		{name: "null", in: `null`, wantErr: "not a JSON object"},
		{name: "typo in spec", in: `{"delivery":"x","data":` + envelope + `}`, wantErr: "neither a CloudEvent"},
		{name: "spec without data", in: `{"delivery_id":"x"}`, wantErr: `no "data"`},
		{name: "bad cloud event", in: `{"specversion":"1.0","id":""}`, wantErr: "not a valid CloudEvent"},
		{name: "bad handler", in: `{"delivery_id":"x","data":{"rule":{"handler":"Nope"},"event":{"metadata":{"webhook_id":"w"}}}}`, wantErr: "data.rule.handler"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, err := decodePublishInput([]byte(tc.in), publishInputNow)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			tc.check(t, ev.ID(), ev.Subject(), ev.Type(), ev.Source(), ev.Data())
		})
	}
}

// FuzzDecodePublishInput: publish reads files and stdin (outside input).
// Any bytes either fail with an error or give a valid CloudEvent.
func FuzzDecodePublishInput(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"e","type":"t","source":"/s"}`))
	f.Add([]byte(`{"delivery_id":"d","data":{"rule":{"handler":"a#b"},"event":{"metadata":{"webhook_id":"w"}}}}`))
	f.Add([]byte(`{"rule":{"handler":"a:b","handler_config":"{\"x\":1}"},"event":{"metadata":{"webhook_id":"w"}}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"e","type":"t","source":"/s","data_base64":"AAEC"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ev, err := decodePublishInput(in, publishInputNow)
		if err != nil {
			return
		}
		if verr := ev.Validate(); verr != nil {
			t.Fatalf("decoded an invalid CloudEvent: %v", verr)
		}
	})
}

func TestParseWhen(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Time
		wantErr bool
	}{
		{in: "", want: time.Time{}},
		{in: "2026-11-24T10:00:00Z", want: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)},
		{in: "2026-11-24T10:00:00+02:00", want: time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)},
		{in: "2026-11-20", want: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "2d", want: now.Add(-48 * time.Hour)},
		{in: "-5m", wantErr: true},
		{in: "yesterday", wantErr: true},
	}
	for _, tc := range tests {
		got, err := parseWhen(tc.in, now)
		if tc.wantErr {
			require.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, got, tc.in)
	}
}

func TestRedactNATSURL(t *testing.T) {
	t.Parallel()
	require.Equal(t, "nats://[redacted]@host:4222", redactNATSURL("nats://user:pa55@host:4222"))
	require.Equal(t, "nats://host:4222", redactNATSURL("nats://host:4222"))
	require.Equal(t, "[redacted]@host", redactNATSURL("tok@host"))
}

func TestParseHeaderFlags(t *testing.T) {
	t.Parallel()
	h, err := parseHeaderFlags([]string{"X-A: 1", "X-B=2", "X-A: 3"})
	require.NoError(t, err)
	require.Equal(t, []string{"1", "3"}, h.Values("X-A"))
	require.Equal(t, "2", h.Get("X-B"))
	for _, bad := range []string{"nocolon", ": v", "X Y: v", "X: a\r\nY: b"} {
		_, err := parseHeaderFlags([]string{bad})
		require.Error(t, err, bad)
	}
}
