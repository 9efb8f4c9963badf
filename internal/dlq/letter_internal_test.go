package dlq

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

func TestReplayMsgIDs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		letter Letter
		n      int
		want   string
	}{
		{"ce id", Letter{EventID: "d-1.0"}, 1, "d-1.0.replay.1"},
		{"ce id that looks replayed", Letter{EventID: "x.replay.7"}, 2, "x.replay.7.replay.2"},
		{"no ce id: msg id", Letter{Header: nats.Header{"Nats-Msg-Id": {"raw-5"}}}, 1, "raw-5.replay.1"},
		{"no ce id: replayed msg id", Letter{Header: nats.Header{"Nats-Msg-Id": {"raw-5.replay.2"}}}, 3, "raw-5.replay.3"},
		{"nothing: seq", Letter{Seq: 42}, 1, "dlq-42.replay.1"},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, replayMsgID(tc.letter, tc.n), tc.name)
	}
	for in, want := range map[string]struct {
		base string
		n    int
	}{
		"a.replay.3": {"a", 3}, "a.replay.x": {"a.replay.x", 0}, "a.replay.0": {"a.replay.0", 0},
		"a": {"a", 0}, "a.replay.1.replay.2": {"a.replay.1", 2}, ".replay.1": {"", 1},
	} {
		base, n := splitReplayID(in)
		require.Equal(t, want.base, base, in)
		require.Equal(t, want.n, n, in)
	}
}
