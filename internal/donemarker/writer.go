package donemarker

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"
)

// Done-markers are written asynchronously (wire-contract §6 is kept: the
// message is acked only after the server acknowledged its marker). A
// synchronous KV put held the slot for a whole JetStream round trip after
// the action had finished; now the slot takes its next message while one
// goroutine, the done-marker writer, waits for the markers'
// acknowledgements in publish order and hands each job back (Stored) after
// its own.
//
// A marker write that fails (typically while nats-server restarts: the
// publish's acknowledgement is lost with the connection) used to be
// followed by the ack anyway. The ack was lost too, the restarted server
// redelivered the message, no marker was found and the action ran again
// (docs/reliability.md §1). So a message is never acked after a failed
// marker write: the marker is written again with backoff until the server
// acknowledges it, the message is kept alive with InProgress meanwhile,
// and only then is it acked.
//
// The one case left: the worker shuts down while the marker is still
// unwritten. The job is then Stored(false) and the message neither acked
// nor nak'ed — it comes back after AckWait (leaving time for a write still
// in flight to land) and runs again unless its marker made it. That is the
// inherent effect→marker window every replica kill has too; actions must
// be idempotent (§6).

// WriteTimeout bounds the wait for one marker's acknowledgement
// (counted from its publish, so a dead connection costs one timeout for
// the whole queue, not one per message).
const WriteTimeout = 10 * time.Second

// Retry pacing of a failed done-marker write: exponential from
// markerRetryBase, capped at markerRetryMax, full jitter; each attempt may
// take markerAttemptTimeout.
const (
	markerRetryBase      = 100 * time.Millisecond
	markerRetryMax       = 2 * time.Second
	markerAttemptTimeout = 5 * time.Second
)

// errDoneWriteUnacknowledged is the cause of a retry when the first write
// was not acknowledged within WriteTimeout.
var errDoneWriteUnacknowledged = errors.New("done-marker write not acknowledged in time")

// SubjectPrefix is the KV subject prefix of the done bucket's keys (a
// local bucket, as streams.Apply creates it: no mirror, no domain). The
// marker writes and the batched lookups (checker.go) both use it.
func SubjectPrefix(bucket string) string { return "$KV." + bucket + "." }

// Job is one message waiting for its done-marker.
type Job interface {
	// Key is the marker's key (Key of the CloudEvent id).
	Key() string
	// InProgress keeps the message alive while the marker is retried.
	InProgress() error
	// Logger carries the message's identity.
	Logger() *slog.Logger
	// Stored is called exactly once: true once the server acknowledged
	// the marker (ack the message now), false when the writer stopped
	// first (leave the message for redelivery).
	Stored(ok bool)
}

// asyncPublisher publishes a marker without waiting (jetstream.JetStream).
type asyncPublisher interface {
	PublishAsync(subject string, data []byte, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// kvPutter writes a marker and waits (jetstream.KeyValue).
type kvPutter interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
}

// pendingDone is a published marker whose job waits for its
// acknowledgement.
type pendingDone struct {
	job      Job
	future   jetstream.PubAckFuture
	deadline time.Time
}

// Writer writes done-markers before the ack: the writer goroutine, the
// retrier, and their shutdown.
type Writer struct {
	js     asyncPublisher
	kv     kvPutter
	prefix string // SubjectPrefix(bucket)
	value  []byte // the worker id
	beat   time.Duration

	q          chan pendingDone
	writerDone chan struct{}

	ctx    context.Context // cancelled by stop: abandon every retry
	cancel context.CancelFunc
	// slots bounds concurrent retries; when all are taken Store blocks,
	// which backs up the queue and stops the slots from taking work while
	// the marker store is failing.
	slots chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	stopped bool
}

// NewWriter starts the writer goroutine. queue is the writer's
// queue length (one per intake goroutine: one blocks only when the writer
// is a whole round of markers behind), retries the concurrent retries.
func NewWriter(js asyncPublisher, kv kvPutter, bucket string, value []byte, beat time.Duration, queue, retries int) *Writer {
	ctx, cancel := context.WithCancel(context.Background())
	m := &Writer{js: js, kv: kv, prefix: SubjectPrefix(bucket), value: value, beat: beat,
		q: make(chan pendingDone, queue), writerDone: make(chan struct{}),
		ctx: ctx, cancel: cancel, slots: make(chan struct{}, max(retries, 1))}
	go func() { defer close(m.writerDone); m.runWriter() }()
	return m
}

// Store publishes j's marker and queues j for the writer; a publish that
// fails at once goes to the retrier.
func (m *Writer) Store(j Job) {
	f, err := m.js.PublishAsync(m.prefix+j.Key(), m.value)
	if err != nil {
		j.Logger().Warn("done-marker write failed; retrying before the ack", "error", err)
		m.retry(j, err)
		return
	}
	m.q <- pendingDone{job: j, future: f, deadline: time.Now().Add(WriteTimeout)}
}

// runWriter hands queued jobs back as their markers are acknowledged,
// until q is closed and empty.
func (m *Writer) runWriter() {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for p := range m.q {
		timer.Reset(time.Until(p.deadline))
		select {
		case <-p.future.Ok():
		case err := <-p.future.Err():
			p.job.Logger().Warn("done-marker write failed; retrying before the ack", "error", err)
			timer.Stop()
			m.retry(p.job, err) // Stored once the marker is stored
			continue
		case <-timer.C:
			p.job.Logger().Warn("done-marker write not acknowledged in time; retrying before the ack", "timeout", WriteTimeout)
			m.retry(p.job, errDoneWriteUnacknowledged)
			continue
		}
		timer.Stop()
		p.job.Stored(true)
	}
}

// CloseQueue ends the writer once it has handed back what is queued;
// false if it did not within wait. Call it only when no Store can come.
func (m *Writer) CloseQueue(wait time.Duration) bool {
	close(m.q)
	select {
	case <-m.writerDone:
		return true
	case <-time.After(wait):
		return false
	}
}

// retry takes j over: it writes j's marker until the server acknowledges
// it, then Stored(true); Stored(false) when the worker stops first.
func (m *Writer) retry(j Job, cause error) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		m.leave(j, cause)
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()

	select {
	case m.slots <- struct{}{}:
	case <-m.ctx.Done():
		m.leave(j, cause)
		m.wg.Done()
		return
	}
	go func() {
		defer m.wg.Done()
		defer func() { <-m.slots }()
		m.runRetry(j, cause)
	}()
}

func (m *Writer) runRetry(j Job, cause error) {
	// Keep the message ours while the marker is retried: without
	// InProgress the server would redeliver it after AckWait and another
	// replica would run it again (no marker yet).
	_ = j.InProgress()
	var stopped bool
	var mu sync.Mutex
	var beat *time.Timer
	beat = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		_ = j.InProgress()
		beat.Reset(m.beat)
	})
	beat.Reset(m.beat)
	defer func() {
		mu.Lock()
		stopped = true
		beat.Stop()
		mu.Unlock()
	}()

	key := j.Key()
	attempts := 0
	b := retry.WithFullJitter(retry.WithCappedDuration(markerRetryMax, retry.NewExponential(markerRetryBase)))
	err := retry.Do(m.ctx, b, func(ctx context.Context) error {
		attempts++
		actx, cancel := context.WithTimeout(ctx, markerAttemptTimeout)
		defer cancel()
		if _, err := m.kv.Put(actx, key, m.value); err != nil {
			return retry.RetryableError(err)
		}
		return nil
	})
	if err != nil {
		// Only stop ends the retries: the worker is shutting down.
		j.Logger().Warn("done-marker still not written at shutdown; message left unacked for redelivery",
			"first_error", cause, "attempts", attempts)
		j.Stored(false)
		return
	}
	j.Logger().Info("done-marker written after retrying; acking", "first_error", cause, "attempts", attempts)
	j.Stored(true)
}

// leave gives up on j without retrying (the worker is stopping).
func (m *Writer) leave(j Job, cause error) {
	j.Logger().Warn("done-marker not written and the worker is stopping; message left unacked for redelivery",
		"error", cause)
	j.Stored(false)
}

// Stop lets running retries finish within wait, then abandons them (their
// messages stay unacked) and waits for them to return. Retries handed in
// after stop are abandoned at once.
func (m *Writer) Stop(wait time.Duration) {
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(wait):
		m.cancel()
		<-done
	}
	m.cancel()
}
