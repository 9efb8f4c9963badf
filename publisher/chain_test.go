package publisher_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/envelope"
	"github.com/aweber-imbi/imbi-worker/publisher"
	"github.com/aweber-imbi/imbi-worker/wire"
)

func sampleChain(n int) publisher.Chain {
	m := sampleMessage()
	c := publisher.Chain{DeliveryID: "d-42", ReceivedAt: m.ReceivedAt, Data: m.Data}
	for i := range n {
		c.Rules = append(c.Rules, publisher.ChainRule{
			Rule:   wire.Rule{ID: "r-" + string(rune('a'+i%26)), Handler: "gateway-actions:step", Ordinal: 10 + i, HandlerConfig: json.RawMessage(`{"n":1}`)},
			Plugin: &wire.PluginRef{ID: "pl-2", Slug: "gateway-actions"},
		})
	}
	return c
}

// TestPublishChain: the first step is published with data.chain holding
// the rest, and the worker's decoder accepts it.
func TestPublishChain(t *testing.T) {
	t.Parallel()
	nc, _, st := runJetStream(t)
	p, err := publisher.New(nc, publisher.Config{})
	require.NoError(t, err)
	t.Cleanup(p.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := sampleChain(3)
	c.OnFailure = wire.ChainStop
	ack, err := p.PublishChain(ctx, c)
	require.NoError(t, err)

	raw, err := st.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)
	require.Equal(t, wire.DefaultSubjectPrefix+".gateway-actions.step", raw.Subject)
	require.Equal(t, "d-42.10", raw.Header.Get(wire.HeaderMsgID))
	dec := envelope.NewDecoder()
	m, err := dec.Decode(raw.Header, raw.Data)
	require.NoError(t, err)
	require.Equal(t, "d-42.10", m.ID())
	require.Equal(t, "gateway-actions#step", m.Data.Rule.Handler)
	require.NotNil(t, m.Chain)
	require.Equal(t, "d-42.p-1", m.Chain.ID)
	require.Equal(t, 0, m.Chain.Position)
	require.True(t, m.Chain.StopsOnFailure())
	require.Len(t, m.Chain.Next, 2)
	require.Equal(t, 11, m.Chain.Next[0].Rule.Ordinal)
	require.Equal(t, "gateway-actions#step", m.Chain.Next[1].Rule.Handler, "legacy handler normalised")
	require.JSONEq(t, `{"n":1}`, string(m.Chain.Next[1].Rule.HandlerConfig))
}

func TestNewChainEventRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*publisher.Chain)
		field  string
	}{
		{"no rules", func(c *publisher.Chain) { c.Rules = nil }, "rules"},
		{"too many rules", func(c *publisher.Chain) { *c = sampleChain(wire.MaxChainSteps + 1) }, "rules"},
		{"ordinals not increasing", func(c *publisher.Chain) { c.Rules[2].Rule.Ordinal = 10 }, "rules[2].ordinal"},
		{"bad handler", func(c *publisher.Chain) { c.Rules[1].Rule.Handler = "nope" }, "rules[1].handler"},
		{"bad on_failure", func(c *publisher.Chain) { c.OnFailure = "retry" }, "on_failure"},
		{"bad chain id", func(c *publisher.Chain) { c.ID = "has space" }, "chain.id"},
		{"no id to derive from", func(c *publisher.Chain) { c.Data.Context.ProjectID = "" }, "chain.id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleChain(3)
			tc.mutate(&c)
			_, err := publisher.NewChainEvent(c)
			var ie *publisher.InvalidMessageError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, tc.field, ie.Field)
		})
	}
	_, err := publisher.NewChainEvent(sampleChain(wire.MaxChainSteps))
	require.NoError(t, err, "exactly the bound")
}
