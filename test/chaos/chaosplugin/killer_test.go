package chaosplugin

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// A process with a kill armed is about to die: record with
// hold_while_kill_pending records nothing there (its effect could lose its
// done-marker to the kill), and records at once in a restarted process,
// whose killer finds the id's guard file and arms nothing. No marker is
// ever stored here, so the armed kill never fires.
func TestRecordHoldsWhileKillPending(t *testing.T) {
	env := streamstest.Start(t, streams.Config{})
	dir := t.TempDir()
	const armedID = "chain.1"
	newKiller := func(t *testing.T, armID string) *MarkerKiller {
		k := NewMarkerKiller(env.URL(), wire.DefaultDoneBucket, dir)
		t.Cleanup(func() {
			k.mu.Lock()
			defer k.mu.Unlock()
			if k.nc != nil {
				k.nc.Close()
			}
		})
		if armID != "" {
			require.NoError(t, k.arm(armID))
		}
		return k
	}
	dying := newKiller(t, armedID)
	require.True(t, dying.pending())
	for _, tc := range []struct {
		name   string
		killer *MarkerKiller
		hold   bool
		ran    bool
	}{
		{"kill pending, hold: nothing recorded", dying, true, false},
		{"kill pending, no hold: recorded", dying, false, true},
		{"restarted process (guard file), hold: recorded", newKiller(t, armedID), true, true},
		{"no killer, hold: recorded", nil, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewMemoryRecorder()
			p := New(rec)
			if tc.killer != nil {
				p.WithKiller(tc.killer)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := p.record(ctx, plugins.ActionInput[RecordConfig]{
				Config: RecordConfig{Label: "chain", Step: "2", HoldWhileKillPending: tc.hold},
				Event:  plugins.Event{Payload: map[string]any{"id": "chain"}},
			})
			if tc.ran {
				require.NoError(t, err)
				require.Len(t, rec.Counts(), 1)
				return
			}
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Empty(t, rec.Counts())
		})
	}
}
