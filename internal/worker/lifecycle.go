package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
)

// ErrStarted is Start's answer the second time.
var ErrStarted = errors.New("worker: already started")

// Run is Start, then Stop once ctx is cancelled: it consumes until ctx
// ends and returns nil after a clean shutdown. The caller owns (and
// drains) the connection.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-w.closed:
	}
	return w.Stop(context.Background())
}

// Start binds the consumer, the work stream and the done bucket, starts
// pulling and returns. ctx bounds the start-up; actions run under its
// values but not its cancellation (Stop ends the worker).
func (w *Worker) Start(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	if err := w.start(ctx); err != nil {
		close(w.closed)
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// Stop shuts the worker down gracefully: stop pulling, give back what was
// pulled and not started, let running actions finish within
// ShutdownGrace (then cancel them), flush the done-markers, stop the
// breaker's probe and the advisory listener. It returns nil once the
// worker has stopped, or ctx.Err() when ctx ends first (the shutdown goes
// on; Closed says when it is over). Safe to call more than once, and
// before Start.
func (w *Worker) Stop(ctx context.Context) error {
	w.stopOnce.Do(func() {
		w.draining.Store(true)
		close(w.stopCh)
	})
	if !w.started.Load() {
		return nil
	}
	select {
	case <-w.closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Closed is closed once the worker has stopped (or failed to start).
func (w *Worker) Closed() <-chan struct{} { return w.closed }

// run is one Start's state: what the pull loop and the shutdown share.
type run struct {
	fetcher       *fetcher // the pull loop (pull.go)
	adv           *advisories
	work          chan *heldMsg
	cancelActions context.CancelFunc
}

func (w *Worker) start(ctx context.Context) error {
	if err := w.bind(ctx); err != nil {
		return err
	}
	if err := w.startLanes(ctx); err != nil { // lanes.go
		return err
	}
	adv, err := w.subscribeAdvisories()
	if err != nil {
		w.laneCache.Stop()
		return err
	}
	if w.done != nil {
		w.checker = donemarker.NewChecker(w.nc, w.done, w.cfg.Streams.DoneBucket, w.log)
		if err := w.checker.Start(); err != nil {
			adv.stop()
			w.laneCache.Stop()
			return err
		}
	}

	// Actions run under actionCtx: shutdown must not cut them off before
	// the grace period ends.
	actionCtx, cancelActions := context.WithCancel(context.WithoutCancel(ctx))

	// A fixed pool of intake goroutines, one per intake place (pull.go),
	// fed one message at a time: their stacks stay grown (decoding grows
	// them; a goroutine per message paid for that every time). Each decodes
	// its message and, with idempotency on, looks its done-marker up, then
	// waits for one of the Concurrency action slots: the lookup's round trip
	// (≈ 0.5 ms on a busy two-core host) holds no action slot, which had
	// capped the throughput at Concurrency messages per round trip.
	// Messages waiting for a slot are kept alive with InProgress like
	// running ones (their heartbeat runs from arrival).
	intake := w.cfg.Prefetch
	w.actionSlots = make(chan struct{}, w.cfg.Concurrency)
	w.budget = newByteBudget(w.cfg.MaxInflightBytes)
	w.stopping = w.stopCh
	if w.done != nil {
		// The writer's queue stays at markerQueuePerSlot × Concurrency, not one
		// per intake place: it bounds how many finished actions can wait
		// for their markers while the store fails (a broker restart), and
		// so how many re-run when the replica is then killed (the crash
		// suite saw 12 per kill with a queue of 32 places, against its
		// bound of one per slot).
		w.markers = donemarker.NewWriter(w.js, w.done, w.cfg.Streams.DoneBucket, []byte(w.cfg.WorkerID),
			w.cfg.InProgressInterval, markerQueuePerSlot*w.cfg.Concurrency, w.cfg.Concurrency)
		w.settler.markers = w.markers
	}
	fctx, cancelFetches := context.WithCancel(context.WithoutCancel(ctx))
	r := &run{adv: adv, work: make(chan *heldMsg), cancelActions: cancelActions,
		fetcher: &fetcher{w: w, places: newPlaces(intake), total: intake, ctx: fctx, cancel: cancelFetches,
			pullsClosed: make(chan struct{})}}
	w.fetcher = r.fetcher
	w.work, w.actionCtx = r.work, actionCtx
	// Ready from here on: what the run shares is in place.
	w.bound.Store(true)
	w.log.Info("worker started", "stream", w.cfg.Streams.Stream, "consumer", w.cfg.Streams.Consumer,
		"concurrency", w.cfg.Concurrency, "max_attempts", w.cfg.MaxAttempts,
		"idempotency", w.cfg.Idempotency, "worker_id", w.cfg.WorkerID)
	for range intake {
		w.inflight.Add(1)
		go w.runIntake()
	}
	go func() {
		defer close(w.closed)
		w.pullFetch(r)
		w.shutdown(r)
	}()
	return nil
}

// shutdown runs the stages after the pull loop ended, each bounded by its
// Config field: running actions get ShutdownGrace, then are cancelled and
// get ShutdownCancelWait; the done-marker writer gets ShutdownMarkerFlush
// for what is queued, markers being retried get ShutdownMarkerRetry.
func (w *Worker) shutdown(r *run) {
	defer r.cancelActions()
	// One clock for the grace: the outstanding pull requests run out while
	// the running actions go on (both within ShutdownGrace).
	graceEnd := time.Now().Add(w.cfg.ShutdownGrace)
	requeued := r.fetcher.stopFetches(graceEnd) // before any message is given back
	allDone := make(chan struct{})
	go func() {
		w.inflight.Wait()
		if w.checker != nil {
			w.checker.Close() // no slot can ask any more
		}
		close(allDone)
	}()
	w.log.Info("worker draining", "grace", w.cfg.ShutdownGrace, "requeued", requeued)
	finished := true
	select {
	case <-allDone:
	case <-time.After(time.Until(graceEnd)):
		w.log.Warn("shutdown grace expired; cancelling running actions")
		r.cancelActions()
		// Cancelled actions settle as "requeued"; an action that ignores its
		// context is abandoned by dispatch after its grace.
		select {
		case <-allDone:
		case <-time.After(w.cfg.ShutdownCancelWait):
			finished = false
			w.log.Error("actions still running after cancellation; exiting anyway")
		}
	}
	if w.markers != nil {
		if finished {
			// No slot can queue a marker any more: ack what is queued.
			if !w.markers.CloseQueue(w.cfg.ShutdownMarkerFlush) {
				w.log.Error("done-marker writer still waiting; exiting anyway")
			}
		}
		// Otherwise slots still running may yet queue: leave the queue
		// open. Its messages are redelivered and acked as duplicates (their
		// markers are stored) or run again (not stored).

		// Markers still being retried get a last chance; what is left
		// stays unacked and is redelivered (donemarker.Writer).
		w.markers.Stop(min(w.cfg.ShutdownGrace, w.cfg.ShutdownMarkerRetry))
	}
	if finished && w.checker != nil {
		w.checker.Wait()
	}
	w.breaker.stop()
	w.breaker.wait()
	r.adv.stop()
	w.laneCache.Stop()
	// Acks and naks are published without waiting: get them to the server
	// before Stop returns (the caller may close the connection next).
	if err := w.nc.FlushTimeout(w.cfg.ShutdownCancelWait); err != nil {
		w.log.Warn("flushing settles at shutdown", "error", err)
	}
	w.log.Info("worker stopped")
}

// advisories is the MAX_DELIVERIES advisory subscription; stop
// unsubscribes and waits for a handler still running.
type advisories struct {
	sub     *nats.Subscription
	handler chan struct{} // one token: held while a handler runs or once stopped
}

func (a *advisories) stop() {
	_ = a.sub.Unsubscribe()
	a.handler <- struct{}{} // waits for a running handler; later ones see it taken
}

// enter reports whether a handler may run (not stopped); leave after.
func (a *advisories) enter() bool {
	select {
	case a.handler <- struct{}{}:
		return true
	default:
		return false
	}
}

func (a *advisories) leave() { <-a.handler }
