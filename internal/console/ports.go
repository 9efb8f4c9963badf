package console

import (
	"context"
	"errors"
	"time"
)

// The console reads outcomes and manages lanes through these two small
// interfaces, defined here at the consumer. The package that owns the
// IMBI_OUTCOMES stream and the imbi_lanes bucket (wire-contract v1.1 §B,
// §C) implements them; until it is wired, Config leaves them nil and the
// endpoints answer 503 with ErrNotEnabled's text.

// ErrNotEnabled is the 503 body of an outcomes or lanes endpoint whose
// store is not wired.
var ErrNotEnabled = errors.New("not enabled in this worker")

// Outcome statuses (v1.1 §C data.status).
const (
	OutcomeSucceeded    = "succeeded"
	OutcomeRetrying     = "retrying"
	OutcomeDeadLettered = "dead_lettered"
	OutcomeDeduplicated = "deduplicated"
	OutcomePaused       = "paused"
)

// OutcomeStatuses are the valid Outcome.Status values.
var OutcomeStatuses = []string{OutcomeSucceeded, OutcomeRetrying, OutcomeDeadLettered, OutcomeDeduplicated, OutcomePaused}

// Outcome is one outcome event (v1.1 §C): the CloudEvent's id and time and
// its data, flattened. Error is already redacted by the worker.
type Outcome struct {
	ID            string           `json:"id"`   // <action CE id>.<delivery attempt>
	Time          time.Time        `json:"time"` // when the settle decision was made
	ActionID      string           `json:"action_id"`
	Handler       string           `json:"handler"`
	Status        string           `json:"status"`
	Reason        string           `json:"reason,omitempty"`
	Error         string           `json:"error,omitempty"`
	Attempt       int              `json:"attempt"`
	DurationMS    int64            `json:"duration_ms"`
	NextAttemptAt time.Time        `json:"next_attempt_at,omitzero"`
	DeadLetter    *OutcomeDLQ      `json:"dead_letter,omitempty"`
	Rule          *OutcomeRule     `json:"rule,omitempty"`
	Chain         *OutcomeChain    `json:"chain,omitempty"`
	Context       OutcomeContext   `json:"context"`
	Event         OutcomeEventInfo `json:"event"`
	Worker        string           `json:"worker,omitempty"`
}

// OutcomeDLQ is data.dead_letter: where a dead_lettered outcome's letter is.
type OutcomeDLQ struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
}

// OutcomeRule is data.rule.
type OutcomeRule struct {
	ID      string `json:"id"`
	Ordinal int    `json:"ordinal"`
}

// OutcomeChain is data.chain.
type OutcomeChain struct {
	ID       string `json:"id"`
	Position int    `json:"position"`
}

// OutcomeContext is data.context.
type OutcomeContext struct {
	ProjectID   string `json:"project_id,omitempty"`
	ProjectSlug string `json:"project_slug,omitempty"`
}

// OutcomeEventInfo is data.event.
type OutcomeEventInfo struct {
	Type      string `json:"type,omitempty"`
	WebhookID string `json:"webhook_id,omitempty"`
}

// OutcomeFilter selects outcomes; empty fields match everything.
type OutcomeFilter struct {
	// Handler is "<plugin>#<action>" or a bare "<plugin>" (all its actions).
	Handler string
	// Status is one of OutcomeStatuses.
	Status string
	// Project matches Context.ProjectID or Context.ProjectSlug.
	Project string
	// Since bounds Outcome.Time (inclusive); zero: unbounded.
	Since time.Time
	// Limit is the most outcomes to return, newest first (the console
	// always sets it, 1..1000).
	Limit int
}

// OutcomeReader returns recent outcomes, newest first.
type OutcomeReader interface {
	Recent(ctx context.Context, f OutcomeFilter) ([]Outcome, error)
}

// LaneKey names a lane (v1.1 §B): a plugin slug and the credential set in
// use (plugin.id). An empty PluginID in Pause/Resume means every lane of
// the plugin.
type LaneKey struct {
	Plugin   string `json:"plugin"`
	PluginID string `json:"plugin_id,omitempty"`
}

// Lane is one lane's state as kept in the imbi_lanes bucket.
type Lane struct {
	LaneKey
	Paused bool `json:"paused"`
	// PausedUntil is when the pause ends; zero while paused means until
	// resumed by hand.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	// SetBy is who paused it: "worker" for a rate limit, or the operator.
	SetBy string    `json:"set_by,omitempty"`
	SetAt time.Time `json:"set_at,omitzero"`
}

// PauseRequest pauses a lane (or every lane of a plugin).
type PauseRequest struct {
	Lane LaneKey
	// Until is when the pause ends by itself; zero: until resumed.
	Until  time.Time
	Reason string
	By     string
}

// LaneStore lists, pauses and resumes lanes.
type LaneStore interface {
	List(ctx context.Context) ([]Lane, error)
	Pause(ctx context.Context, p PauseRequest) error
	Resume(ctx context.Context, key LaneKey, by string) error
}
