package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestDoneMarkerSurvivesCrashBeforeAck: the worker dies between the
// action's success (done-marker written) and the ack; the redelivery is
// acked without running the action again.
func TestDoneMarkerSurvivesCrashBeforeAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{ackWait: time.Second})
	crashed := make(chan struct{})
	cfg := e.config()
	var once atomic.Bool
	cfg.hooks.afterDone = func(string) bool {
		if once.CompareAndSwap(false, true) {
			close(crashed)
			return true // "crash": no ack
		}
		return false
	}
	_, stopA := e.start(cfg)
	seq := e.publish("crash-1", "test#ok", nil)
	<-crashed
	require.NoError(t, stopA())

	// A fresh worker gets the redelivery after AckWait.
	_, _ = e.start(e.config())
	require.Eventually(t, func() bool { return e.gone(seq) }, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, e.rec.Calls("crash-1"), "the action ran once")
}

// TestNoIdempotencyRunsAgain is the control of the test above: without
// done-markers the redelivery runs the action a second time.
func TestNoIdempotencyRunsAgain(t *testing.T) {
	t.Parallel()
	off := false
	e := newEnv(t, envOpts{ackWait: time.Second, idempotency: &off})
	cfg := e.config()
	var once atomic.Bool
	cfg.hooks.afterDone = func(string) bool { return once.CompareAndSwap(false, true) }
	_, _ = e.start(cfg)
	seq := e.publish("crash-2", "test#ok", nil)
	require.Eventually(t, func() bool { return e.gone(seq) }, 15*time.Second, 20*time.Millisecond)
	require.Equal(t, 2, e.rec.Calls("crash-2"))
}

// TestExactlyOnceAcrossWorkers: 10k messages through 3 in-process workers
// sharing one durable consumer; every id runs exactly once.
func TestExactlyOnceAcrossWorkers(t *testing.T) {
	t.Parallel()
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	e := newEnv(t, envOpts{})
	for range 3 {
		cfg := e.config()
		cfg.Concurrency = 16
		_, _ = e.start(cfg)
	}
	ctx := context.Background()
	for i := range n {
		id := "x-" + strconv.Itoa(i)
		m := natsMsg("imbi.actions.test.ok", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id}, event(id, "test#ok", nil, id))
		_, err := e.js.PublishMsgAsync(m)
		require.NoError(t, err)
		if i%1000 == 999 {
			select {
			case <-e.js.PublishAsyncComplete():
			case <-time.After(30 * time.Second):
				t.Fatal("publish stalled")
			}
		}
	}
	_ = ctx
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 120*time.Second, 100*time.Millisecond)
	calls := e.rec.Snapshot()
	require.Len(t, calls, n)
	for id, c := range calls {
		if c != 1 {
			t.Fatalf("%s ran %d times", id, c)
		}
	}
	require.Zero(t, e.dlq.count())
}

// TestCrashLoopDeadLettersBeforeRunning: a message already delivered
// max-attempts times without being settled is dead-lettered as
// max_attempts/unsettled without running again.
func TestCrashLoopDeadLettersBeforeRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cfg := e.config()
	e.publish("loop-1", "test#ok", nil)
	// Earlier "workers" received it max-attempts times and died.
	cons, err := e.js.Consumer(context.Background(), e.sc.Stream, e.sc.Consumer)
	require.NoError(t, err)
	for range cfg.MaxAttempts {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		got := 0
		for m := range batch.Messages() {
			require.NoError(t, m.Nak())
			got++
		}
		require.Equal(t, 1, got)
	}
	_, _ = e.start(cfg)
	dl := e.waitDLQ("loop-1", 10*time.Second)
	require.Equal(t, string(wire.ReasonMaxAttempts), dl.Header.Get(wire.DLQReason))
	require.Equal(t, string(wire.ReasonUnsettled), dl.Header.Get(wire.DLQLastReason))
	require.Equal(t, strconv.Itoa(cfg.MaxAttempts+1), dl.Header.Get(wire.DLQAttempts))
	require.Zero(t, e.rec.Calls("loop-1"))
}

// TestMaxDeliveriesAdvisoryNet: the server gives up on a message (here a
// consumer whose MaxDeliver is reached by a client that never settles);
// the worker's advisory listener dead-letters it by stream sequence and
// removes it from the work stream.
func TestMaxDeliveriesAdvisoryNet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: 2})
	cfg := e.config()
	cfg.MaxAttempts = 1 // MaxDeliver must exceed it
	w, err := New(connect(t, e.srv.URL()), e.disp(), cfg)
	require.NoError(t, err)
	require.NoError(t, w.bind(context.Background()))
	sub, err := w.subscribeAdvisories()
	require.NoError(t, err)
	t.Cleanup(sub.stop)
	require.NoError(t, w.nc.Flush())

	seq := e.publish("adv-1", "test#ok", nil)
	cons, err := e.js.Consumer(context.Background(), e.sc.Stream, e.sc.Consumer)
	require.NoError(t, err)
	for range 2 {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			require.NoError(t, m.Nak())
		}
	}
	// The server notices MaxDeliver when it would deliver again, i.e. on
	// the next pull.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(time.Second))
	require.NoError(t, err)
	for range batch.Messages() {
		t.Fatal("delivered past MaxDeliver")
	}
	dl := e.waitDLQ("adv-1", 15*time.Second)
	require.Equal(t, "imbi.dlq.actions.test.ok", dl.Subject)
	require.Equal(t, string(wire.ReasonMaxAttempts), dl.Header.Get(wire.DLQReason))
	require.Equal(t, string(wire.ReasonUnsettled), dl.Header.Get(wire.DLQLastReason))
	require.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(wire.DLQOriginalSeq))
	require.Equal(t, event("adv-1", "test#ok", nil, "adv-1"), dl.Data)
	require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 20*time.Millisecond)

	// A stale advisory (message already gone) is not an error.
	payload, _ := json.Marshal(maxDeliveriesEvent{StreamSeq: seq, Deliveries: 2})
	require.NoError(t, w.handleMaxDeliveries(context.Background(), payload))
}

// TestForgedMaxDeliveriesAdvisoryIgnored: an advisory published by hand
// for a message still waiting for its first delivery (security issue 12
// §6) neither dead-letters nor deletes it, and the message is then
// processed normally. The real case still dead-letters
// (TestMaxDeliveriesAdvisoryNet).
func TestForgedMaxDeliveriesAdvisoryIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: 2})
	cfg := e.config()
	cfg.MaxAttempts = 1 // MaxDeliver must exceed it
	w, err := New(connect(t, e.srv.URL()), e.disp(), cfg)
	require.NoError(t, err)
	require.NoError(t, w.bind(context.Background()))
	sub, err := w.subscribeAdvisories()
	require.NoError(t, err)
	t.Cleanup(sub.stop)
	require.NoError(t, w.nc.Flush())

	seq := e.publish("forged-1", "test#ok", nil)
	cases := []maxDeliveriesEvent{
		{Stream: e.sc.Stream, Consumer: e.sc.Consumer, StreamSeq: seq, Deliveries: 2},   // as the server words it
		{Stream: e.sc.Stream, Consumer: e.sc.Consumer, StreamSeq: seq, Deliveries: 100}, // exaggerated
		{Stream: e.sc.Stream, Consumer: e.sc.Consumer, StreamSeq: seq, Deliveries: 1},   // below MaxDeliver
		{Stream: "OTHER", Consumer: e.sc.Consumer, StreamSeq: seq, Deliveries: 2},
	}
	for _, forged := range cases {
		payload, err := json.Marshal(forged)
		require.NoError(t, err)
		// Over the wire, as an attacker would, and directly (deterministic).
		require.NoError(t, e.nc.Publish(maxDeliveriesAdvisory(e.sc.Stream, e.sc.Consumer), payload))
		require.NoError(t, w.handleMaxDeliveries(context.Background(), payload))
	}
	require.NoError(t, e.nc.Flush())
	time.Sleep(300 * time.Millisecond) // the subscription's handler has run by now
	require.False(t, e.gone(seq), "a forged advisory deleted the message")
	require.Zero(t, e.dlq.count(), "a forged advisory dead-lettered the message")

	_, _ = e.start(cfg)
	require.Eventually(t, func() bool { return e.gone(seq) }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, e.rec.Calls("forged-1"))
	require.Zero(t, e.dlq.count())
}

// TestMaxDeliveriesAdvisoryBuildsTheSameLetter: the advisory net builds its
// dead letter like the settle path: a publisher's Nats-Expected-Stream is
// not copied (the DLQ publish would fail on it forever), a leaked secret in
// the body and a sensitive NATS header are redacted.
func TestMaxDeliveriesAdvisoryBuildsTheSameLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{maxDeliver: 2})
	cfg := e.config()
	cfg.MaxAttempts = 1 // MaxDeliver must exceed it
	w, err := New(connect(t, e.srv.URL()), e.disp(), cfg)
	require.NoError(t, err)
	require.NoError(t, w.bind(context.Background()))
	sub, err := w.subscribeAdvisories()
	require.NoError(t, err)
	t.Cleanup(sub.stop)
	require.NoError(t, w.nc.Flush())

	leaky := bytes.Replace(event("adv-leak", "test#ok", nil, "adv-leak"),
		[]byte(`"authorization":"[redacted]"`), []byte(`"authorization":"Bearer CANARY-adv"`), 1)
	require.Contains(t, string(leaky), "CANARY-adv")
	e.publishRaw(subjectOf("test#ok"), map[string]string{
		"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "adv-leak",
		"Nats-Expected-Stream": e.sc.Stream, "Authorization": "Bearer CANARY-hdr",
	}, leaky)
	cons, err := e.js.Consumer(context.Background(), e.sc.Stream, e.sc.Consumer)
	require.NoError(t, err)
	for range 3 { // two deliveries, then the pull that trips MaxDeliver
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			require.NoError(t, m.Nak())
		}
	}
	dl := e.waitDLQ("adv-leak", 15*time.Second)
	require.Equal(t, string(wire.ReasonUnsettled), dl.Header.Get(wire.DLQLastReason))
	require.Empty(t, dl.Header.Get("Nats-Expected-Stream"))
	require.Equal(t, wire.Redacted, dl.Header.Get("Authorization"))
	require.NotContains(t, string(dl.Data), "CANARY-adv")
	require.Equal(t, "data.event.metadata.headers.authorization", dl.Header.Get(wire.DLQRedacted))
}

// TestInProgressKeepsLongActionsAlive: an action longer than AckWait is
// not redelivered while it runs.
func TestInProgressKeepsLongActionsAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{ackWait: time.Second})
	cfg := e.config()
	cfg.InProgressInterval = 200 * time.Millisecond
	_, _ = e.start(cfg)
	_, _ = e.start(cfg) // a second replica that would grab a redelivery
	d := e.disp()
	_ = d
	seq := e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "long"},
		event("long", "test#sleep", map[string]any{"sleep_ms": 450}, "long"))
	require.Eventually(t, func() bool { return e.gone(seq) }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, e.rec.Calls("long"))
}

// TestGracefulShutdown: in-flight actions finish within the grace, what
// was pulled but not started is handed back at once, Run returns nil.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{}) // AckWait 30 s: a message left unacked would stall a long time
	cfg := e.config()
	cfg.Concurrency = 1
	cfg.Prefetch = 5
	// Published before the worker starts, so its first pull takes all five:
	// a message still on its way from the server when the subscription is
	// drained would be dropped by the client and come back only after
	// AckWait (docs/operations.md, shutdown), which is not what this test
	// is about.
	e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "inflight"},
		event("inflight", "test#sleep", map[string]any{"sleep_ms": 400}, "inflight"))
	for i := range 4 {
		e.publish(fmt.Sprintf("queued-%d", i), "test#ok", nil)
	}
	w, stop := e.start(cfg)
	require.Eventually(t, func() bool { return len(e.rec.Times("inflight")) == 1 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, stop())
	require.ErrorIs(t, w.Ready(), ErrDraining)
	require.Equal(t, 1, e.rec.Calls("inflight"), "in-flight action finished")

	// Whatever is left is available again now, not after AckWait.
	_, _ = e.start(e.config())
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 5*time.Second, 10*time.Millisecond)
	for i := range 4 {
		require.Equal(t, 1, e.rec.Calls(fmt.Sprintf("queued-%d", i)))
	}
}

// TestShutdownGraceExpires: an action still running when the grace ends
// is cancelled and its message requeued for another replica at once.
func TestShutdownGraceExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cfg := e.config()
	cfg.ShutdownGrace = 200 * time.Millisecond
	_, stop := e.start(cfg)
	seq := e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "too-long"},
		event("too-long", "test#sleep", map[string]any{"sleep_ms": 400}, "too-long"))
	require.Eventually(t, func() bool { return len(e.rec.Times("too-long")) == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	require.NoError(t, stop())
	require.Less(t, time.Since(start), 3*time.Second)
	require.False(t, e.gone(seq), "not acked")
	require.Zero(t, e.dlq.count(), "not dead-lettered")
	_, _ = e.start(e.config())
	require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 2, e.rec.Calls("too-long"))
}

func TestReady(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	w, err := New(connect(t, e.srv.URL()), e.disp(), e.config())
	require.NoError(t, err)
	require.ErrorIs(t, w.Ready(), ErrNotBound)
	w2, stop := e.start(e.config())
	require.NoError(t, w2.Ready())
	require.False(t, w2.Draining())
	require.NoError(t, stop())
	require.True(t, w2.Draining())
	require.ErrorIs(t, w2.Ready(), ErrDraining)
}

// TestMetrics: settled outcomes by handler; unresolved handlers are
// labelled _unknown.
func TestMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	reader := sdkmetric.NewManualReader()
	cfg := e.config()
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	_, _ = e.start(cfg)
	okSeq := e.publish("m-ok", "test#ok", nil)
	e.publish("m-unknown", "random#garbage", nil)
	e.waitDLQ("m-unknown", 10*time.Second)
	require.Eventually(t, func() bool { return e.gone(okSeq) }, 10*time.Second, 10*time.Millisecond)

	got := map[string]int64{}
	require.Eventually(t, func() bool {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name != "imbi_worker.messages.settled" {
					continue
				}
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					h, _ := dp.Attributes.Value("handler")
					o, _ := dp.Attributes.Value("outcome")
					got[h.AsString()+"/"+o.AsString()] = dp.Value
				}
			}
		}
		return len(got) == 2
	}, 5*time.Second, 50*time.Millisecond)
	require.Equal(t, map[string]int64{"test#ok/ack": 1, "_unknown/dead_letter": 1}, got)
}

// TestActionsBoundedByConcurrency: more messages are taken in (decoded,
// looked up) than actions run, but never more than Concurrency actions
// run at once, and every message runs once.
func TestActionsBoundedByConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cfg := e.config()
	cfg.Concurrency = 3
	_, stop := e.start(cfg)
	const n = 24
	for i := range n {
		e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: fmt.Sprintf("bound-%d", i)},
			event(fmt.Sprintf("bound-%d", i), "test#sleep", map[string]any{"sleep_ms": 40}, fmt.Sprintf("bound-%d", i)))
	}
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	for i := range n {
		require.Equal(t, 1, e.rec.Calls(fmt.Sprintf("bound-%d", i)))
	}
	require.Equal(t, cfg.Concurrency, e.rec.PeakSleeping(), "actions ran beyond Concurrency, or never reached it")
}

// TestWaitingForActionSlotKeptAlive: every message in an intake place is
// kept alive with InProgress from its arrival, so with more messages held
// than action slots none is redelivered to the second replica while it
// waits (that would run it twice, once on each replica): four places, one
// slot, four 450 ms actions, AckWait 300 ms — the last waits 1.35 s.
func TestWaitingForActionSlotKeptAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{ackWait: 300 * time.Millisecond})
	cfg := e.config()
	cfg.Concurrency = 1
	cfg.Prefetch = 4
	cfg.InProgressInterval = 100 * time.Millisecond
	_, _ = e.start(cfg)
	const n = 4
	for i := range n {
		id := fmt.Sprintf("wait-%d", i)
		e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id},
			event(id, "test#sleep", map[string]any{"sleep_ms": 450}, id))
	}
	// Only now the second replica: the first has taken all four in.
	require.Eventually(t, func() bool { return e.consumerAckPending() == n }, 5*time.Second, 5*time.Millisecond)
	_, _ = e.start(e.config())
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 15*time.Second, 10*time.Millisecond)
	time.Sleep(400 * time.Millisecond) // a redelivery would run by now
	for i := range n {
		require.Equal(t, 1, e.rec.Calls(fmt.Sprintf("wait-%d", i)), "wait-%d", i)
	}
}

// TestAbandonedActionFreesItsSlot: with one action slot, an action that
// ignores its deadline (it keeps the intake goroutine it ran on) does not
// hold up the next message beyond deadline + grace: another intake
// goroutine takes its place, and its intake place is free again.
// Shutdown does not wait for the stuck one.
func TestAbandonedActionFreesItsSlot(t *testing.T) {
	t.Parallel()
	// One place: the abandoned message must give it back at once too, or
	// nothing more is pulled until the stuck action returns.
	for _, places := range []int{0, 1} {
		t.Run(fmt.Sprintf("places %d", places), func(t *testing.T) {
			t.Parallel()
			testAbandonedActionFreesItsSlot(t, places)
		})
	}
}

func testAbandonedActionFreesItsSlot(t *testing.T, places int) {
	off := false // one intake goroutine: the replacement is the only one left
	e := newEnv(t, envOpts{idempotency: &off})
	cfg := e.config()
	cfg.Concurrency = 1
	cfg.Prefetch = places
	cfg.MaxAttempts = 1 // the abandoned message is dead-lettered, not retried
	_, stop := e.start(cfg)
	e.publishRaw("imbi.actions.test.ignore_ctx", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "stuck"},
		event("stuck", "test#ignore_ctx", map[string]any{"sleep_ms": 12000}, "stuck"))
	require.Eventually(t, func() bool { return e.rec.Calls("stuck") == 1 }, 5*time.Second, 5*time.Millisecond)
	start := time.Now()
	for i := range 3 {
		e.publish(fmt.Sprintf("after-stuck-%d", i), "test#ok", nil)
	}
	require.Eventually(t, func() bool {
		for i := range 3 {
			if e.rec.Calls(fmt.Sprintf("after-stuck-%d", i)) != 1 {
				return false
			}
		}
		return true
	}, 3*time.Second, 5*time.Millisecond)
	// Deadline 500 ms + grace 50 ms, not the stuck action's 12 s.
	require.Less(t, time.Since(start), 2500*time.Millisecond)
	dl := e.waitDLQ("stuck", 5*time.Second)
	require.Equal(t, string(wire.ReasonMaxAttempts), dl.Header.Get(wire.DLQReason))
	require.Equal(t, string(wire.ReasonTimeout), dl.Header.Get(wire.DLQLastReason))

	// Shutdown lets the outstanding pull run out (pullExpiry), not the
	// stuck action's 12 s.
	start = time.Now()
	require.NoError(t, stop())
	require.Less(t, time.Since(start), pullExpiry+2*time.Second, "shutdown waited for the abandoned action")
}
