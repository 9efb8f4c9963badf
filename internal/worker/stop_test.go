package worker

import (
	"context"
	"os"
	"path/filepath"
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
	require.Empty(t, ourGoroutines(), "goroutines before the worker starts")

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
	require.Greater(t, len(ourGoroutines()), 2*4, "intake, checker, writer, probe…")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.Stop(ctx))
	select {
	case <-w.Closed():
	default:
		t.Fatal("Stop returned nil before Closed")
	}
	require.NoError(t, w.Stop(ctx), "a second Stop is a no-op")
	// Stop returned: nothing may be left that has anything left to do, not
	// even "eventually". A goroutine whose last act was to tell Stop it is
	// done (the run's close of Closed, the breaker probe's, an intake
	// goroutine's and the lane cache's Done) may still be on its way out: nothing can wait for a goroutine's return itself.
	// Such a one must be returning (returning) and gone within a second.
	stopped := time.Now()
	left := ourGoroutines()
	for _, g := range left {
		if !returning(g) {
			t.Fatalf("%d goroutines left after Stop, this one still busy:\n%s\n\nall:\n%s", len(left), g, strings.Join(left, "\n\n"))
		}
	}
	if len(left) > 0 {
		t.Logf("%d goroutines returning after Stop", len(left))
		// Polled here, not by require.Eventually: its condition runs on a
		// goroutine of its own, which ourGoroutines would count.
		for deadline := time.Now().Add(time.Second); len(ourGoroutines()) > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("returning goroutines did not end:\n%s\n\nnow:\n%s", strings.Join(left, "\n\n"), strings.Join(ourGoroutines(), "\n\n"))
			}
		}
		t.Logf("gone after %s", time.Since(stopped))
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

// ourGoroutines are the stacks of the goroutines running this module's
// code that are not tests (the embedded server's and nats.go's own
// goroutines live as long as the server and the connection, which the
// test owns), from one snapshot: a goroutine ending just after it is
// still shown.
func ourGoroutines() []string {
	var buf strings.Builder
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
	var ours []string
	for _, g := range strings.Split(buf.String(), "\n\n") {
		if strings.Contains(g, "imbi-worker/internal/") && !strings.Contains(g, "testing.tRunner") {
			ours = append(ours, g)
		}
	}
	return ours
}

// returning reports whether the goroutine g (a stack from ourGoroutines)
// is on its way out: the function it was started with (its last frame)
// stands at its closing brace, so its body has returned and what runs
// above it, if anything, are its deferred calls (such as the Done or
// close that released Stop); or it has returned and only the runtime's
// goroutine exit is left.
func returning(g string) bool {
	var frames []string // "file:line" of each function frame
	exiting := true     // every frame is the runtime's goroutine exit
	lines := strings.Split(strings.TrimSpace(g), "\n")
	for i := 1; i+1 < len(lines); i += 2 {
		if strings.HasPrefix(lines[i], "created by ") {
			break
		}
		exiting = exiting && strings.HasPrefix(lines[i], "runtime.goexit")
		loc := strings.TrimSpace(lines[i+1])
		if j := strings.LastIndex(loc, " +0x"); j >= 0 {
			loc = loc[:j]
		}
		frames = append(frames, loc)
	}
	if len(frames) == 0 {
		return false
	}
	if exiting { // its function has returned
		return true
	}
	start := frames[len(frames)-1]
	i := strings.LastIndex(start, ":")
	if i < 0 {
		return false
	}
	n, err := strconv.Atoi(start[i+1:])
	if err != nil || n < 1 {
		return false
	}
	src, err := os.ReadFile(start[:i])
	if err != nil {
		return false
	}
	srcLines := strings.Split(string(src), "\n")
	if n > len(srcLines) {
		return false
	}
	line := strings.TrimSpace(srcLines[n-1])
	return line == "}" || line == "}()"
}

// TestReturning: only a goroutine whose start function stands at its
// closing brace (alone, or running a deferred call) counts as returning.
func TestReturning(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "g.go")
	require.NoError(t, os.WriteFile(src, []byte("package g\n\nfunc f() {\n\tgo func() {\n\t\tdefer done()\n\t\twork()\n\t}()\n}\n"), 0o600))
	stack := func(state string, frames ...string) string {
		var b strings.Builder
		b.WriteString("goroutine 7 [" + state + "]:\n")
		for _, f := range frames {
			fn := "g.f.func1()"
			if strings.HasPrefix(f, "/goexit") {
				fn, f = "runtime.goexit1()", "/go/src/runtime/proc.go:4490"
			}
			b.WriteString(fn + "\n\t" + f + " +0x85\n")
		}
		b.WriteString("created by g.f in goroutine 1\n\t" + src + ":4 +0x2f")
		return b.String()
	}
	for _, tc := range []struct {
		name string
		g    string
		want bool
	}{
		{"at the closing brace", stack("runnable", src+":7"), true},
		{"still working", stack("runnable", src+":6"), false},
		{"running its deferred call", stack("runnable", src+":5", src+":7"), true},
		{"blocked in its body", stack("chan receive", src+":5", src+":6"), false},
		{"source not found", stack("runnable", src+".missing:7"), false},
		{"line out of range", stack("runnable", src+":70"), false},
		{"returned, in the runtime's exit", stack("runnable", "/goexit"), true},
		{"the runtime's exit below a frame of ours", stack("runnable", src+":6", "/goexit"), false},
	} {
		require.Equal(t, tc.want, returning(tc.g), tc.name)
	}
}
