package lanes

import (
	"testing"
	"time"
)

// BenchmarkPausedCheck is the per-message lane check: with no lane
// paused (the common case) and with 100 other lanes paused.
func BenchmarkPausedCheck(b *testing.B) {
	now := time.Now()
	for _, tc := range []struct {
		name  string
		lanes int
	}{{"none paused", 0}, {"100 other lanes paused", 100}} {
		b.Run(tc.name, func(b *testing.B) {
			c := &Cache{}
			s := &snapshot{byLane: map[Key]State{}, byKV: map[string]Key{}}
			for i := range tc.lanes {
				k := Key{Plugin: "p" + string(rune('a'+i%26)), PluginID: string(rune('A' + i))}
				s.byLane[k] = State{Key: k, PausedUntil: now.Add(time.Hour)}
			}
			c.snap.Store(s)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := c.Paused("github", "pl-1", now); ok {
					b.Fatal("not paused")
				}
			}
		})
	}
}
