package outcomes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	imbiworker "github.com/aweber-imbi/imbi-worker"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// schema is the outcome event's JSON Schema from testdata/schemas.
func schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	raw, err := imbiworker.Schemas.ReadFile(wire.OutcomeSchemaV1)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	require.NoError(t, c.AddResource("outcome.json", doc))
	s, err := c.Compile("outcome.json")
	require.NoError(t, err)
	return s
}

// got is one stored outcome with its NATS headers and subject.
type got struct {
	outcomes.Event
	subject string
	msgID   string
	ctype   string
	raw     []byte
	seq     uint64
}

// harness is an embedded server with every stream (outcomes on), the
// dispatchtest plugins and a reader of the outcome stream.
type harness struct {
	t   *testing.T
	env *streamstest.Env
	reg func() *dispatch.Dispatcher

	mu  sync.Mutex
	out []got
}

func newHarness(t *testing.T, ackWait time.Duration) *harness {
	t.Helper()
	env := streamstest.Start(t, streams.Config{Idempotency: true, Outcomes: true, MaxDeliver: 6, AckWait: ackWait})
	rec := dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(
		&dispatchtest.Plugin{Slug: "test", Rec: rec},
		&dispatchtest.Plugin{Slug: "withcreds", Rec: rec, Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}},
	)
	require.NoError(t, err)
	h := &harness{t: t, env: env, reg: func() *dispatch.Dispatcher {
		return &dispatch.Dispatcher{Registry: reg, DefaultTimeout: 500 * time.Millisecond, AbandonGrace: 50 * time.Millisecond}
	}}
	// Read the outcome stream (what the server stored), not the subjects.
	cons, err := env.JS.OrderedConsumer(context.Background(), env.Config.OutcomesStream, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var ev outcomes.Event
		require.NoError(t, json.Unmarshal(m.Data(), &ev))
		meta, _ := m.Metadata()
		h.mu.Lock()
		h.out = append(h.out, got{Event: ev, subject: m.Subject(), msgID: m.Headers().Get(wire.HeaderMsgID),
			ctype: m.Headers().Get(wire.HeaderContentType), raw: m.Data(), seq: meta.Sequence.Stream})
		h.mu.Unlock()
	})
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
	return h
}

func (h *harness) config(extra ...worker.BeforeAckHook) worker.Config {
	hook := outcomes.NewHook(h.env.JS, outcomes.Config{Prefix: h.env.Config.OutcomesPrefix, WorkerID: "w-1"})
	hooks := hook.Hooks(worker.Hooks{})
	hooks.BeforeAck = append(hooks.BeforeAck, extra...)
	return worker.Config{Streams: h.env.Config, Concurrency: 4, MaxAttempts: 2,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 50 * time.Millisecond, ShutdownGrace: 5 * time.Second,
		Idempotency: true, WorkerID: "w-1", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hooks: hooks}
}

// start runs a worker until the test ends.
func (h *harness) start(cfg worker.Config) {
	h.t.Helper()
	nc, err := nats.Connect(h.env.URL())
	require.NoError(h.t, err)
	h.t.Cleanup(nc.Close)
	w, err := worker.New(nc, h.reg(), cfg)
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			h.t.Error("worker did not stop")
		}
	})
	require.Eventually(h.t, func() bool { return w.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
}

// ceBody is a structured action CloudEvent.
func ceBody(id, ceType, handler string, config any) []byte {
	// A rate limit pauses its lane (plugin slug + plugin.id, v1.1 §B): the
	// rate-limited row gets a credential set of its own so that its pause
	// does not defer the other rows.
	pluginID := "pl-1"
	if handler == "test#rate_limited" {
		pluginID = "pl-rate-limited"
	}
	data := map[string]any{
		"rule":   map[string]any{"id": "r-7", "handler": handler, "handler_config": config, "ordinal": 3},
		"plugin": map[string]any{"id": pluginID, "slug": "test"},
		"context": map[string]any{"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme",
			"assignment_options": map[string]any{"service_slug": "github"}},
		"external_identifier": "acme/checkout",
		"event": map[string]any{"type": "push", "third_party_service": "github",
			"metadata": map[string]any{"webhook_id": "wh-1", "headers": map[string]any{"authorization": "[redacted]"}},
			"payload":  map[string]any{"id": id}},
	}
	b, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "/imbi-gateway/webhooks/wh-1",
		"type": ceType, "subject": handler, "time": "2026-11-25T12:00:00Z", "datacontenttype": "application/json", "data": data})
	return b
}

func (h *harness) publish(subject, msgID string, body []byte) {
	h.t.Helper()
	m := nats.NewMsg(subject)
	m.Header.Set(wire.HeaderContentType, wire.ContentTypeCE)
	m.Header.Set(wire.HeaderMsgID, msgID)
	m.Data = body
	_, err := h.env.JS.PublishMsg(context.Background(), m)
	require.NoError(h.t, err)
}

// of returns the outcomes of one action id, in stream order.
func (h *harness) of(actionID string) []got {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []got
	for _, g := range h.out {
		if g.Data.ActionID == actionID {
			out = append(out, g)
		}
	}
	return out
}

type step struct {
	status wire.OutcomeStatus
	reason wire.Reason
}

// TestOutcomeRows runs every row of wire-contract §4 through a worker
// and checks the outcome events each produces: status and reason per
// attempt, the CloudEvent attributes, no Nats-Msg-Id (decision 0016), the subject,
// dead_letter pointing at the stored letter, and the JSON Schema.
func TestOutcomeRows(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0)
	h.start(h.config())
	sch := schema(t)

	const secret = "s3cr3t-token-value-1234"
	rows := []struct {
		name, handler, ceType string
		raw                   []byte // not a CloudEvent
		config                any
		subject               string // outcome subject
		want                  []step
	}{
		{name: "success", handler: "test#ok", want: []step{{wire.OutcomeSucceeded, ""}}},
		{name: "invalid_event", raw: []byte("not a cloud event"), subject: "imbi.outcomes._invalid",
			want: []step{{wire.OutcomeDeadLettered, wire.ReasonInvalidEvent}}},
		{name: "unsupported_type", handler: "test#ok", ceType: "io.imbi.other.v1",
			want: []step{{wire.OutcomeDeadLettered, wire.ReasonUnsupportedType}}},
		{name: "invalid_handler", handler: "Not A Handler", subject: "imbi.outcomes._invalid",
			want: []step{{wire.OutcomeDeadLettered, wire.ReasonInvalidHandler}}},
		{name: "unknown_handler", handler: "nope#missing", subject: "imbi.outcomes.nope.missing",
			want: []step{{wire.OutcomeDeadLettered, wire.ReasonUnknownHandler}}},
		{name: "invalid_config", handler: "test#strict", config: map[string]any{},
			want: []step{{wire.OutcomeDeadLettered, wire.ReasonInvalidConfig}}},
		{name: "credentials_missing", handler: "test#creds_missing",
			want: []step{{wire.OutcomeDeadLettered, wire.ReasonCredentialsMissing}}},
		{name: "timeout", handler: "test#timeout_error",
			want: []step{{wire.OutcomeRetrying, wire.ReasonTimeout}, {wire.OutcomeDeadLettered, wire.ReasonMaxAttempts}}},
		{name: "unavailable", handler: "test#unavailable",
			want: []step{{wire.OutcomeRetrying, wire.ReasonUnavailable}, {wire.OutcomeDeadLettered, wire.ReasonMaxAttempts}}},
		{name: "rate_limited", handler: "test#rate_limited", config: map[string]any{"retry_after_ms": 300, "fail_times": 2},
			want: []step{{wire.OutcomePaused, wire.ReasonRateLimited}, {wire.OutcomePaused, wire.ReasonRateLimited}, {wire.OutcomeSucceeded, ""}}},
		{name: "panic", handler: "test#panic", want: []step{{wire.OutcomeDeadLettered, wire.ReasonPanic}}},
		{name: "action_failed", handler: "test#fail",
			want: []step{{wire.OutcomeRetrying, wire.ReasonActionFailed}, {wire.OutcomeDeadLettered, wire.ReasonMaxAttempts}}},
		{name: "permanent", handler: "test#permanent", want: []step{{wire.OutcomeDeadLettered, wire.ReasonActionFailed}}},
		{name: "flaky_then_ok", handler: "test#flaky", config: map[string]any{"fail_times": 1},
			want: []step{{wire.OutcomeRetrying, wire.ReasonActionFailed}, {wire.OutcomeSucceeded, ""}}},
		{name: "leak", handler: "test#leak", config: map[string]any{"secret": secret},
			want: []step{{wire.OutcomeRetrying, wire.ReasonActionFailed}, {wire.OutcomeDeadLettered, wire.ReasonMaxAttempts}}},
	}
	for _, r := range rows {
		id := "d-1." + r.name
		switch {
		case r.raw != nil:
			h.publish("imbi.actions.test.ok", id, r.raw)
		default:
			ceType := r.ceType
			if ceType == "" {
				ceType = wire.EventType
			}
			subj := "imbi.actions.test.ok"
			if hh, err := wire.ParseHandler(r.handler); err == nil {
				subj = wire.Subject(wire.DefaultSubjectPrefix, hh)
			}
			h.publish(subj, id, ceBody(id, ceType, r.handler, r.config))
		}
	}
	// A duplicate: the same CE id again under another Nats-Msg-Id, once
	// the first has succeeded.
	require.Eventually(t, func() bool { return len(h.of("d-1.success")) == 1 }, 10*time.Second, 10*time.Millisecond)
	h.publish("imbi.actions.test.ok", "d-1.success.again", ceBody("d-1.success", wire.EventType, "test#ok", nil))

	dlqStream, err := h.env.JS.Stream(context.Background(), h.env.Config.DLQStream)
	require.NoError(t, err)
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			id := "d-1." + r.name
			want := r.want
			if r.name == "success" {
				want = append(want, step{wire.OutcomeDeduplicated, ""})
			}
			require.Eventually(t, func() bool { return len(h.of(id)) >= len(want) }, 15*time.Second, 20*time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			outs := h.of(id)
			require.Len(t, outs, len(want))
			for i, o := range outs {
				w := want[i]
				require.Equal(t, w.status, o.Data.Status, "attempt %d", i+1)
				require.Equal(t, w.reason, o.Data.Reason, "attempt %d", i+1)
				attempt := i + 1
				msgID := id
				if r.name == "success" && i == 1 {
					attempt, msgID = 1, "d-1.success.again"
				}
				require.Equal(t, attempt, o.Data.Attempt)
				require.Equal(t, msgID+"."+strconv.Itoa(attempt), o.ID)
				require.Empty(t, o.msgID, "no Nats-Msg-Id: readers deduplicate by the id (decision 0016)")
				require.Equal(t, wire.ContentTypeCE, o.ctype, "structured mode")
				require.Equal(t, wire.OutcomeEventType, o.Type)
				require.Equal(t, "/imbi-worker/w-1", o.Source)
				require.Equal(t, "w-1", o.Data.Worker)
				require.Equal(t, o.Data.Handler, o.Subject)
				if r.subject != "" {
					require.Equal(t, r.subject, o.subject)
				} else {
					require.Equal(t, "imbi.outcomes."+strings.Replace(r.handler, "#", ".", 1), o.subject)
					require.Equal(t, r.handler, o.Data.Handler)
				}
				if r.subject == "" && r.ceType == "" {
					require.Equal(t, &outcomes.Rule{ID: "r-7", Ordinal: 3}, o.Data.Rule)
					require.Equal(t, outcomes.Context{ProjectID: "p-1", ProjectSlug: "checkout"}, o.Data.Context)
					require.Equal(t, outcomes.EventInfo{Type: "push", WebhookID: "wh-1"}, o.Data.Event)
				}
				require.WithinDuration(t, time.Now(), o.Time, time.Minute)
				require.LessOrEqual(t, len(o.Data.Error), wire.DLQErrorMaxBytes)
				require.NotContains(t, string(o.raw), secret)
				switch o.Data.Status {
				case wire.OutcomeRetrying:
					require.NotNil(t, o.Data.NextAttemptAt)
					require.True(t, o.Data.NextAttemptAt.After(o.Time))
					if w.reason == wire.ReasonRateLimited {
						require.Equal(t, 300*time.Millisecond, o.Data.NextAttemptAt.Sub(o.Time), "retry-after")
					}
					require.NotEmpty(t, o.Data.Error)
				case wire.OutcomeDeadLettered:
					require.NotNil(t, o.Data.DeadLetter)
					require.Equal(t, h.env.Config.DLQStream, o.Data.DeadLetter.Stream)
					letter, err := dlqStream.GetMsg(context.Background(), o.Data.DeadLetter.Seq)
					require.NoError(t, err, "dead_letter.seq names the stored letter")
					require.Equal(t, string(w.reason), letter.Header.Get(wire.DLQReason))
					require.Equal(t, letter.Header.Get(wire.DLQError), strings.Join(strings.Fields(o.Data.Error), " "),
						"the letter's redacted error (the header has CR/LF as spaces)")
				case wire.OutcomeSucceeded, wire.OutcomeDeduplicated:
					require.Nil(t, o.Data.NextAttemptAt)
					require.Nil(t, o.Data.DeadLetter)
				}
				if r.name == "leak" {
					require.Contains(t, o.Data.Error, wire.Redacted)
				}
				doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.raw))
				require.NoError(t, err)
				require.NoError(t, sch.Validate(doc), "schema: %s", o.raw)
			}
		})
	}
}

// stall is a BeforeAck hook after the outcome hook that holds the first
// delivery of one action past AckWait and then fails it: the outcome is
// stored, the message is not acked — what a worker killed between the
// two leaves behind.
type stall struct {
	id      string
	release chan struct{}
	once    sync.Once
}

func (s *stall) BeforeAck(_ context.Context, st *worker.Settlement) error {
	if st.Event == nil || st.Event.ID() != s.id || st.Attempt != 1 {
		return nil
	}
	hold := false
	s.once.Do(func() { hold = true })
	if !hold {
		return nil
	}
	<-s.release
	return errors.New("killed")
}

// TestOutcomeSurvivesKillBeforeAck: the outcome is acknowledged before
// the message, so a worker that dies between the two leaves the message
// to be redelivered; the stored outcome stays and the redelivery adds
// its own (deduplicated: the done-marker was written). No outcome is lost.
func TestOutcomeSurvivesKillBeforeAck(t *testing.T) {
	t.Parallel()
	h := newHarness(t, time.Second)
	st := &stall{id: "d-kill.0", release: make(chan struct{})}
	h.start(h.config(st))
	h.publish("imbi.actions.test.ok", "d-kill.0", ceBody("d-kill.0", wire.EventType, "test#ok", nil))

	require.Eventually(t, func() bool { return len(h.of("d-kill.0")) == 1 }, 10*time.Second, 10*time.Millisecond,
		"the outcome is stored before the message call")
	require.Equal(t, wire.OutcomeSucceeded, h.of("d-kill.0")[0].Data.Status)
	// Redelivered after AckWait while the first delivery is "dead".
	require.Eventually(t, func() bool { return len(h.of("d-kill.0")) == 2 }, 10*time.Second, 20*time.Millisecond)
	close(st.release)
	outs := h.of("d-kill.0")
	require.Equal(t, "d-kill.0.1", outs[0].ID)
	require.Equal(t, "d-kill.0.2", outs[1].ID)
	require.Equal(t, wire.OutcomeDeduplicated, outs[1].Data.Status)
	requireWorkStreamEmpty(t, h)
}

func requireWorkStreamEmpty(t *testing.T, h *harness) {
	t.Helper()
	s, err := h.env.JS.Stream(context.Background(), h.env.Config.Stream)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	}, 10*time.Second, 20*time.Millisecond, "the message is acked in the end")
}

// TestOutcomeStreamDownKeepsMessage: when the outcome cannot be stored,
// a succeeded or dead-lettered message is not acked (the settler turns
// the decision into a retry); once the stream is back the outcome
// arrives and the message is settled.
func TestOutcomeStreamDownKeepsMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 0)
	ctx := context.Background()
	c := h.env.Config
	c.MaxDeliver = 100 // the outage costs deliveries: keep the crash-loop guard out of this test
	_, err := streams.Apply(ctx, h.env.JS, c)
	require.NoError(t, err)
	require.NoError(t, h.env.JS.DeleteStream(ctx, c.OutcomesStream))
	cfg := h.config()
	cfg.Streams, cfg.MaxAttempts = c, 50
	h.start(cfg)
	h.publish("imbi.actions.test.ok", "d-down.0", ceBody("d-down.0", wire.EventType, "test#ok", nil))
	h.publish("imbi.actions.test.permanent", "d-down.1", ceBody("d-down.1", wire.EventType, "test#permanent", nil))

	work, err := h.env.JS.Stream(ctx, h.env.Config.Stream)
	require.NoError(t, err)
	// Several attempts fail to store the outcome. The first attempt's
	// publish must be over before the stream comes back (the hook sends
	// "no responders" again for up to ~500 ms), or its succeeded is
	// stored and no deduplicated follows.
	time.Sleep(1500 * time.Millisecond)
	info, err := work.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(2), info.State.Msgs, "nothing acked without its outcome")

	_, err = streams.Apply(ctx, h.env.JS, c)
	require.NoError(t, err)
	// The ordered tap consumer was on the deleted stream: read afresh.
	r := outcomes.NewReader(h.env.JS, c.OutcomesStream, c.OutcomesPrefix)
	require.Eventually(t, func() bool {
		evs, err := r.Recent(ctx, outcomes.Filter{})
		return err == nil && len(evs) >= 2
	}, 15*time.Second, 50*time.Millisecond)
	requireWorkStreamEmpty(t, h)
	evs, err := r.Recent(ctx, outcomes.Filter{})
	require.NoError(t, err)
	byAction := map[string][]wire.OutcomeStatus{}
	for _, e := range evs {
		byAction[e.Data.ActionID] = append(byAction[e.Data.ActionID], e.Data.Status)
	}
	// The success's marker was stored before the outcome failed, so its
	// redelivery is a duplicate; the dead letter is published again
	// (dropped by the DLQ's dedup window) with its outcome.
	require.Contains(t, byAction["d-down.0"], wire.OutcomeDeduplicated)
	require.Contains(t, byAction["d-down.1"], wire.OutcomeDeadLettered)
	require.NotContains(t, byAction["d-down.0"], wire.OutcomeRetrying, "a terminal outcome that failed to store is not replaced by a retrying one")
}
