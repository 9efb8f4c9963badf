package dispatch_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestDispatchInline: on the caller's goroutine an action's outcome is
// classified as Dispatch classifies it; only an action that outlives its
// deadline (or the caller's cancellation) by the grace is abandoned:
// onAbandon gets the abandoned result once, promptly, and the call
// returns Detached when the action finally returns.
func TestDispatchInline(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name      string
		handler   string
		config    string
		cancelAt  time.Duration // cancel the caller's context after this (0: never)
		class     dispatch.Class
		reason    wire.Reason
		abandoned bool
	}{
		{name: "success", handler: "test#ok", class: dispatch.Success},
		{name: "action error", handler: "test#fail", class: dispatch.Retryable, reason: wire.ReasonActionFailed},
		{name: "panic", handler: "test#panic", class: dispatch.Permanent, reason: wire.ReasonPanic},
		{name: "deadline respected", handler: "test#sleep", config: `{"sleep_ms": 5000}`, class: dispatch.Retryable, reason: wire.ReasonTimeout},
		{name: "deadline ignored", handler: "test#ignore_ctx", config: `{"sleep_ms": 1200}`, class: dispatch.Retryable, reason: wire.ReasonTimeout, abandoned: true},
		{name: "cancellation ignored", handler: "slow#ignore_ctx", config: `{"sleep_ms": 1200}`, cancelAt: 50 * time.Millisecond,
			class: dispatch.Retryable, reason: wire.ReasonUnavailable, abandoned: true},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Parallel()
			s := newSetup(t, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if r.cancelAt > 0 {
				time.AfterFunc(r.cancelAt, cancel)
			}
			var calls atomic.Int32
			got := make(chan dispatch.Result, 2)
			start := time.Now()
			var abandonedAfter time.Duration
			res := s.disp.DispatchInline(ctx, message(r.handler, "", r.config), func(res dispatch.Result) {
				abandonedAfter = time.Since(start)
				calls.Add(1)
				got <- res
			})
			if !r.abandoned {
				require.False(t, res.Detached)
				require.Zero(t, calls.Load(), "onAbandon ran for an action that returned")
				require.Equal(t, r.class, res.Class)
				require.Equal(t, r.reason, res.Reason)
				require.False(t, res.Abandoned)
				return
			}
			// The call itself returned only when the action did (1.2 s) …
			require.True(t, res.Detached, "an abandoned action's call must come back detached")
			require.GreaterOrEqual(t, time.Since(start), time.Second)
			// … but the abandoned result came at deadline/cancel + grace.
			require.Equal(t, int32(1), calls.Load())
			ab := <-got
			require.Less(t, abandonedAfter, 800*time.Millisecond)
			require.True(t, ab.Abandoned)
			require.Equal(t, r.class, ab.Class)
			require.Equal(t, r.reason, ab.Reason)
			time.Sleep(100 * time.Millisecond)
			require.Equal(t, int32(1), calls.Load(), "onAbandon ran twice")
		})
	}
}

// TestDispatchInlineNeedsOnAbandon: without a callback an abandoned
// action would have nowhere to go.
func TestDispatchInlineNeedsOnAbandon(t *testing.T) {
	t.Parallel()
	s := newSetup(t, nil)
	require.Panics(t, func() { s.disp.DispatchInline(context.Background(), message("test#ok", "", ""), nil) })
}
