package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// attrDeliveryCount is messaging.message.delivery_count; semconv has no
// generic constant for it (only per-broker ones).
const attrDeliveryCount = attribute.Key("messaging.message.delivery_count")

// delivery is what the worker knows about one message while settling it.
type delivery struct {
	msg  jetstream.Msg
	meta *jetstream.MsgMetadata
	// attempt is this delivery's attempt number: deliveries minus the
	// earlier deliveries that were deferrals (v1.1 §B, decision 0010).
	attempt    int
	deliveries int // meta.NumDelivered
	deferred   int // earlier deliveries that were deferrals
	// lane is the message's rate-limit lane (zero Plugin: none known).
	lane     lanes.Key
	ev       *envelope.Message // nil when the bytes are not a CloudEvent
	ceID     string
	doneKey  string // the done-marker key of ceID (idempotency on)
	rawHndlr string // rule.handler as sent
	handler  string // metric label: canonical handler or "_unknown"
	span     trace.Span
	base     *slog.Logger
	log      *slog.Logger // built on first use: most messages log nothing
	// letterSubject overrides the dead-letter subject (the max-deliveries
	// advisory keeps the work subject's tail).
	letterSubject string
	// omitted is the body's size when it was above MaxEventBytes: not
	// decoded, and left out of the dead letter.
	omitted int
	// settled is set by the settler's first decision; a second is refused.
	settled atomic.Bool
	// st is the settlement in progress (the settler's; held here so a
	// settle allocates nothing more) and settleCtx its context.
	st        Settlement
	settleCtx context.Context
	s         *settler
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
	check *donemarker.Query
}

// EventTooLargeError is why an event above Config.MaxEventBytes is
// dead-lettered invalid_event without being decoded.
type EventTooLargeError struct{ Size, Limit int }

func (e *EventTooLargeError) Error() string {
	return "event too large: " + strconv.Itoa(e.Size) + " bytes, above --max-event-bytes " + strconv.Itoa(e.Limit)
}

// runIntake takes messages until the work queue is closed. An intake
// goroutine whose action was abandoned (it ignored its deadline and is
// still running on this goroutine, dispatch.DispatchInline) leaves: a
// replacement already took its place (replaceIntake).
func (w *Worker) runIntake() {
	slot := &slotState{check: donemarker.NewQuery()}
	for {
		var h *heldMsg
		select {
		case h = <-w.work:
		case <-w.stopping:
		}
		if h == nil { // shutdown
			w.inflight.Done()
			return
		}
		if !w.intake(h, slot) {
			// Detached: the abandonment gave the place back and
			// replaceIntake did this goroutine's Done.
			return
		}
		w.fetcher.release() // this place is free again
	}
}

// intake runs one held message through the byte budget and process.
func (w *Worker) intake(h *heldMsg, slot *slotState) (stay bool) {
	w.fetcher.queuedBytes.Add(-int64(len(h.msg.Data())))
	cost, ok := w.takeBytes(h.msg)
	if !ok {
		h.stopBeat()
		w.awaitPullsClosed()
		w.settler.giveBack(w.actionCtx, h.msg) // shutdown while waiting: not started
		return true
	}
	defer w.budget.release(cost)
	return w.process(w.actionCtx, h, slot)
}

// replaceIntake starts an intake goroutine in place of one held by an
// abandoned action. Add before Done: the count never touches zero, so a
// shutdown waiting on inflight is not released early.
func (w *Worker) replaceIntake() {
	w.inflight.Add(1)
	go w.runIntake()
	w.inflight.Done()
}

// process runs one message end to end; the settler settles it exactly
// once. It returns false when the message's action was abandoned while
// running on this goroutine: the message was settled elsewhere and the
// goroutine must leave (runIntake).
func (w *Worker) process(ctx context.Context, h *heldMsg, slot *slotState) (stay bool) {
	received := time.Now()
	msg := h.msg
	// The InProgress heartbeat runs from the message's arrival (pull.go)
	// and covers decoding, the lookup, the wait for an action slot and the
	// action, so none of them can run into AckWait (a redelivery then would
	// run the message on two replicas at once). It stops before the
	// settle; the done-marker writer keeps an Ack's message alive itself.
	stopBeat := h.stopBeat
	d := &delivery{msg: msg, handler: unknownHandler}
	meta, err := msg.Metadata()
	if err != nil {
		// Not a JetStream delivery: nothing to settle against.
		stopBeat()
		w.log.Error("message without JetStream metadata", "subject", msg.Subject(), "error", err)
		return true
	}
	d.meta, d.deliveries = meta, int(meta.NumDelivered)
	d.attempt = d.deliveries
	d.base = w.log

	// A panic anywhere on the path (decode, dispatch, settle) dead-letters
	// the message as panic and the goroutine goes on (security issue 12
	// §5). release gives back what the path holds at that moment.
	release := stopBeat
	defer func() {
		if p := recover(); p != nil {
			if release != nil {
				release()
			}
			w.recoverPanic(ctx, d, "process", p)
			stay = true
		}
	}()

	ev, decodeErr := w.decode(d)
	decoded := time.Now()

	ctx = w.startSpans(ctx, d, received, decoded, decodeErr)

	if dec, ok := w.precheck(ctx, d, decodeErr, slot); ok {
		stopBeat()
		w.settler.Settle(ctx, d, dec)
		return true
	}

	if !w.takeActionSlot() {
		stopBeat()
		w.awaitPullsClosed()
		// Shutdown: pulled but not started, so another replica gets it now.
		w.settler.Settle(ctx, d, Decision{Kind: KindRequeue})
		return true
	}
	freeSlot := sync.OnceFunc(func() { <-w.actionSlots })
	release = func() { freeSlot(); stopBeat() }
	// The lane may have been paused while this message waited for a slot.
	if now := time.Now(); true {
		if st, paused := w.lanePause(d, now); paused {
			release()
			w.settler.Settle(ctx, d, w.pausedDecision(ctx, d, st, now))
			return true
		}
	}
	finish := func(res dispatch.Result) {
		w.recordAction(ctx, d, res)
		freeSlot()
		stopBeat()
		if res.CredentialStoreUnavailable {
			w.breaker.trip(res.ErrorText) // stop pulling until the store answers (breaker.go)
		}
		w.settler.Settle(ctx, d, w.settler.decide(d, res, w.draining.Load()))
	}
	w.metrics.inflight.Add(ctx, 1)
	// The action runs on this goroutine (dispatch.DispatchInline). If it
	// ignores its deadline, the message is settled from the abandonment
	// callback and another goroutine takes this one's place in the intake.
	res := w.disp.DispatchInline(dispatch.WithAttempt(ctx, d.attempt), request(ev), func(res dispatch.Result) {
		defer w.replaceIntake()
		// The message is settled here; its place must not wait for the
		// stuck action (a few of them would hold every place, and nothing
		// more would be pulled).
		defer w.fetcher.release()
		defer func() {
			if p := recover(); p != nil {
				release()
				w.recoverPanic(ctx, d, "abandonment", p)
			}
		}()
		finish(res)
	})
	if res.Detached {
		return false
	}
	finish(res)
	return true
}

// decode decodes d's message and notes its event, CloudEvent id, handler
// and lane on d; an event above MaxEventBytes is not decoded.
func (w *Worker) decode(d *delivery) (*envelope.Message, error) {
	if w.cfg.hooks.beforeDecode != nil {
		w.cfg.hooks.beforeDecode(d.msg.Data())
	}
	var ev *envelope.Message
	var decodeErr error
	if n := len(d.msg.Data()); n > w.cfg.MaxEventBytes {
		// Not decoded, and not kept: the letter omits the body (deadletter.go).
		d.omitted = n
		decodeErr = &envelope.Error{Reason: wire.ReasonInvalidEvent, Err: &EventTooLargeError{Size: n, Limit: w.cfg.MaxEventBytes}}
	} else {
		ev, decodeErr = w.dec.Decode(d.msg.Headers(), d.msg.Data())
	}
	d.ev = ev
	if ev != nil {
		d.ceID = ev.ID()
		d.rawHndlr = ev.Data.Rule.Handler
		if d.rawHndlr == "" {
			d.rawHndlr = ev.Event.Subject()
		}
		if h, ok := w.disp.KnownHandler(d.rawHndlr); ok {
			d.handler = h
			d.lane.Plugin, _, _ = strings.Cut(h, "#")
			if p := ev.Data.Plugin; p != nil {
				d.lane.PluginID = p.ID
			}
		}
	}
	return ev, decodeErr
}

// startSpans starts d's consumer span (continuing the publisher's trace)
// and records the decode span; it returns the span's context.
func (w *Worker) startSpans(ctx context.Context, d *delivery, received, decoded time.Time, decodeErr error) context.Context {
	ctx, d.span = w.tracer.Start(w.parentContext(ctx, d.ev, d.msg), "process "+d.msg.Subject(),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(received))
	if d.span.IsRecording() { // attributes cost allocations; skip them for no-op tracing
		d.span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingDestinationName(d.msg.Subject()),
			semconv.MessagingMessageID(d.ceID),
			attrDeliveryCount.Int(d.deliveries),
			attribute.String("handler", d.handler),
		)
	}
	_, decodeSpan := w.tracer.Start(ctx, "decode", trace.WithTimestamp(received))
	if decodeErr != nil {
		decodeSpan.SetStatus(codes.Error, string(envelope.ReasonOf(decodeErr)))
	}
	decodeSpan.End(trace.WithTimestamp(decoded))
	return ctx
}

// precheck decides a message before its action: a decode failure, a
// failed deferral-count lookup, a crash loop, a done-marker found (or a
// failed lookup), a paused lane. ok false: run it.
func (w *Worker) precheck(ctx context.Context, d *delivery, decodeErr error, slot *slotState) (Decision, bool) {
	if decodeErr != nil {
		return Decision{Kind: KindDeadLetter, Reason: envelope.ReasonOf(decodeErr),
			ErrorText: dispatch.RedactText(decodeErr.Error(), nil)}, true
	}

	// Deliveries that were deferrals (rate limits, paused lanes) are not
	// attempts.
	if w.lanes != nil {
		n, err := earlierDeferrals(ctx, w.lanes, d.meta)
		if err != nil {
			d.logger().Warn("deferral count lookup failed; retrying later", "error", err)
			return Decision{Kind: KindRetry, Reason: wire.ReasonUnavailable,
				ErrorText: dispatch.RedactText(err.Error(), nil),
				Delay:     backoff(w.cfg.BackoffBase, w.cfg.BackoffMax, d.attempt)}, true
		}
		d.deferred = n
		d.attempt = d.deliveries - d.deferred
	}

	// Crash loop: attempts already made (deliveries before this one)
	// reached the limit without the message being settled.
	if d.attempt > w.cfg.MaxAttempts {
		return Decision{Kind: KindDeadLetter, Reason: wire.ReasonMaxAttempts, LastReason: wire.ReasonUnsettled,
			ErrorText: "delivered for attempt " + strconv.Itoa(d.attempt) + " (deferrals not counted) without being settled (worker crashed or lost the message)"}, true
	}

	if w.checker != nil {
		d.doneKey = donemarker.Key(d.ceID)
		slot.check.Key = d.doneKey
		if found, err := w.checker.IsDone(slot.check); found {
			return Decision{Kind: KindDuplicate}, true
		} else if err != nil {
			// Cannot tell whether it ran: retry later rather than risk a double run.
			d.logger().Warn("done-marker lookup failed; retrying later", "error", err)
			return Decision{Kind: KindRetry, Reason: wire.ReasonUnavailable,
				ErrorText: dispatch.RedactText(err.Error(), nil),
				Delay:     backoff(w.cfg.BackoffBase, w.cfg.BackoffMax, d.attempt)}, true
		}
	}
	if now := time.Now(); true {
		if st, paused := w.lanePause(d, now); paused {
			return w.pausedDecision(ctx, d, st, now), true
		}
	}
	return Decision{}, false
}

// recoverPanic dead-letters d as panic after a panic on its path (a
// no-op when d was settled already: the settler recovers its own).
func (w *Worker) recoverPanic(ctx context.Context, d *delivery, where string, p any) {
	if d.meta == nil {
		d.meta = &jetstream.MsgMetadata{}
	}
	if d.span == nil {
		_, d.span = w.tracer.Start(ctx, "process "+d.msg.Subject())
	}
	text := dispatch.RedactText(fmt.Sprintf("%s panicked: %v", where, p), nil)
	d.logger().Error("panic on a message's path; dead-lettering it", "where", where, "error", text)
	w.settler.Settle(ctx, d, Decision{Kind: KindDeadLetter, Reason: wire.ReasonPanic, ErrorText: text})
}

// request is what dispatch needs of a decoded envelope.
func request(ev *envelope.Message) *dispatch.Request {
	r := &dispatch.Request{
		Handler: ev.Data.Rule.Handler, Subject: ev.Event.Subject(), HandlerConfig: ev.Data.Rule.HandlerConfig,
		Context: ev.Data.Context, ExternalIdentifier: ev.Data.ExternalIdentifier, Event: ev.Data.Event,
		ActionID: ev.ID(), Data: ev.Event.Data(), Traceparent: ev.Traceparent,
	}
	if ev.Data.Plugin != nil {
		r.PluginID = ev.Data.Plugin.ID
	}
	return r
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

// heartbeat sends InProgress for msg every InProgressInterval
// until the returned stop is called. A self-re-arming timer, not a
// goroutine per message: most messages are settled long before the first
// tick.
func (w *Worker) heartbeat(msg jetstream.Msg) (stop func()) {
	var stopped atomic.Bool
	var beat *time.Timer
	// Armed only after beat is assigned, so the callback always sees it.
	beat = time.AfterFunc(time.Duration(math.MaxInt64), func() {
		if stopped.Load() {
			return
		}
		_ = msg.InProgress()
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
