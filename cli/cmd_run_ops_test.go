package cli

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/aweber-imbi/imbi-worker/internal/admin"
	"github.com/aweber-imbi/imbi-worker/internal/creds"
	"github.com/aweber-imbi/imbi-worker/internal/testenv"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// otlpReceiver is a local OTLP/HTTP trace endpoint that keeps the trace
// ids and span names it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string][]string // trace id (hex) → span names
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	var req coltracepb.ExportTraceServiceRequest
	if err != nil || r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := hex.EncodeToString(sp.GetTraceId())
				o.spans[id] = append(o.spans[id], sp.GetName())
			}
		}
	}
	o.mu.Unlock()
	resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(resp)
}

func (o *otlpReceiver) names(traceID string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.spans[traceID]...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// `imbi-worker run` with the ops wiring: the admin server answers during
// and after start-up, /metrics carries the worker's and the consumer's
// metrics after a message, the message's trace (continued from the
// publisher's traceparent) is exported over OTLP/HTTP to the endpoint in
// OTEL_EXPORTER_OTLP_ENDPOINT, and log lines carry its trace id.
func TestRunServesAdminMetricsAndTraces(t *testing.T) {
	recv := &otlpReceiver{spans: map[string][]string{}}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_SERVICE_NAME", "imbi-worker-test")
	// With the test Neo4j (scripts/test.sh exports IMBI_NEO4J_*), run also
	// opens the credential store, which needs a key, and /readyz pings it.
	withStore := os.Getenv(testenv.EnvNeo4jURL) != ""
	if withStore {
		key, err := creds.GenerateKey()
		require.NoError(t, err)
		t.Setenv(creds.EnvEncryptionKey, key)
		t.Setenv(creds.EnvEncryptionKeys, "")
	}

	dir := t.TempDir()
	addr := freeAddr(t)
	var out, errOut syncBuffer
	cmd := NewRootCmd()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"run", "--data-dir", dir, "--embedded-port", "0", "--shutdown-grace", "2s",
		"--admin-addr", addr, "--worker-id", "ops-test"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	base := "http://" + addr
	require.Eventually(t, func() bool { code, _ := httpGet(t, base+"/readyz"); return code == http.StatusOK },
		20*time.Second, 20*time.Millisecond, "never ready; log:\n%s", errOut.String())
	code, body := httpGet(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code, body)
	_, body = httpGet(t, base+"/readyz")
	var rb admin.ReadyBody
	require.NoError(t, json.Unmarshal([]byte(body), &rb))
	var checks []string
	for _, c := range rb.Checks {
		checks = append(checks, c.Name)
	}
	want := []string{admin.CheckDraining, "worker"}
	if withStore {
		want = append(want, "neo4j")
	}
	require.Equal(t, want, checks)
	// The Neo4j readiness check is only there with the test Neo4j; without
	// it this subtest skips visibly ("needs neo4j:", a failure under CI)
	// instead of the check being dropped unseen.
	t.Run("neo4j_readiness_check", func(t *testing.T) {
		testenv.Neo4jURL(t)
		require.Contains(t, checks, "neo4j")
	})

	_, pub := connectPublisher(t, embeddedURL(t, dir, 5*time.Second))

	// A publisher-side span (as imbi-gateway would have): publisher injects
	// its traceparent.
	tid, _ := trace.TraceIDFromHex("5bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	pubCtx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true}))
	_, err := pub.Publish(pubCtx, publisher.Message{ID: "ops-1.0", Data: wiredata.ActionData{
		Rule:    wire.Rule{Handler: "nope#act", HandlerConfig: json.RawMessage(`{}`)},
		Context: plugins.PluginContext{ProjectID: "p", ProjectSlug: "s", OrgSlug: "o"},
		Event: plugins.Event{Type: "push", ThirdPartyService: "github",
			Metadata: plugins.EventMetadata{WebhookID: "wh-1", Headers: map[string]string{"authorization": "Bearer s3cr3t"}}},
	}})
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		_, body = httpGet(t, base+"/metrics")
		return strings.Contains(body, `imbi_worker_dead_letters_total{handler="_unknown",reason="unknown_handler"} 1`)
	}, 15*time.Second, 50*time.Millisecond, "no dead-letter metric; log:\n%s", errOut.String())
	for _, want := range []string{
		`imbi_worker_messages_settled_total{handler="_unknown",outcome="dead_letter"} 1`,
		`imbi_worker_consumer_pending{consumer="imbi-worker",stream="IMBI_ACTIONS"} 0`,
		`imbi_worker_consumer_ack_pending{consumer="imbi-worker",stream="IMBI_ACTIONS"}`,
		`imbi_worker_consumer_redelivered{consumer="imbi-worker",stream="IMBI_ACTIONS"}`,
		`service_instance_id="ops-test"`,
		`service_name="imbi-worker-test"`,
		"go_goroutines ",
	} {
		require.Contains(t, body, want)
	}

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not exit")
	}
	// Stopped: the admin server is gone with the process's work.
	code, _ = httpGet(t, base+"/healthz")
	require.Zero(t, code)

	// Spans are flushed at exit to the collector, in the publisher's trace.
	names := recv.names(tid.String())
	require.Contains(t, names, "process imbi.actions.nope.act", "exported: %v", names)
	require.Contains(t, names, "decode")

	// JSON logs (stderr is not a terminal), the trace id on the message's
	// lines, no secret anywhere.
	logs := errOut.String()
	require.Contains(t, logs, `"trace_id":"`+tid.String()+`"`)
	require.NotContains(t, logs, "s3cr3t")
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if strings.HasPrefix(line, "{") {
			require.True(t, json.Valid([]byte(line)), line)
		}
	}
}

// An admin address the operator chose must work; run fails rather than
// run unobservable.
func TestRunFailsWhenChosenAdminAddrIsBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	cmd := NewRootCmd()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"run", "--data-dir", t.TempDir(), "--embedded-port", "0", "--admin-addr", ln.Addr().String()})
	err = cmd.ExecuteContext(context.Background())
	require.ErrorContains(t, err, "admin: listen")
}

func TestAdminAddrDefaultIsLoopback(t *testing.T) {
	f := newRunCmd().Flags().Lookup("admin-addr")
	require.NotNil(t, f)
	require.Equal(t, admin.DefaultAddr, f.DefValue)
	require.Equal(t, "IMBI_ADMIN_ADDR", EnvName(f.Name))
}

// setupOps: /readyz says "worker" until the worker is bound, and "draining"
// from the moment the run context is cancelled (SIGTERM).
func TestSetupOpsReadinessAtStartAndShutdown(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(k, "")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := freeAddr(t)
	f := &runFlags{ops: opsFlags{adminAddr: addr}}
	var logs syncBuffer
	l, err := newLogger(&logs, "info", "json")
	require.NoError(t, err)
	deps := &runDeps{Logger: l}
	require.NoError(t, setupOps(ctx, f, deps))
	defer deps.close(context.Background())
	require.Len(t, deps.OnWorker, 1, "the worker hook binds readiness and the consumer gauges")

	readiness := func() admin.ReadyBody {
		code, body := httpGet(t, "http://"+addr+"/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code, body)
		var rb admin.ReadyBody
		require.NoError(t, json.Unmarshal([]byte(body), &rb))
		return rb
	}
	code, _ := httpGet(t, "http://"+addr+"/healthz")
	require.Equal(t, http.StatusOK, code, "alive while starting")
	require.Equal(t, []string{"worker"}, readiness().Failing)

	cancel()
	require.Eventually(t, func() bool {
		rb := readiness()
		return len(rb.Failing) > 0 && rb.Failing[0] == admin.CheckDraining
	}, 5*time.Second, 5*time.Millisecond)
}

func TestSetupOpsAdminDisabled(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	var logs syncBuffer
	l, err := newLogger(&logs, "info", "json")
	require.NoError(t, err)
	deps := &runDeps{Logger: l}
	require.NoError(t, setupOps(context.Background(), &runFlags{}, deps))
	defer deps.close(context.Background())
	require.Empty(t, deps.OnWorker)
	require.NotNil(t, deps.MeterProvider)
	require.Contains(t, logs.String(), "admin server disabled")
}
