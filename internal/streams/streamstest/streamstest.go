// Package streamstest starts a real embedded JetStream server for tests,
// with the worker's streams provisioned, so test packages do not each
// repeat the start/connect/apply sequence.
package streamstest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/streams"
)

// Env is a running embedded server, a connection to it and the
// provisioned streams. Everything is shut down by t.Cleanup.
type Env struct {
	Server *streams.Embedded
	NC     *nats.Conn
	JS     jetstream.JetStream
	// Config is the configuration the streams were applied with.
	Config      streams.Config
	Provisioned *streams.Provisioned
}

// URL is the server's client URL (127.0.0.1, random port).
func (e *Env) URL() string { return e.Server.URL() }

// Start starts an embedded server in a temporary directory and applies c
// (defaults filled in by SetDefaults).
func Start(t testing.TB, c streams.Config) *Env {
	t.Helper()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	c.SetDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := streams.Apply(ctx, js, c)
	require.NoError(t, err)
	return &Env{Server: srv, NC: nc, JS: js, Config: c, Provisioned: p}
}
