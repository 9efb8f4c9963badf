package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sethvargo/go-retry"
)

// The credential-store breaker: back-pressure instead of a bigger retry
// budget. While the store (Neo4j) is unreachable every message that needs
// credentials fails the same way; retrying them one by one burns their
// attempts (5 attempts with full-jitter backoff from 1 s last ~15 s at
// most), so an outage longer than that dead-lettered everything that
// arrived during it. Instead, the first such failure opens the breaker:
// the failed messages are nak'ed with their backoff as usual, the worker
// stops pulling (messages already pulled are parked and kept in progress,
// so they use no attempt), and the store is probed with capped backoff.
// When it answers the breaker closes and pulling resumes. Readiness
// reports the open breaker. Messages whose plugin needs no credentials
// wait too: the worker cannot tell them apart before pulling them.

// ErrCredentialStoreUnavailable is Ready's answer while the breaker is
// open.
var ErrCredentialStoreUnavailable = errors.New("credential store unavailable: not taking messages until it answers")

// Probe pacing while the breaker is open: exponential from probeBase,
// capped at probeMax (how long after the store returns pulling may still
// wait), jittered; each probe may take probeTimeout.
const (
	probeBase    = 250 * time.Millisecond
	probeMax     = 5 * time.Second
	probeTimeout = 5 * time.Second
)

// storePinger is what the breaker needs of the credential source: a
// cheap check that the store answers (creds.Resolver has it).
type storePinger interface {
	Ping(ctx context.Context) error
}

// credsBreaker is open while the credential store is unreachable.
type credsBreaker struct {
	log *slog.Logger
	// ping probes the store; nil (a source without Ping) means the breaker
	// half-opens after one probe interval and the next failure trips it
	// again.
	ping storePinger

	mu       sync.Mutex
	openedAt time.Time     // zero while closed
	closed   chan struct{} // closed when the breaker closes; nil while closed
	onTrip   func()        // interrupts the pull (pausingIter)
	ctx      context.Context
	cancel   context.CancelFunc
	probes   sync.WaitGroup // the probe goroutine (wait)
}

func newCredsBreaker(log *slog.Logger, source any) *credsBreaker {
	b := &credsBreaker{log: log}
	if p, ok := source.(storePinger); ok {
		b.ping = p
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// trip opens the breaker (once per outage) and starts probing the store.
func (b *credsBreaker) trip(cause string) {
	b.mu.Lock()
	if !b.openedAt.IsZero() || b.ctx.Err() != nil {
		b.mu.Unlock()
		return
	}
	b.openedAt = time.Now()
	b.closed = make(chan struct{})
	onTrip := b.onTrip
	b.probes.Add(1) // under mu, after the ctx check: stop cannot have waited yet
	b.mu.Unlock()
	b.log.Warn("credential store unavailable: pausing message intake until it answers", "error", cause)
	if onTrip != nil {
		onTrip()
	}
	go func() {
		defer b.probes.Done()
		b.probe()
	}()
}

// open reports whether the breaker is open.
func (b *credsBreaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.openedAt.IsZero()
}

// waitClosed returns a channel closed once the breaker is closed (already
// closed when it is).
func (b *credsBreaker) waitClosed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return b.closed
}

func (b *credsBreaker) probe() {
	bo := retry.WithJitterPercent(20, retry.WithCappedDuration(probeMax, retry.NewExponential(probeBase)))
	probes := 0
	err := retry.Do(b.ctx, bo, func(ctx context.Context) error {
		probes++
		if b.ping == nil {
			if probes == 1 {
				return retry.RetryableError(errors.New("no probe: wait one interval"))
			}
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		if err := b.ping.Ping(pctx); err != nil {
			return retry.RetryableError(err)
		}
		return nil
	})
	if err != nil {
		return // stopped: the worker is shutting down
	}
	b.mu.Lock()
	openFor := time.Since(b.openedAt)
	b.openedAt = time.Time{}
	close(b.closed)
	b.closed = nil
	b.mu.Unlock()
	b.log.Info("credential store answers again: resuming message intake",
		"paused", openFor.Round(time.Millisecond), "probes", probes)
}

// stop ends probing; an open breaker stays open.
func (b *credsBreaker) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cancel()
}

// wait returns once the probe goroutine (if any) has ended; after stop.
func (b *credsBreaker) wait() { b.probes.Wait() }

// pausingIter is the worker's pull subscription with the breaker in
// front: while the breaker is open it pulls nothing, and messages already
// pulled (the subscription's buffer) are parked, kept in progress, and
// handed out first once the breaker closes. A new subscription is made
// after each pause. Next has one caller (Run's loop); Drain and Stop may
// come from any goroutine.
type pausingIter struct {
	consumer jetstream.Consumer
	opts     []jetstream.PullMessagesOpt
	breaker  *credsBreaker
	beat     time.Duration // InProgress interval for parked messages
	log      *slog.Logger

	mu       sync.Mutex
	cur      jetstream.MessagesContext // nil between a pause and the next pull
	closing  bool                      // Drain or Stop was called
	closedCh chan struct{}

	parked []jetstream.Msg // Next's goroutine only
}

func (w *Worker) newPausingIter(opts ...jetstream.PullMessagesOpt) (*pausingIter, error) {
	p := &pausingIter{consumer: w.consumer, opts: opts, breaker: w.breaker,
		beat: w.cfg.InProgressInterval, log: w.log, closedCh: make(chan struct{})}
	cur, err := w.consumer.Messages(opts...)
	if err != nil {
		return nil, err
	}
	p.cur = cur
	w.breaker.mu.Lock()
	w.breaker.onTrip = p.interrupt
	w.breaker.mu.Unlock()
	return p, nil
}

// interrupt drains the current subscription so a Next blocked on it
// returns (the breaker just opened).
func (p *pausingIter) interrupt() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		p.cur.Drain()
	}
}

// Next returns the next message to process.
func (p *pausingIter) Next(opts ...jetstream.NextOpt) (jetstream.Msg, error) {
	for {
		if p.breaker.open() && !p.isClosing() {
			p.pause()
			continue
		}
		if len(p.parked) > 0 {
			m := p.parked[0]
			p.parked = p.parked[1:]
			return m, nil
		}
		cur, err := p.current()
		if err != nil {
			return nil, err
		}
		msg, err := cur.Next(opts...)
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) && !p.isClosing() {
			p.forget(cur) // drained by a trip
			continue
		}
		if err == nil && p.breaker.open() && !p.isClosing() {
			p.park(msg)
			continue
		}
		return msg, err
	}
}

// pause drains what the subscription holds into parked, keeps parked
// messages in progress until the breaker closes or the iterator is
// closed.
func (p *pausingIter) pause() {
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		cur.Drain()
		for {
			msg, err := cur.Next(jetstream.NextMaxWait(p.beat))
			if err != nil {
				break // closed (drained), or nothing more within a beat
			}
			p.park(msg)
		}
		p.forget(cur)
	}
	if len(p.parked) > 0 {
		p.log.Info("message intake paused; holding pulled messages", "held", len(p.parked))
	}
	tick := time.NewTicker(p.beat)
	defer tick.Stop()
	closed := p.breaker.waitClosed()
	for {
		select {
		case <-closed:
			return
		case <-p.closedCh:
			return
		case <-tick.C:
			for _, m := range p.parked {
				_ = m.InProgress()
			}
		}
	}
}

func (p *pausingIter) park(msg jetstream.Msg) {
	_ = msg.InProgress()
	p.parked = append(p.parked, msg)
}

// current returns the subscription, making a new one after a pause.
func (p *pausingIter) current() (jetstream.MessagesContext, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		if p.closing {
			return nil, jetstream.ErrMsgIteratorClosed
		}
		cur, err := p.consumer.Messages(p.opts...)
		if err != nil {
			return nil, err
		}
		p.cur = cur
	}
	return p.cur, nil
}

func (p *pausingIter) forget(cur jetstream.MessagesContext) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == cur {
		p.cur = nil
	}
}

func (p *pausingIter) isClosing() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

// Drain stops pulling; Next returns what is buffered or parked, then
// jetstream.ErrMsgIteratorClosed. It also stops the breaker's probe.
func (p *pausingIter) Drain() { p.close(func(c jetstream.MessagesContext) { c.Drain() }) }

// Stop is Drain without handing out what is buffered in the
// subscription (parked messages are still handed out).
func (p *pausingIter) Stop() { p.close(func(c jetstream.MessagesContext) { c.Stop() }) }

func (p *pausingIter) close(how func(jetstream.MessagesContext)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return
	}
	p.closing = true
	close(p.closedCh)
	p.breaker.stop()
	if p.cur != nil {
		how(p.cur)
	}
}
