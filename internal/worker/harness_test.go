package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/aweber-imbi/imbi-worker/internal/dispatch"
	"github.com/aweber-imbi/imbi-worker/internal/dispatch/dispatchtest"
	"github.com/aweber-imbi/imbi-worker/internal/streams"
	"github.com/aweber-imbi/imbi-worker/plugins"
	"github.com/aweber-imbi/imbi-worker/wire"
)

// env is one embedded nats-server with the streams provisioned, a test
// plugin registry and a dead-letter tap.
type env struct {
	t    *testing.T
	srv  *streams.Embedded
	nc   *nats.Conn
	js   jetstream.JetStream
	sc   streams.Config
	rec  *dispatchtest.Recorder
	disp func() *dispatch.Dispatcher
	dlq  *dlqTap
}

type envOpts struct {
	ackWait     time.Duration
	maxDeliver  int
	idempotency *bool
	dupWindow   time.Duration // work stream dedup window (0: default)
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	srv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(srv.Shutdown)
	nc := connect(t, srv.URL())
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	sc := streams.Config{AckWait: o.ackWait, MaxDeliver: o.maxDeliver, Idempotency: true, DuplicateWindow: o.dupWindow}
	if o.idempotency != nil {
		sc.Idempotency = *o.idempotency
	}
	if sc.MaxDeliver == 0 {
		sc.MaxDeliver = 6
	}
	sc.SetDefaults()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = streams.Apply(ctx, js, sc)
	require.NoError(t, err)

	rec := dispatchtest.NewRecorder()
	reg, err := dispatchtest.Registry(
		&dispatchtest.Plugin{Slug: "test", Rec: rec},
		&dispatchtest.Plugin{Slug: "other", Rec: rec},
		&dispatchtest.Plugin{Slug: "withcreds", Rec: rec, Credentials: []plugins.CredentialField{{Name: "token", Label: "Token", Required: true}}},
	)
	require.NoError(t, err)
	e := &env{t: t, srv: srv, nc: nc, js: js, sc: sc, rec: rec}
	e.disp = func() *dispatch.Dispatcher {
		return &dispatch.Dispatcher{Registry: reg, DefaultTimeout: 500 * time.Millisecond, AbandonGrace: 50 * time.Millisecond}
	}
	e.dlq = newDLQTap(t, nc, sc.DLQPrefix)
	return e
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// config is a fast worker config for tests: small backoff, 3 attempts.
func (e *env) config() Config {
	return Config{
		Streams:       e.sc,
		Concurrency:   4,
		MaxAttempts:   3,
		BackoffBase:   20 * time.Millisecond,
		BackoffMax:    100 * time.Millisecond,
		ShutdownGrace: 5 * time.Second,
		Idempotency:   e.sc.Idempotency,
		WorkerID:      "test-worker",
		Logger:        testLogger(),
	}
}

// start runs a worker until the test ends; stop cancels it and returns
// Run's error.
func (e *env) start(cfg Config) (w *Worker, stop func() error) {
	e.t.Helper()
	nc := connect(e.t, e.srv.URL())
	w, err := New(nc, e.disp(), cfg)
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	require.Eventually(e.t, func() bool { return w.Ready() == nil }, 10*time.Second, 10*time.Millisecond)
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(30 * time.Second):
				runErr = fmt.Errorf("Run did not return")
			}
		})
		return runErr
	}
	e.t.Cleanup(func() { _ = stop() })
	return w, stop
}

// event builds a structured-mode action CloudEvent body.
func event(id, handler string, config any, payloadID string) []byte {
	data := map[string]any{
		"rule":   map[string]any{"id": "r-1", "handler": handler, "handler_config": config, "ordinal": 0},
		"plugin": map[string]any{"id": "pl-1", "slug": "test"},
		"context": map[string]any{"project_id": "p-1", "project_slug": "checkout", "org_slug": "acme",
			"team_slug": "payments", "actor_user_id": nil, "assignment_options": map[string]any{"service_slug": "github"}},
		"external_identifier": "acme/checkout",
		"event": map[string]any{"type": "push", "third_party_service": "github", "attributed_to": "",
			"metadata": map[string]any{"webhook_id": "wh-1", "headers": map[string]any{"authorization": "[redacted]"}},
			"payload":  map[string]any{"id": payloadID}},
	}
	ev := map[string]any{"specversion": "1.0", "id": id, "source": "/imbi-gateway/webhooks/wh-1",
		"type": wire.EventType, "subject": handler, "time": "2026-11-25T12:00:00Z",
		"datacontenttype": "application/json", "data": data}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// publish sends a structured CE for handler with Nats-Msg-Id = id and
// returns its stream sequence.
func (e *env) publish(id, handler string, config any) uint64 {
	e.t.Helper()
	return e.publishRaw(subjectOf(handler), map[string]string{"Content-Type": wire.ContentTypeCE, wire.HeaderMsgID: id}, event(id, handler, config, id))
}

func (e *env) publishRaw(subject string, headers map[string]string, body []byte) uint64 {
	e.t.Helper()
	m := nats.NewMsg(subject)
	for k, v := range headers {
		m.Header[k] = []string{v}
	}
	m.Data = body
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := e.js.PublishMsg(ctx, m)
	require.NoError(e.t, err)
	return ack.Sequence
}

func subjectOf(handler string) string {
	h, err := wire.ParseHandler(handler)
	if err != nil {
		return wire.DefaultSubjectPrefix + ".bad.handler"
	}
	return wire.Subject(wire.DefaultSubjectPrefix, h)
}

// gone reports whether the work stream no longer holds seq (acked).
func (e *env) gone(seq uint64) bool {
	s, err := e.js.Stream(context.Background(), e.sc.Stream)
	require.NoError(e.t, err)
	_, err = s.GetMsg(context.Background(), seq)
	return err != nil
}

func (e *env) streamMsgs() uint64 {
	s, err := e.js.Stream(context.Background(), e.sc.Stream)
	require.NoError(e.t, err)
	info, err := s.Info(context.Background())
	require.NoError(e.t, err)
	return info.State.Msgs
}

// dlqTap records every dead letter by its Nats-Msg-Id.
type dlqTap struct {
	mu   sync.Mutex
	msgs map[string][]*nats.Msg
}

func newDLQTap(t *testing.T, nc *nats.Conn, prefix string) *dlqTap {
	tap := &dlqTap{msgs: map[string][]*nats.Msg{}}
	sub, err := nc.Subscribe(prefix+".>", func(m *nats.Msg) {
		tap.mu.Lock()
		defer tap.mu.Unlock()
		id := m.Header.Get(wire.HeaderMsgID)
		tap.msgs[id] = append(tap.msgs[id], m)
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return tap
}

func (d *dlqTap) get(id string) []*nats.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*nats.Msg(nil), d.msgs[id]...)
}

func (d *dlqTap) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, v := range d.msgs {
		n += len(v)
	}
	return n
}

// waitDLQ waits for the dead letter of id.
func (e *env) waitDLQ(id string, within time.Duration) *nats.Msg {
	e.t.Helper()
	var got *nats.Msg
	require.Eventually(e.t, func() bool {
		if ms := e.dlq.get(id); len(ms) > 0 {
			got = ms[0]
			return true
		}
		return false
	}, within, 10*time.Millisecond, "no dead letter for %s", id)
	return got
}

func natsMsg(subject string, headers map[string]string, body []byte) *nats.Msg {
	m := nats.NewMsg(subject)
	for k, v := range headers {
		m.Header[k] = []string{v}
	}
	m.Data = body
	return m
}

// consumerAckPending is how many delivered messages await their ack.
func (e *env) consumerAckPending() int {
	c, err := e.js.Consumer(context.Background(), e.sc.Stream, e.sc.Consumer)
	require.NoError(e.t, err)
	info, err := c.Info(context.Background())
	require.NoError(e.t, err)
	return info.NumAckPending
}

func testLogger() *slog.Logger {
	if os.Getenv("WORKER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
