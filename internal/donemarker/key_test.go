package donemarker

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// kvKeyPattern is the reference isKVKey must agree with.
var kvKeyPattern = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$`)

var kvKeySeeds = []string{
	"", ".", "a", "a.b", "a..b", ".a", "a.", "evt-1", "x/y=z_w", "a b", "a\nb", "a*", "a>", "héllo",
	"0f8fad5b-d9cb-469f-a165-70867728950e", "a.b.c.d", "=", "-.-", "a.\x00", "\xff",
}

func TestIsKVKeyMatchesPattern(t *testing.T) {
	for _, s := range kvKeySeeds {
		require.Equal(t, kvKeyPattern.MatchString(s), isKVKey(s), "%q", s)
	}
	require.True(t, isKVKey("evt-1.part/2"))
	require.False(t, isKVKey("evt..1"))
}

func FuzzIsKVKey(f *testing.F) {
	for _, s := range kvKeySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isKVKey(s), kvKeyPattern.MatchString(s); got != want {
			t.Fatalf("isKVKey(%q) = %v, pattern says %v", s, got, want)
		}
	})
}

func BenchmarkDoneKey(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Key("0f8fad5b-d9cb-469f-a165-70867728950e")
	}
}
