package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// clearOTelEnv unsets every variable Setup reads, so a developer's shell
// cannot change a test's outcome.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		EnvTracesExporter, EnvOTLPEndpoint, EnvOTLPTracesEndpoint, EnvOTLPProtocol,
		EnvOTLPTracesProtocol, EnvServiceName, EnvResourceAttributes,
	} {
		t.Setenv(k, "")
	}
}

func setup(t *testing.T, cfg Config) *Providers {
	t.Helper()
	p, shutdown, err := Setup(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, shutdown(ctx))
	})
	return p
}

func scrape(t *testing.T, p *Providers) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	return rec.Body.String()
}

// The worker's instruments (names and units as the worker and credentials
// packages declare them) must reach Prometheus under these names: dots
// become underscores, "s" becomes _seconds, counters get _total, {…}
// annotations add nothing. docs/operations.md lists the same names.
func TestPrometheusNamesFollowOTelConventions(t *testing.T) {
	clearOTelEnv(t)
	p := setup(t, Config{ServiceVersion: "test"})
	m := p.MeterProvider.Meter("github.com/aweber-imbi/imbi-worker/internal/worker")
	ctx := context.Background()
	handler := metric.WithAttributes(attribute.String("handler", "github#create_issue"))

	settled, err := m.Int64Counter("imbi_worker.messages.settled", metric.WithUnit("{message}"))
	require.NoError(t, err)
	settled.Add(ctx, 1, metric.WithAttributes(attribute.String("handler", "github#create_issue"), attribute.String("outcome", "ack")))
	dur, err := m.Float64Histogram("imbi_worker.action.duration", metric.WithUnit("s"))
	require.NoError(t, err)
	dur.Record(ctx, 0.042, handler)
	inflight, err := m.Int64UpDownCounter("imbi_worker.inflight", metric.WithUnit("{message}"))
	require.NoError(t, err)
	inflight.Add(ctx, 3)
	neo, err := m.Float64Histogram("imbi_worker.neo4j.query.duration", metric.WithUnit("s"))
	require.NoError(t, err)
	neo.Record(ctx, 0.003)

	body := scrape(t, p)
	for _, want := range []string{
		`imbi_worker_messages_settled_total{handler="github#create_issue",outcome="ack"} 1`,
		`imbi_worker_action_duration_seconds_bucket{handler="github#create_issue",le="0.05"} 1`,
		`imbi_worker_action_duration_seconds_bucket{handler="github#create_issue",le="0.025"} 0`,
		`imbi_worker_action_duration_seconds_count{handler="github#create_issue"} 1`,
		`imbi_worker_neo4j_query_duration_seconds_bucket{le="0.005"} 1`,
		`imbi_worker_inflight 3`,
		`target_info{`,
		`service_name="imbi-worker"`,
		`service_version="test"`,
		// Go runtime and process collectors share the registry.
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		require.Contains(t, body, want)
	}
}

func TestNoRuntimeMetrics(t *testing.T) {
	clearOTelEnv(t)
	p := setup(t, Config{NoRuntimeMetrics: true})
	require.NotContains(t, scrape(t, p), "go_goroutines")
}

// Two Setups in one process (two workers in a test) must not collide on a
// global registry.
func TestSetupTwiceHasSeparateRegistries(t *testing.T) {
	clearOTelEnv(t)
	a := setup(t, Config{})
	b := setup(t, Config{})
	c, err := a.MeterProvider.Meter("x").Int64Counter("only.in.a")
	require.NoError(t, err)
	c.Add(context.Background(), 1)
	require.Contains(t, scrape(t, a), "only_in_a_total 1")
	require.NotContains(t, scrape(t, b), "only_in_a")
}

func TestTracesWanted(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		want     bool
		protocol string
		wantErr  string
	}{
		{name: "nothing set: off", want: false},
		{name: "endpoint: http/protobuf by default", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4318"}, want: true, protocol: protocolHTTPProtobuf},
		{name: "traces endpoint", env: map[string]string{EnvOTLPTracesEndpoint: "http://127.0.0.1:4318/v1/traces"}, want: true, protocol: protocolHTTPProtobuf},
		{name: "grpc protocol", env: map[string]string{EnvOTLPEndpoint: "http://127.0.0.1:4317", EnvOTLPProtocol: "grpc"}, want: true, protocol: protocolGRPC},
		{name: "traces protocol wins", env: map[string]string{EnvOTLPEndpoint: "x", EnvOTLPProtocol: "grpc", EnvOTLPTracesProtocol: "http/protobuf"}, want: true, protocol: protocolHTTPProtobuf},
		{name: "exporter otlp without endpoint", env: map[string]string{EnvTracesExporter: "otlp"}, want: true, protocol: protocolHTTPProtobuf},
		{name: "exporter none beats endpoint", env: map[string]string{EnvTracesExporter: "none", EnvOTLPEndpoint: "http://127.0.0.1:4318"}, want: false},
		{name: "unknown exporter", env: map[string]string{EnvTracesExporter: "zipkin"}, wantErr: `OTEL_TRACES_EXPORTER="zipkin" is not supported`},
		{name: "unknown protocol", env: map[string]string{EnvOTLPEndpoint: "x", EnvOTLPProtocol: "http/json"}, wantErr: `OTLP protocol "http/json" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearOTelEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			protocol, ok, err := tracesWanted()
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				_, _, err = Setup(context.Background(), Config{})
				require.ErrorContains(t, err, tt.wantErr, "Setup must fail fast too")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, ok)
			require.Equal(t, tt.protocol, protocol)
		})
	}
}

func TestTracesOffByDefaultIsNoop(t *testing.T) {
	clearOTelEnv(t)
	p := setup(t, Config{})
	require.False(t, p.TracesExported)
	_, span := p.TracerProvider.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	require.False(t, span.IsRecording())
}

// A span context injected by a publisher (traceparent) and extracted with
// Providers.Propagator continues the same trace in the worker's spans.
func TestPropagatorContinuesTrace(t *testing.T) {
	clearOTelEnv(t)
	t.Setenv(EnvServiceName, "worker-under-test")
	exp := tracetest.NewInMemoryExporter()
	p := setup(t, Config{SpanExporter: exp})
	require.True(t, p.TracesExported)

	pubCtx, pubSpan := p.TracerProvider.Tracer("publisher").Start(context.Background(), "publish")
	carrier := propagation.MapCarrier{}
	p.Propagator.Inject(pubCtx, carrier)
	pubSpan.End()
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, carrier["traceparent"])

	ctx := p.Propagator.Extract(context.Background(), carrier)
	_, span := p.TracerProvider.Tracer("worker").Start(ctx, "process", trace.WithSpanKind(trace.SpanKindConsumer))
	span.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	require.Equal(t, spans[0].SpanContext.TraceID(), spans[1].SpanContext.TraceID())
	require.Equal(t, spans[0].SpanContext.SpanID(), spans[1].Parent.SpanID())
	name, ok := spans[1].Resource.Set().Value("service.name")
	require.True(t, ok)
	require.Equal(t, "worker-under-test", name.AsString())
}

// The OTLP/HTTP exporter chosen from the environment really sends spans:
// a local HTTP endpoint decodes the protobuf export request.
func TestOTLPHTTPExportFromEnvironment(t *testing.T) {
	clearOTelEnv(t)
	var (
		mu   sync.Mutex
		reqs []*coltracepb.ExportTraceServiceRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/traces" || err != nil {
			http.Error(w, "unexpected", http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		reqs = append(reqs, &req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	t.Setenv(EnvOTLPEndpoint, srv.URL)
	t.Setenv(EnvResourceAttributes, "deployment.environment.name=test")

	p, shutdown, err := Setup(context.Background(), Config{})
	require.NoError(t, err)
	require.True(t, p.TracesExported)
	_, span := p.TracerProvider.Tracer("t").Start(context.Background(), "process imbi.actions.github.create_issue")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, shutdown(ctx)) // flushes the batch

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, reqs, 1)
	rs := reqs[0].GetResourceSpans()
	require.Len(t, rs, 1)
	attrs := map[string]string{}
	for _, kv := range rs[0].GetResource().GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	require.Equal(t, "imbi-worker", attrs["service.name"])
	require.Equal(t, "test", attrs["deployment.environment.name"])
	require.Equal(t, "process imbi.actions.github.create_issue", rs[0].GetScopeSpans()[0].GetSpans()[0].GetName())
}

func TestOTLPGRPCExporterIsLazy(t *testing.T) {
	clearOTelEnv(t)
	// Nothing listens there: creating the exporter must not dial or fail,
	// so a collector that is down never stops the worker from starting.
	t.Setenv(EnvOTLPEndpoint, "http://127.0.0.1:1")
	t.Setenv(EnvOTLPProtocol, "grpc")
	p, shutdown, err := Setup(context.Background(), Config{})
	require.NoError(t, err)
	require.True(t, p.TracesExported)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = shutdown(ctx) // nothing to flush; an unreachable collector may report an error
}

func TestDurationBucketsAscending(t *testing.T) {
	b := DurationBuckets()
	for i := 1; i < len(b); i++ {
		require.Less(t, b[i-1], b[i])
	}
	// The default plugin timeout (10 s) must fall inside the buckets, or
	// timed-out actions all land in +Inf.
	require.Greater(t, b[len(b)-1], 10.0)
}
