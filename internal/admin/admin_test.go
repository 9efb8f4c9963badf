package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type readier struct{ err atomic.Pointer[error] }

func (r *readier) Ready() error {
	if p := r.err.Load(); p != nil {
		return *p
	}
	return nil
}
func (r *readier) set(err error) { r.err.Store(&err) }

type pinger func(ctx context.Context) error

func (p pinger) Ping(ctx context.Context) error { return p(ctx) }

func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.Bytes()
}

func readyBody(t *testing.T, raw []byte) ReadyBody {
	t.Helper()
	var b ReadyBody
	require.NoError(t, json.Unmarshal(raw, &b), string(raw))
	return b
}

func TestHealthzAlwaysAlive(t *testing.T) {
	t.Parallel()
	s := New(Config{Checks: []Check{{Name: "nats", Check: func(context.Context) error { return errors.New("down") }}}})
	s.SetDraining()
	code, body := get(t, s.Handler(), "/healthz")
	require.Equal(t, http.StatusOK, code)
	require.JSONEq(t, `{"status":"alive"}`, string(body))
}

func TestReadyz(t *testing.T) {
	t.Parallel()
	const secret = "bolt://neo4j:hunter2@db"
	tests := []struct {
		name        string
		worker      error
		neo4j       error
		draining    bool
		wantCode    int
		wantFailing []string
	}{
		{name: "all good", wantCode: 200},
		{name: "nats lost", worker: errors.New("nats: not connected"), wantCode: 503, wantFailing: []string{"worker"}},
		{name: "neo4j down", neo4j: errors.New("connect " + secret + ": refused"), wantCode: 503, wantFailing: []string{"neo4j"}},
		{name: "draining", draining: true, wantCode: 503, wantFailing: []string{CheckDraining}},
		{name: "everything", worker: errors.New("x"), neo4j: errors.New("y"), draining: true, wantCode: 503,
			wantFailing: []string{CheckDraining, "worker", "neo4j"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := &readier{}
			if tt.worker != nil {
				w.set(tt.worker)
			}
			s := New(Config{Checks: []Check{
				ReadyCheck("worker", w),
				PingCheck("neo4j", pinger(func(context.Context) error { return tt.neo4j })),
			}})
			if tt.draining {
				s.SetDraining()
			}
			code, raw := get(t, s.Handler(), "/readyz")
			require.Equal(t, tt.wantCode, code, string(raw))
			b := readyBody(t, raw)
			require.Equal(t, tt.wantFailing, b.Failing)
			require.Len(t, b.Checks, 3)
			require.Equal(t, []string{CheckDraining, "worker", "neo4j"},
				[]string{b.Checks[0].Name, b.Checks[1].Name, b.Checks[2].Name})
			if tt.wantCode == 200 {
				require.Equal(t, "ready", b.Status)
			} else {
				require.Equal(t, "not_ready", b.Status)
			}
			require.NotContains(t, string(raw), "hunter2", "error texts stay out of the response")
		})
	}
}

// Readiness follows the worker both ways and stays off after draining.
func TestReadyzFlips(t *testing.T) {
	t.Parallel()
	w := &readier{}
	s := New(Config{Checks: []Check{ReadyCheck("worker", w)}})
	code, _ := get(t, s.Handler(), "/readyz")
	require.Equal(t, 200, code)
	w.set(errors.New("nats: connection closed"))
	code, _ = get(t, s.Handler(), "/readyz")
	require.Equal(t, 503, code)
	w.set(nil)
	code, _ = get(t, s.Handler(), "/readyz")
	require.Equal(t, 200, code)
	s.SetDraining()
	code, _ = get(t, s.Handler(), "/readyz")
	require.Equal(t, 503, code)
}

func TestAddCheckAfterNew(t *testing.T) {
	t.Parallel()
	s := New(Config{})
	code, _ := get(t, s.Handler(), "/readyz")
	require.Equal(t, 200, code)
	s.AddCheck(Check{Name: "late", Check: func(context.Context) error { return errors.New("not yet") }})
	code, raw := get(t, s.Handler(), "/readyz")
	require.Equal(t, 503, code)
	require.Equal(t, []string{"late"}, readyBody(t, raw).Failing)
}

// A check that ignores its context or panics answers "not ready" within the
// timeout instead of hanging or killing the probe.
func TestReadyzBadChecks(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	s := New(Config{CheckTimeout: 100 * time.Millisecond, Checks: []Check{
		{Name: "hangs", Check: func(context.Context) error { <-block; return nil }},
		{Name: "panics", Check: func(context.Context) error { panic("boom") }},
		{Name: "fine", Check: func(context.Context) error { return nil }},
	}})
	start := time.Now()
	code, raw := get(t, s.Handler(), "/readyz")
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, 503, code)
	require.Equal(t, []string{"hangs", "panics"}, readyBody(t, raw).Failing)
}

func TestMetricsRoute(t *testing.T) {
	t.Parallel()
	code, _ := get(t, New(Config{}).Handler(), "/metrics")
	require.Equal(t, http.StatusNotFound, code)
	m := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "up 1\n") })
	code, body := get(t, New(Config{Metrics: m}).Handler(), "/metrics")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "up 1\n", string(body))
}

func TestOnlyGet(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	New(Config{}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// Transitions are logged once each, with the failing check's error (the
// log is where operators see why), not on every probe.
func TestReadinessTransitionsLoggedOnce(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := &readier{}
	s := New(Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Checks: []Check{ReadyCheck("worker", w)}})
	for range 3 {
		get(t, s.Handler(), "/readyz")
	}
	w.set(errors.New("consumer not bound"))
	for range 3 {
		get(t, s.Handler(), "/readyz")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 2, buf.String())
	require.Contains(t, lines[0], `"msg":"ready"`)
	require.Contains(t, lines[1], `"msg":"not ready"`)
	require.Contains(t, lines[1], `"check.worker":"consumer not bound"`)
}

// The real listener: Start on an ephemeral loopback port, GET, Shutdown.
func TestStartAndShutdown(t *testing.T) {
	t.Parallel()
	s := New(Config{Addr: "127.0.0.1:0"})
	require.NoError(t, s.Start())
	addr := s.Addr()
	require.True(t, strings.HasPrefix(addr, "127.0.0.1:"), addr)

	resp, err := http.Get("http://" + addr + "/healthz")
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	_ = resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, s.Shutdown(ctx))
	require.True(t, s.Draining())
	_, err = http.Get("http://" + addr + "/healthz")
	require.Error(t, err)
}

func TestStartFailsOnBusyPort(t *testing.T) {
	t.Parallel()
	a := New(Config{Addr: "127.0.0.1:0"})
	require.NoError(t, a.Start())
	t.Cleanup(func() { _ = a.Shutdown(context.Background()) })
	b := New(Config{Addr: a.Addr()})
	require.ErrorContains(t, b.Start(), "admin: listen")
}

func TestDefaultAddrIsLoopback(t *testing.T) {
	t.Parallel()
	require.Equal(t, DefaultAddr, New(Config{}).cfg.Addr)
	require.True(t, strings.HasPrefix(DefaultAddr, "127.0.0.1:"))
}
