package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Capacity-based pulls (issue 14 §2, decision 0015). The worker has a
// fixed number of intake places (Config.Prefetch, IntakePlacesPerSlot ×
// Concurrency by default), one intake goroutine each: a place holds one
// message from its arrival until the intake is done with it (decoded,
// looked up, waited for an action slot, run, settled). The pull loop asks
// the server for exactly as many messages as there are free places, with
// one Fetch each, so nothing is ever pulled that has no place, and every
// message is kept alive with InProgress from the moment it arrives
// (heldMsg): nothing sits unheartbeated in a buffer, which was the reason
// decision 0005 §11 kept the prefetch buffer small.
//
// A place is taken when a Fetch asks for it and given back either when
// the Fetch ends without filling it or when the intake goroutine is done
// with its message. A new Fetch goes out once half the places are free
// (minFetch): the other half still feeds the slots while the request
// makes its round trip, and several may be outstanding.
//
// While the credential breaker is open no Fetch goes out; messages held
// (and those still arriving for a Fetch already outstanding) wait in their
// places, kept alive. On Stop no Fetch goes out and the outstanding ones
// run out (pullExpiry at most): what they still deliver is held, kept
// alive, and given back (nak) with what was pulled and not started once
// none is open any more (stopFetches says why in that order).

// IntakePlacesPerSlot is the default number of intake places per action
// slot: 4, so 64 at the default Concurrency of 16. A replica then holds up
// to 64 messages plus the 32 its done-marker writer may wait for, and the
// consumer's default MaxAckPending of 2,048 fits the shipped 20 replicas
// (20 × 96 = 1,920) each holding all it may: with more places the first
// replicas to pull a backlog would hold it all and the last get nothing.
// Pulls are half the places: 32 messages a request
// (docs/performance.md, section 1, has 64 and 128 places measured).
const IntakePlacesPerSlot = 4

// places counts the free intake places.
type places struct {
	mu   sync.Mutex
	free int
	// wake has one token: set when places are given back.
	wake chan struct{}
}

func newPlaces(n int) *places { return &places{free: n, wake: make(chan struct{}, 1)} }

// take takes every free place if there are at least atLeast of them.
func (p *places) take(atLeast int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.free < atLeast || p.free == 0 {
		return 0
	}
	n := p.free
	p.free = 0
	return n
}

// give returns n places.
func (p *places) give(n int) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	p.free += n
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// count is how many places are free (tests).
func (p *places) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.free
}

// heldMsg is a pulled message in its place, kept alive from its arrival
// until the intake stops the beat.
type heldMsg struct {
	msg      jetstream.Msg
	stopBeat func()
}

// minFetch is the fewest free places a Fetch asks for: half the places,
// but never so many that the slots could run dry while the places fill
// (n − minFetch ≥ concurrency: a replica that does not pull holds more
// messages than it has slots).
func minFetch(n, concurrency int) int { return max(1, min(n/2, n-concurrency)) }

// fetcher is the pull loop's state.
type fetcher struct {
	w      *Worker
	places *places
	total  int
	// receivers waits for the Fetches' goroutines.
	receivers sync.WaitGroup
	// ctx ends the outstanding Fetches (shutdown).
	ctx    context.Context
	cancel context.CancelFunc
	// queuedBytes are the bodies pulled and not yet in the byte budget.
	queuedBytes atomic.Int64
	// sizeHint is the recent body size (noteSize), for byteCap.
	sizeHint atomic.Int64
	// fetches counts Fetch requests and delivered the messages they
	// brought (tests, logs).
	fetches   atomic.Int64
	delivered atomic.Int64
	// held is how many messages are in their places now, peakHeld the
	// most at once (never above total: tests).
	held, peakHeld atomic.Int64
	// lateGiven counts the messages that arrived after Stop and were
	// given back (tests).
	lateGiven atomic.Int64
	// pullsClosed is closed once no Fetch is open at the server (Stop);
	// late holds what arrived after Stop until then, kept alive.
	pullsClosed chan struct{}
	mu          sync.Mutex
	late        []*heldMsg
}

// arrived counts a message into its place.
func (f *fetcher) arrived() {
	f.delivered.Add(1)
	n := f.held.Add(1)
	for {
		p := f.peakHeld.Load()
		if n <= p || f.peakHeld.CompareAndSwap(p, n) {
			return
		}
	}
}

// release frees a message's place.
func (f *fetcher) release() {
	f.held.Add(-1)
	f.places.give(1)
}

// pullFetch runs the capacity-based pull loop until Stop. The Fetches
// still outstanding then run out in shutdown (stopFetches).
func (w *Worker) pullFetch(r *run) {
	f := r.fetcher
	for {
		select {
		case <-w.stopCh:
			return
		default:
		}
		if w.breaker.open() {
			select {
			case <-w.breaker.waitClosed():
			case <-w.stopCh:
			}
			continue
		}
		n := f.places.take(minFetch(f.total, w.cfg.Concurrency))
		if n == 0 {
			select {
			case <-f.places.wake:
			case <-w.stopCh:
			}
			continue
		}
		// The places stay taken until the Fetch ends, even those byteCap
		// leaves unasked: given back now, they would be taken again at
		// once for another request, and the requests would not be bounded.
		if err := f.fetch(n, min(n, f.byteCap())); err != nil {
			f.places.give(n)
			w.log.Warn("pull failed", "error", err)
			select { // a broken connection must not spin the loop
			case <-time.After(50 * time.Millisecond):
			case <-w.stopCh:
			}
		}
	}
}

// stopFetches waits, after Stop, until the Fetches still outstanding have
// ended, then opens the gate for the naks of messages pulled and not
// started (pullsClosed) and gives back what arrived after Stop. It
// returns how many messages arrived after Stop.
//
// Why in that order: a message given back while a Fetch of this worker
// is still open at the server would be delivered straight back to it,
// again and again, each time counted as a delivery. Why wait rather than
// end them: ending a Fetch unsubscribes its inbox at once, and a message
// the server was already sending to it is dropped by the client and
// comes back only after AckWait (30 s by default): a rolling restart
// delayed such messages that long. A Fetch runs out by itself within
// pullExpiry (the server's timeout status, or its count filled), and
// nothing comes after that status; what arrives meanwhile is held, kept
// alive, and given back here, at once for another replica. The wait is
// bounded by deadline (shutdown's ShutdownGrace); a Fetch still open
// then (a stalled connection) is ended as before, with that hazard.
func (f *fetcher) stopFetches(deadline time.Time) int {
	ended := make(chan struct{})
	go func() { // the pull loop has returned: no receiver is added any more
		f.receivers.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(time.Until(deadline)):
		f.w.log.Warn("pull requests still open at the end of the shutdown grace; ending them")
		f.cancel()
		<-ended
		if err := f.w.nc.FlushTimeout(f.w.cfg.ShutdownCancelWait); err != nil {
			f.w.log.Warn("flushing the end of the pull requests", "error", err)
		}
	}
	f.cancel()
	close(f.pullsClosed)
	f.mu.Lock()
	late := f.late
	f.late = nil
	f.mu.Unlock()
	// Their deferral counts (giveBack) get ShutdownCancelWait in all.
	ctx, cancel := context.WithTimeout(context.Background(), f.w.cfg.ShutdownCancelWait)
	defer cancel()
	for _, h := range late {
		h.stopBeat()
		f.w.settler.giveBack(ctx, h.msg)
		f.release()
	}
	f.lateGiven.Add(int64(len(late)))
	return len(late)
}

// awaitPullsClosed waits, after Stop, until no pull request of this
// worker is open at the server (stopFetches) before a message is given
// back.
func (w *Worker) awaitPullsClosed() { <-w.fetcher.pullsClosed }

// fetch sends one pull request for ask of the n places taken; a
// goroutine hands what arrives to the intake and gives back the places
// left when the request ends.
func (f *fetcher) fetch(n, ask int) error {
	w := f.w
	ctx, cancel := context.WithTimeout(f.ctx, pullExpiry+time.Second/2)
	// No FetchMaxBytes: with a byte limit, nats-server 2.15.2 stopped
	// delivering to every request after a stream leader's failover in a
	// cluster (each ended "409 Batch Completed" with no message:
	// TestWorkerSurvivesServerRestartInCluster). The bytes are bounded by
	// the count instead (byteCap).
	batch, err := w.consumer.Fetch(ask, jetstream.FetchContext(ctx), jetstream.FetchHeartbeat(pullHeartbeat))
	if err != nil {
		cancel()
		return err
	}
	f.fetches.Add(1)
	f.receivers.Add(1)
	sent := time.Now()
	go func() {
		defer f.receivers.Done()
		defer cancel()
		got := 0
		for msg := range batch.Messages() {
			got++
			f.noteSize(len(msg.Data()))
			f.arrived()
			f.hand(msg)
		}
		if got == 0 && time.Since(sent) < pullExpiry/2 {
			// Ended early with nothing (an error status, a lost
			// connection): the next request waits a little rather than
			// spin.
			select {
			case <-time.After(emptyFetchPause):
			case <-f.ctx.Done():
			case <-w.stopCh:
			}
		}
		f.places.give(n - got)
		if err := batch.Error(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			w.log.Debug("pull request ended", "error", err)
		}
	}()
	return nil
}

// emptyFetchPause is how long the places of a Fetch that ended early
// without a message stay taken.
const emptyFetchPause = 100 * time.Millisecond

// byteCap is how many messages the free byte budget takes at the recent
// body size (sizeHint): a Fetch asks for no more, so what is pulled and
// waits for the budget stays near it (at least one message, so a body
// larger than the budget still comes in and waits alone). With no size
// seen yet there is no cap.
func (f *fetcher) byteCap() int {
	hint := f.sizeHint.Load()
	if hint <= 0 {
		return f.total
	}
	free := f.w.budget.freeBytes() - f.queuedBytes.Load()
	return int(max(1, min(free/hint, int64(f.total))))
}

// noteSize folds a body's size into sizeHint: the larger of the new size
// and the old hint decayed by 1/8, so a burst of large bodies caps the
// next Fetch at once and small ones lift the cap gradually.
func (f *fetcher) noteSize(n int) {
	old := f.sizeHint.Load()
	f.sizeHint.Store(max(int64(n), old-old/8))
}

// hand gives msg to an intake goroutine, kept alive from now on; after
// Stop it keeps it, kept alive, for stopFetches to give back.
func (f *fetcher) hand(msg jetstream.Msg) {
	w := f.w
	h := &heldMsg{msg: msg, stopBeat: w.heartbeat(msg)}
	select {
	case <-w.stopCh:
		f.keepLate(h)
		return
	default:
	}
	f.queuedBytes.Add(int64(len(msg.Data())))
	select {
	case w.work <- h:
	case <-w.stopCh:
		f.queuedBytes.Add(-int64(len(msg.Data())))
		f.keepLate(h)
	}
}

func (f *fetcher) keepLate(h *heldMsg) {
	f.mu.Lock()
	f.late = append(f.late, h)
	f.mu.Unlock()
}
