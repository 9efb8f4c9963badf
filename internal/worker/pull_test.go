package worker

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/wire"
)

// TestPullsNeverExceedFreePlaces: the pull loop asks only for free intake
// places, so the messages a worker holds (delivered and not yet done with,
// counted at each arrival and release) never exceed its places, however
// many are waiting; every message still runs once, the pulls are fewer
// than the messages, and every place is free again after Stop. (The
// server's ack-pending count is no check: it lags the acks, and with
// idempotency on the ack follows the place's release.)
func TestPullsNeverExceedFreePlaces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		concurrency int
		places      int
		idempotency bool
	}{
		{"one slot, four places", 1, 4, false},
		{"two slots, five places", 2, 5, false},
		{"two slots, eight places, idempotency", 2, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			idem := tc.idempotency
			e := newEnv(t, envOpts{idempotency: &idem})
			const n = 60
			for i := range n {
				id := fmt.Sprintf("cap-%d", i)
				e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id},
					event(id, "test#sleep", map[string]any{"sleep_ms": 5}, id))
			}
			cfg := e.config()
			cfg.Concurrency, cfg.Prefetch = tc.concurrency, tc.places
			w, stop := e.start(cfg)
			require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 30*time.Second, 2*time.Millisecond)
			for i := range n {
				require.Equal(t, 1, e.rec.Calls(fmt.Sprintf("cap-%d", i)), "cap-%d", i)
			}
			f := w.fetcher
			require.NotNil(t, f)
			require.LessOrEqual(t, f.peakHeld.Load(), int64(tc.places), "held more messages than places")
			require.Equal(t, int64(tc.places), f.peakHeld.Load(), "never filled its places")
			require.EqualValues(t, n, f.delivered.Load())
			require.Less(t, f.fetches.Load(), int64(n), "a pull per message")
			require.Eventually(t, func() bool { return f.held.Load() == 0 }, 5*time.Second, 5*time.Millisecond)
			require.NoError(t, stop())
			require.Equal(t, tc.places, f.places.count(), "places not all given back")
		})
	}
}

// TestStopGivesBackPulledUnstarted: on Stop the worker pulls nothing
// more, lets the running action finish and gives back (nak) every message
// it pulled and did not start, so they are available again at once, not
// after AckWait (30 s here), and none of them ran.
func TestStopGivesBackPulledUnstarted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	const n = 6
	for i := range n {
		id := fmt.Sprintf("held-%d", i)
		e.publishRaw("imbi.actions.test.sleep", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id},
			event(id, "test#sleep", map[string]any{"sleep_ms": 300}, id))
	}
	started := func() (ran int) {
		for i := range n {
			ran += len(e.rec.Times(fmt.Sprintf("held-%d", i)))
		}
		return ran
	}
	cfg := e.config()
	cfg.Concurrency, cfg.Prefetch = 1, 8
	w, stop := e.start(cfg)
	require.Eventually(t, func() bool { return w.fetcher.held.Load() == n && started() == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, stop())
	require.Equal(t, 1, started(), "a held message started after Stop")
	require.Equal(t, cfg.Prefetch, w.fetcher.places.count(), "places not all given back")
	// Given back: another replica runs them now, not after AckWait.
	_, _ = e.start(e.config())
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 5*time.Second, 10*time.Millisecond)
	for i := range n {
		require.Equal(t, 1, e.rec.Calls(fmt.Sprintf("held-%d", i)), "held-%d", i)
	}
}

// TestMinFetch: a pull asks for at least half the places, but never for so
// many that fewer than concurrency places stay filled while it travels.
func TestMinFetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ places, concurrency, want int }{
		{64, 16, 32},
		{128, 16, 64},
		{16, 4, 8},
		{20, 16, 4},
		{16, 16, 1},
		{4, 1, 2},
		{1, 1, 1},
	} {
		require.Equal(t, tc.want, minFetch(tc.places, tc.concurrency), "%d places, concurrency %d", tc.places, tc.concurrency)
	}
}

// TestByteCap: a Fetch asks for no more messages than the free byte
// budget takes at the recent body size; large bodies cap the next Fetch at
// once, small ones lift the cap gradually, and one message always fits.
func TestByteCap(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	f := &fetcher{w: &Worker{budget: newByteBudget(8 * mib)}, total: 64}
	require.Equal(t, 64, f.byteCap(), "no size seen: no cap")
	f.noteSize(1200)
	require.Equal(t, 64, f.byteCap(), "small bodies: the places bound")
	f.noteSize(mib)
	require.Equal(t, 8, f.byteCap(), "1 MiB bodies: 8 in an 8 MiB budget")
	f.queuedBytes.Store(4 * mib)
	require.Equal(t, 4, f.byteCap(), "pulled and not yet budgeted bytes count")
	f.queuedBytes.Store(0)
	f.noteSize(7 * mib)
	require.Equal(t, 1, f.byteCap(), "a body near the budget: one at a time")
	require.True(t, f.w.budget.tryAcquire(8*mib))
	require.Equal(t, 1, f.byteCap(), "a full budget still lets one in")
	f.w.budget.release(8 * mib)
	for range 40 {
		f.noteSize(1200)
	}
	require.Equal(t, 64, f.byteCap(), "the hint decays back to small bodies")
}

// TestStopGivesBackWhatArrivesDuringStop: a replica stops while messages
// are still on their way to its pull requests (published as Stop
// begins). They are not dropped: what its pulls deliver after Stop is
// given back (nak) once they have run out, and a second replica runs
// every message exactly once, long before AckWait (1 min here) would
// have brought back a dropped one. A round in which nothing reached A's
// pulls after Stop proves nothing, so it is played again (at most 3).
func TestStopGivesBackWhatArrivesDuringStop(t *testing.T) {
	t.Parallel()
	for round := range 3 {
		if stopRound(t) > 0 {
			return
		}
		t.Logf("round %d: nothing arrived for A's pulls after Stop", round)
	}
	t.Fatal("nothing arrived for A's pulls after Stop in 3 rounds: the test proved nothing")
}

// stopRound is one round of TestStopGivesBackWhatArrivesDuringStop; it
// returns how many messages A gave back that arrived after its Stop.
func stopRound(t *testing.T) int64 {
	e := newEnv(t, envOpts{ackWait: time.Minute})
	cfg := e.config()
	cfg.Concurrency, cfg.Prefetch = 2, 64
	cfg.WorkerID = "replica-a"
	a, stopA := e.start(cfg)

	const n = 600
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("stop-%d", i)
	}
	published := make(chan error, 1)
	go func() { // a steady stream A keeps up with, so a pull of A's is open when it stops
		for _, id := range ids {
			m := natsMsg("imbi.actions.test.ok", map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id},
				event(id, "test#ok", nil, id))
			if _, err := e.js.PublishMsgAsync(m); err != nil {
				published <- err
				return
			}
			time.Sleep(time.Millisecond) // at most 1 a millisecond, for 600 ms or more
		}
		select {
		case <-e.js.PublishAsyncComplete():
			published <- nil
		case <-time.After(20 * time.Second):
			published <- fmt.Errorf("publishes not acknowledged")
		}
	}()
	// Stop once A has caught up: it holds nothing and its pull is open,
	// so the next message published goes to A's pull after its Stop
	// (with its places full, as a loaded CI machine left them, no pull
	// was open and nothing could arrive).
	require.Eventually(t, func() bool { return a.fetcher.delivered.Load() >= 100 && a.fetcher.held.Load() == 0 },
		10*time.Second, time.Millisecond)
	stopped := make(chan error, 1)
	begun := time.Now()
	go func() { stopped <- stopA() }()
	cfg.WorkerID = "replica-b"
	_, _ = e.start(cfg)
	require.NoError(t, <-published)
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 20*time.Second, 10*time.Millisecond,
		"a message dropped at Stop waits for AckWait")
	require.Less(t, time.Since(begun), 25*time.Second)
	require.NoError(t, <-stopped)
	for _, id := range ids {
		require.Equal(t, 1, e.rec.Calls(id), id)
	}
	require.Zero(t, e.dlq.count())
	return a.fetcher.lateGiven.Load()
}
