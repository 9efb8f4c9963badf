package worker

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestSettleOutcomes: every row of the wire-contract §4 table, end to end
// on a real server: the settle call (ack / nak / dead letter), the DLQ
// subject and headers, attempts made and the action's run count.
func TestSettleOutcomes(t *testing.T) {
	t.Parallel()
	// No MaxDeliver: the rate-limited row pauses lane test/pl-1, which
	// every row shares, so the others are deferred (not attempts) too.
	e := newEnv(t, envOpts{maxDeliver: -1})
	cfg := e.config()
	_, _ = e.start(cfg)

	type row struct {
		name, handler string
		config        any
		// dead-letter expectations ("" reason: acked, no dead letter)
		reason, lastReason wire.Reason
		dlqSubject         string
		attempts           int
		runs               int
	}
	rows := []row{
		{name: "success", handler: "test#ok", runs: 1},
		{name: "legacy handler", handler: "test:ok", runs: 1},
		{name: "retry then success", handler: "test#flaky", config: map[string]any{"fail_times": 2}, runs: 3},
		{name: "bad handler", handler: "Test#OK", reason: wire.ReasonInvalidHandler, dlqSubject: "imbi.dlq.actions.bad.handler", attempts: 1},
		{name: "unknown plugin", handler: "nope#ok", reason: wire.ReasonUnknownHandler, dlqSubject: "imbi.dlq.actions.nope.ok", attempts: 1},
		{name: "unknown action", handler: "test#nope", reason: wire.ReasonUnknownHandler, dlqSubject: "imbi.dlq.actions.test.nope", attempts: 1},
		{name: "invalid config", handler: "test#strict", config: map[string]any{"label": ""}, reason: wire.ReasonInvalidConfig, dlqSubject: "imbi.dlq.actions.test.strict", attempts: 1},
		{name: "credentials missing", handler: "withcreds#ok", reason: wire.ReasonCredentialsMissing, dlqSubject: "imbi.dlq.actions.withcreds.ok", attempts: 1},
		{name: "panic", handler: "test#panic", reason: wire.ReasonPanic, dlqSubject: "imbi.dlq.actions.test.panic", attempts: 1, runs: 1},
		{name: "permanent", handler: "test#permanent", reason: wire.ReasonActionFailed, dlqSubject: "imbi.dlq.actions.test.permanent", attempts: 1, runs: 1},
		{name: "retryable exhausted", handler: "test#fail", reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonActionFailed, dlqSubject: "imbi.dlq.actions.test.fail", attempts: 3, runs: 3},
		{name: "timeout exhausted", handler: "test#sleep", config: map[string]any{"sleep_ms": 60000}, reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonTimeout, dlqSubject: "imbi.dlq.actions.test.sleep", attempts: 3, runs: 3},
		{name: "abandoned exhausted", handler: "test#ignore_ctx", config: map[string]any{"sleep_ms": 2000}, reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonTimeout, dlqSubject: "imbi.dlq.actions.test.ignore_ctx", attempts: 3, runs: 3},
		{name: "unavailable exhausted", handler: "test#unavailable", reason: wire.ReasonMaxAttempts, lastReason: wire.ReasonUnavailable, dlqSubject: "imbi.dlq.actions.test.unavailable", attempts: 3, runs: 3},
		// Rate limits use no attempt (v1.1 §B): more of them than MaxAttempts, then success.
		{name: "rate limited then success", handler: "test#rate_limited", config: map[string]any{"fail_times": 4, "retry_after_ms": 300}, runs: 5},
	}
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			id := "row-" + strconv.Itoa(i)
			seq := e.publish(id, r.handler, r.config)
			if r.reason == "" {
				require.Eventually(t, func() bool { return e.gone(seq) }, 20*time.Second, 20*time.Millisecond)
				require.Equal(t, r.runs, e.rec.Calls(id))
				require.Empty(t, e.dlq.get(id))
				if r.handler == "test#rate_limited" {
					times := e.rec.Times(id)
					for j := 1; j < len(times); j++ {
						require.GreaterOrEqual(t, times[j].Sub(times[j-1]), 300*time.Millisecond, "retry-after honoured")
					}
				}
				return
			}
			dl := e.waitDLQ(id, 30*time.Second)
			require.Equal(t, r.dlqSubject, dl.Subject)
			require.Equal(t, string(r.reason), dl.Header.Get(wire.DLQReason))
			require.Equal(t, string(r.lastReason), dl.Header.Get(wire.DLQLastReason))
			require.Equal(t, strconv.Itoa(r.attempts), dl.Header.Get(wire.DLQAttempts))
			require.Equal(t, subjectOf(r.handler), dl.Header.Get(wire.DLQOriginalSubject))
			require.Equal(t, strconv.FormatUint(seq, 10), dl.Header.Get(wire.DLQOriginalSeq))
			require.Equal(t, "test-worker", dl.Header.Get(wire.DLQWorker))
			require.NotEmpty(t, dl.Header.Get(wire.DLQError))
			require.LessOrEqual(t, len(dl.Header.Get(wire.DLQError)), wire.DLQErrorMaxBytes)
			for _, h := range []string{wire.DLQFirstReceived, wire.DLQDeadAt} {
				_, err := time.Parse(time.RFC3339Nano, dl.Header.Get(h))
				require.NoError(t, err, h)
			}
			// Original bytes and headers kept.
			require.Equal(t, event(id, r.handler, r.config, id), dl.Data)
			require.Equal(t, wire.ContentTypeCE, dl.Header.Get("Content-Type"))
			// Acked only after the dead letter: gone from the work stream.
			require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 20*time.Millisecond)
			require.Equal(t, r.runs, e.rec.Calls(id))
		})
	}
}

// TestDecodeFailuresDeadLetter: bytes that are not a CloudEvent go to
// _invalid, unsupported types to the handler's subject; the worker keeps
// going, and sensitive NATS headers are redacted in the dead letter.
func TestDecodeFailuresDeadLetter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	_, _ = e.start(e.config())

	garbage := []byte{0xde, 0xad, 0xbe, 0xef}
	seq := e.publishRaw("imbi.actions.test.ok", map[string]string{wire.HeaderMsgID: "garbage", "Authorization": "Bearer sekrit"}, garbage)
	dl := e.waitDLQ("garbage", 10*time.Second)
	require.Equal(t, "imbi.dlq.actions._invalid", dl.Subject)
	require.Equal(t, string(wire.ReasonInvalidEvent), dl.Header.Get(wire.DLQReason))
	require.Equal(t, garbage, dl.Data)
	require.Equal(t, wire.Redacted, dl.Header.Get("Authorization"))
	require.Eventually(t, func() bool { return e.gone(seq) }, 5*time.Second, 20*time.Millisecond)

	other := []byte(`{"specversion":"1.0","id":"other-type","source":"/x","type":"com.example.other","subject":"test#ok","data":{}}`)
	e.publishRaw("imbi.actions.test.ok", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: "other-type"}, other)
	dl = e.waitDLQ("other-type", 10*time.Second)
	require.Equal(t, string(wire.ReasonUnsupportedType), dl.Header.Get(wire.DLQReason))
	require.Equal(t, "imbi.dlq.actions.test.ok", dl.Subject)
	require.Equal(t, "imbi.actions.test.ok", dl.Header.Get(wire.DLQOriginalSubject))

	// The worker is still healthy.
	e.publish("after-poison", "test#ok", nil)
	require.Eventually(t, func() bool { return e.rec.Calls("after-poison") == 1 }, 10*time.Second, 10*time.Millisecond)
}

// TestBindingModes: binary and structured, with and without Content-Type,
// with header names in other cases; each runs exactly once.
func TestBindingModes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	_, _ = e.start(e.config())
	data := func(id string) []byte {
		// The data of a structured event, used as a binary body.
		return []byte(`{"rule":{"handler":"test#ok"},"context":{"project_id":"p","project_slug":"s","org_slug":"o"},"event":{"payload":{"id":"` + id + `"}}}`)
	}
	cases := []struct {
		id      string
		headers map[string]string
		body    []byte
	}{
		{"structured-ct", map[string]string{"Content-Type": wire.ContentTypeCE}, event("structured-ct", "test#ok", nil, "structured-ct")},
		{"structured-no-ct", map[string]string{}, event("structured-no-ct", "test#ok", nil, "structured-no-ct")},
		{"structured-odd-case", map[string]string{"content-type": "Application/CloudEvents+JSON; charset=utf-8"}, event("structured-odd-case", "test#ok", nil, "structured-odd-case")},
		{"binary", map[string]string{"ce-specversion": "1.0", "ce-id": "binary", "ce-source": "/s", "ce-type": wire.EventType, "Content-Type": "application/json"}, data("binary")},
		{"binary-no-ct", map[string]string{"ce-specversion": "1.0", "ce-id": "binary-no-ct", "ce-source": "/s", "ce-type": wire.EventType}, data("binary-no-ct")},
		{"binary-odd-case", map[string]string{"CE-SpecVersion": "1.0", "Ce-Id": "binary%2Dodd-case", "CE-SOURCE": "%2Fs", "cE-tYPE": wire.EventType, "ce-Subject": "test%23ok"}, data("binary-odd-case")},
	}
	for _, c := range cases {
		c.headers[wire.HeaderMsgID] = c.id
		e.publishRaw("imbi.actions.test.ok", c.headers, c.body)
	}
	for _, c := range cases {
		require.Eventually(t, func() bool { return e.rec.Calls(c.id) == 1 }, 10*time.Second, 10*time.Millisecond, c.id)
	}
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Zero(t, e.dlq.count())
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	base, capD := 100*time.Millisecond, 1*time.Second
	for attempt := 1; attempt <= 8; attempt++ {
		upper := min(capD, base<<(attempt-1))
		for range 200 {
			d := backoff(base, capD, attempt)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.Less(t, d, upper, "attempt %d", attempt)
		}
	}
}

// TestRetryDelaysWithinBackoff: the observed gap between attempts stays
// under the backoff cap (plus scheduling slack) and no worker holds the
// message meanwhile (a second message runs during the wait).
func TestRetryDelaysWithinBackoff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cfg := e.config()
	cfg.Concurrency = 1
	cfg.BackoffBase, cfg.BackoffMax = 400*time.Millisecond, 400*time.Millisecond
	_, _ = e.start(cfg)
	e.publish("slow-retry", "test#flaky", map[string]any{"fail_times": 1})
	e.publish("behind", "test#ok", nil)
	require.Eventually(t, func() bool { return e.rec.Calls("slow-retry") == 2 }, 10*time.Second, 10*time.Millisecond)
	times := e.rec.Times("slow-retry")
	require.Less(t, times[1].Sub(times[0]), 400*time.Millisecond+2*time.Second)
	// The message behind it ran while the first waited, with one slot.
	require.True(t, e.rec.Times("behind")[0].Before(times[1]))
}
