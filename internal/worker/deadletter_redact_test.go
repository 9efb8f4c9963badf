package worker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func TestRedactDeadLetterBody(t *testing.T) {
	t.Parallel()
	structured := &envelope.Message{Mode: envelope.Structured}
	binary := &envelope.Message{Mode: envelope.Binary}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		name      string
		ev        *envelope.Message
		body      string
		want      string // "" = body unchanged
		wantPaths []string
	}{
		{
			name:      "structured leak: only the values change, every other byte kept",
			ev:        structured,
			body:      `{"id":"x","n":1.50e2, "data": {"event" : {"metadata":{"headers":{"X-GitHub-Event":"push","Authorization": "Bearer s3cret","cookie":"a=b"}}}},"z":[1]}`,
			want:      `{"id":"x","n":1.50e2, "data": {"event" : {"metadata":{"headers":{"X-GitHub-Event":"push","Authorization": "[redacted]","cookie":"[redacted]"}}}},"z":[1]}`,
			wantPaths: []string{"data.event.metadata.headers.Authorization", "data.event.metadata.headers.cookie"},
		},
		{
			name: "already redacted by the publisher: byte for byte",
			ev:   structured,
			body: `{"data":{"event":{"metadata":{"headers":{"authorization":"[redacted]","x":"y"}}}}}`,
		},
		{
			name: "no webhook headers: byte for byte",
			ev:   structured,
			body: `{"data":{"event":{"metadata":{}}},"authorization":"not a webhook header"}`,
		},
		{
			name: "sensitive name outside the headers object is not touched",
			ev:   structured,
			body: `{"data":{"event":{"payload":{"authorization":"x"},"metadata":{"headers":{"ok":"1"}}}}}`,
		},
		{
			name:      "binary mode: the body is data",
			ev:        binary,
			body:      `{"event":{"metadata":{"headers":{"cookie":"session=s3cret"}}}}`,
			want:      `{"event":{"metadata":{"headers":{"cookie":"[redacted]"}}}}`,
			wantPaths: []string{"event.metadata.headers.cookie"},
		},
		{
			name:      "non-string value and escaped key name",
			ev:        structured,
			body:      `{"data":{"event":{"metadata":{"headers":{"auth\u006frization":["Bearer s3cret"]}}}}}`,
			want:      `{"data":{"event":{"metadata":{"headers":{"auth\u006frization":"[redacted]"}}}}}`,
			wantPaths: []string{"data.event.metadata.headers.authorization"},
		},
		{
			name:      "duplicate keys: every occurrence",
			ev:        structured,
			body:      `{"data":{"event":{"metadata":{"headers":{"cookie":"a"}}}},"data":{"event":{"metadata":{"headers":{"cookie":"b"}}}}}`,
			want:      `{"data":{"event":{"metadata":{"headers":{"cookie":"[redacted]"}}}},"data":{"event":{"metadata":{"headers":{"cookie":"[redacted]"}}}}}`,
			wantPaths: []string{"data.event.metadata.headers.cookie", "data.event.metadata.headers.cookie"},
		},
		{
			name:      "structured data_base64",
			ev:        structured,
			body:      `{"id":"x","data_base64":"` + b64(`{"event":{"metadata":{"headers":{"authorization":"s3cret"}}}}`) + `"}`,
			want:      `{"id":"x","data_base64":"` + b64(`{"event":{"metadata":{"headers":{"authorization":"[redacted]"}}}}`) + `"}`,
			wantPaths: []string{"data_base64.event.metadata.headers.authorization"},
		},
		{
			name: "not a CloudEvent: byte for byte",
			ev:   nil,
			body: `{"data":{"event":{"metadata":{"headers":{"authorization":"s3cret"}}}}}`,
		},
		{
			name: "not JSON: byte for byte",
			ev:   structured,
			body: `{"data":{"event":{"metadata":{"headers":{"authorization":"s3cret"`,
		},
		{
			name: "trailing garbage: byte for byte",
			ev:   structured,
			body: `{"data":{"event":{"metadata":{"headers":{"authorization":"s3cret"}}}}} {}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, paths := redactDeadLetterBody(tc.ev, []byte(tc.body))
			want := tc.want
			if want == "" {
				want = tc.body
			}
			require.Equal(t, want, string(got))
			require.Equal(t, tc.wantPaths, paths)
		})
	}
}

// TestDeadLetterRedactsLeakedBodyHeaders: a dead-lettered structured event
// whose publisher left an authorization header unredacted in
// data.event.metadata.headers keeps everything but that value, and the
// letter names the path in Imbi-Dlq-Redacted. A clean event is dead-lettered
// byte for byte without the header.
func TestDeadLetterRedactsLeakedBodyHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	_, stop := e.start(e.config())
	defer func() { require.NoError(t, stop()) }()

	clean := event("dr-clean", "test#permanent", nil, "dr-clean")
	leaky := bytes.Replace(event("dr-leaky", "test#permanent", nil, "dr-leaky"),
		[]byte(`"authorization":"[redacted]"`), []byte(`"authorization":"Bearer CANARY-dr"`), 1)
	require.Contains(t, string(leaky), "CANARY-dr")
	hdr := func(id string) map[string]string {
		return map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id}
	}
	e.publishRaw(subjectOf("test#permanent"), hdr("dr-clean"), clean)
	e.publishRaw(subjectOf("test#permanent"), hdr("dr-leaky"), leaky)

	dl := e.waitDLQ("dr-clean", 10*time.Second)
	require.Equal(t, clean, dl.Data, "clean body not byte for byte")
	require.Empty(t, dl.Header.Get(wire.DLQRedacted))

	dl = e.waitDLQ("dr-leaky", 10*time.Second)
	require.NotContains(t, string(dl.Data), "CANARY-dr")
	require.Equal(t, "data.event.metadata.headers.authorization", dl.Header.Get(wire.DLQRedacted))
	require.Equal(t, string(wire.ReasonActionFailed), dl.Header.Get(wire.DLQReason))
	// Only the value changed: the original with the value replaced.
	require.Equal(t, strings.Replace(string(leaky), "Bearer CANARY-dr", wire.Redacted, 1), string(dl.Data))
}

// FuzzRedactDeadLetterBody: for any body, either it is returned byte for
// byte with no path, or every change is a sensitive header value turned
// into "[redacted]": the result is valid JSON equal to the input decoded
// with those values replaced, and redacting again changes nothing.
func FuzzRedactDeadLetterBody(f *testing.F) {
	f.Add([]byte(`{"data":{"event":{"metadata":{"headers":{"authorization":"Bearer x","a":"b"}}}}}`), false)
	f.Add([]byte(`{"event":{"metadata":{"headers":{"Cookie":[1,{"x":2}],"cookie":null}}}}`), true)
	f.Add([]byte(`{"data_base64":"eyJldmVudCI6eyJtZXRhZGF0YSI6eyJoZWFkZXJzIjp7ImNvb2tpZSI6IngifX19fQ=="}`), false)
	f.Fuzz(func(t *testing.T, body []byte, isBinary bool) {
		ev := &envelope.Message{Mode: envelope.Structured}
		path := structuredHeadersPath
		if isBinary {
			ev.Mode, path = envelope.Binary, binaryHeadersPath
		}
		in := bytes.Clone(body)
		out, paths := redactDeadLetterBody(ev, body)
		require.Equal(t, in, body, "input modified")
		if len(paths) == 0 {
			require.Equal(t, body, out, "changed without a path")
			return
		}
		require.True(t, json.Valid(out), "redacted body is not JSON: %q", out)
		for _, p := range paths {
			name := p[strings.LastIndexByte(p, '.')+1:]
			require.True(t, wire.IsSensitiveHeader(name), "path %q", p)
		}
		again, morePaths := redactDeadLetterBody(ev, out)
		require.Empty(t, morePaths, "second pass found more")
		require.Equal(t, out, again)
		if strings.Contains(strings.Join(paths, ","), "data_base64") {
			return // checked by the second pass
		}
		var want, got any
		require.NoError(t, json.Unmarshal(body, &want))
		require.NoError(t, json.Unmarshal(out, &got))
		redactInDecoded(want, path)
		require.True(t, reflect.DeepEqual(want, got), "more than the header values changed:\n in %s\nout %s", body, out)
	})
}

// redactInDecoded applies the redaction to a decoded document (the last
// of duplicate keys is what encoding/json keeps, on both sides).
func redactInDecoded(v any, path []string) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	if len(path) == 0 {
		for k := range m {
			if wire.IsSensitiveHeader(k) {
				m[k] = wire.Redacted
			}
		}
		return
	}
	redactInDecoded(m[path[0]], path[1:])
}
