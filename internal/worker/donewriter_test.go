package worker

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/donemarker"
)

// TestDoneMarkerStoredBeforeAck: the done-marker is written
// asynchronously, but every message is acked only once its own marker is
// readable in the bucket (wire-contract §6), and the writer's queue
// drains on shutdown (every message acked, none left for redelivery).
func TestDoneMarkerStoredBeforeAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	kv, err := e.js.KeyValue(context.Background(), e.sc.DoneBucket)
	require.NoError(t, err)

	var mu sync.Mutex
	var missing []string
	acked := 0
	cfg := e.config()
	cfg.Concurrency = 8
	cfg.hooks.afterDone = func(ceID string) bool {
		// Runs right before the ack.
		entry, err := kv.Get(context.Background(), donemarker.Key(ceID))
		mu.Lock()
		defer mu.Unlock()
		if err != nil || string(entry.Value()) != cfg.WorkerID {
			missing = append(missing, ceID)
		}
		acked++
		return false
	}
	_, stop := e.start(cfg)
	const n = 200
	var last uint64
	for i := range n {
		last = e.publish("dw-"+strconv.Itoa(i), "test#ok", nil)
	}
	require.Eventually(t, func() bool { return e.gone(last) && e.streamMsgs() == 0 }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, stop())
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, missing, "acked before the done-marker was stored")
	require.Equal(t, n, acked)
	for i := range n {
		require.Equal(t, 1, e.rec.Calls("dw-"+strconv.Itoa(i)))
	}
}

// TestDoneWriterDrainsOnShutdown: messages whose markers are in flight
// when shutdown starts are still acked before Run returns.
func TestDoneWriterDrainsOnShutdown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cfg := e.config()
	release := make(chan struct{})
	var once sync.Once
	cfg.hooks.afterDone = func(string) bool {
		once.Do(func() { <-release }) // hold the writer on its first message
		return false
	}
	_, stop := e.start(cfg)
	// Fewer than the queue (Concurrency) plus the one held by the writer,
	// so every action finishes while the writer is held.
	var last uint64
	for i := range cfg.Concurrency {
		last = e.publish("dd-"+strconv.Itoa(i), "test#ok", nil)
	}
	lastID := "dd-" + strconv.Itoa(cfg.Concurrency-1)
	require.Eventually(t, func() bool { return e.rec.Calls(lastID) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NotZero(t, e.streamMsgs(), "held: not acked yet")
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	require.NoError(t, <-stopped)
	require.True(t, e.gone(last))
	require.Zero(t, e.streamMsgs(), "every message acked before Run returned")
}
