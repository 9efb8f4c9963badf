package worker

import (
	"context"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/metric"

	"github.com/aweber-imbi/imbi-worker/internal/deadletter"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Ordered rule chains (wire-contract §A, decision 0009). The continuation
// is the first BeforeSettle hook: on a step's terminal outcome (Ack, a
// DeadLetter with on_failure continue, a Duplicate whose continuation may
// not have gone out) it publishes the next step and waits for its
// pub-ack, so the current message is acked (or its dead letter stored)
// only after the next step is in the stream. A failed publish is an error:
// the settler turns the decision into a Retry and nothing is lost. A
// Retry holds the chain: nothing is published until a terminal outcome.
// The BeforeAck half counts steps, finished and stopped chains.
type chainHook struct {
	pub    letterPublisher
	prefix string
	log    *slog.Logger

	steps    metric.Int64Counter
	finished metric.Int64Counter
	stopped  metric.Int64Counter
}

// chainPublishTimeout bounds one continuation publish.
const chainPublishTimeout = 10 * time.Second

func newChainHook(pub letterPublisher, prefix string, mp metric.MeterProvider, log *slog.Logger) (*chainHook, error) {
	m := mp.Meter("github.com/aweber-imbi/imbi-worker/internal/worker")
	h := &chainHook{pub: pub, prefix: prefix, log: log}
	var err error
	if h.steps, err = m.Int64Counter("imbi_worker.chain.steps", metric.WithUnit("{step}"),
		metric.WithDescription("Chain continuations published: the next step of an ordered rule chain.")); err != nil {
		return nil, err
	}
	if h.finished, err = m.Int64Counter("imbi_worker.chain.finished", metric.WithUnit("{chain}"),
		metric.WithDescription("Chains whose last step was settled (acked or dead-lettered).")); err != nil {
		return nil, err
	}
	if h.stopped, err = m.Int64Counter("imbi_worker.chain.stopped", metric.WithUnit("{chain}"),
		metric.WithDescription("Chains ended early by a dead-lettered step with on_failure stop.")); err != nil {
		return nil, err
	}
	return h, nil
}

// chainAction is what a settle does with the chain.
type chainAction uint8

const (
	chainNone     chainAction = iota
	chainContinue             // publish the next step
	chainFinished             // the last step was settled
	chainStopped              // dead letter with on_failure stop: the rest stays in the letter
)

// chainActionOf decides from the settlement (pure: both hook halves use it).
func chainActionOf(s *Settlement) (chainAction, *wire.Chain) {
	if s.Event == nil || s.Event.Chain == nil {
		return chainNone, nil
	}
	c := s.Event.Chain
	switch s.Decision.Kind {
	case KindAck, KindDuplicate:
	case KindDeadLetter:
		if c.StopsOnFailure() && !chainContinued(s) {
			if len(c.Next) == 0 {
				return chainFinished, c
			}
			return chainStopped, c
		}
	default:
		return chainNone, c // a retry holds the chain
	}
	if chainContinued(s) {
		return chainNone, c // replay of a step whose continuation already went out
	}
	if len(c.Next) == 0 {
		if s.Decision.Kind == KindDuplicate {
			return chainNone, c
		}
		return chainFinished, c
	}
	return chainContinue, c
}

func chainContinued(s *Settlement) bool {
	return deadletter.Get(s.Msg.Headers(), wire.HeaderChainContinued) == "true"
}

// BeforeSettle publishes the continuation and marks the dead letter.
func (h *chainHook) BeforeSettle(ctx context.Context, s *Settlement) error {
	act, c := chainActionOf(s)
	if c == nil {
		return nil
	}
	if s.Letter != nil {
		s.Letter.Header.Set(wire.DLQChainID, c.ID)
		s.Letter.Header.Set(wire.DLQChainPosition, strconv.Itoa(c.Position))
		if chainContinued(s) {
			s.Letter.Header.Set(wire.DLQChainContinued, "true")
		}
	}
	if act != chainContinue {
		return nil
	}
	msg, err := h.nextStep(ctx, s.Event, c)
	if err != nil {
		// The envelope decoder accepted this chain, so this is a bug, not a
		// transient failure: retrying would loop. The chain ends here.
		h.log.Error("chain continuation cannot be built; the chain ends here", "ce_id", s.Event.ID(), "chain_id", c.ID, "error", err)
		return nil
	}
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), chainPublishTimeout)
	defer cancel()
	if _, err := h.pub.PublishMsg(pubCtx, msg); err != nil {
		return fmt.Errorf("chain %s: publish step %d: %w", c.ID, c.Position+1, err)
	}
	if s.Letter != nil {
		s.Letter.Header.Set(wire.DLQChainContinued, "true")
	}
	return nil
}

// BeforeAck counts the chain's progress once the durable step is done.
func (h *chainHook) BeforeAck(ctx context.Context, s *Settlement) error {
	switch act, _ := chainActionOf(s); act {
	case chainContinue:
		h.steps.Add(ctx, 1)
	case chainFinished:
		h.finished.Add(ctx, 1)
	case chainStopped:
		h.stopped.Add(ctx, 1)
	}
	return nil
}

// nextStep builds the next step's message: the same data with rule and
// plugin from next[0], next = the rest, position + 1 (every other member
// kept as sent); CE id <chain.id>.<ordinal>, subject from the handler,
// Nats-Msg-Id = the id, traceparent = the current span (ctx).
func (h *chainHook) nextStep(ctx context.Context, ev *envelope.Message, c *wire.Chain) (*nats.Msg, error) {
	step := c.Next[0]
	hd, err := wire.ParseHandler(step.Rule.Handler)
	if err != nil {
		return nil, err
	}
	var data map[string]jsontext.Value
	if err := jsonv2.Unmarshal(ev.Event.Data(), &data); err != nil {
		return nil, err
	}
	next := wire.Chain{ID: c.ID, Position: c.Position + 1, OnFailure: c.OnFailure, Next: c.Next[1:]}
	if len(next.Next) == 0 {
		next.Next = nil
	}
	for name, v := range map[string]any{"rule": step.Rule, "plugin": step.Plugin, "chain": next} {
		b, err := jsonv2.Marshal(v)
		if err != nil {
			return nil, err
		}
		data[name] = b
	}
	if step.Plugin == nil {
		delete(data, "plugin")
	}
	body, err := jsonv2.Marshal(data, jsonv2.Deterministic(true))
	if err != nil {
		return nil, err
	}
	out := ev.Event.Clone()
	out.SetID(wire.ChainStepID(c.ID, step.Rule.Ordinal))
	out.SetSubject(hd.String())
	out.DataEncoded = body
	mode := publisher.Structured
	if ev.Mode == envelope.Binary {
		mode = publisher.Binary
	}
	return publisher.EncodeMsg(ctx, out, wire.Subject(h.prefix, hd), mode)
}
