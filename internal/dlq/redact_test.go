package dlq_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dlq"
	"github.com/aweber-imbi/imbi-worker/wire"
)

const planted = "s3cr3t-planted-value"

func TestRedactedShowsNoSecret(t *testing.T) {
	t.Parallel()
	structured := `{"specversion":"1.0","id":"x.0","type":"io.imbi.webhook.action.v1","source":"/s","data":{"event":{"metadata":{"headers":{"Authorization":"Bearer ` + planted + `","x-github-event":"push"}}},"nested":[{"cookie":"` + planted + `"}]}}`
	binaryData := `{"event":{"metadata":{"headers":{"x-hub-signature-256":"` + planted + `"}}}}`
	b64 := `{"specversion":"1.0","id":"x.1","type":"t","source":"/s","data_base64":"` +
		base64.StdEncoding.EncodeToString([]byte(`{"headers":{"set-cookie":"`+planted+`"}}`)) + `"}`
	tests := map[string]struct {
		header nats.Header
		body   string
		check  func(t *testing.T, v dlq.View)
	}{
		"structured": {nats.Header{"Content-Type": {wire.ContentTypeCE}}, structured, func(t *testing.T, v dlq.View) {
			require.Contains(t, string(v.Body), `"x-github-event": "push"`)
			require.Equal(t, "x.0", v.EventID)
		}},
		"binary with sensitive headers": {nats.Header{"ce-id": {"x%2E2"}, "Authorization": {planted}, "ce-authorization": {planted}}, binaryData, func(t *testing.T, v dlq.View) {
			require.Equal(t, []string{wire.Redacted}, v.Headers["Authorization"])
			require.Equal(t, "x.2", v.EventID)
		}},
		"data_base64": {nil, b64, func(t *testing.T, v dlq.View) {
			require.NotContains(t, string(v.Body), "data_base64")
			require.Contains(t, string(v.Body), `"set-cookie": "[redacted]"`)
		}},
		// Issue 12 §3: keys that are not header names, Bearer in a string,
		// identity tokens, and a body that is not JSON.
		"body keys": {nil, `{"payload":{"access_token":"` + planted + `","password":"` + planted + `","api_key":"` + planted +
			`","secret":"` + planted + `","note":"Bearer ` + planted + `"},"context":{"identity":{"refresh_token":"` + planted + `"}}}`,
			func(t *testing.T, v dlq.View) { require.Contains(t, string(v.Body), `"password": "[redacted]"`) }},
		"not json with a secret": {nil, `{"password":"` + planted + `"} trailing`, func(t *testing.T, v dlq.View) {
			require.Equal(t, `{"password":"[redacted]"} trailing`, v.BodyText)
		}},
		"not json text": {nil, "hello\nworld", func(t *testing.T, v dlq.View) {
			require.Equal(t, "hello\nworld", v.BodyText)
		}},
		"binary junk": {nil, "\x00\x01" + planted, func(t *testing.T, v dlq.View) {
			require.Contains(t, v.BodyText, "binary body")
		}},
		"long text": {nil, strings.Repeat("é", 5000), func(t *testing.T, v dlq.View) {
			require.Less(t, len(v.BodyText), 4200)
			require.Contains(t, v.BodyText, "bytes)")
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := dlq.NewLetter(wire.DefaultDLQPrefix, 1, "imbi.dlq.actions.http.request", time.Now(), tc.header, []byte(tc.body))
			v := dlq.Redacted(l)
			out, err := json.Marshal(v)
			require.NoError(t, err)
			require.NotContains(t, string(out), planted)
			require.NotContains(t, v.BodyText, planted)
			tc.check(t, v)
		})
	}
}
