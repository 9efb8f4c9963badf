// Package dispatch runs one decoded action CloudEvent: handler →
// registry → webhook plugin → action → handler_config → credentials →
// the action under a deadline, and classifies the outcome as
// wire-contract §4 says. It knows nothing about NATS; the worker settles
// the message from the Result.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Defaults (wire-contract §4).
const (
	// DefaultTimeout is IMBI_PLUGIN_TIMEOUT_SECONDS' default.
	DefaultTimeout = 10 * time.Second
	// DefaultAbandonGrace is how long after its deadline an action that
	// ignores its context may still return before the slot is freed.
	DefaultAbandonGrace = 100 * time.Millisecond
)

// Class is how the worker settles a message.
type Class int

const (
	// Success: ack.
	Success Class = iota + 1
	// Retryable: nak with backoff until max attempts, then dead letter.
	Retryable
	// Permanent: dead letter at once.
	Permanent
)

func (c Class) String() string {
	switch c {
	case Success:
		return "success"
	case Retryable:
		return "retryable"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Result is the outcome of one dispatch.
type Result struct {
	Class Class
	// Reason is the wire-contract §4 reason code ("" on success).
	Reason wire.Reason
	// Handler is the canonical resolved handler ("" when it did not parse).
	Handler string
	// Err is the underlying error (nil on success). Its text may hold
	// secrets: log and dead-letter ErrorText instead.
	Err error
	// ErrorText is Err's text with secrets redacted, at most
	// wire.DLQErrorMaxBytes bytes.
	ErrorText string
	// RetryAfter is the delay a rate-limited action asked for.
	RetryAfter time.Duration
	// Ran says the action was started (its duration is ActionDuration).
	Ran            bool
	ActionDuration time.Duration
	// TimedOut: the action's deadline expired.
	TimedOut bool
	// Abandoned: the action ignored its deadline and was left running.
	Abandoned bool
	// Detached (DispatchInline only): the action returned after it had
	// been abandoned; onAbandon already had the Result, this one means
	// nothing else.
	Detached bool
	// CredentialStoreUnavailable: the credential store could not be
	// reached (reason unavailable from loading credentials, not from the
	// action), so every message needing it would fail the same way; the
	// worker stops pulling until the store answers (its breaker).
	CredentialStoreUnavailable bool
}

// Request is what dispatch needs of one action message: the envelope's
// data (wire-contract §3) and the CloudEvent subject. The worker builds it
// from the decoded envelope; dispatch does not know the envelope.
type Request struct {
	// Handler is rule.handler as sent.
	Handler string
	// Subject is the CloudEvent subject ("" when unset); it must name the
	// same handler.
	Subject string
	// HandlerConfig is rule.handler_config.
	HandlerConfig json.RawMessage
	// PluginID is plugin.id ("" when absent: found by the service).
	PluginID           string
	Context            plugins.PluginContext
	ExternalIdentifier string
	Event              plugins.Event
	// ActionID is the CloudEvent id, Data its data as it arrived and
	// Traceparent the publisher's trace context: what an action forwarded
	// to a plugin host (internal/remote) sends on.
	ActionID    string
	Data        json.RawMessage
	Traceparent string
}

// Registry is the part of the plugin registry dispatch reads.
type Registry interface {
	Get(slug string) (*registry.Entry, error)
}

// Dispatcher runs actions. The zero value is not usable: Registry is
// required. Safe for concurrent use.
type Dispatcher struct {
	Registry Registry
	// Credentials loads plugin credentials; nil means no store is
	// configured (actions declaring required credentials then fail with
	// credentials_missing).
	Credentials CredentialSource
	// DefaultTimeout applies when a descriptor sets none (default 10 s).
	DefaultTimeout time.Duration
	// AbandonGrace is how long past its deadline an action may take to
	// return before the dispatcher gives up on it (default 100 ms).
	AbandonGrace time.Duration
	// Tracer makes the resolve, validate_config, load_credentials and
	// action spans. Nil: a tracer of the caller's span's provider (the
	// worker's TracerProvider; no-op without a span).
	Tracer trace.Tracer

	// known caches raw handler strings that resolved to a registered
	// webhook action (raw -> knownHandler). Only hits are stored, so
	// its size is bounded by the registry (two spellings per action), not
	// by what arrives on the wire.
	known sync.Map
}

// tracerName names dispatch's spans' instrumentation scope.
const tracerName = "github.com/aweber-imbi/imbi-worker/internal/dispatch"

func (d *Dispatcher) tracer(ctx context.Context) trace.Tracer {
	if d.Tracer == nil {
		return trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName)
	}
	return d.Tracer
}

// Dispatch runs the message's action and classifies the outcome. ctx
// carries the caller's lifetime (shutdown); the action's own deadline is
// added here. It is DispatchInline on a goroutine of its own, so an action
// that ignores its deadline holds the caller no longer than deadline +
// AbandonGrace: the caller gets the abandoned Result then. (The worker
// calls DispatchInline itself and saves the goroutine.)
func (d *Dispatcher) Dispatch(ctx context.Context, msg *Request) Result {
	out := make(chan Result, 1) // exactly one of the two sends: runInline
	go func() {
		if res := d.DispatchInline(ctx, msg, func(res Result) { out <- res }); !res.Detached {
			out <- res
		}
	}()
	return <-out
}

// DispatchInline is Dispatch with the action run on the caller's own
// goroutine: no hand-off to another goroutine and back (≈ 2 µs of a
// message's CPU in the benchmark, docs/performance.md). The price is
// that an action ignoring its deadline holds the caller's goroutine
// itself. So when the action has not returned by deadline (or the
// cancellation of ctx) + AbandonGrace, DispatchInline calls onAbandon,
// on another goroutine, with the abandoned Result (what Dispatch would
// have returned), and the call itself returns Result{Detached: true}
// whenever the action does return: the caller must then act as if it
// had already returned (onAbandon took over; typically the caller's
// goroutine exits and onAbandon started a replacement). onAbandon runs
// at most once, and never after a non-detached return.
//
// A panic on the way to the action (resolving, a config's Validate,
// loading credentials) is recovered as a permanent panic Result, as a
// panicking action is (security issue 12 §5).
func (d *Dispatcher) DispatchInline(ctx context.Context, msg *Request, onAbandon func(Result)) (res Result) {
	if onAbandon == nil {
		panic("dispatch: DispatchInline needs onAbandon")
	}
	defer func() {
		if p := recover(); p != nil {
			res = permanent(wire.ReasonPanic, "", fmt.Errorf("dispatch panicked: %v", p), nil)
		}
	}()
	return d.dispatchInline(ctx, msg, onAbandon)
}

func (d *Dispatcher) dispatchInline(ctx context.Context, msg *Request, onAbandon func(Result)) Result {
	tr := d.tracer(ctx)

	_, span := tr.Start(ctx, "resolve")
	h, action, entry, res, ok := d.resolve(msg)
	endSpan(span, res, ok)
	if !ok {
		return res
	}
	handler := h.String()

	_, span = tr.Start(ctx, "validate_config")
	cfg, err := action.DecodeConfig(msg.HandlerConfig)
	if err != nil {
		res = d.classify(handler, err, nil)
		endSpan(span, res, false)
		return res
	}
	span.End()

	var creds plugins.Credentials
	if len(entry.Manifest.Credentials) > 0 {
		cctx, span := tr.Start(ctx, "load_credentials")
		creds, err = d.loadCredentials(cctx, msg, entry)
		if err != nil {
			res = d.classify(handler, err, nil)
			res.CredentialStoreUnavailable = res.Reason == wire.ReasonUnavailable
			endSpan(span, res, false)
			return res
		}
		span.End()
	}

	actx, span := tr.Start(ctx, "action")
	if span.IsRecording() {
		span.SetAttributes(attribute.String("handler", handler))
	}
	res = d.run(withMessage(actx, msg), handler, action, onAbandon, plugins.Invocation{
		Context:            msg.Context,
		Credentials:        creds,
		ExternalIdentifier: msg.ExternalIdentifier,
		Config:             cfg,
		Event:              msg.Event,
	})
	endSpan(span, res, res.Class == Success)
	return res
}

func endSpan(span trace.Span, res Result, ok bool) {
	if !ok {
		span.SetStatus(codes.Error, string(res.Reason))
		span.SetAttributes(attribute.String("imbi.reason", string(res.Reason)))
	}
	span.End()
}

// resolve parses the handler and finds its action (§4 steps 2).
func (d *Dispatcher) resolve(msg *Request) (wire.Handler, plugins.ActionDescriptor, *registry.Entry, Result, bool) {
	fail := func(reason wire.Reason, handler string, err error) (wire.Handler, plugins.ActionDescriptor, *registry.Entry, Result, bool) {
		return wire.Handler{}, plugins.ActionDescriptor{}, nil, permanent(reason, handler, err, nil), false
	}
	h, err := d.parse(msg.Handler)
	if err != nil {
		return fail(wire.ReasonInvalidHandler, "", err)
	}
	if subj := msg.Subject; subj != "" && subj != msg.Handler {
		hs, err := wire.ParseHandler(subj)
		if err != nil {
			return fail(wire.ReasonInvalidHandler, "", fmt.Errorf("CloudEvent subject: %w", err))
		}
		if hs != h {
			return fail(wire.ReasonInvalidHandler, "", fmt.Errorf("rule.handler %q does not match CloudEvent subject %q", h, hs))
		}
	}
	handler := h.String()
	entry, err := d.Registry.Get(h.Plugin)
	if errors.Is(err, plugins.ErrPluginUnavailable) {
		// Known to exist but not loaded yet (Python's PluginUnavailableError:
		// e.g. no remote plugin host has answered yet): retry.
		return wire.Handler{}, plugins.ActionDescriptor{}, nil, retryable(wire.ReasonUnavailable, handler, err, nil), false
	}
	if err != nil {
		return fail(wire.ReasonUnknownHandler, handler, fmt.Errorf("plugin %q is not registered", h.Plugin))
	}
	if !entry.IsWebhook() {
		return fail(wire.ReasonUnknownHandler, handler, fmt.Errorf("plugin %q is not a webhook plugin (plugin_type %q)", h.Plugin, entry.Manifest.PluginType))
	}
	action, ok := entry.Action(h.Action)
	if !ok {
		return fail(wire.ReasonUnknownHandler, handler, fmt.Errorf("plugin %q has no action %q", h.Plugin, h.Action))
	}
	return h, action, entry, Result{}, true
}

func (d *Dispatcher) loadCredentials(ctx context.Context, msg *Request, entry *registry.Entry) (plugins.Credentials, error) {
	if d.Credentials == nil {
		if req := entry.Manifest.RequiredCredentials(); len(req) > 0 {
			return nil, &plugins.PluginCredentialsMissing{Message: fmt.Sprintf(
				"plugin %q requires credentials %v but this worker has no credential store configured (set the Neo4j and encryption-key settings)",
				entry.Manifest.Slug, req)}
		}
		return plugins.Credentials{}, nil
	}
	return d.Credentials.Credentials(ctx, entry.Manifest, msg.PluginID, msg.Event.ThirdPartyService)
}

type runOutcome struct {
	err      error
	panicked any
}

// run calls the action on the calling goroutine under a deadline; an
// action that ignores ctx cannot hold the caller's continuation
// (onAbandon) past deadline + grace.
func (d *Dispatcher) run(ctx context.Context, handler string, action plugins.ActionDescriptor, onAbandon func(Result), inv plugins.Invocation) Result {
	timeout := action.Timeout
	if timeout <= 0 {
		timeout = d.DefaultTimeout
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	grace := d.AbandonGrace
	if grace <= 0 {
		grace = DefaultAbandonGrace
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	abandoned := func() Result {
		res := d.contextResult(ctx, handler, inv.Credentials)
		res.Ran, res.ActionDuration, res.Abandoned = true, time.Since(start), true
		return res
	}

	out, ok := runInline(&actionJob{ctx: actx, action: action, inv: inv}, grace,
		func() { onAbandon(abandoned()) })
	if !ok {
		return Result{Detached: true}
	}
	elapsed := time.Since(start)

	var res Result
	switch {
	case out.panicked != nil:
		res = permanent(wire.ReasonPanic, handler, fmt.Errorf("action panicked: %v", out.panicked), inv.Credentials)
	case out.err == nil:
		res = Result{Class: Success, Handler: handler}
	case actx.Err() != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) &&
		!isClassified(out.err):
		// The action returned after (and very likely because of) its deadline.
		res = d.contextResult(ctx, handler, inv.Credentials)
	default:
		res = d.classify(handler, out.err, inv.Credentials)
	}
	res.Ran, res.ActionDuration = true, elapsed
	return res
}

// contextResult is the result of an action cut off by its context: the
// action deadline (timeout), or the caller's context (shutdown).
func (d *Dispatcher) contextResult(parent context.Context, handler string, creds plugins.Credentials) Result {
	if parent.Err() != nil {
		return retryable(wire.ReasonUnavailable, handler, fmt.Errorf("worker stopped the action: %w", parent.Err()), creds)
	}
	res := retryable(wire.ReasonTimeout, handler, &plugins.PluginTimeoutError{Message: "action exceeded its deadline", Err: context.DeadlineExceeded}, creds)
	res.TimedOut = true
	return res
}

// isClassified reports whether err is one of the typed errors that carry
// their own class, which win over a coincident deadline.
func isClassified(err error) bool {
	var perm *plugins.PermanentError
	var rl *plugins.RateLimitedError
	var cfg *plugins.ConfigError
	return errors.As(err, &perm) || errors.As(err, &rl) || errors.As(err, &cfg) ||
		errors.Is(err, plugins.ErrCredentialsMissing) || errors.Is(err, plugins.ErrPluginUnavailable)
}

// Classify maps an error to its class and reason (wire-contract §4).
// Exported for the worker and tests; creds (may be nil) are redacted
// from the text.
func Classify(handler string, err error, creds plugins.Credentials) Result {
	var (
		cfg  *plugins.ConfigError
		perm *plugins.PermanentError
		rl   *plugins.RateLimitedError
	)
	switch {
	case err == nil:
		return Result{Class: Success, Handler: handler}
	case errors.Is(err, plugins.ErrCredentialsMissing):
		return permanent(wire.ReasonCredentialsMissing, handler, err, creds)
	case errors.As(err, &cfg):
		return permanent(wire.ReasonInvalidConfig, handler, err, creds)
	case errors.As(err, &perm):
		return permanent(wire.ReasonActionFailed, handler, err, creds)
	case errors.As(err, &rl):
		r := retryable(wire.ReasonRateLimited, handler, err, creds)
		r.RetryAfter = max(rl.RetryAfter, 0)
		return r
	case errors.Is(err, plugins.ErrPluginTimeout), errors.Is(err, context.DeadlineExceeded):
		r := retryable(wire.ReasonTimeout, handler, err, creds)
		r.TimedOut = true
		return r
	case errors.Is(err, plugins.ErrPluginUnavailable):
		return retryable(wire.ReasonUnavailable, handler, err, creds)
	default:
		return retryable(wire.ReasonActionFailed, handler, err, creds)
	}
}

func (d *Dispatcher) classify(handler string, err error, creds plugins.Credentials) Result {
	return Classify(handler, err, creds)
}

func permanent(reason wire.Reason, handler string, err error, creds plugins.Credentials) Result {
	return Result{Class: Permanent, Reason: reason, Handler: handler, Err: err, ErrorText: RedactError(err, creds)}
}

func retryable(reason wire.Reason, handler string, err error, creds plugins.Credentials) Result {
	return Result{Class: Retryable, Reason: reason, Handler: handler, Err: err, ErrorText: RedactError(err, creds)}
}

// parse is wire.ParseHandler with the known-handler cache in front.
func (d *Dispatcher) parse(raw string) (wire.Handler, error) {
	if k, ok := d.known.Load(raw); ok {
		return k.(knownHandler).h, nil
	}
	return wire.ParseHandler(raw)
}

type knownHandler struct {
	h         wire.Handler
	canonical string
}

// KnownHandler returns the canonical form of raw when it names a
// registered webhook action; callers use it to bound metric labels.
func (d *Dispatcher) KnownHandler(raw string) (string, bool) {
	if k, ok := d.known.Load(raw); ok {
		return k.(knownHandler).canonical, true
	}
	h, err := wire.ParseHandler(raw)
	if err != nil {
		return "", false
	}
	entry, err := d.Registry.Get(h.Plugin)
	if err != nil || !entry.IsWebhook() {
		return "", false
	}
	if _, ok := entry.Action(h.Action); !ok {
		return "", false
	}
	d.known.Store(raw, knownHandler{h: h, canonical: h.String()})
	return h.String(), true
}
