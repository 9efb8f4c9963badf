package httprequest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

// TestURLOriginComesFromConfig (security issue 12): event data may not
// choose the scheme, host or port. A url whose origin is not literal text
// closed by '/' or '?' before the first {{ }} is an invalid config.
func TestURLOriginComesFromConfig(t *testing.T) {
	t.Parallel()
	desc := action(t, httprequest.Plugin{})
	tests := []struct {
		name, url string
		ok        bool
	}{
		{name: "host then template", url: "http://hooks.example.com{{ .event.payload.path }}"},
		{name: "port templated", url: "http://hooks.example.com:{{ .event.payload.port }}/x"},
		{name: "host templated", url: "http://{{ .event.payload.host }}/x"},
		{name: "whole url templated", url: "{{ .event.payload.url }}"},
		{name: "scheme templated", url: "{{ .event.payload.scheme }}://hooks.example.com/"},
		{name: "leading comment prints nothing", url: "{{/* c */}}http://hooks.example.com/", ok: true},
		{name: "user info", url: "http://user:pw@hooks.example.com/x"},
		{name: "fragment", url: "http://hooks.example.com/x#{{ .event.type }}"},
		{name: "query in a branch", url: "http://hooks.example.com/x{{ if .event.type }}?a={{ .event.type }}{{ end }}"},
		{name: "define", url: `http://hooks.example.com/{{ define "x" }}{{ .event.type }}{{ end }}`},
		{name: "template call", url: `http://hooks.example.com/{{ template "y" }}`},
		{name: "bad port", url: "http://hooks.example.com:99999/"},
		{name: "ftp", url: "ftp://hooks.example.com/"},
		{name: "literal host only", url: "https://hooks.example.com", ok: true},
		{name: "literal port and path", url: "https://hooks.example.com:8443/a/{{ .event.type }}?q={{ .event.type }}", ok: true},
		{name: "query right after host", url: "http://hooks.example.com?q={{ .event.type }}", ok: true},
		{name: "branches without '?'", url: "http://h.example/{{ if .event.type }}{{ .event.type }}{{ else }}none{{ end }}", ok: true},
		{name: "leading space", url: "  http://h.example/{{ .event.type }}", ok: true},
		{name: "upper-case scheme", url: "HTTPS://H.example/x", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := json.Marshal(map[string]any{"url": tc.url})
			require.NoError(t, err)
			_, err = desc.DecodeConfig(raw)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var ce *plugins.ConfigError
			require.ErrorAs(t, err, &ce)
		})
	}
	_, err := desc.DecodeConfig(json.RawMessage(`{"url": "http://hooks.example.com{{ .event.payload.path }}"}`))
	require.ErrorIs(t, err, httprequest.ErrUnsafeURL)
}

func TestAllowedHosts(t *testing.T) {
	t.Parallel()
	desc := action(t, httprequest.Plugin{})
	tests := []struct {
		name, config string
		ok           bool
	}{
		{"listed", `{"url": "https://hooks.example.com/x", "allowed_hosts": ["other.example", "HOOKS.example.com"]}`, true},
		{"wildcard", `{"url": "https://a.b.example.com/x", "allowed_hosts": ["*.example.com"]}`, true},
		{"wildcard is not the apex", `{"url": "https://example.com/x", "allowed_hosts": ["*.example.com"]}`, false},
		{"not listed", `{"url": "https://evil.example/x", "allowed_hosts": ["hooks.example.com"]}`, false},
		{"suffix is not a subdomain", `{"url": "https://evilexample.com/x", "allowed_hosts": ["*.example.com"]}`, false},
		{"entry with port", `{"url": "https://hooks.example.com/x", "allowed_hosts": ["hooks.example.com:443"]}`, false},
		{"empty entry", `{"url": "https://hooks.example.com/x", "allowed_hosts": [""]}`, false},
		{"absent", `{"url": "https://anything.example/x"}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := desc.DecodeConfig(json.RawMessage(tc.config))
			if tc.ok {
				require.NoError(t, err)
				return
			}
			var ce *plugins.ConfigError
			require.ErrorAs(t, err, &ce)
		})
	}
}

// TestTemplateValuesAreEscaped: whatever the event holds, it stays one
// path segment or one query value.
func TestTemplateValuesAreEscaped(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	inv := sampleInvocation(nil)
	evil := "a/../../admin?x=1&y=2#frag @127.0.0.1:1/"
	inv.Event.Payload["v"] = evil
	cfg := `{"url": "` + rec.srv.URL + `/p/{{ .event.payload.v }}/q/{{ pointer \"/payload/v\" | pathescape }}?a={{ .event.payload.v }}&b={{ .event.payload.v | urlquery }}&c={{ .event.payload.v | pathescape }}"}`
	require.NoError(t, run(t, action(t, loopback), cfg, inv))

	got := rec.requests()
	require.Len(t, got, 1)
	require.Equal(t, "/p/"+evil+"/q/"+evil, got[0].Path, "decoded path")
	q, err := url.ParseQuery(got[0].RawQuery)
	require.NoError(t, err)
	require.Equal(t, url.Values{"a": {evil}, "b": {evil}, "c": {url.PathEscape(evil)}}, q,
		"one value per parameter; pathescape in the query is escaped once more")
}

// TestPrivateAddressRefused: without AllowPrivate the dialer refuses a
// loopback destination after DNS resolution ("localhost" is a name), and
// the server receives nothing.
func TestPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	port := rec.srv.URL[strings.LastIndex(rec.srv.URL, ":")+1:]
	for _, base := range []string{rec.srv.URL, "http://localhost:" + port} {
		t.Run(base, func(t *testing.T) {
			err := run(t, action(t, httprequest.Plugin{}), `{"url": "`+base+`/x"}`, sampleInvocation(nil))
			require.ErrorIs(t, err, httprequest.ErrAddressRefused)
			var ae *httprequest.AddressError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, "loopback", ae.Class)
			var pe *plugins.PermanentError
			require.ErrorAs(t, err, &pe, "a refused address is permanent")
			require.NotContains(t, err.Error(), secretToken)
		})
	}
	require.Empty(t, rec.requests(), "the loopback server received nothing")

	// The allowance lets the same request through.
	require.NoError(t, run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`/x"}`, sampleInvocation(nil)))
	require.Len(t, rec.requests(), 1)
}

func TestRedirects(t *testing.T) {
	t.Parallel()
	other := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	var self *recorder
	self = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/final", http.StatusFound)
		case "/other-port":
			http.Redirect(w, r, other.srv.URL+"/stolen", http.StatusTemporaryRedirect)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	tests := []struct {
		name, path string
		follow     bool
		wantErr    error // nil: success
		wantStatus int   // a *StatusError with this code
		wantPaths  []string
	}{
		{name: "not followed by default", path: "/same", wantStatus: http.StatusFound, wantPaths: []string{"/same"}},
		{name: "same origin followed", path: "/same", follow: true, wantPaths: []string{"/same", "/final"}},
		{name: "other port refused", path: "/other-port", follow: true, wantErr: httprequest.ErrRedirectRefused, wantPaths: []string{"/other-port"}},
		{name: "other port not followed by default", path: "/other-port", wantStatus: http.StatusTemporaryRedirect, wantPaths: []string{"/other-port"}},
		{name: "loop bounded", path: "/loop", follow: true, wantErr: httprequest.ErrRedirectRefused, wantPaths: []string{"/loop", "/loop", "/loop", "/loop", "/loop", "/loop"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(self.requests())
			cfg, _ := json.Marshal(map[string]any{"url": self.srv.URL + tc.path, "follow_redirects": tc.follow})
			err := run(t, action(t, loopback), string(cfg), sampleInvocation(nil))
			var paths []string
			for _, r := range self.requests()[before:] {
				paths = append(paths, r.Path)
				require.Equal(t, "Bearer "+secretToken, r.Header.Get("Authorization"))
			}
			require.Equal(t, tc.wantPaths, paths)
			switch {
			case tc.wantErr != nil:
				require.ErrorIs(t, err, tc.wantErr)
				var pe *plugins.PermanentError
				require.ErrorAs(t, err, &pe)
			case tc.wantStatus != 0:
				var se *httprequest.StatusError
				require.ErrorAs(t, err, &se)
				require.Equal(t, tc.wantStatus, se.StatusCode)
				var pe *plugins.PermanentError
				require.ErrorAs(t, err, &pe)
			default:
				require.NoError(t, err)
			}
		})
	}
	require.Empty(t, other.requests(), "another origin never receives the request (nor the token)")
}

// TestRedirectNeverDowngradesHTTPS: https → http on the same host and
// port is another origin.
func TestRedirectNeverDowngradesHTTPS(t *testing.T) {
	t.Parallel()
	var plainHits int
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			plainHits++
			return
		}
		http.Redirect(w, r, "http://"+r.Host+"/plain", http.StatusFound)
	}))
	t.Cleanup(tlsSrv.Close)
	p := httprequest.Plugin{Transport: tlsSrv.Client().Transport} // trusts the test certificate
	err := run(t, action(t, p), `{"url": "`+tlsSrv.URL+`/secure", "follow_redirects": true}`, sampleInvocation(nil))
	require.ErrorIs(t, err, httprequest.ErrRedirectRefused)
	require.Zero(t, plainHits)
}

// TestIdentityNeverForwarded: context.identity carries the user's
// tokens; neither the default body nor a template can send them.
func TestIdentityNeverForwarded(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	refresh := "user-refresh-s3cret"
	inv := sampleInvocation(nil)
	inv.Context.Identity = &plugins.IdentityCredentials{AccessToken: "user-access-s3cret", TokenType: "Bearer", RefreshToken: &refresh}

	require.NoError(t, run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`/default"}`, inv))
	require.NoError(t, run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`/tmpl", "body": "{{ json .context }} {{ json . }}", "headers": {"X-C": "{{ json .context }}"}}`, inv))
	err := run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`/direct", "body": "{{ .context.identity.access_token }}"}`, inv)
	var pe *plugins.PermanentError
	require.ErrorAs(t, err, &pe, "context.identity is not in the template data")

	got := rec.requests()
	require.Len(t, got, 2)
	for _, r := range got {
		require.NotContains(t, r.Body, "s3cret", r.Path)
		require.NotContains(t, r.Body, "identity", r.Path)
		require.NotContains(t, r.Header.Get("X-C"), "s3cret")
	}
	var body struct{ Context map[string]any }
	require.NoError(t, json.Unmarshal([]byte(got[0].Body), &body))
	require.Equal(t, "check out", body.Context["project_slug"], "the rest of the context is forwarded")
}

// TestTemplateBounds: output size and work per rendering are bounded.
func TestTemplateBounds(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	big := sampleInvocation(nil)
	big.Event.Payload["blob"] = strings.Repeat("x", 256<<10)
	tests := map[string]struct {
		config string
		inv    plugins.Invocation
		text   string // in the error, when set
	}{
		"url output":     {config: `{"url": "` + rec.srv.URL + `/{{ range 1000 }}0123456789{{ end }}"}`, inv: sampleInvocation(nil)},
		"header output":  {config: `{"url": "` + rec.srv.URL + `/", "headers": {"X": "{{ range 1000 }}0123456789{{ end }}"}}`, inv: sampleInvocation(nil)},
		"body output":    {config: `{"url": "` + rec.srv.URL + `/", "body": "{{ range 2000 }}{{ printf \"%01000d\" 0 }}{{ end }}"}`, inv: sampleInvocation(nil)},
		"silent loop":    {config: `{"url": "` + rec.srv.URL + `/", "body": "{{ range 10000000 }}{{ end }}"}`, inv: sampleInvocation(nil)},
		"nested ranges":  {config: `{"url": "` + rec.srv.URL + `/", "body": "{{ range 5000 }}{{ range 5000 }}{{ end }}{{ end }}"}`, inv: sampleInvocation(nil)},
		"recursion":      {config: `{"url": "` + rec.srv.URL + `/", "body": "{{ define \"a\" }}{{ template \"a\" . }}{{ template \"a\" . }}{{ end }}{{ template \"a\" . }}"}`, inv: sampleInvocation(nil)},
		"slow iteration": {config: `{"url": "` + rec.srv.URL + `/", "body": "{{ range 100000 }}{{ $x := json $.event }}{{ end }}"}`, inv: big, text: "took longer than 1s"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := run(t, action(t, loopback), tc.config, tc.inv)
			require.ErrorIs(t, err, httprequest.ErrTemplateBound)
			require.ErrorContains(t, err, tc.text)
			var pe *plugins.PermanentError
			require.ErrorAs(t, err, &pe)
			require.Less(t, time.Since(start), 3*time.Second)
		})
	}
	require.Empty(t, rec.requests())
}

// TestErrorTextRedactedAndBounded: a response quoted in an error is short,
// has no control characters, and no credential of any kind.
func TestErrorTextRedactedAndBounded(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, "you sent "+r.Header.Get("Authorization")+" and Basic dXNlcjpwYXNz, api pw-s3cret-2\x1b[2J\r\nX-Forged: 1 "+strings.Repeat("z", 5000))
	})
	inv := sampleInvocation(nil)
	inv.Credentials["password"] = "pw-s3cret-2"
	err := run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`/x"}`, inv)
	var se *httprequest.StatusError
	require.ErrorAs(t, err, &se)
	require.LessOrEqual(t, len(se.Body), 512)
	require.True(t, strings.HasPrefix(se.Body, "you sent Bearer [redacted] and Basic [redacted], api [redacted][2J X-Forged: 1 zzz"), se.Body)
	for _, s := range []string{secretToken, "dXNlcjpwYXNz", "pw-s3cret-2", "\x1b", "\r", "\n"} {
		require.NotContains(t, err.Error(), s)
	}
	require.True(t, errors.As(err, new(*plugins.PermanentError)))
}

// TestDirectCallParsesConfig: an action input built without DecodeConfig
// still gets the url checks.
func TestDirectCallParsesConfig(t *testing.T) {
	t.Parallel()
	desc := action(t, loopback)
	inv := sampleInvocation(httprequest.Config{URL: "http://hooks.example.com{{ .event.type }}"})
	err := desc.Run(context.Background(), inv)
	require.ErrorIs(t, err, httprequest.ErrUnsafeURL)
}
