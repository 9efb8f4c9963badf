package worker

import (
	"context"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
)

// A done-marker write that fails (typically while nats-server restarts:
// the publish's acknowledgement is lost with the connection) used to be
// followed by the ack anyway. The ack was lost too, the restarted server
// redelivered the message, no marker was found and the action ran again
// (docs/reliability.md §1, decision 0006's companion fix). So the message is
// never acked after a failed marker write: the marker is written again
// with backoff until the server acknowledges it, the message is kept alive
// with InProgress meanwhile, and only then is it acked.
//
// The one case left: the worker shuts down while the marker is still
// unwritten. The message is then neither acked nor nak'ed — it comes back
// after AckWait (leaving time for a write still in flight to land) and runs
// again unless its marker made it. That is the inherent effect→marker
// window every replica kill has too; actions must be idempotent (§6).

// Retry pacing of a failed done-marker write: exponential from
// markerRetryBase, capped at markerRetryMax, full jitter; each attempt may
// take markerAttemptTimeout.
const (
	markerRetryBase      = 100 * time.Millisecond
	markerRetryMax       = 2 * time.Second
	markerAttemptTimeout = 5 * time.Second
)

// errDoneWriteUnacknowledged is the cause of a retry when the first write
// was not acknowledged within doneWriteTimeout.
var errDoneWriteUnacknowledged = errors.New("done-marker write not acknowledged in time")

// markerRetrier owns messages whose done-marker write failed until the
// marker is stored (then it acks them) or the worker stops (then it leaves
// them to redelivery).
type markerRetrier struct {
	w      *Worker
	ctx    context.Context // cancelled by stop: abandon every retry
	cancel context.CancelFunc
	// slots bounds concurrent retries; when all are taken the caller
	// blocks, which backs up the done queue and stops the slots from
	// taking work while the marker store is failing.
	slots chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	stopped bool
}

func newMarkerRetrier(w *Worker, limit int) *markerRetrier {
	ctx, cancel := context.WithCancel(context.Background())
	return &markerRetrier{w: w, ctx: ctx, cancel: cancel, slots: make(chan struct{}, max(limit, 1))}
}

// retry takes over d (its ack and span): it writes d's marker until the
// server acknowledges it, then acks. ctx carries the message's trace; its
// cancellation does not stop the retry (the action already ran). The
// caller has set d.handedOff.
func (r *markerRetrier) retry(ctx context.Context, d *delivery, cause error) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		r.leave(d, cause)
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()

	select {
	case r.slots <- struct{}{}:
	case <-r.ctx.Done():
		r.leave(d, cause)
		r.wg.Done()
		return
	}
	go func() {
		defer r.wg.Done()
		defer func() { <-r.slots }()
		r.run(context.WithoutCancel(ctx), d, cause)
	}()
}

func (r *markerRetrier) run(ctx context.Context, d *delivery, cause error) {
	// Keep the message ours while the marker is retried: without
	// InProgress the server would redeliver it after AckWait and another
	// replica would run it again (no marker yet).
	_ = d.msg.InProgress()
	var stopped bool
	var mu sync.Mutex
	var beat *time.Timer
	beat = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = d.msg.InProgress()
		beat.Reset(r.w.cfg.InProgressInterval)
	})
	beat.Reset(r.w.cfg.InProgressInterval)
	defer func() {
		mu.Lock()
		stopped = true
		beat.Stop()
		mu.Unlock()
	}()

	key := d.doneKey
	attempts := 0
	b := retry.WithFullJitter(retry.WithCappedDuration(markerRetryMax, retry.NewExponential(markerRetryBase)))
	err := retry.Do(r.ctx, b, func(ctx context.Context) error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, markerAttemptTimeout)
		defer cancel()
		if _, err := r.w.done.Put(actx, key, r.w.workerID); err != nil {
			return retry.RetryableError(err)
		}
		return nil
	})
	if err != nil {
		// Only stop ends the retries: the worker is shutting down.
		d.logger().Warn("done-marker still not written at shutdown; message left unacked for redelivery",
			"first_error", cause, "attempts", attempts)
		d.span.End()
		return
	}
	d.logger().Info("done-marker written after retrying; acking", "first_error", cause, "attempts", attempts)
	r.w.ackSuccess(ctx, d)
	d.span.End()
}

// leave gives up on d without retrying (the worker is stopping).
func (r *markerRetrier) leave(d *delivery, cause error) {
	d.logger().Warn("done-marker not written and the worker is stopping; message left unacked for redelivery",
		"error", cause)
	d.span.End()
}

// stop lets running retries finish within wait, then abandons them (their
// messages stay unacked) and waits for them to return. Retries handed in
// after stop are abandoned at once.
func (r *markerRetrier) stop(wait time.Duration) {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		r.cancel()
		<-done
	}
	r.cancel()
}
