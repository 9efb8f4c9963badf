package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestChainTraceParent: each step's process span is a child of the step
// before it (the continuation carries the current span's traceparent),
// all in one trace; the chain metrics count 2 continuations, 1 finished
// chain and 1 stopped chain.
func TestChainTraceParent(t *testing.T) {
	e := chainEnv(t, envOpts{})
	rec := tracetest.NewSpanRecorder()
	reader := sdkmetric.NewManualReader()
	cfg := e.config()
	cfg.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	e.start(cfg)
	e.publishChain("c-trace", "", "p-trace", []step{{"test#ok", nil}, {"test#ok", nil}, {"test#ok", nil}})
	// A stopped chain: step 1 dies permanently with steps left.
	e.publishChain("c-stop", "stop", "p-stop", []step{{"test#permanent", nil}, {"test#ok", nil}})
	e.waitDLQ("d-c-stop.0", 10*time.Second)

	byID := map[string]sdktrace.ReadOnlySpan{}
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			for _, a := range s.Attributes() {
				if a.Key == "messaging.message.id" {
					byID[a.Value.AsString()] = s
				}
			}
		}
		return len(byID) >= 4
	}, 10*time.Second, 10*time.Millisecond)
	first, second, third := byID["d-c-trace.0"], byID["c-trace.1"], byID["c-trace.2"]
	require.NotNil(t, first)
	require.NotNil(t, second)
	require.NotNil(t, third)
	require.Equal(t, first.SpanContext().TraceID(), third.SpanContext().TraceID())
	require.Equal(t, first.SpanContext().SpanID(), second.Parent().SpanID(), "step 2's parent is step 1")
	require.Equal(t, second.SpanContext().SpanID(), third.Parent().SpanID(), "step 3's parent is step 2")

	got := map[string]int64{}
	require.Eventually(t, func() bool {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok && len(sum.DataPoints) > 0 {
					got[m.Name] = sum.DataPoints[0].Value
				}
			}
		}
		return got["imbi_worker.chain.finished"] == 1 && got["imbi_worker.chain.stopped"] == 1
	}, 5*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(2), got["imbi_worker.chain.steps"])
	require.Equal(t, int64(1), got["imbi_worker.chain.finished"])
	require.Equal(t, int64(1), got["imbi_worker.chain.stopped"])
}
