package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/lanes"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// fakeMsg is a jetstream.Msg that records every settle call.
type fakeMsg struct {
	mu    sync.Mutex
	calls []string
	subj  string
	hdr   nats.Header
	data  []byte
}

func (m *fakeMsg) record(c string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, c)
	return nil
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { return &jetstream.MsgMetadata{}, nil }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return m.hdr }
func (m *fakeMsg) Subject() string                           { return m.subj }
func (m *fakeMsg) Reply() string                             { return "" }
func (m *fakeMsg) Ack() error                                { return m.record("Ack") }
func (m *fakeMsg) DoubleAck(context.Context) error           { return m.record("DoubleAck") }
func (m *fakeMsg) Nak() error                                { return m.record("Nak") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	return m.record(fmt.Sprintf("NakWithDelay(%s)", d))
}
func (m *fakeMsg) InProgress() error             { return m.record("InProgress") }
func (m *fakeMsg) Term() error                   { return m.record("Term") }
func (m *fakeMsg) TermWithReason(r string) error { return m.record("Term(" + r + ")") }
func (m *fakeMsg) settleCalls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, c := range m.calls {
		if c != "InProgress" {
			out = append(out, c)
		}
	}
	return out
}

// fakeLanes records deferral counts and lane pauses; err fails both.
type fakeLanes struct {
	err    error
	counts []string
	pauses []lanes.PauseRequest
}

func (f *fakeLanes) Deferrals(context.Context, string, uint64, time.Time) (int, error) {
	return 0, f.err
}

func (f *fakeLanes) SetDeferrals(_ context.Context, stream string, seq uint64, stored time.Time, n int, _ time.Duration) error {
	f.counts = append(f.counts, fmt.Sprintf("%s/%d@%d=%d", stream, seq, stored.UnixNano(), n))
	return f.err
}

func (f *fakeLanes) Pause(_ context.Context, p lanes.PauseRequest) error {
	f.pauses = append(f.pauses, p)
	return f.err
}

// fakeLetters records dead-letter publishes; err fails them.
type fakeLetters struct {
	err  error
	sent []*nats.Msg
}

func (f *fakeLetters) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.sent = append(f.sent, m)
	return &jetstream.PubAck{Stream: "IMBI_ACTIONS_DLQ", Sequence: uint64(len(f.sent))}, nil
}

// fakeMarkers stores (or, stopping, gives up on) every marker at once.
type fakeMarkers struct {
	stopping bool
	keys     []string
}

func (f *fakeMarkers) Store(j donemarker.Job) {
	f.keys = append(f.keys, j.Key())
	j.Stored(!f.stopping)
}

// countingSpan counts End calls.
type countingSpan struct {
	trace.Span
	ends int
}

func (s *countingSpan) End(...trace.SpanEndOption) { s.ends++ }

// hookRec records hook calls in order; fail makes the named hook fail,
// and seen keeps what each saw.
type hookRec struct {
	name  string
	fail  bool
	panic string // the phase that panics: "settle" | "ack"
	log   *[]string
	state []Settlement
}

func (h *hookRec) BeforeSettle(_ context.Context, s *Settlement) error {
	*h.log = append(*h.log, h.name+":before-settle:"+s.Decision.Kind.String())
	h.state = append(h.state, *s)
	if h.panic == "settle" {
		panic("hook exploded")
	}
	if h.fail {
		return errors.New("hook down")
	}
	if s.Letter != nil {
		s.Letter.Header.Set("Imbi-Dlq-Chain-Continued", "true")
	}
	return nil
}

func (h *hookRec) BeforeAck(_ context.Context, s *Settlement) error {
	*h.log = append(*h.log, h.name+":before-ack:"+s.Decision.Kind.String())
	h.state = append(h.state, *s)
	if h.panic == "ack" {
		panic("hook exploded")
	}
	if h.fail {
		return errors.New("hook down")
	}
	return nil
}

func result(class dispatch.Class, reason wire.Reason, err error) dispatch.Result {
	return dispatch.Result{Class: class, Reason: reason, Err: err, ErrorText: "boom", Ran: true}
}

// TestSettlerSettlesOnce: every outcome of wire-contract §4 (plus
// shutdown, abandonment, a done-marker left unwritten, the breaker and
// the max-deliveries advisory) ends in exactly one message call — or
// none for Abandon — one span end and at most one dead letter, and a
// second decision for the same delivery changes nothing.
func TestSettlerSettlesOnce(t *testing.T) {
	t.Parallel()
	const maxAttempts = 3
	base := 10 * time.Millisecond
	rateLimited := result(dispatch.Retryable, wire.ReasonRateLimited, &plugins.RateLimitedError{RetryAfter: 7 * time.Second})
	rateLimited.RetryAfter = 7 * time.Second
	abandoned := result(dispatch.Retryable, wire.ReasonTimeout, context.DeadlineExceeded)
	abandoned.Abandoned, abandoned.TimedOut = true, true
	breaker := result(dispatch.Retryable, wire.ReasonUnavailable, errors.New("neo4j down"))
	breaker.Ran, breaker.CredentialStoreUnavailable = false, true

	type row struct {
		name     string
		attempt  int
		draining bool
		// one of dec or res: res goes through decide
		dec       *Decision
		res       dispatch.Result
		letterErr error
		markers   *fakeMarkers
		lanes     *fakeLanes
		age       time.Duration // how long ago the stream stored the message
		deferred  int           // earlier deliveries that were deferrals
		failHook  string        // "settle" | "ack"
		// wantMaxDelay bounds the decision's delay (0: not checked).
		wantMaxDelay time.Duration
		wantKind     Kind
		wantCalls    []string // settle calls on the message ("" prefix match for NakWithDelay)
		wantLetter   wire.Reason
		wantLast     wire.Reason
	}
	dl := func(reason, last wire.Reason) *Decision {
		return &Decision{Kind: KindDeadLetter, Reason: reason, LastReason: last, ErrorText: "x"}
	}
	rows := []row{
		{name: "invalid_event", attempt: 1, dec: dl(wire.ReasonInvalidEvent, ""), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonInvalidEvent},
		{name: "unsupported_type", attempt: 1, dec: dl(wire.ReasonUnsupportedType, ""), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonUnsupportedType},
		{name: "invalid_handler", attempt: 1, res: result(dispatch.Permanent, wire.ReasonInvalidHandler, errors.New("bad")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonInvalidHandler},
		{name: "unknown_handler", attempt: 1, res: result(dispatch.Permanent, wire.ReasonUnknownHandler, errors.New("bad")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonUnknownHandler},
		{name: "invalid_config", attempt: 1, res: result(dispatch.Permanent, wire.ReasonInvalidConfig, errors.New("bad")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonInvalidConfig},
		{name: "credentials_missing", attempt: 1, res: result(dispatch.Permanent, wire.ReasonCredentialsMissing, errors.New("bad")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonCredentialsMissing},
		{name: "panic", attempt: 1, res: result(dispatch.Permanent, wire.ReasonPanic, errors.New("bad")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonPanic},
		{name: "permanent action error", attempt: 1, res: result(dispatch.Permanent, wire.ReasonActionFailed, errors.New("bad")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonActionFailed},
		{name: "timeout retried", attempt: 1, res: result(dispatch.Retryable, wire.ReasonTimeout, context.DeadlineExceeded), wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "timeout last attempt", attempt: maxAttempts, res: result(dispatch.Retryable, wire.ReasonTimeout, context.DeadlineExceeded), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonMaxAttempts, wantLast: wire.ReasonTimeout},
		{name: "unavailable retried", attempt: 2, res: result(dispatch.Retryable, wire.ReasonUnavailable, plugins.ErrPluginUnavailable), wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "rate_limited deferred on the last attempt, lane paused", attempt: maxAttempts, res: rateLimited, lanes: &fakeLanes{}, deferred: 4, wantKind: KindDefer, wantCalls: []string{"NakWithDelay(7."}},
		{name: "rate_limited without a delay waits the backoff", attempt: 1, res: result(dispatch.Retryable, wire.ReasonRateLimited, &plugins.RateLimitedError{}), lanes: &fakeLanes{}, wantKind: KindDefer, wantCalls: []string{"NakWithDelay"}, wantMaxDelay: 10*time.Millisecond + 51*time.Millisecond},
		{name: "rate_limited past the max wait", attempt: 1, res: rateLimited, lanes: &fakeLanes{}, age: 25 * time.Hour, wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonRateLimited},
		{name: "rate_limited deferral count not stored", attempt: 1, res: rateLimited, lanes: &fakeLanes{err: errors.New("kv down")}, wantKind: KindDefer, wantCalls: []string{"NakWithDelay(7."}},
		{name: "paused lane deferred and counted", attempt: 2, deferred: 1, lanes: &fakeLanes{}, dec: &Decision{Kind: KindDefer, Delay: time.Second}, wantKind: KindDefer, wantCalls: []string{"NakWithDelay(1s)"}},
		{name: "rate_limited waits retry-after (no lanes bucket)", attempt: 1, res: rateLimited, wantKind: KindRetry, wantCalls: []string{"NakWithDelay(7s)"}},
		{name: "rate_limited last attempt", attempt: maxAttempts, res: rateLimited, wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonMaxAttempts, wantLast: wire.ReasonRateLimited},
		{name: "action_failed retried", attempt: 1, res: result(dispatch.Retryable, wire.ReasonActionFailed, errors.New("x")), wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "attempts exhausted", attempt: maxAttempts, res: result(dispatch.Retryable, wire.ReasonActionFailed, errors.New("x")), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonMaxAttempts, wantLast: wire.ReasonActionFailed},
		{name: "crash loop unsettled", attempt: maxAttempts + 1, dec: dl(wire.ReasonMaxAttempts, wire.ReasonUnsettled), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonMaxAttempts, wantLast: wire.ReasonUnsettled},
		{name: "success without idempotency", attempt: 1, res: dispatch.Result{Class: dispatch.Success, Ran: true}, wantKind: KindAck, wantCalls: []string{"Ack"}},
		{name: "success after done-marker", attempt: 1, res: dispatch.Result{Class: dispatch.Success, Ran: true}, markers: &fakeMarkers{}, wantKind: KindAck, wantCalls: []string{"Ack"}},
		{name: "done-marker unwritten at shutdown", attempt: 1, res: dispatch.Result{Class: dispatch.Success, Ran: true}, markers: &fakeMarkers{stopping: true}, wantKind: KindAbandon},
		{name: "duplicate", attempt: 2, dec: &Decision{Kind: KindDuplicate}, wantKind: KindDuplicate, wantCalls: []string{"Ack"}},
		{name: "done lookup failed", attempt: 1, dec: &Decision{Kind: KindRetry, Reason: wire.ReasonUnavailable, Delay: base}, wantKind: KindRetry, wantCalls: []string{"NakWithDelay(10ms)"}},
		{name: "shutdown before start", attempt: 1, dec: &Decision{Kind: KindRequeue}, wantKind: KindRequeue, wantCalls: []string{"Nak"}},
		{name: "shutdown cancelled the action", attempt: maxAttempts, draining: true, res: result(dispatch.Retryable, wire.ReasonUnavailable, context.Canceled), wantKind: KindRequeue, wantCalls: []string{"Nak"}},
		{name: "abandoned action retried", attempt: 1, res: abandoned, wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "abandoned action last attempt", attempt: maxAttempts, res: abandoned, wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonMaxAttempts, wantLast: wire.ReasonTimeout},
		{name: "breaker open: credential store down", attempt: 1, res: breaker, wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "lane pause deferred", attempt: 1, dec: &Decision{Kind: KindDefer, Reason: wire.ReasonRateLimited, Delay: time.Minute}, wantKind: KindDefer, wantCalls: []string{"NakWithDelay(1m0s)"}},
		{name: "max-deliveries advisory", attempt: 10, dec: dl(wire.ReasonMaxAttempts, wire.ReasonUnsettled), wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonMaxAttempts, wantLast: wire.ReasonUnsettled},
		{name: "dead-letter stream refuses", attempt: 1, dec: dl(wire.ReasonInvalidConfig, ""), letterErr: errors.New("no stream"), wantKind: KindRetry, wantCalls: []string{"NakWithDelay(10ms)"}},
		{name: "before-settle hook fails an ack", attempt: 1, res: dispatch.Result{Class: dispatch.Success, Ran: true}, markers: &fakeMarkers{}, failHook: "settle", wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "before-settle hook fails a dead letter", attempt: 1, dec: dl(wire.ReasonInvalidConfig, ""), failHook: "settle", wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
		{name: "before-ack hook fails a dead letter", attempt: 1, dec: dl(wire.ReasonInvalidConfig, ""), failHook: "ack", wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}, wantLetter: wire.ReasonInvalidConfig},
		{name: "before-settle hook panics on an ack", attempt: 1, res: dispatch.Result{Class: dispatch.Success, Ran: true}, markers: &fakeMarkers{}, failHook: "panic-settle", wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonPanic},
		{name: "before-ack hook panics on a retry", attempt: 1, res: result(dispatch.Retryable, wire.ReasonActionFailed, errors.New("x")), failHook: "panic-ack", wantKind: KindDeadLetter, wantCalls: []string{"Ack"}, wantLetter: wire.ReasonPanic},
		{name: "before-ack hook fails a retry", attempt: 1, res: result(dispatch.Retryable, wire.ReasonActionFailed, errors.New("x")), failHook: "ack", wantKind: KindRetry, wantCalls: []string{"NakWithDelay"}},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{MaxAttempts: maxAttempts, BackoffBase: base, BackoffMax: 4 * base, WorkerID: "w-1",
				RateLimitMaxWait: DefaultRateLimitMaxWait, LaneRecheck: DefaultLaneRecheck}
			cfg.Streams.SetDefaults()
			m, err := newMetrics(metricnoop.NewMeterProvider())
			require.NoError(t, err)
			var order []string
			first := &hookRec{name: "first", log: &order, fail: tc.failHook == "settle", panic: panicPhase(tc.failHook)}
			second := &hookRec{name: "second", log: &order}
			letters := &fakeLetters{err: tc.letterErr}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			s := &settler{cfg: &cfg, log: log, metrics: m, letters: letters,
				hooks: Hooks{BeforeSettle: []BeforeSettleHook{first, second}, BeforeAck: []BeforeAckHook{first, second}}}
			if tc.failHook == "ack" || tc.failHook == "panic-ack" {
				ackFail := &hookRec{name: "ackfail", log: &order, fail: tc.failHook == "ack", panic: panicPhase(tc.failHook)}
				s.hooks = Hooks{BeforeAck: []BeforeAckHook{ackFail}}
			}
			if tc.markers != nil {
				s.markers = tc.markers
			}
			if tc.lanes != nil {
				s.lanes = tc.lanes
			}
			fm := &fakeMsg{subj: "imbi.actions.test.ok", hdr: nats.Header{wire.HeaderMsgID: []string{"id-1"}}, data: []byte("{}")}
			span := &countingSpan{Span: tracenoop.Span{}}
			stored := time.Now().Add(-tc.age)
			d := &delivery{msg: fm, attempt: tc.attempt, handler: "test#ok", ceID: "id-1", doneKey: "id-1", span: span, base: log,
				deliveries: tc.attempt + tc.deferred, deferred: tc.deferred, lane: lanes.Key{Plugin: "test", PluginID: "pl-1"},
				meta: &jetstream.MsgMetadata{NumDelivered: uint64(tc.attempt + tc.deferred), Stream: "IMBI_ACTIONS",
					Sequence: jetstream.SequencePair{Stream: 42}, Timestamp: stored}}
			dec := Decision{}
			if tc.dec != nil {
				dec = *tc.dec
			} else {
				dec = s.decide(d, tc.res, tc.draining)
			}
			s.Settle(context.Background(), d, dec)
			// A second decision for the same delivery is refused.
			s.Settle(context.Background(), d, Decision{Kind: KindAck})

			require.Equal(t, tc.wantKind, d.st.Decision.Kind, "decision %s", d.st.Decision)
			if tc.wantMaxDelay > 0 {
				require.LessOrEqual(t, d.st.Decision.Delay, tc.wantMaxDelay)
			}
			calls := fm.settleCalls()
			require.Len(t, calls, len(tc.wantCalls), "settle calls %v", calls)
			for i, want := range tc.wantCalls {
				require.Contains(t, calls[i], want)
			}
			require.Equal(t, 1, span.ends, "span ended once")
			if tc.wantLetter == "" {
				require.Empty(t, letters.sent, "no dead letter")
				require.Nil(t, d.st.LetterAck)
			} else {
				require.Len(t, letters.sent, 1)
				got := letters.sent[0]
				require.Equal(t, string(tc.wantLetter), got.Header.Get(wire.DLQReason))
				require.Equal(t, string(tc.wantLast), got.Header.Get(wire.DLQLastReason))
				require.NotNil(t, d.st.LetterAck)
			}
			if tc.lanes != nil {
				if tc.wantKind == KindDefer {
					// The deferral is counted (this delivery is no attempt) before the nak.
					require.Equal(t, []string{fmt.Sprintf("IMBI_ACTIONS/42@%d=%d", stored.UnixNano(), tc.deferred+1)}, tc.lanes.counts)
				} else {
					require.Empty(t, tc.lanes.counts)
				}
				if dec.PauseUntil.IsZero() {
					require.Empty(t, tc.lanes.pauses)
				} else {
					require.Len(t, tc.lanes.pauses, 1, "a rate limit pauses its lane")
					p := tc.lanes.pauses[0]
					require.Equal(t, lanes.Key{Plugin: "test", PluginID: "pl-1"}, p.Lane)
					require.Equal(t, dec.PauseUntil, p.Until)
					if tc.res.RetryAfter > 0 {
						require.WithinDuration(t, time.Now().Add(tc.res.RetryAfter), p.Until, time.Second, "paused until the retry-after")
					}
					require.Equal(t, "worker w-1", p.By)
				}
			}
			if tc.markers != nil && tc.failHook == "" {
				require.Equal(t, []string{"id-1"}, tc.markers.keys, "marker written before the ack")
			}
			if tc.markers != nil && tc.failHook != "" {
				require.Empty(t, tc.markers.keys, "no marker for a failed hook")
			}
			if tc.failHook == "" && tc.wantKind != KindAbandon {
				// Both hook lists ran, in order, once each.
				require.Equal(t, []string{
					"first:before-settle:" + dec.Kind.String(),
					"second:before-settle:" + dec.Kind.String(),
					"first:before-ack:" + tc.wantKind.String(),
					"second:before-ack:" + tc.wantKind.String(),
				}, order)
				if tc.wantLetter != "" {
					require.Equal(t, "true", letters.sent[0].Header.Get("Imbi-Dlq-Chain-Continued"), "a before-settle hook's header is on the letter")
					require.NotNil(t, second.state[1].LetterAck, "before-ack hooks see the stored letter")
				}
			}
		})
	}
}

// panicPhase: "panic-settle" → "settle"; anything else → "".
func panicPhase(failHook string) string {
	if p, ok := strings.CutPrefix(failHook, "panic-"); ok {
		return p
	}
	return ""
}
