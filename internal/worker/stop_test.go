package worker

import (
	"context"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStopWaitsForEveryGoroutine: after Stop the worker has left no
// goroutine behind — intake, done-marker checker and writer, the
// breaker's probe (tripped while the store is down), the pull loop and
// the shutdown. Not parallel: it counts the process's goroutines (the
// parallel tests wait, parked, until the sequential ones are done).
func TestStopWaitsForEveryGoroutine(t *testing.T) {
	e := newEnv(t, envOpts{})
	nc := connect(t, e.srv.URL())
	store := &flakyStore{pingDelay: 300 * time.Millisecond} // a probe outlives Stop's cancel
	disp := e.disp()
	disp.Credentials = store
	require.NoError(t, nc.Flush())
	require.Zero(t, ourGoroutines(), "goroutines before the worker starts")

	w, err := New(nc, disp, e.config())
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	require.ErrorIs(t, w.Start(context.Background()), ErrStarted)
	require.Eventually(t, func() bool { return w.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	var last uint64
	for i := range 8 {
		last = e.publish("leak-"+strconv.Itoa(i), "test#ok", nil)
	}
	require.Eventually(t, func() bool { return e.gone(last) }, 10*time.Second, 10*time.Millisecond)
	store.down.Store(true)
	e.publish("leak-creds", "withcreds#ok", nil)
	require.Eventually(t, func() bool { return w.breaker.open() && store.pings.Load() > 0 }, 10*time.Second, 5*time.Millisecond)
	require.Greater(t, ourGoroutines(), 2*4, "intake, checker, writer, probe…")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.Stop(ctx))
	select {
	case <-w.Closed():
	default:
		t.Fatal("Stop returned nil before Closed")
	}
	require.NoError(t, w.Stop(ctx), "a second Stop is a no-op")
	// Stop returned: nothing may be left, not even "eventually".
	if n := ourGoroutines(); n != 0 {
		var buf strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
		t.Fatalf("%d goroutines left after Stop\n%s", n, buf.String())
	}
	require.Nil(t, disp.Tracer, "New must not write the caller's dispatcher")
}

// TestStopBeforeStart: Stop on a worker never started returns at once,
// and a Start after it stops at once.
func TestStopBeforeStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	w, err := New(connect(t, e.srv.URL()), e.disp(), e.config())
	require.NoError(t, err)
	require.NoError(t, w.Stop(context.Background()))
	require.NoError(t, w.Start(context.Background()))
	select {
	case <-w.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("a worker stopped before Start did not close")
	}
}

// ourGoroutines counts the goroutines running this module's code that
// are not tests (the embedded server's and nats.go's own goroutines live
// as long as the server and the connection, which the test owns).
func ourGoroutines() int {
	var buf strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	n := 0
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "imbi-worker/internal/") && !strings.Contains(g, "testing.tRunner") {
			n++
		}
	}
	return n
}
