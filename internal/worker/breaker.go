package worker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sethvargo/go-retry"
)

// The credential-store breaker: back-pressure instead of a bigger retry
// budget. While the store (Neo4j) is unreachable every message that needs
// credentials fails the same way; retrying them one by one burns their
// attempts (5 attempts with full-jitter backoff from 1 s last ~15 s at
// most), so an outage longer than that dead-lettered everything that
// arrived during it. Instead, the first such failure opens the breaker:
// the failed messages are nak'ed with their backoff as usual, the worker
// stops pulling (pull.go: messages already pulled wait in their places,
// kept in progress, so they use no attempt), and the store is probed with
// capped backoff.
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
	b.probes.Add(1) // under mu, after the ctx check: stop cannot have waited yet
	b.mu.Unlock()
	b.log.Warn("credential store unavailable: pausing message intake until it answers", "error", cause)
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
