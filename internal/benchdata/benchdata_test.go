package benchdata_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/benchdata"
)

// The Go and the remote rows of make bench-peers publish events of one
// size that differ only in their handler.
func TestEventFor(t *testing.T) {
	tests := []struct {
		name, handler, slug string
		ev                  []byte
	}{
		{"go no-op", benchdata.Handler, "bench", benchdata.Event("ID000000000001", benchdata.Size, 0)},
		{"python no-op", "example-py#noop", "example-py", benchdata.EventFor("ID000000000001", "example-py#noop", benchdata.Size, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Len(t, tt.ev, benchdata.Size)
			var ev struct {
				Subject string `json:"subject"`
				Data    struct {
					Rule struct {
						Handler       string            `json:"handler"`
						HandlerConfig map[string]string `json:"handler_config"`
					} `json:"rule"`
					Plugin struct{ Slug string } `json:"plugin"`
				} `json:"data"`
			}
			require.NoError(t, json.Unmarshal(tt.ev, &ev))
			require.Equal(t, tt.handler, ev.Subject)
			require.Equal(t, tt.handler, ev.Data.Rule.Handler)
			require.Equal(t, tt.slug, ev.Data.Plugin.Slug)
			require.Equal(t, map[string]string{"label": "bench"}, ev.Data.Rule.HandlerConfig)
		})
	}
}
