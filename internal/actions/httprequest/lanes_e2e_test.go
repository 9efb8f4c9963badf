package httprequest_test

// Rate-limit lanes through the worker (wire-contract v1.1 §B): a 429 with
// Retry-After is a deferral that uses no attempt.

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
)

// settledByOutcome reads imbi_worker.messages.settled by outcome.
func settledByOutcome(t *testing.T, r *sdkmetric.ManualReader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "imbi_worker.messages.settled" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				o, _ := dp.Attributes.Value("outcome")
				got[o.AsString()] += dp.Value
			}
		}
	}
	return got
}

// TestTooManyRequestsUsesNoAttempt: the server answers 429 Retry-After: 1
// ten times, then 200. With --max-attempts 2 the message still succeeds:
// ten deferrals (each at least a second apart) and one ack, no dead letter.
func TestTooManyRequestsUsesNoAttempt(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		times []time.Time
	)
	srv := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		n := len(times)
		mu.Unlock()
		if n <= 10 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	reader := sdkmetric.NewManualReader()
	e := startWorker(t, httprequest.Plugin{AllowPrivate: true}, func(sc *streams.Config, wc *worker.Config) {
		sc.MaxDeliver = -1
		wc.MaxAttempts = 2
		wc.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	e.publish(t, "d-429", `{"url": "`+srv.srv.URL+`/hook"}`, map[string]any{"id": 1})
	require.Eventually(t, func() bool { return settledByOutcome(t, reader)["ack"] == 1 }, 40*time.Second, 50*time.Millisecond)
	require.Equal(t, map[string]int64{"deferred": 10, "ack": 1}, settledByOutcome(t, reader))
	require.Len(t, srv.requests(), 11)
	mu.Lock()
	for i := 1; i < len(times); i++ {
		require.GreaterOrEqual(t, times[i].Sub(times[i-1]), time.Second, "Retry-After honoured")
	}
	mu.Unlock()
	require.Empty(t, e.dead.All(), "not dead-lettered")
}
