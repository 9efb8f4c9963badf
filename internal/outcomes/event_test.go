package outcomes_test

import (
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/internal/outcomes"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Decisions that no worker test reaches yet: a lane's Defer (v1.1 §B,
// another change decides it) and shutdown's Requeue and Abandon.
func TestBuildDecisionKinds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		dec    worker.Decision
		ok     bool
		status wire.OutcomeStatus
		reason wire.Reason
		next   time.Duration
	}{
		{"defer is paused", worker.Decision{Kind: worker.KindDefer, Reason: wire.ReasonRateLimited, Delay: 90 * time.Second, At: at, ErrorText: "slow down"},
			true, wire.OutcomePaused, wire.ReasonRateLimited, 90 * time.Second},
		{"requeue after running is retrying", worker.Decision{Kind: worker.KindRequeue, Reason: wire.ReasonActionFailed, At: at,
			Result: dispatch.Result{Ran: true, ActionDuration: 1500 * time.Millisecond}}, true, wire.OutcomeRetrying, wire.ReasonActionFailed, 0},
		{"requeue without reason", worker.Decision{Kind: worker.KindRequeue, At: at, Result: dispatch.Result{Ran: true}},
			true, wire.OutcomeRetrying, wire.ReasonUnavailable, 0},
		{"requeue before running: none", worker.Decision{Kind: worker.KindRequeue, At: at}, false, "", "", 0},
		{"abandon: none", worker.Decision{Kind: worker.KindAbandon, At: at, Result: dispatch.Result{Ran: true}}, false, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &worker.Settlement{Decision: tc.dec, Attempt: 3,
				Meta: &jetstream.MsgMetadata{Stream: "IMBI_ACTIONS", Sequence: jetstream.SequencePair{Stream: 42}}}
			ev, subject, ok := outcomes.Build(s, "imbi.outcomes", "w-9")
			require.Equal(t, tc.ok, ok)
			if !ok {
				return
			}
			require.Equal(t, "imbi.outcomes._invalid", subject)
			require.Equal(t, "IMBI_ACTIONS.42.3", ev.ID)
			require.Equal(t, tc.status, ev.Data.Status)
			require.Equal(t, tc.reason, ev.Data.Reason)
			require.NotNil(t, ev.Data.NextAttemptAt)
			require.Equal(t, at.Add(tc.next), *ev.Data.NextAttemptAt)
			require.Equal(t, tc.dec.Result.ActionDuration.Milliseconds(), ev.Data.DurationMS)
			require.Equal(t, tc.dec.ErrorText, ev.Data.Error)
		})
	}
}

// A chain step's outcome names its chain and position (v1.1 §C data.chain).
func TestBuildChainStep(t *testing.T) {
	t.Parallel()
	ce := event.New()
	ce.SetID("d-1.p-1.1")
	msg := &envelope.Message{Event: ce, Chain: &wire.Chain{ID: "d-1.p-1", Position: 1}}
	msg.Data.Rule = wire.Rule{ID: "r-2", Handler: "chaos#record", Ordinal: 1}
	s := &worker.Settlement{Decision: worker.Decision{Kind: worker.KindAck, At: time.Now()}, Attempt: 1, Event: msg,
		Meta: &jetstream.MsgMetadata{Stream: "IMBI_ACTIONS", Sequence: jetstream.SequencePair{Stream: 7}}}
	ev, subject, ok := outcomes.Build(s, "imbi.outcomes", "w-1")
	require.True(t, ok)
	require.Equal(t, "imbi.outcomes.chaos.record", subject)
	require.Equal(t, &outcomes.Chain{ID: "d-1.p-1", Position: 1}, ev.Data.Chain)

	s.Event.Chain = nil
	ev, _, ok = outcomes.Build(s, "imbi.outcomes", "w-1")
	require.True(t, ok)
	require.Nil(t, ev.Data.Chain, "a message without a chain has none")
}

// The handler the worker already parsed (Settlement.Handler) gives the
// same outcome as parsing the event's handler again, and only a handler
// written in its canonical form is taken from it: a legacy or invalid one
// is parsed as before.
func TestBuildHandlerFromSettlement(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, raw, known string // known: Settlement.Handler as the worker sets it
		subject, handler string
	}{
		{"canonical", "github#create_issue", "github#create_issue", "imbi.outcomes.github.create_issue", "github#create_issue"},
		{"legacy separator", "github:create_issue", "github#create_issue", "imbi.outcomes.github.create_issue", "github#create_issue"},
		{"unknown to the worker", "nope#x", "_unknown", "imbi.outcomes.nope.x", "nope#x"},
		{"invalid", "Not A Handler", "_unknown", "imbi.outcomes._invalid", "Not A Handler"},
		{"not split at all", "_unknown", "_unknown", "imbi.outcomes._invalid", "_unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := worker.Decision{Kind: worker.KindAck, At: at}
			parsed := settlementOf("d-1", tc.raw, dec, 1)
			want, wantSubject, ok := outcomes.Build(parsed, "imbi.outcomes", "w-1")
			require.True(t, ok)
			known := settlementOf("d-1", tc.raw, dec, 1)
			known.Handler = tc.known
			got, subject, ok := outcomes.Build(known, "imbi.outcomes", "w-1")
			require.True(t, ok)
			require.Equal(t, want, got)
			require.Equal(t, wantSubject, subject)
			require.Equal(t, tc.subject, subject)
			require.Equal(t, tc.handler, got.Data.Handler)
		})
	}
}
