package donemarker

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

	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
)

// startChecker runs a done-checker on the env's done bucket until the
// test ends.
func startChecker(t *testing.T, e *streamstest.Env, adjust func(*Checker)) *Checker {
	t.Helper()
	kv, err := e.JS.KeyValue(context.Background(), e.Config.DoneBucket)
	require.NoError(t, err)
	c := NewChecker(e.NC, kv, e.Config.DoneBucket, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if adjust != nil {
		adjust(c)
	}
	require.NoError(t, c.Start())
	t.Cleanup(func() { c.Close(); c.Wait() })
	return c
}

func newEnv(t *testing.T) *streamstest.Env {
	return streamstest.Start(t, streams.Config{Idempotency: true})
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
			e := newEnv(t)
			kv, err := e.JS.KeyValue(context.Background(), e.Config.DoneBucket)
			require.NoError(t, err)
			ctx := context.Background()
			const n = 300
			long := "id-with spaces and a very long tail " + fmt.Sprint(make([]int, 60))
			for i := range n {
				if i%3 == 0 {
					_, err := kv.Put(ctx, Key("ce-"+strconv.Itoa(i)), []byte("w"))
					require.NoError(t, err)
				}
			}
			_, err = kv.Put(ctx, Key("ce-deleted"), []byte("w"))
			require.NoError(t, err)
			require.NoError(t, kv.Delete(ctx, Key("ce-deleted")))
			_, err = kv.Put(ctx, Key(long), []byte("w"))
			require.NoError(t, err)

			c := startChecker(t, e, func(c *Checker) { c.single.Store(tc.single) })
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Go(func() {
					q := NewQuery()
					for i := g; i < n; i += 16 {
						q.Key = Key("ce-" + strconv.Itoa(i))
						found, err := c.IsDone(q)
						require.NoError(t, err)
						require.Equal(t, i%3 == 0, found, "ce-%d", i)
					}
				})
			}
			wg.Wait()
			q := NewQuery()
			for id, want := range map[string]bool{"ce-deleted": false, long: true, "never-written": false} {
				q.Key = Key(id)
				found, err := c.IsDone(q)
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
	e := newEnv(t)
	kv, err := e.JS.KeyValue(context.Background(), e.Config.DoneBucket)
	require.NoError(t, err)
	_, err = kv.Put(context.Background(), "marked", []byte("w"))
	require.NoError(t, err)

	// An "old server" answering every batch request with 408.
	sub, err := e.NC.Subscribe("test.old.api", func(m *nats.Msg) {
		r := nats.NewMsg(m.Reply)
		r.Header.Set("Status", "408")
		r.Header.Set("Description", "Empty Request")
		_ = m.RespondMsg(r)
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	old := startChecker(t, e, func(c *Checker) { c.apiSubject = "test.old.api" })
	q := NewQuery()
	q.Key = "marked"
	found, err := old.IsDone(q)
	require.NoError(t, err)
	require.True(t, found)
	require.True(t, old.single.Load(), "did not fall back to per-key gets")

	gone := startChecker(t, e, func(c *Checker) { c.apiSubject = "test.nobody.listens" })
	q.Key = "marked"
	found, err = gone.IsDone(q)
	require.ErrorIs(t, err, ErrLookup)
	require.False(t, found)
	require.False(t, gone.single.Load(), "no responders is not a reason to fall back")
}
