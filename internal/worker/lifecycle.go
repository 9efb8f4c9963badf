package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
		if it := w.iter.Load(); it != nil {
			// Drain: Next returns what is buffered, then ErrMsgIteratorClosed.
			it.Drain()
		}
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
	iter          *pausingIter
	adv           *advisories
	work          chan jetstream.Msg
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
	iter, err := w.newPausingIter(jetstream.PullMaxMessages(w.cfg.Prefetch), // breaker.go
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.PullThresholdMessages(refillThreshold(w.cfg.Prefetch)))
	if err != nil {
		adv.stop()
		w.laneCache.Stop()
		if w.checker != nil {
			w.checker.Close()
			w.checker.Wait()
		}
		return fmt.Errorf("pull subscription: %w", err)
	}
	w.iter.Store(iter)
	select {
	case <-w.stopCh: // Stop came during start-up
		iter.Drain()
	default:
	}
	w.bound.Store(true)
	w.log.Info("worker started", "stream", w.cfg.Streams.Stream, "consumer", w.cfg.Streams.Consumer,
		"concurrency", w.cfg.Concurrency, "max_attempts", w.cfg.MaxAttempts,
		"idempotency", w.cfg.Idempotency, "worker_id", w.cfg.WorkerID)

	// Actions run under actionCtx: shutdown must not cut them off before
	// the grace period ends.
	actionCtx, cancelActions := context.WithCancel(context.WithoutCancel(ctx))

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
	w.stopping = w.stopCh
	if w.done != nil {
		w.markers = donemarker.NewWriter(w.js, w.done, w.cfg.Streams.DoneBucket, []byte(w.cfg.WorkerID),
			w.cfg.InProgressInterval, intake, w.cfg.Concurrency)
		w.settler.markers = w.markers
	}
	r := &run{iter: iter, adv: adv, work: make(chan jetstream.Msg), cancelActions: cancelActions}
	w.work, w.actionCtx = r.work, actionCtx
	for range intake {
		w.inflight.Add(1)
		go w.runIntake()
	}
	go func() {
		defer close(w.closed)
		requeued := w.pull(r)
		w.shutdown(r, requeued)
	}()
	return nil
}

// pull hands pulled messages to the intake until the subscription is
// drained (Stop); it returns how many it gave back unstarted.
func (w *Worker) pull(r *run) (requeued int) {
	requeue := func(msg jetstream.Msg) {
		// Pulled but not started: give it back now instead of after AckWait.
		w.settler.giveBack(msg)
		requeued++
	}
	for {
		msg, err := r.iter.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				break
			}
			w.log.Warn("pull failed", "error", err)
			time.Sleep(50 * time.Millisecond) // a broken connection must not spin the loop
			continue
		}
		if w.draining.Load() {
			requeue(msg)
			continue
		}
		select {
		case r.work <- msg:
		case <-w.stopCh:
			requeue(msg)
		}
	}
	close(r.work)
	return requeued
}

// shutdown runs the stages after the pull loop ended, each bounded by its
// Config field: running actions get ShutdownGrace, then are cancelled and
// get ShutdownCancelWait; the done-marker writer gets ShutdownMarkerFlush
// for what is queued, markers being retried get ShutdownMarkerRetry.
func (w *Worker) shutdown(r *run, requeued int) {
	defer r.cancelActions()
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
	case <-time.After(w.cfg.ShutdownGrace):
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
