package wire

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// plugins-spec §6.2: the gateway's handler format, its error text, and the
// legacy ':' separator.
func TestParseHandler(t *testing.T) {
	tests := []struct {
		in      string
		want    Handler
		wantErr string
	}{
		{"gateway-actions#create_release", Handler{"gateway-actions", "create_release"}, ""},
		{"http#request", Handler{"http", "request"}, ""},
		{"gateway-actions:update_project", Handler{"gateway-actions", "update_project"}, ""},
		{"Test#OK", Handler{}, "handler 'Test#OK' must be '<plugin_slug>#<action_name>'"},
		{"a#b#c", Handler{}, "handler 'a#b#c' must be '<plugin_slug>#<action_name>'"},
		{"a:b:c", Handler{}, "handler 'a:b:c' must be '<plugin_slug>#<action_name>'"},
		{"", Handler{}, "handler '' must be '<plugin_slug>#<action_name>'"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			h, err := ParseHandler(tc.in)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, h)
				require.Equal(t, tc.want.Plugin+"#"+tc.want.Action, h.String())
				return
			}
			require.EqualError(t, err, tc.wantErr)
			var invalid *InvalidHandlerError
			require.True(t, errors.As(err, &invalid))
			require.Equal(t, tc.in, invalid.Value)
		})
	}
}
