package outcomes

import (
	"context"

	"github.com/aweber-imbi/imbi-worker/internal/console"
)

// ConsoleReader is the console's OutcomeReader on the outcome stream.
type ConsoleReader struct{ R *Reader }

// Recent implements console.OutcomeReader: newest first, bounded as
// Reader.Recent is.
func (c ConsoleReader) Recent(ctx context.Context, f console.OutcomeFilter) ([]console.Outcome, error) {
	evs, err := c.R.Recent(ctx, Filter{Handler: f.Handler, Status: f.Status, Project: f.Project, Since: f.Since, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]console.Outcome, 0, len(evs))
	for i := range evs {
		out = append(out, ToConsole(&evs[i].Event))
	}
	return out, nil
}

// ToConsole flattens an outcome event into the console's Outcome.
func ToConsole(ev *Event) console.Outcome {
	d := &ev.Data
	o := console.Outcome{ID: ev.ID, Time: ev.Time, ActionID: d.ActionID, Handler: d.Handler, Status: string(d.Status),
		Reason: string(d.Reason), Error: d.Error, Attempt: d.Attempt, DurationMS: d.DurationMS, Worker: d.Worker,
		Context: console.OutcomeContext{ProjectID: d.Context.ProjectID, ProjectSlug: d.Context.ProjectSlug},
		Event:   console.OutcomeEventInfo{Type: d.Event.Type, WebhookID: d.Event.WebhookID}}
	if d.NextAttemptAt != nil {
		o.NextAttemptAt = *d.NextAttemptAt
	}
	if d.DeadLetter != nil {
		o.DeadLetter = &console.OutcomeDLQ{Stream: d.DeadLetter.Stream, Seq: d.DeadLetter.Seq}
	}
	if d.Rule != nil {
		o.Rule = &console.OutcomeRule{ID: d.Rule.ID, Ordinal: d.Rule.Ordinal}
	}
	if d.Chain != nil {
		o.Chain = &console.OutcomeChain{ID: d.Chain.ID, Position: d.Chain.Position}
	}
	return o
}
