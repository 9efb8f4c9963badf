package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// startChecker runs a done-checker on the env's done bucket until the
// test ends.
func startChecker(t *testing.T, e *env, adjust func(*doneChecker)) *doneChecker {
	t.Helper()
	kv, err := e.js.KeyValue(context.Background(), e.sc.DoneBucket)
	require.NoError(t, err)
	c := newDoneChecker(e.nc, kv, e.sc.DoneBucket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if adjust != nil {
		adjust(c)
	}
	require.NoError(t, c.start())
	t.Cleanup(func() { close(c.reqs) })
	return c
}

// TestDoneCheckerAnswers: marked keys are found, others and deleted ones
// are not, hashed keys work, and concurrent questions are batched.
func TestDoneCheckerAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		single bool // the per-key fallback
	}{
		{"batched direct get", false},
		{"per-key fallback", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{})
			kv, err := e.js.KeyValue(context.Background(), e.sc.DoneBucket)
			require.NoError(t, err)
			ctx := context.Background()
			const n = 300
			long := "id-with spaces and a very long tail " + fmt.Sprint(make([]int, 60))
			for i := range n {
				if i%3 == 0 {
					_, err := kv.Put(ctx, doneKey("ce-"+strconv.Itoa(i)), []byte("w"))
					require.NoError(t, err)
				}
			}
			_, err = kv.Put(ctx, doneKey("ce-deleted"), []byte("w"))
			require.NoError(t, err)
			require.NoError(t, kv.Delete(ctx, doneKey("ce-deleted")))
			_, err = kv.Put(ctx, doneKey(long), []byte("w"))
			require.NoError(t, err)

			c := startChecker(t, e, func(c *doneChecker) { c.single.Store(tc.single) })
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Go(func() {
					q := newDoneCheck()
					for i := g; i < n; i += 16 {
						q.key = doneKey("ce-" + strconv.Itoa(i))
						found, err := c.isDone(q)
						require.NoError(t, err)
						require.Equal(t, i%3 == 0, found, "ce-%d", i)
					}
				})
			}
			wg.Wait()
			q := newDoneCheck()
			for id, want := range map[string]bool{"ce-deleted": false, long: true, "never-written": false} {
				q.key = doneKey(id)
				found, err := c.isDone(q)
				require.NoError(t, err)
				require.Equal(t, want, found, id)
			}
			require.Equal(t, uint64(n+3), c.keys.Load())
			if !tc.single {
				require.Less(t, c.batches.Load(), c.keys.Load(), "16 concurrent askers were never batched")
				require.False(t, c.single.Load(), "fell back although the server supports multi_last")
			}
		})
	}
}

// TestDoneCheckerServerErrors: a server that does not understand the batch
// request (408) makes the checker fall back to per-key gets for good; no
// responders is an error for the askers (their messages are retried).
func TestDoneCheckerServerErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	kv, err := e.js.KeyValue(context.Background(), e.sc.DoneBucket)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), "marked", []byte("w"))
	require.NoError(t, err)

	// An "old server" answering every batch request with 408.
	sub, err := e.nc.Subscribe("test.old.api", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		r.Header.Set("Status", "408")
		r.Header.Set("Description", "Empty Request")
		_ = m.RespondMsg(r)
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	old := startChecker(t, e, func(c *doneChecker) { c.apiSubject = "test.old.api" })
	q := newDoneCheck()
	q.key = "marked"
	found, err := old.isDone(q)
	require.NoError(t, err)
	require.True(t, found)
	require.True(t, old.single.Load(), "did not fall back to per-key gets")

	gone := startChecker(t, e, func(c *doneChecker) { c.apiSubject = "test.nobody.listens" })
	q.key = "marked"
	found, err = gone.isDone(q)
	require.ErrorIs(t, err, errDoneCheck)
	require.False(t, found)
	require.False(t, gone.single.Load(), "no responders is not a reason to fall back")
}
