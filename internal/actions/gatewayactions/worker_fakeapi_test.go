package gatewayactions

// Through the worker runtime against a fake imbi-api: a GitHub webhook's
// CloudEvent, published with the Go publisher to embedded NATS JetStream,
// consumed by internal/worker and dispatched to this plugin, ends as HTTP
// calls to the httptest server of fakeapi_test.go, which records them and
// answers as this package's client expects imbi-api to. No real imbi-api
// runs here, so this checks the worker→plugin→HTTP path and the retry and
// dead-letter outcomes, not imbi-api's own behaviour.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/internal/streams/workertest"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// githubDeploymentStatus is a trimmed GitHub deployment_status webhook.
const githubDeploymentStatus = `{
  "action": "created",
  "deployment_status": {"id": 1, "state": "success", "environment": "production",
    "target_url": "https://github.com/o/r/actions/runs/77", "description": "Deployed"},
  "deployment": {"id": 42, "sha": "abcdef1234567890abcdef1234567890abcdef12", "ref": "v1.2.3",
    "environment": "production", "url": "https://api.github.com/repos/o/r/deployments/42"},
  "workflow_run": {"id": 77},
  "repository": {"id": 99, "full_name": "o/r"}
}`

const githubDeployment = `{
  "action": "created",
  "deployment": {"id": 42, "sha": "abcdef1234567890abcdef1234567890abcdef12", "ref": "v1.2.3",
    "description": "Deploy v1.2.3", "environment": "production"},
  "repository": {"id": 99, "full_name": "o/r"}
}`

type e2eEnv struct {
	api *fakeAPI
	pub *publisher.Publisher
	dlq *workertest.DeadLetters
}

func newE2E(t *testing.T) *e2eEnv {
	t.Helper()
	api := newFakeAPI(t)

	ne := streamstest.Start(t, streams.Config{MaxDeliver: 8, Idempotency: true})

	env := map[string]string{EnvImbiURL: api.srv.URL, EnvImbiToken: testToken}
	reg := workertest.Registry(t, pluginreg.Registration{Name: Slug, Load: func() (any, error) {
		return Plugin{Getenv: func(k string) string { return env[k] },
			Logger: slog.New(slog.DiscardHandler)}, nil
	}})
	workertest.Run(t, ne, &dispatch.Dispatcher{Registry: reg, DefaultTimeout: 5 * time.Second}, worker.Config{
		Concurrency:   2,
		MaxAttempts:   4,
		BackoffBase:   50 * time.Millisecond,
		BackoffMax:    200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		Idempotency:   true,
		WorkerID:      "gateway-actions-e2e",
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})

	pub, err := publisher.New(ne.NC, publisher.Config{SubjectPrefix: ne.Config.SubjectPrefix})
	require.NoError(t, err)
	return &e2eEnv{api: api, pub: pub, dlq: workertest.RecordDeadLetters(t, ne)}
}

// publish sends the webhook body as the CloudEvent of one matched rule.
func (e *e2eEnv) publish(t *testing.T, delivery, handler, config, project, eventType, body string) string {
	t.Helper()
	var payload map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &payload))
	m := publisher.Message{
		DeliveryID: delivery,
		Data: wiredata.ActionData{
			Rule:   wire.Rule{ID: "rule-1", Handler: handler, HandlerConfig: json.RawMessage(config), Ordinal: 0},
			Plugin: &wire.PluginRef{Slug: Slug},
			Context: plugins.PluginContext{ProjectID: project, ProjectSlug: project, OrgSlug: "acme",
				AssignmentOptions: map[string]any{"service_slug": "github"}},
			ExternalIdentifier: "99",
			Event: plugins.Event{Type: eventType, ThirdPartyService: "github",
				Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{
					"x-github-event": eventType, "authorization": "Bearer gh-secret"}},
				Payload: payload},
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.pub.Publish(ctx, m)
	require.NoError(t, err)
	return publisher.EventID(delivery, 0)
}

// requestsFor returns the recorded requests under one project's path.
func (e *e2eEnv) requestsFor(project string) []apiRequest {
	var out []apiRequest
	for _, r := range e.api.requests() {
		if strings.HasPrefix(r.Path, "/organizations/acme/projects/"+project+"/") ||
			r.Path == "/organizations/acme/projects/"+project {
			out = append(out, r)
		}
	}
	return out
}

// TestThroughWorkerAgainstFakeAPI: see the file comment (a fake imbi-api).
func TestThroughWorkerAgainstFakeAPI(t *testing.T) {
	e := newE2E(t)
	statusConfig := `{"environment_selector": "/payload/deployment_status/environment",
		"committish_expression": "substring(payload.deployment.sha, 0, 7)",
		"version_expression": "payload.deployment.ref",
		"status_selector": "/payload/deployment_status/state",
		"note_selector": "/payload/deployment_status/target_url",
		"external_run_id_selector": "/payload/workflow_run/id"}`

	t.Run("deployment_status becomes the right POST", func(t *testing.T) {
		id := e.publish(t, "d-ok", "gateway-actions#add_deployment_event", statusConfig, "p-ok",
			"deployment_status", githubDeploymentStatus)
		require.Eventually(t, func() bool { return len(e.requestsFor("p-ok")) == 2 }, 15*time.Second, 20*time.Millisecond)
		reqs := e.requestsFor("p-ok")
		require.Equal(t, "GET /organizations/acme/projects/p-ok/releases/", reqs[0].key())
		require.Equal(t, "committish=abcdef1&tag=v1.2.3", reqs[0].RawQuery)
		require.Equal(t, "POST /organizations/acme/projects/p-ok/releases/"+testReleaseID+"/environments/production", reqs[1].key())
		requireAPIHeaders(t, reqs[1], testToken)
		requireJSON(t, `{"status": "success", "note": "https://github.com/o/r/actions/runs/77", "external_run_id": "77"}`, reqs[1].Body)
		time.Sleep(300 * time.Millisecond)
		require.Len(t, e.requestsFor("p-ok"), 2, "acked once, not redelivered")
		require.Nil(t, e.dlq.Get(id))
	})

	t.Run("503 then 201 retries after Retry-After and succeeds once", func(t *testing.T) {
		route := "POST /organizations/acme/projects/p-retry/releases/"
		e.api.on(route,
			apiReply{Status: 503, Body: `{"detail": "maintenance"}`, Header: map[string]string{"Retry-After": "1"}},
			apiReply{Status: 201, Body: `{"id": "rel-created"}`})
		id := e.publish(t, "d-retry", "gateway-actions#create_release", `{"title_selector": "/payload/deployment/description",
			"committish_expression": "substring(payload.deployment.sha, 0, 7)",
			"version_expression": "payload.deployment.ref"}`, "p-retry", "deployment", githubDeployment)
		require.Eventually(t, func() bool { return len(e.requestsFor("p-retry")) == 2 }, 15*time.Second, 20*time.Millisecond)
		time.Sleep(500 * time.Millisecond)
		reqs := e.requestsFor("p-retry")
		require.Len(t, reqs, 2, "one 503, one 201, no further attempt")
		require.GreaterOrEqual(t, reqs[1].At.Sub(reqs[0].At), 900*time.Millisecond,
			"the retry waited for Retry-After: 1, not the 50 ms backoff")
		for _, r := range reqs {
			require.Equal(t, route, r.key())
			requireJSON(t, `{"committish": "abcdef1", "title": "Deploy v1.2.3", "tag": "v1.2.3"}`, r.Body)
		}
		require.Nil(t, e.dlq.Get(id))
	})

	t.Run("404 dead-letters with its reason", func(t *testing.T) {
		e.api.on("POST /organizations/acme/projects/p-404/releases/"+testReleaseID+"/environments/production",
			apiReply{Status: 404, Body: `{"detail": "Release not found"}`})
		id := e.publish(t, "d-404", "gateway-actions#add_deployment_event", statusConfig, "p-404",
			"deployment_status", githubDeploymentStatus)
		var dead *nats.Msg
		require.Eventually(t, func() bool { dead = e.dlq.Get(id); return dead != nil }, 15*time.Second, 20*time.Millisecond)
		require.Equal(t, string(wire.ReasonActionFailed), dead.Header.Get(wire.DLQReason))
		require.Equal(t, "1", dead.Header.Get(wire.DLQAttempts), "permanent: no retry")
		errText := dead.Header.Get(wire.DLQError)
		require.Contains(t, errText, "release missing")
		require.Contains(t, errText, `release "`+testReleaseID+`" of project p-404 not found`)
		require.NotContains(t, errText, testToken)
		require.Len(t, e.requestsFor("p-404"), 2, "lookup and one POST")
	})
}
