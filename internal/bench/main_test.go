package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/envelope"
)

// The template must produce exactly what encoding the event does.
func TestBodyTemplateEqualsEncodedEvent(t *testing.T) {
	tmpl := newBodyTemplate(1229)
	for _, tc := range []struct {
		id   string
		sent int64
	}{{"off-0", 0}, {"lat-12345", 1764072000123456789}, {"x", 42}} {
		got := tmpl.build(tc.id, tc.sent)
		want := body(tc.id, 1229, tc.sent)
		// body pads to size after encoding; ids of other lengths shift the pad.
		require.Equal(t, string(bytes.ReplaceAll(want, []byte("x"), nil)), string(bytes.ReplaceAll(got, []byte("x"), nil)), tc.id)
	}
}

// The chain phase's first steps are chains the worker accepts: 3 steps.
func TestChainBodyIsAChain(t *testing.T) {
	dec := envelope.NewDecoder()
	b, err := chainBody(newBodyTemplate(1229), "chain-7")
	require.NoError(t, err)
	m, err := dec.Decode(map[string][]string{"Content-Type": {"application/cloudevents+json"}}, b)
	require.NoError(t, err)
	require.NotNil(t, m.Chain)
	require.Equal(t, "chain-7", m.Chain.ID)
	require.Len(t, m.Chain.Next, chainSteps-1)
}
