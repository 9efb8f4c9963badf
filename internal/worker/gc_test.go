package worker

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TuneGC changes process settings; the test restores them and must not
// run in parallel with anything that reads them.
func TestTuneGC(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

	for _, tc := range []struct {
		name        string
		percent     int
		limit       int64
		env         map[string]string
		wantPercent int
		wantLimit   int64
		wantSays    string
	}{
		{"flag applies", 400, 0, nil, 400, math.MaxInt64, "GOGC=400"},
		{"GOGC env wins", 400, 0, map[string]string{"GOGC": "150"}, 100, math.MaxInt64, "GOGC=150 (environment)"},
		{"zero keeps Go default", 0, 0, nil, 100, math.MaxInt64, "GOGC=100 (Go default)"},
		{"memory limit applies", 400, 96 << 20, nil, 400, 96 << 20, "GOGC=400, memory limit 96 MiB"},
		{"GOMEMLIMIT env wins", 400, 96 << 20, map[string]string{"GOMEMLIMIT": "200MiB"}, 400, math.MaxInt64, "GOGC=400, GOMEMLIMIT=200MiB (environment)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(math.MaxInt64)
			require.Equal(t, tc.wantSays, TuneGC(tc.percent, tc.limit, env(tc.env)))
			require.Equal(t, tc.wantPercent, debug.SetGCPercent(100))
			require.Equal(t, tc.wantLimit, debug.SetMemoryLimit(-1))
		})
	}
}
