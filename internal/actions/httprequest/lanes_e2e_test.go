package httprequest_test

// Rate-limit lanes through the worker (wire-contract v1.1 §B): a 429 with
// Retry-After is a deferral that uses no attempt.

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/aweber-imbi/imbi-worker/internal/actions/httprequest"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/wire"
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
// ten deferrals (each at least a second apart) and one ack, no dead
// letter, and the outcome stream holds exactly its paused ×10, succeeded.
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
		sc.Outcomes = true
		wc.MaxAttempts = 2
		wc.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	})
	id := e.publish(t, "d-429", `{"url": "`+srv.srv.URL+`/hook"}`, map[string]any{"id": 1})
	require.Eventually(t, func() bool { return settledByOutcome(t, reader)["ack"] == 1 }, 40*time.Second, 50*time.Millisecond)
	require.Equal(t, map[string]int64{"deferred": 10, "ack": 1}, settledByOutcome(t, reader))
	require.Len(t, srv.requests(), 11)
	mu.Lock()
	for i := 1; i < len(times); i++ {
		require.GreaterOrEqual(t, times[i].Sub(times[i-1]), time.Second, "Retry-After honoured")
	}
	mu.Unlock()
	require.Empty(t, e.dead.All(), "not dead-lettered")

	// Each outcome is stored before its message call, so all eleven are
	// in the stream once the ack is counted.
	requireOutcomes(t, e, id, append(slices.Repeat([]wire.OutcomeStatus{wire.OutcomePaused}, 10), wire.OutcomeSucceeded))
}

// requireOutcomes checks the outcome stream's events of action id, oldest
// first: exactly want, one per delivery (ids <id>.1, <id>.2, ...), every
// paused one rate_limited with its next attempt at least a second on.
func requireOutcomes(t *testing.T, e *e2e, id string, want []wire.OutcomeStatus) {
	t.Helper()
	r := outcomes.NewReader(e.env.JS, e.env.Config.OutcomesStream, e.env.Config.OutcomesPrefix)
	stored, err := r.Recent(context.Background(), outcomes.Filter{Handler: httprequest.Slug + "#" + httprequest.ActionName})
	require.NoError(t, err)
	slices.Reverse(stored) // Recent is newest first
	var got []wire.OutcomeStatus
	for i, ev := range stored {
		require.Equal(t, id, ev.Data.ActionID)
		require.Equal(t, id+"."+strconv.Itoa(i+1), ev.ID, "one outcome per delivery, in order")
		got = append(got, ev.Data.Status)
		if ev.Data.Status == wire.OutcomePaused {
			require.Equal(t, wire.ReasonRateLimited, ev.Data.Reason)
			require.NotNil(t, ev.Data.NextAttemptAt)
			require.GreaterOrEqual(t, ev.Data.NextAttemptAt.Sub(ev.Time), time.Second, "paused until Retry-After")
		}
	}
	require.Equal(t, want, got)
}
