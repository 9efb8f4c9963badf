package outcomes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// publisher stores outcome events (jetstream.JetStream). When it has a
// Conn (jetstream.JetStream does), the hook publishes on it with an
// acker of its own instead.
type publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// ackPublisher publishes an outcome and returns the wait for the
// server's acknowledgement (acker; the benchmarks' alternatives).
type ackPublisher interface {
	publish(m *nats.Msg, timeout time.Duration) (*ackWait, error)
}

// DefaultPublishTimeout bounds the wait for one outcome's
// acknowledgement.
const DefaultPublishTimeout = 5 * time.Second

// Config configures a Hook.
type Config struct {
	// Prefix is the outcome subject prefix (imbi.outcomes).
	Prefix string
	// WorkerID is data.worker and the source's tail.
	WorkerID string
	// Timeout bounds one publish (DefaultPublishTimeout).
	Timeout time.Duration
	// Logger gets the publish failures of non-terminal outcomes.
	Logger *slog.Logger

	// jetStreamAcks: publish with jetstream's PublishMsgAsync instead of
	// the acker (the benchmark's baseline).
	jetStreamAcks bool
	// msgID: publish with a Nats-Msg-Id header = the event's id, as
	// before decision 0016 (the benchmark's baseline).
	msgID bool
}

// Hook publishes the outcome event of every settle decision. It is the
// settler's BeforeSettle hook (the outcome is published without waiting,
// alongside the decision's durable step: the done-marker, the deferral
// count) and BeforeAck hook (the outcome is acknowledged by the server
// before the message call; a dead_lettered one is published there, once
// the letter's sequence is known). Register it as
// the LAST BeforeSettle hook: a hook after it could still turn an Ack
// into a Retry after "succeeded" went out under the attempt's id.
//
// A failed publish of a terminal outcome (succeeded, deduplicated,
// dead_lettered) is returned, so the settler retries the message instead
// of acking it: the outcome is at least once (decision 0011). A failed
// publish of retrying or paused is logged and the message is nak'ed
// anyway: the next attempt has an outcome of its own.
type Hook struct {
	js   publisher
	acks ackPublisher // nil: jetstream's PublishMsgAsync
	cfg  Config
	// header is every outcome's header (Content-Type), shared: nats.go
	// only reads a message's header.
	header nats.Header
}

// NewHook returns the outcome hook publishing on js.
func NewHook(js publisher, cfg Config) *Hook {
	if cfg.Prefix == "" {
		cfg.Prefix = wire.DefaultOutcomesPrefix
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultPublishTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	h := &Hook{js: js, cfg: cfg, header: nats.Header{wire.HeaderContentType: []string{wire.ContentTypeCE}}}
	if c, ok := js.(interface{ Conn() *nats.Conn }); ok && !cfg.jetStreamAcks {
		a, err := newAcker(c.Conn())
		if err != nil {
			cfg.Logger.Warn("outcome events use jetstream's acknowledgements", "error", err)
		} else {
			h.acks = a
		}
	}
	return h
}

// Hooks returns the worker hooks with h appended last.
func (h *Hook) Hooks(base worker.Hooks) worker.Hooks {
	base.BeforeSettle = append(base.BeforeSettle, h)
	base.BeforeAck = append(base.BeforeAck, h)
	return base
}

// A publish answered "no responders" (no outcome stream) is sent again
// noStreamRetries times, noStreamRetryWait apart (jetstream's defaults).
const (
	noStreamRetries   = 2
	noStreamRetryWait = 250 * time.Millisecond
)

// errNoAck: the outcome's acknowledgement did not come in time.
var errNoAck = errors.New("outcome event not acknowledged in time")

// message builds the NATS message of s's outcome and returns the
// event's id; nil when the decision gets none. The message has no
// Nats-Msg-Id (decision 0016): no outcome is ever sent again under its id
// to a stream that may have stored it, so the stream's duplicate tracking
// would only cost; readers deduplicate by the CloudEvent id.
func (h *Hook) message(s *worker.Settlement) (*nats.Msg, string, error) {
	ev, subject, ok := Build(s, h.cfg.Prefix, h.cfg.WorkerID)
	if !ok {
		return nil, "", nil
	}
	m := &nats.Msg{Subject: subject, Data: ev.AppendJSON(make([]byte, 0, eventSizeHint)), Header: h.header}
	if h.cfg.msgID {
		m.Header = nats.Header{wire.HeaderContentType: []string{wire.ContentTypeCE}, wire.HeaderMsgID: []string{ev.ID}}
	}
	return m, ev.ID, nil
}

// pending is an outcome publish started in BeforeSettle, with the
// decision kind it was built for.
type pending struct {
	m    *nats.Msg
	id   string                 // the event's id
	w    *ackWait               // the acker's wait, or
	f    jetstream.PubAckFuture // jetstream's future
	kind worker.Kind
}

// publish starts m's publish.
func (h *Hook) publish(m *nats.Msg, id string, kind worker.Kind) (pending, error) {
	p := pending{m: m, id: id, kind: kind}
	var err error
	if h.acks != nil {
		p.w, err = h.acks.publish(m, h.cfg.Timeout)
	} else {
		p.f, err = h.js.PublishMsgAsync(m)
	}
	if err != nil {
		return p, fmt.Errorf("publish outcome: %w", err)
	}
	return p, nil
}

// await waits for p's acknowledgement.
func (h *Hook) await(p pending) error {
	if p.w != nil {
		// Usually the acknowledgement came while the done-marker was
		// written: take it without a timer.
		select {
		case err := <-p.w.done:
			if err == nil {
				return nil
			}
			p.w.done <- err // the one result; the loop below reads it again
		default:
		}
	}
	timer := time.NewTimer(h.cfg.Timeout)
	defer timer.Stop()
	for retry := 0; p.w != nil; retry++ {
		select {
		case err := <-p.w.done:
			if errors.Is(err, errNoStream) && retry < noStreamRetries {
				// As jetstream's PublishMsgAsync does: a stream that is
				// being created or recovered gets a moment.
				select {
				case <-time.After(noStreamRetryWait):
				case <-timer.C:
					return errNoAck
				}
				if p.w, err = h.acks.publish(p.m, h.cfg.Timeout); err != nil {
					return fmt.Errorf("publish outcome: %w", err)
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("publish outcome: %w", err)
			}
			return nil
		case <-timer.C:
			return errNoAck
		}
	}
	select {
	case <-p.f.Ok():
		return nil
	case err := <-p.f.Err():
		return fmt.Errorf("publish outcome: %w", err)
	case <-timer.C:
		return errNoAck
	}
}

// BeforeSettle starts the publish of the decision's outcome; BeforeAck
// waits for its acknowledgement, so the round trip overlaps the
// decision's durable step (the done-marker, the lane's deferral count)
// instead of following it. A dead_lettered outcome is published in
// BeforeAck, once the letter is stored and its sequence known.
func (h *Hook) BeforeSettle(_ context.Context, s *worker.Settlement) error {
	if s.Decision.Kind == worker.KindDeadLetter {
		return nil
	}
	m, id, err := h.message(s)
	if err != nil || m == nil {
		return err
	}
	p, err := h.publish(m, id, s.Decision.Kind)
	if err != nil {
		return h.failed(s, m, id, err)
	}
	s.Pending = p
	return nil
}

// BeforeAck makes sure the decision's outcome is stored.
func (h *Hook) BeforeAck(_ context.Context, s *worker.Settlement) error {
	p, ok := s.Pending.(pending)
	s.Pending = nil
	if !ok || p.kind != s.Decision.Kind {
		// Not started, or the decision changed after the early publish
		// (cannot happen while this is the last BeforeSettle hook; that
		// outcome went out under this attempt's id, which a reader
		// deduplicating by id keeps).
		m, id, err := h.message(s)
		if err != nil || m == nil {
			return err
		}
		if p, err = h.publish(m, id, s.Decision.Kind); err != nil {
			return h.failed(s, m, id, err)
		}
	}
	if err := h.await(p); err != nil {
		return h.failed(s, p.m, p.id, err)
	}
	return nil
}

// failed is the hook's answer to an outcome not stored: the error for a
// terminal outcome (the message is retried, not settled without it),
// nil after a log line for retrying and paused (the message goes back
// anyway and its next attempt has an outcome of its own).
func (h *Hook) failed(s *worker.Settlement, m *nats.Msg, id string, err error) error {
	switch s.Decision.Kind {
	case worker.KindRetry, worker.KindDefer, worker.KindRequeue:
		h.cfg.Logger.Warn("outcome event not stored; the message is retried anyway",
			"subject", m.Subject, "outcome_id", id, "error", err)
		return nil
	}
	return err
}
