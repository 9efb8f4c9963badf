package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Done-markers are written asynchronously (wire-contract §6 is kept: the
// message is acked only after the server acknowledged its marker; a
// failed write is retried first, donemarker_retry.go). A synchronous KV
// put held the slot for a whole JetStream round trip after the action had
// finished; now the
// slot takes its next message while one goroutine, the done-marker
// writer, waits for the markers' acknowledgements in publish order and
// acks each message after its own.

// doneWriteTimeout bounds the wait for one marker's acknowledgement
// (counted from its publish, so a dead connection costs one timeout for
// the whole queue, not one per message).
const doneWriteTimeout = 10 * time.Second

// pendingDone is a published marker whose message waits for its ack.
type pendingDone struct {
	ctx      context.Context
	d        *delivery
	future   jetstream.PubAckFuture
	deadline time.Time
}

// doneSubjectPrefix is the KV subject prefix of the done bucket's keys (a
// local bucket, as streams.Apply creates it: no mirror, no domain). The
// marker writes and the batched lookups (donecheck.go) both use it.
func doneSubjectPrefix(bucket string) string { return "$KV." + bucket + "." }

// doneSubject is the KV subject of a done-marker key.
func (w *Worker) doneSubject(key string) string {
	return doneSubjectPrefix(w.cfg.Streams.DoneBucket) + key
}

// writeDone publishes the message's done-marker and hands the message to
// the done-marker writer. When the publish fails at once the marker
// retrier takes the message over (donemarker_retry.go: never ack without
// the marker). It always returns true: the ack is no longer the caller's.
func (w *Worker) writeDone(ctx context.Context, d *delivery) bool {
	f, err := w.js.PublishAsync(w.doneSubject(d.doneKey), w.workerID)
	d.handedOff = true
	if err != nil {
		d.logger().Warn("done-marker write failed; retrying before the ack", "error", err)
		w.markers.retry(ctx, d, err)
		return true
	}
	w.doneQ <- pendingDone{ctx: ctx, d: d, future: f, deadline: time.Now().Add(doneWriteTimeout)}
	return true
}

// runDoneWriter acks queued messages as their markers are acknowledged,
// until q is closed and empty.
func (w *Worker) runDoneWriter(q <-chan pendingDone) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for p := range q {
		timer.Reset(time.Until(p.deadline))
		select {
		case <-p.future.Ok():
		case err := <-p.future.Err():
			p.d.logger().Warn("done-marker write failed; retrying before the ack", "error", err)
			timer.Stop()
			w.markers.retry(p.ctx, p.d, err) // acks once the marker is stored
			continue
		case <-timer.C:
			p.d.logger().Warn("done-marker write not acknowledged in time; retrying before the ack", "timeout", doneWriteTimeout)
			w.markers.retry(p.ctx, p.d, errDoneWriteUnacknowledged)
			continue
		}
		timer.Stop()
		w.ackSuccess(p.ctx, p.d)
		p.d.span.End()
	}
}
