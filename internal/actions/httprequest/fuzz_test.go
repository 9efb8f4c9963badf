package httprequest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
)

// roundTripFunc answers without a network, so the fuzzer exercises
// decoding, template rendering and request building only.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzDecodeConfigAndRender: handler_config is outside input (an operator's
// rule). Whatever it holds, decoding either fails with a ConfigError or the
// action runs to an error or success, never a panic, and never sends the
// token anywhere but the Authorization header.
func FuzzDecodeConfigAndRender(f *testing.F) {
	for _, seed := range []string{
		`{"url": "http://127.0.0.1/{{ .context.project_slug }}"}`,
		`{"url": "http://127.0.0.1/", "method": "PUT", "headers": {"X": "{{ .event.type }}"}, "body": "{{ pointer \"/payload/ref\" | json }}"}`,
		`{"url": "http://127.0.0.1/{{ lookup \"/payload/x\" 1 }}"}`,
		`"{\"url\": \"http://127.0.0.1/\"}"`,
		`{"url": "{{ range . }}{{ . }}{{ end }}"}`,
		`null`, `[]`, `{"url": 5}`,
	} {
		f.Add(seed)
	}
	transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		for name, vals := range r.Header {
			for _, v := range vals {
				if name != "Authorization" && contains(v, secretToken) {
					panic("token leaked into header " + name)
				}
			}
		}
		if contains(r.URL.String(), secretToken) {
			panic("token leaked into the URL")
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	acts, err := httprequest.Plugin{Transport: transport}.Actions()
	if err != nil {
		f.Fatal(err)
	}
	desc := acts[0]
	f.Fuzz(func(t *testing.T, raw string) {
		cfg, err := desc.DecodeConfig(json.RawMessage(raw))
		if err != nil {
			return
		}
		inv := sampleInvocation(cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := desc.Run(ctx, inv); err != nil && contains(err.Error(), secretToken) {
			t.Fatalf("token in error text: %v", err)
		}
	})
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
