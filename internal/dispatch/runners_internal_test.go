package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

func (p *runnerPool) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

func testAction(t *testing.T, fn func(ctx context.Context) error) plugins.ActionDescriptor {
	t.Helper()
	a, err := plugins.NewAction("act", "Act", func(ctx context.Context, _ plugins.ActionInput[struct{}]) error { return fn(ctx) })
	require.NoError(t, err)
	return a
}

func runOn(t *testing.T, p *runnerPool, a plugins.ActionDescriptor) chan runOutcome {
	t.Helper()
	cfg, err := a.DecodeConfig(nil)
	require.NoError(t, err)
	done := make(chan runOutcome, 1)
	p.start(&actionJob{ctx: context.Background(), action: a, inv: plugins.Invocation{Config: cfg}, done: done})
	return done
}

func TestRunnerPool(t *testing.T) {
	t.Run("sequential actions reuse one runner", func(t *testing.T) {
		p := &runnerPool{}
		boom := errors.New("boom")
		a := testAction(t, func(context.Context) error { return boom })
		for range 5 {
			out := <-runOn(t, p, a)
			require.ErrorIs(t, out.err, boom)
			require.Eventually(t, func() bool { return p.idleCount() == 1 }, time.Second, time.Millisecond)
		}
	})
	t.Run("a busy runner is not handed another action", func(t *testing.T) {
		p := &runnerPool{}
		release := make(chan struct{})
		slow := testAction(t, func(context.Context) error { <-release; return nil })
		fast := testAction(t, func(context.Context) error { return nil })
		slowDone := runOn(t, p, slow)
		for range 3 {
			select {
			case out := <-runOn(t, p, fast):
				require.NoError(t, out.err)
			case <-time.After(5 * time.Second):
				t.Fatal("an action waited for a busy runner")
			}
		}
		close(release)
		require.NoError(t, (<-slowDone).err)
		require.Eventually(t, func() bool { return p.idleCount() == 2 }, time.Second, time.Millisecond)
	})
	t.Run("a panic is reported and the runner survives", func(t *testing.T) {
		p := &runnerPool{}
		out := <-runOn(t, p, testAction(t, func(context.Context) error { panic("kaboom") }))
		require.Equal(t, "kaboom", out.panicked)
		require.Eventually(t, func() bool { return p.idleCount() == 1 }, time.Second, time.Millisecond)
		require.NoError(t, (<-runOn(t, p, testAction(t, func(context.Context) error { return nil }))).err)
	})
	t.Run("idle runners exit", func(t *testing.T) {
		p := &runnerPool{idleFor: 20 * time.Millisecond}
		for range 3 {
			<-runOn(t, p, testAction(t, func(context.Context) error { return nil }))
		}
		require.Eventually(t, func() bool { return p.idleCount() == 0 }, 2*time.Second, 5*time.Millisecond)
		// And a new action still runs after they left.
		require.NoError(t, (<-runOn(t, p, testAction(t, func(context.Context) error { return nil }))).err)
	})
}
