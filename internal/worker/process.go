package worker

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/internal/redact"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// attrDeliveryCount is messaging.message.delivery_count; semconv has no
// generic constant for it (only per-broker ones).
const attrDeliveryCount = attribute.Key("messaging.message.delivery_count")

// delivery is what the worker knows about one message while settling it.
type delivery struct {
	msg      jetstream.Msg
	meta     *jetstream.MsgMetadata
	attempt  int
	ev       *envelope.Message // nil when the bytes are not a CloudEvent
	ceID     string
	doneKey  string // the done-marker key of ceID (idempotency on)
	rawHndlr string // rule.handler as sent
	handler  string // metric label: canonical handler or "_unknown"
	span     trace.Span
	base     *slog.Logger
	log      *slog.Logger // built on first use: most messages log nothing
	// handedOff: the done-marker writer owns the rest of the settle (the
	// ack and the span's end) once the marker is acknowledged.
	handedOff bool
}

// logger carries the message's identity on every line (ce_id, handler,
// attempt, trace_id).
func (d *delivery) logger() *slog.Logger {
	if d.log == nil {
		d.log = d.base.With("ce_id", d.ceID, "handler", d.handler, "attempt", d.attempt,
			"trace_id", d.span.SpanContext().TraceID().String(), "stream_seq", d.meta.Sequence.Stream,
			"msg_id", d.msg.Headers().Get(wire.HeaderMsgID))
	}
	return d.log
}

// slotState is what one slot goroutine reuses from message to message.
type slotState struct {
	check *doneCheck
}

// process runs one message end to end and settles it exactly once. It
// returns false when the message's action was abandoned while running on
// this goroutine: the message was settled elsewhere and the goroutine
// must leave (runIntake).
func (w *Worker) process(ctx context.Context, msg jetstream.Msg, slot *slotState) (stay bool) {
	received := time.Now()
	d := &delivery{msg: msg, handler: unknownHandler}
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to settle against.
		w.log.Error("message without JetStream metadata", "subject", msg.Subject(), "error", err)
		return true
	}
	d.meta, d.attempt = meta, int(meta.NumDelivered)

	ev, decodeErr := w.dec.Decode(msg.Headers(), msg.Data())
	decoded := time.Now()
	d.ev = ev
	if ev != nil {
		d.ceID = ev.ID()
		d.rawHndlr = ev.Data.Rule.Handler
		if d.rawHndlr == "" {
			d.rawHndlr = ev.Event.Subject()
		}
		if h, ok := w.disp.KnownHandler(d.rawHndlr); ok {
			d.handler = h
		}
	}

	ctx, d.span = w.tracer.Start(w.parentContext(ctx, ev, msg), "process "+msg.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(received))
	if d.span.IsRecording() { // attributes cost allocations; skip them for no-op tracing
		d.span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingDestinationName(msg.Subject()),
			semconv.MessagingMessageID(d.ceID),
			attrDeliveryCount.Int(d.attempt),
			attribute.String("handler", d.handler),
		)
	}
	detached := false
	defer func() {
		// Detached: the abandonment path owns d now (and ends the span).
		if !detached && !d.handedOff {
			d.span.End()
		}
	}()
	_, decodeSpan := w.tracer.Start(ctx, "decode", trace.WithTimestamp(received))
	if decodeErr != nil {
		decodeSpan.SetStatus(codes.Error, string(envelope.ReasonOf(decodeErr)))
	}
	decodeSpan.End(trace.WithTimestamp(decoded))

	d.base = w.log

	if decodeErr != nil {
		w.deadLetter(ctx, d, envelope.ReasonOf(decodeErr), "", dispatch.RedactText(decodeErr.Error(), nil))
		return true
	}

	// Crash loop: attempts already made (deliveries before this one)
	// reached the limit without the message being settled.
	if d.attempt > w.cfg.MaxAttempts {
		w.deadLetter(ctx, d, wire.ReasonMaxAttempts, wire.ReasonUnsettled,
			"delivered "+strconv.Itoa(d.attempt)+" times without being settled (worker crashed or lost the message)")
		return true
	}

	if w.checker != nil {
		d.doneKey = doneKey(d.ceID)
		slot.check.key = d.doneKey
		if found, err := w.checker.isDone(slot.check); found {
			w.ack(ctx, d, outcomeDuplicate)
			return true
		} else if err != nil {
			// Cannot tell whether it ran: retry later rather than risk a double run.
			d.logger().Warn("done-marker lookup failed; retrying later", "error", err)
			w.nak(ctx, d, dispatch.Result{Class: dispatch.Retryable, Reason: wire.ReasonUnavailable,
				ErrorText: dispatch.RedactText(err.Error(), nil)})
			return true
		}
	}

	// The InProgress heartbeat covers the wait for an action slot as well
	// as the action, so neither can run into AckWait (a redelivery then
	// would run the message on two replicas at once).
	stopBeat := w.heartbeat(d)
	if !w.takeActionSlot() {
		stopBeat()
		// Shutdown: pulled but not started, so another replica gets it now.
		_ = d.msg.Nak()
		w.metrics.settle(ctx, d.handler, outcomeRequeued)
		return true
	}
	finish := func(res dispatch.Result) {
		w.recordAction(ctx, d, res)
		<-w.actionSlots
		stopBeat()
		w.settle(ctx, d, res)
	}
	w.metrics.inflight.Add(ctx, 1)
	// The action runs on this goroutine (dispatch.DispatchInline). If it
	// ignores its deadline, the message is settled from the abandonment
	// callback and another goroutine takes this one's place in the intake.
	res := w.disp.DispatchInline(ctx, ev, func(res dispatch.Result) {
		finish(res)
		if !d.handedOff {
			d.span.End()
		}
		w.replaceIntake()
	})
	if res.Detached {
		detached = true
		return false
	}
	finish(res)
	return true
}

// takeActionSlot waits for one of the Concurrency action slots; false
// once shutdown has started (checked first: select picks at random among
// ready cases, and a message not started yet must not start now). While
// the credential breaker is open (breaker.go) a message in hand waits for
// it to close, as the intake does, instead of trying the store.
func (w *Worker) takeActionSlot() bool {
	for {
		select {
		case <-w.stopping:
			return false
		default:
		}
		select {
		case w.actionSlots <- struct{}{}:
		case <-w.stopping:
			return false
		}
		if !w.breaker.open() {
			return true
		}
		<-w.actionSlots
		select {
		case <-w.breaker.waitClosed():
		case <-w.stopping:
			return false
		}
	}
}

// heartbeat sends InProgress for d's message every InProgressInterval
// until the returned stop is called. A self-re-arming timer, not a
// goroutine per message: most messages are settled long before the first
// tick.
func (w *Worker) heartbeat(d *delivery) (stop func()) {
	var stopped atomic.Bool
	var beat *time.Timer
	// Armed only after beat is assigned, so the callback always sees it.
	beat = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		if stopped.Load() {
			return
		}
		_ = d.msg.InProgress()
		beat.Reset(w.cfg.InProgressInterval)
	})
	beat.Reset(w.cfg.InProgressInterval)
	return func() {
		stopped.Store(true)
		beat.Stop()
	}
}

// recordAction records a finished (or abandoned) action's metrics.
func (w *Worker) recordAction(ctx context.Context, d *delivery, res dispatch.Result) {
	w.metrics.inflight.Add(ctx, -1)
	if res.Ran {
		outcome := "success"
		if res.Class != dispatch.Success {
			outcome = string(res.Reason)
		}
		w.metrics.duration.Record(ctx, res.ActionDuration.Seconds(), w.metrics.with("handler", d.handler, "outcome", outcome))
	}
	if res.TimedOut {
		w.metrics.timeouts.Add(ctx, 1, w.metrics.with("handler", d.handler))
	}
	if res.Abandoned {
		w.metrics.abandoned.Add(ctx, 1, w.metrics.with("handler", d.handler))
		d.logger().Warn("action ignored its deadline and was abandoned")
	}
}

// settle acks, naks or dead-letters per wire-contract §4.
func (w *Worker) settle(ctx context.Context, d *delivery, res dispatch.Result) {
	switch res.Class {
	case dispatch.Success:
		if w.done != nil && w.writeDone(ctx, d) {
			return // acked by the done-marker writer once the marker is stored
		}
		w.ackSuccess(ctx, d)
	case dispatch.Retryable:
		if res.CredentialStoreUnavailable {
			w.breaker.trip(res.ErrorText) // stop pulling until the store answers (breaker.go)
		}
		if w.draining.Load() && errors.Is(res.Err, context.Canceled) {
			// Cut off by shutdown: hand it to another replica at once.
			_ = d.msg.Nak()
			w.metrics.settle(ctx, d.handler, outcomeRequeued)
			d.logger().Info("action cancelled by shutdown; requeued")
			return
		}
		if d.attempt >= w.cfg.MaxAttempts {
			w.deadLetter(ctx, d, wire.ReasonMaxAttempts, res.Reason, res.ErrorText)
			return
		}
		w.nak(ctx, d, res)
	default:
		w.deadLetter(ctx, d, res.Reason, "", res.ErrorText)
	}
}

// ackSuccess acks a message whose action succeeded (and whose
// done-marker, with idempotency on, was acknowledged or failed).
func (w *Worker) ackSuccess(ctx context.Context, d *delivery) {
	if w.cfg.hooks.afterDone != nil && w.cfg.hooks.afterDone(d.ceID) {
		return
	}
	w.ack(ctx, d, outcomeAck)
}

func (w *Worker) ack(ctx context.Context, d *delivery, outcome string) {
	if err := d.msg.Ack(); err != nil {
		d.logger().Warn("ack failed; the message will be redelivered", "error", err)
	}
	w.metrics.settle(ctx, d.handler, outcome)
	d.span.SetAttributes(attribute.String("outcome", outcome))
	if d.base.Enabled(ctx, slog.LevelDebug) {
		d.logger().Debug("settled", "outcome", outcome)
	}
}

// nak schedules a retry: the rate limit's retry-after, else backoff.
func (w *Worker) nak(ctx context.Context, d *delivery, res dispatch.Result) {
	delay := backoff(w.cfg.BackoffBase, w.cfg.BackoffMax, d.attempt)
	if res.Reason == wire.ReasonRateLimited && res.RetryAfter > 0 {
		delay = res.RetryAfter
	}
	if err := d.msg.NakWithDelay(delay); err != nil {
		d.logger().Warn("nak failed; the message will be redelivered after AckWait", "error", err)
	}
	w.metrics.retry(ctx, d.handler, res.Reason)
	w.metrics.settle(ctx, d.handler, outcomeRetry)
	d.span.SetAttributes(attribute.String("outcome", outcomeRetry), attribute.String("imbi.reason", string(res.Reason)))
	d.span.SetStatus(codes.Error, string(res.Reason))
	d.logger().Warn("action failed; retrying", "reason", res.Reason, "delay", delay, "error", res.ErrorText)
}

// deadLetter publishes the original message with the Imbi-Dlq-* headers
// and acks it only once the dead-letter stream has acknowledged it.
func (w *Worker) deadLetter(ctx context.Context, d *delivery, reason, lastReason wire.Reason, errText string) {
	out := w.deadLetterMsg(d, reason, lastReason, errText, time.Now())
	pubCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(pubCtx, out); err != nil {
		// Keep the original: it is better delivered again than lost.
		d.logger().Error("dead-letter publish failed; message kept for redelivery", "reason", reason, "error", err)
		_ = d.msg.NakWithDelay(w.cfg.BackoffBase)
		return
	}
	if err := d.msg.Ack(); err != nil {
		// Redelivery publishes the dead letter again with the same
		// Nats-Msg-Id, which the dead-letter stream's dedup window drops.
		d.logger().Warn("ack after dead letter failed", "error", err)
	}
	w.metrics.deadLetter(ctx, d.handler, reason)
	w.metrics.settle(ctx, d.handler, outcomeDeadLetter)
	d.span.SetAttributes(attribute.String("outcome", outcomeDeadLetter), attribute.String("imbi.reason", string(reason)))
	d.span.SetStatus(codes.Error, string(reason))
	attrs := []any{"reason", reason, "dlq_subject", out.Subject, "error", errText}
	if lastReason != "" {
		attrs = append(attrs, "last_reason", lastReason)
	}
	d.logger().Error("dead-lettered", attrs...)
}

// deadLetterMsg builds the dead letter of a delivery (wire-contract §5).
func (w *Worker) deadLetterMsg(d *delivery, reason, lastReason wire.Reason, errText string, now time.Time) *nats.Msg {
	return w.buildDeadLetter(deadLetter{
		subject: w.dlqSubject(d, reason), header: d.msg.Headers(), body: d.msg.Data(), ev: d.ev,
		reason: reason, lastReason: lastReason, errText: errText, attempts: uint64(d.attempt),
		origSubject: d.msg.Subject(), origSeq: d.meta.Sequence.Stream,
		firstReceived: d.meta.Timestamp, deadAt: now,
	})
}

// deadLetter is what a dead letter is built from: the original message
// and why it died. Both the settle path and the max-deliveries advisory
// build theirs with buildDeadLetter, so they cannot drift apart.
type deadLetter struct {
	subject            string
	header             nats.Header
	body               []byte
	ev                 *envelope.Message // nil: the body is not a decoded CloudEvent
	reason, lastReason wire.Reason
	errText            string
	attempts           uint64
	origSubject        string
	origSeq            uint64
	firstReceived      time.Time
	deadAt             time.Time
}

// buildDeadLetter: the original body with its secrets redacted
// (internal/redact, decision 0006), the original headers (sensitive values,
// ce-* extensions included, redacted; earlier Imbi-Dlq-* and
// Nats-Expected-* dropped) plus ours.
func (w *Worker) buildDeadLetter(l deadLetter) *nats.Msg {
	out := nats.NewMsg(l.subject)
	for k, vals := range l.header {
		if wire.IsDLQHeader(k) {
			continue // from an earlier dead-lettering of a replayed message
		}
		if hasPrefixFold(k, "Nats-Expected-") {
			// Publish preconditions of the original publish (nats-py and
			// nats.go set Nats-Expected-Stream: IMBI_ACTIONS); JetStream
			// stores them, and copied here they make the DLQ publish fail
			// with "expected stream does not match" forever.
			continue
		}
		if redact.Header(k) {
			out.Header[k] = []string{redact.Replacement}
			continue
		}
		out.Header[k] = append([]string(nil), vals...)
	}
	var redacted []string
	out.Data, redacted = redact.Body(l.body)
	if len(redacted) > 0 {
		out.Header.Set(wire.DLQRedacted, strings.Join(redacted, ","))
	}
	out.Header.Set(wire.DLQReason, string(l.reason))
	if l.lastReason != "" {
		out.Header.Set(wire.DLQLastReason, string(l.lastReason))
	}
	out.Header.Set(wire.DLQError, headerSafe(dispatch.Truncate(l.errText, wire.DLQErrorMaxBytes)))
	out.Header.Set(wire.DLQAttempts, strconv.FormatUint(l.attempts, 10))
	out.Header.Set(wire.DLQOriginalSubject, l.origSubject)
	out.Header.Set(wire.DLQOriginalSeq, strconv.FormatUint(l.origSeq, 10))
	out.Header.Set(wire.DLQFirstReceived, l.firstReceived.UTC().Format(time.RFC3339Nano))
	out.Header.Set(wire.DLQDeadAt, l.deadAt.UTC().Format(time.RFC3339Nano))
	out.Header.Set(wire.DLQWorker, w.cfg.WorkerID)
	return out
}

// dlqSubject: <dlq prefix>.<plugin>.<action> from the handler; the
// original subject's tail when the handler does not parse; _invalid for
// bytes that are not a CloudEvent.
func (w *Worker) dlqSubject(d *delivery, reason wire.Reason) string {
	prefix := w.cfg.Streams.DLQPrefix
	invalid := prefix + "." + wire.InvalidToken
	if d.ev == nil || reason == wire.ReasonInvalidEvent {
		return invalid
	}
	if h, err := plugins.ParseHandler(d.rawHndlr); err == nil {
		return wire.Subject(prefix, h)
	}
	if tail, ok := strings.CutPrefix(d.msg.Subject(), w.cfg.Streams.SubjectPrefix+"."); ok && tail != "" {
		return prefix + "." + tail
	}
	return invalid
}

// parentContext continues the publisher's trace: the CloudEvent
// distributed-tracing extension, else the NATS traceparent header.
func (w *Worker) parentContext(ctx context.Context, ev *envelope.Message, msg jetstream.Msg) context.Context {
	carrier := propagation.MapCarrier{}
	if ev != nil && ev.Traceparent != "" {
		carrier["traceparent"] = ev.Traceparent
		if ev.Tracestate != "" {
			carrier["tracestate"] = ev.Tracestate
		}
	} else {
		for k, v := range msg.Headers() {
			if len(v) > 0 && (strings.EqualFold(k, wire.HeaderTraceparent) || strings.EqualFold(k, wire.HeaderTracestate)) {
				carrier[strings.ToLower(k)] = v[0]
			}
		}
	}
	if len(carrier) == 0 {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, carrier)
}

// doneKey is the done-marker key of a CloudEvent id: the id itself when
// it is a valid KV key (readable), else a hash of it.
func doneKey(ceID string) string {
	if len(ceID) <= 200 && isKVKey(ceID) {
		return ceID
	}
	return "sha256." + sha256Hex(ceID)
}

// headerSafe keeps a header value on one line.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
