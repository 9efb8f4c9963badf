package worker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

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

// TestDeadLetterRedactionFailsClosed (issue 12 §3): bodies the decoder
// rejects early (bad specversion), structured bodies with trailing bytes
// and binary-mode ce-authorization headers are dead-lettered without the
// secret, and the letter says what was redacted.
func TestDeadLetterRedactionFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	_, stop := e.start(e.config())
	defer func() { require.NoError(t, stop()) }()

	const canary = "CANARY-fc"
	ce := map[string]string{"Content-Type": wire.ContentTypeCE}
	with := func(h map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range h {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	leak := func(id string) []byte {
		return bytes.Replace(event(id, "test#permanent", nil, id),
			[]byte(`"authorization":"[redacted]"`), []byte(`"authorization":"Bearer `+canary+`"`), 1)
	}
	badSpec := bytes.Replace(leak("fc-spec"), []byte(`"specversion":"1.0"`), []byte(`"specversion":"0.3"`), 1)
	trailing := append(leak("fc-trail"), []byte(` {"x":1}`)...)
	binBody, err := json.Marshal(map[string]any{"rule": map[string]any{"handler": "test#permanent"},
		"context": map[string]any{"project_id": "p", "project_slug": "p", "org_slug": "o",
			"identity": map[string]any{"access_token": canary, "refresh_token": canary}},
		"event": map[string]any{"payload": map[string]any{"password": canary}}})
	require.NoError(t, err)
	b64 := `{"specversion":"1.0","id":"fc-b64","source":"/s","type":"` + wire.EventType +
		`","data_base64":"` + base64.StdEncoding.EncodeToString([]byte(`{"event":{"metadata":{"headers":{"x-api-key":"`+canary+`"}}}}`)) + `"}`

	tests := []struct {
		id      string
		headers map[string]string
		body    []byte
		reason  wire.Reason
	}{
		{"fc-spec", with(ce, wire.HeaderMsgID, "fc-spec"), badSpec, wire.ReasonInvalidEvent},
		{"fc-trail", with(ce, wire.HeaderMsgID, "fc-trail"), trailing, wire.ReasonInvalidEvent},
		{"fc-bin", map[string]string{wire.HeaderMsgID: "fc-bin", "Content-Type": wire.ContentTypeJSON,
			"ce-specversion": "1.0", "ce-id": "fc-bin", "ce-source": "/s", "ce-type": wire.EventType,
			"ce-subject": "test#permanent", "ce-authorization": "Bearer " + canary}, binBody, wire.ReasonActionFailed},
		{"fc-b64", with(ce, wire.HeaderMsgID, "fc-b64"), []byte(b64), wire.ReasonInvalidEvent},
	}
	for _, tc := range tests {
		e.publishRaw(subjectOf("test#permanent"), tc.headers, tc.body)
	}
	for _, tc := range tests {
		t.Run(tc.id, func(t *testing.T) {
			dl := e.waitDLQ(tc.id, 10*time.Second)
			require.Equal(t, string(tc.reason), dl.Header.Get(wire.DLQReason))
			require.NotContains(t, string(dl.Data), canary)
			for k, vs := range dl.Header {
				require.NotContains(t, k+strings.Join(vs, ","), canary)
			}
			require.NotEmpty(t, dl.Header.Get(wire.DLQRedacted))
		})
	}
}
