package worker

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/plugins"
)

// flakyStore is a credential source at dispatch's interface whose store
// can be switched off: while down, loads fail as internal/creds reports an
// unreachable Neo4j (*plugins.PluginUnavailableError) and Ping fails.
type flakyStore struct {
	down  atomic.Bool
	loads atomic.Int64
	pings atomic.Int64
	// pingDelay makes every Ping take this long, ignoring its context.
	pingDelay time.Duration
}

func (s *flakyStore) Credentials(context.Context, plugins.PluginManifest, string, string) (plugins.Credentials, error) {
	s.loads.Add(1)
	if s.down.Load() {
		return nil, &plugins.PluginUnavailableError{Message: "credentials unavailable: connection refused"}
	}
	return plugins.Credentials{"token": "t"}, nil
}

func (s *flakyStore) Ping(context.Context) error {
	s.pings.Add(1)
	time.Sleep(s.pingDelay)
	if s.down.Load() {
		return errors.New("connection refused")
	}
	return nil
}

// TestBreakerPausesIntakeWhileCredentialStoreDown: a store outage far
// longer than the retry budget (3 attempts, backoff ≤ 100 ms) dead-letters
// nothing: the first unavailable load opens the breaker, the worker stops
// taking messages (loads stop; readiness says why), probes the store, and
// resumes when it answers; every message then runs once.
func TestBreakerPausesIntakeWhileCredentialStoreDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{ackWait: 2 * time.Second})
	store := &flakyStore{}
	disp := e.disp()
	disp.Credentials = store
	w, err := New(connect(t, e.srv.URL()), disp, e.config())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	require.Eventually(t, func() bool { return w.Ready() == nil }, 10*time.Second, 10*time.Millisecond)

	// Every pull request this worker's consumer gets.
	pulls := atomic.Int64{}
	tap, err := e.nc.Subscribe("$JS.API.CONSUMER.MSG.NEXT."+e.sc.Stream+"."+e.sc.Consumer, func(*nats.Msg) { pulls.Add(1) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = tap.Unsubscribe() })
	require.NoError(t, e.nc.Flush())

	store.down.Store(true)
	const n = 30
	for i := range n {
		e.publish("br-"+strconv.Itoa(i), "withcreds#ok", nil)
	}
	require.Eventually(t, func() bool { return errors.Is(w.Ready(), ErrCredentialStoreUnavailable) },
		10*time.Second, 5*time.Millisecond, "breaker never opened")
	time.Sleep(300 * time.Millisecond) // in-flight loads finish
	loadsAtPause := store.loads.Load()
	require.NoError(t, e.nc.Flush())
	pullsAtPause := pulls.Load()
	// Ten times the whole retry budget, three AckWaits, longer than a pull
	// request lives (pullExpiry): no new one goes out.
	time.Sleep(6 * time.Second)
	require.Equal(t, loadsAtPause, store.loads.Load(), "messages kept being taken while the breaker was open")
	require.NoError(t, e.nc.Flush())
	require.Equal(t, pullsAtPause, pulls.Load(), "pull requests while the breaker was open")
	require.LessOrEqual(t, loadsAtPause, int64(2*e.config().Concurrency), "too many messages tried before the breaker opened")
	require.Greater(t, store.pings.Load(), int64(3), "the store was not probed")
	require.Zero(t, e.dlq.count(), "dead-lettered during the outage")

	store.down.Store(false)
	require.Eventually(t, func() bool {
		for i := range n {
			if e.rec.Calls("br-"+strconv.Itoa(i)) != 1 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "not every message ran after the store came back")
	// More messages than places: pulling resumed (and the tap sees pulls).
	require.Greater(t, pulls.Load(), pullsAtPause, "no pull request after the breaker closed")
	require.Eventually(t, func() bool { return e.streamMsgs() == 0 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, w.Ready())
	require.Zero(t, e.dlq.count())
	cancel()
	require.NoError(t, <-runErr)
}

// TestBreakerIgnoresActionUnavailable: an action's own unavailable error
// (its upstream, not the credential store) is an ordinary retry: the
// breaker stays closed and the message is dead-lettered after its
// attempts as before.
func TestBreakerIgnoresActionUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	w, _ := e.start(e.config())
	e.publish("br-upstream", "test#unavailable", nil)
	dl := e.waitDLQ("br-upstream", 10*time.Second)
	require.Equal(t, "max_attempts", dl.Header.Get("Imbi-Dlq-Reason"))
	require.NoError(t, w.Ready(), "breaker opened for an action's own error")
	require.False(t, w.breaker.open())
}

// TestBreakerShutdownWhilePaused: a worker stopped while its breaker is
// open returns promptly and hands its held messages back (nothing acked,
// nothing dead-lettered).
func TestBreakerShutdownWhilePaused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	store := &flakyStore{}
	store.down.Store(true)
	disp := e.disp()
	disp.Credentials = store
	w, err := New(connect(t, e.srv.URL()), disp, e.config())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	for i := range 12 {
		e.publish("bs-"+strconv.Itoa(i), "withcreds#ok", nil)
	}
	require.Eventually(t, func() bool { return errors.Is(w.Ready(), ErrCredentialStoreUnavailable) },
		10*time.Second, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	cancel()
	select {
	case err := <-runErr:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return while paused")
	}
	require.Less(t, time.Since(began), 10*time.Second)
	require.EqualValues(t, 12, e.streamMsgs(), "messages lost or acked")
	require.Zero(t, e.dlq.count())
}
