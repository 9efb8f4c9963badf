package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
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
	// maxDoneBatch bounds one request (the server's own limit is 1,024
	// subjects; the request stays well under any max_payload).
	maxDoneBatch = 64
	// doneCheckTimeout bounds one lookup request.
	doneCheckTimeout = 5 * time.Second
	// doneCheckers is how many batch requests may be out at once.
	doneCheckers = 4
)

// errDoneCheck wraps a lookup the server answered with an error status.
var errDoneCheck = errors.New("done-marker lookup failed")

// doneCheck is one slot's question; each slot reuses its own.
type doneCheck struct {
	key   string // done-marker key (doneKey)
	found bool
	err   error
	ready chan struct{} // capacity 1
}

func newDoneCheck() *doneCheck { return &doneCheck{ready: make(chan struct{}, 1)} }

// doneChecker answers "is this key marked done?" for the slots.
type doneChecker struct {
	nc         *nats.Conn
	kv         jetstream.KeyValue // the per-key fallback
	apiSubject string             // $JS.API.DIRECT.GET.KV_<bucket>
	kvPrefix   string             // $KV.<bucket>.
	log        *slog.Logger

	reqs   chan *doneCheck
	single atomic.Bool // the server refused multi_last: per-key gets
	// batches and keys count what the checker did (tests, the benchmark's
	// -v output).
	batches, keys atomic.Uint64
}

func newDoneChecker(nc *nats.Conn, kv jetstream.KeyValue, bucket string, log *slog.Logger) *doneChecker {
	return &doneChecker{
		nc: nc, kv: kv, log: log,
		apiSubject: "$JS.API.DIRECT.GET.KV_" + bucket,
		kvPrefix:   doneSubjectPrefix(bucket),
		reqs:       make(chan *doneCheck, maxDoneBatch),
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

// isDone asks the checker about q.key and waits for the answer.
func (c *doneChecker) isDone(q *doneCheck) (bool, error) {
	c.reqs <- q
	<-q.ready
	return q.found, q.err
}

// start runs the checker goroutines; they end when reqs is closed (after
// the last slot ended).
func (c *doneChecker) start() error {
	conns := make([]*lookupConn, 0, doneCheckers)
	for range doneCheckers {
		lc := &lookupConn{inbox: c.nc.NewRespInbox()}
		sub, err := c.nc.SubscribeSync(lc.inbox + ".*")
		if err != nil {
			for _, started := range conns {
				_ = started.sub.Unsubscribe()
			}
			return fmt.Errorf("done-marker lookup subscription: %w", err)
		}
		// A batch answer is at most maxDoneBatch+1 small messages; the
		// default pending limits are far above that.
		lc.sub = sub
		conns = append(conns, lc)
	}
	// Only once every subscription exists: a failed start leaves no
	// goroutine behind.
	for _, lc := range conns {
		go c.run(lc)
	}
	return nil
}

func (c *doneChecker) run(lc *lookupConn) {
	defer func() { _ = lc.sub.Unsubscribe() }()
	batch := make([]*doneCheck, 0, maxDoneBatch)
	for q := range c.reqs {
		batch = append(batch[:0], q)
	fill:
		for len(batch) < maxDoneBatch {
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

func (c *doneChecker) lookup(lc *lookupConn, batch []*doneCheck) {
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
		ctx, cancel := context.WithTimeout(context.Background(), doneCheckTimeout)
		_, err := c.kv.Get(ctx, q.key)
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
func (c *doneChecker) lookupMulti(lc *lookupConn, batch []*doneCheck) error {
	lc.n++
	reply := lc.inbox + "." + strconv.FormatUint(lc.n, 10)
	// Keys are valid KV keys ([-/_=.a-zA-Z0-9], doneKey): no JSON escaping.
	body := make([]byte, 0, 16+len(batch)*(len(c.kvPrefix)+48))
	body = append(body, `{"multi_last":[`...)
	for i, q := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, '"')
		body = append(body, c.kvPrefix...)
		body = append(body, q.key...)
		body = append(body, '"')
	}
	body = append(body, "]}"...)
	if err := c.nc.PublishRequest(c.apiSubject, reply, body); err != nil {
		return fmt.Errorf("%w: %v", errDoneCheck, err)
	}
	deadline := time.Now().Add(doneCheckTimeout)
	for {
		msg, err := lc.sub.NextMsg(time.Until(deadline))
		if err != nil {
			if errors.Is(err, nats.ErrTimeout) {
				return fmt.Errorf("%w: no answer in %s", errDoneCheck, doneCheckTimeout)
			}
			return fmt.Errorf("%w: %v", errDoneCheck, err)
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
			return fmt.Errorf("%w: no responders (is the done bucket's stream missing or without direct get?)", errDoneCheck)
		default:
			return fmt.Errorf("%w: status %s %s", errDoneCheck, status, msg.Header.Get("Description"))
		}
	}
}

// markFound marks the keys whose subject msg is the last message of,
// unless it is a delete or purge tombstone (as the KV API reads it).
func (c *doneChecker) markFound(batch []*doneCheck, msg *nats.Msg) {
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
		if q.key == key {
			q.found = true
		}
	}
}
