// Package worker is the JetStream runtime: it pulls action CloudEvents
// from the shared durable consumer, runs them through dispatch with a
// bounded number of slots, and settles each message as wire-contract §4
// says — ack, nak with backoff, or dead letter (§5) — with done-markers
// for idempotency (§6) and a graceful shutdown.
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
)

// Errors Ready returns.
var (
	ErrNotConnected = errors.New("not connected to NATS")
	ErrNotBound     = errors.New("consumer not bound yet")
	ErrDraining     = errors.New("worker is draining")
)

// Worker consumes and settles messages. Build it with New; Run once.
type Worker struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	disp    *dispatch.Dispatcher
	dec     *envelope.Decoder
	metrics *metrics
	tracer  trace.Tracer
	log     *slog.Logger

	// Set by Run before the first message.
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
	work      chan jetstream.Msg
	actionCtx context.Context
	inflight  sync.WaitGroup
	// markers writes done-markers before the ack.
	markers *donemarker.Writer
	// budget bounds the body bytes in the intake (budget.go).
	budget *byteBudget
	// breaker pauses intake while the credential store is unreachable
	// (breaker.go).
	breaker *credsBreaker
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

// runIntake takes messages until the work queue is closed. An intake
// goroutine whose action was abandoned (it ignored its deadline and is
// still running on this goroutine, dispatch.DispatchInline) leaves: a
// replacement already took its place (replaceIntake).
func (w *Worker) runIntake() {
	slot := &slotState{check: donemarker.NewQuery()}
	for msg := range w.work {
		cost, ok := w.takeBytes(msg)
		if !ok {
			w.settler.giveBack(msg) // shutdown while waiting: not started
			continue
		}
		stay := w.process(w.actionCtx, msg, slot)
		w.budget.release(cost)
		if !stay {
			return // detached: replaceIntake did this goroutine's Done
		}
	}
	w.inflight.Done()
}

// takeBytes takes msg's body size from the intake's byte budget
// (budget.go) before it is decoded; false when shutdown starts first. An
// event above MaxEventBytes is not decoded and costs nothing. While it
// waits, the message is kept in progress like one waiting for a slot.
func (w *Worker) takeBytes(msg jetstream.Msg) (int64, bool) {
	n := len(msg.Data())
	if n > w.cfg.MaxEventBytes {
		return 0, true
	}
	cost := w.budget.cost(n)
	if w.budget.tryAcquire(cost) {
		return cost, true
	}
	stopBeat := w.heartbeat(&delivery{msg: msg})
	defer stopBeat()
	return cost, w.budget.acquire(cost, w.stopping)
}

// replaceIntake starts an intake goroutine in place of one held by an
// abandoned action. Add before Done: the count never touches zero, so a
// shutdown waiting on inflight is not released early.
func (w *Worker) replaceIntake() {
	w.inflight.Add(1)
	go w.runIntake()
	w.inflight.Done()
}

// intakePerSlot is how many intake goroutines (decode, done-marker
// lookup) there are per action slot with idempotency on. Two: the
// benchmark's msgs/s with idempotency on rose ≈ 20 % over one (four and
// eight bought nothing more; docs/performance.md). A replica then holds
// up to Concurrency × (intakePerSlot + 2) unacked messages (intake plus
// the prefetch buffer) of the consumer's MaxAckPending (2,048 by default:
// 32 replicas at the default 16).
const intakePerSlot = 2

// refillThreshold is when the pull subscription asks for more: below 3/4
// of the prefetch instead of nats.go's 1/2. The buffer holds no more than
// before (Prefetch, the AckWait bound of decision 0005 §11), it is just
// topped up in smaller, earlier requests, so the slots find it empty less
// often: +2 to +15 % msgs/s with idempotency off in five paired runs at
// the same CPU per message (docs/performance.md).
func refillThreshold(prefetch int) int {
	return max(1, prefetch*3/4)
}

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
	dec, err := envelope.NewDecoder()
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	m, err := newMetrics(cfg.MeterProvider)
	if err != nil {
		return nil, fmt.Errorf("worker: metrics: %w", err)
	}
	tracer := cfg.TracerProvider.Tracer("github.com/aweber-imbi/imbi-worker/internal/worker")
	if disp.Tracer == nil {
		disp.Tracer = tracer
	}
	w := &Worker{cfg: cfg, nc: nc, js: js, disp: disp, dec: dec, metrics: m, tracer: tracer, log: cfg.Logger,
		breaker: newCredsBreaker(cfg.Logger, disp.Credentials)}
	w.settler = &settler{cfg: &w.cfg, log: cfg.Logger, metrics: m, letters: js, hooks: cfg.Hooks}
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
	return nil
}

// Run consumes until ctx is cancelled, then shuts down gracefully: stop
// pulling, let in-flight actions finish within ShutdownGrace, nak what is
// left so another replica gets it at once. It returns nil after a clean
// shutdown. The caller owns (and drains) the connection.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.bind(ctx); err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	adv, err := w.subscribeAdvisories()
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer func() { _ = adv.Unsubscribe() }()

	if w.done != nil {
		w.checker = donemarker.NewChecker(w.nc, w.done, w.cfg.Streams.DoneBucket, w.log)
		if err := w.checker.Start(); err != nil {
			return fmt.Errorf("worker: %w", err)
		}
	}

	iter, err := w.newPausingIter(jetstream.PullMaxMessages(w.cfg.Prefetch), // breaker.go
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.PullThresholdMessages(refillThreshold(w.cfg.Prefetch)))
	if err != nil {
		if w.checker != nil {
			w.checker.Close() // its goroutines end
		}
		return fmt.Errorf("worker: pull subscription: %w", err)
	}
	w.bound.Store(true)
	w.log.Info("worker started", "stream", w.cfg.Streams.Stream, "consumer", w.cfg.Streams.Consumer,
		"concurrency", w.cfg.Concurrency, "max_attempts", w.cfg.MaxAttempts,
		"idempotency", w.cfg.Idempotency, "worker_id", w.cfg.WorkerID)

	// Actions run under actionCtx, not ctx: shutdown must not cut them off
	// before the grace period ends.
	actionCtx, cancelActions := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelActions()

	go func() {
		<-ctx.Done()
		w.draining.Store(true)
		// Drain: Next returns what is buffered, then ErrMsgIteratorClosed.
		iter.Drain()
	}()

	// A fixed pool of intake goroutines, fed one message at a time: their
	// stacks stay grown (decoding grows them; a goroutine per message paid
	// for that every time). Each decodes its message and, with idempotency
	// on, looks its done-marker up, then waits for one of the Concurrency
	// action slots. With idempotency on there are intakePerSlot of them per
	// slot: the lookup's round trip (≈ 0.5 ms on a busy two-core host) then
	// holds no action slot, which had capped the throughput at Concurrency
	// messages per round trip. Without lookups more goroutines only cost
	// scheduling. Messages waiting for a slot are kept alive with
	// InProgress like running ones.
	intake := w.cfg.Concurrency
	if w.done != nil {
		intake *= intakePerSlot
	}
	w.actionSlots = make(chan struct{}, w.cfg.Concurrency)
	w.budget = newByteBudget(w.cfg.MaxInflightBytes)
	w.stopping = ctx.Done()
	if w.done != nil {
		w.markers = donemarker.NewWriter(w.js, w.done, w.cfg.Streams.DoneBucket, []byte(w.cfg.WorkerID),
			w.cfg.InProgressInterval, intake, w.cfg.Concurrency)
		w.settler.markers = w.markers
	}
	work := make(chan jetstream.Msg)
	w.work, w.actionCtx = work, actionCtx
	for range intake {
		w.inflight.Add(1)
		go w.runIntake()
	}
	requeued := 0
	requeue := func(msg jetstream.Msg) {
		// Pulled but not started: give it back now instead of after AckWait.
		w.settler.giveBack(msg)
		requeued++
	}
	for {
		msg, err := iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			w.log.Warn("pull failed", "error", err)
			time.Sleep(50 * time.Millisecond) // a broken connection must not spin the loop
			continue
		}
		if ctx.Err() != nil {
			requeue(msg)
			continue
		}
		select {
		case work <- msg:
		case <-ctx.Done():
			requeue(msg)
		}
	}
	close(work)

	allDone := make(chan struct{})
	go func() {
		w.inflight.Wait()
		if w.checker != nil {
			w.checker.Close() // no slot can ask any more
		}
		close(allDone)
	}()
	w.log.Info("worker draining", "grace", w.cfg.ShutdownGrace, "requeued", requeued)
	select {
	case <-allDone:
	case <-time.After(w.cfg.ShutdownGrace):
		w.log.Warn("shutdown grace expired; cancelling running actions")
		cancelActions()
		// Cancelled actions settle as "requeued"; an action that ignores its
		// context is abandoned by dispatch after its grace.
		select {
		case <-allDone:
		case <-time.After(5 * time.Second):
			w.log.Error("actions still running after cancellation; exiting anyway")
		}
	}
	if w.markers != nil {
		select {
		case <-allDone:
			// No slot can queue a marker any more: ack what is queued.
			if !w.markers.CloseQueue(donemarker.WriteTimeout + time.Second) {
				w.log.Error("done-marker writer still waiting; exiting anyway")
			}
		default:
			// Slots still running may yet queue: leave the queue open. Its
			// messages are redelivered and acked as duplicates (their
			// markers are stored) or run again (not stored).
		}
	}
	if w.markers != nil {
		// Markers still being retried get a last chance; what is left
		// stays unacked and is redelivered (donemarker.Writer).
		w.markers.Stop(min(w.cfg.ShutdownGrace, donemarker.WriteTimeout))
	}
	w.log.Info("worker stopped")
	return nil
}
