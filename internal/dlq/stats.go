package dlq

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"time"
)

// Group is the count and time span of letters sharing a key.
type Group struct {
	Key    string    `json:"key"`
	Count  int       `json:"count"`
	Oldest time.Time `json:"oldest"`
	Newest time.Time `json:"newest"`
}

// Stats groups letters by reason and by handler.
type Stats struct {
	Total     int     `json:"total"`
	ByReason  []Group `json:"by_reason"`
	ByHandler []Group `json:"by_handler"`
	// ByReasonHandler counts each (reason, handler) pair, keyed
	// "<reason> <handler>": the table an operator triages from.
	ByReasonHandler []Group `json:"by_reason_handler"`
	// ByChain counts the letters of chain steps by chain id (letters
	// outside a chain are not in it); ByChainPosition by
	// "<chain id> <position>".
	ByChain         []Group `json:"by_chain,omitempty"`
	ByChainPosition []Group `json:"by_chain_position,omitempty"`
}

// Stats summarises the letters f selects.
func (s *Store) Stats(ctx context.Context, f Filter) (Stats, error) {
	acc := newStatsAccumulator()
	if err := s.Each(ctx, f, func(l Letter) error {
		acc.add(l)
		return nil
	}); err != nil {
		return Stats{}, err
	}
	return acc.result(), nil
}

type statsAccumulator struct {
	total                     int
	reason, handler, combined map[string]*Group
	chain, chainPosition      map[string]*Group
}

func newStatsAccumulator() *statsAccumulator {
	return &statsAccumulator{reason: map[string]*Group{}, handler: map[string]*Group{}, combined: map[string]*Group{},
		chain: map[string]*Group{}, chainPosition: map[string]*Group{}}
}

func (a *statsAccumulator) add(l Letter) {
	a.total++
	reason := l.Reason
	if reason == "" {
		reason = "(none)"
	}
	if l.LastReason != "" {
		reason += "/" + l.LastReason
	}
	handler := l.Handler
	if handler == "" {
		handler = "(unknown)"
	}
	when := l.When()
	bump(a.reason, reason, when)
	bump(a.handler, handler, when)
	bump(a.combined, reason+" "+handler, when)
	if l.ChainID != "" {
		bump(a.chain, l.ChainID, when)
		pos := "?"
		if l.ChainPosition != nil {
			pos = strconv.Itoa(*l.ChainPosition)
		}
		bump(a.chainPosition, l.ChainID+" "+pos, when)
	}
}

func bump(m map[string]*Group, key string, when time.Time) {
	g := m[key]
	if g == nil {
		g = &Group{Key: key, Oldest: when, Newest: when}
		m[key] = g
	}
	g.Count++
	if when.Before(g.Oldest) {
		g.Oldest = when
	}
	if when.After(g.Newest) {
		g.Newest = when
	}
}

func (a *statsAccumulator) result() Stats {
	sorted := func(m map[string]*Group) []Group {
		out := make([]Group, 0, len(m))
		for _, g := range m {
			out = append(out, *g)
		}
		// Biggest first; ties by key so output is deterministic.
		slices.SortFunc(out, func(x, y Group) int {
			if c := cmp.Compare(y.Count, x.Count); c != 0 {
				return c
			}
			return cmp.Compare(x.Key, y.Key)
		})
		return out
	}
	st := Stats{Total: a.total, ByReason: sorted(a.reason), ByHandler: sorted(a.handler), ByReasonHandler: sorted(a.combined)}
	if len(a.chain) > 0 {
		st.ByChain, st.ByChainPosition = sorted(a.chain), sorted(a.chainPosition)
	}
	return st
}
