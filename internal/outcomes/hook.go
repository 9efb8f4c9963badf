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

// publisher stores outcome events (jetstream.JetStream).
type publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
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
	js  publisher
	cfg Config
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
	return &Hook{js: js, cfg: cfg}
}

// Hooks returns the worker hooks with h appended last.
func (h *Hook) Hooks(base worker.Hooks) worker.Hooks {
	base.BeforeSettle = append(base.BeforeSettle, h)
	base.BeforeAck = append(base.BeforeAck, h)
	return base
}

// errNoAck: the outcome's acknowledgement did not come in time.
var errNoAck = errors.New("outcome event not acknowledged in time")

// message builds the NATS message of s's outcome; nil when the decision
// gets none.
func (h *Hook) message(s *worker.Settlement) (*nats.Msg, error) {
	ev, subject, ok := Build(s, h.cfg.Prefix, h.cfg.WorkerID)
	if !ok {
		return nil, nil
	}
	m := &nats.Msg{Subject: subject, Data: ev.AppendJSON(make([]byte, 0, eventSizeHint)), Header: nats.Header{
		wire.HeaderContentType: []string{wire.ContentTypeCE},
		wire.HeaderMsgID:       []string{ev.ID},
	}}
	return m, nil
}

// pending is an outcome publish started in BeforeSettle, with the
// decision kind it was built for.
type pending struct {
	jetstream.PubAckFuture
	kind worker.Kind
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
	m, err := h.message(s)
	if err != nil || m == nil {
		return err
	}
	f, err := h.js.PublishMsgAsync(m)
	if err != nil {
		return h.failed(s, m, fmt.Errorf("publish outcome: %w", err))
	}
	s.Pending = pending{PubAckFuture: f, kind: s.Decision.Kind}
	return nil
}

// BeforeAck makes sure the decision's outcome is stored.
func (h *Hook) BeforeAck(ctx context.Context, s *worker.Settlement) error {
	if p, ok := s.Pending.(pending); ok {
		s.Pending = nil
		if p.kind == s.Decision.Kind {
			if err := h.await(p); err != nil {
				return h.failed(s, p.Msg(), err)
			}
			return nil
		}
		// The decision changed after the early publish (cannot happen
		// while this is the last BeforeSettle hook); the outcome went
		// out under this attempt's id and the dedup window keeps it.
	}
	m, err := h.message(s)
	if err != nil || m == nil {
		return err
	}
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.Timeout)
	defer cancel()
	if _, err = h.js.PublishMsg(pubCtx, m); err != nil {
		return h.failed(s, m, fmt.Errorf("publish outcome: %w", err))
	}
	return nil
}

// failed is the hook's answer to an outcome not stored: the error for a
// terminal outcome (the message is retried, not settled without it),
// nil after a log line for retrying and paused (the message goes back
// anyway and its next attempt has an outcome of its own).
func (h *Hook) failed(s *worker.Settlement, m *nats.Msg, err error) error {
	switch s.Decision.Kind {
	case worker.KindRetry, worker.KindDefer, worker.KindRequeue:
		subject, id := "", ""
		if m != nil {
			subject, id = m.Subject, m.Header.Get(wire.HeaderMsgID)
		}
		h.cfg.Logger.Warn("outcome event not stored; the message is retried anyway",
			"subject", subject, "outcome_id", id, "error", err)
		return nil
	}
	return err
}

// await waits for an early publish's acknowledgement.
func (h *Hook) await(f jetstream.PubAckFuture) error {
	select {
	case <-f.Ok():
		return nil
	default:
	}
	timer := time.NewTimer(h.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publish outcome: %w", err)
	case <-timer.C:
		return errNoAck
	}
}
