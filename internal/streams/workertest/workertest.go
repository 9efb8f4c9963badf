// Package workertest runs a real worker against a streamstest server for
// end-to-end tests, and records its dead letters, so test packages do not
// each repeat the connect/new/run/ready and subscribe sequences.
package workertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/pluginreg"
	"github.com/aweber-imbi/imbi-worker/internal/registry"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// Limits of Run.
const (
	readyTimeout = 10 * time.Second
	stopTimeout  = 30 * time.Second
)

// Run starts a worker with disp and c on a connection of its own to env's
// server (c.Streams: env.Config when unset), returns once it is ready and
// stops it when the test ends (an error if it does not stop in 30 s).
func Run(t testing.TB, env *streamstest.Env, disp *dispatch.Dispatcher, c worker.Config) *worker.Worker {
	t.Helper()
	if c.Streams.Stream == "" {
		c.Streams = env.Config
	}
	wnc, err := nats.Connect(env.URL())
	require.NoError(t, err)
	t.Cleanup(wnc.Close)
	w, err := worker.New(wnc, disp, c)
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			t.Error("worker did not stop")
		}
	})
	require.Eventually(t, func() bool { return w.Ready() == nil }, readyTimeout, 10*time.Millisecond, "worker never became ready")
	return w
}

// Registry is a registry of regs, loaded, every one without an error.
func Registry(t testing.TB, regs ...pluginreg.Registration) *registry.Registry {
	t.Helper()
	reg := registry.New(func() []pluginreg.Registration { return regs })
	res, err := reg.Load()
	require.NoError(t, err)
	require.Empty(t, res.Errors)
	return reg
}

// DeadLetters records the dead letters published under env's DLQ prefix.
type DeadLetters struct {
	mu   sync.Mutex
	all  []*nats.Msg
	byID map[string]*nats.Msg
}

// RecordDeadLetters subscribes until the test ends.
func RecordDeadLetters(t testing.TB, env *streamstest.Env) *DeadLetters {
	t.Helper()
	d := &DeadLetters{byID: map[string]*nats.Msg{}}
	sub, err := env.NC.Subscribe(env.Config.DLQPrefix+".>", func(m *nats.Msg) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.all = append(d.all, m)
		d.byID[m.Header.Get(wire.HeaderMsgID)] = m
	})
	require.NoError(t, err)
	require.NoError(t, env.NC.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return d
}

// All returns the dead letters so far, in arrival order.
func (d *DeadLetters) All() []*nats.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*nats.Msg(nil), d.all...)
}

// Get returns the last dead letter of the message with Nats-Msg-Id id,
// or nil.
func (d *DeadLetters) Get(id string) *nats.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byID[id]
}
