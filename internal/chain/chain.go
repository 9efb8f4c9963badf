// Package chain parses and validates data.chain, an ordered rule chain
// (wire-contract v1.1 §A). internal/envelope hands it the raw member it
// found while decoding data; a bad chain is invalid_event there.
package chain

import (
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"

	"github.com/aweber-imbi/imbi-worker/wire"
)

type rawChain struct {
	ID        *string   `json:"id"`
	Position  *int      `json:"position"`
	OnFailure *string   `json:"on_failure"`
	Next      []rawStep `json:"next"`
}

type rawStep struct {
	Rule   *rawRule        `json:"rule"`
	Plugin *wire.PluginRef `json:"plugin"`
}

type rawRule struct {
	ID            *string        `json:"id"`
	Handler       string         `json:"handler"`
	HandlerConfig jsontext.Value `json:"handler_config"`
	Ordinal       *int           `json:"ordinal"`
}

// Parse returns the chain of raw, data.chain's value (nil when raw is
// empty or null), validated against the event's id and rule. Names match
// exactly (json/v2, as JSON Schema matches them).
func Parse(raw jsontext.Value, ceID string, rule wire.Rule) (*wire.Chain, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var c rawChain
	if err := jsonv2.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("data.chain: %w", err)
	}
	return validate(&c, ceID, rule)
}

func invalid(format string, args ...any) error { return fmt.Errorf(format, args...) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validate checks a chain (wire-contract §A) and returns its typed form.
func validate(raw *rawChain, ceID string, rule wire.Rule) (*wire.Chain, error) {
	c := &wire.Chain{}
	switch {
	case raw.ID == nil:
		return nil, invalid("data.chain.id is required")
	case !wire.ValidChainID(*raw.ID):
		return nil, invalid("data.chain.id must be 1-%d printable ASCII bytes without spaces", wire.MaxChainIDBytes)
	case raw.Position == nil:
		return nil, invalid("data.chain.position is required")
	case *raw.Position < 0 || *raw.Position >= wire.MaxChainSteps:
		return nil, invalid("data.chain.position %d is outside 0-%d", *raw.Position, wire.MaxChainSteps-1)
	}
	c.ID, c.Position = *raw.ID, *raw.Position
	if raw.OnFailure != nil {
		switch *raw.OnFailure {
		case "", wire.ChainContinue, wire.ChainStop:
			c.OnFailure = *raw.OnFailure
		default:
			return nil, invalid("data.chain.on_failure %q is not continue or stop", truncate(*raw.OnFailure, 32))
		}
	}
	if steps := c.Position + 1 + len(raw.Next); steps > wire.MaxChainSteps {
		return nil, invalid("data.chain has %d steps, more than %d", steps, wire.MaxChainSteps)
	}
	if c.Position > 0 {
		// A later step carries the id the worker derived for it; any other
		// id means position and rule do not belong together.
		if want := wire.ChainStepID(c.ID, rule.Ordinal); ceID != want {
			return nil, invalid("data.chain.position %d does not match: a later step's id must be %q", c.Position, truncate(want, 256))
		}
	}
	prev := rule.Ordinal
	if len(raw.Next) > 0 {
		c.Next = make([]wire.ChainStep, len(raw.Next))
	}
	for i, s := range raw.Next {
		if s.Rule == nil {
			return nil, invalid("data.chain.next[%d].rule is required", i)
		}
		h, err := wire.ParseHandler(s.Rule.Handler)
		if err != nil {
			return nil, invalid("data.chain.next[%d].rule.handler %q is not <plugin_slug>#<action_name>", i, truncate(s.Rule.Handler, 64))
		}
		if s.Rule.Ordinal == nil {
			return nil, invalid("data.chain.next[%d].rule.ordinal is required", i)
		}
		if *s.Rule.Ordinal <= prev {
			return nil, invalid("data.chain.next[%d].rule.ordinal %d does not follow %d", i, *s.Rule.Ordinal, prev)
		}
		prev = *s.Rule.Ordinal
		step := wire.ChainStep{Rule: wire.Rule{Handler: h.String(), Ordinal: *s.Rule.Ordinal}, Plugin: s.Plugin}
		if s.Rule.ID != nil {
			step.Rule.ID = *s.Rule.ID
		}
		if len(s.Rule.HandlerConfig) > 0 && string(s.Rule.HandlerConfig) != "null" {
			switch s.Rule.HandlerConfig.Kind() {
			case '{', '[', '"':
			default:
				return nil, invalid("data.chain.next[%d].rule.handler_config is not an object, array, string or null", i)
			}
			step.Rule.HandlerConfig = append([]byte(nil), s.Rule.HandlerConfig...)
		}
		c.Next[i] = step
	}
	return c, nil
}
