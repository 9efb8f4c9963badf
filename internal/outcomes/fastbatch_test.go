package outcomes

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// batchAcker (benchmark only: BenchmarkHookPipeline's fast-batch rows;
// issue 16, docs/performance.md §1 "the second pass") publishes outcome
// events as one open JetStream fast batch
// (nats-server 2.14+, ADR-50) per connection, gap mode "fail": the
// server acknowledges every flow messages with one flow ack
// {"type":"ack","seq":N} meaning batch messages up to N are stored,
// instead of one pub-ack per outcome. A batch whose waits make no
// progress for idle is committed (commit-eob), whose pub-ack stores the
// rest; the next outcome starts a new batch. An outcome counts as stored
// only on a flow ack or pub-ack covering it; any error of a batch fails
// its waits that are not covered. Measured and not taken: it is not
// clearly cheaper than acker. Not production code: no fallback for a
// stream without allow_batched, no republish after a batch error.
type batchAcker struct {
	nc    *nats.Conn
	inbox string // reply subjects are inbox.<batch id>.<flow>.fail.<seq>.<op>.$FI
	base  string // batch ids are base + a counter
	sub   *nats.Subscription
	flow  int
	idle  time.Duration

	mu                sync.Mutex
	n                 uint64     // batches started
	cur               *fastBatch // open batch, nil: the next publish starts one
	batches           map[string]*fastBatch
	flowAcks, pubAcks int // replies read (the benchmark reports them)
}

// fastBatch is one batch's client state.
type fastBatch struct {
	id      string
	prefix  string     // reply prefix: inbox.id.flow.fail.
	seq     uint64     // last batch sequence sent
	acked   uint64     // batch sequences up to acked are stored
	waits   []*ackWait // waits[i] is batch sequence acked+1+i
	subject string     // last outcome subject (the commit's)
	timer   *time.Timer
	mark    uint64 // acked when the timer was armed
	done    bool   // committed or failed: no more publishes
}

// maxBatch bounds one batch's messages (and its waits slice).
const maxBatch = 4096

func newBatchAcker(nc *nats.Conn, flow int, idle time.Duration) (*batchAcker, error) {
	inbox := nc.NewInbox()
	a := &batchAcker{nc: nc, inbox: inbox, base: inbox[strings.LastIndexByte(inbox, '.')+1:], flow: flow, idle: idle,
		batches: map[string]*fastBatch{}}
	sub, err := nc.Subscribe(inbox+".>", a.reply)
	if err != nil {
		return nil, err
	}
	a.sub = sub
	return a, nil
}

// publish appends m to the open batch (starting one if needed).
func (a *batchAcker) publish(m *nats.Msg, _ time.Duration) (*ackWait, error) {
	w := &ackWait{done: make(chan error, 1), sent: time.Now()}
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.cur
	if b == nil || b.seq >= maxBatch {
		if b != nil {
			a.commitLocked(b)
		}
		a.n++
		id := a.base + strconv.FormatUint(a.n, 36)
		b = &fastBatch{id: id, prefix: a.inbox + "." + id + "." + strconv.Itoa(a.flow) + ".fail."}
		a.cur = b
		a.batches[id] = b
	}
	b.seq++
	op := ".1.$FI"
	if b.seq == 1 {
		op = ".0.$FI"
	}
	m.Reply = b.prefix + strconv.FormatUint(b.seq, 10) + op
	b.waits = append(b.waits, w)
	b.subject = m.Subject
	if err := a.nc.PublishMsg(m); err != nil {
		// The batch cannot continue with a gap.
		b.waits = b.waits[:len(b.waits)-1]
		b.seq--
		a.failLocked(b, err)
		return nil, err
	}
	if b.timer == nil {
		b.mark = b.acked
		b.timer = time.AfterFunc(a.idle, func() { a.tick(b) })
	}
	return w, nil
}

// tick: the batch's waits made no progress for idle: commit it.
func (a *batchAcker) tick(b *fastBatch) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b.done {
		return
	}
	if b.acked != b.mark && b.acked != b.seq {
		b.mark = b.acked
		b.timer.Reset(a.idle)
		return
	}
	a.commitLocked(b)
}

// commitLocked ends b with a commit-eob; its pub-ack stores the rest.
func (a *batchAcker) commitLocked(b *fastBatch) {
	if b.done {
		return
	}
	b.done = true
	if a.cur == b {
		a.cur = nil
	}
	m := &nats.Msg{Subject: b.subject, Reply: b.prefix + strconv.FormatUint(b.seq+1, 10) + ".3.$FI"}
	if err := a.nc.PublishMsg(m); err != nil {
		a.failLocked(b, err)
	}
}

func (a *batchAcker) forgetLocked(b *fastBatch) {
	delete(a.batches, b.id)
	if a.cur == b {
		a.cur = nil
	}
	if b.timer != nil {
		b.timer.Stop()
	}
}

// ackLocked: batch sequences up to n are stored.
func (a *batchAcker) ackLocked(b *fastBatch, n uint64) {
	for b.acked < n && len(b.waits) > 0 {
		b.waits[0].done <- nil
		b.waits[0] = nil
		b.waits = b.waits[1:]
		b.acked++
	}
}

// failLocked fails b's waits not stored and drops b.
func (a *batchAcker) failLocked(b *fastBatch, err error) {
	for _, w := range b.waits {
		w.done <- err
	}
	b.waits = nil
	b.done = true
	a.forgetLocked(b)
}

var errBatchIncomplete = errors.New("outcome batch committed without this outcome")

// reply reads a flow ack, a pub-ack or an error of a batch.
func (a *batchAcker) reply(m *nats.Msg) {
	rest := m.Subject[len(a.inbox)+1:]
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		return
	}
	id := rest[:i]
	a.mu.Lock()
	defer a.mu.Unlock()
	b := a.batches[id]
	if b == nil {
		return
	}
	d := m.Data
	switch {
	case bytes.HasPrefix(d, []byte(`{"type":"ack","seq":`)):
		a.flowAcks++
		d = d[len(`{"type":"ack","seq":`):]
		if j := bytes.IndexByte(d, ','); j > 0 {
			if n, err := strconv.ParseUint(string(d[:j]), 10, 64); err == nil {
				a.ackLocked(b, n)
			}
		}
	case bytes.HasPrefix(d, []byte(`{"type":`)):
		// gap or err: informational; the commit's pub-ack follows.
	default:
		if err := ackResult(m); err != nil {
			a.failLocked(b, err)
			return
		}
		a.pubAcks++
		// The batch's pub-ack: count messages stored.
		if j := bytes.LastIndex(d, []byte(`"count":`)); j > 0 {
			c := d[j+len(`"count":`):]
			if k := bytes.IndexByte(c, '}'); k > 0 {
				if n, err := strconv.ParseUint(string(c[:k]), 10, 64); err == nil {
					a.ackLocked(b, n)
				}
			}
		}
		a.failLocked(b, errBatchIncomplete)
	}
}

func (a *batchAcker) close() error { return a.sub.Unsubscribe() }
