package wire

import "strconv"

// Ordered rule chains (wire-contract §A, v1.1): data.chain on an action
// event makes the worker publish the next rule only when this one reached
// a terminal outcome.

// Chain is data.chain.
type Chain struct {
	// ID is unique per (delivery, project); the CE id of a later step is
	// "<ID>.<rule.ordinal>" (ChainStepID).
	ID string `json:"id"`
	// Position is 0 for the first rule, +1 per step.
	Position int `json:"position"`
	// OnFailure is ChainContinue (the default when empty) or ChainStop.
	OnFailure string `json:"on_failure,omitempty"`
	// Next are the remaining rules, in order.
	Next []ChainStep `json:"next,omitempty"`
}

// ChainStep is one entry of data.chain.next: the rule and plugin the
// next step's data gets.
type ChainStep struct {
	Rule   Rule       `json:"rule"`
	Plugin *PluginRef `json:"plugin,omitempty"`
}

// Chain failure policies.
const (
	ChainContinue = "continue"
	ChainStop     = "stop"
)

// Chain bounds.
const (
	// MaxChainSteps bounds a chain: position + 1 + len(next).
	MaxChainSteps = 64
	// MaxChainIDBytes bounds chain.id (it is part of every step's CE id
	// and Nats-Msg-Id).
	MaxChainIDBytes = 200
)

// Chain headers. A dead letter of a chain step carries its id and
// position; DLQChainContinued says the next step was published before
// the letter (on_failure continue). Replay copies DLQChainContinued onto
// the republished message as HeaderChainContinued, and the worker then
// does not continue the chain again.
const (
	DLQChainID           = "Imbi-Dlq-Chain-Id"
	DLQChainPosition     = "Imbi-Dlq-Chain-Position"
	DLQChainContinued    = "Imbi-Dlq-Chain-Continued"
	HeaderChainContinued = "Imbi-Chain-Continued"
)

// StopsOnFailure reports whether a dead-lettered step ends the chain.
func (c *Chain) StopsOnFailure() bool { return c.OnFailure == ChainStop }

// ChainStepID is the CE id (and Nats-Msg-Id) of a chain step after the
// first.
func ChainStepID(chainID string, ordinal int) string {
	return chainID + "." + strconv.Itoa(ordinal)
}

// ValidChainID reports whether id may be a chain.id: 1 to MaxChainIDBytes
// printable ASCII characters, no space (it becomes part of CE ids and
// Nats-Msg-Id headers).
func ValidChainID(id string) bool {
	if id == "" || len(id) > MaxChainIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
