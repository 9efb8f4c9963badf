package httprequest_test

// End to end through the worker runtime (security issue 12 item 1): a
// rule whose url lets the payload steer the request to a loopback server,
// published to embedded NATS JetStream and consumed by internal/worker,
// is dead-lettered with a permanent reason; the loopback server receives
// nothing and the dead letter does not hold the token.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
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

// tokenSource hands the http plugin its bearer token at the dispatch
// interface (the credential store's place).
type tokenSource struct{}

func (tokenSource) Credentials(context.Context, plugins.PluginManifest, string, string) (plugins.Credentials, error) {
	return plugins.Credentials{httprequest.CredentialToken: secretToken}, nil
}

type e2e struct {
	env  *streamstest.Env
	pub  *publisher.Publisher
	dead *workertest.DeadLetters
}

// workerOpt adjusts the streams and worker configuration of startWorker.
type workerOpt func(*streams.Config, *worker.Config)

func startWorker(t *testing.T, p httprequest.Plugin, opts ...workerOpt) *e2e {
	t.Helper()
	sc := streams.Config{MaxDeliver: 8, Idempotency: true}
	wc := worker.Config{
		Concurrency: 2, MaxAttempts: 3,
		BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		Idempotency: true, WorkerID: "httprequest-e2e", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&sc, &wc)
	}
	ne := streamstest.Start(t, sc)
	if sc.Outcomes { // as run does: the outcome hook last
		wc.Hooks = outcomes.NewHook(ne.JS, outcomes.Config{Prefix: ne.Config.OutcomesPrefix, WorkerID: wc.WorkerID,
			Logger: wc.Logger}).Hooks(wc.Hooks)
	}
	reg := workertest.Registry(t, pluginreg.Registration{Name: httprequest.Slug, Load: func() (any, error) { return p, nil }})
	workertest.Run(t, ne, &dispatch.Dispatcher{Registry: reg, Credentials: tokenSource{}, DefaultTimeout: 5 * time.Second}, wc)
	e := &e2e{env: ne, dead: workertest.RecordDeadLetters(t, ne)}
	var err error
	e.pub, err = publisher.New(ne.NC, publisher.Config{SubjectPrefix: ne.Config.SubjectPrefix})
	require.NoError(t, err)
	return e
}

func (e *e2e) publish(t *testing.T, delivery, config string, payload map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := e.pub.Publish(ctx, publisher.Message{DeliveryID: delivery, Data: wiredata.ActionData{
		Rule:    wire.Rule{ID: "rule-1", Handler: httprequest.Slug + "#" + httprequest.ActionName, HandlerConfig: json.RawMessage(config)},
		Plugin:  &wire.PluginRef{Slug: httprequest.Slug},
		Context: plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme"},
		Event: plugins.Event{Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{"x-github-event": "push"}},
			Payload:  payload},
	}})
	require.NoError(t, err)
	return publisher.EventID(delivery, 0)
}

func (e *e2e) deadLetter(t *testing.T, id string) *nats.Msg {
	t.Helper()
	var m *nats.Msg
	require.Eventually(t, func() bool {
		m = e.dead.Get(id)
		return m != nil
	}, 15*time.Second, 20*time.Millisecond, "no dead letter for %s", id)
	return m
}

// requireNoToken checks every header and the body of a dead letter.
func requireNoToken(t *testing.T, m *nats.Msg) {
	t.Helper()
	require.NotContains(t, string(m.Data), secretToken)
	for name, vals := range m.Header {
		for _, v := range vals {
			require.NotContains(t, v, secretToken, name)
		}
	}
}

func TestPayloadCannotSteerRequestThroughWorker(t *testing.T) {
	victim := newRecorder(t, func(http.ResponseWriter, *http.Request) {})
	hostPort := strings.TrimPrefix(victim.srv.URL, "http://")
	attack := map[string]any{"path": "@" + hostPort + "/steal"}

	t.Run("payload fills the authority: invalid_config", func(t *testing.T) {
		e := startWorker(t, httprequest.Plugin{AllowPrivate: true}) // even with the allowance
		id := e.publish(t, "d-steer", `{"url": "http://hooks.example.com{{ .event.payload.path }}"}`, attack)
		m := e.deadLetter(t, id)
		require.Equal(t, string(wire.ReasonInvalidConfig), m.Header.Get(wire.DLQReason))
		require.Contains(t, m.Header.Get(wire.DLQError), "scheme://host[:port] part must be literal text")
		require.Equal(t, "1", m.Header.Get(wire.DLQAttempts), "permanent: not retried")
		requireNoToken(t, m)
	})

	t.Run("literal loopback host, allowance off: action_failed", func(t *testing.T) {
		e := startWorker(t, httprequest.Plugin{})
		id := e.publish(t, "d-loopback", `{"url": "`+victim.srv.URL+`/{{ .event.payload.path }}"}`, attack)
		m := e.deadLetter(t, id)
		require.Equal(t, string(wire.ReasonActionFailed), m.Header.Get(wire.DLQReason))
		require.Contains(t, m.Header.Get(wire.DLQError), "is a loopback address (refused")
		require.Equal(t, "1", m.Header.Get(wire.DLQAttempts), "permanent: not retried")
		requireNoToken(t, m)
	})
	require.Empty(t, victim.requests(), "the loopback server received nothing")

	t.Run("control: with the allowance the literal host is reached, payload escaped", func(t *testing.T) {
		e := startWorker(t, httprequest.Plugin{AllowPrivate: true})
		e.publish(t, "d-allowed", `{"url": "`+victim.srv.URL+`/{{ .event.payload.path }}"}`, attack)
		require.Eventually(t, func() bool { return len(victim.requests()) == 1 }, 15*time.Second, 20*time.Millisecond)
		got := victim.requests()[0]
		require.Equal(t, "/"+attack["path"].(string), got.Path, "one escaped path segment on the configured host")
		require.Equal(t, "Bearer "+secretToken, got.Header.Get("Authorization"), "the token was really there to steal")
	})
}
