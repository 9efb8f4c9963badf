package wire

import (
	"strings"
	"testing"
)

func TestValidChainID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"d-123.p-1", true},
		{"~!", true},
		{strings.Repeat("a", MaxChainIDBytes), true},
		{strings.Repeat("a", MaxChainIDBytes+1), false},
		{"", false},
		{"a b", false},
		{"a\tb", false},
		{"a\x7fb", false},
		{"é", false},
	} {
		if got := ValidChainID(tc.id); got != tc.want {
			t.Errorf("ValidChainID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
