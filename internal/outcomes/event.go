// Package outcomes publishes and reads outcome events (wire-contract
// v1.1 §C, docs/wire-contract.md §C): one CloudEvent per settle decision
// on the IMBI_OUTCOMES stream, published and acknowledged before the
// action message is settled (Hook), and read back for `imbi-worker
// outcomes tail` and the operator console (Reader).
package outcomes

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Event is an outcome CloudEvent in structured mode
// (testdata/schemas/action-outcome.v1.json).
type Event struct {
	SpecVersion     string    `json:"specversion"`
	Type            string    `json:"type"`
	Source          string    `json:"source"`
	ID              string    `json:"id"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            Data      `json:"data"`
}

// Data is the outcome event's data.
type Data struct {
	ActionID      string             `json:"action_id"`
	Handler       string             `json:"handler"`
	Status        wire.OutcomeStatus `json:"status"`
	Reason        wire.Reason        `json:"reason,omitempty"`
	Error         string             `json:"error,omitempty"`
	Attempt       int                `json:"attempt"`
	DurationMS    int64              `json:"duration_ms"`
	NextAttemptAt *time.Time         `json:"next_attempt_at,omitempty"`
	DeadLetter    *DeadLetter        `json:"dead_letter,omitempty"`
	Rule          *Rule              `json:"rule,omitempty"`
	Chain         *Chain             `json:"chain,omitempty"`
	Context       Context            `json:"context"`
	Event         EventInfo          `json:"event"`
	Worker        string             `json:"worker"`
}

// DeadLetter is where a dead_lettered outcome's letter is stored.
type DeadLetter struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
}

// Rule is the matched rule's id and ordinal.
type Rule struct {
	ID      string `json:"id,omitempty"`
	Ordinal int    `json:"ordinal"`
}

// Chain is the step's chain (v1.1 §A) when the action is one.
type Chain struct {
	ID       string `json:"id"`
	Position int    `json:"position"`
}

// Context names the project.
type Context struct {
	ProjectID   string `json:"project_id,omitempty"`
	ProjectSlug string `json:"project_slug,omitempty"`
}

// EventInfo names the webhook delivery.
type EventInfo struct {
	Type      string `json:"type,omitempty"`
	WebhookID string `json:"webhook_id,omitempty"`
}

// maxActionIDLen bounds data.action_id: a longer CloudEvent id is
// replaced by sha256.<hex> (as the done-marker key is).
const maxActionIDLen = 1000

// maxHandlerLen bounds data.handler (the envelope schema's bound).
const maxHandlerLen = 256

// StatusOf maps a settle decision kind to an outcome status; false when
// the decision gets no outcome (Abandon: nothing was decided, the
// redelivery's decision has its own; Requeue of a message whose action
// never started: nothing happened).
func StatusOf(kind worker.Kind, ran bool) (wire.OutcomeStatus, bool) {
	switch kind {
	case worker.KindAck:
		return wire.OutcomeSucceeded, true
	case worker.KindDuplicate:
		return wire.OutcomeDeduplicated, true
	case worker.KindRetry:
		return wire.OutcomeRetrying, true
	case worker.KindDefer:
		return wire.OutcomePaused, true
	case worker.KindDeadLetter:
		return wire.OutcomeDeadLettered, true
	case worker.KindRequeue:
		// An action cut off by shutdown ran and is retried at once.
		return wire.OutcomeRetrying, ran
	}
	return "", false
}

// Build makes the outcome event of a settlement and its NATS subject;
// ok is false when the decision gets no outcome (StatusOf). prefix is the
// outcome subject prefix, workerID this worker's id.
func Build(s *worker.Settlement, prefix, workerID string) (ev Event, subject string, ok bool) {
	dec := s.Decision
	status, ok := StatusOf(dec.Kind, dec.Result.Ran)
	if !ok {
		return Event{}, "", false
	}
	at := dec.At.UTC()
	d := Data{Status: status, Attempt: max(s.Attempt, 1), DurationMS: dec.Result.ActionDuration.Milliseconds(), Worker: workerID}
	d.ActionID = actionID(s)
	base := d.ActionID
	if s.Msg != nil {
		// The work message's Nats-Msg-Id: the CE id for an ordinary
		// publish (v1.1 §C's <action CE id>), <ce id>.replay.<n> for a
		// dead letter's replay, whose delivery attempts start at 1 again
		// and must not collide with the original's outcomes (decision
		// 0011: readers deduplicate by id, decision 0016).
		if mid := s.Msg.Headers().Get(wire.HeaderMsgID); mid != "" {
			base = bounded(mid)
		}
	}

	raw := ""
	if s.Event != nil {
		raw = s.Event.Data.Rule.Handler
		if raw == "" {
			raw = s.Event.Event.Subject()
		}
		data := &s.Event.Data
		if data.Rule.Handler != "" { // else the data was not decoded (unsupported_type)
			d.Rule = &Rule{ID: data.Rule.ID, Ordinal: data.Rule.Ordinal}
		}
		d.Context = Context{ProjectID: data.Context.ProjectID, ProjectSlug: data.Context.ProjectSlug}
		d.Event = EventInfo{Type: data.Event.Type, WebhookID: data.Event.Metadata.WebhookID}
		if c := s.Event.Chain; c != nil { // a chain step (v1.1 §A)
			d.Chain = &Chain{ID: c.ID, Position: c.Position}
		}
	}
	subject = prefix + "." + wire.InvalidToken
	if h, canonical, ok := parsedHandler(s, raw); ok && dec.Reason != wire.ReasonInvalidEvent {
		d.Handler = canonical
		subject = prefix + "." + h.Plugin + "." + h.Action
	} else {
		d.Handler = dispatch.Truncate(raw, maxHandlerLen)
		if d.Handler == "" {
			d.Handler = wire.InvalidToken
		}
	}

	if status != wire.OutcomeSucceeded && status != wire.OutcomeDeduplicated {
		d.Reason = dec.Reason
		if d.Reason == "" {
			d.Reason = wire.ReasonUnavailable // a requeue cut off by shutdown
		}
	}
	if status != wire.OutcomeSucceeded && dec.ErrorText != "" {
		// Already redacted by whoever decided; again here so no path can
		// put a token-shaped string or more than 1 KiB into an outcome.
		d.Error = dispatch.RedactText(dec.ErrorText, nil)
	}
	switch status {
	case wire.OutcomeRetrying, wire.OutcomePaused:
		next := at.Add(dec.Delay)
		d.NextAttemptAt = &next
	case wire.OutcomeDeadLettered:
		if s.LetterAck != nil {
			d.DeadLetter = &DeadLetter{Stream: s.LetterAck.Stream, Seq: s.LetterAck.Sequence}
		}
	}
	ev = Event{SpecVersion: "1.0", Type: wire.OutcomeEventType, Source: wire.OutcomeSourcePrefix + workerID,
		ID: base + "." + strconv.Itoa(d.Attempt), Subject: d.Handler, Time: at,
		DataContentType: wire.ContentTypeJSON, Data: d}
	return ev, subject, true
}

// parsedHandler parses raw (wire.ParseHandler). The worker has done so
// already for every handler it knows: Settlement.Handler is then
// raw's canonical form, and when raw is written that way (as every
// publisher in this repository writes it) its parts are split off without
// parsing it again (the handler regex was ≈ 1.4 µs of a succeeded
// outcome's cost in the worker's profile).
func parsedHandler(s *worker.Settlement, raw string) (h wire.Handler, canonical string, ok bool) {
	if raw != "" && raw == s.Handler {
		if plugin, action, ok := strings.Cut(raw, "#"); ok {
			return wire.Handler{Plugin: plugin, Action: action}, raw, true
		}
	}
	h, err := wire.ParseHandler(raw)
	if err != nil {
		return h, "", false
	}
	return h, h.String(), true
}

// actionID is the action's CloudEvent id; for bytes that are not a
// CloudEvent, the message's Nats-Msg-Id, else <stream>.<stream seq>.
func actionID(s *worker.Settlement) string {
	id := ""
	if s.Event != nil {
		id = s.Event.ID()
	}
	if id == "" && s.Msg != nil {
		id = s.Msg.Headers().Get(wire.HeaderMsgID)
	}
	if id == "" && s.Meta != nil {
		id = s.Meta.Stream + "." + strconv.FormatUint(s.Meta.Sequence.Stream, 10)
	}
	if id == "" {
		id = wire.InvalidToken
	}
	return bounded(id)
}

// bounded replaces an id longer than maxActionIDLen by sha256.<hex>.
func bounded(id string) string {
	if len(id) > maxActionIDLen {
		sum := sha256.Sum256([]byte(id))
		return "sha256." + hex.EncodeToString(sum[:])
	}
	return id
}
