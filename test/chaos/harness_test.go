package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	promclient "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/test/chaos/chaosplugin"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// This file is the in-process harness of the poison, canary and stuck
// suites: a real embedded nats-server (internal/streams, 8 MiB max
// payload), the streams provisioned by streams.Apply, and the real worker
// (internal/worker + internal/dispatch + the plugin registry) running the
// chaos plugins, with its logs, spans and metrics captured.

type harnessOptions struct {
	// Credentials is the dispatcher's credential source (nil: none).
	Credentials dispatch.CredentialSource
	Concurrency int
	MaxAttempts int
	// BackoffBase and BackoffMax default to 50 ms and 200 ms (fast tests).
	BackoffBase, BackoffMax time.Duration
}

type harness struct {
	t      *testing.T
	srv    *streams.Embedded
	nc     *nats.Conn
	js     jetstream.JetStream
	rec    *chaosplugin.MemoryRecorder
	logs   *lockedBuffer
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	prom   *promclient.Registry
	w      *worker.Worker
	stop   context.CancelFunc
	runErr chan error
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	if o.Concurrency == 0 {
		o.Concurrency = 8
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 3
	}
	if o.BackoffBase == 0 {
		o.BackoffBase = 50 * time.Millisecond
	}
	if o.BackoffMax == 0 {
		o.BackoffMax = 200 * time.Millisecond
	}
	h := &harness{t: t, rec: chaosplugin.NewMemoryRecorder(), logs: &lockedBuffer{}}

	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	h.srv = srv
	h.nc, err = nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(h.nc.Close)
	h.js, err = jetstream.New(h.nc)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sc := streams.DefaultConfig()
	sc.AckWait = 5 * time.Second
	// The server's delivery cap must stay above the worker's attempts.
	sc.MaxDeliver = max(streams.DefaultMaxDeliver, o.MaxAttempts+5)
	_, err = streams.Apply(ctx, h.js, sc)
	require.NoError(t, err)

	reg := registry.New(func() []pluginreg.Registration {
		return []pluginreg.Registration{
			{Name: chaosplugin.Slug, Load: func() (any, error) { return chaosplugin.New(h.rec), nil }},
			{Name: chaosplugin.CredsSlug, Load: func() (any, error) { return chaosplugin.NewCreds(h.rec), nil }},
		}
	})
	res, err := reg.Load()
	require.NoError(t, err)
	_ = res

	h.spans = tracetest.NewInMemoryExporter()
	h.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(h.spans))
	t.Cleanup(func() { _ = h.tp.Shutdown(context.Background()) })
	h.prom = promclient.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(h.prom))
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })

	disp := &dispatch.Dispatcher{Registry: reg, Credentials: o.Credentials}
	h.w, err = worker.New(h.nc, disp, worker.Config{
		Streams:       sc,
		Concurrency:   o.Concurrency,
		MaxAttempts:   o.MaxAttempts,
		BackoffBase:   o.BackoffBase,
		BackoffMax:    o.BackoffMax,
		ShutdownGrace: 5 * time.Second,
		Idempotency:   true,
		WorkerID:      "chaos-harness",
		Logger:        slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		// Outcome events (v1.1 §C) as `run` publishes them: the canary
		// scans the outcome stream too.
		Hooks: outcomes.NewHook(h.js, outcomes.Config{Prefix: sc.OutcomesPrefix, WorkerID: "chaos-harness",
			Logger: slog.New(slog.NewJSONHandler(h.logs, nil))}).Hooks(worker.Hooks{}),
		MeterProvider:  mp,
		TracerProvider: h.tp,
	})
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(context.Background())
	h.stop = stop
	h.runErr = make(chan error, 1)
	go func() { h.runErr <- h.w.Run(runCtx) }()
	t.Cleanup(func() {
		_ = h.shutdown()
		if t.Failed() {
			t.Log(tailString(h.logs.String(), 40))
		}
	})
	require.Eventually(t, func() bool { return h.w.Ready() == nil }, 10*time.Second, 10*time.Millisecond, "worker never became ready")
	return h
}

// shutdown stops the worker (idempotent) and returns Run's error.
func (h *harness) shutdown() error {
	h.stop()
	select {
	case err, ok := <-h.runErr:
		if ok {
			close(h.runErr)
		}
		return err
	case <-time.After(20 * time.Second):
		return errors.New("worker did not stop within 20s")
	}
}

// running fails the test if the worker's Run has returned: the suites
// require that hostile input never stops (restarts) the worker.
func (h *harness) requireRunning() {
	h.t.Helper()
	select {
	case err := <-h.runErr:
		h.t.Fatalf("worker stopped by itself: %v", err)
	default:
	}
	require.NoError(h.t, h.w.Ready(), "worker not ready")
}

// deadLetter is one message of the DLQ stream.
type deadLetter struct {
	Seq     uint64
	Subject string
	Header  nats.Header
	Data    []byte
}

// deadLetters reads every message of the dead-letter stream.
func (h *harness) deadLetters(ctx context.Context) []deadLetter {
	h.t.Helper()
	s, err := h.js.Stream(ctx, wire.DefaultDLQStream)
	require.NoError(h.t, err)
	info, err := s.Info(ctx)
	require.NoError(h.t, err)
	var out []deadLetter
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		require.NoError(h.t, err)
		out = append(out, deadLetter{Seq: m.Sequence, Subject: m.Subject, Header: m.Header, Data: m.Data})
	}
	return out
}

// waitDeadLetters waits until the DLQ holds at least n messages.
func (h *harness) waitDeadLetters(ctx context.Context, n int) []deadLetter {
	h.t.Helper()
	for {
		dl := h.deadLetters(ctx)
		if len(dl) >= n || ctx.Err() != nil {
			return dl
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSettled waits until the consumer has nothing pending or unacked.
func (h *harness) waitSettled(ctx context.Context) *jetstream.ConsumerInfo {
	h.t.Helper()
	c, err := h.js.Consumer(ctx, wire.DefaultStream, wire.DefaultConsumer)
	require.NoError(h.t, err)
	for {
		info, err := c.Info(ctx)
		require.NoError(h.t, err)
		if (info.NumPending == 0 && info.NumAckPending == 0) || ctx.Err() != nil {
			return info
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumerInfo is the durable consumer's current state.
func (h *harness) consumerInfo(ctx context.Context) *jetstream.ConsumerInfo {
	h.t.Helper()
	c, err := h.js.Consumer(ctx, wire.DefaultStream, wire.DefaultConsumer)
	require.NoError(h.t, err)
	info, err := c.Info(ctx)
	require.NoError(h.t, err)
	return info
}

// metricsText is the Prometheus exposition of every worker metric.
func (h *harness) metricsText() string {
	rr := httptest.NewRecorder()
	promhttp.HandlerFor(h.prom, promhttp.HandlerOpts{}).ServeHTTP(rr, httptest.NewRequest("GET", "/metrics", nil))
	return rr.Body.String()
}

// lockedBuffer is a bytes.Buffer safe for the worker's concurrent logging.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// encodeFor is a good structured event for a chaos handler, encoded the
// way the publisher package (and so every Go publisher) does it.
func encodeFor(ctx context.Context, id, handler string, cfg json.RawMessage) (*nats.Msg, error) {
	return encodeMessage(ctx, recordMessage(id, handler, cfg))
}

// encodeMessage encodes a publisher message in structured mode.
func encodeMessage(ctx context.Context, m publisher.Message) (*nats.Msg, error) {
	ev, err := publisher.NewEvent(m)
	if err != nil {
		return nil, err
	}
	subject, err := publisher.SubjectFor("", ev)
	if err != nil {
		return nil, err
	}
	return publisher.EncodeMsg(ctx, ev, subject, publisher.Structured)
}

// tailString returns the last n lines of s.
func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- worker log (last lines)\n" + strings.Join(lines, "\n")
}

// outcomeMessages returns every message stored in the outcome stream.
func (h *harness) outcomeMessages(ctx context.Context) []*jetstream.RawStreamMsg {
	h.t.Helper()
	s, err := h.js.Stream(ctx, wire.DefaultOutcomesStream)
	require.NoError(h.t, err)
	info, err := s.Info(ctx)
	require.NoError(h.t, err)
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err == nil {
			out = append(out, m)
		}
	}
	return out
}
