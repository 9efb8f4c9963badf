package outcomes

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/benchdata"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
)

// TestAckResult: only a reply naming a stream is an acknowledgement.
func TestAckResult(t *testing.T) {
	t.Parallel()
	var streamErr *ackStreamError
	tests := []struct {
		name string
		msg  *nats.Msg
		want error // nil, a sentinel, or streamErr for an *ackStreamError
	}{
		{"ack", &nats.Msg{Data: []byte(`{"stream":"IMBI_OUTCOMES","seq":7}`)}, nil},
		{"duplicate", &nats.Msg{Data: []byte(`{"stream":"IMBI_OUTCOMES","seq":7,"duplicate":true}`)}, nil},
		{"stream error", &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"IMBI_OUTCOMES","seq":0}`)}, streamErr},
		{"no responders", &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}, errNoStream},
		{"empty", &nats.Msg{}, errBadAck},
		{"not json", &nats.Msg{Data: []byte(`+OK`)}, errBadAck},
		{"error that does not decode", &nats.Msg{Data: []byte(`{"error":1}`)}, errBadAck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ackResult(tc.msg)
			switch tc.want {
			case nil:
				require.NoError(t, err)
			case error(streamErr):
				require.ErrorAs(t, err, &streamErr)
				require.Equal(t, 10077, streamErr.ErrCode)
			default:
				require.ErrorIs(t, err, tc.want)
			}
		})
	}
}

// TestAckerSweepsUnanswered: waits that get no reply and are never
// awaited do not pile up.
func TestAckerSweepsUnanswered(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streams.Config{})
	sub, err := env.NC.SubscribeSync("silent") // interest, so no "no responders"
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	a, err := newAcker(env.NC)
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.close() })
	for range 3 * sweepEvery {
		_, err := a.publish(&nats.Msg{Subject: "silent"}, time.Nanosecond)
		require.NoError(t, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	require.Less(t, len(a.wait), sweepEvery)
}

// BenchmarkHookPublish: an outcome published and awaited through the
// hook, with the acker and with jetstream's PublishMsgAsync, against the
// embedded server (client and server CPU together). 32 at a time, as a
// worker's slots do.
func BenchmarkHookPublish(b *testing.B) {
	env := streamstest.Start(b, streams.Config{Idempotency: true, Outcomes: true})
	var seq atomic.Uint64 // distinct outcome ids: none is dropped as a duplicate
	for _, v := range []struct{ js, msgID bool }{{false, false}, {false, true}, {true, true}} {
		b.Run(fmt.Sprintf("jetstream-acks=%v/msg-id=%v", v.js, v.msgID), func(b *testing.B) {
			h := NewHook(env.JS, Config{Prefix: env.Config.OutcomesPrefix, WorkerID: "bench", jetStreamAcks: v.js, msgID: v.msgID})
			b.SetParallelism(16)
			cpu0 := processCPU(b)
			b.Cleanup(func() { b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op") })
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := benchSettlement(&seq)
					if err := h.BeforeSettle(context.Background(), s); err != nil {
						b.Error(err)
						return
					}
					if err := h.BeforeAck(context.Background(), s); err != nil && !errors.Is(err, context.Canceled) {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkHookPipeline: outcomes as a worker with idempotency on
// handles them: published (BeforeSettle) by 32 goroutines, awaited
// (BeforeAck) in order by one, as the done-marker writer does; CPU of
// client and embedded server together. Each outcome is of a decoded
// bench event (benchEvent: rule, context and event as the worker's
// outcomes carry them). Rows: acker (the hook's own); acker-no-header,
// the same without the Content-Type header the contract asks for (what
// the header costs); acker-1-byte, the floor: a 1-byte message without
// headers on the same subject, published and awaited the same way, so
// acker minus acker-1-byte is what the event's content costs; and a
// JetStream fast batch (batchAcker, flow acks every 16 or 64 outcomes;
// benchmark only, docs/performance.md §1 "the second pass"). Each row
// checks that the stream holds one message per outcome. With -count,
// testing runs one row's repetitions back to back: for A/B pairs run the
// rows alternately, one -bench 'HookPipeline/<row>$' at a time.
func BenchmarkHookPipeline(b *testing.B) {
	env := streamstest.Start(b, streams.Config{Idempotency: true, Outcomes: true})
	allowFastBatch(b, env)
	var seq atomic.Uint64
	ev := benchEvent(b)
	for _, v := range []struct {
		name     string
		flow     int  // 0: the acker
		floor    bool // a 1-byte message without headers instead of the event
		noHeader bool // the event without its Content-Type header
	}{
		{name: "acker"}, {name: "acker-no-header", noHeader: true}, {name: "acker-1-byte", floor: true},
		{name: "fast-batch-16", flow: 16}, {name: "fast-batch-64", flow: 64},
	} {
		b.Run(v.name, func(b *testing.B) {
			h := NewHook(env.JS, Config{Prefix: env.Config.OutcomesPrefix, WorkerID: "bench"})
			if v.noHeader {
				h.header = nil
			}
			var fast *batchAcker
			if v.flow > 0 {
				require.NoError(b, h.acks.(*acker).close())
				var err error
				fast, err = newBatchAcker(env.NC, v.flow, time.Millisecond)
				require.NoError(b, err)
				h.acks = fast
			}
			b.Cleanup(func() {
				if fast != nil {
					_ = fast.close()
				} else {
					_ = h.acks.(*acker).close()
				}
			})
			stored0 := outcomeCount(b, env)
			q := make(chan *worker.Settlement, 64)
			done := make(chan struct{})
			go func() {
				defer close(done)
				for s := range q {
					if err := h.BeforeAck(context.Background(), s); err != nil {
						b.Error(err)
					}
				}
			}()
			b.SetParallelism(16)
			cpu0 := processCPU(b)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s := benchSettlement(&seq)
					// Every outcome of the one event has the id
					// bench-1.1: none carries Nats-Msg-Id (decision
					// 0016), so the stream stores each (checked below).
					s.Event, s.Handler = ev, benchHandler
					if v.floor {
						floorPublish(b, h, s)
					} else if err := h.BeforeSettle(context.Background(), s); err != nil {
						b.Error(err)
						return
					}
					q <- s
				}
			})
			close(q)
			<-done
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			b.StopTimer()
			require.Equal(b, stored0+uint64(b.N), outcomeCount(b, env), "one stored message per acknowledged outcome")
			if fast != nil {
				fast.mu.Lock()
				b.ReportMetric(float64(fast.flowAcks+fast.pubAcks)/float64(b.N), "replies/op")
				fast.mu.Unlock()
			}
		})
	}
}

// allowFastBatch turns on allow_batched on env's outcome stream.
func allowFastBatch(tb testing.TB, env *streamstest.Env) {
	tb.Helper()
	ctx := context.Background()
	s, err := env.JS.Stream(ctx, env.Config.OutcomesStream)
	require.NoError(tb, err)
	cfg := s.CachedInfo().Config
	cfg.AllowBatchPublish = true
	_, err = env.JS.UpdateStream(ctx, cfg)
	require.NoError(tb, err)
}

// outcomeCount is the number of messages in env's outcome stream.
func outcomeCount(tb testing.TB, env *streamstest.Env) uint64 {
	tb.Helper()
	s, err := env.JS.Stream(context.Background(), env.Config.OutcomesStream)
	require.NoError(tb, err)
	return s.CachedInfo().State.Msgs
}

// processCPU is the process's user and system CPU time so far (client
// and embedded server together).
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestHookRetriesNoStream: an outcome published while its stream does not
// exist yet is sent again (twice, 250 ms apart) and stored once the
// stream is there; with no stream at all the publish fails.
func TestHookRetriesNoStream(t *testing.T) {
	t.Parallel()
	env := streamstest.Start(t, streams.Config{})
	ctx := context.Background()
	c := env.Config
	c.Outcomes = true
	h := NewHook(env.JS, Config{Prefix: c.OutcomesPrefix, WorkerID: "w-1", Timeout: 2 * time.Second})
	require.NotNil(t, h.acks)
	settle := func(seq uint64) error {
		s := &worker.Settlement{Decision: worker.Decision{Kind: worker.KindAck, At: time.Now()}, Attempt: 1,
			Meta: &jetstream.MsgMetadata{Stream: "S", Sequence: jetstream.SequencePair{Stream: seq}}}
		require.NoError(t, h.BeforeSettle(ctx, s))
		return h.BeforeAck(ctx, s)
	}

	start := time.Now()
	require.ErrorIs(t, settle(1), errNoStream, "no outcome stream")
	require.GreaterOrEqual(t, time.Since(start), 2*noStreamRetryWait, "sent three times")

	go func() {
		time.Sleep(100 * time.Millisecond)
		_, err := streams.Apply(ctx, env.JS, c)
		if err != nil {
			t.Error(err)
		}
	}()
	require.NoError(t, settle(2), "stored by a retry once the stream exists")
	s, err := env.JS.Stream(ctx, c.OutcomesStream)
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs)
}

// benchSettlement is an Ack decision with an outcome id of its own (seq:
// none is dropped as a duplicate).
func benchSettlement(seq *atomic.Uint64) *worker.Settlement {
	return &worker.Settlement{Decision: worker.Decision{Kind: worker.KindAck, At: time.Now()}, Attempt: 1,
		Meta: &jetstream.MsgMetadata{Stream: "BENCH", Sequence: jetstream.SequencePair{Stream: seq.Add(1)}}}
}

// benchHandler is the bench events' handler.
const benchHandler = "bench#noop"

// benchEvent is a decoded 1.2 KiB bench event (internal/benchdata, as
// make bench-peers publishes them): its outcome is the size a worker's is.
func benchEvent(b *testing.B) *envelope.Message {
	b.Helper()
	ev, err := envelope.NewDecoder().Decode(nil, benchdata.EventFor("bench-1", benchHandler, 1200, 0))
	require.NoError(b, err)
	return ev
}

// floorPublish publishes s's 1-byte stand-in (acker-1-byte) and leaves
// its wait for BeforeAck, as BeforeSettle leaves the event's.
func floorPublish(b *testing.B, h *Hook, s *worker.Settlement) {
	_, subject, ok := Build(s, h.cfg.Prefix, h.cfg.WorkerID)
	require.True(b, ok)
	m := &nats.Msg{Subject: subject, Data: []byte{'x'}}
	p, err := h.publish(m, "floor", s.Decision.Kind)
	if err != nil {
		b.Error(err)
		return
	}
	s.Pending = p
}
