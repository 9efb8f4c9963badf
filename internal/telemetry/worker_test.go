package telemetry_test

// The worker runtime wired to this package's SDK, the admin server and
// (when scripts/test.sh started it) Neo4j: traces continue from a
// publisher's traceparent, /metrics shows every metric after a run, and
// /readyz follows NATS and shutdown. Real embedded nats-server, real HTTP.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/telemetry"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// stack is one worker with telemetry and an admin server on a real
// embedded nats-server.
type stack struct {
	t        *testing.T
	dataDir  string
	port     int
	srv      *streams.Embedded
	js       jetstream.JetStream
	sc       streams.Config
	spans    *tracetest.InMemoryExporter
	prov     *telemetry.Providers
	admin    *admin.Server
	worker   *worker.Worker
	rec      *dispatchtest.Recorder
	pub      *publisher.Publisher
	stop     context.CancelFunc
	runErr   chan error
	neo4j    bool
	maxTries int
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *stack) startNATS() {
	s.t.Helper()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: s.dataDir, Port: s.port})
	require.NoError(s.t, err)
	s.srv = srv
}

// neo4jStore opens the credential store on the Neo4j scripts/test.sh
// started; nil when none is configured outside CI.
func neo4jStore(t *testing.T, mp *telemetry.Providers) *creds.Store {
	t.Helper()
	cfg := creds.ConfigFromEnv(os.Getenv)
	if cfg.URL == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("IMBI_NEO4J_URL is not set: CI must run the Neo4j part (scripts/test.sh starts Neo4j)")
		}
		t.Log("IMBI_NEO4J_URL not set: credential metrics and the neo4j readiness check are not exercised")
		return nil
	}
	key, err := creds.GenerateKey()
	require.NoError(t, err)
	kr, err := creds.NewKeyring(key)
	require.NoError(t, err)
	store, err := creds.Open(cfg, kr, creds.WithMeterProvider(mp.MeterProvider))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	return store
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{t: t, dataDir: t.TempDir(), port: freePort(t), maxTries: 2}
	s.startNATS()
	t.Cleanup(func() { s.srv.Shutdown() })

	// Telemetry first, as `imbi-worker run` does.
	s.spans = tracetest.NewInMemoryExporter()
	prov, shutdown, err := telemetry.Setup(context.Background(), telemetry.Config{
		SpanExporter: s.spans, ServiceVersion: "test", NoRuntimeMetrics: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	s.prov = prov

	nc, err := nats.Connect(s.srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	s.js, err = jetstream.New(nc)
	require.NoError(t, err)
	s.sc = streams.Config{Idempotency: true, AckWait: 2 * time.Second}
	s.sc.SetDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = streams.Apply(ctx, s.js, s.sc)
	require.NoError(t, err)

	s.rec = dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(
		&dispatchtest.Plugin{Slug: "test", Rec: s.rec, Timeout: 150 * time.Millisecond},
		&dispatchtest.Plugin{Slug: "withcreds", Rec: s.rec,
			Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}},
	)
	require.NoError(t, err)
	disp := &dispatch.Dispatcher{Registry: reg, DefaultTimeout: 2 * time.Second, AbandonGrace: 50 * time.Millisecond}

	s.admin = admin.New(admin.Config{Addr: "127.0.0.1:0", Metrics: prov.MetricsHandler(), CheckTimeout: time.Second})
	require.NoError(t, s.admin.Start())
	t.Cleanup(func() { _ = s.admin.Shutdown(context.Background()) })

	if store := neo4jStore(t, prov); store != nil {
		s.neo4j = true
		res, err := creds.NewResolver(store, creds.WithMeterProvider(prov.MeterProvider))
		require.NoError(t, err)
		disp.Credentials = res
		s.admin.AddCheck(admin.PingCheck("neo4j", store))
	}

	wnc, err := nats.Connect(s.srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(wnc.Close)
	logger, err := telemetry.NewLogger(io.Discard, "debug", "json")
	require.NoError(t, err)
	s.worker, err = worker.New(wnc, disp, worker.Config{
		Streams: s.sc, Concurrency: 4, MaxAttempts: s.maxTries,
		BackoffBase: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		ShutdownGrace: 2 * time.Second, Idempotency: true, WorkerID: "telemetry-test",
		Logger: logger, MeterProvider: prov.MeterProvider, TracerProvider: prov.TracerProvider,
	})
	require.NoError(t, err)
	s.admin.AddCheck(admin.ReadyCheck("worker", s.worker))
	js, err := jetstream.New(wnc)
	require.NoError(t, err)
	_, err = telemetry.RegisterConsumerGauges(prov.MeterProvider.Meter("test"),
		telemetry.ConsumerInfoFunc(func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
			c, err := js.Consumer(ctx, s.sc.Stream, s.sc.Consumer)
			if err != nil {
				return nil, err
			}
			return c.Info(ctx)
		}), time.Second)
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.runErr = make(chan error, 1)
	go func() { s.runErr <- s.worker.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-s.runErr:
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop")
		}
	})
	require.Eventually(t, func() bool { return s.worker.Ready() == nil }, 10*time.Second, 10*time.Millisecond)

	pnc, err := nats.Connect(s.srv.URL())
	require.NoError(t, err)
	t.Cleanup(pnc.Close)
	s.pub, err = publisher.New(pnc, publisher.Config{})
	require.NoError(t, err)
	return s
}

func (s *stack) publish(ctx context.Context, id, handler string, config any) {
	s.t.Helper()
	raw, err := json.Marshal(config)
	require.NoError(s.t, err)
	slug, _, _ := strings.Cut(handler, "#")
	_, err = s.pub.Publish(ctx, publisher.Message{ID: id, Data: wiredata.ActionData{
		Rule:    wire.Rule{ID: "r-1", Handler: handler, HandlerConfig: raw},
		Plugin:  &wire.PluginRef{ID: "missing-" + id, Slug: slug},
		Context: plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme"},
		Event: plugins.Event{Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{"authorization": "Bearer x"}},
			Payload:  map[string]any{"id": id}},
		ExternalIdentifier: "acme/checkout",
	}})
	require.NoError(s.t, err)
}

// publishChain publishes a chain of handlers (wire contract §A).
func (s *stack) publishChain(ctx context.Context, id, onFailure string, handlers ...string) {
	s.t.Helper()
	c := publisher.Chain{ID: id, DeliveryID: id, OnFailure: onFailure, Data: wiredata.ActionData{
		Context: plugins.PluginContext{ProjectID: "p-1", ProjectSlug: "checkout", OrgSlug: "acme"},
		Event: plugins.Event{Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1"}, Payload: map[string]any{"id": id}},
	}}
	for i, h := range handlers {
		slug, _, _ := strings.Cut(h, "#")
		c.Rules = append(c.Rules, publisher.ChainRule{Rule: wire.Rule{Handler: h, HandlerConfig: json.RawMessage(`{}`), Ordinal: i},
			Plugin: &wire.PluginRef{ID: "missing-" + id, Slug: slug}})
	}
	_, err := s.pub.PublishChain(ctx, c)
	require.NoError(s.t, err)
}

func (s *stack) get(path string) (int, string) {
	s.t.Helper()
	resp, err := http.Get("http://" + s.admin.Addr() + path)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(b)
}

// metricValue sums the samples of a Prometheus series name whose labels
// contain every wanted label.
func metricValue(body, name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	return sum, found
}

// A publisher's span (traceparent on the CloudEvent and the NATS header)
// is the parent of the worker's consumer span, whose children are the
// pipeline steps.
func TestTraceContinuesFromPublisher(t *testing.T) {
	s := newStack(t)
	pubCtx, pubSpan := s.prov.TracerProvider.Tracer("imbi-gateway").Start(context.Background(), "publish webhook",
		trace.WithSpanKind(trace.SpanKindProducer))
	s.publish(pubCtx, "trace-1.0", "test#ok", map[string]any{})
	pubSpan.End()
	require.Eventually(t, func() bool { return s.rec.Calls("trace-1.0") == 1 }, 10*time.Second, 10*time.Millisecond)

	var consumer tracetest.SpanStub
	require.Eventually(t, func() bool {
		for _, sp := range s.spans.GetSpans() {
			if sp.SpanKind == trace.SpanKindConsumer && sp.EndTime.After(sp.StartTime) {
				consumer = sp
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)

	want := pubSpan.SpanContext()
	require.Equal(t, want.TraceID(), consumer.SpanContext.TraceID(), "the worker continues the publisher's trace")
	require.Equal(t, want.SpanID(), consumer.Parent.SpanID(), "the consumer span's parent is the publisher's span")
	require.True(t, consumer.Parent.IsRemote())
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range consumer.Attributes {
		attrs[kv.Key] = kv.Value
	}
	require.Equal(t, "nats", attrs["messaging.system"].AsString())
	require.Equal(t, "imbi.actions.test.ok", attrs["messaging.destination.name"].AsString())
	require.Equal(t, "trace-1.0", attrs["messaging.message.id"].AsString())
	require.Equal(t, "test#ok", attrs["handler"].AsString())

	children := map[string]bool{}
	for _, sp := range s.spans.GetSpans() {
		if sp.Parent.SpanID() == consumer.SpanContext.SpanID() {
			require.Equal(t, want.TraceID(), sp.SpanContext.TraceID())
			children[sp.Name] = true
		}
	}
	for _, name := range []string{"decode", "resolve", "validate_config", "action"} {
		require.True(t, children[name], "missing child span %q (have %v)", name, children)
	}
	name, _ := consumer.Resource.Set().Value("service.name")
	require.Equal(t, telemetry.DefaultServiceName, name.AsString())
}

// Every metric the worker, the credentials store and the consumer gauges
// emit appears on the admin server's /metrics after a run that exercises
// each outcome.
func TestMetricsEndpointAfterRun(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	s.publish(ctx, "m-ok.0", "test#ok", map[string]any{})
	s.publish(ctx, "m-fail.0", "test#fail", map[string]any{})                       // retried, then max_attempts
	s.publish(ctx, "m-perm.0", "test#permanent", map[string]any{})                  // dead letter at once
	s.publish(ctx, "m-slow.0", "test#sleep", map[string]any{"sleep_ms": 2000})      // timeout
	s.publish(ctx, "m-stuck.0", "test#ignore_ctx", map[string]any{"sleep_ms": 600}) // abandoned
	// A paused lane (the test plugin's credential set of m-paused.0) defers its message.
	lstore, err := lanes.Open(ctx, s.js, wire.DefaultLanesBucket)
	require.NoError(t, err)
	require.NoError(t, lstore.Pause(ctx, lanes.PauseRequest{Lane: lanes.Key{Plugin: "test", PluginID: "missing-m-paused.0"}, By: "ops"}))
	s.publish(ctx, "m-paused.0", "test#ok", map[string]any{})
	if s.neo4j {
		s.publish(ctx, "m-creds.0", "withcreds#ok", map[string]any{}) // cache miss, Neo4j query
	}
	// Ordered chains (wire contract §A): one runs to its end (a step and a
	// finished chain), one stops at its dead-lettered first step.
	s.publishChain(ctx, "m-chain", "", "test#ok", "test#ok")
	s.publishChain(ctx, "m-chain-stop", wire.ChainStop, "test#permanent", "test#ok")

	var body string
	want := []struct {
		name   string
		labels []string
	}{
		{"imbi_worker_messages_settled_total", []string{`handler="test#ok"`, `outcome="ack"`}},
		{"imbi_worker_messages_settled_total", []string{`outcome="retry"`}},
		{"imbi_worker_messages_settled_total", []string{`outcome="dead_letter"`}},
		{"imbi_worker_action_duration_seconds_count", []string{`handler="test#ok"`}},
		{"imbi_worker_retries_total", []string{`handler="test#fail"`}},
		{"imbi_worker_dead_letters_total", []string{`reason="max_attempts"`, `handler="test#fail"`}},
		{"imbi_worker_dead_letters_total", []string{`reason="action_failed"`, `handler="test#permanent"`}},
		{"imbi_worker_action_timeouts_total", []string{`handler="test#sleep"`}},
		{"imbi_worker_action_abandoned_total", []string{`handler="test#ignore_ctx"`}},
		{"imbi_worker_inflight", nil},
		{"imbi_worker_chain_steps_total", nil},
		{"imbi_worker_chain_finished_total", nil},
		{"imbi_worker_chain_stopped_total", nil},
		{"imbi_worker_lanes_paused", []string{`plugin="test"`}},
		{"imbi_worker_lanes_paused_time_seconds", []string{`plugin="test"`}},
		{"imbi_worker_lanes_deferred_total", []string{`plugin="test"`}},
		{"imbi_worker_consumer_pending", []string{`stream="IMBI_ACTIONS"`, `consumer="imbi-worker"`}},
		{"imbi_worker_consumer_ack_pending", []string{`consumer="imbi-worker"`}},
		{"imbi_worker_consumer_redelivered", []string{`consumer="imbi-worker"`}},
	}
	if s.neo4j {
		want = append(want,
			struct {
				name   string
				labels []string
			}{"imbi_worker_credentials_cache_requests_total", []string{`result="miss"`}},
			struct {
				name   string
				labels []string
			}{"imbi_worker_neo4j_query_duration_seconds_count", nil},
		)
	}
	missing := func() []string {
		_, body = s.get("/metrics")
		var out []string
		for _, w := range want {
			if v, ok := metricValue(body, w.name, w.labels...); !ok || (v == 0 && !strings.Contains(w.name, "inflight") && !strings.Contains(w.name, "consumer")) {
				out = append(out, fmt.Sprintf("%s%v", w.name, w.labels))
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(missing()) == 0 }, 20*time.Second, 100*time.Millisecond,
		"missing from /metrics: %v", missing())
	// docs/operations.md lists exactly what /metrics shows: every
	// documented imbi_worker_* name is really exported (and vice versa).
	documented := documentedMetrics(t)
	exported := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok && strings.HasPrefix(name, "imbi_worker_") {
			exported[strings.Fields(name)[0]] = true
		}
	}
	for name := range documented {
		if !s.neo4j && (strings.Contains(name, "credentials") || strings.Contains(name, "neo4j")) {
			continue
		}
		require.True(t, exported[name], "docs/operations.md lists %s but /metrics has no such metric", name)
	}
	for name := range exported {
		require.True(t, documented[name], "/metrics exports %s but docs/operations.md does not list it", name)
	}
	inflight, _ := metricValue(body, "imbi_worker_inflight")
	require.GreaterOrEqual(t, inflight, 0.0)
	require.NotContains(t, body, "Bearer x", "no header value leaks into metrics")
}

// /readyz: 200 while connected and bound; 503 naming the worker when NATS
// goes away; 200 again after it returns; 503 from the start of shutdown.
func TestReadyzFollowsNATSAndShutdown(t *testing.T) {
	s := newStack(t)
	code, body := s.get("/readyz")
	require.Equal(t, http.StatusOK, code, body)

	s.srv.Shutdown()
	require.Eventually(t, func() bool {
		code, body = s.get("/readyz")
		return code == http.StatusServiceUnavailable
	}, 10*time.Second, 20*time.Millisecond)
	var rb admin.ReadyBody
	require.NoError(t, json.Unmarshal([]byte(body), &rb))
	require.Contains(t, rb.Failing, "worker")
	code, _ = s.get("/healthz")
	require.Equal(t, http.StatusOK, code, "liveness is not readiness")

	s.startNATS() // same port and store: the clients reconnect
	require.Eventually(t, func() bool {
		code, _ = s.get("/readyz")
		return code == http.StatusOK
	}, 15*time.Second, 50*time.Millisecond)

	// Shutdown: readiness drops as soon as it starts, before Run returns.
	s.stop()
	require.Eventually(t, func() bool {
		code, body = s.get("/readyz")
		return code == http.StatusServiceUnavailable
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, json.Unmarshal([]byte(body), &rb))
	require.Contains(t, rb.Failing, "worker")
	s.admin.SetDraining()
	_, body = s.get("/readyz")
	require.NoError(t, json.Unmarshal([]byte(body), &rb))
	require.Contains(t, rb.Failing, admin.CheckDraining)
	select {
	case err := <-s.runErr:
		require.NoError(t, err)
		s.runErr <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("worker did not stop")
	}
}

// documentedMetrics reads the Prometheus names from the metrics table of
// docs/operations.md (rows starting with | `imbi_worker_...`).
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	out := map[string]bool{}
	for _, line := range strings.Split(string(raw), "\n") {
		rest, ok := strings.CutPrefix(line, "| `imbi_worker_")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(rest, "`")
		out["imbi_worker_"+name] = true
	}
	require.NotEmpty(t, out)
	return out
}
