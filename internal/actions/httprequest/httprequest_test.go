package httprequest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
)

const secretToken = "tok-3f9a-very-secret"

// captured is one request the test server saw.
type captured struct {
	Method, Path, RawQuery, Body string
	Header                       http.Header
}

// recorder is an httptest server on loopback that records requests and
// answers with a status chosen per test.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []captured
}

func newRecorder(t *testing.T, respond func(w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.seen = append(rec.seen, captured{r.Method, r.URL.Path, r.URL.RawQuery, string(body), r.Header.Clone()})
		rec.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (r *recorder) requests() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.seen...)
}

// loopback is the plugin as tests against local httptest servers need it.
var loopback = httprequest.Plugin{AllowPrivate: true}

func action(t *testing.T, p httprequest.Plugin) plugins.ActionDescriptor {
	t.Helper()
	acts, err := p.Actions()
	require.NoError(t, err)
	require.Len(t, acts, 1)
	return acts[0]
}

func sampleInvocation(config any) plugins.Invocation {
	env := "production"
	return plugins.Invocation{
		Context: plugins.PluginContext{
			ProjectID: "p-1", ProjectSlug: "check out", OrgSlug: "acme", Environment: &env,
		},
		Credentials:        plugins.Credentials{httprequest.CredentialToken: secretToken},
		ExternalIdentifier: "acme/checkout",
		Config:             config,
		Event: plugins.Event{
			Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{
				"x-github-event": "push", "authorization": "[redacted]",
			}},
			Payload: map[string]any{
				"ref":        "refs/heads/main",
				"repository": map[string]any{"full_name": "acme/checkout", "id": 12345678901234},
				"commits":    []any{map[string]any{"id": "c0ffee"}},
			},
		},
	}
}

func run(t *testing.T, desc plugins.ActionDescriptor, rawConfig string, inv plugins.Invocation) error {
	t.Helper()
	cfg, err := desc.DecodeConfig(json.RawMessage(rawConfig))
	require.NoError(t, err)
	inv.Config = cfg
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return desc.Run(ctx, inv)
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	desc := action(t, loopback)
	cfg := `{
	  "url": "` + rec.srv.URL + `/deploys/{{ .context.project_slug | pathescape }}?env={{ .context.environment | urlquery }}",
	  "method": "PUT",
	  "headers": {"X-Event": "{{ .event.type }}", "X-Repo": "{{ pointer \"/payload/repository/full_name\" }}"},
	  "body": "{\"ref\": {{ pointer \"/payload/ref\" | json }}, \"id\": {{ .event.payload.repository.id }}, \"first\": {{ pointer \"/payload/commits/0/id\" | json }}, \"who\": {{ lookup \"/payload/sender/login\" \"nobody\" | json }}, \"ext\": {{ json .external_identifier }}}",
	  "content_type": "application/vnd.acme+json"
	}`
	require.NoError(t, run(t, desc, cfg, sampleInvocation(nil)))

	reqs := rec.requests()
	require.Len(t, reqs, 1)
	got := reqs[0]
	require.Equal(t, http.MethodPut, got.Method)
	require.Equal(t, "/deploys/check out", got.Path)
	require.Equal(t, "env=production", got.RawQuery)
	require.Equal(t, "Bearer "+secretToken, got.Header.Get("Authorization"))
	require.Equal(t, "push", got.Header.Get("X-Event"))
	require.Equal(t, "acme/checkout", got.Header.Get("X-Repo"))
	require.Equal(t, "application/vnd.acme+json", got.Header.Get("Content-Type"))
	require.JSONEq(t, `{"ref":"refs/heads/main","id":12345678901234,"first":"c0ffee","who":"nobody","ext":"acme/checkout"}`, got.Body)
}

func TestDefaultBodyForwardsTheEventWithoutBearerWhenNoToken(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {})
	desc := action(t, loopback)
	inv := sampleInvocation(nil)
	inv.Credentials = nil
	require.NoError(t, run(t, desc, `{"url": "`+rec.srv.URL+`/hook"}`, inv))

	got := rec.requests()[0]
	require.Equal(t, http.MethodPost, got.Method)
	require.Empty(t, got.Header.Get("Authorization"))
	require.Equal(t, "application/json", got.Header.Get("Content-Type"))
	var body struct {
		Context            map[string]any `json:"context"`
		ExternalIdentifier string         `json:"external_identifier"`
		Event              map[string]any `json:"event"`
	}
	require.NoError(t, json.Unmarshal([]byte(got.Body), &body))
	require.Equal(t, "check out", body.Context["project_slug"])
	require.Equal(t, "acme/checkout", body.ExternalIdentifier)
	require.Equal(t, "push", body.Event["type"])
	require.Equal(t, "[redacted]", body.Event["metadata"].(map[string]any)["headers"].(map[string]any)["authorization"])
}

func TestStatusClasses(t *testing.T) {
	t.Parallel()
	type class int
	const (
		success class = iota
		rateLimited
		unavailable
		retryable
		permanent
	)
	tests := []struct {
		status     int
		retryAfter string
		want       class
		wantDelay  time.Duration
		authFailed bool
	}{
		{status: 200, want: success},
		{status: 204, want: success},
		{status: 429, retryAfter: "7", want: rateLimited, wantDelay: 7 * time.Second},
		{status: 503, retryAfter: "0", want: rateLimited, wantDelay: 0},
		{status: 429, want: retryable},
		{status: 503, want: unavailable},
		{status: 503, retryAfter: "soon", want: unavailable},
		{status: 502, want: unavailable},
		{status: 504, want: unavailable},
		{status: 500, want: retryable},
		{status: 408, want: retryable},
		{status: 400, want: permanent},
		{status: 404, want: permanent},
		{status: 422, want: permanent},
		{status: 401, want: permanent, authFailed: true},
		{status: 403, want: permanent, authFailed: true},
		{status: 301, want: permanent}, // a redirect without Location is not followed
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status)+"/"+tc.retryAfter, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
				// A careless endpoint that echoes the request headers.
				_, _ = io.WriteString(w, "you sent: "+r.Header.Get("Authorization"))
			})
			err := run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`/x?api_key=abc"}`, sampleInvocation(nil))
			if tc.want == success {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.NotContains(t, err.Error(), secretToken)
			require.NotContains(t, err.Error(), "api_key=abc", "query values stay out of error texts")
			var pe *plugins.PermanentError
			var rl *plugins.RateLimitedError
			var se *httprequest.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tc.status, se.StatusCode)
			require.Equal(t, tc.want == permanent, errors.As(err, &pe), "permanent? %v", err)
			require.Equal(t, tc.want == rateLimited, errors.As(err, &rl), "rate limited? %v", err)
			require.Equal(t, tc.want == unavailable, errors.Is(err, plugins.ErrPluginUnavailable), "unavailable? %v", err)
			require.Equal(t, tc.authFailed, errors.Is(err, plugins.ErrAuthenticationFailed))
			if tc.want == rateLimited {
				require.Equal(t, tc.wantDelay, rl.RetryAfter)
			}
		})
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusTooManyRequests)
	})
	err := run(t, action(t, loopback), `{"url": "`+rec.srv.URL+`"}`, sampleInvocation(nil))
	var rl *plugins.RateLimitedError
	require.ErrorAs(t, err, &rl)
	require.InDelta(t, 90, rl.RetryAfter.Seconds(), 2)
}

func TestNetworkErrorIsUnavailableAndSecretFree(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	url := rec.srv.URL
	rec.srv.Close() // nothing listens there any more
	err := run(t, action(t, loopback), `{"url": "`+url+`/x?token={{ .context.project_id }}"}`, sampleInvocation(nil))
	require.ErrorIs(t, err, plugins.ErrPluginUnavailable)
	var pe *plugins.PermanentError
	require.False(t, errors.As(err, &pe))
	require.NotContains(t, err.Error(), secretToken)
	require.NotContains(t, err.Error(), "token=p-1")
}

func TestDeadlineFromContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) { <-release })
	defer close(release)
	desc := action(t, loopback)
	cfg, err := desc.DecodeConfig(json.RawMessage(`{"url": "` + rec.srv.URL + `"}`))
	require.NoError(t, err)
	inv := sampleInvocation(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = desc.Run(ctx, inv)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestTemplateFailuresArePermanent(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	tests := map[string]string{
		"missing key":        `{"url": "` + rec.srv.URL + `/{{ .event.payload.nope }}"}`,
		"missing pointer":    `{"url": "` + rec.srv.URL + `/{{ pointer \"/payload/nope\" }}"}`,
		"bad pointer":        `{"url": "` + rec.srv.URL + `/{{ pointer \"payload\" }}"}`,
		"header line break":  `{"url": "` + rec.srv.URL + `", "headers": {"X-A": "a\r\nX-B: b"}}`,
		"missing in body":    `{"url": "` + rec.srv.URL + `", "body": "{{ .context.nope }}"}`,
		"missing in headers": `{"url": "` + rec.srv.URL + `", "headers": {"X-A": "{{ .nope }}"}}`,
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(t, action(t, loopback), cfg, sampleInvocation(nil))
			var pe *plugins.PermanentError
			require.ErrorAs(t, err, &pe, "%v", err)
			require.NotContains(t, err.Error(), secretToken)
		})
	}
	require.Empty(t, rec.requests(), "no request is sent when rendering fails")
}

func TestInvalidConfigIsConfigError(t *testing.T) {
	t.Parallel()
	desc := action(t, httprequest.Plugin{})
	tests := map[string]string{
		"no url":           `{}`,
		"empty url":        `{"url": ""}`,
		"unknown method":   `{"url": "http://127.0.0.1/", "method": "BREW"}`,
		"template syntax":  `{"url": "http://127.0.0.1/{{ .context.project_slug "}`,
		"unknown function": `{"url": "http://127.0.0.1/{{ shell \"ls\" }}"}`,
		"bad header name":  `{"url": "http://127.0.0.1/", "headers": {"Bad Header": "x"}}`,
		"headers not map":  `{"url": "http://127.0.0.1/", "headers": ["x"]}`,
		"body template":    `{"url": "http://127.0.0.1/", "body": "{{ if }}"}`,
		"not http":         `{"url": "file:///etc/passwd"}`,
		"relative":         `{"url": "/just/a/path"}`,
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := desc.DecodeConfig(json.RawMessage(cfg))
			var ce *plugins.ConfigError
			require.ErrorAs(t, err, &ce)
		})
	}
}

func TestRegisteredAsWebhookPlugin(t *testing.T) {
	t.Parallel()
	var found bool
	for _, r := range pluginreg.All() {
		found = found || r.Name == httprequest.Slug
	}
	require.True(t, found, "init registers the plugin")

	reg := registry.New(func() []pluginreg.Registration {
		return []pluginreg.Registration{{Name: httprequest.Slug, Load: func() (any, error) { return httprequest.New(), nil }}}
	})
	res, err := reg.Load()
	require.NoError(t, err)
	require.Equal(t, []string{httprequest.Slug}, res.Loaded, "load errors: %v", res.Errors)
	entry, err := reg.Get(httprequest.Slug)
	require.NoError(t, err)
	require.True(t, entry.IsWebhook())
	_, ok := entry.Action(httprequest.ActionName)
	require.True(t, ok)
	require.Empty(t, entry.Manifest.RequiredCredentials(), "the token is optional")
	require.NoError(t, httprequest.New().Manifest().Validate())
	require.True(t, strings.Contains(string(action(t, httprequest.Plugin{}).ConfigSchema()), `"url"`))
}
