package worker

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// laneStore opens the env's lanes bucket.
func (e *env) laneStore() *lanes.Store {
	e.t.Helper()
	s, err := lanes.Open(context.Background(), e.js, e.sc.LanesBucket)
	require.NoError(e.t, err)
	return s
}

// counter sums a counter's data points by the value of label.
func counter(t *testing.T, reader *sdkmetric.ManualReader, name, label string) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(label))
					got[v.AsString()] += dp.Value
				}
			case metricdata.Gauge[int64]:
				for _, dp := range data.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(label))
					got[v.AsString()] += dp.Value
				}
			case metricdata.Gauge[float64]: // whole units are enough here
				for _, dp := range data.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(label))
					got[v.AsString()] += int64(dp.Value)
				}
			}
		}
	}
	return got
}

// TestRateLimitUsesNoAttempt: rate-limited ten times (retry-after 100 ms),
// then fine: with MaxAttempts 2 the message still succeeds, is never
// dead-lettered, and its ten deferrals are settled as such.
func TestRateLimitUsesNoAttempt(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: -1})
	reader := sdkmetric.NewManualReader()
	cfg := e.config()
	cfg.MaxAttempts = 2
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	_, _ = e.start(cfg)
	seq := e.publish("rl-10", "test#rate_limited", map[string]any{"fail_times": 10, "retry_after_ms": 100})
	require.Eventually(t, func() bool { return e.gone(seq) }, 30*time.Second, 20*time.Millisecond)
	require.Equal(t, 11, e.rec.Calls("rl-10"))
	require.Empty(t, e.dlq.get("rl-10"))
	times := e.rec.Times("rl-10")
	for j := 1; j < len(times); j++ {
		require.GreaterOrEqual(t, times[j].Sub(times[j-1]), 100*time.Millisecond, "retry-after honoured")
	}
	settled := map[string]int64{}
	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "imbi_worker.messages.settled" {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					o, _ := dp.Attributes.Value("outcome")
					settled[o.AsString()] += dp.Value
				}
			}
		}
	}
	require.Equal(t, map[string]int64{outcomeDeferred: 10, outcomeAck: 1}, settled)
}

// TestRateLimitMaxWait: an endless rate limit is dead-lettered
// rate_limited once the message has waited RateLimitMaxWait.
func TestRateLimitMaxWait(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: -1})
	cfg := e.config()
	cfg.MaxAttempts = 2
	cfg.RateLimitMaxWait = 3 * time.Second
	_, _ = e.start(cfg)
	start := time.Now()
	seq := e.publish("rl-endless", "test#rate_limited", map[string]any{"retry_after_ms": 400})
	dl := e.waitDLQ("rl-endless", 20*time.Second)
	require.GreaterOrEqual(t, time.Since(start), 3*time.Second)
	require.Equal(t, string(wire.ReasonRateLimited), dl.Header.Get(wire.DLQReason))
	require.Equal(t, "1", dl.Header.Get(wire.DLQAttempts), "deferrals are not attempts")
	require.Greater(t, e.rec.Calls("rl-endless"), 3, "more runs than MaxAttempts")
	require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 20*time.Millisecond)
}

// TestSharedLane: a rate limit on one replica pauses the lane on every
// replica: the other replica holds the lane's next message until the
// pause ends, without running it, and runs another plugin's at once.
func TestSharedLane(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: -1})
	cfg := e.config()
	cfg.MaxAttempts = 2
	cfg.WorkerID = "replica-a"
	_, stopA := e.start(cfg)
	// Longer than A's Stop, which lets its outstanding pull run out (pullExpiry).
	const pause = pullExpiry + 3*time.Second
	e.publish("lane-1", "test#rate_limited", map[string]any{"fail_times": 1, "retry_after_ms": pause.Milliseconds()})
	store := e.laneStore()
	var st lanes.State
	require.Eventually(t, func() bool {
		l, err := store.List(context.Background())
		require.NoError(t, err)
		if len(l) == 1 {
			st = l[0]
		}
		return len(l) == 1
	}, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, lanes.Key{Plugin: "test", PluginID: "pl-1"}, st.Key)
	require.Equal(t, "worker replica-a", st.SetBy)
	require.NoError(t, stopA())

	// Replica B never saw the rate limit; it knows the lane only from the bucket.
	cfg.WorkerID = "replica-b"
	_, _ = e.start(cfg)
	seq2 := e.publish("lane-2", "test#ok", nil)
	seq3 := e.publish("lane-3", "other#ok", nil)
	require.Eventually(t, func() bool { return e.gone(seq3) }, 5*time.Second, 10*time.Millisecond)
	require.True(t, time.Now().Before(st.PausedUntil), "another plugin's message ran while the lane was paused")
	require.Zero(t, e.rec.Calls("lane-2"), "held by the paused lane")
	require.Eventually(t, func() bool { return e.gone(seq2) }, 15*time.Second, 10*time.Millisecond)
	times := e.rec.Times("lane-2")
	require.Len(t, times, 1)
	require.False(t, times[0].Before(st.PausedUntil), "ran only after the pause ended")
	require.Eventually(t, func() bool { return e.rec.Calls("lane-1") == 2 }, 15*time.Second, 10*time.Millisecond)
	require.Zero(t, e.dlq.count())
}

// TestManualPause: an operator's pause holds a lane's messages across a
// worker restart without using their attempts; after resume they run.
func TestManualPause(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: -1})
	reader := sdkmetric.NewManualReader()
	cfg := e.config()
	cfg.MaxAttempts = 1
	cfg.LaneRecheck = 200 * time.Millisecond
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	store := e.laneStore()
	require.NoError(t, store.Pause(context.Background(), lanes.PauseRequest{Lane: lanes.Key{Plugin: "test"}, Reason: "provider outage", By: "ops"}))
	_, stop := e.start(cfg)
	var seqs []uint64
	for i := range 3 {
		seqs = append(seqs, e.publish("held-"+strconv.Itoa(i), "test#ok", nil))
	}
	other := e.publish("free", "other#ok", nil)
	require.Eventually(t, func() bool { return e.gone(other) }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		return counter(t, reader, "imbi_worker.lanes.deferred", "plugin")["test"] >= 6
	}, 10*time.Second, 20*time.Millisecond, "deferred again and again")
	require.Equal(t, map[string]int64{"test": 1}, counter(t, reader, "imbi_worker.lanes.paused", "plugin"))
	require.Eventually(t, func() bool {
		return counter(t, reader, "imbi_worker.lanes.paused_time", "plugin")["test"] >= 1
	}, 5*time.Second, 50*time.Millisecond, "the pause has lasted a second")
	require.NoError(t, stop())

	_, _ = e.start(cfg) // the pause survives a restart: it lives in the bucket
	time.Sleep(time.Second)
	for i := range 3 {
		require.Zero(t, e.rec.Calls("held-"+strconv.Itoa(i)))
	}
	require.NoError(t, store.Resume(context.Background(), lanes.Key{Plugin: "test"}, "ops"))
	for _, seq := range seqs {
		require.Eventually(t, func() bool { return e.gone(seq) }, 10*time.Second, 10*time.Millisecond)
	}
	for i := range 3 {
		require.Equal(t, 1, e.rec.Calls("held-"+strconv.Itoa(i)))
	}
	require.Zero(t, e.dlq.count(), "many deliveries, one attempt each")
}

// TestLanePausedWhileWaitingForSlot: a message taken in before its lane
// was paused, still waiting for an action slot, is deferred once it gets
// the slot instead of running.
func TestLanePausedWhileWaitingForSlot(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: -1})
	cfg := e.config()
	cfg.Concurrency = 1
	_, _ = e.start(cfg)
	busy := e.publish("slot-busy", "other#sleep", map[string]any{"sleep_ms": 450}) // under the 500 ms deadline
	require.Eventually(t, func() bool { return e.rec.Calls("slot-busy") == 1 }, 5*time.Second, 5*time.Millisecond)
	waiting := e.publish("slot-waiting", "test#ok", nil)
	require.Eventually(t, func() bool { return e.consumerAckPending() == 2 }, 5*time.Second, 5*time.Millisecond, "taken in")
	time.Sleep(50 * time.Millisecond) // past its pre-check, waiting for the slot
	until := time.Now().Add(time.Second)
	require.NoError(t, e.laneStore().Pause(context.Background(), lanes.PauseRequest{Lane: lanes.Key{Plugin: "test"}, Until: until, By: "ops"}))
	require.Eventually(t, func() bool { return e.gone(busy) && e.gone(waiting) }, 15*time.Second, 10*time.Millisecond)
	times := e.rec.Times("slot-waiting")
	require.Len(t, times, 1)
	require.False(t, times[0].Before(until), "ran while its lane was paused")
	require.Zero(t, e.dlq.count())
}
