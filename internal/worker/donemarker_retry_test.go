package worker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/donemarker"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
)

// failMarkerStoreDuring runs one sleeping action and, while it runs,
// deletes the done-marker bucket, so the marker write after it fails
// (no stream answers on the KV subject) — on a real server, the way a
// write fails while nats-server restarts. It returns the message's
// stream sequence once the action has started and the bucket is gone.
func failMarkerStoreDuring(t *testing.T, e *env, id string) uint64 {
	t.Helper()
	seq := e.publish(id, "test#sleep", dispatchtest.Config{SleepMS: 300})
	require.Eventually(t, func() bool { return e.rec.Calls(id) == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, e.js.DeleteKeyValue(context.Background(), e.sc.DoneBucket))
	return seq
}

// TestDoneMarkerRetriedBeforeAck: a message whose done-marker write fails
// is not acked (so a redelivery cannot run it again without its marker),
// is kept in progress well past AckWait instead of being redelivered, and
// is acked once the marker store answers again — with its marker stored
// and the action run once.
func TestDoneMarkerRetriedBeforeAck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{ackWait: 2 * time.Second})
	_, stop := e.start(e.config())
	seq := failMarkerStoreDuring(t, e, "mr-retry")

	// Three AckWaits with the marker store gone.
	time.Sleep(6 * time.Second)
	require.False(t, e.gone(seq), "acked although its done-marker was never stored")
	require.Equal(t, 1, e.rec.Calls("mr-retry"), "redelivered and run again while the marker was retried")
	require.Zero(t, e.dlq.count(), "dead-lettered")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := streams.Apply(ctx, e.js, e.sc) // the store is back
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.gone(seq) }, 15*time.Second, 20*time.Millisecond,
		"not acked after the marker store came back")
	kv, err := e.js.KeyValue(ctx, e.sc.DoneBucket)
	require.NoError(t, err)
	entry, err := kv.Get(ctx, donemarker.Key("mr-retry"))
	require.NoError(t, err, "acked without its done-marker")
	require.Equal(t, "test-worker", string(entry.Value()))
	require.NoError(t, stop())
	require.Equal(t, 1, e.rec.Calls("mr-retry"))
}

// TestDoneMarkerUnwrittenAtShutdownLeftForRedelivery: when the worker
// stops while a marker is still being retried, the message is neither
// acked (that would lose the guard) nor dead-lettered, and Run returns
// within its bound.
func TestDoneMarkerUnwrittenAtShutdownLeftForRedelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{ackWait: 2 * time.Second})
	cfg := e.config()
	cfg.ShutdownGrace = time.Second
	_, stop := e.start(cfg)
	seq := failMarkerStoreDuring(t, e, "mr-shutdown")
	time.Sleep(time.Second) // the first write has failed and is being retried

	began := time.Now()
	require.NoError(t, stop())
	require.Less(t, time.Since(began), 15*time.Second, "shutdown not bounded")
	require.False(t, e.gone(seq), "acked without its done-marker")
	require.Zero(t, e.dlq.count(), "dead-lettered")
	require.Equal(t, 1, e.rec.Calls("mr-shutdown"))
}
