package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// The settler makes every terminal decision about a delivery, once: ack,
// nak (with or without a delay), dead letter, or leave it for redelivery.
// Nothing else in the worker calls Ack, Nak, NakWithDelay or Term on a
// message, or ends a delivery's span. A decision is a value (Decision);
// the settler carries it out in a fixed order:
//
//	Settle(d, decision)      once per delivery (a second call is refused and logged)
//	  1. BeforeSettle hooks  in order; may publish (a chain's next step, v1.1 §A)
//	                         and add headers to the dead letter; an error
//	                         turns the decision into a Retry
//	  2. durable step        Ack: the done-marker is written (asynchronously; the
//	                         rest runs once the server stored it, or Abandon when
//	                         the worker stops first). DeadLetter: the letter is
//	                         published and acknowledged (else Retry).
//	  3. BeforeAck hooks     in order; see the stored letter (an outcome event,
//	                         v1.1 §C, is published here); an error turns the
//	                         decision into a Retry
//	  4. the message call    Ack | Nak | NakWithDelay | nothing (Abandon)
//	  5. metrics, span, log, span.End
//
// A rate limit or a paused lane (v1.1 §B) is a Defer decision: its durable
// step records the deferral (and a rate limit's lane pause) in the lanes
// bucket, so the NakWithDelay is not counted as an attempt (lanes.go).

// Kind is what a decision does with the message.
type Kind uint8

// Decision kinds.
const (
	// KindAck: the action succeeded. With idempotency on the done-marker is
	// stored first (wire-contract §6), then the message is acked.
	KindAck Kind = iota + 1
	// KindDuplicate: the done-marker was found; acked without running.
	KindDuplicate
	// KindRetry: a failed attempt; NakWithDelay(Delay).
	KindRetry
	// KindDefer: NakWithDelay(Delay) that is not a failure and uses no
	// attempt: a rate-limited result or a paused lane (v1.1 §B, lanes.go).
	KindDefer
	// KindRequeue: Nak at once, not a failure: shutdown gave the message
	// back before it started, or cut its action off.
	KindRequeue
	// KindDeadLetter: publish the dead letter (Reason, LastReason,
	// ErrorText); ack once the DLQ stream acknowledged it.
	KindDeadLetter
	// KindAbandon: no call at all; the server redelivers after AckWait (a
	// done-marker still unwritten when the worker stops).
	KindAbandon
)

func (k Kind) String() string {
	switch k {
	case KindAck:
		return "ack"
	case KindDuplicate:
		return "duplicate"
	case KindRetry:
		return "retry"
	case KindDefer:
		return "defer"
	case KindRequeue:
		return "requeue"
	case KindDeadLetter:
		return "dead_letter"
	case KindAbandon:
		return "abandon"
	}
	return "unknown"
}

// outcome is the imbi_worker.messages.settled label of a kind.
func (k Kind) outcome() string {
	switch k {
	case KindAck:
		return outcomeAck
	case KindDuplicate:
		return outcomeDuplicate
	case KindRetry:
		return outcomeRetry
	case KindDefer:
		return outcomeDeferred
	case KindRequeue:
		return outcomeRequeued
	case KindDeadLetter:
		return outcomeDeadLetter
	}
	return outcomeAbandoned
}

// Decision is one settle decision.
type Decision struct {
	Kind Kind
	// Reason: why a Retry, Defer or DeadLetter (wire-contract §4 code).
	Reason wire.Reason
	// LastReason: a max_attempts dead letter's last failure.
	LastReason wire.Reason
	// ErrorText is the failure, secrets redacted, ≤ wire.DLQErrorMaxBytes.
	ErrorText string
	// Delay before redelivery (Retry, Defer).
	Delay time.Duration
	// PauseUntil (Defer of a rate-limited result): pause the message's
	// lane until then.
	PauseUntil time.Time
	// Result is the action's result when dispatch ran (zero otherwise):
	// its duration, whether it ran, timed out or was abandoned.
	Result dispatch.Result
	// At is when the decision was made (set by Settle when zero).
	At time.Time
}

// Settlement is what hooks see of a delivery being settled. Hooks must
// not call Ack, Nak, NakWithDelay or Term on Msg: the settler does, once.
// With idempotency on, the BeforeAck hooks of an Ack run on the
// done-marker writer's goroutine (after the marker is stored), one message
// at a time: a hook that publishes should do so asynchronously or quickly.
type Settlement struct {
	// Decision is the decision as it stands; hooks read it (a hook that
	// fails turns it into a Retry, it does not edit it).
	Decision Decision
	Msg      jetstream.Msg
	// Meta is the message's JetStream metadata (delivery count, sequences).
	Meta *jetstream.MsgMetadata
	// Event is the decoded CloudEvent, nil when the bytes are not one.
	Event *envelope.Message
	// Handler is the metric label: the canonical form (wire.ParseHandler)
	// of the event's handler when the worker knows it, else "_unknown".
	Handler string
	// Attempt is the delivery count of this delivery.
	Attempt int
	// Deferred is how many earlier deliveries were deferrals (v1.1 §B):
	// the attempt number is Attempt − Deferred.
	Deferred int
	// Letter (DeadLetter) is the dead letter: BeforeSettle hooks may add
	// headers; LetterAck is the DLQ stream's acknowledgement, set for the
	// BeforeAck hooks.
	Letter    *nats.Msg
	LetterAck *jetstream.PubAck
	// Pending is a publish a BeforeSettle hook started without waiting,
	// for its BeforeAck hook to await (an outcome event, v1.1 §C, travels
	// alongside the done-marker instead of after it); its type is the
	// hook's own.
	Pending any
}

// BeforeSettleHook runs before the decision's durable step (v1.1 §A: a
// chain's next step is published here). An error turns the decision into
// a Retry: nothing is stored or acked.
type BeforeSettleHook interface {
	BeforeSettle(ctx context.Context, s *Settlement) error
}

// BeforeAckHook runs after the durable step, right before the message
// call (v1.1 §C: the outcome event is published and acknowledged here).
// An error turns the decision into a Retry.
type BeforeAckHook interface {
	BeforeAck(ctx context.Context, s *Settlement) error
}

// Hooks are the settler's ordered hook lists.
type Hooks struct {
	BeforeSettle []BeforeSettleHook
	BeforeAck    []BeforeAckHook
}

// letterPublisher stores dead letters (jetstream.JetStream).
type letterPublisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// markerStore writes a done-marker before the ack: it calls the job's
// Stored once, true when the server acknowledged the marker, false when
// the worker stops first (the message is then left for redelivery). It
// keeps the message in progress while it retries.
type markerStore interface {
	Store(j donemarker.Job)
}

// settler carries out settle decisions.
type settler struct {
	cfg     *Config
	log     *slog.Logger
	metrics *metrics
	letters letterPublisher
	markers markerStore // nil: idempotency off
	lanes   laneStore   // nil: no lanes bucket (rate limits are plain retries)
	hooks   Hooks
}

// errSettledTwice is logged when a second decision reaches a settled
// delivery.
var errSettledTwice = errors.New("delivery already settled")

// decide maps a dispatch result to a decision (wire-contract §4).
func (s *settler) decide(d *delivery, res dispatch.Result, draining bool) Decision {
	dec := Decision{Result: res, Reason: res.Reason, ErrorText: res.ErrorText}
	switch res.Class {
	case dispatch.Success:
		dec.Kind = KindAck
	case dispatch.Retryable:
		switch {
		case res.Reason == wire.ReasonRateLimited && s.lanes != nil && d.meta != nil:
			dec = s.decideRateLimited(d, dec, res) // lanes.go
		case draining && errors.Is(res.Err, context.Canceled):
			dec.Kind = KindRequeue // cut off by shutdown: another replica, at once
		case d.attempt >= s.cfg.MaxAttempts:
			dec.Kind, dec.Reason, dec.LastReason = KindDeadLetter, wire.ReasonMaxAttempts, res.Reason
		default:
			dec.Kind, dec.Delay = KindRetry, s.retryDelay(d.attempt, res)
		}
	default:
		dec.Kind = KindDeadLetter
	}
	return dec
}

// retryDelay: the rate limit's retry-after, else backoff.
func (s *settler) retryDelay(attempt int, res dispatch.Result) time.Duration {
	if res.Reason == wire.ReasonRateLimited && res.RetryAfter > 0 {
		return res.RetryAfter
	}
	return backoff(s.cfg.BackoffBase, s.cfg.BackoffMax, attempt)
}

// hookFailed turns dec into a retry after a hook failed.
func (s *settler) hookFailed(d *delivery, dec Decision, phase string, err error) Decision {
	d.logger().Warn("settle hook failed; retrying the message", "phase", phase, "decision", dec.Kind, "error", err)
	switch dec.Kind {
	case KindRetry, KindDefer, KindRequeue, KindAbandon:
		return dec // already not acked
	}
	return Decision{Kind: KindRetry, Reason: wire.ReasonUnavailable, Result: dec.Result, At: dec.At,
		ErrorText: dispatch.RedactText(phase+" hook: "+err.Error(), nil),
		Delay:     backoff(s.cfg.BackoffBase, s.cfg.BackoffMax, d.attempt)}
}

// Settle carries out dec for d, once.
func (s *settler) Settle(ctx context.Context, d *delivery, dec Decision) {
	if !d.settled.CompareAndSwap(false, true) {
		d.logger().Error("second settle decision ignored", "error", errSettledTwice, "decision", dec.Kind)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			s.settlePanic(ctx, d, p)
		}
	}()
	if dec.At.IsZero() {
		dec.At = time.Now()
	}
	d.st = Settlement{Decision: dec, Msg: d.msg, Meta: d.meta, Event: d.ev, Handler: d.handler,
		Attempt: d.deliveries, Deferred: d.deferred}
	st := &d.st
	if dec.Kind == KindDeadLetter {
		st.Letter = s.letter(d, dec)
	}
	if dec.Kind != KindAbandon {
		for _, h := range s.hooks.BeforeSettle {
			err, p := callHook(func() error { return h.BeforeSettle(ctx, st) })
			if p != nil {
				s.panicked(d, st, "before-settle hook", p) // published below
				break
			}
			if err != nil {
				st.Decision, st.Letter = s.hookFailed(d, st.Decision, "before-settle", err), nil
				break
			}
		}
	}
	switch st.Decision.Kind {
	case KindAck:
		if s.markers != nil && d.doneKey != "" {
			d.s, d.settleCtx = s, ctx
			s.markers.Store(d) // continues in markerStored
			return
		}
	case KindDeadLetter:
		s.publishLetter(ctx, d, st)
	case KindDefer:
		s.recordDeferral(ctx, d, st.Decision) // lanes.go
	case KindRequeue:
		if !st.Decision.Result.Ran {
			// Given back at shutdown before it started: no attempt
			// (countGiveBack says why).
			s.recordDeferral(ctx, d, st.Decision)
		}
	}
	s.finish(ctx, d, st)
}

// markerStored continues an Ack once the done-marker store is done with
// it: stored, or given up because the worker stops (Abandon).
func (s *settler) markerStored(d *delivery, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.settlePanic(d.settleCtx, d, p)
		}
	}()
	st := &d.st
	if !ok {
		st.Decision = Decision{Kind: KindAbandon, Result: st.Decision.Result, At: st.Decision.At}
	}
	s.finish(d.settleCtx, d, st)
}

// The delivery is its own donemarker.Job.
func (d *delivery) Key() string          { return d.doneKey }
func (d *delivery) InProgress() error    { return d.msg.InProgress() }
func (d *delivery) Logger() *slog.Logger { return d.logger() }
func (d *delivery) Stored(ok bool)       { d.s.markerStored(d, ok) }

// publishLetter stores st's dead letter; when the DLQ does not take it
// the message is kept (retried after BackoffBase) rather than lost.
func (s *settler) publishLetter(ctx context.Context, d *delivery, st *Settlement) {
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deadLetterPublishTimeout)
	defer cancel()
	ack, err := s.letters.PublishMsg(pubCtx, st.Letter)
	if err != nil {
		d.logger().Error("dead-letter publish failed; message kept for redelivery", "reason", st.Decision.Reason, "error", err)
		st.Decision = Decision{Kind: KindRetry, Reason: st.Decision.Reason, LastReason: st.Decision.LastReason,
			ErrorText: st.Decision.ErrorText, Result: st.Decision.Result, At: st.Decision.At, Delay: s.cfg.BackoffBase}
		return
	}
	st.LetterAck = ack
}

// deadLetterPublishTimeout bounds one dead-letter publish.
const deadLetterPublishTimeout = 10 * time.Second

// finish runs the BeforeAck hooks, makes the message call and records
// the settle.
func (s *settler) finish(ctx context.Context, d *delivery, st *Settlement) {
	if st.Decision.Kind != KindAbandon {
		for _, h := range s.hooks.BeforeAck {
			err, p := callHook(func() error { return h.BeforeAck(ctx, st) })
			if p != nil {
				s.panicked(d, st, "before-ack hook", p)
				s.publishLetter(ctx, d, st)
				break
			}
			if err != nil {
				st.Decision = s.hookFailed(d, st.Decision, "before-ack", err)
				break
			}
		}
	}
	s.complete(ctx, d, st)
}

// complete makes the message call and records the settle.
func (s *settler) complete(ctx context.Context, d *delivery, st *Settlement) {
	dec := st.Decision
	switch dec.Kind {
	case KindAck:
		if s.cfg.hooks.afterDone != nil && s.cfg.hooks.afterDone(d.ceID) {
			dec.Kind = KindAbandon // test hook: a crash between marker and ack
			break
		}
		if err := d.msg.Ack(); err != nil {
			d.logger().Warn("ack failed; the message will be redelivered", "error", err)
		}
	case KindDuplicate:
		if err := d.msg.Ack(); err != nil {
			d.logger().Warn("ack failed; the message will be redelivered", "error", err)
		}
	case KindDeadLetter:
		if err := d.msg.Ack(); err != nil {
			// Redelivery publishes the dead letter again with the same
			// Nats-Msg-Id, which the dead-letter stream's dedup window drops.
			d.logger().Warn("ack after dead letter failed", "error", err)
		}
	case KindRetry, KindDefer:
		if err := d.msg.NakWithDelay(dec.Delay); err != nil {
			d.logger().Warn("nak failed; the message will be redelivered after AckWait", "error", err)
		}
	case KindRequeue:
		_ = d.msg.Nak()
	}
	s.record(ctx, d, st, dec)
	d.span.End()
}

// record writes the settle's metrics, span attributes and log line.
func (s *settler) record(ctx context.Context, d *delivery, st *Settlement, dec Decision) {
	outcome := dec.Kind.outcome()
	if dec.Kind != KindAbandon {
		s.metrics.settle(ctx, d.handler, outcome)
	}
	switch dec.Kind {
	case KindAck, KindDuplicate:
		d.span.SetAttributes(attribute.String("outcome", outcome))
		if d.base.Enabled(ctx, slog.LevelDebug) {
			d.logger().Debug("settled", "outcome", outcome)
		}
	case KindRetry:
		s.metrics.retry(ctx, d.handler, dec.Reason)
		d.span.SetAttributes(attribute.String("outcome", outcome), attribute.String("imbi.reason", string(dec.Reason)))
		d.span.SetStatus(codes.Error, string(dec.Reason))
		d.logger().Warn("action failed; retrying", "reason", dec.Reason, "delay", dec.Delay, "error", dec.ErrorText)
	case KindDefer:
		d.span.SetAttributes(attribute.String("outcome", outcome), attribute.String("imbi.reason", string(dec.Reason)))
		if !dec.PauseUntil.IsZero() {
			d.logger().Info("rate limited; deferred without using an attempt, lane paused",
				"lane", d.lane.String(), "paused_until", dec.PauseUntil, "delay", dec.Delay, "error", dec.ErrorText)
		} else if d.base.Enabled(ctx, slog.LevelDebug) {
			d.logger().Debug("lane paused; deferred", "lane", d.lane.String(), "delay", dec.Delay, "error", dec.ErrorText)
		}
	case KindRequeue:
		if dec.Result.Ran {
			d.logger().Info("action cancelled by shutdown; requeued")
		}
	case KindDeadLetter:
		s.metrics.deadLetter(ctx, d.handler, dec.Reason)
		d.span.SetAttributes(attribute.String("outcome", outcome), attribute.String("imbi.reason", string(dec.Reason)))
		d.span.SetStatus(codes.Error, string(dec.Reason))
		attrs := []any{"reason", dec.Reason, "dlq_subject", st.Letter.Subject, "error", dec.ErrorText}
		if dec.LastReason != "" {
			attrs = append(attrs, "last_reason", dec.LastReason)
		}
		d.logger().Error("dead-lettered", attrs...)
	}
}

// callHook runs a hook, returning its panic (if any) instead of
// unwinding through the settler.
func callHook(fn func() error) (err error, p any) {
	defer func() {
		if r := recover(); r != nil {
			p = r
		}
	}()
	return fn(), nil
}

// panicked turns st into a panic dead letter (security issue 12 §5): the
// message is not retried, whatever the decision was; the remaining hooks
// are skipped.
func (s *settler) panicked(d *delivery, st *Settlement, where string, p any) {
	text := dispatch.RedactText(fmt.Sprintf("%s panicked: %v", where, p), nil)
	d.logger().Error("panic while settling; dead-lettering the message", "where", where, "error", text)
	st.Decision = Decision{Kind: KindDeadLetter, Reason: wire.ReasonPanic, ErrorText: text,
		Result: st.Decision.Result, At: st.Decision.At}
	st.Letter, st.LetterAck = s.letter(d, st.Decision), nil
}

// settlePanic is the last resort after a panic inside the settler itself
// (not a hook): dead-letter the message as panic without hooks; if that
// panics too, give it back for a retry.
func (s *settler) settlePanic(ctx context.Context, d *delivery, p any) {
	defer func() {
		if p2 := recover(); p2 != nil {
			d.base.Error("panic while dead-lettering a panic; message left for a retry",
				"ce_id", d.ceID, "error", dispatch.RedactText(fmt.Sprint(p2), nil))
			_ = d.msg.NakWithDelay(s.cfg.BackoffBase)
		}
	}()
	st := &d.st
	s.panicked(d, st, "settle", p)
	s.publishLetter(ctx, d, st)
	s.complete(ctx, d, st)
}

// giveBack naks a message pulled but never taken in (shutdown): another
// replica gets it at once. It is the one settle without a delivery. Its
// delivery is recorded as a deferral first (countGiveBack), so it costs
// the message no attempt.
func (s *settler) giveBack(ctx context.Context, msg jetstream.Msg) {
	if meta, err := msg.Metadata(); err == nil {
		s.countGiveBack(ctx, meta)
	}
	_ = msg.Nak()
}

// countGiveBack records a delivery given back at shutdown, never started,
// as a deferral (lanes.go): the next delivery's attempt is deliveries −
// deferrals, and a message given back at every rolling restart must not
// run out of attempts (with MaxAttempts 1 the next delivery was dead-
// lettered max_attempts without ever running: TestManualPause). A failed
// lookup or write costs the message one attempt, as before.
func (s *settler) countGiveBack(ctx context.Context, meta *jetstream.MsgMetadata) {
	if s.lanes == nil {
		return
	}
	n, err := earlierDeferrals(ctx, s.lanes, meta)
	if err != nil {
		s.log.Warn("deferral count lookup failed at shutdown; this delivery counts as an attempt",
			"stream_seq", meta.Sequence.Stream, "error", err)
		return
	}
	if err := s.lanes.SetDeferrals(ctx, meta.Stream, meta.Sequence.Stream, meta.Timestamp, n+1, s.deferralTTL()); err != nil {
		s.log.Warn("deferral count not stored at shutdown; this delivery counts as an attempt",
			"stream_seq", meta.Sequence.Stream, "error", err)
	}
}

// String is for logs.
func (d Decision) String() string {
	if d.Reason == "" {
		return d.Kind.String()
	}
	return fmt.Sprintf("%s(%s)", d.Kind, d.Reason)
}
