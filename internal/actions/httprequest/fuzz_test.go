package httprequest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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

// FuzzURLOrigin: event data never changes where the request goes. For any
// url template that decodes, the request made with the fuzzed payload
// value has the same scheme, host and port as the one made with a plain
// value, and both are the template's literal origin when the text starts
// with it.
func FuzzURLOrigin(f *testing.F) {
	for _, seed := range [][2]string{
		{"http://hooks.example.com/{{ .event.payload.v }}", "@127.0.0.1:9/x"},
		{"http://hooks.example.com/a?b={{ .event.payload.v }}", "1&c=2#x"},
		{"https://h.example:8443/{{ .event.payload.v | pathescape }}?q={{ .event.payload.v | urlquery }}", "../../x"},
		{"http://h.example?{{ .event.payload.v }}", "//evil.example/"},
		{"http://h.example/{{ if .event.payload.v }}{{ .event.payload.v }}{{ end }}", "http://evil.example"},
		{"http://h.example/{{ range $i, $c := .event.payload.v }}{{ $c }}{{ end }}", "\\\\evil"},
		{"http://hooks.example.com{{ .event.payload.v }}", "@127.0.0.1:9"},
		{"{{ .event.payload.v }}", "http://127.0.0.1/"},
		{"http://h.example/{{ $x := .event.payload.v }}{{ $x }}", "%2F%2E%2E"},
	} {
		f.Add(seed[0], seed[1])
	}
	type seen struct{ scheme, host string }
	f.Fuzz(func(t *testing.T, tmpl, value string) {
		var got []seen
		transport := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			got = append(got, seen{r.URL.Scheme, r.URL.Host})
			if r.Host != "" && r.Host != r.URL.Host {
				t.Fatalf("Host header %q differs from the URL's %q", r.Host, r.URL.Host)
			}
			return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
		})
		acts, err := httprequest.Plugin{Transport: transport}.Actions()
		if err != nil {
			t.Fatal(err)
		}
		desc := acts[0]
		if !utf8.ValidString(tmpl) {
			return // JSON would change it; the oracle reads tmpl itself
		}
		raw, err := json.Marshal(map[string]any{"url": tmpl})
		if err != nil {
			return
		}
		cfg, err := desc.DecodeConfig(raw)
		if err != nil {
			return
		}
		for _, v := range []string{"plain", value} {
			inv := sampleInvocation(cfg)
			inv.Event.Payload["v"] = v
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = desc.Run(ctx, inv)
			cancel()
		}
		want, ok := literalOrigin(tmpl) // false: e.g. a leading {{/* comment */}}
		for _, g := range got {
			if g != got[0] || (ok && g != (seen{want.Scheme, want.Host})) {
				t.Fatalf("template %q with value %q sent to %s://%s (first request: %v, literal origin: %v)", tmpl, value, g.scheme, g.host, got[0], want)
			}
		}
	})
}

// literalOrigin is the test's own reading of the origin a url template
// fixes: the text before the first "{{" up to the first '/', '?' or '#'
// after "://".
func literalOrigin(tmpl string) (*url.URL, bool) {
	lead := strings.TrimLeft(tmpl, " \t\r\n")
	if i := strings.Index(lead, "{{"); i >= 0 {
		lead = lead[:i]
	}
	i := strings.Index(lead, "://")
	if i < 0 {
		return nil, false
	}
	if j := strings.IndexAny(lead[i+3:], "/?#"); j >= 0 {
		lead = lead[:i+3+j]
	}
	u, err := url.Parse(lead)
	if err != nil {
		return nil, false
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, true
}
