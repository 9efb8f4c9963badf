package redact

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const canary = "CANARYs3cr3tX9"

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestBody(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		want      string // "" = only check the canary is gone
		wantPaths []string
	}{
		{"header in structured data",
			`{"specversion":"1.0","data":{"event":{"metadata":{"headers":{"Authorization":"Bearer ` + canary + `","x-other":"1"}}}}}`,
			`{"specversion":"1.0","data":{"event":{"metadata":{"headers":{"Authorization":"[redacted]","x-other":"1"}}}}}`,
			[]string{"data.event.metadata.headers.Authorization"}},
		{"sensitive key at any depth, any value type",
			`{"a":[{"password":{"x":"` + canary + `"}},{"api-key":12}],"access_token" : "` + canary + `"}`,
			`{"a":[{"password":"[redacted]"},{"api-key":"[redacted]"}],"access_token" : "[redacted]"}`,
			[]string{"a.0.password", "a.1.api-key", "access_token"}},
		{"already redacted is untouched",
			`{"cookie":"[redacted]","n":1.50}`, `{"cookie":"[redacted]","n":1.50}`, nil},
		{"bearer in any string",
			`{"payload":{"note":"sent with bearer ` + canary + ` today"},"l":["Basic ` + canary + `"]}`,
			`{"payload":{"note":"sent with bearer [redacted] today"},"l":["Basic [redacted]"]}`,
			[]string{"payload.note", "l.0"}},
		{"identity tokens",
			`{"data":{"context":{"identity":{"access_token":"` + canary + `","refresh_token":"` + canary + `","token_type":"Bearer"}}}}`,
			`{"data":{"context":{"identity":{"access_token":"[redacted]","refresh_token":"[redacted]","token_type":"Bearer"}}}}`,
			[]string{"data.context.identity.access_token", "data.context.identity.refresh_token"}},
		{"data_base64 JSON",
			`{"specversion":"1.0","data_base64":"` + b64(`{"event":{"metadata":{"headers":{"cookie":"`+canary+`"}}}}`) + `"}`,
			`{"specversion":"1.0","data_base64":"` + b64(`{"event":{"metadata":{"headers":{"cookie":"[redacted]"}}}}`) + `"}`,
			[]string{"data_base64.event.metadata.headers.cookie"}},
		{"data_base64 not JSON",
			`{"data_base64":"` + b64(`token=`+canary+` and more`) + `"}`,
			`{"data_base64":"` + b64(`token=[redacted] and more`) + `"}`,
			[]string{"data_base64.scan:pair"}},
		{"data_base64 not base64 is replaced whole",
			`{"data_base64":"%%` + canary + `"}`, `{"data_base64":"[redacted]"}`, []string{"data_base64"}},
		{"trailing bytes: scanned",
			`{"data":{"password":"` + canary + `"}} trailing`, `{"data":{"password":"[redacted]"}} trailing`, []string{"scan:password"}},
		{"bad specversion body, not JSON at all",
			`specversion=0.3 authorization: Bearer ` + canary, "", nil},
		{"invalid UTF-8",
			"{\"secret\":\"" + canary + "\xff\"}", "{\"secret\":\"[redacted]\"}", []string{"scan:secret"}},
		{"truncated JSON",
			`{"client_secret": "` + canary, `{"client_secret": "[redacted]"`, []string{"scan:client_secret"}},
		{"duplicate names: scanned",
			`{"a":1,"a":2,"x-api-key":"` + canary + `"}`, `{"a":1,"a":2,"x-api-key":"[redacted]"}`, []string{"scan:x-api-key"}},
		{"escaped key name", `{"h":{"auth\u006frization":["Bearer ` + canary + `"]}}`, `{"h":{"auth\u006frization":"[redacted]"}}`,
			[]string{"h.authorization"}},
		{"nothing to redact", `{"a":"b"}`, `{"a":"b"}`, nil},
		{"plain text", `hello`, `hello`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, paths := Body([]byte(tt.in))
			require.NotContains(t, string(out), canary)
			if tt.want != "" {
				require.Equal(t, tt.want, string(out))
				require.Equal(t, tt.wantPaths, paths)
			} else {
				require.NotEmpty(t, paths)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	for _, name := range []string{"Authorization", "ce-authorization", "Ce-Cookie", "X-API-KEY", "x_api_key", "Private-Token", "password", "API-Key"} {
		require.True(t, Header(name), name)
	}
	for _, name := range []string{"content-type", "ce-id", "x-request-id", "ce-"} {
		require.False(t, Header(name), name)
	}
	h := Headers(map[string][]string{"Ce-Authorization": {canary}, "Ce-Id": {"1"}})
	require.Equal(t, map[string][]string{"Ce-Authorization": {Replacement}, "Ce-Id": {"1"}}, h)
}

func TestText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`POST failed: Authorization: Bearer abc.def`, `POST failed: Authorization: [redacted] [redacted]`},
		{`password=hunter22 user=x`, `password=[redacted] user=x`},
		{`{"access_token": "t0k3n"}`, `{"access_token": "[redacted]"}`},
		{`api key s3cr3tvalue leaked`, `api key [redacted] leaked`},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, Text(tt.in, map[string]string{"k": "s3cr3tvalue"}))
	}
}

// TestBodyOutputIsJSONWhenInputIs: the splice keeps a JSON body JSON.
func TestBodyOutputIsJSONWhenInputIs(t *testing.T) {
	in := `{"x":{"authorization":["a"]},"s":"Basic \u0041` + canary + `","data_base64":"` + b64(`{"password":1}`) + `"}`
	out, _ := Body([]byte(in))
	require.True(t, json.Valid(out), string(out))
	require.NotContains(t, string(out), canary)
	require.False(t, strings.Contains(string(out), b64(`{"password":1}`)))
}

// TestOpaqueOverlappingPairs: a sensitive pair whose opening quote is the
// closing quote of a value just redacted is redacted too, in the same call
// (FuzzBodySplice found the second pass changing the first's output).
func TestOpaqueOverlappingPairs(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		`"authorization":"x"cookie":"SECRET-CANARY"`,
		`"AuthoriZAtion":""X-huB-signAture":SECRET-CANARY`,
		`"password":""password":""cookie":"SECRET-CANARY" trailing`,
	} {
		out, paths := Body([]byte(in))
		if strings.Contains(string(out), "SECRET-CANARY") {
			t.Errorf("secret left in %q: %q", in, out)
		}
		if len(paths) == 0 {
			t.Errorf("nothing reported for %q", in)
		}
		again, more := Body(out)
		if len(more) != 0 || string(again) != string(out) {
			t.Errorf("second pass changed %q: %v -> %q", out, more, again)
		}
	}
}
