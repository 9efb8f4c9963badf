package creds

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/internal/streams/streamstest"
	"github.com/aweber-imbi/imbi-worker/internal/streams/workertest"
	"github.com/aweber-imbi/imbi-worker/internal/worker"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// outageProxy is a loopback TCP relay in front of the real Neo4j. Cut
// closes every connection and refuses new ones (what a stopped or
// restarting Neo4j looks like to the driver) without touching the shared
// test server; Restore listens again on the same port.
type outageProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
}

func newOutageProxy(t *testing.T, target string) *outageProxy {
	t.Helper()
	p := &outageProxy{t: t, target: target, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *outageProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// Cut: Neo4j goes away.
func (p *outageProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore: Neo4j is back on the same address.
func (p *outageProxy) Restore() {
	p.t.Helper()
	var ln net.Listener
	require.Eventually(p.t, func() bool {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	p.serve(ln)
}

func actionEvent(id, pluginID string) []byte {
	data := map[string]any{
		"rule":   map[string]any{"id": "r-1", "handler": "withcreds#ok", "handler_config": map[string]any{}, "ordinal": 0},
		"plugin": map[string]any{"id": pluginID, "slug": "withcreds"},
		"context": map[string]any{"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme",
			"team_slug": nil, "actor_user_id": nil},
		"external_identifier": "acme/checkout",
		"event": map[string]any{"type": "push", "third_party_service": "github", "attributed_to": "",
			"metadata": map[string]any{"webhook_id": "wh-1", "headers": map[string]any{}},
			"payload":  map[string]any{"id": id}},
	}
	b, err := json.Marshal(map[string]any{"specversion": "1.0", "id": id, "source": "/imbi-gateway/webhooks/wh-1",
		"type": wire.EventType, "subject": "withcreds#ok", "time": "2026-11-25T12:00:00Z",
		"datacontenttype": "application/json", "data": data})
	if err != nil {
		panic(err)
	}
	return b
}

// End to end: a CloudEvent for a plugin whose credentials live in Neo4j
// reaches the action with them; while Neo4j is unreachable the messages
// are retried (never dead-lettered) and processed once it is back.
func TestEndToEndWorkerCredentialsAndNeo4jOutage(t *testing.T) {
	t.Parallel()
	const canary = "CANARY-e2e-31c7"
	base := newEnv(t, nil, nil)
	pluginID := newID(t)
	base.pluginOf(pluginID, "withcreds", "github", base.encrypted(`{"token": "`+canary+`"}`))

	// The worker's store talks to Neo4j through the outage proxy.
	u, err := url.Parse(base.store.cfg.URL)
	require.NoError(t, err)
	proxy := newOutageProxy(t, u.Host)
	cfg := base.store.cfg
	cfg.URL = u.Scheme + "://" + proxy.addr
	cfg.Retries, cfg.RetryBase, cfg.QueryTimeout = 1, 10*time.Millisecond, time.Second
	logs := &logBuffer{}
	store, err := Open(cfg, base.kr, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	require.NoError(t, err)
	t.Cleanup(func() { _ = store.Close(context.Background()) })
	resolver, err := NewResolver(store, WithCacheTTL(0)) // every message asks Neo4j
	require.NoError(t, err)

	ne := streamstest.Start(t, streams.Config{MaxDeliver: 60, Idempotency: true})
	js := ne.JS

	dead := workertest.RecordDeadLetters(t, ne)

	rec := dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(&dispatchtest.Plugin{Slug: "withcreds", Rec: rec,
		Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}})
	require.NoError(t, err)
	disp := &dispatch.Dispatcher{Registry: reg, Credentials: resolver, DefaultTimeout: 2 * time.Second}
	workerLogs := &logBuffer{}
	workertest.Run(t, ne, disp, worker.Config{
		Concurrency: 2, MaxAttempts: 50, BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		ShutdownGrace: 5 * time.Second, Idempotency: true, WorkerID: "creds-e2e",
		Logger: slog.New(slog.NewTextHandler(workerLogs, nil)),
	})

	publish := func(id string) {
		m := nats.NewMsg(wire.DefaultSubjectPrefix + ".withcreds.ok")
		m.Header.Set("Content-Type", wire.ContentTypeCE)
		m.Header.Set(wire.HeaderMsgID, id)
		m.Data = actionEvent(id, pluginID)
		_, err := js.PublishMsg(context.Background(), m)
		require.NoError(t, err)
	}

	// 1. Neo4j up: the action sees the decrypted credentials.
	publish("msg-up")
	require.Eventually(t, func() bool { return rec.Calls("msg-up") == 1 }, 15*time.Second, 10*time.Millisecond)
	require.Equal(t, canary, rec.LastCredentials()["token"])

	// 2. Neo4j gone: messages are retried, not processed, not dead-lettered.
	proxy.Cut()
	publish("msg-down-1")
	publish("msg-down-2")
	time.Sleep(1500 * time.Millisecond) // several backoff rounds
	require.Zero(t, rec.Calls("msg-down-1"))
	require.Zero(t, rec.Calls("msg-down-2"))
	require.Empty(t, dead.All(), "an unreachable Neo4j must never dead-letter")

	// 3. Neo4j back: both are processed, once each.
	proxy.Restore()
	require.Eventually(t, func() bool {
		return rec.Calls("msg-down-1") == 1 && rec.Calls("msg-down-2") == 1
	}, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, canary, rec.LastCredentials()["token"])
	require.Empty(t, dead.All())
	require.NotContains(t, logs.String()+workerLogs.String(), canary, "no secret in any log line")
	require.Contains(t, workerLogs.String(), "unavailable", "the outage was seen and retried")
}
