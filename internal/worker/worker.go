// Package worker is the JetStream runtime: it pulls action CloudEvents
// from the shared durable consumer, runs them through dispatch with a
// bounded number of slots, and settles each message as wire-contract §4
// says — ack, nak with backoff, or dead letter (§5) — with done-markers
// for idempotency (§6) and a graceful shutdown.
//
// One message's path, in five files:
//
//  1. lifecycle.go  Start → pull.go: the pull loop fetches as many messages
//     as there are free intake places and hands each to an intake
//     goroutine, kept alive from its arrival; on Stop the pulls run out.
//  2. process.go    runIntake → process: decode (internal/envelope), span,
//     crash-loop check, done-marker lookup (internal/donemarker), the
//     InProgress heartbeat, an action slot, dispatch.DispatchInline.
//  3. settle.go     decide maps the result to a Decision; settler.Settle
//     carries it out once: hooks, done-marker or dead letter, the ack or
//     nak, metrics, span end.
//  4. deadletter.go the dead letter (internal/deadletter builds it; the
//     body redaction is deadletter_redact.go's).
//  5. internal/donemarker/writer.go  the marker is stored before the ack.
//
// Beside the path: advisory.go (MAX_DELIVERIES advisory, settled through
// the settler), breaker.go (credential-store breaker), config.go,
// metrics.go, backoff.go, gc.go (process GC tuning for `imbi-worker run`).
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
)

// Errors Ready returns.
var (
	ErrNotConnected = errors.New("not connected to NATS")
	ErrNotBound     = errors.New("consumer not bound yet")
	ErrDraining     = errors.New("worker is draining")
)

// Worker consumes and settles messages. Build it with New; Start it once
// (or Run), Stop it; Closed is closed when it has stopped.
type Worker struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	disp    *dispatch.Dispatcher
	dec     *envelope.Decoder
	metrics *metrics
	tracer  trace.Tracer
	log     *slog.Logger

	// Lifecycle (lifecycle.go): started by Start, stopCh closed by Stop,
	// closed when the run is over.
	started  atomic.Bool
	stopOnce sync.Once
	stopCh   chan struct{}
	closed   chan struct{}

	// Set by Start before the first message.
	consumer jetstream.Consumer
	stream   jetstream.Stream
	done     jetstream.KeyValue

	bound    atomic.Bool
	draining atomic.Bool

	// settler makes every settle decision (settle.go).
	settler *settler
	// checker batches the intake goroutines' done-marker lookups.
	checker *donemarker.Checker
	// actionSlots bounds running actions to Concurrency; stopping is
	// closed when shutdown starts (a message still waiting for a slot is
	// then given back instead of run).
	actionSlots chan struct{}
	stopping    <-chan struct{}
	// The intake goroutines' work queue and the context their actions run
	// under; inflight counts the intake goroutines (runIntake).
	work      chan *heldMsg
	actionCtx context.Context
	inflight  sync.WaitGroup
	// fetcher is the capacity-based pull loop (pull.go): the intake gives
	// its places back.
	fetcher *fetcher
	// markers writes done-markers before the ack.
	markers *donemarker.Writer
	// budget bounds the body bytes in the intake (budget.go).
	budget *byteBudget
	// breaker pauses intake while the credential store is unreachable
	// (breaker.go).
	breaker *credsBreaker
	// lanes is the imbi_lanes bucket and laneCache its watched copy
	// (lanes.go, v1.1 §B).
	lanes     *lanes.Store
	laneCache *lanes.Cache
}

// The pull subscription's request expiry and idle heartbeat. nats.go's
// defaults (30 s, heartbeat 15 s) let a lost pull request stall the worker
// for 30 s: the client still counts the request as open while the server
// holds no waiting pull, so nothing is delivered until two heartbeats are
// missed. The benchmark's latency phase hit that (the last 1,276 messages
// of one run waited 30 s, docs/performance.md). With 5 s / 2 s such a
// stall ends after 4 s; the cost is one pull request per 5 s and one
// heartbeat per 2 s while idle.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = 2 * time.Second
)

// takeBytes takes msg's body size from the intake's byte budget
// (budget.go) before it is decoded; false when shutdown starts first. An
// event above MaxEventBytes is not decoded and costs nothing. While it
// waits, the message is kept in progress (its heartbeat runs from its
// arrival, pull.go).
func (w *Worker) takeBytes(msg jetstream.Msg) (int64, bool) {
	n := len(msg.Data())
	if n > w.cfg.MaxEventBytes {
		return 0, true
	}
	cost := w.budget.cost(n)
	if w.budget.tryAcquire(cost) {
		return cost, true
	}
	return cost, w.budget.acquire(cost, w.stopping)
}

// markerQueuePerSlot sizes the done-marker writer's queue: 2 ×
// Concurrency (lifecycle.go says why it is not one per intake place). It
// was the number of intake goroutines per slot before capacity-based
// pulls (decision 0015), which is where the 2 comes from.
const markerQueuePerSlot = 2

// New builds a worker on a connected NATS connection. The streams,
// bucket and consumer must exist (streams.Apply).
func New(nc *nats.Conn, disp *dispatch.Dispatcher, cfg Config) (*Worker, error) {
	if nc == nil || disp == nil || disp.Registry == nil {
		return nil, errors.New("worker: NATS connection, dispatcher and registry are required")
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	dec := envelope.NewDecoder()
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	// The dispatcher's spans use the message span's provider unless the
	// caller set its Tracer (dispatch.Dispatcher.tracer); disp is not
	// modified.
	tracer := cfg.TracerProvider.Tracer("github.com/aweber-imbi/imbi-worker/internal/worker")
	w := &Worker{cfg: cfg, nc: nc, js: js, disp: disp, dec: dec, metrics: m, tracer: tracer, log: cfg.Logger,
		breaker: newCredsBreaker(cfg.Logger, disp.Credentials),
		stopCh:  make(chan struct{}), closed: make(chan struct{})}
	chain, err := newChainHook(js, cfg.Streams.SubjectPrefix, cfg.MeterProvider, cfg.Logger) // chain.go
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	hooks := Hooks{ // the chain's continuation first (v1.1 §A)
		BeforeSettle: append([]BeforeSettleHook{chain}, cfg.Hooks.BeforeSettle...),
		BeforeAck:    append([]BeforeAckHook{chain}, cfg.Hooks.BeforeAck...),
	}
	w.settler = &settler{cfg: &w.cfg, log: cfg.Logger, metrics: m, letters: js, hooks: hooks}
	return w, nil
}

// Ready reports whether the worker can take messages: connected, the
// consumer bound, not draining. The admin server's /readyz uses it.
func (w *Worker) Ready() error {
	switch {
	case w.draining.Load():
		return ErrDraining
	case !w.nc.IsConnected():
		return ErrNotConnected
	case !w.bound.Load():
		return ErrNotBound
	case w.breaker.open():
		return ErrCredentialStoreUnavailable
	}
	return nil
}

// Draining reports whether shutdown has started.
func (w *Worker) Draining() bool { return w.draining.Load() }

// bind looks up the consumer, the work stream and the done bucket.
func (w *Worker) bind(ctx context.Context) error {
	sc := w.cfg.Streams
	var err error
	if w.stream, err = w.js.Stream(ctx, sc.Stream); err != nil {
		return fmt.Errorf("work stream %s: %w", sc.Stream, err)
	}
	if w.consumer, err = w.js.Consumer(ctx, sc.Stream, sc.Consumer); err != nil {
		return fmt.Errorf("consumer %s: %w", sc.Consumer, err)
	}
	if w.cfg.Idempotency {
		if w.done, err = w.js.KeyValue(ctx, sc.DoneBucket); err != nil {
			return fmt.Errorf("done-marker bucket %s: %w", sc.DoneBucket, err)
		}
	}
	if w.lanes, err = lanes.Open(ctx, w.js, sc.LanesBucket); err != nil {
		return err
	}
	return nil
}
