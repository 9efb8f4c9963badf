package httprequest

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolvePointer(t *testing.T) {
	t.Parallel()
	doc := map[string]any{
		"payload": map[string]any{
			"a/b": "slash", "m~n": "tilde", "": "empty key",
			"list": []any{"zero", map[string]any{"x": 1.0}},
		},
	}
	tests := []struct {
		ptr     string
		want    any
		ok      bool
		wantErr bool
	}{
		{ptr: "", want: doc, ok: true},
		{ptr: "/payload/a~1b", want: "slash", ok: true},
		{ptr: "/payload/m~0n", want: "tilde", ok: true},
		{ptr: "/payload/", want: "empty key", ok: true},
		{ptr: "/payload/list/0", want: "zero", ok: true},
		{ptr: "/payload/list/1/x", want: 1.0, ok: true},
		{ptr: "/payload/list/01"},
		{ptr: "/payload/list/-"},
		{ptr: "/payload/list/2"},
		{ptr: "/payload/missing"},
		{ptr: "/payload/a~1b/deeper"},
		{ptr: "payload", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.ptr, func(t *testing.T) {
			got, ok, err := resolvePointer(doc, tc.ptr)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRetryAfterParsing(t *testing.T) {
	t.Parallel()
	now, err := http.ParseTime("Wed, 25 Nov 2026 16:00:00 GMT")
	require.NoError(t, err)
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"120", 120, true},
		{" 3 ", 3, true},
		{"-1", 0, false},
		{"", 0, false},
		{"later", 0, false},
		{"Wed, 25 Nov 2026 16:00:30 GMT", 30, true},
		{"Wed, 25 Nov 2026 15:00:00 GMT", 0, true}, // in the past: now
	}
	for _, tc := range tests {
		d, ok := retryAfter(tc.in, now)
		require.Equal(t, tc.ok, ok, tc.in)
		require.Equal(t, tc.want, int(d.Seconds()), tc.in)
	}
}
