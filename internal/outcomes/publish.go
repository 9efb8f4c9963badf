package outcomes

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// acker publishes outcome events with reply subjects of its own and reads
// the stream's acknowledgement without decoding it unless it is an error.
// It replaces jetstream's PublishMsgAsync on the hook's hot path, whose
// future bookkeeping and pub-ack JSON decoding were a few µs per message
// (docs/performance.md §1). The acknowledgement is still the server's:
// an outcome counts as stored only on a reply naming a stream.
type acker struct {
	nc     *nats.Conn
	prefix string // <inbox>. ; a reply subject is prefix + token
	sub    *nats.Subscription

	mu   sync.Mutex
	next uint64
	wait map[uint64]*ackWait
}

// ackWait is one publish waiting for its acknowledgement; done gets one
// result (nil: stored).
type ackWait struct {
	done chan error
	sent time.Time
}

// Errors of an outcome publish.
var (
	// errNoStream: no stream listens on the outcome subject.
	errNoStream = errors.New("no outcome stream answered")
	// errBadAck: the reply was neither an acknowledgement nor an error.
	errBadAck = errors.New("invalid outcome stream acknowledgement")
)

// ackStreamError is the outcome stream's refusal of a publish.
type ackStreamError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (e *ackStreamError) Error() string {
	return fmt.Sprintf("outcome stream: %s (code %d, err_code %d)", e.Description, e.Code, e.ErrCode)
}

// sweepEvery: every so many publishes, waits whose acknowledgement never
// came and that nobody awaited (the decision was abandoned) are dropped.
const sweepEvery = 1024

// newAcker subscribes to a reply inbox of its own on nc.
func newAcker(nc *nats.Conn) (*acker, error) {
	a := &acker{nc: nc, prefix: nc.NewInbox() + ".", wait: map[uint64]*ackWait{}}
	sub, err := nc.Subscribe(a.prefix+"*", a.reply)
	if err != nil {
		return nil, fmt.Errorf("outcome acknowledgement inbox: %w", err)
	}
	a.sub = sub
	return a, nil
}

// publish sends m (its Reply is set here) and returns the wait for its
// acknowledgement; timeout bounds how long an unawaited wait is kept.
func (a *acker) publish(m *nats.Msg, timeout time.Duration) (*ackWait, error) {
	w := &ackWait{done: make(chan error, 1), sent: time.Now()}
	a.mu.Lock()
	a.next++
	id := a.next
	a.wait[id] = w
	if id%sweepEvery == 0 {
		for k, v := range a.wait {
			if w.sent.Sub(v.sent) > 2*timeout {
				delete(a.wait, k)
			}
		}
	}
	a.mu.Unlock()
	m.Reply = a.prefix + strconv.FormatUint(id, 10)
	if err := a.nc.PublishMsg(m); err != nil {
		a.forget(id)
		return nil, err
	}
	return w, nil
}

func (a *acker) forget(id uint64) {
	a.mu.Lock()
	delete(a.wait, id)
	a.mu.Unlock()
}

// reply hands an acknowledgement to its wait.
func (a *acker) reply(m *nats.Msg) {
	id, err := strconv.ParseUint(m.Subject[len(a.prefix):], 10, 64)
	if err != nil {
		return
	}
	a.mu.Lock()
	w := a.wait[id]
	delete(a.wait, id)
	a.mu.Unlock()
	if w != nil {
		w.done <- ackResult(m)
	}
}

// ackResult reads a stream's reply to a publish: nil for an
// acknowledgement (a duplicate's too: the outcome is stored).
func ackResult(m *nats.Msg) error {
	if len(m.Data) == 0 {
		if m.Header.Get("Status") == "503" {
			return errNoStream
		}
		return errBadAck
	}
	if bytes.Contains(m.Data, []byte(`"error"`)) {
		var r struct {
			Error *ackStreamError `json:"error"`
		}
		if json.Unmarshal(m.Data, &r) == nil && r.Error != nil {
			return r.Error
		}
		return errBadAck
	}
	if !bytes.HasPrefix(m.Data, []byte(`{"stream":"`)) {
		return errBadAck
	}
	return nil
}

// close stops the inbox subscription.
func (a *acker) close() error { return a.sub.Unsubscribe() }
