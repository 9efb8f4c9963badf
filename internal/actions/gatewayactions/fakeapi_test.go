package gatewayactions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

const testToken = "test-token-s3cr3t"

// apiRequest is one request the fake imbi-api received.
type apiRequest struct {
	Method   string
	Path     string // unescaped
	RawPath  string // as sent on the wire
	RawQuery string
	Header   http.Header
	Body     []byte
	At       time.Time
}

// key is "METHOD /path" for assertions and routing.
func (r apiRequest) key() string { return r.Method + " " + r.Path }

// apiReply is what the fake answers.
type apiReply struct {
	Status int
	Body   string
	Header map[string]string
	Delay  time.Duration
}

// fakeAPI is a local imbi-api on 127.0.0.1 that records requests and
// answers like imbi-api (efa13b85 routes and status codes) unless a test
// queues other replies for a route. Queued replies are used in order; the
// last one repeats.
type fakeAPI struct {
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []apiRequest
	queued  map[string][]apiReply
	newConn int
}

func newFakeAPI(t testing.TB) *fakeAPI {
	t.Helper()
	f := &fakeAPI{queued: map[string][]apiReply{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.mu.Lock()
			f.newConn++
			f.mu.Unlock()
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// on queues replies for "METHOD /path".
func (f *fakeAPI) on(route string, replies ...apiReply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queued[route] = append(f.queued[route], replies...)
}

func (f *fakeAPI) requests() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiRequest(nil), f.reqs...)
}

func (f *fakeAPI) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newConn
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := apiRequest{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body, At: time.Now()}
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	var reply apiReply
	if q := f.queued[req.key()]; len(q) > 0 {
		reply = q[0]
		if len(q) > 1 {
			f.queued[req.key()] = q[1:]
		}
	} else {
		reply = defaultReply(req)
	}
	f.mu.Unlock()
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range reply.Header {
		w.Header().Set(k, v)
	}
	if reply.Body != "" && w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(reply.Status)
	_, _ = io.WriteString(w, reply.Body)
}

// defaultReply answers like imbi-api for the routes the actions use.
func defaultReply(r apiRequest) apiReply {
	parts := strings.Split(strings.Trim(r.RawPath, "/"), "/")
	// organizations/{org}/projects/{id}[/releases[/{rid}[/environments/{env}|/sbom]]]
	switch {
	case len(parts) == 4 && r.Method == http.MethodPatch:
		return apiReply{Status: 200, Body: `{"id":"` + parts[3] + `"}`}
	case len(parts) == 5 && parts[4] == "releases" && r.Method == http.MethodPost:
		return apiReply{Status: 201, Body: `{"id":"rel-new","committish":"abcdef1"}`}
	case len(parts) == 5 && parts[4] == "releases" && r.Method == http.MethodGet:
		return apiReply{Status: 200, Body: `[{"id":"` + testReleaseID + `"}]`}
	case len(parts) == 8 && parts[6] == "environments" && r.Method == http.MethodPost:
		return apiReply{Status: 200, Body: `{"status":"ok"}`}
	case len(parts) == 7 && parts[6] == "sbom" && r.Method == http.MethodPut:
		return apiReply{Status: 204}
	}
	return apiReply{Status: 404, Body: `{"detail":"Not Found"}`}
}

const testReleaseID = "rel-nanoid-abc"

// bundle is one test's plugin wired to its own fake API and log buffer.
type bundle struct {
	api     *fakeAPI
	actions map[string]plugins.ActionDescriptor
	logMu   sync.Mutex
	logBuf  bytes.Buffer
	env     map[string]string
}

type setupOpt func(*Plugin, *bundle)

func withCredentialsFromPlugin() setupOpt {
	return func(p *Plugin, _ *bundle) { p.CredentialsFromPlugin = true }
}

// withoutLogs discards the plugin's logs (fuzzing would buffer millions).
func withoutLogs() setupOpt {
	return func(p *Plugin, _ *bundle) { p.Logger = slog.New(slog.DiscardHandler) }
}

func withEnv(k, v string) setupOpt {
	return func(_ *Plugin, b *bundle) { b.env[k] = v }
}

func setup(t testing.TB, opts ...setupOpt) *bundle {
	t.Helper()
	b := &bundle{api: newFakeAPI(t), actions: map[string]plugins.ActionDescriptor{}, env: map[string]string{}}
	b.env[EnvImbiURL] = b.api.srv.URL
	b.env[EnvImbiToken] = testToken
	p := Plugin{
		Logger: slog.New(slog.NewTextHandler(lockedWriter{b}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Getenv: func(k string) string { return b.env[k] },
	}
	for _, o := range opts {
		o(&p, b)
	}
	acts, err := p.Actions()
	require.NoError(t, err)
	for _, a := range acts {
		b.actions[a.Name] = a
	}
	return b
}

type lockedWriter struct{ b *bundle }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.b.logMu.Lock()
	defer w.b.logMu.Unlock()
	return w.b.logBuf.Write(p)
}

func (b *bundle) logs() string {
	b.logMu.Lock()
	defer b.logMu.Unlock()
	return b.logBuf.String()
}

// invocation is one action call's inputs besides the config.
type invocation struct {
	org, project string
	actor        *string
	creds        plugins.Credentials
	ctx          context.Context
}

type invokeOpt func(*invocation)

func asUser(u string) invokeOpt { return func(i *invocation) { i.actor = &u } }
func inProject(org, project string) invokeOpt {
	return func(i *invocation) { i.org, i.project = org, project }
}
func withCreds(c plugins.Credentials) invokeOpt { return func(i *invocation) { i.creds = c } }
func withContext(ctx context.Context) invokeOpt {
	return func(i *invocation) { i.ctx = ctx }
}

// run decodes config through the action's compiled schema (the worker's
// path) and runs the action on an event whose payload is bodyJSON.
func (b *bundle) run(t *testing.T, action, config, bodyJSON string, opts ...invokeOpt) error {
	t.Helper()
	desc, ok := b.actions[action]
	require.True(t, ok, "action %s", action)
	cfg, err := desc.DecodeConfig(json.RawMessage(config))
	require.NoError(t, err, "config must be valid")
	inv := invocation{org: "org", project: "proj", creds: plugins.Credentials{}, ctx: context.Background()}
	for _, o := range opts {
		o(&inv)
	}
	var payload map[string]any
	require.NoError(t, json.Unmarshal([]byte(bodyJSON), &payload))
	ctx, cancel := context.WithTimeout(inv.ctx, 10*time.Second)
	defer cancel()
	return desc.Run(ctx, plugins.Invocation{
		Context: plugins.PluginContext{OrgSlug: inv.org, ProjectID: inv.project, ProjectSlug: inv.project,
			ActorUserID: inv.actor},
		Credentials: inv.creds,
		Config:      cfg,
		Event: plugins.Event{Type: "deployment_status", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{"x-github-event": "deployment_status"}},
			Payload:  payload},
	})
}

// requireJSON asserts a request body equals want (JSON-equal).
func requireJSON(t *testing.T, want string, got []byte) {
	t.Helper()
	require.JSONEq(t, want, string(got))
}

// requireAPIHeaders asserts the headers every imbi-api call carries.
func requireAPIHeaders(t *testing.T, r apiRequest, token string) {
	t.Helper()
	require.Equal(t, "Bearer "+token, r.Header.Get("Authorization"))
	require.True(t, strings.HasPrefix(r.Header.Get("User-Agent"), "imbi-worker/"), r.Header.Get("User-Agent"))
	if len(r.Body) > 0 {
		require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	}
}

// requirePermanent asserts err is permanent (dead-letter at once).
func requirePermanent(t *testing.T, err error) {
	t.Helper()
	var pe *plugins.PermanentError
	require.ErrorAs(t, err, &pe, "want permanent, got %v", err)
}

// requireRetryable asserts err is a plain (retryable) error.
func requireRetryable(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var pe *plugins.PermanentError
	require.False(t, errors.As(err, &pe), "want retryable, got permanent %v", err)
	var cm *plugins.PluginCredentialsMissing
	require.False(t, errors.As(err, &cm), "want retryable, got credentials missing %v", err)
}
