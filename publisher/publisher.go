package publisher

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config tunes a Publisher. The zero value is valid; each default is in the
// field's comment.
type Config struct {
	// SubjectPrefix of the work subjects. Default "imbi.actions".
	SubjectPrefix string
	// Mode of every message. Default Structured.
	Mode Mode
	// MaxPending bounds the asynchronously published messages not yet
	// acknowledged; PublishAsync blocks (honouring its context) while the
	// bound is reached, so a load generator cannot outrun the server and
	// grow without limit. Default 4096.
	MaxPending int
	// AckTimeout is how long an asynchronous publish waits for its ack
	// before it counts as failed. Default 10 s.
	AckTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxPending <= 0 {
		c.MaxPending = 4096
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 10 * time.Second
	}
}

// Stats counts asynchronous publishes since the Publisher was created.
type Stats struct {
	// Published is the number of messages handed to the server.
	Published uint64
	// Acked counts server acks, duplicates included.
	Acked uint64
	// Duplicates counts acks for a Nats-Msg-Id already in the stream's
	// duplicate window: the server stored nothing new.
	Duplicates uint64
	// Failed counts publishes that got an error instead of an ack.
	Failed uint64
}

// Publisher publishes CloudEvents to JetStream. It is safe for concurrent
// use. Create it with New and Close it when done.
type Publisher struct {
	cfg Config
	js  jetstream.JetStream

	published, acked, duplicates, failed atomic.Uint64

	errMu    sync.Mutex
	firstErr error
	closed   atomic.Bool
}

// New returns a Publisher on nc. The connection stays the caller's.
func New(nc *nats.Conn, cfg Config) (*Publisher, error) {
	cfg.setDefaults()
	p := &Publisher{cfg: cfg}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		return nil, err
	}
	p.js = js
	return p, nil
}

func (p *Publisher) onAck(_ jetstream.JetStream, _ *nats.Msg, ack *jetstream.PubAck) {
	p.acked.Add(1)
	if ack.Duplicate {
		p.duplicates.Add(1)
	}
}

func (p *Publisher) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	p.failed.Add(1)
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if p.firstErr == nil {
		p.firstErr = &PublishError{Subject: m.Subject, ID: m.Header.Get("Nats-Msg-Id"), Err: err}
	}
}

// Encode builds the NATS message of m (NewEvent, then EncodeMsg to its work
// subject in the configured mode).
func (p *Publisher) Encode(ctx context.Context, m Message) (*nats.Msg, error) {
	ev, err := NewEvent(m)
	if err != nil {
		return nil, err
	}
	return p.EncodeEvent(ctx, ev)
}

// EncodeEvent is EncodeMsg to the event's work subject in the configured
// mode.
func (p *Publisher) EncodeEvent(ctx context.Context, ev event.Event) (*nats.Msg, error) {
	subject, err := SubjectFor(p.cfg.SubjectPrefix, ev)
	if err != nil {
		return nil, err
	}
	return EncodeMsg(ctx, ev, subject, p.cfg.Mode)
}

// Publish publishes m and waits for the server's ack. A duplicate (same CE
// id within the duplicate window) is acked with PubAck.Duplicate set, not an
// error.
func (p *Publisher) Publish(ctx context.Context, m Message) (*jetstream.PubAck, error) {
	msg, err := p.Encode(ctx, m)
	if err != nil {
		return nil, err
	}
	return p.PublishMsg(ctx, msg)
}

// PublishEvent publishes an already built event and waits for the ack.
func (p *Publisher) PublishEvent(ctx context.Context, ev event.Event) (*jetstream.PubAck, error) {
	msg, err := p.EncodeEvent(ctx, ev)
	if err != nil {
		return nil, err
	}
	return p.PublishMsg(ctx, msg)
}

// PublishMsg publishes an encoded message (see EncodeMsg) and waits for the
// ack. Errors are *PublishError.
func (p *Publisher) PublishMsg(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		return nil, &PublishError{Subject: msg.Subject, ID: msg.Header.Get("Nats-Msg-Id"), Err: err}
	}
	return ack, nil
}

// PublishAsync publishes m without waiting for its ack; Wait collects the
// outcome. It blocks while Config.MaxPending messages are unacknowledged.
func (p *Publisher) PublishAsync(ctx context.Context, m Message) (jetstream.PubAckFuture, error) {
	msg, err := p.Encode(ctx, m)
	if err != nil {
		return nil, err
	}
	return p.PublishMsgAsync(ctx, msg)
}

// PublishMsgAsync is PublishAsync for an encoded message.
func (p *Publisher) PublishMsgAsync(ctx context.Context, msg *nats.Msg) (jetstream.PubAckFuture, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	for {
		// A short stall wait keeps ctx responsive: the client returns
		// ErrTooManyStalledMsgs when the pending bound stays full, and we
		// try again until ctx ends.
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(100*time.Millisecond))
		if err == nil {
			p.published.Add(1)
			return f, nil
		}
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return nil, &PublishError{Subject: msg.Subject, ID: msg.Header.Get("Nats-Msg-Id"), Err: err}
		}
		if ctx.Err() != nil {
			return nil, &PublishError{Subject: msg.Subject, ID: msg.Header.Get("Nats-Msg-Id"), Err: ctx.Err()}
		}
	}
}

// Pending is the number of asynchronous publishes awaiting their ack.
func (p *Publisher) Pending() int { return p.js.PublishAsyncPending() }

// Wait blocks until every asynchronous publish so far is acknowledged or
// failed, or ctx ends. It returns the counts and the first publish error
// (a *PublishError), if any.
func (p *Publisher) Wait(ctx context.Context) (Stats, error) {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return p.Stats(), ctx.Err()
	}
	p.errMu.Lock()
	defer p.errMu.Unlock()
	return p.Stats(), p.firstErr
}

// Stats returns the asynchronous publish counts so far.
func (p *Publisher) Stats() Stats {
	return Stats{
		Published:  p.published.Load(),
		Acked:      p.acked.Load(),
		Duplicates: p.duplicates.Load(),
		Failed:     p.failed.Load(),
	}
}

// Close stops the publisher; pending asynchronous publishes are abandoned
// (call Wait first to keep them). The NATS connection is not closed.
func (p *Publisher) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.js.CleanupPublisher()
}
