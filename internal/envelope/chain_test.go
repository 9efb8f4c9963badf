package envelope

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

func chainNext(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = map[string]any{"rule": map[string]any{"handler": "gateway-actions#add_deployment_event", "ordinal": i + 1},
			"plugin": map[string]any{"id": "pl-2", "slug": "gateway-actions"}}
	}
	return out
}

// withChain sets data.chain (and the CE id) of the valid body.
func withChain(id string, chain any) func(map[string]any) {
	return func(ev map[string]any) {
		ev["id"] = id
		ev["data"].(map[string]any)["chain"] = chain
	}
}

func TestDecodeChain(t *testing.T) {
	ok := func() map[string]any {
		return map[string]any{"id": "d-1.p-1", "position": 0, "on_failure": "stop", "next": chainNext(2)}
	}
	with := func(k string, v any) map[string]any { c := ok(); c[k] = v; return c }
	tests := []struct {
		name    string
		id      string
		chain   any
		wantErr string // "" accepts
		check   func(t *testing.T, c *wire.Chain)
	}{
		{name: "absent", id: "d-1.0", chain: nil},
		{name: "first step", id: "d-1.0", chain: ok(), check: func(t *testing.T, c *wire.Chain) {
			require.Equal(t, "d-1.p-1", c.ID)
			require.True(t, c.StopsOnFailure())
			require.Len(t, c.Next, 2)
			require.Equal(t, "gateway-actions#add_deployment_event", c.Next[1].Rule.Handler)
			require.Equal(t, 2, c.Next[1].Rule.Ordinal)
			require.Equal(t, "pl-2", c.Next[0].Plugin.ID)
		}},
		{name: "legacy handler normalised", id: "d-1.0", chain: with("next", []any{map[string]any{"rule": map[string]any{"handler": "gh:create", "ordinal": 3, "handler_config": "{}"}}}),
			check: func(t *testing.T, c *wire.Chain) { require.Equal(t, "gh#create", c.Next[0].Rule.Handler) }},
		{name: "last step", id: "d-1.p-1.0", chain: map[string]any{"id": "d-1.p-1", "position": 2}, check: func(t *testing.T, c *wire.Chain) {
			require.Empty(t, c.Next)
			require.False(t, c.StopsOnFailure())
		}},
		{name: "later step with its derived id", id: "d-1.p-1.0", chain: with("position", 1)},
		{name: "exactly the bound", id: "d-1.0", chain: with("next", chainNext(wire.MaxChainSteps-1))},
		{name: "one over the bound", id: "d-1.0", chain: with("next", chainNext(wire.MaxChainSteps)), wantErr: "more than 64"},
		{name: "position too high", id: "d-1.p-1.0", chain: with("position", wire.MaxChainSteps), wantErr: "position"},
		{name: "negative position", id: "d-1.0", chain: with("position", -1), wantErr: "position"},
		{name: "position plus next over the bound", id: "d-1.p-1.0", chain: func() map[string]any { c := with("position", 62); return c }(), wantErr: "more than 64"},
		{name: "position does not match the id", id: "d-1.0", chain: with("position", 1), wantErr: "does not match"},
		{name: "missing id", id: "d-1.0", chain: map[string]any{"position": 0}, wantErr: "id is required"},
		{name: "empty id", id: "d-1.0", chain: with("id", ""), wantErr: "data.chain.id"},
		{name: "id with a space", id: "d-1.0", chain: with("id", "a b"), wantErr: "data.chain.id"},
		{name: "id too long", id: "d-1.0", chain: with("id", strings.Repeat("x", wire.MaxChainIDBytes+1)), wantErr: "data.chain.id"},
		{name: "missing position", id: "d-1.0", chain: map[string]any{"id": "c"}, wantErr: "position is required"},
		{name: "bad on_failure", id: "d-1.0", chain: with("on_failure", "retry"), wantErr: "on_failure"},
		{name: "bad handler in next", id: "d-1.0", chain: with("next", []any{map[string]any{"rule": map[string]any{"handler": "nope", "ordinal": 1}}}), wantErr: "next[0].rule.handler"},
		{name: "next without rule", id: "d-1.0", chain: with("next", []any{map[string]any{}}), wantErr: "next[0].rule is required"},
		{name: "next without ordinal", id: "d-1.0", chain: with("next", []any{map[string]any{"rule": map[string]any{"handler": "a#b"}}}), wantErr: "ordinal is required"},
		{name: "ordinals not increasing", id: "d-1.0", chain: with("next", []any{map[string]any{"rule": map[string]any{"handler": "a#b", "ordinal": 0}}}), wantErr: "does not follow"},
		{name: "handler_config a number", id: "d-1.0", chain: with("next", []any{map[string]any{"rule": map[string]any{"handler": "a#b", "ordinal": 1, "handler_config": 5}}}), wantErr: "handler_config"},
		{name: "chain not an object", id: "d-1.0", chain: "x", wantErr: "data.chain"},
		{name: "position a string", id: "d-1.0", chain: with("position", "0"), wantErr: "data.chain"},
	}
	dec := newDecoder(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mut func(map[string]any)
			if tc.chain != nil {
				mut = withChain(tc.id, tc.chain)
			}
			for _, mode := range []string{"structured", "binary"} {
				var m *Message
				var err error
				body := structuredBody(t, mut)
				if mode == "structured" {
					m, err = dec.Decode(map[string][]string{"Content-Type": {wire.ContentTypeCE}}, body)
				} else {
					var ev map[string]json.RawMessage
					require.NoError(t, json.Unmarshal(body, &ev))
					h := binaryHeaders()
					var id string
					require.NoError(t, json.Unmarshal(ev["id"], &id))
					h["ce-id"] = []string{id}
					m, err = dec.Decode(h, ev["data"])
				}
				if tc.wantErr != "" {
					require.Error(t, err, mode)
					require.Equal(t, wire.ReasonInvalidEvent, ReasonOf(err), mode)
					require.Contains(t, err.Error(), tc.wantErr, mode)
					continue
				}
				require.NoError(t, err, mode)
				if tc.chain == nil {
					require.Nil(t, m.Chain, mode)
					continue
				}
				require.NotNil(t, m.Chain, mode)
				if tc.check != nil {
					tc.check(t, m.Chain)
				}
			}
		})
	}
}

// TestDecodeChainExactNames: JSON Schema matches member names exactly, so
// "Chain" is an unknown member (ignored), and a chain named with an escape
// is still the chain.
func TestDecodeChainExactNames(t *testing.T) {
	dec := newDecoder(t)
	body := structuredBody(t, func(ev map[string]any) {
		ev["data"].(map[string]any)["Chain"] = map[string]any{"id": "x", "position": 99}
	})
	m, err := dec.Decode(map[string][]string{"Content-Type": {wire.ContentTypeCE}}, body)
	require.NoError(t, err)
	require.Nil(t, m.Chain)

	body = structuredBody(t, withChain("d-1.0", map[string]any{"id": "x", "position": 99}))
	body = []byte(strings.Replace(string(body), `"chain"`, `"\u0063hain"`, 1))
	_, err = dec.Decode(map[string][]string{"Content-Type": {wire.ContentTypeCE}}, body)
	require.Error(t, err)
	require.Contains(t, err.Error(), "position")
}
