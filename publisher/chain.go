package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aweber-imbi/imbi-worker/wire"
	"github.com/aweber-imbi/imbi-worker/wire/wiredata"
)

// Chain is the matched rules of one (delivery, project), to run in order
// (wire-contract §A): PublishChain publishes the first rule with data.chain
// holding the rest, and the worker publishes each next rule when the one
// before it reached a terminal outcome.
type Chain struct {
	// ID is data.chain.id, unique per (delivery, project). Empty means
	// "<DeliveryID>.<Data.Context.ProjectID>".
	ID string
	// DeliveryID: the first step's CE id is "<DeliveryID>.<ordinal>"
	// (EventID), as an unchained rule's; later steps' are
	// "<ID>.<ordinal>".
	DeliveryID string
	ReceivedAt time.Time
	// OnFailure is wire.ChainContinue (the default, the gateway's
	// behaviour) or wire.ChainStop.
	OnFailure string
	// Data is what every step shares: Context, ExternalIdentifier and
	// Event (Rule and Plugin are taken from Rules).
	Data wiredata.ActionData
	// Rules in the order they run (ordinal order); at most
	// wire.MaxChainSteps, ordinals increasing.
	Rules []ChainRule
}

// ChainRule is one rule of a chain and the plugin that holds its
// credentials.
type ChainRule struct {
	Rule   wire.Rule
	Plugin *wire.PluginRef
}

// NewChainEvent builds the CloudEvent of c's first step. Errors are
// *InvalidMessageError.
func NewChainEvent(c Chain) (event.Event, error) {
	if len(c.Rules) == 0 {
		return event.Event{}, &InvalidMessageError{Field: "rules", Reason: "a chain needs at least one rule"}
	}
	if len(c.Rules) > wire.MaxChainSteps {
		return event.Event{}, &InvalidMessageError{Field: "rules", Reason: fmt.Sprintf("%d rules, more than %d", len(c.Rules), wire.MaxChainSteps)}
	}
	switch c.OnFailure {
	case "", wire.ChainContinue, wire.ChainStop:
	default:
		return event.Event{}, &InvalidMessageError{Field: "on_failure", Reason: fmt.Sprintf("%q is not continue or stop", c.OnFailure)}
	}
	id := c.ID
	if id == "" {
		if c.DeliveryID == "" || c.Data.Context.ProjectID == "" {
			return event.Event{}, &InvalidMessageError{Field: "chain.id", Reason: "required when delivery_id or context.project_id is missing"}
		}
		id = c.DeliveryID + "." + c.Data.Context.ProjectID
	}
	if !wire.ValidChainID(id) {
		return event.Event{}, &InvalidMessageError{Field: "chain.id", Reason: fmt.Sprintf("must be 1-%d printable ASCII bytes without spaces", wire.MaxChainIDBytes)}
	}
	next := make([]wire.ChainStep, 0, len(c.Rules)-1)
	for i, r := range c.Rules {
		h, err := wire.ParseHandler(r.Rule.Handler)
		if err != nil {
			return event.Event{}, &InvalidMessageError{Field: fmt.Sprintf("rules[%d].handler", i), Reason: "not <plugin_slug>#<action_name>", Err: err}
		}
		if i > 0 && r.Rule.Ordinal <= c.Rules[i-1].Rule.Ordinal {
			return event.Event{}, &InvalidMessageError{Field: fmt.Sprintf("rules[%d].ordinal", i), Reason: "ordinals must increase along the chain"}
		}
		if i > 0 {
			rule := r.Rule
			rule.Handler = h.String()
			next = append(next, wire.ChainStep{Rule: rule, Plugin: r.Plugin})
		}
	}
	data := c.Data
	data.Rule, data.Plugin = c.Rules[0].Rule, c.Rules[0].Plugin
	ch := &wire.Chain{ID: id, Position: 0, OnFailure: c.OnFailure, Next: next}
	if len(next) == 0 {
		ch.Next = nil
	}
	return NewEvent(Message{DeliveryID: c.DeliveryID, ReceivedAt: c.ReceivedAt, Data: data, Chain: ch})
}

// PublishChain publishes c's first step and waits for the server's ack.
func (p *Publisher) PublishChain(ctx context.Context, c Chain) (*jetstream.PubAck, error) {
	ev, err := NewChainEvent(c)
	if err != nil {
		return nil, err
	}
	return p.PublishEvent(ctx, ev)
}
