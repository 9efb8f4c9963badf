package worker

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Done-markers are written asynchronously (wire-contract §6 is kept: the
// message is acked only after the server acknowledged its marker, or the
// write failed — decision 0005 §6). A synchronous KV put held the slot for
// a whole JetStream round trip after the action had finished; now the
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

// doneSubject is the KV subject of a done-marker key in the done bucket
// (a local bucket, as streams.Apply creates it: no mirror, no domain).
func (w *Worker) doneSubject(key string) string {
	return "$KV." + w.cfg.Streams.DoneBucket + "." + key
}

// writeDone publishes the message's done-marker and hands the message to
// the done-marker writer. It returns false when the publish failed at
// once; the caller then acks (the action ran: re-running it is worse than
// losing the guard).
func (w *Worker) writeDone(ctx context.Context, d *delivery) bool {
	f, err := w.js.PublishAsync(w.doneSubject(doneKey(d.ceID)), w.workerID)
	if err != nil {
		d.logger().Warn("done-marker write failed", "error", err)
		return false
	}
	d.handedOff = true
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
			p.d.logger().Warn("done-marker write failed", "error", err)
		case <-timer.C:
			p.d.logger().Warn("done-marker write not acknowledged in time", "timeout", doneWriteTimeout)
		}
		timer.Stop()
		w.ackSuccess(p.ctx, p.d)
		p.d.span.End()
	}
}
