package donemarker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Done-marker lookups are batched (wire-contract §6 unchanged: every
// message, first delivery or not, is looked up before its action runs).
// One KV get per message was ≈ 12 µs of server and client CPU, a
// request/reply round trip each (docs/performance.md). The slots hand
// their keys to a few checker goroutines; each asks for all the keys that
// are waiting in ONE JetStream batch direct get (`multi_last`, nats-server
// 2.11+): while requests are out, the next slots' keys queue up, so the
// batch grows with the load and a lone message under light load is looked
// up at once, never held back to fill a batch. More than one checker, so
// that one slow round trip (on a busy host the answer waits for a turn on
// the CPU) does not cap the throughput at one batch per round trip.
//
// Servers that do not know `multi_last` answer 408; the checker then falls
// back to one KV get per key for good (logged once).

const (
	// maxBatch bounds one request (the server's own limit is 1,024
	// subjects; the request stays well under any max_payload).
	maxBatch = 64
	// checkTimeout bounds one lookup request.
	checkTimeout = 5 * time.Second
	// checkers is how many batch requests may be out at once.
	checkers = 4
)

// ErrLookup wraps a failed lookup (no answer, an error status).
var ErrLookup = errors.New("done-marker lookup failed")

// Query is one asker's question; each asker reuses its own.
type Query struct {
	// Key is the done-marker key to look up (Key).
	Key   string
	found bool
	err   error
	ready chan struct{} // capacity 1
}

// NewQuery returns a reusable Query.
func NewQuery() *Query { return &Query{ready: make(chan struct{}, 1)} }

// Checker answers "is this key marked done?" for the worker's intake.
type Checker struct {
	nc         *nats.Conn
	kv         jetstream.KeyValue // the per-key fallback
	apiSubject string             // $JS.API.DIRECT.GET.KV_<bucket>
	kvPrefix   string             // $KV.<bucket>.
	log        *slog.Logger

	reqs   chan *Query
	single atomic.Bool // the server refused multi_last: per-key gets
	// batches and keys count what the checker did (tests, the benchmark's
	// -v output).
	batches, keys atomic.Uint64
	wg            sync.WaitGroup
}

// NewChecker returns a checker of bucket; Start runs it.
func NewChecker(nc *nats.Conn, kv jetstream.KeyValue, bucket string, log *slog.Logger) *Checker {
	return &Checker{
		nc: nc, kv: kv, log: log,
		apiSubject: "$JS.API.DIRECT.GET.KV_" + bucket,
		kvPrefix:   SubjectPrefix(bucket),
		reqs:       make(chan *Query, maxBatch),
	}
}

// lookupConn is one checker goroutine's subscription: every request it
// sends has its own reply subject under inbox, so a late answer to a
// timed-out request is recognised and dropped.
type lookupConn struct {
	sub   *nats.Subscription
	inbox string
	n     uint64
}

// IsDone asks the checker about q.Key and waits for the answer.
func (c *Checker) IsDone(q *Query) (bool, error) {
	c.reqs <- q
	<-q.ready
	return q.found, q.err
}

// Start runs the checker goroutines; they end after Close.
func (c *Checker) Start() error {
	conns := make([]*lookupConn, 0, checkers)
	for range checkers {
		lc := &lookupConn{inbox: c.nc.NewRespInbox()}
		sub, err := c.nc.SubscribeSync(lc.inbox + ".*")
		if err != nil {
			for _, started := range conns {
				_ = started.sub.Unsubscribe()
			}
			return fmt.Errorf("done-marker lookup subscription: %w", err)
		}
		// A batch answer is at most maxBatch+1 small messages; the
		// default pending limits are far above that.
		lc.sub = sub
		conns = append(conns, lc)
	}
	// Only once every subscription exists: a failed start leaves no
	// goroutine behind.
	c.wg.Add(len(conns))
	for _, lc := range conns {
		go c.run(lc)
	}
	return nil
}

// Close ends the checker goroutines once the queued questions are
// answered; call it after the last IsDone returned, then Wait.
func (c *Checker) Close() { close(c.reqs) }

// Wait returns once every checker goroutine has ended (after Close).
func (c *Checker) Wait() { c.wg.Wait() }

func (c *Checker) run(lc *lookupConn) {
	defer c.wg.Done()
	defer func() { _ = lc.sub.Unsubscribe() }()
	batch := make([]*Query, 0, maxBatch)
	for q := range c.reqs {
		batch = append(batch[:0], q)
	fill:
		for len(batch) < maxBatch {
			select {
			case q, ok := <-c.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		c.lookup(lc, batch)
		for _, q := range batch {
			q.ready <- struct{}{}
		}
	}
}

func (c *Checker) lookup(lc *lookupConn, batch []*Query) {
	for _, q := range batch {
		q.found, q.err = false, nil
	}
	c.batches.Add(1)
	c.keys.Add(uint64(len(batch)))
	if !c.single.Load() {
		err := c.lookupMulti(lc, batch)
		if !errors.Is(err, errMultiUnsupported) {
			if err != nil {
				for _, q := range batch {
					q.err = err
				}
			}
			return
		}
		if c.single.CompareAndSwap(false, true) {
			c.log.Warn("NATS server does not support batched direct gets (multi_last, nats-server 2.11+); looking done-markers up one by one", "error", err)
		}
	}
	for _, q := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		_, err := c.kv.Get(ctx, q.Key)
		cancel()
		switch {
		case err == nil:
			q.found = true
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			q.err = err
		}
	}
}

// errMultiUnsupported: the server did not understand the batch request.
var errMultiUnsupported = errors.New("batched direct get not supported")

// lookupMulti sends one batch direct get for every key in batch and reads
// the answer: the last message of each key that has one, then an EOB
// status; or a single 404 "No Results" when none has.
func (c *Checker) lookupMulti(lc *lookupConn, batch []*Query) error {
	lc.n++
	reply := lc.inbox + "." + strconv.FormatUint(lc.n, 10)
	// Keys are valid KV keys ([-/_=.a-zA-Z0-9], Key): no JSON escaping.
	body := make([]byte, 0, 16+len(batch)*(len(c.kvPrefix)+48))
	body = append(body, `{"multi_last":[`...)
	for i, q := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, '"')
		body = append(body, c.kvPrefix...)
		body = append(body, q.Key...)
		body = append(body, '"')
	}
	body = append(body, "]}"...)
	if err := c.nc.PublishRequest(c.apiSubject, reply, body); err != nil {
		return fmt.Errorf("%w: %v", ErrLookup, err)
	}
	deadline := time.Now().Add(checkTimeout)
	for {
		msg, err := lc.sub.NextMsg(time.Until(deadline))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("%w: no answer in %s", ErrLookup, checkTimeout)
			}
			return fmt.Errorf("%w: %v", ErrLookup, err)
		}
		if msg.Subject != reply {
			continue // the late answer of an earlier, timed-out request
		}
		status := msg.Header.Get("Status")
		switch {
		case status == "":
			c.markFound(batch, msg)
		case status == "204": // end of batch
			return nil
		case status == "404" && msg.Header.Get("Description") == "No Results":
			return nil // none of the keys has a marker
		case status == "408":
			// Bad or empty request: a server that ignores multi_last.
			return fmt.Errorf("%w: %s %s", errMultiUnsupported, status, msg.Header.Get("Description"))
		case status == "503":
			return fmt.Errorf("%w: no responders (is the done bucket's stream missing or without direct get?)", ErrLookup)
		default:
			return fmt.Errorf("%w: status %s %s", ErrLookup, status, msg.Header.Get("Description"))
		}
	}
}

// markFound marks the keys whose subject msg is the last message of,
// unless it is a delete or purge tombstone (as the KV API reads it).
func (c *Checker) markFound(batch []*Query, msg *nats.Msg) {
	switch msg.Header.Get("KV-Operation") {
	case "DEL", "PURGE":
		return
	}
	subj := msg.Header.Get(jetstream.SubjectHeader)
	if len(subj) <= len(c.kvPrefix) || subj[:len(c.kvPrefix)] != c.kvPrefix {
		return
	}
	key := subj[len(c.kvPrefix):]
	for _, q := range batch {
		if q.Key == key {
			q.found = true
		}
	}
}
