package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/console"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// `imbi-worker run` with IMBI_ADMIN_TOKEN and --admin-read-only: the
// console's API on the admin server lists the dead letter the worker just
// wrote, shows the action catalog, refuses a purge (read-only) and asks
// for the token; the token never reaches the log.
func TestRunServesTheConsole(t *testing.T) {
	const token = "run-console-token-0123456789"
	t.Setenv(console.EnvToken, token)
	t.Setenv("IMBI_NEO4J_URL", "")
	dir := t.TempDir()
	addr := freeAddr(t)
	var out, errOut syncBuffer
	cmd := NewRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"run", "--data-dir", dir, "--embedded-port", "0", "--shutdown-grace", "2s",
		"--admin-addr", addr, "--admin-read-only", "--worker-id", "console-test"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
		require.NotContains(t, errOut.String(), token)
		require.NotContains(t, out.String(), token)
	}()

	base := "http://" + addr
	call := func(method, path, body string, auth bool) (int, string) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := call("GET", "/readyz", "", false); return code == http.StatusOK },
		20*time.Second, 20*time.Millisecond, "never ready; log:\n%s", errOut.String())

	nc, pub := connectPublisher(t, embeddedURL(t, dir, 5*time.Second))
	_, err := pub.Publish(context.Background(), publisher.Message{ID: "console-1.0", Data: wiredata.ActionData{
		Rule:    wire.Rule{Handler: "nope#act", HandlerConfig: json.RawMessage(`{}`)},
		Context: plugins.PluginContext{ProjectID: "p", ProjectSlug: "s", OrgSlug: "o"},
		Event:   plugins.Event{Type: "push", ThirdPartyService: "github", Metadata: plugins.EventMetadata{WebhookID: "wh-1"}},
	}})
	require.NoError(t, err)

	var page console.Page
	require.Eventually(t, func() bool {
		code, body := call("GET", "/api/v1/dead-letters?reason=unknown_handler", "", true)
		return code == http.StatusOK && json.Unmarshal([]byte(body), &page) == nil && page.Total == 1
	}, 15*time.Second, 50*time.Millisecond, "the dead letter never showed; log:\n%s", errOut.String())
	require.Equal(t, "console-1.0", page.Letters[0].EventID)

	// The worker's outcome event, read back by the console (v1.1 §C).
	var outs struct {
		Outcomes []console.Outcome `json:"outcomes"`
	}
	require.Eventually(t, func() bool {
		code, body := call("GET", "/api/v1/outcomes?handler=nope%23act", "", true)
		return code == http.StatusOK && json.Unmarshal([]byte(body), &outs) == nil && len(outs.Outcomes) == 1
	}, 15*time.Second, 50*time.Millisecond, "the outcome never showed; log:\n%s", errOut.String())
	o := outs.Outcomes[0]
	require.Equal(t, "console-1.0.1", o.ID)
	require.Equal(t, console.OutcomeDeadLettered, o.Status)
	require.Equal(t, string(wire.ReasonUnknownHandler), o.Reason)
	require.Equal(t, "console-test", o.Worker)
	require.NotNil(t, o.DeadLetter)

	code, body := call("POST", "/api/v1/dead-letters/purge", `{"all":true}`, true)
	require.Equal(t, http.StatusForbidden, code, body)
	code, _ = call("GET", "/api/v1/dead-letters", "", false)
	require.Equal(t, http.StatusUnauthorized, code)
	code, _ = call("GET", "/ui/", "", false)
	require.Equal(t, http.StatusSeeOther, code)
	code, body = call("GET", "/api/v1/actions", "", true)
	require.Equal(t, http.StatusOK, code)
	var rep actionsReport
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	var handlers []string
	for _, p := range rep.Plugins {
		for _, a := range p.Actions {
			handlers = append(handlers, a.Handler)
			require.NotEmpty(t, a.ConfigSchema, a.Handler)
		}
	}
	require.Contains(t, handlers, "gateway-actions#add_deployment_event", "the built-in catalog, with schemas")
	code, _ = call("GET", "/healthz", "", false)
	require.Equal(t, http.StatusOK, code)

	// Lanes are wired to the imbi_lanes bucket (read-only here: no changes).
	lstore, err := lanes.Open(context.Background(), mustJS(t, nc), wire.DefaultLanesBucket)
	require.NoError(t, err)
	require.NoError(t, lstore.Pause(context.Background(), lanes.PauseRequest{Lane: lanes.Key{Plugin: "github"}, Reason: "outage", By: "ops"}))
	code, body = call("GET", "/api/v1/lanes", "", true)
	require.Equal(t, http.StatusOK, code, body)
	var ls struct{ Lanes []console.Lane }
	require.NoError(t, json.Unmarshal([]byte(body), &ls))
	require.Len(t, ls.Lanes, 1)
	require.Equal(t, "github", ls.Lanes[0].Plugin)
	require.Equal(t, "ops", ls.Lanes[0].SetBy)
	require.True(t, ls.Lanes[0].Paused)
	code, _ = call("POST", "/api/v1/lanes/resume", `{"plugin":"github"}`, true)
	require.Equal(t, http.StatusForbidden, code, "read-only console")
}

func mustJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}
